"""The built-in speculative decoding engine (PyTorch): model, KV cache, proposers, verification,
continuous batching and per-phase timing. Nothing outside `specscope.engine` imports torch."""
