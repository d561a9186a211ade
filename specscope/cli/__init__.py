"""The `specscope` command line.

Each verb lives in its own module under `specscope.commands` and registers itself on the shared
Typer app through a `register(app)` function; this file only assembles them and turns
`SpecscopeError` into one line on stderr with exit code 2.

Every verb prints a short human table and ends with one JSON line a script can parse.
"""

from __future__ import annotations

import importlib
import sys

import typer

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
        app()
    except SpecscopeError as err:
        print(f"specscope: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("specscope: interrupted", file=sys.stderr)
        sys.exit(130)
