// A second dispatch form (plugins/moe/testdata/PROVENANCE.md): a Mixtral-style top-2 block with a
// one-hot expert mask, SwiGLU experts and index_add_ combine. It runs on the executor like torch
// and onnxruntime-web, detection finds its router and experts (names from make_top2.py's modules),
// and the plugin quantizes it with every expert's GPTQ rows weighted by its gates.
import * as ort from "onnxruntime-web";
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { detectMoE, lastCoverage, plugin } from "./mod.ts";

const DIR = new URL("testdata/", import.meta.url);
const model = await readOnnxFile(new URL("top2_moe.onnx", DIR).pathname);
const x = readNpy(Deno.readFileSync(new URL("top2_x.npy", DIR)));
ort.env.wasm.numThreads = 1;

Deno.test("a top-2 Mixtral-style block runs like torch and onnxruntime-web, and is detected", async () => {
  const ours = (await createExecutor(model).run({ x })).y.data as Float32Array;
  const torch = readNpy(Deno.readFileSync(new URL("top2_y.npy", DIR))).data as Float32Array;
  const session = await ort.InferenceSession.create(
    Deno.readFileSync(new URL("top2_moe.onnx", DIR)),
  );
  const theirs =
    (await session.run({ x: new ort.Tensor("float32", x.data as Float32Array, x.shape) }))
      .y.data as Float32Array;
  await session.release();
  for (let i = 0; i < ours.length; i++) {
    assert.ok(Math.abs(ours[i] - torch[i]) < 1e-5, `torch ${i}`);
    assert.ok(Math.abs(ours[i] - theirs[i]) < 1e-5, `onnxruntime-web ${i}`);
  }
  const [r] = detectMoE(model.graph).routers;
  assert.equal(r.node, "/gate/MatMul");
  assert.equal(r.k, 2);
  assert.equal(r.numExperts, 4);
  assert.equal(r.dispatch, "sparse");
  for (const e of r.experts) {
    const p = `/experts.${e.index}/`;
    assert.deepEqual(e.layers, [`${p}w1/MatMul`, `${p}w3/MatMul`, `${p}w2/MatMul`]);
  }
});

Deno.test("the plugin quantizes the top-2 block: counts, router in float, gates line up with GPTQ rows", async () => {
  const registry = createRegistry();
  registerBuiltins(registry);
  registry.use(plugin);
  const { quantized, warnings } = await quantize({
    model,
    calib: { inputs: { x }, count: x.shape[0] },
    preset: "w4a8",
    rounding: "gptq",
    registry,
  });
  const [c] = lastCoverage(registry)!;
  // top-2: every token goes to two experts
  assert.equal(c.natural.reduce((a, b) => a + b), 2 * 64);
  // not re-routable: generated samples (as many as the rarest expert needs) bring it to 256
  assert.ok(c.seen.every((n) => n >= 256), c.seen.join());
  assert.ok(warnings.some((w) => /top-2.*routed tokens only/.test(w)));
  assert.ok(!warnings.some((w) => /do not line up/.test(w)), warnings.join("\n"));
  assert.ok(quantized.plan.entries.filter((e) => e.node === "/gate/MatMul").every((e) => e.skip));
});
