/**
 * The integer ops of the default ONNX domain that onnxruntime's quantizer emits:
 * `DynamicQuantizeLinear`, `MatMulInteger`, `ConvInteger` (dynamic quantization) and
 * `QLinearConv`, `QLinearMatMul` (static, operator-oriented format). Sums are exact;
 * requantization rounds as onnxruntime does (float32 product, ties to even, saturate).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrInt, toF32 } from "../_tensor.ts";
import { forwardWindow } from "./_conv_geom.ts";
import {
  codeType,
  convCodes,
  dynamicParams,
  matmulCodes,
  need,
  perChannel,
  quantizeOne,
  requantize,
  scalar,
} from "./_qint.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

const DynamicQuantizeLinear: OpImpl = (args, node) => {
  const x = toF32(need(node, args[0], "x"));
  const { scale, zp } = dynamicParams(x);
  const y = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = quantizeOne(x[i], scale, zp, 0, 255);
  return [
    { dtype: "uint8", shape: [...args[0]!.shape], data: y },
    { dtype: "float32", shape: [], data: new Float32Array([scale]) },
    { dtype: "uint8", shape: [], data: new Uint8Array([zp]) },
  ];
};

/** (A − a_zp)·(B − b_zp) exactly, A's zero point per tensor, B's per tensor or per column. */
function matmulCore(
  node: Node,
  ctx: OpContext,
  a: TensorData,
  azp: number,
  b: TensorData,
  bzp: TensorData | undefined,
) {
  const n = b.shape[b.shape.length - 1];
  const bz = perChannel(node, bzp, b.shape.length === 1 ? 1 : n, "b_zero_point", 0);
  return matmulCodes(node, ctx, a, azp, b, bz);
}

const MatMulInteger: OpImpl = async (args, node, ctx) => {
  const a = need(node, args[0], "A"), b = need(node, args[1], "B");
  const azp = scalar(node, args[2], "a_zero_point", 0);
  const r = await matmulCore(node, ctx, a, azp, b, args[3]);
  return [{ dtype: "int32", shape: r.shape, data: Int32Array.from(r.data) }];
};

/** (x − x_zp) ⊛ (w − w_zp) exactly (per-output-channel w_zp), with its output shape. */
async function convCore(
  node: Node,
  ctx: OpContext,
  x: TensorData,
  xzp: number,
  w: TensorData,
  wzp: TensorData | undefined,
) {
  const rank = x.shape.length;
  if ((rank !== 3 && rank !== 4) || w.shape.length !== rank) {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: 1-D and 2-D convolutions only (x [${x.shape}], w [${w.shape}])`,
      { node: node.name },
    );
  }
  const [n, cin] = x.shape;
  const cout = w.shape[0];
  const group = attrInt(node, "group", 1);
  if (cin % group !== 0 || cout % group !== 0 || w.shape[1] * group !== cin) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: x [${x.shape}], w [${w.shape}] and group ${group} do not fit`,
      { node: node.name },
    );
  }
  const kernel: [number, number] = rank === 4 ? [w.shape[2], w.shape[3]] : [1, w.shape[2]];
  const g = forwardWindow(node, x.shape, kernel);
  const wz = perChannel(node, wzp, cout, "w_zero_point", 0);
  const acc = await convCodes(node, ctx, x, xzp, w, wz, n, cin, cout, group, g);
  const shape = rank === 4 ? [n, cout, g.oh, g.ow] : [n, cout, g.ow];
  return { acc, shape, plane: g.oh * g.ow, cout };
}

const ConvInteger: OpImpl = async (args, node, ctx) => {
  const x = need(node, args[0], "x"), w = need(node, args[1], "w");
  const r = await convCore(node, ctx, x, scalar(node, args[2], "x_zero_point", 0), w, args[3]);
  return [{ dtype: "int32", shape: r.shape, data: Int32Array.from(r.acc) }];
};

/** Output scales x_scale · w_scale[c] / y_scale in float32, as onnxruntime computes them. */
function outScales(xs: number, ws: readonly number[], ys: number): number[] {
  return ws.map((w) => Math.fround(Math.fround(xs * w) / ys));
}

const QLinearConv: OpImpl = async (args, node, ctx) => {
  const x = need(node, args[0], "x"), w = need(node, args[3], "w");
  const xs = scalar(node, args[1], "x_scale"), xzp = scalar(node, args[2], "x_zero_point", 0);
  const ys = scalar(node, args[6], "y_scale"), yzp = scalar(node, args[7], "y_zero_point", 0);
  const r = await convCore(node, ctx, x, xzp, w, args[5]);
  const ws = perChannel(node, need(node, args[4], "w_scale"), r.cout, "w_scale", 1);
  if (args[8] !== undefined) {
    const bias = perChannel(node, args[8], r.cout, "B", 0);
    for (let i = 0; i < r.acc.length; i++) r.acc[i] += bias[Math.floor(i / r.plane) % r.cout];
  }
  const scales = outScales(xs, ws, ys);
  const zps = new Array<number>(r.cout).fill(yzp);
  const dtype = codeType(node, args[7]);
  return [requantize(r.acc, r.shape, scales, zps, (i) => Math.floor(i / r.plane) % r.cout, dtype)];
};

const QLinearMatMul: OpImpl = async (args, node, ctx) => {
  const a = need(node, args[0], "a"), b = need(node, args[3], "b");
  const as = scalar(node, args[1], "a_scale"), azp = scalar(node, args[2], "a_zero_point", 0);
  const ys = scalar(node, args[6], "y_scale"), yzp = scalar(node, args[7], "y_zero_point", 0);
  const r = await matmulCore(node, ctx, a, azp, b, args[5]);
  const nScale = b.shape.length === 1 ? 1 : r.n;
  const bs = perChannel(node, need(node, args[4], "b_scale"), nScale, "b_scale", 1);
  const scales = outScales(as, bs, ys);
  const zps = new Array<number>(nScale).fill(yzp);
  const dtype = codeType(node, args[7]);
  return [requantize(r.data, r.shape, scales, zps, (i) => nScale === 1 ? 0 : i % r.n, dtype)];
};

/**
 * onnxruntime's quantized ops of the default domain.
 *
 * @example
 * ```ts
 * import { ortQuantOps } from "./ort_quant.ts";
 * const node = { name: "m", op: "MatMulInteger", domain: "", inputs: [], outputs: ["y"], attrs: {} };
 * const a = { dtype: "uint8" as const, shape: [1, 2], data: new Uint8Array([130, 129]) };
 * const b = { dtype: "int8" as const, shape: [2, 1], data: new Int8Array([3, -4]) };
 * const zp = { dtype: "uint8" as const, shape: [], data: new Uint8Array([128]) };
 * const [y] = await ortQuantOps.MatMulInteger([a, b, zp], node, { opset: 17 });
 * if (y.data[0] !== 2 * 3 + 1 * -4) throw new Error(); // (130−128)·3 + (129−128)·(−4)
 * ```
 */
export const ortQuantOps: OpTable<
  "DynamicQuantizeLinear" | "MatMulInteger" | "ConvInteger" | "QLinearConv" | "QLinearMatMul"
> = { DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearConv, QLinearMatMul };
