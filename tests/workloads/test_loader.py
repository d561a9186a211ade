"""Loading prompts: every family offline, the user's own files with custom fields, seeded subsets."""

import json

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads import WORKLOADS, load_prompts


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_family_loads_offline(name):
    prompts = load_prompts(name)
    wl = WORKLOADS[name]
    assert len(prompts) >= 20
    assert len({p.id for p in prompts}) == len(prompts)
    for prompt in prompts:
        assert prompt.workload == name and prompt.source == "bundled"
        assert prompt.messages[-1]["role"] == "user" and prompt.messages[-1]["content"].strip()
        assert prompt.max_new_tokens == wl.max_new_tokens
        assert prompt.is_reasoning == wl.is_reasoning


def test_bundled_articles_have_realistic_length():
    words = [len(p.text.split()) for p in load_prompts("summarize")]
    assert 250 <= min(words) and max(words) <= 470


def test_code_edit_samples_carry_code():
    assert all("```" in p.text for p in load_prompts("code-edit"))


def test_alias_gives_canonical_workload():
    assert load_prompts("gsm8k", num_prompts=1)[0].workload == "math"


def test_seeded_subset_repeats():
    first = [p.id for p in load_prompts("chat", num_prompts=5, seed=11)]
    assert first == [p.id for p in load_prompts("chat", num_prompts=5, seed=11)]
    assert len(first) == 5
    assert first != [p.id for p in load_prompts("chat", num_prompts=5, seed=12)]


def test_local_jsonl_with_prompt_field(write_jsonl):
    path = write_jsonl([{"id": "a", "q": "What is 3+4?"}, {"q": "What is 5*6?"}])
    prompts = load_prompts("math", source=str(path), prompt_field="q")
    assert [p.id for p in prompts] == ["a", "math-0001"]
    assert "What is 5*6?" in prompts[1].text and "####" in prompts[1].text
    assert prompts[0].source == str(path)


def test_local_csv_with_field_map(tmp_path):
    path = tmp_path / "edits.csv"
    path.write_text('task,code\nAdd a docstring.,"def f():\n    return 1"\n', encoding="utf-8")
    prompts = load_prompts("code-edit", source=path, field_map={"instruction": "task", "input": "code"})
    assert len(prompts) == 1
    assert prompts[0].text.startswith("Add a docstring.")
    assert "def f():\n    return 1" in prompts[0].text


def test_local_chat_conversations_json(tmp_path):
    path = tmp_path / "sharegpt.json"
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]
    path.write_text(json.dumps([{"id": "c1", "conversations": turns}]), encoding="utf-8")
    prompts = load_prompts("chat", source=path, prompt_field="conversations")
    assert prompts[0].messages == ({"role": "user", "content": "Hi"},)


def test_missing_field_points_at_the_line(write_jsonl):
    path = write_jsonl([{"question": "ok?"}, {"text": "no question here"}])
    with pytest.raises(SpecscopeError, match=rf"{path}:2: no field 'question'"):
        load_prompts("math", source=path)


def test_empty_file(write_jsonl):
    with pytest.raises(SpecscopeError, match="has no records"):
        load_prompts("math", source=write_jsonl([]))


def test_duplicate_ids_in_user_file(write_jsonl):
    path = write_jsonl([{"id": 1, "question": "a"}, {"id": 1, "question": "b"}])
    with pytest.raises(SpecscopeError, match=rf"{path}:2: duplicate id '1' \(first at {path}:1\)"):
        load_prompts("math", source=path)


def test_unknown_workload():
    with pytest.raises(SpecscopeError, match="Unknown workload 'poems'. Available: aime, chat"):
        load_prompts("poems")


def test_missing_source_path():
    with pytest.raises(SpecscopeError, match="neither 'bundled', 'hf' nor an existing file"):
        load_prompts("math", source="no/such/file.jsonl")


def test_field_options_need_a_file():
    with pytest.raises(SpecscopeError, match="your own files only"):
        load_prompts("math", prompt_field="q")
    with pytest.raises(SpecscopeError, match="your own files only"):
        load_prompts("math", source="hf", prompt_field="q")
