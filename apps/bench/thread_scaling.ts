/**
 * Two threads against one, measured so that the ratio survives a shared machine: each round
 * runs one call on a one-thread runner, one on a two-thread pool (Atomics dispatch) and one on a
 * two-thread pool with `dispatch: "message"` (a comlink round trip per call), back to back; the
 * ratio is taken per round, then the median over rounds. `lowbit bench` times thread counts
 * minutes apart, which on a busy 2-core VM compares different loads.
 *
 * Every call goes through the public API as `lowbit bench` calls it: A copied in, the kernel,
 * C copied out into a reused array (`gemmS8(…, { out })`, `gemmF32Parallel(…, { out })`; s4s8:
 * `gemmS4Into` between the two copies).
 *
 * ```sh
 * npx deno run -A apps/bench/thread_scaling.ts --sizes 256,512,1024 --impl s8s8,u8s8,s4s8,f32 --rounds 31
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  allocArray,
  createFloatKernelsOn,
  floatKernelSources,
  gemmF32Parallel,
  gemmS4Into,
  gemmS8,
  intKernelSources,
  type KernelRunner,
  loadIntKernels,
  packF32B,
  packS4,
  packS8,
} from "@lowbit/kernels";
import { createPool } from "@lowbit/runtime";
import { median } from "./gemm.ts";

type Impl = "s8s8" | "u8s8" | "s4s8" | "f32";
const IMPLS: readonly Impl[] = ["s8s8", "u8s8", "s4s8", "f32"];
const VARIANTS = ["1t", "2t", "2t-message"] as const;

function bytes(n: number, lo: number, hi: number, seed: number): Int8Array {
  const out = new Int8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) % (hi - lo + 1));
  }
  return out;
}

/** One call of `impl` at M = N = K = `size` on `runner`. */
async function caseOn(
  impl: Impl,
  size: number,
  runner: KernelRunner,
): Promise<() => Promise<unknown>> {
  const M = size, N = size, K = size;
  if (impl === "f32") {
    const kernels = createFloatKernelsOn(runner);
    const b = packF32B(Float32Array.from({ length: K * N }, (_, i) => Math.sin(i)), K, N, {
      kernels,
    });
    const a = Float32Array.from({ length: M * K }, (_, i) => Math.cos(i));
    const out = new Float32Array(M * N);
    return () => gemmF32Parallel(a, M, b, { out });
  }
  const k = await loadIntKernels({ runner, simd: "plain" });
  const out = new Int32Array(M * N);
  const a = bytes(M * K, -128, 127, 7);
  if (impl === "s4s8") {
    const b = packS4(k, bytes(K * N, -8, 7, 11), K, N);
    const ka = allocArray(runner, "s8", M * K), kc = allocArray(runner, "s32", M * N);
    return async () => {
      ka.view().set(a);
      await gemmS4Into(k, ka, M, b, kc);
      out.set(kc.view());
    };
  }
  const b = packS8(k, bytes(K * N, -128, 127, 11), K, N);
  if (impl === "u8s8") {
    const au = new Uint8Array(a.buffer);
    return () => gemmS8(k, au, M, b, { aType: "u8", aZeroPoint: 128, out });
  }
  return () => gemmS8(k, a, M, b, { out });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "256,512,1024" },
      impl: { type: "string", default: IMPLS.join(",") },
      rounds: { type: "string", default: "31" },
    },
  });
  const sizes = values.sizes.split(",").map(Number);
  const impls = values.impl.split(",") as Impl[];
  for (const i of impls) {
    if (!IMPLS.includes(i)) throw new Error(`unknown impl '${i}' (${IMPLS.join(", ")})`);
  }
  const rounds = Number(values.rounds);
  const pools = async (modules: ReturnType<typeof intKernelSources>) => [
    await createPool({ modules, threads: 1 }),
    await createPool({ modules, threads: 2 }),
    await createPool({ modules, threads: 2, dispatch: "message" }),
  ];
  const runners = {
    int: await pools(intKernelSources()),
    float: await pools(floatKernelSources()),
  };
  console.log("impl  size  " + VARIANTS.map((v) => `${v} ms`).join("  ") + "  2t/1t  msg/1t");
  try {
    for (const impl of impls) {
      for (const size of sizes) {
        const rs = impl === "f32" ? runners.float : runners.int;
        const calls = await Promise.all(rs.map((r) => caseOn(impl, size, r)));
        // Warm-up: ≥ 500 ms, so that every thread runs TurboFan code.
        const w0 = performance.now();
        while (performance.now() - w0 < 500) for (const c of calls) await c();
        const n = Math.max(rounds, Math.round((rounds * 512) / size));
        const ms: number[][] = VARIANTS.map(() => []);
        for (let i = 0; i < n; i++) {
          for (let v = 0; v < calls.length; v++) {
            const t0 = performance.now();
            await calls[v]();
            ms[v].push(performance.now() - t0);
          }
        }
        const ratio = (v: number) => median(ms[0].map((t, i) => t / ms[v][i])).toFixed(2);
        console.log(
          `${impl}  ${size}  ${ms.map((t) => median(t).toFixed(3)).join("  ")}  ` +
            `${ratio(1)}  ${ratio(2)}`,
        );
      }
    }
  } finally {
    for (const r of [...runners.int, ...runners.float]) r.close();
  }
}
