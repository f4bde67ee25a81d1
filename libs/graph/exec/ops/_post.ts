// Elementwise post-ops that the executor fuses into Conv (attribute `lowbit_post`, written by
// _fuse.ts): HardSwish, then × mul, then + add, each step rounded to float32; then a float8
// QuantizeLinear → DequantizeLinear pair (attribute `lowbit_qdq8` = [scale, 0 e4m3fn | 1 e5m2],
// the QdqFused that read the conv's output) or an int8 / uint8 one (`lowbit_qdq` = [scale,
// lo − z, hi − z, −z]: quantize to the centred code, then dequantize), or the quantization alone
// (`lowbit_qout` = [scale, lo − z, hi − z]: the centred codes a QConvFused reads). The kernels apply
// them in their epilogue (ConvPostOps of @lowbit/kernels); the loops here are the same steps in
// TypeScript (reference path, unfused ops), so fused and unfused runs agree bit for bit.

import { type ConvPostOps, refPost, refQdqFp8 } from "@lowbit/kernels";
import type { Node } from "../../ir.ts";
import { attrFloats } from "../_tensor.ts";

const f = Math.fround;

/**
 * HardSwish of a float32 value as ONNX's decomposition Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6),
 * every step rounded to float32 (what the kernels' epilogue computes).
 */
export function hardswishF32(v: number): number {
  const t = f(v + 3);
  return f(f(v * (t < 0 ? 0 : t > 6 ? 6 : t)) / 6);
}

/**
 * The post-ops of a node (attribute `lowbit_post` = [hardswish 0|1, mul or NaN, add or NaN],
 * `lowbit_qdq8` = [scale, format 0 e4m3fn | 1 e5m2], `lowbit_qdq` (see qdqPost), or
 * `lowbit_qout` = [scale, lo − z, hi − z]: QuantizeLinear to the centred code, the output then
 * the codes a QConvFused with `lowbit_codes_in` reads).
 */
export function convPost(node: Node): ConvPostOps | undefined {
  const p = attrFloats(node, "lowbit_post"), q = attrFloats(node, "lowbit_qdq8");
  const qi = attrFloats(node, "lowbit_qdq"), qo = attrFloats(node, "lowbit_qout");
  if (p === undefined && q === undefined && qi === undefined && qo === undefined) return undefined;
  const post: ConvPostOps = {};
  if (qi !== undefined) Object.assign(post, qdqPost(qi));
  else if (qo !== undefined) post.quantize = { scale: qo[0], lo: qo[1], hi: qo[2] };
  if (p !== undefined) {
    if (p[0] === 1) post.hardswish = true;
    if (!Number.isNaN(p[1])) post.mul = p[1];
    if (!Number.isNaN(p[2])) post.add = p[2];
  }
  if (q !== undefined) {
    post.qdqFp8 = { scale: q[0], format: q[1] === 1 ? "fp8_e5m2" : "fp8_e4m3fn" };
  }
  return post;
}

/**
 * The post-ops of an int8 / uint8 Q → DQ pair from its attribute `lowbit_qdq` = [scale, lo − z,
 * hi − z, −z]: quantize to the centred code, then dequantize (NaN: the code 0, i.e. −z).
 *
 * @param a the attribute's values
 * @returns the `quantize` and `dequantize` post-ops
 *
 * @example
 * ```ts
 * import { qdqPost } from "./_post.ts";
 * const p = qdqPost([0.5, -118, 137, 10]); // int8, zero point −10
 * if (p.quantize?.lo !== -118 || p.dequantize?.nanCode !== 10) throw new Error();
 * ```
 */
export function qdqPost(a: readonly number[]): Pick<ConvPostOps, "quantize" | "dequantize"> {
  return { quantize: { scale: a[0], lo: a[1], hi: a[2] }, dequantize: { nanCode: a[3] } };
}

/** Applies post-ops in place, as the kernels do. */
export function applyPost(y: Float32Array, post: ConvPostOps): void {
  if (post.hardswish) { for (let i = 0; i < y.length; i++) y[i] = hardswishF32(y[i]); }
  if (post.mul !== undefined) {
    const m = post.mul;
    for (let i = 0; i < y.length; i++) y[i] *= m;
  }
  if (post.add !== undefined) {
    const a = post.add;
    for (let i = 0; i < y.length; i++) y[i] += a;
  }
  if (post.quantize !== undefined) {
    const qp = { quantize: post.quantize, dequantize: post.dequantize };
    for (let i = 0; i < y.length; i++) y[i] = refPost(y[i], qp);
  }
  const q = post.qdqFp8;
  if (q !== undefined) {
    for (let i = 0; i < y.length; i++) y[i] = refQdqFp8(y[i], q.scale, q.format);
  }
}
