"""The registry holds the study's six families, resolves aliases, and rejects unknown names."""

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads.registry import WORKLOADS, get_workload


def test_six_families():
    assert list(WORKLOADS) == ["code-edit", "chat", "summarize", "math", "aime", "gpqa"]


@pytest.mark.parametrize(
    "alias, name",
    [("instructcoder", "code-edit"), ("ShareGPT", "chat"), ("cnn_dailymail", "summarize"), ("cnn", "summarize"),
     ("gsm8k", "math"), ("GPQA-Main", "gpqa"), (" aime ", "aime")],
)
def test_aliases(alias, name):
    assert get_workload(alias).name == name


def test_unknown_name_lists_available():
    with pytest.raises(SpecscopeError) as err:
        get_workload("poetry")
    assert str(err.value) == "Unknown workload 'poetry'. Available: aime, chat, code-edit, gpqa, math, summarize"


def test_reasoning_flags_and_limits():
    assert {w.name for w in WORKLOADS.values() if w.is_reasoning} == {"aime", "gpqa"}
    reasoning = min(w.max_new_tokens for w in WORKLOADS.values() if w.is_reasoning)
    assert reasoning > max(w.max_new_tokens for w in WORKLOADS.values() if not w.is_reasoning)


def test_every_family_has_bundled_samples_and_a_dataset():
    for wl in WORKLOADS.values():
        assert wl.bundled_path.is_file()
        assert wl.bundled_count() >= 20
        assert wl.main_field in wl.required
        assert "/" in wl.hf.repo
