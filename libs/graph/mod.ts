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
