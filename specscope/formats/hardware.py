"""The hardware TOML file (`specscope/data/hardware/*.toml`, `specscope probe -o`): reading and writing.

    name = "h100-sxm"
    description = "NVIDIA H100 SXM5 80 GB"
    kind = "gpu"                  # gpu | cpu: which calibrated efficiencies apply (data/efficiency.toml)
    memory_gb = 80                # per device, GB = 1e9 bytes
    bandwidth_gbs = 3350          # memory bandwidth per device, GB/s

    [flops_tflops]                # dense (no sparsity) FLOP rates per precision, TFLOPS
    bf16 = 989.4
    fp8 = 1978.9

    [interconnect]                # optional: what tensor parallelism all-reduces over
    name = "NVLink 4"
    bandwidth_gbs = 450           # per device, each way
    latency_us = 8                # per all-reduce, on top of its bytes
    devices = 8                   # devices one domain joins (--tp stays inside it)

    [efficiency]                  # optional: overrides of data/efficiency.toml for this device
    [provenance]                  # where each number comes from (free-form strings)

Every number must be finite and positive (interconnect figures may be 0: none). A bad file is one
line naming the file and the key; nothing is written on error.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from specscope.errors import SpecscopeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

GB, TERA, MICRO = 1e9, 1e12, 1e-6


def read_hardware_fields(path: Path) -> dict:
    """Parse and validate a hardware TOML file: the fields of `specscope.costs.hardware.HardwareSpec`, in SI units
    (bytes, bytes/s, FLOP/s, seconds); the spec checks their consistency itself."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecscopeError(f"{path}: not valid TOML ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecscopeError(f"{path}: cannot read ({err})") from None
    flops = _table(data, "flops_tflops", path, required=True)
    link = _table(data, "interconnect", path)
    efficiency = _table(data, "efficiency", path)
    provenance = _table(data, "provenance", path)
    return dict(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        kind=str(data.get("kind", "gpu")),
        memory_bytes=_number(data, "memory_gb", path) * GB,
        bandwidth=_number(data, "bandwidth_gbs", path) * GB,
        flops={str(k): _number(flops, k, path, "flops_tflops") * TERA for k in flops},
        link_bandwidth=_number(link, "bandwidth_gbs", path, "interconnect", default=0.0, zero_ok=True) * GB,
        link_latency_s=_number(link, "latency_us", path, "interconnect", default=0.0, zero_ok=True) * MICRO,
        max_devices=int(_number(link, "devices", path, "interconnect", default=1)),
        efficiency={str(k): _number(efficiency, k, path, "efficiency", zero_ok=True) for k in efficiency},
        provenance=provenance,
        source=path,
    )


def _table(data: dict, key: str, path: Path, required: bool = False) -> dict:
    if key not in data:
        if required:
            raise SpecscopeError(f"{path}: missing table [{key}] (dense FLOP rates per precision, e.g. bf16 = 989.4)")
        return {}
    if not isinstance(data[key], dict):
        raise SpecscopeError(f"{path}: [{key}] must be a table")
    return data[key]


def _number(table: dict, key: str, path: Path, section: str = "", default: float | None = None,
            zero_ok: bool = False) -> float:
    where = f"{path}: {f'[{section}] ' if section else ''}{key}"
    if key not in table:
        if default is not None:
            return default
        raise SpecscopeError(f"{where} is missing")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecscopeError(f"{where} = {value!r} is not a finite number")
    if value < 0 or (value == 0 and not zero_ok):
        raise SpecscopeError(f"{where} = {value!r} must be {'>= 0' if zero_ok else '> 0'}; "
                             "give the device's figure from its datasheet (or measure it: specscope probe)")
    return float(value)


def hardware_to_toml_dict(spec) -> dict:
    """The TOML tables of a `HardwareSpec` (the units of the file: GB, GB/s, TFLOPS, microseconds)."""
    out = {
        "name": spec.name,
        "description": spec.description,
        "kind": spec.kind,
        "memory_gb": spec.memory_bytes / GB,
        "bandwidth_gbs": spec.bandwidth / GB,
        "flops_tflops": {k: v / TERA for k, v in spec.flops.items()},
    }
    if spec.link_bandwidth > 0 or spec.max_devices > 1:
        out["interconnect"] = {"bandwidth_gbs": spec.link_bandwidth / GB, "latency_us": spec.link_latency_s / MICRO,
                               "devices": spec.max_devices}
    if spec.efficiency:
        out["efficiency"] = dict(spec.efficiency)
    out["provenance"] = dict(spec.provenance)
    return out


def write_hardware(path: str | os.PathLike, spec, header_comment: str = "") -> None:
    """Write a `HardwareSpec` as a hardware TOML file, atomically."""
    import tomli_w

    from specscope.formats.files import write_text_atomic

    text = tomli_w.dumps(hardware_to_toml_dict(spec))
    if header_comment:
        text = "".join(f"# {line}\n" for line in header_comment.splitlines()) + text
    write_text_atomic(path, text)


def read_efficiency_table(path: Path) -> dict[str, dict]:
    """`specscope/data/efficiency.toml`: hardware kind -> its calibrated constants (and their provenance)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise SpecscopeError(f"{path}: cannot read the calibrated efficiencies ({err})") from None
    return {kind: table for kind, table in data.items() if isinstance(table, dict)}
