// Small-row fp32 matmul for CPUs with AVX2 + FMA: y[M, N] = x[M, K] · w[N, K]ᵀ for M = 1 … 12 rows.
//
// Why this exists (measured on the project's 2-core AMD EPYC, MKL torch build, one 9216×3072 weight; see
// speechserve/models/small_m.py): at 2–12 rows the product is bandwidth-bound — every weight element is used
// M times, far below what the cores could compute — so the floor is reading the weight once. MKL's sgemm and
// oneDNN's prepacked linear both pay about 2× a single row's time at 6 rows (they pack the weight, which
// costs another pass over it), and `F.linear` pays ~5×. This kernel streams each weight row exactly once
// and keeps every input row in registers' reach: at 6 rows it costs 1.15× one row.
//
// Layout: each thread takes a contiguous range of output rows; for R (1 or 2) weight rows at a time it
// keeps R × M eight-wide accumulators in registers (≤ 12 of the 16 ymm registers), reads 8 weights per row
// and 8 values of each input row per step, and reduces the accumulators at the end. The sum order differs
// from BLAS, so results equal `F.linear` up to rounding (tested within 1e-5).
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
    for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_ps(wr[r] + k);
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

template <int M>
void run(const float* x, const float* w, float* y, int64_t N, int64_t K, int threads) {
  constexpr int R = M <= 6 ? 2 : 1;  // R × M accumulators + R weight vectors + 1 input vector ≤ 16 registers
  const int64_t blocks = N / R;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) rows<M, R>(x, w, y, b * R, N, K);
  for (int64_t n = blocks * R; n < N; ++n) rows<M, 1>(x, w, y, n, N, K);
}


void (*const RUNS[])(const float*, const float*, float*, int64_t, int64_t, int) = {
    run<1>, run<2>, run<3>, run<4>, run<5>, run<6>, run<7>, run<8>, run<9>, run<10>, run<11>, run<12>};

}  // namespace

extern "C" {

// The most rows one pass handles; more rows are done in passes of this many.
int small_m_max_rows(void) { return 12; }

// y[M, N] = x[M, K] · w[N, K]ᵀ, all contiguous fp32; M ≥ 1 rows in passes of ≤ 12.
void small_m_linear(const float* x, const float* w, float* y, int64_t M, int64_t N, int64_t K, int threads) {
  for (int64_t m0 = 0; m0 < M; m0 += 12) {
    const int64_t rows_here = M - m0 < 12 ? M - m0 : 12;
    RUNS[rows_here - 1](x + m0 * K, w, y + m0 * N, N, K, threads);
  }
}
}
