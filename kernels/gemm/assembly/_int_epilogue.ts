// Fused epilogues of the integer GEMM / GEMV tiles (AssemblyScript; not built on its own). A tile
// ends with exact int32 sums in registers; instead of storing them, `O` (the output element type,
// a compile-time generic) picks what the tile store does:
//
// - O = i32: store the raw int32 sums (the `_s32_` kernels; fix-ups run afterwards).
// - O = i8:  integer-only requantization to 8 bits (int8 or uint8: the clamp bounds decide), the
//            `_s8_requant` kernels. Bit for bit @lowbit/core's `requantizeDyadic`:
//              x = acc + rowmul·rowsum[i] + colterm[j]                    (wrapping int32)
//              q = (x·mult[j] + 2^(shift[j]−1)) >> shift[j]               (exact, 64-bit)
//              y = clamp(q, qmin − zp, qmax − zp) + zp                    (saturating)
//            mult ∈ [0, 2^31), shift ∈ [0, 63]: |x·mult| < 2^62, so adding 2^62 cannot overflow.
// - O = f32: the float epilogue (`_f32_scale` kernels):
//              y = min(hi, max(lo, f32(f32(f64(x)·f64(scale[j])) + bias[j])))
//            i.e. the product rounded once from f64 (as JavaScript's `Math.fround(x * s)`), then
//            one f32 add, then the clamp.
//
// colterm folds every per-column integer term (int32 bias, −za·colsum, K·za·zb, 128·colsum of
// the relaxed u8 flip) and is computed once per call by the loader; rowmul·rowsum carries the
// weight zero point (and the −8·Σa of the s4 nibble offset).
//
// The parameters live in kernel memory as one record of i32 words at `ep` (EP_* below), so every
// kernel takes a single extra argument. Per-column arrays are padded to a multiple of 4 plus 4
// words (zero) by the loader: a tile whose second column is missing reads the padding.

import { store2 } from "./_int_common";

/** Word offsets (bytes) of the epilogue record. */
// @ts-ignore: decorator
@inline export const EP_ROWSUM: usize = 0; // i32[M] row sums of A, or 0 for none
// @ts-ignore: decorator
@inline export const EP_ROWMUL: usize = 4; // i32 multiplier of the row sums
// @ts-ignore: decorator
@inline export const EP_COLTERM: usize = 8; // i32[N] per-column integer term
// @ts-ignore: decorator
@inline export const EP_MULT: usize = 12; // i32[N] multipliers (requant) | f32[N] scales (float)
// @ts-ignore: decorator
@inline export const EP_SHIFT: usize = 16; // i32[N] shifts (requant) | f32[N] biases (float)
// @ts-ignore: decorator
@inline export const EP_ZP: usize = 20; // i32 output zero point (requant)
// @ts-ignore: decorator
@inline export const EP_LO: usize = 24; // i32 qmin (requant) | f32 lower clamp (float)
// @ts-ignore: decorator
@inline export const EP_HI: usize = 28; // i32 qmax (requant) | f32 upper clamp (float)

/** The row terms rowmul·rowsum[i + l] of rows i..i+3 (`rows` valid rows: 1, 2 or 4). */
// @ts-ignore: decorator
@inline export function rowTerms(ep: usize, i: i32, rows: i32): v128 {
  const rs = <usize>load<i32>(ep + EP_ROWSUM);
  if (rs == 0) return i32x4.splat(0);
  const p = rs + (<usize>i << 2);
  const v = rows == 4
    ? v128.load(p)
    : rows == 2
    ? v128.load64_zero(p)
    : i32x4.splat(load<i32>(p));
  return i32x4.mul(v, i32x4.splat(load<i32>(ep + EP_ROWMUL)));
}

/** The column term of column j, splatted. */
// @ts-ignore: decorator
@inline function colTerm(ep: usize, j: i32): v128 {
  return v128.load32_splat(<usize>load<i32>(ep + EP_COLTERM) + (<usize>j << 2));
}

/** Lanes saturated to [lo, hi] (i64x2). */
// @ts-ignore: decorator
@inline function clamp64(v: v128, lo: v128, hi: v128): v128 {
  v = v128.bitselect(lo, v, i64x2.lt_s(v, lo));
  return v128.bitselect(hi, v, i64x2.gt_s(v, hi));
}

/** (p + 2^(s−1)) >> s on both i64 lanes (s = 0: p). */
// @ts-ignore: decorator
@inline function roundShift(p: v128, s: i32): v128 {
  const half = <i64>((<u64>1 << <u64>s) >> 1);
  return i64x2.shr_s(i64x2.add(p, i64x2.splat(half)), s);
}

/**
 * Requantizes x (i32x4, column terms already added): lanes 0, 1 belong to column ja, lanes 2, 3
 * to column jb. Returns clamp(q, qmin − zp, qmax − zp) + zp as i32x4 in the same lanes.
 */
// @ts-ignore: decorator
@inline function requantCols(ep: usize, x: v128, ja: i32, jb: i32): v128 {
  const mult = <usize>load<i32>(ep + EP_MULT), shift = <usize>load<i32>(ep + EP_SHIFT);
  const zp = load<i32>(ep + EP_ZP);
  const lo = i64x2.splat(<i64>(load<i32>(ep + EP_LO) - zp));
  const hi = i64x2.splat(<i64>(load<i32>(ep + EP_HI) - zp));
  const oa = <usize>ja << 2, ob = <usize>jb << 2;
  let p = i64x2.extmul_low_i32x4_s(x, i32x4.splat(load<i32>(mult + oa)));
  let q = i64x2.extmul_high_i32x4_s(x, i32x4.splat(load<i32>(mult + ob)));
  p = clamp64(roundShift(p, load<i32>(shift + oa)), lo, hi);
  q = clamp64(roundShift(q, load<i32>(shift + ob)), lo, hi);
  return i32x4.add(v128.shuffle<i32>(p, q, 0, 2, 4, 6), i32x4.splat(zp));
}

/** f32 epilogue of x (i32x4) with one column per lane pair as in `requantCols`. */
// @ts-ignore: decorator
@inline function scaleCols(ep: usize, x: v128, ja: i32, jb: i32): v128 {
  const scale = <usize>load<i32>(ep + EP_MULT), bias = <usize>load<i32>(ep + EP_SHIFT);
  const oa = <usize>ja << 2, ob = <usize>jb << 2;
  const lo = v128.load32_splat(ep + EP_LO), hi = v128.load32_splat(ep + EP_HI);
  const pa = f64x2.mul(f64x2.convert_low_i32x4_s(x), f64x2.splat(<f64>load<f32>(scale + oa)));
  const xb = v128.shuffle<i32>(x, x, 2, 3, 2, 3);
  const pb = f64x2.mul(f64x2.convert_low_i32x4_s(xb), f64x2.splat(<f64>load<f32>(scale + ob)));
  const y = v128.shuffle<f32>(f32x4.demote_f64x2_zero(pa), f32x4.demote_f64x2_zero(pb), 0, 1, 4, 5);
  const b = v128.shuffle<f32>(
    v128.load32_splat(bias + oa),
    v128.load32_splat(bias + ob),
    0,
    1,
    4,
    5,
  );
  return f32x4.min(hi, f32x4.max(lo, f32x4.add(y, b)));
}

/**
 * Stores a 4×2 tile (or 2×2 with `rows` = 2): r01 = [(0, j), (0, j+1), (1, j), (1, j+1)], r23 the
 * same for rows 2, 3. `c` points at element (i, j) of the output, row stride `ldc` elements.
 */
// @ts-ignore: decorator
@inline export function storeTile<O>(
  ep: usize, r01: v128, r23: v128, c: usize, ldc: usize, ncols: i32, i: i32, j: i32, rows: i32,
): void {
  if (isInteger<O>() && sizeof<O>() == 4) {
    const ldcb = ldc << 2;
    store2(c, r01, false, ncols);
    store2(c + ldcb, r01, true, ncols);
    if (rows == 4) {
      store2(c + 2 * ldcb, r23, false, ncols);
      store2(c + 3 * ldcb, r23, true, ncols);
    }
    return;
  }
  // Column-major in registers: t0 = column j rows 0..3, t1 = column j + 1.
  const rt = rowTerms(ep, i, rows);
  const t0 = i32x4.add(i32x4.add(v128.shuffle<i32>(r01, r23, 0, 2, 4, 6), rt), colTerm(ep, j));
  const t1 = i32x4.add(i32x4.add(v128.shuffle<i32>(r01, r23, 1, 3, 5, 7), rt), colTerm(ep, j + 1));
  if (isInteger<O>()) {
    // [col j rows 0, 1; col j+1 rows 0, 1] and rows 2, 3: one 64-bit shift amount per pair.
    const y01 = requantCols(ep, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5), j, j + 1);
    const y23 = requantCols(ep, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), j, j + 1);
    // bytes: row r → (col j, col j+1) as i16 lane r
    const b = i8x16.shuffle(y01, y23, 0, 8, 4, 12, 16, 24, 20, 28, 0, 0, 0, 0, 0, 0, 0, 0);
    if (ncols == 2) {
      v128.store_lane<i16>(c, b, 0);
      v128.store_lane<i16>(c + ldc, b, 1);
      if (rows == 4) {
        v128.store_lane<i16>(c + 2 * ldc, b, 2);
        v128.store_lane<i16>(c + 3 * ldc, b, 3);
      }
    } else {
      v128.store_lane<i8>(c, b, 0);
      v128.store_lane<i8>(c + ldc, b, 2);
      if (rows == 4) {
        v128.store_lane<i8>(c + 2 * ldc, b, 4);
        v128.store_lane<i8>(c + 3 * ldc, b, 6);
      }
    }
  } else {
    const y01 = scaleCols(ep, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5), j, j + 1);
    const y23 = scaleCols(ep, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), j, j + 1);
    // rows as [(r, j), (r, j+1)] pairs: row 0 = lanes 0, 2 of y01
    const w01 = v128.shuffle<f32>(y01, y01, 0, 2, 1, 3);
    const w23 = v128.shuffle<f32>(y23, y23, 0, 2, 1, 3);
    const ldcb = ldc << 2;
    store2(c, w01, false, ncols);
    store2(c + ldcb, w01, true, ncols);
    if (rows == 4) {
      store2(c + 2 * ldcb, w23, false, ncols);
      store2(c + 3 * ldcb, w23, true, ncols);
    }
  }
}

/**
 * Stores one row's columns j..j+3 (x = i32x4 sums of those columns; `ncols` ∈ {1, 2, 4} of them
 * valid; `c` points at element (i, j)).
 */
// @ts-ignore: decorator
@inline export function storeRow4<O>(ep: usize, x: v128, c: usize, ncols: i32, i: i32, j: i32): void {
  if (isInteger<O>() && sizeof<O>() == 4) {
    if (ncols == 4) v128.store(c, x);
    else store2(c, x, false, ncols);
    return;
  }
  const cols = v128.load(<usize>load<i32>(ep + EP_COLTERM) + (<usize>j << 2));
  const t = i32x4.add(i32x4.add(x, rowTerms(ep, i, 1)), cols);
  if (isInteger<O>()) {
    const y01 = requantCols(ep, v128.shuffle<i32>(t, t, 0, 0, 1, 1), j, j + 1);
    const y23 = requantCols(ep, v128.shuffle<i32>(t, t, 2, 2, 3, 3), j + 2, j + 3);
    const b = i8x16.shuffle(y01, y23, 0, 8, 16, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    if (ncols == 4) v128.store_lane<i32>(c, b, 0);
    else if (ncols == 2) v128.store_lane<i16>(c, b, 0);
    else v128.store_lane<i8>(c, b, 0);
  } else {
    const y01 = scaleCols(ep, v128.shuffle<i32>(t, t, 0, 0, 1, 1), j, j + 1);
    const y23 = scaleCols(ep, v128.shuffle<i32>(t, t, 2, 2, 3, 3), j + 2, j + 3);
    const y = v128.shuffle<f32>(y01, y23, 0, 2, 4, 6);
    if (ncols == 4) v128.store(c, y);
    else store2(c, y, false, ncols);
  }
}

