/**
 * Scalar codecs of the 16- and 8-bit IEEE-style floats ONNX stores (float16, bfloat16,
 * float8e4m3fn, float8e5m2): one number to its bit pattern and back, for tensor storage. Defined
 * once here; the formats of the same names (`fp16`, `bf16`, `fp8_*`) encode whole arrays with
 * the generic minifloat codec, and a test checks both agree.
 *
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE half-precision bits → number.
 *
 * @param h 16-bit pattern
 * @returns the value
 *
 * @example
 * ```ts
 * import { f16BitsToF32 } from "@lowbit/core";
 * if (f16BitsToF32(0x3c00) !== 1) throw new Error();
 * ```
 */
export function f16BitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Number → IEEE half-precision bits, rounding to nearest even; overflow → ±inf.
 *
 * @param x the value
 * @returns the 16-bit pattern
 *
 * @example
 * ```ts
 * import { f32ToF16Bits } from "@lowbit/core";
 * if (f32ToF16Bits(-2) !== 0xc000) throw new Error();
 * ```
 */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/**
 * bfloat16 bits → number.
 *
 * @param h 16-bit pattern
 * @returns the value
 *
 * @example
 * ```ts
 * import { bf16BitsToF32 } from "@lowbit/core";
 * if (bf16BitsToF32(0x3f80) !== 1) throw new Error();
 * ```
 */
export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/**
 * Number → bfloat16 bits, rounding to nearest even (NaN stays NaN).
 *
 * @param x the value
 * @returns the 16-bit pattern
 *
 * @example
 * ```ts
 * import { f32ToBf16Bits } from "@lowbit/core";
 * if (f32ToBf16Bits(1) !== 0x3f80) throw new Error();
 * ```
 */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * float8 e4m3fn code → number. Exponent 4, mantissa 3, bias 7, no infinity,
 * NaN = S.1111.111 (so 0x7e = 448 is the largest finite value).
 *
 * @param c 8-bit code
 * @returns the value
 *
 * @example
 * ```ts
 * import { f8e4m3fnToF32 } from "@lowbit/core";
 * if (f8e4m3fnToF32(0x7e) !== 448) throw new Error();
 * ```
 */
export function f8e4m3fnToF32(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15;
  const m = c & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return s * m * 2 ** -9;
  return s * (1 + m / 8) * 2 ** (e - 7);
}

/**
 * float8 e5m2 code → number. Exponent 5, mantissa 2, bias 15, IEEE-like
 * (S.11111.00 = inf, S.11111.xx = NaN).
 *
 * @param c 8-bit code
 * @returns the value
 *
 * @example
 * ```ts
 * import { f8e5m2ToF32 } from "@lowbit/core";
 * if (f8e5m2ToF32(0x3c) !== 1) throw new Error();
 * ```
 */
export function f8e5m2ToF32(c: number): number {
  return f16BitsToF32((c & 0xff) << 8);
}
