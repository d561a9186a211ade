"""File formats: one module per file a study reads or writes — its fields, its reader and its writer.

- `layout`      the study folder: where each file lives (runs/, traces/, profile.csv, ...)
- `requests`    a measured cell's `requests.jsonl` (one record per request)
- `summary`     a measured cell's `summary.json`
- `trace`       per-position acceptance traces (native and SpecDecode-Bench JSON Lines)
- `simulation`  `simulation.csv` (what `specscope simulate` writes)
- `profile`     the profile CSV (`specscope profile` writes it, `fit-cost` reads it)
- `cost_model`  the cost-model TOML
- `files`       atomic writing and the one JSON Lines reader, shared by all of them

The lowest layer with `errors` and `settings`: nothing here imports torch or any other specscope package.
"""
