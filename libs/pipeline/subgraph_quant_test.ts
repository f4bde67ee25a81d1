// Weight corrections on layers inside an If branch (as Silero v4's Convs are): bias correction
// adds its bias inside the branch, GPTQ gets its Hessian from the branch's inputs, and a 1-D Conv
// takes both. Checked against the same Conv at the top level: the same corrected weights and bias;
// the report's model sizes count the branches' weights.
import assert from "node:assert/strict";
import { createRng } from "@lowbit/core";
import {
  createExecutor,
  findInitializer,
  ifNodeOf,
  type Model,
  modelOf,
  type TensorData,
} from "@lowbit/graph";
import { quantize } from "./quantize.ts";
import { runnableModel } from "./simulate.ts";
import { modelSizes } from "./report/build.ts";

const C = 4, O = 3, K = 5, L = 16, N = 12;

/** x [N, C, L] → 1-D Conv (no bias) → y, at the top level or inside both branches of an If. */
function model(inIf: boolean): Model {
  const rng = createRng(5);
  const w = new Float32Array(O * C * K).map(() => rng.normal());
  const W: TensorData = { dtype: "float32", shape: [O, C, K], data: w };
  const conv = (name: string, out: string) => ({
    name,
    op: "Conv",
    domain: "",
    inputs: ["x", `W_${name}`],
    outputs: [out],
    attrs: { pads: { kind: "ints" as const, value: [2, 2] } },
  });
  const opts = { opset: 14, producerName: "test" };
  if (!inIf) {
    return modelOf({
      inputs: [{ name: "x", dtype: "float32", shape: ["n", C, L] }],
      outputs: [{ name: "y", dtype: "float32" }],
      initializers: { W_conv: W },
      nodes: [conv("conv", "y")],
    }, opts);
  }
  const branch = (tag: string) => ({
    name: tag,
    inputs: [],
    outputs: [{ name: `y_${tag}`, dtype: "float32" as const }],
    valueInfo: new Map(),
    initializers: new Map([[`W_conv_${tag}`, W]]),
    nodes: [conv(`conv_${tag}`, `y_${tag}`)],
  });
  return modelOf({
    inputs: [
      { name: "x", dtype: "float32", shape: ["n", C, L] },
      { name: "c", dtype: "bool", shape: [] },
    ],
    outputs: [{ name: "y", dtype: "float32" }],
    nodes: [ifNodeOf("if", "c", ["y"], branch("a"), branch("b"))],
  }, opts);
}

Deno.test("bias correction and GPTQ on a 1-D Conv inside an If branch match the top-level Conv", async () => {
  const rng = createRng(6);
  // Inputs with a large mean, so the weights' rounding shifts the output mean.
  const x: TensorData = {
    dtype: "float32",
    shape: [N, C, L],
    data: new Float32Array(N * C * L).map(() => 2 + rng.normal()),
  };
  const c: TensorData = { dtype: "bool", shape: [], data: Uint8Array.of(1) };
  const opts = {
    preset: "w4a16",
    biasCorrection: true,
    rounding: "gptq" as const,
  };
  const flat = await quantize({ ...opts, model: model(false), calib: { inputs: { x }, count: N } });
  const nested = await quantize({
    ...opts,
    model: model(true),
    calib: { inputs: { x }, whole: { c }, count: N },
  });
  // GPTQ ran on both (a 1-D Conv, a layer of a branch): no "rounded to nearest instead".
  for (const r of [flat, nested]) {
    assert.ok(!r.warnings.some((w) => /GPTQ|rounded to nearest/.test(w)), r.warnings.join("; "));
  }
  // The branch that ran got the top-level Conv's GPTQ weights and its correction bias.
  const g = nested.quantized.model.graph;
  const conv = [...findInitializer(g, "W_conv_a")!.graph.nodes].find((n) => n.name === "conv_a")!;
  assert.equal(conv.inputs.length, 3);
  const bias = findInitializer(g, conv.inputs[2])!;
  assert.notEqual(bias.graph, g, "the bias sits in the branch");
  const flatConv = flat.quantized.model.graph.nodes[0];
  assert.deepEqual(
    bias.tensor.data,
    flat.quantized.model.graph.initializers.get(flatConv.inputs[2])!.data,
  );
  assert.deepEqual(
    findInitializer(g, "W_conv_a")!.tensor.data,
    flat.quantized.model.graph.initializers.get("W_conv")!.data,
  );
  // The report's sizes count the branches' weights (two copies of the top-level Conv's).
  const [sf, sn] = [flat, nested].map((r) => modelSizes(r.prepared, r.quantized));
  assert.equal(sn.floatBytes, 2 * sf.floatBytes);
  assert.equal(sn.quantBytes, 2 * sf.quantBytes);
  // And it pays: the output mean error shrinks against plain rounding to nearest.
  const yFloat = (await createExecutor(model(false)).run({ x })).y.data as Float32Array;
  const meanErr = async (m: Model, inputs: Record<string, TensorData>) => {
    const y = (await createExecutor(m).run(inputs)).y.data as Float32Array;
    return Math.abs(y.reduce((a, v, i) => a + v - yFloat[i], 0) / y.length);
  };
  const rtn = await quantize({
    preset: "w4a16",
    model: model(true),
    calib: { inputs: { x }, whole: { c }, count: N },
  });
  const before = await meanErr(runnableModel(rtn.quantized), { x, c });
  const after = await meanErr(runnableModel(nested.quantized), { x, c });
  assert.ok(after < before / 4, `mean output error ${before} → ${after}`);
});
