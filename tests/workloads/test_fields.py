"""Field maps and per-row checks: which column feeds which template field, and clear errors."""

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads.fields import build_field_map, extract_record, parse_field_map, to_turns
from specscope.workloads.registry import get_workload


def test_parse_field_map_accepts_commas_and_repeats():
    assert parse_field_map(["instruction=question,input=context", "language = lang"]) == {
        "instruction": "question",
        "input": "context",
        "language": "lang",
    }
    assert parse_field_map(None) == {}
    assert parse_field_map("a=b") == {"a": "b"}


@pytest.mark.parametrize("bad", ["instruction", "=x", "instruction="])
def test_parse_field_map_rejects_malformed(bad):
    with pytest.raises(SpecscopeError, match="FIELD=COLUMN"):
        parse_field_map([bad])


def test_prompt_field_maps_the_main_field():
    assert build_field_map(get_workload("math"), "q", None) == {"question": "q"}


def test_unknown_template_field_lists_the_real_ones():
    with pytest.raises(SpecscopeError, match="its fields are: instruction, input, language"):
        build_field_map(get_workload("code-edit"), None, {"code": "src"})


def test_conflicting_prompt_field_and_field():
    with pytest.raises(SpecscopeError, match="disagree"):
        build_field_map(get_workload("math"), "q", {"question": "other"})


def test_extract_record_maps_and_stringifies():
    wl = get_workload("code-edit")
    row = {"task": "Fix it", "src": 42, "extra": "ignored"}
    record = extract_record(row, wl, {"instruction": "task", "input": "src"}, "f.jsonl:1")
    assert record == {"instruction": "Fix it", "input": "42"}


def test_missing_required_field_names_location_and_fix():
    with pytest.raises(SpecscopeError) as err:
        extract_record({"q": "x"}, get_workload("math"), {}, "f.jsonl:7")
    message = str(err.value)
    assert message.startswith("f.jsonl:7: no field 'question'")
    assert "fields here: q" in message and "--prompt-field" in message
    assert "\n" not in message


def test_blank_required_field_is_an_error():
    with pytest.raises(SpecscopeError, match="f.csv:3: field 'question' is empty"):
        extract_record({"question": "   "}, get_workload("math"), {}, "f.csv:3")


def test_explicitly_mapped_optional_field_must_exist():
    with pytest.raises(SpecscopeError, match="--field input=NAME"):
        extract_record({"instruction": "x"}, get_workload("code-edit"), {"input": "code"}, "f:1")


def test_optional_field_may_be_absent():
    assert extract_record({"instruction": "x"}, get_workload("code-edit"), {}, "f:1") == {"instruction": "x"}


def test_conversation_as_message_takes_the_first_user_turn():
    row = {"conversations": [{"from": "gpt", "value": "Hi!"}, {"from": "human", "value": "Tell me a joke"},
                             {"from": "gpt", "value": "..."}, {"from": "human", "value": "Another"}]}
    record = extract_record(row, get_workload("chat"), {"message": "conversations"}, "f:1")
    assert record == {"message": "Tell me a joke"}


def test_history_turns_are_normalised():
    turns = to_turns([{"from": "human", "value": "a"}, {"role": "assistant", "content": "b"}], "history", "f:1")
    assert turns == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


@pytest.mark.parametrize("value", ["just text", [{"role": "robot", "content": "x"}], [{"role": "user"}]])
def test_bad_history_is_reported(value):
    with pytest.raises(SpecscopeError, match="f:2: field 'history'"):
        to_turns(value, "history", "f:2")


def test_json_object_where_text_is_expected():
    with pytest.raises(SpecscopeError, match="should be text"):
        extract_record({"question": {"a": 1}}, get_workload("math"), {}, "f:1")
