"""Saving and loading draft heads in the published checkpoint layouts; one loader for ours and theirs.

A head folder holds `config.json` plus `model.safetensors` (or `pytorch_model.bin`):

- EAGLE (SafeAILab EAGLE-1 layout): a Llama config (`num_hidden_layers` = head layers, `bias` = fc
  bias) and keys `fc.weight` [H, 2H] (+ `fc.bias`), `layers.{i}.self_attn.{q,k,v,o}_proj.weight`,
  `layers.{i}.mlp.{gate,up,down}_proj.weight`, `layers.{i}.post_attention_layernorm.weight`
  (+ `input_layernorm` for i > 0); `embed_tokens.weight` may be present and is ignored (the
  target's embedding is used). Optional `d2t` (our extension) selects a reduced draft vocabulary.
- EAGLE-3 (EAGLE-3 / vLLM `llama_eagle3` layout): config with `draft_vocab_size`,
  `target_hidden_size` and optionally `eagle_config.eagle_aux_hidden_state_layer_ids`; keys
  `fc.weight` [H, 3H], `midlayer.{self_attn,mlp}.*`, `midlayer.{input_layernorm,hidden_norm,
  post_attention_layernorm}.weight`, `norm.weight`, `lm_head.weight` [draft_vocab, H], `d2t`, `t2d`.
- MTP (specscope's own): `heads.{i}.fc.weight`, `heads.{i}.proj.{weight,bias}`, `heads.{i}.norm.weight`.

Our folders add a `specscope` object to config.json (kind, target, training settings). Loading
checks the head against the target (hidden size, vocabulary, layer ids) and turns any problem into
one `SpecscopeError` line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from specscope.engine.heads.common import HEAD_KINDS, HeadConfig, default_aux_ids
from specscope.engine.heads.eagle import EagleHead
from specscope.engine.heads.eagle3 import Eagle3Head
from specscope.engine.heads.mtp import MtpHead
from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open, write_json_atomic

HEAD_CLASSES = {"eagle": EagleHead, "eagle3": Eagle3Head, "mtp": MtpHead}
BUNDLED_HEADS = Path(__file__).resolve().parents[2] / "data" / "heads"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def build_head(cfg: HeadConfig):
    return HEAD_CLASSES[cfg.kind](cfg)


def head_state(head) -> dict[str, torch.Tensor]:
    """The checkpoint tensors of a head (its parameters, plus d2t/t2d when the vocabulary is reduced)."""
    state = {k: v for k, v in head.state_dict().items()}
    if getattr(head, "d2t", None) is not None and "d2t" not in state:
        state["d2t"] = head.d2t
    return state


def config_json(cfg: HeadConfig, meta: dict | None = None) -> dict:
    """config.json in the published layout of the head's kind (plus our `specscope` block)."""
    common = {
        "model_type": "llama", "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
        "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.num_kv_heads, "head_dim": cfg.head_dim,
        "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta, "rope_scaling": cfg.rope_scaling,
        "vocab_size": cfg.vocab_size, "hidden_act": "silu", "torch_dtype": "float16",
    }
    if cfg.kind == "eagle":
        out = {"architectures": ["LlamaForCausalLM"], **common, "num_hidden_layers": cfg.num_layers, "bias": cfg.fc_bias}
    elif cfg.kind == "eagle3":
        out = {"architectures": ["LlamaForCausalLMEagle3"], **common, "num_hidden_layers": 1,
               "draft_vocab_size": cfg.draft_vocab_size, "target_hidden_size": cfg.hidden_size,
               "eagle_config": {"eagle_aux_hidden_state_layer_ids": list(cfg.aux_layer_ids)}}
    else:
        out = {"architectures": ["SpecscopeMTPHeads"], "hidden_size": cfg.hidden_size, "vocab_size": cfg.vocab_size,
               "rms_norm_eps": cfg.rms_norm_eps, "num_mtp_heads": cfg.num_mtp, "torch_dtype": "float16"}
    out["specscope"] = {"kind": cfg.kind, "target": cfg.target, "draft_vocab_size": cfg.draft_vocab_size,
                        **(meta or {})}
    return out


def save_head(head, folder: str | os.PathLike, meta: dict | None = None, dtype=torch.float16) -> Path:
    """Write config.json + model.safetensors (floating tensors in `dtype`), atomically per file."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in head_state(head).items()}
    with atomic_open(folder / "model.safetensors", "wb", encoding=None) as fh:
        fh.write(save(state, metadata={"format": "pt"}))
    write_json_atomic(folder / "config.json", config_json(head.cfg, meta))
    return folder


# ---------------------------------------------------------------------------------------------
# Loading.


def _bad(path, what: str) -> SpecscopeError:
    return SpecscopeError(f"draft head '{path}': {what}")


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config dict, tensors) of a head folder, with one-line errors for anything malformed."""
    folder = Path(path)
    if not folder.is_dir():
        raise _bad(path, "not a folder; pass a head folder with config.json and model.safetensors "
                         "(e.g. one written by `specscope train-head`)")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(path, "no config.json in the folder") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise _bad(path, f"config.json is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise _bad(path, "config.json must hold a JSON object")
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise _bad(path, f"no weights file ({' or '.join(WEIGHT_FILES)})")
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(weights))
        else:
            tensors = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any parse failure is a malformed checkpoint
        raise _bad(path, f"cannot read {weights.name} ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise _bad(path, f"{weights.name} does not hold a flat dict of tensors")
    tensors = {k.removeprefix("model."): v for k, v in tensors.items() if not k.endswith(IGNORED_SUFFIXES)}
    return config, tensors


def detect_kind(config: dict, tensors: dict) -> str | None:
    ours = config.get("specscope", {})
    if isinstance(ours, dict) and ours.get("kind") in HEAD_KINDS:
        return ours["kind"]
    arch = " ".join(config.get("architectures") or [])
    if any(k.startswith("midlayer.") for k in tensors) or "Eagle3" in arch or "draft_vocab_size" in config:
        return "eagle3"
    if any(k.startswith("heads.") for k in tensors):
        return "mtp"
    if "fc.weight" in tensors and any(k.startswith("layers.") for k in tensors):
        return "eagle"
    return None


def _int(config: dict, key: str, path, default=None) -> int:
    value = config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _bad(path, f"config.json: '{key}' must be a positive integer (got {value!r})")
    return value


def head_config(config: dict, tensors: dict, kind: str, path) -> HeadConfig:
    """A HeadConfig from a (published or our) config.json."""
    H = _int(config, "hidden_size", path)
    ours = config.get("specscope") if isinstance(config.get("specscope"), dict) else {}
    if kind == "mtp":
        num = _int(config, "num_mtp_heads", path)
        return HeadConfig(kind="mtp", hidden_size=H, vocab_size=_int(config, "vocab_size", path),
                          rms_norm_eps=float(config.get("rms_norm_eps", 1e-5)), num_mtp=num,
                          draft_vocab_size=len(tensors["d2t"]) if "d2t" in tensors else 0, target=ours.get("target", ""))
    heads = _int(config, "num_attention_heads", path)
    cfg = dict(
        kind=kind, hidden_size=H, vocab_size=_int(config, "vocab_size", path),
        intermediate_size=_int(config, "intermediate_size", path), num_heads=heads,
        num_kv_heads=_int(config, "num_key_value_heads", path, heads),
        head_dim=_int(config, "head_dim", path, H // heads if H % heads == 0 else None),
        num_layers=_int(config, "num_hidden_layers", path, 1) if kind == "eagle" else 1,
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-5)), rope_theta=float(config.get("rope_theta", 10000.0)),
        rope_scaling=config.get("rope_scaling"), target=ours.get("target", ""),
    )
    if kind == "eagle":
        cfg["fc_bias"] = "fc.bias" in tensors
        cfg["draft_vocab_size"] = len(tensors["d2t"]) if "d2t" in tensors else 0
        cfg["attention_bias"] = "layers.0.self_attn.q_proj.bias" in tensors
    else:
        cfg["draft_vocab_size"] = _int(config, "draft_vocab_size", path, config.get("vocab_size"))
        if config.get("target_hidden_size", H) != H:
            raise _bad(path, f"target_hidden_size {config['target_hidden_size']} != hidden_size {H} is not supported")
        ids = (config.get("eagle_config") or {}).get("eagle_aux_hidden_state_layer_ids")
        if ids is not None:
            if not isinstance(ids, list) or len(ids) != 3 or not all(isinstance(i, int) for i in ids):
                raise _bad(path, "config.json: eagle_config.eagle_aux_hidden_state_layer_ids must be 3 integers")
            cfg["aux_layer_ids"] = tuple(ids)
        cfg["attention_bias"] = "midlayer.self_attn.q_proj.bias" in tensors
    try:
        return HeadConfig(**cfg)
    except Exception as err:  # noqa: BLE001
        raise _bad(path, f"config.json describes no valid head ({err})") from None


def check_target(cfg: HeadConfig, target_config, path) -> None:
    """One-line errors for a head built for another model."""
    t = target_config
    if cfg.hidden_size != t.hidden_size:
        raise _bad(path, f"hidden size {cfg.hidden_size} does not match the target's {t.hidden_size}; "
                         "this head was trained for another model (train one with `specscope train-head`)")
    if cfg.vocab_size != t.vocab_size:
        raise _bad(path, f"vocabulary of {cfg.vocab_size} tokens does not match the target's {t.vocab_size}; "
                         "this head was trained for another model (train one with `specscope train-head`)")
    if cfg.kind == "eagle3":
        if not cfg.aux_layer_ids:
            cfg.aux_layer_ids = default_aux_ids(t.num_layers)
        bad = [i for i in cfg.aux_layer_ids if not 0 <= i < t.num_layers]
        if bad:
            raise _bad(path, f"fuses target layers {list(cfg.aux_layer_ids)} but the target has {t.num_layers}")


def load_head(path: str | os.PathLike, target_config=None, kind: str | None = None, device="cpu", dtype=torch.float32):
    """Load a head folder (ours or a published EAGLE / EAGLE-3 one), checked against the target's config."""
    config, tensors = read_checkpoint(path)
    found = detect_kind(config, tensors)
    if found is None:
        raise _bad(path, "not a recognised EAGLE, EAGLE-3 or MTP head (no fc/midlayer/heads weights)")
    if kind is not None and found != kind:
        raise _bad(path, f"is an {found} head, not {kind}; use --method {found}")
    cfg = head_config(config, tensors, found, path)
    if target_config is not None:
        check_target(cfg, target_config, path)
    head = build_head(cfg)
    d2t = tensors.pop("d2t", None)
    if found == "eagle3":
        if d2t is None:
            d2t = torch.zeros(cfg.draft_vocab_size, dtype=torch.long)
        if "t2d" not in tensors:
            ids = torch.arange(len(d2t)) + d2t.long()
            tensors["t2d"] = torch.zeros(cfg.vocab_size, dtype=torch.bool).index_fill_(0, ids.clamp(0, cfg.vocab_size - 1), True)
        tensors["d2t"] = d2t
    elif d2t is not None:
        head.d2t = d2t.long()
    if found == "eagle":
        embed = tensors.pop("embed_tokens.weight", None)
        if embed is not None and tuple(embed.shape) != (cfg.vocab_size, cfg.hidden_size):
            raise _bad(path, f"embed_tokens.weight has shape {tuple(embed.shape)}, expected ({cfg.vocab_size}, {cfg.hidden_size})")
        tensors.pop("lm_head.weight", None)  # the target's own head is used
    expected = head.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise _bad(path, f"missing weights {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    if unexpected:
        raise _bad(path, f"unexpected weights {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise _bad(path, f"weight {name} has shape {tuple(value.shape)}, expected {tuple(expected[name].shape)} "
                             "(does config.json match the weights?)")
    if head.d2t is not None and found != "eagle3":
        ids = torch.arange(len(head.d2t)) + head.d2t
        if len(head.d2t) > cfg.vocab_size or int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab_size:
            raise _bad(path, "d2t maps draft ids outside the target's vocabulary")
    head.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    if found == "eagle3":
        ids = torch.arange(cfg.draft_vocab_size) + head.d2t
        if int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab_size:
            raise _bad(path, "d2t maps draft ids outside the target's vocabulary")
    head = head.to(device=device, dtype=dtype)
    if found != "eagle3" and head.d2t is not None:
        head.d2t = head.d2t.to(device)
    return head.eval()


def bundled_head(kind: str, target_config) -> Path | None:
    """The head shipped with specscope for this target, if any (matched by target name and shape)."""
    if not BUNDLED_HEADS.is_dir():
        return None
    for folder in sorted(BUNDLED_HEADS.iterdir()):
        cand = folder / kind / "config.json"
        if not cand.is_file():
            continue
        try:
            config = json.loads(cand.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        ours = config.get("specscope", {})
        if (ours.get("target") == target_config.name and config.get("hidden_size") == target_config.hidden_size
                and config.get("vocab_size") == target_config.vocab_size):
            return cand.parent
    return None


def random_head(kind: str, target_config, seed: int = 0, draft_vocab: int = 0, num_mtp: int = 3, **overrides):
    """A head with seeded random weights for `target_config` (tests, synthetic checkpoints)."""
    import math

    extra = {"num_mtp": num_mtp} if kind == "mtp" else {}
    if kind == "eagle3":
        extra["aux_layer_ids"] = default_aux_ids(target_config.num_layers)
    cfg = HeadConfig.for_target(kind, target_config, draft_vocab_size=draft_vocab, **extra, **overrides)
    head = build_head(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    if draft_vocab:
        ids = torch.randperm(cfg.vocab_size, generator=gen)[:draft_vocab].sort().values
        d2t = ids - torch.arange(draft_vocab)
        if kind == "eagle3":
            head.d2t.copy_(d2t)
            head.t2d.zero_()
            head.t2d[ids] = True
        else:
            head.d2t = d2t
    return head.eval()
