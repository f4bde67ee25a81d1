// Float kernels, plain WASM SIMD build (f32x4.mul + f32x4.add: same bits on every engine).
// The relaxed twin is float_gemm_relaxed.ts; both export the same kernels, suffixed by ISA.
// Kernel names: <op>_<dtypes>_<epilogue>_<MRxNR>__<isa>[_<variant>] (XNNPACK style).

import { Plain, setEpilogue, setEpiloguePost } from "./_float_common";
import { gemmF32, packF32B } from "./_float_gemm_impl";
import { conv2dF32, conv2dScratchBytes, dwconv2dF32, dwconvScratchBytes } from "./_conv_impl";
import { conv2dF32Pixels, conv2dPadBytes, conv2dPadF32, conv2dPixelsScratchBytes, dwconv2dF32Channels } from "./_conv_impl";
import { conv2dF32Images, dwconv2dF32Images } from "./_conv_impl";
import { gemmMinifloat, gemmMinifloatScratchBytes, gemvMinifloat, scaleF32 } from "./_minifloat_impl";

export { conv2dScratchBytes as conv2d_scratch_bytes, dwconvScratchBytes as dwconv_scratch_bytes };
export { conv2dPadBytes as conv2d_pad_bytes, conv2dPadF32 as conv2d_pad_f32, conv2dPixelsScratchBytes as conv2d_pixels_scratch_bytes };
export { packF32B as pack_f32_b_8, gemmMinifloatScratchBytes as gemm_mfw_scratch_bytes };
export { scaleF32 as mfw_scale_f32 };

export function gemm_f32_f32_minmax_4x8__wasmsimd(
  n0: i32, n1: i32, m: i32, k: i32, a: usize, lda: i32, b: usize, c: usize, ldc: i32, tmp: usize,
  flags: i32, scale: usize, bias: usize, lo: f32, hi: f32,
): void {
  setEpilogue(flags, scale, bias, lo, hi);
  gemmF32<Plain>(n0, n1, m, k, a, lda, b, c, ldc, tmp);
}

export function conv2d_f32_minmax_im2col_4x8__wasmsimd(
  batch: i32, c: i32, h: i32, w: i32, o: i32, groups: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize,
  flags: i32, bias: usize, lo: f32, hi: f32,
): void {
  setEpilogue(flags, 0, bias, lo, hi);
  conv2dF32<Plain>(batch, c, h, w, o, groups, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, wt, out, scratch);
}

export function dwconv2d_f32_minmax_4x1__wasmsimd(
  batch: i32, c: i32, h: i32, w: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize,
  flags: i32, bias: usize, lo: f32, hi: f32,
): void {
  setEpilogue(flags, 0, bias, lo, hi);
  dwconv2dF32<Plain>(batch, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, wt, out, scratch);
}

export function gemm_mfw_f32_minmax_4x8__wasmsimd(
  n0: i32, n1: i32, fmt: i32, m: i32, k: i32, a: usize, lda: i32, codes: usize, scales: usize, block: i32,
  c: usize, ldc: i32, scratch: usize, flags: i32, scale: usize, bias: usize, lo: f32, hi: f32,
): void {
  setEpilogue(flags, scale, bias, lo, hi);
  gemmMinifloat<Plain>(n0, n1, fmt, m, k, a, lda, codes, scales, block, c, ldc, scratch);
}

export function gemv_mfw_f32_minmax_1x8__wasmsimd(
  n0: i32, n1: i32, fmt: i32, n: i32, k: i32, a: usize, codes: usize, scales: usize, block: i32,
  c: usize, tmp: usize, flags: i32, scale: usize, bias: usize, lo: f32, hi: f32,
): void {
  setEpilogue(flags, scale, bias, lo, hi);
  gemvMinifloat<Plain>(n0, n1, fmt, n, k, a, codes, scales, block, c, tmp);
}

// Thread splits of the convs (see _conv_impl.ts): output pixels of one image, channels of one image,
// or whole images;
// `post`: the post-op bits of _float_common.ts (HardSwish, × postMul, + postAdd) after the clamp.

export function conv2d_f32_minmax_im2col_4x8__wasmsimd_pixels(
  p0: i32, p1: i32, c: i32, h: i32, w: i32, o: i32, groups: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
  padded: i32, flags: i32, bias: usize, lo: f32, hi: f32, post: i32, postMul: f32, postAdd: f32,
): void {
  setEpilogue(flags, 0, bias, lo, hi);
  setEpiloguePost(post, postMul, postAdd);
  conv2dF32Pixels<Plain>(p0, p1, c, h, w, o, groups, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, wt, out, scratch, stride, align, padded != 0);
}

export function dwconv2d_f32_minmax_4x1__wasmsimd_channels(
  c0: i32, c1: i32, h: i32, w: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
  flags: i32, bias: usize, lo: f32, hi: f32, post: i32, postMul: f32, postAdd: f32,
): void {
  setEpilogue(flags, 0, bias, lo, hi);
  setEpiloguePost(post, postMul, postAdd);
  dwconv2dF32Channels<Plain>(c0, c1, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, wt, out, scratch, stride, align);
}

export function conv2d_f32_minmax_im2col_4x8__wasmsimd_images(
  n0: i32, n1: i32, c: i32, h: i32, w: i32, o: i32, groups: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
  flags: i32, bias: usize, lo: f32, hi: f32, post: i32, postMul: f32, postAdd: f32,
): void {
  setEpilogue(flags, 0, bias, lo, hi);
  setEpiloguePost(post, postMul, postAdd);
  conv2dF32Images<Plain>(n0, n1, c, h, w, o, groups, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, wt, out, scratch, stride, align);
}

export function dwconv2d_f32_minmax_4x1__wasmsimd_images(
  n0: i32, n1: i32, c: i32, h: i32, w: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, x: usize, wt: usize, out: usize, scratch: usize, stride: usize, align: i32,
  flags: i32, bias: usize, lo: f32, hi: f32, post: i32, postMul: f32, postAdd: f32,
): void {
  setEpilogue(flags, 0, bias, lo, hi);
  setEpiloguePost(post, postMul, postAdd);
  dwconv2dF32Images<Plain>(n0, n1, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, wt, out, scratch, stride, align);
}
