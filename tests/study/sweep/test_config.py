"""Sweep configs: expansion into steps, and one-line errors for every bad key (no torch needed)."""

import pytest

from specscope.settings import DEFAULT_DRAFT_MODEL
from specscope.costs.presets import PRESET_DIR
from specscope.errors import SpecscopeError
from specscope.study.sweep.config import PROFILE, RUN, TRACE, load_config, parse_config

METHODS = {"none": None, "ngram": None, "draft": None, "eagle": None, "eagle3": None, "mtp": None}  # the engine registry's names, without torch


def workloads(name):
    if name not in ("chat", "code-edit"):
        raise SpecscopeError(f"Unknown workload '{name}'. Available: chat, code-edit")


def config(tmp_path, **top):
    raw = {"workloads": ["chat", "code-edit"], "methods": ["none", "ngram", "draft"], "k": [2, 3],
           "batch_sizes": [1, 4], **top}
    return parse_config(raw, tmp_path / "sweep.toml", METHODS, workloads)


def test_cells_cover_the_grid_with_one_baseline_per_workload_and_batch(tmp_path):
    cfg = config(tmp_path)
    names = [s.name for s in cfg.of_kind(RUN)]
    assert len(names) == 2 * 2 * (1 + 2 * 2)
    assert names[:5] == ["chat_none_b1", "chat_ngram_k2_b1", "chat_ngram_k3_b1", "chat_draft_k2_b1", "chat_draft_k3_b1"]
    cell = cfg.of_kind(RUN)[3]
    assert cell.output == "runs/chat_draft_k2_b1" and cell.settings["draft_model"] == DEFAULT_DRAFT_MODEL
    assert cfg.of_kind(RUN)[1].settings["draft_model"] is None  # an ngram cell does not change with the draft
    assert all(s.units > 0 for s in cfg.steps) and cfg.simulate is None


def test_sections_add_traces_profile_and_simulation(tmp_path):
    cfg = config(tmp_path, num_prompts={"1": 2, "4": 8}, trace={"k_max": 5}, profile={"reps": 1}, simulate={})
    assert [s.settings["num_prompts"] for s in cfg.of_kind(RUN) if s.settings["method"] == "none"] == [2, 8, 2, 8]
    traces = cfg.of_kind(TRACE)
    assert [t.output for t in traces] == ["traces/chat.jsonl", "traces/code-edit.jsonl"]
    assert traces[0].settings["proposers"] == ["ngram", "draft"] and traces[0].settings["k_max"] == 5
    assert cfg.of_kind(PROFILE)[0].settings["batch_sizes"] == [1, 4]
    assert cfg.simulate.cost_model == "fitted" and cfg.simulate.proposers == ["ngram", "draft", "ngram,draft"]


def test_adaptive_sets_add_one_cell_per_workload_and_batch_after_the_fixed_ones(tmp_path):
    cfg = config(tmp_path, adaptive=["ngram", "ngram, draft"])
    cells = cfg.of_kind(RUN)
    assert len(cells) == 2 * 2 * (1 + 2 * 2 + 2)
    assert [c.name for c in cells[4:8]] == ["chat_draft_k3_b1", "chat_ngram_kadaptive_b1",
                                            "chat_ngram+draft_kadaptive_b1", "chat_none_b4"]  # beside their fixed k
    ngram, both = cells[5].settings, cells[6].settings
    assert ngram["k"] == "adaptive" and ngram["method"] == "ngram" and ngram["draft_model"] is None
    assert both["method"] == "ngram,draft" and both["draft_model"] == DEFAULT_DRAFT_MODEL
    assert ngram["adaptive_cost_model"] == "smollm2-135m-cpu"  # the default of `specscope run --k adaptive`
    assert "adaptive_cost_model" not in cells[1].settings  # fixed-k cells keep their settings (and stamps)
    (tmp_path / "mine.toml").write_text((PRESET_DIR / "smollm2-135m-cpu.toml").read_text())
    mine = config(tmp_path, adaptive=["ngram"], adaptive_cost_model="mine.toml").of_kind(RUN)[5]
    assert mine.name == "chat_ngram_kadaptive_b1" and mine.settings["adaptive_cost_model"] == str(tmp_path / "mine.toml")


def test_under_the_fitted_model_the_profile_runs_first_and_the_adaptive_cells_carry_its_settings(tmp_path):
    cfg = config(tmp_path, adaptive=["ngram,draft"], adaptive_cost_model="fitted", profile={"reps": 1}, trace={})
    assert [s.kind for s in cfg.steps][:2] == [PROFILE, RUN] and cfg.steps[-1].kind == TRACE
    cell = next(s for s in cfg.steps if s.settings.get("k") == "adaptive").settings
    assert cell["adaptive_cost_model"] == "fitted" and cell["profile"] == cfg.of_kind(PROFILE)[0].settings
    by_default = config(tmp_path, adaptive=["ngram"], profile={})  # with a [profile], "fitted" is the default
    assert by_default.steps[0].kind == PROFILE and by_default.steps[6].name == "chat_ngram_kadaptive_b1"
    assert by_default.steps[6].settings["adaptive_cost_model"] == "fitted"
    preset = config(tmp_path, adaptive=["ngram"], adaptive_cost_model="smollm2-135m-cpu", profile={})
    assert preset.steps[-1].kind == PROFILE  # a preset: the usual order


def test_trees_add_a_draft_tree_cell_per_workload_and_batch_next_to_the_chains(tmp_path):
    from specscope.study.sweep.config import run_settings

    cfg = config(tmp_path, trees=["3x2"])
    cells = cfg.of_kind(RUN)
    assert len(cells) == 2 * 2 * (1 + 2 * 2 + 1)
    assert [c.name for c in cells[4:7]] == ["chat_draft_k3_b1", "chat_draft_tree3x2_b1", "chat_none_b4"]
    tree = cells[5].settings
    assert tree["method"] == "draft" and tree["tree"] == "3x2"  # the whole tree (2 + 4 draft nodes) every step
    assert run_settings(tree).proposer.tree == "3x2"
    assert "tree" not in cells[4].settings  # chain cells keep their settings (and their stamps)


def test_a_prompt_file_workload_is_resolved_next_to_the_config(tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"prompt": "hi"}\n')
    cfg = config(tmp_path, workloads=["mine.jsonl"])
    assert cfg.of_kind(RUN)[0].name == "mine_none_b1"
    assert cfg.of_kind(RUN)[0].settings["workload"] == str(tmp_path / "mine.jsonl")


@pytest.mark.parametrize("top,message", [
    ({"bogus": 1}, "bogus: unknown key in the top level"),
    ({"trace": {"k_mx": 3}}, "trace.k_mx: unknown key in [trace]"),
    ({"workloads": ["chit-chat"]}, "Unknown workload 'chit-chat'"),
    ({"workloads": ["missing.jsonl"]}, "prompt file 'missing.jsonl' does not exist"),
    ({"methods": ["none", "medusa"]}, "Unknown method 'medusa'"),
    ({"methods": ["ngram"]}, "must include \"none\""),
    ({"k": [0]}, "k: [0] must be a list of integers >= 1"),
    ({"k": ["3"]}, "k: ['3'] must be a list of integers >= 1"),
    ({"batch_sizes": []}, "batch_sizes"),
    ({"num_prompts": {"1": 2}}, "gives no count for batch size(s) [4]"),
    ({"max_new_tokens": 0}, "max_new_tokens: 0 must be an integer >= 1"),
    ({"simulate": {}}, "simulate: needs a [trace] section"),
    ({"trace": {}, "simulate": {}}, "is required without a [profile] section"),
    ({"trace": {}, "simulate": {"policies": ["sometimes"]}}, "simulate.policies"),
    ({"trace": {"proposers": ["ngram"]}, "profile": {}, "simulate": {"proposers": ["draft"]}}, "'draft' in 'draft' is not traced"),
    ({"adaptive": ["none"]}, "adaptive: 'none' proposes nothing"),
    ({"adaptive": ["ngram,ngram"]}, "adaptive: names a method twice"),
    ({"adaptive": ["ngram,"]}, "adaptive: ['ngram', ''] must be a list of names"),
    ({"adaptive": ["ngram", "ngram"]}, "adaptive: names a proposer set twice"),
    ({"adaptive": ["medusa"]}, "Unknown method 'medusa'"),
    ({"adaptive": ["ngram"], "adaptive_cost_model": "fitted"}, "\"fitted\" needs a [profile] section"),
    ({"adaptive": ["ngram,eagle"], "adaptive_cost_model": "fitted", "profile": {"proposers": ["ngram"]}},
     "the [profile] does not time 'eagle'"),
    ({"adaptive": ["ngram"], "adaptive_cost_model": "nope"}, "adaptive_cost_model: Unknown cost model 'nope'"),
    ({"adaptive": ["draft"], "adaptive_cost_model": "llama3.1-8b-h100"}, "has no draft cost for proposer 'draft'"),
])
def test_bad_configs_are_one_line_errors_naming_the_key(tmp_path, top, message):
    with pytest.raises(SpecscopeError) as err:
        config(tmp_path, **top)
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith(str(tmp_path / "sweep.toml"))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(SpecscopeError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("workloads = [\n")
    with pytest.raises(SpecscopeError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_the_shipped_demo_config_is_valid():
    from specscope.configs import DEMO_CONFIG

    cfg = load_config(DEMO_CONFIG, METHODS, None)
    assert len(cfg.of_kind(RUN)) == 2 * 3 * 5 * 3 and len(cfg.of_kind(TRACE)) == 3 and len(cfg.of_kind(PROFILE)) == 1
    assert cfg.engine["model"] is None and "ngram,draft" in cfg.simulate.proposers
    trace = cfg.of_kind(TRACE)[0].settings  # every measured proposer, on the cells' prompts
    assert trace["proposers"] == ["ngram", "draft", "eagle3"] and trace["cell_prompts"] == [2, 4, 8]


def test_the_shipped_full_config_is_valid():
    from specscope.configs import FULL_CONFIG

    cfg = load_config(FULL_CONFIG, METHODS, None)
    names = {s.settings["workload"] for s in cfg.of_kind(RUN)}
    assert {"aime", "gpqa"} <= names and len(cfg.of_kind(TRACE)) == 6


def test_repeats_interleave_the_methods_of_a_workload_and_batch_size(tmp_path):
    cfg = config(tmp_path, methods=["none", "ngram"], k=[3], batch_sizes=[1], workloads=["chat"], repeats=3)
    names = [s.name for s in cfg.of_kind(RUN)]
    assert names == ["chat_none_b1", "chat_ngram_k3_b1", "chat_ngram_k3_b1_r2", "chat_none_b1_r2",
                     "chat_none_b1_r3", "chat_ngram_k3_b1_r3"]  # ABBA: a drift hits both alike
    settings = {s.name: s.settings for s in cfg.of_kind(RUN)}
    assert "repeat" not in settings["chat_none_b1"] and settings["chat_none_b1_r2"]["repeat"] == 2
    assert cfg.of_kind(RUN)[2].output == "runs/chat_ngram_k3_b1_r2"
    with pytest.raises(SpecscopeError, match="repeats"):
        config(tmp_path, repeats=0)


def test_a_trace_records_the_prompts_of_every_cell_of_its_workload(tmp_path):
    cfg = config(tmp_path, num_prompts={"1": 2, "4": 8}, trace={}, adaptive=["ngram"])
    trace = cfg.of_kind(TRACE)[0].settings
    assert trace["num_prompts"] is None and trace["cell_prompts"] == [2, 8]
    assert trace["proposers"] == ["ngram", "draft"]
    fixed = config(tmp_path, trace={"num_prompts": 3}).of_kind(TRACE)[0].settings
    assert fixed["num_prompts"] == 3 and "cell_prompts" not in fixed


def test_trees_add_tree_cells_beside_the_chains_and_trace_and_simulate_them(tmp_path):
    cfg = config(tmp_path, methods=["none", "ngram", "eagle3"], k=[3], batch_sizes=[1], trees=["6", "dynamic:21"],
                 trace={"proposers": ["ngram", "eagle3"]}, profile={}, simulate={})
    names = [s.name for s in cfg.of_kind(RUN)]
    assert names[:5] == ["chat_none_b1", "chat_ngram_k3_b1", "chat_eagle3_k3_b1", "chat_eagle3_tree6_b1",
                         "chat_eagle3_treedynamic-21_b1"]  # the n-gram cannot branch: no tree cells for it
    tree = cfg.of_kind(RUN)[4].settings
    assert tree["tree"] == "dynamic:21" and tree["method"] == "eagle3"
    assert "tree" not in cfg.of_kind(RUN)[2].settings  # chain cells keep their settings (and stamps)
    assert cfg.of_kind(TRACE)[0].settings["trees"] == ["6", "dynamic:21"]
    assert "tree" in cfg.simulate.policies
    assert "eagle3@tree:3x2" in cfg.simulate.proposers and "eagle3@tree:dynamic:21:7x4" in cfg.simulate.proposers


@pytest.mark.parametrize("top,message", [
    ({"trees": ["7"]}, "trees: --tree '7' is not a tree spec"),
    ({"trees": ["6", "3x2"]}, "trees: names a tree shape twice"),
    ({"methods": ["none", "ngram"], "trees": ["6"]}, "none of the methods ['none', 'ngram'] drafts a tree"),
    ({"methods": ["none", "ngram", "draft"], "trace": {"proposers": ["ngram"], "trees": ["6"]}},
     "trace.trees: none of the traced proposers ['ngram'] drafts a tree"),
    ({"trace": {"proposers": ["draft"], "trees": ["6"]}, "profile": {}, "simulate": {"proposers": ["draft@tree:21"]}},
     "'draft@tree:3x4' in 'draft@tree:3x4' is not traced"),
])
def test_bad_tree_keys_are_one_line_errors(tmp_path, top, message):
    with pytest.raises(SpecscopeError) as err:
        config(tmp_path, **top)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_the_shipped_full_config_compares_chains_and_trees():
    from specscope.configs import FULL_CONFIG

    cfg = load_config(FULL_CONFIG, METHODS, None)
    cells = [s.name for s in cfg.of_kind(RUN)]
    for method in ("draft", "eagle", "eagle3", "mtp"):
        for size in ("k3", "tree6", "tree21", "treedynamic-21"):
            assert f"chat_{method}_{size}_b1" in cells and f"chat_{method}_{size}_b16" in cells, (method, size)
    assert not any(c.startswith("chat_ngram_tree") for c in cells)
    assert cfg.of_kind(TRACE)[0].settings["trees"] == ["6", "21", "dynamic:21"]
    assert "mtp@tree:dynamic:21:7x4" in cfg.simulate.proposers
    assert "tree" in cfg.simulate.policies and "eagle3@tree:dynamic:21:7x4" in cfg.simulate.proposers
    assert max(cfg.simulate.batch_sizes) == 128
