"""User-facing errors.

Anything the user can fix (a bad file, an unknown name, a bad flag value) raises `SpecscopeError`
with a one-line message saying what is wrong, where, and how to fix it. The CLI prints it as
`specscope: error: ...` and exits with code 2 — never a traceback.
"""


class SpecscopeError(Exception):
    """An error caused by the user's input; the message is shown as a single line."""

    exit_code = 2


def unknown_name(kind: str, name: str, available) -> SpecscopeError:
    """The registry error: `Unknown workload 'x'. Available: a, b, c`."""
    return SpecscopeError(f"Unknown {kind} '{name}'. Available: {', '.join(sorted(available))}")


def brief(value, limit: int = 40) -> str:
    """`value` as an error message shows it: its repr, cut to about `limit` characters (a one-line error never
    carries a whole file's worth of a runaway field)."""
    return shorten(repr(value), limit)


def shorten(text: str, limit: int = 80) -> str:
    """`text` on one line, cut to about `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(message: str, limit: int = 2000) -> str:
    """How the CLI prints an error: one line, at most `limit` characters (a last guard: messages are short)."""
    return shorten(message, limit)
