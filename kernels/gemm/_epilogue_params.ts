// The parameters of the fused GEMM epilogues (assembly/_int_epilogue.ts): validation of the
// user's requantization / scale parameters (before any kernel memory is touched) and the
// per-column arrays the kernels read. Private to kernels/gemm.

import { fail } from "./_int_checks.ts";
import type { RequantParams } from "./int.ts";

/** Float-output epilogue: y = clamp(f32(f32(acc · scale[j]) + bias[j]), lo, hi). */
export interface ScaleParams {
  /** Scale(s): one per tensor or one per output column (f32). */
  scale: number | Float32Array;
  /** f32 bias per output column, added after scaling. */
  bias?: Float32Array;
  /** `"relu"` clamps below at 0 (default `"none"`). */
  activation?: "none" | "relu";
  /** Clamp bounds [lo, hi] (default [−∞, +∞]); with `"relu"` lo is raised to 0. */
  clamp?: readonly [number, number];
}

/** Requantization parameters as the kernels take them (arrays padded, see `padded`). */
export interface ResolvedRequant {
  /** int32 multipliers per column. */
  mult: Int32Array;
  /** Shifts per column. */
  shift: Int32Array;
  /** int32 bias per column (zeros when none). */
  bias: Int32Array;
  /** Output zero point. */
  zp: number;
  /** Lower clamp (after the zero point, before relu folding: already folded). */
  qmin: number;
  /** Upper clamp. */
  qmax: number;
  /** Output element type. */
  output: "int8" | "uint8";
}

/** Float epilogue parameters as the kernels take them. */
export interface ResolvedScale {
  /** f32 scale per column. */
  scale: Float32Array;
  /** f32 bias per column (zeros when none). */
  bias: Float32Array;
  /** Lower clamp. */
  lo: number;
  /** Upper clamp. */
  hi: number;
}

/** Length of a per-column array the kernels read: N rounded up to 4, plus 4 (zero) padding. */
export function padded(N: number): number {
  return Math.ceil(N / 4) * 4 + 4;
}

function checkInt(v: number, lo: number, hi: number, what: string, name?: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    fail("INVALID_ARGUMENT", `${what} must be an integer in [${lo}, ${hi}], got ${v}`, name);
  }
}

/**
 * An optional per-column bias, checked (type, N elements) and copied into a zeroed padded array
 * (all zeros when there is none).
 */
function columnBias<T extends Int32Array | Float32Array>(
  v: T | undefined,
  ctor: new (n: number) => T,
  typeName: string,
  N: number,
  name?: string,
): T {
  const out = new ctor(padded(N));
  if (v === undefined) return out;
  if (!(v instanceof ctor)) fail("INVALID_ARGUMENT", `bias must be ${typeName}`, name);
  if (v.length !== N) {
    fail("SHAPE_MISMATCH", `bias has ${v.length} elements, expected ${N}`, name);
  }
  out.set(v);
  return out;
}

/**
 * Validates requantization parameters for N output columns and spreads them per column.
 *
 * @param rq the user's parameters
 * @param N output columns
 * @param name tensor name for errors
 * @returns per-column arrays (padded) and bounds
 */
export function resolveRequantParams(
  rq: RequantParams,
  N: number,
  name?: string,
): ResolvedRequant {
  if (rq === null || typeof rq !== "object") {
    fail("INVALID_ARGUMENT", "requantization parameters are missing", name);
  }
  const output = rq.output ?? "int8";
  if (output !== "int8" && output !== "uint8") {
    fail("UNKNOWN_NAME", `unknown requantized output type '${output}' (int8, uint8)`, name);
  }
  const vec = (v: number | Int32Array, what: string, hi: number): Int32Array => {
    const out = new Int32Array(padded(N));
    if (typeof v === "number") {
      checkInt(v, 0, hi, what, name);
      out.fill(v, 0, N);
      return out;
    }
    if (!(v instanceof Int32Array)) {
      fail("INVALID_ARGUMENT", `${what} must be a number or an Int32Array`, name);
    }
    if (v.length !== N) {
      fail(
        "SHAPE_MISMATCH",
        `${what} has ${v.length} elements, expected one per column (${N})`,
        name,
      );
    }
    for (let j = 0; j < N; j++) checkInt(v[j], 0, hi, `${what}[${j}]`, name);
    out.set(v);
    return out;
  };
  const mult = vec(rq.multiplier, "multiplier", 2 ** 31 - 1);
  const shift = vec(rq.shift, "shift", 63);
  const bias = columnBias(rq.bias, Int32Array, "an Int32Array", N, name);
  const [tlo, thi] = output === "int8" ? [-128, 127] : [0, 255];
  const zp = rq.zeroPoint ?? 0;
  checkInt(zp, tlo, thi, "zeroPoint", name);
  let qmin = rq.qmin ?? tlo;
  const qmax = rq.qmax ?? thi;
  checkInt(qmin, tlo, thi, "qmin", name);
  checkInt(qmax, qmin, thi, "qmax", name);
  const act = rq.activation ?? "none";
  if (act !== "none" && act !== "relu") {
    fail("UNKNOWN_NAME", `unknown activation '${act}' (none, relu)`, name);
  }
  if (act === "relu") qmin = Math.min(qmax, Math.max(qmin, zp));
  return { mult, shift, bias, zp, qmin, qmax, output };
}

/**
 * Validates float-epilogue parameters for N output columns.
 *
 * @param sp the user's parameters
 * @param N output columns
 * @param name tensor name for errors
 * @returns per-column arrays (padded) and clamp bounds
 */
export function resolveScaleParams(sp: ScaleParams, N: number, name?: string): ResolvedScale {
  if (sp === null || typeof sp !== "object") {
    fail("INVALID_ARGUMENT", "scale parameters are missing", name);
  }
  const scale = new Float32Array(padded(N));
  if (typeof sp.scale === "number") scale.fill(sp.scale, 0, N);
  else if (sp.scale instanceof Float32Array) {
    if (sp.scale.length !== N) {
      fail("SHAPE_MISMATCH", `scale has ${sp.scale.length} elements, expected 1 or ${N}`, name);
    }
    scale.set(sp.scale);
  } else fail("INVALID_ARGUMENT", "scale must be a number or a Float32Array", name);
  const bias = columnBias(sp.bias, Float32Array, "a Float32Array", N, name);
  let [lo, hi] = sp.clamp ?? [-Infinity, Infinity];
  if (typeof lo !== "number" || typeof hi !== "number" || !(lo <= hi)) {
    fail("INVALID_ARGUMENT", `clamp must be [lo, hi] with lo <= hi, got [${lo}, ${hi}]`, name);
  }
  const act = sp.activation ?? "none";
  if (act !== "none" && act !== "relu") {
    fail("UNKNOWN_NAME", `unknown activation '${act}' (none, relu)`, name);
  }
  if (act === "relu") lo = Math.min(hi, Math.max(lo, 0));
  return { scale, bias, lo: Math.fround(lo), hi: Math.fround(hi) };
}

/**
 * The per-column integer term of the epilogue (padded):
 * colterm[j] = bias[j] − za·colsum[j] + K·za·zb (+ 128·colsum[j] for the relaxed u8 flip),
 * wrapping int32 like the accumulators.
 *
 * @param N columns
 * @param bias int32 bias (padded) or undefined
 * @param colsum Σ_k B[k][j] (at least N), needed when za ≠ 0 or `flip`
 * @param K reduction length
 * @param za activation zero point
 * @param zb weight zero point
 * @param flip add 128·colsum (relaxed kernels with u8 activations)
 * @returns the column terms
 */
export function columnTerms(
  N: number,
  bias: Int32Array | undefined,
  colsum: Int32Array | undefined,
  K: number,
  za: number,
  zb: number,
  flip: boolean,
): Int32Array {
  const out = new Int32Array(padded(N));
  const k0 = Math.imul(Math.imul(K, za), zb);
  const cm = (flip ? 128 : 0) - za;
  for (let j = 0; j < N; j++) {
    let t = (bias ? bias[j] : 0) + k0;
    if (cm !== 0) t += Math.imul(colsum![j], cm);
    out[j] = t | 0;
  }
  return out;
}
