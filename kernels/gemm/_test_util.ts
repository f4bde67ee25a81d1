// Private test helpers of the kernel tests: a deterministic PRNG, random
// inputs, and the float kernel contexts for every available ISA.

import { createFloatKernels, type FloatKernels } from "./float.ts";

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
