"""Trace-driven simulation of speculative decoding: replay acceptance traces through a cost model.

- `replay_trace`  trace -> arrays for one proposer set
- `trajectory`    each request's decode steps under a policy (positions, k, tokens committed)
- `paper`         `--mode paper`: the published SpecDecode-Bench simulator's semantics
- `serve`         `--mode serve`: continuous batching of distinct requests (fast, schedule-based)
- `serve_loop`    the same serving model as an explicit step loop, for batch-aware policies
- `result`        what one replay measures (times, tokens) and the metrics derived from it
- `reference`     a plain per-copy implementation of paper mode: the executable specification
- `grid`          configurations x batch sizes -> result rows (what `specscope simulate` prints)
- `synthetic`     SYNTHETIC traces of the published shape, for the demo, benchmark and tests

The policies — how many drafts to propose each step, from which proposer (fixed-K, oracle, oracle
combine, adaptive) — live in `specscope/policy/`, shared with the engine. Adding one: one class there
and one entry in its `POLICIES` registry; the replays only call `decide` / `observe` and read the
flags `memoryless` and `batch_aware`.

No torch anywhere in this package.
"""
