// Private: attaching fitted parameters to code arrays (ternary, binary, PTQTP, NUPES).

import { LowbitError } from "../errors.ts";
import type { Codes } from "../types.ts";
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
