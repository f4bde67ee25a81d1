/**
 * If nodes whose condition is a constant (an initializer or a Constant node's value) replaced
 * by the branch they always take, so that passes and the quantization pipeline see the
 * branch's layers as ordinary nodes. With constant folding in between, this resolves models
 * that branch on a fixed input, e.g. Silero VAD's sample rate.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Graph, Node, TensorData } from "../ir.ts";
import { foldConstants, type FoldOptions } from "./fold.ts";

/** Options of {@link inlineConstantIfs}. */
export interface InlineIfOptions {
  /**
   * Run constant folding before each round (default true): a condition computed from
   * constants (Equal(sr, 16000) with `sr` bound) becomes constant, and so may the
   * conditions of Ifs that inlining brought up.
   */
  fold?: boolean | FoldOptions;
  /** Most rounds of folding and inlining (default 16). */
  maxRounds?: number;
}

function constantOf(g: Graph, name: string): TensorData | undefined {
  const t = g.initializers.get(name);
  if (t !== undefined) return t;
  const n = g.nodes.find((x) => x.op === "Constant" && x.outputs[0] === name);
  const v = n?.attrs.value;
  return v?.kind === "tensor" ? v.value : undefined;
}

/** Every value name defined anywhere in `g` (inputs, initializers, node outputs, nested). */
function definedNames(g: Graph, into: Set<string>): Set<string> {
  for (const v of g.inputs) into.add(v.name);
  for (const k of g.initializers.keys()) into.add(k);
  for (const n of g.nodes) {
    for (const o of n.outputs) if (o !== "") into.add(o);
    for (const a of Object.values(n.attrs)) if (a.kind === "graph") definedNames(a.value, into);
  }
  return into;
}

/** `n` with value names mapped through `rename`, in its subgraphs too. */
function renamed(n: Node, rename: Map<string, string>): Node {
  const r = (v: string): string => rename.get(v) ?? v;
  const attrs: Node["attrs"] = {};
  for (const [k, a] of Object.entries(n.attrs)) {
    attrs[k] = a.kind === "graph" ? { kind: "graph", value: renamedGraph(a.value, rename) } : a;
  }
  return { ...n, inputs: n.inputs.map(r), outputs: n.outputs.map(r), attrs };
}

function renamedGraph(g: Graph, rename: Map<string, string>): Graph {
  const r = (v: string): string => rename.get(v) ?? v;
  return {
    ...g,
    nodes: g.nodes.map((n) => renamed(n, rename)),
    inputs: g.inputs.map((v) => ({ ...v, name: r(v.name) })),
    outputs: g.outputs.map((v) => ({ ...v, name: r(v.name) })),
    initializers: new Map([...g.initializers].map(([k, t]) => [r(k), t])),
    valueInfo: new Map([...g.valueInfo].map(([k, v]) => [r(k), { ...v, name: r(k) }])),
  };
}

/** One round: every If with a constant condition replaced by its branch. */
function inlineOnce(g: Graph): { graph: Graph; changed: boolean } {
  let changed = false;
  const nodes: Node[] = [];
  const initializers = new Map(g.initializers);
  const valueInfo = new Map(g.valueInfo);
  // Names of the enclosing scope (values inside other nodes' subgraphs are their own scopes).
  const taken = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const x of g.nodes) for (const o of x.outputs) if (o !== "") taken.add(o);
  const nodeNames = new Set(g.nodes.map((n) => n.name));
  for (const n of g.nodes) {
    const cond = n.op === "If" && (n.domain === "" || n.domain === "ai.onnx")
      ? constantOf(g, n.inputs[0])
      : undefined;
    if (cond === undefined || cond.data.length !== 1) {
      nodes.push(n);
      continue;
    }
    const which = Number(cond.data[0]) !== 0 ? "then_branch" : "else_branch";
    const a = n.attrs[which];
    if (a?.kind !== "graph") {
      throw new LowbitError("INVALID_ARGUMENT", `If has no graph attribute '${which}'`, {
        node: n.name,
      });
    }
    if (a.value.outputs.length !== n.outputs.length) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `If: branch '${which}' has ${a.value.outputs.length} outputs, the node ${n.outputs.length}`,
        { node: n.name },
      );
    }
    changed = true;
    // Branch values whose names the enclosing graph already uses get a fresh name.
    const branchDefined = definedNames({ ...a.value, inputs: [] }, new Set());
    const rename = new Map<string, string>();
    for (const v of branchDefined) {
      if (!taken.has(v)) continue;
      let k = 1;
      while (taken.has(`${n.name}/${v}${k > 1 ? `_${k}` : ""}`)) k++;
      rename.set(v, `${n.name}/${v}${k > 1 ? `_${k}` : ""}`);
    }
    const branch = renamedGraph(a.value, rename);
    for (const v of branch.initializers.keys()) taken.add(v);
    for (const b of branch.nodes) for (const o of b.outputs) if (o !== "") taken.add(o);
    for (const [k, t] of branch.initializers) {
      initializers.set(k, t);
    }
    for (const [k, v] of branch.valueInfo) valueInfo.set(k, v);
    for (const b of branch.nodes) {
      let name = b.name;
      for (let k = 1; nodeNames.has(name); k++) name = `${n.name}/${b.name}${k > 1 ? `_${k}` : ""}`;
      nodeNames.add(name);
      nodes.push({ ...b, name });
    }
    // The If's outputs are the branch's outputs under the If's names.
    branch.outputs.forEach((o, i) => {
      const out = n.outputs[i];
      if (out === "") return;
      let name = `${n.name}/out${i}`;
      for (let k = 1; nodeNames.has(name); k++) name = `${n.name}/out${i}_${k}`;
      nodeNames.add(name);
      nodes.push({ name, op: "Identity", domain: "", inputs: [o.name], outputs: [out], attrs: {} });
    });
  }
  return { graph: { ...g, nodes, initializers, valueInfo }, changed };
}

/**
 * Replaces every If whose condition is constant by the branch it takes (its nodes join the
 * graph; its outputs reach the If's outputs through Identity nodes), folding constants between
 * rounds so that conditions computed from constants resolve too. Ifs whose condition depends on
 * an input stay. Bind a fixed input (e.g. a sample rate) as an initializer first to resolve the
 * branches it decides.
 *
 * @param graph the graph (not modified)
 * @param opts folding between rounds, round limit
 * @returns a new graph (the same object when nothing changed)
 * @throws {LowbitError} `INVALID_ARGUMENT` for an If without the branch it takes, or whose
 *   branch has a different number of outputs than the node
 *
 * @example
 * ```ts
 * import { inlineConstantIfs, type Graph } from "@lowbit/graph";
 * const branch = (op: string): Graph => ({ name: op, initializers: new Map(), valueInfo: new Map(),
 *   inputs: [], outputs: [{ name: `${op}_y`, dtype: "float32" }],
 *   nodes: [{ name: op, op, domain: "", inputs: ["x"], outputs: [`${op}_y`], attrs: {} }] });
 * const g: Graph = { name: "g", valueInfo: new Map(),
 *   initializers: new Map([["c", { dtype: "bool", shape: [], data: new Uint8Array([1]) }]]),
 *   inputs: [{ name: "x", dtype: "float32" }], outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "if", op: "If", domain: "", inputs: ["c"], outputs: ["y"], attrs: {
 *     then_branch: { kind: "graph", value: branch("Relu") },
 *     else_branch: { kind: "graph", value: branch("Neg") } } }] };
 * const out = inlineConstantIfs(g);
 * if (out.nodes.map((n) => n.op).join() !== "Relu,Identity") throw new Error();
 * ```
 */
export function inlineConstantIfs(graph: Graph, opts: InlineIfOptions = {}): Graph {
  const fold = opts.fold ?? true;
  let g = graph;
  let any = false;
  for (let round = 0; round < (opts.maxRounds ?? 16); round++) {
    const folded = fold ? foldConstants(g, fold === true ? {} : fold) : g;
    const r = inlineOnce(folded);
    if (!r.changed) return any ? folded : graph;
    any = true;
    g = r.graph;
  }
  return g;
}
