"""The `specscope` command line.

Each verb lives in its own module here and registers itself on the shared Typer app through a
`register(app)` function; a verb parses its options into the run's settings, calls the study layer
(`specscope/study/`) and prints. This file only assembles them and turns `SpecscopeError` and bad
command-line usage into one line on stderr with exit code 2.

Every verb prints a short human summary; `--json` adds its result as one JSON line a script can parse.
"""

from __future__ import annotations

import importlib
import sys

import typer

try:  # typer >= 0.26 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_errors

from specscope.errors import SpecscopeError

# Verb modules, in the order `specscope --help` lists them.
COMMAND_MODULES = [
    "specscope.cli.workloads",
    "specscope.cli.report",
    "specscope.cli.simulate",
    "specscope.cli.fit_cost",
    "specscope.cli.cost_model",
    "specscope.cli.probe",
    "specscope.cli.demo",
    "specscope.cli.run",
    "specscope.cli.trace",
    "specscope.cli.profile",
    "specscope.cli.train_head",
    "specscope.cli.sweep",
]

app = typer.Typer(
    name="specscope",
    help="Measure, simulate and report speculative decoding.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


@app.command()
def version() -> None:
    """Print specscope's version."""
    from specscope import __version__

    print(__version__)


def main() -> None:
    """Entry point of the `specscope` script."""
    try:
        code = app(standalone_mode=False)
    except SpecscopeError as err:
        print(f"specscope: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except click_errors.NoArgsIsHelpError as err:  # `specscope` alone: the help
        print(err.ctx.get_help())
        sys.exit(0)
    except click_errors.UsageError as err:  # a bad flag or value: one line, as for SpecscopeError
        hint = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        print(f"specscope: error: {' '.join(err.format_message().split())}{hint}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("specscope: interrupted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("specscope: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
