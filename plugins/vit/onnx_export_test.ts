// Log-quantized points as standard ONNX ops: on the digits ViT at w4a4 (adalog Softmax, uniform
// GELU), the standard-op graph computes exactly what the .lowbit computes in our executor, and
// onnxruntime-web runs it to float rounding; a twin-uniform point is refused by name.
import assert from "node:assert/strict";
import { createRegistry, LowbitError, registerBuiltins } from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  readNpy,
  readOnnxFile,
  writeOnnx,
} from "@lowbit/graph";
import { encodeLowbitModel, quantize } from "@lowbit/pipeline";
import * as ort from "onnxruntime-web";
import { fileURLToPath } from "node:url";
import { logOnnxModel } from "./onnx_export.ts";
import { plugin } from "./plugin.ts";

ort.env.wasm.numThreads = 1;
const FIX = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));

function registry() {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

async function quantized(gelu: string) {
  const r = registry();
  const model = await readOnnxFile(`${FIX}vit.onnx`);
  const x = readNpy(await Deno.readFile(`${FIX}calib_x.npy`));
  const { quantized } = await quantize({
    model,
    calib: { inputs: { x }, count: x.shape[0] },
    preset: "w4a4",
    registry: r,
    pluginOptions: { "vit-gelu": gelu, "vit-layernorm": "reparam", "vit-bias": "empirical" },
  });
  return {
    r,
    runnable: lowbitModel(decodeLowbitFile(encodeLowbitModel(quantized)), { registry: r }),
  };
}

Deno.test({
  name: "adalog points as standard ops: our executor bit for bit, onnxruntime-web to rounding",
  sanitizeResources: false,
  async fn() {
    const { r, runnable } = await quantized("uniform");
    assert.equal(runnable.graph.nodes.filter((n) => n.op === "FakeQuant").length, 2);
    const std = logOnnxModel(runnable, r);
    assert.ok(std.graph.nodes.every((n) => n.domain === ""));
    const all = readNpy(await Deno.readFile(`${FIX}eval_x.npy`));
    const n = 100;
    const x = { ...all, shape: [n, 1, 8, 8], data: (all.data as Float32Array).slice(0, n * 64) };
    const ref = (await createExecutor(runnable, { registry: r }).run({ x })).logits.data;
    const ours = (await createExecutor(std, { registry: r }).run({ x })).logits.data;
    assert.deepEqual(ours, ref);
    const session = await ort.InferenceSession.create(writeOnnx(std), {
      graphOptimizationLevel: "disabled",
    });
    const feeds = { x: new ort.Tensor("float32", x.data as Float32Array, x.shape) };
    const theirs = (await session.run(feeds)).logits.data as Float32Array;
    await session.release();
    let num = 0, den = 0, same = 0;
    for (let i = 0; i < ref.length; i++) {
      num += (theirs[i] - (ref[i] as number)) ** 2;
      den += (ref[i] as number) ** 2;
    }
    const arg = (d: ArrayLike<number>, s: number) => {
      let b = 0;
      for (let j = 1; j < 10; j++) if (d[s * 10 + j] > d[s * 10 + b]) b = j;
      return b;
    };
    for (let s = 0; s < n; s++) if (arg(theirs, s) === arg(ref as Float32Array, s)) same++;
    console.log(
      `onnxruntime-web vs lowbit: relative L2 ${Math.sqrt(num / den)}, top-1 agree ${same}/${n}`,
    );
    // measured: 0 (bit for bit); float rounding of onnxruntime's kernels may differ elsewhere
    assert.ok(Math.sqrt(num / den) < 1e-5, `relative L2 ${Math.sqrt(num / den)}`);
    assert.ok(same >= n - 1, `${same}/${n}`);
  },
});

Deno.test({
  name: "a twin-uniform point has no standard form: the error names it",
  sanitizeResources: false,
  async fn() {
    const { r, runnable } = await quantized("twin");
    assert.throws(
      () => logOnnxModel(runnable, r),
      (e: unknown) =>
        e instanceof LowbitError && e.subject.tensor === "/blocks.0/Mul_1_output_0" &&
        /twin-uniform.*\.lowbit/.test(e.message),
    );
  },
});
