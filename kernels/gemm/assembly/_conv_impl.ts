// Conv2d (NCHW input, OIHW weight) as im2col + GEMM, and a direct depthwise kernel.
// Generic over the multiply-add marker V (see _float_common.ts). Never built on its own.
//
// *** summation order (the contract with reference_float.ts) ***
// For output (o, oy, ox): acc = +0; for c in the group's input channels, for ky, for kx (in that
// order): acc = madd(w[o][c][ky][kx], x, acc) where x = input[c][oy·sh − pt + ky·dh][ox·sw − pl +
// kx·dw], or +0 outside the image (padding taps are accumulated, not skipped); then
// out = min(max(acc + bias[o], lo), hi). The GEMM path (K = (c, ky, kx) row-major, the OIHW
// order) and the depthwise path (one channel) give the same bits.

import { madd, epi, epiFlags, setEpilogue, epiScale, epiBias, epiLo, epiHi, EPI_BIAS, EPI_SCALE } from "./_float_common";
import { EPI_DYADIC, DYADIC_RECORD } from "./_float_common";
import { epiPost, epiPostMul, epiPostAdd, setEpiloguePost, epiW16, epiX16, epiPairs } from "./_float_common";
import { gemmI16, im2colI16, padImageI16, panelsToI16, im2colI16Pairs, padImageI16Pairs, pointwiseToI16 } from "./_conv_int";
import { gemmF32 } from "./_float_gemm_impl";

/** Spatial columns per im2col chunk so that one chunk (K × chunk floats) is about 256 KiB. */
export function convChunk(k: i32, p: i32): i32 {
  let ch = ((65536 / max(k, 1)) >> 3) << 3;
  if (ch < 8) ch = 8;
  if (ch > ((p + 7) >> 3) << 3) ch = ((p + 7) >> 3) << 3;
  return ch;
}

/**
 * im2col of the spatial positions [p0, p0 + pn) of one group (channels c0..c0+cg) into packed
 * panels of 8 positions (the packed-B layout of _float_gemm_impl.ts, K = cg·kh·kw). `geo`: 64
 * bytes of scratch for the per-lane input origins of a panel.
 */
function im2colPanels(
  x: usize, h: i32, w: i32, c0: i32, cg: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  ow: i32, p0: i32, pn: i32, out: usize, geo: usize,
): void {
  const k = cg * kh * kw;
  const hw = <usize>h * w;
  // (output pixel p is input pixel p when the rows are as wide, no right padding, and p is inside
  // the image, no bottom padding)
  const direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && ow == w;
  for (let q = 0; q < pn; q += 8) {
    const p = p0 + q;
    const nr = min(8, pn - q);
    let dst = out + <usize>(q >> 3) * (<usize>k << 5);
    if (direct && nr == 8 && <usize>(p + 8) <= hw) {
      let src = x + (<usize>c0 * hw + p) * 4;
      for (let c = 0; c < cg; c++) {
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        dst += 32;
        src += hw << 2;
      }
      continue;
    }
    // per-lane input origins (iy0, ix0); lanes past nr get an origin far outside the image
    let oy = p / ow, ox = p % ow;
    for (let l = 0; l < 8; l++) {
      const valid = l < nr;
      store<i32>(geo + (<usize>l << 3), valid ? oy * sh - pt : -0x40000000);
      store<i32>(geo + (<usize>l << 3) + 4, valid ? ox * sw - pl : -0x40000000);
      if (++ox == ow) {
        ox = 0;
        oy++;
      }
    }
    const iy0 = load<i32>(geo), ix0 = load<i32>(geo + 4);
    // all 8 positions in one output row: the taps are rows of stride-sw neighbours
    const oneRow = nr == 8 && p % ow + 7 < ow && (sw == 1 || sw == 2);
    for (let c = 0; c < cg; c++) {
      const xc = x + <usize>(c0 + c) * hw * 4;
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          if (oneRow) {
            const iy = iy0 + ky * dh;
            const ix = ix0 + kx * dw;
            if (iy >= 0 && iy < h && ix >= 0 && ix + 8 * sw <= w) {
              const src = xc + (<usize>iy * w + ix) * 4;
              if (sw == 1) {
                v128.store(dst, v128.load(src));
                v128.store(dst, v128.load(src, 16), 16);
              } else {
                const a = v128.load(src), b = v128.load(src, 16);
                const cc = v128.load(src, 32), d = v128.load(src, 48);
                v128.store(dst, i8x16.shuffle(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27));
                v128.store(dst, i8x16.shuffle(cc, d, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), 16);
              }
              dst += 32;
              continue;
            }
          }
          const oyk = ky * dh, oxk = kx * dw;
          for (let l = 0; l < 8; l++) {
            const iy = load<i32>(geo + (<usize>l << 3)) + oyk;
            const ix = load<i32>(geo + (<usize>l << 3) + 4) + oxk;
            let v: f32 = 0;
            if (<u32>iy < <u32>h && <u32>ix < <u32>w) v = load<f32>(xc + (<usize>iy * w + ix) * 4);
            store<f32>(dst + (<usize>l << 2), v);
          }
          dst += 32;
        }
      }
    }
  }
}

/** Height and width of the zero-padded input image conv2dF32 works on (0 when no padding). */
// @ts-ignore: decorator
@inline
function convPadH(h: i32, oh: i32, kh: i32, sh: i32, dh: i32, pt: i32): i32 {
  return max(h + pt, (oh - 1) * sh + (kh - 1) * dh + 1);
}
// @ts-ignore: decorator
@inline
function convPadW(w: i32, ow: i32, kw: i32, sw: i32, dw: i32, pl: i32): i32 {
  // + 8: slack so that the stride-2 row copy of im2col (16 floats) stays in the row
  return max(w + pl, (ow - 1) * sw + (kw - 1) * dw + 1) + 8;
}
// @ts-ignore: decorator
@inline
function convNeedsPad(h: i32, w: i32, oh: i32, ow: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32): bool {
  return pt > 0 || pl > 0 || (oh - 1) * sh + (kh - 1) * dh + 1 > h || (ow - 1) * sw + (kw - 1) * dw + 1 > w;
}

/**
 * Bytes of scratch conv2dF32 needs: one im2col chunk, the 128-byte tile buffer, 64 bytes of
 * lane geometry, and (when the conv pads) one zero-padded copy of the input image.
 */
export function conv2dScratchBytes(
  c: i32, h: i32, w: i32, cg: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32,
): usize {
  const k = cg * kh * kw;
  const p = oh * ow;
  let bytes = <usize>convChunk(k, p) * <usize>k * 4 + 192;
  if (convNeedsPad(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)) {
    bytes += <usize>c * <usize>convPadH(h, oh, kh, sh, dh, pt) * <usize>convPadW(w, ow, kw, sw, dw, pl) * 4;
  }
  return bytes;
}

/**
 * Conv2d over `batch` images: x [batch, c, h, w], wt [o, c/groups, kh, kw], out [batch, o, oh, ow].
 * Epilogue flags (bias, clamp) from setEpilogue(); bias is per output channel. A padded conv first
 * copies each image into a zero-padded one, so that im2col copies whole rows without bounds
 * checks (the padding taps then read +0 from memory: the same values, the same order).
 */
export function conv2dF32<V>(
  batch: i32, c: i32, h: i32, w: i32, o: i32, groups: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize,
): void {
  const cg = c / groups, og = o / groups;
  const k = cg * kh * kw;
  const p = oh * ow;
  const chunk = convChunk(k, p);
  const tmp = scratch + <usize>chunk * <usize>k * 4;
  const geo = tmp + 128;
  const padded = geo + 64;
  const pad = convNeedsPad(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl);
  const ph = pad ? convPadH(h, oh, kh, sh, dh, pt) : h;
  const pw = pad ? convPadW(w, ow, kw, sw, dw, pl) : w;
  const flags = epiFlags, bias = epiBias, lo = epiLo, hi = epiHi, sc = epiScale;
  for (let n = 0; n < batch; n++) {
    let xn = x + <usize>n * c * h * w * 4;
    if (pad) {
      padImage(c, h, w, pt, pl, ph, pw, xn, padded);
      xn = padded;
    }
    for (let g = 0; g < groups; g++) {
      setEpilogue(flags, sc + <usize>g * og * 4, bias + <usize>g * og * 4, lo, hi);
      const a = wt + <usize>g * og * k * 4;
      const cOut = out + (<usize>n * o + <usize>g * og) * p * 4;
      for (let p0 = 0; p0 < p; p0 += chunk) {
        const pn = min(chunk, p - p0);
        im2colPanels(xn, ph, pw, g * cg, cg, kh, kw, sh, sw, dh, dw, pad ? 0 : pt, pad ? 0 : pl, ow, p0, pn, scratch, geo);
        gemmF32<V>(0, pn, og, k, a, k, scratch, cOut + (<usize>p0 << 2), p, tmp);
      }
    }
  }
  setEpilogue(flags, sc, bias, lo, hi);
}

// *** depthwise ***

/** Padded-plane geometry shared by dwconvScratchBytes and dwconv2dF32. */
// @ts-ignore: decorator
@inline
function padW(ow: i32, kw: i32, sw: i32, dw: i32): i32 {
  const ow4 = (ow + 3) & ~3;
  return (ow4 - 1) * sw + (kw - 1) * dw + 9;
}
// @ts-ignore: decorator
@inline
function padH(oh: i32, kh: i32, sh: i32, dh: i32): i32 {
  return (oh - 1) * sh + (kh - 1) * dh + 1;
}

/** Bytes of scratch dwconv2dF32 needs: one zero-padded input plane plus one output row (its
 * sums, before the epilogue), rounded up to 8 columns. */
export function dwconvScratchBytes(oh: i32, ow: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32): usize {
  return <usize>padH(oh, kh, sh, dh) * <usize>padW(ow, kw, sw, dw) * 4 + (<usize>((ow + 7) & ~7) << 2);
}

/** Zeroes n floats at p. */
// @ts-ignore: decorator
@inline
function zeroF32(p: usize, n: usize): void {
  const end = p + (n << 2);
  for (; p + 16 <= end; p += 16) v128.store(p, i32x4.splat(0));
  for (; p < end; p += 4) store<f32>(p, 0);
}

/** Copies n floats from src to dst (no overlap). */
// @ts-ignore: decorator
@inline
function copyF32(dst: usize, src: usize, n: usize): void {
  const end = src + (n << 2);
  for (; src + 16 <= end; src += 16, dst += 16) v128.store(dst, v128.load(src));
  for (; src < end; src += 4, dst += 4) store<f32>(dst, load<f32>(src));
}

/** Four inputs at padded row `row`, columns x, x+sw, x+2sw, x+3sw. */
// @ts-ignore: decorator
@inline
function load4(row: usize, x: i32, sw: i32): v128 {
  if (sw == 1) return v128.load(row + (<usize>x << 2));
  if (sw == 2) {
    const lo = v128.load(row + (<usize>x << 2));
    const hi = v128.load(row + (<usize>x << 2), 16);
    return i8x16.shuffle(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  }
  let v = f32x4.splat(load<f32>(row + (<usize>x << 2)));
  v = f32x4.replace_lane(v, 1, load<f32>(row + (<usize>(x + sw) << 2)));
  v = f32x4.replace_lane(v, 2, load<f32>(row + (<usize>(x + 2 * sw) << 2)));
  v = f32x4.replace_lane(v, 3, load<f32>(row + (<usize>(x + 3 * sw) << 2)));
  return v;
}

/**
 * One channel of dwconv2dF32 from its zero-padded plane at `scratch` (rows rowBytes apart) into
 * `oc` [oh, ow], weights at `wc`, row buffer `rb`. Inlined for stride 1 and 2 without dilation and
 * for the rest, so that the loads' stride tests and the taps' column offsets fold into constants.
 */
// @ts-ignore: decorator
@inline
function dwPlane<V>(
  scratch: usize, rowBytes: usize, rb: usize, oc: usize, wc: usize,
  oh: i32, ow: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, sv: v128, bv: v128,
): void {
  if (kh == 3 && kw == 3) {
    // 3×3: the nine weights stay in registers, 8 outputs (two chains) a step
    const wq = wc;
    const w0 = v128.load32_splat(wq), w1 = v128.load32_splat(wq, 4), w2 = v128.load32_splat(wq, 8);
    const w3 = v128.load32_splat(wq, 12), w4 = v128.load32_splat(wq, 16), w5 = v128.load32_splat(wq, 20);
    const w6 = v128.load32_splat(wq, 24), w7 = v128.load32_splat(wq, 28), w8 = v128.load32_splat(wq, 32);
    const dRow = <usize>dh * rowBytes;
    for (let oy = 0; oy < oh; oy++) {
      const prow = scratch + <usize>(oy * sh) * rowBytes;
      const orow = oc + <usize>oy * ow * 4;
      let ox = 0;
      {
        // two independent accumulators (8 outputs) per step: twice the FMA chains in flight
        for (; ox + 8 <= ow; ox += 8) {
          const xa = ox * sw, xb = xa + 4 * sw;
          let p = f32x4.splat(0), q = p;
          p = madd<V>(w0, load4(prow, xa, sw), p);
          q = madd<V>(w0, load4(prow, xb, sw), q);
          p = madd<V>(w1, load4(prow, xa + dw, sw), p);
          q = madd<V>(w1, load4(prow, xb + dw, sw), q);
          p = madd<V>(w2, load4(prow, xa + 2 * dw, sw), p);
          q = madd<V>(w2, load4(prow, xb + 2 * dw, sw), q);
          p = madd<V>(w3, load4(prow + dRow, xa, sw), p);
          q = madd<V>(w3, load4(prow + dRow, xb, sw), q);
          p = madd<V>(w4, load4(prow + dRow, xa + dw, sw), p);
          q = madd<V>(w4, load4(prow + dRow, xb + dw, sw), q);
          p = madd<V>(w5, load4(prow + dRow, xa + 2 * dw, sw), p);
          q = madd<V>(w5, load4(prow + dRow, xb + 2 * dw, sw), q);
          p = madd<V>(w6, load4(prow + 2 * dRow, xa, sw), p);
          q = madd<V>(w6, load4(prow + 2 * dRow, xb, sw), q);
          p = madd<V>(w7, load4(prow + 2 * dRow, xa + dw, sw), p);
          q = madd<V>(w7, load4(prow + 2 * dRow, xb + dw, sw), q);
          p = madd<V>(w8, load4(prow + 2 * dRow, xa + 2 * dw, sw), p);
          q = madd<V>(w8, load4(prow + 2 * dRow, xb + 2 * dw, sw), q);
          v128.store(orow + (<usize>ox << 2), epi(p, sv, bv));
          v128.store(orow + (<usize>ox << 2), epi(q, sv, bv), 16);
        }
      }
      const ox0 = ox; // from here: sums to the row buffer, the epilogue after the row
      for (; ox < ow; ox += 4) {
        let acc = f32x4.splat(0);
        {
          const xx = ox * sw;
          acc = madd<V>(w0, load4(prow, xx, sw), acc);
          acc = madd<V>(w1, load4(prow, xx + dw, sw), acc);
          acc = madd<V>(w2, load4(prow, xx + 2 * dw, sw), acc);
          acc = madd<V>(w3, load4(prow + dRow, xx, sw), acc);
          acc = madd<V>(w4, load4(prow + dRow, xx + dw, sw), acc);
          acc = madd<V>(w5, load4(prow + dRow, xx + 2 * dw, sw), acc);
          acc = madd<V>(w6, load4(prow + 2 * dRow, xx, sw), acc);
          acc = madd<V>(w7, load4(prow + 2 * dRow, xx + dw, sw), acc);
          acc = madd<V>(w8, load4(prow + 2 * dRow, xx + 2 * dw, sw), acc);
        }
        v128.store(rb + (<usize>ox << 2), acc);
      }
      let j = ox0;
      for (; j + 4 <= ow; j += 4) {
        v128.store(orow + (<usize>j << 2), epi(v128.load(rb + (<usize>j << 2)), sv, bv));
      }
      if (j < ow) {
        v128.store(rb + (<usize>j << 2), epi(v128.load(rb + (<usize>j << 2)), sv, bv));
        copyF32(orow + (<usize>j << 2), rb + (<usize>j << 2), <usize>(ow - j));
      }
    }
    return;
  }
  const ow4 = (ow + 3) & ~3;
  const step = <usize>(4 * sw) << 2;
  for (let oy = 0; oy < oh; oy++) {
    const prow = scratch + <usize>(oy * sh) * rowBytes;
    const orow = oc + <usize>oy * ow * 4;
    let ox = 0;
    // 16 outputs (four independent chains) a step over every tap: the per-tap work (weight
    // splat, addresses) is shared by the chains, and the chains overlap. Each output still
    // sums its taps in (ky, kx) order from 0: the same bits.
    for (; ox + 16 <= ow; ox += 16) {
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      let wp = wc;
      const xo = <usize>(ox * sw) << 2;
      for (let ky = 0; ky < kh; ky++) {
        const r = prow + <usize>(ky * dh) * rowBytes + xo;
        for (let kx = 0; kx < kw; kx++) {
          const wv = v128.load32_splat(wp);
          const q = r + (<usize>(kx * dw) << 2);
          a0 = madd<V>(wv, load4(q, 0, sw), a0);
          a1 = madd<V>(wv, load4(q + step, 0, sw), a1);
          a2 = madd<V>(wv, load4(q + 2 * step, 0, sw), a2);
          a3 = madd<V>(wv, load4(q + 3 * step, 0, sw), a3);
          wp += 4;
        }
      }
      const o = orow + (<usize>ox << 2);
      v128.store(o, epi(a0, sv, bv));
      v128.store(o, epi(a1, sv, bv), 16);
      v128.store(o, epi(a2, sv, bv), 32);
      v128.store(o, epi(a3, sv, bv), 48);
    }
    if (ox == ow) continue;
    // The rest of the row (1 to 4 vectors, the last maybe partial) as four chains too, the
    // surplus ones repeating the last vector (columns below ow4: inside the padded plane),
    // sums to the row buffer, then the epilogue over them (its long dependent chain then
    // overlaps across the vectors).
    const last = <usize>((ow4 - ox) >> 2) - 1;
    const s1 = min<usize>(1, last) * step, s2 = min<usize>(2, last) * step, s3 = last * step;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let wp = wc;
    const xo = <usize>(ox * sw) << 2;
    for (let ky = 0; ky < kh; ky++) {
      const r = prow + <usize>(ky * dh) * rowBytes + xo;
      for (let kx = 0; kx < kw; kx++) {
        const wv = v128.load32_splat(wp);
        const q = r + (<usize>(kx * dw) << 2);
        a0 = madd<V>(wv, load4(q, 0, sw), a0);
        a1 = madd<V>(wv, load4(q + s1, 0, sw), a1);
        a2 = madd<V>(wv, load4(q + s2, 0, sw), a2);
        a3 = madd<V>(wv, load4(q + s3, 0, sw), a3);
        wp += 4;
      }
    }
    const rt = rb + (<usize>ox << 2);
    v128.store(rt, a0);
    v128.store(rt + (min<usize>(1, last) << 4), a1);
    v128.store(rt + (min<usize>(2, last) << 4), a2);
    v128.store(rt + (last << 4), a3);
    let j = ox;
    for (; j + 4 <= ow; j += 4) {
      v128.store(orow + (<usize>j << 2), epi(v128.load(rb + (<usize>j << 2)), sv, bv));
    }
    if (j < ow) {
      v128.store(rb + (<usize>j << 2), epi(v128.load(rb + (<usize>j << 2)), sv, bv));
      copyF32(orow + (<usize>j << 2), rb + (<usize>j << 2), <usize>(ow - j));
    }
  }
}

/**
 * Depthwise conv (groups = channels = output channels): x [batch, c, h, w], wt [c, 1, kh, kw],
 * out [batch, c, oh, ow]. Each channel is copied into a zero-padded plane in `scratch`, then every
 * output is computed 4 columns at a time. Epilogue from setEpilogue() (bias per channel, clamp).
 * 3×3: 8 columns a step (two chains, the nine weights in registers), the epilogue applied as they
 * are stored. Other kernels: 16 columns a step (four chains sharing each tap's weight splat and
 * addresses), the row's rest as four more chains whose sums go to a row buffer, the epilogue run
 * over it afterwards (its long dependent chain then overlaps across the vectors). Every output
 * sums its taps in (ky, kx) order from 0 whatever the path: the same bits. The plane is built
 * with inline loops (memory.fill / memory.copy calls per short row cost more than the copy), and
 * the loops are inlined per stride (1 and 2 without dilation, the rest) so that the loads'
 * stride tests and the taps' offsets fold into constants (dwPlane).
 */
export function dwconv2dF32<V>(
  batch: i32, c: i32, h: i32, w: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize,
): void {
  const ph = padH(oh, kh, sh, dh), pw = padW(ow, kw, sw, dw);
  const rowBytes = <usize>pw << 2;
  const rb = scratch + <usize>ph * rowBytes; // one row of sums, ow rounded up to 8
  const hasBias = (epiFlags & EPI_BIAS) != 0;
  const hasScale = (epiFlags & EPI_SCALE) != 0;
  for (let n = 0; n < batch; n++) {
    for (let ch = 0; ch < c; ch++) {
      const xc = x + (<usize>n * c + ch) * <usize>h * w * 4;
      // zero-padded plane: padded[y][xx] = x[y - pt][xx - pl] (only the border is zeroed: the
      // rows and columns outside the copied block)
      const y0 = max(0, pt), y1 = max(y0, min(ph, pt + h));
      const x0 = max(0, pl), x1 = max(x0, min(pw, pl + w));
      // (inline loops: a memory.fill / memory.copy call costs more than these short rows)
      zeroF32(scratch, <usize>y0 * pw);
      zeroF32(scratch + <usize>y1 * rowBytes, <usize>(ph - y1) * pw);
      for (let y = y0; y < y1; y++) {
        const row = scratch + <usize>y * rowBytes;
        zeroF32(row, <usize>x0);
        copyF32(row + (<usize>x0 << 2), xc + (<usize>(y - pt) * w + (x0 - pl)) * 4, <usize>(x1 - x0));
        zeroF32(row + (<usize>x1 << 2), <usize>(pw - x1));
      }
      const wc = wt + <usize>ch * kh * kw * 4;
      const bv = hasBias ? v128.load32_splat(epiBias + (<usize>ch << 2)) : f32x4.splat(0);
      const sv = hasScale ? v128.load32_splat(epiScale + (<usize>ch << 2)) : f32x4.splat(1);
      const oc = out + (<usize>n * c + ch) * <usize>oh * ow * 4;
      if (sw == 1 && dw == 1) dwPlane<V>(scratch, rowBytes, rb, oc, wc, oh, ow, kh, kw, sh, 1, dh, 1, sv, bv);
      else if (sw == 2 && dw == 1) dwPlane<V>(scratch, rowBytes, rb, oc, wc, oh, ow, kh, kw, sh, 2, dh, 1, sv, bv);
      else dwPlane<V>(scratch, rowBytes, rb, oc, wc, oh, ow, kh, kw, sh, sw, dh, dw, sv, bv);
    }
  }
}

// *** thread splits ***
// Threads run the entry points below over disjoint ranges [r0, r1) of output pixels (dense convs)
// or of channels (depthwise). The runner's ranges start at multiples of `align` and hold at most
// one block each, so r0 / align numbers the thread's private scratch. Every output is computed
// exactly as by conv2dF32 / dwconv2dF32 (same terms in the same order): results do not depend on
// the split. They also apply the post-ops of setEpiloguePost (fused HardSwish / scalar affine).

/** Bytes of the zero-padded image conv2dF32 works on (0 when the conv does not pad). */
export function conv2dPadBytes(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32,
): usize {
  if (!convNeedsPad(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)) return 0;
  return <usize>c * <usize>convPadH(h, oh, kh, sh, dh, pt) * <usize>convPadW(w, ow, kw, sw, dw, pl) * 4;
}

/** Bytes of the zero-padded i16 image of conv2dPadI16 ([c, ph, pw] i16, always padded). */
export function conv2dPadI16Bytes(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32,
): usize {
  return <usize>c * <usize>convPadH(h, oh, kh, sh, dh, pt) * <usize>convPadW(w, ow, kw, sw, dw, pl) * 2;
}

/**
 * Copies one image x [c, h, w] (f32) into the zero-padded i16 layout conv2dF32Pixels reads with
 * epiX16 (the conv2dF32 padded geometry, i16). With qs ≠ 0 each value is first quantized to a
 * centred code, min(max(nearest(v / qs), qlo), qhi), as quantize_f32_centred would (the input
 * itself is left as it is). Returns 1, or 0 when a value is not an integer in i16 range (then
 * the conv must run without epiX16, on the input quantized by quantize_f32_centred).
 */
export function conv2dPadI16(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, padded: usize, qs: f32, qlo: f32, qhi: f32,
): i32 {
  const ph = convPadH(h, oh, kh, sh, dh, pt), pw = convPadW(w, ow, kw, sw, dw, pl);
  return padImageI16(c, h, w, pt, pl, ph, pw, x, padded, qs, qlo, qhi) ? 1 : 0;
}

/**
 * conv2dPadI16 in the channel-pair layout (c even; padImageI16Pairs): conv2dF32Pixels reads it
 * with epiPairs set and weights in (ky, kx, c) order. Same bytes as conv2dPadI16Bytes, same
 * optional quantization (qs ≠ 0).
 */
export function conv2dPadI16Pairs(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, padded: usize, qs: f32, qlo: f32, qhi: f32,
): i32 {
  const ph = convPadH(h, oh, kh, sh, dh, pt), pw = convPadW(w, ow, kw, sw, dw, pl);
  return padImageI16Pairs(c, h, w, pt, pl, ph, pw, x, padded, qs, qlo, qhi) ? 1 : 0;
}

/** Copies one image x [c, h, w] into the zero-padded layout of conv2dF32 (when it pads). */
export function conv2dPadF32(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, padded: usize,
): void {
  if (!convNeedsPad(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)) return;
  const ph = convPadH(h, oh, kh, sh, dh, pt), pw = convPadW(w, ow, kw, sw, dw, pl);
  padImage(c, h, w, pt, pl, ph, pw, x, padded);
}

/** Writes image x [c, h, w] zero-padded into `padded` [c, ph, pw], at row pt, column pl. */
// @ts-ignore: decorator
@inline function padImage(
  c: i32, h: i32, w: i32, pt: i32, pl: i32, ph: i32, pw: i32, x: usize, padded: usize,
): void {
  const plane = <usize>ph * pw;
  memory.fill(padded, 0, <usize>c * plane * 4);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      memory.copy(
        padded + (<usize>ch * plane + <usize>(y + pt) * pw + pl) * 4,
        x + (<usize>ch * h * w + <usize>y * w) * 4,
        <usize>w << 2,
      );
    }
  }
}

/**
 * Bytes of one thread's scratch for conv2dF32Pixels: an im2col chunk, tile buffer, geometry, and
 * the chunk's i16 pair panels (the integer route, _conv_int.ts).
 */
export function conv2dPixelsScratchBytes(cg: i32, kh: i32, kw: i32, oh: i32, ow: i32): usize {
  const k = cg * kh * kw;
  const chunk = <usize>convChunk(k, oh * ow);
  return chunk * <usize>k * 4 + 192 + chunk * <usize>((k + 1) & ~1) * 2;
}

/**
 * Output pixels [p0, p1) of every output channel of ONE image (conv2dF32's loop body): `x` is
 * the image, padded by conv2dPadF32 when `padded` (and the conv pads), else the plain image
 * (im2col then checks bounds at the borders: the same values, no serial padding pass);
 * `out` the image's output [o, oh, ow]. Scratch: `scratch + (p0 / align) · stride`,
 * conv2dPixelsScratchBytes bytes.
 */
export function conv2dF32Pixels<V>(
  p0: i32, p1: i32, c: i32, h: i32, w: i32, o: i32, groups: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
  padded: bool,
): void {
  const cg = c / groups, og = o / groups;
  const k = cg * kh * kw;
  const p = oh * ow;
  const chunk = convChunk(k, p);
  const s = scratch + <usize>(p0 / align) * stride;
  const tmp = s + <usize>chunk * <usize>k * 4;
  const geo = tmp + 128;
  const pad = padded && convNeedsPad(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl);
  const ph = pad ? convPadH(h, oh, kh, sh, dh, pt) : h;
  const pw = pad ? convPadW(w, ow, kw, sw, dw, pl) : w;
  const flags = epiFlags, bias = epiBias, lo = epiLo, hi = epiHi, sc = epiScale;
  const post = epiPost, pm = epiPostMul, pa = epiPostAdd;
  const w16 = epiW16, kp = (k + 1) & ~1, p16 = geo + 64;
  const x16 = w16 != 0 ? epiX16 : 0;
  const ph16 = convPadH(h, oh, kh, sh, dh, pt), pw16 = convPadW(w, ow, kw, sw, dw, pl);
  const scStride = <usize>(flags & EPI_DYADIC ? DYADIC_RECORD : 4);
  // the integer route of a pointwise conv over the plain image (pixel p at x + p)
  const pointwise = w16 != 0 && x16 == 0 && !pad && kh == 1 && kw == 1 && sh == 1 && sw == 1 &&
    pt == 0 && pl == 0 && oh == h && ow == w;
  for (let g = 0; g < groups; g++) {
    setEpilogue(flags, sc + <usize>g * og * scStride, bias + <usize>g * og * 4, lo, hi);
    setEpiloguePost(post, pm, pa);
    const a = wt + <usize>g * og * k * 4;
    const cOut = out + <usize>g * og * p * 4;
    for (let q0 = p0; q0 < p1; q0 += chunk) {
      const pn = min(chunk, p1 - q0);
      if (x16 != 0) {
        // the image was checked and converted once (conv2dPadI16): gather the pairs from it
        if (epiPairs != 0) im2colI16Pairs(x16, ph16, pw16, g * cg, cg, kh, kw, sh, sw, dh, dw, ow, q0, pn, p16, geo);
        else im2colI16(x16, ph16, pw16, g * cg, cg, kh, kw, sh, sw, dh, dw, ow, q0, pn, p16, geo);
        gemmI16(og, pn, kp, w16 + <usize>g * og * kp * 2, p16, cOut + (<usize>q0 << 2), p, tmp);
        continue;
      }
      if (pointwise) {
        // straight from the image rows to the i16 panels (no f32 im2col copy); a chunk that is
        // not all i16 integers takes the f32 route below (panelsToI16 would refuse it too)
        if (pointwiseToI16(x, <usize>p, g * cg, cg, q0, pn, p16, geo)) {
          gemmI16(og, pn, kp, w16 + <usize>g * og * kp * 2, p16, cOut + (<usize>q0 << 2), p, tmp);
          continue;
        }
      }
      im2colPanels(x, ph, pw, g * cg, cg, kh, kw, sh, sw, dh, dw, pad ? 0 : pt, pad ? 0 : pl, ow, q0, pn, s, geo);
      if (w16 != 0 && !pointwise && panelsToI16(s, k, pn, p16)) {
        gemmI16(og, pn, kp, w16 + <usize>g * og * kp * 2, p16, cOut + (<usize>q0 << 2), p, tmp);
      } else {
        gemmF32<V>(0, pn, og, k, a, k, s, cOut + (<usize>q0 << 2), p, tmp);
      }
    }
  }
  setEpilogue(flags, sc, bias, lo, hi);
  setEpiloguePost(post, pm, pa);
}

/**
 * Channels [c0, c1) of a depthwise conv of ONE image (x [c, h, w], out [c, oh, ow]), as
 * dwconv2dF32 computes them. Scratch: `scratch + (c0 / align) · stride`, dwconvScratchBytes bytes.
 */
export function dwconv2dF32Channels<V>(
  c0: i32, c1: i32, h: i32, w: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
): void {
  const flags = epiFlags, bias = epiBias, lo = epiLo, hi = epiHi, sc = epiScale;
  const post = epiPost, pm = epiPostMul, pa = epiPostAdd;
  setEpilogue(flags, sc + (<usize>c0 << 2), bias + (<usize>c0 << 2), lo, hi);
  setEpiloguePost(post, pm, pa);
  dwconv2dF32<V>(
    1, c1 - c0, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow,
    x + <usize>c0 * h * w * 4, wt + <usize>c0 * kh * kw * 4, out + <usize>c0 * oh * ow * 4,
    scratch + <usize>(c0 / align) * stride,
  );
  setEpilogue(flags, sc, bias, lo, hi);
  setEpiloguePost(post, pm, pa);
}

/**
 * Images [n0, n1) of a dense conv (x [n, c, h, w], out [n, o, oh, ow]), each as conv2dF32Pixels
 * over all its pixels. Scratch at `scratch + (n0 / align) · stride`: the pixel scratch
 * (conv2dPixelsScratchBytes rounded up to 16) then the padded image (conv2dPadBytes).
 */
export function conv2dF32Images<V>(
  n0: i32, n1: i32, c: i32, h: i32, w: i32, o: i32, groups: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
): void {
  const s = scratch + <usize>(n0 / align) * stride;
  const padded = s + ((conv2dPixelsScratchBytes(c / groups, kh, kw, oh, ow) + 15) & ~15);
  const pad = conv2dPadBytes(c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow) > 0;
  for (let n = n0; n < n1; n++) {
    let xn = x + <usize>n * c * h * w * 4;
    if (pad) {
      conv2dPadF32(c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, xn, padded);
      xn = padded;
    }
    const on = out + <usize>n * o * oh * ow * 4;
    conv2dF32Pixels<V>(0, oh * ow, c, h, w, o, groups, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, xn, wt, on, s, 0, 1, true);
  }
}

/** Images [n0, n1) of a depthwise conv; scratch at `scratch + (n0 / align) · stride`. */
export function dwconv2dF32Images<V>(
  n0: i32, n1: i32, c: i32, h: i32, w: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
): void {
  const s = scratch + <usize>(n0 / align) * stride;
  for (let n = n0; n < n1; n++) {
    const xn = x + <usize>n * c * h * w * 4, on = out + <usize>n * c * oh * ow * 4;
    dwconv2dF32Channels<V>(0, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, xn, wt, on, s, 0, 1);
  }
}
