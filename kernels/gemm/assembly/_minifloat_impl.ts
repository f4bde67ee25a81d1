// Minifloat-weight × f32-activation GEMM and GEMV (fp8 e4m3fn / e5m2, fp6 e3m2 / e2m3, fp4 e2m1,
// with optional f32 block scales along K: MXFP8 / MXFP6 / MXFP4 / NVFP4). Weights are decoded in
// registers; no lookup table in memory. Generic over the multiply-add marker V. Never built alone.
//
// *** formats (argument `fmt`) ***
//   FMT_FP4 = 0   fp4 e2m1: two codes per byte. Decoded by two 16-entry i8x16.swizzle tables that
//                 give the low and high bytes of the bf16 bits of each value (exact), a byte
//                 interleave, then a shift / mask to f32. Value domain: w itself.
//   E = 4, 5      fp8 (e4m3fn, e5m2): one code per byte, sign in bit 7. Decoded as bf16 bits =
//                 (sext(code) << E) & mask in i16 lanes (an arithmetic shift of the odd bytes of a
//                 load; the even bytes are the odd bytes of a second load one byte earlier, whose
//                 extra byte is masked off), widened to f32 bits: the f32 whose bits these are is
//                 w·2^-(127-bias) exactly (fp8 subnormals become f32 subnormals, still exact).
//   FMT_FP6 + E   fp6 (E = 3: e3m2, E = 2: e2m3): four codes in three bytes (see the layout). One
//   (= 8 + E)     swizzle puts each 24-bit word in the top of an i32 lane, then per code a shift
//                 to the top, an arithmetic shift and a mask give the f32 bits of w·2^-(127-bias);
//                 then the exponent is raised by FP6_UP (fp6Top): w·2^-(127-bias-FP6_UP), with
//                 the format's subnormal codes fixed up, so that no decoded weight is an f32
//                 subnormal (x86 takes a microcode assist per subnormal operand: an fp6 e2m3
//                 GEMM of Gaussian weights, a third of them |w| < 1, ran ~300× slower).
//   FMT_F32 = 32  plain f32 panels (for the f32 GEMV).
// *** the scaled value domain of fp8 / fp6 ***
// The kernels never multiply by 2^(127-bias): the TS side (float.ts) scales the activations by
// 2^(127-bias-60) before the call and the epilogue scale by 2^60, so every product a·w and every
// partial sum is computed 2^-60 below its true value: bit-identical to the unscaled computation
// while no product falls below 2^-66 (f32 subnormal in the scaled domain) and no |a| reaches
// 2^68; reference_float.ts's refGemmMinifloat() reproduces the scaled computation exactly.
// Decoded weight w = value(code) (in its domain), or fround(value · blockScale) with a block scale.
// Codes that are NaN / Inf in the format are rejected by the TS packer, so they never reach a kernel.
//
// *** packed layout (written by float.ts) ***
// ceil(N/8) panels of 8 columns. Panel p: for k = 0..Kp-1 one row of 8 codes:
//   fp8: groups of 2 rows in 16 bytes, row r (0, 1) column c at byte 4·(c & 3) + 2·r + (c >> 2);
//   Kp = K rounded up to 2, panel stride Kp·8 bytes;
//   fp6: groups of 2 rows in 12 bytes: four little-endian 24-bit words, word j (bytes 3j..3j+2)
//   = D | C << 6 | B << 12 | A << 18 with A = (row 0, column j), B = (row 1, column j),
//   C = (row 0, column j + 4), D = (row 1, column j + 4); Kp = K rounded up to 2, panel stride
//   Kp·6 (the 16-byte loads read up to 4 bytes past a group: the buffer is padded by 16 bytes);
//   fp4: groups of 4 rows in 16 bytes, row r (0..3) column c at byte 8·(r >> 1) + 2·(c & 3) +
//   (r & 1), low nibble for c < 4, high nibble for c ≥ 4; Kp = K rounded up to 4, panel stride
//   Kp·4; f32: 8 floats per row, Kp = K.
// These orders make every decoded f32 vector one row of four consecutive columns using only
// shifts and masks after the table lookups (no zero-interleave shuffles).
// Padding rows and columns hold code 0 (+0). Block scales (block > 0): ceil(K/block) rows of 8
// floats per panel, panel stride ceil(K/block)·32 bytes.
//
// *** summation order ***
// Exactly that of _float_gemm_impl.ts: per output one accumulator, acc = +0, k ascending,
// acc = madd(a[k], w[k][j], acc), then the epilogue (scale, bias, clamp).

import { madd, storeRow8, swz } from "./_float_common";
import { gemmBlock, KC } from "./_float_gemm_impl";

export const FMT_FP4: i32 = 0;
export const FMT_FP6: i32 = 8;
export const FMT_F32: i32 = 32;

// *** compile-time formats ***
// Each kernel body is instantiated once per format with a marker type F so that the format, its
// exponent width (shift counts) and its constants are compile-time: fmtOf<F>() maps
// u8 → FMT_FP4, i8 → fp8 e4m3, i16 → fp8 e5m2, u16 → fp6 e3m2, i32 → fp6 e2m3, f32 → FMT_F32.

/** The format of marker type F. */
// @ts-ignore: decorator
@inline
function fmtOf<F>(): i32 {
  if (isFloat<F>()) return FMT_F32;
  if (isSigned<F>()) return sizeof<F>() == 1 ? 4 : sizeof<F>() == 2 ? 5 : FMT_FP6 + 2;
  return sizeof<F>() == 1 ? FMT_FP4 : FMT_FP6 + 3;
}

/** Whether `fmt` is a packed fp6 format (FMT_FP6 + exponent bits). */
// @ts-ignore: decorator
@inline
function isFp6(fmt: i32): bool {
  return (fmt & ~7) == FMT_FP6;
}

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
  return fmt == FMT_FP4 ? 4 : fmt == FMT_F32 ? 32 : isFp6(fmt) ? 6 : 8;
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

// bf16 (i16 lanes) to f32 without shuffles: the even i16 lanes 0, 2, 4, 6 shifted into the
// upper halves, and the odd lanes 1, 3, 5, 7 masked in place. The packers order codes so that
// each of these four-lane groups is one row of four columns.
// @ts-ignore: decorator
@inline
function evenToF32(x: v128): v128 {
  return i32x4.shl(x, 16);
}
/** The odd lanes; `hm` is the mask 0xffff0000 (passed in: see the constants note in the GEMV). */
// @ts-ignore: decorator
@inline
function oddToF32m(x: v128, hm: v128): v128 {
  return v128.and(x, hm);
}

/** bf16 bits (i16 lanes 0..7) of the byte-format codes in the odd bytes 1, 3, ..., 15 of v. */
// @ts-ignore: decorator
@inline
function byteOdd(v: v128, e: i32, mask: v128): v128 {
  return v128.and(i16x8.shr_s(v, 8 - e), mask);
}
/**
 * bf16 bits (i16 lanes 0..7) of the byte-format codes in the even bytes 0, 2, ..., 14 at `p`:
 * loaded from p - 1 so that they are odd bytes there (one load instead of a shift: the byte at
 * p - 1 lands in bits the mask clears).
 */
// @ts-ignore: decorator
@inline
function byteEvenAt(p: usize, e: i32, mask: v128): v128 {
  return byteOdd(v128.load(p - 1), e, mask);
}

/** bf16 mask of an fp8 code shifted into place: sign, e exponent bits, 8 - 1 - e mantissa bits. */
// @ts-ignore: decorator
@inline
function byteMask(e: i32, z: i32): v128 {
  return i16x8.splat(<i16>(0x8000 | (0x7f << e) | z));
}

// *** fp6 ***
// After fp6Words() lane j holds word j << 8: A at bits 26..31, B at 20..25, C at 14..19, D at
// 8..13. A code at the top of a lane becomes f32 bits of w·2^-(127-bias) by an arithmetic shift
// right by 8 - e (sign to bit 31 and, replicated, down to the exponent; exponent field bits and
// mantissa in place) and a mask of the sign, e exponent bits and 5 - e mantissa bits.

/** The four 24-bit words of a 12-byte fp6 group, one per i32 lane, shifted left by 8. */
// @ts-ignore: decorator
@inline
function fp6Words<V>(v: v128, idx: v128): v128 {
  return swz<V>(v, idx);
}
/** Shuffle index of fp6Words (byte 0 of each lane is don't-care: index 0); `z` = 0. */
// @ts-ignore: decorator
@inline
function fp6Idx(z: i32): v128 {
  return v128.or(i8x16(0, 0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 9, 10, 11), i8x16.splat(<i8>z));
}
/** The mask of fp6Top for e exponent bits; `z` = 0. */
// @ts-ignore: decorator
@inline
function fp6Mask(e: i32, z: i32): v128 {
  return i32x4.splat(0x80000000 | (31 << (18 + e)) | z);
}
/** What fp6Top adds to the exponent (minifloatWeightShift in reference_float.ts matches). */
const FP6_UP: i32 = 64;

/**
 * The f32 value w·2^-(127-bias-FP6_UP) of the code at bits 26..31 (after `shl`). The shifted
 * bits p are those of w·2^-(127-bias), an f32 subnormal for the format's subnormal codes
 * (exponent field 0). Normal codes: p + FP6_UP·2^23. Subnormal codes 0.m: q = p + (FP6_UP +
 * 1)·2^23 is ±1.m·2^t, and q − (±2^t) = ±0.m·2^t exactly (t = FP6_UP − 126); code 0 gives +0.
 */
// @ts-ignore: decorator
@inline
function fp6Top(x: v128, e: i32, mask: v128): v128 {
  const p = v128.and(i32x4.shr_s(x, 8 - e), mask);
  const sub = i32x4.eq(v128.and(p, i32x4.splat(0x7f800000)), i32x4.splat(0));
  const up = v128.bitselect(i32x4.splat((FP6_UP + 1) << 23), i32x4.splat(FP6_UP << 23), sub);
  const q = i32x4.add(p, up);
  return f32x4.sub(q, v128.and(q, v128.and(sub, i32x4.splat(<i32>0xff800000))));
}

/**
 * Decodes one load group (rowsPerLoad rows × 8 columns) at `cp` into f32 rows of 8 at `dst`
 * (32 bytes per row), multiplying by the block scales (s0, s1) when `scaled`.
 */
// @ts-ignore: decorator
@inline
function decodeGroup<V>(
  fmt: i32, cp: usize, dst: usize, scaled: bool, s0: v128, s1: v128,
  tl: v128, th: v128, nib: v128, hm: v128, m8: v128, m6: v128, i6: v128,
): void {
  if (fmt == FMT_F32) {
    v128.store(dst, v128.load(cp));
    v128.store(dst, v128.load(cp, 16), 16);
    return;
  }
  const v = v128.load(cp);
  if (fmt == FMT_FP4) {
    const lo = v128.and(v, nib);
    const hi = v128.and(i16x8.shr_u(v, 4), nib);
    // columns 0..3 of rows 0..3 from the low nibbles, columns 4..7 from the high nibbles
    const l0 = swz<V>(tl, lo), h0 = swz<V>(th, lo);
    const l1 = swz<V>(tl, hi), h1 = swz<V>(th, hi);
    const aLo = i8x16.shuffle(l0, h0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const aHi = i8x16.shuffle(l0, h0, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const bLo = i8x16.shuffle(l1, h1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const bHi = i8x16.shuffle(l1, h1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let w00 = evenToF32(aLo), w01 = evenToF32(bLo);
    let w10 = oddToF32m(aLo, hm), w11 = oddToF32m(bLo, hm);
    let w20 = evenToF32(aHi), w21 = evenToF32(bHi);
    let w30 = oddToF32m(aHi, hm), w31 = oddToF32m(bHi, hm);
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
  let w00: v128, w01: v128, w10: v128, w11: v128;
  if (isFp6(fmt)) {
    const e = fmt - FMT_FP6;
    const x = fp6Words<V>(v, i6);
    w00 = fp6Top(x, e, m6);
    w10 = fp6Top(i32x4.shl(x, 6), e, m6);
    w01 = fp6Top(i32x4.shl(x, 12), e, m6);
    w11 = fp6Top(i32x4.shl(x, 18), e, m6);
  } else {
    const e = fmt;
    const xe = byteEvenAt(cp, e, m8);
    const xo = byteOdd(v, e, m8);
    w00 = evenToF32(xe); w01 = evenToF32(xo);
    w10 = oddToF32m(xe, hm); w11 = oddToF32m(xo, hm);
  }
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
function decodePanel<V, F>(panel: usize, sp: usize, block: i32, k0: i32, kl: i32, dst: usize): void {
  if (block > 0) decodeRows<V>(fmtOf<F>(), true, panel, sp, block, k0, kl, dst);
  else decodeRows<V>(fmtOf<F>(), false, panel, sp, block, k0, kl, dst);
}

// @ts-ignore: decorator
@inline
function decodeRows<V>(
  fmt: i32, scaled: bool, panel: usize, sp: usize, block: i32, k0: i32, kl: i32, dst: usize,
): void {
  const rpl = rowsPerLoad(fmt);
  const rb = <usize>rowBytes(fmt);
  let s0 = f32x4.splat(1), s1 = s0;
  const z = <i32>(dst >>> 31); // 0 at run time: keeps the constants out of the loop (see gemv)
  const tl = v128.or(fp4Lo(), i8x16.splat(<i8>z)), th = v128.or(fp4Hi(), i8x16.splat(<i8>z));
  const nib = i8x16.splat(<i8>(0x0f | z));
  const hm = i32x4.splat(0xffff0000 | z);
  const e = fmt & 7;
  const m8 = byteMask(e, z), m6 = fp6Mask(e, z), i6 = fp6Idx(z);
  for (let kk = 0; kk < kl; kk += rpl) {
    const kr = k0 + kk;
    if (scaled) {
      const q = sp + <usize>(kr / block) * 32;
      s0 = v128.load(q);
      s1 = v128.load(q, 16);
    }
    decodeGroup<V>(fmt, panel + <usize>kr * rb, dst + (<usize>kk << 5), scaled, s0, s1, tl, th, nib, hm, m8, m6, i6);
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
  if (fmt == FMT_FP4) gemmF<V, u8>(n0, n1, m, k, a, lda, codes, scales, block, c, ldc, scratch);
  else if (fmt == 4) gemmF<V, i8>(n0, n1, m, k, a, lda, codes, scales, block, c, ldc, scratch);
  else if (fmt == 5) gemmF<V, i16>(n0, n1, m, k, a, lda, codes, scales, block, c, ldc, scratch);
  else if (fmt == FMT_FP6 + 3) gemmF<V, u16>(n0, n1, m, k, a, lda, codes, scales, block, c, ldc, scratch);
  else if (fmt == FMT_FP6 + 2) gemmF<V, i32>(n0, n1, m, k, a, lda, codes, scales, block, c, ldc, scratch);
}

function gemmF<V, F>(
  n0: i32, n1: i32, m: i32, k: i32, a: usize, lda: i32, codes: usize, scales: usize,
  block: i32, c: usize, ldc: i32, scratch: usize,
): void {
  const fmt = fmtOf<F>();
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
        decodePanel<V, F>(codes + <usize>p * pb, scales + <usize>p * sb, block, k0, kld, scratch + <usize>((j - j0) >> 3) * <usize>(KC << 5));
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

// *** GEMV ***

/** One fp4 accumulator (4 columns) over a 4-row group; `q` holds the group's nibbles (lo or hi). */
// @ts-ignore: decorator
@inline
function fp4Acc<V>(
  q: v128, tl: v128, th: v128, hm: v128,
  a0: v128, a1: v128, a2: v128, a3: v128, acc: v128, scaled: bool, s: v128,
): v128 {
  const l = swz<V>(tl, q), h = swz<V>(th, q);
  const xa = i8x16.shuffle(l, h, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const xb = i8x16.shuffle(l, h, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  let w0 = evenToF32(xa), w1 = oddToF32m(xa, hm), w2 = evenToF32(xb), w3 = oddToF32m(xb, hm);
  if (scaled) {
    w0 = f32x4.mul(w0, s); w1 = f32x4.mul(w1, s); w2 = f32x4.mul(w2, s); w3 = f32x4.mul(w3, s);
  }
  acc = madd<V>(a0, w0, acc);
  acc = madd<V>(a1, w1, acc);
  acc = madd<V>(a2, w2, acc);
  return madd<V>(a3, w3, acc);
}

/** One fp8 accumulator (4 columns) over a 2-row group; `x` holds its bf16 lanes. */
// @ts-ignore: decorator
@inline
function byteAcc<V>(x: v128, hm: v128, a0: v128, a1: v128, acc: v128, scaled: bool, s: v128): v128 {
  let w0 = evenToF32(x), w1 = oddToF32m(x, hm);
  if (scaled) {
    w0 = f32x4.mul(w0, s); w1 = f32x4.mul(w1, s);
  }
  acc = madd<V>(a0, w0, acc);
  return madd<V>(a1, w1, acc);
}

/** One fp6 accumulator (4 columns) over a 2-row group: f32 bits w0 (row 0), w1 (row 1). */
// @ts-ignore: decorator
@inline
function fp6Acc<V>(w0: v128, w1: v128, a0: v128, a1: v128, acc: v128, scaled: bool, s: v128): v128 {
  if (scaled) {
    w0 = f32x4.mul(w0, s); w1 = f32x4.mul(w1, s);
  }
  acc = madd<V>(a0, w0, acc);
  return madd<V>(a1, w1, acc);
}

/**
 * The K tail of one panel (rows kk..k-1, fewer than one load group): decodes the group into
 * `tmp` and accumulates its valid rows into the two accumulators stored at `acc`.
 */
function gemvTail<V>(
  fmt: i32, cp: usize, sp: usize, block: i32, kk: i32, k: i32, a: usize, tmp: usize, acc: usize,
  tl: v128, th: v128, nib: v128, hm: v128,
): void {
  const scaled = block > 0;
  let s0 = f32x4.splat(1), s1 = s0;
  if (scaled) {
    const o = <usize>(kk / block) * 32;
    s0 = v128.load(sp + o);
    s1 = v128.load(sp + o, 16);
  }
  const z = <i32>(tmp >>> 31), e = fmt & 7;
  decodeGroup<V>(fmt, cp + <usize>kk * <usize>rowBytes(fmt), tmp, scaled, s0, s1, tl, th, nib, hm,
    byteMask(e, z), fp6Mask(e, z), fp6Idx(z));
  let x0 = v128.load(acc), x1 = v128.load(acc, 16);
  for (let r = 0; kk + r < k; r++) {
    const va = v128.load32_splat(a + (<usize>(kk + r) << 2));
    x0 = madd<V>(va, v128.load(tmp + (<usize>r << 5)), x0);
    x1 = madd<V>(va, v128.load(tmp + (<usize>r << 5), 16), x1);
  }
  v128.store(acc, x0);
  v128.store(acc, x1, 16);
}

/** Epilogue and store of one panel's 8 columns at j (partial when j + 8 > n). */
// @ts-ignore: decorator
@inline
function storePanel(c: usize, out: usize, x0: v128, x1: v128, j: i32, n: i32): void {
  if (j + 8 <= n) {
    storeRow8(c + (<usize>j << 2), x0, x1, 0, j, true);
  } else {
    storeRow8(out, x0, x1, 0, j, true);
    memory.copy(c + (<usize>j << 2), out, <usize>(n - j) << 2);
  }
}

/**
 * Columns [n0, n1) of y[N] = epilogue(a[K] · W[K×N]) (M = 1), n0 a multiple of 16, streaming the
 * codes four panels (32 columns, eight independent accumulator chains: the FMA latency is hidden)
 * at a time; past the last panel the extra panels alias it and are not stored. `tmp`: 256 bytes
 * of scratch per 16 columns (slot n0/16: K-tail decode, accumulators, column tail).
 */
export function gemvMinifloat<V>(
  n0: i32, n1: i32, fmt: i32, n: i32, k: i32, a: usize, codes: usize, scales: usize, block: i32,
  c: usize, tmp: usize,
): void {
  if (fmt == FMT_F32) gemvF<V, f32>(n0, n1, n, k, a, codes, scales, block, c, tmp);
  else if (fmt == FMT_FP4) gemvF<V, u8>(n0, n1, n, k, a, codes, scales, block, c, tmp);
  else if (fmt == 4) gemvF<V, i8>(n0, n1, n, k, a, codes, scales, block, c, tmp);
  else if (fmt == 5) gemvF<V, i16>(n0, n1, n, k, a, codes, scales, block, c, tmp);
  else if (fmt == FMT_FP6 + 3) gemvF<V, u16>(n0, n1, n, k, a, codes, scales, block, c, tmp);
  else if (fmt == FMT_FP6 + 2) gemvF<V, i32>(n0, n1, n, k, a, codes, scales, block, c, tmp);
}

function gemvF<V, F>(
  n0: i32, n1: i32, n: i32, k: i32, a: usize, codes: usize, scales: usize, block: i32,
  c: usize, tmp: usize,
): void {
  if (block > 0) gemvBody<V>(fmtOf<F>(), true, n0, n1, n, k, a, codes, scales, block, c, tmp);
  else gemvBody<V>(fmtOf<F>(), false, n0, n1, n, k, a, codes, scales, block, c, tmp);
}

// @ts-ignore: decorator
@inline
function gemvBody<V>(
  fmt: i32, scaled: bool, n0: i32, n1: i32, n: i32, k: i32, a: usize, codes: usize,
  scales: usize, block: i32, c: usize, tmp: usize,
): void {
  tmp += <usize>(n0 >> 4) << 8;
  const pb = panelBytes(fmt, k);
  const nb = block > 0 ? (k + block - 1) / block : 0;
  const sb = <usize>nb * 32;
  const rpl = rowsPerLoad(fmt);
  const panels = (n1 + 7) >> 3;
  const kMain = k / rpl * rpl;
  const bs = scaled ? block : kMain + rpl; // rows per scale block
  const e = fmt == FMT_FP4 || fmt == FMT_F32 ? 4 : fmt & 7;
  // Constants made opaque to binaryen (z is 0 at run time: memory stays below 2 GiB) so that
  // they are materialised once, outside the loops, instead of at every use.
  const z = <i32>(tmp >>> 31);
  const mask = byteMask(e, z);
  const tl = v128.or(fp4Lo(), i8x16.splat(<i8>z)), th = v128.or(fp4Hi(), i8x16.splat(<i8>z));
  const nib = i8x16.splat(<i8>(0x0f | z));
  const hm = i32x4.splat(0xffff0000 | z);
  const m6 = fp6Mask(e, z), i6 = fp6Idx(z);
  const accBuf = tmp + 128, out = tmp + 160;
  for (let p = n0 >> 3; p < panels; p += 4) {
    const p1 = min(p + 1, panels - 1), p2 = min(p + 2, panels - 1), p3 = min(p + 3, panels - 1);
    const c0 = codes + <usize>p * pb, c1 = codes + <usize>p1 * pb;
    const c2 = codes + <usize>p2 * pb, c3 = codes + <usize>p3 * pb;
    const q0 = scales + <usize>p * sb, q1 = scales + <usize>p1 * sb;
    const q2 = scales + <usize>p2 * sb, q3 = scales + <usize>p3 * sb;
    let x00 = f32x4.splat(0), x01 = x00, x10 = x00, x11 = x00;
    let x20 = x00, x21 = x00, x30 = x00, x31 = x00;
    let s00 = f32x4.splat(1), s01 = s00, s10 = s00, s11 = s00;
    let s20 = s00, s21 = s00, s30 = s00, s31 = s00;
    let kk = 0;
    while (kk < kMain) {
      const kEnd = min(kMain, kk + bs);
      if (scaled) {
        const o = <usize>(kk / block) * 32;
        s00 = v128.load(q0 + o); s01 = v128.load(q0 + o, 16);
        s10 = v128.load(q1 + o); s11 = v128.load(q1 + o, 16);
        s20 = v128.load(q2 + o); s21 = v128.load(q2 + o, 16);
        s30 = v128.load(q3 + o); s31 = v128.load(q3 + o, 16);
      }
      if (fmt == FMT_F32) {
        for (; kk < kEnd; kk++) {
          const va = v128.load32_splat(a + (<usize>kk << 2));
          const o = <usize>kk << 5;
          x00 = madd<V>(va, v128.load(c0 + o), x00);
          x01 = madd<V>(va, v128.load(c0 + o, 16), x01);
          x10 = madd<V>(va, v128.load(c1 + o), x10);
          x11 = madd<V>(va, v128.load(c1 + o, 16), x11);
          x20 = madd<V>(va, v128.load(c2 + o), x20);
          x21 = madd<V>(va, v128.load(c2 + o, 16), x21);
          x30 = madd<V>(va, v128.load(c3 + o), x30);
          x31 = madd<V>(va, v128.load(c3 + o, 16), x31);
        }
      } else if (fmt == FMT_FP4) {
        for (; kk < kEnd; kk += 4) {
          const o = <usize>kk << 2;
          const ap = a + (<usize>kk << 2);
          const a0 = v128.load32_splat(ap), a1 = v128.load32_splat(ap, 4);
          const a2 = v128.load32_splat(ap, 8), a3 = v128.load32_splat(ap, 12);
          let v = v128.load(c0 + o);
          x00 = fp4Acc<V>(v128.and(v, nib), tl, th, hm, a0, a1, a2, a3, x00, scaled, s00);
          x01 = fp4Acc<V>(v128.and(i16x8.shr_u(v, 4), nib), tl, th, hm, a0, a1, a2, a3, x01, scaled, s01);
          v = v128.load(c1 + o);
          x10 = fp4Acc<V>(v128.and(v, nib), tl, th, hm, a0, a1, a2, a3, x10, scaled, s10);
          x11 = fp4Acc<V>(v128.and(i16x8.shr_u(v, 4), nib), tl, th, hm, a0, a1, a2, a3, x11, scaled, s11);
          v = v128.load(c2 + o);
          x20 = fp4Acc<V>(v128.and(v, nib), tl, th, hm, a0, a1, a2, a3, x20, scaled, s20);
          x21 = fp4Acc<V>(v128.and(i16x8.shr_u(v, 4), nib), tl, th, hm, a0, a1, a2, a3, x21, scaled, s21);
          v = v128.load(c3 + o);
          x30 = fp4Acc<V>(v128.and(v, nib), tl, th, hm, a0, a1, a2, a3, x30, scaled, s30);
          x31 = fp4Acc<V>(v128.and(i16x8.shr_u(v, 4), nib), tl, th, hm, a0, a1, a2, a3, x31, scaled, s31);
        }
      } else if (isFp6(fmt)) {
        for (; kk < kEnd; kk += 2) {
          const o = <usize>kk * 6;
          const ap = a + (<usize>kk << 2);
          const a0 = v128.load32_splat(ap), a1 = v128.load32_splat(ap, 4);
          let x = fp6Words<V>(v128.load(c0 + o), i6);
          x00 = fp6Acc<V>(fp6Top(x, e, m6), fp6Top(i32x4.shl(x, 6), e, m6), a0, a1, x00, scaled, s00);
          x01 = fp6Acc<V>(fp6Top(i32x4.shl(x, 12), e, m6), fp6Top(i32x4.shl(x, 18), e, m6), a0, a1, x01, scaled, s01);
          x = fp6Words<V>(v128.load(c1 + o), i6);
          x10 = fp6Acc<V>(fp6Top(x, e, m6), fp6Top(i32x4.shl(x, 6), e, m6), a0, a1, x10, scaled, s10);
          x11 = fp6Acc<V>(fp6Top(i32x4.shl(x, 12), e, m6), fp6Top(i32x4.shl(x, 18), e, m6), a0, a1, x11, scaled, s11);
          x = fp6Words<V>(v128.load(c2 + o), i6);
          x20 = fp6Acc<V>(fp6Top(x, e, m6), fp6Top(i32x4.shl(x, 6), e, m6), a0, a1, x20, scaled, s20);
          x21 = fp6Acc<V>(fp6Top(i32x4.shl(x, 12), e, m6), fp6Top(i32x4.shl(x, 18), e, m6), a0, a1, x21, scaled, s21);
          x = fp6Words<V>(v128.load(c3 + o), i6);
          x30 = fp6Acc<V>(fp6Top(x, e, m6), fp6Top(i32x4.shl(x, 6), e, m6), a0, a1, x30, scaled, s30);
          x31 = fp6Acc<V>(fp6Top(i32x4.shl(x, 12), e, m6), fp6Top(i32x4.shl(x, 18), e, m6), a0, a1, x31, scaled, s31);
        }
      } else {
        for (; kk < kEnd; kk += 2) {
          const o = <usize>kk << 3;
          const ap = a + (<usize>kk << 2);
          const a0 = v128.load32_splat(ap), a1 = v128.load32_splat(ap, 4);
          let v = v128.load(c0 + o);
          x00 = byteAcc<V>(byteEvenAt(c0 + o, e, mask), hm, a0, a1, x00, scaled, s00);
          x01 = byteAcc<V>(byteOdd(v, e, mask), hm, a0, a1, x01, scaled, s01);
          v = v128.load(c1 + o);
          x10 = byteAcc<V>(byteEvenAt(c1 + o, e, mask), hm, a0, a1, x10, scaled, s10);
          x11 = byteAcc<V>(byteOdd(v, e, mask), hm, a0, a1, x11, scaled, s11);
          v = v128.load(c2 + o);
          x20 = byteAcc<V>(byteEvenAt(c2 + o, e, mask), hm, a0, a1, x20, scaled, s20);
          x21 = byteAcc<V>(byteOdd(v, e, mask), hm, a0, a1, x21, scaled, s21);
          v = v128.load(c3 + o);
          x30 = byteAcc<V>(byteEvenAt(c3 + o, e, mask), hm, a0, a1, x30, scaled, s30);
          x31 = byteAcc<V>(byteOdd(v, e, mask), hm, a0, a1, x31, scaled, s31);
        }
      }
    }
    if (kk < k) {
      // K tail (fewer than one load group of rows), panel by panel through memory
      v128.store(accBuf, x00); v128.store(accBuf, x01, 16);
      gemvTail<V>(fmt, c0, q0, block, kk, k, a, tmp, accBuf, tl, th, nib, hm);
      x00 = v128.load(accBuf); x01 = v128.load(accBuf, 16);
      v128.store(accBuf, x10); v128.store(accBuf, x11, 16);
      gemvTail<V>(fmt, c1, q1, block, kk, k, a, tmp, accBuf, tl, th, nib, hm);
      x10 = v128.load(accBuf); x11 = v128.load(accBuf, 16);
      v128.store(accBuf, x20); v128.store(accBuf, x21, 16);
      gemvTail<V>(fmt, c2, q2, block, kk, k, a, tmp, accBuf, tl, th, nib, hm);
      x20 = v128.load(accBuf); x21 = v128.load(accBuf, 16);
      v128.store(accBuf, x30); v128.store(accBuf, x31, 16);
      gemvTail<V>(fmt, c3, q3, block, kk, k, a, tmp, accBuf, tl, th, nib, hm);
      x30 = v128.load(accBuf); x31 = v128.load(accBuf, 16);
    }
    // epilogue by column; aliased panels (past the last one) are not stored
    storePanel(c, out, x00, x01, p << 3, n);
    if (p1 != p) storePanel(c, out, x10, x11, p1 << 3, n);
    if (p2 != p1) storePanel(c, out, x20, x21, p2 << 3, n);
    if (p3 != p2) storePanel(c, out, x30, x31, p3 << 3, n);
  }
}

/**
 * x[i] = x[i] · s for i < len (exact when s is a power of two and no result under/overflows):
 * the activation scaling into the fp8 / fp6 value domain (see the header). `x` 4-byte aligned.
 */
export function scaleF32(x: usize, len: i32, s: f32): void {
  const vs = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, f32x4.mul(v128.load(p), vs));
  }
  for (; i < len; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, load<f32>(p) * s);
  }
}
