/**
 * @lowbit/graph: the graph IR, ONNX and safetensors I/O, passes, the executor
 * (float and quantized) and export.
 *
 * @example
 * ```ts
 * import type { Graph } from "@lowbit/graph";
 * const g: Graph = {
 *   name: "empty", nodes: [], inputs: [], outputs: [],
 *   initializers: new Map(), valueInfo: new Map(),
 * };
 * if (g.nodes.length !== 0) throw new Error();
 * ```
 *
 * @module
 */

export type * from "./ir.ts";
export * from "./tensor_data.ts";
export * from "./onnx.ts";
export * from "./onnx_file.ts";
export * from "./npy.ts";
export * from "./safetensors.ts";
export * from "./exec/mod.ts";
export * from "./passes/topo.ts";
export * from "./subgraphs.ts";
export * from "./passes/shape_infer.ts";
export * from "./passes/fold.ts";
export * from "./passes/inline_if.ts";
export * from "./passes/bn_fold.ts";
export * from "./passes/widen_half.ts";
export * from "./passes/quant_points.ts"; // candidate sites (QuantSite), not the quantized model's points
export * from "./passes/opset.ts";
export * from "./export/qdq.ts";
export * from "./export/qdq_read.ts";
export * from "./export/lowbit_file.ts";
export * from "./export/quantized_model.ts";
// Core types that appear in this package's signatures, re-exported so that its docs are complete.
export type {
  Codes,
  ErrorSubject,
  Granularity,
  QParams,
  QuantMode,
  QuantPoint,
  Registry,
} from "@lowbit/core";
