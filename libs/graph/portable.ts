/**
 * The parts of `@lowbit/graph` a runtime needs, with no file system and no `node:` import
 * anywhere below them, so they run in browsers, web workers and edge workers: ONNX decoding,
 * the lowbit-file decoder, the executor.
 *
 * @example
 * ```ts
 * import { createExecutor, readOnnx } from "@lowbit/graph/portable";
 * const model = readOnnx(Deno.readFileSync("fixtures/digits/mlp.onnx"));
 * const exec = createExecutor(model);
 * if (exec.graph.inputs.length !== 1) throw new Error();
 * ```
 *
 * @module
 */

export type * from "./ir.ts";
export { readOnnx } from "./onnx.ts";
export type { ExternalDataSource, ReadOnnxOptions } from "./onnx.ts";
export { decodeLowbitFile } from "./export/lowbit_file.ts";
export type { LowbitFile, LowbitTensor } from "./export/lowbit_file.ts";
export { createExecutor } from "./exec/executor.ts";
export type { Executor, ExecutorOptions, RunOptions } from "./exec/executor.ts";
export { lowbitModel } from "./exec/lowbit_model.ts";
// Core types that appear in this module's signatures, re-exported so that its docs are complete.
export type { Codes, ErrorSubject, Granularity, QParams, QuantMode } from "@lowbit/core";
