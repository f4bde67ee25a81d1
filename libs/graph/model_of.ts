/**
 * `modelOf()`: a {@link Model} from a graph's nodes, inputs and outputs, with the defaults a
 * hand-built model usually spells out (ONNX IR 8, opset 17, graph name "g", empty maps and
 * strings).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Graph, Model, Node, OpsetImport, TensorData, ValueInfo } from "./ir.ts";

/** A graph for {@link modelOf}: nodes, inputs and outputs, the rest optional. */
export interface ModelOfGraph {
  /** Nodes, in file order. */
  nodes: Node[];
  /** Graph inputs that are not initializers. */
  inputs: ValueInfo[];
  /** Graph outputs. */
  outputs: ValueInfo[];
  /**
   * Constant tensors by name: a Map (used as it is), a record, or `[name, tensor]` pairs
   * (default: none).
   */
  initializers?:
    | Map<string, TensorData>
    | Record<string, TensorData>
    | [string, TensorData][];
  /** Known types of intermediate values (default: none; a Map given is used as it is). */
  valueInfo?: Map<string, ValueInfo>;
  /** Graph name (default "g"). */
  name?: string;
}

/** Model-level options of {@link modelOf}. */
export interface ModelOfOptions {
  /** The ONNX ("" domain) opset version (default 17); not with `opsets`. */
  opset?: number;
  /** The whole opset import list (default `[{ domain: "", version: 17 }]`); not with `opset`. */
  opsets?: OpsetImport[];
  /** ONNX IR version (default 8). */
  irVersion?: number;
  /** Producer name (default ""). */
  producerName?: string;
}

/**
 * Builds a {@link Model} around a graph: IR version 8, opsets `[{ domain: "", version: 17 }]`,
 * empty producer name / version and metadata, graph name "g", empty initializers and value info,
 * unless given.
 *
 * @param graph the graph's nodes, inputs, outputs and, optionally, initializers (a Map, a record
 *   or `[name, tensor]` pairs), value info and name
 * @param opts the opset (or the whole opset list), IR version and producer name
 * @returns the model; a Map given for initializers / value info is the model's own, not a copy
 * @throws {LowbitError} INVALID_ARGUMENT when both `opset` and `opsets` are given
 *
 * @example
 * ```ts
 * import { createExecutor, modelOf } from "@lowbit/graph";
 * const m = modelOf({
 *   nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
 *   inputs: [{ name: "x", dtype: "float32", shape: [3] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 * }, { opset: 14 });
 * if (m.irVersion !== 8 || m.opsets[0].version !== 14 || m.graph.name !== "g") throw new Error();
 * const { y } = await createExecutor(m).run({
 *   x: { dtype: "float32", shape: [3], data: Float32Array.of(-1, 0, 2) },
 * });
 * if ((y.data as Float32Array).join() !== "0,0,2") throw new Error(String(y.data));
 * ```
 */
export function modelOf(graph: ModelOfGraph, opts: ModelOfOptions = {}): Model {
  if (opts.opset !== undefined && opts.opsets !== undefined) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "modelOf(): give either opset (the ONNX opset version) or opsets (the whole list), not both",
    );
  }
  const init = graph.initializers;
  const initializers = init instanceof Map
    ? init
    : new Map(Array.isArray(init) ? init : Object.entries(init ?? {}));
  const g: Graph = {
    name: graph.name ?? "g",
    nodes: graph.nodes,
    inputs: graph.inputs,
    outputs: graph.outputs,
    initializers,
    valueInfo: graph.valueInfo ?? new Map(),
  };
  return {
    irVersion: opts.irVersion ?? 8,
    opsets: opts.opsets ?? [{ domain: "", version: opts.opset ?? 17 }],
    producerName: opts.producerName ?? "",
    producerVersion: "",
    metadata: {},
    graph: g,
  };
}

/**
 * Builds a {@link Node} in the default ONNX domain.
 *
 * @param name the node's name
 * @param op the operator type
 * @param inputs the input value names, in order ("" for an omitted optional input)
 * @param outputs the output value names, in order
 * @param attrs the attributes (default: none)
 * @returns the node
 *
 * @example
 * ```ts
 * import { createExecutor, modelOf, nodeOf } from "@lowbit/graph";
 * const m = modelOf({
 *   nodes: [nodeOf("r", "Relu", ["x"], ["y"])],
 *   inputs: [{ name: "x", dtype: "float32", shape: [2] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 * });
 * const x = { dtype: "float32" as const, shape: [2], data: Float32Array.of(-1, 2) };
 * const { y } = await createExecutor(m).run({ x });
 * if ((y.data as Float32Array).join() !== "0,2") throw new Error(String(y.data));
 * ```
 */
export function nodeOf(
  name: string,
  op: string,
  inputs: string[],
  outputs: string[],
  attrs: Node["attrs"] = {},
): Node {
  return { name, op, domain: "", inputs, outputs, attrs };
}

/**
 * Builds an ONNX `If` node (default domain) choosing between two subgraphs on a boolean scalar.
 *
 * @param name the node's name
 * @param cond the name of the boolean condition value
 * @param outputs the node's outputs (one per branch output, in order)
 * @param thenBranch the graph run when `cond` is true
 * @param elseBranch the graph run when `cond` is false
 * @returns the node, with `then_branch` / `else_branch` graph attributes
 *
 * @example
 * ```ts
 * import { createExecutor, ifNodeOf, modelOf } from "@lowbit/graph";
 * const branch = (op: string) => ({
 *   name: op, nodes: [{ name: op, op, domain: "", inputs: ["x"], outputs: ["o"], attrs: {} }],
 *   inputs: [], outputs: [{ name: "o", dtype: "float32" as const }],
 *   initializers: new Map(), valueInfo: new Map(),
 * });
 * const m = modelOf({
 *   nodes: [ifNodeOf("if", "c", ["y"], branch("Relu"), branch("Neg"))],
 *   inputs: [{ name: "x", dtype: "float32", shape: [2] }, { name: "c", dtype: "bool", shape: [] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 * });
 * const x = { dtype: "float32" as const, shape: [2], data: Float32Array.of(-1, 2) };
 * const c = { dtype: "bool" as const, shape: [], data: Uint8Array.of(0) };
 * const { y } = await createExecutor(m).run({ x, c });
 * if ((y.data as Float32Array).join() !== "1,-2") throw new Error(String(y.data));
 * ```
 */
export function ifNodeOf(
  name: string,
  cond: string,
  outputs: string[],
  thenBranch: Graph,
  elseBranch: Graph,
): Node {
  return nodeOf(name, "If", [cond], outputs, {
    then_branch: { kind: "graph", value: thenBranch },
    else_branch: { kind: "graph", value: elseBranch },
  });
}
