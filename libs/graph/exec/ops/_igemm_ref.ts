// Plain TypeScript integer GEMM, the reference and fallback of the quantized
// ops: C[m×n] = A[m×k] · B[n×k]ᵀ with int32 accumulation, A and B holding
// zero-point-free integer codes (A row-major m×k, B row-major n×k: one row per
// output channel, as weights are stored).

/**
 * C = A · Bᵀ, exact in int32.
 *
 * @param m rows of A
 * @param n rows of B (output columns)
 * @param k shared length
 * @param a A, m×k, row-major
 * @param b B, n×k, row-major
 * @param c C, m×n, row-major (overwritten)
 */
export function igemmRef(
  m: number,
  n: number,
  k: number,
  a: Int16Array | Int8Array,
  b: Int16Array | Int8Array,
  c: Int32Array,
): void {
  for (let i = 0; i < m; i++) {
    const ao = i * k;
    for (let j = 0; j < n; j++) {
      const bo = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ao + p] * b[bo + p];
      c[i * n + j] = s;
    }
  }
}
