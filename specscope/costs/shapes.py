"""Model shapes: the handful of numbers that decide a Llama/Qwen-family model's bytes and FLOPs per step.

A `ModelShape` comes from a shipped name (`specscope/data/models.toml`), a Hugging Face `config.json`
(or its folder) or a GGUF file's metadata: `load_shape(name_or_path)`. Draft heads are shapes too,
relative to their target: `head_shape(target, "eagle3")`.

What a shape is priced by (per forward pass, before tensor parallelism):
- parameters read: every matmul weight once — per layer q/k/v (hidden -> (heads + 2 kv_heads) x
  head_dim), o (heads x head_dim -> hidden), gate/up/down (3 x hidden x intermediate) — plus the LM
  head (vocab x hidden). The embedding table is a lookup: held in memory, not read whole (a tied
  model's table is read whole as its LM head, once);
- FLOPs: 2 per matmul parameter per token, plus attention, 4 x layers x heads x head_dim per
  (query token, cached token) pair (QK^T and PV);
- KV bytes per cached token: 2 (K and V) x layers x kv_heads x head_dim x bytes per element.
Draft heads (`kind`): `eagle3` = `layers` decoder layers whose attention reads 2 x hidden inputs,
a 3 x hidden -> hidden fusion layer and its own LM head over `draft_vocab_size` tokens (EAGLE-3,
arXiv:2503.01840); `eagle` = decoder layer(s) plus a 2 x hidden -> hidden layer, using the target's
LM head (EAGLE, arXiv:2401.15077); `mtp` = the same layout as `eagle` (DeepSeek-V3's
multi-token-prediction module, arXiv:2412.19437, Sec. 2.2). Heads share the target's embedding.

`PRECISIONS` (the `--dtype` values) say how many bits a weight takes, which FLOP rate the matmuls
run at, and the bytes of a KV-cache element and of an activation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from specscope.errors import SpecscopeError, unknown_name

MODEL, EAGLE, EAGLE3, MTP = "model", "eagle", "eagle3", "mtp"
HEAD_KINDS = (EAGLE, EAGLE3, MTP)
GGUF = "gguf"  # --dtype gguf: the weights as the GGUF file stores them (the built-in CPU engine)


@dataclass(frozen=True)
class Precision:
    """How a `--dtype` stores and computes: bits per weight, FLOP rate key, KV and activation bytes."""

    name: str
    weight_bits: float  # None-free: GGUF's "as stored" is resolved per shape (ModelShape.weight_bits)
    compute: str  # the hardware FLOP rate it runs at (HardwareSpec.flops key)
    kv_bytes: int  # bytes per KV-cache element
    act_bytes: int  # bytes per activation element
    note: str


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("bf16", 16, "bf16", 2, 2, "bfloat16 weights, activations and KV cache"),
    Precision("fp16", 16, "fp16", 2, 2, "float16 weights, activations and KV cache"),
    Precision("fp8", 8, "fp8", 2, 2, "FP8 weights and matmuls (W8A8), KV cache in bf16 (vLLM's kv_cache_dtype=auto)"),
    Precision("q4", 4.25, "bf16", 2, 2, "4-bit weight-only quantisation (AWQ/GPTQ, group 128: 4 bits plus a 16-bit "
              "scale and zero per 128 weights = 4.25 bits), matmuls in bf16"),
    Precision("f32", 32, "fp32", 4, 4, "float32 everywhere"),
    Precision("q8_0", 8.5, "fp32", 4, 4, "GGUF Q8_0 blocks (34 bytes per 32 weights), float32 compute and KV cache"),
    Precision("q4_1", 5.0, "fp32", 4, 4, "GGUF Q4_1 blocks (20 bytes per 32 weights), float32 compute and KV cache"),
    Precision("q4_0", 4.5, "fp32", 4, 4, "GGUF Q4_0 blocks (18 bytes per 32 weights), float32 compute and KV cache"),
    Precision(GGUF, 0.0, "fp32", 4, 4, "as the GGUF file stores each tensor; float32 compute and KV cache "
              "(specscope's built-in CPU engine)"),
)}


@dataclass(frozen=True)
class ModelShape:
    """A decoder's shape (names follow config.json) or a draft head's (`kind`, relative to its target)."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    kind: str = MODEL
    draft_vocab_size: int = 0  # eagle3: its own LM head's vocabulary
    weight_bits: float = 0.0  # as stored, for --dtype gguf (0: not known)
    head_bits: float = 0.0  # the LM head's bits as stored (GGUF files often keep it wider)
    max_position: int = 0
    source: str = ""
    draft: str = ""  # the draft model usually paired with this target (a shipped name)
    eagle3: str = ""  # its published EAGLE-3 head (a shipped name)

    # -- parameters ------------------------------------------------------------------------------
    def layer_params(self) -> int:
        """Matmul parameters of one decoder layer."""
        qkv_in = 2 * self.hidden_size if self.kind == EAGLE3 else self.hidden_size
        attn = qkv_in * (self.num_heads + 2 * self.num_kv_heads) * self.head_dim
        attn += self.num_heads * self.head_dim * self.hidden_size
        return attn + 3 * self.hidden_size * self.intermediate_size

    def fusion_params(self) -> int:
        """The head's input layer: 3h -> h (EAGLE-3), 2h -> h (EAGLE, MTP); 0 for a model."""
        width = {EAGLE3: 3, EAGLE: 2, MTP: 2}.get(self.kind, 0)
        return width * self.hidden_size * self.hidden_size

    def lm_head_params(self) -> int:
        vocab = self.draft_vocab_size if self.kind == EAGLE3 and self.draft_vocab_size else self.vocab_size
        return vocab * self.hidden_size

    def body_params(self) -> int:
        """Matmul parameters outside the LM head: layers and the head's fusion layer."""
        return self.num_layers * self.layer_params() + self.fusion_params()

    def read_params(self) -> int:
        """Parameters one forward pass reads: body and LM head."""
        return self.body_params() + self.lm_head_params()

    def held_params(self) -> int:
        """Parameters this model or head keeps in memory (heads share the target's embedding, eagle/mtp its LM head)."""
        if self.kind in (EAGLE, MTP):
            return self.body_params()
        if self.kind == EAGLE3:
            return self.read_params()
        embedding = 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size
        return self.read_params() + embedding

    # -- bytes and FLOPs -------------------------------------------------------------------------
    def bits(self, precision: Precision) -> tuple[float, float]:
        """(bits per body weight, bits per LM-head weight) under `precision`."""
        if precision.name != GGUF:
            return precision.weight_bits, precision.weight_bits
        if not self.weight_bits:
            raise SpecscopeError(f"--dtype gguf: model '{self.name}' was not read from a GGUF file; pass a .gguf file "
                                 f"or pick a dtype ({', '.join(p for p in PRECISIONS if p != GGUF)})")
        return self.weight_bits, self.head_bits or self.weight_bits

    def read_bytes(self, precision: Precision) -> float:
        """Weight bytes one forward pass reads."""
        body, head = self.bits(precision)
        return (self.body_params() * body + self.lm_head_params() * head) / 8

    def held_bytes(self, precision: Precision) -> float:
        """Weight bytes held in memory (embedding stored like the LM head)."""
        body, head = self.bits(precision)
        return (self.body_params() * body + (self.held_params() - self.body_params()) * head) / 8

    def flops_per_token(self) -> float:
        """Matmul FLOPs per token of one forward pass."""
        return 2.0 * self.read_params()

    def attention_flops_per_kv(self) -> float:
        """Attention FLOPs per (query token, cached token) pair."""
        return 4.0 * self.num_layers * self.num_heads * self.head_dim

    def kv_bytes_per_token(self, precision: Precision) -> float:
        """Bytes of K and V one cached token takes."""
        return 2.0 * self.num_layers * self.num_kv_heads * self.head_dim * precision.kv_bytes

    def describe(self) -> str:
        params = self.held_params() / 1e9
        what = f"{self.kind} head, " if self.kind != MODEL else ""
        return (f"{self.name} ({what}{params:.2f} B parameters held, {self.num_layers} layers, hidden {self.hidden_size}, "
                f"{self.num_heads} heads / {self.num_kv_heads} KV heads)")


# ------------------------------------------------------------------------------------------------
# Building shapes from files

# config.json key -> ModelShape field, for the fields every shape needs.
HF_FIELDS = {
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "vocab_size": "vocab_size",
}


def shape_from_config(cfg: dict, name: str, source: str) -> ModelShape:
    """A shape from config.json keys (or the same keys in models.toml); names every missing field."""
    missing = [key for key in HF_FIELDS if key not in cfg]
    if missing:
        raise SpecscopeError(f"{source}: the config lacks {', '.join(missing)} (needed to price the model); "
                             "pass a Llama/Qwen-family config.json")
    values = {}
    for key, attr in HF_FIELDS.items():
        values[attr] = _count(cfg[key], key, source)
    heads = values["num_heads"]
    kv_heads = _count(cfg.get("num_key_value_heads") or heads, "num_key_value_heads", source)
    head_dim = cfg.get("head_dim") or values["hidden_size"] // heads
    return ModelShape(
        name=name,
        num_kv_heads=kv_heads,
        head_dim=_count(head_dim, "head_dim", source),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_position=int(cfg.get("max_position_embeddings") or 0),
        source=source,
        draft=str(cfg.get("draft", "")),
        eagle3=str(cfg.get("eagle3", "")),
        **values,
    )


def _count(value, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecscopeError(f"{source}: {key} = {value!r} must be a positive integer")
    return value


# GGUF metadata key (after "<arch>.") -> config.json key
GGUF_KEYS = {
    "embedding_length": "hidden_size",
    "feed_forward_length": "intermediate_size",
    "block_count": "num_hidden_layers",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.key_length": "head_dim",
    "context_length": "max_position_embeddings",
}


def shape_from_gguf(fields: dict, tensors, name: str, source: str) -> ModelShape:
    """A shape from GGUF metadata, with the weights' bits as stored (for --dtype gguf)."""
    arch = fields.get("general.architecture", "")
    cfg = {hf: fields[f"{arch}.{key}"] for key, hf in GGUF_KEYS.items() if f"{arch}.{key}" in fields}
    embed = next((t for t in tensors if t.name == "token_embd.weight"), None)
    if embed is not None:
        cfg["vocab_size"] = embed.elements // max(int(cfg.get("hidden_size") or 1), 1)
    elif f"{arch}.vocab_size" in fields:
        cfg["vocab_size"] = fields[f"{arch}.vocab_size"]
    head = next((t for t in tensors if t.name == "output.weight"), None)
    cfg["tie_word_embeddings"] = head is None
    missing = [f"{arch or '<arch>'}.{key}" for key, hf in GGUF_KEYS.items()
               if hf in HF_FIELDS and hf not in cfg] + ([] if "vocab_size" in cfg else ["token_embd.weight"])
    if missing:
        raise SpecscopeError(f"{source}: the GGUF metadata lacks {', '.join(missing)} (needed to price the model)")
    if isinstance(cfg.get("num_key_value_heads"), list):
        raise SpecscopeError(f"{source}: a per-layer KV head count is not supported")
    shape = shape_from_config(cfg, name, source)
    body = [t for t in tensors if t.name.startswith("blk.") and t.name.endswith(".weight") and "norm" not in t.name]
    lm = head if head is not None else embed
    body_bits = 8.0 * sum(t.nbytes for t in body) / max(sum(t.elements for t in body), 1)
    head_bits = 8.0 * lm.nbytes / lm.elements if lm is not None and lm.elements else body_bits
    return replace(shape, weight_bits=body_bits, head_bits=head_bits)


# ------------------------------------------------------------------------------------------------
# Shipped shapes and lookup


def shipped_tables() -> dict[str, dict]:
    from specscope.formats.model_shape import read_models_toml

    return read_models_toml()


def available_models() -> list[str]:
    """Shipped target and draft model names (not the heads)."""
    return sorted(n for n, t in shipped_tables().items() if t.get("kind", MODEL) == MODEL)


def shipped_shape(name: str) -> ModelShape:
    """A shipped model or head by name; unknown names list the known ones."""
    tables = shipped_tables()
    key = name.lower()
    if key not in tables:
        raise SpecscopeError(f"{unknown_name('model', name, available_models())} (or pass a config.json, its folder "
                             "or a .gguf file)")
    table = tables[key]
    source = f"specscope/data/models.toml [{key}] ({table.get('source', 'no source given')})"
    kind = table.get("kind", MODEL)
    if kind == MODEL:
        return shape_from_config(table, key, source)
    base = shipped_shape(str(table.get("base", "")))
    return head_shape(base, kind, layers=int(table.get("layers", 1)),
                      draft_vocab=int(table.get("draft_vocab_size", 0)), name=key, source=source)


def load_shape(name_or_path: str | os.PathLike) -> ModelShape:
    """A shape by shipped name, or from a config.json / model folder / .gguf file."""
    from specscope.formats.model_shape import read_gguf_metadata, read_hf_config

    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf" or (path.is_file() and path.suffix.lower() != ".json"):
        if not path.is_file():
            raise SpecscopeError(f"model file '{path}' does not exist")
        fields, tensors = read_gguf_metadata(path)
        return shape_from_gguf(fields, tensors, path.stem, str(path))
    if path.exists() or text.endswith(".json"):
        if not path.exists():
            raise SpecscopeError(f"model config '{path}' does not exist")
        cfg = read_hf_config(path)
        name = str(cfg.get("_name_or_path") or (path.name if path.is_dir() else path.parent.name) or path.stem)
        return shape_from_config(cfg, name, str(path))
    return shipped_shape(text)


def head_shape(target: ModelShape, kind: str, layers: int = 1, draft_vocab: int = 0, name: str = "",
               source: str = "") -> ModelShape:
    """A draft head of `kind` on `target`: `layers` decoder layers of the target's width (module docstring)."""
    if kind not in HEAD_KINDS:
        raise SpecscopeError(f"Unknown head kind '{kind}'. Available: {', '.join(HEAD_KINDS)}")
    if kind == EAGLE3 and not draft_vocab:
        draft_vocab = 32000  # the draft vocabulary of the published EAGLE-3 heads (arXiv:2503.01840)
    return replace(
        target, name=name or f"{kind}-head({target.name})", kind=kind, num_layers=layers,
        draft_vocab_size=draft_vocab if kind == EAGLE3 else 0, tie_word_embeddings=False, draft="", eagle3="",
        source=source or f"{kind} head derived from {target.name}'s shape: {layers} layer(s) (specscope/costs/shapes.py)",
    )


def default_head(target: ModelShape, kind: str) -> ModelShape:
    """The target's published head of `kind` when shipped (EAGLE-3), else one derived from its shape."""
    if kind == EAGLE3 and target.eagle3:
        return shipped_shape(target.eagle3)
    return head_shape(target, kind)
