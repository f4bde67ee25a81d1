/**
 * Scalar references of the float kernels (`float.ts`), written to compute exactly what the SIMD
 * kernels compute, in the same fixed order, so that tests compare bit for bit.
 *
 * ## The fixed order
 *
 * Every output of every float kernel (GEMM, GEMV, minifloat-weight GEMM/GEMV, conv, depthwise
 * conv) is ONE f32 accumulator: `acc = +0`, then for each term in order (GEMM: k ascending; conv:
 * input channel, then ky, then kx, padding taps included as +0) `acc = madd(x, w, acc)`, then the
 * epilogue `min(max(acc · scale + bias, lo), hi)`, each step only when present, unfused.
 *
 * ## The multiply-add
 *
 * `madd` is `"unfused"` (round(round(x·w) + acc): the plain-SIMD kernels, identical on every
 * engine) or `"fused"` (round(x·w + acc), one rounding: `f32x4.relaxed_madd` on engines that map
 * it to an FMA instruction, which the loader detects at load time; see `float.ts`). The fused
 * reference is exact: the product of two f32 is exact in f64, and the f64 sum is corrected with
 * its TwoSum error where double rounding could otherwise differ from a single rounding.
 *
 * ## Minifloat decoding
 *
 * `decodeMinifloat(format, code)` gives the exact value of one element code; block formats
 * multiply by the block scale in f32 (`fround(value · scale)`, exact except IEEE under/overflow).
 * NVFP4's FP32 tensor scale is applied in the kernel's epilogue (as a per-column scale), not per
 * element.
 *
 * @module
 */

/** How the accumulate step rounds: two roundings (`"unfused"`) or one (`"fused"`). */
export type MaddMode = "unfused" | "fused";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The next f32 after `r` (an f32 value) toward +∞ (`up`) or −∞. */
function nextF32(r: number, up: boolean): number {
  if (r === 0) return up ? 2 ** -149 : -(2 ** -149);
  f32[0] = r;
  const away = (r > 0) === up;
  u32[0] += away ? 1 : -1;
  return f32[0];
}

/**
 * Exact f32 fused multiply-add: round(a · b + c) with one rounding, for f32 inputs.
 *
 * @param a f32 value
 * @param b f32 value
 * @param c f32 value
 * @returns the correctly rounded f32 result
 *
 * @example
 * ```ts
 * import { fmaF32 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * const a = 1 + 2 ** -12;
 * assert.equal(fmaF32(a, a, -1), 2 ** -11 + 2 ** -24); // an unfused multiply-add gives 2 ** -11
 * ```
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 significant bits
  const s = p + c;
  const r = Math.fround(s);
  if (r === s || !Number.isFinite(s)) return r;
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb); // s + err = p + c exactly
  if (err === 0) return r;
  const other = nextF32(r, s > r);
  // an overflowing r stands for ±2^128 in the tie test (the tie is then ±(2^128 − 2^103))
  const far = Number.isFinite(r) ? r : Math.sign(r) * 2 ** 128;
  if ((far + other) / 2 !== s) return r; // not a tie: err cannot move it across
  // a tie in f64 but not in reality: round toward the true value
  const up = err > 0;
  return up ? Math.max(r, other) : Math.min(r, other);
}

/**
 * One accumulate step `acc + x·w` under a {@link MaddMode}.
 *
 * @param x f32 value
 * @param w f32 value
 * @param acc f32 accumulator
 * @param mode fused or unfused
 * @returns the new accumulator
 *
 * @example
 * ```ts
 * import { maddF32 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * const a = 1 + 2 ** -12;
 * assert.equal(maddF32(a, a, -1, "unfused"), 2 ** -11);
 * assert.equal(maddF32(a, a, -1, "fused"), 2 ** -11 + 2 ** -24);
 * ```
 */
export function maddF32(x: number, w: number, acc: number, mode: MaddMode): number {
  return mode === "fused" ? fmaF32(x, w, acc) : Math.fround(acc + Math.fround(x * w));
}

/** The reference epilogue: scale, bias, clamp; each optional. */
export interface RefEpilogue {
  /** Per-column (GEMM) or per-row (conv: output channel) scale. */
  scale?: Float32Array;
  /** Per-column (GEMM) or per-output-channel (conv) bias. */
  bias?: Float32Array;
  /** Lower clamp (default −∞). */
  lo?: number;
  /** Upper clamp (default +∞). */
  hi?: number;
  /** Elementwise steps after the clamp (convs; see `ConvPostOps` in float.ts). */
  post?: RefPostOps;
}

/**
 * The conv post-ops, in this order: × preMul, + preAdd, HardSwish (ONNX's decomposition), × mul,
 * + add, then QuantizeLinear to centred codes.
 */
export interface RefPostOps {
  /** Multiply by this first. */
  preMul?: number;
  /** Then add this. */
  preAdd?: number;
  /** HardSwish as Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6). */
  hardswish?: boolean;
  /** Multiply by this. */
  mul?: number;
  /** Add this. */
  add?: number;
  /** clamp(round_half_even(f32(v / scale)), lo, hi). */
  quantize?: { scale: number; lo: number; hi: number };
  /** With `quantize`, after it: f32(c · scale), a NaN code taken as nanCode. */
  dequantize?: { nanCode: number };
  /** Instead of `quantize`: DequantizeLinear(QuantizeLinear(v)) to float8 (see refQdqFp8). */
  qdqFp8?: { scale: number; format: "fp8_e4m3fn" | "fp8_e5m2" };
}

/**
 * The float8 formats of the Q → DQ references and kernels (refQdqFp8, qdqFp8F32, the conv
 * post-op qdqFp8): [mantissa bits, smallest normal exponent, largest finite value].
 */
export const FP8_QDQ_FORMATS: Readonly<
  Record<"fp8_e4m3fn" | "fp8_e5m2", readonly [number, number, number]>
> = {
  fp8_e4m3fn: [3, -6, 448],
  fp8_e5m2: [2, -14, 57344],
};

/** A format's quantum by f32 exponent field (the subnormal quantum below its smallest normal). */
const FP8_QUANTA = Object.fromEntries(
  Object.entries(FP8_QDQ_FORMATS).map(([f, [m, minNormal]]) => [
    f,
    Float64Array.from({ length: 256 }, (_, e) => 2 ** (Math.max(e - 127, minNormal) - m)),
  ]),
) as Record<"fp8_e4m3fn" | "fp8_e5m2", Float64Array>;

const V32 = new Float32Array(1), V32_BITS = new Uint32Array(V32.buffer);

/**
 * DequantizeLinear(QuantizeLinear(v)) to a float8 format, per tensor, zero point 0, saturating,
 * in plain scalar code: u = f32(v / scale); r = |u| rounded half to even to a multiple of the
 * format's quantum at u's exponent (its subnormal quantum below the smallest normal), at most the
 * format's max; then f32(±r · scale). The rounding is exact arithmetic on doubles (|u| / quantum
 * is below 2⁵¹ and the quantum a power of two). NaN stays NaN, ±0 keeps its sign.
 *
 * @param v the value
 * @param scale the scale (f32, > 0)
 * @param format the float8 format
 * @returns the dequantized value
 *
 * @example
 * ```ts
 * import { refQdqFp8 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(refQdqFp8(1.0625, 1, "fp8_e4m3fn"), 1); // 1 + 1/16: a tie, to the even 1
 * assert.equal(refQdqFp8(1000, 1, "fp8_e4m3fn"), 448); // saturates
 * ```
 */
export function refQdqFp8(v: number, scale: number, format: "fp8_e4m3fn" | "fp8_e5m2"): number {
  const max = FP8_QDQ_FORMATS[format][2];
  const s = Math.fround(scale);
  V32[0] = Math.fround(v) / s; // f32(v / s): the double quotient of two f32 rounds once to f32
  const b = V32_BITS[0], a = Math.abs(V32[0]);
  let r: number;
  if (!(a <= max)) r = a > max ? max : a; // beyond max and ∞ saturate; NaN stays NaN
  else {
    const q = FP8_QUANTA[format][(b >>> 23) & 255];
    r = Math.min((a / q + RNE - RNE) * q, max);
  }
  return Math.fround((b >>> 31 ? -r : r) * s);
}

/** 1.5·2⁵²: adding and subtracting it rounds a double to an integer, ties to even. */
const RNE = 6755399441055744;

/**
 * Applies the post-ops to one f32 value, each step rounded to f32 (plain scalar code: the
 * independent twin of the kernels' vector epilogue).
 *
 * @param v the value (after the clamp)
 * @param p the post-ops
 * @returns the result
 *
 * @example
 * ```ts
 * import { refPost } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(refPost(3, { hardswish: true }), 3); // 3·clip(6, 0, 6)/6
 * assert.equal(refPost(0.5, { quantize: { scale: 0.2, lo: -128, hi: 127 } }), 2); // 2.5 → 2
 * // Q → DQ: code 2, times the scale; NaN takes the code nanCode
 * const qdq = { quantize: { scale: 0.25, lo: -128, hi: 127 }, dequantize: { nanCode: 3 } };
 * assert.equal(refPost(0.6, qdq), 0.5); // 2.4 → 2 → 0.5
 * assert.equal(refPost(NaN, qdq), 0.75);
 * ```
 */
export function refPost(v: number, p: RefPostOps): number {
  const f = Math.fround;
  if (p.preMul !== undefined) v = f(v * f(p.preMul));
  if (p.preAdd !== undefined) v = f(v + f(p.preAdd));
  if (p.hardswish) v = f(f(v * Math.min(6, Math.max(0, f(v + 3)))) / 6);
  if (p.mul !== undefined) v = f(v * f(p.mul));
  if (p.add !== undefined) v = f(v + f(p.add));
  const q = p.quantize;
  if (q !== undefined && !Number.isNaN(v)) {
    const r = f(v / f(q.scale)) + RNE - RNE;
    v = (r < q.lo ? q.lo : r > q.hi ? q.hi : r) + 0;
  }
  if (q !== undefined && p.dequantize !== undefined) {
    v = f((Number.isNaN(v) ? p.dequantize.nanCode : v) * f(q.scale));
  }
  if (p.qdqFp8 !== undefined) v = refQdqFp8(v, p.qdqFp8.scale, p.qdqFp8.format);
  return v;
}

function epilogue(acc: number, i: number, e: RefEpilogue): number {
  let v = acc;
  if (e.scale) v = Math.fround(v * e.scale[i]);
  if (e.bias) v = Math.fround(v + e.bias[i]);
  v = Math.min(Math.max(v, Math.fround(e.lo ?? -Infinity)), Math.fround(e.hi ?? Infinity));
  return e.post ? refPost(v, e.post) : v;
}

/**
 * Reference GEMM: C[M×N] = epilogue(A[M×K] · B[K×N]) in the kernels' fixed order, row-major
 * operands. Scale and bias are per column.
 *
 * @param a A, row-major M×K
 * @param b B, row-major K×N (f32 values; decoded minifloat weights for the minifloat kernels)
 * @param m rows of A
 * @param k columns of A
 * @param n columns of B
 * @param mode multiply-add rounding
 * @param epi epilogue
 * @returns C, row-major M×N
 *
 * @example
 * ```ts
 * import { refGemmF32 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * const c = refGemmF32(new Float32Array([1, 2]), new Float32Array([3, 4]), 1, 2, 1, "unfused", {
 *   bias: new Float32Array([0.5]),
 * });
 * assert.deepEqual([...c], [11.5]);
 * ```
 */
export function refGemmF32(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  mode: MaddMode,
  epi: RefEpilogue = {},
): Float32Array {
  const c = new Float32Array(m * n);
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let kk = 0; kk < k; kk++) {
      const x = a[i * k + kk];
      const row = kk * n;
      if (mode === "fused") { for (let j = 0; j < n; j++) acc[j] = fmaF32(x, b[row + j], acc[j]); }
      else for (let j = 0; j < n; j++) acc[j] = Math.fround(acc[j] + Math.fround(x * b[row + j]));
    }
    for (let j = 0; j < n; j++) c[i * n + j] = epilogue(acc[j], j, epi);
  }
  return c;
}

/** Geometry of a reference conv. */
export interface RefConvGeometry {
  /** [batch, channels, height, width] of the input. */
  input: readonly [number, number, number, number];
  /** [out channels, in channels per group, kh, kw] of the weight. */
  weight: readonly [number, number, number, number];
  /** Groups. */
  group: number;
  /** [sh, sw]. */
  strides: readonly [number, number];
  /** [top, left, bottom, right]. */
  pads: readonly [number, number, number, number];
  /** [dh, dw]. */
  dilations: readonly [number, number];
}

/**
 * Output height and width of a conv.
 *
 * @param g the geometry
 * @returns [oh, ow]
 *
 * @example
 * ```ts
 * import { convOutputSize } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * const g = { input: [1, 1, 5, 5], weight: [1, 1, 3, 3], group: 1, strides: [2, 2],
 *   pads: [1, 1, 1, 1], dilations: [1, 1] } as const;
 * assert.deepEqual(convOutputSize(g), [3, 3]);
 * ```
 */
export function convOutputSize(g: RefConvGeometry): [number, number] {
  const [, , h, w] = g.input;
  const [, , kh, kw] = g.weight;
  const oh =
    Math.floor((h + g.pads[0] + g.pads[2] - g.dilations[0] * (kh - 1) - 1) / g.strides[0]) +
    1;
  const ow =
    Math.floor((w + g.pads[1] + g.pads[3] - g.dilations[1] * (kw - 1) - 1) / g.strides[1]) +
    1;
  return [oh, ow];
}

/**
 * Reference conv2d (NCHW, OIHW) in the kernels' fixed order: per output, channels of the group,
 * then ky, then kx, padding taps accumulated as +0. `acc` is f64 only when `mode` is `"exact"`
 * (a plain float64 conv, for tolerance checks); otherwise f32 steps under the given madd mode.
 *
 * @param x input, [batch, c, h, w]
 * @param w weight, [o, c/group, kh, kw]
 * @param g geometry
 * @param mode multiply-add rounding, or "exact" for a float64 sum
 * @param epi epilogue (bias per output channel)
 * @returns output, [batch, o, oh, ow]
 *
 * @example
 * ```ts
 * import { refConv2dF32 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * const g = { input: [1, 1, 2, 2], weight: [1, 1, 1, 1], group: 1, strides: [1, 1],
 *   pads: [0, 0, 0, 0], dilations: [1, 1] } as const;
 * const y = refConv2dF32(new Float32Array([1, 2, 3, 4]), new Float32Array([2]), g, "unfused", {});
 * assert.deepEqual([...y], [2, 4, 6, 8]);
 * ```
 */
export function refConv2dF32(
  x: Float32Array,
  w: Float32Array,
  g: RefConvGeometry,
  mode: MaddMode | "exact",
  epi: RefEpilogue = {},
): Float32Array {
  const [batch, c, h, wd] = g.input;
  const [o, cg, kh, kw] = g.weight;
  const [oh, ow] = convOutputSize(g);
  const og = o / g.group;
  const [sh, sw] = g.strides, [dh, dw] = g.dilations, [pt, pl] = g.pads;
  const out = new Float32Array(batch * o * oh * ow);
  for (let n = 0; n < batch; n++) {
    for (let oc = 0; oc < o; oc++) {
      const c0 = Math.floor(oc / og) * cg;
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let acc = 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
                const v = iy >= 0 && iy < h && ix >= 0 && ix < wd
                  ? x[((n * c + c0 + ci) * h + iy) * wd + ix]
                  : 0;
                const wv = w[((oc * cg + ci) * kh + ky) * kw + kx];
                acc = mode === "exact" ? acc + wv * v : maddF32(wv, v, acc, mode);
              }
            }
          }
          out[((n * o + oc) * oh + oy) * ow + ox] = epilogue(
            mode === "exact" ? Math.fround(acc) : acc,
            oc,
            epi,
          );
        }
      }
    }
  }
  return out;
}

// *** minifloats ***

/** Element formats the minifloat kernels decode. */
export type MinifloatElement =
  | "fp8_e4m3fn"
  | "fp8_e5m2"
  | "fp6_e3m2fn"
  | "fp6_e2m3fn"
  | "fp4_e2m1fn";

/** [exponent bits, mantissa bits, special encoding] of each element format. */
export const ELEMENT_LAYOUT: Readonly<
  Record<MinifloatElement, readonly [number, number, "fn" | "ieee" | "finite"]>
> = {
  fp8_e4m3fn: [4, 3, "fn"], // S.EEEE.MMM, bias 7, max 448, NaN = S.1111.111, no Inf
  fp8_e5m2: [5, 2, "ieee"], // S.EEEEE.MM, bias 15, max 57344, Inf = S.11111.00, NaN = S.11111.{01,10,11}
  fp6_e3m2fn: [3, 2, "finite"], // S.EEE.MM, bias 3, max 28
  fp6_e2m3fn: [2, 3, "finite"], // S.EE.MMM, bias 1, max 7.5
  fp4_e2m1fn: [2, 1, "finite"], // S.EE.M, bias 1, max 6
};

/**
 * The exact value of one minifloat code (NaN / ±Inf for the format's special codes).
 *
 * @param format element format
 * @param code the code (bits right-aligned)
 * @returns its value
 *
 * @example
 * ```ts
 * import { decodeMinifloat } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(decodeMinifloat("fp8_e4m3fn", 0x7e), 448);
 * assert.equal(decodeMinifloat("fp4_e2m1fn", 0b1111), -6);
 * assert.ok(Number.isNaN(decodeMinifloat("fp8_e4m3fn", 0xff)));
 * ```
 */
export function decodeMinifloat(format: MinifloatElement, code: number): number {
  const [e, m, special] = ELEMENT_LAYOUT[format];
  const bias = (1 << (e - 1)) - 1;
  const sign = (code >> (e + m)) & 1 ? -1 : 1;
  const field = (code >> m) & ((1 << e) - 1);
  const mant = code & ((1 << m) - 1);
  if (special === "fn" && field === (1 << e) - 1 && mant === (1 << m) - 1) return NaN;
  if (special === "ieee" && field === (1 << e) - 1) return mant === 0 ? sign * Infinity : NaN;
  if (field === 0) return sign * mant * 2 ** (1 - bias - m);
  return sign * (1 + mant / (1 << m)) * 2 ** (field - bias);
}

/**
 * The value of an E8M0 scale code: 2^(code − 127); NaN for 0xFF.
 *
 * @param code the code
 * @returns the scale
 *
 * @example
 * ```ts
 * import { decodeE8M0 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(decodeE8M0(127), 1);
 * ```
 */
export function decodeE8M0(code: number): number {
  return code === 0xff ? NaN : 2 ** (code - 127);
}

// *** the minifloat kernels' value domain ***

/**
 * How far below their true values the fp8 / fp6 kernels compute (a power of two, 2^60): see
 * {@link refGemmMinifloat}.
 */
export const MINIFLOAT_DOMAIN_SHIFT = 60;

/**
 * The power of two the fp8 / fp6 kernels decode weights at: fp8 codes' f32 bits, formed by shifts
 * and masks alone, are the value of w·2^-shift with shift = 127 − bias (e4m3: 120, e5m2: 112);
 * fp6 decodes add 64 to the exponent so that no weight is an f32 subnormal (slow on x86):
 * shift = 127 − bias − 64 (e3m2: 60, e2m3: 62). 0 for fp4, whose lookup tables give w itself.
 *
 * @param element element format
 * @returns the shift
 *
 * @example
 * ```ts
 * import { minifloatWeightShift } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(minifloatWeightShift("fp8_e4m3fn"), 120);
 * assert.equal(minifloatWeightShift("fp6_e2m3fn"), 62);
 * assert.equal(minifloatWeightShift("fp4_e2m1fn"), 0);
 * ```
 */
export function minifloatWeightShift(element: MinifloatElement): number {
  if (element === "fp4_e2m1fn") return 0;
  const [e, , special] = ELEMENT_LAYOUT[element];
  return 127 - ((1 << (e - 1)) - 1) - (special === "finite" && e < 4 ? 64 : 0);
}

/**
 * Reference of the minifloat-weight GEMM / GEMV exactly as the kernels compute it. fp4 weights
 * are used as they are (this is {@link refGemmF32}). fp8 / fp6 weights are decoded at
 * w·2^-B (B = {@link minifloatWeightShift}, no multiply in the kernel), so the activations are
 * scaled by 2^(B − 60) and the epilogue scale by 2^60 (`fround` each): every product and partial
 * sum is then the true one times 2^-60, which is bit-identical to
 * `refGemmF32(a, w, …, { scale })` unless a product's magnitude falls below 2^-66 (subnormal in
 * the scaled domain: rounded to a multiple of 2^-89 instead of 24 significant bits), |a| ≥ 2^68,
 * a scale ≥ 2^68, or a partial sum overflows where the final result does not.
 *
 * @param a A, row-major M×K (true values)
 * @param w the kernels' weights, row-major K×N: `decodeMinifloatWeights(w, "kernel")`
 * @param m rows of A
 * @param k columns of A
 * @param n columns of W
 * @param element the weights' element format
 * @param mode multiply-add rounding
 * @param epi epilogue (scale: the per-column scale in true units)
 * @returns C, row-major M×N
 *
 * @example
 * ```ts
 * import { refGemmMinifloat } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * // fp8 e4m3 weight 1.5 is decoded at 1.5 · 2^-120
 * const c = refGemmMinifloat(new Float32Array([2]), new Float32Array([1.5 * 2 ** -120]), 1, 1, 1,
 *   "fp8_e4m3fn", "unfused");
 * assert.deepEqual([...c], [3]);
 * ```
 */
export function refGemmMinifloat(
  a: Float32Array,
  w: Float32Array,
  m: number,
  k: number,
  n: number,
  element: MinifloatElement,
  mode: MaddMode,
  epi: RefEpilogue = {},
): Float32Array {
  const b = minifloatWeightShift(element);
  if (b === 0) return refGemmF32(a, w, m, k, n, mode, epi);
  const sa = 2 ** (b - MINIFLOAT_DOMAIN_SHIFT), so = 2 ** MINIFLOAT_DOMAIN_SHIFT;
  const as = a.map((x) => x * sa); // Float32Array: stored rounded to f32
  const scale = epi.scale ? epi.scale.map((s) => s * so) : new Float32Array(n).fill(so);
  return refGemmF32(as, w, m, k, n, mode, { ...epi, scale });
}

// *** minifloat weights × int8 activations ***

/** Element formats whose values are int8 multiples of a power of two (see `minifloat_s8.ts`). */
export type MinifloatS8Format = "fp4_e2m1fn" | "fp6_e2m3fn";

/**
 * The integer a code stands for on the int8 path: value / unit, unit = 1/2 (FP4 E2M1) or 1/8
 * (FP6 E2M3). −0 gives 0.
 *
 * @param format the element format
 * @param code the code
 * @returns the integer (|·| ≤ 12 for FP4, ≤ 60 for FP6 E2M3)
 *
 * @example
 * ```ts
 * import { minifloatS8Value } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(minifloatS8Value("fp4_e2m1fn", 0b1111), -12); // −6 · 2
 * assert.equal(minifloatS8Value("fp6_e2m3fn", 0b011111), 60); // 7.5 · 8
 * ```
 */
export function minifloatS8Value(format: MinifloatS8Format, code: number): number {
  return (decodeMinifloat(format, code) / minifloatS8Unit(format)) | 0;
}

/**
 * The weight unit of the int8 path: 1/2 for FP4 E2M1, 1/8 for FP6 E2M3.
 *
 * @param format the element format
 * @returns the unit
 *
 * @example
 * ```ts
 * import { minifloatS8Unit } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * assert.equal(minifloatS8Unit("fp6_e2m3fn"), 0.125);
 * ```
 */
export function minifloatS8Unit(format: MinifloatS8Format): number {
  return format === "fp4_e2m1fn" ? 0.5 : 0.125;
}

/**
 * The int8 path's epilogue, shared by the kernel wrapper and {@link refGemmMinifloatS8}:
 * out[i][j] = fround(fround(acc[i][j]) · s[j]) with s[j] = fround(unit · channelScale[j] · aScale),
 * then + bias[j] rounded to f32.
 *
 * @param acc exact int32 sums, M×N
 * @param m rows
 * @param n columns
 * @param format element format (its unit)
 * @param channelScale per-column scale
 * @param aScale activation scale
 * @param bias optional per-column bias
 * @param out output, M×N
 *
 * @example
 * ```ts
 * import { minifloatS8Epilogue } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * const out = new Float32Array(1);
 * minifloatS8Epilogue(new Int32Array([6]), 1, 1, "fp4_e2m1fn", new Float32Array([2]), 1, undefined, out);
 * assert.equal(out[0], 6); // 6 · (1/2 · 2)
 * ```
 */
export function minifloatS8Epilogue(
  acc: Int32Array,
  m: number,
  n: number,
  format: MinifloatS8Format,
  channelScale: Float32Array,
  aScale: number,
  bias: Float32Array | undefined,
  out: Float32Array,
): void {
  const unit = minifloatS8Unit(format);
  const s = new Float32Array(n);
  for (let j = 0; j < n; j++) s[j] = unit * channelScale[j] * aScale;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const v = Math.fround(Math.fround(acc[i * n + j]) * s[j]);
      out[i * n + j] = bias ? v + bias[j] : v;
    }
  }
}

/**
 * Reference of `gemmMinifloatS8`: plain integer sums Σ_k a[i][k]·(value(code[k][j]) / unit),
 * then {@link minifloatS8Epilogue}.
 *
 * @param a int8 activations, M×K
 * @param codes weight codes, K×N row-major
 * @param m rows of A
 * @param k reduction length
 * @param n columns
 * @param format element format
 * @param opts per-column scale (default ones), activation scale (default 1), bias
 * @returns Y, M×N
 *
 * @example
 * ```ts
 * import { refGemmMinifloatS8 } from "@lowbit/kernels";
 * import assert from "node:assert/strict";
 * // fp4 6 and −1.5 against activations 3, 2
 * const y = refGemmMinifloatS8(new Int8Array([3, 2]), new Uint8Array([7, 11]), 1, 2, 1, "fp4_e2m1fn");
 * assert.deepEqual([...y], [15]);
 * ```
 */
export function refGemmMinifloatS8(
  a: Int8Array,
  codes: Uint8Array,
  m: number,
  k: number,
  n: number,
  format: MinifloatS8Format,
  opts: { channelScale?: Float32Array; aScale?: number; bias?: Float32Array } = {},
): Float32Array {
  const acc = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let kk = 0; kk < k; kk++) {
        s += a[i * k + kk] * minifloatS8Value(format, codes[kk * n + j]);
      }
      acc[i * n + j] = s;
    }
  }
  const out = new Float32Array(m * n);
  minifloatS8Epilogue(
    acc,
    m,
    n,
    format,
    opts.channelScale ?? new Float32Array(n).fill(1),
    opts.aScale ?? 1,
    opts.bias,
    out,
  );
  return out;
}
