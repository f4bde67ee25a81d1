// Node smoke test of @lowbit/kernels + @lowbit/runtime (run by pool_test.ts on a `deno bundle`
// of both): node _node_smoke.mjs <bundle.mjs> <worker.mjs>. Prints one JSON line.
import { pathToFileURL } from "node:url";

const [bundle, worker] = process.argv.slice(2).map((p) => pathToFileURL(p));
const lb = await import(bundle.href);
const M = 37, K = 70, N = 19;
const a = new Int8Array(M * K).map((_, i) => ((i * 37) % 256) - 128);
const w = new Int8Array(K * N).map((_, i) => ((i * 91) % 256) - 128);
const want = lb.gemmIntRef(a, M, K, w, N).join();
const out = { relaxed: lb.relaxedSimdSupported(), results: {} };
for (const threads of [1, 2]) {
  const pool = await lb.createPool({ modules: lb.intKernelSources(), threads, workerUrl: worker });
  try {
    for (const simd of out.relaxed ? ["plain", "relaxed"] : ["plain"]) {
      const k = await lb.loadIntKernels({ runner: pool, simd });
      const b = lb.packS8(k, w, K, N);
      const c = await lb.gemmS8(k, a, M, b);
      b.free();
      out.results[`${simd}/${threads}/${pool.shared ? "shared" : "local"}`] = c.join() === want;
    }
  } finally {
    pool.close();
  }
}
console.log(JSON.stringify(out));
