/**
 * Float and minifloat benchmark cases: `lowbit:f32` (f32 × f32), `lowbit:fp8w` (FP8 E4M3FN
 * weights, per-channel scale), `lowbit:fp4w` (FP4 E2M1 weights, per-channel scale),
 * `lowbit:mxfp4w` (MXFP4: E2M1 + E8M0 scale per 32), `lowbit:nvfp4w` (NVFP4: E2M1 + E4M3
 * scale per 16 + FP32 tensor scale) and `lowbit:fp6w` (FP6 E2M3 weights packed four in three
 * bytes, per-channel scale), all with f32 activations, ops `gemm` and `gemv`; and minifloat
 * weights × int8 activations on the exact integer path (`lowbit:fp4w_s8`: FP4 E2M1 ×2,
 * `lowbit:fp6w_s8`: FP6 E2M3 ×8, as int8 on the s8 kernels, f32 output with per-channel scale).
 *
 * Weight codes are drawn from the codes of Gaussian weights encoded by `@lowbit/core`'s formats
 * (a pool of 64 Ki encoded values, resampled): the code distribution of real weights, not
 * uniform random codes (uniformly random FP8 codes are 5 % subnormal, which real weights almost
 * never are, and subnormal operands are slow on some CPUs). Every case uses the relaxed-SIMD
 * build when the engine has it (`floatKernelSources()`), on the harness's runner (a worker pool
 * for 2 threads: columns split between threads).
 *
 * @module
 */

import { getFormat } from "@lowbit/core";
import {
  createFloatKernelsOn,
  floatKernelSources,
  gemmF32Parallel,
  gemmMinifloatParallel,
  gemmMinifloatS8,
  intKernelSources,
  loadIntKernels,
  type MinifloatS8Format,
  type MinifloatWeightFormat,
  type PackedF32B,
  type PackedMinifloatB,
  type PackedMinifloatS8,
  packF32B,
  packMinifloatB,
  packMinifloatS8,
} from "@lowbit/kernels";
import type { BenchCase, BenchContext, Runnable } from "./gemm.ts";
import { caseSpec, makeCopies, type Shape } from "./_cases.ts";

/** The float implementations and their weight formats (`f32` for plain f32 weights). */
export const FLOAT_IMPLS: Readonly<Record<string, MinifloatWeightFormat | "f32">> = {
  "lowbit:f32": "f32",
  "lowbit:fp8w": "fp8_e4m3fn",
  "lowbit:fp4w": "fp4_e2m1fn",
  "lowbit:mxfp4w": "mxfp4",
  "lowbit:nvfp4w": "nvfp4",
  "lowbit:fp6w": "fp6_e2m3fn",
};

/** The minifloat × int8 implementations and their weight formats. */
export const MINIFLOAT_S8_IMPLS: Readonly<Record<string, MinifloatS8Format>> = {
  "lowbit:fp4w_s8": "fp4_e2m1fn",
  "lowbit:fp6w_s8": "fp6_e2m3fn",
};

/** Largest finite value of each element format (the Gaussian pool is scaled to it). */
const ELEMENT_MAX: Record<string, number> = {
  fp8_e4m3fn: 448,
  fp6_e2m3fn: 7.5,
  fp4_e2m1fn: 6,
};

/** Deterministic uniform numbers in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Standard normal samples (Box–Muller). */
function gaussian(n: number, r: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

const POOL = 65536;
const codePools = new Map<string, Uint8Array>();

/** Codes of 64 Ki Gaussian weights scaled to the element format's range. */
function codePool(element: string): Uint8Array {
  let p = codePools.get(element);
  if (!p) {
    const f = getFormat(element);
    const x = gaussian(POOL, lcg(99));
    let amax = 0;
    for (const v of x) amax = Math.max(amax, Math.abs(v));
    const max = ELEMENT_MAX[element];
    for (let i = 0; i < x.length; i++) x[i] = (x[i] / amax) * max;
    p = Uint8Array.from(f.encode(x));
    codePools.set(element, p);
  }
  return p;
}

function sampleCodes(element: string, len: number, seed: number): Uint8Array {
  const pool = codePool(element);
  const r = lcg(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = pool[(r() * POOL) | 0];
  return out;
}

function weightsFor(format: MinifloatWeightFormat, k: number, n: number, seed: number) {
  const r = lcg(seed + 1);
  if (format === "mxfp4") {
    const scales = Uint8Array.from({ length: Math.ceil(k / 32) * n }, () => 118 + ((r() * 8) | 0));
    return { format, k, n, codes: sampleCodes("fp4_e2m1fn", k * n, seed), scales };
  }
  if (format === "nvfp4") {
    const scales = Uint8Array.from(
      { length: Math.ceil(k / 16) * n },
      () => 0x30 + ((r() * 0x40) | 0),
    );
    return {
      format,
      k,
      n,
      codes: sampleCodes("fp4_e2m1fn", k * n, seed),
      scales,
      tensorScale: 2 ** -9,
    };
  }
  const channelScale = Float32Array.from({ length: n }, () => 0.001 + r() * 0.01);
  return { format, k, n, codes: sampleCodes(format, k * n, seed), channelScale };
}

function floatCase(impl: string, shape: Shape): BenchCase {
  const [, M, N, K, threads] = shape;
  const format = FLOAT_IMPLS[impl];
  return {
    ...caseSpec(impl, shape),
    async setup(ctx: BenchContext): Promise<Runnable> {
      const runner = await ctx.runner(threads, floatKernelSources());
      const kernels = createFloatKernelsOn(runner);
      const bytesPerWeight = format === "f32"
        ? 4
        : format === "fp8_e4m3fn"
        ? 1
        : format === "fp6_e2m3fn"
        ? 0.75
        : 0.5;
      const n = ctx.copies(M * K * 4 + K * N * bytesPerWeight);
      const { packed, acts } = makeCopies(n, (c): [PackedF32B | PackedMinifloatB, Float32Array] => {
        const r = lcg(7 + c);
        let b: PackedF32B | PackedMinifloatB;
        if (format === "f32") {
          b = packF32B(Float32Array.from({ length: K * N }, () => r() - 0.5), K, N, { kernels });
        } else b = packMinifloatB(weightsFor(format, K, N, 11 + c), kernels);
        return [b, Float32Array.from({ length: M * K }, () => r() * 2 - 1)];
      }, (p) => p.dispose());
      const out = new Float32Array(M * N);
      return {
        async run(i) {
          const b = packed[i % n], a = acts[i % n];
          if (b.kind === "f32") await gemmF32Parallel(a, M, b, { out });
          else await gemmMinifloatParallel(a, M, b, { out });
        },
        dispose() {
          for (const p of packed) p.dispose();
        },
      };
    },
  };
}

function minifloatS8Case(impl: string, shape: Shape): BenchCase {
  const [, M, N, K, threads] = shape;
  const format = MINIFLOAT_S8_IMPLS[impl];
  return {
    ...caseSpec(impl, shape),
    async setup(ctx: BenchContext): Promise<Runnable> {
      const runner = await ctx.runner(threads, intKernelSources());
      const k = await loadIntKernels({ runner });
      const n = ctx.copies(M * K + K * N);
      const { packed, acts } = makeCopies(n, (c): [PackedMinifloatS8, Int8Array] => {
        const r = lcg(7 + c);
        const channelScale = Float32Array.from({ length: N }, () => 0.001 + r() * 0.01);
        const codes = sampleCodes(format, K * N, 11 + c);
        return [
          packMinifloatS8(k, { format, k: K, n: N, codes, channelScale }),
          Int8Array.from({ length: M * K }, () => ((r() * 256) | 0) - 128),
        ];
      }, (p) => p.free());
      const out = new Float32Array(M * N);
      return {
        async run(i) {
          await gemmMinifloatS8(k, acts[i % n], M, packed[i % n], { aScale: 0.02, out });
        },
        dispose() {
          for (const p of packed) p.free();
        },
      };
    },
  };
}

/**
 * The float cases for the given shapes: every impl of {@link FLOAT_IMPLS} and
 * {@link MINIFLOAT_S8_IMPLS} for each shape.
 *
 * @param shapes `[op, M, N, K, threads]` tuples
 * @returns the cases
 *
 * @example
 * ```ts
 * import { floatCases } from "./cases_float.ts";
 * const cases = floatCases([["gemm", 8, 8, 8, 1]]);
 * if (cases.length !== 8 || cases[5].impl !== "lowbit:fp6w" || cases[7].impl !== "lowbit:fp6w_s8") {
 *   throw new Error();
 * }
 * ```
 */
export function floatCases(shapes: readonly Shape[]): BenchCase[] {
  const out: BenchCase[] = [];
  for (const s of shapes) {
    for (const impl of Object.keys(FLOAT_IMPLS)) out.push(floatCase(impl, s));
    for (const impl of Object.keys(MINIFLOAT_S8_IMPLS)) out.push(minifloatS8Case(impl, s));
  }
  return out;
}
