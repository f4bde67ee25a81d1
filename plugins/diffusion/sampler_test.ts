import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { findDiffusionInputs } from "./inputs.ts";
import { type Denoiser, sample, samplerTimesteps } from "./sampler.ts";
import { readSchedule, scheduleFromBetas } from "./schedule.ts";

const FIX = fileURLToPath(new URL("../../fixtures/ddpm/", import.meta.url));
const npy = async (f: string) => readNpy(await Deno.readFile(FIX + f));

Deno.test("DDPM with the float model reproduces the fixture's samples (torch, PROVENANCE)", async () => {
  const model = await readOnnxFile(FIX + "ddpm.onnx");
  const exec = createExecutor(model);
  const denoise: Denoiser = async (i) => (await exec.run(i)).eps;
  const schedule = await readSchedule(FIX + "betas.npy");
  const inputs = findDiffusionInputs(model.graph);
  const noise = await npy("noise.npy");
  const ref = (await npy("samples_ddpm.npy")).data as Float32Array;
  const seen: number[] = [];
  const out = await sample(denoise, schedule, noise, { inputs, onStep: (t) => seen.push(t) });
  assert.deepEqual(out.shape, [16, 1, 8, 8]);
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, k) => 49 - k));
  let max = 0;
  (out.data as Float32Array).forEach((v, i) => (max = Math.max(max, Math.abs(v - ref[i]))));
  // onnxruntime-web as the model reproduces them within 3.8e-6 (PROVENANCE)
  assert.ok(max < 1e-5, `max abs ${max}`);
});

Deno.test("DDIM (η = 0) with skipped steps matches a float64 reference of the update", async () => {
  const schedule = scheduleFromBetas([0.05, 0.1, 0.2, 0.3, 0.4, 0.5]);
  assert.deepEqual(samplerTimesteps(6, "ddim", 3), [4, 2, 0]);
  // ε(x, t) = x·(t + 1)/10, so every step depends on x and t
  const denoise: Denoiser = (i) => {
    const t = (i.t.data as Float32Array)[0];
    return Promise.resolve({
      ...i.x,
      data: (i.x.data as Float32Array).map((v) => v * (t + 1) / 10),
    });
  };
  const x0 = [0.5, -1.25];
  const noise: TensorData = { dtype: "float32", shape: [1, 2, 1], data: Float32Array.from(x0) };
  const inputs = { image: "x", time: "t", timeDtype: "float32" };
  const out = await sample(denoise, schedule, noise, { inputs, sampler: "ddim", steps: 3 });
  const ab = [
    0.95,
    0.95 * 0.9,
    0.95 * 0.9 * 0.8,
    0.95 * 0.9 * 0.8 * 0.7,
    0.95 * 0.9 * 0.8 * 0.7 * 0.6,
  ];
  const ref = x0.map((x) => {
    for (const [t, prev] of [[4, 2], [2, 0], [0, -1]]) {
      const e = x * (t + 1) / 10;
      const pred = (x - Math.sqrt(1 - ab[t]) * e) / Math.sqrt(ab[t]);
      x = prev < 0 ? pred : Math.sqrt(ab[prev]) * pred + Math.sqrt(1 - ab[prev]) * e;
    }
    return x;
  });
  (out.data as Float32Array).forEach((v, i) =>
    assert.ok(Math.abs(v - ref[i]) < 1e-5, `${v} ${ref[i]}`)
  );
});

Deno.test("noise of the wrong shape is a clear error naming it", async () => {
  const schedule = await readSchedule(FIX + "betas.npy");
  const inputs = findDiffusionInputs(await readOnnxFile(FIX + "ddpm.onnx").then((m) => m.graph));
  const never: Denoiser = () => Promise.reject(new Error("the model must not run"));
  const bad = async (shape: number[], noiseName = "n.npy") => {
    const noise: TensorData = {
      dtype: "float32",
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    };
    const e = await sample(never, schedule, noise, { inputs, noiseName }).catch((e) => e);
    assert.ok(e instanceof LowbitError, String(e));
    assert.equal(e.code, "SHAPE_MISMATCH");
    return e.message;
  };
  assert.match(
    await bad([51, 2, 1, 4, 4]),
    /file 'n\.npy'.*one sample is \[1,4,4\] but the model's 'x' is \[1,8,8\]/,
  );
  assert.match(await bad([10, 2, 1, 8, 8]), /DDPM takes 50 steps/);
  assert.match(await bad([2, 1, 8, 8]), /noise of shape \[2,1,8,8\]/);
});
