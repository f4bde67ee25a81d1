/**
 * Normalisation on float32: BatchNormalization (inference form),
 * LayerNormalization (with optional Mean / InvStdDev outputs),
 * InstanceNormalization.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrInt, normAxis, size, toF32 } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

const batchNorm: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "X");
  if (xt.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", `BatchNormalization: X is ${xt.dtype}`, {
      node: node.name,
    });
  }
  const scale = toF32(need(node, inputs[1], "scale"));
  const bias = toF32(need(node, inputs[2], "B"));
  const mean = toF32(need(node, inputs[3], "input_mean"));
  const vr = toF32(need(node, inputs[4], "input_var"));
  const eps = attrFloat(node, "epsilon", 1e-5);
  const n = xt.shape[0], c = xt.shape.length > 1 ? xt.shape[1] : 1;
  const inner = size(xt.shape.slice(2));
  const x = xt.data as Float32Array;
  const y = new Float32Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    // y = x·a + b with a = scale / sqrt(var + eps), b = B − mean·a (float32 like onnxruntime).
    const a = Math.fround(scale[ch] / Math.fround(Math.sqrt(Math.fround(vr[ch] + eps))));
    const b = Math.fround(bias[ch] - Math.fround(mean[ch] * a));
    for (let i = 0; i < n; i++) {
      const o = (i * c + ch) * inner;
      for (let j = 0; j < inner; j++) y[o + j] = x[o + j] * a + b;
    }
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

const layerNorm: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "X");
  const x = toF32(xt);
  const scale = toF32(need(node, inputs[1], "Scale"));
  const bias = inputs[2] ? toF32(inputs[2]) : undefined;
  const eps = attrFloat(node, "epsilon", 1e-5);
  const axis = normAxis(attrInt(node, "axis", -1), xt.shape.length, node);
  const outer = size(xt.shape.slice(0, axis));
  const n = size(xt.shape.slice(axis));
  if (scale.length !== n && scale.length !== 1) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `LayerNormalization: Scale has ${scale.length} elements, normalised size is ${n}`,
      { node: node.name },
    );
  }
  const y = new Float32Array(x.length);
  const meanOut = new Float32Array(outer), invOut = new Float32Array(outer);
  for (let o = 0; o < outer; o++) {
    const base = o * n;
    let s = 0;
    for (let i = 0; i < n; i++) s += x[base + i];
    const mean = s / n;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const d = x[base + i] - mean;
      v += d * d;
    }
    const inv = 1 / Math.sqrt(v / n + eps);
    meanOut[o] = mean;
    invOut[o] = inv;
    const sc1 = scale.length === 1;
    for (let i = 0; i < n; i++) {
      const z = (x[base + i] - mean) * inv * scale[sc1 ? 0 : i];
      y[base + i] = bias ? z + bias[bias.length === 1 ? 0 : i] : z;
    }
  }
  const statShape = xt.shape.map((d, i) => (i < axis ? d : 1));
  return [
    { dtype: "float32", shape: [...xt.shape], data: y },
    { dtype: "float32", shape: statShape, data: meanOut },
    { dtype: "float32", shape: [...statShape], data: invOut },
  ];
};

const instanceNorm: OpImpl = (inputs, node) => {
  const xt = need(node, inputs[0], "input");
  const x = toF32(xt);
  const scale = toF32(need(node, inputs[1], "scale"));
  const bias = toF32(need(node, inputs[2], "B"));
  const eps = attrFloat(node, "epsilon", 1e-5);
  const c = xt.shape[1], inner = size(xt.shape.slice(2));
  const y = new Float32Array(x.length);
  for (let p = 0; p < xt.shape[0] * c; p++) {
    const ch = p % c, base = p * inner;
    let s = 0;
    for (let i = 0; i < inner; i++) s += x[base + i];
    const mean = s / inner;
    let v = 0;
    for (let i = 0; i < inner; i++) v += (x[base + i] - mean) ** 2;
    const a = scale[ch] / Math.sqrt(v / inner + eps);
    for (let i = 0; i < inner; i++) y[base + i] = (x[base + i] - mean) * a + bias[ch];
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

/**
 * Normalisation ops, by name.
 *
 * @example
 * ```ts
 * import { normalizationOps } from "./normalization.ts";
 * const node = { name: "ln", op: "LayerNormalization", domain: "", inputs: ["x", "s"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [1, 2], data: new Float32Array([1, 3]) };
 * const s = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, 1]) };
 * const [y] = await normalizationOps.LayerNormalization([x, s], node, { opset: 17 });
 * if (Math.abs(Number(y.data[0]) + 1) > 1e-4) throw new Error();
 * ```
 */
export const normalizationOps: OpTable<
  "BatchNormalization" | "LayerNormalization" | "InstanceNormalization"
> = {
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
};
