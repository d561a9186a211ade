"""Read a study folder into tables: the one place that knows the file formats' field names.

A study folder (what `specscope sweep` and `specscope demo` write, and what `specscope report DIR`
reads) looks like this; every part is optional:

```
DIR/
  runs/<cell>/summary.json     one measured cell (workload x method x k x batch size), as
                               `specscope run -o runs/<cell>` writes it: settings (model, method,
                               proposer, k, batch_size, workload, threads, device, temperature,
                               partial) and results (generated_tokens, wall_seconds,
                               throughput_tok_s, mean_acc_len, acceptance_rate,
                               time_breakdown_s {draft, verify, sample, overhead}, peak_rss_mb;
                               optional: tree (a tree cell), repeats and
                               throughput_rel_spread (see `read_summary`))
                               (cells `specscope bench` wrote, "command": "bench", are server cells:
                               `analysis/servers.py` reads them into `Study.servers`)
  runs/<cell>/requests.jsonl   one line per request: id, workload, output_token_ids,
                               steps {proposed: [...], accepted: [...]}, bleu4_prompt_overlap,
                               latency_s, ttft_s, error (failed requests)
  traces/*.jsonl               per-position acceptance traces, native or SpecDecode-Bench (parsed
                               and validated by `specscope.traces.read_trace`)
  simulation.csv               `specscope simulate` output: trace, proposers, policy, batch_size,
                               speedup, sd_throughput, ar_throughput, mean_acc_len, ...
  twins.csv                    each measured cell's simulated twin (`specscope/formats/twins.py`)
  profile.csv                  `specscope profile` output (step timings for the cost model)
  cost_model.toml              the fitted cost model the simulation used
  simulation_cost_model.toml   the cost model the simulation used when it is not the fitted one
                               (a preset, a file, an analytic model), as `specscope sweep` copies it
```

A sweep with `repeats` measures a cell several times: `runs/<cell>_r2/` ... hold repeats 2, 3, ...
(their summary's `repeat`); the runs table has one row per repeat, the requests table the first
repeat's requests only (greedy requests repeat exactly). `metrics.cells` folds the repeats.

A folder holding only `traces/` (say, imported SpecDecode-Bench traces) is a valid study: the
report then shows the trace-based and simulated parts. A cell folder without `summary.json` is an
unfinished cell (an interrupted sweep) and is skipped with a note. A file that exists but cannot
be read is the user's to fix: `SpecscopeError` naming the file.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from specscope.analysis.servers import is_server_cell, load_server_cells
from specscope.costs.model import CostModel
from specscope.costs.presets import read_cost_model
from specscope.errors import SpecscopeError, shorten
from specscope.formats import requests as request_format
from specscope.formats import simulation as simulation_format
from specscope.formats import summary as summary_format
from specscope.formats.cost_model import read_cost_model_toml
from specscope.formats.files import read_json_object, read_text
from specscope.formats.layout import REQUESTS_JSONL, SUMMARY_JSON, StudyFolder
from specscope.formats.profile import read_profile
from specscope.formats.summary import PHASES
from specscope.formats.trace import Trace, read_trace
from specscope.settings import BASELINE
from specscope.tree_spec import tree_key


@dataclass
class Study:
    """Everything a study folder holds, as tables; absent parts are empty tables or None."""

    root: Path
    runs: pd.DataFrame  # one row per measured cell
    requests: pd.DataFrame  # one row per measured request
    traces: list[Trace]
    simulation: pd.DataFrame | None
    profile: pd.DataFrame | None
    cost_model: dict | None
    notes: list[str] = field(default_factory=list)  # what was skipped, in plain words
    simulation_cost_model: CostModel | None = None  # simulation_cost_model.toml, parsed
    twins: pd.DataFrame | None = None  # each measured cell's simulated twin (twins.csv)
    servers: pd.DataFrame = field(default_factory=pd.DataFrame)  # server cells (`specscope bench`, analysis/servers.py)

    @property
    def is_empty(self) -> bool:
        return self.runs.empty and self.servers.empty and not self.traces and self.simulation is None


RUN_COLUMNS = [
    "cell", "model", "workload", "method", "k", "label", "batch_size", "threads", "device", "temperature", "partial",
    "generated_tokens", "wall_seconds", "throughput_tok_s", "mean_acc_len", "acceptance_rate",
    *(f"t_{p}" for p in PHASES), "num_steps", "peak_rss_mb", "adaptive_choices", "tree", "repeats",
    "throughput_rel_spread", "repeat", "busy", "others_cpu",
]
REQUEST_COLUMNS = [
    "cell", "workload", "method", "k", "label", "batch_size", "id", "output_len", "steps", "mean_acc_len",
    "bleu4", "latency_s", "ttft_s",
]


def method_label(method: str, k, tree: str | None = None) -> str:
    """How the report names a measured method: `ngram k=3`, `draft(self:8) k=3`, `draft(self:8) tree 3x2` or
    `none`."""
    if tree:
        return f"{method} tree {tree}"
    if method == BASELINE or not k or (isinstance(k, float) and math.isnan(k)):
        return method
    return f"{method} k={int(k)}"


def load_study(root: str | Path) -> Study:
    """Read every part of the study folder `root` that is present."""
    root = Path(root)
    if not root.is_dir():
        raise SpecscopeError(f"study folder '{root}' does not exist: pass the folder `specscope sweep` or `demo` wrote")
    notes: list[str] = []
    folder = StudyFolder(root)
    runs, requests = load_runs(folder.runs, notes)
    traces = load_traces(folder.traces)
    simulation = load_simulation(folder.simulation, traces)
    profile = load_profile(folder.profile)
    cost_model = load_cost_model(folder.cost_model)
    used = folder.simulation_cost_model
    simulation_cost_model = read_cost_model(used) if used.is_file() else None
    twins = load_twins(folder.twins)
    servers = load_server_cells(folder.runs)
    return Study(root, runs, requests, traces, simulation, profile, cost_model, notes, simulation_cost_model,
                 twins, servers)


# ---------------------------------------------------------------------------------------------
# Run folders


def load_runs(runs_dir: Path, notes: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells under `runs_dir` as (runs, requests) tables; unfinished cells go to `notes`."""
    notes = notes if notes is not None else []
    run_rows, request_rows = [], []
    if runs_dir.is_dir():
        for cell_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
            if not (cell_dir / SUMMARY_JSON).is_file():
                notes.append(f"cell '{cell_dir.name}' has no {SUMMARY_JSON} (unfinished) and was skipped")
                continue
            obj = read_json_object(cell_dir / SUMMARY_JSON, "summary file", hint=summary_format.FIX)
            if is_server_cell(obj):
                continue  # a `specscope bench` cell: analysis/servers.py reads it
            run = read_summary(cell_dir / SUMMARY_JSON, obj)
            run["cell"] = cell_dir.name
            run_rows.append(run)
            if run["repeat"] == 1 and (cell_dir / REQUESTS_JSONL).is_file():  # repeats: the same requests
                request_rows.extend(read_requests(cell_dir / REQUESTS_JSONL, run))
    runs = pd.DataFrame(run_rows, columns=RUN_COLUMNS)
    requests = pd.DataFrame(request_rows, columns=REQUEST_COLUMNS)
    return runs, requests


def read_summary(path: Path, obj: dict | None = None) -> dict:
    """One `summary.json` as a flat row of RUN_COLUMNS (settings may sit under "settings").

    `method` is the proposer's registry name: it matches trace and simulation names. `label` names the
    cell for people, from the summary's `label` (e.g. `draft(self:16)`) and k. A `--k adaptive` run is method
    `adaptive(<proposers>)` with no k (its summary's k is only the cap), so it is neither joined with nor taken
    for a fixed k; nor is a tree cell (method `<proposer>@tree:<shape>`, k NaN, as traces name the tree key).
    Where the cell was repeated, `repeats` is how many times and `throughput_rel_spread` the relative spread of
    its throughput over the repeats (a fraction, e.g. 0.03: the uncertainty the verdict shows); both are NaN for a
    single run. `obj`: the file's JSON object when the caller has already read it.
    """
    # validated: the types below hold
    flat = summary_format.summary_fields(obj, path) if obj is not None else summary_format.read_summary(path)
    breakdown = flat.get("time_breakdown_s") or {}
    method = str(flat["method"])
    k = 0 if method == BASELINE else int(flat.get("k") or 0)
    tree = str(flat["tree"]) if flat.get("tree") else None
    label = method_label(str(flat.get("label") or method), k)
    if flat.get("adaptive"):  # `--k adaptive`: k varies per step (the summary's k is the cap)
        method, k = f"adaptive({method})", math.nan
        label = method_label(str(flat.get("label") or flat["method"]), k)
    elif tree and method != BASELINE:  # a draft tree: named as traces name it, no chain k
        label = method_label(str(flat.get("label") or method), k, tree)
        method, k = tree_key(method, tree), math.nan
    row = {
        "model": str(flat.get("model", "")),
        "workload": str(flat.get("workload", "")),
        "method": method,
        "k": k,
        "label": label,
        "batch_size": int(flat["batch_size"]),
        "threads": flat.get("threads"),
        "device": str(flat.get("device", "")),
        "temperature": flat.get("temperature"),
        "partial": bool(flat.get("partial", False)),
        "generated_tokens": flat.get("generated_tokens"),
        "wall_seconds": flat.get("wall_seconds"),
        "throughput_tok_s": float(flat["throughput_tok_s"]),
        "mean_acc_len": flat.get("mean_acc_len"),
        "acceptance_rate": flat.get("acceptance_rate"),
        "peak_rss_mb": flat.get("peak_rss_mb"),
        "num_steps": flat.get("num_steps"),  # engine steps (prefill included): verify time per step
        "adaptive_choices": flat.get("adaptive_choices") if isinstance(flat.get("adaptive_choices"), dict) else None,
        "tree": tree,
        "repeats": _number(flat.get("repeats")),
        "throughput_rel_spread": _number(flat.get("throughput_rel_spread")),
        "repeat": int(flat.get("repeat") or 1),
    }
    contention = flat.get("contention") if isinstance(flat.get("contention"), dict) else {}
    row["busy"] = bool(contention.get("busy", False))
    row["others_cpu"] = contention.get("others_cpu")
    for phase in PHASES:
        row[f"t_{phase}"] = breakdown.get(phase)
    return row


def read_requests(path: Path, run: dict) -> list[dict]:
    """Per-request rows of one cell's `requests.jsonl` (failed requests, with an `error`, left out)."""
    rows = []
    for lineno, rec in request_format.read_requests(path):  # validated records
        if rec.get("error"):  # a failed request: no output to measure
            continue
        proposed, accepted = request_format.step_counts(rec.get("steps"), f"{path}:{lineno}")
        n_steps = len(accepted)
        rows.append({
            "cell": run["cell"], "workload": rec.get("workload") or run["workload"], "method": run["method"],
            "k": run["k"], "label": run["label"], "batch_size": run["batch_size"],
            "id": str(rec.get("id", lineno)),
            "output_len": len(rec.get("output_token_ids") or []),
            "steps": n_steps,
            "mean_acc_len": (sum(accepted) + n_steps) / n_steps if n_steps else np.nan,
            "bleu4": rec.get("bleu4_prompt_overlap", np.nan),
            "latency_s": _number(rec.get("latency_s")),
            "ttft_s": _number(rec.get("ttft_s")),
        })
    return rows


# ---------------------------------------------------------------------------------------------
# Traces


def load_traces(traces_dir: Path) -> list[Trace]:
    """Every `*.jsonl` trace under `traces_dir` (native or SpecDecode-Bench), sorted by name."""
    if not traces_dir.is_dir():
        return []
    return [read_trace(p) for p in sorted(traces_dir.glob("*.jsonl"))]


def trace_workload(trace: Trace) -> str:
    """The workload a trace measured: its header's, else its requests', else its file name."""
    if trace.workload:
        return str(trace.workload)
    names = sorted({r.workload for r in trace.requests if r.workload})
    return "+".join(names) if names else trace.name


# ---------------------------------------------------------------------------------------------
# Simulation, profile, cost model


def load_simulation(path: Path, traces: list[Trace] = ()) -> pd.DataFrame | None:
    """`simulation.csv` as a table, or None when absent.

    Adds derived columns the report works with: `workload` (the CSV's own column if it has one,
    else the workload of the trace the row replayed, else the trace's name), `policy_kind` (fixed /
    oracle / combine / the policy's own name), `k` (fixed-k's draft length; the CSV's `k` column if
    present, else the number in the policy's name, e.g. `fixed-3`) and `mode` ("" when absent).
    """
    if not path.is_file():
        return None
    table = _read_csv(path)
    missing = [c for c in simulation_format.REQUIRED if c not in table.columns]
    if missing:
        raise SpecscopeError(
            f"{path}: missing column(s) {', '.join(missing)}; re-run `specscope simulate` to rewrite it"
        )
    try:
        return derive_simulation_columns(table, traces)
    except ValueError as err:
        raise SpecscopeError(f"{path}: bad value ({err}); re-run `specscope simulate` to rewrite it") from None


def derive_simulation_columns(table: pd.DataFrame, traces: list[Trace] = ()) -> pd.DataFrame:
    """Normalise a simulation table in place (see `load_simulation`) and return it."""
    table["trace"] = table["trace"].astype(str).map(lambda s: Path(s).stem)
    table["proposers"] = table["proposers"].astype(str)
    table["policy"] = table["policy"].astype(str)
    table["batch_size"] = table["batch_size"].astype(int)
    table["speedup"] = pd.to_numeric(table["speedup"], errors="coerce")
    by_trace = {t.name: trace_workload(t) for t in traces}
    from_trace = table["trace"].map(lambda name: by_trace.get(name, name))
    table["workload"] = table["workload"].fillna(from_trace).astype(str) if "workload" in table.columns else from_trace
    table["policy_kind"] = [policy_kind(pol, props) for pol, props in zip(table["policy"], table["proposers"])]
    if "mode" not in table.columns:
        table["mode"] = ""
    table["mode"] = table["mode"].fillna("").astype(str)
    policy_k = table["policy"].map(_number_in)
    table["k"] = pd.to_numeric(table["k"], errors="coerce").fillna(policy_k) if "k" in table.columns else policy_k
    return table


def policy_kind(policy: str, proposers: str = "") -> str:
    """`fixed`, `oracle`, `combine` or `adaptive` for the simulator's policy names; other names pass through.

    `oracle` over several proposers (`ngram,eagle`) is the oracle combine.
    """
    name = policy.lower()
    if name.startswith("adaptive"):  # adaptive, adaptive-combine: deployable policies, not bounds
        return "adaptive"
    if "combine" in name:
        return "combine"
    if name.startswith("oracle"):
        return "combine" if len(proposer_names(proposers)) > 1 else "oracle"
    if name.startswith("fixed"):
        return "fixed"
    return policy


def proposer_names(proposers: str) -> list[str]:
    """The proposers of a simulation row: `ngram,eagle` (the simulator's spelling) or `ngram+eagle`."""
    return [p for p in re.split(r"[,+;| ]+", proposers) if p]


def _number_in(text: str) -> float:
    match = re.search(r"(\d+)", text)
    return float(match.group(1)) if match else np.nan


def load_profile(path: Path) -> pd.DataFrame | None:
    """profile.csv validated (`formats/profile.py`), every column kept (the break-even figure reads batch_size
    and k, which fitting does not), or None when absent."""
    if not path.is_file():
        return None
    read_profile(path)
    return _read_csv(path)


def load_twins(path: Path) -> pd.DataFrame | None:
    """`twins.csv` (each measured cell's simulated twin) as a table, or None when absent."""
    if not path.is_file():
        return None
    table = _read_csv(path)
    missing = [c for c in ("cell", "speedup") if c not in table.columns]
    if missing:
        raise SpecscopeError(f"{path}: missing column(s) {', '.join(missing)}; re-run the sweep to rewrite it")
    table["cell"] = table["cell"].astype(str)
    table["speedup"] = pd.to_numeric(table["speedup"], errors="coerce")
    return table


def load_cost_model(path: Path) -> dict | None:
    """The fitted cost model's tables (validated, `formats/cost_model.py`), or None when absent."""
    if not path.is_file():
        return None
    try:
        return read_cost_model_toml(path)
    except SpecscopeError as err:
        raise SpecscopeError(f"{err}; re-run `specscope fit-cost`") from None


# ---------------------------------------------------------------------------------------------
# Low-level readers: each turns a broken file into one clear line.


def _number(value) -> float:
    """A JSON number as a float; NaN for anything else (absent, null, a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return np.nan
    return float(value)


def _read_csv(path: Path) -> pd.DataFrame:
    text = read_text(path, "CSV file")
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise SpecscopeError(f"{path}: not a readable CSV ({shorten(err)}); re-create it") from None
