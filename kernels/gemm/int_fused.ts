/**
 * Integer GEMM / GEMV with fused epilogues: the tile store applies, in registers, the zero-point
 * terms, the int32 bias and either the dyadic requantization to int8 / uint8 (HAWQ-V3, exactly
 * @lowbit/core's `requantizeDyadic`, with ReLU / clamp) or a float epilogue (per-column scale,
 * bias, clamp). C never goes through memory as int32: the output is written once, at 1 byte (or
 * 4 for f32) per element.
 *
 * The references are `gemmIntRef` followed by `requantizeRef` / `scaleRef` (`reference.ts`).
 *
 * @module
 */

import type {
  GemmS8Options,
  IntActivations,
  IntKernels,
  IntSimd,
  PackedS4,
  PackedS8,
  RequantParams,
} from "./int.ts";
import {
  columnTerms,
  type ResolvedRequant,
  type ResolvedScale,
  resolveRequantParams,
  resolveScaleParams,
  type ScaleParams,
} from "./_epilogue_params.ts";

import { checkActivations, fail } from "./_int_checks.ts";
import type { KernelArray } from "./runner.ts";

export type { ScaleParams } from "./_epilogue_params.ts";

/** A fused integer GEMM epilogue: dyadic requantization to int8/uint8, or a float scale. */
export type Epilogue = "requant" | "scale";

/**
 * Kernel names of the fused variants (`<dtype>_<op>_<out>_<epilogue>_<MRxNRcKR>__<isa>_<variant>`),
 * by epilogue and entry; `null` where the family has no such kernel (the GEMM kernel runs M = 1).
 *
 * @example
 * ```ts
 * import { INT_FUSED_KERNELS } from "@lowbit/kernels";
 * if (INT_FUSED_KERNELS.requant.gemm_s8.plain !== "gemm_s8s8_s8_requant_4x2c8__wasmsimd_dot16x2") {
 *   throw new Error();
 * }
 * ```
 */
export const INT_FUSED_KERNELS: Readonly<
  Record<
    Epilogue,
    & Readonly<
      Record<"gemm_s8" | "gemm_u8" | "gemv_s8" | "gemv_u8", Record<IntSimd, string | null>>
    >
    & {
      readonly gemm_s4: string;
      readonly gemv_s4: string;
    }
  >
> = {
  requant: {
    gemm_s8: {
      plain: "gemm_s8s8_s8_requant_4x2c8__wasmsimd_dot16x2",
      relaxed: "gemm_s8s8_s8_requant_2x2c16__wasmrelaxedsimd_sdot2planes",
    },
    gemm_u8: {
      plain: "gemm_u8s8_s8_requant_4x2c8__wasmsimd_dot16x2",
      relaxed: "gemm_u8s8_s8_requant_2x2c16__wasmrelaxedsimd_sdot2planes",
    },
    gemv_s8: { plain: "gemv_s8s8_s8_requant_1x8c8__wasmsimd_dot16x2", relaxed: null },
    gemv_u8: { plain: "gemv_u8s8_s8_requant_1x8c8__wasmsimd_dot16x2", relaxed: null },
    gemm_s4: "gemm_s4s8_s8_requant_4x2c16__wasmsimd_dot16x2",
    gemv_s4: "gemv_s4s8_s8_requant_1x4c16__wasmsimd_dot16x2",
  },
  scale: {
    gemm_s8: {
      plain: "gemm_s8s8_f32_scale_4x2c8__wasmsimd_dot16x2",
      relaxed: "gemm_s8s8_f32_scale_2x2c16__wasmrelaxedsimd_sdot2planes",
    },
    gemm_u8: {
      plain: "gemm_u8s8_f32_scale_4x2c8__wasmsimd_dot16x2",
      relaxed: "gemm_u8s8_f32_scale_2x2c16__wasmrelaxedsimd_sdot2planes",
    },
    gemv_s8: { plain: "gemv_s8s8_f32_scale_1x8c8__wasmsimd_dot16x2", relaxed: null },
    gemv_u8: { plain: "gemv_u8s8_f32_scale_1x8c8__wasmsimd_dot16x2", relaxed: null },
    gemm_s4: "gemm_s4s8_f32_scale_4x2c16__wasmsimd_dot16x2",
    gemv_s4: "gemv_s4s8_f32_scale_1x4c16__wasmsimd_dot16x2",
  },
};

const PLAIN = "int_gemm";
const RELAXED = "int_gemm_relaxed";

/** The checked operands of one fused call (nothing allocated yet). */
interface Call {
  which: "s8" | "u8" | "s4";
  simd: IntSimd;
  a: Int8Array | Uint8Array;
  M: number;
  K: number;
  N: number;
  kp: number;
  bPtr: number;
  colsumPtr: number;
  za: number;
  zb: number;
}

function checkS8Call(
  k: IntKernels,
  a: IntActivations,
  M: number,
  b: PackedS8,
  opts: GemmS8Options,
): Call {
  const name = opts.name;
  const aType = opts.aType ?? "s8";
  if (aType !== "s8" && aType !== "u8") {
    fail("UNKNOWN_NAME", `unknown activation type '${aType}' (s8, u8)`, name);
  }
  if (b?.kind !== "s8") fail("INVALID_ARGUMENT", "weights must come from packS8", name);
  if (b.simd !== k.simd) {
    fail(
      "INVALID_ARGUMENT",
      `weights were packed for '${b.simd}' kernels, these are '${k.simd}'`,
      name,
    );
  }
  const elems = checkActivations(k, a, M, b.K, aType, name);
  const za = opts.aZeroPoint ?? 0, zb = opts.bZeroPoint ?? 0;
  const [alo, ahi] = aType === "s8" ? [-128, 127] : [0, 255];
  if (!Number.isInteger(za) || za < alo || za > ahi) {
    fail("INVALID_ARGUMENT", `aZeroPoint must be an integer in [${alo}, ${ahi}], got ${za}`, name);
  }
  if (!Number.isInteger(zb) || zb < -128 || zb > 127) {
    fail("INVALID_ARGUMENT", `bZeroPoint must be an integer in [-128, 127], got ${zb}`, name);
  }
  return {
    which: aType,
    simd: k.simd,
    a: elems,
    M,
    K: b.K,
    N: b.N,
    kp: b.kp,
    bPtr: b.ptr,
    colsumPtr: b.colsumPtr,
    za,
    zb,
  };
}

function checkS4Call(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  name?: string,
): Call {
  if (b?.kind !== "s4") fail("INVALID_ARGUMENT", "weights must come from packS4", name);
  if (b.group !== 0) {
    fail("INVALID_ARGUMENT", "the fused int4 epilogues take per-channel weights (no group)", name);
  }
  const elems = checkActivations(k, a, M, b.K, "s8", name);
  return {
    which: "s4",
    simd: "plain",
    a: elems,
    M,
    K: b.K,
    N: b.N,
    kp: b.kp,
    bPtr: b.ptr,
    colsumPtr: 0,
    za: 0,
    zb: 0,
  };
}

/**
 * Runs one fused kernel: places A (rows zero-padded to kp), the epilogue record and its arrays
 * in kernel memory, runs, and copies the output out. Everything is freed on every path.
 */
async function runFused(
  k: IntKernels,
  x: Call,
  ep: Epilogue,
  rq: ResolvedRequant | undefined,
  sp: ResolvedScale | undefined,
): Promise<ArrayBuffer> {
  const r = k.runner;
  const { M, K, N, kp, which } = x;
  const ptrs: number[] = [];
  const alloc = (bytes: number): number => {
    const p = r.alloc(bytes);
    ptrs.push(p);
    return p;
  };
  try {
    // A, zero-padded from K to kp (+16 bytes of zeros past the end).
    const aPtr = alloc(M * kp + 16);
    let mem = new Uint8Array(r.memory.buffer);
    const src = new Uint8Array(x.a.buffer, x.a.byteOffset, x.a.byteLength);
    mem.fill(0, aPtr, aPtr + M * kp + 16);
    if (kp === K) mem.set(src, aPtr);
    else for (let i = 0; i < M; i++) mem.set(src.subarray(i * K, i * K + K), aPtr + i * kp);
    // Row terms: −zb·Σa (zero points) or −8·Σa (the s4 nibble offset).
    const rowmul = which === "s4" ? -8 : -x.zb;
    let rowsumPtr = 0;
    if (rowmul !== 0) {
      rowsumPtr = alloc(Math.ceil(M / 4) * 16 + 16);
      (r.exports(PLAIN).rowsum_s8 as (...a: number[]) => void)(
        0,
        M,
        kp,
        aPtr,
        kp,
        rowsumPtr,
        which === "u8" ? 0 : 1,
      );
    }
    // Column terms: bias, −za·colsum, K·za·zb, and the relaxed u8 flip.
    const flip = x.simd === "relaxed" && which === "u8";
    const colsum = x.za !== 0 || flip
      ? new Int32Array(r.memory.buffer.slice(x.colsumPtr, x.colsumPtr + N * 4))
      : undefined;
    // (The float epilogue adds its f32 bias after scaling: no int32 bias there.)
    const colterm = columnTerms(N, rq?.bias, colsum, K, x.za, x.zb, flip);
    const put = (v: Int32Array | Float32Array): number => {
      const p = alloc(v.byteLength);
      new Uint8Array(r.memory.buffer).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), p);
      return p;
    };
    const coltermPtr = put(colterm);
    const p1 = put(rq ? rq.mult : sp!.scale);
    const p2 = put(rq ? rq.shift : sp!.bias);
    const rec = new Int32Array(8);
    rec.set([rowsumPtr, rowmul, coltermPtr, p1, p2]);
    if (rq) rec.set([rq.zp, rq.qmin, rq.qmax], 5);
    else {
      const f = new Float32Array(rec.buffer);
      f[6] = sp!.lo;
      f[7] = sp!.hi;
    }
    const epPtr = put(rec);
    const esize = ep === "requant" ? 1 : 4;
    const out = alloc(M * N * esize + 16);
    mem = new Uint8Array(r.memory.buffer);
    const names = INT_FUSED_KERNELS[ep];
    if (which === "s4") {
      if (M === 1) await r.run(PLAIN, names.gemv_s4, N, [kp, aPtr, x.bPtr, out, epPtr], 8);
      else await r.run(PLAIN, names.gemm_s4, M, [N, kp, aPtr, kp, x.bPtr, out, N, epPtr], 4);
    } else {
      const gemv = names[which === "s8" ? "gemv_s8" : "gemv_u8"][x.simd];
      const mod = x.simd === "plain" ? PLAIN : RELAXED;
      if (M === 1 && gemv !== null) await r.run(mod, gemv, N, [kp, aPtr, x.bPtr, out, epPtr], 8);
      else {
        const gemm = names[which === "s8" ? "gemm_s8" : "gemm_u8"][x.simd]!;
        await r.run(
          mod,
          gemm,
          M,
          [N, kp, aPtr, kp, x.bPtr, out, N, epPtr],
          x.simd === "plain" ? 4 : 2,
        );
      }
    }
    return r.memory.buffer.slice(out, out + M * N * esize) as ArrayBuffer;
  } finally {
    for (const p of ptrs) r.free(p);
  }
}

/**
 * The fused int8 → int8 (or uint8) layer: C = (A − za)·(B − zb) as in `gemmS8`, then in the same
 * kernel y = clamp(round((C + bias[j]) · multiplier[j] / 2^shift[j]) + zeroPoint, qmin, qmax)
 * (ties toward +∞, saturating; ReLU folds into qmin), bit for bit @lowbit/core's
 * `requantizeDyadic`. Per-tensor or per-channel multipliers and shifts; with
 * `rq.output = "uint8"` the result is a Uint8Array. All inputs are validated before any kernel
 * memory is touched.
 *
 * @param k loaded kernels
 * @param a activations, M×K
 * @param M rows of A
 * @param b packed weights (`packS8`)
 * @param rq requantization parameters
 * @param opts activation type and zero points
 * @returns int8 (or uint8) M×N
 *
 * @example
 * ```ts
 * import { gemmS8Requant, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const b = packS8(k, new Int8Array([100, -100]), 1, 2);
 * const y = await gemmS8Requant(k, new Int8Array([100]), 1, b, {
 *   multiplier: 1, shift: 4, bias: new Int32Array([8, 0]), activation: "relu",
 * });
 * if (y.join() !== "127,0") throw new Error(y.join()); // 10008/16 saturates; relu clamps
 * ```
 */
export async function gemmS8Requant(
  k: IntKernels,
  a: IntActivations,
  M: number,
  b: PackedS8,
  rq: RequantParams,
  opts: GemmS8Options = {},
): Promise<Int8Array | Uint8Array> {
  const x = checkS8Call(k, a, M, b, opts);
  const res = resolveRequantParams(rq, b.N, opts.name);
  const buf = await runFused(k, x, "requant", res, undefined);
  return res.output === "int8" ? new Int8Array(buf) : new Uint8Array(buf);
}

/**
 * The fused int4-weight layer: C = A·W (W int4 per channel, packed by `packS4` without a group),
 * requantized in the kernel exactly as {@link gemmS8Requant}.
 *
 * @param k loaded kernels
 * @param a activations s8, M×K
 * @param M rows of A
 * @param b packed int4 weights
 * @param rq requantization parameters
 * @param name tensor name for error messages
 * @returns int8 (or uint8) M×N
 *
 * @example
 * ```ts
 * import { gemmS4Requant, loadIntKernels, packS4 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const w = packS4(k, new Int8Array([-8, 7]), 2, 1);
 * // (3·−8 + 2·7) = −10; ×1/4 → −2.5 → −2 (ties toward +∞)
 * const y = await gemmS4Requant(k, new Int8Array([3, 2]), 1, w, { multiplier: 1, shift: 2 });
 * if (y[0] !== -2) throw new Error(String(y[0]));
 * ```
 */
export async function gemmS4Requant(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  rq: RequantParams,
  name?: string,
): Promise<Int8Array | Uint8Array> {
  const x = checkS4Call(k, a, M, b, name);
  const res = resolveRequantParams(rq, b.N, name);
  const buf = await runFused(k, x, "requant", res, undefined);
  return res.output === "int8" ? new Int8Array(buf) : new Uint8Array(buf);
}

/**
 * C = (A − za)·(B − zb) as in `gemmS8`, with the float epilogue fused:
 * y = clamp(f32(f32(C · scale[j]) + bias[j]), lo, hi), the product rounded once to f32 from the
 * exact double product (as `Math.fround(c * s)`), then one f32 add (see `scaleRef`).
 *
 * @param k loaded kernels
 * @param a activations, M×K
 * @param M rows of A
 * @param b packed weights (`packS8`)
 * @param sp scale, bias, activation and clamp
 * @param opts activation type and zero points
 * @returns f32 M×N
 *
 * @example
 * ```ts
 * import { gemmS8Scaled, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const b = packS8(k, new Int8Array([2, -3]), 1, 2);
 * const y = await gemmS8Scaled(k, new Int8Array([4]), 1, b, {
 *   scale: new Float32Array([0.5, 0.25]), bias: new Float32Array([1, 1]), activation: "relu",
 * });
 * if (y.join() !== "5,0") throw new Error(y.join()); // 8·0.5 + 1; relu(−12·0.25 + 1)
 * ```
 */
export async function gemmS8Scaled(
  k: IntKernels,
  a: IntActivations,
  M: number,
  b: PackedS8,
  sp: ScaleParams,
  opts: GemmS8Options = {},
): Promise<Float32Array> {
  const x = checkS8Call(k, a, M, b, opts);
  const res = resolveScaleParams(sp, b.N, opts.name);
  return new Float32Array(await runFused(k, x, "scale", undefined, res));
}

/**
 * C = A·W (int4 per channel) with the float epilogue of {@link gemmS8Scaled} fused.
 *
 * @param k loaded kernels
 * @param a activations s8, M×K
 * @param M rows of A
 * @param b packed int4 weights (no group)
 * @param sp scale, bias, activation and clamp
 * @param name tensor name for error messages
 * @returns f32 M×N
 *
 * @example
 * ```ts
 * import { gemmS4Scaled, loadIntKernels, packS4 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const w = packS4(k, new Int8Array([-8, 7]), 2, 1);
 * const y = await gemmS4Scaled(k, new Int8Array([3, 2]), 1, w, { scale: 0.5 });
 * if (y[0] !== -5) throw new Error(String(y[0]));
 * ```
 */
export async function gemmS4Scaled(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  sp: ScaleParams,
  name?: string,
): Promise<Float32Array> {
  const x = checkS4Call(k, a, M, b, name);
  const res = resolveScaleParams(sp, b.N, name);
  return new Float32Array(await runFused(k, x, "scale", undefined, res));
}
