/**
 * Reading QDQ ONNX back into quantization points: the inverse of {@link exportQdq} for what
 * `inspect` shows. A `DequantizeLinear` of a constant is a weight point (its codes' element type
 * is the format; `axis` / `block_size` and the scale's length give the granularity); a
 * `QuantizeLinear → DequantizeLinear` pair on a run-time value is an activation point.
 *
 * @module
 */

import type { Granularity, QuantPoint } from "@lowbit/core";
import type { DType, Graph, Node, TensorData } from "../ir.ts";
import { constantValue } from "../passes/_const_eval.ts";
import { qdqFormat } from "./qdq.ts";

const QDQ_FORMATS = [
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int4",
  "uint4",
  "fp8_e4m3fn",
  "fp8_e5m2",
];

/**
 * The lowbit format a QDQ element type stands for (`int8`, `float8e4m3fn` → `fp8_e4m3fn`, ...).
 *
 * @param dtype the quantized tensor's element type
 * @returns the format name, or undefined for a type QDQ does not use
 *
 * @example
 * ```ts
 * import { formatOfQdqType } from "@lowbit/graph";
 * if (formatOfQdqType("float8e4m3fn") !== "fp8_e4m3fn" || formatOfQdqType("float32")) {
 *   throw new Error();
 * }
 * ```
 */
export function formatOfQdqType(dtype: DType): string | undefined {
  return QDQ_FORMATS.find((f) => qdqFormat(f)?.dtype === dtype);
}

function attrInt(n: Node, name: string, def: number): number {
  const a = n.attrs[name];
  return a?.kind === "int" ? a.value : def;
}

function floats(t: TensorData): Float32Array {
  return Float32Array.from(t.data as ArrayLike<number>);
}

function ints(t: TensorData | undefined, n: number): Int32Array {
  if (!t) return new Int32Array(n);
  const d = t.data as ArrayLike<number | bigint>;
  return Int32Array.from({ length: d.length }, (_, i) => Number(d[i]));
}

/**
 * The quantization points written in a QDQ graph (top level): one weight point per
 * `DequantizeLinear` of a constant, named by the value it produces (the weight's name), and one
 * activation point per `QuantizeLinear → DequantizeLinear` pair, named by the quantized value.
 * Quantizer `uniform`; mode `affine` when a zero point is not 0.
 *
 * @param graph the graph
 * @returns the points, in node order
 *
 * @example
 * ```ts
 * import { exportQdq, readQdqPoints, type Model } from "@lowbit/graph";
 * const m: Model = { irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "",
 *   producerVersion: "", metadata: {}, graph: { name: "g", valueInfo: new Map(),
 *   initializers: new Map([["w", { dtype: "float32", shape: [2, 2], data: new Float32Array([1, -1, 0.5, 2]) }]]),
 *   inputs: [{ name: "x", dtype: "float32", shape: [1, 2] }], outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }] } };
 * const q = exportQdq(m, {
 *   w: { format: "int8", granularity: { kind: "channel", axis: 1 }, mode: "symmetric",
 *        scale: new Float32Array([1 / 127, 2 / 127]), zeroPoint: new Int32Array(2) },
 *   x: { format: "uint8", granularity: { kind: "tensor" }, mode: "affine",
 *        scale: new Float32Array([0.01]), zeroPoint: new Int32Array([128]) },
 * });
 * const [w, x] = readQdqPoints(q.graph);
 * if (w.value !== "w" || w.params.format !== "int8" || w.params.granularity.kind !== "channel") {
 *   throw new Error(JSON.stringify(w));
 * }
 * if (x.value !== "x" || x.role !== "activation" || x.params.zeroPoint[0] !== 128) throw new Error();
 * ```
 */
export function readQdqPoints(graph: Graph): QuantPoint[] {
  const constants = new Map<string, TensorData>(graph.initializers);
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    if (n.op === "Constant") {
      const v = constantValue(n);
      if (v) constants.set(n.outputs[0], v);
    }
  }
  const out: QuantPoint[] = [];
  for (const dq of graph.nodes) {
    if (dq.op !== "DequantizeLinear") continue;
    const [xName, sName, zName] = dq.inputs;
    const scale = constants.get(sName);
    if (!scale) continue;
    const codes = constants.get(xName);
    const q = codes ? undefined : producer.get(xName);
    if (!codes && q?.op !== "QuantizeLinear") continue;
    const dtype = codes?.dtype ?? constants.get(q!.inputs[2] ?? "")?.dtype ?? "uint8";
    const format = formatOfQdqType(dtype);
    if (!format) continue;
    const zeroPoint = ints(zName ? constants.get(zName) : undefined, scale.data.length);
    const rank = codes?.shape.length ?? 1;
    const axis = attrInt(dq, "axis", 1);
    const blockSize = attrInt(dq, "block_size", 0);
    const granularity: Granularity = scale.data.length === 1 && scale.shape.length <= 1
      ? { kind: "tensor" }
      : blockSize > 0
      ? { kind: "group", axis: axis < 0 ? axis + rank : axis, size: blockSize }
      : { kind: "channel", axis: axis < 0 ? axis + rank : axis };
    out.push({
      value: codes ? dq.outputs[0] : q!.inputs[0],
      role: codes ? "weight" : "activation",
      quantizer: "uniform",
      params: {
        format,
        granularity,
        mode: zeroPoint.some((z) => z !== 0) ? "affine" : "symmetric",
        scale: floats(scale),
        zeroPoint,
      },
    });
  }
  return out;
}
