"""`python -m specscope` runs the CLI."""

from specscope.cli import main

main()
