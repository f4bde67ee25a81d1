/**
 * Binary weights: W ≈ α · sign(W) with α = mean|W| (the L2-optimal scale for
 * a fixed sign pattern, as in XNOR-Net / BinaryConnect).
 *
 * Codes are one bit: 1 → +α, 0 → −α. Zero (either sign) maps to +α, since the
 * sign pattern has no zero. `encode` attaches α as `codes.tensorScale`; bare
 * codes decode to ±1. NaN or ±Inf in the input is a `LowbitError`
 * (INVALID_TENSOR). Empty input gives empty codes with α = 1.
 *
 * @module
 */

import type { NumberFormat } from "../types.ts";
import { rejectNonFinite, unitScaledFormat } from "./_scaled.ts";

/**
 * Binarizes a tensor to sign · mean|w|.
 *
 * @param w weights
 * @returns one-bit codes (1 = +, 0 = −) and the scale α = mean|w| (float32)
 *
 * @example
 * ```ts
 * import { signMeanBinary } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const { codes, scale } = signMeanBinary(new Float32Array([0.5, -1.5, 0, 2]));
 * assert.equal(scale, 1);
 * assert.deepEqual([...codes], [1, 0, 1, 1]);
 * ```
 */
export function signMeanBinary(w: Float32Array): { codes: Uint8Array; scale: number } {
  rejectNonFinite(w, "binary");
  const codes = new Uint8Array(w.length);
  if (w.length === 0) return { codes, scale: 1 };
  let sum = 0;
  for (let i = 0; i < w.length; i++) {
    sum += Math.abs(w[i]);
    codes[i] = w[i] < 0 ? 0 : 1;
  }
  return { codes, scale: Math.fround(sum / w.length) };
}

/**
 * The "binary" format: sign · mean|W| (see the module doc).
 *
 * @returns the format; `encode` attaches α as `codes.tensorScale`
 *
 * @example
 * ```ts
 * import { getFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const b = getFormat("binary");
 * assert.deepEqual([...b.decode(b.encode(new Float32Array([0.5, -1.5, 0, 2])))], [1, -1, 1, 1]);
 * ```
 */
export function binaryFormat(): NumberFormat {
  return unitScaledFormat({
    name: "binary",
    bits: 1,
    family: "binary",
    fit: signMeanBinary,
    unit: (c) => ((c & 1) === 1 ? 1 : -1),
    grid: [-1, 1],
  });
}
