import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import {
  allocArray,
  gemmIntRef,
  gemmS4,
  gemmS4Grouped,
  gemmS8,
  gemmS8Into,
  intKernelSources,
  type IntSimd,
  loadIntKernels,
  packS4,
  packS8,
  relaxedSimdSupported,
} from "@lowbit/kernels";
import { createPool, sharedMemorySupported } from "./mod.ts";
import { bundleRuntime } from "./_test_util.ts";

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
async function runAll(
  threads: number,
  simd: IntSimd,
  dispatch: "auto" | "message" = "auto",
): Promise<number[][]> {
  const pool = await createPool({ modules: intKernelSources(), threads, dispatch });
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
      // In place in the pool's memory (A read there by every thread, C written there).
      const ka = allocArray(pool, "u8", M * K), kc = allocArray(pool, "s32", M * N);
      ka.view().set(au);
      await gemmS8Into(k, ka, M, b, kc, { aType: "u8", aZeroPoint: 250, bZeroPoint: 5 });
      assert.deepEqual(
        [...kc.view()],
        [...gemmIntRef(au, M, K, w, N, "kn", 250, 5)],
        `u8 into ${M}×${N}×${K}`,
      );
      out.push([...kc.view()]);
      ka.free();
      kc.free();
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

Deno.test("createPool() with dispatch 'message' (comlink per call) gives the same bits", async () => {
  const one = await runAll(1, "plain");
  const two = await runAll(2, "plain", "message");
  assert.equal(one.length, two.length);
  for (let i = 0; i < one.length; i++) assert.deepEqual(two[i], one[i], `output ${i}`);
  await assert.rejects(
    () => createPool({ modules: intKernelSources(), threads: 2, dispatch: "x" as "auto" }),
    /unknown dispatch 'x'/,
  );
});

Deno.test("createPool() reports a kernel that traps in a worker, and keeps working", async () => {
  const pool = await createPool({ modules: intKernelSources(), threads: 2 });
  try {
    if (!pool.shared) return; // no SharedArrayBuffer: nothing runs in a worker
    const k = await loadIntKernels({ runner: pool, simd: "plain" });
    const c = allocArray(pool, "s32", 8);
    // s32_fixup(m0, m1, N, c, ldc, ...): row 0 (the calling thread) is in bounds, row 1 (the
    // worker) is 2^28 int32 further, past the end of memory: only the worker traps.
    await assert.rejects(
      () => pool.run("int_gemm", "s32_fixup", 2, [4, c.ptr, 1 << 28, 0, 0, 0, 0, 1]),
      (e: unknown) => {
        assert.ok(e instanceof LowbitError, String(e));
        assert.equal(e.code, "INTERNAL");
        assert.match(e.message, /s32_fixup' failed in worker 1: .*out of bounds/);
        return true;
      },
    );
    const w = ints(64 * 8, -128, 127, 3), a = ints(9 * 64, -128, 127, 4);
    const b = packS8(k, w, 64, 8);
    assert.deepEqual([...await gemmS8(k, a, 9, b)], [...gemmIntRef(a, 9, 64, w, 8)]);
    b.free();
  } finally {
    pool.close();
  }
});

Deno.test("createPool() runs calls issued together one after another, each exact", async () => {
  const pool = await createPool({ modules: intKernelSources(), threads: 2 });
  try {
    const k = await loadIntKernels({ runner: pool, simd: "plain" });
    const cases = [0, 1, 2, 3].map((i) => {
      const M = 20 + i, K = 48, N = 12;
      const w = ints(K * N, -128, 127, 10 + i), a = ints(M * K, -128, 127, 20 + i);
      return { M, K, N, w, a, b: packS8(k, w, K, N) };
    });
    const got = await Promise.all(cases.map((c) => gemmS8(k, c.a, c.M, c.b)));
    cases.forEach((c, i) => {
      assert.deepEqual([...got[i]], [...gemmIntRef(c.a, c.M, c.K, c.w, c.N)], `call ${i}`);
      c.b.free();
    });
  } finally {
    pool.close();
  }
});

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
    await bundleRuntime(dir, "mjs");
    const smoke = new URL("_node_smoke.mjs", import.meta.url).pathname;
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
