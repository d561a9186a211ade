"""The study layer: the jobs that measure and the study folder they fill.

The CLI verbs and the sweep call these with one `RunSettings` (`specscope/settings.py`); nothing
below this package knows about jobs, and nothing here parses command lines or prints tables.

- `backend`         the measurement seam: where a measured cell's requests run (`MeasurementBackend`)
- `engine_backend`  the built-in engine behind that seam: loading the target once, running a cell,
                    its request records and summary
- `measure`         measure one cell into `requests.jsonl` + `summary.json` (any backend)
- `prompts`         the prompts of a run's workload (bundled, a user's file, a dataset)
- `tracing`         per-position acceptance traces (`specscope trace`, a sweep's [trace])
- `profiling`       step timings for the cost model (`specscope profile`, a sweep's [profile])
- `simulate`        replay traces through a cost model into `simulation.csv`
- `head_training`   the data and the run behind `specscope train-head`
- `memory`          the peak memory of one cell in a long-lived process
- `sweep/`          a TOML config expanded into cells, traces and a profile, run resumably

The folder a study fills is `specscope/formats/layout.py`.
"""
