/**
 * Constant folding: nodes whose inputs are all constant become initializers.
 *
 * @module
 */

import type { Dim, DType, Graph, Node, TensorData } from "../ir.ts";
import { evalConst, make } from "./_const_eval.ts";
import { inferShapes } from "./shape_infer.ts";
import { implicitInputs, topoSort } from "./topo.ts";

/**
 * Evaluates one node on constant inputs (undefined for omitted optional
 * inputs), returning one tensor per output, or undefined to leave the node.
 */
export type ConstEvaluator = (
  node: Node,
  inputs: readonly (TensorData | undefined)[],
) => TensorData[] | undefined;

/** Options of {@link foldConstants}. */
export interface FoldOptions {
  /**
   * Evaluator tried before the built-in one (which covers shape arithmetic:
   * Shape, Gather, Concat, Slice, Reshape, Squeeze/Unsqueeze, Cast, Transpose,
   * elementwise arithmetic and comparisons, Where, Range, Expand,
   * ConstantOfShape, Constant). Pass the executor's ops to fold anything.
   */
  evaluate?: ConstEvaluator;
  /** Shapes of graph inputs; values computable from static dims fold too. */
  inputShapes?: Record<string, Dim[]>;
}

/** Ops that stay in the graph even on constant inputs. */
const NO_FOLD = new Set([
  "QuantizeLinear",
  "DequantizeLinear",
  "RandomNormal",
  "RandomUniform",
  "RandomNormalLike",
  "RandomUniformLike",
  "Multinomial",
]);

const INT_DTYPES = new Set<DType>(["int64", "int32", "int16", "int8", "uint8", "uint16", "uint32"]);

/**
 * Folds constants: Constant nodes and nodes whose inputs are all constant
 * (initializers or folded values) are replaced by initializers, and so are
 * shape computations that static dimensions decide (e.g. `Gather(Shape(x), 1)`
 * when dim 1 of x is known). Q/DQ and random ops, nodes with subgraphs and
 * nodes producing graph outputs are kept. Original initializers are kept;
 * intermediate folded values nothing reads are dropped.
 *
 * @param graph the graph (not modified)
 * @param opts an extra evaluator, input shapes
 * @returns a new graph
 *
 * @example
 * ```ts
 * import { foldConstants, type Graph } from "@lowbit/graph";
 * const g: Graph = { name: "g", initializers: new Map(), valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float32", shape: ["n", 6] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [
 *     { name: "c", op: "Constant", domain: "", inputs: [], outputs: ["s"],
 *       attrs: { value: { kind: "tensor", value: { dtype: "int64", shape: [2], data: new BigInt64Array([-1n, 3n]) } } } },
 *     { name: "r", op: "Reshape", domain: "", inputs: ["x", "s"], outputs: ["y"], attrs: {} },
 *   ] };
 * const f = foldConstants(g);
 * if (f.nodes.length !== 1 || !f.initializers.has("s")) throw new Error();
 * ```
 */
export function foldConstants(graph: Graph, opts: FoldOptions = {}): Graph {
  const { facts } = inferShapes(graph, { inputShapes: opts.inputShapes });
  const consts = new Map<string, TensorData>(graph.initializers);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const added = new Map<string, TensorData>();
  const removed = new Set<Node>();
  for (const node of topoSort(graph)) {
    if (NO_FOLD.has(node.op) || node.outputs.some((o) => outputs.has(o) || o === "")) continue;
    if (Object.values(node.attrs).some((a) => a.kind === "graph")) continue;
    const present = node.inputs.filter((n) => n !== "");
    let vals: TensorData[] | undefined;
    if (present.every((n) => consts.has(n))) {
      const ins = node.inputs.map((n) => (n === "" ? undefined : consts.get(n)));
      vals = opts.evaluate?.(node, ins) ?? evalConst(node, ins);
    }
    if (!vals) {
      // Integer values that static dimensions decide (Shape of a static tensor, ...).
      const fs = node.outputs.map((o) => facts.get(o));
      if (
        fs.every((f) =>
          f?.dtype && INT_DTYPES.has(f.dtype) && f.shape?.every((d) => typeof d === "number") &&
          f.elems?.every((d) => typeof d === "number") &&
          f.elems.length === f.shape.reduce((a: number, d) => a * (d as number), 1)
        )
      ) {
        vals = fs.map((f) => make(f!.dtype!, f!.shape as number[], f!.elems as number[]));
      }
    }
    if (!vals || vals.length < node.outputs.length) continue;
    node.outputs.forEach((o, i) => {
      consts.set(o, vals![i]);
      added.set(o, vals![i]);
    });
    removed.add(node);
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n));
  const used = new Set<string>(graph.outputs.map((o) => o.name));
  for (const n of nodes) for (const i of [...n.inputs, ...implicitInputs(n)]) used.add(i);
  const initializers = new Map(graph.initializers);
  for (const [k, v] of added) if (used.has(k)) initializers.set(k, v);
  const valueInfo = new Map([...graph.valueInfo].filter(([k]) => !initializers.has(k)));
  return { ...graph, nodes, initializers, valueInfo };
}
