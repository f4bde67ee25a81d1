/**
 * Constant folding inside If / Loop / Scan bodies, so that weights computed there from
 * constants (PyTorch's LSTMCell export slices, concatenates and unsqueezes its `weight_ih` inside
 * an If branch before the LSTM reads it) become initializers of the subgraph: quantizable
 * layers, and stored as codes. Outer-scope initializers count as constants; a top-level
 * initializer that only such folded nodes read is dropped afterwards (it would be a float copy
 * of the weight).
 *
 * @module
 */

import { foldConstants, type Graph, type TensorData, type ValueInfo } from "@lowbit/graph";

/**
 * Folds constants in every subgraph, outer-scope initializers included, and drops initializers
 * nothing reads any more. The top-level graph itself is left as it is (fold it first).
 *
 * @param graph the graph (not modified)
 * @returns the graph with folded subgraphs (the same object when nothing folded)
 *
 * @example
 * ```ts
 * import { foldSubgraphConstants } from "@lowbit/pipeline";
 * const w = { dtype: "float32" as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
 * const branch = {
 *   name: "b", inputs: [], outputs: [{ name: "y", dtype: "float32" as const }],
 *   valueInfo: new Map(), initializers: new Map(),
 *   nodes: [
 *     { name: "t", op: "Transpose", domain: "", inputs: ["W"], outputs: ["Wt"], attrs: {} },
 *     { name: "mm", op: "MatMul", domain: "", inputs: ["x", "Wt"], outputs: ["y"], attrs: {} },
 *   ],
 * };
 * const g = {
 *   name: "g", outputs: [{ name: "z", dtype: "float32" as const }],
 *   inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 2] },
 *     { name: "c", dtype: "bool" as const, shape: [] }],
 *   valueInfo: new Map(), initializers: new Map([["W", w]]),
 *   nodes: [{ name: "if", op: "If", domain: "", inputs: ["c"], outputs: ["z"],
 *     attrs: { then_branch: { kind: "graph" as const, value: branch },
 *       else_branch: { kind: "graph" as const, value: branch } } }],
 * };
 * const out = foldSubgraphConstants(g);
 * const then = out.nodes[0].attrs.then_branch;
 * if (then.kind !== "graph" || then.value.initializers.get("Wt")?.data.join() !== "1,3,2,4") {
 *   throw new Error("the transposed weight is a subgraph initializer");
 * }
 * if (out.initializers.has("W")) throw new Error("the outer copy is dropped");
 * ```
 */
export function foldSubgraphConstants(graph: Graph): Graph {
  let changed = false;
  // Declared types of values, where the model gives them (for the bodies' outer-scope reads).
  const infos = new Map<string, ValueInfo>();
  const collect = (g: Graph): void => {
    for (const v of [...g.inputs, ...g.valueInfo.values(), ...g.outputs]) infos.set(v.name, v);
    for (const n of g.nodes) {
      for (const a of Object.values(n.attrs)) if (a.kind === "graph") collect(a.value);
    }
  };
  collect(graph);
  const fold = (g: Graph, outer: ReadonlyMap<string, TensorData>): Graph => {
    const visible = new Map([...outer, ...g.initializers]);
    let nodes = g.nodes;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i];
      let attrs = n.attrs;
      for (const [k, a] of Object.entries(n.attrs)) {
        if (a.kind !== "graph") continue;
        const sub = a.value;
        // Outer initializers are visible to the fold; the folded body keeps only its own
        // initializers and the ones the fold made.
        // Other outer-scope values (activations) stand as inputs of unknown shape.
        const inits = new Map([...visible, ...sub.initializers]);
        const free = [...outerReads(sub)].filter((v) => !inits.has(v));
        const withOuter: Graph = {
          ...sub,
          inputs: [
            ...sub.inputs,
            ...free.map((name): ValueInfo => ({
              name,
              dtype: infos.get(name)?.dtype ?? "float32",
            })),
          ],
          initializers: inits,
        };
        const folded = { ...foldConstants(withOuter), inputs: sub.inputs };
        const own = new Map<string, TensorData>();
        for (const [name, t] of folded.initializers) {
          if (sub.initializers.has(name) || !visible.has(name)) own.set(name, t);
        }
        let body: Graph = sub;
        if (folded.nodes.length !== sub.nodes.length) {
          changed = true;
          body = { ...folded, initializers: own };
        }
        body = fold(body, visible);
        if (body !== sub) {
          attrs = { ...attrs, [k]: { kind: "graph", value: body } };
        }
      }
      if (attrs !== n.attrs) {
        if (nodes === g.nodes) nodes = [...g.nodes];
        nodes[i] = { ...n, attrs };
      }
    }
    return nodes === g.nodes ? g : { ...g, nodes };
  };
  const out = fold(graph, new Map());
  if (!changed) return graph;
  return dropUnread(graph, out);
}

/** The values a graph (its subgraphs included) reads from outside itself. */
function outerReads(g: Graph): Set<string> {
  const inner = new Set<string>(g.inputs.map((v) => v.name));
  for (const name of g.initializers.keys()) inner.add(name);
  for (const n of g.nodes) for (const o of n.outputs) if (o) inner.add(o);
  const out = new Set<string>();
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i && !inner.has(i)) out.add(i);
    for (const a of Object.values(n.attrs)) {
      if (a.kind === "graph") {
        for (const v of outerReads(a.value)) if (!inner.has(v)) out.add(v);
      }
    }
  }
  for (const o of g.outputs) if (!inner.has(o.name)) out.add(o.name);
  return out;
}

/** Every value name some node reads, in the graph and all its subgraphs, and graph outputs. */
function readNames(g: Graph, into: Set<string>): Set<string> {
  for (const o of g.outputs) into.add(o.name);
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i) into.add(i);
    for (const a of Object.values(n.attrs)) if (a.kind === "graph") readNames(a.value, into);
  }
  return into;
}

/** Drops the initializers (any scope) that were read before the fold and are read no more. */
function dropUnread(before: Graph, after: Graph): Graph {
  const was = readNames(before, new Set()), now = readNames(after, new Set());
  const prune = (g: Graph): Graph => {
    let inits = g.initializers;
    for (const name of g.initializers.keys()) {
      if (was.has(name) && !now.has(name)) {
        if (inits === g.initializers) inits = new Map(g.initializers);
        inits.delete(name);
      }
    }
    const nodes = g.nodes.map((n) => {
      let attrs = n.attrs;
      for (const [k, a] of Object.entries(n.attrs)) {
        if (a.kind !== "graph") continue;
        const p = prune(a.value);
        if (p !== a.value) attrs = { ...attrs, [k]: { kind: "graph", value: p } };
      }
      return attrs === n.attrs ? n : { ...n, attrs };
    });
    const same = inits === g.initializers && nodes.every((n, i) => n === g.nodes[i]);
    return same ? g : { ...g, nodes, initializers: inits };
  };
  return prune(after);
}
