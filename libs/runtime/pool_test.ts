import assert from "node:assert/strict";
import {
  gemmIntRef,
  gemmS4,
  gemmS4Grouped,
  gemmS8,
  intKernelSources,
  type IntSimd,
  loadIntKernels,
  packS4,
  packS8,
  relaxedSimdSupported,
} from "@lowbit/kernels";
import { createPool, sharedMemorySupported } from "./mod.ts";

function ints(n: number, lo: number, hi: number, seed: number): Int8Array {
  const out = new Int8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = lo + ((s >>> 8) % (hi - lo + 1));
  }
  return out;
}

/** Runs every integer entry point on a runner; returns the outputs as arrays of numbers. */
async function runAll(threads: number, simd: IntSimd): Promise<number[][]> {
  const pool = await createPool({ modules: intKernelSources(), threads });
  try {
    assert.equal(pool.threads, threads);
    assert.equal(pool.shared, threads > 1 && sharedMemorySupported());
    const k = await loadIntKernels({ runner: pool, simd });
    const out: number[][] = [];
    for (const [M, N, K] of [[61, 45, 130], [1, 203, 300], [4, 7, 16]]) {
      const w = ints(K * N, -128, 127, M + N);
      const a = ints(M * K, -128, 127, K);
      const b = packS8(k, w, K, N);
      const c = await gemmS8(k, a, M, b);
      assert.deepEqual([...c], [...gemmIntRef(a, M, K, w, N)], `s8 ${M}×${N}×${K}`);
      out.push([...c]);
      const au = new Uint8Array(a.buffer);
      out.push([...await gemmS8(k, au, M, b, { aType: "u8", aZeroPoint: 3, bZeroPoint: -2 })]);
      b.free();
      const w4 = ints(K * N, -8, 7, N);
      const b4 = packS4(k, w4, K, N);
      out.push([...await gemmS4(k, a, M, b4)]);
      b4.free();
      const G = Math.ceil(K / 32);
      const scales = new Float32Array(N * G).map((_, i) => 0.01 * (1 + (i % 7)));
      const g4 = packS4(k, w4, K, N, { group: 32, scales });
      out.push([...await gemmS4Grouped(k, a, M, g4)]);
      g4.free();
    }
    return out;
  } finally {
    pool.close();
  }
}

const families: IntSimd[] = relaxedSimdSupported() ? ["plain", "relaxed"] : ["plain"];

for (const simd of families) {
  Deno.test(`createPool() 2 threads (Deno Workers) give the same bits as 1 thread (${simd})`, async () => {
    const one = await runAll(1, simd);
    const two = await runAll(2, simd);
    assert.equal(one.length, two.length);
    for (let i = 0; i < one.length; i++) assert.deepEqual(two[i], one[i], `output ${i}`);
  });
}

Deno.test("createPool() rejects a bad thread count", async () => {
  await assert.rejects(() => createPool({ modules: intKernelSources(), threads: 0 }));
});

Deno.test("the kernels and the pool load and run in Node (bundled, worker_threads)", async (t) => {
  const node = ["/usr/bin/node", "/usr/local/bin/node", "/bin/node"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (!node) {
    await t.step({ name: "node not found: skipped", ignore: true, fn: () => {} });
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "lowbit_node_" });
  try {
    const entry = `${dir}/entry.ts`;
    const here = new URL(".", import.meta.url);
    await Deno.writeTextFile(
      entry,
      `export * from "${new URL("mod.ts", here).href}";\n` +
        `export * from "${new URL("../../kernels/gemm/mod.ts", here).href}";\n`,
    );
    const config = new URL("../../deno.json", here).pathname;
    for (
      const [src, out] of [[entry, "lowbit.mjs"], [
        new URL("worker.ts", here).pathname,
        "worker.mjs",
      ]]
    ) {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["bundle", "--quiet", "--config", config, "-o", `${dir}/${out}`, src],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(r.success, `deno bundle ${src}: ${new TextDecoder().decode(r.stderr)}`);
    }
    const smoke = new URL("_node_smoke.mjs", here).pathname;
    for (const flags of [[], ["--experimental-wasm-relaxed-simd"]]) {
      const r = await new Deno.Command(node, {
        args: [...flags, smoke, `${dir}/lowbit.mjs`, `${dir}/worker.mjs`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(r.stdout);
      assert.ok(r.success, `node ${flags.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
      const res = JSON.parse(text) as { results: Record<string, boolean> };
      assert.ok(Object.keys(res.results).some((k) => k.endsWith("/2/shared")), text);
      assert.ok(Object.values(res.results).every((v) => v), text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
