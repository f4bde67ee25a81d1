/**
 * Codes of self-scaling formats (ternary, binary, PTQTP, NUPES): their
 * `encode` fits its own scale to the input and attaches it to the returned
 * code array, so `decode(encode(x))` is the fake-quantized `x`. Codes without
 * attached parameters decode on the unit grid (`values()`).
 *
 * @module
 */

import type { Codes } from "../types.ts";

/** Codes with the parameters their format fitted while encoding. */
export type ScaledCodes = Codes & {
  /** Per-tensor scale (ternary γ, binary α, NUPES step); absent means 1. */
  readonly tensorScale?: number;
  /** Format-specific extras: PTQTP α1, α2 per group; NUPES [exponent a]. */
  readonly params?: Float32Array;
};

/**
 * Reads the parameters attached to codes by a self-scaling format's `encode`.
 *
 * @param codes what `encode` returned
 * @returns the tensor scale (1 if none) and extra parameters (empty if none)
 *
 * @example
 * ```ts
 * import { getFormat, scaledParams } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const codes = getFormat("ternary").encode(new Float32Array([0.5, -1, 0, 1.5]));
 * assert.equal(scaledParams(codes).tensorScale, 0.75);
 * ```
 */
export function scaledParams(codes: Codes): { tensorScale: number; params: Float32Array } {
  const c = codes as ScaledCodes;
  return { tensorScale: c.tensorScale ?? 1, params: c.params ?? new Float32Array(0) };
}
