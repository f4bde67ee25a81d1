/**
 * The Cholesky factor GPTQ and the error-propagating refit share.
 *
 * @module
 */

/**
 * Lower Cholesky factor L (A = L·Lᵀ) of a symmetric positive definite n×n matrix, row-major; A is
 * not changed.
 *
 * @param a the matrix (n × n, row-major)
 * @param n its size
 * @returns L, or undefined when A is not positive definite (a pivot ≤ 0 or NaN)
 *
 * @example
 * ```ts
 * import { cholesky } from "./_cholesky.ts";
 * // [[4, 2], [2, 5]] = L·Lᵀ with L = [[2, 0], [1, 2]]
 * const l = cholesky(Float64Array.of(4, 2, 2, 5), 2)!;
 * if (l.join() !== "2,0,1,2") throw new Error(l.join());
 * if (cholesky(Float64Array.of(1, 2, 2, 1), 2) !== undefined) throw new Error();
 * ```
 */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0)) return undefined;
    const s = Math.sqrt(d);
    l[j * n + j] = s;
    for (let i = j + 1; i < n; i++) {
      let v = a[i * n + j];
      for (let k = 0; k < j; k++) v -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = v / s;
    }
  }
  return l;
}
