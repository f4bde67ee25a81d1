/**
 * Scalar references (plain loops) for every integer kernel: the kernels must equal these
 * exactly. Integer sums wrap modulo 2^32 like the kernels (`Math.imul`, `| 0`).
 *
 * @module
 */

import type { WeightLayout } from "./int.ts";

function at(b: ArrayLike<number>, K: number, N: number, layout: WeightLayout) {
  return layout === "kn"
    ? (k: number, n: number): number => b[k * N + n]
    : (k: number, n: number): number => b[n * K + k];
}

/**
 * C = Σ_k (A[i][k] − za)·(B[k][j] − zb), wrapping int32: the reference of `gemmS8`
 * (s8 or u8 activations) and of `gemmS4` (int4 values in an Int8Array, za = zb = 0).
 *
 * @param a activations, M×K
 * @param M rows
 * @param K reduction length
 * @param b weights, K×N (`"kn"`) or N×K (`"nk"`)
 * @param N columns
 * @param layout weight layout
 * @param za activation zero point
 * @param zb weight zero point
 * @returns int32 M×N
 *
 * @example
 * ```ts
 * import { gemmIntRef } from "@lowbit/kernels";
 * const c = gemmIntRef(new Int8Array([1, 2]), 1, 2, new Int8Array([3, 4]), 1, "kn");
 * if (c[0] !== 11) throw new Error();
 * ```
 */
export function gemmIntRef(
  a: ArrayLike<number>,
  M: number,
  K: number,
  b: ArrayLike<number>,
  N: number,
  layout: WeightLayout = "kn",
  za = 0,
  zb = 0,
): Int32Array {
  const w = at(b, K, N, layout);
  const c = new Int32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s = (s + Math.imul(a[i * K + k] - za, w(k, j) - zb)) | 0;
      c[i * N + j] = s;
    }
  }
  return c;
}

/**
 * The reference of `gemmS4Grouped`, replaying its fixed f32 summation order: for column j,
 * four lane partials l = 0..3; within each 16-k block lane l sums the integer products at
 * k ≡ 2l, 2l+1 (mod 8); per group g the lane's integer partial P is added as
 * `f_l = f32(f_l + f32(P · scale[j][g]))`; the result is `f32(f32(f0 + f2) + f32(f1 + f3))`.
 *
 * @param a activations s8, M×K
 * @param M rows
 * @param K reduction length
 * @param w int4 weights (−8..7), K×N or N×K
 * @param N columns
 * @param layout weight layout
 * @param group group size along K (multiple of 16)
 * @param scales f32 [N][ceil(K / group)]
 * @returns f32 M×N
 *
 * @example
 * ```ts
 * import { gemmS4GroupedRef } from "@lowbit/kernels";
 * const c = gemmS4GroupedRef(new Int8Array(32).fill(2), 1, 32, new Int8Array(32).fill(-1), 1,
 *   "kn", 32, new Float32Array([0.25]));
 * if (c[0] !== -16) throw new Error(String(c[0]));
 * ```
 */
export function gemmS4GroupedRef(
  a: ArrayLike<number>,
  M: number,
  K: number,
  w: ArrayLike<number>,
  N: number,
  layout: WeightLayout,
  group: number,
  scales: Float32Array,
): Float32Array {
  const f = Math.fround;
  const wt = at(w, K, N, layout);
  const G = Math.ceil(K / group);
  const c = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const lanes = [0, 0, 0, 0];
      for (let g = 0; g < G; g++) {
        const p = [0, 0, 0, 0];
        for (let k = g * group; k < Math.min(K, (g + 1) * group); k++) {
          p[(k & 7) >> 1] += a[i * K + k] * wt(k, j);
        }
        const s = scales[j * G + g];
        for (let l = 0; l < 4; l++) lanes[l] = f(lanes[l] + f(f(p[l]) * s));
      }
      c[i * N + j] = f(f(lanes[0] + lanes[2]) + f(lanes[1] + lanes[3]));
    }
  }
  return c;
}

/**
 * The dyadic rounding the kernels implement, exactly (BigInt): x · multiplier / 2^shift rounded
 * to nearest with ties toward +∞ — the definition of @lowbit/core's `mulShiftRound`, which
 * `int_test.ts` checks this against.
 *
 * @param x int32 value (accumulator + bias, wrapped to int32)
 * @param multiplier integer in [0, 2^31)
 * @param shift integer in [0, 63]
 * @returns the rounded integer (may be outside int8)
 *
 * @example
 * ```ts
 * import { requantizeDyadicRef } from "@lowbit/kernels";
 * if (requantizeDyadicRef(5, 1, 1) !== 3) throw new Error(); // 2.5 → 3
 * if (requantizeDyadicRef(-5, 1, 1) !== -2) throw new Error(); // −2.5 → −2
 * ```
 */
export function requantizeDyadicRef(x: number, multiplier: number, shift: number): number {
  const p = BigInt(x | 0) * BigInt(multiplier);
  if (shift === 0) return Number(p);
  return Number((p + (1n << BigInt(shift - 1))) >> BigInt(shift));
}

/**
 * The reference of `requantize`: y = clamp(round((acc + bias[j]) · m[j] / 2^s[j]) + zp, qmin, qmax),
 * rounding ties toward +∞ ({@link requantizeDyadicRef}).
 *
 * @param acc int32 M×N
 * @param M rows
 * @param N columns
 * @param multiplier per column (Int32Array) or per tensor
 * @param shift per column or per tensor
 * @param bias per column, or undefined
 * @param zp output zero point
 * @param qmin lower clamp
 * @param qmax upper clamp
 * @param output output type (default `"int8"`; `"uint8"` for bounds in [0, 255])
 * @returns int8 (or uint8) M×N
 *
 * @example
 * ```ts
 * import { requantizeRef } from "@lowbit/kernels";
 * const y = requantizeRef(new Int32Array([300, -7]), 1, 2, 1, 1, undefined, 0, -128, 127);
 * if (y.join() !== "127,-3") throw new Error(y.join()); // −3.5 → −3
 * ```
 */
export function requantizeRef(
  acc: Int32Array,
  M: number,
  N: number,
  multiplier: number | Int32Array,
  shift: number | Int32Array,
  bias: Int32Array | undefined,
  zp: number,
  qmin: number,
  qmax: number,
  output: "int8" | "uint8" = "int8",
): Int8Array | Uint8Array {
  const y = output === "int8" ? new Int8Array(M * N) : new Uint8Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const x = (acc[i * N + j] + (bias ? bias[j] : 0)) | 0;
      const m = typeof multiplier === "number" ? multiplier : multiplier[j];
      const s = typeof shift === "number" ? shift : shift[j];
      const q = requantizeDyadicRef(x, m, s) + zp;
      y[i * N + j] = Math.min(qmax, Math.max(qmin, q));
    }
  }
  return y;
}

/**
 * The reference of the fused float epilogue (`gemmS8Scaled`, `gemmS4Scaled`):
 * y = min(hi, max(lo, f32(f32(acc · scale[j]) + bias[j]))), the product of the int32 and the f32
 * scale rounded once to f32 (from the double product, as `Math.fround`), then one f32 add.
 *
 * @param acc int32 M×N
 * @param M rows
 * @param N columns
 * @param scale per column (Float32Array) or per tensor
 * @param bias per column, or undefined
 * @param lo lower clamp
 * @param hi upper clamp
 * @returns f32 M×N
 *
 * @example
 * ```ts
 * import { scaleRef } from "@lowbit/kernels";
 * const y = scaleRef(new Int32Array([3, -8]), 1, 2, 0.5, new Float32Array([1, 1]), 0, Infinity);
 * if (y.join() !== "2.5,0") throw new Error(y.join());
 * ```
 */
export function scaleRef(
  acc: Int32Array,
  M: number,
  N: number,
  scale: number | Float32Array,
  bias: Float32Array | undefined,
  lo: number,
  hi: number,
): Float32Array {
  const f = Math.fround;
  const y = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const s = f(typeof scale === "number" ? scale : scale[j]);
      const v = f(f(acc[i * N + j] * s) + (bias ? bias[j] : 0));
      y[i * N + j] = Math.min(f(hi), Math.max(f(lo), v));
    }
  }
  return y;
}
