/**
 * Block-scaled formats: OCP Microscaling (MX v1.0) and NVIDIA's NVFP4.
 *
 * ## MX (MXFP8 E4M3 / E5M2, MXFP6 E3M2 / E2M3, MXFP4, MXINT8)
 *
 * Blocks of 32 consecutive values share one E8M0 scale X = 2^s with
 * s = floor(log2(amax)) − emax_elem, clamped to E8M0's range [−127, 127];
 * emax_elem is the exponent of the element format's largest normal
 * (E4M3 8, E5M2 15, E3M2 4, E2M3 2, E2M1 2, INT8 0). Each element is
 * V / X rounded to nearest even in the element format, saturating to ±max
 * (also for E5M2, as the spec asks). Decoded value = element · X.
 *
 * - All-zero block: amax = 0 has no log2; the scale is the smallest, 2^−127
 *   (code 0x00), and every element encodes ±0 (same rule as the OCP reference
 *   code, which floors amax = 0 to the smallest normal before the log).
 * - A block holding a NaN or ±Inf: the scale is NaN (0xFF) and, per the spec,
 *   the whole block decodes to NaN; its element codes are 0.
 * - MXINT8 elements are int8 with 6 fraction bits (value = q / 64), clamped
 *   symmetrically to ±127/64 (the spec's max normal ±1 63/64); code 0x80
 *   (−2) is never produced but decodes.
 *
 * ## NVFP4
 *
 * Two-level scaling. The FP32 tensor scale is ts = amax / (6 · 448) over the
 * finite values (NVIDIA's recipe: the largest block scale then lands on
 * E4M3's max 448), or 1 when amax = 0. Blocks of 16 values get an E4M3 scale
 * s_b = e4m3(fround(amax_b / 6) / ts) (round to nearest even, saturating);
 * elements are e2m1(V / fround(s_b · ts)), each step rounded to float32.
 * Decoded value = e2m1 · s_b · ts. A block whose scale rounds to 0 encodes
 * zeros; a block holding NaN / ±Inf gets the E4M3 NaN scale 0x7F and decodes
 * to NaN.
 *
 * ## Two ways to call
 *
 * - `encodeBlocks(x)` → `{ codes, scales, tensorScale }`; `decodeBlocks(enc)`.
 * - `encode(x)` returns the element codes (one per value) with the scales
 *   attached as properties: `codes.scales` (one E8M0 / E4M3 code per block)
 *   and `codes.tensorScale` (FP32; 1 for MX). `decode(codes)` reads them back,
 *   so `decode(encode(x))` is the fake-quantized `x`. The properties do not
 *   survive `slice()` or copying; decoding bare codes is a `LowbitError`.
 *
 * Either way `x.length` must be a multiple of the block size (else a
 * `LowbitError` with code SHAPE_MISMATCH); empty input gives empty output.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { BlockEncoded, BlockFormat, BlockLayout, Codes, NumberFormat } from "../types.ts";
import { bitsOfF32, checkBlockLength, newCodes } from "./_bits.ts";
import { encodeMinifloatInto, minifloatConsts } from "./_minifloat.ts";
import type { IntegerFormat } from "./integer.ts";
import type { MinifloatFormat } from "./minifloat.ts";

/** Element codes with the block scales that decode them attached. */
export type BlockCodes = Codes & {
  /** One scale code per block. */
  readonly scales: Codes;
  /** Per-tensor FP32 scale (NVFP4); 1 for MX. */
  readonly tensorScale: number;
};

/** floor(log2(v)) of a positive finite float32, exactly, from its bits. */
function floorLog2(v: number): number {
  const b = bitsOfF32(v);
  const fexp = b >>> 23;
  return fexp !== 0 ? fexp - 127 : 31 - Math.clz32(b & 0x7fffff) - 149;
}

function attach(enc: BlockEncoded): BlockCodes {
  return Object.assign(enc.codes, { scales: enc.scales, tensorScale: enc.tensorScale });
}

function detach(codes: Codes, name: string): BlockEncoded {
  const c = codes as Partial<BlockCodes>;
  if (c.scales === undefined) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${name}: decode() needs the block scales that encode() attaches to its result ` +
        `(codes.scales); for stored codes call decodeBlocks({ codes, scales, tensorScale })`,
    );
  }
  return { codes, scales: c.scales, tensorScale: c.tensorScale ?? 1 };
}

/** Element encoder that saturates, for minifloat or integer elements. */
function elementEncoder(
  element: MinifloatFormat | IntegerFormat,
): (tmp: Float32Array, out: Codes, offset: number) => void {
  if (element.family === "float") {
    const c = minifloatConsts(element);
    return (tmp, out, offset) => encodeMinifloatInto(c, tmp, out, offset, true);
  }
  const max = element.max;
  return (tmp, out, offset) => {
    for (let j = 0; j < tmp.length; j++) tmp[j] = Math.min(max, Math.max(-max, tmp[j]));
    out.set(element.encode(tmp), offset);
  };
}

/**
 * Creates an OCP MX block format: blocks of `blockSize` values share one
 * E8M0 power-of-two scale (see the module doc for the exact rules).
 *
 * @param name registry name, e.g. "mxfp4"
 * @param element element format (FP8 / FP6 / FP4 minifloat, or int8 with 6 fraction bits)
 * @param scale the E8M0 scale format
 * @param blockSize values per block (32 in MX v1.0)
 * @returns the block format
 *
 * @example
 * ```ts
 * import { getFormat, type BlockFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const mxfp4 = getFormat("mxfp4") as BlockFormat;
 * const x = new Float32Array(32).fill(1);
 * x[0] = 6; // amax 6 → shared exponent floor(log2 6) − 2 = 0 → scale 2^0 (code 127)
 * const enc = mxfp4.encodeBlocks(x);
 * assert.deepEqual([...enc.scales], [127]);
 * assert.deepEqual(mxfp4.decodeBlocks(enc), x);
 * ```
 */
export function mxFormat(
  name: string,
  element: MinifloatFormat | IntegerFormat,
  scale: MinifloatFormat,
  blockSize = 32,
): BlockFormat {
  const emax = Math.floor(Math.log2(element.max));
  const encodeElements = elementEncoder(element);
  const elementValue = (codes: Codes): Float32Array => element.decode(codes);
  // The block's shared exponent: floor(log2 amax) − emax in E8M0's range (−127 for a zero block).
  const sharedExponent = (amax: number): number =>
    Math.max(-127, Math.min(127, amax === 0 ? -127 : floorLog2(amax) - emax));
  const encodeBlocks = (x: Float32Array): BlockEncoded => {
    checkBlockLength(x.length, blockSize, name);
    const n = x.length, nb = n / blockSize;
    const codes = newCodes(element.bits, n);
    const scales = new Uint8Array(nb);
    // Every block scaled into one buffer, then one encoder pass over all of it (a block of
    // non-finite values stays 0 there: its codes are 0, its scale code NaN).
    const tmp = new Float32Array(n);
    for (let b = 0; b < nb; b++) {
      const base = b * blockSize;
      let amax = 0, finite = true;
      for (let j = 0; j < blockSize; j++) {
        const a = Math.abs(x[base + j]);
        if (!(a < Infinity)) finite = false;
        else if (a > amax) amax = a;
      }
      if (!finite) {
        scales[b] = 0xff;
        continue;
      }
      const s = sharedExponent(amax);
      scales[b] = s + 127;
      const inv = 2 ** -s;
      for (let j = 0; j < blockSize; j++) tmp[base + j] = x[base + j] * inv;
    }
    encodeElements(tmp, codes, 0);
    return { codes, scales, tensorScale: 1 };
  };
  const decodeBlocks = (enc: BlockEncoded): Float32Array => {
    checkBlockLength(enc.codes.length, blockSize, name);
    const nb = enc.codes.length / blockSize;
    checkScales(enc.scales.length, nb, name);
    const out = elementValue(enc.codes);
    for (let b = 0; b < nb; b++) {
      const sc = enc.scales[b];
      const x = sc === 0xff ? NaN : 2 ** (sc - 127);
      for (let j = b * blockSize; j < (b + 1) * blockSize; j++) out[j] = out[j] * x;
    }
    return out;
  };
  const roundElement = element.family === "float" ? minifloatRounder(element) : undefined;
  // Encode then decode, fused: each block's power-of-two scale as encodeBlocks picks it, each
  // element rounded to the element grid in the value domain, times the scale. x is viewed as
  // [outer, len, inner] with blocks along len (a tensor's rows along one axis, read in place);
  // a short last block is a zero-padded one (zeros change no block maximum and round to zero).
  const roundBlocks = roundElement === undefined ? undefined : (
    x: Float32Array,
    out: Float32Array = new Float32Array(x.length),
    layout: BlockLayout = { outer: 1, len: x.length, inner: 1 },
  ): Float32Array => {
    const { outer, len, inner } = layout;
    if (outer * len * inner !== x.length || out.length !== x.length) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${name}: ${x.length} values (out ${out.length}) are not [${outer}, ${len}, ${inner}]`,
      );
    }
    // Per position along inner: the block's maximum, then its scale and inverse (NaN: a block
    // holding NaN or ±Inf, whose scale code is NaN and whose elements all decode to NaN).
    const amax = new Float64Array(inner), inv = new Float64Array(inner);
    const sc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      for (let b0 = 0; b0 < len; b0 += blockSize) {
        const b1 = Math.min(len, b0 + blockSize);
        amax.fill(0);
        for (let j = b0; j < b1; j++) {
          const base = (o * len + j) * inner;
          for (let p = 0; p < inner; p++) {
            // NaN / ±Inf make the maximum NaN, which stays NaN (a > NaN is false).
            const a = Math.abs(x[base + p]);
            if (a > amax[p]) amax[p] = a < Infinity ? a : NaN;
            else if (a !== a) amax[p] = NaN;
          }
        }
        for (let p = 0; p < inner; p++) {
          const m = amax[p];
          if (Number.isNaN(m)) {
            inv[p] = 0, sc[p] = NaN;
            continue;
          }
          const e = sharedExponent(m);
          inv[p] = 2 ** -e, sc[p] = 2 ** e;
        }
        for (let j = b0; j < b1; j++) {
          const base = (o * len + j) * inner;
          for (let p = 0; p < inner; p++) {
            out[base + p] = roundElement(Math.fround(x[base + p] * inv[p])) * sc[p];
          }
        }
      }
    }
    return out;
  };
  return blockFormat(name, element, scale, blockSize, encodeBlocks, decodeBlocks, roundBlocks);
}

/**
 * Rounds a float32 value to the nearest value of a minifloat format, ties to even, saturating
 * at its largest finite value: the value `encode` (saturating) then `decode` give, for finite
 * inputs, computed without the codes. Formats without subnormals (and without a zero) keep the
 * code path (undefined here).
 */
function minifloatRounder(f: MinifloatFormat): ((v: number) => number) | undefined {
  if (!f.subnormals || !f.signed) return undefined;
  const M = f.mantissaBits, emin = 1 - f.bias, max = f.max;
  // The quantum 2^(e − M) of each binade e ≥ emin (the subnormals share emin's), and the float32
  // bits of the value to read e from.
  const quanta = Float64Array.from({ length: 256 }, (_, i) => 2 ** (Math.max(i - 127, emin) - M));
  const f32 = new Float32Array(1), bits = new Uint32Array(f32.buffer);
  // Adding and taking away 2^52 rounds a float64 in [0, 2^52) to an integer, ties to even.
  const RNE = 2 ** 52;
  return (v: number): number => {
    const a = Math.abs(v);
    if (a === 0) return v; // ±0 keeps its sign
    f32[0] = a; // a float32 already: exact
    const q = quanta[bits[0] >>> 23];
    // a / q is exact (q a power of two) and below 2^(M + 2).
    const r = (a / q + RNE - RNE) * q;
    const m = r > max ? max : r;
    return v < 0 ? -m : m;
  };
}

/** The BlockFormat object around a format's block encoder / decoder. */
function blockFormat(
  name: string,
  element: NumberFormat,
  scale: NumberFormat,
  blockSize: number,
  encodeBlocks: (x: Float32Array) => BlockEncoded,
  decodeBlocks: (enc: BlockEncoded) => Float32Array,
  roundBlocks?: (x: Float32Array, out?: Float32Array, layout?: BlockLayout) => Float32Array,
): BlockFormat {
  return {
    ...(roundBlocks === undefined ? {} : { roundBlocks }),
    name,
    bits: element.bits,
    family: "block",
    max: element.max,
    min: element.min,
    minNormal: element.minNormal,
    minSubnormal: element.minSubnormal,
    bitsPerValue: element.bits + scale.bits / blockSize,
    blockSize,
    element,
    scaleFormat: scale,
    encodeBlocks,
    decodeBlocks,
    encode: (x: Float32Array): BlockCodes => attach(encodeBlocks(x)),
    decode: (codes: Codes): Float32Array => decodeBlocks(detach(codes, name)),
    values: (): Float32Array => element.values(),
  };
}

function checkScales(got: number, want: number, name: string): void {
  if (got !== want) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${name}: ${want} blocks need ${want} scale codes, got ${got}`,
    );
  }
}

/**
 * Creates NVFP4: E2M1 elements, blocks of 16 with an E4M3 scale, and an FP32
 * tensor scale amax / (6 · 448) (see the module doc).
 *
 * @param element the FP4 E2M1 format
 * @param scale the FP8 E4M3FN format
 * @param blockSize values per block (16)
 * @returns the block format, named "nvfp4"
 *
 * @example
 * ```ts
 * import { getFormat, type BlockFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const nvfp4 = getFormat("nvfp4") as BlockFormat;
 * const x = new Float32Array(16).fill(0.5);
 * x[3] = 2688; // amax = 6 · 448 → tensor scale 1, block scale 448
 * const enc = nvfp4.encodeBlocks(x);
 * assert.equal(enc.tensorScale, 1);
 * assert.deepEqual([...enc.scales], [0x7e]);
 * assert.equal(nvfp4.decodeBlocks(enc)[3], 2688);
 * ```
 */
export function nvfp4Format(
  element: MinifloatFormat,
  scale: MinifloatFormat,
  blockSize = 16,
): BlockFormat {
  const name = "nvfp4";
  const ce = minifloatConsts(element), cs = minifloatConsts(scale);
  const scaleTable = scale.decode(Uint8Array.from({ length: 256 }, (_, i) => i));
  const encodeBlocks = (x: Float32Array): BlockEncoded => {
    checkBlockLength(x.length, blockSize, name);
    const n = x.length, nb = n / blockSize;
    let amax = 0;
    for (let i = 0; i < n; i++) {
      const a = Math.abs(x[i]);
      if (a < Infinity && a > amax) amax = a;
    }
    let ts = amax > 0 ? Math.fround(amax / (6 * scale.max)) : 1;
    if (ts === 0) ts = 2 ** -149;
    const codes = newCodes(element.bits, n);
    const scales = new Uint8Array(nb);
    const tmp = new Float32Array(blockSize);
    const one = new Float32Array(1);
    const sc = new Uint8Array(1);
    for (let b = 0; b < nb; b++) {
      const base = b * blockSize;
      let bmax = 0, finite = true;
      for (let j = 0; j < blockSize; j++) {
        const a = Math.abs(x[base + j]);
        if (!(a < Infinity)) finite = false;
        else if (a > bmax) bmax = a;
      }
      if (!finite) {
        scales[b] = scale.nanCode ?? 0;
        continue;
      }
      one[0] = Math.fround(bmax / 6) / ts;
      encodeMinifloatInto(cs, one, sc, 0, true);
      scales[b] = sc[0];
      const sDec = scaleTable[sc[0]];
      if (sDec === 0) continue;
      const denom = Math.fround(sDec * ts);
      for (let j = 0; j < blockSize; j++) tmp[j] = x[base + j] / denom;
      encodeMinifloatInto(ce, tmp, codes, base, true);
    }
    return { codes, scales, tensorScale: ts };
  };
  const decodeBlocks = (enc: BlockEncoded): Float32Array => {
    checkBlockLength(enc.codes.length, blockSize, name);
    const nb = enc.codes.length / blockSize;
    checkScales(enc.scales.length, nb, name);
    const out = element.decode(enc.codes);
    for (let b = 0; b < nb; b++) {
      const s = scaleTable[enc.scales[b] & 0xff] * enc.tensorScale;
      for (let j = b * blockSize; j < (b + 1) * blockSize; j++) out[j] = out[j] * s;
    }
    return out;
  };
  return blockFormat(name, element, scale, blockSize, encodeBlocks, decodeBlocks);
}
