"""Streamed text: what is sent adds up to the one-shot decode, a split character waits, stop strings cut (also across
tokens) and are never sent."""

from specscope.server.text import IncrementalText


class ByteTokenizer:
    """Token id = one byte of UTF-8; decode replaces an incomplete character with U+FFFD, as real decoders do."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def feed(text: IncrementalText, data: bytes, step: int = 2) -> list[str]:
    ids = list(data)
    return [text.add(ids[i:i + step]) for i in range(0, len(ids), step)]


def test_deltas_add_up_to_the_whole_decode_and_wait_for_split_characters():
    data = "naïve café – ok".encode()
    text = IncrementalText(ByteTokenizer())
    deltas = feed(text, data, step=1)
    assert "".join(deltas) + text.finish() == data.decode()
    assert all("\ufffd" not in d for d in deltas)
    assert deltas[2] == ""  # the first byte of ï alone: nothing sent yet


def test_a_stop_string_across_tokens_ends_the_text_before_it_and_is_never_sent():
    text = IncrementalText(ByteTokenizer(), stop=["STOP"])
    deltas = feed(text, b"hello STOP world", step=3)
    sent = "".join(deltas) + text.finish()
    assert sent == "hello " and text.stopped and text.text == "hello "
    assert text.add(list(b"more")) == ""  # nothing after a stop


def test_text_that_could_start_a_stop_is_held_until_it_cannot():
    text = IncrementalText(ByteTokenizer(), stop=["###"])
    assert text.add(list(b"a #")) == "a "  # "#" could begin "###": it waits
    assert text.add(list(b"#")) == ""  # "##" still could
    assert text.add(list(b"b")) == "##b"  # "##b" cannot: out it goes
    assert text.finish() == "" and not text.stopped
