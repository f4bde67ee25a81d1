/**
 * `lowbit quantize`: calibrate, quantize (RTN or GPTQ), export, evaluate and
 * report. With no model it runs the embedded default: the bundled digits CNN
 * with its calibration and evaluation splits, preset w8a8, output in `out/`.
 *
 * ```sh
 * lowbit quantize
 * lowbit quantize model.onnx --calib x.npy --preset w4a8 --gptq --out out/model.w4a8.onnx
 * lowbit quantize model.onnx --calib images/ --size 224x224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
 * lowbit quantize model.onnx --calib x.npy --plan out/model.w8a8.plan.json --out out/again.onnx
 * ```
 *
 * @module
 */

import { basename, extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultRegistry, LowbitError } from "@lowbit/core";
import { checkQuantPoints, type Model, readNpy, type TensorData } from "@lowbit/graph";
import {
  numberOption as num,
  parseOptions,
  readJsonFile as readJson,
  readModelFile as readModel,
} from "./_io.ts";
import {
  buildReport,
  checkOutputPath,
  createProgress,
  type Dataset,
  type EvalResult,
  evaluate,
  floatRunner,
  layerSqnr,
  loadChartJs,
  loadDataset,
  loadModelFile,
  type MixedSearch,
  modelSizes,
  parseImageSpec,
  parsePlan,
  parseRules,
  pendingWrites,
  planPoints,
  presetNames,
  quantize,
  type QuantizeResult,
  renderReport,
  type Rule,
  writeFileAtomic,
  writeQuantized,
} from "@lowbit/pipeline";
import type { MixedPrecisionResult } from "@lowbit/pipeline/search";
import type { Command } from "../main.ts";
import {
  loadPlugins,
  pluginHelp,
  pluginOptionValues,
  pluginParseOptions,
  pluginSource,
  splitPluginArgs,
} from "../plugins.ts";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));

const HELP = `usage: lowbit quantize [MODEL.onnx] [options]

Quantizes a model and writes it with its plan (<out>.plan.json) and an HTML
report (<out>.report.html). With no MODEL: the bundled digits CNN, its
calibration and evaluation splits, preset w8a8, output out/cnn.w8a8.onnx.

  --calib [NAME=]PATH   calibration data: .npy (batch first) per input, or a folder
                        of PNG/JPEG images (with --size/--layout/--channels/--mean/--std);
                        a .npy of the input's full static shape is one whole sample (a
                        graph); NAME=NUMBER gives an input a constant (--calib sr=16000)
  --whole NAME[,NAME]   inputs given whole to every batch whatever their shape (a graph's
                        features and edges: the data is one sample)
  --plugin NAME|PATH    load a plugin (repeatable): a built-in short name or a module
                        exporting \`plugin\`; its options are listed by --help after it
  --preset NAME         ${presetNames().join(" | ")} (default w8a8)
  --config RULES.json   ordered wildcard rules over node names (later rules win):
                        [{ "match": "conv*", "weight": { "format": "int8" } }, { "match": "fc", "skip": true }]
  --plan PLAN.json      replay a plan written by an earlier run (instead of preset/config)
  --out PATH            .onnx (QDQ ONNX) or .lowbit / .safetensors (lowbit file)
  --gptq                GPTQ weight rounding (same as --rounding gptq)
  --rounding rtn|gptq   weight rounding (default: the preset's, rtn)
  --act-order           GPTQ: columns in decreasing Hessian-diagonal order
  --damp X              GPTQ dampening, fraction of the mean diagonal (0.01)
  --gptq-block N        GPTQ lazy-update block (128)
  --calibrator NAME     activation calibrator: minmax, ema-minmax, percentile, mse, kl
  --smoothquant ALPHA   SmoothQuant migration strength (e.g. 0.5)
  --equalize ALPHA      range-equalise Conv inputs first (depthwise inputs fully; ALPHA for
                        ungrouped Convs: 0.5 balanced, 1 all into the weights)
  --bias-correction     correct the bias for the weights' rounding error
  --eval [NAME=]X.npy   evaluation inputs (default: none; the embedded default uses its split)
  --labels Y.npy        evaluation labels (int64), for top-1
  --mask-threshold T    also report the IoU of the outputs binarised at T (e.g. 0.3 for
                        a text detector's probability map)
  --batch-size N        calibration / evaluation batch (32)
  --report PATH         report path (default <out>.report.html); --no-report to skip
  --json                print one JSON object (no progress bars)
  --budget, --budget-size, --budget-latency, --budget-bops, --metric, --search, --tolerance,
  --candidates, --act-formats   passed to the mixed-precision search, e.g. --budget 4.5bits,
                        --budget-bops 2MBOPs, --candidates int8/channel,int4/group:16,mxfp4,
                        --act-formats int8,fp8_e4m3fn,none (input formats searched per layer;
                        none = float inputs; default int8)
  --no-ties             mixed search: do not tie layers whose outputs meet in an Add / Concat
                        (layers reading one tensor always share its activation format)
  --size HxW --layout NCHW|NHWC --channels 1|3 --mean M[,M,M] --std S[,S,S]
                        image preprocessing (pixels scaled to [0, 1] first)
  -h, --help            this help`;

interface Summary {
  model: string;
  preset: string | null;
  output: string;
  plan: string;
  report: string | null;
  layers: { node: string; op: string; weight: string; activation: string }[];
  size_bytes_float: number;
  size_bytes_quant: number;
  evaluation: EvalResult | null;
  warnings: string[];
}

function fmtPct(x: number | null | undefined): string {
  return x === null || x === undefined ? "–" : `${(x * 100).toFixed(2)} %`;
}

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** Whether QDQ ONNX can hold every point (else the default output is a lowbit file). */
function onnxCanHold(result: QuantizeResult): boolean {
  try {
    checkQuantPoints(planPoints(result.quantized.plan), { target: "onnx" });
    return true;
  } catch {
    return false;
  }
}

/** The mixed-precision search hook, loaded only for `--preset mixed`. */
async function loadMixedSearch(
  model: Model,
  calib: Dataset | undefined,
  onResult: (r: MixedPrecisionResult) => void,
): Promise<MixedSearch> {
  if (!calib) {
    throw new LowbitError("INVALID_ARGUMENT", "--preset mixed needs calibration data (--calib)");
  }
  const { createMixedSearch } = await import("@lowbit/pipeline/search");
  return createMixedSearch({ model, calib, onResult });
}

/**
 * Runs `lowbit quantize`.
 *
 * @param args command-line arguments after `quantize`
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { quantizeMain } from "./quantize.ts";
 * if (await quantizeMain(["--help"]) !== 0) throw new Error();
 * ```
 */
export async function quantizeMain(argv: string[]): Promise<number> {
  // Plugins first: their options parse like ours.
  const split = splitPluginArgs(argv);
  await loadPlugins(split.plugins);
  const args = split.rest;
  const { values, positionals } = parseOptions(args, {
    ...pluginParseOptions(),
    calib: { type: "string", multiple: true },
    whole: { type: "string", multiple: true },
    preset: { type: "string" },
    config: { type: "string" },
    plan: { type: "string" },
    out: { type: "string" },
    gptq: { type: "boolean" },
    rounding: { type: "string" },
    "act-order": { type: "boolean" },
    damp: { type: "string" },
    "gptq-block": { type: "string" },
    calibrator: { type: "string" },
    smoothquant: { type: "string" },
    equalize: { type: "string" },
    "bias-correction": { type: "boolean" },
    eval: { type: "string", multiple: true },
    labels: { type: "string" },
    "batch-size": { type: "string" },
    "mask-threshold": { type: "string" },
    report: { type: "string" },
    "no-report": { type: "boolean" },
    json: { type: "boolean" },
    budget: { type: "string" },
    "budget-size": { type: "string" },
    "budget-latency": { type: "string" },
    "budget-bops": { type: "string" },
    candidates: { type: "string" },
    "act-formats": { type: "string" },
    metric: { type: "string" },
    search: { type: "string" },
    tolerance: { type: "string" },
    "no-ties": { type: "boolean" },
    size: { type: "string" },
    layout: { type: "string" },
    channels: { type: "string" },
    mean: { type: "string" },
    std: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, HELP + pluginHelp());
  if (values.help) {
    console.log(HELP + pluginHelp());
    return 0;
  }
  const pluginOptions = pluginOptionValues(values as Record<string, unknown>);
  const wholeInputs = (values.whole ?? []).flatMap((w) => w.split(",")).filter((w) => w);
  if (positionals.length > 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `one model at a time (got ${positionals.join(", ")})`,
    );
  }
  const embedded = positionals.length === 0;
  const modelPath = embedded ? join(FIXTURES, "cnn.onnx") : positionals[0];
  const calibSpecs = values.calib ?? (embedded ? [join(FIXTURES, "calib_x.npy")] : []);
  const evalSpecs = values.eval ?? (embedded ? [join(FIXTURES, "eval_x.npy")] : []);
  const labelsPath = values.labels ?? (embedded ? join(FIXTURES, "eval_y.npy") : undefined);
  const preset = values.preset ?? "w8a8";
  if (values.plan && (values.preset || values.config)) {
    throw new LowbitError("INVALID_ARGUMENT", "--plan replays a plan: drop --preset and --config");
  }
  const stem = basename(modelPath, extname(modelPath));
  // Default output: out/<model>.<preset>.onnx, or .lowbit when a format has no ONNX type.
  const defaultOut = (ext: string): string =>
    join("out", `${stem}.${values.plan ? "plan" : preset}${ext}`);
  if (values.out) await checkOutputPath(values.out);
  else await Deno.mkdir("out", { recursive: true });
  const json = values.json ?? false;
  const progress = createProgress(!json && Deno.stdout.isTerminal());
  const rounding = values.gptq ? "gptq" : values.rounding;
  if (rounding !== undefined && rounding !== "rtn" && rounding !== "gptq") {
    throw new LowbitError("INVALID_ARGUMENT", `--rounding must be rtn or gptq, got '${rounding}'`);
  }
  const batchSize = num(values["batch-size"], "--batch-size");

  // Inputs: model, rules / plan, data (all checked before any work).
  const { model, sha256 } = await readModel(modelPath);
  const rules: Rule[] = values.config
    ? parseRules(await readJson(values.config, "rules file"), values.config)
    : [];
  const plan = values.plan
    ? parsePlan(await readJson(values.plan, "plan"), values.plan)
    : undefined;
  // A replayed plan loads the plugins that made it.
  for (const p of plan?.plugins ?? []) await loadPlugins([p.source ?? p.name]);
  const image = values.size || values.mean || values.std || values.layout || values.channels
    ? parseImageSpec(values)
    : undefined;
  const calib: Dataset | undefined = calibSpecs.length
    ? await loadDataset(calibSpecs, model.graph.inputs, image, "calibration data", wholeInputs)
    : undefined;
  const evalData: Dataset | undefined = evalSpecs.length
    ? await loadDataset(evalSpecs, model.graph.inputs, image, "evaluation data", wholeInputs)
    : undefined;
  let labels: TensorData | undefined;
  if (labelsPath) {
    labels = readNpy(
      await Deno.readFile(labelsPath).catch(() => {
        throw new LowbitError("IO_ERROR", "cannot read the labels", { file: labelsPath });
      }),
      labelsPath,
    );
  }
  const mixedOptions: Record<string, string> = {};
  for (
    const k of [
      "budget",
      "budget-size",
      "budget-latency",
      "budget-bops",
      "candidates",
      "act-formats",
      "metric",
      "search",
      "tolerance",
    ]
  ) {
    const v = (values as Record<string, unknown>)[k];
    if (typeof v === "string") mixedOptions[k] = v;
  }
  if (values["no-ties"]) mixedOptions.ties = "false";

  let searchResult: MixedPrecisionResult | undefined;
  const result: QuantizeResult = await quantize({
    model,
    name: basename(modelPath),
    sha256,
    calib,
    preset,
    rules,
    plan,
    rounding,
    calibrator: values.calibrator,
    gptq: {
      ...(values["act-order"] ? { actOrder: true } : {}),
      ...(values.damp ? { damp: num(values.damp, "--damp") } : {}),
      ...(values["gptq-block"] ? { blockSize: num(values["gptq-block"], "--gptq-block") } : {}),
    },
    smoothquant: num(values.smoothquant, "--smoothquant") ?? null,
    equalize: num(values.equalize, "--equalize") ?? null,
    biasCorrection: values["bias-correction"] ?? false,
    batchSize,
    progress,
    mixedSearch: preset === "mixed" && !plan
      ? await loadMixedSearch(model, calib, (r) => (searchResult = r))
      : undefined,
    mixedOptions,
    registry: defaultRegistry(),
    pluginOptions: plan?.pluginOptions ?? pluginOptions,
    ...(values.out
      ? { target: values.out.toLowerCase().endsWith(".onnx") ? "onnx" : "lowbit" }
      : {}),
  });
  if (result.quantized.plan.plugins) {
    for (const p of result.quantized.plan.plugins) {
      const src = pluginSource(p.name);
      if (src) p.source = src;
    }
  }
  for (const w of result.warnings) if (!json) console.error(`lowbit quantize: warning: ${w}`);
  if (searchResult) {
    result.quantized.plan.search = {
      metric: searchResult.metric,
      strategy: searchResult.strategy,
      allocation: searchResult.allocation,
    };
  }

  const out = values.out ?? defaultOut(onnxCanHold(result) ? ".onnx" : ".lowbit");
  const written = await writeQuantized(result.quantized, out);

  let evaluation: EvalResult | null = null;
  let perLayer: Record<string, number> = {};
  if (evalData) {
    const bar = progress.start("evaluate", Math.ceil(evalData.count / (batchSize ?? 64)));
    // The written file, as our runtime loads and runs it.
    const artifact = await loadModelFile(written.model);
    evaluation = await evaluate(floatRunner(model), artifact.runner, evalData, {
      labels,
      batchSize,
      progress: bar,
      maskThreshold: num(values["mask-threshold"], "--mask-threshold"),
    });
    bar.stop();
    perLayer = await layerSqnr(result.prepared, result.quantized, evalData);
  }
  // The prepared graph: weights held in Constant nodes are initializers there.
  const sizes = modelSizes(result.prepared, result.quantized);
  let reportPath: string | null = null;
  if (!values["no-report"] && evaluation) {
    reportPath = values.report ?? written.plan.replace(/\.plan\.json$/, ".report.html");
    const html = renderReport(
      buildReport({
        float: result.prepared,
        model: { name: basename(modelPath), sha256 },
        result,
        evaluation,
        layerSqnr: perLayer,
        output: out,
        sizes,
        ...(searchResult
          ? {
            search: {
              metric: searchResult.metric,
              strategy: searchResult.strategy,
              points: searchResult.frontier.points,
              choices: searchResult.frontier.choices,
            },
          }
          : {}),
      }),
      await loadChartJs(),
    );
    await writeFileAtomic(reportPath, new TextEncoder().encode(html));
  }
  const summary: Summary = {
    model: relative(Deno.cwd(), modelPath) || modelPath,
    preset: result.quantized.plan.preset,
    output: written.model,
    plan: written.plan,
    report: reportPath,
    layers: result.quantized.layers.map((l) => {
      const w = result.quantized.plan.entries.find((e) => e.node === l.node && e.role === "weight");
      const a = result.quantized.plan.entries.find((e) =>
        e.node === l.node && e.role === "activation"
      );
      return {
        node: l.node,
        op: l.op,
        weight: !w || w.skip ? "float" : `${w.format} ${w.rounding ?? ""}`.trim(),
        activation: !a || a.skip ? "float" : `${a.format}${a.dynamic ? " dynamic" : ""}`,
      };
    }),
    size_bytes_float: sizes.floatBytes,
    size_bytes_quant: sizes.quantBytes,
    evaluation,
    warnings: result.warnings,
  };
  if (json) {
    console.log(JSON.stringify(summary));
    return 0;
  }
  printSummary(summary);
  return 0;
}

function printSummary(s: Summary): void {
  const w = Math.max(5, ...s.layers.map((l) => l.node.length));
  const lines = [
    `lowbit quantize: ${s.model} → ${s.output} (preset ${s.preset ?? "from plan"})`,
    "",
    `  ${"layer".padEnd(w)}  ${"op".padEnd(13)}  ${"weights".padEnd(14)}  activations`,
    ...s.layers.map((l) =>
      `  ${l.node.padEnd(w)}  ${l.op.padEnd(13)}  ${l.weight.padEnd(14)}  ${l.activation}`
    ),
    "",
    `  size      ${fmtBytes(s.size_bytes_float)} → ${fmtBytes(s.size_bytes_quant)} (${
      (s.size_bytes_float / Math.max(1, s.size_bytes_quant)).toFixed(2)
    }× smaller)`,
  ];
  const e = s.evaluation;
  if (e) {
    lines.push(
      `  top-1     float ${fmtPct(e.top1_float)}, quantized ${fmtPct(e.top1_quant)} ` +
        `(agreement ${fmtPct(e.top1_agreement)}, ${e.samples} samples)`,
      `  output    SQNR ${e.sqnr_db.toFixed(2)} dB, cosine ${e.cosine.toFixed(5)}${
        e.mask_iou === undefined ? "" : `, mask IoU ${e.mask_iou.toFixed(4)}`
      }`,
      `  latency   float ${e.latency_ms_float.toFixed(2)} ms, quantized ${
        e.latency_ms_quant.toFixed(2)
      } ms per batch of ${e.batch_size} (our runtime)`,
    );
  } else {
    lines.push("  (no --eval data: accuracy not measured)");
  }
  lines.push(`  plan      ${s.plan}`);
  if (s.report) lines.push(`  report    ${s.report}`);
  console.log(lines.join("\n"));
}

/** Removes temporary outputs and exits on Ctrl-C. */
function onInterrupt(): void {
  for (const tmp of pendingWrites()) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
  }
  console.error("\nlowbit quantize: interrupted; no output was written");
  Deno.exit(130);
}

/** The `quantize` subcommand. */
export const quantizeCommand: Command = {
  summary:
    "calibrate, quantize (RTN / GPTQ), export, evaluate and report (no model: the bundled demo)",
  async main(args: string[]): Promise<number> {
    let listening = false;
    try {
      Deno.addSignalListener("SIGINT", onInterrupt);
      listening = true;
    } catch { /* signals unsupported here */ }
    try {
      return await quantizeMain(args);
    } finally {
      if (listening) Deno.removeSignalListener("SIGINT", onInterrupt);
    }
  },
};
