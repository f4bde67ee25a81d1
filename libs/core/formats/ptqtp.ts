/**
 * PTQTP (post-training quantization to trit-planes): W ≈ α1 · T1 + α2 · T2
 * with two ternary planes T1, T2 ∈ {−1, 0, 1} and two scales per group of
 * consecutive weights, fitted progressively:
 *
 * 1. T1 = absmean ternary of W (BitNet b1.58), α1 = its least-squares scale;
 *    T2 = absmean ternary of the residual W − α1 T1, α2 likewise.
 * 2. Alternate until no trit changes (or `iterations` rounds): with T fixed,
 *    solve the 2×2 ridge-regularized least squares for (α1, α2); with α
 *    fixed, pick for each weight the best of the 9 trit pairs.
 *
 * Each step cannot increase the squared error, so the result is never worse
 * than the single plane of step 1.
 *
 * Codes pack the pair in 4 bits: low 2 bits T1, high 2 bits T2, each 2-bit
 * two's complement (−1 → 0b11). `encode` attaches the scales as
 * `codes.params` = [α1 of group 0, α2 of group 0, α1 of group 1, …]; bare
 * codes decode with α1 = α2 = 1 (the grid −2..2 of `values()`). The last
 * group may be shorter than `groupSize`. NaN / ±Inf input is a `LowbitError`.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Codes, NumberFormat } from "../types.ts";
import { roundHalfEven } from "./_bits.ts";
import { attachParams, rejectNonFinite, tritOf } from "./_scaled.ts";
import type { ScaledCodes } from "./scaled.ts";

/** Options of {@link ptqtpFit}. */
export interface PtqtpOptions {
  /** Weights per (α1, α2) pair; default 128. */
  groupSize?: number;
  /** Maximum alternating rounds; default 20. */
  iterations?: number;
}

/** The result of a PTQTP fit. */
export interface PtqtpFit {
  /** First trit-plane, one trit per weight. */
  t1: Int8Array;
  /** Second trit-plane. */
  t2: Int8Array;
  /** α1 per group. */
  alpha1: Float32Array;
  /** α2 per group. */
  alpha2: Float32Array;
  /** Group size used. */
  groupSize: number;
}

function planeOf(
  w: Float32Array,
  lo: number,
  hi: number,
  t: Int8Array,
): number {
  let s = 0;
  for (let i = lo; i < hi; i++) s += Math.abs(w[i]);
  const g = Math.max(s / (hi - lo), 1e-12);
  let num = 0, den = 0;
  for (let i = lo; i < hi; i++) {
    const v = Math.max(-1, Math.min(1, roundHalfEven(w[i] / g)));
    t[i] = v;
    num += v * w[i];
    den += v * v;
  }
  return den > 0 ? num / den : 0;
}

/**
 * Fits two trit-planes and their per-group scales to `w` (see the module doc).
 *
 * @param w weights (any length; groups are consecutive runs of `groupSize`)
 * @param opts group size and iteration cap
 * @returns the planes and scales
 *
 * @example
 * ```ts
 * import { ptqtpFit } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * // 3·a + 1·b with trits a, b is represented exactly.
 * const w = new Float32Array([4, 2, 3, -1, 0, -4, 1, -3]);
 * const fit = ptqtpFit(w, { groupSize: 8 });
 * const back = w.map((_, i) => fit.alpha1[0] * fit.t1[i] + fit.alpha2[0] * fit.t2[i]);
 * assert.ok(back.every((v, i) => Math.abs(v - w[i]) < 1e-5));
 * ```
 */
export function ptqtpFit(w: Float32Array, opts: PtqtpOptions = {}): PtqtpFit {
  const groupSize = opts.groupSize ?? 128;
  const iterations = opts.iterations ?? 20;
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new LowbitError("INVALID_ARGUMENT", `ptqtp: group size must be ≥ 1, got ${groupSize}`);
  }
  rejectNonFinite(w, "ptqtp");
  const n = w.length, ng = Math.ceil(n / groupSize);
  const t1 = new Int8Array(n), t2 = new Int8Array(n);
  const alpha1 = new Float32Array(ng), alpha2 = new Float32Array(ng);
  const r = new Float32Array(groupSize);
  for (let g = 0; g < ng; g++) {
    const lo = g * groupSize, hi = Math.min(n, lo + groupSize);
    let a1 = planeOf(w, lo, hi, t1);
    for (let i = lo; i < hi; i++) r[i - lo] = w[i] - a1 * t1[i];
    const t2g = new Int8Array(hi - lo);
    let a2 = planeOf(r, 0, hi - lo, t2g);
    t2.set(t2g, lo);
    for (let it = 0; it < iterations; it++) {
      // α step: ridge least squares on [T1 T2] α = w.
      let s11 = 0, s12 = 0, s22 = 0, b1 = 0, b2 = 0;
      for (let i = lo; i < hi; i++) {
        s11 += t1[i] * t1[i];
        s12 += t1[i] * t2[i];
        s22 += t2[i] * t2[i];
        b1 += t1[i] * w[i];
        b2 += t2[i] * w[i];
      }
      const lam = 1e-9 * (s11 + s22 + 1);
      const det = (s11 + lam) * (s22 + lam) - s12 * s12;
      if (det > 0) {
        a1 = ((s22 + lam) * b1 - s12 * b2) / det;
        a2 = ((s11 + lam) * b2 - s12 * b1) / det;
      }
      // T step: best of the nine trit pairs per weight.
      let changed = false;
      for (let i = lo; i < hi; i++) {
        let best = Infinity, bt1 = 0, bt2 = 0;
        for (let u = -1; u <= 1; u++) {
          for (let v = -1; v <= 1; v++) {
            const e = Math.abs(w[i] - a1 * u - a2 * v);
            if (e < best) {
              best = e;
              bt1 = u;
              bt2 = v;
            }
          }
        }
        if (bt1 !== t1[i] || bt2 !== t2[i]) changed = true;
        t1[i] = bt1;
        t2[i] = bt2;
      }
      if (!changed) break;
    }
    alpha1[g] = a1;
    alpha2[g] = a2;
  }
  return { t1, t2, alpha1, alpha2, groupSize };
}

/**
 * The PTQTP format with groups of `groupSize` (see the module doc).
 *
 * @param groupSize weights per (α1, α2) pair (default 128)
 * @returns the format, named "ptqtp" (128) or "ptqtp_g<groupSize>"
 *
 * @example
 * ```ts
 * import { getFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const f = getFormat("ptqtp_g4");
 * const x = new Float32Array([3, -1, 2, 0]);
 * assert.deepEqual([...f.decode(f.encode(x))].map(Math.round), [3, -1, 2, 0]);
 * ```
 */
export function ptqtpFormat(groupSize = 128): NumberFormat {
  const name = groupSize === 128 ? "ptqtp" : `ptqtp_g${groupSize}`;
  return {
    name,
    bits: 4,
    family: "ternary",
    max: 2,
    min: -2,
    minNormal: 1,
    minSubnormal: 1,
    signed: true,
    bitsPerValue: 4 + 64 / groupSize,
    encode(x: Float32Array): ScaledCodes {
      const fit = ptqtpFit(x, { groupSize });
      const codes = new Uint8Array(x.length);
      for (let i = 0; i < x.length; i++) codes[i] = (fit.t1[i] & 3) | ((fit.t2[i] & 3) << 2);
      const params = new Float32Array(2 * fit.alpha1.length);
      for (let g = 0; g < fit.alpha1.length; g++) {
        params[2 * g] = fit.alpha1[g];
        params[2 * g + 1] = fit.alpha2[g];
      }
      return attachParams(codes, 1, params);
    },
    decode(codes: Codes): Float32Array {
      const p = (codes as ScaledCodes).params;
      const out = new Float32Array(codes.length);
      for (let i = 0; i < codes.length; i++) {
        const g = Math.floor(i / groupSize);
        const a1 = p ? p[2 * g] : 1, a2 = p ? p[2 * g + 1] : 1;
        out[i] = a1 * tritOf(codes[i]) + a2 * tritOf(codes[i] >> 2);
      }
      return out;
    },
    values: (): Float32Array => Float32Array.of(-2, -1, 0, 1, 2),
  };
}
