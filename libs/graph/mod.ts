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

// Everything but the ONNX file I/O lives in `in_memory.ts` (the browser's quantize page bundles
// that alone); the file I/O is `onnx_file.ts`.
export * from "./in_memory.ts";
export * from "./onnx_file.ts";
