/**
 * Which timesteps calibration samples come from: `uniform` over all T (Q-Diffusion), `normal`
 * around 0.4·T skewed toward the end of sampling (PTQ4DM), or `last` — every sample at t = 0,
 * the last sampling step (the naive baseline: calibrating on the final denoising step only).
 *
 * @module
 */

import { createRng, LowbitError } from "@lowbit/core";

/** How calibration timesteps are drawn. */
export type CalibTimesteps = "uniform" | "normal" | "last";

/** The choices of `--diffusion-calib`. */
export const CALIB_TIMESTEPS: readonly CalibTimesteps[] = ["uniform", "normal", "last"];

/**
 * `n` calibration timesteps in 0 … T−1, sorted from the noisiest (the order a sampler visits
 * them). `uniform`: ⌊(i + ½)·T/n⌋ for i = 0 … n−1 (every timestep equally often when n is a
 * multiple of T); `normal`: round(N(0.4·T, (0.25·T)²)) clipped to 0 … T−1, drawn with `seed`;
 * `last`: all 0.
 *
 * @param mode the distribution
 * @param T timesteps of the schedule
 * @param n samples
 * @param seed the seed of `normal`
 * @returns the timesteps, descending
 *
 * @example
 * ```ts
 * import { chooseTimesteps } from "@lowbit/diffusion";
 * if (chooseTimesteps("uniform", 4, 8).join() !== "3,3,2,2,1,1,0,0") throw new Error();
 * if (chooseTimesteps("last", 4, 2).join() !== "0,0") throw new Error();
 * ```
 */
export function chooseTimesteps(mode: CalibTimesteps, T: number, n: number, seed = 0): number[] {
  if (!Number.isInteger(n) || n < 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--calib-samples must be a positive integer, got ${n}`,
    );
  }
  let ts: number[];
  if (mode === "uniform") ts = Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) * T) / n));
  else if (mode === "last") ts = new Array(n).fill(0);
  else if (mode === "normal") {
    const rng = createRng(seed);
    ts = Array.from({ length: n }, () => {
      const v = Math.round(0.4 * T + 0.25 * T * rng.normal());
      return Math.max(0, Math.min(T - 1, v));
    });
  } else {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--diffusion-calib must be one of ${CALIB_TIMESTEPS.join(", ")}; got '${mode}'`,
    );
  }
  return ts.sort((a, b) => b - a);
}
