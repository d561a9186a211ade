"""Run settings: what one measured run (a cell) is, as frozen dataclasses with every default defined here.

    settings = RunSettings(workload="code-edit", batch_size=4, max_new_tokens=64,
                           proposer=ProposerSettings(method="ngram", k=5))
    settings.check(CLI_NAMES)        # one-line SpecscopeError naming the flag (or TOML_NAMES: the config key)

Built once — from the command line (`specscope/cli/run.py`) or from a sweep config
(`specscope/study/sweep/config.py`) — checked once, then handed whole to the study layer, the
engine backend and the proposers. Three parts:

- `RunSettings`       the run: model and where it runs, prompts, batch size, output length, sampling;
- `ProposerSettings`  what drafts: the method(s), k, the n-gram's range, the draft model, a head, a tree;
- `AdaptiveSettings`  present for `--k adaptive`: the cost model it decides under and its k cap.

`check` validates values (ranges, finiteness, consistency) and reports a problem with the name the
user wrote (`--k` on the command line, `k` in a TOML). Names that need a registry (a method, a
workload, a cost model) are checked where the registry lives (study layer). Nothing here imports
torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields

from specscope.errors import SpecscopeError

BASELINE = "none"  # plain decoding: the method every speedup divides by
ADAPTIVE = "adaptive"  # `--k adaptive`: k (and proposer) chosen per sequence and step
DEFAULT_WORKLOAD = "chat"
NGRAM_MIN, NGRAM_MAX = 3, 7  # the n-gram proposer matches n from NGRAM_MAX down to NGRAM_MIN
DEFAULT_DRAFT_MODEL = "self:16"  # the `draft` method's model: the target's first 16 layers (30 in the default model)
ADAPTIVE_COST_MODEL = "smollm2-135m-cpu"  # the cost model `--k adaptive` decides under when none is named
ADAPTIVE_K_CAP = 8  # most drafts per step under `--k adaptive`
MAX_K = 64  # most draft tokens per step (fixed k, k_max of a trace, nodes of a tree)

# How each checked field is written on the command line and in a sweep config.
CLI_NAMES = {
    "k": "--k", "batch_size": "--batch-size", "max_new_tokens": "--max-new-tokens", "num_prompts": "--num-prompts",
    "temperature": "--temperature", "top_p": "--top-p", "seed": "--seed", "ngram_min": "--ngram-min",
    "ngram_max": "--ngram-max", "threads": "--threads", "device": "--device", "quant": "--quant",
    "method": "--method", "draft_model": "--draft-model", "k_cap": "--k adaptive",
}
TOML_NAMES = {name: name for name in CLI_NAMES} | {"k_cap": "adaptive", "method": "methods"}


@dataclass(frozen=True)
class ProposerSettings:
    """What drafts. `method`: a proposer name, or several joined by commas under `--k adaptive`."""

    method: str = BASELINE
    k: int = 3  # draft tokens per step (the cap under adaptive is `AdaptiveSettings.k_cap`)
    ngram_min: int = NGRAM_MIN
    ngram_max: int = NGRAM_MAX
    draft_model: str = DEFAULT_DRAFT_MODEL  # `draft`: 'self:L' (the target's first L layers) or a model path
    head: str | None = None  # eagle / eagle3 / mtp: a head folder (None = the head shipped for the target)
    tree: str | None = None  # `DxB`, `6`, `21`, `dynamic:N`: draft a tree (tree_spec.py; proposers that support one); None = a chain of k

    @property
    def methods(self) -> list[str]:
        """The proposers: 'ngram,draft' -> ['ngram', 'draft']."""
        return [name.strip() for name in self.method.split(",")]


@dataclass(frozen=True)
class AdaptiveSettings:
    """`--k adaptive`: decide k (and the proposer) per sequence and step under a cost model."""

    cost_model: str = ADAPTIVE_COST_MODEL  # a preset name or a cost-model TOML path
    k_cap: int = ADAPTIVE_K_CAP


@dataclass(frozen=True)
class RunSettings:
    """One measured run: the target and where it runs, the prompts, the batch, sampling and what drafts."""

    model: str | None = None  # a GGUF file, a Hugging Face folder, or None: the embedded default
    device: str = "cpu"
    threads: int | None = None  # CPU threads for torch (None: torch's choice)
    quant: str = "auto"  # GGUF blocks with the CPU kernels when possible, gguf, or none (dequantise)
    workload: str = DEFAULT_WORKLOAD
    source: str | None = None  # None: the bundled prompts
    prompt_field: str | None = None
    fields: tuple[str, ...] = ()  # FIELD=COLUMN maps for a user's prompt file
    num_prompts: int | None = None  # None: all of the workload's prompts
    seed: int = 0  # the prompt subset and sampling
    chat: bool | None = None  # None: the model's chat template if it has one
    batch_size: int = 1
    max_new_tokens: int | None = None  # None: each prompt's workload limit
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    proposer: ProposerSettings = field(default_factory=ProposerSettings)
    adaptive: AdaptiveSettings | None = None

    @property
    def speculates(self) -> bool:
        return self.proposer.method != BASELINE

    @property
    def draft_budget(self) -> int:
        """Draft tokens a sequence may take per step: 0 for plain decoding, the cap under adaptive, else k
        (a tree's node count is the engine's business: `Engine.tree`)."""
        if not self.speculates:
            return 0
        return self.adaptive.k_cap if self.adaptive is not None else self.proposer.k

    def check(self, names: dict[str, str] = CLI_NAMES) -> "RunSettings":
        """Raise a one-line SpecscopeError for the first bad value, naming it as `names` spells it; returns self."""
        p = self.proposer

        def bad(key: str, message: str) -> SpecscopeError:
            return SpecscopeError(f"{names.get(key, key)} {message}")

        _int(self.batch_size, 1, None, "batch_size", bad)
        if self.max_new_tokens is not None:
            _int(self.max_new_tokens, 1, None, "max_new_tokens", bad)
        if self.num_prompts is not None:
            _int(self.num_prompts, 1, None, "num_prompts", bad)
        if self.threads is not None:
            _int(self.threads, 1, None, "threads", bad)
        _int(self.seed, 0, None, "seed", bad)
        if not isinstance(self.temperature, (int, float)) or not math.isfinite(self.temperature) or self.temperature < 0:
            raise bad("temperature", f"{self.temperature}: must be a finite number >= 0 (0 = greedy)")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise bad("top_p", f"{self.top_p}: must be in (0, 1]")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise bad("device", f"'{self.device}' is not supported; use cpu or cuda")
        if self.quant not in ("auto", "gguf", "none"):
            raise bad("quant", f"'{self.quant}' is not one of auto, gguf, none")
        _int(p.k, 0, MAX_K, "k", bad)
        _int(p.ngram_min, 1, None, "ngram_min", bad)
        _int(p.ngram_max, 1, None, "ngram_max", bad)
        if p.ngram_min > p.ngram_max:
            raise bad("ngram_min", f"{p.ngram_min} is larger than {names.get('ngram_max', 'ngram_max')} {p.ngram_max}")
        methods = p.methods
        if any(not m for m in methods):
            raise bad("method", f"'{p.method}' has an empty name; write e.g. ngram,draft")
        if len(set(methods)) != len(methods):
            raise bad("method", f"'{p.method}' names a proposer twice; list each once, e.g. ngram,draft")
        if self.adaptive is None and len(methods) > 1:
            raise bad("method", f"{p.method}: several proposers need --k adaptive (it picks one per step)")
        if self.adaptive is not None:
            if p.method == BASELINE:
                raise bad("method", "none: --k adaptive needs a proposer, e.g. ngram or ngram,draft")
            if BASELINE in methods:
                raise bad("method", f"'{p.method}': 'none' is plain decoding and takes no other proposer; "
                          "--k adaptive already decodes plainly where drafting does not pay")
            _int(self.adaptive.k_cap, 1, MAX_K, "k_cap", bad)
        return self

    def as_dict(self) -> dict:
        """Plain JSON-able fields (nested parts as dicts)."""
        return asdict(self)

    @classmethod
    def build(cls, *, adaptive: AdaptiveSettings | None = None, **flat) -> "RunSettings":
        """Settings from flat keywords as the command line and a sweep config spell them: the proposer's fields
        (method, k, ngram_min, ngram_max, draft_model, head, tree) go into `proposer`, the rest into the run.
        A None proposer value keeps its default (an option the user did not give)."""
        names = {f.name for f in fields(ProposerSettings)}
        proposer = {k: flat.pop(k) for k in list(flat) if k in names}
        proposer = {k: v for k, v in proposer.items() if v is not None}
        return cls(**flat, proposer=ProposerSettings(**proposer), adaptive=adaptive)

    def replace(self, **flat) -> "RunSettings":
        """A copy with these flat fields changed (proposer fields included), as `build` takes them."""
        names = {f.name for f in fields(ProposerSettings)}
        proposer = {k: flat.pop(k) for k in list(flat) if k in names}
        return dataclasses.replace(self, **flat, proposer=dataclasses.replace(self.proposer, **proposer))


def _int(value, low: int, high: int | None, key: str, bad) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f">= {low}"
        raise bad(key, f"{value}: must be an integer {limit}")
