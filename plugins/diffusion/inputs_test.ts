import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { readOnnxFile } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { findDiffusionInputs, timeTensor } from "./inputs.ts";

const FIX = fileURLToPath(new URL("../../fixtures/", import.meta.url));

Deno.test("the fixture's time input is the per-sample float32 't', the image 'x'", async () => {
  const m = await readOnnxFile(FIX + "ddpm/ddpm.onnx");
  const r = findDiffusionInputs(m.graph);
  assert.deepEqual([r.image, r.time, r.timeDtype], ["x", "t", "float32"]);
  assert.deepEqual(timeTensor([3], r.timeDtype, r.timeShape), {
    dtype: "float32",
    shape: [1],
    data: Float32Array.of(3),
  });
});

Deno.test("a model without a time input is a clear error naming the file and its inputs", async () => {
  const m = await readOnnxFile(FIX + "digits/mlp.onnx");
  const e = (() => {
    try {
      findDiffusionInputs(m.graph, { file: "mlp.onnx" });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(e instanceof LowbitError);
  assert.match(e.message, /^file 'mlp\.onnx': the model has no time input .*--time-input/);
  assert.throws(
    () => findDiffusionInputs(m.graph, { timeInput: "tt" }),
    /no input 'tt' \(--time-input\)/,
  );
});
