// Pieces shared by the benchmark case builders (cases_float.ts, cases_int.ts): the shape tuple
// and its spec, and the rotating input copies, built one by one with the kernel memory of the
// copies made so far freed when building one fails.

import type { BenchOp, BenchSpec } from "./gemm.ts";

/** A case's shape: `[op, M, N, K, threads]`. */
export type Shape = readonly [BenchOp, number, number, number, number];

/**
 * The spec of the case running `impl` at `shape`.
 *
 * @param impl implementation name
 * @param shape `[op, M, N, K, threads]`
 * @returns the spec fields of the case
 */
export function caseSpec(impl: string, [op, M, N, K, threads]: Shape): BenchSpec {
  return { impl, op, M, N, K, threads };
}

/** The weights and activations of every copy; `packed[c]` and `acts[c]` make copy c. */
export interface Copies<W, A> {
  /** Weights of each copy (in kernel memory: the case frees them on dispose). */
  packed: W[];
  /** Activations of each copy. */
  acts: A[];
}

/**
 * Makes `n` input copies with `make(c)`; if a call throws, the weights already made are passed
 * to `free` and the error is rethrown.
 *
 * @param n number of copies
 * @param make copy c's weights and activations
 * @param free releases one copy's weights
 * @returns the copies
 */
export function makeCopies<W, A>(
  n: number,
  make: (c: number) => [W, A],
  free: (w: W) => void,
): Copies<W, A> {
  const packed: W[] = [];
  const acts: A[] = [];
  try {
    for (let c = 0; c < n; c++) {
      const [w, a] = make(c);
      packed.push(w);
      acts.push(a);
    }
  } catch (e) {
    for (const w of packed) free(w);
    throw e;
  }
  return { packed, acts };
}

/**
 * Runs `f` (an onnxruntime-web session creation) and puts back the global `Worker` it may
 * replace: with more than one thread its wasm backend swaps in Node's `worker_threads` Worker,
 * which then breaks lowbit's worker pools in the same process (they must spawn module workers
 * from file URLs). Its own workers exist by the time the session is created.
 *
 * @param f what to run
 * @returns its result
 */
export async function keepingWorker<T>(f: () => Promise<T>): Promise<T> {
  const g = globalThis as { Worker?: unknown };
  const w = g.Worker;
  try {
    return await f();
  } finally {
    g.Worker = w;
  }
}
