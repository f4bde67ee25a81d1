/**
 * Loss ops that inference can compute: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * (class weights, ignore_index, reductions none / sum / mean, the optional log-probability
 * output), following ONNX's reference: a "mean" with weights (or an ignore_index) divides by the
 * summed weights of the counted elements, else by their number. Computed in float64.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData } from "../../ir.ts";
import { attrString, size, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

function floatOut(node: Node, dtype: DType, shape: number[], v: ArrayLike<number>): TensorData {
  if (dtype === "float32") return { dtype, shape, data: Float32Array.from(v) };
  if (dtype === "float64") return { dtype, shape, data: Float64Array.from(v) };
  throw new LowbitError("UNSUPPORTED", `${node.op}: dtype ${dtype}`, { node: node.name });
}

/**
 * −logp[n, target, d] weighted and reduced. `logp` is [N, C, D] flattened (D = product of the
 * spatial dimensions); `targetShape` is [N, d1, ...].
 */
function nll(
  node: Node,
  logp: ArrayLike<number>,
  shape: readonly number[],
  target: number[],
  weight: ArrayLike<number> | undefined,
  dtype: DType,
): TensorData {
  const n = shape[0], c = shape[1];
  const d = size(shape.slice(2));
  const reductionName = attrString(node, "reduction", "mean");
  const ign = node.attrs.ignore_index;
  const ignore = ign?.kind === "int" ? ign.value : undefined;
  if (target.length !== n * d) {
    throw new LowbitError("SHAPE_MISMATCH", `${node.op}: target shape does not match input`, {
      node: node.name,
    });
  }
  const loss = new Float64Array(n * d);
  const w = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const t = target[i * d + j];
      if (t === ignore) continue;
      if (!(t >= 0 && t < c)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `${node.op}: target ${t} is outside [0, ${c})`,
          { node: node.name },
        );
      }
      w[i * d + j] = weight ? weight[t] : 1;
      loss[i * d + j] = -logp[(i * c + t) * d + j] * w[i * d + j];
    }
  }
  if (reductionName === "none") return floatOut(node, dtype, [n, ...shape.slice(2)], loss);
  let s = 0, ws = 0;
  for (let i = 0; i < loss.length; i++) {
    s += loss[i];
    ws += w[i];
  }
  if (reductionName === "sum") return floatOut(node, dtype, [], [s]);
  if (reductionName === "mean") {
    const denom = weight !== undefined || ignore !== undefined ? ws : loss.length;
    return floatOut(node, dtype, [], [s / denom]);
  }
  throw new LowbitError("UNSUPPORTED", `${node.op}: reduction '${reductionName}'`, {
    node: node.name,
  });
}

function checkInput(node: Node, x: TensorData): void {
  if (x.shape.length < 2 || (x.dtype !== "float32" && x.dtype !== "float64")) {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: input must be float32 / float64 of rank >= 2, got ${x.dtype} [${x.shape}]`,
      { node: node.name },
    );
  }
}

const nllLoss: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0], "input");
  checkInput(node, x);
  const target = toNumbers(need(node, inputs[1], "target"));
  const weight = inputs[2]?.data as ArrayLike<number> | undefined;
  return [nll(node, x.data as Float32Array, x.shape, target, weight, x.dtype)];
};

const softmaxCrossEntropy: OpImpl = (inputs, node) => {
  const x = need(node, inputs[0], "scores");
  checkInput(node, x);
  const target = toNumbers(need(node, inputs[1], "labels"));
  const weight = inputs[2]?.data as ArrayLike<number> | undefined;
  const n = x.shape[0], c = x.shape[1], d = size(x.shape.slice(2));
  const s = x.data as Float32Array;
  const logp = new Float64Array(s.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      let mx = -Infinity;
      for (let k = 0; k < c; k++) mx = Math.max(mx, s[(i * c + k) * d + j]);
      let sum = 0;
      for (let k = 0; k < c; k++) sum += Math.exp(s[(i * c + k) * d + j] - mx);
      const lse = Math.log(sum) + mx;
      for (let k = 0; k < c; k++) logp[(i * c + k) * d + j] = s[(i * c + k) * d + j] - lse;
    }
  }
  const loss = nll(node, logp, x.shape, target, weight, x.dtype);
  return [loss, floatOut(node, x.dtype, [...x.shape], logp)];
};

/**
 * The loss ops, by name.
 *
 * @example
 * ```ts
 * import { lossOps } from "./loss.ts";
 * const node = {
 *   name: "l", op: "NegativeLogLikelihoodLoss", domain: "", inputs: ["x", "t"], outputs: ["y"],
 *   attrs: { reduction: { kind: "string" as const, value: "sum" } },
 * };
 * const x = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([-1, -2, -3, -4]) };
 * const t = { dtype: "int64" as const, shape: [2], data: new BigInt64Array([1n, 0n]) };
 * const [y] = await lossOps.NegativeLogLikelihoodLoss([x, t], node, { opset: 13 });
 * if (y.data[0] !== 5) throw new Error(); // 2 + 3
 * ```
 */
export const lossOps: OpTable<"NegativeLogLikelihoodLoss" | "SoftmaxCrossEntropyLoss"> = {
  NegativeLogLikelihoodLoss: nllLoss,
  SoftmaxCrossEntropyLoss: softmaxCrossEntropy,
};
