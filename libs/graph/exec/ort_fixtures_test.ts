// Models quantized by onnxruntime's own quantizer (fixtures/ort_quantized, made from the digits
// fixtures by tools/fixtures/ort_quantized.py): dynamic (MatMulInteger / ConvInteger), static
// QOperator (QLinearConv, QLinearMatMul, com.microsoft QGemm / QLinearAdd / QLinearMul /
// QLinearSoftmax / QLinearGlobalAveragePool) and 4-bit MatMulNBits. Our executor against onnxruntime-web on the evaluation images.

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { readNpy } from "../npy.ts";
import { readOnnxFile } from "../onnx_file.ts";
import { createExecutor } from "./executor.ts";
import { assertClose, compare } from "./_testing.ts";

ort.env.wasm.numThreads = 1;

const DIR = new URL("../../../fixtures/ort_quantized/", import.meta.url);
const x = readNpy(
  Deno.readFileSync(new URL("../../../fixtures/digits/eval_x.npy", import.meta.url)),
);
const y = readNpy(
  Deno.readFileSync(new URL("../../../fixtures/digits/eval_y.npy", import.meta.url)),
);

function top1(logits: Float32Array): number {
  let hits = 0;
  const labels = y.data as BigInt64Array;
  for (let i = 0; i < labels.length; i++) {
    const row = logits.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === Number(labels[i])) hits++;
  }
  return hits / labels.length;
}

for (
  const name of ["mlp_dynamic", "cnn_dynamic", "cnn_qoperator", "vit_qoperator", "vit_matmul4"]
) {
  Deno.test(`onnxruntime-quantized ${name} matches onnxruntime-web`, async () => {
    const url = new URL(`${name}.onnx`, DIR);
    const model = await readOnnxFile(url.pathname);
    const session = await ort.InferenceSession.create(Deno.readFileSync(url));
    const theirs = (await session.run({
      x: new ort.Tensor("float32", x.data as Float32Array, x.shape),
    })).logits.data as Float32Array;
    await session.release();
    const ours = (await createExecutor(model).run({ x })).logits.data as Float32Array;
    if (name !== "cnn_dynamic") assertClose(ours, theirs, 1e-4, 1e-4, name);
    else {
      // DynamicQuantizeLinear's scale comes from the batch maximum of a float Conv output; an
      // ulp of difference between the two Conv implementations moves the scale by an ulp and
      // flips one code on a rounding tie (seen: 119 vs 120 of one value), which then spreads
      // through the next layers. Most logits still agree to 1e-4, all to 0.1.
      const r = compare(ours, theirs, 1e-4, 1e-4);
      assert.ok(r.bad <= ours.length / 50 && r.maxAbs < 0.1, `${name}: ${JSON.stringify(r)}`);
    }
    // and it still classifies digits (torch's float models: 95.8–98.8 % top-1)
    assert.ok(top1(ours) > 0.9, `${name}: top-1 ${top1(ours)}`);
  });
}
