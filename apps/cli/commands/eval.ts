/**
 * `lowbit eval`: compares a quantized model with its float original on the
 * same inputs — output SQNR and cosine, top-1 against labels (or agreement
 * alone), and latency of both on our runtime.
 *
 * ```sh
 * lowbit eval model.onnx out/model.w8a8.onnx --data x.npy --labels y.npy --json
 * ```
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { readNpy, type TensorData } from "@lowbit/graph";
import { createProgress, evaluate, loadDataset, loadModelFile } from "@lowbit/pipeline";
import type { Command } from "./_command.ts";
import { loadPlugins, loadPluginsOfFile, splitPluginArgs } from "../plugins.ts";
import { parseOptions } from "./_io.ts";
import { checkedNumber, threadsOption } from "./_options.ts";

const HELP =
  `usage: lowbit eval FLOAT_MODEL QUANT_MODEL --data [NAME=]X.npy [--labels Y.npy] [--json]

Runs both models on the same inputs on our runtime and compares their outputs.
QUANT_MODEL is a QDQ ONNX file or a lowbit file (.lowbit / .safetensors).

  --data [NAME=]X.npy   inputs, batch first (one per model input)
  --whole NAME[,NAME]   inputs given whole to every batch (a graph's features and edges)
  --plugin NAME|PATH    load a plugin (repeatable; a lowbit file's own are loaded anyway)
  --labels Y.npy        integer labels, one per sample (top-1 of both models)
  --batch-size N        samples per batch (64)
  --mask-threshold T    also report mask_iou: IoU of the outputs binarised at T
  --threads N           threads for Conv / Gemm / MatMul of ONNX and QDQ models (default 1;
                        the same outputs; latency then measures the threaded runtime)
  --json                one JSON object: sqnr_db, cosine, top1_float, top1_quant,
                        top1_agreement, latency_ms_float, latency_ms_quant
  -h, --help            this help`;

/**
 * Runs `lowbit eval`.
 *
 * @param args arguments after `eval`
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { evalMain } from "./eval.ts";
 * if (await evalMain(["--help"]) !== 0) throw new Error();
 * ```
 */
export async function evalMain(argv: string[]): Promise<number> {
  const split = splitPluginArgs(argv);
  await loadPlugins(split.plugins);
  const args = split.rest;
  // A lowbit file names the plugins its quantizers come from: load them too.
  for (const a of args) if (!a.startsWith("-")) await loadPluginsOfFile(a);
  const { values, positionals } = parseOptions(args, {
    whole: { type: "string", multiple: true },
    data: { type: "string", multiple: true },
    labels: { type: "string" },
    "batch-size": { type: "string" },
    "mask-threshold": { type: "string" },
    threads: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, HELP);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new LowbitError("INVALID_ARGUMENT", `need a float and a quantized model\n\n${HELP}`);
  }
  if (!values.data?.length) {
    throw new LowbitError("INVALID_ARGUMENT", `--data is required\n\n${HELP}`);
  }
  const [floatPath, quantPath] = positionals;
  // Every numeric option, checked before any file is read.
  const threads = threadsOption(values.threads, "eval");
  const batchSize = checkedNumber(values["batch-size"], "--batch-size", {
    integer: true,
    min: 1,
    max: 65536,
  }) ?? 64;
  const maskThreshold = checkedNumber(values["mask-threshold"], "--mask-threshold", {});
  const float = await loadModelFile(floatPath, { threads });
  const quant = await loadModelFile(quantPath, { threads });
  const data = await loadDataset(
    values.data,
    float.model.graph.inputs,
    undefined,
    "evaluation data",
    (values.whole ?? []).flatMap((w: string) => w.split(",")).filter((w: string) => w),
  );
  let labels: TensorData | undefined;
  if (values.labels) {
    const path = values.labels;
    const bytes = await Deno.readFile(path).catch(() => {
      throw new LowbitError("IO_ERROR", "cannot read the labels", { file: path });
    });
    labels = readNpy(bytes, path);
  }
  const json = values.json ?? false;
  const bar = createProgress(!json && Deno.stdout.isTerminal()).start(
    "evaluate",
    Math.ceil(data.count / batchSize),
  );
  const r = await evaluate(float.runner, quant.runner, data, {
    labels,
    batchSize,
    progress: bar,
    maskThreshold,
  });
  bar.stop();
  if (json) {
    console.log(JSON.stringify(r));
    return 0;
  }
  const pct = (x: number | null): string => x === null ? "–" : `${(x * 100).toFixed(2)} %`;
  console.log([
    `lowbit eval: ${floatPath} vs ${quantPath} (${quant.kind}), ${r.samples} samples`,
    `  output    SQNR ${r.sqnr_db.toFixed(2)} dB, cosine ${r.cosine.toFixed(5)}${
      r.mask_iou === undefined ? "" : `, mask IoU ${r.mask_iou.toFixed(4)}`
    }`,
    `  top-1     float ${pct(r.top1_float)}, quantized ${pct(r.top1_quant)}, agreement ${
      pct(r.top1_agreement)
    }`,
    `  latency   float ${r.latency_ms_float.toFixed(2)} ms, quantized ${
      r.latency_ms_quant.toFixed(2)
    } ms per batch of ${r.batch_size} (our runtime, Q/DQ as written; not the faster integer plan)`,
  ].join("\n"));
  return 0;
}

/** The `eval` subcommand. */
export const evalCommand: Command = {
  summary: "compare a quantized model with its float original (SQNR, cosine, top-1, latency)",
  main: evalMain,
};
