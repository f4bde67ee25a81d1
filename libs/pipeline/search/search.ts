/**
 * `searchMixedPrecision`: the whole mixed-precision search on one model —
 * layers, candidates (weight format, optionally paired with an activation
 * format), sensitivity scores from a registered metric, costs
 * (bits, size, BOPs, latency), a registered strategy under the budgets, the
 * size/sensitivity Pareto frontier, and where every built-in strategy's choice
 * falls on it (measured, when a measure is available), for the report's plot.
 *
 * @module
 */

import {
  allocationCost,
  allocationScore,
  bops,
  defaultRegistry,
  type LatencyTable,
  LowbitError,
  paretoFrontier,
  type PartTie,
  type Registry,
  type SearchProblem,
  sizeBits,
} from "@lowbit/core";
import { createExecutor, type Graph, type Model, type TensorData } from "@lowbit/graph";
import { forward64, type T64, type Tape, toT64 } from "@lowbit/graph/autodiff";
import { sliceBatch } from "../data.ts";
import { type Layer, scanLayers } from "../layers.ts";
import type { TensorSpec } from "../spec.ts";
import { type Budget, formatBudget } from "./budget.ts";
import { allocatePoints, checkPointBudget, type PointAllocation } from "./points.ts";
import {
  type Candidate,
  candidateCost,
  DEFAULT_ACT_FORMATS,
  DEFAULT_CANDIDATES,
  pairCandidates,
  parseCandidate,
} from "./candidates.ts";
import { createSensitivityContext, type SearchLoss } from "./context.ts";
import { latencyKey } from "./latency.ts";
import { detectSharedInputs, detectTies } from "./ties.ts";
import { fakeQuantInput, fittedInputEntry, minMax } from "./_act_quant.ts";

/**
 * Measures the real loss of an allocation (e.g. top-1 drop as a fraction); lower is better.
 * `activations` (input spec per layer, null for float) is given when activation formats are
 * searched (candidates written `weight@activation`); without it, only the weights are quantized.
 */
export type AllocationMeasure = (
  specs: Readonly<Record<string, TensorSpec>>,
  activations?: Readonly<Record<string, TensorSpec | null>>,
) => Promise<number>;

/** Options of {@link searchMixedPrecision}. */
export interface MixedPrecisionOptions {
  /** The model (prepared: weights must be initializers feeding Conv / Gemm / MatMul). */
  model: Model;
  /** Calibration inputs by graph input name (first axis = samples, unless `axes` says). */
  calib: Readonly<Record<string, TensorData>>;
  /**
   * Inputs given whole, never cut to `samples` (as `Dataset.whole`): a constant, or a GNN's whole
   * graph (node features and edge index: with only whole inputs the data is one sample). They
   * keep their dtype (an int64 edge index stays int64 for the executor); they override `calib`
   * inputs of the same name.
   */
  whole?: Readonly<Record<string, TensorData>>;
  /** The sample axis of `calib` inputs not batched along axis 0 (as `Dataset.axes`). */
  axes?: Readonly<Record<string, number>>;
  /**
   * One class per calibration sample, if known (per output row: with only `whole` inputs the
   * labels are not cut to the one sample).
   */
  labels?: ArrayLike<number>;
  /** Candidate names (default {@link DEFAULT_CANDIDATES}); `w@a` names pair an activation format. */
  candidates?: readonly string[];
  /**
   * Activation formats paired with every candidate written without `@` (default
   * {@link DEFAULT_ACT_FORMATS}: int8 only, names unchanged), e.g. ["int8", "fp8_e4m3fn", "none"].
   */
  activationFormats?: readonly string[];
  /** Registered metric name (default "hawq-v2"). */
  metric?: string;
  /** Registered strategy name (default "ilp"). */
  strategy?: string;
  /** Budgets; all must hold. */
  budgets?: readonly Budget[];
  /** For `bisect`: the largest acceptable measured loss (fraction). */
  tolerance?: number;
  /** The real metric for `bisect` and for measuring frontier points (default: top-1 drop on the search samples, float64). */
  measure?: AllocationMeasure;
  /** Loss of the Hessian metrics (default cross-entropy with labels, KL without). */
  loss?: SearchLoss;
  /** Calibration samples the metrics use (default 64). */
  samples?: number;
  /** Calibration samples the default measure uses (default 200). */
  measureSamples?: number;
  /** Hutchinson probes (default 32). */
  probes?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Latency table and how to fill a miss (needed for latency budgets). */
  latency?: {
    table: LatencyTable;
    measure(layer: Layer, candidate: Candidate, rows: number): Promise<number>;
  };
  /**
   * Tie layers whose outputs meet in a residual Add or a Concat to one weight format (default
   * true). Layers reading one tensor always share its activation format (the plan quantizes a
   * tensor once).
   */
  ties?: boolean;
  /** More groups of layers tied to one weight format (a plugin's search groups). */
  extraTies?: readonly (readonly string[])[];
  /** Candidates per layer node, replacing the global list for those layers (a plugin's). */
  layerCandidates?: Readonly<Record<string, readonly string[]>>;
  /**
   * Activation points that are not layer inputs (a plugin's search groups: a GNN's aggregation
   * inputs and outputs): with `pointBits`, their formats are allocated from `activationFormats`
   * (see {@link allocatePoints}).
   */
  points?: readonly string[];
  /** Average bits per element the `points` may use (`--budget-act`). */
  pointBits?: number;
  /** Frontier points to measure with `measure` and output SQNR (default 8, evenly spread; 0 for none). */
  measureFrontier?: number;
  /** The registry to look metrics and strategies up in (default: the default registry). */
  registry?: Registry;
  /** Reports progress, 0..1. */
  progress?: (fraction: number) => void;
}

/** One point for the frontier plot. */
export interface FrontierPointReport {
  /** Average bits per weight element. */
  avgBits: number;
  /** Weight storage in bytes, scales included. */
  sizeBytes: number;
  /** Summed sensitivity. */
  score: number;
  /** Measured loss (e.g. top-1 drop), when measured. */
  measured?: number;
  /** Output SQNR (dB) against the float model on the measure samples, when measured. */
  sqnrDb?: number;
  /** Candidate per layer. */
  allocation: Record<string, string>;
}

/** A strategy's choice on the frontier plot. */
export interface StrategyChoice extends FrontierPointReport {
  /** Strategy name. */
  strategy: string;
}

/** Per-layer detail of the search. */
export interface LayerReport {
  /** Node name. */
  node: string;
  /** Weight initializer. */
  weight: string;
  /** Weight elements. */
  params: number;
  /** Chosen candidate. */
  candidate: string;
  /** Chosen activation format of the layer input ("none": float). */
  activation: string;
  /** Score per candidate. */
  scores: Record<string, number>;
  /** Storage bits per candidate (scales included). */
  sizeBits: Record<string, number>;
}

/** What the search returns. */
export interface MixedPrecisionResult {
  /** Metric used. */
  metric: string;
  /** Strategy used. */
  strategy: string;
  /** Candidate name per layer node. */
  allocation: Record<string, string>;
  /** Weight spec per layer node (what the plan applies). */
  specs: Record<string, TensorSpec>;
  /** Input activation spec per layer node (null: float), what the plan applies. */
  activations: Record<string, TensorSpec | null>;
  /** The activation points' allocation, when `pointBits` was given. */
  points?: PointAllocation;
  /** Totals of the chosen allocation. */
  cost: { avgBits: number; sizeBytes: number; bops: number; latencyMs?: number };
  /** Measured loss of the chosen allocation, when measured. */
  measured?: number;
  /** Per-layer scores and choice. */
  perLayer: LayerReport[];
  /** Groups of layer nodes tied to one weight format (empty with `ties: false`). */
  ties: string[][];
  /** Groups of layer nodes reading one tensor, tied to one activation format. */
  sharedInputs: string[][];
  /** The (size, sensitivity) Pareto frontier and every strategy's choice on it. */
  frontier: { points: FrontierPointReport[]; choices: StrategyChoice[] };
  /** What the search had to change (a metric fallback, ...). */
  warnings: string[];
}

/** The metric used when the asked one needs gradients through an op autodiff cannot differentiate. */
const FALLBACK_METRIC = "layer-hessian";

/** The first `n` samples of the calibration data: float64 (autodiff) and as given (executor). */
interface Feeds {
  /** Float64 copies, for the autodiff interpreter. */
  t64: Record<string, T64>;
  /** The same slices in their own dtypes (an int64 index stays int64), for the executor. */
  data: Record<string, TensorData>;
  /** Samples taken (1 when every input is whole). */
  count: number;
  /** Whether any input was cut to samples (else labels are per output row, kept whole). */
  sliced: boolean;
}

function sliceFeeds(opts: MixedPrecisionOptions, n: number): Feeds {
  const whole = opts.whole ?? {};
  const inputs = Object.fromEntries(Object.entries(opts.calib).filter(([k]) => !(k in whole)));
  const axisOf = (k: string): number => opts.axes?.[k] ?? 0;
  const avail = Object.entries(inputs).map(([k, t]) => t.shape[axisOf(k)]);
  const count = avail.length ? Math.min(n, ...avail) : 1;
  const data = sliceBatch(
    { inputs, count, whole: { ...whole }, ...(opts.axes ? { axes: { ...opts.axes } } : {}) },
    0,
    count,
  );
  const t64 = Object.fromEntries(Object.entries(data).map(([k, t]) => [k, toT64(t)]));
  return { t64, data, count, sliced: avail.length > 0 };
}

/** 10·log10(Σf² / Σ(f − q)²); Infinity when equal. */
function sqnrDb64(f: ArrayLike<number>, q: ArrayLike<number>): number {
  let sig = 0, err = 0;
  for (let i = 0; i < f.length; i++) {
    sig += f[i] * f[i];
    err += (f[i] - q[i]) ** 2;
  }
  return err === 0 ? Infinity : 10 * Math.log10(sig / err);
}

function argmax(t: T64): Int32Array {
  const c = t.shape[t.shape.length - 1], rows = t.data.length / c;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let b = 0;
    for (let k = 1; k < c; k++) if (t.data[r * c + k] > t.data[r * c + b]) b = k;
    out[r] = b;
  }
  return out;
}

/**
 * Runs the mixed-precision search.
 *
 * @param opts model, calibration data, candidates, metric, strategy, budgets or tolerance
 * @returns allocation, per-layer scores, totals and frontier data
 *
 * @example
 * ```ts
 * import { searchMixedPrecision } from "@lowbit/pipeline/search";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/digits/mlp.onnx");
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const r = await searchMixedPrecision({ model, calib: { x }, metric: "layer-hessian", strategy: "pareto",
 *   candidates: ["int8/channel", "int4/channel"], budgets: [{ kind: "bits", bits: 6 }], samples: 16, measureFrontier: 0 });
 * if (r.cost.avgBits > 6 || Object.keys(r.allocation).length !== 3) throw new Error(JSON.stringify(r.cost));
 * ```
 */
export async function searchMixedPrecision(
  opts: MixedPrecisionOptions,
): Promise<MixedPrecisionResult> {
  const registry = opts.registry ?? defaultRegistry();
  let metricName = opts.metric ?? "hawq-v2";
  const strategyName = opts.strategy ?? "ilp";
  let metric = registry.metrics.get(metricName);
  const warnings: string[] = [];
  const strategy = registry.strategies.get(strategyName);
  const graph = opts.model.graph;
  const { layers, rejected } = scanLayers(graph);
  if (layers.length === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `no quantizable layers to search over${
        rejected.length ? ": " + rejected.map((r) => `${r.node} (${r.reason})`).join("; ") : ""
      }`,
    );
  }
  if (opts.loss === "cross-entropy" && !opts.labels) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `metric '${metricName}' with the cross-entropy loss needs labels (--labels FILE); without labels use --loss kl`,
    );
  }
  if (opts.pointBits !== undefined) {
    checkPointBudget(
      opts.points ?? [],
      opts.activationFormats ?? DEFAULT_ACT_FORMATS,
      opts.pointBits,
    );
  }
  const cands = new Map<string, Candidate>();
  for (
    const name of pairCandidates(opts.candidates ?? DEFAULT_CANDIDATES, opts.activationFormats)
  ) {
    cands.set(name, parseCandidate(name));
  }
  // Activation formats are in play when any candidate names one; then measurements quantize
  // the inputs too (weight-only searches measure as before, weights only).
  const withActs = [...cands.values()].some((c) => c.name !== c.weightName);
  const samples = opts.samples ?? 64;
  const sliced = sliceFeeds(opts, samples);
  const feeds = sliced.t64;
  const nSamples = sliced.count;
  const labels = opts.labels
    ? Array.from(opts.labels).slice(0, sliced.sliced ? nSamples : undefined)
    : undefined;
  const ctx = createSensitivityContext({
    graph,
    layers,
    candidates: cands,
    feeds,
    labels,
    loss: opts.loss,
    probes: opts.probes,
    seed: opts.seed,
  });

  // *** candidates per layer (block formats need whole blocks along the input axis) ***
  const names = layers.map((l) => l.node);
  const candidates: Record<string, string[]> = {};
  for (const list of Object.values(opts.layerCandidates ?? {})) {
    for (const name of list) if (!cands.has(name)) cands.set(name, parseCandidate(name));
  }
  const globalNames = new Set(
    pairCandidates(opts.candidates ?? DEFAULT_CANDIDATES, opts.activationFormats),
  );
  for (const l of layers) {
    const own = opts.layerCandidates?.[l.node];
    candidates[l.node] = [...cands.values()]
      .filter((c) => (own ? own.includes(c.name) : globalNames.has(c.name)))
      .filter((c) => {
        const cc = candidateCost(l, c);
        return !(c.spec.granularity !== "channel" && typeof c.spec.granularity === "object" &&
          cc.scaleBits !== 32 && l.in % (cc.granularity as { size: number }).size !== 0);
      })
      .map((c) => c.name);
    if (candidates[l.node].length === 0) {
      throw new LowbitError("INVALID_ARGUMENT", "no candidate fits this layer", { node: l.node });
    }
  }

  // *** scores ***
  const scores: Record<string, Record<string, number>> = {};
  const total = names.reduce((s, n) => s + candidates[n].length, 0);
  let done = 0;
  const score = async (node: string, c: string): Promise<number> => {
    try {
      return await metric.score(ctx, node, c);
    } catch (e) {
      // An op without a gradient: fall back to a metric that needs forward values only.
      if (
        e instanceof LowbitError && e.code === "UNSUPPORTED" && /no gradient/.test(e.message) &&
        metricName !== FALLBACK_METRIC
      ) {
        warnings.push(
          `metric '${metricName}' needs gradients through ${e.subject.node ?? "an op"} ` +
            `(${e.message}); scored with '${FALLBACK_METRIC}' instead`,
        );
        metricName = FALLBACK_METRIC;
        metric = registry.metrics.get(FALLBACK_METRIC);
        for (const k of Object.keys(scores)) scores[k] = {};
        restart = true;
        return NaN;
      }
      throw e;
    }
  };
  let restart = false;
  for (let li = 0; li < layers.length; li++) {
    const l = layers[li];
    scores[l.node] = {};
    for (const c of candidates[l.node]) {
      const s = await score(l.node, c);
      if (restart) break;
      if (!Number.isFinite(s)) {
        throw new LowbitError("INTERNAL", `metric '${metricName}' gave ${s} for ${c}`, {
          node: l.node,
        });
      }
      scores[l.node][c] = Math.max(0, s);
      opts.progress?.(0.8 * (++done / total));
    }
    if (restart) {
      restart = false;
      li = -1;
      done = 0;
    }
  }

  // *** costs ***
  const float = forward64(graph, feeds);
  const totalParams = layers.reduce((s, l) => s + graph.initializers.get(l.weight)!.data.length, 0);
  const costs: Record<string, Record<string, Record<string, number>>> = {};
  const needLatency = (opts.budgets ?? []).some((b) => b.kind === "latency");
  if (needLatency && !opts.latency) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "a latency budget needs a latency table (measured on our kernels)",
    );
  }
  for (const l of layers) {
    costs[l.node] = {};
    const geo = {
      params: graph.initializers.get(l.weight)!.data.length,
      outChannels: l.out,
      macs: macsOf(l, graph.initializers.get(l.weight)!.data.length, float, graph, nSamples),
      shapeKey: "",
    };
    const rows = geo.macs / geo.params;
    geo.shapeKey = `${l.op} w${l.shape.join("x")} m${Math.round(rows)}`;
    for (const name of candidates[l.node]) {
      const c = cands.get(name)!;
      const cc = candidateCost(l, c);
      // "bits" budgets count what the file stores per weight: codes, scales and zero points.
      const stored = sizeBits(geo, cc);
      const entry: Record<string, number> = {
        bits: stored,
        size: stored,
        bops: bops(geo, cc),
      };
      if (opts.latency) {
        const key = latencyKey(c);
        const hit = opts.latency.table.get(geo.shapeKey, key);
        entry.latency = hit ?? await opts.latency.measure(l, c, rows);
        if (hit === undefined) opts.latency.table.set(geo.shapeKey, key, entry.latency);
      }
      costs[l.node][name] = entry;
    }
  }

  // *** budgets ***
  const limits: Record<string, number> = {};
  for (const b of opts.budgets ?? []) {
    const [r, v] = b.kind === "bits"
      ? ["bits", b.bits * totalParams]
      : b.kind === "size"
      ? ["size", b.bytes * 8]
      : b.kind === "latency"
      ? ["latency", b.ms]
      : ["bops", b.bops];
    const min = names.reduce(
      (s, n) => s + Math.min(...candidates[n].map((c) => costs[n][c][r])),
      0,
    );
    if (min > v * (1 + 1e-12)) {
      const smallest: Budget = b.kind === "bits"
        ? { kind: "bits", bits: min / totalParams }
        : b.kind === "size"
        ? { kind: "size", bytes: min / 8 }
        : b.kind === "latency"
        ? { kind: "latency", ms: min }
        : { kind: "bops", bops: min };
      throw new LowbitError(
        "INFEASIBLE",
        `the ${b.kind} budget ${
          formatBudget(b)
        } is infeasible with these candidates: the smallest feasible ${b.kind} budget is ${
          formatBudget(smallest)
        } (every layer at its cheapest candidate)`,
      );
    }
    limits[r] = Math.min(limits[r] ?? Infinity, v);
  }

  // *** the real metric, for bisect and frontier points ***
  const outName = graph.outputs[0].name;
  const msliced = sliceFeeds(opts, opts.measureSamples ?? 200);
  const mfeeds = msliced.t64;
  const mCount = msliced.sliced ? msliced.count : undefined;
  const mFloat = forward64(graph, mfeeds);
  const floatTop = argmax(mFloat.values.get(outName)!);
  const refTop = opts.labels ? Int32Array.from(Array.from(opts.labels).slice(0, mCount)) : floatTop;
  const specsOf = (a: Record<string, string>): Record<string, TensorSpec> =>
    Object.fromEntries(Object.entries(a).map(([n, c]) => [n, cands.get(c)!.spec]));
  const actsOf = (a: Record<string, string>): Record<string, TensorSpec | null> =>
    Object.fromEntries(Object.entries(a).map(([n, c]) => [n, cands.get(c)!.activation]));
  const weightName = (spec: TensorSpec): string =>
    [...cands.values()].find((c) => c.spec === spec || sameSpec(c.spec, spec))?.name ?? "";
  const quantOutput = async (
    specs: Readonly<Record<string, TensorSpec>>,
    acts?: Readonly<Record<string, TensorSpec | null>>,
  ): Promise<T64> => {
    if (!acts) {
      const overrides = new Map<string, T64>();
      for (const l of layers) {
        const spec = specs[l.node];
        if (!spec) continue;
        overrides.set(l.weight, {
          shape: [...l.shape],
          data: Float64Array.from(ctx.quantizedWeight(l.node, weightName(spec))),
        });
      }
      return forward64(graph, mfeeds, overrides, mFloat).values.get(outName)!;
    }
    // Inputs quantized too: run the executor (float32, as the exported model) with fake-quantized
    // weights and a transform hook on the inputs, scales fitted to the float inputs' min/max.
    const inits = new Map(graph.initializers);
    for (const l of layers) {
      const spec = specs[l.node];
      if (!spec) continue;
      const w = graph.initializers.get(l.weight)!;
      inits.set(l.weight, { ...w, data: ctx.quantizedWeight(l.node, weightName(spec)) });
    }
    const hooks = new Map<string, { l: Layer; entry: ReturnType<typeof fittedInputEntry> }>();
    for (const l of layers) {
      const a = acts[l.node];
      if (!a || hooks.has(l.input)) continue;
      hooks.set(l.input, {
        l,
        entry: fittedInputEntry(l, a, minMax(mFloat.values.get(l.input)!.data)),
      });
    }
    const exec = createExecutor({ ...opts.model, graph: { ...graph, initializers: inits } });
    const y = (await exec.run(f32Feeds, {
      transform: (name, t) => {
        const h = hooks.get(name);
        return h && {
          dtype: "float32",
          shape: [...t.shape],
          data: fakeQuantInput(h.l, h.entry, t.data as Float32Array, t.shape),
        };
      },
    }))[outName];
    return { shape: [...y.shape], data: Float64Array.from(y.data as Float32Array) };
  };
  // Float inputs as float32 (the exported model's type); integer ones (an edge index) as given.
  const f32Feeds: Record<string, TensorData> = Object.fromEntries(
    Object.entries(msliced.data).map(([k, t]) => [
      k,
      t.dtype === "float32" || !/^(float|bfloat)/.test(t.dtype) ? t : {
        dtype: "float32" as const,
        shape: [...t.shape],
        data: Float32Array.from(mfeeds[k].data),
      },
    ]),
  );
  const ownMeasure: AllocationMeasure = async (specs, acts) => {
    const top = argmax(await quantOutput(specs, acts));
    let hitQ = 0, hitF = 0;
    for (let i = 0; i < top.length; i++) {
      if (top[i] === refTop[i]) hitQ++;
      if (floatTop[i] === refTop[i]) hitF++;
    }
    return Promise.resolve((hitF - hitQ) / top.length);
  };
  const measure = opts.measure ?? ownMeasure;
  const measureAlloc = (a: Record<string, string>): Promise<number> =>
    withActs ? measure(specsOf(a), actsOf(a)) : measure(specsOf(a));

  // *** ties: weight formats across residual Add / Concat, activation formats across readers ***
  const ties = mergeGroups([
    ...((opts.ties ?? true) ? detectTies(graph, layers) : []),
    ...(opts.extraTies ?? []).map((t) => t.filter((n) => layers.some((l) => l.node === n))),
  ]);
  const sharedInputs = detectSharedInputs(layers);
  const oneAct = new Set([...cands.values()].map((c) => c.activationFormat)).size === 1;
  const weightPart: Record<string, string> = {}, actPart: Record<string, string> = {};
  for (const c of cands.values()) {
    weightPart[c.name] = c.weightName;
    actPart[c.name] = c.activationFormat;
  }
  // With one activation format, candidates and weight formats correspond one to one.
  const partTies: PartTie[] = oneAct ? [] : [
    ...ties.map((t) => ({ layers: t, part: weightPart })),
    ...sharedInputs.map((t) => ({ layers: t, part: actPart })),
  ];
  const problem: SearchProblem = {
    costs,
    limits,
    ties: oneAct ? ties : [],
    partTies,
    units: { bits: "bits", size: "bits", latency: "ms", bops: "BOPs" },
    measure: opts.tolerance !== undefined ? measureAlloc : undefined,
    tolerance: opts.tolerance,
  };
  let allocation = await strategy.allocate(names, candidates, scores, problem);
  opts.progress?.(0.9);

  // *** report ***
  const point = (a: Record<string, string>): FrontierPointReport => {
    const c = allocationCost(a, { costs });
    return {
      avgBits: c.bits / totalParams,
      sizeBytes: c.size / 8,
      score: allocationScore(a, scores),
      allocation: a,
    };
  };
  const frontier = paretoFrontier(
    names,
    candidates,
    scores,
    { costs, ties: problem.ties, partTies },
    "bits",
  ).map((p) => point(p.allocation));
  const sqnrOf = async (a: Record<string, string>): Promise<number> =>
    sqnrDb64(
      mFloat.values.get(outName)!.data,
      (await quantOutput(specsOf(a), withActs ? actsOf(a) : undefined)).data,
    );
  const toMeasure = Math.min(opts.measureFrontier ?? 8, frontier.length);
  const picked = new Set<number>();
  for (let k = 0; k < toMeasure; k++) {
    picked.add(toMeasure === 1 ? 0 : Math.round(k * (frontier.length - 1) / (toMeasure - 1)));
  }
  for (const i of picked) {
    frontier[i].measured = await measureAlloc(frontier[i].allocation);
    frontier[i].sqnrDb = await sqnrOf(frontier[i].allocation);
  }
  const choices: StrategyChoice[] = [];
  for (const s of ["ilp", "pareto", "greedy", "bisect"]) {
    if (!registry.strategies.has(s)) continue;
    if (s === "bisect" && opts.tolerance === undefined) continue;
    const a = s === strategyName
      ? allocation
      : await registry.strategies.get(s).allocate(names, candidates, scores, problem);
    const p = point(a);
    choices.push({ strategy: s, ...p, measured: await measureAlloc(a), sqnrDb: await sqnrOf(a) });
  }
  // Never return a point another measured one dominates (no larger, no worse, better in one)
  // while meeting every budget: the metric's proxy scores can rank two allocations wrongly.
  const fits = (a: Record<string, string>): boolean => {
    const cost = allocationCost(a, { costs });
    return Object.entries(limits).every(([r, lim]) => (cost[r] ?? 0) <= lim * (1 + 1e-12));
  };
  const own = choices.find((x) => x.strategy === strategyName);
  let best = own;
  if (own?.measured !== undefined) {
    for (const p of [...frontier, ...choices]) {
      if (p.measured === undefined || !fits(p.allocation)) continue;
      const b = best!;
      const noWorse = p.sizeBytes <= b.sizeBytes && p.measured! <= b.measured!;
      const better = p.sizeBytes < b.sizeBytes || p.measured! < b.measured!;
      if (noWorse && better) best = { ...p, strategy: strategyName } as StrategyChoice;
    }
  }
  if (best && best !== own) {
    warnings.push(
      `'${strategyName}' chose ${own!.sizeBytes.toFixed(0)} B with measured loss ` +
        `${own!.measured!.toFixed(4)}; a measured point within the budget dominates it ` +
        `(${best.sizeBytes.toFixed(0)} B, loss ${best.measured!.toFixed(4)}): taking that one`,
    );
    allocation = best.allocation;
  }
  const chosen = point(allocation);
  const c = allocationCost(allocation, { costs });
  const points = await searchPoints(opts, graph, feeds, float, nSamples, registry, strategyName);
  opts.progress?.(1);
  return {
    metric: metricName,
    warnings,
    strategy: strategyName,
    allocation,
    specs: specsOf(allocation),
    activations: actsOf(allocation),
    ...(points ? { points } : {}),
    cost: {
      avgBits: chosen.avgBits,
      sizeBytes: chosen.sizeBytes,
      bops: c.bops,
      latencyMs: c.latency,
    },
    measured: best?.measured ?? choices.find((x) => x.strategy === strategyName)?.measured,
    perLayer: layers.map((l) => ({
      node: l.node,
      weight: l.weight,
      params: graph.initializers.get(l.weight)!.data.length,
      candidate: allocation[l.node],
      activation: cands.get(allocation[l.node])!.activationFormat,
      scores: scores[l.node],
      sizeBits: Object.fromEntries(candidates[l.node].map((n) => [n, costs[l.node][n].size])),
    })),
    ties,
    sharedInputs,
    frontier: { points: frontier, choices },
  };
}

/** The activation points' allocation, when the options ask for one. */
async function searchPoints(
  opts: MixedPrecisionOptions,
  graph: Graph,
  feeds: Record<string, T64>,
  float: Tape,
  samples: number,
  registry: Registry,
  strategy: string,
): Promise<PointAllocation | undefined> {
  if (opts.pointBits === undefined || !opts.points?.length) return undefined;
  return await allocatePoints({
    graph,
    feeds,
    float,
    samples,
    points: opts.points,
    formats: opts.activationFormats ?? DEFAULT_ACT_FORMATS,
    bits: opts.pointBits,
    registry,
    strategy,
  });
}

/** MACs per sample: weight elements × output positions per sample (pixels for Conv, tokens for MatMul). */
function macsOf(l: Layer, params: number, float: Tape, graph: Graph, samples: number): number {
  const node = graph.nodes.find((n) => n.name === l.node);
  const y = node && float.values.get(node.outputs[0]);
  if (!y || samples === 0) return params;
  return params * (y.data.length / (samples * l.out));
}

function sameSpec(a: TensorSpec, b: TensorSpec): boolean {
  return a.format === b.format && JSON.stringify(a.granularity) === JSON.stringify(b.granularity) &&
    a.mode === b.mode;
}

/** Merges overlapping groups (union of any two that share a member); groups of one vanish. */
function mergeGroups(groups: readonly (readonly string[])[]): string[][] {
  const out: Set<string>[] = [];
  for (const g of groups) {
    let merged = new Set(g);
    for (let i = out.length - 1; i >= 0; i--) {
      if ([...out[i]].some((n) => merged.has(n))) {
        merged = new Set([...merged, ...out[i]]);
        out.splice(i, 1);
      }
    }
    out.push(merged);
  }
  return out.filter((g) => g.size > 1).map((g) => [...g]);
}
