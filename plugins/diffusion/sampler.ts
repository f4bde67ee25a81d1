/**
 * The sampling loops: DDPM (Ho et al. 2020, Algorithm 2, σ_t² = β_t, no clipping) and DDIM
 * (Song et al. 2021, η = 0), driving any denoiser ε(x_t, t) given as a function — the float model,
 * a simulated quantized one, a loaded `.onnx` / `.lowbit` file. Arithmetic is float32, operation by
 * operation, as `fixtures/ddpm/PROVENANCE.md` writes it.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { TensorData } from "@lowbit/graph";
import type { DiffusionInputs } from "./inputs.ts";
import { timeTensor } from "./inputs.ts";
import type { Schedule } from "./schedule.ts";

/** A denoiser: model inputs by name → the predicted noise ε (same shape as the image). */
export type Denoiser = (inputs: Record<string, TensorData>) => Promise<TensorData>;

/** The sampler algorithms. */
export type SamplerKind = "ddpm" | "ddim";

/** Options of {@link sample}. */
export interface SampleOptions {
  /** The model's inputs (see `findDiffusionInputs`). */
  readonly inputs: DiffusionInputs;
  /** "ddpm" (default) or "ddim". */
  readonly sampler?: SamplerKind;
  /** DDIM: number of steps (default T); DDPM always takes T steps. */
  readonly steps?: number;
  /** Called before each model call with the timestep and the model's input x_t (not a copy). */
  readonly onStep?: (t: number, x: Float32Array, step: number, steps: number) => void;
  /** Where the noise came from, named in errors. */
  readonly noiseName?: string;
}

/**
 * The timesteps a sampler visits, from the noisiest: DDPM T−1 … 0; DDIM with S steps
 * ⌊i·T/S⌋ for i = S−1 … 0.
 *
 * @param T timesteps of the schedule
 * @param sampler the algorithm
 * @param steps DDIM steps (default T)
 * @returns the timesteps in visiting order
 *
 * @example
 * ```ts
 * import { samplerTimesteps } from "@lowbit/diffusion";
 * if (samplerTimesteps(10, "ddim", 5).join() !== "8,6,4,2,0") throw new Error();
 * ```
 */
export function samplerTimesteps(
  T: number,
  sampler: SamplerKind = "ddpm",
  steps?: number,
): number[] {
  if (sampler === "ddpm") return Array.from({ length: T }, (_, k) => T - 1 - k);
  const S = steps ?? T;
  if (!Number.isInteger(S) || S < 1 || S > T) {
    throw new LowbitError("INVALID_ARGUMENT", `--steps must be an integer in 1…${T}, got ${S}`);
  }
  return Array.from({ length: S }, (_, k) => Math.floor(((S - 1 - k) * T) / S));
}

/**
 * Checks a noise tensor `[K, N, ...image]` against the model's image shape and the sampler
 * (DDPM needs K ≥ T: `noise[0]` = x_T and `noise[k]` the noise of step k; DDIM uses `noise[0]`).
 *
 * @param noise the noise
 * @param schedule the schedule
 * @param opts sampler and inputs, as for {@link sample}
 * @returns the number of samples N and the elements per sample
 *
 * @example
 * ```ts
 * import { checkNoise, scheduleFromBetas } from "@lowbit/diffusion";
 * const noise = { dtype: "float32" as const, shape: [3, 2, 4], data: new Float32Array(24) };
 * const inputs = { image: "x", time: "t", timeDtype: "float32", imageShape: ["b", 4] };
 * const r = checkNoise(noise, scheduleFromBetas([0.1, 0.2]), { inputs });
 * if (r.n !== 2 || r.per !== 4) throw new Error();
 * ```
 */
export function checkNoise(
  noise: TensorData,
  schedule: Schedule,
  opts: SampleOptions,
): { n: number; per: number } {
  const subject = opts.noiseName ? { file: opts.noiseName } : { tensor: "noise" };
  const img = opts.inputs.imageShape?.slice(1);
  const want = `[${opts.sampler === "ddim" ? "K ≥ 1" : `${schedule.T + 1}`}, N, ${
    img ? img.join(", ") : "..."
  }]`;
  const bad = (why: string) =>
    new LowbitError(
      "SHAPE_MISMATCH",
      `noise of shape [${noise.shape}]: ${why}; want ${want}`,
      subject,
    );
  if (noise.dtype !== "float32") throw bad(`type ${noise.dtype}, not float32`);
  if (noise.shape.length < 3) throw bad("it needs [steps, samples, ...image]");
  const [K, n] = noise.shape;
  if (opts.sampler !== "ddim" && K < schedule.T) {
    throw bad(`DDPM takes ${schedule.T} steps and needs noise[0 … ${schedule.T - 1}] at least`);
  }
  if (K < 1 || n < 1) throw bad("no samples");
  if (img) {
    const dims = noise.shape.slice(2);
    const ok = dims.length === img.length &&
      img.every((d, i) => typeof d !== "number" || d === dims[i]);
    if (!ok) {
      throw bad(`one sample is [${dims}] but the model's '${opts.inputs.image}' is [${img}]`);
    }
  }
  return { n, per: noise.shape.slice(2).reduce((a, b) => a * b, 1) };
}

/**
 * Runs a sampler from fixed noise.
 *
 * @param denoise the model
 * @param schedule the noise schedule
 * @param noise `[K, N, ...image]` float32 (see {@link checkNoise})
 * @param opts sampler, steps, inputs, a per-step callback
 * @returns the samples `[N, ...image]`
 *
 * @example
 * ```ts
 * import { sample, scheduleFromBetas } from "@lowbit/diffusion";
 * // A model that predicts zero noise: DDIM (η = 0) then returns x_T / √ᾱ_{T−1} = 1 / 0.5.
 * const s = scheduleFromBetas([0.5, 0.5]);
 * const zero = (i: Record<string, any>) => Promise.resolve({ ...i.x, data: new Float32Array(1) });
 * const noise = { dtype: "float32" as const, shape: [1, 1, 1], data: Float32Array.of(1) };
 * const inputs = { image: "x", time: "t", timeDtype: "float32" };
 * const y = await sample(zero, s, noise, { inputs, sampler: "ddim" });
 * if (Math.abs((y.data[0] as number) - 2) > 1e-6) throw new Error(String(y.data[0]));
 * ```
 */
export async function sample(
  denoise: Denoiser,
  schedule: Schedule,
  noise: TensorData,
  opts: SampleOptions,
): Promise<TensorData> {
  const { n, per } = checkNoise(noise, schedule, opts);
  const sampler = opts.sampler ?? "ddpm";
  const ts = samplerTimesteps(schedule.T, sampler, opts.steps);
  const shape = [n, ...noise.shape.slice(2)];
  const nz = noise.data as Float32Array;
  const size = n * per;
  let x = nz.slice(0, size);
  const f = Math.fround;
  for (let k = 0; k < ts.length; k++) {
    const t = ts[k];
    opts.onStep?.(t, x, k, ts.length);
    const eps = await denoise({
      [opts.inputs.image]: { dtype: "float32", shape, data: x },
      [opts.inputs.time]: timeTensor(
        new Array(n).fill(t),
        opts.inputs.timeDtype,
        opts.inputs.timeShape,
      ),
    });
    if (eps.data.length !== size) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `the model's output has shape [${eps.shape}]; a denoiser returns ε shaped like x [${shape}]`,
      );
    }
    const e = eps.data as Float32Array;
    const next = new Float32Array(size);
    if (sampler === "ddpm") {
      const c1 = schedule.c1[t], c2 = schedule.c2[t], sg = schedule.sigma[t];
      const z = t > 0 ? nz.subarray((k + 1) * size, (k + 2) * size) : undefined;
      for (let i = 0; i < size; i++) {
        let v = f(c1 * f(x[i] - f(c2 * e[i])));
        if (z) v = f(v + f(sg * z[i]));
        next[i] = v;
      }
    } else {
      const a = schedule.sqrtAlphaBar[t], b = schedule.sqrtOneMinusAlphaBar[t];
      const prev = k + 1 < ts.length ? ts[k + 1] : -1;
      const ap = prev >= 0 ? schedule.sqrtAlphaBar[prev] : 1;
      const bp = prev >= 0 ? schedule.sqrtOneMinusAlphaBar[prev] : 0;
      for (let i = 0; i < size; i++) {
        const x0 = f(f(x[i] - f(b * e[i])) / a);
        next[i] = f(f(ap * x0) + f(bp * e[i]));
      }
    }
    x = next;
  }
  return { dtype: "float32", shape, data: x };
}
