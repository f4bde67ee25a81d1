/**
 * Everything `@lowbit/graph` exports except its ONNX file I/O (`onnx_file.ts`: `readOnnxFile`,
 * `writeOnnxFile`, `fileExternalData`, which import `node:path` and register a folder-backed
 * external-data source as they load). The browser's quantize page bundles `@lowbit/pipeline`
 * with `@lowbit/graph` resolved to this module (`tools/bundle.ts`), so a pipeline module that
 * needs graph file I/O fails that build instead of dragging a file system into the page.
 * `mod.ts` is this module plus `onnx_file.ts`.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "./in_memory.ts";
 * const t = readNpy(writeNpy({ dtype: "float32", shape: [2], data: new Float32Array([1, 2]) }));
 * if (t.shape[0] !== 2) throw new Error();
 * ```
 *
 * @module
 */

export type * from "./ir.ts";
export * from "./tensor_data.ts";
export * from "./model_of.ts";
export * from "./onnx.ts";
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
