/**
 * @lowbit/runtime: the worker pool that splits kernels across threads (comlink for control,
 * SharedArrayBuffer for data), in Deno, Node `worker_threads` and web workers, with a
 * same-thread fallback. A pool is a `KernelRunner`: pass it to `loadIntKernels({ runner })`
 * (or the float loader) and every GEMM splits over its threads, bit-identical to one thread.
 *
 * @example
 * ```ts
 * import { createPool } from "@lowbit/runtime";
 * import { intKernelSources } from "@lowbit/kernels";
 * const pool = await createPool({ modules: intKernelSources(), threads: 1 });
 * if (pool.shared || pool.threads !== 1) throw new Error("one thread runs in place");
 * pool.close();
 * ```
 *
 * @module
 */

export * from "./pool.ts";
// Kernel types that appear in this package's signatures, re-exported so that its docs are complete.
export type { KernelRunner, KernelSource } from "@lowbit/kernels";
