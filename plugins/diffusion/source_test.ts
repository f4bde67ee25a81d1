import assert from "node:assert/strict";
import { createRng } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { findDiffusionInputs } from "./inputs.ts";
import type { Denoiser } from "./sampler.ts";
import { readSchedule } from "./schedule.ts";
import { calibrationSamples, diffusionSource } from "./source.ts";

const FIX = fileURLToPath(new URL("../../fixtures/ddpm/", import.meta.url));
const model = await readOnnxFile(FIX + "ddpm.onnx");
const exec = createExecutor(model);
const denoise: Denoiser = async (i) => (await exec.run(i)).eps;
const schedule = await readSchedule(FIX + "betas.npy");
const inputs = findDiffusionInputs(model.graph);

Deno.test("the source records the float model's own DDPM trajectory at the chosen timesteps", async () => {
  // One sample per timestep: a single trajectory, x_49 … x_0.
  const r = await calibrationSamples(denoise, {
    schedule,
    inputs,
    mode: "uniform",
    count: 50,
    seed: 7,
  });
  assert.deepEqual(r.t, Array.from({ length: 50 }, (_, k) => 49 - k));
  const x = r.x.data as Float32Array, per = 64;
  // Independently: the trajectory's noise is the seeded Gaussian stream, x_T first, then
  // the noise of each step; every recorded x_{t-1} is one DDPM step (float64 here) from x_t.
  const rng = createRng(7);
  const z = Float32Array.from({ length: 51 * per }, () => rng.normal());
  assert.deepEqual(x.subarray(0, per), z.subarray(0, per));
  for (let k = 1; k < 50; k++) {
    const t = 50 - k;
    const xt = x.slice((k - 1) * per, k * per);
    const eps = (await denoise({
      x: { dtype: "float32", shape: [1, 1, 8, 8], data: xt },
      t: { dtype: "float32", shape: [1], data: Float32Array.of(t) },
    })).data as Float32Array;
    const b = schedule.betas[t], ab = schedule.alphaBar[t];
    for (let j = 0; j < per; j++) {
      const want = (xt[j] - (b / Math.sqrt(1 - ab)) * eps[j]) / Math.sqrt(1 - b) +
        Math.sqrt(b) * z[k * per + j];
      assert.ok(Math.abs(x[k * per + j] - want) < 1e-4, `t=${t - 1} j=${j}`);
    }
  }
});

Deno.test("with images, the source forward-noises them; batches carry t as input and tag", async () => {
  const x0 = readNpy(await Deno.readFile(FIX + "calib_x0.npy"));
  const src = diffusionSource();
  const batches: { inputs: Record<string, TensorData>; tags: Record<string, ArrayLike<number>> }[] =
    [];
  for await (
    const b of src.batches({
      graph: model.graph,
      run: (i) => exec.run(i as never) as never,
      options: { schedule: FIX + "betas.npy", "calib-samples": 5, "diffusion-calib": "uniform" },
      data: { inputs: { x: x0 }, count: 200 },
      batchSize: 3,
    })
  ) batches.push(b as never);
  assert.deepEqual(batches.map((b) => b.inputs.x.shape[0]), [3, 2]);
  const ts = batches.flatMap((b) => Array.from(b.tags.t));
  assert.deepEqual(ts, [45, 35, 25, 15, 5]);
  assert.deepEqual(batches.flatMap((b) => [...(b.inputs.t.data as Float32Array)]), ts);
  // x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε, ε the seeded stream (seed 0), image i for sample i
  const rng = createRng(0);
  const img = x0.data as Float32Array;
  const got = batches.flatMap((b) => [...(b.inputs.x.data as Float32Array)]);
  for (let i = 0; i < 5; i++) {
    const a = Math.sqrt(schedule.alphaBar[ts[i]]), s = Math.sqrt(1 - schedule.alphaBar[ts[i]]);
    for (let j = 0; j < 64; j++) {
      const want = a * img[i * 64 + j] + s * rng.normal();
      assert.ok(Math.abs(got[i * 64 + j] - want) < 1e-5);
    }
  }
});
