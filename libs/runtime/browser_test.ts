// The kernels and the worker pool in headless Chromium: `deno bundle --platform browser` of
// @lowbit/runtime + @lowbit/kernels and of the worker, served by tools/chromium.ts's runPage, once with
// COOP/COEP headers (crossOriginIsolated: a SharedArrayBuffer pool with a web worker, the
// main thread waiting with Atomics.waitAsync) and once without (no SharedArrayBuffer: the
// same-thread fallback). The page posts its int8 GEMM results back; they must equal the
// scalar reference and the Deno result bit for bit.

import assert from "node:assert/strict";
import { gemmIntRef, gemmS8, intKernelSources, loadIntKernels, packS8 } from "@lowbit/kernels";
import { createPool } from "./mod.ts";
import { findChromium, runPage } from "../../tools/chromium.ts";
import { bundleRuntime } from "./_test_util.ts";

const CHROMIUM = findChromium();

// Shapes that split over two threads (M ≥ 8 with 4-row alignment) and a GEMV (M = 1).
const SHAPES: [number, number, number][] = [[37, 19, 70], [1, 29, 45]];
// u8 activations with both zero points: exercises the row-split rowsum and fix-up kernels.
const ZA = 7, ZB = -3;

function inputs(M: number, N: number, K: number): { a: Int8Array; w: Int8Array } {
  const a = new Int8Array(M * K).map((_, i) => ((i * 37) % 256) - 128);
  const w = new Int8Array(K * N).map((_, i) => ((i * 91 + 5) % 256) - 128);
  return { a, w };
}

// The page: runs createPool (2 threads) + every kernel family on each shape, posts the results.
const PAGE_SCRIPT = `
import * as lb from "./lowbit.js";
const SHAPES = ${JSON.stringify(SHAPES)};
function inputs(M, N, K) {
  const a = new Int8Array(M * K).map((_, i) => ((i * 37) % 256) - 128);
  const w = new Int8Array(K * N).map((_, i) => ((i * 91 + 5) % 256) - 128);
  return { a, w };
}
const report = (body) => fetch("/result", { method: "POST", body: JSON.stringify(body) });
try {
  const pool = await lb.createPool({
    modules: lb.intKernelSources(), threads: 2, workerUrl: new URL("./worker.js", location.href),
  });
  const out = {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    shared: pool.shared, threads: pool.threads, families: [], results: {},
  };
  try {
    for (const simd of ["plain", "relaxed"]) {
      if (simd === "relaxed" && !pool.modules.includes("int_gemm_relaxed")) continue;
      out.families.push(simd);
      const k = await lb.loadIntKernels({ runner: pool, simd });
      for (const [M, N, K] of SHAPES) {
        const { a, w } = inputs(M, N, K);
        const b = lb.packS8(k, w, K, N);
        const s8 = await lb.gemmS8(k, a, M, b);
        const u8 = await lb.gemmS8(k, new Uint8Array(a.buffer), M, b,
          { aType: "u8", aZeroPoint: ${ZA}, bZeroPoint: ${ZB} });
        b.free();
        out.results[simd + "/" + M + "x" + N + "x" + K] = { s8: [...s8], u8: [...u8] };
      }
    }
  } finally {
    pool.close();
  }
  await report(out);
} catch (e) {
  await report({ error: String(e && e.stack || e) });
}
`;

const PAGE = `<!doctype html><meta charset="utf-8"><title>lowbit kernels</title>
<script type="module" src="./page.js"></script>`;

interface PageResult {
  error?: string;
  crossOriginIsolated: boolean;
  shared: boolean;
  threads: number;
  families: string[];
  results: Record<string, { s8: number[]; u8: number[] }>;
}

/** Serves `dir` (with or without COOP/COEP), opens the page in Chromium, returns its report. */
async function runIn(chromium: string, dir: string, isolated: boolean): Promise<PageResult> {
  const files: Record<string, string> = {
    "/": PAGE,
    "/page.js": PAGE_SCRIPT,
    "/lowbit.js": await Deno.readTextFile(`${dir}/lowbit.js`),
    "/worker.js": await Deno.readTextFile(`${dir}/worker.js`),
  };
  return await runPage<PageResult>(chromium, {
    files: (path) => files[path],
    isolated,
    timeoutMs: 20_000,
    label: `isolated: ${isolated}`,
  });
}

Deno.test({
  name: CHROMIUM
    ? "the kernels run in a Chromium web worker (SharedArrayBuffer) and same-thread without it"
    : "the kernels in Chromium: skipped, chromium not found (/usr/bin/chromium)",
  ignore: CHROMIUM === undefined,
  fn: async () => {
    // Deno's own results, on one thread (the reference for the page's bits).
    const k = await loadIntKernels({ simd: "plain" });
    const want: Record<string, { s8: number[]; u8: number[] }> = {};
    for (const [M, N, K] of SHAPES) {
      const { a, w } = inputs(M, N, K);
      const s8 = gemmIntRef(a, M, K, w, N);
      const u8 = gemmIntRef(new Uint8Array(a.buffer), M, K, w, N, "kn", ZA, ZB);
      const b = packS8(k, w, K, N);
      assert.deepEqual(await gemmS8(k, a, M, b), s8, "Deno gemmS8 = reference");
      b.free();
      want[`${M}x${N}x${K}`] = { s8: [...s8], u8: [...u8] };
    }
    // Two threads in Deno too (the same bits whatever the runner).
    const pool = await createPool({ modules: intKernelSources(), threads: 2 });
    try {
      const kp = await loadIntKernels({ runner: pool, simd: "plain" });
      const [M, N, K] = SHAPES[0];
      const { a, w } = inputs(M, N, K);
      const b = packS8(kp, w, K, N);
      assert.deepEqual([...await gemmS8(kp, a, M, b)], want[`${M}x${N}x${K}`].s8);
      b.free();
    } finally {
      pool.close();
    }

    const dir = await Deno.makeTempDir({ prefix: "lowbit_browser_" });
    try {
      await bundleRuntime(dir, "js", "browser");
      const [iso, plain] = await Promise.all([
        runIn(CHROMIUM!, dir, true),
        runIn(CHROMIUM!, dir, false),
      ]);
      const pages: [string, PageResult, boolean][] = [
        ["COOP/COEP", iso, true],
        ["no isolation", plain, false],
      ];
      for (const [label, res, shared] of pages) {
        assert.equal(res.error, undefined, `${label}: the page failed: ${res.error}`);
        assert.equal(res.crossOriginIsolated, shared, `${label}: crossOriginIsolated`);
        assert.equal(res.shared, shared, `${label}: pool.shared`);
        assert.equal(res.threads, shared ? 2 : 1, `${label}: pool.threads`);
        assert.ok(res.families.includes("plain"), `${label}: families ${res.families}`);
        for (const simd of res.families) {
          for (const [key, w] of Object.entries(want)) {
            const got = res.results[`${simd}/${key}`];
            assert.ok(got, `${label}: no result for ${simd}/${key}`);
            assert.deepEqual(got.s8, w.s8, `${label} ${simd} s8 ${key}`);
            assert.deepEqual(got.u8, w.u8, `${label} ${simd} u8 zero points ${key}`);
          }
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
