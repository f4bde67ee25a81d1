/**
 * The folds `quantize` applies to a float graph before it looks for layers, shared with
 * `lowbit inspect` so that both list the same layers.
 *
 * @module
 */

import { foldBatchNorm, foldConstants, type Graph } from "@lowbit/graph";
import { foldSubgraphConstants } from "./subgraph_fold.ts";

/**
 * Folds what `quantize` folds: Constant nodes into initializers (paddle2onnx exports hold their
 * weights in them, e.g. PP-OCR), weights computed from constants inside If / Loop bodies into the
 * bodies' initializers (an LSTMCell export's gate slices), and, unless asked not to,
 * BatchNormalization into the layer before it.
 *
 * @param graph the graph
 * @param opts `batchNorm: false` keeps BatchNormalization nodes
 * @returns the folded graph
 *
 * @example
 * ```ts
 * import { prepareFolds } from "@lowbit/pipeline";
 * import { modelOf, nodeOf } from "@lowbit/graph";
 * const w = { dtype: "float32" as const, shape: [2, 2], data: Float32Array.of(1, 0, 0, 1) };
 * const m = modelOf({
 *   nodes: [
 *     nodeOf("c", "Constant", [], ["w"], { value: { kind: "tensor", value: w } }),
 *     nodeOf("fc", "MatMul", ["x", "w"], ["y"]),
 *   ],
 *   inputs: [{ name: "x", dtype: "float32", shape: [1, 2] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 * });
 * const g = prepareFolds(m.graph);
 * if (!g.initializers.has("w") || g.nodes.length !== 1) throw new Error();
 * ```
 */
export function prepareFolds(graph: Graph, opts: { batchNorm?: boolean } = {}): Graph {
  let g = graph;
  if (g.nodes.some((n) => n.op === "Constant")) g = foldConstants(g);
  g = foldSubgraphConstants(g);
  if (opts.batchNorm ?? true) g = foldBatchNorm(g);
  return g;
}
