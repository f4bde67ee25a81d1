import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { imageSpecFor, pagePresets, quantizeInMemory } from "./flow.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function code(c: string, re: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof LowbitError && e.code === c && re.test(e.message);
}

Deno.test("imageSpecFor reads the layout from the model's input, and refuses non-images", () => {
  assert.deepEqual(imageSpecFor({ name: "x", dtype: "float32", shape: ["N", 3, 32, 24] }), {
    size: [32, 24],
    layout: "NCHW",
    channels: 3,
    mean: [0],
    std: [1],
  });
  const nhwc = imageSpecFor({ name: "x", dtype: "float32", shape: [1, 28, 28, 1] }, [0.5], [0.25]);
  assert.deepEqual(nhwc, { size: [28, 28], layout: "NHWC", channels: 1, mean: [0.5], std: [0.25] });
  for (
    const shape of [["N", 64], ["N", 2, 8, 8], ["N", 3, "H", "W"], ["N", 8, 8, 4]] as (
      | string
      | number
    )[][]
  ) {
    assert.throws(
      () => imageSpecFor({ name: "x", dtype: "float32", shape }),
      code("UNSUPPORTED", /not an image batch/),
      JSON.stringify(shape),
    );
  }
  assert.throws(
    () => imageSpecFor({ name: "ids", dtype: "int64", shape: ["N", 1, 8, 8] }),
    code("UNSUPPORTED", /not an image batch/),
  );
});

Deno.test("quantizeInMemory refuses what the page cannot do with clear errors", async () => {
  assert.ok(!pagePresets().includes("mixed") && pagePresets().includes("mxfp4"));
  const onnx = Deno.readFileSync(`${ROOT}fixtures/digits/cnn.onnx`);
  const img = { width: 8, height: 8, data: new Uint8Array(256).fill(255) };
  const base = { onnx, name: "cnn.onnx", images: [img], format: "lowbit" as const, chartJs: "" };
  await assert.rejects(
    quantizeInMemory({ ...base, preset: "mixed" }),
    code("UNKNOWN_NAME", /'mixed' is not offered here/),
  );
  await assert.rejects(
    quantizeInMemory({ ...base, preset: "w8a8", images: [] }),
    code("INVALID_ARGUMENT", /no images/),
  );
  await assert.rejects(
    quantizeInMemory({ ...base, preset: "w8a8", onnx: new Uint8Array([1, 2, 3]) }),
    code("PARSE_ERROR", /cnn\.onnx/),
  );
  await assert.rejects(
    quantizeInMemory({ ...base, preset: "mxfp4", format: "onnx" }),
    (e) => e instanceof LowbitError && /QDQ|\.lowbit/.test(e.message),
  );
});
