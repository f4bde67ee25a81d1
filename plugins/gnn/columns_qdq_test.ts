// One range per feature column and no degree bin (`--gnn-bins 1`, no protection): the points become
// the built-in quantizer per channel along the feature axis, which the QDQ ONNX export writes as
// per-axis QuantizeLinear / DequantizeLinear (axis 1). The exported model, run by our executor,
// must give the simulation's logits, and onnxruntime-web the executor's exactly; the plugin's own
// quantizer with the same ranges (bins × columns with one bin) must give the same values as the
// per-channel entry. The dense export, rewritten by the self-loop split, stays a valid ONNX model
// that onnxruntime-web runs to the executor's logits.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { createRegistry, registerBuiltins, type Registry } from "@lowbit/core";
import { createExecutor, readOnnx } from "@lowbit/graph";
import { encodeQuantized, fakeQuantActivation, quantize, simulate } from "@lowbit/pipeline";
import { degreeQuantizer, fitDegreeParams, nodeDegrees, plugin } from "./mod.ts";
import { graphInputs, model } from "./_fixtures.ts";

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

Deno.test({
  name: "--gnn-bins 1 (columns only): per-axis QDQ along the features, as simulated",
  sanitizeResources: false,
  async fn() {
    const name = "gcn2_edges";
    const inputs = await graphInputs(name);
    const { quantized } = await quantize({
      model: await model(name),
      calib: { inputs: { ...inputs }, count: 400 },
      preset: "w8a4",
      registry: registry(),
      pluginOptions: { "gnn-bins": 1, "gnn-fit": "minmax" },
    });
    const points = quantized.plan.entries.filter((e) => !e.skip && e.by === "gnn-aggregations");
    assert.equal(points.length, 5);
    for (const e of points) {
      assert.equal(e.quantizer, "uniform", e.value); // the built-in one
      assert.deepEqual(e.granularity, { kind: "channel", axis: 1 }, e.value);
    }
    // the first aggregation's output Â·(XW): 32 columns, each its own int4 range
    const agg = points.find((e) => e.value === "/ScatterElements_1_output_0")!;
    assert.equal(agg.scale!.length, 32);
    assert.equal(new Set(agg.scale).size, 32);
    // the same values as the plugin's quantizer with one bin and 32 column ranges
    const exec = createExecutor(await model(name));
    const value = (await exec.run(inputs, { outputs: [agg.value] }))[agg.value];
    const t = { shape: [...value.shape], data: value.data as Float32Array };
    const source = { input: "edge_index", kind: "edges" as const, row: 1 };
    const qp = fitDegreeParams(t, nodeDegrees(inputs.edge_index, source, 400), {
      bins: 1,
      protect: 0,
      protectFloat: false,
      source,
      columns: 32,
    }, { format: "int4", mode: agg.mode! });
    assert.deepEqual([...qp.scale.subarray(0, 32)], agg.scale);
    const ctx = { batch: 0, tags: {}, inputs: inputs as never };
    assert.deepEqual(
      fakeQuantActivation(t.data, t.shape, agg, 1),
      degreeQuantizer(registry()).fakeQuant(t, qp, ctx).data,
    );
    // the QDQ ONNX file: per-axis Q / DQ with the plan's scales, run by our executor
    const bytes = encodeQuantized(quantized, "m.onnx");
    const onnx = readOnnx(bytes);
    const q = onnx.graph.nodes.filter((n) => n.op === "QuantizeLinear");
    assert.ok(q.some((n) => n.inputs[0].startsWith(agg.value) && n.attrs.axis?.value === 1));
    const sim = (await simulate(quantized).run(inputs)).data as Float32Array;
    const out = (await createExecutor(onnx).run(inputs)).logits.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < sim.length; i++) worst = Math.max(worst, Math.abs(out[i] - sim[i]));
    assert.ok(worst < 1e-4, `largest difference ${worst}`);
    // onnxruntime-web (the oracle) runs the same file to the same logits
    const session = await ort.InferenceSession.create(bytes);
    const ei = inputs.edge_index;
    const res = await session.run({
      x: new ort.Tensor("float32", inputs.x.data as Float32Array, inputs.x.shape),
      edge_index: new ort.Tensor("int64", ei.data as BigInt64Array, ei.shape),
    });
    assert.deepEqual(res.logits.data as Float32Array, out);
  },
});

Deno.test({
  name: "the dense export, its self-loops split (EyeLike, Sub, Add), as QDQ ONNX: ORT agrees",
  sanitizeResources: false,
  async fn() {
    const inputs = await graphInputs("gcn2_dense");
    const { quantized } = await quantize({
      model: await model("gcn2_dense"),
      calib: { inputs: { ...inputs }, count: 400 },
      preset: "w8a4",
      registry: registry(),
      pluginOptions: { "gnn-bins": 1, "gnn-fit": "minmax" },
    });
    const bytes = encodeQuantized(quantized, "m.onnx");
    const onnx = readOnnx(bytes);
    assert.equal(onnx.graph.nodes.filter((n) => n.op === "EyeLike").length, 2);
    const sim = (await simulate(quantized).run(inputs)).data as Float32Array;
    const out = (await createExecutor(onnx).run(inputs)).logits.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < sim.length; i++) worst = Math.max(worst, Math.abs(out[i] - sim[i]));
    assert.ok(worst < 1e-4, `largest difference ${worst}`);
    const session = await ort.InferenceSession.create(bytes);
    const res = await session.run({
      x: new ort.Tensor("float32", inputs.x.data as Float32Array, inputs.x.shape),
      adj: new ort.Tensor("float32", inputs.adj.data as Float32Array, inputs.adj.shape),
    });
    const got = res.logits.data as Float32Array;
    worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - out[i]));
    // the 400-term MatMul sums may round in another order in onnxruntime-web
    assert.ok(worst < 1e-4, `onnxruntime-web differs by ${worst}`);
  },
});
