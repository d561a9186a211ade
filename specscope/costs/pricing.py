"""Price a model on hardware you may not have: shape x hardware spec x calibrated efficiencies -> a cost model.

    from specscope.costs.pricing import analytic_cost_model
    built = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4)   # -> Priced(model, memory, drafts)
    built.model.target(64, 64 * 4096)                              # seconds of a 64-token step

Tensor parallelism (`tp` devices, Megatron-style): each device holds and reads 1/tp of every weight
matrix and the KV heads of its share of attention heads (KV heads are replicated when tp exceeds
them: tp must divide the attention heads, and divide or be a multiple of the KV heads); each layer
all-reduces its attention and its MLP output (2 all-reduces per layer, Shoeybi et al., Megatron-LM,
arXiv:1909.08053), a ring moving 2 (tp - 1) / tp x hidden x activation bytes per token over the
interconnect, plus the interconnect's latency per all-reduce.

Drafts (`--draft`): each proposer name of the traces gets a shape — a draft model, an EAGLE /
EAGLE-3 / MTP head of the target (`specscope/costs/shapes.py`) — priced by the same form with
`passes` = `draft_k` dependent passes (a chain drafter runs one per draft token), or `ngram`,
a host-side lookup priced as a fraction of the verify step (`ngram_fraction`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specscope.costs.analytic import RooflineCost
from specscope.costs.efficiency import Efficiencies, efficiencies_for
from specscope.costs.hardware import HardwareSpec
from specscope.costs.memory import MemoryPlan, activation_bytes
from specscope.costs.model import CostModel, DraftCost, VerifyFraction
from specscope.costs.shapes import (
    EAGLE,
    EAGLE3,
    GGUF,
    HEAD_KINDS,
    MTP,
    PRECISIONS,
    ModelShape,
    Precision,
    default_head,
    load_shape,
    shipped_shape,
)
from specscope.errors import SpecscopeError, unknown_name
from specscope.ngram import NAME

NGRAM = NAME  # the n-gram: a fraction of the verify step
DRAFT = "draft"  # the proposer name a draft model has in the engine's traces
DEFAULT_DRAFT_K = 3  # dependent passes per draft step of a chain drafter (the middle of fixed-1/3/5)
ALLREDUCES_PER_LAYER = 2


@dataclass(frozen=True)
class Priced:
    """An analytic cost model with what it was built from."""

    model: CostModel
    memory: MemoryPlan
    drafts: dict[str, ModelShape | None]  # proposer -> shape (None: n-gram)
    notes: list[str] = field(default_factory=list)


def default_precision(shape: ModelShape, hardware: HardwareSpec) -> Precision:
    """bf16 on GPUs; on a CPU what specscope's engine runs: the GGUF as stored, or float32."""
    if hardware.kind == "gpu":
        return PRECISIONS["bf16"]
    return PRECISIONS[GGUF] if shape.weight_bits else PRECISIONS["f32"]


def precision_named(name: str) -> Precision:
    if name not in PRECISIONS:
        raise unknown_name("dtype", name, PRECISIONS)
    return PRECISIONS[name]


def tp_heads(shape: ModelShape, tp: int, limit: int = 64) -> tuple[int, int]:
    """(attention heads, KV heads) per device under tensor parallelism `tp`; one-line error when tp does not split
    them, listing the tp values up to `limit` that do."""
    if tp < 1:
        raise SpecscopeError(f"--tp {tp}: the number of tensor-parallel devices must be >= 1")
    heads, kv = shape.num_heads, shape.num_kv_heads
    if heads % tp or (kv % tp and tp % kv):
        fits = [t for t in range(1, heads + 1) if heads % t == 0 and (kv % t == 0 or t % kv == 0) and t <= limit]
        raise SpecscopeError(
            f"--tp {tp} does not divide {shape.name}'s {heads} attention heads and {kv} KV heads; "
            f"use --tp {', '.join(map(str, fits))}"
        )
    return heads // tp, max(kv // tp, 1)


def check_interconnect(hardware: HardwareSpec, tp: int) -> None:
    if tp == 1:
        return
    if hardware.link_bandwidth <= 0:
        raise SpecscopeError(f"--tp {tp}: hardware '{hardware.name}' has no interconnect in its spec; add an "
                             "[interconnect] table (bandwidth_gbs, latency_us, devices) or use --tp 1")
    if tp > hardware.max_devices:
        raise SpecscopeError(f"--tp {tp}: hardware '{hardware.name}' joins at most {hardware.max_devices} devices "
                             f"over its interconnect; use --tp {hardware.max_devices} or fewer")


def roofline(shape: ModelShape, hardware: HardwareSpec, precision: Precision, eff: Efficiencies, tp: int = 1,
             passes: float = 1.0) -> RooflineCost:
    """The roofline form of `shape` on `tp` devices of `hardware` (module docstring)."""
    heads, kv_heads = tp_heads(shape, tp)
    ring = 2.0 * (tp - 1) / tp
    allreduces = ALLREDUCES_PER_LAYER * shape.num_layers if tp > 1 else 0
    return RooflineCost(
        weight_bytes=shape.read_bytes(precision) / tp,
        kv_bytes_per_token=2.0 * shape.num_layers * kv_heads * shape.head_dim * precision.kv_bytes,
        flops_per_token=shape.flops_per_token() / tp,
        attention_flops_per_kv=4.0 * shape.num_layers * heads * shape.head_dim,
        bandwidth=hardware.bandwidth,
        peak_flops=hardware.peak_flops(precision.compute),
        weight_bandwidth_efficiency=eff.weight_bandwidth,
        kv_bandwidth_efficiency=eff.kv_bandwidth,
        compute_efficiency=eff.compute,
        overlap=eff.overlap,
        fixed_s=shape.num_layers * eff.layer_latency_s + allreduces * hardware.link_latency_s,
        allreduce_bytes_per_token=allreduces * ring * shape.hidden_size * precision.act_bytes,
        link_bandwidth=hardware.link_bandwidth if tp > 1 else 0.0,
        passes=float(passes),
    )


def resolve_drafts(values: list[str] | None, target: ModelShape) -> dict[str, ModelShape | None]:
    """`--draft` values -> proposer name -> draft shape (None: n-gram).

    A value is `PROPOSER=WHAT` or just `WHAT`; WHAT is `ngram`, a head kind of the target (`eagle`,
    `eagle3`, `mtp`), `draft` (the target's usual draft model) or a model name / config / GGUF path.
    A bare head kind or `ngram` names its proposer after itself; a bare model is proposer `draft`.
    Default: ngram, eagle, eagle3, mtp, and draft when the target has a usual draft model.
    """
    if not values:
        values = [NGRAM, EAGLE, EAGLE3, MTP] + ([DRAFT] if target.draft else [])
    out: dict[str, ModelShape | None] = {}
    for value in values:
        name, sep, what = value.partition("=")
        if not sep:
            name, what = (value if value in (NGRAM, DRAFT, *HEAD_KINDS) else DRAFT), value
        name, what = name.strip(), what.strip()
        if not name or not what:
            raise SpecscopeError(f"--draft '{value}': write PROPOSER=DRAFT (e.g. draft=llama-3.2-1b, eagle=eagle3) "
                                 "or one of ngram, eagle, eagle3, mtp, draft, or a model name")
        if name in out:
            raise SpecscopeError(f"--draft: proposer '{name}' is given twice")
        out[name] = _draft_shape(what, target)
    return out


def _draft_shape(what: str, target: ModelShape) -> ModelShape | None:
    if what == NGRAM:
        return None
    if what in HEAD_KINDS:
        return default_head(target, what)
    if what == DRAFT:
        if not target.draft:
            raise SpecscopeError(f"--draft draft: {target.name} has no usual draft model in specscope/data/models.toml; "
                                 "name one, e.g. --draft draft=llama-3.2-1b")
        return shipped_shape(target.draft)
    return load_shape(what)


def _draft_tp(shape: ModelShape, tp: int) -> int:
    """Drafts run on the target's devices: split like it when their heads allow, else replicated (tp 1)."""
    try:
        tp_heads(shape, tp)
        return tp
    except SpecscopeError:
        return 1


def memory_plan(target: ModelShape, drafts: dict[str, ModelShape | None], hardware: HardwareSpec,
                precision: Precision, tp: int, eff: Efficiencies) -> MemoryPlan:
    """Per-device memory of the target plus a draft: a deployment runs one drafter, so the largest draft
    weights and the largest draft KV per token are reserved (conservative when they are different drafts)."""
    _, kv_heads = tp_heads(target, tp)
    weights = target.held_bytes(precision) / tp
    kv = 2.0 * target.num_layers * kv_heads * target.head_dim * precision.kv_bytes
    what = f"{target.name} {precision.name} on {tp} x {hardware.name}"
    neural = [s for s in drafts.values() if s is not None]
    if neural:
        def draft_weights(s):
            return s.held_bytes(precision) / _draft_tp(s, tp)

        def draft_kv(s):
            return 2.0 * s.num_layers * tp_heads(s, _draft_tp(s, tp))[1] * s.head_dim * precision.kv_bytes

        heaviest = max(neural, key=draft_weights)
        weights += draft_weights(heaviest)
        kv += max(draft_kv(s) for s in neural)
        what += f" + draft {heaviest.name}"
    acts = activation_bytes(target.hidden_size, target.num_heads, target.num_kv_heads, target.head_dim,
                            target.intermediate_size, target.vocab_size, tp, precision.act_bytes)
    return MemoryPlan(what, hardware.memory_bytes * eff.memory_utilization, hardware.memory_bytes,
                      eff.memory_utilization, weights, acts, kv)


def analytic_cost_model(target: ModelShape | str, hardware: HardwareSpec | str, tp: int = 1,
                        precision: Precision | str | None = None, drafts: list[str] | None = None,
                        draft_k: int = DEFAULT_DRAFT_K, name: str = "", eff: Efficiencies | None = None,
                        batch: int | None = None, context: int | None = None) -> Priced:
    """Build the analytic cost model (module docstring); raises one line if it does not fit in memory."""
    from specscope.costs.hardware import load_hardware

    target = load_shape(target) if isinstance(target, str) else target
    hardware = load_hardware(hardware) if isinstance(hardware, str) else hardware
    precision = (default_precision(target, hardware) if precision is None else
                 precision_named(precision) if isinstance(precision, str) else precision)
    if draft_k < 1:
        raise SpecscopeError(f"--draft-k {draft_k}: draft tokens per step must be >= 1")
    eff = eff or efficiencies_for(hardware)
    tp_heads(target, tp, hardware.max_devices)
    check_interconnect(hardware, tp)
    shapes = resolve_drafts(drafts, target)
    plan = memory_plan(target, shapes, hardware, precision, tp, eff)
    plan.check(batch, context)
    notes = []
    forms: dict[str, DraftCost] = {}
    for proposer, shape in shapes.items():
        if shape is None:
            forms[proposer] = VerifyFraction(eff.ngram_fraction)
            continue
        dtp = _draft_tp(shape, tp)
        if dtp != tp:
            notes.append(f"draft '{proposer}' ({shape.name}): its heads do not split over {tp} devices; priced "
                         "replicated on each (tp 1)")
        if shape.kind == "model" and shape.vocab_size != target.vocab_size:
            notes.append(f"draft '{proposer}' ({shape.name}) has a {shape.vocab_size}-token vocabulary, the target "
                         f"{target.vocab_size}: speculative decoding needs a shared tokenizer")
        forms[proposer] = roofline(shape, hardware, precision, eff, dtp, passes=draft_k)
    model = CostModel(
        name=name or f"{target.name}-{hardware.name}-tp{tp}",
        target=roofline(target, hardware, precision, eff, tp),
        overhead=eff.step_overhead_s,
        drafts=forms,
        description=f"analytic roofline: {target.name} ({precision.name}) on {tp} x {hardware.name}",
        provenance=_provenance(target, hardware, precision, tp, eff, shapes, draft_k, plan),
        max_kv_tokens=plan.max_kv_tokens,
    )
    return Priced(model, plan, shapes, notes)


def _provenance(target, hardware, precision, tp, eff, shapes, draft_k, plan) -> dict:
    return {
        "source": "specscope cost-model: analytic roofline (specscope/costs/analytic.py) from a model shape, a "
                  "hardware spec and calibrated efficiencies",
        "analytic": True,
        "model": target.name,
        "model_source": target.source,
        "hardware": hardware.name,
        "hardware_description": hardware.description,
        "hardware_source": str(hardware.provenance.get("source", hardware.source or "")),
        "dtype": precision.name,
        "dtype_note": precision.note,
        "tp": tp,
        "draft_k": draft_k,
        "drafts": {p: ("ngram (fraction of the verify step)" if s is None else s.describe()) for p, s in shapes.items()},
        "efficiencies": {**eff.as_toml(), **{f"provenance_{k}": str(v) for k, v in eff.provenance.items()}},
        "memory": plan.as_dict(),
    }
