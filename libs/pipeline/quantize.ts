/**
 * The flow of one `lowbit quantize`, as a short list of registered stages over one state:
 *
 * ```
 * prepare      widen float16 models, fold Constant nodes and BatchNormalization, find the layers
 * plan         preset + rules (or the mixed-precision search, or a given plan) ─▶ plan entries
 * mark         registered markers add quantization points on any value (Softmax outputs, ...)
 * check        every point's quantizer exists, supports its format, and (for .onnx) has a QDQ form
 * equalize     [cross-layer range equalisation: |x| maxima pass, fold factors]
 * smoothquant  [SmoothQuant: |x| maxima pass, fold factors]
 * calibrate    ranges, GPTQ Hessians (per-row weighted by hooks), input means, histogram samples;
 *              data from the dataset or a registered calibration source, hooks see every batch
 * activations  fit every static activation point with its quantizer
 * input-means  [bias correction: a pass for the mean of each layer's fake-quantized input rows]
 * weights      fit, round (RTN | GPTQ), [bias correction of the weights' and inputs' rounding]
 * propagate    [refit each layer, in graph order, from the quantized model's own input]
 * finalize     the fitted plan
 * ```
 *
 * A plugin adds a stage with `registry.stages.register({ name, after: "calibrate", run })`.
 * The result's model is the float graph whose quantized weights already lie on their grids; the
 * plan holds every quantization point with its fitted parameters (`planPoints` turns it into the
 * core `QuantPoint`s that simulation, export and the lowbit file read).
 *
 * @module
 */

import {
  defaultQuantizerFor,
  defaultRegistry,
  getFormat,
  type GraphView,
  LowbitError,
  type PluginOptionValues,
  type QuantPoint,
  type Registry,
  type Stage,
} from "@lowbit/core";
import {
  checkQuantPoints,
  findInitializer,
  hasHalfTensors,
  type Model,
  unreadOutputs,
  widenHalf,
} from "@lowbit/graph";
import {
  activationKey,
  calibrate,
  type CalibrationStats,
  type CalibrationStream,
} from "./calibrate.ts";
import type { Dataset } from "./dataset.ts";
import { gptq } from "./gptq.ts";
import { propagateFit } from "./propagate.ts";
import { fromOutIn, type Layer, type Rejected, scanLayers, toOutIn } from "./layers.ts";
import { layerInputRows } from "./layer_inputs.ts";
import {
  PLAN_VERSION,
  type PlanEntry,
  type PlanOptions,
  type QuantPlan,
  validatePlan,
} from "./plan.ts";
import { getPreset, type MixedSearch } from "./presets.ts";
import { type Progress, silentProgress } from "./progress_api.ts";
import { applyRules, type Rule, ruleOverrides, unmatchedRuleWarning } from "./rules.ts";
import { smoothQuant } from "./smoothquant.ts";
import { fittedInputEntry, minMax } from "./search/_act_quant.ts";
import { equalize } from "./equalize.ts";
import { prepareFolds } from "./prepare_folds.ts";
import { addBias, biasShift } from "./bias_correction.ts";
import { splitDominantTaps } from "./tap_split.ts";
import type { LayerConfig, Rounding, TensorSpec } from "./spec.ts";
import {
  activationBlockGranularity,
  columnRounder,
  entryQParams,
  entryQuantizer,
  fakeQuantActivation,
  fakeQuantWeight,
  fitActivation,
  fitWeight,
  isBlockFormatName,
  resolveWeightGranularity,
} from "./tensor_quant.ts";
import { sliceBatch } from "./dataset.ts";
import { createExecutor } from "@lowbit/graph";
import { agreement, argmaxRows } from "./metrics.ts";

/** A quantized model: the float graph with on-grid weights, and its fitted plan. */
export interface QuantizedModel {
  /** The graph: quantized weights replaced by their dequantized (on-grid) values. */
  model: Model;
  /** The fitted plan (every non-skipped entry has its scales). */
  plan: QuantPlan;
  /** The quantizable layers. */
  layers: Layer[];
  /** The registry its quantizers are registered in (default: the default registry). */
  registry?: Registry;
}

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** The float model. */
  model: Model;
  /** Display name of the model (file name). */
  name?: string;
  /** SHA-256 of the model file. */
  sha256?: string;
  /** Calibration data (needed unless a fully fitted RTN plan is replayed). */
  calib?: Dataset;
  /** Preset name (default "w8a8"); ignored when `plan` is given. */
  preset?: string;
  /** Ordered wildcard rules on top of the preset. */
  rules?: readonly Rule[];
  /** A plan to replay instead of preset + rules. */
  plan?: QuantPlan;
  /** Override every quantized weight's rounding. */
  rounding?: Rounding;
  /** Override every static activation's calibrator. */
  calibrator?: string;
  /** GPTQ settings. */
  gptq?: Partial<PlanOptions["gptq"]>;
  /** SmoothQuant α, or null/undefined for off. */
  smoothquant?: number | null;
  /**
   * Bias correction (default off): true corrects each layer's output mean for its weights'
   * rounding and for the mean shift of its quantized input; "weights" for the weights' only.
   */
  biasCorrection?: boolean | "weights";
  /**
   * Cross-layer range equalisation of Conv inputs before calibration (see `equalize`): its α for
   * inputs of ungrouped Convs (0.5 balances activation and weight ranges, 1 moves them wholly
   * into the weights; depthwise inputs are always fully equalised), or null/undefined for off.
   * A replayed plan applies its own `equalization` factors instead.
   */
  equalize?: number | null;
  /**
   * Which Conv inputs `equalize` rescales: "all" (default), or "spectra": only complex
   * magnitudes (an STFT's bins, `Sqrt(re² + im²)`), whose ranges span decades across bins.
   */
  equalizeWhere?: "all" | "spectra";
  /**
   * Error-propagating weight fitting after rounding (default off; see `propagateFit`): each
   * layer, in graph order, refits its weight and bias to map the quantized model's own input
   * onto the float layer's output. One calibration pass per layer. Recorded in the plan: a
   * replayed plan refits as it says (from the calibration data given).
   */
  propagate?: boolean;
  /** Samples per calibration batch (32). */
  batchSize?: number;
  /** Progress reporting. */
  progress?: Progress;
  /** The mixed-precision search, for the "mixed" preset. */
  mixedSearch?: MixedSearch;
  /** Options passed through to the search (budget, metric, ...). */
  mixedOptions?: Record<string, string>;
  /** Fold BatchNormalization into the preceding Conv / Gemm first (default true). */
  foldBatchNorm?: boolean;
  /**
   * Split convs dominated by one kernel tap (reparameterised convs) into two, summed (see
   * `splitDominantTaps`): the threshold in bits (`TAP_SPLIT_MIN_BITS` = 2 is a sensible one), or
   * null / undefined for off.
   */
  splitTaps?: number | null;
  /**
   * The registry: quantizers, calibrators, markers, calibration sources and hooks, stages
   * (default: the default registry, with whatever plugins were loaded into it).
   */
  registry?: Registry;
  /** Plugin option values (`--vit-softmax adalog`, ...), handed to markers, sources and hooks. */
  pluginOptions?: PluginOptionValues;
  /** Where the result goes: `"onnx"` checks, before any work, that QDQ ONNX can hold it. */
  target?: "onnx" | "lowbit";
}

/**
 * What the stages of {@link quantize} share. A plugin's stage reads and changes it.
 */
export interface QuantizeState {
  /** The options `quantize` was called with. */
  readonly opts: QuantizeOptions;
  /** The registry. */
  readonly registry: Registry;
  /**
   * Plugin option values: a copy of the options', which a plugin's stage may resolve in place
   * (an `auto` to the value chosen); the plan records them as they are at the end.
   */
  readonly pluginOptions: PluginOptionValues;
  /** Progress reporting. */
  readonly progress: Progress;
  /** Warnings for the user. */
  readonly warnings: string[];
  /** The working model: prepared, then transformed (equalisation, SmoothQuant), then on-grid. */
  model: Model;
  /** The prepared float model (the reference for per-layer figures). */
  prepared: Model;
  /** Quantizable layers. */
  layers: Layer[];
  /** Layer candidates that are not quantizable, and why. */
  rejected: Rejected[];
  /** The plan entries (quantization points), fitted as the stages go. */
  entries: PlanEntry[];
  /** Preset the plan came from. */
  preset: string | null;
  /** GPTQ settings. */
  gptq: PlanOptions["gptq"];
  /** SmoothQuant α, or null. */
  smoothAlpha: number | null;
  /** Bias correction: on (weights and inputs), weights only, or off. */
  biasCorrection: boolean | "weights";
  /** SmoothQuant factors (given by a plan, or computed). */
  smoothing?: Record<string, number[]>;
  /** Equalisation factors (given by a plan, or computed). */
  equalization?: Record<string, number[]>;
  /** Calibration statistics, once collected. */
  stats: CalibrationStats | null;
  /**
   * Bias correction: the mean input row of each layer whose input is statically quantized, taken
   * over the fake-quantized input (by layer node).
   */
  quantizedMeans?: Map<string, Float64Array>;
  /** The mixed search's record for the plan, if it ran. */
  search?: QuantPlan["search"];
  /** Rules that matched no layer: warned about once the markers' points had their turn. */
  unmatchedRules?: number[];
  /** Formats the mixed search allocated to activation points (`--budget-act`; null: float). */
  searchedPoints?: Record<string, TensorSpec | null>;
  /** `propagate`: the working model as the weights stage found it (float weights). */
  beforeRounding?: Model;
}

/** What {@link quantize} returns. */
export interface QuantizeResult {
  /** The quantized model. */
  quantized: QuantizedModel;
  /** Calibration statistics (histogram samples for the report, ...). */
  stats: CalibrationStats | null;
  /** Warnings (rules matching nothing, layers left in float and why, ...). */
  warnings: string[];
  /** The float model after preparation (BatchNorm folded), the reference for per-layer figures. */
  prepared: Model;
}

const STATIC_ACT_GRANULARITY = "tensor";

function checkFormat(name: string, where: { node: string }): void {
  try {
    getFormat(name);
  } catch (e) {
    if (e instanceof LowbitError) throw new LowbitError(e.code, e.message, where);
    throw e;
  }
}

/**
 * Plan entries (unfitted) for layers under resolved configs.
 *
 * @param layers the quantizable layers
 * @param configs config per layer node
 * @param reasons why a layer is skipped, by node (for the plan's notes)
 * @returns two entries per layer: weight and activation
 *
 * @example
 * ```ts
 * import { buildEntries, getPreset } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [4, 8], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 4, in: 8 };
 * const entries = buildEntries([fc], { fc: getPreset("w8a8").base });
 * if (entries.length !== 2 || entries[0].granularity?.kind !== "channel") throw new Error();
 * ```
 */
export function buildEntries(
  layers: readonly Layer[],
  configs: Readonly<Record<string, LayerConfig>>,
  reasons: Readonly<Record<string, string>> = {},
): PlanEntry[] {
  const entries: PlanEntry[] = [];
  for (const l of layers) {
    const c = configs[l.node];
    const where = { node: l.node };
    const skipped = (role: "weight" | "activation", why: string): PlanEntry => ({
      node: l.node,
      value: role === "weight" ? l.weight : l.input,
      role,
      skip: true,
      reason: why,
    });
    // A recurrent node's R weight: its node's activation point is the W layer's.
    const second = l.part === "recurrence";
    if (!c || c.skip) {
      const why = reasons[l.node] ?? "skipped by a rule";
      entries.push(skipped("weight", why), ...(second ? [] : [skipped("activation", why)]));
      continue;
    }
    const w: TensorSpec | null = c.weight;
    if (!w) entries.push(skipped("weight", "weights left in float"));
    else {
      checkFormat(w.format, where);
      const block = isBlockFormatName(w.format);
      let rounding: Rounding = w.rounding ?? "rtn";
      if (rounding === "gptq" && (l.op === "ConvTranspose" || l.part)) rounding = "rtn";
      if (w.mode === "affine" && getFormat(w.format).family !== "int") {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `affine mode needs an integer format, '${w.format}' is not (use "symmetric")`,
          where,
        );
      }
      entries.push({
        node: l.node,
        value: l.weight,
        role: "weight",
        ...(w.quantizer ? { quantizer: w.quantizer } : {}),
        format: w.format,
        granularity: resolveWeightGranularity(l, w.granularity, w.format),
        mode: block ? "symmetric" : w.mode,
        rounding,
      });
    }
    if (second) continue;
    const a: TensorSpec | null = c.activation;
    if (!a) entries.push(skipped("activation", "activations left in float"));
    else {
      checkFormat(a.format, where);
      const block = isBlockFormatName(a.format);
      if (!block && a.granularity !== STATIC_ACT_GRANULARITY) {
        throw new LowbitError(
          "UNSUPPORTED",
          `activations are quantized per tensor (static) or with a block format (dynamic); ` +
            `granularity ${JSON.stringify(a.granularity)} is not supported`,
          where,
        );
      }
      if (a.mode === "affine" && getFormat(a.format).family !== "int") {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `affine mode needs an integer format, '${a.format}' is not (use "symmetric")`,
          where,
        );
      }
      const conv = l.op === "Conv" || l.op === "ConvTranspose";
      const act: PlanEntry = {
        node: l.node,
        value: l.input,
        role: "activation",
        ...(a.quantizer ? { quantizer: a.quantizer } : {}),
        format: a.format,
        granularity: block
          ? activationBlockGranularity(a.format, conv ? 1 : -1)
          : { kind: "tensor" },
        mode: block ? "symmetric" : a.mode,
        calibrator: block ? "dynamic" : a.calibrator ?? "minmax",
        ...(block ? { dynamic: true } : {}),
      };
      // One point per value: layers reading the same tensor share its quantization.
      const prev = entries.find((e) => e.role === "activation" && !e.skip && e.value === l.input);
      if (prev) {
        const same = prev.format === act.format && prev.mode === act.mode &&
          prev.quantizer === act.quantizer &&
          prev.calibrator === act.calibrator && prev.dynamic === act.dynamic;
        if (!same) {
          throw new LowbitError(
            "INVALID_ARGUMENT",
            `layers '${prev.node}' and '${l.node}' both read '${l.input}' but quantize it ` +
              `differently; give them the same activation format and calibrator`,
            { tensor: l.input },
          );
        }
        entries.push(
          skipped("activation", `shares the quantization of '${l.input}' with ${prev.node}`),
        );
        continue;
      }
      entries.push(act);
    }
  }
  return entries;
}

/**
 * A deep copy of a model (initializers included).
 *
 * @param m the model
 * @returns the copy
 *
 * @example
 * ```ts
 * import { cloneModel } from "@lowbit/pipeline";
 * const m = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(), nodes: [], initializers: new Map() } };
 * if (cloneModel(m).graph === m.graph) throw new Error();
 * ```
 */
export function cloneModel(m: Model): Model {
  return structuredClone(m);
}

function needCalib(opts: QuantizeOptions, why: string): Dataset {
  if (!opts.calib) {
    throw new LowbitError("INVALID_ARGUMENT", `calibration data is needed ${why}; pass --calib`);
  }
  return opts.calib;
}

/**
 * Quantizes a model: see the module documentation for the flow.
 *
 * @param opts model, data, preset / rules / plan, rounding and options
 * @returns the quantized model, calibration statistics and warnings
 *
 * @example
 * ```ts
 * import { quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: x.shape[0] }, preset: "w8a8" });
 * if (!quantized.plan.entries.every((e) => e.skip || e.dynamic || e.scale)) throw new Error();
 * ```
 */
export async function quantize(opts: QuantizeOptions): Promise<QuantizeResult> {
  const registry = opts.registry ?? defaultRegistry();
  const state: QuantizeState = {
    opts,
    registry,
    // the state's own copy: a stage may resolve an option (an `auto`) and the plan records it
    pluginOptions: { ...opts.pluginOptions },
    progress: opts.progress ?? silentProgress(),
    warnings: [],
    model: opts.model,
    prepared: opts.model,
    layers: [],
    rejected: [],
    entries: [],
    preset: null,
    gptq: {
      blockSize: opts.gptq?.blockSize ?? opts.plan?.options.gptq.blockSize ?? 128,
      damp: opts.gptq?.damp ?? opts.plan?.options.gptq.damp ?? 0.01,
      actOrder: opts.gptq?.actOrder ?? opts.plan?.options.gptq.actOrder ?? false,
    },
    smoothAlpha: null,
    biasCorrection: false,
    stats: null,
  };
  for (const stage of quantizeStages(registry)) await stage.run(state);
  const plan = finalPlan(state);
  return {
    quantized: { model: state.model, plan, layers: state.layers, registry },
    stats: state.stats,
    warnings: state.warnings,
    prepared: state.prepared,
  };
}

// *** stages ***

/**
 * The stages {@link quantize} runs, in order: the built-in ones with the registry's stages
 * inserted after (or before) the stage they name.
 *
 * @param registry the registry (its `stages` table)
 * @returns the ordered stages
 *
 * @example
 * ```ts
 * import { quantizeStages } from "@lowbit/pipeline";
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * const r = createRegistry();
 * registerBuiltins(r);
 * r.stages.register({ name: "count", after: "calibrate", run: () => {} });
 * const names = quantizeStages(r).map((s) => s.name);
 * if (names[names.indexOf("calibrate") + 1] !== "count") throw new Error(names.join());
 * ```
 */
export function quantizeStages(registry: Registry): Stage[] {
  const stages: Stage[] = [...BUILTIN_STAGES];
  for (const name of registry.stages.list()) {
    const st = registry.stages.get(name);
    const anchor = st.after ?? st.before;
    const at = anchor === undefined ? -1 : stages.findIndex((s) => s.name === anchor);
    if (anchor !== undefined && at < 0) {
      throw new LowbitError(
        "UNKNOWN_NAME",
        `stage '${st.name}' runs ${st.after ? "after" : "before"} '${anchor}', which is not a ` +
          `stage; stages: ${stages.map((s) => s.name).join(", ")}`,
      );
    }
    if (at < 0) stages.push(st);
    else stages.splice(st.after ? at + 1 : at, 0, st);
  }
  return stages;
}

const BUILTIN_STAGES: readonly Stage[] = [
  { name: "prepare", run: prepareStage },
  { name: "plan", run: planStage },
  { name: "mark", run: markStage },
  { name: "check", run: checkStage },
  { name: "equalize", run: equalizeStage },
  { name: "smoothquant", run: smoothQuantStage },
  { name: "calibrate", run: calibrateStage },
  { name: "activations", run: activationsStage },
  { name: "input-means", run: inputMeansStage },
  { name: "weights", run: weightsStage },
  { name: "propagate", run: propagateStage },
];

/** The tap-split threshold: a replayed plan's, else the option's (undefined / null: off). */
function minSplit(st: QuantizeState): number | null | undefined {
  return st.opts.plan ? st.opts.plan.options.splitTaps : st.opts.splitTaps;
}

/** Folds Constant nodes and BatchNormalization, folds and splits weights, finds the layers. */
function prepareStage(st: QuantizeState): void {
  let model = cloneModel(st.opts.model);
  // float16 / bfloat16 models: float32 inside (their weights are float weights to quantize),
  // the half inputs and outputs kept through Casts at the edges.
  if (hasHalfTensors(model)) {
    model = widenHalf(model);
    st.warnings.push(
      "float16 / bfloat16 model: quantized and computed in float32 inside; its inputs and " +
        "outputs keep their half type",
    );
  }
  // Constant nodes, weights computed inside If / Loop bodies, BatchNormalization (as inspect).
  model.graph = prepareFolds(model.graph, { batchNorm: st.opts.foldBatchNorm ?? true });
  // A replayed plan splits as it was made (its entries name the new convs).
  const minBits = minSplit(st);
  if (minBits !== null && minBits !== undefined) {
    const r = splitDominantTaps(model.graph, { minBits });
    model.graph = r.graph;
    if (r.split.length) {
      st.warnings.push(
        `split ${r.split.length} conv(s) dominated by one kernel tap into the tap and the rest, ` +
          `each quantized on its own: ${
            r.split.map((s) => `${s.node} (${s.bits.toFixed(1)} bits)`).join(", ")
          }`,
      );
    }
  }
  st.model = model;
  st.prepared = cloneModel(model);
  // Layers inside If / Loop / Scan bodies too: quantized where they are, calibrated when their
  // branch runs (RTN, GPTQ and bias correction; no equalisation, SmoothQuant or mixed search).
  const { layers, rejected } = scanLayers(model.graph, { subgraphs: true });
  st.layers = layers;
  st.rejected = rejected;
  if (layers.length === 0 && st.registry.markers.list().length === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `the model has no quantizable layer (Conv, ConvTranspose, Gemm or MatMul with a float32 ` +
        `constant weight)${
          rejected.length
            ? `; candidates: ${rejected.map((r) => `${r.node} (${r.reason})`).join("; ")}`
            : ""
        }`,
    );
  }
}

/** Plan entries from a given plan, or from the preset, the rules and the mixed search. */
async function planStage(st: QuantizeState): Promise<void> {
  const { opts, layers } = st;
  if (opts.plan) {
    const reg = st.registry;
    st.warnings.push(
      ...validatePlan(opts.plan, st.model, opts.sha256 ?? "", (f) => {
        try {
          reg.formats.get(f);
          return true;
        } catch {
          return false;
        }
      }).warnings,
    );
    st.entries = structuredClone(opts.plan.entries);
    // Version-1 plans wrote block-format activations per tensor: their blocks run along the
    // channel axis of the layer that reads them (as `buildEntries` writes them now).
    const byNode = new Map(layers.map((l) => [l.node, l]));
    for (const e of st.entries) {
      if (e.role !== "activation" || e.skip || !isBlockFormatName(e.format!)) continue;
      if (e.granularity?.kind === "block") continue;
      const op = byNode.get(e.node)?.op;
      e.granularity = activationBlockGranularity(
        e.format!,
        op === "Conv" || op === "ConvTranspose" ? 1 : -1,
      );
    }
    // Layers the plan does not mention stay in float.
    for (const l of layers) {
      for (const role of ["weight", "activation"] as const) {
        if (role === "activation" && l.part === "recurrence") continue;
        const mentioned = st.entries.some((e) =>
          e.node === l.node && e.role === role && (role === "activation" || e.value === l.weight)
        );
        if (!mentioned) {
          st.entries.push({
            node: l.node,
            value: role === "weight" ? l.weight : l.input,
            role,
            skip: true,
            reason: "not in the plan",
          });
        }
      }
    }
    st.preset = opts.plan.preset;
    st.smoothAlpha = opts.plan.options.smoothquant;
    st.biasCorrection = opts.plan.options.biasCorrection;
    st.smoothing = opts.plan.smoothing;
    st.equalization = opts.plan.equalization;
    st.search = opts.plan.search;
    return;
  }
  st.preset = opts.preset ?? "w8a8";
  const p = getPreset(st.preset);
  const nodes = [...new Set(layers.map((l) => l.node))];
  const { configs, unmatched } = applyRules(nodes, p.base, opts.rules ?? []);
  st.unmatchedRules = unmatched;
  for (const c of Object.values(configs)) {
    if (opts.rounding && c.weight) c.weight.rounding = opts.rounding;
    if (opts.calibrator && c.activation) c.activation.calibrator = opts.calibrator;
  }
  if (st.preset === "mixed") await runMixedSearch(st, configs);
  st.entries = buildEntries(layers, configs);
  st.smoothAlpha = opts.smoothquant ?? null;
  st.biasCorrection = opts.biasCorrection ?? false;
}

/**
 * The registered markers add quantization points on any value of the graph. The rules
 * (`--config`) apply to them too, matched on the producing node's name or the value's:
 * they can leave a point in float or change its format, mode, calibrator or quantizer.
 */
function markStage(st: QuantizeState): void {
  const unmatched = new Set(st.unmatchedRules ?? []);
  if (!st.opts.plan) markPoints(st, unmatched);
  const rules = st.opts.rules ?? [];
  for (const i of unmatched) st.warnings.push(unmatchedRuleWarning(rules[i], i));
}

function markPoints(st: QuantizeState, unmatched: Set<number>): void {
  const markers = st.registry.markers.list().map((n) => st.registry.markers.get(n));
  if (markers.length === 0) return;
  const act = getPreset(st.preset ?? "w8a8").base.activation;
  const rules = st.opts.rules ?? [];
  const producer = new Map<string, string>();
  for (const n of st.model.graph.nodes) for (const o of n.outputs) producer.set(o, n.name);
  const unread = unreadOutputs(st.model.graph);
  const graph = st.model.graph as unknown as GraphView;
  for (const m of markers) {
    const specs = m.mark(graph, st.pluginOptions);
    if (specs.length === 0) {
      st.warnings.push(`marker '${m.name}' found nothing to quantize in this model`);
    }
    for (const spec of specs) {
      const subject = { tensor: spec.value };
      if (!producer.has(spec.value) && !st.model.graph.inputs.some((v) => v.name === spec.value)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `marker '${m.name}' marked a value the graph does not have`,
          subject,
        );
      }
      const node = producer.get(spec.value) ?? "";
      if (unread.has(spec.value)) {
        // Quantizing it would change nothing but the model's output (a headless ViT's final
        // LayerNorm, a GCN whose last aggregation is its logits): the output stays float.
        st.entries.push({
          node,
          value: spec.value,
          role: "activation",
          skip: true,
          reason: `marked by '${m.name}', a graph output no node reads: kept in float`,
        });
        continue;
      }
      const ruled = ruleOverrides([node, spec.value], rules);
      for (const i of ruled.matched) unmatched.delete(i);
      if (ruled.float) {
        st.entries.push({
          node,
          value: spec.value,
          role: "activation",
          skip: true,
          reason: `marked by '${m.name}', left in float by a rule`,
        });
        continue;
      }
      const searched = st.searchedPoints?.[spec.value];
      if (searched === null && !ruled.activation.format) {
        st.entries.push({
          node,
          value: spec.value,
          role: "activation",
          skip: true,
          reason: `marked by '${m.name}', left in float by the mixed search`,
        });
        continue;
      }
      // The mixed search's format for the point (`--budget-act`), unless a rule names one.
      const r = searched ? { mode: searched.mode, ...ruled.activation } : ruled.activation;
      const fromSearch = searched && !ruled.activation.format ? searched.format : undefined;
      // A layer input the plan already quantizes keeps what the search or a rule on the reading
      // layer chose for it, unless the marker or a rule on the marked value names a format; one
      // that the search or a layer rule left in float stays in float.
      const heldAt = st.entries.findIndex((e) =>
        e.role === "activation" && e.value === spec.value && !e.skip
      );
      const held = heldAt >= 0 ? st.entries[heldAt] : undefined;
      const named = r.format ?? fromSearch ?? spec.format;
      if (!named && !held) {
        const float = st.entries.find((e) =>
          e.role === "activation" && e.value === spec.value && e.skip &&
          e.reason === "activations left in float"
        );
        if (float && act?.format) {
          st.warnings.push(
            `${spec.value}: marked by '${m.name}' but the plan leaves ${float.node}'s input in float`,
          );
          continue;
        }
      }
      const format = named ?? held?.format ?? act?.format;
      if (!format) {
        st.warnings.push(
          `${spec.value}: marked by '${m.name}' but the preset leaves activations in float`,
        );
        continue;
      }
      const fmt = st.registry.formats.get(format);
      const block = isBlockFormatName(format);
      if (r.granularity !== undefined && r.granularity !== STATIC_ACT_GRANULARITY && !block) {
        throw new LowbitError(
          "UNSUPPORTED",
          `a rule asks for activation granularity ${JSON.stringify(r.granularity)} on a point ` +
            `marked by '${m.name}'; activations are quantized per tensor (static) or with a ` +
            `block format (dynamic)`,
          { node, tensor: spec.value },
        );
      }
      const override = r.format ?? fromSearch;
      const sameFormat = !override || override === spec.format;
      const kept = named ? undefined : held; // the held entry's format, so its other settings too
      const entry: PlanEntry = {
        node,
        value: spec.value,
        role: "activation",
        quantizer: r.quantizer ?? spec.quantizer ?? defaultQuantizerFor(fmt),
        format,
        granularity: (sameFormat ? spec.granularity : undefined) ?? kept?.granularity ??
          (block ? activationBlockGranularity(format, -1) : { kind: "tensor" }),
        mode: r.mode ?? spec.mode ?? kept?.mode ??
          (block ? "symmetric" : act?.mode ?? "affine"),
        calibrator: r.calibrator ?? spec.calibrator ?? kept?.calibrator ??
          (block ? "dynamic" : st.opts.calibrator ?? act?.calibrator ?? "minmax"),
        ...(block ? { dynamic: true } : {}),
        ...(spec.reads?.length ? { reads: [...spec.reads] } : {}),
        by: m.name,
        ...(spec.note ? { note: spec.note } : {}),
      };
      if (held) {
        // A layer input already quantized: what the marker names (quantizer, format, ...) or
        // what a rule says of the marked value takes over.
        const names = spec.quantizer || spec.format || spec.granularity || spec.mode ||
          spec.calibrator || spec.reads?.length;
        if (names || Object.keys(r).length) st.entries[heldAt] = { ...entry, node: held.node };
        continue;
      }
      st.entries.push(entry);
    }
  }
}

/** An entry as a core `QuantPoint` (its quantizer from the registry, its fitted parameters). */
function entryPoint(e: PlanEntry, registry: Registry): QuantPoint {
  return {
    value: e.value,
    role: e.role,
    quantizer: entryQuantizer(e, registry).name,
    params: entryQParams(e),
    ...(e.by ? { by: e.by } : {}),
  };
}

/** The layer a weight entry quantizes (a recurrent node has two: its W and its R). */
function layerOfEntry(layers: readonly Layer[], e: PlanEntry): Layer {
  return layers.find((l) => l.node === e.node && l.weight === e.value) ??
    layers.find((l) => l.node === e.node)!;
}

/** Every point's quantizer exists and supports its format; a `.onnx` target needs QDQ forms. */
function checkStage(st: QuantizeState): void {
  const points = st.entries.filter((e) => !e.skip).map((e) => {
    try {
      // Before fitting: unit scales stand in (the checks look at quantizer, format, granularity).
      return entryPoint(
        { ...e, scale: e.scale ?? [1], zeroPoint: e.zeroPoint ?? [0] },
        st.registry,
      );
    } catch (err) {
      if (err instanceof LowbitError) {
        throw new LowbitError(err.code, err.message, { node: e.node, tensor: e.value });
      }
      throw err;
    }
  });
  checkQuantPoints(points, {
    registry: st.registry,
    target: st.opts.target === "onnx" ? "onnx" : "run",
  });
}

/** Whether a layer's input is a quantized value (whichever layer's entry holds it). */
function inputQuantized(st: QuantizeState, l: Layer): boolean {
  return st.entries.some((e) => e.role === "activation" && !e.skip && e.value === l.input);
}

function activationEntries(st: QuantizeState): PlanEntry[] {
  return st.entries.filter((e) => e.role === "activation" && !e.skip);
}

/** Range equalisation: per-channel scales folded between an activation's producer and its Convs. */
async function equalizeStage(st: QuantizeState): Promise<void> {
  const eqAlpha = st.opts.equalize ?? null;
  const given = st.opts.plan ? st.equalization : undefined;
  if (!given && (st.opts.plan || eqAlpha === null)) return;
  const eqLayers = st.layers.filter((l) => !l.scope && l.op === "Conv" && inputQuantized(st, l));
  const absMax = given
    ? new Map()
    : await absMaxPass(st, "equalize", eqLayers, "for range equalisation");
  const r = equalize(st.model, eqLayers, absMax, {
    alpha: eqAlpha ?? 0.5,
    given,
    spectra: st.opts.equalizeWhere === "spectra",
  });
  st.equalization = r.factors;
  st.warnings.push(...r.notes);
}

/** A calibration pass collecting per-channel input |x| maxima of `layers`. */
async function absMaxPass(
  st: QuantizeState,
  name: string,
  layers: Layer[],
  why: string,
): Promise<Map<string, Float32Array>> {
  const bar = startBar(st, name);
  const stats = await calibrate(st.model, calibrationData(st, why), {
    absMax: layers,
    ...calibrateCommon(st, bar),
  });
  bar.stop();
  return stats.absMax;
}

/** SmoothQuant: migrate activation outliers into the weights. */
async function smoothQuantStage(st: QuantizeState): Promise<void> {
  if (st.smoothAlpha === null) return;
  const given = st.opts.plan ? st.smoothing : undefined;
  const smoothable = st.layers.filter((l) => !l.scope && inputQuantized(st, l));
  const absMax = given
    ? new Map()
    : await absMaxPass(st, "smoothquant", smoothable, "for SmoothQuant");
  const r = smoothQuant(st.model, smoothable, absMax, st.smoothAlpha, given);
  st.smoothing = r.factors;
  st.warnings.push(...r.notes);
}

/** The calibration pass: ranges, Hessians, means, histogram samples. */
async function calibrateStage(st: QuantizeState): Promise<void> {
  const weightEntries = st.entries.filter((e) => e.role === "weight" && !e.skip);
  const actEntries = activationEntries(st);
  const needActs = actEntries.filter((e) => !e.dynamic && !e.scale);
  const gptqLayers = weightEntries.filter((e) => e.rounding === "gptq").map((e) =>
    layerOfEntry(st.layers, e)
  ).filter((l) => {
    if (l.part) {
      st.warnings.push(`${l.node}: GPTQ on ${l.op} weights is not supported; rounded to nearest`);
      return false;
    }
    if (l.op === "Conv" && l.shape.length !== 4 && l.shape.length !== 3) {
      st.warnings.push(`${l.node}: GPTQ needs a 1-D or 2-D Conv; rounded to nearest instead`);
      return false;
    }
    return true;
  });
  const meanLayers = st.biasCorrection
    ? weightEntries.map((e) => layerOfEntry(st.layers, e)).filter((l) =>
      l.op === "Conv" || l.op === "Gemm"
    )
    : [];
  const hasSource = activeSource(st) !== undefined;
  if (
    !(st.opts.calib || hasSource) && !needActs.length && !gptqLayers.length && !meanLayers.length
  ) {
    return;
  }
  const data = calibrationData(
    st,
    needActs.length
      ? "to calibrate activation ranges"
      : gptqLayers.length
      ? "for GPTQ"
      : "for bias correction",
  );
  const bar = startBar(st, "calibrate");
  st.stats = await calibrate(st.model, data, {
    activations: needActs,
    hessians: gptqLayers,
    means: meanLayers,
    samples: [...new Set(actEntries.map((e) => e.value))],
    ...calibrateCommon(st, bar),
  });
  bar.stop();
}

/** Fits every static activation point from its calibrated range. */
function activationsStage(st: QuantizeState): void {
  for (const e of activationEntries(st)) {
    if (e.dynamic || e.scale) continue;
    const range = st.stats?.ranges.get(activationKey(e));
    // A value no calibration batch reached (an untaken branch, an expert no token was routed
    // to) has no range: it stays in float, said out loud, never a made-up scale.
    if (!range || ![...range.min, ...range.max].every(Number.isFinite)) {
      e.skip = true;
      e.reason = "no calibration data reached it: left in float";
      st.warnings.push(`${e.value}: no calibration data reached it; its quantization is skipped`);
      continue;
    }
    const qp = fitActivation(e, range, st.registry);
    if (qp.dynamic) {
      e.dynamic = true;
      continue;
    }
    e.scale = [...qp.scale];
    e.zeroPoint = [...qp.zeroPoint];
    if (qp.extra) e.extra = qp.extra;
  }
}

/**
 * Bias correction's second pass: each Conv / Gemm layer whose input is statically quantized sees
 * its input fake-quantized with the fitted parameters, and the mean of those rows is kept, so the
 * weights stage corrects the mean shift of the input's rounding along with the weights' (a flat
 * background rounds to the same wrong value everywhere; PP-OCRv4 rec's depthwise edge filters
 * turn that into a constant offset per channel).
 */
async function inputMeansStage(st: QuantizeState): Promise<void> {
  if (st.biasCorrection !== true || !st.stats?.means.size) return;
  const byInput = new Map<string, PlanEntry>();
  for (const e of activationEntries(st)) {
    if (!e.dynamic && e.scale && !byInput.has(e.value)) byInput.set(e.value, e);
  }
  const layers = st.layers.filter((l) => st.stats!.means.has(l.node) && byInput.has(l.input));
  if (!layers.length) return;
  const bar = startBar(st, "input means");
  const stats = await calibrate(st.model, calibrationData(st, "for bias correction"), {
    means: layers,
    layerInput: (l, t) => ({
      ...t,
      data: fakeQuantActivation(
        t.data as Float32Array,
        t.shape,
        byInput.get(l.input)!,
        1,
        st.registry,
      ),
    }),
    ...calibrateCommon(st, bar),
  });
  bar.stop();
  st.quantizedMeans = stats.means;
}

/** Weights: fit, round (RTN | GPTQ), bias-correct. */
function weightsStage(st: QuantizeState): void {
  const { model } = st;
  if (st.opts.propagate && st.opts.plan && !st.opts.plan.options.propagate) {
    st.warnings.push(
      "--propagate: the plan was made without it; the weights are rounded as the plan says",
    );
  }
  if (propagates(st)) st.beforeRounding = cloneModel(model);
  const weightEntries = st.entries.filter((e) => e.role === "weight" && !e.skip);
  const wbar = st.progress.start("weights", weightEntries.length);
  for (const e of weightEntries) {
    const l = layerOfEntry(st.layers, e);
    // The weight's initializer: in the graph or in the subgraph that holds the layer.
    const owner = findInitializer(model.graph, l.weight)!;
    const init = owner.tensor;
    const w = init.data as Float32Array;
    if (isBlockFormatName(e.format!) && e.granularity?.kind !== "block") {
      e.granularity = resolveWeightGranularity(l, "channel", e.format!);
    }
    const quantizer = entryQuantizer(e, st.registry);
    // Fitted parameters replay as they are; a version-1 plan's block-format weight has no block
    // scales stored (they were the weight's own), so they are fitted from the weight again.
    const refit = !e.scale || (isBlockFormatName(e.format!) && !e.extra);
    const qp = refit ? fitWeight(l, w, e, st.registry) : entryQParams(e);
    let q: Float32Array = w;
    let H = st.stats?.hessians.get(l.node);
    // No input row reached the layer (an expert no token was routed to): GPTQ would zero its
    // weights; round to nearest instead, and say so.
    if (e.rounding === "gptq" && H && H.every((h) => h.every((v) => v === 0))) {
      st.warnings.push(
        `${l.node}: no calibration data reached it; GPTQ skipped, rounded to nearest`,
      );
      H = undefined;
    }
    // Fewer input rows than columns: the Hessian is singular, and GPTQ moves the rounding error
    // into directions the calibration data never reached (Silero v5's last Conv, 128 inputs, one
    // row a frame: 120 frames gave max |Δp| 0.009 → 0.091 on other audio). Rounded to nearest.
    const rowsSeen = st.stats?.hessianRows?.get(l.node);
    if (e.rounding === "gptq" && H && rowsSeen && rowsSeen.some((n) => n < l.in)) {
      st.warnings.push(
        `${l.node}: GPTQ needs at least as many calibration input rows as the layer's input ` +
          `width (${Math.min(...rowsSeen)} < ${l.in}: its Hessian is singular); rounded to nearest`,
      );
      H = undefined;
    }
    if (e.rounding === "gptq" && H) {
      const view = toOutIn(l, w);
      const round = columnRounder(l, w, qp);
      const qv = new Float32Array(view.length);
      const per = l.out / l.groups;
      for (let g = 0; g < l.groups; g++) {
        const rows = view.subarray(g * per * l.in, (g + 1) * per * l.in);
        const rowsRound = (col: Float32Array, j: number): Float32Array => {
          const full = new Float32Array(l.out);
          full.set(col, g * per);
          return round(full, j).subarray(g * per, (g + 1) * per);
        };
        qv.set(gptq(rows, per, l.in, H[g], rowsRound, st.gptq), g * per * l.in);
      }
      q = fromOutIn(l, qv);
    }
    // RTN; for GPTQ's on-grid values this only snaps away float noise.
    q = fakeQuantWeight(l, q, qp, quantizer);
    const mean = st.stats?.means.get(l.node);
    if (mean) {
      const shift = biasShift(
        l,
        toOutIn(l, w),
        toOutIn(l, q),
        mean,
        st.quantizedMeans?.get(l.node),
      );
      if (!addBias(model, l, shift)) {
        st.warnings.push(`${l.node}: no bias to correct (${l.op}); bias correction skipped`);
      }
    }
    owner.graph.initializers.set(l.weight, { ...init, data: q });
    e.granularity = qp.granularity;
    e.scale = [...qp.scale];
    e.zeroPoint = [...qp.zeroPoint];
    if (qp.extra) e.extra = qp.extra;
    if (!e.quantizer) e.quantizer = quantizer.name;
    wbar.increment();
  }
  wbar.stop();
  for (const e of activationEntries(st)) {
    if (!e.quantizer) e.quantizer = entryQuantizer(e, st.registry).name;
  }
  const skippedLayers = st.layers.filter((l) =>
    st.entries.some((e) => e.node === l.node && e.role === "weight" && e.skip)
  );
  if (skippedLayers.length === st.layers.length && activationEntries(st).length === 0) {
    st.warnings.push("every layer is left in float: the output equals the input model");
  }
}

/** Whether the weights are refitted: as the replayed plan says, else as asked. */
function propagates(st: QuantizeState): boolean {
  return st.opts.plan ? st.opts.plan.options.propagate === true : st.opts.propagate === true;
}

/** Error-propagating refit of the rounded weights (`propagate`; see `propagateFit`). */
async function propagateStage(st: QuantizeState): Promise<void> {
  if (!st.beforeRounding) return;
  const r = await propagateFit(st.beforeRounding, {
    model: st.model,
    plan: finalPlan(st),
    layers: st.layers,
    registry: st.registry,
  }, { data: needCalib(st.opts, "for --propagate"), registry: st.registry });
  st.beforeRounding = undefined;
  for (const k of r.skipped) st.warnings.push(`${k.node}: --propagate: ${k.reason}`);
}

function finalPlan(st: QuantizeState): QuantPlan {
  const plugins = st.registry.pluginVersions();
  const popts = Object.fromEntries(
    Object.entries(st.pluginOptions).filter(([, v]) => v !== undefined),
  ) as Record<string, string | number | boolean>;
  return {
    version: PLAN_VERSION,
    model: { name: st.opts.name ?? "model.onnx", sha256: st.opts.sha256 ?? "" },
    preset: st.preset,
    options: {
      smoothquant: st.smoothAlpha,
      biasCorrection: st.biasCorrection,
      gptq: st.gptq,
      ...(typeof minSplit(st) === "number" ? { splitTaps: minSplit(st)! } : {}),
      ...(propagates(st) ? { propagate: true } : {}),
    },
    ...(st.smoothing && Object.keys(st.smoothing).length ? { smoothing: st.smoothing } : {}),
    ...(st.equalization && Object.keys(st.equalization).length
      ? { equalization: st.equalization }
      : {}),
    ...(st.search ? { search: st.search } : {}),
    ...(plugins.length ? { plugins } : {}),
    ...(Object.keys(popts).length ? { pluginOptions: popts } : {}),
    entries: st.entries,
  };
}

// *** helpers of the stages ***

function startBar(st: QuantizeState, name: string) {
  const data = st.opts.calib;
  const steps = data ? Math.ceil(data.count / (st.opts.batchSize ?? 32)) : 0;
  return st.progress.start(name, steps);
}

function calibrateCommon(st: QuantizeState, bar: ReturnType<typeof startBar>) {
  return {
    batchSize: st.opts.batchSize,
    progress: bar,
    registry: st.registry,
    hooks: st.registry.hooks.list().map((n) => st.registry.hooks.get(n)),
    pluginOptions: st.pluginOptions,
  };
}

function activeSource(st: QuantizeState) {
  const graph = st.model.graph as unknown as GraphView;
  return st.registry.sources.list().map((n) => st.registry.sources.get(n)).find((s) =>
    s.applies?.(graph, st.pluginOptions) ?? true
  );
}

/** Calibration data: a registered source that applies, else the dataset (needed then). */
function calibrationData(st: QuantizeState, why: string): Dataset | CalibrationStream {
  const source = activeSource(st);
  if (!source) return needCalib(st.opts, why);
  const exec = createExecutor(st.prepared, { registry: st.registry });
  const data = st.opts.calib;
  return {
    batches: () =>
      (async function* () {
        for await (
          const b of source.batches({
            graph: st.prepared.graph as unknown as GraphView,
            run: (inputs) => exec.run(inputs as never) as never,
            options: st.pluginOptions,
            ...(data ? { data: { inputs: data.inputs, count: data.count } } : {}),
            batchSize: st.opts.batchSize ?? 32,
          })
        ) {
          yield { inputs: b.inputs as never, ...(b.tags ? { tags: b.tags as never } : {}) };
        }
      })(),
  };
}

/**
 * The quantization points of a fitted plan (skipped entries left out), as core `QuantPoint`s:
 * what simulation, QDQ export and the lowbit file read.
 *
 * @param plan a fitted plan
 * @param registry where the quantizers are registered (default: the default registry)
 * @returns the points
 *
 * @example
 * ```ts
 * import { planPoints } from "@lowbit/pipeline";
 * const pts = planPoints({ version: 2, model: { name: "", sha256: "" }, preset: null,
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [{ node: "n", value: "W", role: "weight", format: "int8",
 *     granularity: { kind: "tensor" }, mode: "symmetric", scale: [0.5], zeroPoint: [0] }] });
 * if (pts[0].quantizer !== "uniform" || pts[0].params.scale[0] !== 0.5) throw new Error();
 * ```
 */
export function planPoints(plan: QuantPlan, registry: Registry = defaultRegistry()): QuantPoint[] {
  const out: QuantPoint[] = [];
  const seen = new Set<string>();
  for (const e of plan.entries) {
    if (e.skip || seen.has(e.value)) continue;
    seen.add(e.value);
    out.push(entryPoint(e, registry));
  }
  return out;
}

async function runMixedSearch(
  st: QuantizeState,
  configs: Record<string, LayerConfig>,
): Promise<void> {
  const { opts, model } = st;
  // The search works on the top-level graph; layers in subgraphs and recurrent weights keep the
  // preset's formats.
  const layers = st.layers.filter((l) => !l.scope && !l.part);
  if (!opts.mixedSearch) {
    throw new LowbitError(
      "UNSUPPORTED",
      "the 'mixed' preset needs the mixed-precision search, which this build does not provide",
    );
  }
  const data = needCalib(opts, "for the mixed-precision search");
  const progress = opts.progress ?? silentProgress();
  const bar = progress.start("search", 100);
  const sub = sliceBatch(data, 0, Math.min(data.count, 64));
  const nodes = new Map(model.graph.nodes.map((n) => [n.name, n]));
  const floatExec = createExecutor(model, { registry: st.registry });
  const outName = model.graph.outputs[0].name;
  const ref = (await floatExec.run(sub))[outName];
  const classes = ref.shape[ref.shape.length - 1] ?? 1;
  const refTop = argmaxRows(ref.data as Float32Array, classes);
  const captured = new Map<string, { shape: number[]; data: Float32Array }>();
  await floatExec.run(sub, {
    watch: layers.map((l) => l.input),
    observe: (name, t) => {
      if (!captured.has(name)) {
        captured.set(name, { shape: [...t.shape], data: (t.data as Float32Array).slice() });
      }
    },
  });
  const graphView = model.graph as unknown as GraphView;
  const groups = st.registry.searchGroups.list().map((n) =>
    st.registry.searchGroups.get(n).groups(graphView, layers.map((l) => l.node), st.pluginOptions)
  );
  const choice = await opts.mixedSearch({
    model,
    groups,
    layers: layers.map((l) => ({
      node: l.node,
      op: l.op,
      weight: {
        shape: [l.out, l.in],
        data: toOutIn(l, model.graph.initializers.get(l.weight)!.data as Float32Array),
      },
    })),
    options: opts.mixedOptions ?? {},
    async measure(weights, activations): Promise<number> {
      const m = cloneModel(model);
      for (const l of layers) {
        const spec = weights[l.node];
        if (!spec) continue;
        const e: PlanEntry = {
          node: l.node,
          value: l.weight,
          role: "weight",
          format: spec.format,
          granularity: resolveWeightGranularity(l, spec.granularity, spec.format),
          mode: spec.mode,
        };
        const init = m.graph.initializers.get(l.weight)!;
        const w = init.data as Float32Array;
        init.data = fakeQuantWeight(l, w, fitWeight(l, w, e));
      }
      const hooks = new Map<string, { entry: PlanEntry; axis: number }>();
      for (const l of layers) {
        const spec = activations?.[l.node];
        if (!spec || hooks.has(l.input)) continue;
        const e = fittedInputEntry(l, spec, minMax(captured.get(l.input)!.data));
        hooks.set(l.input, {
          entry: e,
          axis: l.op === "Conv" || l.op === "ConvTranspose" ? 1 : -1,
        });
      }
      const out = (await createExecutor(m, { registry: st.registry }).run(sub, {
        transform: (name, t) => {
          const h = hooks.get(name);
          return h && {
            dtype: "float32",
            shape: [...t.shape],
            data: fakeQuantActivation(t.data as Float32Array, t.shape, h.entry, h.axis),
          };
        },
      }))[outName];
      return agreement(refTop, argmaxRows(out.data as Float32Array, classes));
    },
    inputs(node: string) {
      const l = layers.find((x) => x.node === node);
      const t = l && captured.get(l.input);
      if (!l || !t) {
        throw new LowbitError("INVALID_ARGUMENT", "no such layer", { node });
      }
      const rows = layerInputRows(l, nodes.get(node)!, {
        dtype: "float32",
        shape: t.shape,
        data: t.data,
      });
      return { shape: [rows[0].rows, l.in], data: rows[0].data };
    },
    progress(f: number): void {
      bar.update(Math.round(f * 100));
    },
  });
  bar.stop();
  st.warnings.push(...(choice.warnings ?? []));
  if (choice.points) st.searchedPoints = choice.points;
  for (const l of layers) {
    if (l.node in choice.weights) configs[l.node].weight = choice.weights[l.node];
    if (choice.activations && l.node in choice.activations) {
      configs[l.node].activation = choice.activations[l.node];
    }
  }
}
