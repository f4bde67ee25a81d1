/**
 * The built-in formats, each defined once. Bit layouts with worked values in
 * the ml_dtypes style; every constant is derived by the format constructors.
 *
 * @module
 */

import type { NumberFormat } from "../types.ts";
import { binaryFormat } from "./binary.ts";
import { mxFormat, nvfp4Format } from "./block.ts";
import { integerFormat } from "./integer.ts";
import { type MinifloatFormat, minifloatFormat } from "./minifloat.ts";
import { nupesFormat } from "./nupes.ts";
import { ptqtpFormat } from "./ptqtp.ts";
import { ternaryFormat } from "./ternary.ts";

// *** minifloats ***

/** OCP FP8 E4M3. Exponent 4, mantissa 3, bias 7, no Inf; NaN = S.1111.111.
 *  max = S.1111.110 = 1.75 · 2^8 = 448; min normal S.0001.000 = 2^-6;
 *  min subnormal S.0000.001 = 2^-9. */
const fp8E4m3fn = (): MinifloatFormat =>
  minifloatFormat({ name: "fp8_e4m3fn", exponentBits: 4, mantissaBits: 3, special: "fn" });

/** OCP FP8 E5M2, IEEE-like. Exponent 5, mantissa 2, bias 15; Inf = S.11111.00,
 *  NaN = S.11111.{01,10,11}. max = S.11110.11 = 1.75 · 2^15 = 57344;
 *  min normal 2^-14; min subnormal S.00000.01 = 2^-16. */
const fp8E5m2 = (): MinifloatFormat =>
  minifloatFormat({ name: "fp8_e5m2", exponentBits: 5, mantissaBits: 2, special: "ieee" });

/** OCP MX FP6 E3M2. Exponent 3, mantissa 2, bias 3, no Inf, no NaN.
 *  max = S.111.11 = 1.75 · 2^4 = 28; min normal 2^-2; min subnormal S.000.01 = 2^-4. */
const fp6E3m2fn = (): MinifloatFormat =>
  minifloatFormat({ name: "fp6_e3m2fn", exponentBits: 3, mantissaBits: 2, special: "finite" });

/** OCP MX FP6 E2M3. Exponent 2, mantissa 3, bias 1, no Inf, no NaN.
 *  max = S.11.111 = 1.875 · 2^2 = 7.5; min normal 1; min subnormal S.00.001 = 0.125. */
const fp6E2m3fn = (): MinifloatFormat =>
  minifloatFormat({ name: "fp6_e2m3fn", exponentBits: 2, mantissaBits: 3, special: "finite" });

/** OCP MX FP4 E2M1. Exponent 2, mantissa 1, bias 1, no Inf, no NaN.
 *  Grid ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}; max = S.11.1 = 6; min subnormal S.00.1 = 0.5. */
const fp4E2m1fn = (): MinifloatFormat =>
  minifloatFormat({ name: "fp4_e2m1fn", exponentBits: 2, mantissaBits: 1, special: "finite" });

/** OCP MX E8M0 scale: unsigned, exponent 8, no mantissa, bias 127, no zero,
 *  no subnormals; NaN = 1111.1111. 0x00 = 2^-127, 0x7F = 1, 0xFE = 2^127. */
const e8m0 = (): MinifloatFormat =>
  minifloatFormat({
    name: "e8m0",
    exponentBits: 8,
    mantissaBits: 0,
    special: "fn",
    signed: false,
    subnormals: false,
  });

/** IEEE binary16: exponent 5, mantissa 10, bias 15; max 65504. */
const fp16 = (): MinifloatFormat =>
  minifloatFormat({ name: "fp16", exponentBits: 5, mantissaBits: 10, special: "ieee" });

/** bfloat16: exponent 8, mantissa 7, bias 127; max ≈ 3.39e38. */
const bf16 = (): MinifloatFormat =>
  minifloatFormat({ name: "bf16", exponentBits: 8, mantissaBits: 7, special: "ieee" });

/**
 * Every built-in format, in registry order: integers, minifloats (with the
 * E8M0 scale and fp16 / bf16), MX and NVFP4 block formats, then ternary,
 * binary, PTQTP and NUPES. Each call builds fresh objects.
 *
 * @returns the formats
 *
 * @example
 * ```ts
 * import { builtinFormats } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const names = builtinFormats().map((f) => f.name);
 * assert.ok(names.includes("fp8_e4m3fn") && names.includes("mxfp4") && names.includes("int16"));
 * ```
 */
export function builtinFormats(): NumberFormat[] {
  const ints: NumberFormat[] = [];
  for (const bits of [2, 3, 4, 5, 6, 7, 8, 16]) ints.push(integerFormat(`int${bits}`, bits, true));
  for (const bits of [2, 3, 4, 5, 6, 7, 8, 16]) {
    ints.push(integerFormat(`uint${bits}`, bits, false));
  }
  const e4m3 = fp8E4m3fn(), e5m2 = fp8E5m2(), e3m2 = fp6E3m2fn(), e2m3 = fp6E2m3fn();
  const e2m1 = fp4E2m1fn(), scale = e8m0();
  return [
    ...ints,
    e4m3,
    e5m2,
    e3m2,
    e2m3,
    e2m1,
    scale,
    fp16(),
    bf16(),
    mxFormat("mxfp8_e4m3", e4m3, scale),
    mxFormat("mxfp8_e5m2", e5m2, scale),
    mxFormat("mxfp6_e3m2", e3m2, scale),
    mxFormat("mxfp6_e2m3", e2m3, scale),
    mxFormat("mxfp4", e2m1, scale),
    // MXINT8 elements: int8 with an implicit 2^-6 (value = q / 64, max 127/64).
    mxFormat("mxint8", integerFormat("int8_f6", 8, true, 6), scale),
    nvfp4Format(e2m1, e4m3),
    ternaryFormat(),
    binaryFormat(),
    ptqtpFormat(128),
    nupesFormat(4),
    nupesFormat(8),
  ];
}
