/**
 * Quantization points: where a quantizer may act on a graph.
 *
 * @module
 */

import type { Graph } from "../ir.ts";
import { attrInt } from "./_const_eval.ts";

/** Whether a quantization point is a constant weight or a runtime activation. */
export type QuantRole = "weight" | "activation";

/** One place a tensor may be quantized. */
export interface QuantSite {
  /** Consuming node (for marked values: the producing node, "" for graph inputs / initializers). */
  node: string;
  /** Operator of `node` ("" when there is none). */
  op: string;
  /** Input index at `node`; -1 for a marked value (the value as produced). */
  inputIndex: number;
  /** Value name. */
  value: string;
  /** Weight (initializer or Constant output) or activation. */
  role: QuantRole;
  /**
   * Output-channel axis of a weight, for per-channel quantization: Conv 0,
   * ConvTranspose 1 (the per-group output channel), Gemm B 0 with transB else 1,
   * MatMul B its last axis. Undefined for activations.
   */
  axis?: number;
  /** Who marked it (the mark's `by`), for points added through marks. */
  markedBy?: string;
}

/** A plugin's request to quantize a value that is not a standard point (e.g. a Softmax output). */
export interface QuantMark {
  /** Value name. */
  value: string;
  /** Role; defaults to "weight" for constants, "activation" otherwise. */
  role?: QuantRole;
  /** Per-channel axis, if any. */
  axis?: number;
  /** Who asked (plugin name), copied to `QuantSite.markedBy`. */
  by?: string;
}

/** Computes marks from a graph (how a plugin marks tensors by pattern, e.g. every Softmax output). */
export type QuantMarker = (graph: Graph) => QuantMark[];

/** Options of {@link quantPoints}. */
export interface QuantPointOptions {
  /** Extra values to quantize: marks, or functions computing marks from the graph. */
  marks?: readonly (QuantMark | QuantMarker)[];
}

/**
 * Lists the quantization points of a graph: both inputs of every MatMul, the
 * A and B inputs of every Gemm, the X and W inputs of every Conv and
 * ConvTranspose (biases are not points), in node order, then every marked
 * value (deduplicated by value name among marks).
 *
 * @param graph the graph
 * @param opts plugin marks
 * @returns the points
 *
 * @example
 * ```ts
 * import { quantPoints, type Graph } from "@lowbit/graph";
 * const g: Graph = { name: "g", valueInfo: new Map(),
 *   initializers: new Map([["w", { dtype: "float32", shape: [4, 2], data: new Float32Array(8) }]]),
 *   inputs: [{ name: "x", dtype: "float32", shape: [1, 4] }],
 *   outputs: [{ name: "p", dtype: "float32" }],
 *   nodes: [
 *     { name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} },
 *     { name: "sm", op: "Softmax", domain: "", inputs: ["y"], outputs: ["p"], attrs: {} },
 *   ] };
 * const softmaxOutputs = (gr: Graph) =>
 *   gr.nodes.filter((n) => n.op === "Softmax").map((n) => ({ value: n.outputs[0], by: "vit" }));
 * const pts = quantPoints(g, { marks: [softmaxOutputs] });
 * if (pts.map((p) => `${p.value}:${p.role}:${p.axis ?? ""}`).join() !== "x:activation:,w:weight:1,p:activation:") {
 *   throw new Error();
 * }
 * ```
 */
export function quantPoints(graph: Graph, opts: QuantPointOptions = {}): QuantSite[] {
  const constants = new Set<string>(graph.initializers.keys());
  const producer = new Map<string, { name: string; op: string }>();
  for (const n of graph.nodes) {
    if (n.op === "Constant") { for (const o of n.outputs) constants.add(o); }
    for (const o of n.outputs) producer.set(o, { name: n.name, op: n.op });
  }
  const rank = (v: string): number | undefined =>
    graph.initializers.get(v)?.shape.length ?? graph.valueInfo.get(v)?.shape?.length ??
      constRank(graph, v);
  const points: QuantSite[] = [];
  for (const n of graph.nodes) {
    if (n.domain !== "" && n.domain !== "ai.onnx") continue;
    let idx: number[];
    let wAxis: (i: number, v: string) => number | undefined;
    switch (n.op) {
      case "Conv":
        idx = [0, 1];
        wAxis = (i) => (i === 1 ? 0 : undefined);
        break;
      case "ConvTranspose":
        idx = [0, 1];
        wAxis = (i) => (i === 1 ? 1 : undefined);
        break;
      case "Gemm":
        idx = [0, 1];
        wAxis = (i) =>
          i === 1 ? (attrInt(n, "transB", 0) ? 0 : 1) : attrInt(n, "transA", 0) ? 1 : 0;
        break;
      case "MatMul":
        idx = [0, 1];
        wAxis = (i, v) => {
          const r = rank(v);
          return r === undefined ? undefined : i === 1 ? Math.max(r - 1, 0) : Math.max(r - 2, 0);
        };
        break;
      default:
        continue;
    }
    for (const i of idx) {
      const v = n.inputs[i];
      if (!v) continue;
      const weight = constants.has(v);
      const p: QuantSite = {
        node: n.name,
        op: n.op,
        inputIndex: i,
        value: v,
        role: weight ? "weight" : "activation",
      };
      if (weight) {
        const a = wAxis(i, v);
        if (a !== undefined) p.axis = a;
      }
      points.push(p);
    }
  }
  const seen = new Set<string>();
  for (const m of opts.marks ?? []) {
    for (const mark of typeof m === "function" ? m(graph) : [m]) {
      if (seen.has(mark.value)) continue;
      seen.add(mark.value);
      const prod = producer.get(mark.value);
      const p: QuantSite = {
        node: prod?.name ?? "",
        op: prod?.op ?? "",
        inputIndex: -1,
        value: mark.value,
        role: mark.role ?? (constants.has(mark.value) ? "weight" : "activation"),
      };
      if (mark.axis !== undefined) p.axis = mark.axis;
      if (mark.by !== undefined) p.markedBy = mark.by;
      points.push(p);
    }
  }
  return points;
}

function constRank(graph: Graph, v: string): number | undefined {
  for (const n of graph.nodes) {
    if (n.op === "Constant" && n.outputs[0] === v && n.attrs.value?.kind === "tensor") {
      return n.attrs.value.value.shape.length;
    }
  }
  return undefined;
}
