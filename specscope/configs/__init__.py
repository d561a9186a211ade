"""Shipped sweep configs (TOML data files): `demo.toml` is what `specscope demo` runs."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEMO_CONFIG = CONFIG_DIR / "demo.toml"
