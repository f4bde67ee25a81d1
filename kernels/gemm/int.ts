/**
 * Integer GEMM / GEMV: typed loader and public API over the AssemblyScript kernels in
 * `assembly/int_gemm.ts` (plain SIMD) and `assembly/int_gemm_relaxed.ts` (relaxed SIMD, exact).
 *
 * Pack B once ({@link packS8}, {@link packS4}), then run {@link gemmS8} / {@link gemmS4} /
 * {@link gemmS4Grouped} any number of times; {@link requantize} turns int32 accumulators into
 * int8 with a dyadic multiplier and shift (`int_fused.ts` fuses it, or a float scale epilogue,
 * into the GEMM's tile store: `gemmS8Requant`, `gemmS4Requant`, `gemmS8Scaled`,
 * `gemmS4Scaled`). With M = 1 the GEMV kernels run, split over columns instead of rows. Every shape and buffer length is validated,
 * with a `LowbitError`, before any kernel memory is touched.
 *
 * Semantics (the scalar twins are in `reference.ts`): B is K×N (`layout: "kn"`, ONNX MatMul) or
 * N×K (`"nk"`, a Linear weight); C = A·B in wrapping int32, with zero points
 * C = Σ_k (A − za)(B − zb).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import * as plainSource from "./_int_gemm_wasm.ts";
import * as relaxedSource from "./_int_gemm_relaxed_wasm.ts";
import {
  createLocalRunner,
  isKernelArray,
  type KernelArray,
  type KernelRunner,
  type KernelSource,
} from "./runner.ts";
import { checkActivations } from "./_int_checks.ts";

/** Which integer kernel family runs: plain WASM SIMD or (exact) relaxed SIMD. */
export type IntSimd = "plain" | "relaxed";

/** Layout of an unpacked weight matrix: `"kn"` is K×N row-major, `"nk"` is N×K row-major. */
export type WeightLayout = "kn" | "nk";

/**
 * Kernel names, XNNPACK style (`<dtype>_<op>_<out>_<MRxNRcKR>__<isa>_<variant>`), by entry.
 *
 * @example
 * ```ts
 * import { INT_KERNELS } from "@lowbit/kernels";
 * if (!INT_KERNELS.gemm_s8.plain.startsWith("gemm_s8s8_s32_")) throw new Error();
 * ```
 */
export const INT_KERNELS: {
  readonly gemm_s8: Record<IntSimd, string>;
  readonly gemm_u8: Record<IntSimd, string>;
  readonly gemv_s8: Record<IntSimd, string>;
  readonly gemv_u8: Record<IntSimd, string>;
  readonly gemm_s4: string;
  readonly gemv_s4: string;
  readonly gemm_s4_group: string;
} = {
  gemm_s8: {
    plain: "gemm_s8s8_s32_4x2c8__wasmsimd_dot16x2",
    relaxed: "gemm_s8s8_s32_2x2c16__wasmrelaxedsimd_sdot2planes",
  },
  gemm_u8: {
    plain: "gemm_u8s8_s32_4x2c8__wasmsimd_dot16x2",
    relaxed: "gemm_u8s8_s32_2x2c16__wasmrelaxedsimd_sdot2planes",
  },
  gemv_s8: {
    plain: "gemv_s8s8_s32_1x8c8__wasmsimd_dot16x2",
    relaxed: "gemv_s8s8_s32_1x2c16__wasmrelaxedsimd_sdot2planes",
  },
  gemv_u8: {
    plain: "gemv_u8s8_s32_1x8c8__wasmsimd_dot16x2",
    relaxed: "gemm_u8s8_s32_2x2c16__wasmrelaxedsimd_sdot2planes",
  },
  gemm_s4: "gemm_s4s8_s32_4x2c16__wasmsimd_dot16x2",
  gemv_s4: "gemv_s4s8_s32_1x4c16__wasmsimd_dot16x2",
  gemm_s4_group: "gemm_s4s8_f32_1x2c16__wasmsimd_dot16x2_group",
};

const PLAIN = "int_gemm";
const RELAXED = "int_gemm_relaxed";

// A tiny module whose export `a` computes i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113) on
// fixed vectors (second operand in 0..127) and returns lane0 + 31·lane3. Validation is not
// enough: Node 20's V8 (--experimental-wasm-relaxed-simd) validates it but computes a
// pre-standard instruction (−78800), so the result is checked too.
const RELAXED_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7f,
  0x03,
  0x02,
  0x01,
  0x00,
  0x07,
  0x05,
  0x01,
  0x01,
  0x61,
  0x00,
  0x00,
  0x0a,
  0x4f,
  0x01,
  0x4d,
  0x01,
  0x01,
  0x7b,
  0xfd,
  0x0c,
  0x80,
  0x7f,
  0xff,
  0x05,
  0x64,
  0x9c,
  0x07,
  0xf9,
  0x01,
  0x02,
  0x03,
  0x04,
  0x80,
  0x80,
  0x7f,
  0x7f,
  0xfd,
  0x0c,
  0x7f,
  0x01,
  0x00,
  0x40,
  0x7f,
  0x7f,
  0x03,
  0x03,
  0x05,
  0x06,
  0x07,
  0x08,
  0x7f,
  0x7e,
  0x7d,
  0x7c,
  0xfd,
  0x0c,
  0xe8,
  0x03,
  0x00,
  0x00,
  0x30,
  0xf8,
  0xff,
  0xff,
  0x03,
  0x00,
  0x00,
  0x00,
  0x04,
  0x00,
  0x00,
  0x00,
  0xfd,
  0x93,
  0x02,
  0x21,
  0x00,
  0x20,
  0x00,
  0xfd,
  0x1b,
  0x00,
  0x20,
  0x00,
  0xfd,
  0x1b,
  0x03,
  0x41,
  0x1f,
  0x6c,
  0x6a,
  0x0b,
]);
const RELAXED_PROBE_RESULT = -38276; // lanes −14809 and −757 (see the vectors in the module)

/**
 * Whether this engine has relaxed SIMD with the standard `relaxed_dot_i8x16_i7x16_add_s`:
 * `WebAssembly.validate` on a tiny module, then one call whose exact result is checked.
 *
 * @returns true if the relaxed kernels can run and give the standard results
 *
 * @example
 * ```ts
 * import { relaxedSimdSupported } from "@lowbit/kernels";
 * if (typeof relaxedSimdSupported() !== "boolean") throw new Error();
 * ```
 */
export function relaxedSimdSupported(): boolean {
  try {
    if (!WebAssembly.validate(RELAXED_PROBE)) return false;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(RELAXED_PROBE));
    return (inst.exports.a as () => number)() === RELAXED_PROBE_RESULT;
  } catch {
    return false;
  }
}

/**
 * The integer kernel modules this engine can run, for a runner or a worker pool: always
 * `int_gemm` (plain SIMD), plus `int_gemm_relaxed` where {@link relaxedSimdSupported}.
 *
 * @returns modules by name
 *
 * @example
 * ```ts
 * import { intKernelSources } from "@lowbit/kernels";
 * if (!("int_gemm" in intKernelSources())) throw new Error();
 * ```
 */
export function intKernelSources(): Record<string, KernelSource> {
  const out: Record<string, KernelSource> = { [PLAIN]: plainSource };
  if (relaxedSimdSupported()) out[RELAXED] = relaxedSource;
  return out;
}

/** Loaded integer kernels: a runner plus the kernel family in use. */
export interface IntKernels {
  /** Where the kernels run (its memory holds every buffer). */
  readonly runner: KernelRunner;
  /** The kernel family chosen at load time. */
  readonly simd: IntSimd;
}

/** Options of {@link loadIntKernels}. */
export interface LoadIntOptions {
  /**
   * `"auto"` (default): `"plain"` where relaxed SIMD is missing (or non-standard); otherwise
   * whichever family runs a small calibration GEMM faster on this machine (both give identical
   * bits, so the choice never changes results). On x86-64 without VNNI the exact relaxed form
   * needs two dots per product and loses; with VNNI / ARM sdot it wins.
   */
  simd?: "auto" | IntSimd;
  /** A runner (e.g. a worker pool) whose modules include {@link intKernelSources}. */
  runner?: KernelRunner;
}

/** Times the two families on a 64×128×512 GEMM (best of 5 each, interleaved). */
function calibrate(runner: KernelRunner): IntSimd {
  const M = 64, N = 128, K = 512;
  const a = runner.alloc(M * K + 16);
  const c = runner.alloc(M * N * 4);
  const bp = runner.alloc(N * K);
  const br = runner.alloc(N * K * 2);
  try {
    new Uint8Array(runner.memory.buffer, a, M * K).fill(0x55);
    const plain = runner.exports(PLAIN)[INT_KERNELS.gemm_s8.plain] as (...x: number[]) => void;
    const relaxed = runner.exports(RELAXED)[INT_KERNELS.gemm_s8.relaxed] as (
      ...x: number[]
    ) => void;
    const best = { plain: Infinity, relaxed: Infinity };
    for (let r = 0; r < 6; r++) {
      let t = performance.now();
      plain(0, M, N, K, a, K, bp, c, N);
      if (r > 0) best.plain = Math.min(best.plain, performance.now() - t);
      t = performance.now();
      relaxed(0, M, N, K, a, K, br, c, N);
      if (r > 0) best.relaxed = Math.min(best.relaxed, performance.now() - t);
    }
    return best.relaxed < best.plain ? "relaxed" : "plain";
  } finally {
    for (const p of [a, c, bp, br]) runner.free(p);
  }
}

/**
 * Loads the integer kernels (on a new single-thread runner unless one is given) and picks the
 * kernel family (see {@link LoadIntOptions.simd}).
 *
 * @param opts kernel family and runner
 * @returns the loaded kernels
 *
 * @example
 * ```ts
 * import { loadIntKernels } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * if (k.simd !== "plain" && k.simd !== "relaxed") throw new Error();
 * ```
 */
export async function loadIntKernels(opts: LoadIntOptions = {}): Promise<IntKernels> {
  const want = opts.simd ?? "auto";
  if (want !== "auto" && want !== "plain" && want !== "relaxed") {
    throw new LowbitError("UNKNOWN_NAME", `unknown simd family '${want}' (auto, plain, relaxed)`);
  }
  // NOTE: "plain" loads (and probes) nothing else: hosts without run-time compilation then
  // need only int_gemm.wasm (see provideKernelModules).
  const runner = opts.runner ??
    await createLocalRunner(want === "plain" ? { [PLAIN]: plainSource } : intKernelSources());
  if (!runner.modules.includes(PLAIN)) {
    throw new LowbitError("INVALID_ARGUMENT", `the runner has no '${PLAIN}' module`);
  }
  const hasRelaxed = runner.modules.includes(RELAXED);
  if (want === "relaxed" && !hasRelaxed) {
    throw new LowbitError(
      "UNSUPPORTED",
      "relaxed SIMD is not available in this engine (Node 20: --experimental-wasm-relaxed-simd)",
    );
  }
  const simd: IntSimd = want !== "auto" ? want : hasRelaxed ? calibrate(runner) : "plain";
  return { runner, simd };
}

// *** validation helpers ***

function checkDim(v: number, what: string, name?: string): void {
  if (!Number.isInteger(v) || v < 1 || v > 1 << 24) {
    throw new LowbitError("INVALID_ARGUMENT", `${what} must be an integer in [1, 2^24], got ${v}`, {
      tensor: name,
    });
  }
}

function checkLen(arr: { length: number }, want: number, what: string, name?: string): void {
  if (arr.length !== want) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what} has ${arr.length} elements, expected ${want}`,
      { tensor: name },
    );
  }
}

function checkInt(v: number, lo: number, hi: number, what: string, name?: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${what} must be an integer in [${lo}, ${hi}], got ${v}`,
      {
        tensor: name,
      },
    );
  }
}

function u8(k: IntKernels): Uint8Array {
  return new Uint8Array(k.runner.memory.buffer);
}

function fn(k: IntKernels, module: string, name: string): (...a: number[]) => void {
  return k.runner.exports(module)[name] as (...a: number[]) => void;
}

const roundUp = (x: number, m: number): number => Math.ceil(x / m) * m;

// *** packed weights ***

/** s8 weights packed once for {@link gemmS8}; owns kernel memory until `free()`. */
export interface PackedS8 {
  /** Always `"s8"`. */
  readonly kind: "s8";
  /** Reduction length. */
  readonly K: number;
  /** Output columns. */
  readonly N: number;
  /** K padded to the kernel's k-block. */
  readonly kp: number;
  /** Kernel family the packing is for. */
  readonly simd: IntSimd;
  /** Packed bytes in kernel memory. */
  readonly ptr: number;
  /** Column sums Σ_k B[k][j] (int32[N]) in kernel memory, for zero points. */
  readonly colsumPtr: number;
  /** Releases the kernel memory. */
  free(): void;
}

/** The weights as N×K row-major (a blocked transpose for `"kn"`, the input itself for `"nk"`). */
function asNK(b: Int8Array, K: number, N: number, layout: WeightLayout): Int8Array {
  if (layout === "nk") return b;
  const out = new Int8Array(K * N);
  const T = 64;
  for (let k0 = 0; k0 < K; k0 += T) {
    for (let n0 = 0; n0 < N; n0 += T) {
      const k1 = Math.min(K, k0 + T), n1 = Math.min(N, n0 + T);
      for (let k = k0; k < k1; k++) {
        for (let n = n0; n < n1; n++) out[n * K + k] = b[k * N + n];
      }
    }
  }
  return out;
}

function checkLayout(layout: string, name?: string): void {
  if (layout !== "kn" && layout !== "nk") {
    throw new LowbitError("UNKNOWN_NAME", `unknown weight layout '${layout}' (kn, nk)`, {
      tensor: name,
    });
  }
}

/** Options of {@link packS8}. */
export interface PackOptions {
  /** Layout of the input (default `"kn"`). */
  layout?: WeightLayout;
  /** Tensor name for error messages. */
  name?: string;
}

/**
 * Packs s8 weights for {@link gemmS8} (once per weight).
 *
 * @param k loaded kernels
 * @param b weights, K×N (`layout: "kn"`) or N×K (`"nk"`)
 * @param K reduction length
 * @param N output columns
 * @param opts layout and name
 * @returns the packed weights
 *
 * @example
 * ```ts
 * import { gemmS8, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const b = packS8(k, new Int8Array([1, 2, 3, 4, 5, 6]), 2, 3); // B = [[1,2,3],[4,5,6]]
 * const c = await gemmS8(k, new Int8Array([1, -1]), 1, b);
 * if (c.join() !== "-3,-3,-3") throw new Error(c.join());
 * b.free();
 * ```
 */
export function packS8(
  k: IntKernels,
  b: Int8Array,
  K: number,
  N: number,
  opts: PackOptions = {},
): PackedS8 {
  const layout = opts.layout ?? "kn";
  checkLayout(layout, opts.name);
  checkDim(K, "K", opts.name);
  checkDim(N, "N", opts.name);
  if (!(b instanceof Int8Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "weights must be an Int8Array", {
      tensor: opts.name,
    });
  }
  checkLen(b, K * N, `weights (${layout === "kn" ? "K×N" : "N×K"} = ${K}×${N})`, opts.name);
  const w = asNK(b, K, N, layout);
  const nb = Math.ceil(N / 2);
  const colsum = new Int32Array(roundUp(N, 4));
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let kk = n * K, e = kk + K; kk < e; kk++) s += w[kk];
    colsum[n] = s;
  }
  const kp = roundUp(K, 16); // 16 so that A rows share one padding rule with the s4 kernels
  let packed: Uint8Array;
  if (k.simd === "plain") {
    // c8n2: [jb][kb][c][8]
    packed = new Uint8Array(nb * kp * 2);
    for (let n = 0; n < N; n++) {
      const base = (n >> 1) * kp * 2 + (n & 1) * 8, src = n * K;
      for (let kk = 0; kk < K; kk++) packed[base + (kk >> 3) * 16 + (kk & 7)] = w[src + kk];
    }
  } else {
    // c16n2 planes: [jb][kb][lo c0, lo c1, neg c0, neg c1][16]
    packed = new Uint8Array(nb * kp * 4);
    for (let n = 0; n < N; n++) {
      const base = (n >> 1) * kp * 4 + (n & 1) * 16, src = n * K;
      for (let kk = 0; kk < K; kk++) {
        const v = w[src + kk], o = base + (kk >> 4) * 64 + (kk & 15);
        packed[o] = v & 127;
        packed[o + 32] = v < 0 ? 1 : 0;
      }
    }
  }
  const r = k.runner;
  const ptr = r.alloc(packed.length);
  let colsumPtr: number;
  try {
    colsumPtr = r.alloc(colsum.byteLength);
  } catch (e) {
    r.free(ptr);
    throw e;
  }
  u8(k).set(packed, ptr);
  u8(k).set(new Uint8Array(colsum.buffer), colsumPtr);
  let freed = false;
  return {
    kind: "s8",
    K,
    N,
    kp,
    simd: k.simd,
    ptr,
    colsumPtr,
    free(): void {
      if (freed) return;
      freed = true;
      r.free(ptr);
      r.free(colsumPtr);
    },
  };
}

/** s4 weights packed once for {@link gemmS4} / {@link gemmS4Grouped}. */
export interface PackedS4 {
  /** Always `"s4"`. */
  readonly kind: "s4";
  /** Reduction length. */
  readonly K: number;
  /** Output columns. */
  readonly N: number;
  /** K padded to 16. */
  readonly kp: number;
  /** Group size along K (32, 64 or 128), or 0 for per-channel (int32 output). */
  readonly group: number;
  /** Packed nibbles in kernel memory. */
  readonly ptr: number;
  /** Per-group f32 scales [N][G] in kernel memory (0 when per-channel). */
  readonly scalesPtr: number;
  /** Releases the kernel memory. */
  free(): void;
}

/** Options of {@link packS4}. */
export interface PackS4Options extends PackOptions {
  /** Group size along K: 32, 64 or 128; omit for per-channel (scales applied by the caller). */
  group?: 32 | 64 | 128;
  /** Per-group scales, f32 [N][ceil(K / group)], required with `group`. */
  scales?: Float32Array;
}

/**
 * Packs int4 weights (values −8..7, one per Int8Array element) two per byte.
 *
 * @param k loaded kernels
 * @param w weights, K×N (`layout: "kn"`) or N×K (`"nk"`), each in −8..7
 * @param K reduction length
 * @param N output columns
 * @param opts layout, group size and scales
 * @returns the packed weights
 *
 * @example
 * ```ts
 * import { gemmS4, loadIntKernels, packS4 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const w = packS4(k, new Int8Array([-8, 7]), 2, 1);
 * const c = await gemmS4(k, new Int8Array([3, 2]), 1, w);
 * if (c[0] !== -10) throw new Error(String(c[0]));
 * ```
 */
export function packS4(
  k: IntKernels,
  w: Int8Array,
  K: number,
  N: number,
  opts: PackS4Options = {},
): PackedS4 {
  const layout = opts.layout ?? "kn";
  const name = opts.name;
  checkLayout(layout, name);
  checkDim(K, "K", name);
  checkDim(N, "N", name);
  if (!(w instanceof Int8Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "int4 weights must be an Int8Array", {
      tensor: name,
    });
  }
  checkLen(w, K * N, `int4 weights (${K}×${N})`, name);
  const group = opts.group ?? 0;
  if (group !== 0 && group !== 32 && group !== 64 && group !== 128) {
    throw new LowbitError("INVALID_ARGUMENT", `group must be 32, 64 or 128, got ${group}`, {
      tensor: name,
    });
  }
  const G = group ? Math.ceil(K / group) : 0;
  if (group) {
    if (!(opts.scales instanceof Float32Array)) {
      throw new LowbitError("INVALID_ARGUMENT", "per-group int4 needs Float32Array scales", {
        tensor: name,
      });
    }
    checkLen(opts.scales, N * G, `scales (N×G = ${N}×${G})`, name);
  } else if (opts.scales !== undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "scales are only taken with a group size", {
      tensor: name,
    });
  }
  for (let i = 0; i < w.length; i++) {
    if (w[i] < -8 || w[i] > 7) {
      throw new LowbitError("INVALID_ARGUMENT", `int4 weight ${i} is ${w[i]}, outside −8..7`, {
        tensor: name,
      });
    }
  }
  const wn = asNK(w, K, N, layout);
  const kp = roundUp(K, 16);
  const nb = Math.ceil(N / 2);
  const packed = new Uint8Array(nb * kp).fill(0x88); // padding = weight 0 (stored +8)
  for (let n = 0; n < N; n++) {
    const base = (n >> 1) * kp + (n & 1) * 8, src = n * K;
    for (let kk = 0; kk < K; kk++) {
      const o = base + (kk >> 4) * 16 + (kk & 7);
      const v = wn[src + kk] + 8;
      packed[o] = (kk & 8) ? (packed[o] & 0x0f) | (v << 4) : (packed[o] & 0xf0) | v;
    }
  }
  const r = k.runner;
  const ptr = r.alloc(packed.length);
  let scalesPtr = 0;
  if (group) {
    try {
      scalesPtr = r.alloc(N * G * 4 + 16);
    } catch (e) {
      r.free(ptr);
      throw e;
    }
    new Float32Array(r.memory.buffer, scalesPtr, N * G).set(opts.scales!);
  }
  u8(k).set(packed, ptr);
  let freed = false;
  return {
    kind: "s4",
    K,
    N,
    kp,
    group,
    ptr,
    scalesPtr,
    free(): void {
      if (freed) return;
      freed = true;
      r.free(ptr);
      if (scalesPtr) r.free(scalesPtr);
    },
  };
}

// *** requantization ***

/**
 * Integer-only requantization int32 → int8 (HAWQ-V3 dyadic), per channel or per tensor:
 * y = clamp(round((acc + bias[j]) · multiplier[j] / 2^shift[j]) + zeroPoint, qmin, qmax), the
 * rounding to nearest with ties toward +∞, exactly @lowbit/core's `mulShiftRound` /
 * `requantizeDyadic` (use its `dyadicFromScale` to get multiplier and shift from a real scale).
 */
export interface RequantParams {
  /** Multiplier(s) in [0, 2^31): one per tensor or one per output column. */
  multiplier: number | Int32Array;
  /** Right shift(s) in [0, 63]: one per tensor or one per output column. */
  shift: number | Int32Array;
  /** int32 bias per output column, added before scaling. */
  bias?: Int32Array;
  /** Output zero point (default 0). */
  zeroPoint?: number;
  /** `"relu"` clamps below at the zero point (default `"none"`). */
  activation?: "none" | "relu";
  /** Lower clamp (default −128). */
  qmin?: number;
  /** Upper clamp (default 127). */
  qmax?: number;
  /**
   * Output type of the fused kernels (`gemmS8Requant`, `gemmS4Requant`; default `"int8"`).
   * With `"uint8"`, zeroPoint / qmin / qmax are in [0, 255] (defaults 0 and 255).
   */
  output?: "int8" | "uint8";
}

interface ResolvedRequant {
  mult: Int32Array;
  shift: Int32Array;
  bias?: Int32Array;
  zp: number;
  qmin: number;
  qmax: number;
}

function resolveRequant(rq: RequantParams, N: number, name?: string): ResolvedRequant {
  const vec = (v: number | Int32Array, what: string, hi: number): Int32Array => {
    const out = typeof v === "number" ? new Int32Array(N).fill(v) : v;
    if (!(out instanceof Int32Array)) {
      throw new LowbitError("INVALID_ARGUMENT", `${what} must be a number or an Int32Array`, {
        tensor: name,
      });
    }
    checkLen(out, N, what, name);
    for (let j = 0; j < N; j++) checkInt(out[j], 0, hi, `${what}[${j}]`, name);
    return out;
  };
  const mult = vec(rq.multiplier, "multiplier", 2 ** 31 - 1);
  const shift = vec(rq.shift, "shift", 63);
  if (rq.bias !== undefined) {
    if (!(rq.bias instanceof Int32Array)) {
      throw new LowbitError("INVALID_ARGUMENT", "bias must be an Int32Array", { tensor: name });
    }
    checkLen(rq.bias, N, "bias", name);
  }
  const zp = rq.zeroPoint ?? 0;
  checkInt(zp, -128, 127, "zeroPoint", name);
  let qmin = rq.qmin ?? -128;
  const qmax = rq.qmax ?? 127;
  checkInt(qmin, -128, 127, "qmin", name);
  checkInt(qmax, qmin, 127, "qmax", name);
  const act = rq.activation ?? "none";
  if (act !== "none" && act !== "relu") {
    throw new LowbitError("UNKNOWN_NAME", `unknown activation '${act}' (none, relu)`, {
      tensor: name,
    });
  }
  if (act === "relu") qmin = Math.min(qmax, Math.max(qmin, zp));
  return { mult, shift, bias: rq.bias, zp, qmin, qmax };
}

/** Runs the requant kernel on int32 C already in kernel memory; returns the int8 output. */
function requantInMemory(
  k: IntKernels,
  M: number,
  N: number,
  cPtr: number,
  rq: ResolvedRequant,
): Int8Array {
  const r = k.runner;
  const ptrs: number[] = [];
  try {
    const put = (a: Int32Array): number => {
      const p = r.alloc(a.byteLength);
      ptrs.push(p);
      new Int32Array(r.memory.buffer, p, a.length).set(a);
      return p;
    };
    const multPtr = put(rq.mult);
    const shiftPtr = put(rq.shift);
    const biasPtr = rq.bias ? put(rq.bias) : 0;
    const out = r.alloc(M * N);
    ptrs.push(out);
    fn(k, PLAIN, "requant_s32_s8_dyadic")(
      0,
      M,
      N,
      cPtr,
      N,
      biasPtr,
      multPtr,
      shiftPtr,
      rq.zp,
      rq.qmin,
      rq.qmax,
      out,
      N,
    );
    return new Int8Array(r.memory.buffer.slice(out, out + M * N));
  } finally {
    for (const p of ptrs) r.free(p);
  }
}

/**
 * Requantizes int32 accumulators (M×N, row-major) to int8; see {@link RequantParams}.
 *
 * @param k loaded kernels
 * @param acc int32 accumulators, M×N
 * @param M rows
 * @param N columns
 * @param rq multiplier, shift, bias, zero point, clamp
 * @returns int8 M×N
 *
 * @example
 * ```ts
 * import { loadIntKernels, requantize } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * // ×1/2: 1.5 → 2, −2.5 → −2 (ties toward +∞), 1000 saturates to 127
 * const y = requantize(k, new Int32Array([3, -5, 1000]), 1, 3, { multiplier: 2 ** 30, shift: 31 });
 * if (y.join() !== "2,-2,127") throw new Error(y.join());
 * ```
 */
export function requantize(
  k: IntKernels,
  acc: Int32Array,
  M: number,
  N: number,
  rq: RequantParams,
): Int8Array {
  checkDim(M, "M");
  checkDim(N, "N");
  if (!(acc instanceof Int32Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "accumulators must be an Int32Array");
  }
  checkLen(acc, M * N, `accumulators (M×N = ${M}×${N})`);
  const res = resolveRequant(rq, N);
  const r = k.runner;
  const c = r.alloc(acc.byteLength);
  try {
    new Int32Array(r.memory.buffer, c, acc.length).set(acc);
    return requantInMemory(k, M, N, c, res);
  } finally {
    r.free(c);
  }
}

// *** GEMM ***

/** Options of {@link gemmS8}. */
export interface GemmS8Options {
  /** Activation type (default `"s8"`). */
  aType?: "s8" | "u8";
  /** Activation zero point za (default 0): C = Σ (A − za)(B − zb). */
  aZeroPoint?: number;
  /** Weight zero point zb, per tensor (default 0). */
  bZeroPoint?: number;
  /** Tensor name for error messages. */
  name?: string;
}

/** Activations: a JavaScript array (copied in) or an array already in kernel memory. */
export type IntActivations = Int8Array | Uint8Array | KernelArray<"s8" | "u8">;

/**
 * A (M×K) in kernel memory with rows zero-padded to kp: in place when it already is there and
 * needs no padding (K = kp), else copied. `owned` says whether the caller must free `ptr`.
 */
function placeA(
  k: IntKernels,
  a: IntActivations,
  M: number,
  K: number,
  kp: number,
): { ptr: number; owned: boolean } {
  if (isKernelArray(a)) {
    if (kp === K) return { ptr: a.ptr, owned: false };
    return { ptr: putA(k, a.view(), M, K, kp), owned: true };
  }
  return { ptr: putA(k, a, M, K, kp), owned: true };
}

/** Options of {@link gemmS8}: those of every int8 GEMM plus a reusable output. */
export interface GemmS8CopyOptions extends GemmS8Options {
  /** Where to write C (M×N), instead of a new array. */
  out?: Int32Array;
}

/** Copies A (M×K) into kernel memory with rows zero-padded to kp; returns the pointer. */
function putA(k: IntKernels, a: Int8Array | Uint8Array, M: number, K: number, kp: number): number {
  const r = k.runner;
  const p = r.alloc(M * kp + 16);
  const mem = u8(k);
  const src = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (kp === K) mem.set(src, p);
  else {
    mem.fill(0, p, p + M * kp);
    for (let i = 0; i < M; i++) mem.set(src.subarray(i * K, i * K + K), p + i * kp);
  }
  mem.fill(0, p + M * kp, p + M * kp + 16);
  return p;
}

/**
 * C = (A − za)·(B − zb), A s8 or u8 (M×K row-major), B packed by {@link packS8}, C int32 M×N.
 * M = 1 runs the GEMV kernel (split over columns across threads).
 *
 * @param k loaded kernels
 * @param a activations, M×K
 * @param M rows of A
 * @param b packed weights
 * @param opts activation type, zero points, and an output array to reuse
 * @returns int32 M×N (`opts.out` when given)
 *
 * @example
 * ```ts
 * import { gemmS8, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const b = packS8(k, new Int8Array([2, 3]), 2, 1);
 * const c = await gemmS8(k, new Uint8Array([130, 128]), 1, b, { aType: "u8", aZeroPoint: 128 });
 * if (c[0] !== 4) throw new Error(String(c[0])); // (2·2 + 0·3)
 * ```
 */
export async function gemmS8(
  k: IntKernels,
  a: IntActivations,
  M: number,
  b: PackedS8,
  opts: GemmS8CopyOptions = {},
): Promise<Int32Array> {
  const r = k.runner;
  const len = M * (b?.N ?? 0);
  if (opts.out !== undefined) {
    if (!(opts.out instanceof Int32Array)) {
      throw new LowbitError("INVALID_ARGUMENT", "out must be an Int32Array", { tensor: opts.name });
    }
    checkLen(opts.out, len, `out (M×N = ${M}×${b?.N})`, opts.name);
  }
  const c = await gemmS8InMemory(k, a, M, b, opts);
  try {
    // Into a reused array when given: a fresh 1 MB array costs ~0.6 ms of page faults here,
    // more than copying into a warm one (~0.05 ms), and that time is serial.
    const out = opts.out ?? new Int32Array(len);
    out.set(new Int32Array(r.memory.buffer, c, len));
    return out;
  } finally {
    r.free(c);
  }
}

function checkOut(k: IntKernels, c: KernelArray<"s32">, len: number, what: string, name?: string) {
  if (!isKernelArray(c) || c.dtype !== "s32" || c.runner !== k.runner) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the output must be an 's32' kernel array of these kernels' runner (allocArray)",
      { tensor: name },
    );
  }
  checkLen(c, len, what, name);
}

/**
 * {@link gemmS8} in place: A may already live in kernel memory (a {@link KernelArray}, used
 * without a copy when K is a multiple of 16) and C is written to the kernel array `c`, so
 * nothing is copied in or out. Allocate both once with `allocArray` and reuse them.
 *
 * @param k loaded kernels
 * @param a activations, M×K (a kernel array or a JavaScript array)
 * @param M rows of A
 * @param b packed weights
 * @param c output, an `"s32"` kernel array of M×N elements
 * @param opts activation type and zero points
 * @returns when C is written
 *
 * @example
 * ```ts
 * import { allocArray, gemmS8Into, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const b = packS8(k, new Int8Array(16).fill(2), 16, 1);
 * const a = allocArray(k.runner, "s8", 16), c = allocArray(k.runner, "s32", 1);
 * a.view().fill(3);
 * await gemmS8Into(k, a, 1, b, c);
 * if (c.view()[0] !== 96) throw new Error(String(c.view()[0])); // 16·3·2
 * ```
 */
export async function gemmS8Into(
  k: IntKernels,
  a: IntActivations,
  M: number,
  b: PackedS8,
  c: KernelArray<"s32">,
  opts: GemmS8Options = {},
): Promise<void> {
  checkOut(k, c, M * (b?.N ?? 0), `output (M×N = ${M}×${b?.N})`, opts.name);
  await gemmS8InMemory(k, a, M, b, opts, c.ptr);
}

/** Runs the GEMM into `out` (or a new block); returns C's pointer. */
async function gemmS8InMemory(
  k: IntKernels,
  a: IntActivations,
  M: number,
  b: PackedS8,
  opts: GemmS8Options,
  out = 0,
): Promise<number> {
  const name = opts.name;
  const aType = opts.aType ?? "s8";
  if (aType !== "s8" && aType !== "u8") {
    throw new LowbitError("UNKNOWN_NAME", `unknown activation type '${aType}' (s8, u8)`, {
      tensor: name,
    });
  }
  if (b?.kind !== "s8") {
    throw new LowbitError("INVALID_ARGUMENT", "weights must come from packS8", { tensor: name });
  }
  if (b.simd !== k.simd) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `weights were packed for '${b.simd}' kernels, these are '${k.simd}'`,
      { tensor: name },
    );
  }
  checkActivations(k, a, M, b.K, aType, name);
  const za = opts.aZeroPoint ?? 0, zb = opts.bZeroPoint ?? 0;
  checkInt(za, aType === "s8" ? -128 : 0, aType === "s8" ? 127 : 255, "aZeroPoint", name);
  checkInt(zb, -128, 127, "bZeroPoint", name);
  const { K, N, kp } = b;
  const r = k.runner;
  const A = placeA(k, a, M, K, kp), aPtr = A.ptr;
  let cPtr = out, rowsumPtr = 0;
  try {
    if (!out) cPtr = r.alloc(M * N * 4);
    const which = aType === "s8" ? "s8" : "u8";
    const mod = k.simd === "plain" ? PLAIN : RELAXED;
    if (M === 1 && !(k.simd === "relaxed" && which === "u8")) {
      const gemv = INT_KERNELS[which === "s8" ? "gemv_s8" : "gemv_u8"][k.simd];
      await r.run(mod, gemv, N, [kp, aPtr, b.ptr, cPtr], 8);
    } else {
      const gemm = INT_KERNELS[which === "s8" ? "gemm_s8" : "gemm_u8"][k.simd];
      const args = [N, kp, aPtr, kp, b.ptr, cPtr, N];
      if (k.simd === "relaxed" && which === "u8") args.push(b.colsumPtr);
      await r.run(mod, gemm, M, args, 4);
    }
    if (za !== 0 || zb !== 0) {
      // Σ(a − za)(b − zb) = Σab − zb·Σa − za·Σb + K·za·zb, split by rows like the GEMM (a
      // pass over C on one thread would be the serial part that caps the speed-up).
      if (zb !== 0) {
        rowsumPtr = r.alloc(M * 4);
        await r.run(PLAIN, "rowsum_s8", M, [kp, aPtr, kp, rowsumPtr, which === "s8" ? 1 : 0], 4);
      }
      await r.run(PLAIN, "s32_fixup", M, [
        N,
        cPtr,
        N,
        rowsumPtr,
        -zb,
        za !== 0 ? b.colsumPtr : 0,
        -za,
        Math.imul(Math.imul(K, za), zb),
      ], 4);
    }
    return cPtr;
  } catch (e) {
    if (cPtr && !out) r.free(cPtr);
    throw e;
  } finally {
    if (A.owned) r.free(aPtr);
    if (rowsumPtr) r.free(rowsumPtr);
  }
}

function checkPackedS4(b: PackedS4, grouped: boolean, name?: string): void {
  if (b?.kind !== "s4") {
    throw new LowbitError("INVALID_ARGUMENT", "weights must come from packS4", { tensor: name });
  }
  if (grouped !== (b.group !== 0)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      grouped
        ? "gemmS4Grouped needs weights packed with a group size"
        : "weights packed with a group size need gemmS4Grouped",
      { tensor: name },
    );
  }
}

/**
 * C = A·W, A s8 (M×K), W int4 per-channel packed by {@link packS4} (no group), C int32 M×N
 * (exact). Scale per channel afterwards, e.g. with {@link requantize}.
 *
 * @param k loaded kernels
 * @param a activations, M×K
 * @param M rows of A
 * @param b packed int4 weights
 * @param name tensor name for error messages
 * @returns int32 M×N
 *
 * @example
 * ```ts
 * import { gemmS4, loadIntKernels, packS4 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const w = packS4(k, new Int8Array([1, 2, -3, 4]), 2, 2);
 * const c = await gemmS4(k, new Int8Array([1, 1, 2, 0]), 2, w);
 * if (c.join() !== "-2,6,2,4") throw new Error(c.join());
 * ```
 */
export async function gemmS4(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  name?: string,
): Promise<Int32Array> {
  checkPackedS4(b, false, name);
  const r = k.runner;
  const cPtr = r.alloc(M * b.N * 4);
  try {
    await gemmS4InMemory(k, a, M, b, cPtr, name);
    return new Int32Array(r.memory.buffer.slice(cPtr, cPtr + M * b.N * 4));
  } finally {
    r.free(cPtr);
  }
}

/**
 * {@link gemmS4} in place: A may be a kernel array (no copy when K is a multiple of 16), C is
 * written to the `"s32"` kernel array `c` (M×N).
 *
 * @param k loaded kernels
 * @param a activations, M×K
 * @param M rows of A
 * @param b packed int4 weights (per channel)
 * @param c output kernel array, M×N
 * @param name tensor name for error messages
 * @returns when C is written
 *
 * @example
 * ```ts
 * import { allocArray, gemmS4Into, loadIntKernels, packS4 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const w = packS4(k, new Int8Array(16).fill(-3), 16, 1);
 * const c = allocArray(k.runner, "s32", 1);
 * await gemmS4Into(k, new Int8Array(16).fill(2), 1, w, c);
 * if (c.view()[0] !== -96) throw new Error(String(c.view()[0]));
 * ```
 */
export async function gemmS4Into(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  c: KernelArray<"s32">,
  name?: string,
): Promise<void> {
  checkPackedS4(b, false, name);
  checkOut(k, c, M * b.N, `output (M×N = ${M}×${b.N})`, name);
  await gemmS4InMemory(k, a, M, b, c.ptr, name);
}

async function gemmS4InMemory(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  cPtr: number,
  name?: string,
): Promise<void> {
  checkActivations(k, a, M, b.K, "s8", name);
  const { N, kp } = b;
  const r = k.runner;
  const A = placeA(k, a, M, b.K, kp), aPtr = A.ptr;
  let rowsumPtr = 0;
  try {
    rowsumPtr = r.alloc(M * 4);
    if (M === 1) await r.run(PLAIN, INT_KERNELS.gemv_s4, N, [kp, aPtr, b.ptr, cPtr], 8);
    else await r.run(PLAIN, INT_KERNELS.gemm_s4, M, [N, kp, aPtr, kp, b.ptr, cPtr, N], 4);
    // The −8·Σa fix-up, split by rows like the GEMM.
    await r.run(PLAIN, "rowsum_s8", M, [kp, aPtr, kp, rowsumPtr, 1], 4);
    await r.run(PLAIN, "s32_fixup", M, [N, cPtr, N, rowsumPtr, -8, 0, 0, 0], 4);
  } finally {
    if (A.owned) r.free(aPtr);
    if (rowsumPtr) r.free(rowsumPtr);
  }
}

/**
 * C[i][j] = Σ_g scale[j][g] · Σ_{k∈g} A[i][k]·W[k][j] in f32, W int4 per-group packed by
 * {@link packS4} with `group` and `scales`; the summation order is fixed (see
 * `gemmS4GroupedRef`), so results do not depend on threads. Multiply by the activation scale
 * afterwards.
 *
 * @param k loaded kernels
 * @param a activations, M×K
 * @param M rows of A
 * @param b packed int4 weights with group scales
 * @param name tensor name for error messages
 * @returns f32 M×N
 *
 * @example
 * ```ts
 * import { gemmS4Grouped, loadIntKernels, packS4 } from "@lowbit/kernels";
 * const k = await loadIntKernels();
 * const w = packS4(k, new Int8Array(64).fill(1), 64, 1, {
 *   group: 32, scales: new Float32Array([0.5, 2]),
 * });
 * const c = await gemmS4Grouped(k, new Int8Array(64).fill(1), 1, w);
 * if (c[0] !== 80) throw new Error(String(c[0])); // 32·0.5 + 32·2
 * ```
 */
export async function gemmS4Grouped(
  k: IntKernels,
  a: Int8Array | KernelArray<"s8">,
  M: number,
  b: PackedS4,
  name?: string,
): Promise<Float32Array> {
  checkPackedS4(b, true, name);
  checkActivations(k, a, M, b.K, "s8", name);
  const { N, kp } = b;
  const r = k.runner;
  const A = placeA(k, a, M, b.K, kp), aPtr = A.ptr;
  let cPtr = 0;
  try {
    cPtr = r.alloc(M * N * 4);
    await r.run(
      PLAIN,
      INT_KERNELS.gemm_s4_group,
      M,
      [N, kp, b.group, aPtr, kp, b.ptr, b.scalesPtr, cPtr, N],
      1,
    );
    return new Float32Array(r.memory.buffer.slice(cPtr, cPtr + M * N * 4));
  } finally {
    if (A.owned) r.free(aPtr);
    if (cPtr) r.free(cPtr);
  }
}
