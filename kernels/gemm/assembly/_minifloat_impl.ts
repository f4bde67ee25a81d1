// Minifloat-weight × f32-activation GEMM and GEMV (fp8 e4m3fn / e5m2, fp6 e3m2 / e2m3, fp4 e2m1,
// with optional f32 block scales along K: MXFP8 / MXFP4 / NVFP4). Weights are decoded in
// registers; no lookup table in memory. Generic over the multiply-add marker V. Never built alone.
//
// *** formats (argument `fmt`) ***
//   FMT_FP4 = 0   fp4 e2m1: two codes per byte. Decoded by two 16-entry i8x16.swizzle tables that
//                 give the bf16 bits of each value (exact), widened to f32 by a zero interleave.
//   E = 2..5      a byte-aligned minifloat with E exponent bits and bias 2^(E-1) - 1, sign in bit 7
//                 (fp6 codes are stored shifted left by 2). Decoded as bits = (sext(code) << E) &
//                 (0x8000 | 0x7f << E) in i16 lanes, widened to f32 bits, times 2^(127 - bias): exact
//                 for normals and subnormals. Codes that are NaN / Inf in the format are rejected by
//                 the TS packer, so they never reach a kernel.
//   FMT_F32 = 32  plain f32 panels (for the f32 GEMV).
// Decoded weight w = value(code), or fround(value(code) · blockScale) with a block scale (exact:
// scales are powers of two (E8M0) or E4M3, except for IEEE under/overflow, which the reference
// reproduces by the same f32 multiply).
//
// *** packed layout (written by float.ts) ***
// ceil(N/8) panels of 8 columns. Panel p: for k = 0..Kp-1 one row of 8 codes:
//   byte formats: 8 bytes (columns 0..7), Kp = K rounded up to 2, panel stride Kp·8 bytes;
//   fp4: 4 bytes, byte t = column t (low nibble) | column t+4 (high nibble), Kp = K rounded up to
//   4, panel stride Kp·4; f32: 8 floats, Kp = K.
// Padding rows and columns hold code 0 (+0). Block scales (block > 0): ceil(K/block) rows of 8
// floats per panel, panel stride ceil(K/block)·32 bytes.
//
// *** summation order ***
// Exactly that of _float_gemm_impl.ts: per output one accumulator, acc = +0, k ascending,
// acc = madd(a[k], w[k][j], acc), then the epilogue (scale, bias, clamp).

import { madd, storeRow8, swz } from "./_float_common";
import { gemmBlock, KC } from "./_float_gemm_impl";

export const FMT_FP4: i32 = 0;
export const FMT_F32: i32 = 32;

/** Columns decoded per k block in the GEMM (16 panels × KC rows × 32 B = 128 KiB, in L2). */
const NCM: i32 = 128;

/** Rows of codes per 16-byte load. */
// @ts-ignore: decorator
@inline
function rowsPerLoad(fmt: i32): i32 {
  return fmt == FMT_FP4 ? 4 : fmt == FMT_F32 ? 1 : 2;
}

/** Bytes per packed row of 8 codes. */
// @ts-ignore: decorator
@inline
function rowBytes(fmt: i32): i32 {
  return fmt == FMT_FP4 ? 4 : fmt == FMT_F32 ? 32 : 8;
}

/** Panel stride in bytes for K rows. */
export function panelBytes(fmt: i32, k: i32): usize {
  const r = rowsPerLoad(fmt);
  return <usize>((k + r - 1) / r * r) * <usize>rowBytes(fmt);
}

// bf16 bits of the 16 fp4 e2m1 codes (0, .5, 1, 1.5, 2, 3, 4, 6, then negated), low and high bytes.
// @ts-ignore: decorator
@inline
function fp4Lo(): v128 {
  return i8x16(0, 0, -128, -64, 0, 64, -128, -64, 0, 0, -128, -64, 0, 64, -128, -64);
}
// @ts-ignore: decorator
@inline
function fp4Hi(): v128 {
  return i8x16(0, 0x3f, 0x3f, 0x3f, 0x40, 0x40, 0x40, 0x40, -128, -65, -65, -65, -64, -64, -64, -64);
}

// @ts-ignore: decorator
@inline
function lo16ToF32(x: v128): v128 {
  // i16 lanes 0..3 become the upper halves of f32 lanes 0..3 (punpcklwd with zero)
  return i8x16.shuffle(f32x4.splat(0), x, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}
// @ts-ignore: decorator
@inline
function hi16ToF32(x: v128): v128 {
  return i8x16.shuffle(f32x4.splat(0), x, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/** bf16 bits (i16 lanes) of 8 byte-format codes already sign-extended to i16. */
// @ts-ignore: decorator
@inline
function byteToBf16(x: v128, e: i32, mask: v128): v128 {
  return v128.and(i16x8.shl(x, e), mask);
}

/** 2^(127 - bias) for a format with e exponent bits. */
// @ts-ignore: decorator
@inline
function byteMul(e: i32): v128 {
  const bias = (1 << (e - 1)) - 1;
  return f32x4.splat(reinterpret<f32>((254 - bias) << 23));
}

// @ts-ignore: decorator
@inline
function byteMask(e: i32): v128 {
  return i16x8.splat(<i16>(0x8000 | (0x7f << e)));
}

/**
 * Decodes one load group (rowsPerLoad rows × 8 columns) at `cp` into f32 rows of 8 at `dst`
 * (32 bytes per row), multiplying by the block scales (s0, s1) when `scaled`.
 */
// @ts-ignore: decorator
@inline
function decodeGroup<V>(fmt: i32, cp: usize, dst: usize, scaled: bool, s0: v128, s1: v128): void {
  if (fmt == FMT_F32) {
    v128.store(dst, v128.load(cp));
    v128.store(dst, v128.load(cp, 16), 16);
    return;
  }
  const v = v128.load(cp);
  if (fmt == FMT_FP4) {
    const lo = v128.and(v, i8x16.splat(0x0f));
    const hi = v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
    const tl = fp4Lo(), th = fp4Hi();
    // columns 0..3 of rows 0..3 from the low nibbles, columns 4..7 from the high nibbles
    const l0 = swz<V>(tl, lo), h0 = swz<V>(th, lo);
    const l1 = swz<V>(tl, hi), h1 = swz<V>(th, hi);
    const aLo = i8x16.shuffle(l0, h0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const aHi = i8x16.shuffle(l0, h0, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const bLo = i8x16.shuffle(l1, h1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const bHi = i8x16.shuffle(l1, h1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let w00 = lo16ToF32(aLo), w01 = lo16ToF32(bLo);
    let w10 = hi16ToF32(aLo), w11 = hi16ToF32(bLo);
    let w20 = lo16ToF32(aHi), w21 = lo16ToF32(bHi);
    let w30 = hi16ToF32(aHi), w31 = hi16ToF32(bHi);
    if (scaled) {
      w00 = f32x4.mul(w00, s0); w01 = f32x4.mul(w01, s1);
      w10 = f32x4.mul(w10, s0); w11 = f32x4.mul(w11, s1);
      w20 = f32x4.mul(w20, s0); w21 = f32x4.mul(w21, s1);
      w30 = f32x4.mul(w30, s0); w31 = f32x4.mul(w31, s1);
    }
    v128.store(dst, w00); v128.store(dst, w01, 16);
    v128.store(dst, w10, 32); v128.store(dst, w11, 48);
    v128.store(dst, w20, 64); v128.store(dst, w21, 80);
    v128.store(dst, w30, 96); v128.store(dst, w31, 112);
    return;
  }
  const e = fmt;
  const mask = byteMask(e), mul = byteMul(e);
  const r0 = byteToBf16(i16x8.extend_low_i8x16_s(v), e, mask);
  const r1 = byteToBf16(i16x8.extend_high_i8x16_s(v), e, mask);
  let w00 = f32x4.mul(lo16ToF32(r0), mul), w01 = f32x4.mul(hi16ToF32(r0), mul);
  let w10 = f32x4.mul(lo16ToF32(r1), mul), w11 = f32x4.mul(hi16ToF32(r1), mul);
  if (scaled) {
    w00 = f32x4.mul(w00, s0); w01 = f32x4.mul(w01, s1);
    w10 = f32x4.mul(w10, s0); w11 = f32x4.mul(w11, s1);
  }
  v128.store(dst, w00); v128.store(dst, w01, 16);
  v128.store(dst, w10, 32); v128.store(dst, w11, 48);
}

/**
 * Decodes rows [k0, k0 + kl) of one panel (kl a multiple of rowsPerLoad, or reaching Kp) into
 * f32 rows of 8 at `dst`.
 */
function decodePanel<V>(fmt: i32, panel: usize, sp: usize, block: i32, k0: i32, kl: i32, dst: usize): void {
  const rpl = rowsPerLoad(fmt);
  const rb = <usize>rowBytes(fmt);
  let s0 = f32x4.splat(1), s1 = s0;
  for (let kk = 0; kk < kl; kk += rpl) {
    const kr = k0 + kk;
    const scaled = block > 0;
    if (scaled) {
      const q = sp + <usize>(kr / block) * 32;
      s0 = v128.load(q);
      s1 = v128.load(q, 16);
    }
    decodeGroup<V>(fmt, panel + <usize>kr * rb, dst + (<usize>kk << 5), scaled, s0, s1);
  }
}

/**
 * Columns [n0, n1) of C[M×N] = epilogue(A[M×K] · W[K×N]) with W packed (see the header); n0 a
 * multiple of NCM (threads split N). Decoded panels go to slot n0/NCM of `scratch`, each slot
 * gemmMinifloatScratchBytes() bytes, so threads never share one.
 */
export function gemmMinifloat<V>(
  n0: i32, n1: i32, fmt: i32, m: i32, k: i32, a: usize, lda: i32, codes: usize, scales: usize,
  block: i32, c: usize, ldc: i32, scratch: usize,
): void {
  const pb = panelBytes(fmt, k);
  const nb = block > 0 ? (k + block - 1) / block : 0;
  const sb = <usize>nb * 32;
  scratch += <usize>(n0 / NCM) * gemmMinifloatScratchBytes();
  const tmp = scratch + <usize>NCM * KC * 4;
  let k0 = 0;
  do {
    const kl = min(KC, k - k0);
    const first = k0 == 0;
    const last = k0 + kl >= k;
    const rpl = rowsPerLoad(fmt);
    const kld = (kl + rpl - 1) / rpl * rpl;
    for (let j0 = n0; j0 < n1; j0 += NCM) {
      const j1 = min(n1, j0 + NCM);
      for (let j = j0; j < j1; j += 8) {
        const p = j >> 3;
        decodePanel<V>(fmt, codes + <usize>p * pb, scales + <usize>p * sb, block, k0, kld, scratch + <usize>((j - j0) >> 3) * <usize>(KC << 5));
      }
      gemmBlock<V>(0, m, j0, j1, kl, a + (<usize>k0 << 2), lda, scratch, <usize>(KC << 5), c, ldc, first, last, tmp);
    }
    k0 += kl;
  } while (k0 < k);
}

/** Bytes of one scratch slot of gemmMinifloat; a call over N columns needs ceil(N/NCM) slots. */
export function gemmMinifloatScratchBytes(): usize {
  return <usize>NCM * KC * 4 + 128;
}

/**
 * Columns [n0, n1) of y[N] = epilogue(a[K] · W[K×N]) (M = 1), n0 a multiple of 16, streaming the
 * codes two panels (16 columns, four accumulator chains) at a time. `tmp`: 256 bytes of scratch
 * per 16 columns (slot n0/16: group decode for the K tail, column tail).
 */
export function gemvMinifloat<V>(
  n0: i32, n1: i32, fmt: i32, n: i32, k: i32, a: usize, codes: usize, scales: usize, block: i32,
  c: usize, tmp: usize,
): void {
  tmp += <usize>(n0 >> 4) << 8;
  const pb = panelBytes(fmt, k);
  const nb = block > 0 ? (k + block - 1) / block : 0;
  const sb = <usize>nb * 32;
  const rpl = rowsPerLoad(fmt);
  const rb = <usize>rowBytes(fmt);
  const panels = (n1 + 7) >> 3;
  const kMain = k / rpl * rpl;
  const scaled = block > 0;
  const bs = scaled ? block : kMain + rpl; // rows per scale block
  const e = fmt;
  const mask = byteMask(e == FMT_FP4 || e == FMT_F32 ? 4 : e), mul = byteMul(e == FMT_FP4 || e == FMT_F32 ? 4 : e);
  const tl = fp4Lo(), th = fp4Hi();
  const out = tmp + 128;
  for (let p = n0 >> 3; p < panels; p += 2) {
    const q = min(p + 1, panels - 1); // second panel (aliases the first when odd)
    const cp0 = codes + <usize>p * pb, cp1 = codes + <usize>q * pb;
    const sp0 = scales + <usize>p * sb, sp1 = scales + <usize>q * sb;
    let x00 = f32x4.splat(0), x01 = x00, x10 = x00, x11 = x00;
    let s00 = f32x4.splat(1), s01 = s00, s10 = s00, s11 = s00;
    let kk = 0;
    while (kk < kMain) {
      const kEnd = min(kMain, kk + bs);
      if (scaled) {
        const o = <usize>(kk / block) * 32;
        s00 = v128.load(sp0 + o); s01 = v128.load(sp0 + o, 16);
        s10 = v128.load(sp1 + o); s11 = v128.load(sp1 + o, 16);
      }
      if (fmt == FMT_F32) {
        for (; kk < kEnd; kk++) {
          const va = v128.load32_splat(a + (<usize>kk << 2));
          const o = <usize>kk << 5;
          x00 = madd<V>(va, v128.load(cp0 + o), x00);
          x01 = madd<V>(va, v128.load(cp0 + o, 16), x01);
          x10 = madd<V>(va, v128.load(cp1 + o), x10);
          x11 = madd<V>(va, v128.load(cp1 + o, 16), x11);
        }
      } else if (fmt == FMT_FP4) {
        for (; kk < kEnd; kk += 4) {
          const o = <usize>kk << 2;
          const v = v128.load(cp0 + o), u = v128.load(cp1 + o);
          const a0 = v128.load32_splat(a + (<usize>kk << 2));
          const a1 = v128.load32_splat(a + (<usize>kk << 2), 4);
          const a2 = v128.load32_splat(a + (<usize>kk << 2), 8);
          const a3 = v128.load32_splat(a + (<usize>kk << 2), 12);
          // panel p
          let lo = v128.and(v, i8x16.splat(0x0f));
          let hi = v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
          let l0 = swz<V>(tl, lo), h0 = swz<V>(th, lo);
          let l1 = swz<V>(tl, hi), h1 = swz<V>(th, hi);
          let aLo = i8x16.shuffle(l0, h0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          let aHi = i8x16.shuffle(l0, h0, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          let bLo = i8x16.shuffle(l1, h1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          let bHi = i8x16.shuffle(l1, h1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          if (scaled) {
            x00 = madd<V>(a0, f32x4.mul(lo16ToF32(aLo), s00), x00);
            x01 = madd<V>(a0, f32x4.mul(lo16ToF32(bLo), s01), x01);
            x00 = madd<V>(a1, f32x4.mul(hi16ToF32(aLo), s00), x00);
            x01 = madd<V>(a1, f32x4.mul(hi16ToF32(bLo), s01), x01);
            x00 = madd<V>(a2, f32x4.mul(lo16ToF32(aHi), s00), x00);
            x01 = madd<V>(a2, f32x4.mul(lo16ToF32(bHi), s01), x01);
            x00 = madd<V>(a3, f32x4.mul(hi16ToF32(aHi), s00), x00);
            x01 = madd<V>(a3, f32x4.mul(hi16ToF32(bHi), s01), x01);
          } else {
            x00 = madd<V>(a0, lo16ToF32(aLo), x00);
            x01 = madd<V>(a0, lo16ToF32(bLo), x01);
            x00 = madd<V>(a1, hi16ToF32(aLo), x00);
            x01 = madd<V>(a1, hi16ToF32(bLo), x01);
            x00 = madd<V>(a2, lo16ToF32(aHi), x00);
            x01 = madd<V>(a2, lo16ToF32(bHi), x01);
            x00 = madd<V>(a3, hi16ToF32(aHi), x00);
            x01 = madd<V>(a3, hi16ToF32(bHi), x01);
          }
          // panel q
          lo = v128.and(u, i8x16.splat(0x0f));
          hi = v128.and(i16x8.shr_u(u, 4), i8x16.splat(0x0f));
          l0 = swz<V>(tl, lo); h0 = swz<V>(th, lo);
          l1 = swz<V>(tl, hi); h1 = swz<V>(th, hi);
          aLo = i8x16.shuffle(l0, h0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          aHi = i8x16.shuffle(l0, h0, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          bLo = i8x16.shuffle(l1, h1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          bHi = i8x16.shuffle(l1, h1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          if (scaled) {
            x10 = madd<V>(a0, f32x4.mul(lo16ToF32(aLo), s10), x10);
            x11 = madd<V>(a0, f32x4.mul(lo16ToF32(bLo), s11), x11);
            x10 = madd<V>(a1, f32x4.mul(hi16ToF32(aLo), s10), x10);
            x11 = madd<V>(a1, f32x4.mul(hi16ToF32(bLo), s11), x11);
            x10 = madd<V>(a2, f32x4.mul(lo16ToF32(aHi), s10), x10);
            x11 = madd<V>(a2, f32x4.mul(lo16ToF32(bHi), s11), x11);
            x10 = madd<V>(a3, f32x4.mul(hi16ToF32(aHi), s10), x10);
            x11 = madd<V>(a3, f32x4.mul(hi16ToF32(bHi), s11), x11);
          } else {
            x10 = madd<V>(a0, lo16ToF32(aLo), x10);
            x11 = madd<V>(a0, lo16ToF32(bLo), x11);
            x10 = madd<V>(a1, hi16ToF32(aLo), x10);
            x11 = madd<V>(a1, hi16ToF32(bLo), x11);
            x10 = madd<V>(a2, lo16ToF32(aHi), x10);
            x11 = madd<V>(a2, lo16ToF32(bHi), x11);
            x10 = madd<V>(a3, hi16ToF32(aHi), x10);
            x11 = madd<V>(a3, hi16ToF32(bHi), x11);
          }
        }
      } else {
        for (; kk < kEnd; kk += 2) {
          const o = <usize>kk << 3;
          const v = v128.load(cp0 + o), u = v128.load(cp1 + o);
          const a0 = v128.load32_splat(a + (<usize>kk << 2));
          const a1 = v128.load32_splat(a + (<usize>kk << 2), 4);
          const r0 = byteToBf16(i16x8.extend_low_i8x16_s(v), e, mask);
          const r1 = byteToBf16(i16x8.extend_high_i8x16_s(v), e, mask);
          const q0 = byteToBf16(i16x8.extend_low_i8x16_s(u), e, mask);
          const q1 = byteToBf16(i16x8.extend_high_i8x16_s(u), e, mask);
          let w00 = f32x4.mul(lo16ToF32(r0), mul), w01 = f32x4.mul(hi16ToF32(r0), mul);
          let w10 = f32x4.mul(lo16ToF32(r1), mul), w11 = f32x4.mul(hi16ToF32(r1), mul);
          let y00 = f32x4.mul(lo16ToF32(q0), mul), y01 = f32x4.mul(hi16ToF32(q0), mul);
          let y10 = f32x4.mul(lo16ToF32(q1), mul), y11 = f32x4.mul(hi16ToF32(q1), mul);
          if (scaled) {
            w00 = f32x4.mul(w00, s00); w01 = f32x4.mul(w01, s01);
            w10 = f32x4.mul(w10, s00); w11 = f32x4.mul(w11, s01);
            y00 = f32x4.mul(y00, s10); y01 = f32x4.mul(y01, s11);
            y10 = f32x4.mul(y10, s10); y11 = f32x4.mul(y11, s11);
          }
          x00 = madd<V>(a0, w00, x00);
          x01 = madd<V>(a0, w01, x01);
          x10 = madd<V>(a0, y00, x10);
          x11 = madd<V>(a0, y01, x11);
          x00 = madd<V>(a1, w10, x00);
          x01 = madd<V>(a1, w11, x01);
          x10 = madd<V>(a1, y10, x10);
          x11 = madd<V>(a1, y11, x11);
        }
      }
    }
    // K tail (fewer than rpl rows): decode the last group into tmp, use its valid rows.
    if (kk < k) {
      if (scaled) {
        const o = <usize>(kk / block) * 32;
        s00 = v128.load(sp0 + o); s01 = v128.load(sp0 + o, 16);
        s10 = v128.load(sp1 + o); s11 = v128.load(sp1 + o, 16);
      }
      decodeGroup<V>(fmt, cp0 + <usize>kk * rb, tmp, scaled, s00, s01);
      for (let r = 0; kk + r < k; r++) {
        const va = v128.load32_splat(a + (<usize>(kk + r) << 2));
        x00 = madd<V>(va, v128.load(tmp + (<usize>r << 5)), x00);
        x01 = madd<V>(va, v128.load(tmp + (<usize>r << 5), 16), x01);
      }
      decodeGroup<V>(fmt, cp1 + <usize>kk * rb, tmp, scaled, s10, s11);
      for (let r = 0; kk + r < k; r++) {
        const va = v128.load32_splat(a + (<usize>(kk + r) << 2));
        x10 = madd<V>(va, v128.load(tmp + (<usize>r << 5)), x10);
        x11 = madd<V>(va, v128.load(tmp + (<usize>r << 5), 16), x11);
      }
    }
    // store (epilogue by column); the aliased second panel is not stored
    const j = p << 3;
    if (j + 8 <= n) {
      storeRow8(c + (<usize>j << 2), x00, x01, 0, j, true);
    } else {
      storeRow8(out, x00, x01, 0, j, true);
      memory.copy(c + (<usize>j << 2), out, <usize>(n - j) << 2);
    }
    if (q != p) {
      const j2 = q << 3;
      if (j2 + 8 <= n) {
        storeRow8(c + (<usize>j2 << 2), x10, x11, 0, j2, true);
      } else {
        storeRow8(out, x10, x11, 0, j2, true);
        memory.copy(c + (<usize>j2 << 2), out, <usize>(n - j2) << 2);
      }
    }
  }
}
