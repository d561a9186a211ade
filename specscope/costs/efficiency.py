"""The analytic model's named constants: how much of a device's peak rates a real step reaches.

They are calibrated, not assumed: `specscope/data/efficiency.toml` holds one set per hardware kind
(`gpu`: fitted on the published Llama-3.1-8B/H100 preset; `cpu`: on this project's reference CPU's
profile of the default model), each with its provenance; `specscope/costs/calibrate.py` re-derives
them (`benchmarks/bench_analytic.py` prints stored against re-derived). A hardware TOML may override
any of them in its own `[efficiency]` table (e.g. after calibrating on a profile of that machine).

Keys (efficiency.toml and a hardware file's [efficiency]):
    weight_bandwidth     share of peak bandwidth reached reading weights
    kv_bandwidth         share of peak bandwidth reached reading and writing the KV cache
    compute              share of peak dense FLOP/s reached by the matmuls
    overlap              0: memory and compute times add; 1: the smaller hides under the larger
    layer_latency_us     fixed microseconds per decoder layer per pass (launches, host work)
    step_overhead_us     per-step overhead outside the forward passes (scheduling, sampling)
    ngram_fraction       n-gram draft time as a fraction of the verify step (host-side lookup)
    memory_utilization   share of device memory the engine may use (weights + KV + activations)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from specscope.costs.hardware import HardwareSpec
from specscope.errors import SpecscopeError

EFFICIENCY_TOML = Path(__file__).resolve().parents[1] / "data" / "efficiency.toml"
MICRO = 1e-6


@dataclass(frozen=True)
class Efficiencies:
    weight_bandwidth: float
    kv_bandwidth: float
    compute: float
    overlap: float
    layer_latency_s: float
    step_overhead_s: float
    ngram_fraction: float
    memory_utilization: float
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_toml(self) -> dict[str, float]:
        """The numbers in efficiency.toml's keys and units."""
        out = {}
        for f in fields(self):
            if f.name == "provenance":
                continue
            value = getattr(self, f.name)
            out[f.name[:-2] + "_us" if f.name.endswith("_s") else f.name] = value / MICRO if f.name.endswith("_s") else value
        return out


KEYS = [f.name[:-2] + "_us" if f.name.endswith("_s") else f.name for f in fields(Efficiencies) if f.name != "provenance"]


def efficiencies_from_table(table: dict, where: str) -> Efficiencies:
    """An `Efficiencies` from a table in efficiency.toml's keys and units."""
    missing = [k for k in KEYS if k not in table]
    if missing:
        raise SpecscopeError(f"{where}: missing {', '.join(missing)}")
    values = {}
    for f in fields(Efficiencies):
        if f.name == "provenance":
            continue
        key = f.name[:-2] + "_us" if f.name.endswith("_s") else f.name
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SpecscopeError(f"{where}: {key} = {value!r} must be a number >= 0")
        values[f.name] = float(value) * (MICRO if key.endswith("_us") else 1.0)
    for key in ("weight_bandwidth", "kv_bandwidth", "compute", "memory_utilization"):
        if values[key] <= 0:
            raise SpecscopeError(f"{where}: {key} = {values[key]!r} must be > 0")
    if values["overlap"] > 1 or values["memory_utilization"] > 1:
        raise SpecscopeError(f"{where}: overlap and memory_utilization are shares between 0 and 1")
    provenance = table.get("provenance", {})
    return Efficiencies(**values, provenance=provenance if isinstance(provenance, dict) else {"note": str(provenance)})


def efficiencies_for(hardware: HardwareSpec, path: Path = EFFICIENCY_TOML) -> Efficiencies:
    """The calibrated constants of the hardware's kind, with the hardware file's own overrides applied."""
    from specscope.formats.hardware import read_efficiency_table

    tables = read_efficiency_table(path)
    if hardware.kind not in tables:
        raise SpecscopeError(f"{path}: no calibrated efficiencies for hardware kind '{hardware.kind}'")
    base = dict(tables[hardware.kind])
    unknown = sorted(set(hardware.efficiency) - set(KEYS))
    if unknown:
        raise SpecscopeError(f"{hardware.source or hardware.name}: [efficiency] {', '.join(unknown)} unknown; "
                             f"keys: {', '.join(KEYS)}")
    if hardware.efficiency:
        base.update(hardware.efficiency)
        base["provenance"] = {**base.get("provenance", {}),
                              "overridden": f"{', '.join(sorted(hardware.efficiency))} from {hardware.source or hardware.name}"}
    return efficiencies_from_table(base, f"efficiencies for {hardware.kind} ({path.name})")
