"""Shipped sweep configs (TOML data files): `demo.toml` is what `specscope demo` runs; `full.toml` the full study
(every workload and method, chains and the chain-vs-tree comparison: `specscope sweep specscope/configs/full.toml
-o DIR`)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEMO_CONFIG = CONFIG_DIR / "demo.toml"
FULL_CONFIG = CONFIG_DIR / "full.toml"
