// Integer GEMM with relaxed SIMD (`i32x4.relaxed_dot_i8x16_i7x16_add_s`), bit-exact on every
// engine. Only loaded when `WebAssembly.validate` accepts relaxed SIMD (kernels/gemm/int.ts);
// the plain module (int_gemm.ts) is the fallback.
//
// *** Why it is exact ***
// The relaxed dot is only defined for a second operand in 0..127. We split each weight into a
// 7-bit plane and a sign plane: w = lo − 128·neg, lo = w & 127 ∈ 0..127, neg = (w < 0) ∈ {0, 1},
// so a·w = dot(a, lo) − 128·dot(a, neg), both second operands in 0..127. Activations are the
// first operand (full i8). u8 activations are flipped to s8 (a ^ 0x80 = a − 128) and 128·colsum
// is added back.
//
// Packed B layout c16n2 planes (packB* in int.ts): block jb, k-block kb (16 k): 64 bytes
// [lo col 2jb][lo col 2jb+1][neg col 2jb][neg col 2jb+1], 16 bytes each; stride 4·Kp bytes,
// Kp = roundup(K, 16). A is zero-padded to Kp as for the plain kernels.

import { reduce2, reduce4 } from "./_int_common";
import { storeRow4, storeTile } from "./_int_epilogue";

// @ts-ignore: decorator
@inline function loadA16<T>(p: usize): v128 {
  if (isSigned<T>()) return v128.load(p);
  return v128.xor(v128.load(p), i8x16.splat(-128));
}

// @ts-ignore: decorator
@inline function combine(lo: v128, neg: v128): v128 {
  return i32x4.sub(lo, i32x4.shl(neg, 7));
}

// @ts-ignore: decorator
@inline function ukernel2x2c16<T, O>(
  a: usize, lda: usize, b: usize, kp: i32, c: usize, ldc: usize, ncols: i32, ep: usize, i: i32,
  j: i32,
): void {
  const a1 = a + lda;
  let l00 = i32x4.splat(0), l01 = i32x4.splat(0), l10 = i32x4.splat(0), l11 = i32x4.splat(0);
  let n00 = i32x4.splat(0), n01 = i32x4.splat(0), n10 = i32x4.splat(0), n11 = i32x4.splat(0);
  for (let k: usize = 0; k < <usize>kp; k += 16) {
    const va0 = loadA16<T>(a + k);
    const va1 = loadA16<T>(a1 + k);
    const lo0 = v128.load(b);
    const lo1 = v128.load(b, 16);
    const ng0 = v128.load(b, 32);
    const ng1 = v128.load(b, 48);
    l00 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va0, lo0, l00);
    l01 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va0, lo1, l01);
    l10 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va1, lo0, l10);
    l11 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va1, lo1, l11);
    n00 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va0, ng0, n00);
    n01 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va0, ng1, n01);
    n10 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va1, ng0, n10);
    n11 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va1, ng1, n11);
    b += 64;
  }
  const r = combine(reduce4(l00, l01, l10, l11), reduce4(n00, n01, n10, n11));
  storeTile<O>(ep, r, r, c, ldc, ncols, i, j, 2);
}

// @ts-ignore: decorator
@inline function ukernel1x2c16<T, O>(
  a: usize, b: usize, kp: i32, c: usize, ncols: i32, ep: usize, i: i32, j: i32,
): void {
  let l0 = i32x4.splat(0), l1 = i32x4.splat(0), n0 = i32x4.splat(0), n1 = i32x4.splat(0);
  for (let k: usize = 0; k < <usize>kp; k += 16) {
    const va = loadA16<T>(a + k);
    l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va, v128.load(b), l0);
    l1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va, v128.load(b, 16), l1);
    n0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va, v128.load(b, 32), n0);
    n1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(va, v128.load(b, 48), n1);
    b += 64;
  }
  storeRow4<O>(ep, combine(reduce2(l0, l1), reduce2(n0, n1)), c, ncols, i, j);
}

// @ts-ignore: decorator
@inline function gemmRelaxed<T, O>(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32,
  colsum: usize, ep: usize,
): void {
  const nb = (n + 1) >> 1;
  const bstride = <usize>(kp << 2);
  const panel = max(1, (128 * 1024) / (kp << 2));
  const m2 = m0 + ((m1 - m0) & ~1);
  for (let jb0 = 0; jb0 < nb; jb0 += panel) {
    const jb1 = min(nb, jb0 + panel);
    for (let i = m0; i < m2; i += 2) {
      const ai = a + <usize>i * <usize>lda;
      const ci = c + <usize>i * <usize>ldc * sizeof<O>();
      for (let jb = jb0; jb < jb1; jb++) {
        ukernel2x2c16<T, O>(ai, <usize>lda, b + <usize>jb * bstride, kp,
          ci + <usize>(2 * jb) * sizeof<O>(), ldc, min(2, n - 2 * jb), ep, i, 2 * jb);
      }
    }
  }
  for (let i = m2; i < m1; i++) {
    const ai = a + <usize>i * <usize>lda;
    const ci = c + <usize>i * <usize>ldc * sizeof<O>();
    for (let jb = 0; jb < nb; jb++) {
      ukernel1x2c16<T, O>(ai, b + <usize>jb * bstride, kp, ci + <usize>(2 * jb) * sizeof<O>(),
        min(2, n - 2 * jb), ep, i, 2 * jb);
    }
  }
  // (With a fused epilogue the loader folds this term into the column terms.)
  if (!isSigned<T>() && isInteger<O>() && sizeof<O>() == 4) {
    // a = (a ^ 0x80) + 128, so Σ a·w = Σ (a ^ 0x80)·w + 128·colsum.
    for (let i = m0; i < m1; i++) {
      const ci = c + ((<usize>i * <usize>ldc) << 2);
      for (let j = 0; j < n; j++) {
        const p = ci + (<usize>j << 2);
        store<i32>(p, load<i32>(p) + (load<i32>(colsum + (<usize>j << 2)) << 7));
      }
    }
  }
}

/** C[m0..m1) = A·B, A s8 (M×Kp, zero-padded), B packed c16n2 planes, C s32. Tile 2×2c16. */
export function gemm_s8s8_s32_2x2c16__wasmrelaxedsimd_sdot2planes(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32,
): void {
  gemmRelaxed<i8, i32>(m0, m1, n, kp, a, lda, b, c, ldc, 0, 0);
}

/** As above with A u8; `colsum` (i32[N], Σ_k B[k][j]) restores the 0x80 flip. */
export function gemm_u8s8_s32_2x2c16__wasmrelaxedsimd_sdot2planes(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32,
  colsum: usize,
): void {
  gemmRelaxed<u8, i32>(m0, m1, n, kp, a, lda, b, c, ldc, colsum, 0);
}

/** c[n0..n1) = a·B, a s8, B packed c16n2 planes, c s32 (n0 even). Tile 1×2c16. */
export function gemv_s8s8_s32_1x2c16__wasmrelaxedsimd_sdot2planes(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize,
): void {
  const bstride = <usize>(kp << 2);
  const nb = (n1 + 1) >> 1;
  for (let jb = n0 >> 1; jb < nb; jb++) {
    ukernel1x2c16<i8, i32>(a, b + <usize>jb * bstride, kp, c + (<usize>jb << 3),
      min(2, n1 - 2 * jb), 0, 0, 2 * jb);
  }
}

// *** fused epilogues (assembly/_int_epilogue.ts), as in int_gemm.ts ***
// A u8 activation's 0x80 flip (+128·colsum) is folded into the epilogue's column terms by the
// loader, so these kernels take no colsum.

/** s8×s8 → int8/uint8, dyadic requantization fused in the tile store. Tile 2×2c16. */
export function gemm_s8s8_s8_requant_2x2c16__wasmrelaxedsimd_sdot2planes(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmRelaxed<i8, i8>(m0, m1, n, kp, a, lda, b, c, ldc, 0, ep);
}

/** u8×s8 → int8/uint8 (column terms include +128·colsum), requantization fused. */
export function gemm_u8s8_s8_requant_2x2c16__wasmrelaxedsimd_sdot2planes(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmRelaxed<u8, i8>(m0, m1, n, kp, a, lda, b, c, ldc, 0, ep);
}

/** s8×s8 → f32 with per-column scale, bias and clamp fused. Tile 2×2c16. */
export function gemm_s8s8_f32_scale_2x2c16__wasmrelaxedsimd_sdot2planes(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmRelaxed<i8, f32>(m0, m1, n, kp, a, lda, b, c, ldc, 0, ep);
}

/** u8×s8 → f32, scale, bias and clamp fused. */
export function gemm_u8s8_f32_scale_2x2c16__wasmrelaxedsimd_sdot2planes(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmRelaxed<u8, f32>(m0, m1, n, kp, a, lda, b, c, ldc, 0, ep);
}
