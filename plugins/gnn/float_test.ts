// The float fixtures (dense and edge-list GCN / GIN) on lowbit's executor, against
// onnxruntime-web on the same inputs and against torch's logits stored with the fixtures.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { createExecutor, type TensorData } from "@lowbit/graph";
import { EXPORTS, FIX, graphInputs, model, npy } from "./_fixtures.ts";

ort.env.wasm.numThreads = 1;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  let e = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return [e, m];
}

for (const [name] of EXPORTS) {
  Deno.test({
    name: `${name}: our executor matches onnxruntime-web and torch on the whole graph`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const inputs = await graphInputs(name);
      const ours = (await createExecutor(await model(name)).run(inputs)).logits;
      const session = await ort.InferenceSession.create(await Deno.readFile(`${FIX}${name}.onnx`));
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(inputs) as [string, TensorData][]) {
        feeds[k] = new ort.Tensor(t.dtype as "float32", t.data as Float32Array, [...t.shape]);
      }
      const theirs = (await session.run(feeds)).logits;
      assert.deepEqual(ours.shape, [...theirs.dims]);
      const got = ours.data as Float32Array;
      // float32 sums in another order: relative to the largest logit (GIN's reach 265)
      const [eOrt, mOrt] = maxAbs(got, theirs.data as Float32Array);
      assert.ok(eOrt <= 2e-6 * mOrt + 1e-5, `vs onnxruntime-web: ${eOrt} (max ${mOrt})`);
      const [eTorch, mTorch] = maxAbs(got, (await npy(`${name}_logits.npy`)).data as Float32Array);
      assert.ok(eTorch <= 1e-6 * mTorch + 1e-4, `vs torch: ${eTorch} (max ${mTorch})`);
    },
  });
}
