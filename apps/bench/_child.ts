// Child process of run.ts: times every selected case of one thread count (lowbit and
// onnxruntime-web, which fixes its thread count per process), shape by shape, interleaved, and
// prints the rows as JSON.
// usage: deno run -A _child.ts <threads> <BenchOptions JSON>

import type { BenchOptions } from "./gemm.ts";
import { collectCases, timeByShape } from "./run.ts";

const [threads, json] = Deno.args;
const opts = JSON.parse(json) as BenchOptions;
const cases = collectCases(opts).filter((c) => c.threads === Number(threads));
console.log(JSON.stringify(await timeByShape(cases, opts)));
// onnxruntime-web keeps worker threads alive: leave explicitly.
Deno.exit(0);
