/**
 * The calibration source: model inputs (x_t, t) at chosen timesteps, tagged with t. With no
 * `--calib`, x_t comes from the float model's own sampling trajectories started from seeded
 * Gaussian noise (Q-Diffusion); with a `--calib` of clean images, they are forward-noised,
 * x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε with seeded ε.
 *
 * @module
 */

import {
  type CalibrationSource,
  createRng,
  LowbitError,
  type SourceBatch,
  type SourceContext,
} from "@lowbit/core";
import type { TensorData } from "@lowbit/graph";
import { type DiffusionInputs, findDiffusionInputs, timeTensor } from "./inputs.ts";
import { type Denoiser, sample, type SamplerKind, samplerTimesteps } from "./sampler.ts";
import { parseDiffusionOptions } from "./options.ts";
import { readSchedule, type Schedule } from "./schedule.ts";
import { type CalibTimesteps, chooseTimesteps } from "./timesteps.ts";

/** What {@link calibrationSamples} needs. */
export interface CalibrationPlan {
  /** The schedule. */
  readonly schedule: Schedule;
  /** The model's inputs. */
  readonly inputs: DiffusionInputs;
  /** Timestep distribution. */
  readonly mode: CalibTimesteps;
  /** Number of (x_t, t) samples. */
  readonly count: number;
  /** Seed of the Gaussian noise (and of `normal`'s timesteps). */
  readonly seed: number;
  /** Sampler of the trajectories. */
  readonly sampler?: SamplerKind;
  /** DDIM steps. */
  readonly steps?: number;
  /** Clean images `[M, ...image]` to forward-noise instead of sampling. */
  readonly images?: TensorData;
}

/** Calibration samples: x_t `[count, ...image]` and their timesteps. */
export interface CalibrationSamples {
  /** The noisy images. */
  readonly x: TensorData;
  /** One timestep per sample. */
  readonly t: number[];
}

function imageDims(inputs: DiffusionInputs, images?: TensorData): number[] {
  if (images) return images.shape.slice(1);
  const dims = inputs.imageShape?.slice(1) ?? [];
  if (!inputs.imageShape || dims.some((d) => typeof d !== "number")) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `the image input '${inputs.image}' has no static shape [${inputs.imageShape ?? "?"}]: ` +
        "calibration by sampling needs one; give images with --calib",
      { tensor: inputs.image },
    );
  }
  return dims as number[];
}

function gaussian(n: number, rng: ReturnType<typeof createRng>): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/**
 * Makes the calibration samples: runs `plan.count`'s worth of the float model's sampling
 * trajectories (as many as the most frequent timestep needs) and records the model's input at
 * each chosen timestep — or forward-noises `plan.images` (cycled) to them.
 *
 * @param denoise the float model
 * @param plan schedule, inputs, distribution, count, seed
 * @returns the samples, noisiest first
 *
 * @example
 * ```ts
 * import { calibrationSamples, scheduleFromBetas } from "@lowbit/diffusion";
 * const schedule = scheduleFromBetas([0.1, 0.2, 0.3]);
 * const inputs = { image: "x", time: "t", timeDtype: "float32", imageShape: ["b", 2] };
 * const denoise = (i: Record<string, any>) => Promise.resolve({ ...i.x, data: new Float32Array(i.x.data.length) });
 * const r = await calibrationSamples(denoise, { schedule, inputs, mode: "uniform", count: 3, seed: 1 });
 * if (r.t.join() !== "2,1,0" || r.x.shape.join() !== "3,2") throw new Error();
 * ```
 */
export async function calibrationSamples(
  denoise: Denoiser,
  plan: CalibrationPlan,
): Promise<CalibrationSamples> {
  const { schedule, inputs } = plan;
  const dims = imageDims(inputs, plan.images);
  const per = dims.reduce((a, b) => a * b, 1);
  const rng = createRng(plan.seed);
  let ts = chooseTimesteps(plan.mode, schedule.T, plan.count, plan.seed);
  if (plan.sampler === "ddim") {
    // Only the visited timesteps have trajectory inputs: each snaps to the nearest one.
    const visited = samplerTimesteps(schedule.T, "ddim", plan.steps);
    ts = ts.map((t) => visited.reduce((b, v) => (Math.abs(v - t) < Math.abs(b - t) ? v : b)));
  }
  const out = new Float32Array(plan.count * per);
  if (plan.images) {
    const img = plan.images.data as Float32Array, m = plan.images.shape[0];
    const f = Math.fround;
    for (let i = 0; i < plan.count; i++) {
      const a = schedule.sqrtAlphaBar[ts[i]], b = schedule.sqrtOneMinusAlphaBar[ts[i]];
      const x0 = img.subarray((i % m) * per, (i % m + 1) * per);
      for (let j = 0; j < per; j++) out[i * per + j] = f(f(a * x0[j]) + f(b * f(rng.normal())));
    }
    return { x: { dtype: "float32", shape: [plan.count, ...dims], data: out }, t: ts };
  }
  // Sample i rides trajectory rank(i) = how many earlier samples share its timestep.
  const rank: number[] = [];
  const seen = new Map<number, number>();
  for (const t of ts) {
    const r = seen.get(t) ?? 0;
    rank.push(r);
    seen.set(t, r + 1);
  }
  const K = Math.max(...seen.values());
  const steps = plan.sampler === "ddim" ? 1 : schedule.T + 1;
  const noise: TensorData = {
    dtype: "float32",
    shape: [steps, K, ...dims],
    data: gaussian(steps * K * per, rng),
  };
  const where = new Map<number, number[]>();
  ts.forEach((t, i) => where.set(t, [...(where.get(t) ?? []), i]));
  await sample(denoise, schedule, noise, {
    inputs,
    sampler: plan.sampler,
    steps: plan.steps,
    onStep: (t, x) => {
      for (const i of where.get(t) ?? []) {
        out.set(x.subarray(rank[i] * per, (rank[i] + 1) * per), i * per);
      }
    },
  });
  return { x: { dtype: "float32", shape: [plan.count, ...dims], data: out }, t: ts };
}

/**
 * The calibration source `diffusion-trajectory`: applies when `--schedule` is given; yields
 * batches of (x_t, t) from {@link calibrationSamples}, tagged `t`.
 *
 * @returns the source
 *
 * @example
 * ```ts
 * import { diffusionSource } from "@lowbit/diffusion";
 * const s = diffusionSource();
 * if (s.applies!({ nodes: [], inputs: [], outputs: [], initializers: new Map() }, {})) throw new Error();
 * ```
 */
export function diffusionSource(): CalibrationSource {
  return {
    name: "diffusion-trajectory",
    applies: (_g, o) => typeof o.schedule === "string" && o.schedule !== "",
    // The time input always comes from the source (images, if given, are forward-noised).
    provides: (
      g,
      o,
    ) => [findDiffusionInputs(g, { timeInput: parseDiffusionOptions(o).timeInput }).time],
    async *batches(ctx: SourceContext): AsyncIterable<SourceBatch> {
      const o = parseDiffusionOptions(ctx.options);
      const schedule = await readSchedule(o.schedule!, o.timesteps);
      const inputs = findDiffusionInputs(ctx.graph, { timeInput: o.timeInput });
      const others = ctx.graph.inputs.filter((i) =>
        i.name !== inputs.image && i.name !== inputs.time
      );
      if (others.length) {
        throw new LowbitError(
          "UNSUPPORTED",
          `the diffusion calibration source feeds only '${inputs.image}' and '${inputs.time}'; ` +
            `the model also takes ${others.map((i) => `'${i.name}'`).join(", ")}`,
        );
      }
      const out = ctx.graph.outputs[0].name;
      const denoise: Denoiser = async (inputs) =>
        (await ctx.run(inputs))[out] as unknown as TensorData;
      const images = ctx.data?.inputs[inputs.image] as TensorData | undefined;
      const r = await calibrationSamples(denoise, {
        schedule,
        inputs,
        mode: o.calib,
        count: o.calibSamples,
        seed: o.seed,
        sampler: o.sampler,
        ...(o.steps !== undefined ? { steps: o.steps } : {}),
        ...(images ? { images } : {}),
      });
      const n = o.calibSamples, per = r.x.data.length / n;
      for (let s = 0; s < n; s += ctx.batchSize) {
        const e = Math.min(n, s + ctx.batchSize);
        const t = r.t.slice(s, e);
        yield {
          inputs: {
            [inputs.image]: {
              dtype: "float32",
              shape: [e - s, ...r.x.shape.slice(1)],
              data: (r.x.data as Float32Array).slice(s * per, e * per),
            },
            [inputs.time]: timeTensor(t, inputs.timeDtype, inputs.timeShape),
          },
          tags: { t },
        };
      }
    },
  };
}
