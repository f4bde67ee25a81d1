/**
 * Where a vision transformer's hard activations are, found by pattern in any graph:
 *
 * - every Softmax output (the attention probabilities);
 * - both operands of every MatMul whose two inputs are run-time values (Q·Kᵀ and P·V);
 * - GELU outputs: the ONNX `Gelu` op, and the decomposed `x · 0.5 · (1 + erf(x / √2))` torch
 *   exports (Div or Mul by the constant, Erf, Add 1, then the two Muls in either order);
 * - LayerNorm outputs: the `LayerNormalization` op, and the decomposed form (ReduceMean, Sub,
 *   Pow 2, ReduceMean, Add ε, Sqrt, Div, then Mul γ and Add β when present).
 *
 * @module
 */

import { type GraphView, type NodeView, type TensorValue, valueLinks } from "@lowbit/core";

/** What the finders return: one value per match, with the node it comes from. */
export interface Found {
  /** The value (tensor name). */
  readonly value: string;
  /** The node producing it. */
  readonly node: string;
}

/** Constants of a graph: initializers and Constant node outputs, as float scalars or tensors. */
function constants(g: GraphView): Map<string, TensorValue> {
  const out = new Map<string, TensorValue>(g.initializers);
  for (const n of g.nodes) {
    if (n.op !== "Constant") continue;
    const a = n.attrs.value as { value?: TensorValue } | undefined;
    if (a?.value && "data" in a.value) out.set(n.outputs[0], a.value);
  }
  return out;
}

/** The single value of a scalar-like constant, or undefined. */
function scalarOf(c: Map<string, TensorValue>, name: string): number | undefined {
  const t = c.get(name);
  if (!t || t.data.length !== 1) return undefined;
  return Number(t.data[0]);
}

interface Index {
  producer: Map<string, NodeView>;
  consumers: Map<string, NodeView[]>;
  consts: Map<string, TensorValue>;
}

function indexOf(g: GraphView): Index {
  return { ...valueLinks(g), consts: constants(g) };
}

const near = (a: number | undefined, b: number, tol = 1e-3): boolean =>
  a !== undefined && Math.abs(a - b) <= tol;

/** The other input of a binary node, given one of them. */
function other(n: NodeView, v: string): string | undefined {
  if (n.inputs.length !== 2) return undefined;
  if (n.inputs[0] === v) return n.inputs[1];
  if (n.inputs[1] === v) return n.inputs[0];
  return undefined;
}

/** The single consumer of `v` with op `op`, if there is one. */
function only(ix: Index, v: string, op: string): NodeView | undefined {
  const cs = (ix.consumers.get(v) ?? []).filter((n) => n.op === op);
  return cs.length === 1 ? cs[0] : undefined;
}

/**
 * Every Softmax output.
 *
 * @param g the graph
 * @returns the outputs, in node order
 *
 * @example
 * ```ts
 * import { findSoftmax } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const g = { inputs: [], outputs: [], initializers: new Map(), nodes: [
 *   { name: "s", op: "Softmax", domain: "", inputs: ["a"], outputs: ["p"], attrs: {} }] };
 * assert.deepEqual(findSoftmax(g), [{ value: "p", node: "s" }]);
 * ```
 */
export function findSoftmax(g: GraphView): Found[] {
  return g.nodes.filter((n) => n.op === "Softmax" && n.domain === "").map((n) => ({
    value: n.outputs[0],
    node: n.name,
  }));
}

/**
 * Both operands of every MatMul of two run-time values (neither a constant), each value once.
 *
 * @param g the graph
 * @returns the operands, in node order (left, then right)
 *
 * @example
 * ```ts
 * import { findActivationMatMuls } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const g = { inputs: [], outputs: [], initializers: new Map([["W", { dtype: "float32", shape: [1], data: [1] }]]),
 *   nodes: [
 *     { name: "qk", op: "MatMul", domain: "", inputs: ["q", "k"], outputs: ["s"], attrs: {} },
 *     { name: "fc", op: "MatMul", domain: "", inputs: ["s", "W"], outputs: ["y"], attrs: {} }] };
 * assert.deepEqual(findActivationMatMuls(g).map((f) => f.value), ["q", "k"]);
 * ```
 */
export function findActivationMatMuls(g: GraphView): Found[] {
  const ix = indexOf(g);
  const out: Found[] = [];
  const seen = new Set<string>();
  for (const n of g.nodes) {
    if (n.op !== "MatMul" || n.domain !== "") continue;
    if (n.inputs.some((v) => ix.consts.has(v))) continue;
    for (const v of n.inputs) {
      if (seen.has(v)) continue;
      seen.add(v);
      out.push({ value: v, node: n.name });
    }
  }
  return out;
}

/**
 * GELU outputs: the ONNX `Gelu` op and the decomposed erf form.
 *
 * @param g the graph
 * @returns the outputs, in node order of the pattern's Erf (or Gelu)
 *
 * @example
 * ```ts
 * import { findGelu } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const c = (v: number) => ({ dtype: "float32", shape: [], data: [v] });
 * const node = (name: string, op: string, inputs: string[], out: string) =>
 *   ({ name, op, domain: "", inputs, outputs: [out], attrs: {} });
 * const g = { inputs: [], outputs: [], initializers: new Map([["r2", c(1.4142135)], ["one", c(1)], ["half", c(0.5)]]),
 *   nodes: [node("d", "Div", ["x", "r2"], "a"), node("e", "Erf", ["a"], "b"), node("p", "Add", ["b", "one"], "c"),
 *     node("m", "Mul", ["x", "c"], "d"), node("h", "Mul", ["d", "half"], "y")] };
 * assert.deepEqual(findGelu(g), [{ value: "y", node: "h" }]);
 * ```
 */
export function findGelu(g: GraphView): Found[] {
  const ix = indexOf(g);
  const out: Found[] = [];
  for (const n of g.nodes) {
    if (n.op === "Gelu") {
      out.push({ value: n.outputs[0], node: n.name });
      continue;
    }
    if (n.op !== "Erf") continue;
    const pre = ix.producer.get(n.inputs[0]);
    if (!pre || pre.inputs.length !== 2) continue;
    const [x, c] = pre.inputs;
    const k = scalarOf(ix.consts, c);
    const scaled = (pre.op === "Div" && near(k, Math.SQRT2)) ||
      (pre.op === "Mul" && near(k, Math.SQRT1_2));
    if (!scaled) continue;
    const add = only(ix, n.outputs[0], "Add");
    if (!add || !near(scalarOf(ix.consts, other(add, n.outputs[0]) ?? ""), 1)) continue;
    const end = geluEnd(ix, add.outputs[0], x);
    if (end) out.push({ value: end.outputs[0], node: end.name });
  }
  return out;
}

/** From `1 + erf(·)`, the Mul that completes `x · 0.5 · (1 + erf)`, in any order. */
function geluEnd(ix: Index, onePlus: string, x: string): NodeView | undefined {
  const m1 = only(ix, onePlus, "Mul");
  if (!m1) return undefined;
  const o1 = other(m1, onePlus)!;
  const isHalf = (v: string) => near(scalarOf(ix.consts, v), 0.5);
  const halfOfX = (v: string) => {
    const p = ix.producer.get(v);
    return p?.op === "Mul" && other(p, x) !== undefined && isHalf(other(p, x)!);
  };
  if (o1 === x) {
    const m2 = only(ix, m1.outputs[0], "Mul");
    return m2 && isHalf(other(m2, m1.outputs[0]) ?? "") ? m2 : undefined;
  }
  if (halfOfX(o1)) return m1;
  if (isHalf(o1)) {
    const m2 = only(ix, m1.outputs[0], "Mul");
    return m2 && other(m2, m1.outputs[0]) === x ? m2 : undefined;
  }
  return undefined;
}

/**
 * LayerNorm outputs: the `LayerNormalization` op and the decomposed form torch ≤ opset 16
 * writes (the output after γ and β when they follow).
 *
 * @param g the graph
 * @returns the outputs, in node order of the pattern's Sqrt (or LayerNormalization)
 *
 * @example
 * ```ts
 * import { findLayerNorm } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const g = { inputs: [], outputs: [], initializers: new Map(), nodes: [
 *   { name: "ln", op: "LayerNormalization", domain: "", inputs: ["x", "g", "b"], outputs: ["y"], attrs: {} }] };
 * assert.deepEqual(findLayerNorm(g), [{ value: "y", node: "ln" }]);
 * ```
 */
export function findLayerNorm(g: GraphView): Found[] {
  const ix = indexOf(g);
  const out: Found[] = [];
  for (const n of g.nodes) {
    if (n.op === "LayerNormalization") {
      out.push({ value: n.outputs[0], node: n.name });
      continue;
    }
    if (n.op !== "Sqrt") continue;
    // Sqrt(ReduceMean(Pow(Sub(x, ReduceMean(x)), 2)) + ε)
    const addEps = ix.producer.get(n.inputs[0]);
    if (addEps?.op !== "Add") continue;
    const varNode = addEps.inputs.map((v) => ix.producer.get(v)).find((p) =>
      p?.op === "ReduceMean"
    );
    const pow = varNode && ix.producer.get(varNode.inputs[0]);
    if (pow?.op !== "Pow" || !near(scalarOf(ix.consts, pow.inputs[1]), 2)) continue;
    const sub = ix.producer.get(pow.inputs[0]);
    if (sub?.op !== "Sub" || ix.producer.get(sub.inputs[1])?.op !== "ReduceMean") continue;
    const div = (ix.consumers.get(n.outputs[0]) ?? []).find((c) =>
      c.op === "Div" && c.inputs[0] === sub.outputs[0] && c.inputs[1] === n.outputs[0]
    );
    if (!div) continue;
    let end = div;
    const mul = only(ix, end.outputs[0], "Mul");
    if (mul && ix.consts.has(other(mul, end.outputs[0]) ?? "")) end = mul;
    const add = only(ix, end.outputs[0], "Add");
    if (add && ix.consts.has(other(add, end.outputs[0]) ?? "")) end = add;
    out.push({ value: end.outputs[0], node: end.name });
  }
  return out;
}
