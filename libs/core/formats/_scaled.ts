// Private: attaching fitted parameters to code arrays (ternary, binary, PTQTP, NUPES).

import { LowbitError } from "../errors.ts";
import type { Codes, FormatFamily, NumberFormat } from "../types.ts";
import type { ScaledCodes } from "./scaled.ts";

/** Attaches fitted parameters to `codes` and returns it. */
export function attachParams(
  codes: Codes,
  tensorScale: number,
  params?: Float32Array,
): ScaledCodes {
  return Object.assign(codes, params ? { tensorScale, params } : { tensorScale });
}

/** Non-finite check shared by the self-scaling formats. */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** Trit value of a 2-bit two's-complement code (0, 1, 3 → 0, 1, −1; 2 → −2 is invalid). */
export function tritOf(code: number): number {
  const c = code & 3;
  return c >= 2 ? c - 4 : c;
}

/** Throws INVALID_TENSOR if `x` holds NaN or ±Inf. */
export function rejectNonFinite(x: Float32Array, name: string): void {
  const i = firstNonFinite(x);
  if (i >= 0) {
    throw new LowbitError(
      "INVALID_TENSOR",
      `${name}: non-finite value ${x[i]} at index ${i}; the fitted scale would be meaningless`,
    );
  }
}

/**
 * A self-scaling format on a unit grid (binary, ternary): `fit` picks the
 * codes and the tensor scale, `unit` maps one code to its grid value; bare
 * codes decode with a scale of 1.
 */
export function unitScaledFormat(spec: {
  name: string;
  bits: number;
  family: FormatFamily;
  fit: (x: Float32Array) => { codes: Uint8Array; scale: number };
  unit: (code: number) => number;
  grid: readonly number[];
}): NumberFormat {
  const { fit, unit, grid } = spec;
  return {
    name: spec.name,
    bits: spec.bits,
    family: spec.family,
    max: 1,
    min: -1,
    minNormal: 1,
    minSubnormal: 1,
    signed: true,
    encode(x: Float32Array): ScaledCodes {
      const { codes, scale } = fit(x);
      return attachParams(codes, scale);
    },
    decode(codes: Codes): Float32Array {
      const s = (codes as ScaledCodes).tensorScale ?? 1;
      const out = new Float32Array(codes.length);
      for (let i = 0; i < codes.length; i++) out[i] = unit(codes[i]) * s;
      return out;
    },
    values: (): Float32Array => Float32Array.from(grid),
  };
}
