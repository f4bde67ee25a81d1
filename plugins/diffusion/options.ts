/**
 * The plugin's command-line options (`lowbit quantize --plugin diffusion --help` lists them) and
 * their parsing into typed settings, with clear errors for bad values.
 *
 * @module
 */

import { LowbitError, type PluginOption, type PluginOptionValues } from "@lowbit/core";
import type { SamplerKind } from "./sampler.ts";
import { CALIB_TIMESTEPS, type CalibTimesteps } from "./timesteps.ts";

/** How the time-embedding path is quantized. */
export type TimePrecision = "int8" | "float" | "same";

/** The options the plugin registers. */
export const DIFFUSION_OPTIONS: readonly PluginOption[] = [
  {
    name: "schedule",
    type: "string",
    help: "diffusion: betas .npy [T] (enables the sampler source)",
  },
  { name: "timesteps", type: "number", help: "diffusion: T (checked against the schedule)" },
  {
    name: "time-input",
    type: "string",
    help: "diffusion: the time input (default: the [batch] one)",
  },
  {
    name: "diffusion-calib",
    type: "string",
    help: "diffusion: calibration timesteps: uniform, normal (PTQ4DM) or last (t = 0 only)",
    choices: CALIB_TIMESTEPS,
    default: "uniform",
  },
  {
    name: "calib-samples",
    type: "number",
    help: "diffusion: (x_t, t) calibration samples",
    default: 256,
  },
  {
    name: "timestep-groups",
    type: "number",
    help: "diffusion: activation parameter sets per point, one per timestep group",
    default: 1,
  },
  {
    name: "sampler",
    type: "string",
    help: "diffusion: sampler of the calibration trajectories",
    choices: ["ddpm", "ddim"],
    default: "ddpm",
  },
  { name: "steps", type: "number", help: "diffusion: DDIM steps (default T)" },
  { name: "seed", type: "number", help: "diffusion: seed of the calibration noise", default: 0 },
  {
    name: "time-precision",
    type: "string",
    help: "diffusion: time-embedding path: at least int8, float, or same as the rest",
    choices: ["int8", "float", "same"],
    default: "int8",
  },
  {
    name: "joint-shortcut",
    type: "boolean",
    help: "diffusion: one scale for a skip Concat's output instead of one per input",
  },
];

/** The options, typed. */
export interface DiffusionSettings {
  /** Betas file. */
  readonly schedule?: string;
  /** T given by the user. */
  readonly timesteps?: number;
  /** Time input name. */
  readonly timeInput?: string;
  /** Calibration timesteps. */
  readonly calib: CalibTimesteps;
  /** Calibration samples. */
  readonly calibSamples: number;
  /** Timestep groups. */
  readonly groups: number;
  /** Sampler. */
  readonly sampler: SamplerKind;
  /** DDIM steps. */
  readonly steps?: number;
  /** Seed. */
  readonly seed: number;
  /** Time-embedding path precision. */
  readonly timePrecision: TimePrecision;
  /** Whether skip Concats keep one joint scale. */
  readonly jointShortcut: boolean;
}

const posInt = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new LowbitError("INVALID_ARGUMENT", `--${name} must be a positive integer, got '${v}'`);
  }
  return v;
};

const oneOf = <T extends string>(v: unknown, name: string, choices: readonly T[], def: T): T => {
  if (v === undefined) return def;
  if (!choices.includes(v as T)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--${name} must be one of ${choices.join(", ")}; got '${v}'`,
    );
  }
  return v as T;
};

/**
 * Parses the plugin's option values (from the CLI or the API; absent ones take their defaults).
 *
 * @param o option values by name
 * @returns the settings
 *
 * @example
 * ```ts
 * import { parseDiffusionOptions } from "@lowbit/diffusion";
 * const s = parseDiffusionOptions({ "timestep-groups": 4 });
 * if (s.groups !== 4 || s.calib !== "uniform" || s.calibSamples !== 256) throw new Error();
 * ```
 */
export function parseDiffusionOptions(o: PluginOptionValues): DiffusionSettings {
  const str = (k: string) => (typeof o[k] === "string" && o[k] !== "" ? o[k] as string : undefined);
  const timesteps = posInt(o.timesteps, "timesteps");
  const steps = posInt(o.steps, "steps");
  const seed = o.seed ?? 0;
  if (typeof seed !== "number" || !Number.isInteger(seed)) {
    throw new LowbitError("INVALID_ARGUMENT", `--seed must be an integer, got '${seed}'`);
  }
  return {
    ...(str("schedule") ? { schedule: str("schedule") } : {}),
    ...(timesteps !== undefined ? { timesteps } : {}),
    ...(str("time-input") ? { timeInput: str("time-input") } : {}),
    calib: oneOf(o["diffusion-calib"], "diffusion-calib", CALIB_TIMESTEPS, "uniform"),
    calibSamples: posInt(o["calib-samples"], "calib-samples") ?? 256,
    groups: posInt(o["timestep-groups"], "timestep-groups") ?? 1,
    sampler: oneOf(o.sampler, "sampler", ["ddpm", "ddim"] as const, "ddpm"),
    ...(steps !== undefined ? { steps } : {}),
    seed,
    timePrecision: oneOf(o["time-precision"], "time-precision", ["int8", "float", "same"], "int8"),
    jointShortcut: o["joint-shortcut"] === true,
  };
}
