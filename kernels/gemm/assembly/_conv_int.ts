// The integer route of the dense conv (conv2dF32Pixels): when the caller says every sum of the
// conv is an integer below 2^24 in magnitude (the integer plan's centred codes), an im2col chunk
// whose values are all integers in i16 range is summed with `i32x4.dot_i16x8_s` (pmaddwd: 8
// products per instruction, twice the f32 kernel's 4 per multiply + 4 per add) against the
// weights' i16 copy. The int32 sums are exact and convert to f32 exactly (|sum| < 2^24), and the
// f32 kernel's sums are the same integers (every partial sum exact), so the outputs, after the
// same epilogue (storeRow8), have the same bits. The per-channel scale is applied as
// f32(f64(sum)·f64(scale)) (the f32 multiply's value while |sum| < 2^24, and JavaScript's
// Math.fround(sum * scale) beyond, as the TypeScript and int8 epilogues compute it), so sums up
// to 2^31 keep the integer plan's bits too. Never built on its own.
//
// *** layouts ***
// weights: rows of Kp = K rounded up to even i16 (zero-padded), row r at w16 + r·Kp·2.
// panels (from the f32 im2col panels of 8 columns): panel q at dst + q·Kp·16; for each k pair
// (k, k+1): 16 i16 = [x[k][0], x[k+1][0], x[k][1], x[k+1][1], …, x[k][3], x[k+1][3]] then the
// same for columns 4..7 (32 bytes). A dot of one panel half with the splat of the weight pair
// (w[r][k], w[r][k+1]) adds both products of 4 columns.

import { storeRow8, epiFlags, epiScale, epiBias, epiLo, epiHi, EPI_SCALE, setEpilogue } from "./_float_common";
import { epiPost, epiPostMul, epiPostAdd, setEpiloguePost } from "./_float_common";

/**
 * One k pair of an i16 pair panel: f32 rows a (k) and b (k + 1), 8 columns each, to 16
 * interleaved i16 at `d`. Returns nonzero lanes when a value is not an exact integer in i16
 * range (NaN and fractions fail the round trip).
 */
// @ts-ignore: decorator
@inline
function pairToI16(a0: v128, a1: v128, b0: v128, b1: v128, d: usize): v128 {
  const off = i32x4.splat(32768), top = i32x4.splat(65535);
  const ia0 = i32x4.trunc_sat_f32x4_s(a0), ia1 = i32x4.trunc_sat_f32x4_s(a1);
  const ib0 = i32x4.trunc_sat_f32x4_s(b0), ib1 = i32x4.trunc_sat_f32x4_s(b1);
  let bad = v128.or(f32x4.ne(f32x4.convert_i32x4_s(ia0), a0), f32x4.ne(f32x4.convert_i32x4_s(ia1), a1));
  bad = v128.or(bad, v128.or(f32x4.ne(f32x4.convert_i32x4_s(ib0), b0), f32x4.ne(f32x4.convert_i32x4_s(ib1), b1)));
  bad = v128.or(bad, v128.or(i32x4.gt_u(i32x4.add(ia0, off), top), i32x4.gt_u(i32x4.add(ia1, off), top)));
  bad = v128.or(bad, v128.or(i32x4.gt_u(i32x4.add(ib0, off), top), i32x4.gt_u(i32x4.add(ib1, off), top)));
  const ra = i16x8.narrow_i32x4_s(ia0, ia1), rb = i16x8.narrow_i32x4_s(ib0, ib1);
  v128.store(d, i8x16.shuffle(ra, rb, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  v128.store(d, i8x16.shuffle(ra, rb, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
  return bad;
}

/**
 * Converts `pn` columns of f32 im2col panels (K rows of 8 floats each, panels k·32 bytes apart)
 * into i16 pair panels at `dst`. Returns false, leaving the f32 panels for the float kernel,
 * when any value is not an integer in [−32768, 32767] (NaN included).
 */
export function panelsToI16(src: usize, k: i32, pn: i32, dst: usize): bool {
  const panels = (pn + 7) >> 3;
  const kp = (k + 1) & ~1;
  let bad = i32x4.splat(0);
  for (let q = 0; q < panels; q++) {
    let s = src + <usize>q * (<usize>k << 5);
    let d = dst + <usize>q * (<usize>kp << 4);
    for (let kk = 0; kk < k; kk += 2) {
      const a0 = v128.load(s), a1 = v128.load(s, 16);
      let b0 = f32x4.splat(0), b1 = b0;
      if (kk + 1 < k) {
        b0 = v128.load(s, 32);
        b1 = v128.load(s, 48);
      }
      bad = v128.or(bad, pairToI16(a0, a1, b0, b1, d));
      s += 64;
      d += 32;
    }
  }
  return !v128.any_true(bad);
}

/**
 * panelsToI16 of the im2col panels of pixels [p0, p0 + pn) of a pointwise conv (1×1, stride 1,
 * no padding, output size = input size) over channels c0..c0+k, read straight from the image
 * rows (`hw` floats apart) instead of from an f32 im2col copy: the same panels (lanes past the
 * last pixel 0, as im2col writes them) and the same answer. `tmp`: 64 bytes of scratch.
 */
export function pointwiseToI16(x: usize, hw: usize, c0: i32, k: i32, p0: i32, pn: i32, dst: usize, tmp: usize): bool {
  const kp = (k + 1) & ~1;
  let bad = i32x4.splat(0);
  const rowBytes = hw << 2;
  for (let q = 0; q < pn; q += 8) {
    const nr = min(8, pn - q);
    let s = x + ((<usize>c0 * hw + <usize>(p0 + q)) << 2);
    let d = dst + <usize>(q >> 3) * (<usize>kp << 4);
    for (let kk = 0; kk < k; kk += 2) {
      const two = kk + 1 < k;
      let a0: v128, a1: v128, b0 = f32x4.splat(0), b1 = b0;
      if (nr == 8) {
        a0 = v128.load(s);
        a1 = v128.load(s, 16);
        if (two) {
          b0 = v128.load(s + rowBytes);
          b1 = v128.load(s + rowBytes, 16);
        }
      } else {
        // a partial panel: the pixels there, zeros past them (no read beyond the row)
        v128.store(tmp, b0);
        v128.store(tmp, b0, 16);
        v128.store(tmp, b0, 32);
        v128.store(tmp, b0, 48);
        for (let l = 0; l < nr; l++) {
          store<f32>(tmp + (<usize>l << 2), load<f32>(s + (<usize>l << 2)));
          if (two) store<f32>(tmp + 32 + (<usize>l << 2), load<f32>(s + rowBytes + (<usize>l << 2)));
        }
        a0 = v128.load(tmp);
        a1 = v128.load(tmp, 16);
        b0 = v128.load(tmp, 32);
        b1 = v128.load(tmp, 48);
      }
      bad = v128.or(bad, pairToI16(a0, a1, b0, b1, d));
      s += rowBytes << 1;
      d += 32;
    }
  }
  return !v128.any_true(bad);
}

/** 4 rows × 8 columns over kp / 2 pairs; rows may alias (they then store equal values). */
// @ts-ignore: decorator
@inline
function tileI16(
  pairs: i32, a0: usize, a1: usize, a2: usize, a3: usize, bp: usize,
  c0: usize, c1: usize, c2: usize, c3: usize, r0: i32, r1: i32, r2: i32, r3: i32, j: i32,
  sc: usize,
): void {
  let x00 = i32x4.splat(0), x01 = x00, x10 = x00, x11 = x00;
  let x20 = x00, x21 = x00, x30 = x00, x31 = x00;
  // two pairs per iteration (half the pointer and loop overhead), then the odd one
  const end2 = a0 + (<usize>(pairs & ~1) << 2);
  while (a0 < end2) {
    let b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let va = v128.load32_splat(a0);
    x00 = i32x4.add(x00, i32x4.dot_i16x8_s(va, b0));
    x01 = i32x4.add(x01, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a1);
    x10 = i32x4.add(x10, i32x4.dot_i16x8_s(va, b0));
    x11 = i32x4.add(x11, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a2);
    x20 = i32x4.add(x20, i32x4.dot_i16x8_s(va, b0));
    x21 = i32x4.add(x21, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a3);
    x30 = i32x4.add(x30, i32x4.dot_i16x8_s(va, b0));
    x31 = i32x4.add(x31, i32x4.dot_i16x8_s(va, b1));
    b0 = v128.load(bp, 32);
    b1 = v128.load(bp, 48);
    va = v128.load32_splat(a0, 4);
    x00 = i32x4.add(x00, i32x4.dot_i16x8_s(va, b0));
    x01 = i32x4.add(x01, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a1, 4);
    x10 = i32x4.add(x10, i32x4.dot_i16x8_s(va, b0));
    x11 = i32x4.add(x11, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a2, 4);
    x20 = i32x4.add(x20, i32x4.dot_i16x8_s(va, b0));
    x21 = i32x4.add(x21, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a3, 4);
    x30 = i32x4.add(x30, i32x4.dot_i16x8_s(va, b0));
    x31 = i32x4.add(x31, i32x4.dot_i16x8_s(va, b1));
    a0 += 8; a1 += 8; a2 += 8; a3 += 8;
    bp += 64;
  }
  const end = end2 + (<usize>(pairs & 1) << 2);
  while (a0 < end) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let va = v128.load32_splat(a0);
    x00 = i32x4.add(x00, i32x4.dot_i16x8_s(va, b0));
    x01 = i32x4.add(x01, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a1);
    x10 = i32x4.add(x10, i32x4.dot_i16x8_s(va, b0));
    x11 = i32x4.add(x11, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a2);
    x20 = i32x4.add(x20, i32x4.dot_i16x8_s(va, b0));
    x21 = i32x4.add(x21, i32x4.dot_i16x8_s(va, b1));
    va = v128.load32_splat(a3);
    x30 = i32x4.add(x30, i32x4.dot_i16x8_s(va, b0));
    x31 = i32x4.add(x31, i32x4.dot_i16x8_s(va, b1));
    a0 += 4; a1 += 4; a2 += 4; a3 += 4;
    bp += 32;
  }
  storeRow8(c0, scaled(x00, sc, r0), scaled(x01, sc, r0), r0, j, true);
  storeRow8(c1, scaled(x10, sc, r1), scaled(x11, sc, r1), r1, j, true);
  storeRow8(c2, scaled(x20, sc, r2), scaled(x21, sc, r2), r2, j, true);
  storeRow8(c3, scaled(x30, sc, r3), scaled(x31, sc, r3), r3, j, true);
}

/** f32(f64(x)·f64(scale[row])) per lane (sc = 0: f32(x)). */
// @ts-ignore: decorator
@inline
function scaled(x: v128, sc: usize, row: i32): v128 {
  const f = f32x4.convert_i32x4_s(x);
  if (sc == 0) return f;
  // |x| < 2^24 in every lane: f32(x) is exact, and one f32 multiply rounds the exact product
  // once, as the f64 route below does (the common case: 2 instructions instead of 8).
  if (!v128.any_true(i32x4.gt_u(i32x4.add(x, i32x4.splat(1 << 24)), i32x4.splat(1 << 25)))) {
    return f32x4.mul(f, v128.load32_splat(sc + (<usize>row << 2)));
  }
  const s = f64x2.splat(<f64>load<f32>(sc + (<usize>row << 2)));
  const lo = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.convert_low_i32x4_s(x), s));
  const hi = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.convert_low_i32x4_s(v128.shuffle<i32>(x, x, 2, 3, 2, 3)), s));
  return v128.shuffle<f32>(lo, hi, 0, 1, 4, 5);
}

/**
 * C[r][j] = epilogue(Σ_k w[r][k]·x[k][j]) for rows [0, m) and columns [0, pn) of the i16 panels
 * at `b` (panelsToI16), weights `a` (rows of `kp` i16), C rows `ldc` floats apart. `tmp`: 128
 * bytes for the column tail. The epilogue is the one setEpilogue configured (rows: channels).
 */
export function gemmI16(m: i32, pn: i32, kp: i32, a: usize, b: usize, c: usize, ldc: i32, tmp: usize): void {
  // The scale is applied here (in f64), so the epilogue runs without it, then is restored.
  const flags = epiFlags, scale = epiScale, bias = epiBias, lo = epiLo, hi = epiHi;
  const post = epiPost, pm = epiPostMul, pa = epiPostAdd;
  const sc = flags & EPI_SCALE ? scale : 0;
  setEpilogue(flags & ~EPI_SCALE, scale, bias, lo, hi);
  setEpiloguePost(post, pm, pa);
  gemmI16Tiles(m, pn, kp, a, b, c, ldc, tmp, sc);
  setEpilogue(flags, scale, bias, lo, hi);
  setEpiloguePost(post, pm, pa);
}

function gemmI16Tiles(m: i32, pn: i32, kp: i32, a: usize, b: usize, c: usize, ldc: i32, tmp: usize, sc: usize): void {
  const pairs = kp >> 1;
  const rowBytes = <usize>kp << 1, panelStride = <usize>kp << 4;
  for (let i = 0; i < m; i += 4) {
    const mr = min(4, m - i);
    const r0 = i, r1 = i + min(1, mr - 1), r2 = i + min(2, mr - 1), r3 = i + min(3, mr - 1);
    const a0 = a + <usize>r0 * rowBytes, a1 = a + <usize>r1 * rowBytes;
    const a2 = a + <usize>r2 * rowBytes, a3 = a + <usize>r3 * rowBytes;
    for (let j = 0; j < pn; j += 8) {
      const nr = min(8, pn - j);
      const bp = b + <usize>(j >> 3) * panelStride;
      if (nr == 8) {
        const cj = c + (<usize>j << 2);
        const c0 = cj + <usize>r0 * ldc * 4, c1 = cj + <usize>r1 * ldc * 4;
        const c2 = cj + <usize>r2 * ldc * 4, c3 = cj + <usize>r3 * ldc * 4;
        tileI16(pairs, a0, a1, a2, a3, bp, c0, c1, c2, c3, r0, r1, r2, r3, j, sc);
      } else {
        tileI16(pairs, a0, a1, a2, a3, bp, tmp, tmp + 32, tmp + 64, tmp + 96, r0, r1, r2, r3, j, sc);
        for (let r = 0; r < mr; r++) {
          memory.copy(c + (<usize>(i + r) * ldc + j) * 4, tmp + <usize>r * 32, <usize>nr * 4);
        }
      }
    }
  }
}

// *** i16 image → i16 pair panels (no f32 im2col) ***
// A single image is converted once into a zero-padded i16 copy (padImageI16, before the conv is
// split over threads), and each chunk's pair panels are gathered from it directly (im2colI16):
// per pair of taps, two 8-lane loads and two interleaves, instead of the f32 im2col plus the
// conversion of every gathered value.

/**
 * QuantizeLinear to centred codes as quantize_f32_centred computes them (min(max(nearest(v / s),
 * lo), hi)) when `q`, else v unchanged: the i16 images below quantize a float input on the way in
 * instead of in a pass of their own.
 */
// @ts-ignore: decorator
@inline
function quantIn(v: v128, q: bool, vs: v128, vlo: v128, vhi: v128): v128 {
  if (!q) return v;
  return f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.div(v, vs)), vlo), vhi);
}

// @ts-ignore: decorator
@inline
function quantIn1(v: f32, q: bool, s: f32, lo: f32, hi: f32): f32 {
  return q ? min<f32>(max<f32>(nearest<f32>(v / s), lo), hi) : v;
}

/** Zeroes n bytes at p (n even). */
// @ts-ignore: decorator
@inline
function zeroBytes(p: usize, n: usize): void {
  const end = p + n;
  for (; p + 16 <= end; p += 16) v128.store(p, i32x4.splat(0));
  for (; p < end; p += 2) store<i16>(p, 0);
}

/**
 * Zeroes the border of every plane of a padded image ([planes][ph][pw] elements of `eb` bytes,
 * the image's rows pt..pt+h−1 and columns pl..pl+w−1 left alone: they are written after).
 */
function zeroBorder(out: usize, planes: i32, h: i32, w: i32, pt: i32, pl: i32, ph: i32, pw: i32, eb: i32): void {
  const row = <usize>pw * eb;
  const right = <usize>(pw - pl - w) * eb;
  for (let pl0 = 0; pl0 < planes; pl0++) {
    const base = out + <usize>pl0 * <usize>ph * row;
    memory.fill(base, 0, <usize>pt * row);
    const below = <usize>(pt + h) * row;
    memory.fill(base + below, 0, <usize>ph * row - below);
    // the side margins are a few bytes a row: inline stores (a memory.fill call costs more)
    for (let y = pt; y < pt + h; y++) {
      const r = base + <usize>y * row;
      zeroBytes(r, <usize>pl * eb);
      zeroBytes(r + <usize>(pl + w) * eb, right);
    }
  }
}

/**
 * Writes image x [c, h, w] (f32) into `out` as a zero-padded i16 image [c, ph, pw] (row pt,
 * column pl). Returns false when any value is not an integer in [−32768, 32767] (NaN included):
 * the conv then runs on the f32 route.
 */
export function padImageI16(
  c: i32, h: i32, w: i32, pt: i32, pl: i32, ph: i32, pw: i32, x: usize, out: usize, qs: f32, qlo: f32, qhi: f32,
): bool {
  zeroBorder(out, c, h, w, pt, pl, ph, pw, 2);
  const q = qs != 0;
  const vs = f32x4.splat(qs), vlo = f32x4.splat(qlo), vhi = f32x4.splat(qhi);
  let bad = i32x4.splat(0);
  let badScalar = false;
  const off = i32x4.splat(32768), top = i32x4.splat(65535);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const src = x + (<usize>(ch * h + y) * w) * 4;
      const dst = out + (<usize>(ch * ph + y + pt) * pw + pl) * 2;
      let i = 0;
      for (; i + 8 <= w; i += 8) {
        const a0 = quantIn(v128.load(src + (<usize>i << 2)), q, vs, vlo, vhi);
        const a1 = quantIn(v128.load(src + (<usize>i << 2), 16), q, vs, vlo, vhi);
        const i0 = i32x4.trunc_sat_f32x4_s(a0), i1 = i32x4.trunc_sat_f32x4_s(a1);
        bad = v128.or(bad, v128.or(f32x4.ne(f32x4.convert_i32x4_s(i0), a0), f32x4.ne(f32x4.convert_i32x4_s(i1), a1)));
        bad = v128.or(bad, v128.or(i32x4.gt_u(i32x4.add(i0, off), top), i32x4.gt_u(i32x4.add(i1, off), top)));
        v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_s(i0, i1));
      }
      for (; i < w; i++) {
        const v = quantIn1(load<f32>(src + (<usize>i << 2)), q, qs, qlo, qhi);
        const iv = i32x4.extract_lane(i32x4.trunc_sat_f32x4_s(f32x4.splat(v)), 0);
        if (<f32>iv != v || iv < -32768 || iv > 32767) badScalar = true;
        store<i16>(dst + (<usize>i << 1), <i16>iv);
      }
    }
  }
  return !v128.any_true(bad) && !badScalar;
}

/** Eight i16 inputs of one tap: lanes at element offsets geo[l] + t (the general case). */
// @ts-ignore: decorator
/**
 * Stores at geo the padded-image offsets of 8 output pixels starting at (oy, ox), row-major over
 * rows of width ow; lanes past nr read offset 0 (their columns are discarded).
 */
@inline
function laneOffsets(
  geo: usize, nr: i32, oy: i32, ox: i32, ow: i32, sh: i32, sw: i32, pw: i32,
): void {
  let y = oy, xx = ox;
  for (let l = 0; l < 8; l++) {
    store<i32>(geo + (<usize>l << 2), l < nr ? y * sh * pw + xx * sw : 0);
    if (++xx == ow) {
      xx = 0;
      y++;
    }
  }
}

@inline
function gather8(x: usize, t: i32, geo: usize): v128 {
  let v = i16x8.splat(load<i16>(x + (<usize>(load<i32>(geo) + t) << 1)));
  v = i16x8.replace_lane(v, 1, load<i16>(x + (<usize>(load<i32>(geo, 4) + t) << 1)));
  v = i16x8.replace_lane(v, 2, load<i16>(x + (<usize>(load<i32>(geo, 8) + t) << 1)));
  v = i16x8.replace_lane(v, 3, load<i16>(x + (<usize>(load<i32>(geo, 12) + t) << 1)));
  v = i16x8.replace_lane(v, 4, load<i16>(x + (<usize>(load<i32>(geo, 16) + t) << 1)));
  v = i16x8.replace_lane(v, 5, load<i16>(x + (<usize>(load<i32>(geo, 20) + t) << 1)));
  v = i16x8.replace_lane(v, 6, load<i16>(x + (<usize>(load<i32>(geo, 24) + t) << 1)));
  v = i16x8.replace_lane(v, 7, load<i16>(x + (<usize>(load<i32>(geo, 28) + t) << 1)));
  return v;
}

/** Eight i16 inputs of one tap for 8 outputs of one row: stride 1 or 2 from `p`. */
// @ts-ignore: decorator
@inline
function row8(p: usize, sw: i32): v128 {
  if (sw == 1) return v128.load(p);
  return i8x16.shuffle(v128.load(p), v128.load(p, 16), 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
}

/**
 * The i16 pair panels (layout above) of output pixels [p0, p0 + pn) of one group (input
 * channels c0..c0+cg), gathered from the padded i16 image x16 [c, ph, pw] (padImageI16: every
 * tap is inside it). `geo`: 32 bytes of scratch for the lanes' element offsets.
 */
export function im2colI16(
  x16: usize, ph: i32, pw: i32, c0: i32, cg: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  ow: i32, p0: i32, pn: i32, out: usize, geo: usize,
): void {
  const k = cg * kh * kw, kp = (k + 1) & ~1;
  const plane = ph * pw;
  const base = x16 + (<usize>c0 * plane << 1);
  for (let q = 0; q < pn; q += 8) {
    const p = p0 + q;
    const nr = min(8, pn - q);
    let dst = out + <usize>(q >> 3) * (<usize>kp << 4);
    const oy = p / ow, ox = p % ow;
    const oneRow = nr == 8 && ox + 7 < ow && (sw == 1 || sw == 2);
    if (!oneRow) laneOffsets(geo, nr, oy, ox, ow, sh, sw, pw);
    const org = oy * sh * pw + ox * sw;
    let c = 0, ky = 0, kx = 0;
    for (let kk = 0; kk < k; kk += 2) {
      // tap kk, then kk + 1 (zero past K)
      let t = c * plane + ky * dh * pw + kx * dw;
      const a = oneRow ? row8(base + (<usize>(org + t) << 1), sw) : gather8(base, t, geo);
      if (++kx == kw) {
        kx = 0;
        if (++ky == kh) {
          ky = 0;
          c++;
        }
      }
      let b = i16x8.splat(0);
      if (kk + 1 < k) {
        t = c * plane + ky * dh * pw + kx * dw;
        b = oneRow ? row8(base + (<usize>(org + t) << 1), sw) : gather8(base, t, geo);
        if (++kx == kw) {
          kx = 0;
          if (++ky == kh) {
            ky = 0;
            c++;
          }
        }
      }
      v128.store(dst, i8x16.shuffle(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
      v128.store(dst, i8x16.shuffle(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
      dst += 32;
    }
  }
}

// *** channel-pair layout (3×3 and other non-pointwise dense convs with an even channel count) ***
// The integer sums are exact, so K may be summed in any order: with K ordered (ky, kx, c) and
// the padded image stored as channel pairs [c/2][ph][pw][2] (conv2dPadI16Pairs), the pair
// (x[c][pixel], x[c+1][pixel]) of a tap is 4 contiguous bytes, and the 8 pixels of a panel row
// in one output row (stride 1) are 32 contiguous bytes: exactly a pair row of the panel. The
// weights come in the same K order (prepareConv2dF32's pair copy).

/**
 * Writes image x [c, h, w] (f32, c even) into `out` as zero-padded i16 channel pairs
 * [c/2, ph, pw, 2] (row pt, column pl). Returns false when any value is not an integer in
 * [−32768, 32767] (NaN included): the conv then runs on another route.
 */
export function padImageI16Pairs(
  c: i32, h: i32, w: i32, pt: i32, pl: i32, ph: i32, pw: i32, x: usize, out: usize, qs: f32, qlo: f32, qhi: f32,
): bool {
  zeroBorder(out, c >> 1, h, w, pt, pl, ph, pw, 4);
  const q = qs != 0;
  const vs = f32x4.splat(qs), vlo = f32x4.splat(qlo), vhi = f32x4.splat(qhi);
  let bad = i32x4.splat(0);
  let badScalar = false;
  const off = i32x4.splat(32768), top = i32x4.splat(65535);
  const hw = <usize>h * w;
  for (let cp = 0; cp < (c >> 1); cp++) {
    for (let y = 0; y < h; y++) {
      const s0 = x + ((<usize>(2 * cp) * hw + <usize>y * w) << 2), s1 = s0 + (hw << 2);
      const dst = out + ((<usize>(cp * ph + y + pt) * pw + pl) << 2);
      let i = 0;
      for (; i + 8 <= w; i += 8) {
        const a0 = quantIn(v128.load(s0 + (<usize>i << 2)), q, vs, vlo, vhi);
        const a1 = quantIn(v128.load(s0 + (<usize>i << 2), 16), q, vs, vlo, vhi);
        const b0 = quantIn(v128.load(s1 + (<usize>i << 2)), q, vs, vlo, vhi);
        const b1 = quantIn(v128.load(s1 + (<usize>i << 2), 16), q, vs, vlo, vhi);
        const ia0 = i32x4.trunc_sat_f32x4_s(a0), ia1 = i32x4.trunc_sat_f32x4_s(a1);
        const ib0 = i32x4.trunc_sat_f32x4_s(b0), ib1 = i32x4.trunc_sat_f32x4_s(b1);
        bad = v128.or(bad, v128.or(f32x4.ne(f32x4.convert_i32x4_s(ia0), a0), f32x4.ne(f32x4.convert_i32x4_s(ia1), a1)));
        bad = v128.or(bad, v128.or(f32x4.ne(f32x4.convert_i32x4_s(ib0), b0), f32x4.ne(f32x4.convert_i32x4_s(ib1), b1)));
        bad = v128.or(bad, v128.or(i32x4.gt_u(i32x4.add(ia0, off), top), i32x4.gt_u(i32x4.add(ia1, off), top)));
        bad = v128.or(bad, v128.or(i32x4.gt_u(i32x4.add(ib0, off), top), i32x4.gt_u(i32x4.add(ib1, off), top)));
        const ra = i16x8.narrow_i32x4_s(ia0, ia1), rb = i16x8.narrow_i32x4_s(ib0, ib1);
        const d = dst + (<usize>i << 2);
        v128.store(d, i8x16.shuffle(ra, rb, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
        v128.store(d, i8x16.shuffle(ra, rb, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
      }
      for (; i < w; i++) {
        for (let j = 0; j < 2; j++) {
          const v = quantIn1(load<f32>((j == 0 ? s0 : s1) + (<usize>i << 2)), q, qs, qlo, qhi);
          const iv = i32x4.extract_lane(i32x4.trunc_sat_f32x4_s(f32x4.splat(v)), 0);
          if (<f32>iv != v || iv < -32768 || iv > 32767) badScalar = true;
          store<i16>(dst + (<usize>i << 2) + (<usize>j << 1), <i16>iv);
        }
      }
    }
  }
  return !v128.any_true(bad) && !badScalar;
}

/**
 * The i16 pair panels of output pixels [p0, p0 + pn) of one group (input channels c0..c0+cg,
 * c0 and cg even), K ordered (ky, kx, c), from the channel-pair image x16 [c/2, ph, pw, 2]
 * (padImageI16Pairs: every tap is inside it). `geo`: 32 bytes of scratch for the lanes' pixel
 * offsets.
 */
export function im2colI16Pairs(
  x16: usize, ph: i32, pw: i32, c0: i32, cg: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  ow: i32, p0: i32, pn: i32, out: usize, geo: usize,
): void {
  const k = cg * kh * kw;
  const cps = cg >> 1;
  const planeBytes = (<usize>ph * pw) << 2;
  const base = x16 + <usize>(c0 >> 1) * planeBytes;
  for (let q = 0; q < pn; q += 8) {
    const p = p0 + q;
    const nr = min(8, pn - q);
    let dst = out + <usize>(q >> 3) * (<usize>k << 4);
    const oy = p / ow, ox = p % ow;
    const oneRow = nr == 8 && ox + 7 < ow && (sw == 1 || sw == 2);
    if (!oneRow) laneOffsets(geo, nr, oy, ox, ow, sh, sw, pw);
    const org = oy * sh * pw + ox * sw;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const t = ky * dh * pw + kx * dw;
        if (oneRow) {
          let src = base + (<usize>(org + t) << 2);
          if (sw == 1) {
            for (let cp = 0; cp < cps; cp++) {
              v128.store(dst, v128.load(src));
              v128.store(dst, v128.load(src, 16), 16);
              src += planeBytes;
              dst += 32;
            }
          } else {
            for (let cp = 0; cp < cps; cp++) {
              const a = v128.load(src), b = v128.load(src, 16);
              const cc = v128.load(src, 32), d = v128.load(src, 48);
              v128.store(dst, v128.shuffle<i32>(a, b, 0, 2, 4, 6));
              v128.store(dst, v128.shuffle<i32>(cc, d, 0, 2, 4, 6), 16);
              src += planeBytes;
              dst += 32;
            }
          }
          continue;
        }
        let src = base + (<usize>t << 2);
        for (let cp = 0; cp < cps; cp++) {
          let lo = i32x4.splat(load<i32>(src + (<usize>load<i32>(geo) << 2)));
          lo = i32x4.replace_lane(lo, 1, load<i32>(src + (<usize>load<i32>(geo, 4) << 2)));
          lo = i32x4.replace_lane(lo, 2, load<i32>(src + (<usize>load<i32>(geo, 8) << 2)));
          lo = i32x4.replace_lane(lo, 3, load<i32>(src + (<usize>load<i32>(geo, 12) << 2)));
          let hi = i32x4.splat(load<i32>(src + (<usize>load<i32>(geo, 16) << 2)));
          hi = i32x4.replace_lane(hi, 1, load<i32>(src + (<usize>load<i32>(geo, 20) << 2)));
          hi = i32x4.replace_lane(hi, 2, load<i32>(src + (<usize>load<i32>(geo, 24) << 2)));
          hi = i32x4.replace_lane(hi, 3, load<i32>(src + (<usize>load<i32>(geo, 28) << 2)));
          v128.store(dst, lo);
          v128.store(dst, hi, 16);
          src += planeBytes;
          dst += 32;
        }
      }
    }
  }
}
