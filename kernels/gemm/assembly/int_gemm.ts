// Integer GEMM / GEMV kernels, plain WASM SIMD (no relaxed instructions): every engine with SIMD
// runs these. Built by tools/build_kernels.ts; loaded by kernels/gemm/int.ts.
//
// *** Conventions ***
// All pointers are byte offsets into the (imported) memory; `ld*` strides are in elements.
// A (activations) is M×Kp, row stride lda ≥ Kp, ZERO-PADDED from K to Kp (the loader guarantees
// it): the kernels read whole 8- or 16-byte blocks and rely on the padding contributing 0.
// C is int32 (or f32), row-major, stride ldc. Rows [m0, m1) are computed, so a thread pool can
// split M. Integer sums wrap modulo 2^32 exactly as the references do.
//
// Packed B layouts (written by packB* in kernels/gemm/int.ts; NR = 2 columns per block):
// - c8n2 (s8):  block jb, k-block kb (8 k): 16 bytes [col 2jb: k0..7][col 2jb+1: k0..7];
//               column-block stride 2·Kp bytes, Kp = roundup(K, 8).
// - c16n2 nibble (s4): block jb, k-block kb (16 k): 16 bytes [col 2jb: 8 B][col 2jb+1: 8 B];
//               byte t holds (w[k=t] + 8) | (w[k=t+8] + 8) << 4; stride Kp bytes, Kp = roundup(K, 16).
//
// NOTE the i16 path: v128.load8x8_s/u + i32x4.dot_i16x8_s (pmovsxbw + pmaddwd on x64). The
// extend_low/high form of the same thing ran at half speed in V8.

import { reduce2, reduce4 } from "./_int_common";
import { storeRow4, storeTile } from "./_int_epilogue";

// *** s8×s8 and u8×s8 → s32, c8n2 packing ***

// @ts-ignore: decorator
@inline function loadA<T>(p: usize): v128 {
  if (isSigned<T>()) return v128.load8x8_s(p);
  return v128.load8x8_u(p);
}

// @ts-ignore: decorator
@inline function ukernel4x2c8<T, O>(
  a: usize, lda: usize, b: usize, kp: i32, c: usize, ldc: usize, ncols: i32, ep: usize, i: i32,
  j: i32,
): void {
  const a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda;
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0);
  let c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  let c20 = i32x4.splat(0), c21 = i32x4.splat(0);
  let c30 = i32x4.splat(0), c31 = i32x4.splat(0);
  // Two 8-k blocks per iteration: the pair of dots is summed before the accumulator add.
  // (kp is a multiple of 16: the loader pads K to 16.)
  for (let k: usize = 0; k < <usize>kp; k += 16) {
    const b0l = v128.load8x8_s(b), b1l = v128.load8x8_s(b, 8);
    const b0h = v128.load8x8_s(b, 16), b1h = v128.load8x8_s(b, 24);
    let lo = loadA<T>(a + k), hi = loadA<T>(a + k + 8);
    c00 = i32x4.add(c00, i32x4.add(i32x4.dot_i16x8_s(lo, b0l), i32x4.dot_i16x8_s(hi, b0h)));
    c01 = i32x4.add(c01, i32x4.add(i32x4.dot_i16x8_s(lo, b1l), i32x4.dot_i16x8_s(hi, b1h)));
    lo = loadA<T>(a1 + k);
    hi = loadA<T>(a1 + k + 8);
    c10 = i32x4.add(c10, i32x4.add(i32x4.dot_i16x8_s(lo, b0l), i32x4.dot_i16x8_s(hi, b0h)));
    c11 = i32x4.add(c11, i32x4.add(i32x4.dot_i16x8_s(lo, b1l), i32x4.dot_i16x8_s(hi, b1h)));
    lo = loadA<T>(a2 + k);
    hi = loadA<T>(a2 + k + 8);
    c20 = i32x4.add(c20, i32x4.add(i32x4.dot_i16x8_s(lo, b0l), i32x4.dot_i16x8_s(hi, b0h)));
    c21 = i32x4.add(c21, i32x4.add(i32x4.dot_i16x8_s(lo, b1l), i32x4.dot_i16x8_s(hi, b1h)));
    lo = loadA<T>(a3 + k);
    hi = loadA<T>(a3 + k + 8);
    c30 = i32x4.add(c30, i32x4.add(i32x4.dot_i16x8_s(lo, b0l), i32x4.dot_i16x8_s(hi, b0h)));
    c31 = i32x4.add(c31, i32x4.add(i32x4.dot_i16x8_s(lo, b1l), i32x4.dot_i16x8_s(hi, b1h)));
    b += 32;
  }
  const r01 = reduce4(c00, c01, c10, c11);
  const r23 = reduce4(c20, c21, c30, c31);
  storeTile<O>(ep, r01, r23, c, ldc, ncols, i, j, 4);
}

/** One row × 4 column blocks (8 columns): the GEMV / row-tail kernel. */
// @ts-ignore: decorator
@inline function ukernel1x8c8<T, O>(
  a: usize, b: usize, bstride: usize, kp: i32, c: usize, ep: usize, i: i32, j: i32,
): void {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
  let c4 = i32x4.splat(0), c5 = i32x4.splat(0), c6 = i32x4.splat(0), c7 = i32x4.splat(0);
  const b1 = b + bstride, b2 = b1 + bstride, b3 = b2 + bstride;
  for (let k: usize = 0; k < <usize>kp; k += 8) {
    const va = loadA<T>(a + k);
    const o = k << 1;
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(va, v128.load8x8_s(b + o)));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(va, v128.load8x8_s(b + o, 8)));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(va, v128.load8x8_s(b1 + o)));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(va, v128.load8x8_s(b1 + o, 8)));
    c4 = i32x4.add(c4, i32x4.dot_i16x8_s(va, v128.load8x8_s(b2 + o)));
    c5 = i32x4.add(c5, i32x4.dot_i16x8_s(va, v128.load8x8_s(b2 + o, 8)));
    c6 = i32x4.add(c6, i32x4.dot_i16x8_s(va, v128.load8x8_s(b3 + o)));
    c7 = i32x4.add(c7, i32x4.dot_i16x8_s(va, v128.load8x8_s(b3 + o, 8)));
  }
  storeRow4<O>(ep, reduce4(c0, c1, c2, c3), c, 4, i, j);
  storeRow4<O>(ep, reduce4(c4, c5, c6, c7), c + (sizeof<O>() << 2), 4, i, j + 4);
}

// @ts-ignore: decorator
@inline function ukernel1x2c8<T, O>(
  a: usize, b: usize, kp: i32, c: usize, ncols: i32, ep: usize, i: i32, j: i32,
): void {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0);
  for (let k: usize = 0; k < <usize>kp; k += 8) {
    const va = loadA<T>(a + k);
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(va, v128.load8x8_s(b)));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(va, v128.load8x8_s(b, 8)));
    b += 16;
  }
  storeRow4<O>(ep, reduce2(c0, c1), c, ncols, i, j);
}

/** Bytes of packed B kept hot (L2) while all row blocks pass over it. */
const PANEL_BYTES: i32 = 128 * 1024;

// @ts-ignore: decorator
@inline function gemmC8<T, O>(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  const nb = (n + 1) >> 1;
  const bstride = <usize>(kp << 1);
  const panel = max(1, PANEL_BYTES / (kp << 1));
  const m4 = m0 + ((m1 - m0) & ~3);
  for (let jb0 = 0; jb0 < nb; jb0 += panel) {
    const jb1 = min(nb, jb0 + panel);
    for (let i = m0; i < m4; i += 4) {
      const ai = a + <usize>i * <usize>lda;
      const ci = c + <usize>i * <usize>ldc * sizeof<O>();
      for (let jb = jb0; jb < jb1; jb++) {
        const ncols = min(2, n - 2 * jb);
        ukernel4x2c8<T, O>(ai, <usize>lda, b + <usize>jb * bstride, kp,
          ci + <usize>(2 * jb) * sizeof<O>(), ldc, ncols, ep, i, 2 * jb);
      }
    }
  }
  for (let i = m4; i < m1; i++) {
    const ai = a + <usize>i * <usize>lda;
    const ci = c + <usize>i * <usize>ldc * sizeof<O>();
    let jb = 0;
    for (; jb + 4 <= nb && 2 * jb + 8 <= n; jb += 4) {
      ukernel1x8c8<T, O>(ai, b + <usize>jb * bstride, bstride, kp,
        ci + <usize>(2 * jb) * sizeof<O>(), ep, i, 2 * jb);
    }
    for (; jb < nb; jb++) {
      ukernel1x2c8<T, O>(ai, b + <usize>jb * bstride, kp, ci + <usize>(2 * jb) * sizeof<O>(),
        min(2, n - 2 * jb), ep, i, 2 * jb);
    }
  }
}

/**
 * C[m0..m1) = A·B, A s8 (M×Kp, zero-padded), B s8 packed c8n2, C s32. Tile 4×2c8, row tail 1×8c8.
 */
export function gemm_s8s8_s32_4x2c8__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32,
): void {
  gemmC8<i8, i32>(m0, m1, n, kp, a, lda, b, c, ldc, 0);
}

/** As above with A u8 (zero points are applied by `s32_fixup`). */
export function gemm_u8s8_s32_4x2c8__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32,
): void {
  gemmC8<u8, i32>(m0, m1, n, kp, a, lda, b, c, ldc, 0);
}

// *** s4 (nibble) weights × s8 activations ***

// Unsigned nibbles w' = w + 8 ∈ 0..15: low = x & 15, high = x >> 4 (2 ops per 16 weights).
// The raw sum is Σ a·w' = Σ a·w + 8·Σ a; `s32_fixup` subtracts 8·rowsum(A).

// @ts-ignore: decorator
@inline function ukernel4x2c16s4<O>(
  a: usize, lda: usize, b: usize, kp: i32, c: usize, ldc: usize, ncols: i32, ep: usize, i: i32,
  j: i32,
): void {
  const a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda;
  const mask = i16x8.splat(15);
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0);
  let c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  let c20 = i32x4.splat(0), c21 = i32x4.splat(0);
  let c30 = i32x4.splat(0), c31 = i32x4.splat(0);
  for (let k: usize = 0; k < <usize>kp; k += 16) {
    const x0 = v128.load8x8_u(b);
    const l0 = v128.and(x0, mask);
    const h0 = i16x8.shr_u(x0, 4);
    const x1 = v128.load8x8_u(b, 8);
    const l1 = v128.and(x1, mask);
    const h1 = i16x8.shr_u(x1, 4);
    let lo = v128.load8x8_s(a + k);
    let hi = v128.load8x8_s(a + k, 8);
    c00 = i32x4.add(c00, i32x4.add(i32x4.dot_i16x8_s(lo, l0), i32x4.dot_i16x8_s(hi, h0)));
    c01 = i32x4.add(c01, i32x4.add(i32x4.dot_i16x8_s(lo, l1), i32x4.dot_i16x8_s(hi, h1)));
    lo = v128.load8x8_s(a1 + k);
    hi = v128.load8x8_s(a1 + k, 8);
    c10 = i32x4.add(c10, i32x4.add(i32x4.dot_i16x8_s(lo, l0), i32x4.dot_i16x8_s(hi, h0)));
    c11 = i32x4.add(c11, i32x4.add(i32x4.dot_i16x8_s(lo, l1), i32x4.dot_i16x8_s(hi, h1)));
    lo = v128.load8x8_s(a2 + k);
    hi = v128.load8x8_s(a2 + k, 8);
    c20 = i32x4.add(c20, i32x4.add(i32x4.dot_i16x8_s(lo, l0), i32x4.dot_i16x8_s(hi, h0)));
    c21 = i32x4.add(c21, i32x4.add(i32x4.dot_i16x8_s(lo, l1), i32x4.dot_i16x8_s(hi, h1)));
    lo = v128.load8x8_s(a3 + k);
    hi = v128.load8x8_s(a3 + k, 8);
    c30 = i32x4.add(c30, i32x4.add(i32x4.dot_i16x8_s(lo, l0), i32x4.dot_i16x8_s(hi, h0)));
    c31 = i32x4.add(c31, i32x4.add(i32x4.dot_i16x8_s(lo, l1), i32x4.dot_i16x8_s(hi, h1)));
    b += 16;
  }
  const r01 = reduce4(c00, c01, c10, c11);
  const r23 = reduce4(c20, c21, c30, c31);
  storeTile<O>(ep, r01, r23, c, ldc, ncols, i, j, 4);
}

/** One row × 2 column blocks (4 columns) of s4: the GEMV / row-tail kernel. */
// @ts-ignore: decorator
@inline function ukernel1x4c16s4<O>(
  a: usize, b: usize, bstride: usize, kp: i32, c: usize, ep: usize, i: i32, j: i32,
): void {
  const mask = i16x8.splat(15);
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
  let b1 = b + bstride;
  for (let k: usize = 0; k < <usize>kp; k += 16) {
    const lo = v128.load8x8_s(a + k);
    const hi = v128.load8x8_s(a + k, 8);
    const x0 = v128.load8x8_u(b);
    const x1 = v128.load8x8_u(b, 8);
    const x2 = v128.load8x8_u(b1);
    const x3 = v128.load8x8_u(b1, 8);
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(lo, v128.and(x0, mask)));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(lo, v128.and(x1, mask)));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(lo, v128.and(x2, mask)));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(lo, v128.and(x3, mask)));
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(hi, i16x8.shr_u(x0, 4)));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(hi, i16x8.shr_u(x1, 4)));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(hi, i16x8.shr_u(x2, 4)));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(hi, i16x8.shr_u(x3, 4)));
    b += 16;
    b1 += 16;
  }
  storeRow4<O>(ep, reduce4(c0, c1, c2, c3), c, 4, i, j);
}

// @ts-ignore: decorator
@inline function ukernel1x2c16s4<O>(
  a: usize, b: usize, kp: i32, c: usize, ncols: i32, ep: usize, i: i32, j: i32,
): void {
  const mask = i16x8.splat(15);
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0);
  for (let k: usize = 0; k < <usize>kp; k += 16) {
    const lo = v128.load8x8_s(a + k);
    const hi = v128.load8x8_s(a + k, 8);
    const x0 = v128.load8x8_u(b);
    const x1 = v128.load8x8_u(b, 8);
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(lo, v128.and(x0, mask)));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(lo, v128.and(x1, mask)));
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(hi, i16x8.shr_u(x0, 4)));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(hi, i16x8.shr_u(x1, 4)));
    b += 16;
  }
  storeRow4<O>(ep, reduce2(c0, c1), c, ncols, i, j);
}

/**
 * C[m0..m1) = A·(W + 8) with W s4 packed c16n2-nibble (raw: apply `s32_fixup` with
 * rowmul = −8 for A·W). Tile 4×2c16, row tail 1×4c16.
 */
export function gemm_s4s8_s32_4x2c16__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32,
): void {
  gemmC16s4<i32>(m0, m1, n, kp, a, lda, b, c, ldc, 0);
}

// @ts-ignore: decorator
@inline function gemmC16s4<O>(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  const nb = (n + 1) >> 1;
  const bstride = <usize>kp;
  const panel = max(1, PANEL_BYTES / kp);
  const m4 = m0 + ((m1 - m0) & ~3);
  for (let jb0 = 0; jb0 < nb; jb0 += panel) {
    const jb1 = min(nb, jb0 + panel);
    for (let i = m0; i < m4; i += 4) {
      const ai = a + <usize>i * <usize>lda;
      const ci = c + <usize>i * <usize>ldc * sizeof<O>();
      for (let jb = jb0; jb < jb1; jb++) {
        ukernel4x2c16s4<O>(ai, <usize>lda, b + <usize>jb * bstride, kp,
          ci + <usize>(2 * jb) * sizeof<O>(), ldc, min(2, n - 2 * jb), ep, i, 2 * jb);
      }
    }
  }
  for (let i = m4; i < m1; i++) {
    const ai = a + <usize>i * <usize>lda;
    const ci = c + <usize>i * <usize>ldc * sizeof<O>();
    let jb = 0;
    for (; jb + 2 <= nb && 2 * jb + 4 <= n; jb += 2) {
      ukernel1x4c16s4<O>(ai, b + <usize>jb * bstride, bstride, kp,
        ci + <usize>(2 * jb) * sizeof<O>(), ep, i, 2 * jb);
    }
    for (; jb < nb; jb++) {
      ukernel1x2c16s4<O>(ai, b + <usize>jb * bstride, kp, ci + <usize>(2 * jb) * sizeof<O>(),
        min(2, n - 2 * jb), ep, i, 2 * jb);
    }
  }
}

/**
 * Per-group s4: C[i][j] = Σ_g scale[j·G + g] · P[i][j][g] in f32, P the exact integer dot over
 * group g (size `group`, a multiple of 16). Fixed order: each i32x4 lane l of a column
 * accumulates its own f32 partial (lane l holds k ≡ 2l, 2l+1 mod 8); after all groups the lanes
 * are summed as (l0 + l2) + (l1 + l3). `reference.ts` replays exactly this order.
 */
// @ts-ignore: decorator
@inline function ukernel1x2c16s4g(
  a: usize, b: usize, kp: i32, group: i32, s: usize, ngroups: i32, c: usize, ncols: i32,
): void {
  const mask = i16x8.splat(15);
  const eight = i16x8.splat(8);
  let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
  const s1 = s + (<usize>ngroups << 2);
  let k: usize = 0;
  for (let g: usize = 0; k < <usize>kp; g++) {
    let c0 = i32x4.splat(0), c1 = i32x4.splat(0);
    const kend = min(<usize>kp, k + <usize>group);
    for (; k < kend; k += 16) {
      const lo = v128.load8x8_s(a + k);
      const hi = v128.load8x8_s(a + k, 8);
      const x0 = v128.load8x8_u(b);
      const x1 = v128.load8x8_u(b, 8);
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(lo, i16x8.sub(v128.and(x0, mask), eight)));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(lo, i16x8.sub(v128.and(x1, mask), eight)));
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(hi, i16x8.sub(i16x8.shr_u(x0, 4), eight)));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(hi, i16x8.sub(i16x8.shr_u(x1, 4), eight)));
      b += 16;
    }
    f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(c0), v128.load32_splat(s + (g << 2))));
    f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(c1), v128.load32_splat(s1 + (g << 2))));
  }
  // (l0 + l2) + (l1 + l3) for both columns.
  const t = f32x4.add(
    v128.shuffle<f32>(f0, f1, 0, 1, 4, 5),
    v128.shuffle<f32>(f0, f1, 2, 3, 6, 7),
  );
  const r = f32x4.add(v128.shuffle<f32>(t, t, 0, 2, 0, 2), v128.shuffle<f32>(t, t, 1, 3, 1, 3));
  if (ncols == 2) v128.store_lane<i64>(c, r, 0);
  else v128.store_lane<i32>(c, r, 0);
}

/**
 * Per-group s4 × s8 → f32 (weight scales applied per group; multiply by the activation scale
 * afterwards). `scales` is f32 [N][G], G = ceil(K / group). Tile 1×2c16, all rows.
 */
export function gemm_s4s8_f32_1x2c16__wasmsimd_dot16x2_group(
  m0: i32, m1: i32, n: i32, kp: i32, group: i32, a: usize, lda: i32, b: usize, scales: usize,
  c: usize, ldc: i32,
): void {
  const nb = (n + 1) >> 1;
  const ngroups = (kp + group - 1) / group;
  for (let jb = 0; jb < nb; jb++) {
    const bj = b + <usize>jb * <usize>kp;
    const sj = scales + ((<usize>(2 * jb) * <usize>ngroups) << 2);
    const ncols = min(2, n - 2 * jb);
    for (let i = m0; i < m1; i++) {
      ukernel1x2c16s4g(a + <usize>i * <usize>lda, bj, kp, group, sj, ngroups,
        c + ((<usize>i * <usize>ldc + <usize>(2 * jb)) << 2), ncols);
    }
  }
}

// *** helpers: row sums, zero-point fix-up, requantization ***

/** rowsum[i] = Σ_k A[i][k] over the padded row (pads are zero), A s8 (signed) or u8. */
export function rowsum_s8(m0: i32, m1: i32, kp: i32, a: usize, lda: i32, out: usize, signed: i32): void {
  for (let i = m0; i < m1; i++) {
    const ai = a + <usize>i * <usize>lda;
    let acc = i32x4.splat(0);
    for (let k: usize = 0; k < <usize>kp; k += 8) {
      const v = signed ? v128.load8x8_s(ai + k) : v128.load8x8_u(ai + k);
      acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(v));
    }
    store<i32>(out + (<usize>i << 2),
      i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) +
      i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3));
  }
}

/**
 * C[i][j] += rowmul·rowsum[i] + colmul·colsum[j] + k0 for rows [m0, m1) (wrapping int32).
 * `rowsum`/`colsum` = 0 skip that term.
 */
export function s32_fixup(
  m0: i32, m1: i32, n: i32, c: usize, ldc: i32, rowsum: usize, rowmul: i32, colsum: usize,
  colmul: i32, k0: i32,
): void {
  for (let i = m0; i < m1; i++) {
    const ci = c + ((<usize>i * <usize>ldc) << 2);
    const r = (rowsum ? load<i32>(rowsum + (<usize>i << 2)) * rowmul : 0) + k0;
    const vr = i32x4.splat(r);
    const vm = i32x4.splat(colmul);
    let j = 0;
    if (colsum) {
      for (; j + 4 <= n; j += 4) {
        const p = ci + (<usize>j << 2);
        const cs = v128.load(colsum + (<usize>j << 2));
        v128.store(p, i32x4.add(v128.load(p), i32x4.add(vr, i32x4.mul(cs, vm))));
      }
      for (; j < n; j++) {
        const p = ci + (<usize>j << 2);
        store<i32>(p, load<i32>(p) + r + load<i32>(colsum + (<usize>j << 2)) * colmul);
      }
    } else {
      for (; j + 4 <= n; j += 4) {
        const p = ci + (<usize>j << 2);
        v128.store(p, i32x4.add(v128.load(p), vr));
      }
      for (; j < n; j++) {
        const p = ci + (<usize>j << 2);
        store<i32>(p, load<i32>(p) + r);
      }
    }
  }
}

/**
 * Dyadic requantization (HAWQ-V3), integer only, bit-for-bit the rounding of @lowbit/core's
 * `mulShiftRound` / `requantizeDyadic` (kernels/gemm/reference.ts `requantizeRef` uses it):
 *   x = (acc + bias[j]) wrapping int32;  p = x · mult[j] (exact, 64-bit);
 *   q = (p + 2^(shift[j]−1)) >> shift[j]  (round to nearest, ties toward +∞, XNNPACK "rndnu");
 *   y = clamp(q + zp, qmin, qmax)  (saturating)
 * mult[j] ∈ [0, 2^31), shift[j] ∈ [0, 63] (|p| < 2^62, so p + 2^62 cannot overflow).
 * `bias` = 0 means no bias. Output int8 row-major, ldo.
 */
export function requant_s32_s8_dyadic(
  m0: i32, m1: i32, n: i32, c: usize, ldc: i32, bias: usize, mult: usize, shift: usize, zp: i32,
  qmin: i32, qmax: i32, out: usize, ldo: i32,
): void {
  for (let i = m0; i < m1; i++) {
    const ci = c + ((<usize>i * <usize>ldc) << 2);
    const oi = out + <usize>i * <usize>ldo;
    for (let j = 0; j < n; j++) {
      const jo = <usize>j << 2;
      let x = load<i32>(ci + jo);
      if (bias) x += load<i32>(bias + jo);
      const p = <i64>x * <i64>load<i32>(mult + jo);
      const s = <i64>load<i32>(shift + jo);
      let q = s > 0 ? (p + ((<i64>1) << (s - 1))) >> s : p;
      q += <i64>zp;
      if (q < <i64>qmin) q = <i64>qmin;
      if (q > <i64>qmax) q = <i64>qmax;
      store<i8>(oi + <usize>j, <i8>q);
    }
  }
}

// *** GEMV (M = 1): split over columns [n0, n1) instead of rows (n0 even) ***

// @ts-ignore: decorator
@inline function gemvC8<T, O>(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  const bstride = <usize>(kp << 1);
  let jb = n0 >> 1;
  const nb = (n1 + 1) >> 1;
  for (; jb + 4 <= nb && 2 * jb + 8 <= n1; jb += 4) {
    ukernel1x8c8<T, O>(a, b + <usize>jb * bstride, bstride, kp,
      c + <usize>(2 * jb) * sizeof<O>(), ep, 0, 2 * jb);
  }
  for (; jb < nb; jb++) {
    ukernel1x2c8<T, O>(a, b + <usize>jb * bstride, kp, c + <usize>(2 * jb) * sizeof<O>(),
      min(2, n1 - 2 * jb), ep, 0, 2 * jb);
  }
}

/** c[n0..n1) = a·B, a s8 (Kp, zero-padded), B s8 packed c8n2, c s32. Tile 1×8c8. */
export function gemv_s8s8_s32_1x8c8__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize,
): void {
  gemvC8<i8, i32>(n0, n1, kp, a, b, c, 0);
}

/** As above with a u8. */
export function gemv_u8s8_s32_1x8c8__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize,
): void {
  gemvC8<u8, i32>(n0, n1, kp, a, b, c, 0);
}

/** c[n0..n1) = a·(W + 8), W s4 packed c16n2-nibble (raw, fix up with −8·Σa). Tile 1×4c16. */
export function gemv_s4s8_s32_1x4c16__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize,
): void {
  gemvC16s4<i32>(n0, n1, kp, a, b, c, 0);
}

// @ts-ignore: decorator
@inline function gemvC16s4<O>(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  const bstride = <usize>kp;
  let jb = n0 >> 1;
  const nb = (n1 + 1) >> 1;
  for (; jb + 2 <= nb && 2 * jb + 4 <= n1; jb += 2) {
    ukernel1x4c16s4<O>(a, b + <usize>jb * bstride, bstride, kp,
      c + <usize>(2 * jb) * sizeof<O>(), ep, 0, 2 * jb);
  }
  for (; jb < nb; jb++) {
    ukernel1x2c16s4<O>(a, b + <usize>jb * bstride, kp, c + <usize>(2 * jb) * sizeof<O>(),
      min(2, n1 - 2 * jb), ep, 0, 2 * jb);
  }
}

// *** fused epilogues (assembly/_int_epilogue.ts): int8 / uint8 requantized or f32 output ***
// Same tiles and summation as the `_s32_` kernels above; the tile store applies the epilogue
// described by the record at `ep` in registers, so C never exists as int32 in memory. `c` is
// the output (int8 / uint8 bytes, or f32), row stride `ldc` elements.

/** s8×s8 → int8/uint8, dyadic requantization fused in the tile store. Tile 4×2c8, tail 1×8c8. */
export function gemm_s8s8_s8_requant_4x2c8__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmC8<i8, i8>(m0, m1, n, kp, a, lda, b, c, ldc, ep);
}

/** u8×s8 → int8/uint8, dyadic requantization fused. Tile 4×2c8, tail 1×8c8. */
export function gemm_u8s8_s8_requant_4x2c8__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmC8<u8, i8>(m0, m1, n, kp, a, lda, b, c, ldc, ep);
}

/** s4×s8 → int8/uint8 (rowmul −8 undoes the nibble offset), requantization fused. */
export function gemm_s4s8_s8_requant_4x2c16__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmC16s4<i8>(m0, m1, n, kp, a, lda, b, c, ldc, ep);
}

/** s8×s8 → f32 with per-column scale, bias and clamp fused. Tile 4×2c8, tail 1×8c8. */
export function gemm_s8s8_f32_scale_4x2c8__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmC8<i8, f32>(m0, m1, n, kp, a, lda, b, c, ldc, ep);
}

/** u8×s8 → f32, scale, bias and clamp fused. */
export function gemm_u8s8_f32_scale_4x2c8__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmC8<u8, f32>(m0, m1, n, kp, a, lda, b, c, ldc, ep);
}

/** s4×s8 → f32, scale, bias and clamp fused. */
export function gemm_s4s8_f32_scale_4x2c16__wasmsimd_dot16x2(
  m0: i32, m1: i32, n: i32, kp: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, ep: usize,
): void {
  gemmC16s4<f32>(m0, m1, n, kp, a, lda, b, c, ldc, ep);
}

/** GEMV (M = 1) s8×s8 → int8/uint8 requantized, columns [n0, n1) (n0 even). Tile 1×8c8. */
export function gemv_s8s8_s8_requant_1x8c8__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  gemvC8<i8, i8>(n0, n1, kp, a, b, c, ep);
}

/** GEMV u8×s8 → int8/uint8 requantized. */
export function gemv_u8s8_s8_requant_1x8c8__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  gemvC8<u8, i8>(n0, n1, kp, a, b, c, ep);
}

/** GEMV s4×s8 → int8/uint8 requantized. Tile 1×4c16. */
export function gemv_s4s8_s8_requant_1x4c16__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  gemvC16s4<i8>(n0, n1, kp, a, b, c, ep);
}

/** GEMV s8×s8 → f32 scaled. */
export function gemv_s8s8_f32_scale_1x8c8__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  gemvC8<i8, f32>(n0, n1, kp, a, b, c, ep);
}

/** GEMV u8×s8 → f32 scaled. */
export function gemv_u8s8_f32_scale_1x8c8__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  gemvC8<u8, f32>(n0, n1, kp, a, b, c, ep);
}

/** GEMV s4×s8 → f32 scaled. */
export function gemv_s4s8_f32_scale_1x4c16__wasmsimd_dot16x2(
  n0: i32, n1: i32, kp: i32, a: usize, b: usize, c: usize, ep: usize,
): void {
  gemvC16s4<f32>(n0, n1, kp, a, b, c, ep);
}
