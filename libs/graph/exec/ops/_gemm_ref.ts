// Plain TypeScript float32 GEMM, the reference and fallback of the executor's
// Conv / Gemm / MatMul: C[m×n] (+)= A[m×k] · B[k×n], all row-major with leading
// dimensions. Accumulation order is fixed (k ascending), whatever the caller.

/**
 * C = A·B (or C += A·B when `accumulate`), row-major with leading dimensions.
 */
export function sgemmRef(
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  aOff: number,
  lda: number,
  b: Float32Array,
  bOff: number,
  ldb: number,
  c: Float32Array,
  cOff: number,
  ldc: number,
  accumulate: boolean,
): void {
  if (!accumulate) {
    for (let i = 0; i < m; i++) c.fill(0, cOff + i * ldc, cOff + i * ldc + n);
  }
  // Rows of A in fours share each loaded row of B.
  const KB = 256;
  for (let k0 = 0; k0 < k; k0 += KB) {
    const k1 = Math.min(k, k0 + KB);
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      const c0 = cOff + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
      const a0 = aOff + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
      for (let p = k0; p < k1; p++) {
        const w0 = a[a0 + p], w1 = a[a1 + p], w2 = a[a2 + p], w3 = a[a3 + p];
        const br = bOff + p * ldb;
        for (let j = 0; j < n; j++) {
          const bv = b[br + j];
          c[c0 + j] += w0 * bv;
          c[c1 + j] += w1 * bv;
          c[c2 + j] += w2 * bv;
          c[c3 + j] += w3 * bv;
        }
      }
    }
    for (; i < m; i++) {
      const c0 = cOff + i * ldc;
      const a0 = aOff + i * lda;
      for (let p = k0; p < k1; p++) {
        const w0 = a[a0 + p];
        const br = bOff + p * ldb;
        for (let j = 0; j < n; j++) c[c0 + j] += w0 * b[br + j];
      }
    }
  }
}
