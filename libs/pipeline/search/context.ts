/**
 * The graph side of sensitivity: implements core's `SensitivityContext` for a
 * model, with the float64 autodiff interpreter (`@lowbit/graph/autodiff`) for
 * Hessians, captured layer inputs and output divergences, and the pipeline's
 * weight fake-quantization for ‖Q(W) − W‖². Everything is computed lazily and
 * cached, so a metric pays only for what it asks.
 *
 * @module
 */

import { createRng, LowbitError, type SensitivityContext } from "@lowbit/core";
import type { Graph, Node } from "@lowbit/graph";
import {
  evalLoss,
  forward64,
  hutchinsonTrace,
  hutchinsonTraces,
  type LossProblem,
  type LossSpec,
  softmaxRows,
  type T64,
  type Tape,
  topEigenvalue,
} from "@lowbit/graph/autodiff";
import type { Layer } from "../layers.ts";
import type { PlanEntry } from "../plan.ts";
import { fakeQuantWeight, fitWeight, resolveWeightGranularity } from "../tensor_quant.ts";
import type { Candidate } from "./candidates.ts";
import { fakeQuantInput, fittedInputEntry, minMax, rewireReaders } from "./_act_quant.ts";

/** Which loss the Hessian metrics differentiate. */
export type SearchLoss = "cross-entropy" | "kl";

/** Options of {@link createSensitivityContext}. */
export interface SensitivityContextOptions {
  /** The (prepared) graph. */
  graph: Graph;
  /** Its quantizable layers. */
  layers: readonly Layer[];
  /** Candidates by name. */
  candidates: ReadonlyMap<string, Candidate>;
  /** Calibration inputs (float64), already cut to the samples to use. */
  feeds: Readonly<Record<string, T64>>;
  /** One class per calibration sample, if known. */
  labels?: ArrayLike<number>;
  /** Loss for Hessians: default cross-entropy with labels, KL to the float outputs without. */
  loss?: SearchLoss;
  /** Hutchinson probes (default 32; per layer, stopping early at 10% standard error, in "per-layer" mode). */
  probes?: number;
  /**
   * "per-layer" (default): Rademacher probes on one layer at a time, one gradient per probe and
   * layer; "joint": probes on all layers at once, one gradient per probe, but cross-layer terms add
   * variance that swamps layers with small curvature (on the digits ViT it floored three layers).
   */
  traceMode?: "per-layer" | "joint";
  /** Power-iteration steps (default 20). */
  powerIters?: number;
  /** Seed of the probes (default 0). */
  seed?: number;
}

/** The context plus the quantized weights it made, for reuse. */
export interface GraphSensitivityContext extends SensitivityContext {
  /** Fake-quantized weight of a layer under a candidate (file layout). */
  quantizedWeight(layer: string, candidate: string): Float32Array;
  /** The layer record by node name. */
  layer(node: string): Layer;
}

/**
 * Builds the sensitivity context of a model on calibration data.
 *
 * @param opts graph, layers, candidates, data, labels, loss
 * @returns the context (lazy, cached)
 *
 * @example
 * ```ts
 * import { createSensitivityContext, parseCandidate } from "@lowbit/pipeline/search";
 * import { scanLayers } from "@lowbit/pipeline";
 * const graph = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "fc", op: "Gemm", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: { transB: { kind: "int" as const, value: 1 } } }],
 *   initializers: new Map([["W", { dtype: "float32" as const, shape: [2, 2], data: Float32Array.of(0.3, -0.7, 0.1, 0.9) }]]),
 *   valueInfo: new Map() };
 * const c = parseCandidate("int2/channel");
 * const ctx = createSensitivityContext({ graph, layers: scanLayers(graph).layers, candidates: new Map([[c.name, c]]),
 *   feeds: { x: { shape: [1, 2], data: Float64Array.of(1, 2) } } });
 * if (!(Number(ctx.quantError("fc", "int2/channel")) > 0) || ctx.inputEnergy!("fc") !== 2.5) throw new Error();
 * ```
 */
export function createSensitivityContext(opts: SensitivityContextOptions): GraphSensitivityContext {
  const { graph, candidates, feeds } = opts;
  const byNode = new Map(opts.layers.map((l) => [l.node, l]));
  const hasLabels = opts.labels !== undefined;
  const lossKind = opts.loss ?? (hasLabels ? "cross-entropy" : "kl");
  if (lossKind === "cross-entropy" && !hasLabels) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the cross-entropy loss needs labels (--labels FILE); without labels use the KL loss to the float outputs",
    );
  }
  const out = graph.outputs[0]?.name;
  if (!out) throw new LowbitError("INVALID_ARGUMENT", "graph has no outputs");

  let baseTape: Tape | undefined;
  const base = (): Tape => (baseTape ??= forward64(graph, feeds));
  let target: T64 | undefined;
  const floatProbs = (): T64 => (target ??= softmaxRows(base().values.get(out)!));
  let problem: LossProblem | undefined;
  const lossProblem = (): LossProblem => {
    if (!problem) {
      const loss: LossSpec = lossKind === "cross-entropy"
        ? { kind: "cross-entropy", labels: opts.labels! }
        : { kind: "kl", target: floatProbs() };
      problem = { graph, feeds, output: out, loss };
    }
    return problem;
  };

  const layerOf = (node: string): Layer => {
    const l = byNode.get(node);
    if (!l) throw new LowbitError("UNKNOWN_NAME", "not a quantizable layer", { node });
    return l;
  };
  const candidateOf = (node: string, cand: string): Candidate => {
    const c = candidates.get(cand);
    if (!c) throw new LowbitError("UNKNOWN_NAME", `unknown candidate '${cand}'`, { node });
    return c;
  };
  const qCache = new Map<string, Float32Array>();
  const quantizedWeight = (node: string, cand: string): Float32Array => {
    const c = candidateOf(node, cand);
    const key = `${node}\u0000${c.weightName}`;
    let q = qCache.get(key);
    if (!q) {
      const l = layerOf(node);
      const w = graph.initializers.get(l.weight)!.data as Float32Array;
      const entry: PlanEntry = {
        node,
        value: l.weight,
        role: "weight",
        format: c.spec.format,
        granularity: resolveWeightGranularity(l, c.spec.granularity, c.spec.format),
        mode: c.spec.mode,
      };
      q = fakeQuantWeight(l, w, fitWeight(l, w, entry));
      qCache.set(key, q);
    }
    return q;
  };

  let traces: Record<string, number> | undefined;
  const perLayerTrace = new Map<string, number>();
  const eig = new Map<string, number>();
  const energy = new Map<string, number>();
  const divs = new Map<string, number>();
  const neigh = neighbourMap(graph, opts.layers);
  const qInputs = new Map<string, T64>();
  /** The layer's float input, fake-quantized with the candidate's activation format. */
  const quantizedInput = (l: Layer, c: Candidate): T64 => {
    const key = `${l.node}\u0000${c.activationFormat}`;
    let q = qInputs.get(key);
    if (!q) {
      const x = base().values.get(l.input);
      if (!x) throw new LowbitError("INTERNAL", "layer input was not computed", { node: l.node });
      const entry = fittedInputEntry(l, c.activation!, minMax(x.data));
      q = {
        shape: [...x.shape],
        data: Float64Array.from(fakeQuantInput(l, entry, x.data, x.shape)),
      };
      qInputs.set(key, q);
    }
    return q;
  };
  const actErr = new Map<string, number>();
  const actDiv = new Map<string, number>();
  const rewired = new Map<string, Graph>();

  return {
    hasLabels,
    layer: layerOf,
    quantizedWeight,
    paramCount: (node) => graph.initializers.get(layerOf(node).weight)!.data.length,
    quantError(node, cand) {
      const w = graph.initializers.get(layerOf(node).weight)!.data as Float32Array;
      const q = quantizedWeight(node, cand);
      let s = 0;
      for (let i = 0; i < w.length; i++) s += (q[i] - w[i]) ** 2;
      return s;
    },
    hessianTrace(node) {
      if (opts.traceMode === "joint") {
        if (!traces) {
          const names = opts.layers.map((l) => l.weight);
          const est = hutchinsonTraces(
            lossProblem(),
            names,
            opts.probes ?? 32,
            createRng(opts.seed ?? 0),
          );
          // NOTE: the loss Hessians here are PSD at the float weights (KL at its minimum; cross-entropy
          // of a trained model is close), so a negative estimate is Monte-Carlo noise: floor it at a
          // thousandth of the mean magnitude so that no layer looks free to quantize.
          const mean = opts.layers.reduce((s, l) => s + Math.abs(est[l.weight].trace), 0) /
            opts.layers.length;
          traces = Object.fromEntries(
            opts.layers.map((l) => [l.node, Math.max(est[l.weight].trace, 1e-3 * mean)]),
          );
        }
        return traces[layerOf(node).node];
      }
      let t = perLayerTrace.get(node);
      if (t === undefined) {
        const idx = opts.layers.findIndex((l) => l.node === node);
        const est = hutchinsonTrace(lossProblem(), layerOf(node).weight, {
          rng: createRng((opts.seed ?? 0) + 1000 + idx),
          minProbes: Math.min(8, opts.probes ?? 32),
          maxProbes: opts.probes ?? 32,
          relTol: 0.1,
        });
        t = Math.max(est.trace, 0);
        perLayerTrace.set(node, t);
      }
      return t;
    },
    topEigenvalue(node) {
      let v = eig.get(node);
      if (v === undefined) {
        const idx = opts.layers.findIndex((l) => l.node === node);
        v = topEigenvalue(lossProblem(), layerOf(node).weight, {
          maxIters: opts.powerIters ?? 20,
          relTol: 1e-3,
          rng: createRng((opts.seed ?? 0) + 1 + idx),
        }).value;
        eig.set(node, v);
      }
      return v;
    },
    inputEnergy(node) {
      let e = energy.get(node);
      if (e === undefined) {
        const x = base().values.get(layerOf(node).input);
        if (!x) throw new LowbitError("INTERNAL", "layer input was not computed", { node });
        let s = 0;
        for (const v of x.data) s += v * v;
        e = s / x.data.length;
        energy.set(node, e);
      }
      return e;
    },
    outputDivergence(quantized) {
      const key = Object.entries(quantized).sort().map(([l, c]) => `${l}=${c}`).join("|");
      let d = divs.get(key);
      if (d === undefined) {
        const overrides = new Map<string, T64>();
        for (const [node, cand] of Object.entries(quantized)) {
          const l = layerOf(node);
          overrides.set(l.weight, {
            shape: [...l.shape],
            data: Float64Array.from(quantizedWeight(node, cand)),
          });
        }
        const tape = forward64(graph, feeds, overrides, base());
        d = evalLoss(tape.values.get(out)!, { kind: "kl", target: floatProbs() }).loss;
        divs.set(key, d);
      }
      return d;
    },
    neighbours: (node) => neigh.get(layerOf(node).node) ?? [],
    activationError(node, cand) {
      const l = layerOf(node), c = candidateOf(node, cand);
      if (!c.activation) return 0;
      const key = `${node}\u0000${c.activationFormat}`;
      let e = actErr.get(key);
      if (e === undefined) {
        const x = base().values.get(l.input)!, q = quantizedInput(l, c);
        const dx: T64 = { shape: [...x.shape], data: q.data.map((v, i) => v - x.data[i]) };
        // The layer alone, bias dropped: its output is W·(Q(X) − X).
        const n = graph.nodes.find((m) => m.name === node)!;
        const dxName = `${l.input}\u0000dx`;
        const single: Graph = {
          name: `${graph.name}:${node}`,
          inputs: [{ name: dxName, dtype: "float32" }],
          outputs: [{ name: n.outputs[0], dtype: "float32" }],
          nodes: [{
            ...n,
            inputs: n.inputs.map((i) => (i === l.input ? dxName : i === l.weight ? i : "")),
            outputs: [n.outputs[0]],
          }],
          initializers: new Map([[l.weight, graph.initializers.get(l.weight)!]]),
          valueInfo: new Map(),
        };
        const dy = forward64(single, { [dxName]: dx }).values.get(n.outputs[0])!;
        let s = 0;
        for (const v of dy.data) s += v * v;
        e = s / (dy.data.length / l.out);
        actErr.set(key, e);
      }
      return e;
    },
    activationDivergence(node, cand) {
      const l = layerOf(node), c = candidateOf(node, cand);
      if (!c.activation) return 0;
      const key = `${node}\u0000${c.activationFormat}`;
      let d = actDiv.get(key);
      if (d === undefined) {
        // Every consumer of the input reads the quantized copy, fed as an extra value.
        const qName = `${l.input}\u0000q`;
        let g = rewired.get(node);
        if (!g) {
          g = rewireReaders(graph, l.input, qName);
          rewired.set(node, g);
        }
        const tape = forward64(g, feeds, new Map([[qName, quantizedInput(l, c)]]), base());
        d = evalLoss(tape.values.get(out)!, { kind: "kl", target: floatProbs() }).loss;
        actDiv.set(key, d);
      }
      return d;
    },
  };
}

/**
 * Data-flow neighbours: for each layer, the nearest layers upstream of its
 * input (walking back through non-layer nodes) and, symmetrically, downstream.
 */
function neighbourMap(graph: Graph, layers: readonly Layer[]): Map<string, string[]> {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const isLayer = new Set(layers.map((l) => l.node));
  const out = new Map<string, Set<string>>(layers.map((l) => [l.node, new Set()]));
  for (const l of layers) {
    const seen = new Set<string>();
    const stack = [l.input];
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = producer.get(v);
      if (!p) continue;
      if (isLayer.has(p.name)) {
        out.get(l.node)!.add(p.name);
        out.get(p.name)!.add(l.node);
        continue;
      }
      for (const i of p.inputs) if (i && !graph.initializers.has(i)) stack.push(i);
    }
  }
  return new Map([...out].map(([k, v]) => [k, [...v]]));
}
