"""Run settings: defaults defined once, the flat builder, and one-line checks that name the flag or the config key."""

import math

import pytest

from specscope.errors import SpecscopeError
from specscope.settings import (ADAPTIVE_K_CAP, CLI_NAMES, DEFAULT_DRAFT_MODEL, MAX_K, NGRAM_MAX, NGRAM_MIN, TOML_NAMES,
                                AdaptiveSettings, ProposerSettings, RunSettings)


def test_build_routes_proposer_fields_and_keeps_defaults_for_options_not_given():
    s = RunSettings.build(method="ngram", k=5, batch_size=4, draft_model=None, ngram_min=None)
    assert s.proposer == ProposerSettings(method="ngram", k=5, draft_model=DEFAULT_DRAFT_MODEL, ngram_min=NGRAM_MIN)
    assert s.batch_size == 4 and s.proposer.ngram_max == NGRAM_MAX and s.adaptive is None
    assert s.replace(k=2, batch_size=8).proposer.k == 2 and s.replace(batch_size=8).batch_size == 8


def test_methods_are_read_with_spaces_around_the_commas():
    assert ProposerSettings(method="ngram, draft").methods == ["ngram", "draft"]
    assert ProposerSettings(method="eagle").methods == ["eagle"]


def test_draft_budget_is_zero_for_plain_decoding_and_the_cap_under_adaptive():
    assert RunSettings.build(method="none", k=5).draft_budget == 0
    assert RunSettings.build(method="ngram", k=5).draft_budget == 5
    assert RunSettings.build(method="ngram", adaptive=AdaptiveSettings()).draft_budget == ADAPTIVE_K_CAP


@pytest.mark.parametrize("flat,where", [
    ({"k": -1}, "--k -1"),
    ({"k": MAX_K + 1}, f"--k {MAX_K + 1}"),
    ({"batch_size": 0}, "--batch-size 0"),
    ({"max_new_tokens": 0}, "--max-new-tokens 0"),
    ({"num_prompts": 0}, "--num-prompts 0"),
    ({"temperature": math.nan}, "--temperature nan"),
    ({"temperature": math.inf}, "--temperature inf"),
    ({"temperature": -0.5}, "--temperature -0.5"),
    ({"top_p": 0.0}, "--top-p 0.0"),
    ({"seed": -1}, "--seed -1"),
    ({"ngram_min": 5, "ngram_max": 3}, "--ngram-min 5 is larger than --ngram-max 3"),
    ({"method": "ngram,draft"}, "several proposers need --k adaptive"),
    ({"method": "ngram,ngram", "adaptive": AdaptiveSettings()}, "names a proposer twice"),
    ({"method": "ngram,none", "adaptive": AdaptiveSettings()}, "'none' is plain decoding"),
    ({"device": "tpu"}, "--device 'tpu'"),
])
def test_a_bad_value_is_one_line_naming_the_flag(flat, where):
    with pytest.raises(SpecscopeError) as err:
        RunSettings.build(**{"method": "ngram", **flat}).check(CLI_NAMES)
    assert where in str(err.value) and "\n" not in str(err.value)


def test_a_config_names_its_own_keys():
    with pytest.raises(SpecscopeError, match=r"^temperature nan"):
        RunSettings.build(method="ngram", temperature=math.nan).check(TOML_NAMES)
