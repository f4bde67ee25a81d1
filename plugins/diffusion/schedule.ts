/**
 * The noise schedule of a DDPM: betas and the coefficients the samplers and the forward noising
 * use, computed in float64 from the (float32) betas and rounded to float32 once — the equations of
 * `fixtures/ddpm/PROVENANCE.md` (Ho et al. 2020).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { readNpy } from "@lowbit/graph";

/** A noise schedule: T timesteps, 0-based (t = 0 the least noisy). */
export interface Schedule {
  /** Number of timesteps. */
  readonly T: number;
  /** β_t. */
  readonly betas: Float32Array;
  /** ᾱ_t = ∏_{s≤t} (1 − β_s), float32. */
  readonly alphaBar: Float32Array;
  /** 1/√α_t (DDPM step). */
  readonly c1: Float32Array;
  /** β_t/√(1 − ᾱ_t) (DDPM step). */
  readonly c2: Float32Array;
  /** σ_t = √β_t (DDPM step). */
  readonly sigma: Float32Array;
  /** √ᾱ_t (forward noising, DDIM). */
  readonly sqrtAlphaBar: Float32Array;
  /** √(1 − ᾱ_t) (forward noising, DDIM). */
  readonly sqrtOneMinusAlphaBar: Float32Array;
}

/**
 * A schedule from its betas.
 *
 * @param betas β_t for t = 0 … T−1, each in (0, 1)
 * @param opts `timesteps`: the T the user gave (must equal the betas' length); `file`: where the
 *   betas came from, named in errors
 * @returns the schedule
 *
 * @example
 * ```ts
 * import { scheduleFromBetas } from "@lowbit/diffusion";
 * const s = scheduleFromBetas([0.5, 0.5]);
 * if (s.alphaBar[1] !== 0.25 || s.c1[0] !== Math.fround(Math.SQRT2)) throw new Error();
 * ```
 */
export function scheduleFromBetas(
  betas: ArrayLike<number>,
  opts: { timesteps?: number; file?: string } = {},
): Schedule {
  const T = betas.length;
  const subject = opts.file ? { file: opts.file } : {};
  if (T === 0) throw new LowbitError("INVALID_TENSOR", "the schedule has no betas", subject);
  if (opts.timesteps !== undefined && opts.timesteps !== T) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `the schedule has ${T} betas but --timesteps is ${opts.timesteps}; they must agree`,
      subject,
    );
  }
  const f = (n: number) => new Float32Array(n);
  const s = {
    T,
    betas: Float32Array.from(betas),
    alphaBar: f(T),
    c1: f(T),
    c2: f(T),
    sigma: f(T),
    sqrtAlphaBar: f(T),
    sqrtOneMinusAlphaBar: f(T),
  };
  let ab = 1;
  for (let t = 0; t < T; t++) {
    const b = s.betas[t];
    if (!(b > 0 && b < 1)) {
      throw new LowbitError(
        "INVALID_TENSOR",
        `beta[${t}] = ${b}; every beta must lie in (0, 1)`,
        subject,
      );
    }
    ab *= 1 - b;
    s.alphaBar[t] = ab;
    s.c1[t] = 1 / Math.sqrt(1 - b);
    s.c2[t] = b / Math.sqrt(1 - ab);
    s.sigma[t] = Math.sqrt(b);
    s.sqrtAlphaBar[t] = Math.sqrt(ab);
    s.sqrtOneMinusAlphaBar[t] = Math.sqrt(1 - ab);
  }
  return s;
}

/**
 * Reads a schedule from a `.npy` of betas (one dimension, or `[T, 1]`).
 *
 * @param path the betas file
 * @param timesteps the T the user gave, checked against the file
 * @returns the schedule
 *
 * @example
 * ```ts
 * import { readSchedule } from "@lowbit/diffusion";
 * const s = await readSchedule(new URL("../../fixtures/ddpm/betas.npy", import.meta.url).pathname);
 * if (s.T !== 50) throw new Error();
 * ```
 */
export async function readSchedule(path: string, timesteps?: number): Promise<Schedule> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError(
      "IO_ERROR",
      `cannot read the schedule: ${e instanceof Error ? e.message : e}`,
      { file: path },
    );
  }
  const t = readNpy(bytes, path);
  if (t.shape.filter((d) => d !== 1).length > 1 || typeof t.data[0] !== "number") {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `the schedule must be a vector of betas, got shape [${t.shape}] of ${t.dtype}`,
      { file: path },
    );
  }
  return scheduleFromBetas(t.data as ArrayLike<number>, { timesteps, file: path });
}
