import assert from "node:assert/strict";
import { hawqMetric, hawqV2Metric, layerHessianMetric, zeroqMetric } from "@lowbit/core";
import type { Graph } from "@lowbit/graph";
import { scanLayers } from "../layers.ts";
import { parseCandidate } from "./candidates.ts";
import { createSensitivityContext } from "./context.ts";

// One Gemm, y = x·Wᵀ + b, W = [[1, 2], [3, -1]], b = [0.5, -0.5]; two samples.
const graph: Graph = {
  name: "g",
  inputs: [{ name: "x", dtype: "float32" }],
  outputs: [{ name: "y", dtype: "float32" }],
  nodes: [{
    name: "fc",
    op: "Gemm",
    domain: "",
    inputs: ["x", "W", "b"],
    outputs: ["y"],
    attrs: { transB: { kind: "int", value: 1 } },
  }],
  initializers: new Map([
    ["W", { dtype: "float32", shape: [2, 2], data: Float32Array.of(1, 2, 3, -1) }],
    ["b", { dtype: "float32", shape: [2], data: Float32Array.of(0.5, -0.5) }],
  ]),
  valueInfo: new Map(),
};
const X = [-1, 0.4, 2, 1.3];
const names = ["int8/channel@int2", "int8/channel@none", "int8/channel@int8"];
const ctx = createSensitivityContext({
  graph,
  layers: scanLayers(graph).layers,
  candidates: new Map(names.map((n) => [n, parseCandidate(n)])),
  feeds: { x: { shape: [2, 2], data: Float64Array.from(X) } },
  probes: 4,
});

// int2 affine on the range [-1, 2]: scale (2 − (−1)) / 3 = 1, zero point −1, grid {−1, 0, 1, 2}:
// Q(X) = [−1, 0, 2, 1], so Q(X) − X = [0, −0.4, 0, −0.3] and W·(Q(x) − x) per row is
// [2·(−0.4), −1·(−0.4)] = [−0.8, 0.4] and [2·(−0.3), 0.3] = [−0.6, 0.3]: (0.64 + 0.16 + 0.36 + 0.09) / 2 rows.
const HAND_ERR = 1.25 / 2;

function softmax(z: number[]): number[] {
  const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
}
function gemm(x: number[]): number[] {
  const y: number[] = [];
  for (let r = 0; r < 2; r++) {
    y.push(x[2 * r] + 2 * x[2 * r + 1] + 0.5, 3 * x[2 * r] - x[2 * r + 1] - 0.5);
  }
  return y;
}

Deno.test("createSensitivityContext(): activationError is ‖W·(Q(X) − X)‖² / rows, 0 for float inputs", async () => {
  assert.ok(Math.abs(await ctx.activationError!("fc", "int8/channel@int2") - HAND_ERR) < 1e-12);
  assert.equal(await ctx.activationError!("fc", "int8/channel@none"), 0);
  const e8 = await ctx.activationError!("fc", "int8/channel@int8");
  assert.ok(e8 > 0 && e8 < 1e-3 * HAND_ERR, `int8 error ${e8} is far below int2's`);
});

Deno.test("createSensitivityContext(): activationDivergence is the output KL with only the input quantized", async () => {
  const f = gemm(X), q = gemm([-1, 0, 2, 1]);
  let kl = 0;
  for (let r = 0; r < 2; r++) {
    const p = softmax(f.slice(2 * r, 2 * r + 2)), s = softmax(q.slice(2 * r, 2 * r + 2));
    kl += p[0] * Math.log(p[0] / s[0]) + p[1] * Math.log(p[1] / s[1]);
  }
  const d = await ctx.activationDivergence!("fc", "int8/channel@int2");
  assert.ok(Math.abs(d - kl / 2) < 1e-12, `${d} vs hand ${kl / 2}`);
  assert.equal(await ctx.activationDivergence!("fc", "int8/channel@none"), 0);
});

Deno.test("metrics score a pair as the weight score plus an activation term", async () => {
  const pair = "int8/channel@int2", none = "int8/channel@none";
  const energy = await ctx.inputEnergy!("fc");
  assert.ok(Math.abs(energy - X.reduce((s, v) => s + v * v, 0) / 4) < 1e-12);
  // layer-hessian: + the measured output error
  const lh = (await layerHessianMetric.score(ctx, "fc", pair)) -
    (await layerHessianMetric.score(ctx, "fc", none));
  assert.ok(Math.abs(lh - HAND_ERR) < 1e-12);
  // zeroq: + the KL with only the input quantized
  const zq = (await zeroqMetric.score(ctx, "fc", pair)) -
    (await zeroqMetric.score(ctx, "fc", none));
  assert.ok(Math.abs(zq - await ctx.activationDivergence!("fc", pair)) < 1e-12);
  // hawq-v2: + tr(H)/n / energy × the output error; hawq: + λ_max / energy × the output error
  const trace = await ctx.hessianTrace!("fc"), lambda = await ctx.topEigenvalue!("fc");
  const v2 = (await hawqV2Metric.score(ctx, "fc", pair)) -
    (await hawqV2Metric.score(ctx, "fc", none));
  assert.ok(Math.abs(v2 - (trace / 4 / energy) * HAND_ERR) < 1e-9 * Math.max(1, v2));
  const h = (await hawqMetric.score(ctx, "fc", pair)) - (await hawqMetric.score(ctx, "fc", none));
  assert.ok(Math.abs(h - (lambda / energy) * HAND_ERR) < 1e-9 * Math.max(1, h));
  assert.ok(v2 > 0 && h > 0);
});
