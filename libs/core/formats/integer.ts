/**
 * Integer formats: signed and unsigned, 1..16 bits, optionally fixed point
 * (a value is the integer times 2^−fractionBits; MXINT8's elements are int8
 * with 6 fraction bits).
 *
 * Codes are the integer's own bits: signed formats store two's complement in
 * the low `bits` bits (int4 −3 → 0b1101 = 13, int8 −128 → 0x80), unsigned ones
 * the plain integer. So an int8 code byte reinterpreted as Int8Array is the
 * integer, and 4-bit codes pack two per byte unchanged (see packing.ts).
 *
 * Encoding: round half to even (numpy / torch), then clamp to [min, max]; ±Inf
 * clamp to the range ends. NaN has no integer code: encode throws a
 * `LowbitError` (INVALID_TENSOR) naming the first NaN's index.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Codes, NumberFormat } from "../types.ts";
import { newCodes, roundHalfEven } from "./_bits.ts";

/** An integer (or fixed-point) format. */
export interface IntegerFormat extends NumberFormat {
  /** Always "int". */
  readonly family: "int";
  /** Two's complement (true) or unsigned. */
  readonly signed: boolean;
  /** Fixed-point fraction bits (0 for plain integers). */
  readonly fractionBits: number;
  /** Smallest integer code value (e.g. −128). */
  readonly qmin: number;
  /** Largest integer code value (e.g. 127). */
  readonly qmax: number;
}

/**
 * Creates an integer format.
 *
 * @param name registry name, e.g. "int4"
 * @param bits code width, 1..16 (signed: 2..16)
 * @param signed two's complement or unsigned
 * @param fractionBits value = integer · 2^−fractionBits (default 0)
 * @returns the format
 *
 * @example
 * ```ts
 * import { integerFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const int4 = integerFormat("int4", 4, true);
 * assert.deepEqual([...int4.encode(new Float32Array([2.5, -3, 100, -0.5]))], [2, 13, 7, 0]);
 * assert.deepEqual([...int4.decode(new Uint8Array([13, 8]))], [-3, -8]);
 * ```
 */
export function integerFormat(
  name: string,
  bits: number,
  signed: boolean,
  fractionBits = 0,
): IntegerFormat {
  if (!Number.isInteger(bits) || bits < (signed ? 2 : 1) || bits > 16) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${name}: integer formats have ${signed ? 2 : 1}..16 bits, got ${bits}`,
    );
  }
  const qmin = signed ? -(2 ** (bits - 1)) : 0;
  const qmax = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const mask = 2 ** bits - 1;
  const unit = 2 ** -fractionBits;
  const inv = 2 ** fractionBits;
  return {
    name,
    bits,
    family: "int",
    signed,
    fractionBits,
    qmin,
    qmax,
    max: qmax * unit,
    min: qmin * unit,
    minNormal: unit,
    minSubnormal: unit,
    encode(x: Float32Array): Codes {
      const out = newCodes(bits, x.length);
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        if (v !== v) {
          throw new LowbitError(
            "INVALID_TENSOR",
            `NaN at index ${i}: integer format '${name}' has no NaN code; clean or mask the input`,
          );
        }
        let q = roundHalfEven(v * inv);
        if (q < qmin) q = qmin;
        else if (q > qmax) q = qmax;
        out[i] = q & mask;
      }
      return out;
    },
    decode(codes: Codes): Float32Array {
      const out = new Float32Array(codes.length);
      const half = 2 ** (bits - 1), full = 2 ** bits;
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i] & mask;
        out[i] = (signed && c >= half ? c - full : c) * unit;
      }
      return out;
    },
    values(): Float32Array {
      const out = new Float32Array(qmax - qmin + 1);
      for (let i = 0; i < out.length; i++) out[i] = (qmin + i) * unit;
      return out;
    },
  };
}
