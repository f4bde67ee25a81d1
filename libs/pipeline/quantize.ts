/**
 * The flow of one `lowbit quantize`, as one function over plain data:
 *
 * ```
 * model ─▶ layers ─▶ preset + rules (or mixed search, or a given plan) ─▶ plan entries
 *       ─▶ [range equalisation: |x| maxima pass, fold factors]
 *       ─▶ [SmoothQuant: |x| maxima pass, fold factors]
 *       ─▶ calibration pass (ranges, Hessians, input means, histogram samples)
 *       ─▶ fit activation scales, fit weight scales, round weights (RTN | GPTQ)
 *       ─▶ [bias correction] ─▶ QuantizedModel (model with on-grid weights + fitted plan)
 * ```
 *
 * The result's model is the float graph whose quantized weights already lie
 * on their grids (so exporting them with the plan's scales reproduces the
 * codes exactly); the plan holds every scale. Export and evaluation take it
 * from there.
 *
 * @module
 */

import { getFormat, LowbitError } from "@lowbit/core";
import { foldBatchNorm, foldConstants, type LowbitTensor, type Model } from "@lowbit/graph";
import { decodeBlockWeight, encodeBlockWeight } from "./lowbit_model.ts";
import { activationKey, calibrate, type CalibrationStats } from "./calibrate.ts";
import type { Dataset } from "./data.ts";
import { gptq } from "./gptq.ts";
import { fromOutIn, type Layer, scanLayers, toOutIn } from "./layers.ts";
import { layerInputRows } from "./layer_inputs.ts";
import {
  PLAN_VERSION,
  type PlanEntry,
  type PlanOptions,
  type QuantPlan,
  validatePlan,
} from "./plan.ts";
import { getPreset, type MixedSearch } from "./presets.ts";
import { type Progress, silentProgress } from "./progress.ts";
import { applyRules, type Rule } from "./rules.ts";
import { smoothQuant } from "./smoothquant.ts";
import { fittedInputEntry, minMax } from "./search/_act_quant.ts";
import { equalize } from "./equalize.ts";
import { addBias, biasShift } from "./bias_correction.ts";
import type { LayerConfig, Rounding, TensorSpec } from "./spec.ts";
import {
  columnRounder,
  entryQParams,
  fakeQuantActivation,
  fakeQuantWeight,
  fitActivation,
  fitWeight,
  isBlockFormatName,
  resolveWeightGranularity,
} from "./tensor_quant.ts";
import { sliceBatch } from "./data.ts";
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
  /** Block-format weights as encoded (codes and block scales), by initializer name. */
  encoded?: Map<string, LowbitTensor>;
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
  /** Apply bias correction. */
  biasCorrection?: boolean;
  /**
   * Cross-layer range equalisation of Conv inputs before calibration (see `equalize`): its α for
   * inputs of ungrouped Convs (0.5 balances activation and weight ranges, 1 moves them wholly
   * into the weights; depthwise inputs are always fully equalised), or null/undefined for off.
   * A replayed plan applies its own `equalization` factors instead.
   */
  equalize?: number | null;
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
    if (!c || c.skip) {
      const why = reasons[l.node] ?? "skipped by a rule";
      entries.push(skipped("weight", why), skipped("activation", why));
      continue;
    }
    const w: TensorSpec | null = c.weight;
    if (!w) entries.push(skipped("weight", "weights left in float"));
    else {
      checkFormat(w.format, where);
      const block = isBlockFormatName(w.format);
      let rounding: Rounding = w.rounding ?? "rtn";
      if (rounding === "gptq" && l.op === "ConvTranspose") rounding = "rtn";
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
        format: w.format,
        granularity: resolveWeightGranularity(l, w.granularity, w.format),
        mode: block ? "symmetric" : w.mode,
        rounding,
      });
    }
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
      entries.push({
        node: l.node,
        value: l.input,
        role: "activation",
        format: a.format,
        granularity: { kind: "tensor" },
        mode: block ? "symmetric" : a.mode,
        calibrator: block ? "dynamic" : a.calibrator ?? "minmax",
        ...(block ? { dynamic: true } : {}),
      });
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
  const progress = opts.progress ?? silentProgress();
  const warnings: string[] = [];
  const model = cloneModel(opts.model);
  // Weights held in Constant nodes (paddle2onnx exports, e.g. PP-OCR) become initializers.
  if (model.graph.nodes.some((n) => n.op === "Constant")) {
    model.graph = foldConstants(model.graph);
  }
  if (opts.foldBatchNorm ?? true) model.graph = foldBatchNorm(model.graph);
  const prepared = cloneModel(model);
  const { layers, rejected } = scanLayers(model.graph);
  if (layers.length === 0) {
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
  const gptqOpts = {
    blockSize: opts.gptq?.blockSize ?? opts.plan?.options.gptq.blockSize ?? 128,
    damp: opts.gptq?.damp ?? opts.plan?.options.gptq.damp ?? 0.01,
    actOrder: opts.gptq?.actOrder ?? opts.plan?.options.gptq.actOrder ?? false,
  };
  let entries: PlanEntry[];
  let preset: string | null;
  let smoothAlpha: number | null;
  let biasCorrection: boolean;
  let givenSmoothing: Record<string, number[]> | undefined;
  let givenEqualization: Record<string, number[]> | undefined;
  if (opts.plan) {
    warnings.push(
      ...validatePlan(opts.plan, model, opts.sha256 ?? "", (f) => {
        try {
          getFormat(f);
          return true;
        } catch {
          return false;
        }
      }).warnings,
    );
    entries = structuredClone(opts.plan.entries);
    // Layers the plan does not mention stay in float.
    for (const l of layers) {
      for (const role of ["weight", "activation"] as const) {
        if (!entries.some((e) => e.node === l.node && e.role === role)) {
          entries.push({
            node: l.node,
            value: role === "weight" ? l.weight : l.input,
            role,
            skip: true,
            reason: "not in the plan",
          });
        }
      }
    }
    preset = opts.plan.preset;
    smoothAlpha = opts.plan.options.smoothquant;
    biasCorrection = opts.plan.options.biasCorrection;
    givenSmoothing = opts.plan.smoothing;
    givenEqualization = opts.plan.equalization;
  } else {
    preset = opts.preset ?? "w8a8";
    const p = getPreset(preset);
    const { configs, warnings: ruleWarnings } = applyRules(
      layers.map((l) => l.node),
      p.base,
      opts.rules ?? [],
    );
    warnings.push(...ruleWarnings);
    for (const c of Object.values(configs)) {
      if (opts.rounding && c.weight) c.weight.rounding = opts.rounding;
      if (opts.calibrator && c.activation) c.activation.calibrator = opts.calibrator;
    }
    if (preset === "mixed") {
      await runMixedSearch(opts, model, layers, configs);
    }
    entries = buildEntries(layers, configs);
    smoothAlpha = opts.smoothquant ?? null;
    biasCorrection = opts.biasCorrection ?? false;
  }
  const byNode = new Map(layers.map((l) => [l.node, l]));
  const weightEntries = entries.filter((e) => e.role === "weight" && !e.skip);
  const actEntries = entries.filter((e) => e.role === "activation" && !e.skip);
  const quantLayers = weightEntries.map((e) => byNode.get(e.node)!);

  // Range equalisation: per-channel scales folded between an activation's producer and its Convs.
  let equalization: Record<string, number[]> | undefined;
  const eqAlpha = opts.equalize ?? null;
  if (givenEqualization || (!opts.plan && eqAlpha !== null)) {
    const eqLayers = layers.filter((l) =>
      l.op === "Conv" &&
      entries.some((e) => e.node === l.node && e.role === "activation" && !e.skip)
    );
    let absMax = new Map<string, Float32Array>();
    if (!givenEqualization) {
      const data = needCalib(opts, "for range equalisation");
      const bar = progress.start("equalize", Math.ceil(data.count / (opts.batchSize ?? 32)));
      absMax = (await calibrate(model, data, {
        absMax: eqLayers,
        batchSize: opts.batchSize,
        progress: bar,
      })).absMax;
      bar.stop();
    }
    const r = equalize(model, eqLayers, absMax, {
      alpha: eqAlpha ?? 0.5,
      given: givenEqualization,
    });
    equalization = r.factors;
    warnings.push(...r.notes);
  }

  // SmoothQuant: migrate activation outliers into the weights.
  let smoothing: Record<string, number[]> | undefined;
  if (smoothAlpha !== null) {
    const smoothable = layers.filter((l) =>
      entries.some((e) => e.node === l.node && e.role === "activation" && !e.skip)
    );
    let absMax = new Map<string, Float32Array>();
    if (!givenSmoothing) {
      const data = needCalib(opts, "for SmoothQuant");
      const bar = progress.start("smoothquant", Math.ceil(data.count / (opts.batchSize ?? 32)));
      absMax = (await calibrate(model, data, {
        absMax: smoothable,
        batchSize: opts.batchSize,
        progress: bar,
      })).absMax;
      bar.stop();
    }
    const r = smoothQuant(model, smoothable, absMax, smoothAlpha, givenSmoothing);
    smoothing = r.factors;
    warnings.push(...r.notes);
  }

  // Calibration pass.
  const needActs = actEntries.filter((e) => !e.dynamic && !e.scale);
  const gptqLayers = weightEntries.filter((e) => e.rounding === "gptq").map((e) =>
    byNode.get(e.node)!
  ).filter((l) => {
    if (l.op === "Conv" && l.shape.length !== 4) {
      warnings.push(`${l.node}: GPTQ needs a 2-D Conv; rounded to nearest instead`);
      return false;
    }
    return true;
  });
  const meanLayers = biasCorrection
    ? quantLayers.filter((l) => l.op === "Conv" || l.op === "Gemm")
    : [];
  let stats: CalibrationStats | null = null;
  if (opts.calib || needActs.length || gptqLayers.length || meanLayers.length) {
    const data = needCalib(
      opts,
      needActs.length
        ? "to calibrate activation ranges"
        : gptqLayers.length
        ? "for GPTQ"
        : "for bias correction",
    );
    const bar = progress.start("calibrate", Math.ceil(data.count / (opts.batchSize ?? 32)));
    stats = await calibrate(model, data, {
      activations: needActs,
      hessians: gptqLayers,
      means: meanLayers,
      samples: [...new Set(actEntries.map((e) => e.value))],
      batchSize: opts.batchSize,
      progress: bar,
    });
    bar.stop();
  }

  // Activations: fit scales.
  for (const e of actEntries) {
    if (e.dynamic || e.scale) continue;
    const range = stats!.ranges.get(activationKey(e))!;
    const qp = fitActivation(e, range);
    e.scale = [...qp.scale];
    e.zeroPoint = [...qp.zeroPoint];
  }

  // Weights: fit, round, bias-correct.
  const wbar = progress.start("weights", weightEntries.length);
  const encoded = new Map<string, LowbitTensor>();
  for (const e of weightEntries) {
    const l = byNode.get(e.node)!;
    const init = model.graph.initializers.get(l.weight)!;
    const w = init.data as Float32Array;
    const qp = e.scale ? entryQParams(e) : fitWeight(l, w, e);
    let q: Float32Array;
    const H = stats?.hessians.get(l.node);
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
        qv.set(gptq(rows, per, l.in, H[g], rowsRound, gptqOpts), g * per * l.in);
      }
      q = fromOutIn(l, qv);
    } else {
      q = w;
    }
    if (isBlockFormatName(e.format!)) {
      // Block scales always come from the original weight (GPTQ rounded against them).
      const t = encodeBlockWeight(l, q, e.format!, w);
      encoded.set(l.weight, t);
      q = decodeBlockWeight(l, t);
    } else {
      // RTN; for GPTQ's on-grid values this only snaps away float noise.
      q = fakeQuantWeight(l, q, qp);
    }
    const mean = stats?.means.get(l.node);
    if (mean) {
      const shift = biasShift(l, toOutIn(l, w), toOutIn(l, q), mean);
      if (!addBias(model, l, shift)) {
        warnings.push(`${l.node}: no bias to correct (${l.op}); bias correction skipped`);
      }
    }
    model.graph.initializers.set(l.weight, { ...init, data: q });
    e.scale = [...qp.scale];
    e.zeroPoint = [...qp.zeroPoint];
    wbar.increment();
  }
  wbar.stop();

  const skippedLayers = layers.filter((l) =>
    entries.some((e) => e.node === l.node && e.role === "weight" && e.skip)
  );
  if (skippedLayers.length === layers.length && actEntries.length === 0) {
    warnings.push("every layer is left in float: the output equals the input model");
  }
  const plan: QuantPlan = {
    version: PLAN_VERSION,
    model: { name: opts.name ?? "model.onnx", sha256: opts.sha256 ?? "" },
    preset,
    options: { smoothquant: smoothAlpha, biasCorrection, gptq: gptqOpts },
    ...(smoothing && Object.keys(smoothing).length ? { smoothing } : {}),
    ...(equalization && Object.keys(equalization).length ? { equalization } : {}),
    entries,
  };
  return { quantized: { model, plan, layers, encoded }, stats, warnings, prepared };
}

async function runMixedSearch(
  opts: QuantizeOptions,
  model: Model,
  layers: Layer[],
  configs: Record<string, LayerConfig>,
): Promise<void> {
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
  const floatExec = createExecutor(model);
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
  const choice = await opts.mixedSearch({
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
      const out = (await createExecutor(m).run(sub, {
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
  for (const l of layers) {
    if (l.node in choice.weights) configs[l.node].weight = choice.weights[l.node];
    if (choice.activations && l.node in choice.activations) {
      configs[l.node].activation = choice.activations[l.node];
    }
  }
}
