// Outer scope of subgraphs, made explicit for the executor: every node with graph attributes
// (If, Loop, Scan) gets the enclosing values its subgraphs read appended to its inputs, and
// their names in attribute `lowbit_outer`. Planning (topological order, last use, fusion)
// then sees those reads like any other input, and the op receives the values as arguments.

import { LowbitError } from "@lowbit/core";
import type { Graph, Node, TensorData } from "../ir.ts";
import { implicitInputs } from "../passes/topo.ts";

/** The subgraphs held by a node's attributes. */
export function subgraphsOf(node: Node): Graph[] {
  const out: Graph[] = [];
  for (const a of Object.values(node.attrs)) if (a.kind === "graph") out.push(a.value);
  return out;
}

/** The outer-scope names appended to a bound node's inputs (empty for other nodes). */
export function outerNames(node: Node): string[] {
  const a = node.attrs.lowbit_outer;
  return a?.kind === "strings" ? a.value : [];
}

/**
 * A copy of `graph` in which every node with subgraphs (at any depth) lists the outer values
 * they read as trailing inputs, named again in attribute `lowbit_outer`. Graphs without
 * subgraphs come back unchanged (the same object).
 */
export function bindOuterScope(graph: Graph): Graph {
  let changed = false;
  const nodes = graph.nodes.map((n) => {
    if (subgraphsOf(n).length === 0 || n.attrs.lowbit_outer !== undefined) return n;
    changed = true;
    const attrs = { ...n.attrs };
    for (const [k, a] of Object.entries(attrs)) {
      if (a.kind === "graph") attrs[k] = { kind: "graph", value: bindOuterScope(a.value) };
    }
    const outer = implicitInputs(n);
    attrs.lowbit_outer = { kind: "strings", value: outer };
    return { ...n, inputs: [...n.inputs, ...outer], attrs };
  });
  return changed ? { ...graph, nodes } : graph;
}

/**
 * Splits a bound node's arguments: the node's own inputs, and the outer values by name.
 */
export function splitOuter(
  args: readonly (TensorData | undefined)[],
  node: Node,
): { own: (TensorData | undefined)[]; outer: Record<string, TensorData> } {
  const names = outerNames(node);
  const k = args.length - names.length;
  const outer: Record<string, TensorData> = {};
  names.forEach((name, i) => {
    const t = args[k + i];
    if (t === undefined) {
      throw new LowbitError("INTERNAL", `outer value '${name}' is missing`, {
        node: node.name,
        tensor: name,
      });
    }
    outer[name] = t;
  });
  return { own: args.slice(0, k), outer };
}
