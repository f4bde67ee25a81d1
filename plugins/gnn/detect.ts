/**
 * Detection of message passing in an ONNX graph, in both export styles:
 *
 * - **dense**: `MatMul(A, H)` whose first operand is a square node × node graph input (the
 *   adjacency; its declared shape has two equal dimensions, numbers or the same symbol);
 * - **edge list**: `ScatterElements` / `ScatterND` with `reduction` "add" or "mean" whose updates
 *   are a `Gather` (axis 0) of node features, possibly times edge weights (`Mul`), and whose
 *   indices come from a graph input (the edge index, through `Gather` / `Unsqueeze` / `Expand`,
 *   and a `Concat` with a `Range` — the self-loops PyG's GCNConv / GATConv add in the graph;
 *   degrees are then counted in the edge index, without the added loops).
 *
 * A **mean** aggregation is one of these sums divided by the node's in-degree, as PyG's
 * `scatter(reduce="mean")` (SAGEConv's default) exports it: `Div(sum, count)` or `Mul(sum,
 * Reciprocal(count))`, the count a `ScatterElements`-add over the same destinations (of ones), or
 * `ReduceSum` of the adjacency's rows, through `Clip` / `Max` / `Where` with a constant (clamped at
 * 1, or masked_fill), `Unsqueeze`, `Cast`…. Its output is the mean: the sum is internal to the
 * aggregation (an integer kernel accumulates it), so it is not a point of its own.
 *
 * Each aggregation names its input features (`[nodes, F]`), its output (`[nodes, F]`) and where
 * node degrees come from at run time (the adjacency, or one row of the edge index).
 *
 * @module
 */

import type { GraphView, NodeView } from "@lowbit/core";

/** Where a graph's node in-degrees come from. */
export interface DegreeSource {
  /** The graph input holding the adjacency or the edge index. */
  readonly input: string;
  /** `adjacency`: nonzeros of row i (A[dst, src]); `edges`: occurrences of i as destination. */
  readonly kind: "adjacency" | "edges";
  /** Edge lists: the row of the edge index holding destinations (-1: the input is 1-D). */
  readonly row: number;
}

/** One message-passing aggregation found in a graph. */
export interface Aggregation {
  /** The aggregating node (`MatMul`, `ScatterElements`, `ScatterND`). */
  readonly node: string;
  /** Export style. */
  readonly style: "dense" | "edges";
  /** The node features aggregated (`[nodes, F]`): H of `A·H`, the data of the source `Gather`. */
  readonly input: string;
  /** The aggregated features (`[nodes, F]`): the sum, or the mean when `reduce` is "mean". */
  readonly output: string;
  /** `sum`, or `mean`: the sum divided by the in-degree (`divide` names the node). */
  readonly reduce: "sum" | "mean";
  /** Mean aggregations: the `Div` (or `Mul` by a reciprocal) dividing the sum by the degrees. */
  readonly divide?: string;
  /** Where degrees come from at run time. */
  readonly degrees: DegreeSource;
  /**
   * `split`: a dense sum whose self-loop term `diag(A)·H` is subtracted from `A·H` and added back
   * after (the `gnn-self-loops` rewrite): `output` is the neighbours' sum, `A·H − diag(A)·H`.
   * `inside`: an edge-list sum to which the export adds the self-loop term `H ⊙ w` (w per node,
   * computed in the graph: a GCN's `1 / (d + 1)`) and whose result is a layer's input
   * (aggregating first): `output` is that sum with the self term, quantized once as the layer
   * reads it — what a dense export's `Â·X` is.
   */
  readonly selfLoops?: "split" | "inside";
}

/** Ops an index tensor passes through unchanged in meaning. */
const INDEX_PASS = new Set(["Unsqueeze", "Squeeze", "Expand", "Reshape", "Cast", "Identity"]);
/** Ops a degree count passes through (clamped at 1, reshaped, cast) on its way to the divide. */
const COUNT_PASS = new Set([
  "Unsqueeze",
  "Squeeze",
  "Reshape",
  "Expand",
  "Cast",
  "Identity",
  "Clip",
  "Max",
]);
/** Ops a message passes through (edge weights multiply it). */
const MESSAGE_PASS = new Set(["Mul", "Div", "Cast", "Identity", "Expand"]);

function attr(n: NodeView, name: string): unknown {
  const a = n.attrs[name] as { value?: unknown } | undefined;
  return a && typeof a === "object" && "value" in a ? a.value : a;
}

function isSquare(shape: readonly unknown[] | undefined): boolean {
  return !!shape && shape.length === 2 && shape[0] !== undefined && shape[0] === shape[1];
}

/** A scalar integer constant (an initializer, or a `Constant` node's value). */
function constInt(g: GraphView, producer: Map<string, NodeView>, v: string): number | undefined {
  const init = g.initializers.get(v);
  let data: ArrayLike<unknown> | undefined = init?.data;
  if (!init) {
    const p = producer.get(v);
    const val = p?.op === "Constant" ? attr(p, "value") as { data?: ArrayLike<unknown> } : null;
    data = val?.data;
  }
  if (!data || data.length !== 1) return undefined;
  return Number(data[0]);
}

/**
 * The message-passing aggregations of a graph, in node order.
 *
 * @param g the graph (lowbit's IR or any {@link GraphView})
 * @returns the aggregations found (empty when there are none)
 *
 * @example
 * ```ts
 * import { findAggregations } from "@lowbit/gnn";
 * import assert from "node:assert/strict";
 * const g = {
 *   inputs: [{ name: "adj", dtype: "float32", shape: ["n", "n"] },
 *     { name: "x", dtype: "float32", shape: ["n", 4] }],
 *   outputs: [{ name: "y" }],
 *   initializers: new Map(),
 *   nodes: [{ name: "mm", op: "MatMul", domain: "", inputs: ["adj", "x"], outputs: ["y"],
 *     attrs: {} }],
 * };
 * const [a] = findAggregations(g);
 * assert.deepEqual([a.style, a.input, a.output, a.degrees.input], ["dense", "x", "y", "adj"]);
 * ```
 */
export function findAggregations(g: GraphView): Aggregation[] {
  const producer = new Map<string, NodeView>();
  const consumers = new Map<string, NodeView[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) consumers.set(i, [...consumers.get(i) ?? [], n]);
  }
  const inputs = new Map(g.inputs.map((i) => [i.name, i]));
  const out: Aggregation[] = [];
  for (const n of g.nodes) {
    if (n.op === "MatMul") {
      const a = inputs.get(n.inputs[0]);
      if (a && a.dtype === "float32" && isSquare(a.shape) && !g.initializers.has(n.inputs[1])) {
        const degrees = { input: a.name, kind: "adjacency", row: -1 } as const;
        const mean = meanOf(n.outputs[0], degrees, g, producer, consumers, inputs);
        const neighbours = mean.reduce === "sum" ? selfLoopsSplit(n, producer, consumers) : null;
        out.push({
          node: n.name,
          style: "dense",
          input: n.inputs[1],
          ...mean,
          ...(neighbours ? { output: neighbours, selfLoops: "split" as const } : {}),
          degrees,
        });
      }
      continue;
    }
    if (n.op !== "ScatterElements" && n.op !== "ScatterND") continue;
    const red = String(attr(n, "reduction") ?? "none");
    if (red !== "add" && red !== "mean") continue;
    if (n.op === "ScatterElements" && Number(attr(n, "axis") ?? 0) !== 0) continue;
    const features = sourceGather(n.inputs[2], producer);
    const degrees = indexSource(n.inputs[1], g, producer, inputs);
    if (!features || !degrees) continue;
    const mean = meanOf(n.outputs[0], degrees, g, producer, consumers, inputs);
    const withSelf = mean.reduce === "sum"
      ? selfTermIntoLayer(mean.output, features, g, producer, consumers)
      : null;
    out.push({
      node: n.name,
      style: "edges",
      input: features,
      ...mean,
      ...(withSelf ? { output: withSelf, selfLoops: "inside" as const } : {}),
      degrees,
    });
  }
  return out;
}

/** Layers whose data input is a quantization point of its own (the marker's layer inputs). */
const LAYER_OPS = new Set(["Gemm", "MatMul", "Conv"]);

/**
 * Whether a value is the data input (first operand) of a layer with constant weights: a
 * `Gemm`, `MatMul` or `Conv` whose second input is an initializer.
 *
 * @param g the graph
 * @param v the value
 * @returns true when a layer reads `v` as its data input
 *
 * @example
 * ```ts
 * import { feedsLayer } from "@lowbit/gnn";
 * const w = { dtype: "float32", shape: [2, 2], data: new Float32Array(4) };
 * const g = { inputs: [], outputs: [], initializers: new Map([["w", w]]), nodes: [
 *   { name: "l", op: "MatMul", domain: "", inputs: ["h", "w"], outputs: ["y"], attrs: {} }] };
 * if (!feedsLayer(g, "h") || feedsLayer(g, "w")) throw new Error();
 * ```
 */
export function feedsLayer(g: GraphView, v: string): boolean {
  return g.nodes.some((n) => isLayer(g, n) && n.inputs[0] === v);
}

/**
 * Whether a node is a layer with constant weights: a `Gemm`, `MatMul` or `Conv` whose second
 * input is an initializer (its first input, the data, is then a point of the marker's).
 *
 * @param g the graph
 * @param n a node of it
 * @returns true for such a layer
 *
 * @example
 * ```ts
 * import { isLayer } from "@lowbit/gnn";
 * const w = { dtype: "float32", shape: [2, 2], data: new Float32Array(4) };
 * const n = { name: "l", op: "MatMul", domain: "", inputs: ["h", "w"], outputs: ["y"], attrs: {} };
 * const g = { inputs: [], outputs: [], initializers: new Map([["w", w]]), nodes: [n] };
 * if (!isLayer(g, n) || isLayer({ ...g, initializers: new Map() }, n)) throw new Error();
 * ```
 */
export function isLayer(g: GraphView, n: NodeView): boolean {
  return LAYER_OPS.has(n.op) && g.initializers.has(n.inputs[1]);
}

/**
 * The sum of an edge-list aggregation and its self-loop term, when that is a layer's input:
 * `Add(sum, Mul(H, w))` with `H` the aggregated features and `w` computed in the graph (not a
 * constant: a GIN's `(1 + ε)·x` is a term of its own), read by a layer with constant weights.
 */
function selfTermIntoLayer(
  sum: string,
  features: string,
  g: GraphView,
  producer: Map<string, NodeView>,
  consumers: Map<string, NodeView[]>,
): string | null {
  const users = consumers.get(sum) ?? [];
  if (users.length !== 1 || users[0].op !== "Add" || g.outputs.some((o) => o.name === sum)) {
    return null;
  }
  const add = users[0];
  const other = producer.get(add.inputs[0] === sum ? add.inputs[1] : add.inputs[0]);
  if (other?.op !== "Mul" || !other.inputs.includes(features)) return null;
  const w = other.inputs[0] === features ? other.inputs[1] : other.inputs[0];
  if (g.initializers.has(w) || producer.get(w)?.op === "Constant") return null;
  return feedsLayer(g, add.outputs[0]) ? add.outputs[0] : null;
}

/**
 * The neighbours' sum of a dense aggregation `MatMul(adj, H)` whose self-loop term is split off
 * (`Sub(MatMul(adj, H), MatMul(Mul(adj, EyeLike(adj)), H))`, as the `gnn-self-loops` stage
 * writes it), or null.
 */
function selfLoopsSplit(
  mm: NodeView,
  producer: Map<string, NodeView>,
  consumers: Map<string, NodeView[]>,
): string | null {
  const [adj, h] = mm.inputs;
  for (const sub of consumers.get(mm.outputs[0]) ?? []) {
    if (sub.op !== "Sub" || sub.inputs[0] !== mm.outputs[0]) continue;
    const self = producer.get(sub.inputs[1]);
    if (self?.op !== "MatMul" || self.inputs[1] !== h) continue;
    const diag = producer.get(self.inputs[0]);
    if (diag?.op !== "Mul") continue;
    const eye = diag.inputs[0] === adj
      ? diag.inputs[1]
      : diag.inputs[1] === adj
      ? diag.inputs[0]
      : "";
    const e = producer.get(eye);
    if (e?.op === "EyeLike" && e.inputs[0] === adj) return sub.outputs[0];
  }
  return null;
}

/**
 * The node features whose rows a message tensor gathers (through edge-weight `Mul`s).
 *
 * @param v the message tensor
 * @param producer node by output name
 * @returns the gathered features, if the messages are a Gather of node rows
 *
 * @example
 * ```ts
 * import { sourceGather } from "./detect.ts";
 * const gather = { name: "g", op: "Gather", inputs: ["h", "src"], outputs: ["m"], attrs: {} };
 * if (sourceGather("m", new Map([["m", gather as never]])) !== "h") throw new Error();
 * ```
 */
export function sourceGather(v: string, producer: Map<string, NodeView>): string | undefined {
  const todo = [v];
  const seen = new Set<string>();
  while (todo.length) {
    const cur = todo.shift()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    const p = producer.get(cur);
    if (!p) continue;
    if (p.op === "Gather" && Number(attr(p, "axis") ?? 0) === 0) return p.inputs[0];
    // Edge weights reach a Mul through an Unsqueeze; features do not: only direct operands.
    if (MESSAGE_PASS.has(p.op)) todo.push(...p.inputs.filter((i) => i !== ""));
  }
  return undefined;
}

/**
 * The graph input (and its row) that scatter indices come from.
 *
 * @param v the index tensor
 * @param g the graph
 * @param producer node by output name
 * @param inputs graph inputs by name
 * @returns the input and the row of destinations (-1: a 1-D input), if indices come from one
 *
 * @example
 * ```ts
 * import { indexSource } from "./detect.ts";
 * const g = { inputs: [{ name: "dst" }], initializers: new Map() };
 * const src = indexSource("dst", g as never, new Map(), new Map([["dst", g.inputs[0] as never]]));
 * if (src?.input !== "dst" || src.row !== -1) throw new Error();
 * ```
 */
export function indexSource(
  v: string,
  g: GraphView,
  producer: Map<string, NodeView>,
  inputs: Map<string, GraphView["inputs"][number]>,
): DegreeSource | undefined {
  let cur = v;
  for (let step = 0; step < 16; step++) {
    const gi = inputs.get(cur);
    if (gi) return { input: gi.name, kind: "edges", row: -1 };
    const p = producer.get(cur);
    if (!p) return undefined;
    if (p.op === "Gather" && inputs.has(p.inputs[0])) {
      const row = constInt(g, producer, p.inputs[1]);
      if (row === undefined || Number(attr(p, "axis") ?? 0) !== 0) return undefined;
      return { input: p.inputs[0], kind: "edges", row };
    }
    if (p.op === "Concat") {
      // PyG's add_self_loops: the edge-index row, then arange(nodes) (a Range); the degrees are
      // read from the edge index, so the added loops are not counted
      const parts = p.inputs.filter((i) => i !== "" && !isNodeRange(i, producer));
      if (parts.length !== 1 || parts.length === p.inputs.length) return undefined;
      cur = parts[0];
      continue;
    }
    if (!INDEX_PASS.has(p.op)) return undefined;
    cur = p.inputs[0];
  }
  return undefined;
}

/** Whether a tensor is a `Range` (through reshapes and casts): self-loop indices 0..n-1. */
function isNodeRange(v: string, producer: Map<string, NodeView>): boolean {
  for (let cur = v, step = 0; step < 8; step++) {
    const p = producer.get(cur);
    if (!p) return false;
    if (p.op === "Range") return true;
    if (!INDEX_PASS.has(p.op)) return false;
    cur = p.inputs[0];
  }
  return false;
}

/** A sum's output, or the mean it becomes when its only consumer divides it by the degrees. */
function meanOf(
  sum: string,
  degrees: DegreeSource,
  g: GraphView,
  producer: Map<string, NodeView>,
  consumers: Map<string, NodeView[]>,
  inputs: Map<string, GraphView["inputs"][number]>,
): Pick<Aggregation, "output" | "reduce" | "divide"> {
  const plain = { output: sum, reduce: "sum" } as const;
  const users = consumers.get(sum) ?? [];
  if (users.length !== 1 || g.outputs.some((o) => o.name === sum)) return plain;
  const d = users[0];
  let count: string | undefined;
  if (d.op === "Div" && d.inputs[0] === sum) count = d.inputs[1];
  if (d.op === "Mul") {
    const other = d.inputs[0] === sum ? d.inputs[1] : d.inputs[0];
    const r = producer.get(other);
    if (r?.op === "Reciprocal") count = r.inputs[0];
  }
  if (count === undefined || !isDegreeCount(count, degrees, g, producer, inputs)) return plain;
  return { output: d.outputs[0], reduce: "mean", divide: d.name };
}

/**
 * Whether a tensor is the in-degree of every node (possibly clamped, reshaped or cast): a 1-D
 * `ScatterElements` / `ScatterND` add over the destinations `degrees` names whose updates are not
 * node features, or a `ReduceSum` of the adjacency over its last axis (A[dst, src]).
 *
 * @param v the tensor
 * @param degrees where the aggregation's degrees come from
 * @param g the graph
 * @param producer node by output name
 * @param inputs graph inputs by name
 * @returns true if `v` counts each node's incoming edges
 *
 * @example
 * ```ts
 * import { isDegreeCount } from "./detect.ts";
 * const g = { inputs: [{ name: "adj", shape: ["n", "n"] }], initializers: new Map(), nodes: [] };
 * const sum = { name: "s", op: "ReduceSum", inputs: ["adj"], outputs: ["deg"],
 *   attrs: { axes: [1], keepdims: 1 } };
 * const degrees = { input: "adj", kind: "adjacency", row: -1 } as const;
 * const producer = new Map([["deg", sum as never]]);
 * const inputs = new Map([["adj", g.inputs[0] as never]]);
 * if (!isDegreeCount("deg", degrees, g as never, producer, inputs)) throw new Error();
 * ```
 */
export function isDegreeCount(
  v: string,
  degrees: DegreeSource,
  g: GraphView,
  producer: Map<string, NodeView>,
  inputs: Map<string, GraphView["inputs"][number]>,
): boolean {
  let cur = v;
  for (let step = 0; step < 16; step++) {
    const p = producer.get(cur);
    if (!p) return false;
    if (p.op === "ReduceSum") {
      if (degrees.kind !== "adjacency" || p.inputs[0] !== degrees.input) return false;
      const axes = p.inputs[1] ? constInts(g, producer, p.inputs[1]) : attr(p, "axes");
      return Array.isArray(axes) || ArrayBuffer.isView(axes)
        ? (axes as ArrayLike<number>).length === 1 &&
          [1, -1].includes(Number((axes as ArrayLike<number>)[0]))
        : false;
    }
    if (p.op === "ScatterElements" || p.op === "ScatterND") {
      if (degrees.kind !== "edges") return false;
      if (!["add"].includes(String(attr(p, "reduction") ?? "none"))) return false;
      if (sourceGather(p.inputs[2], producer) !== undefined) return false;
      const src = indexSource(p.inputs[1], g, producer, inputs);
      return src !== undefined && src.input === degrees.input && src.row === degrees.row;
    }
    if (p.op === "Where") {
      // masked_fill (torch_scatter's `count[count < 1] = 1`): Where(cond, 1, count), either way
      const [a, b] = [p.inputs[1], p.inputs[2]];
      const known = (v: string) => constInts(g, producer, v) !== undefined;
      if (known(a) === known(b)) return false;
      cur = known(a) ? b : a;
      continue;
    }
    if (!COUNT_PASS.has(p.op)) return false;
    cur = p.inputs[0];
  }
  return false;
}

/** An integer list constant (an initializer, or a `Constant` node's value). */
function constInts(
  g: GraphView,
  producer: Map<string, NodeView>,
  v: string,
): number[] | undefined {
  const init = g.initializers.get(v);
  let data: ArrayLike<unknown> | undefined = init?.data;
  if (!init) {
    const p = producer.get(v);
    data = p?.op === "Constant"
      ? (attr(p, "value") as { data?: ArrayLike<unknown> })?.data
      : undefined;
  }
  return data ? Array.from(data, Number) : undefined;
}
