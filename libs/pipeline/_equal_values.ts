/**
 * Whether a frame's given state continues a stream, shared by the closed-loop runs.
 *
 * @module
 */

import type { TensorData } from "@lowbit/graph";

/**
 * Whether two float tensors hold the same values within 1e-5 of the first one's peak: a frame's
 * given state input against the state the float model wrote one frame before (equal: the frame
 * continues that stream).
 *
 * @param a the given values
 * @param b the values to compare them with
 * @returns true when equal in length and within tolerance
 *
 * @example
 * ```ts
 * import { equalValues } from "./_equal_values.ts";
 * const t = (...v: number[]) => ({ dtype: "float32" as const, shape: [v.length], data: Float32Array.from(v) });
 * if (!equalValues(t(1, 2), t(1, 2 + 1e-6)) || equalValues(t(1, 2), t(1, 2.1))) throw new Error();
 * if (equalValues(t(1, 2), t(1))) throw new Error();
 * ```
 */
export function equalValues(a: TensorData, b: TensorData): boolean {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  if (x.length !== y.length) return false;
  let peak = 0;
  for (let k = 0; k < x.length; k++) peak = Math.max(peak, Math.abs(x[k]));
  for (let k = 0; k < x.length; k++) if (Math.abs(x[k] - y[k]) > 1e-5 * peak + 1e-12) return false;
  return true;
}
