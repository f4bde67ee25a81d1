/**
 * Parametric format names. Anything `builtinFormats()` does not register by
 * name is built from its name on demand:
 *
 * ```
 * int<N>                  signed two's complement, N = 2..16        int5, int12
 * uint<N>                 unsigned, N = 1..16                        uint3
 * int<N>_f<K>             fixed point: int<N> · 2^-K, K = 1..16      int8_f6 (MXINT8 element)
 * fp_e<E>m<M>[fn][_b<B>]  minifloat, E = 1..8, M = 0..22, ≤ 16 bits  fp_e3m4, fp_e2m5fn, fp_e4m3fn_b11
 * fp<N>_e<E>m<M>[fn]      the same with the width spelled, N = 1 + E + M   fp8_e4m3, fp5_e2m2fn
 * nupes<N>                NUPES power-exponent grid, N = 2..8        nupes3
 * ptqtp_g<G>              PTQTP trit-planes with groups of G         ptqtp_g64
 * ```
 *
 * Minifloat suffixes follow ml_dtypes / OCP naming:
 * - none: IEEE-like, field all ones is ±Inf / NaN (fp_e3m4 max 15.5, fp8_e4m3 max 240);
 * - `fn`: finite, no Inf. At 8 bits or more the all-ones pattern S.1…1.1…1 is
 *   NaN (as fp8_e4m3fn); below 8 bits every pattern is a number (as
 *   fp6_e3m2fn, fp4_e2m1fn). So fp_e4m3fn ≡ fp8_e4m3fn and fp_e2m1fn ≡ fp4_e2m1fn.
 * - `_b<B>`: exponent bias B instead of 2^(E−1) − 1.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { NumberFormat } from "../types.ts";
import { integerFormat } from "./integer.ts";
import { minifloatFormat } from "./minifloat.ts";
import { nupesFormat } from "./nupes.ts";
import { ptqtpFormat } from "./ptqtp.ts";

const FP = /^fp(\d+)?_e(\d+)m(\d+)(fn)?(?:_b(-?\d+))?$/;

/**
 * Builds a format from a parametric name (grammar in the module doc).
 *
 * @param name e.g. "int5", "uint3", "fp_e3m4", "fp_e2m5fn", "nupes3"
 * @returns the format, or undefined if the name does not follow the grammar;
 *   a name that follows it with impossible parameters ("int40", "fp8_e4m4")
 *   is a `LowbitError` (INVALID_ARGUMENT) saying why
 *
 * @example
 * ```ts
 * import { parseFormatName } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.equal(parseFormatName("int5")?.max, 15);
 * assert.equal(parseFormatName("fp_e3m4")?.max, 15.5);
 * assert.equal(parseFormatName("fp_e2m1fn")?.max, 6);
 * assert.equal(parseFormatName("no-such-format"), undefined);
 * ```
 */
export function parseFormatName(name: string): NumberFormat | undefined {
  let m: RegExpMatchArray | null;
  if ((m = name.match(/^(u?)int(\d+)$/))) return integerFormat(name, +m[2], m[1] === "");
  if ((m = name.match(/^int(\d+)_f(\d+)$/))) {
    const k = +m[2];
    if (k < 1 || k > 16) bad(name, "fraction bits must be 1..16");
    return integerFormat(name, +m[1], true, k);
  }
  if ((m = name.match(FP))) {
    const E = +m[2], M = +m[3];
    if (m[1] !== undefined && +m[1] !== 1 + E + M) {
      bad(name, `width ${m[1]} ≠ 1 + ${E} + ${M}`);
    }
    const fn = m[4] !== undefined;
    return minifloatFormat({
      name,
      exponentBits: E,
      mantissaBits: M,
      bias: m[5] !== undefined ? +m[5] : undefined,
      special: !fn ? "ieee" : 1 + E + M >= 8 ? "fn" : "finite",
    });
  }
  if ((m = name.match(/^nupes(\d+)$/))) return nupesFormat(+m[1]);
  if ((m = name.match(/^ptqtp_g(\d+)$/))) {
    const g = +m[1];
    if (g < 1 || g > 65536) bad(name, "group size must be 1..65536");
    return ptqtpFormat(g);
  }
  return undefined;
}

function bad(name: string, why: string): never {
  throw new LowbitError("INVALID_ARGUMENT", `format '${name}': ${why}`);
}
