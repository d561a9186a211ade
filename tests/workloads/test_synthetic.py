"""Synthetic training prompts: deterministic, balanced over families, varied, in the bundled workloads' shapes."""

from collections import Counter

from specscope.workloads import WORKLOADS
from specscope.workloads.synthetic import FAMILIES, prose_passages, stdlib_functions, synthetic_prompts


def test_same_seed_same_prompts_other_seed_others():
    a, b, c = synthetic_prompts(40, seed=1), synthetic_prompts(40, seed=1), synthetic_prompts(40, seed=2)
    assert a == b
    assert [p.messages for p in a] != [p.messages for p in c]


def test_families_round_robin_ids_unique_and_workloads_known():
    prompts = synthetic_prompts(50)
    counts = Counter(p.workload for p in prompts)
    assert set(counts) == set(FAMILIES) and set(FAMILIES) <= set(WORKLOADS)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len({p.id for p in prompts}) == len(prompts)
    assert all(p.source == "synthetic" and p.messages[-1]["role"] == "user" for p in prompts)


def test_prompts_are_mostly_distinct():
    prompts = synthetic_prompts(500)
    texts = [p.messages[0]["content"] for p in prompts]
    assert len(set(texts)) >= 0.95 * len(texts)


def test_material_from_the_standard_library():
    functions, passages = stdlib_functions(limit_files=40), prose_passages()
    assert functions and all(f.startswith(("def ", "async def ", "@")) for f in functions)
    assert all(4 <= len(f.splitlines()) for f in functions)
    assert passages and all(80 <= len(p.split()) <= 320 for p in passages)
    code = next(p for p in synthetic_prompts(10) if p.workload == "code-edit").messages[0]["content"]
    assert "```python\n" in code


def test_zero_prompts():
    assert synthetic_prompts(0) == []
