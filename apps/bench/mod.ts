/**
 * @lowbit/bench: kernel benchmarks against onnxruntime-web (`lowbit bench`).
 *
 * @example
 * ```ts
 * import { median } from "@lowbit/bench";
 * if (median([1, 5, 3]) !== 3) throw new Error();
 * ```
 *
 * @module
 */

export * from "./gemm.ts";
export * from "./run.ts";
// Kernel types in this package's signatures, re-exported so that its docs are complete.
export type { KernelRunner, KernelSource } from "@lowbit/kernels";
