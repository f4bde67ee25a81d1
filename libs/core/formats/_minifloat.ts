// Private: the minifloat production encoder and its constants, shared by
// minifloat.ts and block.ts. Never exported from mod.ts.

import type { Codes } from "../types.ts";
import type { MinifloatFormat } from "./minifloat.ts";
import { f32Bits } from "./_bits.ts";

/** Derived constants of one minifloat. */
export interface Consts {
  E: number;
  M: number;
  /** Exponent of the lowest normal binade. */
  emin: number;
  /** 1 with subnormals (field = e − emin + 1), 0 without (field = e − emin). */
  normalBase: number;
  signShift: number;
  signed: boolean;
  maxMag: number;
  infMag: number;
  /** NaN magnitude, or -1. */
  nanMag: number;
  ieee: boolean;
}

/**
 * The production encoder (private to the formats folder; block.ts reuses it).
 * Works on the float32 bits: normalise the input significand m (24 bits, with
 * the implicit one) and its exponent e, then round m right by the number of
 * bits the target cannot hold, adding half-minus-one plus the kept LSB (round
 * to nearest even). A carry out of the mantissa flows into the exponent field
 * by plain integer addition, so 1.111…1 rounds up to the next binade and the
 * largest binade overflows into codes above max, which are clamped after.
 */
export function encodeMinifloatInto(
  c: Consts,
  x: Float32Array,
  out: Codes,
  offset: number,
  saturate: boolean,
): void {
  const bitsIn = f32Bits(x);
  const { M, emin, normalBase, signShift, signed, maxMag, infMag, nanMag } = c;
  const toInf = c.ieee && !saturate;
  const shNormal = 23 - M;
  const halfNormal = (1 << (shNormal - 1)) - 1;
  const one = 1 << M;
  for (let i = 0; i < bitsIn.length; i++) {
    const b = bitsIn[i];
    const s = b >>> 31;
    const a = b & 0x7fffffff;
    let mag: number;
    let sign = s;
    if (!signed && (a > 0x7f800000 || (s === 1 && a !== 0))) {
      mag = nanMag >= 0 ? nanMag : 0; // unsigned: NaN and negatives → NaN
    } else if (a > 0x7f800000) {
      // NaN: the NaN code with the input's sign; without one, ml_dtypes' ∓0.
      if (nanMag >= 0) mag = nanMag;
      else {
        mag = 0;
        sign = s ^ 1;
      }
    } else if (a === 0x7f800000) {
      mag = toInf ? infMag : maxMag;
    } else if (a === 0) {
      mag = 0;
    } else {
      const fexp = a >>> 23;
      let m: number, e: number;
      if (fexp === 0) {
        const lz = Math.clz32(a) - 8; // normalise a float32 subnormal
        m = a << lz;
        e = -126 - lz;
      } else {
        m = (a & 0x7fffff) | 0x800000;
        e = fexp - 127;
      }
      if (e >= emin) {
        const q = (m + halfNormal + ((m >>> shNormal) & 1)) >>> shNormal;
        mag = ((e - emin + normalBase) << M) + q - one;
      } else if (normalBase === 0) {
        mag = 0; // no subnormals and no zero: the smallest value is nearest
      } else {
        const sh = shNormal + (emin - e);
        mag = sh >= 25 ? 0 : (m + (1 << (sh - 1)) - 1 + ((m >>> sh) & 1)) >>> sh;
      }
      if (mag > maxMag) mag = toInf ? infMag : maxMag;
    }
    out[offset + i] = signed ? (sign << signShift) | mag : mag;
  }
}

/** The constants of a minifloat format, rederived from its public fields. */
export function minifloatConsts(f: MinifloatFormat): Consts {
  const E = f.exponentBits, M = f.mantissaBits;
  return {
    E,
    M,
    emin: f.subnormals ? 1 - f.bias : -f.bias,
    normalBase: f.subnormals ? 1 : 0,
    signShift: E + M,
    signed: f.signed,
    maxMag: f.maxCode,
    infMag: ((1 << E) - 1) << M,
    nanMag: f.nanCode ?? -1,
    ieee: f.special === "ieee",
  };
}
