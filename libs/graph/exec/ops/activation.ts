/**
 * Activation operators on float32: ReLU family, clipping, sigmoid family,
 * GELU, softmax. `Clip` takes bounds as attributes (opset < 11) or inputs.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrInt, attrString, normAxis, outF32, size, toF32 } from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import { erf } from "./elementwise.ts";
import { hardswishF32 } from "./_post.ts";
import type { OpImpl, OpTable } from "./types.ts";

function floatInput(node: Node, t: TensorData | undefined, what = "input"): Float32Array {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  if (t.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", `${node.op}: ${what} dtype ${t.dtype} (float32 only)`, {
      node: node.name,
    });
  }
  return t.data as Float32Array;
}

/** Builds a float32 activation from a loop over the input. */
function act(loop: (x: Float32Array, y: Float32Array, node: Node) => void): OpImpl {
  return (inputs, node, ctx) => {
    const x = floatInput(node, inputs[0]);
    // Elementwise: writing into a dying input is safe (each element read before written).
    const y = ctx.reusable?.(inputs[0]!) ? x : outF32(ctx, x.length);
    loop(x, y, node);
    return [{ dtype: "float32", shape: [...inputs[0]!.shape], data: y }];
  };
}

const clip: OpImpl = (inputs, node, ctx) => {
  const x = inputs[0];
  if (x !== undefined && x.dtype !== "float32") {
    // Integer clip (rare): numbers path.
    const lo = inputs[1] ? Number(inputs[1].data[0]) : -Infinity;
    const hi = inputs[2] ? Number(inputs[2].data[0]) : Infinity;
    const d = x.data as Int32Array;
    const out = d.slice();
    for (let i = 0; i < d.length; i++) out[i] = Math.min(hi, Math.max(lo, Number(d[i])));
    return [{ dtype: x.dtype, shape: [...x.shape], data: out }];
  }
  const xd = floatInput(node, x);
  let lo = -Infinity, hi = Infinity;
  if (ctx.opset < 11) {
    lo = attrFloat(node, "min", -3.4028234663852886e38);
    hi = attrFloat(node, "max", 3.4028234663852886e38);
  } else {
    if (inputs[1] !== undefined) lo = toF32(inputs[1])[0];
    if (inputs[2] !== undefined) hi = toF32(inputs[2])[0];
  }
  const y = new Float32Array(xd.length);
  for (let i = 0; i < xd.length; i++) {
    const v = xd[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return [{ dtype: "float32", shape: [...x!.shape], data: y }];
};

const prelu: OpImpl = (inputs, node, ctx) => {
  const x = floatInput(node, inputs[0]);
  const s = floatInput(node, inputs[1], "slope");
  let sShape = inputs[1]!.shape;
  const xShape = inputs[0]!.shape;
  // PRelu before opset 7: a 1-D slope of C elements is per channel (axis 1), not broadcast.
  if (ctx.opset < 7 && sShape.length === 1 && xShape.length > 2 && sShape[0] === xShape[1]) {
    sShape = [sShape[0], ...xShape.slice(2).map(() => 1)];
  }
  const shape = broadcastShapes([xShape, sShape], node);
  const plan = planBroadcast([xShape, sShape], shape);
  const y = new Float32Array(size(shape));
  let p = 0;
  for (let r = 0; r < plan.outer; r++) {
    const xo = plan.offsets[0][r], so = plan.offsets[1][r];
    for (let i = 0; i < plan.inner; i++) {
      const v = x[xo + i * plan.steps[0]];
      y[p++] = v < 0 ? v * s[so + i * plan.steps[1]] : v;
    }
  }
  return [{ dtype: "float32", shape, data: y }];
};

/**
 * Softmax / LogSoftmax. Opset ≥ 13: along one axis (default -1). Older: the
 * input is flattened to 2-D at `axis` (default 1) and normalised over the tail.
 */
function softmax(log: boolean): OpImpl {
  return (inputs, node, ctx) => {
    const t = inputs[0]!;
    const x = floatInput(node, t);
    const rank = t.shape.length;
    const y = new Float32Array(x.length);
    let outer: number, n: number, inner: number;
    if (ctx.opset >= 13) {
      const axis = normAxis(attrInt(node, "axis", -1), rank, node);
      outer = size(t.shape.slice(0, axis));
      n = t.shape[axis];
      inner = size(t.shape.slice(axis + 1));
    } else {
      const axis = normAxis(attrInt(node, "axis", 1), rank, node);
      outer = size(t.shape.slice(0, axis));
      n = size(t.shape.slice(axis));
      inner = 1;
    }
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let m = -Infinity;
        for (let i = 0; i < n; i++) m = Math.max(m, x[base + i * inner]);
        let s = 0;
        for (let i = 0; i < n; i++) {
          const e = Math.exp(x[base + i * inner] - m);
          s += e;
          if (!log) y[base + i * inner] = e;
        }
        if (log) {
          const ls = Math.log(s);
          for (let i = 0; i < n; i++) y[base + i * inner] = x[base + i * inner] - m - ls;
        } else {
          const inv = 1 / s;
          for (let i = 0; i < n; i++) y[base + i * inner] *= inv;
        }
      }
    }
    return [{ dtype: "float32", shape: [...t.shape], data: y }];
  };
}

/**
 * Activation ops, by name.
 *
 * @example
 * ```ts
 * import { activationOps } from "./activation.ts";
 * const node = { name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [3], data: new Float32Array([-1, 0, 2]) };
 * const [y] = await activationOps.Relu([x], node, { opset: 17 });
 * if (y.data.join() !== "0,0,2") throw new Error();
 * ```
 */
export const activationOps: OpTable<
  | "Relu"
  | "LeakyRelu"
  | "PRelu"
  | "Elu"
  | "Clip"
  | "Sigmoid"
  | "HardSigmoid"
  | "HardSwish"
  | "Tanh"
  | "Gelu"
  | "Softplus"
  | "Softmax"
  | "LogSoftmax"
> = {
  Relu: act((x, y) => {
    for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? x[i] : 0;
  }),
  LeakyRelu: act((x, y, node) => {
    const a = attrFloat(node, "alpha", 0.01);
    for (let i = 0; i < x.length; i++) y[i] = x[i] >= 0 ? x[i] : a * x[i];
  }),
  PRelu: prelu,
  Elu: act((x, y, node) => {
    const a = attrFloat(node, "alpha", 1);
    for (let i = 0; i < x.length; i++) y[i] = x[i] >= 0 ? x[i] : a * (Math.exp(x[i]) - 1);
  }),
  Clip: clip,
  Sigmoid: act((x, y) => {
    for (let i = 0; i < x.length; i++) {
      // exp(-v) overflows to Infinity for v < -88: 1 / Infinity = 0, the right limit.
      y[i] = 1 / (1 + Math.exp(-x[i]));
    }
  }),
  HardSigmoid: act((x, y, node) => {
    const a = attrFloat(node, "alpha", 0.2), b = attrFloat(node, "beta", 0.5);
    for (let i = 0; i < x.length; i++) y[i] = Math.max(0, Math.min(1, a * x[i] + b));
  }),
  // As Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6) in float32 steps: the kernels' fused epilogue.
  HardSwish: act((x, y) => {
    for (let i = 0; i < x.length; i++) y[i] = hardswishF32(x[i]);
  }),
  Tanh: act((x, y) => {
    for (let i = 0; i < x.length; i++) y[i] = Math.tanh(x[i]);
  }),
  Gelu: act((x, y, node) => {
    if (attrString(node, "approximate", "none") === "tanh") {
      const c = Math.sqrt(2 / Math.PI);
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        y[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
      }
    } else {
      for (let i = 0; i < x.length; i++) y[i] = 0.5 * x[i] * (1 + erf(x[i] * Math.SQRT1_2));
    }
  }),
  Softplus: act((x, y) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      y[i] = v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
    }
  }),
  Softmax: softmax(false),
  LogSoftmax: softmax(true),
};
