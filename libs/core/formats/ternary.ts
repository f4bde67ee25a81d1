/**
 * Ternary weights, BitNet b1.58 style: W ≈ γ · T with T ∈ {−1, 0, 1} and the
 * absmean scale γ = mean|W| (floored at 1e−5, as BitNet does), T = clamp(round(W / γ), −1, 1)
 * with round half to even (so |W| = γ/2 gives 0).
 *
 * Codes are 2-bit two's complement, like int2: 0 → 0, +1 → 1, −1 → 3 (0b11).
 * `encode` fits γ over the whole input and attaches it as `codes.tensorScale`
 * (see {@link ScaledCodes}); codes without it decode on the unit grid {−1, 0, 1}.
 * NaN or ±Inf in the input is a `LowbitError` (INVALID_TENSOR): they would
 * poison the mean. Empty input gives empty codes with γ = 1.
 *
 * @module
 */

import type { NumberFormat } from "../types.ts";
import { roundHalfEven } from "./_bits.ts";
import { rejectNonFinite, tritOf, unitScaledFormat } from "./_scaled.ts";

/**
 * BitNet b1.58 absmean ternary quantization of a whole tensor.
 *
 * @param w weights
 * @returns 2-bit trit codes and the scale γ = max(mean|w|, 1e−5) (float32)
 *
 * @example
 * ```ts
 * import { absmeanTernary } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const { codes, scale } = absmeanTernary(new Float32Array([0.5, -1, 0, 1.5]));
 * assert.equal(scale, 0.75);                  // mean |w|
 * assert.deepEqual([...codes], [1, 3, 0, 1]); // 0.67 → 1, −1.33 → −1, 0, 2 → 1
 * ```
 */
export function absmeanTernary(w: Float32Array): { codes: Uint8Array; scale: number } {
  rejectNonFinite(w, "ternary");
  const codes = new Uint8Array(w.length);
  if (w.length === 0) return { codes, scale: 1 };
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += Math.abs(w[i]);
  const scale = Math.fround(Math.max(sum / w.length, 1e-5));
  for (let i = 0; i < w.length; i++) {
    const t = Math.max(-1, Math.min(1, roundHalfEven(w[i] / scale)));
    codes[i] = t & 3;
  }
  return { codes, scale };
}

/**
 * The "ternary" format: BitNet b1.58 absmean ternary (see the module doc).
 *
 * @returns the format; `encode` attaches γ as `codes.tensorScale`
 *
 * @example
 * ```ts
 * import { getFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const t = getFormat("ternary");
 * assert.deepEqual([...t.decode(t.encode(new Float32Array([0.5, -1, 0, 1.5])))], [0.75, -0.75, 0, 0.75]);
 * assert.deepEqual([...t.values()], [-1, 0, 1]);
 * ```
 */
export function ternaryFormat(): NumberFormat {
  return unitScaledFormat({
    name: "ternary",
    bits: 2,
    family: "ternary",
    fit: absmeanTernary,
    unit: tritOf,
    grid: [-1, 0, 1],
  });
}
