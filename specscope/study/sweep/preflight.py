"""What a sweep checks before any work — with `--dry-run` too: everything a real run would reject later.

`config.py` checks what the config alone decides (keys, ranges, names, cost models: no model needed). These
checks need the target's description or the machine, so a sweep that would fail after its first cell (or
after all of them) fails here instead, before anything runs:

- the target model exists and describes itself (its metadata only: no weights are loaded);
- `device`: CUDA is there when the config asks for it;
- `draft_model`: a self-draft `self:L` has 1 <= L < the target's layers; a draft model path exists;
- `methods` (and the [trace] / [profile] proposers) with a head (eagle, eagle3, mtp): a head ships for the target;
- `num_prompts` / `trace.num_prompts`: each workload has that many prompts.

Every problem is one line naming the config file and the key, as `config.py`'s errors do.
"""

from __future__ import annotations

from specscope.errors import SpecscopeError
from specscope.settings import BASELINE
from specscope.study.sweep.config import PROFILE, RUN, TRACE, SweepConfig, run_settings

HEAD_METHODS = ("eagle", "eagle3", "mtp")  # proposers that need a trained head (none can be named in a config)
SELF_DRAFT = "self:"


def preflight(config: SweepConfig) -> None:
    """Raise a one-line SpecscopeError for the first problem a run of `config` would meet."""
    _device(config)
    target = _target(config)
    _drafts(config, target)
    _heads(config, target)
    _prompts(config)


def _error(config: SweepConfig, key: str, message: str) -> SpecscopeError:
    return SpecscopeError(f"{config.path}: {key}: {message}")


def _device(config: SweepConfig) -> None:
    device = config.engine["device"]
    if not device.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.split(":", 1)[1]) if ":" in device and device.split(":", 1)[1].isdigit() else 0
    if count == 0:
        raise _error(config, "device", f"\"{device}\": no CUDA device is available to torch here; use device = \"cpu\"")
    if index >= count:
        raise _error(config, "device", f"\"{device}\": this machine has {count} CUDA device(s) (cuda:0 to "
                     f"cuda:{count - 1})")


def _target(config: SweepConfig):
    """The target's ModelConfig (metadata only)."""
    from specscope.engine.loading import read_model_config

    try:
        return read_model_config(config.engine["model"])
    except SpecscopeError as err:
        raise _error(config, "model", str(err)) from None


def _drafts(config: SweepConfig, target) -> None:
    from specscope.engine.loading import resolve_model_path

    specs = sorted({s.settings["draft_model"] for s in config.steps if s.settings.get("draft_model")})
    for spec in specs:
        if spec.startswith(SELF_DRAFT):
            layers = spec[len(SELF_DRAFT):]
            if not (layers.isdigit() and 1 <= int(layers) < target.num_layers):
                raise _error(config, "draft_model", f"\"{spec}\": a self-draft takes L of the target's "
                             f"{target.num_layers} layers, 1 <= L < {target.num_layers}; e.g. draft_model = "
                             f"\"self:{max(1, target.num_layers // 2)}\"")
        else:
            try:
                resolve_model_path(spec)
            except SpecscopeError as err:
                raise _error(config, "draft_model", str(err)) from None


def _heads(config: SweepConfig, target) -> None:
    from specscope.engine.heads.checkpoint import bundled_head

    used = set()
    for step in config.steps:
        s = step.settings
        names = s["method"].split(",") if step.kind == RUN else s["proposers"] if step.kind in (TRACE, PROFILE) else []
        used |= {(name, _key(step.kind)) for name in names if name in HEAD_METHODS}
    for kind, key in sorted(used):
        if bundled_head(kind, target) is None:
            raise _error(config, key, f"'{kind}': no {kind} head ships for model '{target.name or 'this model'}' "
                         f"(a sweep uses the shipped head); train one with `specscope train-head --kind {kind}` "
                         "and measure it with `specscope run --head DIR`, or drop it from the sweep")


def _key(kind: str) -> str:
    return {RUN: "methods", TRACE: "trace.proposers", PROFILE: "profile.proposers"}[kind]


def _prompts(config: SweepConfig) -> None:
    from specscope.study.prompts import run_prompts

    available: dict[tuple, int] = {}
    for step in config.steps:
        if step.kind not in (RUN, TRACE):
            continue
        settings = run_settings({**step.settings, "method": BASELINE, "k": 0})
        wanted = settings.num_prompts
        where = (settings.workload, settings.seed)
        if where not in available:
            try:
                available[where] = len(run_prompts(settings.replace(num_prompts=None)))
            except SpecscopeError as err:
                raise _error(config, "workloads", str(err)) from None
        if wanted is not None and wanted > available[where]:
            key = "num_prompts" if step.kind == RUN else "trace.num_prompts"
            raise _error(config, key, f"{wanted} for workload '{settings.workload}' ({step.name}): only "
                         f"{available[where]} prompt(s) are available; ask for at most {available[where]}")
