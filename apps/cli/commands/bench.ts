/**
 * `lowbit bench`: GEMM / GEMV kernel benchmarks against onnxruntime-web.
 *
 * ```sh
 * lowbit bench                       # table: every impl, M=N=K ∈ {256, 512, 1024}, GEMV 4096, 1 and 2 threads
 * lowbit bench --json                # {"results": [{"impl","op","M","N","K","threads","gops","vs_ort"}, ...]}
 * lowbit bench --quick --impl lowbit:s8s8,ort:u8s8 --size 512 --threads 1
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LowbitError } from "@lowbit/core";
import { type BenchOp, DEFAULT_BENCH_OPTIONS, formatTable, runBenchmarks } from "@lowbit/bench";
import type { Command } from "./_command.ts";

const HELP = `usage: lowbit bench [--json] [--quick] [--impl LIST] [--size LIST] [--gemv N]
                    [--threads LIST] [--op gemm|gemv] [--runs N] [--clock wall|cpu]

Times lowbit's kernels and onnxruntime-web (median of N runs, rotating inputs larger
than the caches) and reports 2·M·N·K / s in GOP/s. Every implementation of a shape and
thread count is timed in the same rounds, run by run (lowbit and onnxruntime-web in one
process per thread count), and "vs ort" is the median of the per-run speed ratios against
onnxruntime-web (ort:u8s8 for integer kernels, ort:f32 for float ones; > 1: lowbit faster),
a ratio that survives a machine whose speed drifts.

  --json          print {"results": [{"impl","op","M","N","K","threads","gops","vs_ort"}, ...]}
  --quick         M=N=K=256 and GEMV 1024, 5 runs, short warm-up (a smoke run, < 30 s)
  --impl LIST     comma-separated impls or prefixes (lowbit:s8s8, ort:, lowbit:*)
  --size LIST     comma-separated square sizes (default 256,512,1024)
  --gemv N        GEMV size N=K (default 4096; 0 for none)
  --threads LIST  comma-separated thread counts (default 1,2)
  --op OP         only gemm or only gemv
  --runs N        timed runs per case (default 15)
  --clock C       wall (default) or cpu: process CPU time / threads, robust to a loaded
                  machine for single-thread comparisons (assumes perfect thread scaling)
  -h, --help      this help`;

function list(s: string | undefined, what: string): number[] | undefined {
  if (s === undefined) return undefined;
  const xs = s.split(",").map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new LowbitError("INVALID_ARGUMENT", `--${what}: expected integers, got '${s}'`);
  }
  return xs;
}

/**
 * The `bench` subcommand (`lowbit bench --help` lists its options).
 *
 * @example
 * ```ts
 * import { benchCommand } from "./bench.ts";
 * if (await benchCommand.main(["--help"]) !== 0) throw new Error();
 * ```
 */
export const benchCommand: Command = {
  summary: "benchmark the GEMM kernels against onnxruntime-web",
  async main(args: string[]): Promise<number> {
    let v;
    try {
      v = parseArgs({
        args,
        options: {
          json: { type: "boolean" },
          quick: { type: "boolean" },
          impl: { type: "string" },
          size: { type: "string" },
          gemv: { type: "string" },
          threads: { type: "string" },
          op: { type: "string" },
          runs: { type: "string" },
          clock: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
      }).values;
    } catch (e) {
      throw new LowbitError("INVALID_ARGUMENT", `${(e as Error).message}\n\n${HELP}`);
    }
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const opts = { ...DEFAULT_BENCH_OPTIONS };
    if (v.quick) {
      // A smoke run (< 30 s): short warm-up, 4 MiB of rotating inputs instead of 64.
      Object.assign(opts, {
        sizes: [256],
        gemvSize: 1024,
        runs: 5,
        warmup: 2,
        warmupMs: 50,
        rotateBytes: 4 << 20,
      });
    }
    opts.sizes = list(v.size, "size") ?? opts.sizes;
    opts.gemvSize = list(v.gemv, "gemv")?.[0] ?? opts.gemvSize;
    opts.threads = list(v.threads, "threads") ?? opts.threads;
    opts.runs = list(v.runs, "runs")?.[0] ?? opts.runs;
    if (opts.threads.some((t) => t < 1) || opts.runs < 1) {
      throw new LowbitError("INVALID_ARGUMENT", "--threads and --runs must be ≥ 1");
    }
    if (v.clock !== undefined) {
      if (v.clock !== "wall" && v.clock !== "cpu") {
        throw new LowbitError("INVALID_ARGUMENT", `--clock must be wall or cpu, got '${v.clock}'`);
      }
      opts.clock = v.clock;
    }
    if (v.impl !== undefined) opts.impls = v.impl.split(",").map((s) => s.trim()).filter(Boolean);
    if (v.op !== undefined) {
      if (v.op !== "gemm" && v.op !== "gemv") {
        throw new LowbitError("INVALID_ARGUMENT", `--op must be gemm or gemv, got '${v.op}'`);
      }
      opts.ops = [v.op as BenchOp];
    }
    const results = await runBenchmarks(
      opts,
      v.json ? undefined : (r) => {
        console.error(`  ${r.impl} ${r.op} ${r.M}x${r.N}x${r.K} t${r.threads}: ${r.gops} GOP/s`);
      },
    );
    if (results.length === 0) {
      throw new LowbitError("INVALID_ARGUMENT", "no benchmark matches the filters");
    }
    console.log(v.json ? JSON.stringify({ results }) : formatTable(results));
    return 0;
  },
};
