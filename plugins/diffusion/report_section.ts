/**
 * The diffusion section of `lowbit quantize`'s HTML report: the float model samples from seeded
 * Gaussian noise; at every step the quantized model sees the same x_t, and its ε error relative
 * to the float ε is charted over t; the quantized model then samples from the same noise and both
 * grids are drawn (what `lowbit diffusion eval` shows, without a noise file).
 *
 * @module
 */

import { createRng, type ReportContext, type ReportPart, type ReportSection } from "@lowbit/core";
import type { TensorData } from "@lowbit/graph";
import { findDiffusionInputs } from "./inputs.ts";
import { type EpsError, sampleError } from "./metrics.ts";
import { parseDiffusionOptions } from "./options.ts";
import { diffusionReportBody } from "./report.ts";
import { type Denoiser, sample, samplerTimesteps } from "./sampler.ts";
import { readSchedule } from "./schedule.ts";

/** Samples drawn for the section. */
const SAMPLES = 8;

/**
 * ε error along the reference's own sampling trajectory: `reference` samples from `noise`, and
 * at each step `model` is run on the same x_t; per timestep, Σ(ε_model − ε_ref)² / Σ ε_ref².
 *
 * @param model the quantized denoiser
 * @param reference the float denoiser (it drives the trajectory)
 * @param run the sampler run of `reference` (schedule, noise, options) with the denoiser given
 * @param T number of timesteps
 * @returns the per-t error and the reference's samples
 *
 * @example
 * ```ts
 * import { trajectoryEpsError } from "@lowbit/diffusion";
 * const ref = async () => ({ dtype: "float32" as const, shape: [1], data: new Float32Array([2]) });
 * const q = async () => ({ dtype: "float32" as const, shape: [1], data: new Float32Array([1]) });
 * const { eps } = await trajectoryEpsError(q, ref, async (d) => {
 *   for (const t of [1, 0]) await d({ t: { dtype: "float32", shape: [1], data: new Float32Array([t]) } }, t);
 *   return { dtype: "float32", shape: [1], data: new Float32Array(1) };
 * }, 2);
 * if (eps.perT[0] !== 0.25 || eps.mean !== 0.25) throw new Error(JSON.stringify(eps));
 * ```
 */
export async function trajectoryEpsError(
  model: Denoiser,
  reference: Denoiser,
  run: (denoise: (x: Record<string, TensorData>, t: number) => Promise<TensorData>) => Promise<
    TensorData
  >,
  T: number,
): Promise<{ eps: EpsError; samples: TensorData }> {
  const num = new Float64Array(T), den = new Float64Array(T), cnt = new Int32Array(T);
  const samples = await run(async (feed, t) => {
    const r = await reference(feed);
    const q = (await model(feed)).data as Float32Array, rd = r.data as Float32Array;
    for (let j = 0; j < rd.length; j++) {
      num[t] += (q[j] - rd[j]) ** 2;
      den[t] += rd[j] ** 2;
    }
    cnt[t]++;
    return r;
  });
  const perT = Array.from(num, (v, t) => (cnt[t] && den[t] > 0 ? v / den[t] : NaN));
  const got = perT.filter((v) => !Number.isNaN(v));
  return { eps: { perT, mean: got.reduce((a, b) => a + b, 0) / got.length }, samples };
}

/**
 * The report section (registered by the plugin; it speaks when `--schedule` is given and the
 * image input has a static shape).
 *
 * @returns the section
 *
 * @example
 * ```ts
 * import { diffusionReportSection } from "@lowbit/diffusion";
 * if (diffusionReportSection().name !== "diffusion") throw new Error();
 * ```
 */
export function diffusionReportSection(): ReportSection {
  return {
    name: "diffusion",
    async render(ctx: ReportContext): Promise<ReportPart | undefined> {
      const o = parseDiffusionOptions(ctx.options);
      if (!o.schedule) return undefined;
      const schedule = await readSchedule(o.schedule, o.timesteps);
      const inputs = findDiffusionInputs(ctx.graph, { timeInput: o.timeInput });
      const dims = inputs.imageShape?.slice(1);
      if (!dims || dims.some((d) => typeof d !== "number")) return undefined;
      const out = ctx.graph.outputs[0].name;
      const asDenoiser = (
        run: ReportContext["runFloat"],
      ): Denoiser =>
      async (feed) => (await run(feed))[out] as unknown as TensorData;
      const float = asDenoiser(ctx.runFloat), quant = asDenoiser(ctx.runQuantized);
      const per = (dims as number[]).reduce((a, b) => a * b, 1);
      const steps = o.sampler === "ddim" ? 1 : schedule.T + 1;
      const rng = createRng(o.seed + 1);
      const noise: TensorData = {
        dtype: "float32",
        shape: [steps, SAMPLES, ...(dims as number[])],
        data: Float32Array.from({ length: steps * SAMPLES * per }, () => rng.normal()),
      };
      const opts = { inputs, sampler: o.sampler, ...(o.steps ? { steps: o.steps } : {}) };
      const visited = new Set(samplerTimesteps(schedule.T, o.sampler, o.steps));
      const { eps, samples: floatSamples } = await trajectoryEpsError(
        quant,
        float,
        (d) => {
          let t = -1;
          return sample(async (feed) => await d(feed, t), schedule, noise, {
            ...opts,
            onStep: (step) => void (t = step),
          });
        },
        schedule.T,
      );
      const quantSamples = await sample(quant, schedule, noise, opts);
      const samples = sampleError(quantSamples, floatSamples);
      return {
        title: "Diffusion: ε error over the sampler's timesteps",
        html: `<p>${SAMPLES} samples from seeded noise (seed ${o.seed + 1}), ${o.sampler}` +
          `${o.sampler === "ddim" ? ` (${visited.size} steps)` : ""}: the quantized model ` +
          `is run on the float model's own x<sub>t</sub> at every step.</p>` +
          diffusionReportBody({ eps, samples, floatSamples, quantSamples }),
      };
    },
  };
}
