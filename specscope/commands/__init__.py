"""CLI verbs, one module each; every module exposes `register(app)` (see specscope/cli.py)."""
