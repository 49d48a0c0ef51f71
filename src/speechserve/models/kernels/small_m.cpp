// Small-row matmuls for CPUs with AVX2 + FMA: y[M, N] = x[M, K] · w[N, K]ᵀ for M = 1 … 12 rows (more in
// passes of 12), with w in fp32, or in int8 with one fp32 scale per output row (weight-only int8: ISQ's CPU
// path, see speechserve/models/quantize.py).
//
// Why this exists (measured on the project's 2-core AMD EPYC, MKL torch build, one 9216×3072 weight; see
// speechserve/models/small_m.py): at 2–12 rows the product is bandwidth-bound — every weight element is used
// M times, far below what the cores could compute — so the floor is reading the weight once. MKL's sgemm and
// oneDNN's prepacked linear both pay about 2× a single row's time at 6 rows (they pack the weight, which
// costs another pass over it), and `F.linear` pays ~5×. This kernel streams each weight row exactly once
// and keeps every input row in registers' reach: at 6 rows it costs 1.35× one row.
//
// Layout: each thread takes a contiguous range of output rows; for R (1 or 2) weight rows at a time it
// keeps R × M eight-wide accumulators in registers (≤ 12 of the 16 ymm registers), reads 8 weights per row
// and 8 values of each input row per step, and reduces the accumulators at the end. The sum order differs
// from BLAS, so results equal `F.linear` up to rounding (tested within 1e-5).
//
// The int8 form reads a quarter of the bytes (see the integer section below): x is rounded per row to int16,
// products run in integers and each row's sum is scaled at the end, so its error is the weights' rounding
// (fbgemm's dynamic int8 also rounds every activation to 7 bits per tensor, about twice the output error on a
// 9216×3072 weight: 2.0 % vs 0.85 %). Widening the int8 weights to fp32 for FMA instead was 2× slower.
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>

namespace {

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehl_ps(sh, s)));
}

__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }

// R consecutive output rows (n … n+R-1) for all M input rows.
template <int M, int R>
__attribute__((target("avx2,fma"))) void rows(const float* x, const float* w, float* y, int64_t n, int64_t N,
                                              int64_t K) {
  __m256 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm256_setzero_ps();
  const float* wr[R];
  for (int r = 0; r < R; ++r) wr[r] = w + (n + r) * K;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load8(wr[r] + k);
    for (int m = 0; m < M; ++m) {
      __m256 xv = _mm256_loadu_ps(x + m * K + k);
      for (int r = 0; r < R; ++r) acc[r][m] = _mm256_fmadd_ps(wv[r], xv, acc[r][m]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) {
      float s = hsum(acc[r][m]);
      for (int64_t kk = k; kk < K; ++kk) s += wr[r][kk] * x[m * K + kk];
      y[m * N + n + r] = s;
    }
}

// Integer form: x rounded per row to int16 with |q| ≤ XQ_MAX, w int8; 16 products per step with vpmaddwd into
// int32 lanes. A lane gains ≤ 2 · 128 · XQ_MAX per 16 inputs, so K ≤ 16 384 cannot overflow int32 (checked
// by the caller); x's rounding error (≤ 1/16 000 of its largest value) is ~60× below the weights' own.
//
// The weight is packed (speechserve/models/small_m.py: pack_int8): blocks of PACK_ROWS rows, and within a
// block, 16 inputs of each of its rows in turn, so a block is one contiguous stream however many of its rows
// a pass takes. Rows are padded to a multiple of 8 and inputs to a multiple of 16 with zeros. Measured at one
// row on a 9216×3072 weight: 1.90 ms packed vs 2.53 ms with 4 separate row streams (fbgemm: 2.28).
constexpr int32_t XQ_MAX = 8000;
constexpr int64_t PACK_ROWS = 8, PACK_K = 16;

// Rows r0 … r0+R-1 of the packed block starting at output row n0, for all M inputs (xq: M × K16).
template <int M, int R>
__attribute__((target("avx2,fma"))) void rows_i8(const int16_t* xq, const float* xs, const int8_t* block,
                                                 const float* scales, float* y, int64_t n0, int r0, int64_t N,
                                                 int64_t K16) {
  __m256i acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm256_setzero_si256();
  for (int64_t k = 0; k < K16; k += PACK_K) {
    const int8_t* chunk = block + k * PACK_ROWS + r0 * PACK_K;
    __m256i wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + r * PACK_K)));
    for (int m = 0; m < M; ++m) {
      __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + m * K16 + k));
      for (int r = 0; r < R; ++r) acc[r][m] = _mm256_add_epi32(acc[r][m], _mm256_madd_epi16(wv[r], xv));
    }
  }
  for (int r = 0; r < R; ++r) {
    const int64_t n = n0 + r0 + r;
    if (n >= N) break;  // padding rows
    for (int m = 0; m < M; ++m) {
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[r][m]);
      int64_t s = 0;
      for (int i = 0; i < 8; ++i) s += lanes[i];
      y[m * N + n] = float(s) * scales[n] * xs[m];
    }
  }
}

template <int M, int R>
void run(const float* x, const float* w, float* y, int64_t N, int64_t K, int threads) {
  const int64_t blocks = N / R;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) rows<M, R>(x, w, y, b * R, N, K);
  for (int64_t n = blocks * R; n < N; ++n) rows<M, 1>(x, w, y, n, N, K);
}

template <int M, int R>
void run_i8(const int16_t* xq, const float* xs, const int8_t* packed, const float* scales, float* y, int64_t N,
            int64_t K16, int threads) {
  const int64_t blocks = (N + PACK_ROWS - 1) / PACK_ROWS;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    for (int r0 = 0; r0 < PACK_ROWS; r0 += R)
      rows_i8<M, R>(xq, xs, packed + b * PACK_ROWS * K16, scales, y, b * PACK_ROWS, r0, N, K16);
}

// R × M accumulators + R weight vectors + 1 input vector ≤ 16 registers: 2 rows up to 6 inputs, then 1.
#define R_OF(M) ((M) <= 6 ? 2 : 1)
#define TABLE(F) \
  {F<1, R_OF(1)>, F<2, R_OF(2)>, F<3, R_OF(3)>, F<4, R_OF(4)>,    F<5, R_OF(5)>,    F<6, R_OF(6)>, \
   F<7, R_OF(7)>, F<8, R_OF(8)>, F<9, R_OF(9)>, F<10, R_OF(10)>, F<11, R_OF(11)>, F<12, R_OF(12)>}

void (*const RUNS[])(const float*, const float*, float*, int64_t, int64_t, int) = TABLE(run);
// Rows per pass (dividing 8). A pass over part of a block reads every other cache line of it, which costs more
// than the registers the accumulators spill to when the whole block is taken (measured on a 9216×3072 weight,
// 2 threads: 2 inputs 2.62 ms with all 8 rows vs 4.27 with 4; 4 inputs 3.37 vs 4.48); from 5 inputs on the
// spills cost more (6 inputs: 5.95 vs 5.61 row by row).
#define R_I8(M) ((M) <= 4 ? 8 : 1)
void (*const RUNS_I8[])(const int16_t*, const float*, const int8_t*, const float*, float*, int64_t, int64_t,
                        int) = {run_i8<1, R_I8(1)>,   run_i8<2, R_I8(2)>,   run_i8<3, R_I8(3)>,
                                run_i8<4, R_I8(4)>,   run_i8<5, R_I8(5)>,   run_i8<6, R_I8(6)>,
                                run_i8<7, R_I8(7)>,   run_i8<8, R_I8(8)>,   run_i8<9, R_I8(9)>,
                                run_i8<10, R_I8(10)>, run_i8<11, R_I8(11)>, run_i8<12, R_I8(12)>};

}  // namespace

extern "C" {

// y[M, N] = x[M, K] · w[N, K]ᵀ, all contiguous fp32; M ≥ 1 rows in passes of ≤ 12.
void small_m_linear(const float* x, const float* w, float* y, int64_t M, int64_t N, int64_t K, int threads) {
  for (int64_t m0 = 0; m0 < M; m0 += 12) {
    const int64_t rows_here = M - m0 < 12 ? M - m0 : 12;
    RUNS[rows_here - 1](x + m0 * K, w, y + m0 * N, N, K, threads);
  }
}

// The most input features the int8 form takes (int32 accumulators cannot overflow up to here).
int64_t small_m_i8_max_k(void) { return 16384; }

// The same with the int8 weight packed (see above) and fp32 scales[N]: y = (x · wᵀ) * scales, x rounded per
// row to int16 (xq: caller-provided zeroed scratch of M·K16 int16, K16 = K rounded up to 16; xs: M floats).
void small_m_linear_i8(const float* x, const int8_t* packed, const float* scales, float* y, int64_t M, int64_t N,
                       int64_t K, int threads, int16_t* xq, float* xs) {
  const int64_t K16 = (K + PACK_K - 1) / PACK_K * PACK_K;
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * K;
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k) amax = row[k] > amax ? row[k] : (-row[k] > amax ? -row[k] : amax);
    const float step = amax > 0.f ? amax / XQ_MAX : 1.f;
    const float inv = 1.f / step;
    for (int64_t k = 0; k < K; ++k) xq[m * K16 + k] = int16_t(__builtin_lrintf(row[k] * inv));
    xs[m] = step;
  }
  for (int64_t m0 = 0; m0 < M; m0 += 12) {
    const int64_t rows_here = M - m0 < 12 ? M - m0 : 12;
    RUNS_I8[rows_here - 1](xq + m0 * K16, xs + m0, packed, scales, y + m0 * N, N, K16, threads);
  }
}
}
