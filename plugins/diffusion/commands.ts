/**
 * `lowbit diffusion sample | eval`: the sampling loop and the float-vs-quantized evaluation for
 * any model lowbit runs (float ONNX, QDQ ONNX, `.lowbit`).
 *
 * ```sh
 * lowbit diffusion sample MODEL --schedule betas.npy --noise noise.npy --out samples.npy \
 *   [--sampler ddpm|ddim --steps S] [--time-input NAME]
 * lowbit diffusion eval MODEL --float FLOAT.onnx --schedule betas.npy --data x0.npy \
 *   [--per-t 8] [--noise noise.npy] [--html report.html] [--seed K]
 * ```
 *
 * @module
 */

import { LowbitError, type PluginCommand, type Registry } from "@lowbit/core";
import { readNpy, type TensorData, writeNpy } from "@lowbit/graph";
import { createProgress, loadModelFile } from "@lowbit/pipeline";
import { parseArgs } from "node:util";
import { findDiffusionInputs } from "./inputs.ts";
import { epsRelativeMse, forwardNoisedPairs, sampleError } from "./metrics.ts";
import { renderDiffusionReport } from "./report.ts";
import { type Denoiser, sample, type SamplerKind } from "./sampler.ts";
import { readSchedule, type Schedule } from "./schedule.ts";

const HELP = `usage:
  lowbit diffusion sample MODEL --schedule betas.npy --noise noise.npy --out samples.npy
        [--sampler ddpm|ddim] [--steps S] [--timesteps T] [--time-input NAME]
  lowbit diffusion eval MODEL --float FLOAT.onnx --schedule betas.npy --data x0.npy
        [--per-t N] [--seed K] [--noise noise.npy] [--sampler ddpm|ddim] [--steps S]
        [--html report.html] [--time-input NAME]

sample: runs the sampler with MODEL (float ONNX, QDQ ONNX or .lowbit) from fixed noise
  [T+1, N, ...image] (noise[0] = x_T, noise[k] the noise added at step k; DDIM uses noise[0]).
eval: prints JSON: ε relative MSE of MODEL vs FLOAT per timestep (on N clean images of --data
  forward-noised to every t, default 8) and its mean; with --noise, the samples' MSE to the
  float model's samples from that noise and its ratio to their variance. --html writes a page
  with the ε-MSE chart and both sample grids.
`;

async function readTensor(path: string, what: string): Promise<TensorData> {
  try {
    return readNpy(await Deno.readFile(path), path);
  } catch (e) {
    if (e instanceof LowbitError) throw e;
    throw new LowbitError(
      "IO_ERROR",
      `cannot read ${what}: ${e instanceof Error ? e.message : e}`,
      { file: path },
    );
  }
}

const need = (v: string | undefined, flag: string, cmd: string): string => {
  if (!v) throw new LowbitError("INVALID_ARGUMENT", `lowbit diffusion ${cmd} needs ${flag}`);
  return v;
};

const optInt = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new LowbitError("INVALID_ARGUMENT", `${flag} needs a non-negative integer, got '${v}'`);
  }
  return n;
};

const sampler = (v: string | undefined): SamplerKind => {
  if (v === undefined || v === "ddpm" || v === "ddim") return v ?? "ddpm";
  throw new LowbitError("INVALID_ARGUMENT", `--sampler must be ddpm or ddim, got '${v}'`);
};

/** A model file as a denoiser, with its inputs found. */
async function loadDenoiser(path: string, registry: Registry, timeInput?: string) {
  const loaded = await loadModelFile(path, { registry });
  const inputs = findDiffusionInputs(loaded.model.graph as never, { timeInput, file: path });
  const denoise: Denoiser = (feed) => loaded.runner.run(feed);
  return { inputs, denoise };
}

/** Runs the sampler with a progress bar on a TTY. */
async function runSampler(
  denoise: Denoiser,
  schedule: Schedule,
  noise: TensorData,
  opts: {
    inputs: ReturnType<typeof findDiffusionInputs>;
    sampler: SamplerKind;
    steps?: number;
    noiseName: string;
    label: string;
  },
): Promise<TensorData> {
  const progress = createProgress(Deno.stdout.isTerminal());
  let bar: ReturnType<ReturnType<typeof createProgress>["start"]> | undefined;
  const out = await sample(denoise, schedule, noise, {
    ...opts,
    onStep: (_t, _x, k, total) => {
      bar ??= progress.start(opts.label, total);
      if (k > 0) bar.increment();
    },
  });
  bar?.increment();
  bar?.stop();
  return out;
}

async function sampleMain(args: string[], registry: Registry): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      schedule: { type: "string" },
      noise: { type: "string" },
      out: { type: "string" },
      sampler: { type: "string" },
      steps: { type: "string" },
      timesteps: { type: "string" },
      "time-input": { type: "string" },
    },
  });
  if (positionals.length !== 1) {
    throw new LowbitError("INVALID_ARGUMENT", "lowbit diffusion sample needs one MODEL\n" + HELP);
  }
  const schedule = await readSchedule(
    need(values.schedule, "--schedule", "sample"),
    optInt(values.timesteps, "--timesteps"),
  );
  const noisePath = need(values.noise, "--noise", "sample");
  const out = need(values.out, "--out", "sample");
  const noise = await readTensor(noisePath, "the noise");
  const { inputs, denoise } = await loadDenoiser(positionals[0], registry, values["time-input"]);
  const samples = await runSampler(denoise, schedule, noise, {
    inputs,
    sampler: sampler(values.sampler),
    steps: optInt(values.steps, "--steps"),
    noiseName: noisePath,
    label: "sample",
  });
  await Deno.writeFile(out, writeNpy(samples));
  console.error(`lowbit diffusion sample: wrote ${out} [${samples.shape}]`);
  return 0;
}

async function evalMain(args: string[], registry: Registry): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      float: { type: "string" },
      schedule: { type: "string" },
      data: { type: "string" },
      "per-t": { type: "string" },
      seed: { type: "string" },
      noise: { type: "string" },
      sampler: { type: "string" },
      steps: { type: "string" },
      timesteps: { type: "string" },
      html: { type: "string" },
      "time-input": { type: "string" },
    },
  });
  if (positionals.length !== 1) {
    throw new LowbitError("INVALID_ARGUMENT", "lowbit diffusion eval needs one MODEL\n" + HELP);
  }
  const schedule = await readSchedule(
    need(values.schedule, "--schedule", "eval"),
    optInt(values.timesteps, "--timesteps"),
  );
  const floatPath = need(values.float, "--float", "eval");
  const images = await readTensor(need(values.data, "--data", "eval"), "the images");
  const q = await loadDenoiser(positionals[0], registry, values["time-input"]);
  const f = await loadDenoiser(floatPath, registry, values["time-input"]);
  const perT = optInt(values["per-t"], "--per-t") ?? 8;
  const pairs = forwardNoisedPairs(images, schedule, perT, optInt(values.seed, "--seed") ?? 0);
  const eps = await epsRelativeMse(q.denoise, f.denoise, pairs, q.inputs, schedule.T);
  const result: Record<string, unknown> = {
    model: positionals[0],
    float: floatPath,
    pairsPerTimestep: perT,
    epsRelativeMse: { mean: eps.mean, perT: eps.perT },
  };
  let samples, floatSamples, quantSamples;
  if (values.noise) {
    const noise = await readTensor(values.noise, "the noise");
    const opts = {
      sampler: sampler(values.sampler),
      steps: optInt(values.steps, "--steps"),
      noiseName: values.noise,
    };
    floatSamples = await runSampler(f.denoise, schedule, noise, {
      ...opts,
      inputs: f.inputs,
      label: "float",
    });
    quantSamples = await runSampler(q.denoise, schedule, noise, {
      ...opts,
      inputs: q.inputs,
      label: "quantized",
    });
    samples = sampleError(quantSamples, floatSamples);
    result.samples = samples;
  }
  if (values.html) {
    await Deno.writeTextFile(
      values.html,
      renderDiffusionReport({
        model: positionals[0],
        float: floatPath,
        eps,
        ...(samples ? { samples, floatSamples, quantSamples } : {}),
      }),
    );
    result.html = values.html;
  }
  console.log(JSON.stringify(result, null, 2));
  return 0;
}

/**
 * The command `lowbit diffusion` (`sample`, `eval`), running models through `registry`.
 *
 * @param registry the registry the models' quantizers are registered in
 * @returns the command
 *
 * @example
 * ```ts
 * import { createRegistry } from "@lowbit/core";
 * import { diffusionCommand } from "@lowbit/diffusion";
 * const c = diffusionCommand(createRegistry());
 * if (c.name !== "diffusion") throw new Error();
 * ```
 */
export function diffusionCommand(registry: Registry): PluginCommand {
  return {
    name: "diffusion",
    summary: "diffusion models: sample with any model, evaluate quantized vs float",
    async main(args: string[]): Promise<number> {
      const [sub, ...rest] = args;
      if (sub === "sample") return await sampleMain(rest, registry);
      if (sub === "eval") return await evalMain(rest, registry);
      if (sub === undefined || sub === "help" || sub === "--help" || sub === "-h") {
        console.log(HELP);
        return 0;
      }
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `unknown subcommand '${sub}' of lowbit diffusion (sample, eval)`,
      );
    },
  };
}
