"""File formats: one module per file a study reads or writes — its fields, its reader and its writer.

- `layout`      the study folder: where each file lives (runs/, traces/, profile.csv, ...)
- `requests`    a measured cell's `requests.jsonl` (one record per request)
- `summary`     a measured cell's `summary.json`
- `trace`       per-position acceptance traces (native and SpecDecode-Bench JSON Lines)
- `simulation`  `simulation.csv` (what `specscope simulate` writes)
- `profile`     the profile CSV (`specscope profile` writes it, `fit-cost` reads it)
- `cost_model`  the cost-model TOML
- `files`       the bytes: the one reader of text inputs (UTF-8, BOM, size, line and column; JSON, JSON Lines,
                TOML, CSV on top) and the one atomic writer (regular files only), shared by all of them

Each format module holds its file's one validator: a value out of range is a one-line `SpecscopeError`
naming the file, the line and the field.

The lowest layer with `errors` and `settings`: nothing here imports torch or any other specscope package.
"""
