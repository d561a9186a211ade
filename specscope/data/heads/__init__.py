"""Draft heads shipped for the embedded default model (see smollm2-135m/TRAINING.md); data, not code."""
