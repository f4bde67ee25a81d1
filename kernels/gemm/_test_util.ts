// Private test helpers of the kernel tests: a deterministic PRNG, random
// inputs, exact comparison, and the float / int kernel contexts for every available ISA.

import assert from "node:assert/strict";
import { createFloatKernels, type FloatKernels } from "./float.ts";
import { type IntKernels, type IntSimd, loadIntKernels, relaxedSimdSupported } from "./int.ts";

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` float32 values uniform in [-scale, scale). */
export function randF32(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Every available float ISA, as contexts (wasmsimd, then relaxed SIMD when supported). */
export function floatContexts(): FloatKernels[] {
  const out = [createFloatKernels({ isa: "wasmsimd" })];
  const auto = createFloatKernels();
  if (auto.isa === "wasmrelaxedsimd") out.push(auto);
  return out;
}

/** `n` integers uniform in [lo, hi], in a new `ctor` array. */
export function randInts<T extends Int8Array | Uint8Array | Int32Array>(
  ctor: new (n: number) => T,
  n: number,
  lo: number,
  hi: number,
  r: () => number,
): T {
  const out = new ctor(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor(r() * (hi - lo + 1));
  return out;
}

/** Asserts exact equality (`Object.is`), reporting the first differing (row, col) of an M×N result. */
export function assertSame(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  N: number,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) {
      assert.fail(
        `${what}: first difference at (row ${Math.floor(i / N)}, col ${i % N}): ` +
          `got ${got[i]}, want ${want[i]}`,
      );
    }
  }
}

/** Every available int kernel family (plain, then relaxed SIMD when supported). */
export const intFamilies: IntSimd[] = relaxedSimdSupported() ? ["plain", "relaxed"] : ["plain"];

const loaded = new Map<IntSimd, IntKernels>();

/** The int kernels of a family, loaded once per test module. */
export async function intKernels(simd: IntSimd): Promise<IntKernels> {
  if (!loaded.has(simd)) loaded.set(simd, await loadIntKernels({ simd }));
  return loaded.get(simd)!;
}

/**
 * A shape sweep [M, N, K]: each of `dims` on each axis, with the partners at the index offsets
 * of `partners` (each pair in all three rotations); shapes whose product exceeds `maxProduct`
 * are skipped to keep the run short.
 */
export function shapeSweep(
  dims: readonly number[],
  partners: readonly (readonly [number, number])[],
  maxProduct: number,
): [number, number, number][] {
  const out: [number, number, number][] = [];
  const n = dims.length;
  for (let i = 0; i < n; i++) {
    for (const [dj, dl] of partners) {
      const s: [number, number, number] = [dims[i], dims[(i + dj) % n], dims[(i + dl) % n]];
      for (const perm of [[0, 1, 2], [1, 2, 0], [2, 0, 1]]) {
        const t: [number, number, number] = [s[perm[0]], s[perm[1]], s[perm[2]]];
        if (t[0] * t[1] * t[2] <= maxProduct) out.push(t);
      }
    }
  }
  return out;
}
