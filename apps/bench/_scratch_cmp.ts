import * as ort from "onnxruntime-web";
import { createExecutor, readOnnxFile } from "@lowbit/graph";
const [path, H, W] = [Deno.args[0], Number(Deno.args[1]), Number(Deno.args[2])];
const model = await readOnnxFile(path);
console.log("opsets", model.opsets, model.graph.inputs, model.graph.outputs);
for (const n of model.graph.nodes) {
  if (n.op === "Resize" || n.op === "ConvTranspose" || n.op === "Slice" || n.op === "Clip") {
    console.log(n.op, n.inputs, JSON.stringify(n.attrs));
  }
}
const exec = createExecutor(model);
const x = new Float32Array(3 * H * W);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.8;
const t0 = performance.now();
const out = await exec.run({
  [model.graph.inputs[0].name]: { dtype: "float32", shape: [1, 3, H, W], data: x },
});
console.log("ours ms", performance.now() - t0);
const s = await ort.InferenceSession.create(Deno.readFileSync(path));
const o = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, [1, 3, H, W]) });
for (const name of s.outputNames) {
  const a = out[name].data as Float32Array, b = o[name].data as Float32Array;
  let maxAbs = 0, maxRel = 0, bad = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / (Math.abs(b[i]) + 1e-12));
    if (d > 1e-5 + 1e-4 * Math.abs(b[i])) bad++;
  }
  console.log(name, out[name].shape, o[name].dims, { maxAbs, maxRel, bad, n: a.length });
}
