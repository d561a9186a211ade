"""`--source hf`: dataset rows become records; without `datasets` or network, one clear line."""

import sys
import types

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads import hf, load_prompts


def test_adapters_map_dataset_rows():
    assert hf.instructcoder_row({"instruction": "Fix", "input": "x=1", "output": "x=2"}, 3) == (
        "instructcoder-3", {"instruction": "Fix", "input": "x=1"})
    assert hf.cnn_dailymail_row({"id": "abc", "article": "Text", "highlights": "T"}, 0) == ("abc", {"article": "Text"})
    assert hf.gsm8k_row({"question": "Q?", "answer": "#### 4"}, 5) == ("gsm8k-5", {"question": "Q?"})
    assert hf.aime_row({"id": 60, "problem": "P", "answer": "7"}, 0) == ("60", {"problem": "P"})
    assert hf.instructcoder_row({"instruction": " ", "input": "x"}, 0) is None


def test_sharegpt_takes_the_first_human_turn():
    row = {"id": "s1", "conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "Q1"},
                                         {"from": "gpt", "value": "A1"}, {"from": "human", "value": "Q2"}]}
    assert hf.sharegpt_row(row, 0) == ("s1", {"message": "Q1"})
    assert hf.sharegpt_row({"id": "s2", "conversations": []}, 1) is None


def test_gpqa_shuffle_is_stable_and_keeps_all_answers():
    row = {"Record ID": "rec1", "Question": "Q", "Correct Answer": "right",
           "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"}
    record_id, record = hf.gpqa_row(row, 0)
    assert record_id == "rec1" and record["question"] == "Q"
    choices = [record[k] for k in ("choice_a", "choice_b", "choice_c", "choice_d")]
    assert sorted(choices) == ["right", "w1", "w2", "w3"]
    assert hf.gpqa_row(row, 0) == (record_id, record)


def test_without_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(SpecscopeError) as err:
        load_prompts("math", source="hf")
    assert "pip install 'specscope[hf]'" in str(err.value) and "\n" not in str(err.value)


def fake_datasets(monkeypatch, load_dataset):
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_unreachable_dataset_is_one_line(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)\nmore detail")

    fake_datasets(monkeypatch, offline)
    with pytest.raises(SpecscopeError) as err:
        load_prompts("math", source="hf")
    message = str(err.value)
    assert message.startswith("could not load Hugging Face dataset openai/gsm8k/main:test: Couldn't reach")
    assert "HF_DATASETS_OFFLINE" in message and "\n" not in message


def test_gated_dataset_hint(monkeypatch):
    def gated(*args, **kwargs):
        raise PermissionError("Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub")

    fake_datasets(monkeypatch, gated)
    with pytest.raises(SpecscopeError, match="accept its terms"):
        load_prompts("gpqa", source="hf")


def test_loaded_rows_become_prompts(monkeypatch):
    calls = []

    def load_dataset(repo, config, split):
        calls.append((repo, config, split))
        return [{"question": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(30)]

    fake_datasets(monkeypatch, load_dataset)
    prompts = load_prompts("gsm8k", source="hf", num_prompts=4, seed=0)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert len(prompts) == 4 and all(p.source == "hf:openai/gsm8k" for p in prompts)
    assert all(p.id.startswith("gsm8k-") and "####" in p.text for p in prompts)
    assert [p.id for p in prompts] == [p.id for p in load_prompts("gsm8k", source="hf", num_prompts=4, seed=0)]


def test_duplicate_ids_in_a_dataset_are_renamed(monkeypatch):
    fake_datasets(monkeypatch, lambda *a, **k: [{"id": "x", "article": "one"}, {"id": "x", "article": "two"}])
    assert [p.id for p in load_prompts("cnn", source="hf")] == ["x", "x#2"]
