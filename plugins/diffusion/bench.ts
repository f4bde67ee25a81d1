/**
 * The README's results table: the fixture DDPM quantized with the plugin under each calibration
 * choice, measured against the float model. Run from the repository root:
 *
 *     npx deno run -A plugins/diffusion/bench.ts [--json]
 *
 * ε relative MSE: Σ(ε̂_q − ε̂_f)² / Σε̂_f² per timestep over 8 calibration images
 * (`fixtures/ddpm/calib_x0.npy`) forward-noised to every t (seed 1, 400 pairs), averaged over
 * the 50 timesteps. Samples: DDPM from `fixtures/ddpm/noise.npy` (16 samples), MSE to the float
 * model's samples over their variance. Same as `lowbit quantize … && lowbit diffusion eval …`.
 *
 * @module
 */

import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize, type Rule, simulate } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { findDiffusionInputs } from "./inputs.ts";
import { epsRelativeMse, forwardNoisedPairs, sampleError } from "./metrics.ts";
import { plugin } from "./mod.ts";
import { type Denoiser, sample } from "./sampler.ts";
import { readSchedule } from "./schedule.ts";

const FIX = fileURLToPath(new URL("../../fixtures/ddpm/", import.meta.url));
const npy = async (f: string) => readNpy(await Deno.readFile(FIX + f));
const model = await readOnnxFile(FIX + "ddpm.onnx");
const inputs = findDiffusionInputs(model.graph);
const schedule = await readSchedule(FIX + "betas.npy");
const pairs = forwardNoisedPairs(await npy("calib_x0.npy"), schedule, 8, 1);
const noise = await npy("noise.npy");
const floatExec = createExecutor(model);
const floatDenoise: Denoiser = async (i) => (await floatExec.run(i)).eps;
const floatSamples = await sample(floatDenoise, schedule, noise, { inputs });

const INT6: Rule[] = [{ match: "*", activation: { format: "int6" } }];

interface Row {
  preset: string;
  options: Record<string, string | number | boolean>;
  rules?: Rule[];
}

const rows: Row[] = [
  { preset: "w8a8", options: { "diffusion-calib": "last" } },
  { preset: "w8a8", options: { "diffusion-calib": "uniform" } },
  { preset: "w8a8", options: { "diffusion-calib": "normal" } },
  { preset: "w8a8", options: { "timestep-groups": 4 } },
  { preset: "w8a6", options: { "diffusion-calib": "last" }, rules: INT6 },
  { preset: "w8a6", options: {}, rules: INT6 },
  { preset: "w8a6", options: { "diffusion-calib": "normal" }, rules: INT6 },
  { preset: "w8a6", options: { "timestep-groups": 2 }, rules: INT6 },
  { preset: "w8a6", options: { "timestep-groups": 4 }, rules: INT6 },
  { preset: "w8a6", options: { "timestep-groups": 8 }, rules: INT6 },
  { preset: "w8a6", options: { "time-precision": "same" }, rules: INT6 },
  { preset: "w8a6", options: { "joint-shortcut": true }, rules: INT6 },
  { preset: "w4a8", options: {} },
  { preset: "w4a8", options: { "timestep-groups": 4 } },
];

const results = [];
for (const row of rows) {
  const registry = createRegistry();
  registerBuiltins(registry);
  registry.use(plugin);
  const t0 = performance.now();
  const { quantized } = await quantize({
    model,
    preset: row.preset === "w8a6" ? "w8a8" : row.preset,
    rules: row.rules ?? [],
    registry,
    pluginOptions: { schedule: FIX + "betas.npy", ...row.options },
  });
  const seconds = (performance.now() - t0) / 1000;
  const sim = simulate(quantized);
  const q: Denoiser = (i) => sim.run(i);
  const eps = await epsRelativeMse(q, floatDenoise, pairs, inputs, schedule.T);
  const s = sampleError(await sample(q, schedule, noise, { inputs }), floatSamples);
  const r = {
    preset: row.preset,
    options: Object.entries(row.options).map(([k, v]) => `--${k} ${v}`).join(" ") || "(defaults)",
    epsMean: eps.mean,
    epsMaxT: Math.max(...eps.perT),
    epsMinT: Math.min(...eps.perT),
    sampleRatio: s.ratio,
    quantizeSeconds: seconds,
  };
  results.push(r);
  if (!Deno.args.includes("--json")) {
    console.error(`${r.preset} ${r.options}: ε ${(100 * r.epsMean).toFixed(3)} %`);
  }
}

if (Deno.args.includes("--json")) console.log(JSON.stringify(results, null, 2));
else {
  const pct = (v: number, d = 3) => `${(100 * v).toFixed(d)} %`;
  console.log("| preset | options | mean ε rel. MSE | min … max over t | sample MSE / var |");
  console.log("| --- | --- | ---: | ---: | ---: |");
  for (const r of results) {
    console.log(
      `| ${r.preset} | ${r.options} | ${pct(r.epsMean)} | ${pct(r.epsMinT)} … ${pct(r.epsMaxT)} | ${
        pct(r.sampleRatio)
      } |`,
    );
  }
}
