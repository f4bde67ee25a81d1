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

import { existsSync } from "node:fs";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  defaultRegistry,
  type GraphView,
  LowbitError,
  type PluginOptionValues,
} from "@lowbit/core";
import { checkQuantPoints, type Model, readNpy, type TensorData } from "@lowbit/graph";
import { checkedNumber, type NumberRule, toleranceOption, unmetBudgets } from "./_options.ts";
import { parseOptions, readJsonFile as readJson, readModelFile as readModel } from "./_io.ts";
import {
  buildReport,
  checkOutputPath,
  commitStaged,
  createProgress,
  type Dataset,
  defaultMaxDelta,
  describeGuard,
  discardStaged,
  encodeQuantized,
  type EvalResult,
  evaluate,
  floatRunner,
  formatBytes,
  formatPercent,
  guardQuantize,
  type GuardReport,
  type ImageSpec,
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
  planPathFor,
  planPoints,
  planToJson,
  pluginReportSections,
  presetNames,
  quantize,
  type QuantizeOptions,
  type QuantizeResult,
  renderReport,
  type Rule,
  stageFiles,
} from "@lowbit/pipeline";
import type { Budget, MixedPrecisionResult } from "@lowbit/pipeline/search";
import type { Command } from "./_command.ts";
import {
  loadPlugins,
  pluginHelp,
  pluginOptionValues,
  pluginParseOptions,
  pluginSource,
  splitPluginArgs,
} from "../plugins.ts";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));

/** The guard's default threshold with a preset (output SQNR vs float, dB). */
const DEFAULT_MIN_SQNR_DB = 20;

const HELP = `usage: lowbit quantize [MODEL.onnx] [options]

Quantizes a model and writes it with its plan (<out>.plan.json) and an HTML
report (<out>.report.html). With no MODEL: the bundled digits CNN, its
calibration and evaluation splits, preset w8a8, output out/cnn.w8a8.onnx.
The files of one run are written together, after everything (evaluation
included) succeeded; an interrupted or failed run leaves earlier files as they were.

  --calib [NAME=]PATH   calibration data: .npy (batch first) per input, or a folder
                        of PNG/JPEG images (with --size/--layout/--channels/--mean/--std);
                        a .npy of the input's full static shape is one whole sample (a
                        graph); NAME=NUMBER gives an input a constant (--calib sr=16000)
  --whole NAME[,NAME]   inputs given whole to every batch whatever their shape (a graph's
                        features and edges: the data is one sample)
  --plugin NAME|PATH    load a plugin (repeatable): a built-in short name (vit, diffusion,
                        gnn, moe) or a module exporting \`plugin\`; its options are listed
                        by --help after it
  --preset NAME         ${presetNames().join(" | ")} (default w8a8)
  --config RULES.json   ordered wildcard rules over node names (later rules win):
                        [{ "match": "conv*", "weight": { "format": "int8" } }, { "match": "fc", "skip": true }]
  --plan PLAN.json      replay a plan written by an earlier run (instead of preset/config)
  --out PATH            .onnx (QDQ ONNX) or .lowbit / .safetensors (lowbit file); never an input
  --gptq                GPTQ weight rounding (same as --rounding gptq)
  --rounding rtn|gptq   weight rounding (default: the preset's, rtn)
  --act-order           GPTQ: columns in decreasing Hessian-diagonal order
  --damp X              GPTQ dampening, fraction of the mean diagonal, in (0, 1] (0.01)
  --gptq-block N        GPTQ lazy-update block, 1..65536 (128)
  --calibrator NAME     activation calibrator: minmax, ema-minmax, percentile, mse, kl
  --smoothquant ALPHA   SmoothQuant migration strength in [0, 1] (e.g. 0.5)
  --equalize ALPHA      range-equalise Conv inputs first, ALPHA in [0, 1] (depthwise inputs
                        fully; ALPHA for ungrouped Convs: 0.5 balanced, 1 all into the weights)
  --equalize-spectra ALPHA  the same for complex magnitudes only (an STFT's bins, sqrt(re² + im²),
                        read by a Conv; their factors go into the STFT Conv's rows)
  --split-taps BITS     split each Conv whose other kernel taps lose on average BITS (0..8;
                        2 is a good start) of their int8 grid to one tap (a folded 1×1 branch)
                        into that tap and the rest, summed, each quantized on its own (default off)
  --bias-correction     correct the bias for the weights' rounding error
  --propagate           refit each layer's weight and bias, in graph order, to map the quantized
                        model's own input onto the float layer's output (one calibration pass
                        per layer; stateful models closed loop)
  --min-sqnr DB|off     accuracy guard: if the output SQNR vs float is below DB (0..200; default
                        ${DEFAULT_MIN_SQNR_DB} with a preset, off when replaying a plan), keep the layers whose
                        quantization hurts the output most in float until it holds, and list them
  --max-delta X|off     accuracy guard: bound the largest |Δ| of the first output vs float (X > 0;
                        a stateful model is measured closed loop over the streams of the data):
                        try GPTQ, bias correction and the mse calibrator, then keep layers in
                        int16, then float, until it holds, and list them (for probabilities
                        compared with a threshold: a VAD's speech probability). Default 0.01
                        for a stateful model (h → hn) whose first output is in [0, 1] on the
                        data, off otherwise and when replaying a plan
  --eval [NAME=]X.npy   evaluation inputs (default: none; the embedded default uses its split)
  --labels Y.npy        evaluation labels (int64), for top-1
  --mask-threshold T    also report the IoU of the outputs binarised at T (a finite number,
                        e.g. 0.3 for a text detector's probability map)
  --batch-size N        calibration / evaluation batch, 1..65536 (32)
  --report PATH         report path (default <out>.report.html); --no-report to skip
  --json                print one JSON object (no progress bars)
  --preset mixed only:  --budget 4.5bits (bits per weight; a bare number is bits),
                        --budget-size 200KB, --budget-latency 3ms (an unmet latency budget
                        is a warning), --budget-bops 2MBOPs, --tolerance 1% (largest top-1
                        drop, with its % sign), --metric, --search,
                        --candidates int8/channel,int4/group:16,mxfp4,
                        --act-formats int8,fp8_e4m3fn,none (input formats searched per layer;
                        none = float inputs; default int8), --budget-act 6bits (average bits
                        per element of a plugin's activation points, e.g. GNN aggregations,
                        allocated from --act-formats)
  --no-ties             mixed search: do not tie layers whose outputs meet in an Add / Concat
                        (layers reading one tensor always share its activation format)
  --size HxW --layout NCHW|NHWC --channels 1|3 --mean M[,M,M] --std S[,S,S]
                        image preprocessing (pixels scaled to [0, 1] first)
  -h, --help            this help`;

// ───────────── Validated options: every option of `lowbit quantize`, checked here, once ─────────────
// Nothing below this table reads `values` directly: numbers are checked against their ranges (with
// the range in the message), mixed-search options are refused without `--preset mixed`, and the
// output paths are checked against the inputs, all before any work.

const PARSE = {
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
  "equalize-spectra": { type: "string" },
  "split-taps": { type: "string" },
  "bias-correction": { type: "boolean" },
  propagate: { type: "boolean" },
  "min-sqnr": { type: "string" },
  "max-delta": { type: "string" },
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
  "budget-act": { type: "string" },
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
} as const;

/** Numeric options: their allowed values (the message quotes the range). */
const NUMBERS = {
  damp: { min: 0, minExclusive: true, max: 1 },
  "gptq-block": { integer: true, min: 1, max: 65536 },
  smoothquant: { min: 0, max: 1 },
  equalize: { min: 0, max: 1 },
  "equalize-spectra": { min: 0, max: 1 },
  "split-taps": { min: 0, max: 8 },
  "batch-size": { integer: true, min: 1, max: 65536 },
  "mask-threshold": {},
  "min-sqnr": { min: 0, max: 200 },
  "max-delta": { min: 0, minExclusive: true },
} as const satisfies Record<string, NumberRule>;

/** Options that only mean something to the mixed-precision search. */
const MIXED_ONLY = [
  "budget",
  "budget-size",
  "budget-latency",
  "budget-bops",
  "budget-act",
  "candidates",
  "act-formats",
  "metric",
  "search",
  "tolerance",
  "no-ties",
] as const;

/** `lowbit quantize`'s options, checked. */
interface QuantizeArgs {
  modelPath: string;
  embedded: boolean;
  calibSpecs: string[];
  evalSpecs: string[];
  labelsPath?: string;
  preset: string;
  configPath?: string;
  planPath?: string;
  /** The output given with --out (else chosen after quantizing). */
  out?: string;
  rounding?: "rtn" | "gptq";
  gptq: { actOrder?: boolean; damp?: number; blockSize?: number };
  calibrator?: string;
  smoothquant: number | null;
  equalize: number | null;
  /** "spectra" with --equalize-spectra (equalize is then its α). */
  equalizeWhere?: "spectra";
  /** Tap split threshold in bits, or null when off. */
  splitTaps: number | null;
  biasCorrection: boolean;
  propagate: boolean;
  /** The guard's threshold in dB, or null when off. */
  minSqnrDb: number | null;
  /**
   * The guard's bound on the output's max |Δ|, null when off, "auto": a stateful model's default
   * (`defaultMaxDelta`).
   */
  maxDelta: number | null | "auto";
  batchSize?: number;
  maskThreshold?: number;
  report?: string;
  noReport: boolean;
  json: boolean;
  mixedOptions: Record<string, string>;
  /** The budgets, parsed (to check the search's result against them). */
  budgets: Budget[];
  image?: ImageSpec;
  /** Plugin option values (`--vit-softmax adalog`, ...). */
  pluginOptions: Record<string, string | number | boolean>;
  /** Inputs given whole to every batch (`--whole`). */
  wholeInputs: string[];
}

/** Budgets as the search reads them, checked now (positive, bits ≤ 32, the right unit). */
async function checkBudgets(mixed: Record<string, string>): Promise<Budget[]> {
  if (!Object.keys(mixed).some((k) => k.startsWith("budget"))) return [];
  const { parseMixedOptions } = await import("@lowbit/pipeline/search");
  const { budgets } = parseMixedOptions(mixed);
  for (const b of budgets) {
    const [flag, v, ok] = b.kind === "bits"
      ? ["--budget", b.bits, b.bits > 0 && b.bits <= 32]
      : b.kind === "size"
      ? ["--budget-size", b.bytes, b.bytes >= 1]
      : b.kind === "latency"
      ? ["--budget-latency", b.ms, b.ms > 0]
      : ["--budget-bops", b.bops, b.bops > 0];
    if (!ok) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${flag} must be ${b.kind === "bits" ? "in (0, 32] bits per weight" : "positive"}, got ${
          mixed[flag.slice(2)]
        } (${v})`,
      );
    }
  }
  return budgets;
}

/** Parses and checks every option; null for --help. */
async function checkedArgs(argv: string[]): Promise<QuantizeArgs | null> {
  // Plugins first: their options parse like ours.
  const split = splitPluginArgs(argv);
  await loadPlugins(split.plugins);
  const { values, positionals } = parseOptions(
    split.rest,
    { ...pluginParseOptions(), ...PARSE },
    HELP + pluginHelp(),
  );
  if (values.help) return null;
  if (positionals.length > 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `one model at a time (got ${positionals.join(", ")})`,
    );
  }
  const n = (k: keyof typeof NUMBERS): number | undefined =>
    checkedNumber(values[k], `--${k}`, NUMBERS[k]);
  const embedded = positionals.length === 0;
  if (values.plan && (values.preset || values.config)) {
    throw new LowbitError("INVALID_ARGUMENT", "--plan replays a plan: drop --preset and --config");
  }
  const preset = values.preset ?? "w8a8";
  const mixedOptions: Record<string, string> = {};
  for (const k of MIXED_ONLY) {
    const v = values[k];
    if (v === undefined || v === false) continue;
    if (preset !== "mixed" || values.plan) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `--${k} is an option of the mixed-precision search: it needs --preset mixed ` +
          `(the preset here is ${values.plan ? "the replayed plan" : `'${preset}'`})`,
      );
    }
    if (k === "no-ties") mixedOptions.ties = "false";
    else mixedOptions[k] = k === "tolerance" ? toleranceOption(v)! : String(v);
  }
  const budgets = await checkBudgets(mixedOptions);
  const rounding = values.gptq ? "gptq" : values.rounding;
  if (rounding !== undefined && rounding !== "rtn" && rounding !== "gptq") {
    throw new LowbitError("INVALID_ARGUMENT", `--rounding must be rtn or gptq, got '${rounding}'`);
  }
  const minSqnr = values["min-sqnr"];
  if (values.equalize !== undefined && values["equalize-spectra"] !== undefined) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "--equalize and --equalize-spectra are exclusive (--equalize covers the spectra too)",
    );
  }
  const image = values.size || values.mean || values.std || values.layout || values.channels
    ? parseImageSpec(values)
    : undefined;
  return {
    modelPath: embedded ? join(FIXTURES, "cnn.onnx") : positionals[0],
    embedded,
    calibSpecs: values.calib ?? (embedded ? [join(FIXTURES, "calib_x.npy")] : []),
    evalSpecs: values.eval ?? (embedded ? [join(FIXTURES, "eval_x.npy")] : []),
    labelsPath: values.labels ?? (embedded ? join(FIXTURES, "eval_y.npy") : undefined),
    preset,
    configPath: values.config,
    planPath: values.plan,
    out: values.out,
    rounding,
    gptq: {
      ...(values["act-order"] ? { actOrder: true } : {}),
      ...(values.damp !== undefined ? { damp: n("damp") } : {}),
      ...(values["gptq-block"] !== undefined ? { blockSize: n("gptq-block") } : {}),
    },
    calibrator: values.calibrator,
    smoothquant: n("smoothquant") ?? null,
    equalize: n("equalize") ?? n("equalize-spectra") ?? null,
    ...(values["equalize-spectra"] !== undefined ? { equalizeWhere: "spectra" as const } : {}),
    splitTaps: n("split-taps") ?? null,
    biasCorrection: values["bias-correction"] ?? false,
    propagate: values.propagate ?? false,
    minSqnrDb: minSqnr === "off"
      ? null
      : n("min-sqnr") ?? (values.plan ? null : DEFAULT_MIN_SQNR_DB),
    maxDelta: values["max-delta"] === "off"
      ? null
      : n("max-delta") ?? (values.plan || preset === "mixed" ? null : "auto"),
    batchSize: n("batch-size"),
    maskThreshold: n("mask-threshold"),
    report: values.report,
    noReport: values["no-report"] ?? false,
    json: values.json ?? false,
    mixedOptions,
    budgets,
    image,
    pluginOptions: pluginOptionValues(values as Record<string, unknown>),
    wholeInputs: (values.whole ?? []).flatMap((w) => w.split(",")).filter((w) => w),
  };
}

// ───────────────────────────────────────── the run ─────────────────────────────────────────

interface Summary {
  model: string;
  preset: string | null;
  output: string;
  plan: string;
  report: string | null;
  layers: { node: string; op: string; weight: string; activation: string }[];
  /** Weight bytes (formats' bits, scales and zero points), float and quantized. */
  size_bytes_float: number;
  size_bytes_quant: number;
  /** Bytes on disk: the input model file and each file written. */
  file_bytes: { model_in: number; model: number; plan: number; report: number | null };
  evaluation: EvalResult | null;
  guard: GuardReport | null;
  warnings: string[];
}

/**
 * The guard's max |Δ| bound when none was given: a stateful model's default (`defaultMaxDelta`),
 * said in a warning when it applies.
 */
async function autoMaxDelta(
  result: QuantizeResult,
  data: Dataset,
  warnings: string[],
): Promise<number | null> {
  const d = await defaultMaxDelta(result.prepared, data, { registry: result.quantized.registry });
  if (d.bound !== null) warnings.push(`accuracy guard: ${d.reason}`);
  return d.bound;
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

/** The file part of a `[NAME=]PATH` data spec. */
function specPath(spec: string): string {
  const eq = spec.indexOf("=");
  return eq > 0 && !spec.slice(0, eq).includes("/") ? spec.slice(eq + 1) : spec;
}

/** An absolute path with symlinks in its folder resolved (the file itself need not exist). */
function canonical(path: string): string {
  const abs = resolve(path);
  try {
    return Deno.realPathSync(abs);
  } catch {
    try {
      return join(Deno.realPathSync(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

/**
 * Refuses, before any work, an output that would replace one of the run's inputs (the model, its
 * calibration or evaluation data, labels, plan or rules), or two outputs on one path.
 */
function checkOutputsAgainstInputs(a: QuantizeArgs, outputs: string[]): void {
  const inputs: [string, string][] = [
    ["the model", a.modelPath],
    ...a.calibSpecs.map((s): [string, string] => ["calibration data", specPath(s)]),
    ...a.evalSpecs.map((s): [string, string] => ["evaluation data", specPath(s)]),
    ...(a.labelsPath ? [["the labels", a.labelsPath] as [string, string]] : []),
    ...(a.planPath ? [["the plan", a.planPath] as [string, string]] : []),
    ...(a.configPath ? [["the rules file", a.configPath] as [string, string]] : []),
  ];
  const seen = new Map<string, string>();
  for (const out of outputs) {
    const o = canonical(out);
    for (const [what, path] of inputs) {
      const i = canonical(path);
      if (o === i || (o.startsWith(i + "/"))) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `the output '${out}' is ${what} this run reads: it would be overwritten; ` +
            `choose another --out${out.endsWith(".html") ? " / --report" : ""}`,
          { file: out },
        );
      }
    }
    const other = seen.get(o);
    if (other !== undefined) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `two outputs of this run are one file: '${other}' and '${out}'`,
        { file: out },
      );
    }
    seen.set(o, out);
  }
}

/** Where the run is, for the Ctrl-C handler's message. */
let phase: "working" | "written" = "working";

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
export async function quantizeMain(args: string[]): Promise<number> {
  const a = await checkedArgs(args);
  if (!a) {
    console.log(HELP + pluginHelp());
    return 0;
  }
  phase = "working";
  const warn = (w: string): void => {
    if (!a.json) console.error(`lowbit quantize: warning: ${w}`);
  };
  const stem = basename(a.modelPath, extname(a.modelPath));
  // Default output: out/<model>.<preset>.onnx, or .lowbit when a format has no ONNX type.
  const defaultOut = (ext: string): string =>
    join("out", `${stem}.${a.planPath ? "plan" : a.preset}${ext}`);
  const reportFor = (out: string): string =>
    a.report ?? planPathFor(out).replace(/\.plan\.json$/, ".report.html");
  const outsFor = (out: string): string[] => [out, planPathFor(out), reportFor(out)];
  if (a.out) {
    await checkOutputPath(a.out);
    checkOutputsAgainstInputs(a, outsFor(a.out));
  } else {
    for (const ext of [".onnx", ".lowbit"]) checkOutputsAgainstInputs(a, outsFor(defaultOut(ext)));
  }
  const progress = createProgress(!a.json && Deno.stdout.isTerminal());

  // Inputs: model, rules / plan, data (all read and checked before any work).
  const modelInBytes = (await Deno.stat(a.modelPath).catch(() => ({ size: 0 }))).size;
  const { model, sha256 } = await readModel(a.modelPath);
  const rules: Rule[] = a.configPath
    ? parseRules(await readJson(a.configPath, "rules file"), a.configPath)
    : [];
  const plan = a.planPath ? parsePlan(await readJson(a.planPath, "plan"), a.planPath) : undefined;
  // A replayed plan loads the plugins that made it.
  for (const p of plan?.plugins ?? []) await loadPlugins([p.source ?? p.name]);
  // Inputs a plugin's calibration source makes itself need not be in --calib.
  const provided = providedInputs(model, plan?.pluginOptions ?? a.pluginOptions);
  const calib: Dataset | undefined = a.calibSpecs.length
    ? await loadDataset(
      a.calibSpecs,
      model.graph.inputs.filter((v) => !provided.includes(v.name)),
      a.image,
      "calibration data",
      a.wholeInputs,
    )
    : undefined;
  const evalData: Dataset | undefined = a.evalSpecs.length
    ? await loadDataset(a.evalSpecs, model.graph.inputs, a.image, "evaluation data", a.wholeInputs)
    : undefined;
  let labels: TensorData | undefined;
  if (a.labelsPath) {
    const path = a.labelsPath;
    labels = readNpy(
      await Deno.readFile(path).catch(() => {
        throw new LowbitError("IO_ERROR", "cannot read the labels", { file: path });
      }),
      path,
    );
  }

  let searchResult: MixedPrecisionResult | undefined;
  const options: QuantizeOptions = {
    model,
    name: basename(a.modelPath),
    sha256,
    calib,
    preset: a.preset,
    rules,
    plan,
    rounding: a.rounding,
    calibrator: a.calibrator,
    gptq: a.gptq,
    smoothquant: a.smoothquant,
    equalize: a.equalize,
    equalizeWhere: a.equalizeWhere,
    splitTaps: a.splitTaps,
    biasCorrection: a.biasCorrection,
    propagate: a.propagate,
    batchSize: a.batchSize,
    progress,
    mixedSearch: a.preset === "mixed" && !plan
      ? await loadMixedSearch(model, calib, (r) => (searchResult = r))
      : undefined,
    mixedOptions: a.mixedOptions,
    registry: defaultRegistry(),
    pluginOptions: plan?.pluginOptions ?? a.pluginOptions,
    ...(a.out ? { target: a.out.toLowerCase().endsWith(".onnx") ? "onnx" : "lowbit" } : {}),
  };
  let result: QuantizeResult = await quantize(options);
  if (searchResult) {
    for (const w of unmetBudgets(searchResult, a.budgets)) result.warnings.push(w);
    result.quantized.plan.search = {
      metric: searchResult.metric,
      strategy: searchResult.strategy,
      allocation: searchResult.allocation,
      ...(searchResult.points
        ? {
          points: Object.fromEntries(
            searchResult.points.perPoint.map((p) => [p.value, p.format]),
          ),
        }
        : {}),
    };
  }

  // The accuracy guard, on the evaluation data (or the calibration data without it, when that
  // has every input).
  let guard: GuardReport | null = null;
  const guardData = evalData ?? (provided.some((n) => !calib?.inputs[n]) ? undefined : calib);
  if (!guardData && calib) {
    result.warnings.push(
      `accuracy guard skipped: the calibration data has no '${
        provided.filter((n) => !calib.inputs[n]).join("', '")
      }' (a plugin's calibration source makes it); give --eval data with every input to check`,
    );
  }
  if (guardData && result.quantized.layers.length) {
    const g = await guardQuantize(options, result, {
      data: guardData,
      minSqnrDb: a.minSqnrDb,
      maxDelta: a.maxDelta === "auto"
        ? await autoMaxDelta(result, guardData, result.warnings)
        : a.maxDelta,
      // A replayed plan or a searched allocation is checked, not changed.
      fix: !plan && a.preset !== "mixed",
      onStep: (m) => {
        if (!a.json) console.error(`lowbit quantize: accuracy guard: ${m}`);
      },
    });
    result = g.result;
    guard = g.report;
  }
  for (const w of result.warnings) warn(w);
  // Where each plugin came from, so a replay finds it.
  for (const p of result.quantized.plan.plugins ?? []) {
    const src = pluginSource(p.name);
    if (src) p.source = src;
  }

  const out = a.out ?? defaultOut(onnxCanHold(result) ? ".onnx" : ".lowbit");
  if (!a.out) await Deno.mkdir(dirname(out), { recursive: true });
  const planPath = planPathFor(out);
  const modelBytes = encodeQuantized(result.quantized, out);
  const planBytes = new TextEncoder().encode(planToJson(result.quantized.plan));
  // The model is staged beside its destination and evaluated as our runtime loads that file;
  // nothing at the destinations changes until every file of the run is ready.
  // Ctrl-C before this point needs no handler: nothing is staged, and Deno's default ends the run
  // at once (a listener would only run when the event loop turns, which the compute-bound
  // quantization rarely lets it do, so Ctrl-C would be swallowed). From here until the renames,
  // the handler removes the staged files and says that nothing was written.
  const listening = listenForInterrupt(true);
  const staged = stageFiles([[out, modelBytes]]);
  let reportPath: string | null = null;
  let reportBytes: Uint8Array | null = null;
  let evaluation: EvalResult | null = null;
  try {
    const sizes = modelSizes(result.prepared, result.quantized);
    if (evalData) {
      const bar = progress.start("evaluate", Math.ceil(evalData.count / (a.batchSize ?? 64)));
      const artifact = await loadModelFile(staged.files[0].temp);
      // One macrotask turn per batch, so that Ctrl-C is handled during evaluation (the
      // executor's awaits are microtasks only, which never let a signal listener run).
      const runner = {
        run: async (x: Record<string, TensorData>) => {
          await new Promise((r) => setTimeout(r, 0));
          return await artifact.runner.run(x);
        },
      };
      evaluation = await evaluate(floatRunner(model), runner, evalData, {
        labels,
        batchSize: a.batchSize,
        progress: bar,
        maskThreshold: a.maskThreshold,
      });
      bar.stop();
      if (!a.noReport) {
        const perLayer = await layerSqnr(result.prepared, result.quantized, evalData);
        // Sections plugins add (routing agreement, ...), on the written model.
        const sections = await pluginReportSections({
          float: result.prepared,
          quantized: artifact.model,
          plan: result.quantized.plan,
          data: evalData,
          options: plan?.pluginOptions ?? a.pluginOptions,
        });
        for (const w of sections.warnings) warn(w);
        reportPath = reportFor(out);
        reportBytes = new TextEncoder().encode(renderReport(
          {
            ...buildReport({
              float: result.prepared,
              model: { name: basename(a.modelPath), sha256 },
              result,
              evaluation,
              layerSqnr: perLayer,
              output: out,
              sizes,
              fileBytes: { floatModel: modelInBytes, quantModel: modelBytes.length },
              ...(searchResult
                ? {
                  search: {
                    metric: searchResult.metric,
                    strategy: searchResult.strategy,
                    points: searchResult.frontier.points,
                    choices: searchResult.frontier.choices,
                    budgets: a.budgets.map((b) => ({
                      kind: b.kind,
                      value: b.kind === "bits"
                        ? b.bits
                        : b.kind === "size"
                        ? b.bytes
                        : b.kind === "latency"
                        ? b.ms
                        : b.bops,
                    })),
                  },
                }
                : {}),
            }),
            sections: sections.parts,
          },
          await loadChartJs(),
        ));
      }
    }
    const rest = stageFiles([
      [planPath, planBytes],
      ...(reportPath && reportBytes ? [[reportPath, reportBytes] as const] : []),
    ]);
    commitStaged({ files: [...staged.files, ...rest.files] });
    phase = "written";
    const stale = reportFor(out);
    if (!reportPath && existsSync(stale)) {
      const why = a.noReport ? "--no-report" : "no --eval data, so no report";
      const w = `'${stale}' is from an earlier run and no longer describes '${out}' ` +
        `(this run: ${why}); it was left as it was`;
      warn(w);
      result.warnings.push(w);
    }
    const summary: Summary = {
      model: relative(Deno.cwd(), a.modelPath) || a.modelPath,
      preset: result.quantized.plan.preset,
      output: out,
      plan: planPath,
      report: reportPath,
      layers: layerRows(result),
      size_bytes_float: sizes.floatBytes,
      size_bytes_quant: sizes.quantBytes,
      file_bytes: {
        model_in: modelInBytes,
        model: modelBytes.length,
        plan: planBytes.length,
        report: reportBytes?.length ?? null,
      },
      evaluation,
      guard,
      warnings: result.warnings,
    };
    if (a.json) console.log(JSON.stringify(summary));
    else printSummary(summary);
    return 0;
  } finally {
    discardStaged(staged);
    if (listening) listenForInterrupt(false);
  }
}

function layerRows(result: QuantizeResult): Summary["layers"] {
  return result.quantized.layers.map((l) => {
    // A recurrent node (LSTM / GRU / RNN) has two rows: its input weight W and recurrence R.
    const w = result.quantized.plan.entries.find((e) =>
      e.node === l.node && e.role === "weight" && e.value === l.weight
    );
    const a = result.quantized.plan.entries.find((e) =>
      e.node === l.node && e.role === "activation"
    );
    return {
      node: l.node,
      op: l.part ? `${l.op} ${l.part === "input" ? "W" : "R"}` : l.op,
      weight: !w || w.skip ? "float" : `${w.format} ${w.rounding ?? ""}`.trim(),
      // R multiplies the hidden state, which stays float.
      activation: !a || a.skip || l.part === "recurrence"
        ? "float"
        : `${a.format}${a.dynamic ? " dynamic" : ""}`,
    };
  });
}

function printSummary(s: Summary): void {
  const w = Math.max(5, ...s.layers.map((l) => l.node.length));
  const f = s.file_bytes;
  const lines = [
    `lowbit quantize: ${s.model} → ${s.output} (preset ${s.preset ?? "from plan"})`,
    "",
    `  ${"layer".padEnd(w)}  ${"op".padEnd(13)}  ${"weights".padEnd(14)}  activations`,
    ...s.layers.map((l) =>
      `  ${l.node.padEnd(w)}  ${l.op.padEnd(13)}  ${l.weight.padEnd(14)}  ${l.activation}`
    ),
    "",
    `  weights   ${formatBytes(s.size_bytes_float)} → ${formatBytes(s.size_bytes_quant)} (${
      (s.size_bytes_float / Math.max(1, s.size_bytes_quant)).toFixed(2)
    }× smaller; formats' bits with scales and zero points)`,
    `  files     ${f.model_in} B → ${f.model} B on disk (${
      (f.model_in / Math.max(1, f.model)).toFixed(2)
    }×); plan ${f.plan} B${f.report === null ? "" : `, report ${f.report} B`}`,
  ];
  const e = s.evaluation;
  if (e) {
    lines.push(
      `  top-1     float ${formatPercent(e.top1_float)}, quantized ${
        formatPercent(e.top1_quant)
      } ` +
        `(agreement ${formatPercent(e.top1_agreement)}, ${e.samples} samples)`,
      `  output    SQNR ${e.sqnr_db.toFixed(2)} dB, cosine ${e.cosine.toFixed(5)}${
        e.mask_iou === undefined ? "" : `, mask IoU ${e.mask_iou.toFixed(4)}`
      }`,
      `  latency   float ${e.latency_ms_float.toFixed(2)} ms, quantized ${
        e.latency_ms_quant.toFixed(2)
      } ms per batch of ${e.batch_size} (our runtime, Q/DQ as written; not the faster integer plan)`,
    );
  } else {
    lines.push("  (no --eval data: accuracy not measured)");
  }
  if (s.guard) lines.push(`  guard     ${describeGuard(s.guard)}`);
  lines.push(`  plan      ${s.plan}`);
  if (s.report) lines.push(`  report    ${s.report}`);
  console.log(lines.join("\n"));
}

/** Removes temporary outputs and exits on Ctrl-C, saying truthfully what was written. */
function onInterrupt(): void {
  for (const tmp of pendingWrites()) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
  }
  console.error(
    phase === "written"
      ? "\nlowbit quantize: interrupted after the outputs were written (they are complete)"
      : "\nlowbit quantize: interrupted; nothing was written, earlier files are as they were",
  );
  Deno.exit(130);
}

/** Adds or removes the Ctrl-C handler; false when signals are unsupported here. */
function listenForInterrupt(on: boolean): boolean {
  try {
    if (on) Deno.addSignalListener("SIGINT", onInterrupt);
    else Deno.removeSignalListener("SIGINT", onInterrupt);
    return true;
  } catch {
    return false;
  }
}

/** The `quantize` subcommand. */
export const quantizeCommand: Command = {
  summary: "calibrate, quantize (RTN / GPTQ), guard, export, evaluate and report",
  main: quantizeMain,
};

/**
 * The model inputs the registered calibration sources that apply make themselves.
 *
 * @param model the model to quantize
 * @param options plugin option values
 * @returns their names
 */
function providedInputs(model: Model, options: PluginOptionValues): string[] {
  const reg = defaultRegistry();
  const graph = model.graph as unknown as GraphView;
  return reg.sources.list().map((n) => reg.sources.get(n)).filter((s) =>
    s.applies?.(graph, options) ?? true
  ).flatMap((s) => [...(s.provides?.(graph, options) ?? [])]);
}
