/**
 * Self-loops outside the quantized sum of a dense aggregation. A GCN's normalised adjacency
 * `Â = D^-½(A + I)D^-½` has a nonzero diagonal: `Â·Z` is the sum over a node's neighbours plus its
 * own row times `Â_ii` — a term that is no message, only the node's features (already on the
 * input point's grid) scaled per node. An edge-list export of the same layer often adds that
 * term after the scatter (`scatter_add(norm · Z[src]) + Z / (d + 1)`), so there only the
 * neighbours' sum passes through the int4 output point, and the dense export of the same model
 * quantized worse (gcn2: 20.5 against 21.6 dB).
 *
 * The stage `gnn-self-loops` (after `gnn-index-add`; `--gnn-self-loops split`, the default)
 * rewrites each dense sum aggregation `Y = MatMul(adj, Z)` whose calibration adjacency has a
 * nonzero diagonal and whose output is not itself a layer's input (aggregating first, `(Â·X)·W`
 * quantizes `Y` once as the layer's input; split, it would be quantized twice) into
 *
 * ```text
 * Y_all = MatMul(adj, Z)                               (the aggregation, as exported)
 * S     = MatMul(Mul(adj, EyeLike(adj)), Z)            (diag(adj) · Z, row by row: exact)
 * Y_nb  = Sub(Y_all, S)                                (the neighbours' sum: the output point)
 * Y     = Add(Y_nb, S)
 * ```
 *
 * The float model computes the same `Y` up to one rounding; the detection then takes `Y_nb` as
 * the aggregation's output, so the dense export gets the edge-list export's points. In integer
 * arithmetic `S` is `Â_ii` times the input's codes (the input point's scale), and `Y_nb` is the
 * off-diagonal row sum: both exact before the output point requantizes `Y_nb`.
 *
 * @module
 */

import type { TensorValue } from "@lowbit/core";
import type { Graph, Model, Node } from "@lowbit/graph";
import type { QuantizeState } from "@lowbit/pipeline";
import { type Aggregation, feedsLayer, findAggregations } from "./detect.ts";
import { gnnOptions } from "./options.ts";

/** Suffixes of the values the rewrite adds, after the aggregation output's name. */
export const SELF_LOOP_SUFFIX = {
  all: ".lowbit_with_self",
  eye: ".lowbit_eye",
  diag: ".lowbit_self_weights",
  self: ".lowbit_self_term",
  neighbours: ".lowbit_neighbours",
} as const;

/**
 * The graph with each given dense aggregation's self-loop term split off its output (see the
 * module documentation).
 *
 * @param g the graph
 * @param aggs dense sum aggregations of `g` ({@link findAggregations}) to rewrite
 * @returns a new graph (the given one is not changed)
 *
 * @example
 * ```ts
 * import { findAggregations, splitSelfLoops } from "@lowbit/gnn";
 * import { readOnnxFile } from "@lowbit/graph";
 * const g = (await readOnnxFile("fixtures/gnn/gcn2_dense.onnx")).graph;
 * const split = splitSelfLoops(g, findAggregations(g));
 * const outs = findAggregations(split).map((a) => a.output);
 * if (outs.join() !== "/MatMul_output_0.lowbit_neighbours,/MatMul_1_output_0.lowbit_neighbours") {
 *   throw new Error(outs.join());
 * }
 * ```
 */
export function splitSelfLoops(g: Graph, aggs: readonly Aggregation[]): Graph {
  const byNode = new Map(
    aggs.filter((a) => a.style === "dense" && a.reduce === "sum").map((a) => [a.node, a]),
  );
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    const a = byNode.get(n.name);
    if (!a || n.outputs[0] !== a.output) {
      nodes.push(n);
      continue;
    }
    const y = a.output, adj = n.inputs[0], z = n.inputs[1], S = SELF_LOOP_SUFFIX;
    const node = (suffix: string, op: string, inputs: string[], out: string): Node => ({
      name: `${n.name}${suffix}`,
      op,
      domain: "",
      inputs,
      outputs: [out],
      attrs: {},
    });
    nodes.push(
      { ...n, outputs: [y + S.all] },
      node(S.eye, "EyeLike", [adj], y + S.eye),
      node(S.diag, "Mul", [adj, y + S.eye], y + S.diag),
      node(S.self, "MatMul", [y + S.diag, z], y + S.self),
      node(S.neighbours, "Sub", [y + S.all, y + S.self], y + S.neighbours),
      node(".lowbit_add_self", "Add", [y + S.neighbours, y + S.self], y),
    );
  }
  return { ...g, nodes };
}

/** Whether a square adjacency has a nonzero diagonal entry. */
function hasSelfLoops(t: TensorValue): boolean {
  if (t.shape.length !== 2 || t.shape[0] !== t.shape[1]) return false;
  const n = t.shape[0];
  for (let i = 0; i < n; i++) if (Number(t.data[i * n + i]) !== 0) return true;
  return false;
}

/**
 * Stage `gnn-self-loops` (after `gnn-index-add`): see the module documentation. It rewrites the
 * dense sum aggregations whose adjacency in the calibration data has self-loops (a zero
 * diagonal, as a GIN's binary `A`, leaves the model as written) and whose output is not a
 * layer's input, unless `--gnn-self-loops inside`; a replayed plan, those whose neighbours' sum
 * its entries name.
 *
 * @param st the quantize state
 *
 * @example
 * ```ts
 * import { selfLoopStage } from "./self_loops.ts";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/gnn/gcn2_dense.onnx");
 * const adj = readNpy(await Deno.readFile("fixtures/gnn/adj_norm.npy"));
 * const st = { model, prepared: model, pluginOptions: {}, warnings: [] as string[],
 *   opts: { calib: { inputs: { adj }, count: 1 } } };
 * selfLoopStage(st as never);
 * if (st.model.graph.nodes.filter((n) => n.op === "EyeLike").length !== 2) throw new Error();
 * ```
 */
export function selfLoopStage(st: QuantizeState): void {
  if (gnnOptions(st.pluginOptions).selfLoops !== "split") return;
  const calib = st.opts.calib, plan = st.opts.plan;
  if (!calib && !plan) return;
  const data = { ...calib?.inputs, ...(calib?.whole ?? {}) } as Record<string, TensorValue>;
  // A replayed plan splits what it was made with (its entries name the neighbours' sums), with
  // or without calibration data.
  const planned = plan ? new Set(plan.entries.map((e) => e.value)) : undefined;
  const wanted = (a: Aggregation): boolean =>
    planned
      ? planned.has(a.output + SELF_LOOP_SUFFIX.neighbours)
      : data[a.degrees.input] !== undefined && hasSelfLoops(data[a.degrees.input]);
  const g = st.model.graph;
  const todo = findAggregations(g).filter((a) =>
    a.style === "dense" && a.reduce === "sum" && !a.selfLoops && !feedsLayer(g, a.output) &&
    wanted(a)
  );
  if (todo.length === 0) return;
  const split = (m: Model): Model => ({ ...m, graph: splitSelfLoops(m.graph, todo) });
  st.model = split(st.model);
  st.prepared = split(st.prepared);
  st.warnings.push(
    `gnn: the self-loops of ${todo.length} dense aggregation(s) are added after the quantized ` +
      `neighbours' sum (the adjacency's diagonal is nonzero; --gnn-self-loops inside keeps them ` +
      `in it): ${todo.map((a) => a.node).join(", ")}`,
  );
}
