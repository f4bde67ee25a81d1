/**
 * Activation points in the mixed-precision search: values that are not layer inputs (a GNN's
 * aggregation inputs and outputs, given by a plugin's search groups) whose formats the search
 * allocates under an activation budget — average bits per element over those points, the
 * activation memory LPGNAS trades against accuracy. Each point's sensitivity to a format is the
 * output error with that point alone fake-quantized (per tensor, min / max range, the rest in
 * float64), relative to the float output's energy; the registry's strategy (ILP by default)
 * picks the formats that minimise the summed error within the budget.
 *
 * @module
 */

import { getFormat, LowbitError, type Registry, type SearchProblem } from "@lowbit/core";
import type { Graph } from "@lowbit/graph";
import { forward64, type T64, type Tape } from "@lowbit/graph/autodiff";
import type { TensorSpec } from "../spec.ts";
import { fakeQuantActivation } from "../tensor_quant.ts";
import { parseActivationFormat } from "./candidates.ts";
import { fittedValueEntry, minMax, rewireReaders } from "./_act_quant.ts";

/** One activation point's scores and choice. */
export interface PointReport {
  /** The value. */
  value: string;
  /** Elements per sample. */
  elements: number;
  /** Chosen format ("none": float). */
  format: string;
  /** Relative output error Σ(y_q − y)² / Σy² per format, this point alone quantized. */
  scores: Record<string, number>;
}

/** What {@link allocatePoints} returns. */
export interface PointAllocation {
  /** Spec per point (null: float). */
  specs: Record<string, TensorSpec | null>;
  /** Per-point detail. */
  perPoint: PointReport[];
  /** Average bits per element over the points (float counts 32). */
  avgBits: number;
}

/** What {@link allocatePoints} needs. */
export interface PointSearch {
  /** The graph. */
  graph: Graph;
  /** Float64 feeds (the search samples). */
  feeds: Record<string, T64>;
  /** The float run on those feeds. */
  float: Tape;
  /** Samples in the feeds. */
  samples: number;
  /** The points (value names). */
  points: readonly string[];
  /** Candidate formats ("int4", "int8", "fp8_e4m3fn", "none", ...). */
  formats: readonly string[];
  /** Average bits per element the points may use. */
  bits: number;
  /** Registry holding the strategy. */
  registry: Registry;
  /** Strategy name (default "ilp"; `bisect` needs layers, so it falls back to ilp). */
  strategy?: string;
}

/**
 * Allocates formats to activation points under an average-bits budget.
 *
 * @param s graph, float run, points, formats, budget and registry
 * @returns the chosen spec per point, the scores and the average bits
 *
 * @example
 * ```ts
 * import { allocatePoints } from "@lowbit/pipeline/search";
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { forward64 } from "@lowbit/graph/autodiff";
 * const graph = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }],
 *   outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["h"], attrs: {} },
 *     { name: "n", op: "Neg", domain: "", inputs: ["h"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map(), valueInfo: new Map() };
 * const feeds = { x: { shape: [1, 4], data: Float64Array.of(0.1, 0.7, 1.3, 2) } };
 * const registry = createRegistry();
 * registerBuiltins(registry);
 * const r = await allocatePoints({ graph, feeds, float: forward64(graph, feeds), samples: 1, points: ["h"],
 *   formats: ["int4", "int8"], bits: 8, registry });
 * if (r.perPoint[0].format !== "int8" || r.avgBits !== 8) throw new Error(JSON.stringify(r.perPoint));
 * ```
 */
export async function allocatePoints(s: PointSearch): Promise<PointAllocation> {
  checkPointBudget(s.points, s.formats, s.bits);
  const out = s.graph.outputs[0].name;
  const y = s.float.values.get(out)!;
  let energy = 0;
  for (const v of y.data) energy += v * v;
  const specs = new Map(s.formats.map((f) => [f, parseActivationFormat(f, "--act-formats")]));
  const costs: Record<string, Record<string, Record<string, number>>> = {};
  const scores: Record<string, Record<string, number>> = {};
  const elements: Record<string, number> = {};
  for (const p of s.points) {
    const x = s.float.values.get(p);
    if (!x) {
      throw new LowbitError("INVALID_ARGUMENT", "activation point is not a value of the graph", {
        tensor: p,
      });
    }
    elements[p] = x.data.length / s.samples;
    costs[p] = {};
    scores[p] = {};
    const range = minMax(x.data);
    // Every reader of the point reads the fake-quantized copy, fed as an extra value.
    const q = `${p}\u0000q`;
    const g = rewireReaders(s.graph, p, q);
    for (const [f, spec] of specs) {
      costs[p][f] = { act: elements[p] * (spec ? getFormat(spec.format).bits : 32) };
      if (!spec) {
        scores[p][f] = 0;
        continue;
      }
      const entry = fittedValueEntry("", p, spec, range);
      const fq = fakeQuantActivation(Float32Array.from(x.data), x.shape, entry, -1);
      const tape = forward64(
        g,
        s.feeds,
        new Map([[q, { shape: [...x.shape], data: Float64Array.from(fq) }]]),
        s.float,
      );
      const yq = tape.values.get(out)!.data;
      let err = 0;
      for (let i = 0; i < yq.length; i++) err += (yq[i] - y.data[i]) ** 2;
      scores[p][f] = energy > 0 ? err / energy : err;
    }
  }
  const total = s.points.reduce((a, p) => a + elements[p], 0);
  const problem: SearchProblem = {
    costs,
    limits: { act: s.bits * total },
    units: { act: "bits" },
  };
  const name = s.strategy && s.strategy !== "bisect" ? s.strategy : "ilp";
  const candidates = Object.fromEntries(s.points.map((p) => [p, [...s.formats]]));
  const a = await s.registry.strategies.get(name).allocate(
    [...s.points],
    candidates,
    scores,
    problem,
  );
  return {
    specs: Object.fromEntries(s.points.map((p) => [p, specs.get(a[p])!])),
    perPoint: s.points.map((p) => ({
      value: p,
      elements: elements[p],
      format: a[p],
      scores: scores[p],
    })),
    avgBits: s.points.reduce((b, p) => b + costs[p][a[p]].act, 0) / total,
  };
}

/**
 * Refuses an activation budget without points, or below every format's bits (every point at its
 * cheapest format is then still too much), before any work.
 *
 * @param points the points
 * @param formats the candidate formats
 * @param bits the average bits per element allowed
 *
 * @example
 * ```ts
 * import { checkPointBudget } from "@lowbit/pipeline/search";
 * checkPointBudget(["h"], ["int4", "int8"], 4); // int4 everywhere fits
 * let refused = false;
 * try { checkPointBudget(["h"], ["int4", "int8"], 3); } catch { refused = true; }
 * if (!refused) throw new Error();
 * ```
 */
export function checkPointBudget(
  points: readonly string[],
  formats: readonly string[],
  bits: number,
): void {
  if (!points.length) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "--budget-act: this model has no activation points for the search to allocate (a " +
        "plugin's search groups name them, e.g. the GNN plugin's aggregations)",
    );
  }
  const least = Math.min(...formats.map((f) => {
    const spec = parseActivationFormat(f, "--act-formats");
    return spec ? getFormat(spec.format).bits : 32;
  }));
  if (least > bits) {
    throw new LowbitError(
      "INFEASIBLE",
      `the activation budget ${bits} bits per element is infeasible with formats ` +
        `${formats.join(",")}: the smallest is ${least} bits (every point at its cheapest format)`,
    );
  }
}
