/**
 * The executor: runs graphs in float32, observes and transforms values as they
 * are produced, and runs QDQ patterns on integer arithmetic.
 *
 * @example
 * ```ts
 * import { createExecutor, supportedOps } from "./mod.ts";
 * if (!supportedOps().includes("Resize")) throw new Error();
 * const graph = {
 *   name: "g",
 *   nodes: [{ name: "neg", op: "Neg", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
 *   inputs: [{ name: "x", dtype: "float32" as const, shape: [1] }],
 *   outputs: [{ name: "y", dtype: "float32" as const, shape: [1] }],
 *   initializers: new Map(),
 *   valueInfo: new Map(),
 * };
 * const { y } = await createExecutor(graph).run({
 *   x: { dtype: "float32", shape: [1], data: new Float32Array([2]) },
 * });
 * if (y.data[0] !== -2) throw new Error();
 * ```
 *
 * @module
 */

export { createExecutor } from "./executor.ts";
export type { Executor, ExecutorOptions, RunOptions } from "./executor.ts";
export { supportedOps } from "./ops/table.ts";
export { isSupportedOp } from "./ops/table.ts";
export { OP_NAMES } from "./ops/types.ts";
export type { OpName } from "./ops/types.ts";
export { fuseQdq } from "./quantized.ts";
export { lowbitModel } from "./lowbit_model.ts";
