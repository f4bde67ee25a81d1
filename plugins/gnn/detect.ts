/**
 * Detection of message passing in an ONNX graph, in both export styles:
 *
 * - **dense**: `MatMul(A, H)` whose first operand is a square node × node graph input (the
 *   adjacency; its declared shape has two equal dimensions, numbers or the same symbol);
 * - **edge list**: `ScatterElements` / `ScatterND` with `reduction` "add" or "mean" whose updates
 *   are a `Gather` (axis 0) of node features, possibly times edge weights (`Mul`), and whose
 *   indices come from a graph input (the edge index, through `Gather` / `Unsqueeze` / `Expand`).
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
  /** The aggregated features (`[nodes, F]`). */
  readonly output: string;
  /** Where degrees come from at run time. */
  readonly degrees: DegreeSource;
}

/** Ops an index tensor passes through unchanged in meaning. */
const INDEX_PASS = new Set(["Unsqueeze", "Squeeze", "Expand", "Reshape", "Cast", "Identity"]);
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
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const inputs = new Map(g.inputs.map((i) => [i.name, i]));
  const out: Aggregation[] = [];
  for (const n of g.nodes) {
    if (n.op === "MatMul") {
      const a = inputs.get(n.inputs[0]);
      if (a && a.dtype === "float32" && isSquare(a.shape) && !g.initializers.has(n.inputs[1])) {
        out.push({
          node: n.name,
          style: "dense",
          input: n.inputs[1],
          output: n.outputs[0],
          degrees: { input: a.name, kind: "adjacency", row: -1 },
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
    out.push({ node: n.name, style: "edges", input: features, output: n.outputs[0], degrees });
  }
  return out;
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
    if (!INDEX_PASS.has(p.op)) return undefined;
    cur = p.inputs[0];
  }
  return undefined;
}
