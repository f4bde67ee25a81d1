/**
 * Widening a float16 / bfloat16 model to float32 inside, keeping its interface: every half
 * initializer, Constant and tensor attribute becomes float32, Casts to a half type cast to float32,
 * half value types become float32, and the graph's half inputs and outputs keep their type
 * through a Cast at the edge. The quantizer then sees float32 weights (fp16 weights are valid
 * float weights) and the executor computes in float32, as it does for half models anyway.
 *
 * @module
 */

import type { Attr, DType, Graph, Model, Node, TensorData, ValueInfo } from "../ir.ts";
import { toFloat32 } from "../tensor_data.ts";
import { ONNX_DTYPE } from "../_onnx_schema.ts";

const HALF: ReadonlySet<DType> = new Set<DType>(["float16", "bfloat16"]);
const HALF_CODES: ReadonlySet<number> = new Set([ONNX_DTYPE.float16, ONNX_DTYPE.bfloat16]);

function widenTensor(t: TensorData): TensorData {
  return HALF.has(t.dtype) ? { dtype: "float32", shape: [...t.shape], data: toFloat32(t) } : t;
}

function widenInfo(v: ValueInfo): ValueInfo {
  return HALF.has(v.dtype) ? { ...v, dtype: "float32" } : v;
}

function widenAttrs(n: Node): Node["attrs"] {
  const out: Record<string, Attr> = {};
  for (const [k, a] of Object.entries(n.attrs)) {
    if (a.kind === "tensor") out[k] = { kind: "tensor", value: widenTensor(a.value) };
    else if (a.kind === "graph") out[k] = { kind: "graph", value: widenGraph(a.value, false) };
    else if (n.op === "Cast" && k === "to" && a.kind === "int" && HALF_CODES.has(a.value)) {
      out[k] = { kind: "int", value: ONNX_DTYPE.float32 };
    } else out[k] = a;
  }
  return out;
}

function widenGraph(g: Graph, edges: boolean): Graph {
  const inits = new Map<string, TensorData>();
  for (const [k, t] of g.initializers) inits.set(k, widenTensor(t));
  const valueInfo = new Map<string, ValueInfo>();
  for (const [k, v] of g.valueInfo) valueInfo.set(k, widenInfo(v));
  let nodes: Node[] = g.nodes.map((n) => ({ ...n, attrs: widenAttrs(n) }));
  if (!edges) {
    return {
      ...g,
      nodes,
      initializers: inits,
      valueInfo,
      inputs: g.inputs.map(widenInfo),
      outputs: g.outputs.map(widenInfo),
    };
  }
  // The root graph keeps its half interface: Cast in after the inputs, Cast out before outputs.
  const front: Node[] = [], back: Node[] = [];
  const rename = new Map<string, string>();
  for (const v of g.inputs) {
    if (!HALF.has(v.dtype) || inits.has(v.name)) continue;
    const wide = `${v.name}.lowbit_f32`;
    rename.set(v.name, wide);
    front.push({
      name: `${v.name}.lowbit_widen`,
      op: "Cast",
      domain: "",
      inputs: [v.name],
      outputs: [wide],
      attrs: { to: { kind: "int", value: ONNX_DTYPE.float32 } },
    });
  }
  nodes = nodes.map((n) => ({ ...n, inputs: n.inputs.map((x) => rename.get(x) ?? x) }));
  const outRename = new Map<string, string>();
  for (const v of g.outputs) {
    if (!HALF.has(v.dtype)) continue;
    const wide = `${v.name}.lowbit_f32`;
    outRename.set(v.name, wide);
    back.push({
      name: `${v.name}.lowbit_narrow`,
      op: "Cast",
      domain: "",
      inputs: [rename.get(v.name) ?? wide],
      outputs: [v.name],
      attrs: { to: { kind: "int", value: ONNX_DTYPE[v.dtype] } },
    });
  }
  nodes = nodes.map((n) => ({
    ...n,
    inputs: n.inputs.map((x) => outRename.get(x) ?? x),
    outputs: n.outputs.map((x) => outRename.get(x) ?? x),
  }));
  return { ...g, nodes: [...front, ...nodes, ...back], initializers: inits, valueInfo };
}

/**
 * Whether a model holds float16 / bfloat16 tensors (initializers, inputs, outputs or Constants).
 *
 * @param model the model
 * @returns true for a half model
 *
 * @example
 * ```ts
 * import { hasHalfTensors } from "@lowbit/graph";
 * const g = { name: "g", nodes: [], valueInfo: new Map(), initializers: new Map(),
 *   inputs: [{ name: "x", dtype: "float16" as const }], outputs: [] };
 * if (!hasHalfTensors({ irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {}, graph: g })) throw new Error();
 * ```
 */
export function hasHalfTensors(model: Model): boolean {
  const g = model.graph;
  return [...g.initializers.values()].some((t) => HALF.has(t.dtype)) ||
    g.inputs.some((v) => HALF.has(v.dtype)) || g.outputs.some((v) => HALF.has(v.dtype)) ||
    g.nodes.some((n) =>
      n.op === "Constant" && n.attrs.value?.kind === "tensor" &&
      HALF.has(n.attrs.value.value.dtype)
    );
}

/**
 * Widens a float16 / bfloat16 model to float32 inside, keeping its half inputs and outputs
 * (see the module doc).
 *
 * @param model the model
 * @returns a new model
 *
 * @example
 * ```ts
 * import { createExecutor, widenHalf } from "@lowbit/graph";
 * const model = { irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "",
 *   producerVersion: "", metadata: {}, graph: { name: "g", valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float16" as const, shape: [2] }],
 *   outputs: [{ name: "y", dtype: "float16" as const }],
 *   initializers: new Map([["w", { dtype: "float16" as const, shape: [2], data: Uint16Array.of(0x4000, 0x3c00) }]]),
 *   nodes: [{ name: "m", op: "Mul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }] } };
 * const wide = widenHalf(model);
 * if (wide.graph.initializers.get("w")!.dtype !== "float32") throw new Error();
 * const { y } = await createExecutor(wide).run({ x: { dtype: "float16", shape: [2], data: Uint16Array.of(0x3c00, 0x3c00) } });
 * if (y.dtype !== "float16" || y.data[0] !== 0x4000) throw new Error(); // 1 × 2 = 2
 * ```
 */
export function widenHalf(model: Model): Model {
  return { ...model, graph: widenGraph(model.graph, true) };
}
