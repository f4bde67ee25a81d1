/**
 * Dyadic (integer-only) requantization, HAWQ-V3 / gemmlowp style: a real
 * multiplier `M` is written as `multiplier / 2^shift` with an int32
 * `multiplier`, so an int32 accumulator is rescaled with one 64-bit product and
 * one arithmetic shift.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import { rne } from "./_layout.ts";

/** A real multiplier as `multiplier / 2^shift`. */
export interface Dyadic {
  /** In `[2^30, 2^31)` (normalised), or 0 for multipliers too small to represent. */
  multiplier: number;
  /** Right shift in `[0, 63]`. */
  shift: number;
}

/**
 * Decomposes a real multiplier (e.g. `inputScale * weightScale / outputScale`)
 * into `multiplier / 2^shift` with `multiplier` in `[2^30, 2^31)`:
 * `multiplier = roundHalfEven(M * 2^shift)`. For a float32 `M` this is exact
 * (`multiplier / 2^shift === M`), since a float32 has 24 significant bits.
 * `M` must be finite, > 0 and < 2^31; if it is so small that the shift would
 * exceed 63, the multiplier is denormalised (and becomes 0 below 2^-63 / 2).
 *
 * @param m the real multiplier
 * @returns multiplier and shift
 *
 * @example
 * ```ts
 * import { dyadicFromScale } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual(dyadicFromScale(0.75), { multiplier: 0x60000000, shift: 31 });
 * const d = dyadicFromScale(Math.fround(0.0123));
 * assert.equal(d.multiplier / 2 ** d.shift, Math.fround(0.0123));
 * ```
 */
export function dyadicFromScale(m: number): Dyadic {
  if (!(m > 0) || !Number.isFinite(m) || m >= 2 ** 31) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `dyadic multiplier must be finite, > 0 and < 2^31, got ${m}`,
    );
  }
  let e = Math.floor(Math.log2(m));
  while (2 ** e > m) e--;
  while (2 ** (e + 1) <= m) e++;
  let shift = 30 - e;
  if (shift > 63) {
    const mult = rne(m * 2 ** 63);
    return mult === 0 ? { multiplier: 0, shift: 0 } : { multiplier: mult, shift: 63 };
  }
  let mult = rne(m * 2 ** shift);
  if (mult === 2 ** 31) {
    mult = 2 ** 30;
    shift -= 1;
  }
  if (shift < 0) {
    throw new LowbitError("INVALID_ARGUMENT", `dyadic multiplier ${m} is too large (>= 2^31)`);
  }
  return { multiplier: mult, shift };
}

/**
 * Integer-only multiply-and-shift with one rounding: returns
 * `floor((acc * multiplier + 2^(shift-1)) / 2^shift)` computed exactly (as
 * with an int64 product and an arithmetic right shift), i.e. round to nearest
 * with ties toward +∞ (XNNPACK's "rndnu"). With `shift = 0` it is the plain
 * product. The result is exact whenever `shift >= 17` or `|acc * multiplier| <
 * 2^53`; otherwise its magnitude exceeds 2^36 and only sign and size are
 * meaningful (callers saturate). It is not saturated here.
 *
 * @param acc an int32
 * @param multiplier an integer in `[0, 2^31)`
 * @param shift an integer in `[0, 63]`
 * @returns the rounded product
 *
 * @example
 * ```ts
 * import { mulShiftRound } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.equal(mulShiftRound(5, 1, 1), 3);   // 2.5 -> 3
 * assert.equal(mulShiftRound(-5, 1, 1), -2); // -2.5 -> -2 (ties up)
 * ```
 */
export function mulShiftRound(acc: number, multiplier: number, shift: number): number {
  const mh = Math.floor(multiplier / 65536), ml = multiplier - mh * 65536;
  const A = acc * mh, B = acc * ml; // exact: |A| < 2^46, |B| < 2^47
  if (shift >= 17) {
    // acc*m + 2^(s-1) = (A + Bq + 2^(s-17)) * 2^16 + Br with 0 <= Br < 2^16
    const Bq = Math.floor(B / 65536);
    return Math.floor((A + Bq + 2 ** (shift - 17)) / 2 ** (shift - 16));
  }
  // |acc*m| < 2^53 is exact here; beyond it the result exceeds 2^36 and only its
  // sign and size matter (callers saturate).
  const h = shift === 0 ? 0 : 2 ** (shift - 1);
  return Math.floor((A * 65536 + B + h) / 2 ** shift);
}

/**
 * Reference integer requantization int32 → int8, which the kernels match bit
 * for bit: `out[i] = clamp(mulShiftRound(acc[i], multiplier, shift) + zeroPoint,
 * -128, 127)` (round to nearest, ties toward +∞, then saturate). Per-channel
 * parameters (arrays of equal length C) apply to `acc` laid out `[rows, C]`
 * row-major: element `i` uses channel `i % C`.
 *
 * @param acc int32 accumulators
 * @param multiplier one int32 multiplier in `[0, 2^31)`, or one per channel
 * @param shift one shift in `[0, 63]`, or one per channel
 * @param zeroPoint output zero point (an integer in [-128, 127])
 * @param out where to write (same length as `acc`)
 * @returns `out`
 *
 * @example
 * ```ts
 * import { dyadicFromScale, requantizeDyadic } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const { multiplier, shift } = dyadicFromScale(0.5);
 * const out = requantizeDyadic(new Int32Array([3, -3, 1000, -5]), multiplier, shift, 1, new Int8Array(4));
 * assert.deepEqual([...out], [3, 0, 127, -1]); // 1.5->2, -1.5->-1, saturate, -2.5->-2
 * ```
 */
export function requantizeDyadic(
  acc: Int32Array,
  multiplier: number | Int32Array,
  shift: number | Int32Array,
  zeroPoint: number,
  out: Int8Array,
): Int8Array {
  if (out.length !== acc.length) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `requantizeDyadic: out has ${out.length} elements, acc has ${acc.length}`,
    );
  }
  const ms = typeof multiplier === "number" ? Int32Array.of(multiplier) : multiplier;
  const ss = typeof shift === "number" ? Int32Array.of(shift) : shift;
  if (ms.length !== ss.length || ms.length === 0 || acc.length % ms.length !== 0) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `requantizeDyadic: ${ms.length} multipliers and ${ss.length} shifts do not fit ` +
        `${acc.length} accumulators (need equal counts C dividing the length)`,
    );
  }
  for (let c = 0; c < ms.length; c++) {
    if (ms[c] < 0 || !Number.isInteger(ss[c]) || ss[c] < 0 || ss[c] > 63) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `requantizeDyadic: channel ${c} has multiplier ${ms[c]} and shift ${ss[c]}; ` +
          `need multiplier >= 0 and shift in [0, 63]`,
      );
    }
  }
  if (!Number.isInteger(zeroPoint) || zeroPoint < -128 || zeroPoint > 127) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `requantizeDyadic: zero point ${zeroPoint} is not an int8`,
    );
  }
  const C = ms.length;
  for (let i = 0; i < acc.length; i++) {
    const c = i % C;
    const y = mulShiftRound(acc[i], ms[c], ss[c]) + zeroPoint;
    out[i] = y < -128 ? -128 : y > 127 ? 127 : y;
  }
  return out;
}
