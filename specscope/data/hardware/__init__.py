"""Hardware specs the analytic cost model ships (one TOML per device, schema in specscope/formats/hardware.py)."""
