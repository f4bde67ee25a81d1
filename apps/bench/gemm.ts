/**
 * The GEMM / GEMV benchmark harness behind `lowbit bench`: median of N timed runs after a
 * warm-up, inputs rotated through copies larger than the caches, throughput reported as
 * 2·M·N·K / s (`gops`). Case lists come from `cases_int.ts` (integer kernels and
 * onnxruntime-web) and `cases_float.ts` (float / minifloat kernels); cases that need their own
 * process (onnxruntime-web fixes its thread count per process) declare an `isolate` key and run
 * in a child (`_child.ts`).
 *
 * @module
 */

import process from "node:process";
import type { KernelRunner, KernelSource } from "@lowbit/kernels";
import { createPool } from "@lowbit/runtime";

/** `gemm` (M = N = K) or `gemv` (M = 1). */
export type BenchOp = "gemm" | "gemv";

/** One timed configuration. */
export interface BenchSpec {
  /** Implementation, e.g. `lowbit:s8s8`, `ort:u8s8`. */
  impl: string;
  /** Operation. */
  op: BenchOp;
  /** Rows of A. */
  M: number;
  /** Columns of B. */
  N: number;
  /** Reduction length. */
  K: number;
  /** Threads. */
  threads: number;
}

/** What a case's `setup` returns: the timed body and the clean-up. */
export interface Runnable {
  /**
   * One multiplication; `i` selects the rotating input copy.
   * @param i run index
   */
  run(i: number): Promise<void> | void;
  /** Frees what setup allocated. */
  dispose(): Promise<void> | void;
}

/** Shared resources for case setups. */
export interface BenchContext {
  /**
   * A kernel runner with `threads` threads holding `modules` (pools are cached and shared).
   * @param threads thread count
   * @param modules kernel modules
   */
  runner(threads: number, modules: Record<string, KernelSource>): Promise<KernelRunner>;
  /**
   * How many rotating copies of `bytes` of per-run data exceed the caches (≥ 2).
   * @param bytes bytes touched by one run
   */
  copies(bytes: number): number;
}

/** A benchmark case: a spec plus how to prepare it. */
export interface BenchCase extends BenchSpec {
  /** Cases with the same key run together in one child process (e.g. `"ort:2"`). */
  isolate?: string;
  /**
   * Prepares inputs and returns the timed body.
   * @param ctx shared resources
   */
  setup(ctx: BenchContext): Promise<Runnable>;
}

/** One result row of `lowbit bench --json`. */
export interface BenchResult extends BenchSpec {
  /** Median throughput, 2·M·N·K / s / 1e9. */
  gops: number;
  /**
   * Speed against onnxruntime-web on the same shape and thread count, timed in the same rounds:
   * the median over rounds of t(peer) / t(this) (> 1: faster than the peer). The peer is
   * `ort:u8s8` for integer kernels and `ort:f32` for float / minifloat ones (see
   * {@link peerOf}); absent when the peer was not run alongside, or with `clock: "cpu"`.
   */
  vs_ort?: number;
}

/**
 * The onnxruntime-web case a lowbit implementation is compared with in the same rounds.
 *
 * @param impl implementation name
 * @returns the peer's name, or undefined for onnxruntime-web itself
 *
 * @example
 * ```ts
 * import { peerOf } from "./gemm.ts";
 * if (peerOf("lowbit:s8s8") !== "ort:u8s8" || peerOf("lowbit:fp8w") !== "ort:f32") throw new Error();
 * if (peerOf("ort:f32") !== undefined) throw new Error();
 * ```
 */
export function peerOf(impl: string): string | undefined {
  if (!impl.startsWith("lowbit:")) return undefined;
  const intImpl = /^lowbit:(s8s8|u8s8|s4s8)(_|$)/.test(impl) || impl.endsWith("_s8");
  return intImpl ? "ort:u8s8" : "ort:f32";
}

/** Which cases to run and how long. */
export interface BenchOptions {
  /** Square GEMM sizes (M = N = K). */
  sizes: number[];
  /** GEMV size (N = K, M = 1), 0 for none. */
  gemvSize: number;
  /** Thread counts. */
  threads: number[];
  /** Implementation filters: exact names or prefixes ending in `*` / `:` (e.g. `ort:`). */
  impls: string[];
  /** Operations to run. */
  ops: BenchOp[];
  /** Timed runs per case (median taken). */
  runs: number;
  /** Untimed warm-up runs per case (at least; warm-up also lasts ≥ `warmupMs`). */
  warmup: number;
  /** Minimum warm-up time per case, ms (default 300: V8 tiers wasm up from Liftoff). */
  warmupMs?: number;
  /** Bytes of rotating inputs per case (default 64 MiB: more than the caches). */
  rotateBytes?: number;
  /**
   * `"wall"` (default): median elapsed time per run. `"cpu"`: the process's CPU time over all
   * timed runs, divided by runs and `threads` (a mean: CPU time is accounted in scheduler
   * ticks), robust to time slicing on a loaded machine but blind to thread scaling (so use it
   * for single-thread comparisons only).
   */
  clock?: "wall" | "cpu";
}

/** Defaults: M=N=K ∈ {256, 512, 1024}, GEMV N=K=4096, 1 and 2 threads, 15 runs. */
export const DEFAULT_BENCH_OPTIONS: BenchOptions = {
  sizes: [256, 512, 1024],
  gemvSize: 4096,
  threads: [1, 2],
  impls: [],
  ops: ["gemm", "gemv"],
  runs: 15,
  warmup: 3,
};

/** Bytes of rotating data per case: larger than the last-level cache slice we expect. */
const ROTATE_BYTES = 64 * 1024 * 1024;

/**
 * The specs for the given options (sizes × threads × ops), before impl filtering.
 *
 * @param opts sizes, threads, ops
 * @returns `[op, M, N, K, threads]` tuples
 *
 * @example
 * ```ts
 * import { DEFAULT_BENCH_OPTIONS, shapesFor } from "./gemm.ts";
 * const s = shapesFor({ ...DEFAULT_BENCH_OPTIONS, sizes: [8], gemvSize: 0, threads: [1] });
 * if (JSON.stringify(s) !== '[["gemm",8,8,8,1]]') throw new Error(JSON.stringify(s));
 * ```
 */
export function shapesFor(
  opts: BenchOptions,
): [BenchOp, number, number, number, number][] {
  const out: [BenchOp, number, number, number, number][] = [];
  for (const t of opts.threads) {
    if (opts.ops.includes("gemm")) { for (const s of opts.sizes) out.push(["gemm", s, s, s, t]); }
    if (opts.ops.includes("gemv") && opts.gemvSize > 0) {
      out.push(["gemv", 1, opts.gemvSize, opts.gemvSize, t]);
    }
  }
  return out;
}

/**
 * Whether `impl` passes the filters (none = all).
 *
 * @param impl implementation name
 * @param filters exact names, or prefixes ending in `*` or `:`
 * @returns true if selected
 *
 * @example
 * ```ts
 * import { implSelected } from "./gemm.ts";
 * if (!implSelected("ort:u8s8", ["ort:"]) || implSelected("lowbit:f32", ["lowbit:s8s8"])) {
 *   throw new Error();
 * }
 * ```
 */
export function implSelected(impl: string, filters: readonly string[]): boolean {
  if (filters.length === 0) return true;
  return filters.some((f) =>
    f.endsWith("*")
      ? impl.startsWith(f.slice(0, -1))
      : f.endsWith(":")
      ? impl.startsWith(f)
      : impl === f
  );
}

/**
 * Median of a list of numbers.
 *
 * @param xs samples
 * @returns the median (mean of the middle two for even lengths)
 *
 * @example
 * ```ts
 * import { median } from "./gemm.ts";
 * if (median([3, 1, 2]) !== 2 || median([4, 1, 2, 3]) !== 2.5) throw new Error();
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Creates the shared context (pools cached by thread count and module set).
 *
 * @returns the context; `close()` releases its pools
 *
 * @example
 * ```ts
 * import { createBenchContext } from "./gemm.ts";
 * const ctx = createBenchContext();
 * if (ctx.copies(1 << 30) !== 2) throw new Error("at least two rotating copies");
 * ctx.close();
 * ```
 */
export function createBenchContext(
  rotateBytes: number = ROTATE_BYTES,
): BenchContext & { close(): void } {
  const pools = new Map<string, Promise<KernelRunner>>();
  return {
    runner(threads, modules) {
      const key = `${threads}|${Object.keys(modules).sort().join(",")}`;
      let p = pools.get(key);
      if (!p) {
        p = createPool({ modules, threads });
        pools.set(key, p);
      }
      return p;
    },
    copies(bytes) {
      return Math.max(2, Math.min(64, Math.ceil(rotateBytes / Math.max(1, bytes))));
    },
    close() {
      for (const p of pools.values()) p.then((r) => r.close());
      pools.clear();
    },
  };
}

/**
 * Times one case: `warmup` untimed runs, then `runs` timed runs; returns the median rate.
 *
 * @param c the case
 * @param ctx shared resources
 * @param opts run counts
 * @returns the result row
 *
 * @example
 * ```ts
 * import { createBenchContext, timeCase } from "./gemm.ts";
 * const ctx = createBenchContext();
 * const r = await timeCase({
 *   impl: "noop", op: "gemm", M: 1000, N: 1000, K: 1000, threads: 1,
 *   setup: () => Promise.resolve({ run() {}, dispose() {} }),
 * }, ctx, { runs: 3, warmup: 1 });
 * if (r.impl !== "noop" || !(r.gops > 0)) throw new Error();
 * ctx.close();
 * ```
 */
export async function timeCase(
  c: BenchCase,
  ctx: BenchContext,
  opts: Pick<BenchOptions, "runs" | "warmup" | "clock" | "warmupMs">,
): Promise<BenchResult> {
  return (await timeCases([c], ctx, opts))[0];
}

/**
 * Times a group of cases (typically every implementation of one shape and thread count) with
 * their timed runs interleaved round by round: run 1 of each case, then run 2 of each, ... so
 * that a slow stretch of a shared machine hits every case of the group alike, and reports for
 * each lowbit case the median of its per-round ratios against its onnxruntime-web peer
 * (`vs_ort`) when the peer is in the group. Each case gets `warmup` untimed runs and
 * ≥ `warmupMs` (300) ms of warm-up first. With `clock: "cpu"` the cases are timed one after
 * the other (CPU time is accounted per window).
 *
 * @param cases the group
 * @param ctx shared resources
 * @param opts run counts
 * @returns one result row per case, in order
 *
 * @example
 * ```ts
 * import { createBenchContext, timeCases } from "./gemm.ts";
 * const ctx = createBenchContext();
 * const body = () => Promise.resolve({ run() {}, dispose() {} });
 * const rows = await timeCases([
 *   { impl: "noop", op: "gemm", M: 8, N: 8, K: 8, threads: 1, setup: body },
 *   { impl: "noop", op: "gemm", M: 8, N: 8, K: 8, threads: 2, setup: body },
 * ], ctx, { runs: 3, warmup: 1 });
 * if (rows.map((r) => r.threads).join() !== "1,2") throw new Error();
 * ctx.close();
 * ```
 */
export async function timeCases(
  cases: readonly BenchCase[],
  ctx: BenchContext,
  opts: Pick<BenchOptions, "runs" | "warmup" | "clock" | "warmupMs">,
): Promise<BenchResult[]> {
  const bodies: Runnable[] = [];
  const warmupMs = opts.warmupMs ?? 300;
  try {
    for (const c of cases) bodies.push(await c.setup(ctx));
    const next = bodies.map(() => 0);
    // Warm-up: at least `warmup` runs and 300 ms per case, so that V8 has tiered the wasm up
    // from Liftoff to TurboFan (in every worker) before the timed runs.
    for (let j = 0; j < bodies.length; j++) {
      const w0 = performance.now();
      while (next[j] < opts.warmup || (performance.now() - w0 < warmupMs && next[j] < 1000)) {
        await bodies[j].run(next[j]++);
      }
    }
    const ms: number[] = [];
    const times: number[][] = bodies.map(() => []);
    if (opts.clock === "cpu") {
      // CPU time is accounted in scheduler ticks (ms), too coarse per run: one window, mean.
      for (let j = 0; j < bodies.length; j++) {
        const c0 = process.cpuUsage();
        for (let t = 0; t < opts.runs; t++) await bodies[j].run(next[j]++);
        const u = process.cpuUsage(c0);
        ms.push((u.user + u.system) / 1e3 / cases[j].threads / opts.runs);
      }
    } else {
      for (let t = 0; t < opts.runs; t++) {
        for (let j = 0; j < bodies.length; j++) {
          const t0 = performance.now();
          await bodies[j].run(next[j]++);
          times[j].push(performance.now() - t0);
        }
      }
      for (const ts of times) ms.push(median(ts));
    }
    return cases.map((c, j) => {
      const r: BenchResult = {
        impl: c.impl,
        op: c.op,
        M: c.M,
        N: c.N,
        K: c.K,
        threads: c.threads,
        gops: Math.round((2 * c.M * c.N * c.K) / (ms[j] / 1e3) / 1e9 * 100) / 100,
      };
      const p = cases.findIndex((d) =>
        d.impl === peerOf(c.impl) && d.threads === c.threads && d.op === c.op && d.M === c.M &&
        d.N === c.N && d.K === c.K
      );
      if (p >= 0 && times[j].length > 0) {
        r.vs_ort = Math.round(median(times[p].map((t, i) => t / times[j][i])) * 1000) / 1000;
      }
      return r;
    });
  } finally {
    for (const b of bodies) await b.dispose();
  }
}

/**
 * Formats results as an aligned text table.
 *
 * @param rows results
 * @returns the table
 *
 * @example
 * ```ts
 * import { formatTable } from "./gemm.ts";
 * const t = formatTable([{ impl: "x", op: "gemm", M: 1, N: 1, K: 1, threads: 1, gops: 2 }]);
 * if (!t.includes("gops") || !t.includes("2.00")) throw new Error(t);
 * ```
 */
export function formatTable(rows: readonly BenchResult[]): string {
  const head = ["impl", "op", "M", "N", "K", "threads", "gops", "vs ort"];
  const body = rows.map((r) => [
    r.impl,
    r.op,
    String(r.M),
    String(r.N),
    String(r.K),
    String(r.threads),
    r.gops.toFixed(2),
    r.vs_ort === undefined ? "" : r.vs_ort.toFixed(2),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}
