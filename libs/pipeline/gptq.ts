/**
 * GPTQ weight rounding (Frantar et al., 2022): quantize a layer's weight one
 * input column at a time and push each column's rounding error onto the
 * columns not yet quantized, weighted by the inverse of the layer Hessian
 * H = 2·XᵀX/n of its captured inputs. Format- and granularity-agnostic: the
 * caller supplies the function that rounds one column to the grid, so int,
 * minifloat, per-channel, per-group and block formats all work the same.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { cholesky } from "./_cholesky.ts";

/** Streaming accumulator of H = 2·XᵀX/n over batches of input rows. */
export interface HessianAccumulator {
  /** Columns (the layer's input width). */
  readonly cols: number;
  /** Adds `rows` rows of `x` (row-major, `rows × cols`). */
  add(x: Float32Array, rows: number, weights?: ArrayLike<number>): void;
  /** Rows seen so far (with row weights: their sum). */
  count(): number;
  /** Rows seen so far with a non-zero weight (the rank H can reach is at most this). */
  rows(): number;
  /** H = 2·XᵀX/n (cols × cols, row-major, float64). */
  result(): Float64Array;
}

/**
 * Creates a Hessian accumulator; memory is cols², independent of the data.
 *
 * @param cols input width of the layer
 * @returns the accumulator
 *
 * @example
 * ```ts
 * import { createHessian } from "@lowbit/pipeline";
 * const h = createHessian(2);
 * h.add(new Float32Array([1, 0, 0, 1]), 2);
 * const H = h.result();
 * if (H[0] !== 1 || H[1] !== 0) throw new Error(String(H));
 * ```
 */
export function createHessian(cols: number): HessianAccumulator {
  const acc = new Float64Array(cols * cols);
  let n = 0, seen = 0;
  return {
    cols,
    add(x: Float32Array, rows: number, weights?: ArrayLike<number>): void {
      if (x.length !== rows * cols) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `hessian: expected ${rows}×${cols} values, got ${x.length}`,
        );
      }
      if (weights && weights.length !== rows) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `hessian: ${weights.length} row weights for ${rows} rows`,
        );
      }
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        const wr = weights ? weights[r] : 1;
        if (!(wr >= 0) || !Number.isFinite(wr)) {
          throw new LowbitError("INVALID_TENSOR", `hessian: row weight ${wr} at ${r}`);
        }
        if (wr === 0) continue;
        seen++;
        for (let i = 0; i < cols; i++) {
          const xi = x[o + i] * wr;
          if (xi === 0) continue;
          const row = i * cols;
          for (let j = i; j < cols; j++) acc[row + j] += xi * x[o + j];
        }
      }
      if (weights) { for (let r = 0; r < rows; r++) n += weights[r]; }
      else n += rows;
    },
    count(): number {
      return n;
    },
    rows(): number {
      return seen;
    },
    result(): Float64Array {
      const h = new Float64Array(cols * cols);
      const f = n > 0 ? 2 / n : 0;
      for (let i = 0; i < cols; i++) {
        for (let j = i; j < cols; j++) {
          const v = acc[i * cols + j] * f;
          h[i * cols + j] = v;
          h[j * cols + i] = v;
        }
      }
      return h;
    },
  };
}

/** Inverse of A = L·Lᵀ from its lower Cholesky factor. */
function choleskyInverse(l: Float64Array, n: number): Float64Array {
  // inv(L) by forward substitution, then inv(A) = inv(L)ᵀ·inv(L).
  const li = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    for (let i = c; i < n; i++) {
      let v = i === c ? 1 : 0;
      for (let k = c; k < i; k++) v -= l[i * n + k] * li[k * n + c];
      li[i * n + c] = v / l[i * n + i];
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let v = 0;
      for (let k = i; k < n; k++) v += li[k * n + i] * li[k * n + j];
      inv[i * n + j] = v;
      inv[j * n + i] = v;
    }
  }
  return inv;
}

/**
 * Rounds one column of the weight to the grid: gets the column's values (one
 * per output row) and the column's index in the original (unpermuted) order,
 * returns the dequantized values.
 */
export type ColumnRounder = (column: Float32Array, index: number) => Float32Array;

/** GPTQ options. */
export interface GptqOptions {
  /** Columns per lazy-update block (128, as in the paper). */
  blockSize?: number;
  /** Dampening λ: adds λ·mean(diag H) to the diagonal (0.01). */
  damp?: number;
  /** Process columns in decreasing diag(H) order ("act-order"). */
  actOrder?: boolean;
}

/**
 * GPTQ on a weight in its [out, in] view.
 *
 * @param w weights, row-major `rows × cols` (rows = output channels)
 * @param rows output channels
 * @param cols input width (the Hessian's size)
 * @param h the layer Hessian (cols × cols, row-major), e.g. from {@link createHessian}
 * @param round rounds one column to the grid (see {@link ColumnRounder})
 * @param opts block size, dampening, act-order
 * @returns the dequantized weights, `rows × cols`
 *
 * @example
 * ```ts
 * import { gptq } from "@lowbit/pipeline";
 * const w = new Float32Array([0.4, 1.2, -0.7, 0.2]);
 * const H = new Float64Array([2, 1, 1, 2]);
 * const round = (c: Float32Array) => c.map((v) => Math.round(v));
 * const q = gptq(w, 2, 2, H, round);
 * if (!q.every((v) => Number.isInteger(v))) throw new Error(String(q));
 * ```
 */
export function gptq(
  w: Float32Array,
  rows: number,
  cols: number,
  h: Float64Array,
  round: ColumnRounder,
  opts: GptqOptions = {},
): Float32Array {
  const blockSize = opts.blockSize ?? 128;
  const damp = opts.damp ?? 0.01;
  if (w.length !== rows * cols || h.length !== cols * cols) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `gptq: weight ${rows}×${cols} needs ${rows * cols} values (got ${w.length}) and a ` +
        `${cols}×${cols} Hessian (got ${h.length})`,
    );
  }
  // Permutation (act-order) and dead columns.
  const perm = Array.from({ length: cols }, (_, i) => i);
  if (opts.actOrder) perm.sort((a, b) => h[b * cols + b] - h[a * cols + a] || a - b);
  const W = new Float64Array(rows * cols); // permuted copy
  const H = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) {
    for (let j = 0; j < cols; j++) H[i * cols + j] = h[perm[i] * cols + perm[j]];
    for (let r = 0; r < rows; r++) W[r * cols + i] = w[r * cols + perm[i]];
  }
  let meanDiag = 0;
  for (let i = 0; i < cols; i++) {
    if (H[i * cols + i] === 0) {
      H[i * cols + i] = 1; // an input that never fires: its weights do not matter
      for (let r = 0; r < rows; r++) W[r * cols + i] = 0;
    }
    meanDiag += H[i * cols + i];
  }
  meanDiag /= Math.max(1, cols);
  // U = upper Cholesky of H⁻¹, retried with more dampening if H is not positive definite.
  let lambda = damp * meanDiag;
  let U: Float64Array | undefined;
  for (let attempt = 0; attempt < 8 && !U; attempt++, lambda = Math.max(lambda * 10, 1e-8)) {
    const Hd = H.slice();
    for (let i = 0; i < cols; i++) Hd[i * cols + i] += lambda;
    const L = cholesky(Hd, cols);
    if (!L) continue;
    const lh = cholesky(choleskyInverse(L, cols), cols);
    if (!lh) continue;
    U = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) {
      for (let j = i; j < cols; j++) U[i * cols + j] = lh[j * cols + i];
    }
  }
  if (!U) {
    throw new LowbitError("INTERNAL", "gptq: the layer Hessian is not positive definite");
  }
  const Q = new Float32Array(rows * cols);
  const col = new Float32Array(rows);
  const err = new Float64Array(rows * blockSize);
  for (let b0 = 0; b0 < cols; b0 += blockSize) {
    const b1 = Math.min(cols, b0 + blockSize);
    for (let i = b0; i < b1; i++) {
      for (let r = 0; r < rows; r++) col[r] = W[r * cols + i];
      const q = round(col, perm[i]);
      const d = U[i * cols + i];
      for (let r = 0; r < rows; r++) {
        Q[r * cols + perm[i]] = q[r];
        const e = (W[r * cols + i] - q[r]) / d;
        err[r * blockSize + (i - b0)] = e;
        // Update the rest of the block now.
        for (let j = i + 1; j < b1; j++) W[r * cols + j] -= e * U[i * cols + j];
      }
    }
    // Lazy batch update of the columns after the block.
    for (let r = 0; r < rows; r++) {
      for (let i = b0; i < b1; i++) {
        const e = err[r * blockSize + (i - b0)];
        if (e === 0) continue;
        for (let j = b1; j < cols; j++) W[r * cols + j] -= e * U[i * cols + j];
      }
    }
  }
  return Q;
}
