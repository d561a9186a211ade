"""Each template turns a record into chat turns that carry the record's content."""

from specscope.workloads import templates


def only_user_text(messages):
    assert messages[-1]["role"] == "user"
    return messages[-1]["content"]


def test_code_edit_fences_the_code_and_asks_for_the_whole_code():
    text = only_user_text(
        templates.code_edit({"instruction": "Rename x to y.", "input": "x = 1\nprint(x)\n", "language": "python"})
    )
    assert text.startswith("Rename x to y.")
    assert "```python\nx = 1\nprint(x)\n```" in text
    assert "complete edited code" in text


def test_code_edit_without_code_has_no_fence():
    assert "```" not in only_user_text(templates.code_edit({"instruction": "Write a sort function."}))


def test_chat_keeps_history_before_the_message():
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    messages = templates.chat({"message": "  How are you?\n", "history": history})
    assert messages[:2] == history
    assert messages[2] == {"role": "user", "content": "How are you?"}


def test_summarize_math_aime_include_their_text():
    assert "news article" in only_user_text(templates.summarize({"article": "Rain fell."}))
    assert "Rain fell." in only_user_text(templates.summarize({"article": "Rain fell."}))
    assert "####" in only_user_text(templates.math({"question": "What is 2+3?"}))
    assert "\\boxed{}" in only_user_text(templates.aime({"problem": "Find n."}))


def test_gpqa_letters_the_choices_it_has():
    record = {"question": "Which?", "choice_a": "one", "choice_b": "two", "choice_d": "four"}
    text = only_user_text(templates.gpqa(record))
    assert "\nA) one\nB) two\nD) four" in text
    assert "C)" not in text
    assert "Answer: X" in text
