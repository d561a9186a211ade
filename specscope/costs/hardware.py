"""Hardware specs: what the analytic cost model needs to know about one device, and the shipped ones.

A `HardwareSpec` is one device (a GPU, or a CPU socket as `specscope probe` measures it): memory,
memory bandwidth, dense FLOP rates per precision, and the interconnect tensor parallelism uses.
Shipped specs are data files in `specscope/data/hardware/*.toml`, each with its datasheet in
`[provenance]`; a user's own file (or `specscope probe -o`) has the same schema
(`specscope/formats/hardware.py`). Look one up with `load_hardware(name or path)`.

Units inside the code are SI (bytes, bytes/s, FLOP/s, seconds); the TOML files use GB, GB/s,
TFLOPS and microseconds, as datasheets do.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specscope.errors import SpecscopeError, unknown_name

HARDWARE_DIR = Path(__file__).resolve().parents[1] / "data" / "hardware"
KINDS = ("gpu", "cpu")
LOCAL = "local"  # `--hardware local`: probe this machine now (specscope probe)


@dataclass(frozen=True)
class HardwareSpec:
    """One device. `flops`: precision (bf16, fp16, fp8, fp32) -> dense FLOP/s (no sparsity)."""

    name: str
    description: str
    kind: str  # "gpu" or "cpu": picks the efficiencies in data/efficiency.toml
    memory_bytes: float  # per device
    bandwidth: float  # memory bandwidth per device, bytes/s
    flops: dict[str, float]
    link_bandwidth: float = 0.0  # interconnect bytes/s per device, each way (0: no tensor parallelism)
    link_latency_s: float = 0.0  # seconds per all-reduce on top of its bytes
    max_devices: int = 1  # devices one interconnect domain joins (tensor parallelism stays inside it)
    efficiency: dict[str, float] = field(default_factory=dict)  # overrides of data/efficiency.toml
    provenance: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def __post_init__(self):
        where = f"hardware '{self.name}'"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind = {self.kind!r}; use one of {', '.join(KINDS)}")
        for label, value in (("memory", self.memory_bytes), ("bandwidth", self.bandwidth)):
            _positive(where, label, value)
        if not self.flops:
            raise ValueError(f"{where}: no FLOP rates; give at least one precision, e.g. bf16 = 989.4 (TFLOPS)")
        for precision, value in self.flops.items():
            _positive(where, f"flops {precision}", value)
        for label, value in (("interconnect bandwidth", self.link_bandwidth), ("interconnect latency", self.link_latency_s)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{where}: {label} = {value!r} must be a finite number >= 0")
        if not (isinstance(self.max_devices, int) and self.max_devices >= 1):
            raise ValueError(f"{where}: interconnect devices = {self.max_devices!r} must be an integer >= 1")

    def peak_flops(self, precision: str) -> float:
        """Dense FLOP/s at `precision`; a one-line error naming the precisions this device has."""
        if precision not in self.flops:
            raise SpecscopeError(
                f"hardware '{self.name}' has no {precision} FLOP rate (it has: {', '.join(sorted(self.flops))}); "
                "pick a --dtype it computes in"
            )
        return self.flops[precision]


def _positive(where: str, label: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {label} = {value!r} must be a positive number")


def available_hardware() -> list[str]:
    """Names of the shipped specs (plus `local`, which probes this machine)."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.toml"))


def read_hardware(path: Path) -> HardwareSpec:
    """The spec in a hardware TOML file (`specscope/formats/hardware.py`), one-line errors naming the file."""
    from specscope.formats.hardware import read_hardware_fields

    try:
        return HardwareSpec(**read_hardware_fields(path))
    except ValueError as err:
        raise SpecscopeError(f"{path}: {err}") from None


def load_hardware(name_or_path: str | os.PathLike) -> HardwareSpec:
    """A shipped spec by name, or a hardware TOML by path (`local` is the CLI's: it runs the probe)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise SpecscopeError(f"hardware file '{path}' does not exist")
        return read_hardware(path)
    shipped = HARDWARE_DIR / f"{text.lower()}.toml"
    if not shipped.is_file():
        err = unknown_name("hardware", text, available_hardware() + [LOCAL])
        raise SpecscopeError(f"{err} (or pass the path of a hardware .toml file, e.g. from `specscope probe -o`)")
    return read_hardware(shipped)
