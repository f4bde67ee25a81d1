/**
 * The float64 interpreter behind autodiff: runs a graph forward while keeping
 * every value (the tape), then walks it backward from seed gradients.
 *
 * NOTE: this is a separate interpreter from the float32 executor on purpose:
 * gradients, Hessian-vector products by central differences, and their
 * finite-difference tests all need float64 to be meaningful.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Graph, Node, TensorData } from "../ir.ts";
import { isDifferentiableOp, OPS, type T64 } from "./ops.ts";
import { lookupOp } from "../exec/ops/table.ts";
import { add } from "./_t64.ts";

/** The values of one forward run, in evaluation order. */
export interface Tape {
  /** The nodes in the order they ran. */
  readonly order: readonly Node[];
  /** Every value by name: inputs, initializers (as used), intermediates, outputs. */
  readonly values: Map<string, T64>;
}

/**
 * Converts an IR tensor to float64 (integers and booleans by value).
 *
 * @param t the tensor
 * @returns a float64 copy
 *
 * @example
 * ```ts
 * import { toT64 } from "@lowbit/graph/autodiff";
 * const t = toT64({ dtype: "int64", shape: [2], data: BigInt64Array.of(3n, -1n) });
 * if (t.data[0] !== 3 || t.data[1] !== -1) throw new Error();
 * ```
 */
export function toT64(t: TensorData): T64 {
  if (Array.isArray(t.data)) {
    throw new LowbitError("UNSUPPORTED", "string tensors cannot be differentiated");
  }
  if (t.dtype === "float16" || t.dtype === "bfloat16" || t.dtype.startsWith("float8")) {
    throw new LowbitError(
      "UNSUPPORTED",
      `autodiff reads float32/float64 and integers, not ${t.dtype}`,
    );
  }
  const src = t.data;
  const data = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) data[i] = Number(src[i]);
  return { shape: [...t.shape], data };
}

const cache = new WeakMap<Graph, { order: Node[]; init: Map<string, T64> }>();

function prepared(graph: Graph): { order: Node[]; init: Map<string, T64> } {
  let p = cache.get(graph);
  if (!p) {
    const init = new Map<string, T64>();
    for (const [k, v] of graph.initializers) init.set(k, toT64(v));
    p = { order: topoOrder(graph), init };
    cache.set(graph, p);
  }
  return p;
}

/**
 * Orders a graph's nodes so that every node comes after its producers.
 *
 * @param graph the graph
 * @returns the nodes in a topological order (file order among ready nodes)
 *
 * @example
 * ```ts
 * import { topoOrder } from "@lowbit/graph/autodiff";
 * const n = (name: string, i: string, o: string) =>
 *   ({ name, op: "Relu", domain: "", inputs: [i], outputs: [o], attrs: {} });
 * const g = { name: "g", nodes: [n("b", "t", "y"), n("a", "x", "t")], inputs: [], outputs: [],
 *   initializers: new Map(), valueInfo: new Map() };
 * if (topoOrder(g)[0].name !== "a") throw new Error();
 * ```
 */
export function topoOrder(graph: Graph): Node[] {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const done = new Set<Node>(), visiting = new Set<Node>();
  const order: Node[] = [];
  const visit = (n: Node): void => {
    if (done.has(n)) return;
    if (visiting.has(n)) {
      throw new LowbitError("INVALID_ARGUMENT", "graph has a cycle", { node: n.name });
    }
    visiting.add(n);
    for (const i of n.inputs) {
      const p = i ? producer.get(i) : undefined;
      if (p) visit(p);
    }
    visiting.delete(n);
    done.add(n);
    order.push(n);
  };
  for (const n of graph.nodes) visit(n);
  return order;
}

/**
 * Runs `graph` forward in float64 and keeps every value.
 *
 * @param graph the graph
 * @param feeds graph inputs by name
 * @param overrides values replacing initializers (e.g. perturbed or fake-quantized weights)
 * @param base an earlier run on the same feeds: nodes that no override reaches reuse its values
 * @returns the tape
 *
 * @example
 * ```ts
 * import { forward64 } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map(), valueInfo: new Map() };
 * const tape = forward64(g, { x: { shape: [2], data: Float64Array.of(-1, 3) } });
 * if (tape.values.get("y")!.data[1] !== 3) throw new Error();
 * ```
 */
export function forward64(
  graph: Graph,
  feeds: Readonly<Record<string, T64>>,
  overrides?: ReadonlyMap<string, T64>,
  base?: Tape,
): Tape {
  const { order, init } = prepared(graph);
  const values = new Map<string, T64>(init);
  if (overrides) { for (const [k, v] of overrides) values.set(k, v); }
  for (const [k, v] of Object.entries(feeds)) values.set(k, v);
  const dirty = new Set<string>(overrides ? overrides.keys() : []);
  for (const node of order) {
    if (base && !node.inputs.some((n) => dirty.has(n))) {
      const outs = node.outputs.map((o) => base.values.get(o));
      if (outs.every((o) => o !== undefined)) {
        node.outputs.forEach((o, i) => values.set(o, outs[i]!));
        continue;
      }
    }
    for (const o of node.outputs) dirty.add(o);
    const ins = node.inputs.map((n) => {
      if (!n) return undefined;
      const v = values.get(n);
      if (!v) {
        throw new LowbitError("INVALID_ARGUMENT", `input '${n}' has no value (missing feed?)`, {
          node: node.name,
        });
      }
      return v;
    });
    let outs: T64[];
    try {
      outs = isDifferentiableOp(node.op) && (node.domain === "" || node.domain === "ai.onnx")
        ? OPS[node.op].forward(ins, node)
        : forwardOnly(graph, node, ins);
    } catch (e) {
      if (e instanceof LowbitError) throw e;
      throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${(e as Error).message}`, {
        node: node.name,
      });
    }
    node.outputs.forEach((o, i) => {
      if (o && outs[i]) values.set(o, outs[i]);
    });
  }
  return { order, values };
}

/**
 * Back-propagates `seeds` (gradients of a scalar with respect to some values)
 * through a tape, returning the gradients of the values named in `wrt`.
 *
 * @param tape a forward run
 * @param seeds gradients of the scalar with respect to (usually) the outputs
 * @param wrt names to return gradients for (initializers or inputs)
 * @returns gradient per name in `wrt` (zeros when the scalar does not depend on it)
 *
 * @example
 * ```ts
 * import { backward64, forward64 } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "Mul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1], data: Float32Array.of(3) }]]),
 *   valueInfo: new Map() };
 * const tape = forward64(g, { x: { shape: [1], data: Float64Array.of(2) } });
 * const grads = backward64(tape, new Map([["y", { shape: [1], data: Float64Array.of(1) }]]), ["w"]);
 * if (grads.get("w")!.data[0] !== 2) throw new Error();
 * ```
 */
export function backward64(
  tape: Tape,
  seeds: ReadonlyMap<string, T64>,
  wrt: readonly string[],
): Map<string, T64> {
  const grads = new Map<string, T64>(seeds);
  // NOTE: only nodes with an input that depends on a `wrt` value can contribute; skip the rest.
  const depends = new Set<string>(wrt);
  for (const node of tape.order) {
    if (node.inputs.some((n) => depends.has(n))) { for (const o of node.outputs) depends.add(o); }
  }
  for (let k = tape.order.length - 1; k >= 0; k--) {
    const node = tape.order[k];
    if (!node.inputs.some((n) => depends.has(n))) continue;
    const gOut = node.outputs.map((o) => (o ? grads.get(o) : undefined));
    if (gOut.every((g) => g === undefined)) continue;
    const ins = node.inputs.map((n) => (n ? tape.values.get(n) : undefined));
    const outs = node.outputs.map((o) => tape.values.get(o)!);
    const op = node.op as keyof typeof OPS;
    if (!isDifferentiableOp(node.op) || (node.domain !== "" && node.domain !== "ai.onnx")) {
      throw new LowbitError(
        "UNSUPPORTED",
        `autodiff: op ${node.op} has no gradient (it runs forward only); a metric that needs ` +
          `gradients through it cannot be used`,
        { node: node.name },
      );
    }
    const filled = gOut.map((g, i) =>
      g ??
        (outs[i]
          ? { shape: outs[i].shape, data: new Float64Array(outs[i].data.length) }
          : undefined)
    );
    const gIn = OPS[op].backward(filled, ins, outs, node);
    node.inputs.forEach((n, i) => {
      const gi = gIn[i];
      if (!n || !gi) return;
      const prev = grads.get(n);
      grads.set(n, prev ? add(prev, gi) : gi);
    });
  }
  const out = new Map<string, T64>();
  for (const name of wrt) {
    const g = grads.get(name);
    const v = tape.values.get(name);
    if (!v) {
      throw new LowbitError("UNKNOWN_NAME", `no value named '${name}' in the graph`, {
        tensor: name,
      });
    }
    out.set(name, g ?? { shape: [...v.shape], data: new Float64Array(v.data.length) });
  }
  return out;
}

/**
 * A node autodiff has no gradient for, run forward in float32 by the executor's own op
 * (a constant Pad, a Shape, an ArgMax...): values flow, gradients cannot.
 */
function forwardOnly(graph: Graph, node: Node, ins: readonly (T64 | undefined)[]): T64[] {
  const impl = lookupOp(node.op, node.domain);
  if (!impl) {
    throw new LowbitError("UNSUPPORTED", `autodiff: op ${node.op} is not supported`, {
      node: node.name,
    });
  }
  // Non-float initializers (pads, axes, shapes) go in as they are in the graph.
  const tensors = node.inputs.map((n, i): TensorData | undefined => {
    const init = n ? graph.initializers.get(n) : undefined;
    if (init && init.dtype !== "float32" && init.dtype !== "float64") return init;
    const t = ins[i];
    return t && { dtype: "float32", shape: [...t.shape], data: Float32Array.from(t.data) };
  });
  const outs = impl(tensors, node, { opset: 17 });
  if (outs instanceof Promise) {
    throw new LowbitError("UNSUPPORTED", `autodiff: op ${node.op} is not supported`, {
      node: node.name,
    });
  }
  return outs.map((t) => ({
    shape: [...t.shape],
    data: Float64Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)),
  }));
}
