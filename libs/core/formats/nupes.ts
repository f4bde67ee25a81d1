/**
 * NUPES power-exponent non-uniform quantization: a value x is mapped to
 * y = sign(x) · |x|^a, y is quantized uniformly and symmetrically to a
 * `bits`-bit signed integer q ∈ [−(2^(bits−1) − 1), 2^(bits−1) − 1] with step
 * s = amax^a / qmax (round half to even), and decoded as
 * sign(q) · (|q| · s)^(1/a). An exponent a < 1 spends more levels near zero,
 * where bell-shaped weights concentrate; a = 1 is plain symmetric intN.
 *
 * The exponent is searched: `encode` tries a ∈ {0.25, 0.30, …, 1.50} and keeps
 * the one with the least squared error (first best on ties; at most 65,536
 * evenly strided samples are scored), then encodes everything with it.
 *
 * Codes are two's complement in `bits` bits (as intN). `encode` attaches the
 * step as `codes.tensorScale` and the exponent as `codes.params[0]`; bare
 * codes decode with s = 1, a = 1 (the integer grid of `values()`). All-zero
 * input gives zero codes with s = 1, a = 1; NaN / ±Inf is a `LowbitError`.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Codes, NumberFormat } from "../types.ts";
import { newCodes, roundHalfEven } from "./_bits.ts";
import { attachParams, rejectNonFinite } from "./_scaled.ts";
import type { ScaledCodes } from "./scaled.ts";

/** The exponents `nupesFit` searches. */
export const NUPES_EXPONENTS: readonly number[] = Array.from(
  { length: 26 },
  (_, i) => Math.round((0.25 + 0.05 * i) * 100) / 100,
);

/** A fitted NUPES quantizer. */
export interface NupesFit {
  /** The power exponent a. */
  exponent: number;
  /** The uniform step s in the power domain. */
  step: number;
  /** Squared error of the fit over the scored samples. */
  error: number;
}

function quantDequant(v: number, a: number, s: number, qmax: number): number {
  const q = Math.min(qmax, roundHalfEven(Math.abs(v) ** a / s));
  return Math.sign(v) * (q * s) ** (1 / a);
}

/**
 * Searches the NUPES exponent for `x` on a `bits`-bit grid.
 *
 * @param x values (finite)
 * @param bits integer bits, 2..8
 * @returns the exponent, the step and the error
 *
 * @example
 * ```ts
 * import { nupesFit } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * // Values on a square-root grid are represented exactly with a = 0.5.
 * const x = new Float32Array([0, 1, 4, 9, -16, 25, 36, 49]);
 * assert.equal(nupesFit(x, 4).exponent, 0.5);
 * ```
 */
export function nupesFit(x: Float32Array, bits: number): NupesFit {
  rejectNonFinite(x, `nupes${bits}`);
  const qmax = 2 ** (bits - 1) - 1;
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
  if (amax === 0) return { exponent: 1, step: 1, error: 0 };
  const stride = Math.max(1, Math.floor(x.length / 65536));
  let best: NupesFit = { exponent: 1, step: 1, error: Infinity };
  for (const a of NUPES_EXPONENTS) {
    const s = amax ** a / qmax;
    let err = 0;
    for (let i = 0; i < x.length; i += stride) {
      const d = x[i] - quantDequant(x[i], a, s, qmax);
      err += d * d;
    }
    if (err < best.error) best = { exponent: a, step: s, error: err };
  }
  return best;
}

/**
 * The NUPES format on a `bits`-bit signed grid, named "nupes<bits>".
 *
 * @param bits integer bits, 2..8
 * @returns the format; `encode` attaches the step and exponent
 *
 * @example
 * ```ts
 * import { getFormat, scaledParams } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const f = getFormat("nupes4");
 * const x = new Float32Array([0, 1, 4, 9, -16, 25, 36, 49]);
 * const codes = f.encode(x);
 * assert.equal(scaledParams(codes).params[0], 0.5);
 * assert.deepEqual([...f.decode(codes)].map(Math.round), [...x]);
 * ```
 */
export function nupesFormat(bits: number): NumberFormat {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) {
    throw new LowbitError("INVALID_ARGUMENT", `nupes: bits must be 2..8, got ${bits}`);
  }
  const name = `nupes${bits}`;
  const qmax = 2 ** (bits - 1) - 1, mask = 2 ** bits - 1, half = 2 ** (bits - 1);
  return {
    name,
    bits,
    family: "nonuniform",
    max: qmax,
    min: -qmax,
    minNormal: 1,
    minSubnormal: 1,
    signed: true,
    encode(x: Float32Array): ScaledCodes {
      const { exponent: a, step: s } = nupesFit(x, bits);
      const codes = newCodes(bits, x.length);
      for (let i = 0; i < x.length; i++) {
        const q = Math.min(qmax, roundHalfEven(Math.abs(x[i]) ** a / s));
        codes[i] = (x[i] < 0 ? -q : q) & mask;
      }
      return attachParams(codes, s, Float32Array.of(a));
    },
    decode(codes: Codes): Float32Array {
      const c = codes as ScaledCodes;
      const s = c.tensorScale ?? 1, a = c.params?.[0] ?? 1;
      const out = new Float32Array(codes.length);
      for (let i = 0; i < codes.length; i++) {
        const k = codes[i] & mask;
        const q = k >= half ? k - 2 * half : k;
        out[i] = Math.sign(q) * (Math.abs(q) * s) ** (1 / a);
      }
      return out;
    },
    values(): Float32Array {
      const out = new Float32Array(2 * qmax + 1);
      for (let i = 0; i < out.length; i++) out[i] = i - qmax;
      return out;
    },
  };
}
