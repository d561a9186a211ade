"""Helpers of the CLI tests: run a verb in-process, with errors reported as `specscope.cli.main` reports them."""

from typer.testing import CliRunner


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args):
    """Run a verb in-process (imports once: fast) the way `specscope.cli.main` reports errors."""
    from specscope.cli import app
    from specscope.errors import SpecscopeError

    result = CliRunner().invoke(app, [str(a) for a in args])
    err = result.exception
    if isinstance(err, SpecscopeError):
        return Result(2, result.stdout, f"specscope: error: {err}\n")
    if err is not None and not isinstance(err, SystemExit):
        raise err
    return Result(result.exit_code, result.stdout, result.stderr)


def main(*args):
    """Run the real entry point (`specscope.cli.main`) in-process, as the `specscope` script runs it.

    Returns a Result with `returncode` (from its SystemExit), `stdout`, `stderr` and `traceback`: the text of
    an exception that escaped `main` (what a user would see as a traceback), else None.
    """
    import contextlib
    import io
    import sys
    import traceback

    from specscope.cli import main as entry

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["specscope", *[str(a) for a in args]]
    code, escaped = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                entry()
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except Exception:  # noqa: BLE001 - any escape is what the tests look for
        escaped, code = traceback.format_exc(), 1
    finally:
        sys.argv = argv
    result = Result(code, out.getvalue(), err.getvalue())
    result.traceback = escaped
    return result
