"""Sweeps: from one TOML config to a study folder (`specscope sweep CONFIG.toml -o DIR`).

- `config.py`  reads and validates the config and expands it into steps (torch-free);
- `preflight.py` what the config alone cannot settle, checked before any work: the target, drafts, heads,
               device, prompts (reads the target's metadata only);
- `lock.py`    one sweep at a time per study folder (`sweep/lock`);
- `state.py`   which steps are done, and writing a cell's folder atomically (torch-free);
- `memory.py`  peak resident memory per cell in a long-lived process (torch-free);
- `execute.py` runs measured cells, traces and the profile on one loaded target (the engine side);
- `finish.py`  fits the cost model, simulates the traces and writes the report (torch-free).
"""
