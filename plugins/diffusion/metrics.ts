/**
 * How close a quantized denoiser stays to its float model: the relative MSE of its noise
 * prediction per timestep, ‖ε̂_q − ε̂_f‖² / ‖ε̂_f‖² over the same (x_t, t) inputs, and the MSE of
 * its samples to the float model's samples from the same noise, relative to their variance.
 *
 * @module
 */

import { createRng, LowbitError } from "@lowbit/core";
import type { TensorData } from "@lowbit/graph";
import { type DiffusionInputs, timeTensor } from "./inputs.ts";
import type { Denoiser } from "./sampler.ts";
import type { Schedule } from "./schedule.ts";

/** (x_t, t) pairs to measure ε on. */
export interface EpsPairs {
  /** x_t `[n, ...image]`. */
  readonly x: TensorData;
  /** One timestep per sample. */
  readonly t: readonly number[];
}

/**
 * Pairs at every timestep: `perT` clean images (cycled through `images`) forward-noised to each
 * t = 0 … T−1 with seeded Gaussian noise, x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε.
 *
 * @param images clean images `[M, ...image]`
 * @param schedule the schedule
 * @param perT pairs per timestep
 * @param seed the noise seed
 * @returns T·perT pairs, timestep-major
 *
 * @example
 * ```ts
 * import { forwardNoisedPairs, scheduleFromBetas } from "@lowbit/diffusion";
 * const images = { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(1, -1) };
 * const p = forwardNoisedPairs(images, scheduleFromBetas([0.1, 0.2]), 3, 0);
 * if (p.t.join() !== "0,0,0,1,1,1" || p.x.shape.join() !== "6,2") throw new Error();
 * ```
 */
export function forwardNoisedPairs(
  images: TensorData,
  schedule: Schedule,
  perT: number,
  seed: number,
): EpsPairs {
  const m = images.shape[0];
  const per = images.data.length / m;
  const rng = createRng(seed);
  const n = schedule.T * perT;
  const x = new Float32Array(n * per);
  const t: number[] = [];
  const img = images.data as Float32Array, f = Math.fround;
  for (let s = 0; s < schedule.T; s++) {
    const a = schedule.sqrtAlphaBar[s], b = schedule.sqrtOneMinusAlphaBar[s];
    for (let k = 0; k < perT; k++) {
      const i = s * perT + k, src = (i % m) * per;
      for (let j = 0; j < per; j++) {
        x[i * per + j] = f(f(a * img[src + j]) + f(b * f(rng.normal())));
      }
      t.push(s);
    }
  }
  return { x: { dtype: "float32", shape: [n, ...images.shape.slice(1)], data: x }, t };
}

/** ε relative MSE of a model against a reference, per timestep and averaged. */
export interface EpsError {
  /** Per timestep t = 0 … T−1 (NaN where no pair has that t). */
  readonly perT: number[];
  /** Mean over the timesteps that have pairs. */
  readonly mean: number;
}

/**
 * ε relative MSE per timestep: Σ(ε̂ − ε̂_ref)² / Σ ε̂_ref² over the pairs at t (float64 sums).
 *
 * @param model the model measured
 * @param reference the reference (the float model)
 * @param pairs the inputs
 * @param inputs the model's inputs
 * @param T timesteps
 * @param batch samples per run (64)
 * @returns per timestep and mean
 *
 * @example
 * ```ts
 * import { epsRelativeMse } from "@lowbit/diffusion";
 * const half = (i: Record<string, any>) => Promise.resolve({ ...i.x, data: i.x.data.map((v: number) => v / 2) });
 * const same = (i: Record<string, any>) => Promise.resolve(i.x);
 * const pairs = { x: { dtype: "float32" as const, shape: [2, 1], data: Float32Array.of(1, 2) }, t: [0, 1] };
 * const r = await epsRelativeMse(half, same, pairs, { image: "x", time: "t", timeDtype: "float32" }, 2);
 * if (r.perT.join() !== "0.25,0.25" || r.mean !== 0.25) throw new Error();
 * ```
 */
export async function epsRelativeMse(
  model: Denoiser,
  reference: Denoiser,
  pairs: EpsPairs,
  inputs: DiffusionInputs,
  T: number,
  batch = 64,
): Promise<EpsError> {
  const num = new Float64Array(T), den = new Float64Array(T), cnt = new Int32Array(T);
  const n = pairs.t.length, per = pairs.x.data.length / n;
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const ts = pairs.t.slice(s, e);
    const feed = {
      [inputs.image]: {
        dtype: "float32" as const,
        shape: [e - s, ...pairs.x.shape.slice(1)],
        data: (pairs.x.data as Float32Array).slice(s * per, e * per),
      },
      [inputs.time]: timeTensor(ts, inputs.timeDtype, inputs.timeShape),
    };
    const q = (await model(feed)).data as Float32Array;
    const r = (await reference(feed)).data as Float32Array;
    for (let i = 0; i < e - s; i++) {
      const t = ts[i];
      cnt[t]++;
      for (let j = i * per; j < (i + 1) * per; j++) {
        num[t] += (q[j] - r[j]) ** 2;
        den[t] += r[j] ** 2;
      }
    }
  }
  const perT = Array.from(num, (v, t) => (cnt[t] ? v / den[t] : NaN));
  const got = perT.filter((v) => !Number.isNaN(v));
  return { perT, mean: got.reduce((a, b) => a + b, 0) / got.length };
}

/** Sample error against reference samples. */
export interface SampleError {
  /** Mean squared difference. */
  readonly mse: number;
  /** Variance of the reference samples (all elements). */
  readonly variance: number;
  /** mse / variance. */
  readonly ratio: number;
}

/**
 * MSE of samples to reference samples, and relative to the reference's variance.
 *
 * @param samples the samples
 * @param reference the reference samples (same shape)
 * @returns the error
 *
 * @example
 * ```ts
 * import { sampleError } from "@lowbit/diffusion";
 * const t = (...v: number[]) => ({ dtype: "float32" as const, shape: [v.length], data: Float32Array.from(v) });
 * const r = sampleError(t(1, 1), t(0, 2));
 * if (r.mse !== 1 || r.variance !== 1 || r.ratio !== 1) throw new Error();
 * ```
 */
export function sampleError(samples: TensorData, reference: TensorData): SampleError {
  const a = samples.data as Float32Array, b = reference.data as Float32Array;
  if (a.length !== b.length || samples.shape.join() !== reference.shape.join()) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `samples [${samples.shape}] and reference samples [${reference.shape}] differ in shape`,
    );
  }
  let mse = 0, mean = 0;
  for (let i = 0; i < a.length; i++) {
    mse += (a[i] - b[i]) ** 2;
    mean += b[i];
  }
  mse /= a.length;
  mean /= b.length;
  let variance = 0;
  for (let i = 0; i < b.length; i++) variance += (b[i] - mean) ** 2;
  variance /= b.length;
  return { mse, variance, ratio: mse / variance };
}
