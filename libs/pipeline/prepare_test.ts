// The prepare stage: a float16 model (its weights are float weights) quantizes, keeps its
// float16 interface, and its top-1 stays with the float model's.
import assert from "node:assert/strict";
import { readNpy, readOnnxFile } from "@lowbit/graph";
import { evaluate, floatRunner, quantize, simulate } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";

const MISC = fileURLToPath(new URL("../../fixtures/misc/", import.meta.url));
const DIGITS = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));

Deno.test({
  name: "quantize() takes a float16 model: w8a8 keeps its float16 interface and its top-1",
  sanitizeResources: false,
  async fn() {
    const model = await readOnnxFile(`${MISC}cnn_fp16.onnx`);
    const x = readNpy(await Deno.readFile(`${MISC}eval_x_fp16.npy`));
    assert.equal(x.dtype, "float16");
    const calib = {
      inputs: {
        x: { ...x, shape: [200, 1, 8, 8], data: (x.data as Uint16Array).slice(0, 200 * 64) },
      },
      count: 200,
    };
    const { quantized, warnings } = await quantize({ model, calib, preset: "w8a8" });
    assert.ok(warnings.some((w) => /float16 \/ bfloat16 model/.test(w)));
    const weights = quantized.plan.entries.filter((e) => e.role === "weight" && !e.skip);
    assert.equal(weights.length, 7);
    const y = await simulate(quantized).run({ x });
    assert.equal(y.dtype, "float16");
    const labels = readNpy(await Deno.readFile(`${DIGITS}eval_y.npy`));
    const r = await evaluate(floatRunner(model), simulate(quantized), {
      inputs: { x },
      count: x.shape[0],
    }, { labels });
    // The float16 CNN's top-1 is 98.79 % (its PROVENANCE); w8a8 stays within a point of it.
    assert.ok(Math.abs(r.top1_float! - 0.9879) < 0.0021, `float ${r.top1_float}`);
    assert.ok(r.top1_quant! >= r.top1_float! - 0.01, `quantized ${r.top1_quant}`);
  },
});
