/**
 * A small seeded PRNG (SplitMix32-style mixing of a Weyl sequence), passed
 * explicitly wherever randomness is needed so that runs are reproducible.
 *
 * @module
 */

/** A seeded random source. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Standard normal sample (Box–Muller). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/**
 * Creates a deterministic PRNG from a 32-bit seed.
 *
 * @param seed any integer; the same seed gives the same sequence
 * @returns the generator
 *
 * @example
 * ```ts
 * import { createRng } from "@lowbit/core";
 * const a = createRng(42), b = createRng(42);
 * if (a.next() !== b.next()) throw new Error("not deterministic");
 * ```
 */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
  let spare: number | undefined;
  return {
    next,
    normal(): number {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      let u = next();
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    int(n: number): number {
      return Math.floor(next() * n);
    },
  };
}
