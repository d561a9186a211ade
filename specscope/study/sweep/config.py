"""A sweep config (TOML): read it, validate it with one-line errors, expand it into steps.

    model = "smollm2-135m"           # optional: a GGUF file, a Hugging Face folder; omitted = embedded default
    workloads = ["code-edit", "chat"]  # registry names or prompt files (JSONL, relative to this file)
    methods = ["none", "ngram", "draft"]   # `none` is required: speedups divide by it
    k = [3]                          # draft tokens per step (one cell per k for each SD method)
    adaptive = ["ngram", "ngram,draft"]  # optional: `--k adaptive` cells over these proposers (sets)
    trees = ["6", "dynamic:20"]      # optional: tree cells (`--tree`, specscope/tree_spec.py) for every method
                                     # that can draft one (draft, eagle, eagle3, mtp), beside its chains
    adaptive_cost_model = "fitted"   # what they decide under: "fitted" (this sweep's [profile], fitted
                                     # before they run; the default with a [profile]), a preset name or a
                                     # TOML path (default without one: the smollm2-135m-cpu preset)
    trees = ["3x2"]                  # optional: `draft` cells that draft a static tree DxB (`--tree`)
                                     # instead of a chain, one per workload x batch size (needs "draft")
    batch_sizes = [1, 4, 16]
    num_prompts = 8                  # or per batch size: num_prompts = { 1 = 4, 16 = 16 }
    repeats = 2                      # measure every cell this often (default 1); the report gives the
                                     # median and the spread, and names a winner only past the spread
    max_new_tokens = 64
    draft_model = "self:12"          # for `draft`; also ngram_min, ngram_max, temperature, top_p, chat,
                                     # seed, device, threads, quant

    [trace]                          # per-position acceptance traces, one file per workload
    proposers = ["ngram", "draft"]   # default: every proposer a cell measures (SD methods, adaptive sets)
    k_max = 20
    trees = ["6"]                    # default: the top-level trees; traced as `<proposer>@tree:<shape>`
    num_prompts = 8                  # default: the prompts of the workload's measured cells (all of them,
                                     # so every cell has a simulated twin); also max_new_tokens,
                                     # batch_size, workloads

    [profile]                        # step timings for the fitted cost model
    batch_sizes = [1, 4, 16]         # also ks, contexts, reps, proposers

    [simulate]                       # replay the traces through the cost model
    policies = ["fixed-1", "fixed-3", "fixed-5", "oracle"]
    proposers = ["ngram", "draft", "ngram,draft"]   # a comma combines (oracle over both = combine); default:
                                     # each traced proposer, all chains combined, each traced tree alone
    batch_sizes = [1, 2, 4, 8, 16, 32, 64, 128]
    cost_model = "fitted"            # the [profile]'s fit, or a preset name / cost-model TOML path

A config expands into steps, in this order: one measured cell per workload x method x k x batch
size (`none` once per workload and batch size), per workload x adaptive set x batch size and per
workload x tree-drafting method x tree x batch size (`<workload>_<method>_tree<shape>_b<B>`; both next
to the fixed-k cells of the same workload and batch size) — `repeats` times, the methods of a workload and
batch size interleaved (the second pass in reverse order, so a drift of the machine's speed hits every
method alike; repeat r >= 2 of a cell is `runs/<cell>_r<r>/`) — one trace per workload, one profile —
the profile first when the adaptive cells decide under its fit (`adaptive_cost_model = "fitted"`). Each step carries the settings that determine its result; `state.py` stores
them beside the output and re-runs a step whose settings changed. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from specscope.errors import SpecscopeError, brief, unknown_name
from specscope.formats.files import read_toml
from specscope.settings import (ADAPTIVE, ADAPTIVE_COST_MODEL, BASELINE, DEFAULT_DRAFT_MODEL, MAX_K, NGRAM_MAX,
                                NGRAM_MIN, TOML_NAMES, AdaptiveSettings, RunSettings)
from specscope.tree_spec import parse_tree, split_tree_key

ADAPTIVE_K = ADAPTIVE  # a measured cell's k under `adaptive`: chosen per step (`specscope run --k adaptive`)
RUN, TRACE, PROFILE = "run", "trace", "profile"
FITTED = "fitted"  # `[simulate] cost_model`: the cost model fitted from this sweep's profile

ENGINE_DEFAULTS = {"model": None, "device": "cpu", "threads": None, "quant": "auto", "seed": 0}
RUN_DEFAULTS = {
    "workloads": None, "methods": [BASELINE, "ngram", "draft"], "k": [3], "batch_sizes": [1, 4, 16],
    "num_prompts": 8, "max_new_tokens": 64, "draft_model": DEFAULT_DRAFT_MODEL, "ngram_min": NGRAM_MIN,
    "ngram_max": NGRAM_MAX,
    "temperature": 0.0, "top_p": 1.0, "chat": None, "adaptive": [], "adaptive_cost_model": None, "trees": [],
    "repeats": 1,
}
TRACE_DEFAULTS = {"workloads": None, "proposers": None, "k_max": 20, "num_prompts": None, "max_new_tokens": None,
                  "batch_size": 8, "trees": None}
TREE_METHODS = ("draft", "eagle", "eagle3", "mtp")  # who drafts trees when the caller passes no proposer registry
TREE_POLICY = "tree"  # the simulator's policy for a traced tree (added to the default policies when trees are traced)
PROFILE_DEFAULTS = {"batch_sizes": None, "ks": [0, 1, 3, 5], "contexts": [128, 512], "reps": 3, "proposers": None}
SIMULATE_DEFAULTS = {"policies": ["fixed-1", "fixed-3", "fixed-5", "oracle"], "proposers": None,
                     "batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128], "cost_model": None, "mode": "serve", "seed": 42}
SECTIONS = {"trace": TRACE_DEFAULTS, "profile": PROFILE_DEFAULTS, "simulate": SIMULATE_DEFAULTS}


@dataclass(frozen=True)
class Step:
    """One unit of engine work and where its result goes (relative to the study folder).

    `settings` is everything that determines the result (engine settings included): the step is
    done when its output exists with the same settings stored beside it. `units` weighs the step
    for the progress bar's time estimate (roughly proportional to its expected seconds).
    """

    kind: str  # RUN, TRACE or PROFILE
    name: str
    output: str
    settings: dict
    units: float = 1.0


def run_settings(settings: dict) -> RunSettings:
    """The RunSettings of a step from its settings (a cell's, a trace's or the profile's): how a sweep config
    becomes what the study layer runs. A trace or profile has no method of its own (plain decoding)."""
    k = settings.get("k", 0)
    adaptive = AdaptiveSettings(cost_model=settings["adaptive_cost_model"]) if k == ADAPTIVE_K else None
    return RunSettings.build(
        model=settings["model"], device=settings["device"], threads=settings["threads"], quant=settings["quant"],
        seed=settings["seed"], workload=settings.get("workload", RunSettings.workload),
        num_prompts=settings.get("num_prompts"), chat=settings.get("chat"),
        batch_size=settings.get("batch_size", 1), max_new_tokens=settings.get("max_new_tokens"),
        temperature=settings.get("temperature", 0.0), top_p=settings.get("top_p", 1.0),
        method=settings.get("method"), k=None if k == ADAPTIVE_K else k, ngram_min=settings.get("ngram_min"),
        ngram_max=settings.get("ngram_max"), draft_model=settings.get("draft_model"), adaptive=adaptive,
        tree=settings.get("tree"),
    )


@dataclass(frozen=True)
class SimulateSpec:
    policies: list[str]
    proposers: list[str]  # proposer sets as the simulator spells them: "ngram", "ngram,draft"
    batch_sizes: list[int]
    cost_model: str  # FITTED, a preset name or a TOML path
    mode: str
    seed: int


@dataclass
class SweepConfig:
    path: Path
    engine: dict  # model, device, threads, quant, seed
    steps: list[Step] = field(default_factory=list)
    simulate: SimulateSpec | None = None

    def of_kind(self, kind: str) -> list[Step]:
        return [s for s in self.steps if s.kind == kind]


# ---------------------------------------------------------------------------------------------
# Reading and validating


def load_config(path: str | Path, methods=None, workloads=None) -> SweepConfig:
    """Read, validate and expand the config at `path`.

    `methods`: the proposer registry's names (the caller passes them; validating needs no torch
    here); `workloads`: a function raising `SpecscopeError` for an unknown workload name.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecscopeError(f"sweep config '{path}' does not exist; pass a TOML file such as specscope/configs/demo.toml")
    return parse_config(read_toml(path, "sweep config"), path, methods, workloads)


def parse_config(raw: dict, path: Path, methods=None, workloads=None) -> SweepConfig:
    """Validate a parsed config (see the module docstring) and expand it into steps."""
    v = _Validator(path)
    top = v.known(raw, {**ENGINE_DEFAULTS, **RUN_DEFAULTS, **dict.fromkeys(SECTIONS)}, "")
    engine = {
        "model": _model(v, top["model"]),
        "device": v.string(top, "device"),
        "threads": v.integer(top, "threads", 1, optional=True),
        "quant": v.choice(top, "quant", ("auto", "gguf", "none")),
        "seed": v.integer(top, "seed", 0),
    }
    run = _run_options(v, top, methods, workloads)
    config = SweepConfig(path, engine)
    sections = {name: v.known(raw[name], SECTIONS[name], name) for name in SECTIONS if raw.get(name) is not None}
    sd_methods = [m for m in run["methods"] if m != BASELINE]
    profile = None
    if "profile" in sections:
        profile = profile_step(engine, _profile_options(v, sections["profile"], run, sd_methods, methods), run)
    run["adaptive_cost_model"] = _adaptive_cost_model(v, top["adaptive_cost_model"], run["adaptive"], profile)
    profile_first = profile is not None and run["adaptive_cost_model"] == FITTED  # the adaptive cells decide under its fit
    if profile_first:
        config.steps.append(profile)
    config.steps += run_steps(engine, run, profile)
    trace_proposers: list[str] = []
    trace_trees: list[str] = []
    if "trace" in sections:
        measured = list(dict.fromkeys(sd_methods + [p for pset in run["adaptive"] for p in pset.split(",")]))
        trace = _trace_options(v, sections["trace"], run, measured, methods, workloads)
        trace_proposers = trace["proposers"]
        trace_trees = traced_tree_keys(trace["proposers"], trace["trees"], methods)
        config.steps += trace_steps(engine, trace, run)
    if profile is not None and not profile_first:
        config.steps.append(profile)
    if "simulate" in sections:
        config.simulate = _simulate_options(v, sections["simulate"], trace_proposers,
                                            profile.settings["proposers"] if profile is not None else None, trace_trees)
    for step in config.of_kind(RUN):  # the values every cell is run with, checked as `specscope run` checks them
        try:
            run_settings(step.settings).check(TOML_NAMES)
        except SpecscopeError as err:
            raise SpecscopeError(f"{path}: {err}") from None
    return config


def _model(v: "_Validator", model) -> str | None:
    if model is None:
        return None
    if not isinstance(model, str) or not model.strip():
        raise v.error("model", "must be a model path or name, e.g. model = \"path/to/model.gguf\"")
    looks_like_path = "/" in model or model.endswith((".gguf", ".safetensors")) or model.startswith(".")
    candidate = (v.path.parent / model).resolve()
    if looks_like_path or candidate.exists():
        if not candidate.exists():
            raise v.error("model", f"'{model}' does not exist (paths are relative to the config file)")
        return str(candidate)
    return model


def _workload(v: "_Validator", key: str, name, workloads) -> str:
    """A registry name (checked by `workloads`) or a prompt file, made absolute."""
    if not isinstance(name, str) or not name.strip():
        raise v.error(key, f"'{name}' is not a workload name; e.g. {key} = [\"code-edit\"]")
    candidate = (v.path.parent / name).resolve()
    if candidate.is_file():
        return str(candidate)
    if "/" in name or name.endswith((".jsonl", ".json", ".csv")):
        raise v.error(key, f"prompt file '{name}' does not exist (paths are relative to the config file)")
    if workloads is not None:
        try:
            workloads(name)
        except SpecscopeError as err:
            raise v.error(key, str(err)) from None
    return name


def _methods(v: "_Validator", key: str, names, known, allow_baseline: bool) -> list[str]:
    names = v.string_list(names, key)
    for name in names:
        if known is not None and name not in known:
            raise v.error(key, str(unknown_name("method", name, known)))
        if name == BASELINE and not allow_baseline:
            raise v.error(key, f"'{BASELINE}' proposes nothing; list proposers such as \"ngram\"")
    if len(set(names)) != len(names):
        raise v.error(key, f"names a method twice: {names}")
    return names


def _run_options(v: "_Validator", top: dict, methods, workloads) -> dict:
    if top["workloads"] is None:
        raise v.error("workloads", "is required, e.g. workloads = [\"code-edit\", \"chat\"]")
    run = {
        "workloads": [_workload(v, "workloads", w, workloads) for w in v.string_list(top["workloads"], "workloads")],
        "methods": _methods(v, "methods", top["methods"], methods, allow_baseline=True),
        "k": v.int_list(top["k"], "k", 1),
        "batch_sizes": v.int_list(top["batch_sizes"], "batch_sizes", 1),
        "max_new_tokens": v.integer(top, "max_new_tokens", 1),
        "draft_model": v.string(top, "draft_model"),
        "ngram_min": v.integer(top, "ngram_min", 1),
        "ngram_max": v.integer(top, "ngram_max", 1),
        "temperature": v.number(top, "temperature", 0.0),
        "top_p": v.number(top, "top_p", 0.0),
        "chat": v.boolean(top, "chat", optional=True),
        "repeats": v.integer(top, "repeats", 1),
    }
    if BASELINE not in run["methods"]:
        raise v.error("methods", f"must include \"{BASELINE}\": every speedup is measured against it")
    if run["ngram_min"] > run["ngram_max"]:
        raise v.error("ngram_min", f"{run['ngram_min']} is larger than ngram_max {run['ngram_max']}")
    if not 0 < run["top_p"] <= 1:
        raise v.error("top_p", f"{run['top_p']} must be in (0, 1]")
    run["num_prompts"] = _num_prompts(v, top["num_prompts"], run["batch_sizes"])
    sets = v.string_list(top["adaptive"], "adaptive") if top["adaptive"] != [] else []
    run["adaptive"] = [_adaptive_set(v, s, methods) for s in sets]
    if len(set(run["adaptive"])) != len(run["adaptive"]):
        raise v.error("adaptive", f"names a proposer set twice: {run['adaptive']}")
    run["trees"] = _trees(v, "trees", top["trees"])
    run["tree_methods"] = [m for m in run["methods"] if m != BASELINE and drafts_trees(m, methods)]
    if run["trees"] and not run["tree_methods"]:
        raise v.error("trees", f"none of the methods {run['methods']} drafts a tree; add one of "
                      f"{', '.join(TREE_METHODS)} to methods")
    return run


def _trees(v: "_Validator", key: str, value) -> list[str]:
    """A `trees` list: tree specs (`specscope/tree_spec.py`), each checked, none repeated (by canonical shape)."""
    from specscope.tree_spec import parse_tree

    if value == [] or value is None:
        return []
    specs = v.string_list(value, key)
    labels = []
    for spec in specs:
        try:
            labels.append(parse_tree(spec).label)
        except SpecscopeError as err:
            raise v.error(key, str(err)) from None
    if len(set(labels)) != len(labels):
        raise v.error(key, f"names a tree shape twice: {specs}")
    return specs


def drafts_trees(method: str, methods=None) -> bool:
    """Whether `method` can draft a tree: the registry's `supports_tree` when the caller passed the registry
    (a dict of proposer classes), else TREE_METHODS (also for a registry of names only, without the classes)."""
    proposer = methods.get(method) if isinstance(methods, dict) else None
    if proposer is not None and hasattr(proposer, "supports_tree"):
        return bool(proposer.supports_tree)
    return method in TREE_METHODS


def traced_tree_keys(proposers: list[str], trees: list[str], methods=None) -> list[str]:
    """The trace keys `<proposer>@tree:<shape>` a [trace] with these proposers and trees records."""
    from specscope.tree_spec import tree_key

    return [tree_key(p, spec) for p in proposers if drafts_trees(p, methods) for spec in trees]


def _adaptive_set(v: "_Validator", text: str, known) -> str:
    """An `adaptive` entry: proposers joined by commas ('ngram,draft'), as `--method` takes them."""
    return ",".join(_methods(v, "adaptive", [n.strip() for n in text.split(",")], known, allow_baseline=False))


def _adaptive_cost_model(v: "_Validator", name, sets: list[str], profile: "Step | None") -> str | None:
    """The cost model the adaptive cells decide under: FITTED (the sweep's profile, which must time every
    proposer they use), a preset name or a TOML path next to the config, loaded here so that a missing file or
    an unpriced proposer fails before anything runs."""
    from specscope.costs.presets import load_cost_model

    if not sets:
        return None
    if name is None:  # as [simulate] cost_model: the sweep's own fit where it profiles
        name = FITTED if profile is not None else ADAPTIVE_COST_MODEL
    if not isinstance(name, str) or not name.strip():
        raise v.error("adaptive_cost_model", f"{brief(name)}: name a preset, a cost-model TOML path or \"fitted\"")
    if name == FITTED:
        if profile is None:
            raise v.error("adaptive_cost_model", "\"fitted\" needs a [profile] section to fit the cost model from")
        for proposer in (p for pset in sets for p in pset.split(",")):
            if proposer not in profile.settings["proposers"]:
                raise v.error("adaptive_cost_model", f"\"fitted\" (the default with a [profile]): the [profile] does not time '{proposer}'; "
                              "add it to profile.proposers or name a preset / cost-model TOML")
        return FITTED
    if (v.path.parent / name).is_file():
        name = str((v.path.parent / name).resolve())
    try:
        costs = load_cost_model(name)
        for pset in sets:
            for proposer in pset.split(","):
                costs.draft(proposer)
    except SpecscopeError as err:
        raise v.error("adaptive_cost_model", str(err)) from None
    return name


def _num_prompts(v: "_Validator", value, batch_sizes: list[int]) -> dict[int, int]:
    """Prompts per cell for each batch size, from an integer or a {batch size = count} table."""
    if isinstance(value, dict):
        table = {}
        for key, count in value.items():
            if not re.fullmatch(r"\d+", str(key)) or not _is_int(count) or count < 1:
                raise v.error("num_prompts", f"entry {key} = {brief(count)}: use batch size = count, e.g. {{ 1 = 4, 16 = 16 }}")
            table[int(key)] = count
        missing = [b for b in batch_sizes if b not in table]
        if missing:
            raise v.error("num_prompts", f"gives no count for batch size(s) {missing}")
        return {b: table[b] for b in batch_sizes}
    if not _is_int(value) or value < 1:
        raise v.error("num_prompts", f"{brief(value)} must be an integer >= 1 or a table {{ batch size = count }}")
    return {b: value for b in batch_sizes}


def _trace_options(v, section: dict, run: dict, sd_methods: list[str], methods, workloads) -> dict:
    proposers = section["proposers"] if section["proposers"] is not None else sd_methods
    trace = {
        "workloads": ([_workload(v, "trace.workloads", w, workloads) for w in v.string_list(section["workloads"], "trace.workloads")]
                      if section["workloads"] is not None else run["workloads"]),
        "proposers": _methods(v, "trace.proposers", proposers, methods, allow_baseline=False),
        "k_max": v.integer(section, "k_max", 1, where="trace", maximum=MAX_K),
        "num_prompts": v.integer(section, "num_prompts", 1, optional=True, where="trace"),
        "max_new_tokens": (v.integer(section, "max_new_tokens", 1, where="trace")
                           if section["max_new_tokens"] is not None else run["max_new_tokens"]),
        "batch_size": v.integer(section, "batch_size", 1, where="trace"),
        "trees": run["trees"] if section["trees"] is None else _trees(v, "trace.trees", section["trees"]),
    }
    if trace["trees"] and not [p for p in trace["proposers"] if drafts_trees(p, methods)]:
        raise v.error("trace.trees", f"none of the traced proposers {trace['proposers']} drafts a tree; add one of "
                      f"{', '.join(TREE_METHODS)} to trace.proposers")
    if not trace["proposers"]:
        raise v.error("trace.proposers", "is empty; name at least one proposer, e.g. [\"ngram\"]")
    return trace


def _profile_options(v, section: dict, run: dict, sd_methods: list[str], methods) -> dict:
    proposers = section["proposers"] if section["proposers"] is not None else sd_methods
    return {
        "batch_sizes": (v.int_list(section["batch_sizes"], "profile.batch_sizes", 1)
                        if section["batch_sizes"] is not None else run["batch_sizes"]),
        "ks": v.int_list(section["ks"], "profile.ks", 0, MAX_K),
        "contexts": v.int_list(section["contexts"], "profile.contexts", 1),
        "reps": v.integer(section, "reps", 1, where="profile"),
        "proposers": _methods(v, "profile.proposers", proposers, methods, allow_baseline=False),
    }


def _canonical_set(v: "_Validator", pset: str) -> str:
    """A simulate proposer set with every tree key in its canonical spelling (`eagle3@tree:6` -> `eagle3@tree:3x2`)."""
    from specscope.tree_spec import split_tree_key, tree_key

    names = []
    for name in (n.strip() for n in pset.split(",")):
        try:
            base, tree = split_tree_key(name)
        except SpecscopeError as err:
            raise v.error("simulate.proposers", f"'{name}': {err}") from None
        names.append(name if tree is None else tree_key(base, tree))
    return ",".join(names)


def _simulate_options(v, section: dict, trace_proposers: list[str], profile_proposers: list[str] | None,
                      trace_trees: list[str] = ()) -> SimulateSpec:
    from specscope.policy.registry import check_policy_name

    has_profile = profile_proposers is not None
    if not trace_proposers:
        raise v.error("simulate", "needs a [trace] section: the simulator replays the sweep's traces")
    policies = v.string_list(section["policies"], "simulate.policies")
    if trace_trees and section["policies"] is SIMULATE_DEFAULTS["policies"]:
        policies = policies + [TREE_POLICY]  # a traced tree is verified whole every step
    for name in policies:
        try:
            check_policy_name(name)
        except SpecscopeError as err:
            raise v.error("simulate.policies", str(err)) from None
    default_sets = (trace_proposers + ([",".join(trace_proposers)] if len(trace_proposers) > 1 else [])
                    + list(trace_trees))
    sets = v.string_list(section["proposers"], "simulate.proposers") if section["proposers"] is not None else default_sets
    traced = list(trace_proposers) + list(trace_trees)
    sets = [_canonical_set(v, pset) for pset in sets]
    for pset in sets:
        for name in pset.split(","):
            if name.strip() not in traced:
                raise v.error("simulate.proposers", f"'{name}' in '{pset}' is not traced; traced: {', '.join(traced)}")
    cost_model = section["cost_model"] if section["cost_model"] is not None else (FITTED if has_profile else None)
    if cost_model is None:
        raise v.error("simulate.cost_model", "is required without a [profile] section: a preset name or a TOML path")
    if not isinstance(cost_model, str):
        raise v.error("simulate.cost_model", f"{brief(cost_model)} must be \"fitted\", a preset name or a TOML path")
    if cost_model == FITTED and not has_profile:
        raise v.error("simulate.cost_model", "\"fitted\" needs a [profile] section to fit the cost model from")
    if cost_model != FITTED and (v.path.parent / cost_model).is_file():
        cost_model = str((v.path.parent / cost_model).resolve())
    _check_simulate_costs(v, cost_model, sets, policies, profile_proposers)
    return SimulateSpec(policies, sets, v.int_list(section["batch_sizes"], "simulate.batch_sizes", 1), cost_model,
                        v.choice(section, "mode", ("serve", "paper"), where="simulate"),
                        v.integer(section, "seed", 0, where="simulate"))


def _check_simulate_costs(v, cost_model: str, sets: list[str], policies: list[str],
                          profile_proposers: list[str] | None) -> None:
    """The simulation's cost model loads and prices every proposer a drafting policy uses — checked here, not
    after every step ran: a preset or TOML is loaded now; "fitted" prices what the [profile] times."""
    from specscope.costs.presets import load_cost_model
    from specscope.policy.registry import make_policy
    from specscope.simulator.grid import plan
    from specscope.simulator.trees import draft_form

    pairs, _ = plan([tuple(name.strip() for name in pset.split(",")) for pset in sets], policies)
    if not pairs:
        raise v.error("simulate.policies", f"no policy of {policies} applies to the proposer sets {sets} (fixed-K "
                      "and adaptive need a single proposer, adaptive-combine two or more)")
    if cost_model == FITTED:
        for pset, _ in pairs:
            for proposer in pset:
                if split_tree_key(proposer)[0] not in profile_proposers:  # a tree is priced by its proposer's draft
                    raise v.error("simulate.cost_model", f"\"fitted\": the [profile] does not time '{proposer}'; add "
                                  "it to profile.proposers or name a preset / cost-model TOML")
        return
    try:
        costs = load_cost_model(cost_model)
        for pset, name in pairs:
            if make_policy(name, pset, costs).speculates:
                for proposer in pset:
                    draft_form(costs, proposer)
    except SpecscopeError as err:
        raise v.error("simulate.cost_model", str(err)) from None


# ---------------------------------------------------------------------------------------------
# Expanding into steps


def cell_name(workload: str, method: str, k: int | str, batch_size: int, tree: str | None = None) -> str:
    """`code-edit_ngram_k3_b4`, `code-edit_none_b4`, `code-edit_ngram+draft_kadaptive_b4`, a tree cell
    `chat_eagle3_tree6_b1` / `chat_eagle3_treedynamic-20_b1` (a prompt file is named by its stem)."""
    from specscope.tree_spec import shape_label

    size = ([f"tree{shape_label(tree)}"] if tree is not None else [f"k{k}"]) if method != BASELINE else []
    return "_".join([workload_label(workload), method.replace(",", "+")] + size + [f"b{batch_size}"])


def workload_label(workload: str) -> str:
    """A workload as a file-name part: the registry name, or a prompt file's stem."""
    name = Path(workload).stem if "/" in workload else workload
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name)


def run_steps(engine: dict, run: dict, profile: Step | None) -> list[Step]:
    """One measured cell per workload x batch size x method x k (`none` once, first), then one `--k adaptive`
    cell per adaptive set, next to the fixed-k cells it is compared with (measured minutes apart, a CPU's speed
    drifts). Under the sweep's fitted cost model an adaptive cell's settings include the profile's, so a changed
    profile runs it again. With `repeats` > 1 the group of a workload and batch size runs that often, every
    other pass in reverse order (ABBA: a linear drift of the machine's speed averages out over two passes)."""
    steps = []
    for workload in run["workloads"]:
        for b in run["batch_sizes"]:
            group = []
            for method in run["methods"]:
                for k in ([0] if method == BASELINE else run["k"]):
                    settings = _cell_settings(engine, run, workload, method, k, b)
                    group.append((cell_name(workload, method, k, b), settings, run_units(settings)))
            for pset in run["adaptive"]:  # the cost model decides each step's k (and proposer)
                settings = {**_cell_settings(engine, run, workload, pset, ADAPTIVE_K, b),
                            "adaptive_cost_model": run["adaptive_cost_model"]}
                if run["adaptive_cost_model"] == FITTED:
                    settings["profile"] = profile.settings
                group.append((cell_name(workload, pset, ADAPTIVE_K, b), settings, run_units({**settings, "k": 1})))
            for method in run["tree_methods"] if run["trees"] else ():
                for tree in run["trees"]:  # the whole tree every step (`--tree`), beside the method's chains
                    settings = {**_cell_settings(engine, run, workload, method, 0, b), "tree": tree}
                    nodes = parse_tree(tree).num_nodes
                    group.append((cell_name(workload, method, 0, b, tree), settings, run_units({**settings, "k": nodes})))
            for r in range(1, run["repeats"] + 1):
                for name, settings, units in (group if r % 2 else group[::-1]):
                    if r > 1:
                        name, settings = repeat_name(name, r), {**settings, "repeat": r}
                    steps.append(Step(RUN, name, f"runs/{name}", settings, units))
    return steps


def repeat_name(cell: str, repeat: int) -> str:
    """The folder name of a cell's repeat r: the cell's own name for r = 1, `<cell>_r<r>` after."""
    return cell if repeat == 1 else f"{cell}_r{repeat}"


def _cell_settings(engine: dict, run: dict, workload: str, method: str, k, batch_size: int) -> dict:
    return {
        "kind": RUN, **engine, "workload": workload, "method": method, "k": k, "batch_size": batch_size,
        "num_prompts": run["num_prompts"][batch_size], "max_new_tokens": run["max_new_tokens"],
        "temperature": run["temperature"], "top_p": run["top_p"], "chat": run["chat"],
        "draft_model": run["draft_model"] if "draft" in method.split(",") else None,
        "ngram_min": run["ngram_min"], "ngram_max": run["ngram_max"],
    }


def run_units(s: dict) -> float:
    """Rough relative cost of a cell: its tokens, cheaper per token in bigger batches, dearer with drafts.

    On a CPU a step costs about a fixed part plus a part per token it processes (k + 1 per
    sequence); the constants only shape the progress bar's estimate.
    """
    tokens = s["num_prompts"] * s["max_new_tokens"]
    per_step_tokens = s["batch_size"] * (s["k"] + 1)
    step_cost = 1.0 + 0.15 * per_step_tokens + (0.3 * s["k"] if s["method"] == "draft" else 0.0)
    tokens_per_step = s["batch_size"] * (1.0 + 0.5 * s["k"] ** 0.5)
    return tokens * step_cost / tokens_per_step / 10.0


def trace_steps(engine: dict, trace: dict, run: dict) -> list[Step]:
    """One trace per workload. Without a [trace] num_prompts it records the prompts of the workload's measured
    cells (`cell_prompts`: the union of their prompt sets, one per distinct num_prompts), so each measured cell's
    requests have a simulated twin."""
    steps = []
    measured = run["workloads"]
    cell_prompts = sorted(set(run["num_prompts"].values()))
    for workload in trace["workloads"]:
        settings = {"kind": TRACE, **engine, "workload": workload,
                    **{k: trace[k] for k in ("proposers", "k_max", "num_prompts", "max_new_tokens", "batch_size")},
                    "draft_model": run["draft_model"] if "draft" in trace["proposers"] else None,
                    "ngram_min": run["ngram_min"], "ngram_max": run["ngram_max"], "chat": run["chat"]}
        if trace["num_prompts"] is None:
            settings["cell_prompts"] = cell_prompts if workload in measured else [max(cell_prompts)]
        if trace["trees"]:  # only then: a trace without trees keeps the settings (and the state) it always had
            settings["trees"] = list(trace["trees"])
        label = workload_label(workload)
        prompts = trace["num_prompts"] or max(cell_prompts)
        units = prompts * trace["max_new_tokens"] * (0.4 + 0.3 * len(trace["proposers"])) / 10.0
        steps.append(Step(TRACE, f"trace-{label}", f"traces/{label}.jsonl", settings, units))
    return steps


def profile_step(engine: dict, profile: dict, run: dict) -> Step:
    settings = {"kind": PROFILE, **engine, **profile,
                "draft_model": run["draft_model"] if "draft" in profile["proposers"] else None,
                "ngram_min": run["ngram_min"], "ngram_max": run["ngram_max"]}
    points = len(profile["batch_sizes"]) * len(profile["contexts"]) * len(profile["ks"]) * (1 + len(profile["proposers"]))
    units = points * profile["reps"] * (1 + max(profile["batch_sizes"]) / 16) / 4.0
    return Step(PROFILE, "profile", "profile.csv", settings, units)


# ---------------------------------------------------------------------------------------------
# One-line validation errors


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Validator:
    """Typed reads of config keys; every problem is one line naming the file and the key."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, message: str) -> SpecscopeError:
        return SpecscopeError(f"{self.path}: {key}: {message}")

    def known(self, table: dict, defaults: dict, where: str) -> dict:
        if not isinstance(table, dict):
            raise self.error(where, f"must be a table, e.g. [{where}]")
        for key in table:
            if key not in defaults:
                place = f"[{where}]" if where else "the top level"
                raise self.error(f"{where + '.' if where else ''}{key}",
                                 f"unknown key in {place}; known keys: {', '.join(sorted(defaults))}")
        return {**defaults, **table}

    def _key(self, key: str, where: str) -> str:
        return f"{where}.{key}" if where else key

    def integer(self, table: dict, key: str, minimum: int, optional: bool = False, where: str = "",
                maximum: int | None = None):
        value = table[key]
        if value is None and optional:
            return None
        if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
            limit = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(self._key(key, where), f"{brief(value)} must be an integer {limit}")
        return value

    def number(self, table: dict, key: str, minimum: float, where: str = "") -> float:
        value = table[key]
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < minimum):
            raise self.error(self._key(key, where), f"{brief(value)} must be a finite number >= {minimum}")
        return float(value)

    def string(self, table: dict, key: str, where: str = "") -> str:
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.error(self._key(key, where), f"{brief(value)} must be a non-empty string")
        return value

    def boolean(self, table: dict, key: str, optional: bool = False):
        value = table[key]
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            raise self.error(key, f"{brief(value)} must be true or false")
        return value

    def choice(self, table: dict, key: str, options, where: str = "") -> str:
        value = table[key]
        if value not in options:
            raise self.error(self._key(key, where), f"{brief(value)} is not one of {', '.join(options)}")
        return value

    def int_list(self, value, key: str, minimum: int, maximum: int | None = None) -> list[int]:
        values = value if isinstance(value, list) else [value]
        if not values or not all(_is_int(x) and x >= minimum and (maximum is None or x <= maximum) for x in values):
            limit = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(key, f"{brief(value)} must be a list of integers {limit}, e.g. {key.split('.')[-1]} = [1, 4]")
        if len(set(values)) != len(values):
            raise self.error(key, f"{brief(value)} repeats a value")
        return list(values)

    def string_list(self, value, key: str) -> list[str]:
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(x, str) and x.strip() for x in values):
            raise self.error(key, f"{brief(value)} must be a list of names, e.g. {key.split('.')[-1]} = [\"a\", \"b\"]")
        return [x.strip() for x in values]
