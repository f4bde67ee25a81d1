/**
 * Calibration: run the float model over the calibration data in batches and,
 * at every layer input, feed streaming calibrators (core's `minmax`,
 * `percentile`, `mse`, `kl`, ...), per-channel |x| maxima (SmoothQuant),
 * input-row means (bias correction), GPTQ Hessians, and a bounded sample of
 * values for the report's histograms. Memory holds one batch plus bounded
 * state per tensor, never the data set.
 *
 * @module
 */

import {
  type BatchContext,
  type CalibrationHook,
  type Calibrator,
  defaultRegistry,
  type PluginOptionValues,
  type Range,
  type Registry,
  type TensorValue,
} from "@lowbit/core";
import { allNodes, createExecutor, type Model, type Node, type TensorData } from "@lowbit/graph";
import { type Dataset, sliceBatch } from "./dataset.ts";
import { createHessian, type HessianAccumulator } from "./gptq.ts";
import type { Layer } from "./layers.ts";
import { layerInputRows } from "./layer_inputs.ts";
import type { PlanEntry } from "./plan.ts";
import type { ProgressBar } from "./progress_api.ts";
import { smoothAxis } from "./smoothquant.ts";

/** What to collect. */
export interface CalibrateRequest {
  /** Activation entries to calibrate (skipped and dynamic ones are ignored). */
  activations?: readonly PlanEntry[];
  /** Layers whose per-channel input |x| max SmoothQuant needs. */
  absMax?: readonly Layer[];
  /** Layers whose input-row means bias correction needs. */
  means?: readonly Layer[];
  /** Layers whose GPTQ Hessians to accumulate. */
  hessians?: readonly Layer[];
  /**
   * A layer's input as the layer is to see it (fake-quantized by its input's quantizer): means
   * and Hessians are taken over the transformed rows. Other statistics see the value as it is.
   */
  layerInput?: (layer: Layer, t: TensorData) => TensorData;
  /** Values whose sample to keep for histograms. */
  samples?: readonly string[];
  /** Samples per batch (32). */
  batchSize?: number;
  /** Rows per batch and layer for Hessians and means, evenly strided (4096). */
  maxRows?: number;
  /** Progress bar, one step per batch. */
  progress?: ProgressBar;
  /** Registry of calibrators (default: the default registry). */
  registry?: Registry;
  /** Calibration hooks (graph transforms, GPTQ row weights); they act on this run only. */
  hooks?: readonly CalibrationHook[];
  /** Plugin options handed to the hooks. */
  pluginOptions?: PluginOptionValues;
}

/** One batch of a calibration stream: model inputs and per-sample tags. */
export interface CalibrationBatch {
  /** Model inputs by name. */
  inputs: Record<string, TensorData>;
  /** Tags (a timestep per sample, ...) handed to observers. */
  tags?: Record<string, ArrayLike<number>>;
}

/** Calibration data produced on the fly (a plugin's calibration source). */
export interface CalibrationStream {
  /** The batches, in order; called once per calibration pass. */
  batches(): AsyncIterable<CalibrationBatch>;
}

/** The batches of a dataset, `batchSize` samples each. */
async function* datasetBatches(data: Dataset, batchSize: number): AsyncIterable<CalibrationBatch> {
  for (let s = 0; s < data.count; s += batchSize) {
    yield { inputs: sliceBatch(data, s, Math.min(data.count, s + batchSize)) };
  }
}

/** What calibration found. */
export interface CalibrationStats {
  /** Calibrated range per activation entry, keyed by {@link activationKey} (absent: no data reached it). */
  ranges: Map<string, Range>;
  /** Per-channel max |x| by input value. */
  absMax: Map<string, Float32Array>;
  /** Mean input row per conv group (groups × in) by layer node. */
  means: Map<string, Float64Array>;
  /** Hessian 2·XᵀX/n per conv group by layer node. */
  hessians: Map<string, Float64Array[]>;
  /** Input rows each Hessian was accumulated from (non-zero row weight; per conv group), by node. */
  hessianRows?: Map<string, number[]>;
  /** A bounded, evenly strided sample of each requested value. */
  samples: Map<string, Float32Array>;
}

/**
 * The key of an activation entry's calibrator: entries on the same tensor
 * with the same calibrator, format and mode share one.
 *
 * @param e the entry
 * @returns the key
 *
 * @example
 * ```ts
 * import { activationKey } from "@lowbit/pipeline";
 * const k = activationKey({ node: "n", value: "x", role: "activation", format: "int8",
 *   mode: "affine", calibrator: "minmax" });
 * if (k !== "x|minmax|int8|affine") throw new Error(k);
 * ```
 */
export function activationKey(e: PlanEntry): string {
  return `${e.value}|${e.calibrator ?? "minmax"}|${e.format}|${e.mode}`;
}

const SAMPLE_CAP = 1 << 15;

function channelAbsMax(t: TensorData, axis: number, acc: Float32Array): void {
  const d = t.data as Float32Array;
  const rank = t.shape.length;
  const ax = axis < 0 ? axis + rank : axis;
  const C = t.shape[ax];
  const inner = t.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < d.length; i++) {
    const c = Math.floor(i / inner) % C;
    const v = Math.abs(d[i]);
    if (v > acc[c]) acc[c] = v;
  }
}

/**
 * Runs the float model over the data and collects everything requested.
 *
 * @param model the (prepared) float model
 * @param data calibration data
 * @param req what to collect
 * @returns the statistics
 *
 * @example
 * ```ts
 * import { calibrate } from "@lowbit/pipeline";
 * const t = (shape: number[], v: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(v) });
 * const model = { irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [{ name: "x", dtype: "float32" as const, shape: ["N", 2] }],
 *     outputs: [{ name: "y", dtype: "float32" as const }], valueInfo: new Map(),
 *     nodes: [{ name: "fc", op: "Gemm", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: {} }],
 *     initializers: new Map([["W", t([2, 1], [1, 1])]]) } };
 * const data = { count: 2, inputs: { x: t([2, 2], [0, 1, -3, 2]) } };
 * const entry = { node: "fc", value: "x", role: "activation" as const, format: "int8",
 *   granularity: { kind: "tensor" as const }, mode: "affine" as const, calibrator: "minmax" };
 * const s = await calibrate(model, data, { activations: [entry] });
 * if (s.ranges.get("x|minmax|int8|affine")?.min[0] !== -3) throw new Error();
 * ```
 */
export async function calibrate(
  model: Model,
  data: Dataset | CalibrationStream,
  req: CalibrateRequest,
): Promise<CalibrationStats> {
  const reg = req.registry ?? defaultRegistry();
  const hooks = req.hooks ?? [];
  const popts = req.pluginOptions ?? {};
  let graph = model.graph;
  for (const h of hooks) if (h.transformGraph) graph = h.transformGraph(graph, popts);
  const exec = createExecutor({ ...model, graph }, { registry: reg });
  // Layers inside If / Loop / Scan bodies too (their inputs are observed when the body runs).
  const nodes = new Map<string, Node>([...allNodes(graph)].map((n) => [n.name, n]));
  let batchCtx: BatchContext = { batch: 0, tags: {} };
  const calibrators = new Map<string, Calibrator>();
  // Keys of calibrators that saw data (a value no batch reaches gets no range).
  const observed = new Set<string>();
  const watch = new Set<string>();
  const on = new Map<string, Array<(t: TensorData) => void>>();
  const listen = (value: string, fn: (t: TensorData) => void): void => {
    watch.add(value);
    on.set(value, [...(on.get(value) ?? []), fn]);
  };
  for (const e of req.activations ?? []) {
    if (e.skip || e.dynamic) continue;
    const key = activationKey(e);
    if (calibrators.has(key)) continue;
    // Calibrators see the point they calibrate: its value, the graph values its quantizer reads,
    // its quantizer and the plugin options (a grouping calibrator needs them).
    const c = reg.calibrators.get(e.calibrator ?? "minmax").create({
      format: e.format,
      mode: e.mode,
      value: e.value,
      ...(e.quantizer ? { quantizer: e.quantizer } : {}),
      ...(e.reads ? { reads: e.reads } : {}),
      options: popts,
    });
    calibrators.set(key, c);
    listen(e.value, (t) => {
      observed.add(key);
      c.observe({ shape: t.shape, data: t.data as Float32Array }, batchCtx);
    });
  }
  const absMax = new Map<string, Float32Array>();
  for (const l of req.absMax ?? []) {
    if (absMax.has(l.input)) continue;
    const C = l.op === "Conv" ? l.shape[1] * l.groups : l.in;
    const acc = new Float32Array(C);
    absMax.set(l.input, acc);
    listen(l.input, (t) => channelAbsMax(t, smoothAxis(l), acc));
  }
  const sums = new Map<string, { sum: Float64Array; n: number[] }>();
  const hess = new Map<string, HessianAccumulator[]>();
  const needRows = new Map<string, Layer>();
  for (const l of req.means ?? []) {
    sums.set(l.node, { sum: new Float64Array(l.groups * l.in), n: new Array(l.groups).fill(0) });
    needRows.set(l.node, l);
  }
  for (const l of req.hessians ?? []) {
    hess.set(l.node, Array.from({ length: l.groups }, () => createHessian(l.in)));
    needRows.set(l.node, l);
  }
  // Values the hooks watch, kept for the current batch.
  const hookWatch = new Set<string>(hooks.flatMap((h) => h.watch?.(graph, popts) ?? []));
  const watched = new Map<string, TensorValue>();
  for (const v of hookWatch) listen(v, (t) => watched.set(v, t));
  const weighted = hooks.some((h) => h.rowWeights);
  // Layer inputs wait for the end of the batch when a hook weighs rows (it may watch later values).
  const pending: [Layer, TensorData][] = [];
  const accumulate = (l: Layer, t: TensorData): void => {
    let weights: Float32Array | undefined;
    const maxRows = weighted ? Infinity : req.maxRows ?? 4096;
    const x = req.layerInput ? req.layerInput(l, t) : t;
    const rows = layerInputRows(l, nodes.get(l.node)!, x, maxRows);
    if (weighted && hess.has(l.node)) {
      const view = { node: l.node, op: l.op, input: l.input };
      for (const h of hooks) {
        weights = h.rowWeights?.(view, { ...batchCtx, values: watched }, rows[0]?.rows ?? 0) ??
          weights;
      }
    }
    for (const r of rows) {
      const s = sums.get(l.node);
      if (s) {
        const off = r.group * l.in;
        for (let i = 0; i < r.rows; i++) {
          for (let j = 0; j < l.in; j++) s.sum[off + j] += r.data[i * l.in + j];
        }
        s.n[r.group] += r.rows;
      }
      hess.get(l.node)?.[r.group].add(r.data, r.rows, weights);
    }
  };
  for (const l of needRows.values()) {
    listen(l.input, (t) => {
      if (weighted) {
        pending.push([l, t]);
        return;
      }
      accumulate(l, t);
    });
  }
  const sampleBufs = new Map<string, number[]>();
  for (const v of req.samples ?? []) {
    sampleBufs.set(v, []);
    listen(v, (t) => {
      const buf = sampleBufs.get(v)!;
      const d = t.data as Float32Array;
      const perBatch = Math.max(1, Math.floor(SAMPLE_CAP / 8));
      const stride = Math.max(1, Math.floor(d.length / perBatch));
      for (let i = 0; i < d.length && buf.length < SAMPLE_CAP; i += stride) buf.push(d[i]);
    });
  }
  const bs = Math.max(1, req.batchSize ?? 32);
  const stream = "batches" in data ? data.batches() : datasetBatches(data, bs);
  let index = 0;
  for await (const batch of stream) {
    batchCtx = { batch: index++, tags: batch.tags ?? {}, inputs: batch.inputs as never };
    watched.clear();
    pending.length = 0;
    await exec.run(batch.inputs, {
      watch,
      observe: (name, t) => {
        for (const fn of on.get(name) ?? []) fn(t);
      },
    });
    for (const [l, t] of pending) accumulate(l, t);
    req.progress?.increment();
  }
  const ranges = new Map<string, Range>();
  for (const [k, c] of calibrators) if (observed.has(k)) ranges.set(k, c.result());
  const means = new Map<string, Float64Array>();
  for (const [node, s] of sums) {
    const l = needRows.get(node)!;
    const m = new Float64Array(s.sum.length);
    for (let g = 0; g < l.groups; g++) {
      for (let j = 0; j < l.in; j++) m[g * l.in + j] = s.sum[g * l.in + j] / Math.max(1, s.n[g]);
    }
    means.set(node, m);
  }
  const hessians = new Map<string, Float64Array[]>();
  const hessianRows = new Map<string, number[]>();
  for (const [node, hs] of hess) {
    hessians.set(node, hs.map((h) => h.result()));
    hessianRows.set(node, hs.map((h) => h.rows()));
  }
  const samples = new Map<string, Float32Array>();
  for (const [v, b] of sampleBufs) samples.set(v, Float32Array.from(b));
  return { ranges, absMax, means, hessians, hessianRows, samples };
}
