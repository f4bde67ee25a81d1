import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { type Model, modelOf } from "@lowbit/graph";
import { digitsCalib, digitsEval, digitsModel } from "./_testdata.ts";
import { evaluate } from "./evaluate.ts";
import { parsePlan } from "./plan.ts";
import { presetNames } from "./presets.ts";
import { quantize, type QuantizeOptions } from "./quantize.ts";
import { floatRunner, simulate } from "./simulate.ts";
import { planToJson } from "./export.ts";
import { sliceBatch } from "./dataset.ts";

async function top1(model: Model, opts: Omit<QuantizeOptions, "model" | "calib">) {
  const calib = await digitsCalib();
  const { data, labels } = await digitsEval();
  const { quantized } = await quantize({ model, calib, ...opts });
  const r = await evaluate(floatRunner(model), simulate(quantized), data, { labels });
  return { float: r.top1_float!, quant: r.top1_quant!, sqnr: r.sqnr_db, quantized };
}

Deno.test("quantize() w8a8 keeps the digits CNN within 0.5 points of float", async () => {
  const r = await top1(await digitsModel("cnn"), { preset: "w8a8" });
  assert.ok(r.quant >= r.float - 0.005, `float ${r.float}, w8a8 ${r.quant}`);
});

Deno.test("quantize() w4a8 with GPTQ keeps the CNN within 2 points and beats RTN", async () => {
  const cnn = await digitsModel("cnn");
  const g = await top1(cnn, { preset: "w4a8", rounding: "gptq" });
  const r = await top1(cnn, { preset: "w4a8", rounding: "rtn" });
  assert.ok(g.quant >= g.float - 0.02, `float ${g.float}, w4a8 gptq ${g.quant}`);
  assert.ok(g.sqnr > r.sqnr + 1, `GPTQ SQNR ${g.sqnr} dB vs RTN ${r.sqnr} dB`);
  assert.ok(g.quant >= r.quant, `GPTQ top-1 ${g.quant} vs RTN ${r.quant}`);
});

Deno.test("quantize() w8a8 keeps the tiny ViT within 1 point of float", async () => {
  const r = await top1(await digitsModel("vit"), { preset: "w8a8" });
  assert.ok(r.quant >= r.float - 0.01, `float ${r.float}, w8a8 ${r.quant}`);
});

Deno.test("quantize() runs every preset on the MLP and the result runs on our executor", async () => {
  const mlp = await digitsModel("mlp");
  const calib = await digitsCalib();
  for (const preset of presetNames().filter((p) => p !== "mixed")) {
    const { quantized } = await quantize({ model: mlp, calib, preset });
    const y = await simulate(quantized).run(calib.inputs);
    assert.deepEqual(y.shape, [200, 10], preset);
    assert.ok((y.data as Float32Array).every(Number.isFinite), preset);
    assert.ok(quantized.plan.entries.every((e) => e.skip || e.dynamic || e.scale), preset);
  }
});

Deno.test("quantize() replays its own plan to the same weights", async () => {
  const cnn = await digitsModel("cnn");
  const calib = await digitsCalib();
  const first = await quantize({ model: cnn, calib, preset: "w4a8", rounding: "gptq" });
  const plan = parsePlan(JSON.parse(planToJson(first.quantized.plan)));
  const again = await quantize({ model: cnn, calib, plan });
  for (const e of first.quantized.plan.entries.filter((x) => x.role === "weight")) {
    const a = first.quantized.model.graph.initializers.get(e.value)!.data as Float32Array;
    const b = again.quantized.model.graph.initializers.get(e.value)!.data as Float32Array;
    assert.deepEqual(b, a, e.value);
  }
  assert.deepEqual(again.quantized.plan.entries, first.quantized.plan.entries);
});

Deno.test("quantize() replays a version-1 plan of block formats to the same model", async () => {
  const cnn = await digitsModel("cnn");
  const calib = await digitsCalib();
  const first = await quantize({ model: cnn, calib, preset: "mxfp4" });
  // The plan as version 1 wrote it: block formats per tensor with a unit scale, no quantizer,
  // no extras (block scales were the weight's own).
  const v1 = JSON.parse(planToJson(first.quantized.plan));
  v1.version = 1;
  for (const e of v1.entries) {
    if (e.skip) continue;
    delete e.quantizer;
    delete e.extra;
    e.granularity = { kind: "tensor" };
    e.scale = [1];
    e.zeroPoint = [0];
  }
  const again = await quantize({ model: cnn, calib, plan: parsePlan(v1) });
  const x = calib.inputs.x;
  assert.deepEqual(
    (await simulate(again.quantized).run({ x })).data,
    (await simulate(first.quantized).run({ x })).data,
  );
});

Deno.test("quantize() applies rules: skipped layers stay float, a rule matching nothing warns", async () => {
  const mlp = await digitsModel("mlp");
  const calib = await digitsCalib();
  const layer = mlp.graph.nodes.find((n) => n.op === "Gemm")!.name;
  const { quantized, warnings } = await quantize({
    model: mlp,
    calib,
    rules: [{ match: layer, skip: true }, { match: "no.such.*", skip: true }],
  });
  const w = quantized.plan.entries.find((e) => e.node === layer && e.role === "weight")!;
  assert.equal(w.skip, true);
  assert.deepEqual(
    quantized.model.graph.initializers.get(w.value)!.data,
    mlp.graph.initializers.get(w.value)!.data,
  );
  assert.ok(warnings.some((m) => m.includes("'no.such.*'")), warnings.join("\n"));
});

Deno.test("quantize() rejects a model with no quantizable layer", async () => {
  const model = modelOf({
    name: "relu",
    nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
    inputs: [{ name: "x", dtype: "float32", shape: ["N", 4] }],
    outputs: [{ name: "y", dtype: "float32" }],
  });
  await assert.rejects(
    () => quantize({ model }),
    (e: unknown) => e instanceof LowbitError && /no quantizable layer/.test(e.message),
  );
});

Deno.test("quantize() with SmoothQuant and bias correction keeps the ViT accurate", async () => {
  const vit = await digitsModel("vit");
  const r = await top1(vit, { preset: "w8a8", smoothquant: 0.5, biasCorrection: true });
  assert.ok(r.quant >= r.float - 0.01, `float ${r.float}, smoothed w8a8 ${r.quant}`);
  assert.ok(Object.keys(r.quantized.plan.smoothing ?? {}).length > 0, "nothing was smoothed");
});

Deno.test("quantize() rounds to nearest, and says so, where GPTQ has fewer input rows than columns", async () => {
  const model = await digitsModel("mlp");
  const full = await digitsCalib();
  // 16 samples: each Gemm sees 16 input rows, fewer than its input width (64 pixels first).
  const few = { inputs: sliceBatch(full, 0, 16), count: 16 };
  const width = 64;
  const g = await quantize({ model, calib: few, preset: "w8a8", rounding: "gptq" });
  const r = await quantize({ model, calib: few, preset: "w8a8", rounding: "rtn" });
  const first = g.quantized.layers[0];
  assert.equal(first.in, width);
  assert.ok(
    g.warnings.some((w) =>
      w.startsWith(`${first.node}: GPTQ needs at least as many calibration input rows`) &&
      w.includes(`(16 < ${width}`)
    ),
    g.warnings.join("\n"),
  );
  // The same on-grid weights as round to nearest.
  const wg = g.quantized.model.graph.initializers.get(first.weight)!.data as Float32Array;
  const wr = r.quantized.model.graph.initializers.get(first.weight)!.data as Float32Array;
  assert.deepEqual(wg, wr);
  // With the 200 samples GPTQ runs on it (other weights than round to nearest).
  const g200 = await quantize({ model, calib: full, preset: "w8a8", rounding: "gptq" });
  assert.ok(!g200.warnings.some((w) => w.includes("GPTQ needs")), g200.warnings.join("\n"));
  const w200 = g200.quantized.model.graph.initializers.get(first.weight)!.data as Float32Array;
  assert.notDeepEqual(w200, wr);
});
