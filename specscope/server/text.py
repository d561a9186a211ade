"""Output token ids to streamed text: decode as tokens arrive, hold back what is not final, cut at stop strings.

    text = IncrementalText(tokenizer, stop=["\\n\\n"])
    delta = text.add([ids...])      # new text that is safe to send ("" while a character or a stop is pending)
    text.stopped                    # a stop string appeared: the output ends before it
    rest = text.finish()            # what was held back, once the sequence is done

The whole output is decoded each time (outputs are hundreds of tokens; decoding is microseconds per
token), so a multi-byte character split across tokens and tokenizer clean-ups that look at neighbours
come out exactly as in a one-shot decode. Text that could be the start of a stop string is held back
until it is either a stop (cut) or cannot be one any more (sent).
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a decoder yields for an incomplete UTF-8 sequence


class IncrementalText:
    def __init__(self, tokenizer, stop: list[str] = ()):
        self.tokenizer, self.stop = tokenizer, list(stop)
        self.ids: list[int] = []
        self.sent = ""  # text already handed out
        self.stopped = False
        self.text = ""  # the output text so far (cut at a stop string)
        self._hold = max((len(s) for s in self.stop), default=1) - 1

    def add(self, ids: list[int]) -> str:
        """Take new output tokens; returns the text that became final."""
        if self.stopped:
            return ""
        self.ids.extend(ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        cut = self._first_stop(text)
        if cut is not None:
            self.stopped, self.text = True, text[:cut]
            return self._emit(self.text)
        self.text = text
        if text.endswith(REPLACEMENT):  # a character not yet complete
            return ""
        return self._emit(text[: self._safe_end(text)])

    def finish(self) -> str:
        """The held-back rest (the sequence is done)."""
        return self._emit(self.text)

    def _safe_end(self, text: str) -> int:
        """Length of `text` that cannot be the beginning of a stop string (the rest waits)."""
        hold = 0
        for stop in self.stop:
            for n in range(min(len(stop) - 1, len(text)), hold, -1):
                if text.endswith(stop[:n]):
                    hold = n
                    break
        return len(text) - hold

    def _first_stop(self, text: str) -> int | None:
        start = max(0, len(self.sent) - self._hold)
        hits = [i for i in (text.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _emit(self, upto: str) -> str:
        if len(upto) <= len(self.sent):  # (a decoder that rewrote earlier text: the rest still goes out)
            return ""
        delta, self.sent = upto[len(self.sent):], upto
        return delta
