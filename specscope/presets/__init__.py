"""Cost-model presets: one TOML data file per model x hardware, each with its provenance.

Read them with `specscope.costs.load_cost_model(name)`; add one by dropping a `<name>.toml` here
(or pass any cost-model file by path). The numbers live in the files, never in code.
"""
