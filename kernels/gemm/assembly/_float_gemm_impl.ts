// f32 GEMM on a pre-packed B: C[M×N] = epilogue(A[M×K] · B[K×N]).
// Generic over the multiply-add marker V (see _float_common.ts). Never built on its own.
//
// *** layouts ***
// A: row-major, `lda` floats between rows.  C: row-major, `ldc` floats between rows.
// packed B: ceil(N/8) panels of 8 columns; panel p holds, for k = 0..K-1, the 8 floats
//   B[k][8p..8p+7] (zero-padded past N): panel p starts at b + p·K·32 bytes, row k at +k·32.
//
// *** summation order (the contract with reference_float.ts) ***
// Each C[i][j] is ONE accumulator: acc = +0; for k = 0..K-1 in order: acc = madd(A[i][k], B[k][j],
// acc); then the epilogue. K blocking stores acc to C between blocks (an exact f32 round trip), so
// blocking never changes the order.

import { madd, storeRow8 } from "./_float_common";

/** K block (floats): a 4-row A block (4 KiB) and a panel block (8 KiB) stay in L1. */
export const KC: i32 = 256;
/** N block: KC×NC of packed B (128 KiB) stays in L2 next to A and C. */
export const NC: i32 = 128;

/** 4×8 tile over `kl` steps of k. Rows may alias (M tail): they then compute equal values. */
// @ts-ignore: decorator
@inline
function tile4x8<V>(
  kl: i32,
  a0: usize, a1: usize, a2: usize, a3: usize,
  bp: usize,
  c0: usize, c1: usize, c2: usize, c3: usize,
  r0: i32, r1: i32, r2: i32, r3: i32,
  j: i32, first: bool, last: bool,
): void {
  let x00 = f32x4.splat(0), x01 = x00, x10 = x00, x11 = x00;
  let x20 = x00, x21 = x00, x30 = x00, x31 = x00;
  if (!first) {
    x00 = v128.load(c0); x01 = v128.load(c0, 16);
    x10 = v128.load(c1); x11 = v128.load(c1, 16);
    x20 = v128.load(c2); x21 = v128.load(c2, 16);
    x30 = v128.load(c3); x31 = v128.load(c3, 16);
  }
  const end = a0 + (<usize>kl << 2);
  while (a0 < end) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let va = v128.load32_splat(a0);
    x00 = madd<V>(va, b0, x00);
    x01 = madd<V>(va, b1, x01);
    va = v128.load32_splat(a1);
    x10 = madd<V>(va, b0, x10);
    x11 = madd<V>(va, b1, x11);
    va = v128.load32_splat(a2);
    x20 = madd<V>(va, b0, x20);
    x21 = madd<V>(va, b1, x21);
    va = v128.load32_splat(a3);
    x30 = madd<V>(va, b0, x30);
    x31 = madd<V>(va, b1, x31);
    a0 += 4; a1 += 4; a2 += 4; a3 += 4;
    bp += 32;
  }
  storeRow8(c0, x00, x01, r0, j, last);
  storeRow8(c1, x10, x11, r1, j, last);
  storeRow8(c2, x20, x21, r2, j, last);
  storeRow8(c3, x30, x31, r3, j, last);
}

/** 1×8 tile (M = 1 and single remaining rows). */
// @ts-ignore: decorator
@inline
function tile1x8<V>(kl: i32, a0: usize, bp: usize, c0: usize, r0: i32, j: i32, first: bool, last: bool): void {
  let x00 = f32x4.splat(0), x01 = x00;
  if (!first) {
    x00 = v128.load(c0); x01 = v128.load(c0, 16);
  }
  const end = a0 + (<usize>kl << 2);
  while (a0 < end) {
    const va = v128.load32_splat(a0);
    x00 = madd<V>(va, v128.load(bp), x00);
    x01 = madd<V>(va, v128.load(bp, 16), x01);
    a0 += 4;
    bp += 32;
  }
  storeRow8(c0, x00, x01, r0, j, last);
}

/**
 * Runs the tiles of rows [i0, i1) × columns [j0, j1) for one k block of `kl` steps: `ak` points
 * at A[0][k0], `bk` at row k0 of the panel holding column j0, panels `panelStride` bytes apart.
 * `tmp` is 4×8 floats of scratch for the column tail (nr < 8): the tile runs there and the
 * valid columns are copied in and out.
 */
export function gemmBlock<V>(
  i0: i32, i1: i32, j0: i32, j1: i32, kl: i32,
  ak: usize, lda: i32, bk: usize, panelStride: usize, c: usize, ldc: i32,
  first: bool, last: bool, tmp: usize,
): void {
  for (let i = i0; i < i1; i += 4) {
    const mr = min(4, i1 - i);
    const r0 = i, r1 = i + min(1, mr - 1), r2 = i + min(2, mr - 1), r3 = i + min(3, mr - 1);
    const a0 = ak + <usize>r0 * lda * 4, a1 = ak + <usize>r1 * lda * 4;
    const a2 = ak + <usize>r2 * lda * 4, a3 = ak + <usize>r3 * lda * 4;
    for (let j = j0; j < j1; j += 8) {
      const nr = min(8, j1 - j);
      const bp = bk + <usize>((j - j0) >> 3) * panelStride;
      if (nr == 8) {
        const cj = c + (<usize>j << 2);
        const c0 = cj + <usize>r0 * ldc * 4, c1 = cj + <usize>r1 * ldc * 4;
        const c2 = cj + <usize>r2 * ldc * 4, c3 = cj + <usize>r3 * ldc * 4;
        if (mr == 1) tile1x8<V>(kl, a0, bp, c0, r0, j, first, last);
        else tile4x8<V>(kl, a0, a1, a2, a3, bp, c0, c1, c2, c3, r0, r1, r2, r3, j, first, last);
      } else {
        // Column tail: run the tile in tmp (rows 32 bytes apart), copying valid columns.
        if (!first) {
          for (let r = 0; r < mr; r++) {
            memory.copy(tmp + <usize>r * 32, c + (<usize>(i + r) * ldc + j) * 4, <usize>nr * 4);
          }
        }
        tile4x8<V>(kl, a0, a1, a2, a3, bp, tmp, tmp + 32, tmp + 64, tmp + 96, r0, r1, r2, r3, j, first, last);
        for (let r = 0; r < mr; r++) {
          memory.copy(c + (<usize>(i + r) * ldc + j) * 4, tmp + <usize>r * 32, <usize>nr * 4);
        }
      }
    }
  }
}

/**
 * Columns [n0, n1) of C = epilogue(A · B) with B packed (see the file header); n0 a multiple of
 * 8, n1 ≤ n (threads split N). The epilogue is configured with setEpilogue() before the call.
 * `tmp`: 128 bytes of scratch, used only by the column-tail panel.
 */
export function gemmF32<V>(
  n0: i32, n1: i32, m: i32, k: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, tmp: usize,
): void {
  const panelStride = <usize>k << 5;
  let k0 = 0;
  do {
    const kl = min(KC, k - k0);
    const first = k0 == 0;
    const last = k0 + kl >= k;
    for (let j0 = n0; j0 < n1; j0 += NC) {
      const bk = b + <usize>(j0 >> 3) * panelStride + (<usize>k0 << 5);
      gemmBlock<V>(0, m, j0, min(n1, j0 + NC), kl, a + (<usize>k0 << 2), lda, bk, panelStride, c, ldc, first, last, tmp);
    }
    k0 += kl;
  } while (k0 < k);
}

/** Packs B (row-major K×N, `ldb` floats between rows) into panels (see the file header). */
export function packF32B(k: i32, n: i32, b: usize, ldb: i32, out: usize): void {
  const panels = (n + 7) >> 3;
  for (let p = 0; p < panels; p++) {
    const j = p << 3;
    const nr = min(8, n - j);
    let dst = out + <usize>p * (<usize>k << 5);
    let src = b + (<usize>j << 2);
    const stride = <usize>ldb << 2;
    if (nr == 8) {
      for (let kk = 0; kk < k; kk++) {
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        dst += 32;
        src += stride;
      }
    } else {
      for (let kk = 0; kk < k; kk++) {
        v128.store(dst, f32x4.splat(0));
        v128.store(dst, f32x4.splat(0), 16);
        memory.copy(dst, src, <usize>nr << 2);
        dst += 32;
        src += stride;
      }
    }
  }
}
