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
