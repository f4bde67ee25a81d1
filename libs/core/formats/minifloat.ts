/**
 * Minifloats: every ExMy floating-point format defined once from its
 * parameters (exponent bits, mantissa bits, bias, how it spends its top
 * codes on Inf / NaN, subnormals, signedness). All constants are derived
 * from that definition; encode is a branch-light bit manipulation of the
 * float32 input, decode a table lookup.
 *
 * ## Bit layout
 *
 * A code is `S.EEEE.MMM` (sign, exponent field, mantissa field; unsigned
 * formats have no S). With `e = field − bias`:
 *
 * - field ≥ 1: value = (1 + M / 2^m) · 2^e            (normal)
 * - field = 0: value = (M / 2^m) · 2^(1 − bias)       (subnormal; zero when M = 0)
 * - formats without subnormals (E8M0) treat field 0 as a normal binade and have no zero.
 *
 * ## Special values (`SpecialEncoding`)
 *
 * - `"ieee"`: field all ones is ±Inf (M = 0) or NaN (M ≠ 0), as in IEEE 754.
 *   FP8 E5M2: max = S.11110.11 = 1.75 · 2^15 = 57344, +Inf = 0.11111.00,
 *   NaN = S.11111.{01,10,11}.
 * - `"fn"`: finite, no Inf; only the all-ones pattern S.1111.111 is NaN.
 *   FP8 E4M3FN: max = S.1111.110 = 1.75 · 2^8 = 448, NaN = S.1111.111.
 * - `"finite"`: every pattern is a number (no Inf, no NaN): the MX element
 *   formats FP6 E3M2 (max 28), FP6 E2M3 (max 7.5), FP4 E2M1 (max 6).
 *
 * ## Encoding rules (ml_dtypes / OCP conventions)
 *
 * - Round to nearest, ties to the code whose significand (implicit bit
 *   included) is even. With zero mantissa bits (E8M0) both neighbours of a
 *   normal tie have odd significand "1": the tie goes up in magnitude, as in
 *   ml_dtypes.
 * - Overflow (a value that rounds beyond max finite) saturates to ±max for
 *   "fn" and "finite" formats. "ieee" formats overflow to ±Inf unless
 *   `overflow = "saturate"` is passed (MX element conversion saturates).
 * - ±Inf → ±Inf for "ieee" formats (±max with `"saturate"`), ±max otherwise.
 * - NaN → the format's NaN code with the input's sign (E4M3FN: 0x7F / 0xFF;
 *   E5M2: quiet NaN 0x7E / 0xFE). Formats without NaN follow ml_dtypes'
 *   implementation-defined choice (the MX spec leaves it open): a NaN with the
 *   sign bit clear gives the −0 pattern (FP4: 0b1000), one with it set gives +0.
 * - Unsigned formats (E8M0): negative non-zero values and NaN → NaN code 0xFF;
 *   ±0 and everything below 2^-127 → 0x00 (2^-127; E8M0 has no zero);
 *   overflow and +Inf saturate to 0xFE (2^127).
 *
 * Where this differs from a plain ml_dtypes cast: ml_dtypes' default
 * (non-saturating) conversion turns overflow and ±Inf into NaN for E4M3FN and
 * E8M0, and 0 into NaN for E8M0; lowbit always uses the saturating behaviour
 * (OCP's "saturate" conversion mode), so a non-NaN input never becomes NaN
 * (except negative inputs to the unsigned E8M0). Everything else, including
 * the NaN rules and E8M0's tie rule, follows ml_dtypes bit for bit, with one
 * known exception: E8M0 inputs in [2^-127, 2^-126), which ml_dtypes rounds as
 * if code 0 were a subnormal step (1.25 · 2^-127 → 2^-126); lowbit picks the
 * nearest (2^-127).
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Codes, NumberFormat } from "../types.ts";
import { distinctFinite, newCodes } from "./_bits.ts";
import { type Consts, encodeMinifloatInto } from "./_minifloat.ts";

/** How a minifloat spends its top codes: IEEE-like Inf/NaN, one NaN ("fn"), or none. */
export type SpecialEncoding = "ieee" | "fn" | "finite";

/** What to do with values beyond max finite in an IEEE-like format. */
export type Overflow = "infinity" | "saturate";

/** The parameters that define a minifloat. */
export interface MinifloatSpec {
  /** Registry name. */
  readonly name: string;
  /** Exponent field width, 1..8. */
  readonly exponentBits: number;
  /** Mantissa field width, 0..22. */
  readonly mantissaBits: number;
  /** Exponent bias; default 2^(exponentBits − 1) − 1. */
  readonly bias?: number;
  /** Inf / NaN encoding. */
  readonly special: SpecialEncoding;
  /** Whether there is a sign bit (default true). */
  readonly signed?: boolean;
  /** Whether field 0 holds subnormals and zero (default true); false for E8M0. */
  readonly subnormals?: boolean;
}

/** A minifloat format with its derived constants. */
export interface MinifloatFormat extends NumberFormat {
  /** Always "float". */
  readonly family: "float";
  /** Exponent field width. */
  readonly exponentBits: number;
  /** Mantissa field width. */
  readonly mantissaBits: number;
  /** Exponent bias. */
  readonly bias: number;
  /** Whether there is a sign bit. */
  readonly signed: boolean;
  /** Whether field 0 holds subnormals and zero. */
  readonly subnormals: boolean;
  /** Inf / NaN encoding. */
  readonly special: SpecialEncoding;
  /** Whether ±Inf are representable. */
  readonly hasInf: boolean;
  /** Whether NaN is representable. */
  readonly hasNaN: boolean;
  /** Code of +max finite. */
  readonly maxCode: number;
  /** Code of +NaN (quiet), or undefined when the format has no NaN. */
  readonly nanCode: number | undefined;
  /**
   * Encodes each value, round to nearest even (see the module doc for specials).
   * `overflow` only matters for "ieee" formats; default "infinity".
   */
  encode(x: Float32Array, overflow?: Overflow): Codes;
  /** Decodes codes (bits above the format's width are ignored). */
  decode(codes: Codes): Float32Array;
}

function fail(detail: string): never {
  throw new LowbitError("INVALID_ARGUMENT", detail);
}

/**
 * Creates a minifloat format from its definition; all constants (max, min
 * normal, min subnormal, NaN / Inf codes) are derived here once.
 *
 * @param spec exponent and mantissa widths, bias, special-value encoding, sign, subnormals
 * @returns the format
 *
 * @example
 * ```ts
 * import { minifloatFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const e4m3 = minifloatFormat({ name: "fp8_e4m3fn", exponentBits: 4, mantissaBits: 3, special: "fn" });
 * assert.equal(e4m3.max, 448);
 * assert.equal(e4m3.minSubnormal, 2 ** -9);
 * assert.deepEqual([...e4m3.encode(new Float32Array([1, -448, 1000]))], [0x38, 0xfe, 0x7e]);
 * ```
 */
export function minifloatFormat(spec: MinifloatSpec): MinifloatFormat {
  const E = spec.exponentBits, M = spec.mantissaBits;
  const signed = spec.signed ?? true;
  const subnormals = spec.subnormals ?? true;
  const special = spec.special;
  if (!Number.isInteger(E) || E < 1 || E > 8) fail(`${spec.name}: exponent bits must be 1..8`);
  if (!Number.isInteger(M) || M < 0 || M > 22) fail(`${spec.name}: mantissa bits must be 0..22`);
  const bits = E + M + (signed ? 1 : 0);
  if (bits > 16) fail(`${spec.name}: at most 16 bits per code, got ${bits}`);
  if (special === "ieee" && (M < 1 || E < 2)) {
    fail(`${spec.name}: IEEE-like formats need ≥ 2 exponent and ≥ 1 mantissa bits`);
  }
  const bias = spec.bias ?? (1 << (E - 1)) - 1;
  if (!Number.isInteger(bias)) fail(`${spec.name}: bias must be an integer`);
  const emin = subnormals ? 1 - bias : -bias;
  const allOnes = (1 << (E + M)) - 1;
  const infMag = ((1 << E) - 1) << M;
  const maxMag = special === "ieee" ? infMag - 1 : special === "fn" ? allOnes - 1 : allOnes;
  const nanMag = special === "ieee" ? infMag | (1 << (M - 1)) : special === "fn" ? allOnes : -1;
  const emax = (maxMag >> M) - bias;
  if (emax > 127 || emin - (subnormals ? M : 0) < -149) {
    fail(`${spec.name}: range 2^${emin}..2^${emax} does not fit in float32`);
  }
  const c: Consts = {
    E,
    M,
    emin,
    normalBase: subnormals ? 1 : 0,
    signShift: E + M,
    signed,
    maxMag,
    infMag,
    nanMag,
    ieee: special === "ieee",
  };

  // Value of a magnitude code, in float64 (exact for every format allowed above).
  const magValue = (mag: number): number => {
    const field = mag >> M, frac = mag & ((1 << M) - 1);
    if (special === "ieee" && field === (1 << E) - 1) return frac === 0 ? Infinity : NaN;
    if (special === "fn" && mag === allOnes) return NaN;
    if (field === 0 && subnormals) return frac * 2 ** (emin - M);
    return (1 + frac / (1 << M)) * 2 ** (field - bias);
  };
  let table: Float32Array | undefined;
  let grid: Float32Array | undefined;
  const decodeTable = (): Float32Array => {
    if (!table) {
      table = new Float32Array(1 << bits);
      const magCount = 1 << (E + M);
      for (let code = 0; code < table.length; code++) {
        const v = magValue(code & (magCount - 1));
        table[code] = signed && code >= magCount ? -v : v;
      }
    }
    return table;
  };
  const minNormal = subnormals ? magValue(1 << M) : magValue(0);
  const minSubnormal = subnormals && M > 0 ? magValue(1) : minNormal;
  const max = magValue(maxMag);

  return {
    name: spec.name,
    bits,
    family: "float",
    max,
    min: signed ? -max : minNormal,
    minNormal,
    minSubnormal,
    exponentBits: E,
    mantissaBits: M,
    bias,
    signed,
    subnormals,
    special,
    hasInf: special === "ieee",
    hasNaN: nanMag >= 0,
    maxCode: maxMag,
    nanCode: nanMag >= 0 ? nanMag : undefined,
    encode(x: Float32Array, overflow: Overflow = "infinity"): Codes {
      const out = newCodes(bits, x.length);
      encodeMinifloatInto(c, x, out, 0, overflow === "saturate");
      return out;
    },
    decode(codes: Codes): Float32Array {
      const t = decodeTable(), mask = t.length - 1;
      const out = new Float32Array(codes.length);
      for (let i = 0; i < codes.length; i++) out[i] = t[codes[i] & mask];
      return out;
    },
    values(): Float32Array {
      grid ??= distinctFinite(decodeTable());
      return grid.slice();
    },
  };
}
