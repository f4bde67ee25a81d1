/**
 * The `--preset mixed` hook: adapts {@link searchMixedPrecision} to the
 * pipeline's {@link MixedSearch} signature, reading the command-line options
 * (`budget`, `budget-size`, `budget-latency`, `budget-bops`, `budget-act`, `tolerance`,
 * `metric`, `search`, `candidates`, `act-formats`, `loss`, `samples`, `seed`) and measuring
 * `bisect` steps with the pipeline's own measure (top-1 agreement with the
 * float model on calibration data).
 *
 * The pipeline's context carries the layers but not the model, which the
 * Hessian metrics differentiate, so the hook is made from the model and the
 * calibration data: `createMixedSearch({ model, calib })`.
 *
 * @module
 */

import { loadLatencyTable, LowbitError, saveLatencyTable, type SearchGroups } from "@lowbit/core";
import { measureLayerLatency } from "./latency.ts";
import { foldBatchNorm, type Model, type TensorData } from "@lowbit/graph";
import type { Dataset } from "../dataset.ts";
import type { MixedSearch, MixedSearchChoice, MixedSearchContext } from "../presets.ts";
import { type Budget, parseBudget, parseTolerance } from "./budget.ts";
import { type MixedPrecisionResult, searchMixedPrecision } from "./search.ts";
import { parseActivationFormat } from "./candidates.ts";
import type { SearchLoss } from "./context.ts";

/** What {@link createMixedSearch} needs besides the pipeline's context. */
export interface MixedSearchDeps {
  /** The float model, as given to `quantize` (BatchNormalization is folded here as the pipeline does). */
  model: Model;
  /**
   * Calibration data; its `whole` inputs (a GNN's whole graph, a constant) are never cut to
   * samples and `axes` say which axis is the sample axis.
   */
  calib: Dataset;
  /** One class per calibration sample, if known (enables the cross-entropy loss). */
  labels?: TensorData | ArrayLike<number>;
  /** Fold BatchNormalization before searching (default true, as `quantize` does). */
  foldBatchNorm?: boolean;
  /** Latency cache file (default `.lowbit-cache/latency.json`). */
  latencyCache?: string;
  /** Receives the full result (allocation, per-layer scores, frontier) for the plan and report. */
  onResult?: (result: MixedPrecisionResult) => void;
}

/** Parsed search options. */
export interface MixedSearchSettings {
  /** Budgets. */
  budgets: Budget[];
  /** Tolerance (fraction), for bisect. */
  tolerance?: number;
  /** Metric name. */
  metric: string;
  /** Strategy name. */
  strategy: string;
  /** Candidate names, if given. */
  candidates?: string[];
  /** Activation formats paired with the candidates (`act-formats`, e.g. "int8,fp8_e4m3fn,none"), if given. */
  activationFormats?: string[];
  /** Loss for Hessian metrics, if given. */
  loss?: SearchLoss;
  /** Calibration samples for the metrics. */
  samples?: number;
  /** Seed. */
  seed?: number;
  /** Tie layers meeting in a residual Add / Concat (default true; `ties: "false"` turns it off). */
  ties: boolean;
  /** Average bits per element of the activation points (`budget-act`, e.g. "6bits"), if given. */
  pointBits?: number;
}

/**
 * Reads the search options as the CLI passes them (strings by flag name).
 *
 * @param o e.g. `{ budget: "4.5bits", metric: "hawq-v2", search: "ilp" }`
 * @returns the settings (defaults: metric hawq-v2, search ilp, or bisect when only a tolerance is given)
 *
 * @example
 * ```ts
 * import { parseMixedOptions } from "@lowbit/pipeline/search";
 * const s = parseMixedOptions({ "budget-size": "6KB" });
 * if (s.budgets[0].kind !== "size" || s.strategy !== "ilp") throw new Error();
 * const t = parseMixedOptions({ tolerance: "1%" });
 * if (t.tolerance !== 0.01 || t.strategy !== "bisect") throw new Error();
 * ```
 */
export function parseMixedOptions(o: Readonly<Record<string, string>>): MixedSearchSettings {
  const budgets: Budget[] = [];
  const want = (flag: string, kind: Budget["kind"]): void => {
    if (o[flag] === undefined) return;
    const b = parseBudget(
      /^[0-9.e+-]+$/i.test(o[flag].trim()) ? o[flag] + defaultUnit(kind) : o[flag],
    );
    if (b.kind !== kind) {
      throw new LowbitError("INVALID_ARGUMENT", `--${flag} ${o[flag]}: expected a ${kind} budget`);
    }
    budgets.push(b);
  };
  if (o.budget !== undefined) {
    budgets.push(parseBudget(/^[0-9.]+$/.test(o.budget.trim()) ? o.budget + "bits" : o.budget));
  }
  want("budget-size", "size");
  want("budget-latency", "latency");
  want("budget-bops", "bops");
  const tolerance = o.tolerance !== undefined ? parseTolerance(o.tolerance) : undefined;
  if (budgets.length === 0 && tolerance === undefined) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the mixed preset needs a budget (--budget 4.5bits | --budget-size 200KB | --budget-latency 3ms | --budget-bops 5MBOPs) or --tolerance 1%",
    );
  }
  const strategy = o.search ?? (budgets.length === 0 ? "bisect" : "ilp");
  if (strategy === "bisect" && tolerance === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "--search bisect needs --tolerance (e.g. 1%)");
  }
  const loss = o.loss as SearchLoss | undefined;
  if (loss !== undefined && loss !== "cross-entropy" && loss !== "kl") {
    throw new LowbitError("INVALID_ARGUMENT", `--loss ${loss}: expected cross-entropy or kl`);
  }
  return {
    budgets,
    tolerance,
    metric: o.metric ?? "hawq-v2",
    strategy,
    candidates: o.candidates?.split(",").map((s) => s.trim()).filter(Boolean),
    activationFormats: o["act-formats"] !== undefined ? actFormats(o["act-formats"]) : undefined,
    loss,
    samples: o.samples ? Number(o.samples) : undefined,
    seed: o.seed ? Number(o.seed) : undefined,
    ties: o.ties !== "false",
    ...(o["budget-act"] !== undefined ? { pointBits: actBudget(o["budget-act"]) } : {}),
  };
}

function actBudget(text: string): number {
  const b = parseBudget(/^[0-9.e+-]+$/i.test(text.trim()) ? text + "bits" : text);
  if (b.kind !== "bits" || !(b.bits > 0 && b.bits <= 32)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--budget-act ${text}: expected average bits per activation element in (0, 32] (e.g. 6bits)`,
    );
  }
  return b.bits;
}

function actFormats(text: string): string[] {
  const list = text.split(",").map((s) => s.trim());
  const bad = list.findIndex((s) => s === "");
  if (bad >= 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--act-formats '${text}': empty format at position ${bad + 1} (e.g. int8,fp8_e4m3fn,none)`,
    );
  }
  for (const a of list) parseActivationFormat(a, `--act-formats '${text}'`);
  return list;
}

function defaultUnit(kind: Budget["kind"]): string {
  return kind === "size" ? "B" : kind === "latency" ? "ms" : "BOPs";
}

function labelArray(l: TensorData | ArrayLike<number> | undefined): number[] | undefined {
  if (l === undefined) return undefined;
  const d = "dtype" in l ? (l.data as ArrayLike<number | bigint>) : l;
  return Array.from(d as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * Makes the `--preset mixed` hook for one model and its calibration data.
 *
 * @param deps model, calibration data, optional labels and a result callback
 * @returns the hook to pass as `quantize({ mixedSearch })`
 *
 * @example
 * ```ts
 * import { createMixedSearch } from "@lowbit/pipeline/search";
 * import { quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/digits/mlp.onnx");
 * const calib = { inputs: { x: readNpy(await Deno.readFile("fixtures/digits/calib_x.npy")) }, count: 200 };
 * let bits = 0;
 * const mixedSearch = createMixedSearch({ model, calib, onResult: (r) => (bits = r.cost.avgBits) });
 * await quantize({ model, calib, preset: "mixed", mixedSearch,
 *   mixedOptions: { budget: "6bits", metric: "layer-hessian", candidates: "int8/channel,int4/channel", samples: "16" } });
 * if (bits === 0 || bits > 6) throw new Error(String(bits));
 * ```
 */
export function createMixedSearch(deps: MixedSearchDeps): MixedSearch {
  return async (ctx: MixedSearchContext): Promise<MixedSearchChoice> => {
    const s = parseMixedOptions(ctx.options);
    // The model quantize() prepared (constants folded too), else the given one prepared here.
    const model: Model = ctx.model ??
      (deps.foldBatchNorm ?? true
        ? { ...deps.model, graph: foldBatchNorm(deps.model.graph) }
        : deps.model);
    const table = s.budgets.some((b) => b.kind === "latency")
      ? await loadLatencyTable(deps.latencyCache)
      : undefined;
    const result = await searchMixedPrecision({
      model,
      calib: deps.calib.inputs,
      whole: deps.calib.whole,
      axes: deps.calib.axes,
      labels: labelArray(deps.labels),
      candidates: s.candidates,
      activationFormats: s.activationFormats,
      metric: s.metric,
      strategy: s.strategy,
      budgets: s.budgets,
      tolerance: s.tolerance,
      loss: s.loss,
      samples: s.samples,
      seed: s.seed,
      ties: s.ties,
      extraTies: (ctx.groups ?? []).flatMap((g) => (g.ties ?? []).map((t) => [...t])),
      layerCandidates: Object.assign({}, ...(ctx.groups ?? []).map((g) => g.candidates ?? {})),
      points: groupPoints(ctx.groups),
      pointBits: s.pointBits,
      measure: async (specs, acts) => 1 - await ctx.measure(specs, acts),
      progress: (f) => ctx.progress(f),
      latency: table ? { table, measure: measureLayerLatency } : undefined,
    });
    if (table) await saveLatencyTable(table);
    for (const l of ctx.layers) {
      if (!(l.node in result.specs)) {
        throw new LowbitError("INTERNAL", "the search did not see this layer (model mismatch?)", {
          node: l.node,
        });
      }
    }
    deps.onResult?.(result);
    return {
      weights: result.specs,
      activations: result.activations,
      ...(result.points ? { points: result.points.specs } : {}),
      warnings: result.warnings,
    };
  };
}

/**
 * The activation points named by a plugin's search groups, once each.
 *
 * @param groups the search groups of the registered providers
 * @returns the points' values
 *
 * @example
 * ```ts
 * import { groupPoints } from "@lowbit/pipeline/search";
 * if (groupPoints([{ points: ["a", "b"] }, { points: ["b"] }]).join() !== "a,b") throw new Error();
 * ```
 */
export function groupPoints(groups: readonly SearchGroups[] | undefined): string[] {
  return [...new Set((groups ?? []).flatMap((g) => [...(g.points ?? [])]))];
}
