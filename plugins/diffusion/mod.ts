/**
 * `@lowbit/diffusion`: lowbit's plugin for diffusion denoisers ε(x_t, t). Calibration data from
 * the float model's own sampling trajectory (uniform, PTQ4DM-normal or last-step timesteps),
 * timestep-grouped activation parameters picked at run time from the time input, the
 * time-embedding path kept at higher precision, split shortcut quantization of skip Concats, and
 * `lowbit diffusion sample | eval` for any model lowbit runs.
 *
 * ```sh
 * lowbit quantize ddpm.onnx --plugin diffusion --schedule betas.npy --preset w8a8 --out m.lowbit
 * lowbit diffusion sample m.lowbit --plugin diffusion --schedule betas.npy --noise noise.npy --out s.npy
 * ```
 *
 * @module
 */

export { plugin } from "./plugin.ts";
export * from "./schedule.ts";
export * from "./inputs.ts";
export * from "./sampler.ts";
export * from "./timesteps.ts";
export * from "./options.ts";
export * from "./source.ts";
export * from "./grouped.ts";
export * from "./paths.ts";
export * from "./points.ts";
export * from "./metrics.ts";
export * from "./report.ts";
export * from "./report_section.ts";
export * from "./commands.ts";
