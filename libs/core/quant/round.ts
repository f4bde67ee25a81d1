/**
 * Rounding, defined once: round half to even (banker's rounding), as
 * torch.round, numpy.round, ONNX QuantizeLinear and IEEE's default mode do.
 *
 * @module
 */

/**
 * Rounds to the nearest integer, ties to the even neighbour.
 *
 * @param x the value
 * @returns the rounded value (x itself when not finite)
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4].map(roundHalfEven), [0, 2, 2, -0, -2, 2]);
 * ```
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +∞
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
