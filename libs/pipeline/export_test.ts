import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { LowbitError } from "@lowbit/core";
import { createExecutor, readOnnx } from "@lowbit/graph";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import {
  checkOutputPath,
  encodeQuantized,
  outputKind,
  planPathFor,
  writeQuantized,
} from "./export.ts";
import { sqnrDb } from "./metrics.ts";
import { quantize } from "./quantize.ts";
import { simulate } from "./simulate.ts";

Deno.test("encodeQuantized() QDQ exports run in onnxruntime-web and our executor like the simulation", async () => {
  const calib = await digitsCalib();
  const x = calib.inputs.x;
  for (
    const [name, preset] of [["cnn", "w8a8"], ["vit", "w4a8"], ["mlp", "w4a16"], ["cnn", "fp8"]]
  ) {
    const { quantized } = await quantize({ model: await digitsModel(name), calib, preset });
    const sim = (await simulate(quantized).run({ x })).data as Float32Array;
    const bytes = encodeQuantized(quantized, "m.onnx");
    const ours = (await createExecutor(readOnnx(bytes)).run({ x })).logits.data as Float32Array;
    // onnxruntime's extended QDQ fusions do not take float8: run fp8 models at "basic".
    const s = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: preset === "fp8" ? "basic" : "all",
    });
    const r = await s.run({ x: new ort.Tensor("float32", x.data as Float32Array, x.shape) });
    const theirs = r.logits.data as Float32Array;
    assert.ok(
      sqnrDb(sim, ours) > 50,
      `${name} ${preset}: ours vs simulation ${sqnrDb(sim, ours)} dB`,
    );
    assert.ok(
      sqnrDb(sim, theirs) > 40,
      `${name} ${preset}: onnxruntime vs simulation ${sqnrDb(sim, theirs)} dB`,
    );
  }
});

Deno.test("encodeQuantized() refuses formats ONNX cannot express, pointing to .lowbit", async () => {
  const { quantized } = await quantize({
    model: await digitsModel("mlp"),
    calib: await digitsCalib(),
    preset: "mxfp4",
  });
  assert.throws(() => encodeQuantized(quantized, "m.onnx"), /\.lowbit/);
});

Deno.test("outputKind() and checkOutputPath() reject unknown extensions and missing folders", async () => {
  assert.equal(outputKind("a.lowbit"), "lowbit");
  assert.throws(() => outputKind("a.pt"), /\.onnx/);
  await assert.rejects(
    () => checkOutputPath("/no/such/dir/m.onnx"),
    (e: unknown) => e instanceof LowbitError && /does not exist/.test(e.message),
  );
  assert.equal(planPathFor("x/m.onnx"), "x/m.plan.json");
});

Deno.test("writeQuantized() writes model and plan and leaves no temporary file", async () => {
  const { quantized } = await quantize({
    model: await digitsModel("mlp"),
    calib: await digitsCalib(),
  });
  const dir = await Deno.makeTempDir();
  try {
    await writeQuantized(quantized, `${dir}/m.onnx`);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["m.onnx", "m.plan.json"]);
    // A failing export writes nothing at all.
    const mx = await quantize({
      model: await digitsModel("mlp"),
      calib: await digitsCalib(),
      preset: "nvfp4",
    });
    await assert.rejects(() => writeQuantized(mx.quantized, `${dir}/mx.onnx`));
    const after = [];
    for await (const e of Deno.readDir(dir)) after.push(e.name);
    assert.deepEqual(after.sort(), ["m.onnx", "m.plan.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
