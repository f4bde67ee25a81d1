/**
 * Runs the benchmark: collects the cases of `cases_int.ts` and `cases_float.ts` for the
 * options, times the in-process ones here and each `isolate` group in a child process
 * (`_child.ts`), and returns the results in case order.
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
 * Times the selected cases; `onResult` sees each row as it is measured.
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
  const ctx = createBenchContext();
  try {
    // One group per kernel and shape: its thread counts are timed interleaved (timeCases).
    for (const group of groupByShape(cases.filter((c) => c.isolate === undefined))) {
      const rows = await timeCases(group, ctx, opts);
      group.forEach((c, i) => {
        results.set(c, rows[i]);
        onResult?.(rows[i]);
      });
    }
  } finally {
    ctx.close();
  }
  const keys = [...new Set(cases.map((c) => c.isolate).filter((k) => k !== undefined))];
  for (const key of keys) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_child.ts", import.meta.url).pathname,
        key!,
        JSON.stringify(opts),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`benchmark child '${key}' failed`);
    const rows = JSON.parse(new TextDecoder().decode(out.stdout)) as BenchResult[];
    const mine = cases.filter((c) => c.isolate === key);
    rows.forEach((r, i) => {
      results.set(mine[i], r);
      onResult?.(r);
    });
  }
  return cases.filter((c) => results.has(c)).map((c) => results.get(c)!);
}

/**
 * Groups cases by kernel and shape (`impl`, `op`, M, N, K), keeping first-seen order, so that
 * one kernel's thread counts are timed together.
 *
 * @param cases the cases
 * @returns the groups
 *
 * @example
 * ```ts
 * import { collectCases, groupByShape } from "./run.ts";
 * import { DEFAULT_BENCH_OPTIONS } from "./gemm.ts";
 * const g = groupByShape(collectCases({ ...DEFAULT_BENCH_OPTIONS, impls: ["lowbit:s8s8"] }));
 * if (g.length !== 4 || g.some((x) => x.length !== 2)) throw new Error(); // 3 sizes + gemv
 * ```
 */
export function groupByShape(cases: readonly BenchCase[]): BenchCase[][] {
  const groups = new Map<string, BenchCase[]>();
  for (const c of cases) {
    const key = `${c.impl}|${c.op}|${c.M}|${c.N}|${c.K}`;
    let g = groups.get(key);
    if (!g) groups.set(key, g = []);
    g.push(c);
  }
  return [...groups.values()];
}
