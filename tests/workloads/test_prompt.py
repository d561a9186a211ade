"""`Prompt.text`: one user turn is its content; a conversation becomes labelled turns."""

from specscope.workloads.prompt import Prompt


def make(messages):
    return Prompt(id="p", workload="chat", messages=tuple(messages), max_new_tokens=8)


def test_single_turn_text_is_the_content():
    assert make([{"role": "user", "content": "Hello there"}]).text == "Hello there"


def test_system_turn_is_left_out_of_plain_text():
    prompt = make([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert prompt.text == "Hi"


def test_conversation_text_labels_turns_and_cues_the_assistant():
    prompt = make(
        [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "B."}, {"role": "user", "content": "C?"}]
    )
    assert prompt.text == "User: A?\n\nAssistant: B.\n\nUser: C?\n\nAssistant:"


def test_to_json_round_trips_the_messages():
    prompt = make([{"role": "user", "content": "Hi"}])
    assert prompt.to_json()["messages"] == [{"role": "user", "content": "Hi"}]
    assert prompt.to_json()["id"] == "p"
