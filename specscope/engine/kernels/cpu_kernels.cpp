// specscope's CPU kernels (x86-64, AVX2/FMA/F16C), registered as torch.ops.specscope.*:
//   ggml_linear     weight-only quantised linear layer on GGUF's own blocks (below)
//   rms_norm        RMSNorm of each row
//   silu_mul        silu(gate) * up of a fused [gate | up] row
//   rope_attention  q/k norm (Qwen3, optional), rotary embedding, KV-cache write and causal attention
//                   of packed ragged tokens, each token reading its own sequence's cache slot
//                   (rope_attention_tree: the same, each token seeing only the keys it lists: draft trees)
//
// Design rule for all of them: a row's result depends only on that row's inputs, never on how many
// rows share the call, the tiling or the thread count. Speculative decoding relies on it: the same
// token gets bit-identical logits whether it is decoded alone or verified in a chunk of k + 1.
//
// ggml_linear: y[M, N] = x[M, K] @ W[N, K]^T, with W's rows stored as consecutive GGUF blocks of 32 weights:
//   Q4_0 (18 bytes): fp16 d, 16 bytes of nibbles;          w = d * (q - 8)
//   Q4_1 (20 bytes): fp16 d, fp16 m, 16 bytes of nibbles;  w = d * q + m
//   Q8_0 (34 bytes): fp16 d, 32 int8;                      w = d * q
// (nibble j of a block: the low half of byte j for j < 16, the high half of byte j - 16 otherwise).
//
// Numerics: each weight is dequantised to the float32 value the gguf package's reference
// dequantisation gives (d * q is exact in float32, then one rounding for + m, as in an FMA).
// Every output element is ONE float32 accumulator of 8 lanes running over K in order, then a fixed
// horizontal sum. The GEMV path (M == 1), the small-batch path (2 <= M <= small_m, at most 4) and the
// tiled GEMM path (larger M) do exactly the same arithmetic per element, so a row's result never
// depends on how many rows share the call, on the path, the tiling, or the thread count: the same
// token gets the same logits in a chunk of 1 or of k + 1.
//
// Why three paths: dequantising weights (unpack, convert, scale) costs several vector ops per 8
// weights, their product with one activation row one FMA; at 1-4 rows dequantising, not memory or
// FMAs, is most of the work. GEMV and the small-batch path dequantise each block once, in registers,
// for all rows (2 rows cost ~1.2x one). The tiled GEMM dequantises 3 weight rows into a float scratch
// and runs a register-tiled matmul over it: its store and reload cost more than they save below ~5
// rows (2 rows cost ~1.5x one), but from 8 rows on the matmul's register reuse pays.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

constexpr int kBlock = 32;

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Horizontal sums with one fixed association for every lane: ((x0+x1)+(x2+x3)) + ((x4+x5)+(x6+x7)).
// hsum4 gives the four sums of a..d in one go, each exactly equal to hsum of that vector.
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

inline float hsum(__m256 v) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(v, v), _mm256_hadd_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
}

// Each format: bytes per block, and the 8 dequantised weights of chunk c (0..3) of a block.
struct Q4_0 {
  static constexpr int kBytes = 18;
  static inline void scales(const uint8_t* b, __m256& d, __m256& m) {
    d = _mm256_set1_ps(half_at(b));
    m = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));  // d * (q - 8) = d * q + (-8 d): -8 d is exact
  }
  static inline __m256 chunk(const uint8_t* b, int c, __m256 d, __m256 m) {
    __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(b + 2 + (c & 1) * 8)));
    q = c < 2 ? _mm256_and_si256(q, _mm256_set1_epi32(15)) : _mm256_srli_epi32(q, 4);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);
  }
};

struct Q4_1 {
  static constexpr int kBytes = 20;
  static inline void scales(const uint8_t* b, __m256& d, __m256& m) {
    d = _mm256_set1_ps(half_at(b));
    m = _mm256_set1_ps(half_at(b + 2));
  }
  static inline __m256 chunk(const uint8_t* b, int c, __m256 d, __m256 m) {
    __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(b + 4 + (c & 1) * 8)));
    q = c < 2 ? _mm256_and_si256(q, _mm256_set1_epi32(15)) : _mm256_srli_epi32(q, 4);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);
  }
};

struct Q8_0 {
  static constexpr int kBytes = 34;
  static inline void scales(const uint8_t* b, __m256& d, __m256& m) {
    d = _mm256_set1_ps(half_at(b));
    m = _mm256_setzero_ps();
  }
  static inline __m256 chunk(const uint8_t* b, int c, __m256 d, __m256) {
    __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(b + 2 + c * 8)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
  }
};

// GEMV: NB weight rows against one activation row, dequantising on the fly.
template <class F, int NB>
inline void gemv_rows(const float* x, const uint8_t* w, int64_t row_bytes, int64_t nblocks, float* y) {
  __m256 acc[NB];
  for (int n = 0; n < NB; ++n) acc[n] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblocks; ++g) {
    const float* xg = x + g * kBlock;
    const __m256 x0 = _mm256_loadu_ps(xg), x1 = _mm256_loadu_ps(xg + 8);
    const __m256 x2 = _mm256_loadu_ps(xg + 16), x3 = _mm256_loadu_ps(xg + 24);
    for (int n = 0; n < NB; ++n) {
      const uint8_t* b = w + n * row_bytes + g * F::kBytes;
      _mm_prefetch((const char*)(b + NB * row_bytes), _MM_HINT_T0);  // the same block of the next rows
      __m256 d, m;
      F::scales(b, d, m);
      acc[n] = _mm256_fmadd_ps(x0, F::chunk(b, 0, d, m), acc[n]);
      acc[n] = _mm256_fmadd_ps(x1, F::chunk(b, 1, d, m), acc[n]);
      acc[n] = _mm256_fmadd_ps(x2, F::chunk(b, 2, d, m), acc[n]);
      acc[n] = _mm256_fmadd_ps(x3, F::chunk(b, 3, d, m), acc[n]);
    }
  }
  for (int n = 0; n < NB; ++n) y[n] = hsum(acc[n]);
}

// Small-M GEMV: NB weight rows against MR activation rows (x rows ldx apart, y rows ldy apart). Each
// weight block is read and dequantised once, in registers, and feeds all MR rows: a verification step
// of 2-4 tokens reads the weights once, as a 1-token step does, and adds only MR - 1 FMAs per chunk.
// Per output element it is the same accumulator, updated in the same order, as gemv_rows and micro.
template <class F, int MR, int NB>
inline void gemv_multi(const float* x, int64_t ldx, const uint8_t* w, int64_t row_bytes, int64_t nblocks, float* y,
                       int64_t ldy) {
  __m256 acc[MR][NB];
  for (int i = 0; i < MR; ++i)
    for (int n = 0; n < NB; ++n) acc[i][n] = _mm256_setzero_ps();
  for (int64_t g = 0; g < nblocks; ++g) {
    const float* xg = x + g * kBlock;
    for (int n = 0; n < NB; ++n) {
      const uint8_t* b = w + n * row_bytes + g * F::kBytes;
      _mm_prefetch((const char*)(b + NB * row_bytes), _MM_HINT_T0);  // the same block of the next rows
      __m256 d, m;
      F::scales(b, d, m);
      for (int c = 0; c < 4; ++c) {
        const __m256 wc = F::chunk(b, c, d, m);
        for (int i = 0; i < MR; ++i) acc[i][n] = _mm256_fmadd_ps(_mm256_loadu_ps(xg + i * ldx + 8 * c), wc, acc[i][n]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int n = 0; n < NB; ++n) y[i * ldy + n] = hsum(acc[i][n]);
}

// All N outputs of MR activation rows with gemv_multi, tiles of NB weight rows spread over the threads.
template <class F, int MR, int NB>
void small_m_linear(const float* x, const uint8_t* w, float* y, int64_t N, int64_t K) {
  const int64_t nblocks = K / kBlock, row_bytes = nblocks * F::kBytes;
  at::parallel_for(0, (N + NB - 1) / NB, 32 / NB, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n0 = t * NB;
      if (n0 + NB <= N) {
        gemv_multi<F, MR, NB>(x, K, w + n0 * row_bytes, row_bytes, nblocks, y + n0, N);
      } else {
        for (int64_t n = n0; n < N; ++n) gemv_multi<F, MR, 1>(x, K, w + n * row_bytes, row_bytes, nblocks, y + n, N);
      }
    }
  });
}

// Dequantise `rows` weight rows into a float scratch [rows, K].
template <class F>
inline void dequant_rows(const uint8_t* w, int64_t row_bytes, int64_t nblocks, int64_t rows, float* out) {
  const int64_t K = nblocks * kBlock;
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t g = 0; g < nblocks; ++g) {
      const uint8_t* b = w + n * row_bytes + g * F::kBytes;
      __m256 d, m;
      F::scales(b, d, m);
      float* o = out + n * K + g * kBlock;
      for (int c = 0; c < 4; ++c) _mm256_storeu_ps(o + 8 * c, F::chunk(b, c, d, m));
    }
  }
}

// GEMM micro-kernel: MB activation rows x NR dequantised weight rows, one accumulator per element.
template <int MB, int NR>
inline void micro(const float* x, int64_t ldx, const float* w, int64_t K, float* y, int64_t ldy) {
  __m256 acc[MB][NR];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm256_loadu_ps(w + j * K + k);
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = hsum(acc[i][j]);
}

template <int NR>
inline void micro_rows(const float* x, int64_t M, int64_t K, const float* w, float* y, int64_t N) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4) micro<4, NR>(x + i * K, K, w, K, y + i * N, N);
  switch (M - i) {
    case 3: micro<3, NR>(x + i * K, K, w, K, y + i * N, N); break;
    case 2: micro<2, NR>(x + i * K, K, w, K, y + i * N, N); break;
    case 1: micro<1, NR>(x + i * K, K, w, K, y + i * N, N); break;
  }
}

constexpr int64_t kGemvRows = 8;   // rows per GEMV step
constexpr int64_t kTileRows = 24;  // weight rows dequantised per GEMM tile (multiple of 3)
constexpr int64_t kTileM = 64;     // activation rows per GEMM pass (keeps them in L2)

template <class F>
void linear_impl(const float* x, const uint8_t* w, float* y, int64_t M, int64_t N, int64_t K, int64_t small_m) {
  const int64_t nblocks = K / kBlock, row_bytes = nblocks * F::kBytes;
  if (M >= 2 && M <= small_m) {  // tile widths chosen by benchmarks/bench_step.py --kernels (AVX2, 16 registers)
    switch (M) {
      case 2: small_m_linear<F, 2, 4>(x, w, y, N, K); return;
      case 3: small_m_linear<F, 3, 2>(x, w, y, N, K); return;
      case 4: small_m_linear<F, 4, 2>(x, w, y, N, K); return;
    }
  }
  if (M == 1) {
    at::parallel_for(0, (N + kGemvRows - 1) / kGemvRows, 4, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n0 = t * kGemvRows;
        if (n0 + kGemvRows <= N) {
          gemv_rows<F, kGemvRows>(x, w + n0 * row_bytes, row_bytes, nblocks, y + n0);
        } else {
          for (int64_t n = n0; n < N; ++n) gemv_rows<F, 1>(x, w + n * row_bytes, row_bytes, nblocks, y + n);
        }
      }
    });
    return;
  }
  at::parallel_for(0, (N + kTileRows - 1) / kTileRows, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(3 * K);  // 3 dequantised weight rows: stays in L1/L2 while all x rows pass
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n0 = t * kTileRows, rows = std::min(kTileRows, N - n0);
      for (int64_t m0 = 0; m0 < M; m0 += kTileM) {
        const int64_t mrows = std::min(kTileM, M - m0);
        const float* xm = x + m0 * K;
        float* ym = y + m0 * N + n0;
        int64_t j = 0;
        for (; j + 3 <= rows; j += 3) {
          dequant_rows<F>(w + (n0 + j) * row_bytes, row_bytes, nblocks, 3, scratch.data());
          micro_rows<3>(xm, mrows, K, scratch.data(), ym + j, N);
        }
        for (; j < rows; ++j) {
          dequant_rows<F>(w + (n0 + j) * row_bytes, row_bytes, nblocks, 1, scratch.data());
          micro_rows<1>(xm, mrows, K, scratch.data(), ym + j, N);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Elementwise helpers.

// exp(x) for 8 floats: 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2, degree-6 polynomial (the
// coefficients of Cephes' expf); relative error ~1e-7. Inputs below -87.3 give ~1e-38 (softmax: 0).
inline __m256 exp256(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365478515625f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// x[i] = exp(x[i] - shift) for n floats (the tail goes through the same vector code).
inline void exp_shifted(float* x, int64_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
  if (i < n) {
    alignas(32) float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    _mm256_store_ps(tail, exp256(_mm256_sub_ps(_mm256_load_ps(tail), s)));
    std::memcpy(x + i, tail, (n - i) * sizeof(float));
  }
}

// Sum of n floats: 8 lanes in order, the fixed horizontal sum, then the tail in order.
inline float sum_floats(const float* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
  float s = hsum(acc);
  for (; i < n; ++i) s += x[i];
  return s;
}

inline float max_floats(const float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// Dot product of two float vectors of length D (a multiple of 8): one 8-lane accumulator in order.
inline float dot(const float* a, const float* b, int64_t D) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t c = 0; c < D; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), acc);
  return hsum(acc);
}

// Four dot products of `a` with b0..b3 (each exactly as `dot` computes it).
inline __m128 dot4(const float* a, const float* b0, const float* b1, const float* b2, const float* b3, int64_t D) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t c = 0; c < D; c += 8) {
    const __m256 av = _mm256_loadu_ps(a + c);
    s0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + c), s0);
    s1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + c), s1);
    s2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + c), s2);
    s3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + c), s3);
  }
  return hsum4(s0, s1, s2, s3);
}

// y = w * (x * rsqrt(mean(x^2) + eps)), Hugging Face's LlamaRMSNorm order of operations.
inline void rms_norm_row(const float* x, const float* w, float eps, int64_t D, float* y) {
  const float inv = 1.0f / std::sqrt(dot(x, x, D) / static_cast<float>(D) + eps);
  const __m256 vinv = _mm256_set1_ps(inv);
  for (int64_t c = 0; c < D; c += 8)
    _mm256_storeu_ps(y + c, _mm256_mul_ps(_mm256_loadu_ps(w + c), _mm256_mul_ps(_mm256_loadu_ps(x + c), vinv)));
}

// Rotary embedding, halves layout: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
inline void rope_row(const float* x, const float* cos, const float* sin, int64_t D, float* y) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float x1 = x[i], x2 = x[i + half];
    y[i] = x1 * cos[i] - x2 * sin[i];
    y[i + half] = x2 * cos[i] + x1 * sin[i];
  }
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && w.is_contiguous() && w.scalar_type() == at::kFloat,
              "rms_norm: contiguous float32 tensors expected");
  const int64_t D = x.size(-1), M = x.numel() / D;
  TORCH_CHECK(D % 8 == 0 && w.numel() == D, "rms_norm: last dimension must be a multiple of 8 and match the weight");
  at::Tensor y = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, M, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) rms_norm_row(xp + i * D, wp, static_cast<float>(eps), D, yp + i * D);
  });
  return y;
}

// [M, 2I] = [gate | up] -> [M, I] = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
at::Tensor silu_mul(const at::Tensor& gu) {
  TORCH_CHECK(gu.dim() == 2 && gu.scalar_type() == at::kFloat && gu.is_contiguous(), "silu_mul: contiguous float32 [M, 2I]");
  const int64_t M = gu.size(0), I = gu.size(1) / 2;
  TORCH_CHECK(I % 8 == 0, "silu_mul: width must be a multiple of 16");
  at::Tensor y = at::empty({M, I}, gu.options());
  const float* gp = gu.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, M, 4, [&](int64_t b, int64_t e) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (int64_t i = b; i < e; ++i) {
      const float *g = gp + i * 2 * I, *u = g + I;
      for (int64_t c = 0; c < I; c += 8) {
        const __m256 gv = _mm256_loadu_ps(g + c);
        const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, gv))));
        _mm256_storeu_ps(yp + i * I + c, _mm256_mul_ps(s, _mm256_loadu_ps(u + c)));
      }
    }
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// Attention over a slot KV cache.

// Softmax-weighted sum of `len` value rows (stride D) with weights p (unnormalised), times `inv`.
// Then, continuing the same accumulators, `extra` more rows v + idx[e] * D with weights p[len + e]
// (a tree token's ancestors): the sum runs over keys in one order whatever their cache layout.
inline void weighted_values(const float* p, int64_t len, const float* v, int64_t D, float inv, float* out,
                            const int64_t* idx = nullptr, int64_t extra = 0) {
  const __m256 vinv = _mm256_set1_ps(inv);
  for (int64_t d0 = 0; d0 < D; d0 += 64) {  // 8 independent accumulators of 8 lanes per pass
    const int64_t chunks = std::min<int64_t>(8, (D - d0) / 8);
    __m256 acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t j = 0; j < len; ++j) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      const float* vj = v + j * D + d0;
      for (int c = 0; c < chunks; ++c) acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * c), acc[c]);
    }
    for (int64_t e = 0; e < extra; ++e) {
      const __m256 pj = _mm256_set1_ps(p[len + e]);
      const float* vj = v + idx[e] * D + d0;
      for (int c = 0; c < chunks; ++c) acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * c), acc[c]);
    }
    for (int c = 0; c < chunks; ++c) _mm256_storeu_ps(out + d0 + 8 * c, _mm256_mul_ps(acc[c], vinv));
  }
}

// qkv: [N, (H + 2G) * D] packed tokens (q heads, then k heads, then v heads);
// cache_k/v: [S, G, L, D] one layer; slot/pos: [N] int64; cos/sin: [N, D / 2];
// q_norm/k_norm: [D] or empty. Writes each token's rotated k and its v at (slot, pos), then each
// token attends to positions 0..pos of its slot. Returns [N, H * D].
// `visible` (rope_attention_tree): [N, W] int64 per token, col 0 = P, then cache indices of further keys
// (-1 padded): the token attends to positions 0..P-1 and then those keys, in that order, instead of
// 0..pos. A draft-tree token sees the prefix and its ancestors; with keys in the same order as a chain
// it gets exactly the result that token would get in plain decoding.
at::Tensor rope_attention_impl(const at::Tensor& qkv, at::Tensor cache_k, at::Tensor cache_v, const at::Tensor& slot,
                               const at::Tensor& pos, const at::Tensor& cos, const at::Tensor& sin,
                               const at::Tensor& q_norm, const at::Tensor& k_norm, double eps, int64_t H, int64_t G,
                               double scale, const at::Tensor* visible) {
  TORCH_CHECK(qkv.scalar_type() == at::kFloat && qkv.is_contiguous() && cache_k.scalar_type() == at::kFloat &&
                  cache_v.scalar_type() == at::kFloat && cache_k.is_contiguous() && cache_v.is_contiguous() &&
                  cos.is_contiguous() && sin.is_contiguous(),
              "rope_attention: contiguous float32 tensors expected");
  TORCH_CHECK(slot.scalar_type() == at::kLong && pos.scalar_type() == at::kLong, "rope_attention: int64 slot/pos");
  const int64_t N = qkv.size(0), S = cache_k.size(0), L = cache_k.size(2), D = cache_k.size(3);
  TORCH_CHECK(cache_k.size(1) == G && qkv.size(1) == (H + 2 * G) * D && D % 8 == 0 && H % G == 0,
              "rope_attention: shapes do not match");
  const int64_t width = (H + 2 * G) * D, group = H / G;
  const float *qp = qkv.data_ptr<float>(), *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  const float* qn = q_norm.numel() ? q_norm.data_ptr<float>() : nullptr;
  const float* kn = k_norm.numel() ? k_norm.data_ptr<float>() : nullptr;
  const int64_t *slots = slot.data_ptr<int64_t>(), *poss = pos.data_ptr<int64_t>();
  float *kc = cache_k.data_ptr<float>(), *vc = cache_v.data_ptr<float>();
  for (int64_t n = 0; n < N; ++n)
    TORCH_CHECK(slots[n] >= 0 && slots[n] < S && poss[n] >= 0 && poss[n] < L, "rope_attention: slot/pos out of range");
  const int64_t* vis = nullptr;
  int64_t W = 0;
  if (visible) {
    TORCH_CHECK(visible->scalar_type() == at::kLong && visible->is_contiguous() && visible->dim() == 2 &&
                    visible->size(0) == N && visible->size(1) >= 1,
                "rope_attention_tree: visible must be contiguous int64 [N, W]");
    vis = visible->data_ptr<int64_t>();
    W = visible->size(1);
    for (int64_t n = 0; n < N; ++n) {
      TORCH_CHECK(vis[n * W] >= 0 && vis[n * W] <= L, "rope_attention_tree: prefix out of range");
      bool any = vis[n * W] > 0;
      for (int64_t w = 1; w < W && vis[n * W + w] >= 0; ++w) {
        TORCH_CHECK(vis[n * W + w] < L, "rope_attention_tree: key index out of range");
        any = true;
      }
      TORCH_CHECK(any, "rope_attention_tree: a token must see at least one key");
    }
  }
  const float feps = static_cast<float>(eps), fscale = static_cast<float>(scale);

  // 1. Keys (normed, rotated) and values of the new tokens into the cache.
  at::parallel_for(0, N * G, 16, [&](int64_t b, int64_t e) {
    std::vector<float> tmp(D);
    for (int64_t t = b; t < e; ++t) {
      const int64_t n = t / G, g = t % G;
      const float* k = qp + n * width + (H + g) * D;
      const float* v = qp + n * width + (H + G + g) * D;
      const int64_t off = ((slots[n] * G + g) * L + poss[n]) * D;
      if (kn) {
        rms_norm_row(k, kn, feps, D, tmp.data());
        k = tmp.data();
      }
      rope_row(k, cp + n * (D / 2), sp + n * (D / 2), D, kc + off);
      std::memcpy(vc + off, v, D * sizeof(float));
    }
  });

  // 2. Each (token, kv head): the `group` query heads sharing it attend to positions 0..pos.
  at::Tensor out = at::empty({N, H * D}, qkv.options());
  float* op = out.data_ptr<float>();
  at::parallel_for(0, N * G, 1, [&](int64_t b, int64_t e) {
    std::vector<float> q(group * D), tmp(D), scores;
    for (int64_t t = b; t < e; ++t) {
      const int64_t n = t / G, g = t % G;
      int64_t len = poss[n] + 1, extra = 0;  // keys 0..len-1, then `extra` keys at idx[0..extra)
      const int64_t* idx = nullptr;
      if (vis) {
        len = vis[n * W];
        idx = vis + n * W + 1;
        while (extra < W - 1 && idx[extra] >= 0) ++extra;
      }
      const float* keys = kc + (slots[n] * G + g) * L * D;
      const float* values = vc + (slots[n] * G + g) * L * D;
      for (int64_t i = 0; i < group; ++i) {
        const float* qin = qp + n * width + (g * group + i) * D;
        if (qn) {
          rms_norm_row(qin, qn, feps, D, tmp.data());
          qin = tmp.data();
        }
        rope_row(qin, cp + n * (D / 2), sp + n * (D / 2), D, q.data() + i * D);
      }
      const int64_t total = len + extra;
      if (static_cast<int64_t>(scores.size()) < group * total) scores.resize(group * total);
      for (int64_t i = 0; i < group; ++i) {
        const float* qi = q.data() + i * D;
        float* s = scores.data() + i * total;
        int64_t j = 0;
        for (; j + 4 <= len; j += 4) {
          const float* kj = keys + j * D;
          _mm_storeu_ps(s + j, _mm_mul_ps(dot4(qi, kj, kj + D, kj + 2 * D, kj + 3 * D, D), _mm_set1_ps(fscale)));
        }
        for (; j < len; ++j) s[j] = dot(qi, keys + j * D, D) * fscale;
        for (int64_t e = 0; e < extra; ++e) s[len + e] = dot(qi, keys + idx[e] * D, D) * fscale;
        exp_shifted(s, total, max_floats(s, total));
        weighted_values(s, len, values, D, 1.0f / sum_floats(s, total), op + n * H * D + (g * group + i) * D, idx,
                        extra);
      }
    }
  });
  return out;
}

at::Tensor rope_attention(const at::Tensor& qkv, at::Tensor cache_k, at::Tensor cache_v, const at::Tensor& slot,
                          const at::Tensor& pos, const at::Tensor& cos, const at::Tensor& sin,
                          const at::Tensor& q_norm, const at::Tensor& k_norm, double eps, int64_t H, int64_t G,
                          double scale) {
  return rope_attention_impl(qkv, cache_k, cache_v, slot, pos, cos, sin, q_norm, k_norm, eps, H, G, scale, nullptr);
}

at::Tensor rope_attention_tree(const at::Tensor& qkv, at::Tensor cache_k, at::Tensor cache_v, const at::Tensor& slot,
                               const at::Tensor& pos, const at::Tensor& cos, const at::Tensor& sin,
                               const at::Tensor& q_norm, const at::Tensor& k_norm, double eps, int64_t H, int64_t G,
                               double scale, const at::Tensor& visible) {
  return rope_attention_impl(qkv, cache_k, cache_v, slot, pos, cos, sin, q_norm, k_norm, eps, H, G, scale, &visible);
}

at::Tensor ggml_linear(const at::Tensor& x, const at::Tensor& w, int64_t qtype, int64_t out_features, int64_t small_m) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous() && x.device().is_cpu(),
              "ggml_linear: x must be a contiguous 2-D float32 CPU tensor");
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == at::kByte && w.is_contiguous() && w.size(0) == out_features,
              "ggml_linear: w must be contiguous uint8 [out_features, row_bytes]");
  const int64_t M = x.size(0), K = x.size(1), N = out_features;
  TORCH_CHECK(K % kBlock == 0, "ggml_linear: in_features must be a multiple of 32");
  at::Tensor y = at::empty({M, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const uint8_t* wp = w.data_ptr<uint8_t>();
  float* yp = y.data_ptr<float>();
  const int64_t nblocks = K / kBlock;
  switch (qtype) {  // ggml type ids
    case 2: TORCH_CHECK(w.size(1) == nblocks * Q4_0::kBytes, "ggml_linear: bad Q4_0 row size");
            linear_impl<Q4_0>(xp, wp, yp, M, N, K, small_m); break;
    case 3: TORCH_CHECK(w.size(1) == nblocks * Q4_1::kBytes, "ggml_linear: bad Q4_1 row size");
            linear_impl<Q4_1>(xp, wp, yp, M, N, K, small_m); break;
    case 8: TORCH_CHECK(w.size(1) == nblocks * Q8_0::kBytes, "ggml_linear: bad Q8_0 row size");
            linear_impl<Q8_0>(xp, wp, yp, M, N, K, small_m); break;
    default: TORCH_CHECK(false, "ggml_linear: unsupported ggml type ", qtype);
  }
  return y;
}

}  // namespace

TORCH_LIBRARY(specscope, m) {
  m.def("ggml_linear(Tensor x, Tensor w, int qtype, int out_features, int small_m=4) -> Tensor");
  m.def("rms_norm(Tensor x, Tensor w, float eps) -> Tensor");
  m.def("silu_mul(Tensor gate_up) -> Tensor");
  m.def(
      "rope_attention(Tensor qkv, Tensor(a!) cache_k, Tensor(b!) cache_v, Tensor slot, Tensor pos, Tensor cos, "
      "Tensor sin, Tensor q_norm, Tensor k_norm, float eps, int num_heads, int num_kv_heads, float scale) -> Tensor");
  m.def(
      "rope_attention_tree(Tensor qkv, Tensor(a!) cache_k, Tensor(b!) cache_v, Tensor slot, Tensor pos, Tensor cos, "
      "Tensor sin, Tensor q_norm, Tensor k_norm, float eps, int num_heads, int num_kv_heads, float scale, "
      "Tensor visible) -> Tensor");
}

TORCH_LIBRARY_IMPL(specscope, CPU, m) {
  m.impl("ggml_linear", &ggml_linear);
  m.impl("rms_norm", &rms_norm);
  m.impl("silu_mul", &silu_mul);
  m.impl("rope_attention", &rope_attention);
  m.impl("rope_attention_tree", &rope_attention_tree);
}
