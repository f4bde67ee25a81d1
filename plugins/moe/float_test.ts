// Priority 1: the float MoE fixtures (sparse dispatch: TopK / NonZero / Gather / ScatterND; dense
// dispatch: GreaterOrEqual / Cast / Slice) run on lowbit's executor and match onnxruntime-web
// (run here) and torch's stored logits (fixtures/moe/PROVENANCE.md).
import * as ort from "onnxruntime-web";
import assert from "node:assert/strict";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";

const DIR = new URL("../../fixtures/moe/", import.meta.url);
const npy = (u: URL): TensorData => readNpy(Deno.readFileSync(u));
const calibX = npy(new URL("calib_x.npy", DIR));
const evalX = npy(new URL("../digits/eval_x.npy", DIR));
ort.env.wasm.numThreads = 1;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The first n images of a batch (n = 5: all routed to expert 0 in the calibration split). */
function head(t: TensorData, n: number): TensorData {
  const per = t.data.length / t.shape[0];
  return {
    ...t,
    shape: [n, ...t.shape.slice(1)],
    data: (t.data as Float32Array).slice(0, n * per),
  };
}

for (const form of ["sparse", "dense"]) {
  Deno.test(`the float ${form}-dispatch MoE matches onnxruntime-web and torch`, async () => {
    const url = new URL(`moe_${form}.onnx`, DIR);
    const model = await readOnnxFile(url.pathname);
    const session = await ort.InferenceSession.create(Deno.readFileSync(url));
    const exec = createExecutor(model);
    const cases: [string, TensorData, URL | null][] = [
      ["calibration (expert 2 empty)", calibX, new URL("calib_logits.npy", DIR)],
      ["evaluation", evalX, new URL("eval_logits.npy", DIR)],
      ["5 images, three experts empty", head(calibX, 5), null],
    ];
    for (const [what, x, torchUrl] of cases) {
      const theirs = (await session.run({
        x: new ort.Tensor("float32", x.data as Float32Array, x.shape),
      })).logits;
      const ours = (await exec.run({ x })).logits;
      assert.deepEqual(ours.shape, [...theirs.dims]);
      const d = maxAbsDiff(ours.data as Float32Array, theirs.data as Float32Array);
      assert.ok(d < 1e-4, `${form} ${what}: ${d} vs onnxruntime-web`);
      if (torchUrl) {
        const t = maxAbsDiff(ours.data as Float32Array, npy(torchUrl).data as Float32Array);
        assert.ok(t < 1e-4, `${form} ${what}: ${t} vs torch`);
      }
    }
    await session.release();
  });
}
