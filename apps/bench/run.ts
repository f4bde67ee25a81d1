/**
 * Runs the benchmark: collects the cases of `cases_int.ts` and `cases_float.ts` for the
 * options and times them thread count by thread count, every implementation of a shape in the
 * same interleaved rounds (in a child process, `_child.ts`, when onnxruntime-web is among them),
 * and returns the results in case order.
 *
 * @module
 */

import { floatCases } from "./cases_float.ts";
import { intCases } from "./cases_int.ts";
import {
  type BenchCase,
  type BenchOptions,
  type BenchResult,
  createBenchContext,
  implSelected,
  shapesFor,
  timeCases,
} from "./gemm.ts";

/**
 * Every case selected by `opts`, integer cases first.
 *
 * @param opts sizes, threads, ops, impl filters
 * @returns the cases
 *
 * @example
 * ```ts
 * import { collectCases } from "./run.ts";
 * import { DEFAULT_BENCH_OPTIONS } from "./gemm.ts";
 * const cs = collectCases({ ...DEFAULT_BENCH_OPTIONS, impls: ["lowbit:s8s8"] });
 * if (cs.length !== 8) throw new Error(String(cs.length)); // 3 sizes + gemv, × 2 thread counts
 * ```
 */
export function collectCases(opts: BenchOptions): BenchCase[] {
  const shapes = shapesFor(opts);
  return [...intCases(shapes), ...floatCases(shapes)].filter((c) =>
    implSelected(c.impl, opts.impls)
  );
}

/**
 * Times the selected cases; `onResult` sees each row as it is measured. Each thread count is
 * timed on its own, shape by shape, every implementation of a shape interleaved round by round
 * (see `timeCases`); when onnxruntime-web cases are selected (they fix their thread count per
 * process) a thread count's cases, lowbit's and onnxruntime-web's, run together in a child
 * process (`_child.ts`), so that each lowbit row carries its per-round ratio against its peer.
 *
 * @param opts what to run
 * @param onResult progress callback
 * @returns the results in case order
 *
 * @example
 * ```ts
 * import { runBenchmarks } from "./run.ts";
 * import { DEFAULT_BENCH_OPTIONS } from "./gemm.ts";
 * const rows = await runBenchmarks({
 *   ...DEFAULT_BENCH_OPTIONS, sizes: [16], gemvSize: 0, threads: [1], impls: ["lowbit:s4s8"],
 *   runs: 1, warmup: 1,
 * });
 * if (rows.length !== 1 || rows[0].impl !== "lowbit:s4s8") throw new Error();
 * ```
 */
export async function runBenchmarks(
  opts: BenchOptions,
  onResult?: (r: BenchResult) => void,
): Promise<BenchResult[]> {
  const cases = collectCases(opts);
  const results = new Map<BenchCase, BenchResult>();
  for (const t of [...new Set(cases.map((c) => c.threads))]) {
    const mine = cases.filter((c) => c.threads === t);
    let rows: BenchResult[];
    if (mine.every((c) => c.isolate === undefined)) rows = await timeByShape(mine, opts, onResult);
    else {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./_child.ts", import.meta.url).pathname,
          String(t),
          JSON.stringify(opts),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`benchmark child for ${t} thread(s) failed`);
      rows = JSON.parse(new TextDecoder().decode(out.stdout)) as BenchResult[];
      rows.forEach((r) => onResult?.(r));
    }
    mine.forEach((c, i) => results.set(c, rows[i]));
  }
  return cases.filter((c) => results.has(c)).map((c) => results.get(c)!);
}

/**
 * Times cases in this process, shape by shape (`groupByShape`), each group interleaved.
 *
 * @param cases the cases
 * @param opts run counts, warm-up, rotating bytes
 * @param onResult progress callback
 * @returns one row per case, in order
 *
 * @example
 * ```ts
 * import { collectCases, timeByShape } from "./run.ts";
 * import { DEFAULT_BENCH_OPTIONS } from "./gemm.ts";
 * const opts = { ...DEFAULT_BENCH_OPTIONS, sizes: [16], gemvSize: 0, threads: [1], runs: 1,
 *   warmup: 1, warmupMs: 0, impls: ["lowbit:s8s8", "lowbit:f32"] };
 * const rows = await timeByShape(collectCases(opts), opts);
 * if (rows.map((r) => r.impl).join() !== "lowbit:s8s8,lowbit:f32") throw new Error();
 * ```
 */
export async function timeByShape(
  cases: readonly BenchCase[],
  opts: BenchOptions,
  onResult?: (r: BenchResult) => void,
): Promise<BenchResult[]> {
  const ctx = createBenchContext(opts.rotateBytes);
  const out = new Map<BenchCase, BenchResult>();
  try {
    for (const group of groupByShape(cases)) {
      const rows = await timeCases(group, ctx, opts);
      group.forEach((c, i) => {
        out.set(c, rows[i]);
        onResult?.(rows[i]);
      });
    }
  } finally {
    ctx.close();
  }
  return cases.map((c) => out.get(c)!);
}

/**
 * Groups cases by shape and thread count (`op`, M, N, K, threads), keeping first-seen order, so
 * that every implementation of one shape is timed in the same rounds.
 *
 * @param cases the cases
 * @returns the groups
 *
 * @example
 * ```ts
 * import { collectCases, groupByShape } from "./run.ts";
 * import { DEFAULT_BENCH_OPTIONS } from "./gemm.ts";
 * const g = groupByShape(
 *   collectCases({ ...DEFAULT_BENCH_OPTIONS, impls: ["lowbit:s8s8", "ort:u8s8"] }),
 * );
 * if (g.length !== 8 || g.some((x) => x.length !== 2)) throw new Error(); // (3 sizes + gemv) × 2 threads
 * ```
 */
export function groupByShape(cases: readonly BenchCase[]): BenchCase[][] {
  const groups = new Map<string, BenchCase[]>();
  for (const c of cases) {
    const key = `${c.op}|${c.M}|${c.N}|${c.K}|${c.threads}`;
    let g = groups.get(key);
    if (!g) groups.set(key, g = []);
    g.push(c);
  }
  return [...groups.values()];
}
