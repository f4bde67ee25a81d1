/**
 * More normalisation: LRN, MeanVarianceNormalization, GroupNormalization, LpNormalization, and
 * BatchNormalization's training mode
 * (batch statistics, with the running mean / variance outputs). Float32 in and out, computed
 * in float64.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrInt, attrInts, normAxis, size, strides, toF32 } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function floatIn(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined || t.dtype !== "float32") {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: ${what} must be float32, got ${t?.dtype ?? "nothing"}`,
      { node: node.name },
    );
  }
  return t;
}

const lrn: OpImpl = (inputs, node) => {
  const xt = floatIn(node, inputs[0], "X");
  const sz = attrInt(node, "size", 0);
  if (!(sz > 0) || xt.shape.length < 2) {
    throw new LowbitError("INVALID_ARGUMENT", "LRN: size must be > 0 and X of rank >= 2", {
      node: node.name,
    });
  }
  const alpha = attrFloat(node, "alpha", 1e-4), beta = attrFloat(node, "beta", 0.75);
  const bias = attrFloat(node, "bias", 1);
  const [n, c] = xt.shape;
  const inner = size(xt.shape.slice(2));
  const x = xt.data as Float32Array;
  const y = new Float32Array(x.length);
  const lo = Math.floor((sz - 1) / 2), hi = Math.ceil((sz - 1) / 2);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let j = 0; j < inner; j++) {
        let s = 0;
        for (let k = Math.max(0, ch - lo); k <= Math.min(c - 1, ch + hi); k++) {
          const v = x[(b * c + k) * inner + j];
          s += v * v;
        }
        const p = (b * c + ch) * inner + j;
        y[p] = x[p] / Math.pow(bias + (alpha / sz) * s, beta);
      }
    }
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

/** Mean and population variance of `x` per slot of the non-reduced axes. */
function moments(shape: number[], x: Float32Array, axes: Set<number>) {
  const keep = shape.map((d, i) => (axes.has(i) ? 1 : d));
  const ks = strides(keep), xs = strides(shape);
  const m = size(keep);
  const sum = new Float64Array(m), sq = new Float64Array(m);
  const slot = new Int32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let rem = i, o = 0;
    for (let d = 0; d < shape.length; d++) {
      const c = Math.floor(rem / xs[d]);
      rem -= c * xs[d];
      if (!axes.has(d)) o += c * ks[d];
    }
    slot[i] = o;
    sum[o] += x[i];
    sq[o] += x[i] * x[i];
  }
  const count = x.length / Math.max(1, m);
  const mean = sum.map((s) => s / count);
  const vr = sq.map((s, i) => s / count - mean[i] * mean[i]);
  return { mean, vr, slot };
}

const mvn: OpImpl = (inputs, node) => {
  const xt = floatIn(node, inputs[0], "X");
  const axes = new Set(
    (attrInts(node, "axes") ?? [0, 2, 3]).map((a) => normAxis(a, xt.shape.length, node)),
  );
  const x = xt.data as Float32Array;
  const { mean, vr, slot } = moments(xt.shape, x, axes);
  const y = new Float32Array(x.length);
  // ONNX's function body: (X - E[X]) / (sqrt(E[X²] - E[X]²) + 1e-9).
  for (let i = 0; i < x.length; i++) {
    y[i] = (x[i] - mean[slot[i]]) / (Math.sqrt(Math.max(0, vr[slot[i]])) + 1e-9);
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

const batchNormTraining: OpImpl = (inputs, node) => {
  const xt = floatIn(node, inputs[0], "X");
  const scale = toF32(floatIn(node, inputs[1], "scale"));
  const bias = toF32(floatIn(node, inputs[2], "B"));
  const runMean = toF32(floatIn(node, inputs[3], "input_mean"));
  const runVar = toF32(floatIn(node, inputs[4], "input_var"));
  const eps = attrFloat(node, "epsilon", 1e-5), momentum = attrFloat(node, "momentum", 0.9);
  const axes = new Set(xt.shape.map((_, i) => i).filter((i) => i !== 1));
  const x = xt.data as Float32Array;
  const { mean, vr, slot } = moments(xt.shape, x, axes);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = slot[i];
    y[i] = ((x[i] - mean[c]) / Math.sqrt(vr[c] + eps)) * scale[c] + bias[c];
  }
  const c = xt.shape[1];
  const outMean = new Float32Array(c), outVar = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    outMean[k] = runMean[k] * momentum + mean[k] * (1 - momentum);
    outVar[k] = runVar[k] * momentum + vr[k] * (1 - momentum);
  }
  return [
    { dtype: "float32", shape: [...xt.shape], data: y },
    { dtype: "float32", shape: [c], data: outMean },
    { dtype: "float32", shape: [c], data: outVar },
  ];
};

const groupNorm: OpImpl = (inputs, node, ctx) => {
  const xt = floatIn(node, inputs[0], "X");
  const scale = toF32(floatIn(node, inputs[1], "scale"));
  const bias = toF32(floatIn(node, inputs[2], "bias"));
  const groups = attrInt(node, "num_groups", 0);
  const eps = attrFloat(node, "epsilon", 1e-5);
  const [n, c] = xt.shape;
  if (!(groups > 0) || xt.shape.length < 2 || c % groups !== 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `GroupNormalization: ${c} channels, ${groups} groups`,
      {
        node: node.name,
      },
    );
  }
  // Opset 18: scale / bias per group; opset 21: per channel.
  const perGroup = ctx.opset < 21 && scale.length === groups && c !== groups;
  const want = perGroup ? groups : c;
  if (scale.length !== want || bias.length !== want) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `GroupNormalization: scale / bias need ${want} values, got ${scale.length} / ${bias.length}`,
      { node: node.name },
    );
  }
  const inner = size(xt.shape.slice(2)), per = (c / groups) * inner;
  const x = xt.data as Float32Array;
  const y = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < groups; g++) {
      const o = (b * groups + g) * per;
      let s = 0, sq = 0;
      for (let i = 0; i < per; i++) s += x[o + i];
      const mean = s / per;
      for (let i = 0; i < per; i++) sq += (x[o + i] - mean) ** 2;
      const inv = 1 / Math.sqrt(sq / per + eps);
      for (let i = 0; i < per; i++) {
        const ch = g * (c / groups) + Math.floor(i / inner);
        const k = perGroup ? g : ch;
        y[o + i] = (x[o + i] - mean) * inv * scale[k] + bias[k];
      }
    }
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

const lpNorm: OpImpl = (inputs, node) => {
  const xt = floatIn(node, inputs[0], "input");
  const axis = normAxis(attrInt(node, "axis", -1), xt.shape.length, node);
  const p = attrInt(node, "p", 2);
  if (p !== 1 && p !== 2) {
    throw new LowbitError("INVALID_ARGUMENT", `LpNormalization: p = ${p} (1 or 2)`, {
      node: node.name,
    });
  }
  const outer = size(xt.shape.slice(0, axis)), m = xt.shape[axis];
  const inner = size(xt.shape.slice(axis + 1));
  const x = xt.data as Float32Array;
  const y = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) {
        const v = x[(o * m + i) * inner + j];
        s += p === 1 ? Math.abs(v) : v * v;
      }
      const norm = p === 1 ? s : Math.sqrt(s);
      for (let i = 0; i < m; i++) {
        const q = (o * m + i) * inner + j;
        y[q] = norm === 0 ? 0 : x[q] / norm;
      }
    }
  }
  return [{ dtype: "float32", shape: [...xt.shape], data: y }];
};

/**
 * BatchNormalization that runs `inference` unless the node asks for training mode
 * (`training_mode` = 1, opset 14+), where batch statistics normalise and the running
 * statistics are updated as ONNX's reference does.
 *
 * @param inference the inference-form implementation
 * @returns the dispatching implementation
 *
 * @example
 * ```ts
 * import { withTrainingMode } from "./normalization_extra.ts";
 * const bn = withTrainingMode(() => { throw new Error("inference path"); });
 * const node = {
 *   name: "bn", op: "BatchNormalization", domain: "", inputs: [], outputs: ["y", "m", "v"],
 *   attrs: { training_mode: { kind: "int" as const, value: 1 } },
 * };
 * const f = (v: number[]) => ({ dtype: "float32" as const, shape: [v.length], data: new Float32Array(v) });
 * const x = { dtype: "float32" as const, shape: [2, 1], data: new Float32Array([1, 3]) };
 * const [y, m] = await bn([x, f([1]), f([0]), f([0]), f([1])], node, { opset: 15 });
 * // batch mean 2, variance 1: y ≈ ∓1; running mean 0·0.9 + 2·0.1
 * if (Math.abs(y.data[0] as number + 1) > 1e-4 || Math.abs(m.data[0] as number - 0.2) > 1e-6) {
 *   throw new Error();
 * }
 * ```
 */
export function withTrainingMode(inference: OpImpl): OpImpl {
  return (inputs, node, ctx) =>
    attrInt(node, "training_mode", 0) === 1
      ? batchNormTraining(inputs, node, ctx)
      : inference(inputs, node, ctx);
}

/**
 * LRN, MeanVarianceNormalization, GroupNormalization (opset 18's per-group and opset 21's
 * per-channel scale and bias), LpNormalization.
 *
 * @example
 * ```ts
 * import { normalizationExtraOps } from "./normalization_extra.ts";
 * const node = {
 *   name: "l", op: "LRN", domain: "", inputs: ["x"], outputs: ["y"],
 *   attrs: { size: { kind: "int" as const, value: 1 }, alpha: { kind: "float" as const, value: 1 },
 *     beta: { kind: "float" as const, value: 1 } },
 * };
 * const x = { dtype: "float32" as const, shape: [1, 1, 1], data: new Float32Array([2]) };
 * const [y] = await normalizationExtraOps.LRN([x], node, { opset: 13 });
 * if (y.data[0] !== Math.fround(0.4)) throw new Error(); // 2 / (1 + 2²)
 * ```
 */
export const normalizationExtraOps: OpTable<
  "LRN" | "MeanVarianceNormalization" | "GroupNormalization" | "LpNormalization"
> = {
  LRN: lrn,
  MeanVarianceNormalization: mvn,
  GroupNormalization: groupNorm,
  LpNormalization: lpNorm,
};
