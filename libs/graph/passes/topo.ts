/**
 * Topological plan of a graph and dead-node removal.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Graph, Node } from "../ir.ts";

/**
 * Names a node reads from the enclosing scope through its subgraph attributes
 * (values used inside If/Loop/Scan bodies but not defined there).
 *
 * @param node the node
 * @returns the outer-scope value names its subgraphs use
 *
 * @example
 * ```ts
 * import { implicitInputs } from "@lowbit/graph";
 * const body = { name: "b", inputs: [], outputs: [{ name: "y", dtype: "float32" as const }],
 *   initializers: new Map(), valueInfo: new Map(),
 *   nodes: [{ name: "n", op: "Identity", domain: "", inputs: ["outer"], outputs: ["y"], attrs: {} }] };
 * const node = { name: "if", op: "If", domain: "", inputs: ["c"], outputs: ["z"],
 *   attrs: { then_branch: { kind: "graph" as const, value: body } } };
 * if (implicitInputs(node)[0] !== "outer") throw new Error();
 * ```
 */
export function implicitInputs(node: Node): string[] {
  const out = new Set<string>();
  for (const a of Object.values(node.attrs)) {
    if (a.kind !== "graph") continue;
    const g = a.value;
    const defined = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
    for (const n of g.nodes) for (const o of n.outputs) defined.add(o);
    for (const n of g.nodes) {
      for (const i of [...n.inputs, ...implicitInputs(n)]) {
        if (i !== "" && !defined.has(i)) out.add(i);
      }
    }
    for (const o of g.outputs) if (!defined.has(o.name)) out.add(o.name);
  }
  return [...out];
}

/** Options of {@link topoSort}. */
export interface TopoOptions {
  /** Names visible from an enclosing graph (for subgraphs). */
  outerScope?: Iterable<string>;
}

/**
 * Orders the nodes so that every node comes after the producers of its inputs
 * (including values its subgraphs read). Among ready nodes, file order wins,
 * so an already sorted graph keeps its order.
 *
 * @param graph the graph
 * @param opts names visible from an enclosing scope
 * @returns the nodes in execution order
 * @throws {LowbitError} `INVALID_ARGUMENT` naming a node on a cycle;
 *   `UNKNOWN_NAME` naming a node and an input nothing produces;
 *   `DUPLICATE_NAME` for a value produced twice
 *
 * @example
 * ```ts
 * import { topoSort, type Graph } from "@lowbit/graph";
 * const g: Graph = { name: "g", initializers: new Map(), valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float32" }], outputs: [{ name: "z", dtype: "float32" }],
 *   nodes: [
 *     { name: "b", op: "Relu", domain: "", inputs: ["y"], outputs: ["z"], attrs: {} },
 *     { name: "a", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} },
 *   ] };
 * if (topoSort(g).map((n) => n.name).join() !== "a,b") throw new Error();
 * ```
 */
export function topoSort(graph: Graph, opts: TopoOptions = {}): Node[] {
  const nodes = graph.nodes;
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (o === "") continue;
      if (producer.has(o)) {
        throw new LowbitError("DUPLICATE_NAME", "value is produced by two nodes", {
          node: n.name,
          tensor: o,
        });
      }
      producer.set(o, i);
    }
  });
  const available = new Set<string>([
    ...graph.inputs.map((v) => v.name),
    ...graph.initializers.keys(),
    ...(opts.outerScope ?? []),
  ]);
  const deps: number[][] = nodes.map(() => []);
  const users: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    const seen = new Set<number>();
    for (const name of [...n.inputs, ...implicitInputs(n)]) {
      if (name === "") continue;
      const p = producer.get(name);
      if (p === undefined) {
        if (available.has(name)) continue;
        throw new LowbitError(
          "UNKNOWN_NAME",
          "input is not produced by any node, input or initializer",
          {
            node: n.name,
            tensor: name,
          },
        );
      }
      if (!seen.has(p)) {
        seen.add(p);
        deps[i].push(p);
        users[p].push(i);
      }
    }
  });
  const indeg = deps.map((d) => d.length);
  const heap: number[] = [];
  const push = (v: number): void => {
    heap.push(v);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p] <= heap[i]) break;
      [heap[p], heap[i]] = [heap[i], heap[p]];
      i = p;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (r < heap.length && heap[r] < heap[m]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  indeg.forEach((d, i) => d === 0 && push(i));
  const order: Node[] = [];
  while (heap.length) {
    const i = pop();
    order.push(nodes[i]);
    for (const u of users[i]) if (--indeg[u] === 0) push(u);
  }
  if (order.length !== nodes.length) {
    // Walk unresolved dependencies from a stuck node until one repeats: that one is on a cycle.
    let cur = indeg.findIndex((d) => d > 0);
    const seenAt = new Map<number, number>();
    const path: number[] = [];
    while (!seenAt.has(cur)) {
      seenAt.set(cur, path.length);
      path.push(cur);
      cur = deps[cur].find((d) => indeg[d] > 0)!;
    }
    const cycle = path.slice(seenAt.get(cur)!).map((i) => nodes[i].name);
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `the graph has a cycle: ${[...cycle.reverse(), cycle[0]].join(" → ")}`,
      { node: nodes[cur].name },
    );
  }
  return order;
}

/**
 * Removes nodes whose outputs reach no graph output, and initializers and
 * value infos nothing uses any more. Graph inputs are kept.
 *
 * @param graph the graph (not modified)
 * @returns a new graph
 *
 * @example
 * ```ts
 * import { removeDeadNodes, type Graph } from "@lowbit/graph";
 * const g: Graph = { name: "g", initializers: new Map(), valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float32" }], outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [
 *     { name: "a", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} },
 *     { name: "dead", op: "Relu", domain: "", inputs: ["x"], outputs: ["unused"], attrs: {} },
 *   ] };
 * if (removeDeadNodes(g).nodes.length !== 1) throw new Error();
 * ```
 */
export function removeDeadNodes(graph: Graph): Graph {
  const producer = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => o !== "" && producer.set(o, i)));
  const live = new Set<number>();
  const used = new Set<string>();
  const stack = graph.outputs.map((o) => o.name);
  while (stack.length) {
    const v = stack.pop()!;
    if (used.has(v)) continue;
    used.add(v);
    const p = producer.get(v);
    if (p === undefined || live.has(p)) continue;
    live.add(p);
    const n = graph.nodes[p];
    for (const i of [...n.inputs, ...implicitInputs(n)]) if (i !== "") stack.push(i);
  }
  const nodes = graph.nodes.filter((_, i) => live.has(i));
  const initializers = new Map([...graph.initializers].filter(([k]) => used.has(k)));
  const produced = new Set(nodes.flatMap((n) => n.outputs));
  const valueInfo = new Map([...graph.valueInfo].filter(([k]) => produced.has(k)));
  return { ...graph, nodes, initializers, valueInfo };
}
