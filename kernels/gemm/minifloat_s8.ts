/**
 * Minifloat weights × int8 activations on the integer path, exactly. FP4 E2M1 values times 2
 * (0, ±1, ±2, ±3, ±4, ±6, ±8, ±12) and FP6 E2M3 values times 8 (±0..±60) are integers that fit
 * in int8, so the weights are packed once as those integers and the s8·s8 → s32 kernels of
 * `int.ts` (GEMM, and GEMV for M = 1) compute Σ_k a[k]·w_int[k][j] exactly in int32; the scale
 * comes afterwards, per column:
 *
 * ```
 * y[i][j] = fround(fround(acc[i][j]) · s[j])  (+ bias[j], rounded to f32)
 * s[j]    = fround(unit · channelScale[j] · aScale)   unit = 1/2 (FP4), 1/8 (FP6 E2M3)
 * ```
 *
 * `refGemmMinifloatS8` (reference_float.ts) computes the same from the codes with plain loops.
 * The integer weights take one byte each (the packed s8 layout of `packS8`), not 4 or 6 bits.
 * Formats whose integer multiples do not fit in int8 (FP8, FP6 E3M2) and block-scaled formats
 * (per-block partial sums) are rejected.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { gemmS8, type IntKernels, type PackedS8, packS8 } from "./int.ts";
import {
  minifloatS8Epilogue,
  type MinifloatS8Format,
  minifloatS8Value,
} from "./reference_float.ts";

export type { MinifloatS8Format } from "./reference_float.ts";

/** Minifloat codes for {@link packMinifloatS8}. */
export interface MinifloatS8Weights {
  /** `"fp4_e2m1fn"` or `"fp6_e2m3fn"`. */
  format: MinifloatS8Format;
  /** Rows (reduction length K). */
  k: number;
  /** Columns (outputs N). */
  n: number;
  /** One code per element (bits right-aligned), in `layout` order. */
  codes: Uint8Array;
  /** `"kn"` (codes[k·N + n], default) or `"nk"` (codes[n·K + k]). */
  layout?: "kn" | "nk";
  /** Optional per-column f32 scale. */
  channelScale?: Float32Array;
}

/** Minifloat weights packed as exact int8 multiples for {@link gemmMinifloatS8}. */
export interface PackedMinifloatS8 {
  /** Discriminant. */
  readonly kind: "minifloat_s8";
  /** The format. */
  readonly format: MinifloatS8Format;
  /** Rows. */
  readonly k: number;
  /** Columns. */
  readonly n: number;
  /** The int8 weights (value / unit), packed for the s8 kernels. */
  readonly packed: PackedS8;
  /** Per-column scale (ones when none was given). */
  readonly channelScale: Float32Array;
  /** Frees the kernel memory (idempotent). */
  free(): void;
}

const FORMATS: readonly MinifloatS8Format[] = ["fp4_e2m1fn", "fp6_e2m3fn"];

/**
 * Packs FP4 E2M1 or FP6 E2M3 codes as exact int8 multiples (×2, ×8) for {@link gemmMinifloatS8}.
 *
 * @param k loaded int kernels
 * @param w codes, shape, layout, optional per-column scale
 * @param name tensor name for error messages
 * @returns the packed weights
 *
 * @example
 * ```ts
 * import { gemmMinifloatS8, loadIntKernels, packMinifloatS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * // fp4 codes 0b0111 = 6, 0b1011 = -1.5 (K = 2, N = 1)
 * const w = packMinifloatS8(k, { format: "fp4_e2m1fn", k: 2, n: 1, codes: new Uint8Array([7, 11]) });
 * const y = await gemmMinifloatS8(k, new Int8Array([3, 2]), 1, w);
 * if (y[0] !== 15) throw new Error(String(y[0])); // 3·6 + 2·(−1.5)
 * w.free();
 * ```
 */
export function packMinifloatS8(
  k: IntKernels,
  w: MinifloatS8Weights,
  name?: string,
): PackedMinifloatS8 {
  const what = `packMinifloatS8(${w.format})`;
  if (!FORMATS.includes(w.format)) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `${what}: no exact int8 path for this format; use one of ${FORMATS.join(", ")}`,
      { tensor: name },
    );
  }
  const { k: K, n: N } = w;
  for (const [v, d] of [[K, "k"], [N, "n"]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new LowbitError("INVALID_ARGUMENT", `${what}: ${d} must be an integer ≥ 1, got ${v}`, {
        tensor: name,
      });
    }
  }
  if (!(w.codes instanceof Uint8Array)) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: codes must be a Uint8Array`, {
      tensor: name,
    });
  }
  if (w.codes.length !== K * N) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what}: codes (${K}×${N}) has ${w.codes.length} elements, expected ${K * N}`,
      { tensor: name },
    );
  }
  const layout = w.layout ?? "kn";
  if (layout !== "kn" && layout !== "nk") {
    throw new LowbitError("UNKNOWN_NAME", `${what}: unknown layout '${layout}' (kn, nk)`, {
      tensor: name,
    });
  }
  if (w.channelScale !== undefined && w.channelScale.length !== N) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what}: channelScale has ${w.channelScale.length} elements, expected ${N}`,
      { tensor: name },
    );
  }
  const limit = w.format === "fp4_e2m1fn" ? 16 : 64;
  const ints = new Int8Array(K * N);
  for (let i = 0; i < ints.length; i++) {
    const c = w.codes[i];
    if (c >= limit) {
      const [kk, j] = layout === "kn" ? [Math.floor(i / N), i % N] : [i % K, Math.floor(i / K)];
      throw new LowbitError(
        "INVALID_TENSOR",
        `${what}: code 0x${c.toString(16)} at (k=${kk}, n=${j}) is not a ${
          limit === 16 ? 4 : 6
        }-bit code`,
        { tensor: name },
      );
    }
    ints[i] = minifloatS8Value(w.format, c);
  }
  const packed = packS8(k, ints, K, N, { layout, name });
  return {
    kind: "minifloat_s8",
    format: w.format,
    k: K,
    n: N,
    packed,
    channelScale: w.channelScale ? Float32Array.from(w.channelScale) : new Float32Array(N).fill(1),
    free(): void {
      packed.free();
    },
  };
}

/** Options of {@link gemmMinifloatS8}. */
export interface GemmMinifloatS8Options {
  /** The activations' scale (default 1): y = (a · aScale) · W. */
  aScale?: number;
  /** Per-column bias (length N), added after the scale. */
  bias?: Float32Array;
  /** Output (length M·N) to write instead of allocating. */
  out?: Float32Array;
  /** Tensor name for error messages. */
  name?: string;
}

/**
 * Y[M×N] = (A · aScale) · W (+ bias) for int8 activations A (M×K) and FP4 / FP6 E2M3 weights
 * packed by {@link packMinifloatS8}: exact int32 sums on the s8 kernels, then the scale (see the
 * module doc for the rounding).
 *
 * @param k loaded int kernels
 * @param a activations, M×K row-major
 * @param m rows of A
 * @param w packed weights
 * @param opts activation scale, bias, output
 * @returns Y, row-major M×N
 *
 * @example
 * ```ts
 * import { gemmMinifloatS8, loadIntKernels, packMinifloatS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * // fp6 e2m3 code 0b001100 = 1.5 (bias 1: 2^0 · 1.5)
 * const w = packMinifloatS8(k, { format: "fp6_e2m3fn", k: 1, n: 1, codes: new Uint8Array([12]) });
 * const y = await gemmMinifloatS8(k, new Int8Array([-4]), 1, w, { aScale: 0.5 });
 * if (y[0] !== -3) throw new Error(String(y[0]));
 * ```
 */
export async function gemmMinifloatS8(
  k: IntKernels,
  a: Int8Array,
  m: number,
  w: PackedMinifloatS8,
  opts: GemmMinifloatS8Options = {},
): Promise<Float32Array> {
  const aScale = opts.aScale ?? 1;
  if (!Number.isFinite(aScale)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `gemmMinifloatS8: aScale must be finite, got ${aScale}`,
      {
        tensor: opts.name,
      },
    );
  }
  if (opts.bias !== undefined && opts.bias.length !== w.n) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `gemmMinifloatS8: bias has ${opts.bias.length} elements, expected ${w.n}`,
      { tensor: opts.name },
    );
  }
  if (opts.out !== undefined && opts.out.length !== m * w.n) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `gemmMinifloatS8: out (${m}×${w.n}) has ${opts.out.length} elements, expected ${m * w.n}`,
      { tensor: opts.name },
    );
  }
  const acc = await gemmS8(k, a, m, w.packed, { name: opts.name });
  const out = opts.out ?? new Float32Array(m * w.n);
  minifloatS8Epilogue(acc, m, w.n, w.format, w.channelScale, aScale, opts.bias, out);
  return out;
}
