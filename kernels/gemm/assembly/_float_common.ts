// Shared helpers of the float kernels (f32 GEMM, minifloat-weight GEMM/GEMV, conv).
// Never built on its own (leading underscore); imported by float_gemm.ts (plain SIMD) and
// float_gemm_relaxed.ts (relaxed SIMD), which instantiate every kernel with one marker type.
//
// *** the multiply-add ***
// Every float kernel accumulates with `madd<V>(a, b, acc)`:
//   V = Plain -> f32x4.add(acc, f32x4.mul(a, b))   two roundings, the same on every engine
//   V = Fused -> f32x4.relaxed_madd(a, b, acc)     fused (one rounding) or unfused, engine-defined;
//                                                  the TS loader probes which at load time and the
//                                                  scalar reference follows the probe.
// The selection happens at compile time (isInteger<V>()), so the plain module contains no relaxed
// instruction and validates on engines without relaxed SIMD.

/** Marker type: plain SIMD multiply then add. */
export type Plain = f32;
/** Marker type: `f32x4.relaxed_madd`. */
export type Fused = i32;

// @ts-ignore: decorator
@inline
export function madd<V>(a: v128, b: v128, acc: v128): v128 {
  if (isInteger<V>()) {
    return f32x4.relaxed_madd(a, b, acc);
  } else {
    return f32x4.add(acc, f32x4.mul(a, b));
  }
}

/** i8x16 table lookup with indices known to be in 0..15 (so relaxed_swizzle is exact too). */
// @ts-ignore: decorator
@inline
export function swz<V>(table: v128, idx: v128): v128 {
  if (isInteger<V>()) {
    return i8x16.relaxed_swizzle(table, idx);
  } else {
    return i8x16.swizzle(table, idx);
  }
}

// *** epilogue state ***
// Set by each exported entry point before it runs (wasm globals: per instance, so per worker).
// flags: bit 0 scale present, bit 1 bias present, bit 2 scale/bias indexed by row (conv: output
// channel) instead of by column.
export let epiFlags: i32 = 0;
export let epiScale: usize = 0;
export let epiBias: usize = 0;
export let epiLo: f32 = 0;
export let epiHi: f32 = 0;
/** Whether [epiLo, epiHi] clamps anything (it does not when it is [−∞, ∞]: min / max are then the
 * identity, NaN included). */
export let epiClamp: bool = false;

export const EPI_SCALE: i32 = 1;
export const EPI_BIAS: i32 = 2;
export const EPI_ROW: i32 = 4;
/**
 * Integer-only requantization instead of scale / bias / clamp / post-ops (dense convs, by row):
 * epiScale then points at one record of six f64 per row (bias code bq, multiplier m0, 2^−shift,
 * zero point zy, lo, hi) and the output is the code q = clamp(sign(t)·floor(|t|·2^−shift + 1/2)
 * + zy, lo, hi), t = (acc + bq)·m0, in f64 as the integer plan's TypeScript epilogue computes it
 * (acc exact in f32: |acc| < 2^24).
 */
export const EPI_DYADIC: i32 = 8;
export const DYADIC_RECORD: i32 = 48;

export function setEpilogue(flags: i32, scale: usize, bias: usize, lo: f32, hi: f32): void {
  epiFlags = flags;
  epiScale = scale;
  epiBias = bias;
  epiLo = lo;
  epiHi = hi;
  epiClamp = lo > -Infinity || hi < Infinity;
  epiPost = 0;
  epiMode = epiModeOf();
}

/**
 * The epilogues of the integer plan's quantized convs (PP-LCNet: bias, × preMul, + preAdd,
 * HardSwish, × mul, + add, quantize; or bias, × preMul, + preAdd, quantize; or bias, quantize;
 * with or without the scale, no clamp: modes 1–6; bias, clamp, quantize, dequantize: 7–8; bias,
 * clamp, quantize: 9–10) as one
 * number, so that `epi` runs them straight through after one test instead of testing a dozen
 * flags per vector (the same operations in the same order: the same bits). 0: any other
 * epilogue (the general path).
 */
export let epiMode: i32 = 0;
const LCNET_FULL: i32 = 63; // POST_PREMUL | POST_PREADD | POST_HARDSWISH | POST_MUL | POST_ADD | POST_QUANT
const LCNET_AFFINE: i32 = 56; // POST_PREMUL | POST_PREADD | POST_QUANT
function epiModeOf(): i32 {
  if ((epiFlags & (EPI_BIAS | EPI_DYADIC)) != EPI_BIAS) return 0;
  const post = epiPost & 255;
  if (epiClamp) {
    // An int8 Q → DQ pair after a ReLU / Clip (PP-OCRv4 det's head): modes 7 / 8; the next
    // layer's quantization after a ReLU / Clip (the digits CNN's depthwise convs): 9 / 10.
    if (post == POST_QUANT) return epiFlags & EPI_SCALE ? 9 : 10;
    if (post != (POST_QUANT | POST_DEQUANT)) return 0;
    return epiFlags & EPI_SCALE ? 7 : 8;
  }
  const m = post == LCNET_FULL ? 1 : post == LCNET_AFFINE ? 2 : post == POST_QUANT ? 3 : 0;
  return m == 0 ? 0 : (epiFlags & EPI_SCALE ? m : m + 3);
}

// *** post-ops after the clamp (the conv entry points that take them set them after setEpilogue) ***
// In this order: bit 3: multiply by epiPreMul; bit 4: add epiPreAdd; bit 0: HardSwish as ONNX's
// Add(3) → Clip(0, 6) → Mul(x) → Div(6), each step rounded to f32; bit 1: multiply by
// epiPostMul; bit 2: add epiPostAdd; bit 5: quantize as ONNX QuantizeLinear to centred codes,
// min(max(nearest(v / epiQScale), epiQLo), epiQHi) (+0, so that −0 becomes +0); bit 7 (with
// bit 5): then DequantizeLinear, f32(c · epiQScale), a NaN code taken as epiQNan (bits 8..17 of
// epiPost: the centred code of QuantizeLinear's NaN, + 512).
export let epiPost: i32 = 0;
export let epiQNan: f32 = 0;
export let epiPostMul: f32 = 1;
export let epiPostAdd: f32 = 0;
export let epiPreMul: f32 = 1;
export let epiPreAdd: f32 = 0;
export let epiQScale: f32 = 1;
export let epiQLo: f32 = 0;
export let epiQHi: f32 = 0;
/**
 * Integer weights of a dense conv (0: none): the OIHW weights as i16, rows of Kp = K rounded up
 * to even (zero-padded). Set by loadEpilogue (word 13); conv2dF32Pixels then runs the chunks
 * whose im2col values are all integers in i16 range on the i16 dot kernel (_conv_int.ts).
 */
export let epiW16: usize = 0;
/**
 * The zero-padded i16 copy of the image (conv2dPadI16; 0: none): with epiW16, conv2dF32Pixels
 * gathers its pair panels from it (im2colI16). Word 14 of the parameter block.
 */
export let epiX16: usize = 0;
/**
 * 1 when epiX16 holds the channel-pair layout (conv2dPadI16Pairs) and epiW16 the weights in the
 * matching K order (ky, kx, c): conv2dF32Pixels then gathers with im2colI16Pairs. Word 15.
 */
export let epiPairs: i32 = 0;

export const POST_HARDSWISH: i32 = 1;
export const POST_MUL: i32 = 2;
export const POST_ADD: i32 = 4;
export const POST_PREMUL: i32 = 8;
export const POST_PREADD: i32 = 16;
export const POST_QUANT: i32 = 32;
/**
 * DequantizeLinear(QuantizeLinear(v)) to a float8 format (qdqFp8x4), last: scale epiQScale, max
 * epiQHi, the format's mantissa bits in bits 8..11 of epiPost and the f32 exponent field of its
 * smallest normal in bits 16..23.
 */
export const POST_QDQ_FP8: i32 = 64;
/** After POST_QUANT: DequantizeLinear of the centred code (× epiQScale; NaN → epiQNan). */
export const POST_DEQUANT: i32 = 128;

export function setEpiloguePost(post: i32, mul: f32, add: f32): void {
  epiPost = post;
  epiQNan = <f32>(((post >> 8) & 1023) - 512);
  epiPostMul = mul;
  epiPostAdd = add;
  epiMode = epiModeOf();
}

/**
 * Sets the whole epilogue from a parameter block in memory (the split conv entry points: their
 * argument count is bounded): i32 flags, u32 scale, u32 bias, f32 lo, f32 hi, i32 post, f32
 * postMul, f32 postAdd, f32 preMul, f32 preAdd, f32 qScale, f32 qLo, f32 qHi, u32 i16 weights
 * (epiW16, 0 for none), u32 i16 padded image (epiX16, 0 for none), i32 pair layout (epiPairs)
 * (64 bytes).
 */
export function loadEpilogue(p: usize): void {
  epiW16 = <usize>load<u32>(p, 52);
  epiX16 = <usize>load<u32>(p, 56);
  epiPairs = load<i32>(p, 60);
  setEpilogue(load<i32>(p), <usize>load<u32>(p, 4), <usize>load<u32>(p, 8), load<f32>(p, 12), load<f32>(p, 16));
  setEpiloguePost(load<i32>(p, 20), load<f32>(p, 24), load<f32>(p, 28));
  setEpiloguePre(load<f32>(p, 32), load<f32>(p, 36), load<f32>(p, 40), load<f32>(p, 44), load<f32>(p, 48));
}

/** The pre-affine and quantization parameters of the post-ops (bits 3, 4, 5). */
export function setEpiloguePre(preMul: f32, preAdd: f32, qScale: f32, qLo: f32, qHi: f32): void {
  epiPreMul = preMul;
  epiPreAdd = preAdd;
  epiQScale = qScale;
  epiQLo = qLo;
  epiQHi = qHi;
}

/** out = min(max(v * s + b, lo), hi), each step only when enabled; unfused, in this order. */
// @ts-ignore: decorator
@inline
export function epi(v: v128, s: v128, b: v128): v128 {
  const mode = epiMode;
  if (mode >= 9) {
    // Bias, clamp, quantize (see epiMode), as the general path below.
    if (mode == 9) v = f32x4.mul(v, s);
    v = f32x4.add(v, b);
    v = f32x4.min(f32x4.max(v, f32x4.splat(epiLo)), f32x4.splat(epiHi));
    v = f32x4.nearest(f32x4.div(v, f32x4.splat(epiQScale)));
    return f32x4.add(f32x4.pmin(f32x4.pmax(v, f32x4.splat(epiQLo)), f32x4.splat(epiQHi)), f32x4.splat(0));
  }
  if (mode >= 7) {
    // Bias, clamp, quantize, dequantize (see epiMode), as the general path below.
    if (mode == 7) v = f32x4.mul(v, s);
    v = f32x4.add(v, b);
    v = f32x4.min(f32x4.max(v, f32x4.splat(epiLo)), f32x4.splat(epiHi));
    v = f32x4.nearest(f32x4.div(v, f32x4.splat(epiQScale)));
    v = f32x4.add(f32x4.pmin(f32x4.pmax(v, f32x4.splat(epiQLo)), f32x4.splat(epiQHi)), f32x4.splat(0));
    return f32x4.mul(v128.bitselect(v, f32x4.splat(epiQNan), f32x4.eq(v, v)), f32x4.splat(epiQScale));
  }
  if (mode != 0) {
    // Straight through (see epiMode): the steps of the general path below, in its order.
    if (mode <= 3) v = f32x4.mul(v, s);
    v = f32x4.add(v, b);
    const m = mode > 3 ? mode - 3 : mode;
    if (m != 3) v = f32x4.add(f32x4.mul(v, f32x4.splat(epiPreMul)), f32x4.splat(epiPreAdd));
    if (m == 1) {
      const t = f32x4.min(f32x4.max(f32x4.add(v, f32x4.splat(3)), f32x4.splat(0)), f32x4.splat(6));
      v = f32x4.div(f32x4.mul(v, t), f32x4.splat(6));
      v = f32x4.add(f32x4.mul(v, f32x4.splat(epiPostMul)), f32x4.splat(epiPostAdd));
    }
    v = f32x4.nearest(f32x4.div(v, f32x4.splat(epiQScale)));
    v = f32x4.pmin(f32x4.pmax(v, f32x4.splat(epiQLo)), f32x4.splat(epiQHi));
    return f32x4.add(v, f32x4.splat(0));
  }
  if (epiFlags & EPI_SCALE) v = f32x4.mul(v, s);
  if (epiFlags & EPI_BIAS) v = f32x4.add(v, b);
  if (epiClamp) v = f32x4.min(f32x4.max(v, f32x4.splat(epiLo)), f32x4.splat(epiHi));
  if (epiPost) v = postOps(v);
  return v;
}

/** The post-ops of epiPost (see above). */
// @ts-ignore: decorator
@inline
function postOps(v: v128): v128 {
  if (epiPost & POST_PREMUL) v = f32x4.mul(v, f32x4.splat(epiPreMul));
  if (epiPost & POST_PREADD) v = f32x4.add(v, f32x4.splat(epiPreAdd));
  if (epiPost & POST_HARDSWISH) {
    const t = f32x4.min(f32x4.max(f32x4.add(v, f32x4.splat(3)), f32x4.splat(0)), f32x4.splat(6));
    v = f32x4.div(f32x4.mul(v, t), f32x4.splat(6));
  }
  if (epiPost & POST_MUL) v = f32x4.mul(v, f32x4.splat(epiPostMul));
  if (epiPost & POST_ADD) v = f32x4.add(v, f32x4.splat(epiPostAdd));
  if (epiPost & POST_QUANT) {
    // pmax / pmin (one instruction each; NaN in v stays NaN, and +0 turns −0 into +0).
    v = f32x4.nearest(f32x4.div(v, f32x4.splat(epiQScale)));
    v = f32x4.pmin(f32x4.pmax(v, f32x4.splat(epiQLo)), f32x4.splat(epiQHi));
    v = f32x4.add(v, f32x4.splat(0));
    if (epiPost & POST_DEQUANT) {
      v = f32x4.mul(v128.bitselect(v, f32x4.splat(epiQNan), f32x4.eq(v, v)), f32x4.splat(epiQScale));
    }
  }
  if (epiPost & POST_QDQ_FP8) v = qdqFp8x4(v, epiQScale, (epiPost >> 8) & 15, (epiPost >> 16) & 255, epiQHi);
  return v;
}

/**
 * DequantizeLinear(QuantizeLinear(x)) to a float8 format with saturation, per tensor, zero point
 * 0, of four values: v = f32(x / s), r = |v| rounded half to even to the format's quantum at its
 * exponent (2^(max(e, eMin) − 127 − m), e the f32 exponent field, eMin the field of the format's
 * smallest normal), min(r, max), the sign of v, then f32(±r·s). Every step is exact but the
 * division and the last multiply (a power-of-two scaling and a rounding of a small integer);
 * NaN stays NaN, ±0 keeps its sign.
 */
// @ts-ignore: decorator
@inline
export function qdqFp8x4(x: v128, s: f32, m: i32, eMin: i32, max: f32): v128 {
  const vs = f32x4.splat(s);
  const v = f32x4.div(x, vs);
  const a = v128.and(v, i32x4.splat(0x7fffffff));
  const e = i32x4.max_s(i32x4.shr_u(a, 23), i32x4.splat(eMin));
  const u = i32x4.sub(i32x4.shl(e, 23), i32x4.splat(m << 23)); // bits of the quantum
  const inv = i32x4.sub(i32x4.splat(254 << 23), u); // bits of 1 / quantum
  const r = f32x4.min(f32x4.mul(f32x4.nearest(f32x4.mul(a, inv)), u), f32x4.splat(max));
  return f32x4.mul(v128.or(r, v128.and(v, i32x4.splat(0x80000000))), vs);
}

/** The EPI_DYADIC requantization of four sums (record `r`), as f32 codes. */
// @ts-ignore: decorator
@inline
function dyadic4(v: v128, r: usize): v128 {
  const a = dyadic2(f64x2.promote_low_f32x4(v), r);
  const b = dyadic2(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), r);
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

// @ts-ignore: decorator
@inline
function dyadic2(x: v128, r: usize): v128 {
  const t = f64x2.mul(f64x2.add(x, v128.load64_splat(r)), v128.load64_splat(r, 8));
  const m = f64x2.floor(f64x2.add(f64x2.mul(f64x2.abs(t), v128.load64_splat(r, 16)), f64x2.splat(0.5)));
  // sign(t)·m: negate where t < 0 (−0 and +0 both give m = 0, then + zy)
  const s = v128.bitselect(f64x2.neg(m), m, f64x2.lt(t, f64x2.splat(0)));
  const q = f64x2.add(s, v128.load64_splat(r, 24));
  return f64x2.min(f64x2.max(q, v128.load64_splat(r, 32)), v128.load64_splat(r, 40));
}

/** Applies the epilogue to the 8 values of row `row` at columns j..j+7 and stores them. */
// @ts-ignore: decorator
@inline
export function storeRow8(c: usize, x0: v128, x1: v128, row: i32, j: i32, last: bool): void {
  if (last && (epiFlags & EPI_DYADIC) != 0) {
    const r = epiScale + <usize>row * DYADIC_RECORD;
    x0 = dyadic4(x0, r);
    x1 = dyadic4(x1, r);
  } else if (last) {
    let s0 = f32x4.splat(1), s1 = s0, b0 = f32x4.splat(0), b1 = b0;
    if (epiFlags & EPI_ROW) {
      if (epiFlags & EPI_SCALE) {
        s0 = v128.load32_splat(epiScale + (<usize>row << 2));
        s1 = s0;
      }
      if (epiFlags & EPI_BIAS) {
        b0 = v128.load32_splat(epiBias + (<usize>row << 2));
        b1 = b0;
      }
    } else {
      if (epiFlags & EPI_SCALE) {
        s0 = v128.load(epiScale + (<usize>j << 2));
        s1 = v128.load(epiScale + (<usize>j << 2), 16);
      }
      if (epiFlags & EPI_BIAS) {
        b0 = v128.load(epiBias + (<usize>j << 2));
        b1 = v128.load(epiBias + (<usize>j << 2), 16);
      }
    }
    x0 = epi(x0, s0, b0);
    x1 = epi(x1, s1, b1);
  }
  v128.store(c, x0);
  v128.store(c, x1, 16);
}
