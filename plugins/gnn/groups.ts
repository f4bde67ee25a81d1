/**
 * Search groups for `--preset mixed`: the layers of one message-passing layer's update MLP
 * (layers joined only through element-wise ops, no aggregation between them) share a weight
 * format, so the search allocates bits per GNN layer and component (LPGNAS-style), not per
 * Gemm of an MLP. A classifier right after the last MLP (through a Relu) joins that MLP's group.
 *
 * @module
 */

import {
  type GraphView,
  type SearchGroupProvider,
  type SearchGroups,
  valueLinks,
} from "@lowbit/core";
import { findAggregations } from "./detect.ts";

const ELEMENTWISE = new Set(["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Elu", "Identity"]);

/**
 * Ties between the given layers that follow each other through element-wise ops only.
 *
 * @param g the graph
 * @param layers the layers' node names
 * @returns the ties (groups of two or more layers)
 *
 * @example
 * ```ts
 * import { mlpTies } from "@lowbit/gnn";
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile("fixtures/gnn/gin_dense.onnx");
 * const ties = mlpTies(m.graph, m.graph.nodes.filter((n) => n.op === "Gemm").map((n) => n.name));
 * // each GIN layer's MLP; the classifier follows the last MLP through a Relu, so it joins it
 * if (JSON.stringify(ties) !== JSON.stringify([["/mlp1/mlp1.0/Gemm", "/mlp1/mlp1.2/Gemm"],
 *   ["/mlp2/mlp2.0/Gemm", "/mlp2/mlp2.2/Gemm", "/out/Gemm"]])) throw new Error(JSON.stringify(ties));
 * ```
 */
export function mlpTies(g: GraphView, layers: readonly string[]): string[][] {
  const { consumers } = valueLinks(g);
  const isLayer = new Set(layers);
  const parent = new Map<string, string>(layers.map((l) => [l, l]));
  const find = (x: string): string => (parent.get(x) === x ? x : find(parent.get(x)!));
  for (const n of g.nodes) {
    if (!isLayer.has(n.name)) continue;
    const todo = [...n.outputs];
    while (todo.length) {
      for (const c of consumers.get(todo.pop()!) ?? []) {
        if (isLayer.has(c.name)) parent.set(find(c.name), find(n.name));
        else if (ELEMENTWISE.has(c.op)) todo.push(...c.outputs);
      }
    }
  }
  const groups = new Map<string, string[]>();
  for (const l of layers) groups.set(find(l), [...(groups.get(find(l)) ?? []), l]);
  return [...groups.values()].filter((g) => g.length > 1);
}

/**
 * The aggregation points that are not layer inputs (aggregation inputs and outputs): the
 * mixed search allocates their formats under `--budget-act`; the layer inputs among the
 * marked points take the search's per-layer `--act-formats` choice.
 *
 * @param g the graph
 * @param layers the layers' node names
 * @returns the values, in graph order
 *
 * @example
 * ```ts
 * import { aggregationPoints } from "@lowbit/gnn";
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile("fixtures/gnn/gin_edges.onnx");
 * const gemms = m.graph.nodes.filter((n) => n.op === "Gemm").map((n) => n.name);
 * // x and the first scatter's output, the hidden features and the second scatter's output
 * if (aggregationPoints(m.graph, gemms).length !== 4) throw new Error();
 * ```
 */
export function aggregationPoints(g: GraphView, layers: readonly string[]): string[] {
  const isLayer = new Set(layers);
  const layerInputs = new Set(
    g.nodes.filter((n) => isLayer.has(n.name)).map((n) => n.inputs[0]),
  );
  const out: string[] = [];
  for (const a of findAggregations(g)) {
    for (const v of [a.input, a.output]) {
      if (!layerInputs.has(v) && !out.includes(v)) out.push(v);
    }
  }
  return out;
}

/** The search-group provider record. */
export const gnnSearchGroups: SearchGroupProvider = {
  name: "gnn-layers",
  groups: (g, layers): SearchGroups => ({
    ties: mlpTies(g, layers),
    points: aggregationPoints(g, layers),
  }),
};
