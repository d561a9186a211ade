"""CPU kernels: GGUF-quantised linear layers and the fused per-layer ops of the decoder.

`cpu_kernels.cpp` (AVX2 C++, built once by `build.py`) holds `ggml_linear` (x @ W^T straight from
Q4_0 / Q4_1 / Q8_0 blocks), `rms_norm`, `silu_mul` and `rope_attention`. `ggml.py` wraps the
quantised weights as `GGMLLinear` / `GGMLEmbedding` modules that drop into `DecoderModel` in place
of `nn.Linear` / `nn.Embedding`; `ops.py` offers the fused ops behind the same interface as the
decoder's torch reference ops. Every kernel's per-row result is independent of the batch/row count.
"""
