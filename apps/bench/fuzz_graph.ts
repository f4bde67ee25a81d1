/**
 * Fuzz soak of lowbit's file decoders (ONNX, safetensors, .npy, lowbit file):
 * mutates the committed fixtures with a seeded PRNG and checks that every case
 * either decodes or raises a LowbitError. A benchmark, not a test.
 *
 * ```sh
 * npx deno run -A apps/bench/fuzz_graph.ts [cases=20000] [seed=1]
 * ```
 *
 * Exits with status 1 when any case throws something else.
 *
 * @module
 */

import { loadCorpus, runFuzz } from "../../libs/graph/_fuzz.ts";

if (import.meta.main) {
  const cases = Number(Deno.args[0] ?? 20000);
  const seed = Number(Deno.args[1] ?? 1);
  const r = runFuzz(loadCorpus(), cases, seed);
  console.log(`fuzz_graph: ${r.cases} cases (seed ${seed}) in ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`  by kind:  ${JSON.stringify(r.byKind)}`);
  console.log(`  accepted: ${r.accepted}`);
  console.log(`  rejected with LowbitError: ${JSON.stringify(r.rejected)}`);
  console.log(`  other exceptions: ${r.failures.length}`);
  for (const f of r.failures.slice(0, 10)) {
    console.log(
      `  - #${f.index} ${f.kind} (${f.mutation}): ${f.error.split("\n").slice(0, 3).join(" | ")}`,
    );
  }
  if (r.failures.length) Deno.exit(1);
}
