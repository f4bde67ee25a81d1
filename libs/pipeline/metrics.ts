/**
 * Output-quality metrics of a quantized model against its float original:
 * SQNR, cosine similarity, top-1 accuracy and top-1 agreement.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";

/**
 * Signal-to-quantization-noise ratio in dB: 10·log10(Σref² / Σ(ref − test)²).
 *
 * @param ref reference (float) values
 * @param test quantized-model values
 * @returns SQNR in dB (Infinity when identical)
 *
 * @example
 * ```ts
 * import { sqnrDb } from "@lowbit/pipeline";
 * const db = sqnrDb(new Float32Array([1, 1]), new Float32Array([1.1, 0.9]));
 * if (Math.abs(db - 20) > 1e-5) throw new Error(String(db));
 * ```
 */
export function sqnrDb(ref: Float32Array, test: Float32Array): number {
  sameLength(ref, test);
  let s = 0, n = 0;
  for (let i = 0; i < ref.length; i++) {
    s += ref[i] * ref[i];
    const d = ref[i] - test[i];
    n += d * d;
  }
  return n === 0 ? Infinity : 10 * Math.log10(s / n);
}

/**
 * Sum of squared differences Σ(ref − test)² (divide by the length for the mean squared error).
 *
 * @param ref reference (float) values
 * @param test quantized-model values, as many
 * @returns the sum
 * @throws {LowbitError} SHAPE_MISMATCH when the lengths differ
 *
 * @example
 * ```ts
 * import { sumSquaredError } from "@lowbit/pipeline";
 * const se = sumSquaredError(Float32Array.of(1, 2, 3), Float64Array.of(1, 2.5, 2));
 * if (se !== 1.25) throw new Error(String(se));
 * ```
 */
export function sumSquaredError(ref: ArrayLike<number>, test: ArrayLike<number>): number {
  sameLength(ref, test);
  let se = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ref[i] - test[i];
    se += d * d;
  }
  return se;
}

/**
 * Cosine similarity of two flattened tensors.
 *
 * @param a first
 * @param b second
 * @returns a·b / (|a|·|b|), 1 for two zero vectors
 *
 * @example
 * ```ts
 * import { cosine } from "@lowbit/pipeline";
 * if (cosine(new Float32Array([1, 0]), new Float32Array([0, 2])) !== 0) throw new Error();
 * ```
 */
export function cosine(a: Float32Array, b: Float32Array): number {
  sameLength(a, b);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb || 1e-300);
}

/**
 * Index of the largest value of each row.
 *
 * @param logits rows × classes
 * @param classes classes per row
 * @returns one class per row
 *
 * @example
 * ```ts
 * import { argmaxRows } from "@lowbit/pipeline";
 * if (argmaxRows(new Float32Array([0, 2, 1, 5, 0, 0]), 3).join() !== "1,0") throw new Error();
 * ```
 */
export function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const rows = Math.floor(logits.length / classes);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    }
    out[r] = best;
  }
  return out;
}

/**
 * Fraction of equal entries.
 *
 * @param a first labels
 * @param b second labels
 * @returns matches / length (0 for empty)
 *
 * @example
 * ```ts
 * import { agreement } from "@lowbit/pipeline";
 * if (agreement(new Int32Array([1, 2]), new Int32Array([1, 3])) !== 0.5) throw new Error();
 * ```
 */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  sameLength(a, b);
  let m = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) m++;
  return a.length ? m / a.length : 0;
}

function sameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `outputs differ in size (${a.length} vs ${b.length} values)`,
    );
  }
}

/**
 * Intersection over union of two binarised maps (value > threshold), e.g. a
 * text detector's probability maps.
 *
 * @param a first map
 * @param b second map
 * @param threshold binarisation threshold (0.3, PaddleOCR's DB default)
 * @returns |A ∩ B| / |A ∪ B|, 1 when both are empty
 *
 * @example
 * ```ts
 * import { maskIou } from "@lowbit/pipeline";
 * const iou = maskIou(new Float32Array([0.9, 0.9, 0, 0]), new Float32Array([0.9, 0, 0.9, 0]));
 * if (Math.abs(iou - 1 / 3) > 1e-12) throw new Error(String(iou));
 * ```
 */
export function maskIou(a: Float32Array, b: Float32Array, threshold = 0.3): number {
  sameLength(a, b);
  let inter = 0, union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] > threshold, y = b[i] > threshold;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}
