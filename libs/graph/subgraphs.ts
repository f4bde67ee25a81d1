/**
 * Subgraphs (the graph-valued attributes of If / Loop / Scan) made visible to passes: one
 * generator walks a graph and every graph nested in it, so that a pass looking for MatMul /
 * Conv layers also finds the ones inside a branch or a loop body.
 *
 * @module
 */

import type { Graph, Node, TensorData } from "./ir.ts";

/** One graph met by {@link walkGraphs}. */
export interface GraphVisit {
  /** The graph. */
  graph: Graph;
  /** The node whose attribute holds it (undefined for the root graph). */
  owner?: Node;
  /** The attribute name on `owner` (e.g. "then_branch", "body"). */
  attr?: string;
  /** Nesting depth: 0 for the root, 1 for its subgraphs, ... */
  depth: number;
  /** Owner node names from the root down to this graph (empty for the root). */
  path: string[];
  /**
   * The graphs enclosing this one, innermost first (empty for the root): where its outer-scope
   * reads resolve.
   */
  scope: Graph[];
}

/**
 * Yields `graph` and then every subgraph nested in it, depth first, in node order (a node's
 * attributes in their key order).
 *
 * @param graph the root graph
 * @returns a generator of visits
 *
 * @example
 * ```ts
 * import { walkGraphs, type Graph } from "@lowbit/graph";
 * const branch = (y: string): Graph => ({ name: y, initializers: new Map(), valueInfo: new Map(),
 *   inputs: [], outputs: [{ name: y, dtype: "float32" }],
 *   nodes: [{ name: `mm_${y}`, op: "MatMul", domain: "", inputs: ["x", "w"], outputs: [y], attrs: {} }] });
 * const g: Graph = { name: "g", initializers: new Map(), valueInfo: new Map(),
 *   inputs: [{ name: "c", dtype: "bool" }], outputs: [{ name: "z", dtype: "float32" }],
 *   nodes: [{ name: "if", op: "If", domain: "", inputs: ["c"], outputs: ["z"], attrs: {
 *     then_branch: { kind: "graph", value: branch("a") },
 *     else_branch: { kind: "graph", value: branch("b") } } }] };
 * const matmuls = [...walkGraphs(g)].flatMap((v) => v.graph.nodes).filter((n) => n.op === "MatMul");
 * if (matmuls.map((n) => n.name).join() !== "mm_a,mm_b") throw new Error();
 * ```
 */
export function* walkGraphs(graph: Graph): Generator<GraphVisit> {
  yield* walk(graph, undefined, undefined, [], []);
}

function* walk(
  graph: Graph,
  owner: Node | undefined,
  attr: string | undefined,
  path: string[],
  scope: Graph[],
): Generator<GraphVisit> {
  yield { graph, owner, attr, depth: path.length, path, scope };
  for (const n of graph.nodes) {
    for (const [name, a] of Object.entries(n.attrs)) {
      if (a.kind === "graph") yield* walk(a.value, n, name, [...path, n.name], [graph, ...scope]);
    }
  }
}

/**
 * Every node of a graph and of its subgraphs (depth first, see {@link walkGraphs}).
 *
 * @param graph the root graph
 * @returns a generator of nodes
 *
 * @example
 * ```ts
 * import { allNodes, type Graph } from "@lowbit/graph";
 * const g: Graph = { name: "g", initializers: new Map(), valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float32" }], outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }] };
 * if ([...allNodes(g)].length !== 1) throw new Error();
 * ```
 */
export function* allNodes(graph: Graph): Generator<Node> {
  for (const v of walkGraphs(graph)) yield* v.graph.nodes;
}

/**
 * The graph outputs no node reads, in the graph or in its subgraphs (outer-scope reads): values
 * whose quantization would change nothing but the model's output.
 *
 * @param graph the graph
 * @returns their names
 *
 * @example
 * ```ts
 * import { modelOf, nodeOf, unreadOutputs } from "@lowbit/graph";
 * const m = modelOf({
 *   nodes: [nodeOf("r", "Relu", ["x"], ["h"]), nodeOf("n", "Neg", ["h"], ["y"])],
 *   inputs: [{ name: "x", dtype: "float32", shape: [2] }],
 *   outputs: [{ name: "h", dtype: "float32" }, { name: "y", dtype: "float32" }],
 * });
 * if ([...unreadOutputs(m.graph)].join() !== "y") throw new Error();
 * ```
 */
export function unreadOutputs(graph: Graph): Set<string> {
  const read = new Set([...allNodes(graph)].flatMap((n) => n.inputs));
  return new Set(graph.outputs.map((o) => o.name).filter((v) => !read.has(v)));
}

/**
 * The graph (the root or a subgraph) that holds an initializer, and the tensor.
 *
 * @param graph the root graph
 * @param name the initializer's name
 * @returns where it is, or undefined
 *
 * @example
 * ```ts
 * import { findInitializer, type Graph } from "@lowbit/graph";
 * const w = { dtype: "float32" as const, shape: [1], data: Float32Array.of(2) };
 * const g: Graph = { name: "g", initializers: new Map([["w", w]]), valueInfo: new Map(),
 *   inputs: [], outputs: [], nodes: [] };
 * if (findInitializer(g, "w")?.tensor !== w) throw new Error();
 * ```
 */
export function findInitializer(
  graph: Graph,
  name: string,
): { graph: Graph; tensor: TensorData } | undefined {
  for (const v of walkGraphs(graph)) {
    const t = v.graph.initializers.get(name);
    if (t) return { graph: v.graph, tensor: t };
  }
  return undefined;
}

/**
 * A node with some of the values it reads renamed, in its own inputs and in the outer-scope reads
 * of its subgraphs (at any depth; a body that defines a value of the same name keeps its own).
 * Used where a pass inserts a node after a value (a Q/DQ pair) and every reader must take the new
 * value, including readers inside an If branch or a Loop body.
 *
 * @param node the node
 * @param rename old name → new name
 * @returns the node (the same object when nothing is renamed)
 *
 * @example
 * ```ts
 * import { renameReads, type Graph } from "@lowbit/graph";
 * const body: Graph = { name: "b", initializers: new Map(), valueInfo: new Map(), inputs: [],
 *   outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }] };
 * const n = { name: "if", op: "If", domain: "", inputs: ["c"], outputs: ["z"],
 *   attrs: { then_branch: { kind: "graph" as const, value: body },
 *     else_branch: { kind: "graph" as const, value: body } } };
 * const m = renameReads(n, new Map([["x", "x_dq"]]));
 * const then = m.attrs.then_branch;
 * if (then.kind !== "graph" || then.value.nodes[0].inputs[0] !== "x_dq") throw new Error();
 * ```
 */
export function renameReads(node: Node, rename: ReadonlyMap<string, string>): Node {
  if (rename.size === 0) return node;
  let inputs = node.inputs;
  if (inputs.some((v) => rename.has(v))) inputs = inputs.map((v) => rename.get(v) ?? v);
  let attrs = node.attrs;
  for (const [k, a] of Object.entries(node.attrs)) {
    if (a.kind !== "graph") continue;
    const sub = renameInBody(a.value, rename);
    if (sub !== a.value) attrs = { ...attrs, [k]: { kind: "graph", value: sub } };
  }
  return inputs === node.inputs && attrs === node.attrs ? node : { ...node, inputs, attrs };
}

/**
 * A node with some of the values it writes renamed: where a pass quantizes a graph output, the
 * producer writes a new name and the inserted node writes the output's own.
 *
 * @param node the node
 * @param rename old name → new name
 * @returns the node (the same object when nothing is renamed)
 *
 * @example
 * ```ts
 * import { renameOutputs } from "@lowbit/graph";
 * const n = { name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * if (renameOutputs(n, new Map([["y", "y_float"]])).outputs[0] !== "y_float") throw new Error();
 * ```
 */
export function renameOutputs(node: Node, rename: ReadonlyMap<string, string>): Node {
  if (!node.outputs.some((v) => rename.has(v))) return node;
  return { ...node, outputs: node.outputs.map((v) => rename.get(v) ?? v) };
}

/** A body with its outer-scope reads renamed (names it defines itself are left alone). */
function renameInBody(g: Graph, rename: ReadonlyMap<string, string>): Graph {
  const own = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) own.add(o);
  let inner = rename;
  if ([...rename.keys()].some((k) => own.has(k))) {
    inner = new Map([...rename].filter(([k]) => !own.has(k)));
    if (inner.size === 0) return g;
  }
  const nodes = g.nodes.map((n) => renameReads(n, inner));
  const outputs = g.outputs.some((o) => inner.has(o.name))
    ? g.outputs.map((o) => inner.has(o.name) ? { ...o, name: inner.get(o.name)! } : o)
    : g.outputs;
  const same = outputs === g.outputs && nodes.every((n, i) => n === g.nodes[i]);
  return same ? g : { ...g, nodes, outputs };
}
