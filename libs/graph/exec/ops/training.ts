/**
 * Ops of the `ai.onnx.preview.training` domain that are plain formulas: the optimizer updates
 * Adagrad, Momentum (standard and Nesterov) and Adam, for any number of tensors per node.
 * Computed in float64, stored as float32 / float64 like the inputs.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrString, toF32, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

/** Splits the inputs after R and T into `groups` equal lists (X…, G…, then state tensors). */
function groupsOf(
  node: Node,
  inputs: readonly (TensorData | undefined)[],
  groups: number,
): { r: number; t: number; lists: TensorData[][] } {
  const rest = inputs.slice(2);
  if (
    inputs[0] === undefined || inputs[1] === undefined || rest.length % groups !== 0 ||
    rest.some((t) => t === undefined)
  ) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${node.op}: needs R, T and ${groups} equal lists of tensors`,
      { node: node.name },
    );
  }
  const n = rest.length / groups;
  const lists = Array.from(
    { length: groups },
    (_, g) => rest.slice(g * n, (g + 1) * n) as TensorData[],
  );
  for (const t of rest as TensorData[]) {
    if (t.dtype !== "float32" && t.dtype !== "float64") {
      throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${t.dtype}`, { node: node.name });
    }
  }
  return { r: toF32(inputs[0])[0], t: toNumbers(inputs[1])[0], lists };
}

function like(t: TensorData, v: Float64Array): TensorData {
  return {
    dtype: t.dtype,
    shape: [...t.shape],
    data: t.dtype === "float32" ? Float32Array.from(v) : v,
  };
}

const adagrad: OpImpl = (inputs, node) => {
  const { r, t, lists: [xs, gs, hs] } = groupsOf(node, inputs, 3);
  const decay = attrFloat(node, "decay_factor", 0), eps = attrFloat(node, "epsilon", 1e-6);
  const norm = attrFloat(node, "norm_coefficient", 0);
  const rate = r / (1 + t * decay);
  const xo: TensorData[] = [], ho: TensorData[] = [];
  xs.forEach((xt, k) => {
    const x = xt.data as Float32Array,
      g = gs[k].data as Float32Array,
      h = hs[k].data as Float32Array;
    const nx = new Float64Array(x.length), nh = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const gr = norm * x[i] + g[i];
      nh[i] = h[i] + gr * gr;
      nx[i] = x[i] - (rate * gr) / (Math.sqrt(nh[i]) + eps);
    }
    xo.push(like(xt, nx));
    ho.push(like(hs[k], nh));
  });
  return [...xo, ...ho];
};

const momentum: OpImpl = (inputs, node) => {
  const { r, t, lists: [xs, gs, vs] } = groupsOf(node, inputs, 3);
  const alpha = attrFloat(node, "alpha", 0), beta = attrFloat(node, "beta", 0);
  const norm = attrFloat(node, "norm_coefficient", 0);
  const mode = attrString(node, "mode", "standard");
  if (mode !== "standard" && mode !== "nesterov") {
    throw new LowbitError("INVALID_ARGUMENT", `Momentum: mode '${mode}'`, { node: node.name });
  }
  const b = t > 0 ? beta : 1;
  const xo: TensorData[] = [], vo: TensorData[] = [];
  xs.forEach((xt, k) => {
    const x = xt.data as Float32Array,
      g = gs[k].data as Float32Array,
      v = vs[k].data as Float32Array;
    const nx = new Float64Array(x.length), nv = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const gr = norm * x[i] + g[i];
      nv[i] = alpha * v[i] + b * gr;
      nx[i] = mode === "standard" ? x[i] - r * nv[i] : x[i] - r * (gr + alpha * nv[i]);
    }
    xo.push(like(xt, nx));
    vo.push(like(vs[k], nv));
  });
  return [...xo, ...vo];
};

const adam: OpImpl = (inputs, node) => {
  const { r, t, lists: [xs, gs, vs, hs] } = groupsOf(node, inputs, 4);
  const alpha = attrFloat(node, "alpha", 0.9), beta = attrFloat(node, "beta", 0.999);
  const eps = attrFloat(node, "epsilon", 1e-6), norm = attrFloat(node, "norm_coefficient", 0);
  const post = attrFloat(node, "norm_coefficient_post", 0);
  const rate = t > 0 ? (r * Math.sqrt(1 - beta ** t)) / (1 - alpha ** t) : r;
  const xo: TensorData[] = [], vo: TensorData[] = [], ho: TensorData[] = [];
  xs.forEach((xt, k) => {
    const x = xt.data as Float32Array, g = gs[k].data as Float32Array;
    const v = vs[k].data as Float32Array, h = hs[k].data as Float32Array;
    const nx = new Float64Array(x.length), nv = new Float64Array(x.length);
    const nh = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const gr = norm * x[i] + g[i];
      nv[i] = alpha * v[i] + (1 - alpha) * gr;
      nh[i] = beta * h[i] + (1 - beta) * gr * gr;
      nx[i] = (1 - post) * (x[i] - (rate * nv[i]) / (Math.sqrt(nh[i]) + eps));
    }
    xo.push(like(xt, nx));
    vo.push(like(vs[k], nv));
    ho.push(like(hs[k], nh));
  });
  return [...xo, ...vo, ...ho];
};

/**
 * The optimizer ops (domain `ai.onnx.preview.training`), by name.
 *
 * @example
 * ```ts
 * import { trainingOps } from "./training.ts";
 * const node = { name: "m", op: "Momentum", domain: "ai.onnx.preview.training", inputs: [],
 *   outputs: ["x2", "v2"], attrs: { alpha: { kind: "float" as const, value: 0.5 },
 *   beta: { kind: "float" as const, value: 1 } } };
 * const f = (v: number) => ({ dtype: "float32" as const, shape: [1], data: new Float32Array([v]) });
 * const t = { dtype: "int64" as const, shape: [], data: new BigInt64Array([1n]) };
 * // v' = 0.5·2 + 1·4 = 5; x' = 1 − 0.1·5 = 0.5
 * const [x2, v2] = await trainingOps.Momentum([f(0.1), t, f(1), f(4), f(2)], node, { opset: 17 });
 * if (v2.data[0] !== 5 || x2.data[0] !== 0.5) throw new Error();
 * ```
 */
export const trainingOps: OpTable<"Adagrad" | "Momentum" | "Adam"> = {
  Adagrad: adagrad,
  Momentum: momentum,
  Adam: adam,
};
