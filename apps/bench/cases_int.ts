/**
 * Integer benchmark cases: lowbit's int8 / int4 kernels (`lowbit:s8s8`, `lowbit:u8s8`,
 * `lowbit:s4s8`, through the public API: copy-in, kernel, copy-out, as an executor calls them),
 * the int8 → int8 layer with per-channel dyadic requantization fused into the GEMM
 * (`lowbit:s8s8_requant`) and its unfused peer, `gemmS8` then `requantize`
 * (`lowbit:s8s8_requant_sep`: C goes out and back in as int32),
 * and onnxruntime-web's MatMul / MatMulInteger (`ort:f32`, `ort:u8s8`, `ort:s8s8`, one
 * single-node model, `session.run` per call; each thread count in its own child process).
 *
 * @module
 */

import {
  allocArray,
  gemmS4Into,
  gemmS8,
  gemmS8Requant,
  intKernelSources,
  loadIntKernels,
  type PackedS4,
  type PackedS8,
  packS4,
  packS8,
  requantize,
  type RequantParams,
} from "@lowbit/kernels";
import type { BenchCase, BenchContext, Runnable } from "./gemm.ts";
import { tinyMatMulModel, type TinyType } from "./_tiny_onnx.ts";
import { caseSpec, keepingWorker, makeCopies, type Shape } from "./_cases.ts";

/** Deterministic bytes in [lo, hi]. */
function fill<T extends Int8Array | Uint8Array>(out: T, lo: number, hi: number, seed: number): T {
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) % (hi - lo + 1));
  }
  return out;
}

type LowbitImpl =
  | "lowbit:s8s8"
  | "lowbit:u8s8"
  | "lowbit:s4s8"
  | "lowbit:s8s8_requant"
  | "lowbit:s8s8_requant_sep";

/** Per-channel requantization parameters of the `_requant` cases (outputs spread over int8). */
function requantParams(N: number, K: number): RequantParams {
  const shift = 31 + Math.round(Math.log2((40 * Math.sqrt(K)) / 64));
  return {
    multiplier: Int32Array.from({ length: N }, (_, j) => 2 ** 30 + ((j * 7919) % 2 ** 29)),
    shift: Int32Array.from({ length: N }, (_, j) => shift + (j % 3) - 1),
    bias: Int32Array.from({ length: N }, (_, j) => (j % 17) * 64 - 512),
    zeroPoint: -3,
  };
}

function lowbitCase(
  impl: LowbitImpl,
  shape: Shape,
): BenchCase {
  const [, M, N, K, threads] = shape;
  return {
    ...caseSpec(impl, shape),
    async setup(ctx: BenchContext): Promise<Runnable> {
      const runner = await ctx.runner(threads, intKernelSources());
      const k = await loadIntKernels({ runner });
      const s4 = impl === "lowbit:s4s8";
      const wBytes = s4 ? (K * N) / 2 : K * N;
      const n = ctx.copies(M * K + wBytes);
      const { packed, acts } = makeCopies(n, (c): [PackedS8 | PackedS4, Int8Array | Uint8Array] => {
        const w = fill(new Int8Array(K * N), s4 ? -8 : -128, s4 ? 7 : 127, 11 + c);
        return [
          s4 ? packS4(k, w, K, N) : packS8(k, w, K, N),
          impl === "lowbit:u8s8"
            ? fill(new Uint8Array(M * K), 0, 255, 7 + c)
            : fill(new Int8Array(M * K), -128, 127, 7 + c),
        ];
      }, (p) => p.free());
      const rq = requantParams(N, K);
      const out = new Int32Array(M * N);
      const a4 = s4 ? allocArray(runner, "s8", M * K) : undefined;
      const c4 = s4 ? allocArray(runner, "s32", M * N) : undefined;
      return {
        async run(i) {
          const b = packed[i % n], a = acts[i % n];
          if (impl === "lowbit:s8s8_requant") await gemmS8Requant(k, a, M, b as PackedS8, rq);
          else if (impl === "lowbit:s8s8_requant_sep") {
            requantize(k, await gemmS8(k, a, M, b as PackedS8), M, N, rq);
          } else if (a4 && c4) {
            // s4: A copied in, C copied out into `out`, around the in-place entry point.
            a4.view().set(a as Int8Array);
            await gemmS4Into(k, a4, M, b as PackedS4, c4);
            out.set(c4.view());
          } else if (impl === "lowbit:u8s8") {
            // C into a reused array (`out`), as the float cases: a fresh 1 MB array costs
            // ~0.6 ms of page faults, serial time that hides the threads' speed-up.
            await gemmS8(k, a, M, b as PackedS8, { aType: "u8", aZeroPoint: 128, out });
          } else await gemmS8(k, a, M, b as PackedS8, { out });
        },
        dispose() {
          for (const p of packed) p.free();
          a4?.free();
          c4?.free();
        },
      };
    },
  };
}

const ORT_TYPES: Record<"ort:f32" | "ort:u8s8" | "ort:s8s8", [TinyType, TinyType]> = {
  "ort:f32": ["float32", "float32"],
  "ort:u8s8": ["uint8", "int8"],
  "ort:s8s8": ["int8", "int8"],
};

function ortCase(impl: keyof typeof ORT_TYPES, shape: Shape): BenchCase {
  const [, M, N, K, threads] = shape;
  const [aType, bType] = ORT_TYPES[impl];
  return {
    ...caseSpec(impl, shape),
    isolate: `ort:${threads}`,
    async setup(ctx: BenchContext): Promise<Runnable> {
      const ort = await import("onnxruntime-web");
      ort.env.wasm.numThreads = threads;
      const b = aType === "float32"
        ? new Float32Array(K * N).map((_, i) => Math.sin(i) * 0.1)
        : fill(new Int8Array(K * N), -128, 127, 11);
      const model = tinyMatMulModel({
        op: aType === "float32" ? "MatMul" : "MatMulInteger",
        aType,
        bType,
        M,
        K,
        N,
        b,
      });
      const session = await keepingWorker(() => ort.InferenceSession.create(model));
      const elt = aType === "float32" ? 4 : 1;
      const n = ctx.copies(M * K * elt);
      const feeds: Parameters<typeof session.run>[0][] = [];
      for (let c = 0; c < n; c++) {
        const data = aType === "float32"
          ? new Float32Array(M * K).map((_, i) => Math.cos(i + c) * 0.5)
          : aType === "uint8"
          ? fill(new Uint8Array(M * K), 0, 255, 7 + c)
          : fill(new Int8Array(M * K), -128, 127, 7 + c);
        feeds.push({ A: new ort.Tensor(aType, data, [M, K]) });
      }
      return {
        async run(i) {
          await session.run(feeds[i % n]);
        },
        async dispose() {
          await session.release();
        },
      };
    },
  };
}

/**
 * The integer and onnxruntime-web cases for the given shapes.
 *
 * @param shapes `[op, M, N, K, threads]` tuples
 * @returns the cases, lowbit first
 *
 * @example
 * ```ts
 * import { intCases } from "./cases_int.ts";
 * const cs = intCases([["gemm", 64, 64, 64, 1]]);
 * if (!cs.some((c) => c.impl === "ort:s8s8" && c.isolate === "ort:1")) throw new Error();
 * ```
 */
export function intCases(shapes: readonly Shape[]): BenchCase[] {
  const out: BenchCase[] = [];
  for (const s of shapes) {
    for (
      const impl of [
        "lowbit:s8s8",
        "lowbit:u8s8",
        "lowbit:s4s8",
        "lowbit:s8s8_requant",
        "lowbit:s8s8_requant_sep",
      ] as const
    ) {
      out.push(lowbitCase(impl, s));
    }
  }
  for (const s of shapes) {
    for (const impl of ["ort:f32", "ort:u8s8", "ort:s8s8"] as const) out.push(ortCase(impl, s));
  }
  return out;
}
