// Child process of run.ts: times the cases of one `isolate` group and prints them as JSON.
// usage: deno run -A _child.ts <isolate-key> <BenchOptions JSON>

import { type BenchOptions, type BenchResult, createBenchContext, timeCase } from "./gemm.ts";
import { collectCases } from "./run.ts";

const [key, json] = Deno.args;
const opts = JSON.parse(json) as BenchOptions;
const ctx = createBenchContext();
const out: BenchResult[] = [];
try {
  for (const c of collectCases(opts)) {
    if (c.isolate === key) out.push(await timeCase(c, ctx, opts));
  }
} finally {
  ctx.close();
}
console.log(JSON.stringify(out));
// onnxruntime-web keeps worker threads alive: leave explicitly.
Deno.exit(0);
