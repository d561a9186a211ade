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
