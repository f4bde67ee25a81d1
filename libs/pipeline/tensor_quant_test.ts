import assert from "node:assert/strict";
import { createRng } from "@lowbit/core";
import type { Layer } from "./layers.ts";
import { fromOutIn, toOutIn } from "./layers.ts";
import type { PlanEntry } from "./plan.ts";
import {
  columnRounder,
  fakeQuantActivation,
  fakeQuantWeight,
  fitWeight,
  resolveWeightGranularity,
} from "./tensor_quant.ts";
import type { GranularitySpec } from "./spec.ts";

const conv: Layer = {
  node: "c",
  op: "Conv",
  input: "x",
  weight: "W",
  shape: [6, 8, 3, 3],
  outAxis: 0,
  inAxis: 1,
  window: 9,
  groups: 1,
  out: 6,
  in: 72,
};
const matmul: Layer = {
  node: "m",
  op: "MatMul",
  input: "x",
  weight: "W",
  shape: [64, 5],
  outAxis: 1,
  inAxis: 0,
  window: 1,
  groups: 1,
  out: 5,
  in: 64,
};
const gemmT: Layer = { ...matmul, op: "Gemm", shape: [5, 64], outAxis: 0, inAxis: 1 };

Deno.test("columnRounder() rounds every column exactly as fakeQuantWeight() rounds the weight", () => {
  const rng = createRng(3);
  const cases: [Layer, string, GranularitySpec][] = [];
  for (const l of [conv, matmul, gemmT]) {
    for (const g of ["tensor", "channel", { group: 4 }] as GranularitySpec[]) {
      for (const f of ["int4", "int8", "fp8_e4m3fn", "fp4_e2m1fn"]) cases.push([l, f, g]);
    }
    cases.push([l, "mxfp4", "tensor"], [l, "nvfp4", "tensor"]);
  }
  for (const [layer, format, g] of cases) {
    const n = layer.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(n).map(() => rng.normal());
    const e: PlanEntry = {
      node: layer.node,
      value: "W",
      role: "weight",
      format,
      granularity: resolveWeightGranularity(layer, g, format),
      mode: "symmetric",
    };
    const qp = fitWeight(layer, w, e);
    const want = fakeQuantWeight(layer, w, qp);
    const round = columnRounder(layer, w, qp);
    const view = toOutIn(layer, w);
    const got = new Float32Array(view.length);
    for (let j = 0; j < layer.in; j++) {
      const col = new Float32Array(layer.out).map((_, o) => view[o * layer.in + j]);
      round(col, j).forEach((v, o) => (got[o * layer.in + j] = v));
    }
    const where = `${layer.op} ${format} ${JSON.stringify(e.granularity)}`;
    assert.deepEqual(fromOutIn(layer, got), want, where);
  }
});

Deno.test("resolveWeightGranularity() maps channel and group onto the weight's own axes", () => {
  assert.deepEqual(resolveWeightGranularity(matmul, "channel", "int8"), {
    kind: "channel",
    axis: 1,
  });
  assert.deepEqual(resolveWeightGranularity(matmul, { group: 32 }, "int4"), {
    kind: "group",
    axis: 0,
    size: 32,
  });
  // A 3×3 conv with 8 input channels under group:128: its rows (8·9 = 72 weights) fit one
  // group → per output channel; with 32 input channels (288 weights a row) → groups of the 32
  // channels at each kernel position; group:64 on the 8-channel conv → 8 channels a position.
  assert.deepEqual(resolveWeightGranularity(conv, { group: 128 }, "int4"), {
    kind: "channel",
    axis: 0,
  });
  const wide = { ...conv, shape: [6, 32, 3, 3], in: 288 };
  assert.deepEqual(resolveWeightGranularity(wide, { group: 128 }, "int4"), {
    kind: "group",
    axis: 1,
    size: 32,
  });
  assert.deepEqual(resolveWeightGranularity(conv, { group: 64 }, "int4"), {
    kind: "group",
    axis: 1,
    size: 8,
  });
  // Depthwise (one input channel per group) falls back to per channel.
  const dw = { ...conv, shape: [6, 1, 3, 3], groups: 6, in: 9 };
  assert.deepEqual(resolveWeightGranularity(dw, { group: 128 }, "int4"), {
    kind: "channel",
    axis: 0,
  });
  // Block formats: blocks along each output channel's row (input channels and window together).
  assert.deepEqual(resolveWeightGranularity(conv, "channel", "mxfp4"), {
    kind: "block",
    axis: 1,
    size: 32,
    flatten: conv.shape.length - 2,
  });
  assert.deepEqual(resolveWeightGranularity(matmul, "channel", "nvfp4"), {
    kind: "block",
    axis: 0,
    size: 16,
  });
});

Deno.test("fakeQuantActivation() quantizes dynamic block formats along the channel axis", () => {
  const e: PlanEntry = {
    node: "n",
    value: "x",
    role: "activation",
    format: "mxfp8_e4m3",
    granularity: { kind: "tensor" },
    mode: "symmetric",
    dynamic: true,
  };
  // NCHW with 3 channels (not a multiple of 32: the block is zero-padded).
  const x = new Float32Array(2 * 3 * 4).map((_, i) => (i % 7) - 3.3);
  const y = fakeQuantActivation(x, [2, 3, 2, 2], e, 1);
  assert.equal(y.length, x.length);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(y[i] - x[i]) <= Math.abs(x[i]) / 8 + 1e-6);
});
