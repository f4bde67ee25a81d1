/**
 * Float kernels: f32 GEMM / GEMV with pre-packed B and a fused epilogue (per-column scale, bias,
 * ReLU / clamp), minifloat-weight GEMM / GEMV (FP8 E4M3FN / E5M2, FP6 E3M2 / E2M3, FP4 E2M1,
 * MXFP8 / MXFP6 / MXFP4 with E8M0 block scales, NVFP4), and Conv2d (NCHW / OIHW, groups, stride,
 * dilation, pads) through im2col + GEMM or a direct depthwise kernel.
 *
 * Everything here is synchronous and single-threaded on a {@link FloatKernels} context (a wasm
 * memory, an allocator, reusable scratch); {@link floatKernels} returns a lazily created default.
 * Packed weights live in that memory until `dispose()`. For threads, make the context on a worker
 * pool ({@link floatKernelSources} + `createPool` of `@lowbit/runtime` +
 * {@link createFloatKernelsOn}) and call the `*Parallel` variants, which split output columns
 * (GEMM), output pixels or images (conv) and channels or images (depthwise conv). Convs on such
 * a context take {@link residentF32} arrays (allocated in its shared memory) in place.
 *
 * ## Kernels
 *
 * | export (suffix `__wasmsimd` / `__wasmrelaxedsimd`) | what |
 * | --- | --- |
 * | `gemm_f32_f32_minmax_4x8` | f32 GEMM, 4×8 register tile (8 accumulators), B panels of 8 columns, K blocks of 256, N blocks of 512 |
 * | `gemv_mfw_f32_minmax_1x8` | M = 1 for f32 and every minifloat format: 4 panels (32 columns, 8 accumulator chains) per step, codes decoded in registers |
 * | `gemm_mfw_f32_minmax_4x8` | minifloat GEMM: 128 columns × 256 rows decoded into an L2 slot (SIMD decode), then the f32 tile |
 * | `conv2d_f32_minmax_im2col_4x8` | Conv2d: im2col into packed panels in ~256 KiB chunks, then the f32 tile (weights OIHW = the A operand) |
 * | `dwconv2d_f32_minmax_4x1` | depthwise Conv2d: zero-padded plane per channel, 4 output columns per step (3×3 weights kept in registers) |
| `conv2d_…_4x8__<isa>_pixels` / `_images` | thread splits of the conv: output pixels of one image, or whole images; with post-ops (HardSwish, × c, + c) after the clamp |
| `dwconv2d_…_4x1__<isa>_channels` / `_images` | thread splits of the depthwise conv: channels of one image, or whole images; post-ops as above |
| `add_f32_post` | a + b, then optionally ReLU and QuantizeLinear to centred codes (a dequantized first on request): a residual block's sum in one pass ({@link addF32}) |
 *
 * Decoding: FP4 E2M1 by two 16-entry `i8x16.swizzle` tables (the bf16 bytes of each value) and
 * shifts; FP8 by shifting the code into bf16 position; FP6 (packed four codes in three bytes) by
 * one swizzle and per-code shifts into f32 position. The shifted bits of an FP8 / FP6 code are
 * w·2^-(127 − bias), so these kernels compute in a domain 2^-60 below the true values: the
 * activations are scaled by 2^(67 − bias) on the way in, the epilogue scale by 2^60 (see
 * `refGemmMinifloat`: bit-identical to the unscaled sum unless a product is below 2^-66 or an
 * activation reaches 2^68). FP8 subnormal codes become f32 subnormal operands, which some CPUs
 * process slowly (real FP8 weights almost never hold them).
 *
 * ## Results
 *
 * Bit-for-bit equal to `reference_float.ts` under the kernels' fixed summation order (one f32
 * accumulator per output, terms in order, then the epilogue). The accumulate step is a plain
 * multiply then add on the `"wasmsimd"` ISA (same bits on every engine) and
 * `f32x4.relaxed_madd` on `"wasmrelaxedsimd"`, whose rounding (fused or not) is engine-defined:
 * the context probes it at creation and reports it as {@link FloatKernels.madd}; the reference
 * takes it as a parameter. The default context uses relaxed SIMD when the engine has it; pass
 * `{ isa: "wasmsimd" }` for results that are identical across engines.
 *
 * ## Special values of minifloat weights
 *
 * NaN and ±Inf weight codes (E4M3FN S.1111.111, E5M2 S.11111.xx, E8M0 0xFF, an E4M3 NVFP4 block
 * scale S.1111.111) are rejected by the packers with a `LowbitError` naming the position: a
 * weight tensor with them is broken, and rejecting them keeps the in-register decode short.
 * Activations may hold anything; NaN / ±Inf propagate as in IEEE arithmetic.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import {
  createArena,
  decodeBase64,
  DEFAULT_MAX_PAGES,
  type KernelRunner,
  type KernelSource,
  providedKernelModule,
} from "./runner.ts";
import * as plainWasm from "./_float_gemm_wasm.ts";
import * as relaxedWasm from "./_float_gemm_relaxed_wasm.ts";
import {
  decodeE8M0,
  decodeMinifloat,
  FP8_QDQ_FORMATS,
  type MaddMode,
  MINIFLOAT_DOMAIN_SHIFT,
  type MinifloatElement,
  minifloatWeightShift,
} from "./reference_float.ts";

// *** context ***

/** Instruction set of the float kernels. */
export type FloatIsa = "wasmsimd" | "wasmrelaxedsimd";

/** A float-kernel context: one wasm memory with its allocator and scratch. */
export interface FloatKernels {
  /** The ISA the kernels were built for. */
  readonly isa: FloatIsa;
  /** How the accumulate step rounds on this engine (`"unfused"` always for `"wasmsimd"`). */
  readonly madd: MaddMode;
  /** The kernels' memory. */
  readonly memory: WebAssembly.Memory;
  /** Threads the `*Parallel` functions split over (1 unless made on a pool). */
  readonly threads: number;
}

/** Options of {@link createFloatKernels}. */
export interface FloatKernelsOptions {
  /** ISA (default `"auto"`: relaxed SIMD when the engine validates it). */
  isa?: FloatIsa | "auto";
  /** Maximum memory in 64 KiB pages (default 32768 = 2 GiB). */
  maxPages?: number;
}

type Fn = (...args: number[]) => number;

interface Internal {
  ex: Record<string, Fn>;
  runner?: KernelRunner;
  module: string;
  alloc: (bytes: number) => number;
  free: (ptr: number) => void;
  slots: Map<string, { ptr: number; bytes: number }>;
  sfx: string;
}

const internals = new WeakMap<FloatKernels, Internal>();

let relaxedModule: WebAssembly.Module | null | undefined;
let plainModule: WebAssembly.Module | undefined;

function compileRelaxed(): WebAssembly.Module | null {
  if (relaxedModule === undefined) {
    try {
      relaxedModule = providedKernelModule("float_gemm_relaxed.wasm") ??
        new WebAssembly.Module(decodeBase64(relaxedWasm.single));
    } catch {
      relaxedModule = null;
    }
  }
  return relaxedModule;
}

function probeMadd(probe: Fn): MaddMode | null {
  const a = 1 + 2 ** -12; // a·a = 1 + 2^-11 + 2^-24: a tie when rounded to f32
  const r = probe(a, a, -1);
  if (r === 2 ** -11 + 2 ** -24) return "fused";
  if (r === 2 ** -11) return "unfused";
  return null;
}

/**
 * Creates a float-kernel context (synchronous: compiles and instantiates the embedded module).
 *
 * @param opts ISA and memory limit
 * @returns the context
 *
 * @example
 * ```ts
 * import { createFloatKernels } from "@lowbit/kernels";
 * const k = createFloatKernels({ isa: "wasmsimd" });
 * if (k.isa !== "wasmsimd" || k.madd !== "unfused") throw new Error();
 * ```
 */
export function createFloatKernels(opts: FloatKernelsOptions = {}): FloatKernels {
  const want = opts.isa ?? "auto";
  if (want !== "auto" && want !== "wasmsimd" && want !== "wasmrelaxedsimd") {
    throw new LowbitError("INVALID_ARGUMENT", `unknown float kernel ISA '${want}'`);
  }
  const maxPages = opts.maxPages ?? DEFAULT_MAX_PAGES;
  const memory = new WebAssembly.Memory({ initial: 2, maximum: maxPages });
  let module: WebAssembly.Module | null = null;
  let isa: FloatIsa = "wasmsimd";
  if (want !== "wasmsimd") {
    module = compileRelaxed();
    if (module === null && want === "wasmrelaxedsimd") {
      throw new LowbitError("UNSUPPORTED", "this engine does not support WebAssembly relaxed SIMD");
    }
    if (module !== null) isa = "wasmrelaxedsimd";
  }
  let madd: MaddMode = "unfused";
  let ex: Record<string, Fn> | null = null;
  if (module !== null) {
    ex = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Record<
      string,
      Fn
    >;
    const m = probeMadd(ex.probe_madd);
    if (m === null) {
      if (want === "wasmrelaxedsimd") {
        throw new LowbitError("UNSUPPORTED", "relaxed_madd is neither fused nor unfused here");
      }
      ex = null;
      isa = "wasmsimd";
    } else madd = m;
  }
  if (ex === null) {
    plainModule ??= providedKernelModule("float_gemm.wasm") ??
      new WebAssembly.Module(decodeBase64(plainWasm.single));
    ex = new WebAssembly.Instance(plainModule, { env: { memory } }).exports as unknown as Record<
      string,
      Fn
    >;
  }
  const arena = createArena(memory, maxPages);
  const ctx: FloatKernels = { isa, madd, memory, threads: 1 };
  internals.set(ctx, {
    ex,
    module: isa === "wasmsimd" ? "float_gemm" : "float_gemm_relaxed",
    alloc: (b) => arena.alloc(b),
    free: (p) => arena.free(p),
    slots: new Map(),
    sfx: "__" + isa,
  });
  return ctx;
}

/**
 * The float kernel module for a {@link KernelRunner} (e.g. `createPool` of `@lowbit/runtime`):
 * `float_gemm_relaxed` when the engine validates relaxed SIMD (and `isa` allows it), else
 * `float_gemm`.
 *
 * @param isa which build (default `"auto"`)
 * @returns one module by name, embedded as base64
 *
 * @example
 * ```ts
 * import { floatKernelSources } from "@lowbit/kernels";
 * const src = floatKernelSources("wasmsimd");
 * if (Object.keys(src).join() !== "float_gemm") throw new Error();
 * ```
 */
export function floatKernelSources(isa: FloatIsa | "auto" = "auto"): Record<string, KernelSource> {
  if (isa !== "wasmsimd" && compileRelaxed() !== null) {
    return { float_gemm_relaxed: { single: relaxedWasm.single, shared: relaxedWasm.shared } };
  }
  if (isa === "wasmrelaxedsimd") {
    throw new LowbitError("UNSUPPORTED", "this engine does not support WebAssembly relaxed SIMD");
  }
  return { float_gemm: { single: plainWasm.single, shared: plainWasm.shared } };
}

/**
 * A float-kernel context on a {@link KernelRunner} that loaded {@link floatKernelSources}: it
 * uses the runner's memory and allocator, and the `*Parallel` functions split work over its
 * threads (results identical to one thread: every output column is computed by one thread in
 * the same order).
 *
 * @param runner a runner with `float_gemm` or `float_gemm_relaxed` loaded
 * @returns the context
 *
 * @example
 * ```ts
 * import { createFloatKernelsOn, createLocalRunner, floatKernelSources, gemmF32Parallel, packF32B } from "@lowbit/kernels";
 * const runner = await createLocalRunner(floatKernelSources());
 * const k = createFloatKernelsOn(runner);
 * const c = await gemmF32Parallel(new Float32Array([1, 2]), 1, packF32B(new Float32Array([3, 4]), 2, 1, { kernels: k }));
 * if (c[0] !== 11) throw new Error();
 * ```
 */
export function createFloatKernelsOn(runner: KernelRunner): FloatKernels {
  const module = runner.modules.includes("float_gemm_relaxed")
    ? "float_gemm_relaxed"
    : runner.modules.includes("float_gemm")
    ? "float_gemm"
    : null;
  if (module === null) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      "the runner has no float kernel module; create it with floatKernelSources()",
    );
  }
  const ex = runner.exports(module) as unknown as Record<string, Fn>;
  let madd: MaddMode = "unfused";
  let isa: FloatIsa = "wasmsimd";
  if (module === "float_gemm_relaxed") {
    const m = probeMadd(ex.probe_madd);
    if (m === null) {
      throw new LowbitError("UNSUPPORTED", "relaxed_madd is neither fused nor unfused here");
    }
    madd = m;
    isa = "wasmrelaxedsimd";
  }
  const ctx: FloatKernels = { isa, madd, memory: runner.memory, threads: runner.threads };
  internals.set(ctx, {
    ex,
    runner,
    module,
    alloc: (b) => runner.alloc(b),
    free: (p) => runner.free(p),
    slots: new Map(),
    sfx: "__" + isa,
  });
  return ctx;
}

let defaultKernels: FloatKernels | undefined;

/**
 * The default context, created on first use with relaxed SIMD when available.
 *
 * @returns the shared default context
 *
 * @example
 * ```ts
 * import { floatKernels } from "@lowbit/kernels";
 * if (floatKernels() !== floatKernels()) throw new Error("one default");
 * ```
 */
export function floatKernels(): FloatKernels {
  defaultKernels ??= createFloatKernels();
  return defaultKernels;
}

function internal(k: FloatKernels): Internal {
  const i = internals.get(k);
  if (!i) throw new LowbitError("INVALID_ARGUMENT", "not a context from createFloatKernels()");
  return i;
}

/** A reusable scratch block named `name` of at least `bytes` (grown by reallocation). */
function slot(i: Internal, name: string, bytes: number): number {
  const s = i.slots.get(name);
  if (s && s.bytes >= bytes) return s.ptr;
  if (s) {
    i.free(s.ptr);
    i.slots.delete(name);
  }
  const want = Math.max(bytes, s ? s.bytes * 1.5 : 0, 64);
  const ptr = i.alloc(Math.ceil(want / 16) * 16);
  i.slots.set(name, { ptr, bytes: want });
  return ptr;
}

function kernel(i: Internal, name: string): Fn {
  const f = i.ex[name + i.sfx];
  if (typeof f !== "function") throw new LowbitError("INTERNAL", `missing kernel ${name}${i.sfx}`);
  return f;
}

function f32View(k: FloatKernels, ptr: number, len: number): Float32Array {
  return new Float32Array(k.memory.buffer, ptr, len);
}

// *** validation ***

function checkDim(v: number, what: string, min = 1): void {
  if (!Number.isInteger(v) || v < min) {
    throw new LowbitError("INVALID_ARGUMENT", `${what} must be an integer ≥ ${min}, got ${v}`);
  }
}

function checkLen(arr: ArrayLike<number>, want: number, what: string): void {
  if (arr.length !== want) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what} has ${arr.length} elements, expected ${want}`,
    );
  }
}

// *** epilogue ***

/** Activation fused into the epilogue: none, ReLU, or a clamp to [min, max] (e.g. ReLU6, Clip). */
export type Activation = "none" | "relu" | { min: number; max: number };

function bounds(act: Activation | undefined): [number, number] {
  if (act === undefined || act === "none") return [-Infinity, Infinity];
  if (act === "relu") return [0, Infinity];
  if (typeof act === "object" && typeof act.min === "number" && typeof act.max === "number") {
    if (!(act.min <= act.max)) {
      throw new LowbitError("INVALID_ARGUMENT", `clamp min ${act.min} > max ${act.max}`);
    }
    return [Math.fround(act.min), Math.fround(act.max)];
  }
  throw new LowbitError("INVALID_ARGUMENT", `unknown activation ${JSON.stringify(act)}`);
}

const EPI_SCALE = 1, EPI_BIAS = 2, EPI_ROW = 4, EPI_DYADIC = 8;

/** Copies scale / bias (zero-padded to a multiple of 8) into a slot; returns [flags, s, b]. */
function epilogueArgs(
  k: FloatKernels,
  i: Internal,
  n: number,
  scale: Float32Array | undefined,
  bias: Float32Array | undefined,
): [number, number, number] {
  const np = Math.ceil(n / 8) * 8;
  let flags = 0, sp = 0, bp = 0;
  if (scale || bias) {
    const base = slot(i, "epi", np * 8);
    if (scale) {
      flags |= EPI_SCALE;
      sp = base;
      const v = f32View(k, sp, np);
      v.fill(0);
      v.set(scale);
    }
    if (bias) {
      flags |= EPI_BIAS;
      bp = base + np * 4;
      const v = f32View(k, bp, np);
      v.fill(0);
      v.set(bias);
    }
  }
  return [flags, sp, bp];
}

// *** f32 GEMM ***

/** B packed for {@link gemmF32}: panels of 8 columns, in the context's memory. */
export interface PackedF32B {
  /** Discriminant. */
  readonly kind: "f32";
  /** Rows of B (the reduction length). */
  readonly k: number;
  /** Columns of B. */
  readonly n: number;
  /** The context that holds it. */
  readonly kernels: FloatKernels;
  /** Frees the packed weights (idempotent); using them afterwards throws. */
  dispose(): void;
}

interface Resident {
  ptr: number;
  bytes: number;
  /** A second block freed with it: the scales, or a prepared conv's i16 weights. */
  scalePtr: number;
  disposed: boolean;
}

const resident = new WeakMap<object, Resident>();

function residentOf(p: object, kernels: FloatKernels, what: string): Resident {
  const r = resident.get(p);
  if (!r) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: not a packed weight from this module`);
  }
  if (r.disposed) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: packed weights were disposed`);
  }
  if ((p as { kernels: FloatKernels }).kernels !== kernels) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: packed weights belong to another context`);
  }
  return r;
}

function makeResident<T extends object>(
  i: Internal,
  obj: Omit<T, "dispose">,
  ptr: number,
  bytes: number,
  scalePtr = 0,
): T {
  const r: Resident = { ptr, bytes, scalePtr, disposed: false };
  const out = {
    ...obj,
    dispose(): void {
      if (r.disposed) return;
      r.disposed = true;
      i.free(r.ptr);
      if (r.scalePtr) i.free(r.scalePtr);
    },
  } as unknown as T;
  resident.set(out, r);
  return out;
}

/** Options of {@link packF32B}. */
export interface PackF32Options {
  /** Layout of `b`: `"kn"` (row-major K×N, ONNX MatMul; default) or `"nk"` (N×K, Gemm transB). */
  layout?: "kn" | "nk";
  /** Context (default {@link floatKernels}). */
  kernels?: FloatKernels;
}

/**
 * Packs B (K×N) once for {@link gemmF32}; the panels stay in the context's memory.
 *
 * @param b the weights
 * @param k rows of B (reduction length)
 * @param n columns of B (outputs)
 * @param opts layout and context
 * @returns the packed weights
 *
 * @example
 * ```ts
 * import { gemmF32, packF32B } from "@lowbit/kernels";
 * const b = packF32B(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3); // [[1,2,3],[4,5,6]]
 * const c = gemmF32(new Float32Array([1, 1]), 1, b);
 * if (c.join() !== "5,7,9") throw new Error(c.join());
 * b.dispose();
 * ```
 */
export function packF32B(
  b: Float32Array,
  k: number,
  n: number,
  opts: PackF32Options = {},
): PackedF32B {
  checkDim(k, "packF32B: k");
  checkDim(n, "packF32B: n");
  if (!(b instanceof Float32Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "packF32B: b must be a Float32Array");
  }
  checkLen(b, k * n, `packF32B: b (${k}×${n})`);
  const layout = opts.layout ?? "kn";
  if (layout !== "kn" && layout !== "nk") {
    throw new LowbitError("INVALID_ARGUMENT", `packF32B: unknown layout '${layout}'`);
  }
  const kernels = opts.kernels ?? floatKernels();
  const i = internal(kernels);
  const panels = Math.ceil(n / 8);
  const bytes = panels * k * 32;
  const ptr = i.alloc(bytes);
  try {
    if (layout === "kn") {
      const src = slot(i, "pack", k * n * 4);
      f32View(kernels, src, k * n).set(b);
      i.ex.pack_f32_b_8(k, n, src, n, ptr);
    } else {
      const out = f32View(kernels, ptr, panels * k * 8);
      out.fill(0);
      for (let j = 0; j < n; j++) {
        const base = (j >> 3) * k * 8 + (j & 7);
        for (let kk = 0; kk < k; kk++) out[base + kk * 8] = b[j * k + kk];
      }
    }
  } catch (e) {
    i.free(ptr);
    throw e;
  }
  return makeResident<PackedF32B>(i, { kind: "f32", k, n, kernels }, ptr, bytes);
}

/** Options of {@link gemmF32} and {@link gemmMinifloat}. */
export interface GemmF32Options {
  /** Per-column scale (length N), applied first. */
  scale?: Float32Array;
  /** Per-column bias (length N). */
  bias?: Float32Array;
  /** Activation (default none). */
  activation?: Activation;
  /** Output buffer (length M·N) to write instead of allocating. */
  out?: Float32Array;
}

function checkEpilogue(what: string, n: number, m: number, opts: GemmF32Options): void {
  if (opts.scale !== undefined) checkLen(opts.scale, n, `${what}: scale`);
  if (opts.bias !== undefined) checkLen(opts.bias, n, `${what}: bias`);
  if (opts.out !== undefined) checkLen(opts.out, m * n, `${what}: out (${m}×${n})`);
}

/**
 * C[M×N] = activation(A[M×K] · B · scale + bias), A row-major, B packed by {@link packF32B}.
 * M = 1 runs the GEMV kernel (same summation order).
 *
 * @param a A, row-major M×K
 * @param m rows of A
 * @param b packed B (K×N)
 * @param opts epilogue and output buffer
 * @returns C, row-major M×N (`opts.out` when given)
 *
 * @example
 * ```ts
 * import { gemmF32, packF32B } from "@lowbit/kernels";
 * const b = packF32B(new Float32Array([1, -1]), 1, 2);
 * const c = gemmF32(new Float32Array([2, 3]), 2, b, { bias: new Float32Array([1, 1]), activation: "relu" });
 * if (c.join() !== "3,0,4,0") throw new Error(c.join());
 * ```
 */
export function gemmF32(
  a: Float32Array,
  m: number,
  b: PackedF32B,
  opts: GemmF32Options = {},
): Float32Array {
  const call = prepareGemmF32(a, m, b, opts);
  call.fn(0, call.rows, ...call.args);
  return call.finish();
}

/**
 * {@link gemmF32} split over the context's threads (see {@link createFloatKernelsOn}); the same
 * bits as one thread.
 *
 * @param a A, row-major M×K
 * @param m rows of A
 * @param b packed B (K×N)
 * @param opts epilogue and output buffer
 * @returns C, row-major M×N
 *
 * @example
 * ```ts
 * import { gemmF32Parallel, packF32B } from "@lowbit/kernels";
 * const c = await gemmF32Parallel(new Float32Array([2]), 1, packF32B(new Float32Array([3]), 1, 1));
 * if (c[0] !== 6) throw new Error();
 * ```
 */
export async function gemmF32Parallel(
  a: Float32Array,
  m: number,
  b: PackedF32B,
  opts: GemmF32Options = {},
): Promise<Float32Array> {
  const call = prepareGemmF32(a, m, b, opts);
  await runCall(internal(b.kernels), call);
  return call.finish();
}

interface Call {
  name: string;
  fn: Fn;
  rows: number;
  align: number;
  args: number[];
  finish: () => Float32Array;
}

async function runCall(i: Internal, call: Call): Promise<void> {
  if (i.runner && i.runner.threads > 1) {
    await i.runner.run(i.module, call.name, call.rows, call.args, call.align);
  } else call.fn(0, call.rows, ...call.args);
}

function finisher(
  k: FloatKernels,
  cPtr: number,
  len: number,
  out?: Float32Array,
): () => Float32Array {
  return () => {
    const o = out ?? new Float32Array(len);
    o.set(f32View(k, cPtr, len));
    return o;
  };
}

function makeCall(
  i: Internal,
  name: string,
  rows: number,
  align: number,
  args: number[],
  finish: () => Float32Array,
): Call {
  return { name: name + i.sfx, fn: kernel(i, name), rows, align, args, finish };
}

function prepareGemmF32(a: Float32Array, m: number, b: PackedF32B, opts: GemmF32Options): Call {
  checkDim(m, "gemmF32: m");
  const kernels = b.kernels;
  const r = residentOf(b, kernels, "gemmF32");
  const { k, n } = b;
  checkLen(a, m * k, `gemmF32: a (${m}×${k})`);
  checkEpilogue("gemmF32", n, m, opts);
  const [lo, hi] = bounds(opts.activation);
  const i = internal(kernels);
  const aPtr = slot(i, "a", m * k * 4);
  const cPtr = slot(i, "c", m * n * 4);
  const tmp = slot(i, "tmp", Math.ceil(n / 16) * 256 + 128);
  const [flags, sp, bp] = epilogueArgs(kernels, i, n, opts.scale, opts.bias);
  f32View(kernels, aPtr, m * k).set(a);
  const fin = finisher(kernels, cPtr, m * n, opts.out);
  if (m === 1) {
    return makeCall(i, "gemv_mfw_f32_minmax_1x8", n, 16, [
      32,
      n,
      k,
      aPtr,
      r.ptr,
      0,
      0,
      cPtr,
      tmp,
      flags,
      sp,
      bp,
      lo,
      hi,
    ], fin);
  }
  return makeCall(i, "gemm_f32_f32_minmax_4x8", n, 8, [
    m,
    k,
    aPtr,
    k,
    r.ptr,
    cPtr,
    n,
    tmp,
    flags,
    sp,
    bp,
    lo,
    hi,
  ], fin);
}

// *** minifloat weights ***

/** Weight formats of {@link packMinifloatB}: element formats (per-channel scale optional) and block formats. */
export type MinifloatWeightFormat =
  | MinifloatElement
  | "mxfp8_e4m3"
  | "mxfp8_e5m2"
  | "mxfp6_e3m2"
  | "mxfp6_e2m3"
  | "mxfp4"
  | "nvfp4";

const BLOCK_FORMATS: Record<
  string,
  { element: MinifloatElement; block: number; scale: "e8m0" | "e4m3" }
> = {
  mxfp8_e4m3: { element: "fp8_e4m3fn", block: 32, scale: "e8m0" },
  mxfp8_e5m2: { element: "fp8_e5m2", block: 32, scale: "e8m0" },
  mxfp6_e3m2: { element: "fp6_e3m2fn", block: 32, scale: "e8m0" },
  mxfp6_e2m3: { element: "fp6_e2m3fn", block: 32, scale: "e8m0" },
  mxfp4: { element: "fp4_e2m1fn", block: 32, scale: "e8m0" },
  nvfp4: { element: "fp4_e2m1fn", block: 16, scale: "e4m3" },
};

const ELEMENT_BITS: Record<MinifloatElement, { bits: number; fmt: number }> = {
  fp8_e4m3fn: { bits: 8, fmt: 4 },
  fp8_e5m2: { bits: 8, fmt: 5 },
  fp6_e3m2fn: { bits: 6, fmt: 8 + 3 }, // FMT_FP6 + exponent bits: packed four in three bytes
  fp6_e2m3fn: { bits: 6, fmt: 8 + 2 },
  fp4_e2m1fn: { bits: 4, fmt: 0 },
};

/** Minifloat weights as codes (one per element, bits right-aligned) with their scales. */
export interface MinifloatWeights {
  /** The format. */
  format: MinifloatWeightFormat;
  /** Rows of B (reduction length K). */
  k: number;
  /** Columns of B (outputs N). */
  n: number;
  /** One code per element, in `layout` order. */
  codes: Uint8Array;
  /** `"kn"` (codes[k·N + n], default) or `"nk"` (codes[n·K + k]). Blocks always run along K. */
  layout?: "kn" | "nk";
  /**
   * Block formats: one scale code per block of 32 (MX, E8M0) or 16 (NVFP4, E4M3) along K,
   * `[ceil(K/block)][N]` for "kn", `[N][ceil(K/block)]` for "nk".
   */
  scales?: Uint8Array;
  /** NVFP4: the FP32 tensor scale (default 1), applied in the epilogue. */
  tensorScale?: number;
  /** Element formats: optional per-column (per output channel) f32 scale, applied in the epilogue. */
  channelScale?: Float32Array;
}

/** Minifloat weights packed for {@link gemmMinifloat}. */
export interface PackedMinifloatB {
  /** Discriminant. */
  readonly kind: "minifloat";
  /** The format. */
  readonly format: MinifloatWeightFormat;
  /** Rows of B. */
  readonly k: number;
  /** Columns of B. */
  readonly n: number;
  /** The context that holds it. */
  readonly kernels: FloatKernels;
  /** Frees the packed weights (idempotent). */
  dispose(): void;
}

interface MinifloatMeta {
  fmt: number;
  /** Activations are multiplied by this power of two before the kernel (1 for fp4). */
  actScale: number;
  block: number;
  codesBytes: number;
  scalesPtr: number;
  colScale: Float32Array | undefined;
}

const minifloatMeta = new WeakMap<object, MinifloatMeta>();

function isSpecial(element: MinifloatElement, code: number): boolean {
  if (element === "fp8_e4m3fn") return (code & 0x7f) === 0x7f;
  if (element === "fp8_e5m2") return (code & 0x7c) === 0x7c;
  return false;
}

/**
 * Packs minifloat weight codes (and block scales) once for {@link gemmMinifloat}; panels of 8
 * columns, decoded in registers by the kernels, at 8 (FP8), 6 (FP6: four codes in three bytes)
 * or 4 (FP4) bits per weight. NaN / Inf codes are rejected (see the module doc).
 *
 * @param w the codes, scales and shape
 * @param kernels context (default {@link floatKernels})
 * @returns the packed weights
 *
 * @example
 * ```ts
 * import { gemmMinifloat, packMinifloatB } from "@lowbit/kernels";
 * // fp4 e2m1 codes: 0b0010 = 1, 0b0111 = 6, 0b1011 = -1.5, 0b0001 = 0.5  (K = 2, N = 2)
 * const w = packMinifloatB({ format: "fp4_e2m1fn", k: 2, n: 2, codes: new Uint8Array([2, 7, 11, 1]) });
 * const y = gemmMinifloat(new Float32Array([1, 2]), 1, w);
 * if (y.join() !== "-2,7") throw new Error(y.join());
 * ```
 */
export function packMinifloatB(
  w: MinifloatWeights,
  kernels: FloatKernels = floatKernels(),
): PackedMinifloatB {
  const what = `packMinifloatB(${w.format})`;
  const blockInfo = BLOCK_FORMATS[w.format];
  const element = (blockInfo ? blockInfo.element : w.format) as MinifloatElement;
  const el = ELEMENT_BITS[element];
  if (!el) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `${what}: unsupported weight format; use one of ${
        [...Object.keys(ELEMENT_BITS), ...Object.keys(BLOCK_FORMATS)].join(", ")
      }`,
    );
  }
  const { k, n } = w;
  checkDim(k, `${what}: k`);
  checkDim(n, `${what}: n`);
  if (!(w.codes instanceof Uint8Array)) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: codes must be a Uint8Array`);
  }
  checkLen(w.codes, k * n, `${what}: codes (${k}×${n})`);
  const layout = w.layout ?? "kn";
  if (layout !== "kn" && layout !== "nk") {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: unknown layout '${layout}'`);
  }
  const block = blockInfo ? blockInfo.block : 0;
  const nb = block ? Math.ceil(k / block) : 0;
  if (blockInfo) {
    if (!(w.scales instanceof Uint8Array)) {
      throw new LowbitError("INVALID_ARGUMENT", `${what}: block scales (Uint8Array) are required`);
    }
    checkLen(w.scales, nb * n, `${what}: scales (${nb} blocks × ${n})`);
    if (w.channelScale !== undefined) {
      throw new LowbitError("INVALID_ARGUMENT", `${what}: block formats take no channelScale`);
    }
  } else if (w.scales !== undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: element formats take no block scales`);
  }
  if (w.tensorScale !== undefined && w.format !== "nvfp4") {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: only nvfp4 has a tensor scale`);
  }
  const ts = w.tensorScale ?? 1;
  if (!Number.isFinite(ts) || Math.fround(ts) !== ts) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${what}: tensorScale must be a finite f32, got ${ts}`,
    );
  }
  if (w.channelScale !== undefined) checkLen(w.channelScale, n, `${what}: channelScale`);
  const codeAt = layout === "kn"
    ? (kk: number, j: number) => w.codes[kk * n + j]
    : (kk: number, j: number) => w.codes[j * k + kk];
  const limit = 1 << el.bits;
  for (let kk = 0; kk < k; kk++) {
    for (let j = 0; j < n; j++) {
      const c = codeAt(kk, j);
      if (c >= limit || isSpecial(element, c)) {
        throw new LowbitError(
          "INVALID_TENSOR",
          `${what}: code 0x${c.toString(16)} at (k=${kk}, n=${j}) is ${
            c >= limit
              ? `not a ${el.bits}-bit code`
              : Number.isNaN(decodeMinifloat(element, c))
              ? "NaN"
              : "infinite"
          }; weights must be finite`,
        );
      }
    }
  }
  // block scales, decoded to f32 (exact), checked
  const scaleVals = new Float32Array(nb * n);
  if (blockInfo) {
    const sAt = layout === "kn"
      ? (b: number, j: number) => w.scales![b * n + j]
      : (b: number, j: number) => w.scales![j * nb + b];
    for (let b = 0; b < nb; b++) {
      for (let j = 0; j < n; j++) {
        const s = sAt(b, j);
        const v = blockInfo.scale === "e8m0" ? decodeE8M0(s) : decodeMinifloat("fp8_e4m3fn", s);
        if (Number.isNaN(v)) {
          throw new LowbitError(
            "INVALID_TENSOR",
            `${what}: block scale 0x${
              s.toString(16)
            } at (block=${b}, n=${j}) is NaN; weights must be finite`,
          );
        }
        scaleVals[b * n + j] = v;
      }
    }
  }
  const i = internal(kernels);
  const panels = Math.ceil(n / 8);
  const fp4 = el.bits === 4, fp6 = el.bits === 6;
  const kp = fp4 ? Math.ceil(k / 4) * 4 : Math.ceil(k / 2) * 2;
  const rowBytes = fp4 ? 4 : fp6 ? 6 : 8;
  // fp6: the kernels' 16-byte loads of a 12-byte group read up to 4 bytes past it
  const codesBytes = panels * kp * rowBytes + (fp6 ? 16 : 0);
  const scalesBytes = panels * nb * 32;
  const ptr = i.alloc(codesBytes + scalesBytes);
  const bytes = new Uint8Array(kernels.memory.buffer, ptr, codesBytes);
  bytes.fill(0);
  for (let j = 0; j < n; j++) {
    const p = j >> 3, col = j & 7;
    const base = p * kp * rowBytes;
    for (let kk = 0; kk < k; kk++) {
      const c = codeAt(kk, j);
      // the in-group orders of _minifloat_impl.ts (one decoded vector = 4 columns of a row)
      if (fp4) {
        const at = base + (kk >> 2) * 16 + ((kk & 3) >> 1) * 8 + 2 * (col & 3) + (kk & 1);
        bytes[at] |= col < 4 ? c : c << 4;
      } else if (fp6) {
        // word (col & 3) of the 2-row group: A = (row 0, col) << 18, B = (row 1, col) << 12,
        // C = (row 0, col + 4) << 6, D = (row 1, col + 4), little-endian in 3 bytes
        const sh = (col < 4 ? 12 : 0) + (kk & 1 ? 0 : 6);
        const at = base + (kk >> 1) * 12 + 3 * (col & 3);
        const word = (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16) | c << sh;
        bytes[at] = word & 0xff;
        bytes[at + 1] = (word >> 8) & 0xff;
        bytes[at + 2] = word >> 16;
      } else bytes[base + (kk >> 1) * 16 + 4 * (col & 3) + 2 * (kk & 1) + (col >> 2)] = c;
    }
  }
  if (blockInfo) {
    const sv = f32View(kernels, ptr + codesBytes, panels * nb * 8);
    sv.fill(0);
    for (let j = 0; j < n; j++) {
      for (let b = 0; b < nb; b++) sv[(j >> 3) * nb * 8 + b * 8 + (j & 7)] = scaleVals[b * n + j];
    }
  }
  let colScale: Float32Array | undefined = w.channelScale
    ? Float32Array.from(w.channelScale)
    : undefined;
  if (w.format === "nvfp4" && ts !== 1) colScale = new Float32Array(n).fill(ts);
  // fp8 / fp6: the kernels' scaled value domain (see refGemmMinifloat)
  const shift = minifloatWeightShift(element);
  let actScale = 1;
  if (shift !== 0) {
    actScale = 2 ** (shift - MINIFLOAT_DOMAIN_SHIFT);
    const up = 2 ** MINIFLOAT_DOMAIN_SHIFT;
    colScale = colScale ? colScale.map((v) => v * up) : new Float32Array(n).fill(up);
  }
  const out = makeResident<PackedMinifloatB>(
    i,
    { kind: "minifloat", format: w.format, k, n, kernels },
    ptr,
    codesBytes + scalesBytes,
  );
  minifloatMeta.set(out, {
    fmt: el.fmt,
    actScale,
    block,
    codesBytes,
    scalesPtr: ptr + codesBytes,
    colScale,
  });
  return out;
}

/**
 * C[M×N] = activation(A[M×K] · W · colScale + bias) with minifloat weights W packed by
 * {@link packMinifloatB}; colScale is the packing's channelScale (element formats) or the NVFP4
 * tensor scale. M = 1 streams the codes (GEMV); M > 1 decodes panels into L2 and runs the f32
 * tile. `opts.scale` is not accepted (the scale comes with the weights).
 *
 * @param a A, row-major M×K
 * @param m rows of A
 * @param w packed weights
 * @param opts bias, activation, output buffer
 * @returns C, row-major M×N
 *
 * @example
 * ```ts
 * import { gemmMinifloat, packMinifloatB } from "@lowbit/kernels";
 * // fp8 e4m3fn: 0x38 = 1.0, 0x40 = 2.0; per-column scale 0.5
 * const w = packMinifloatB({ format: "fp8_e4m3fn", k: 1, n: 2, codes: new Uint8Array([0x38, 0x40]),
 *   channelScale: new Float32Array([0.5, 0.5]) });
 * const y = gemmMinifloat(new Float32Array([3, 4]), 2, w);
 * if (y.join() !== "1.5,3,2,4") throw new Error(y.join());
 * ```
 */
export function gemmMinifloat(
  a: Float32Array,
  m: number,
  w: PackedMinifloatB,
  opts: GemmF32Options = {},
): Float32Array {
  const call = prepareGemmMinifloat(a, m, w, opts);
  call.fn(0, call.rows, ...call.args);
  return call.finish();
}

/**
 * {@link gemmMinifloat} split over the context's threads (see {@link createFloatKernelsOn});
 * the same bits as one thread.
 *
 * @param a A, row-major M×K
 * @param m rows of A
 * @param w packed weights
 * @param opts bias, activation, output buffer
 * @returns C, row-major M×N
 *
 * @example
 * ```ts
 * import { gemmMinifloatParallel, packMinifloatB } from "@lowbit/kernels";
 * const w = packMinifloatB({ format: "fp4_e2m1fn", k: 1, n: 1, codes: new Uint8Array([7]) });
 * const y = await gemmMinifloatParallel(new Float32Array([2]), 1, w);
 * if (y[0] !== 12) throw new Error();
 * ```
 */
export async function gemmMinifloatParallel(
  a: Float32Array,
  m: number,
  w: PackedMinifloatB,
  opts: GemmF32Options = {},
): Promise<Float32Array> {
  const call = prepareGemmMinifloat(a, m, w, opts);
  await runCall(internal(w.kernels), call);
  return call.finish();
}

function prepareGemmMinifloat(
  a: Float32Array,
  m: number,
  w: PackedMinifloatB,
  opts: GemmF32Options,
): Call {
  checkDim(m, "gemmMinifloat: m");
  const kernels = w.kernels;
  const r = residentOf(w, kernels, "gemmMinifloat");
  const meta = minifloatMeta.get(w)!;
  const { k, n } = w;
  checkLen(a, m * k, `gemmMinifloat: a (${m}×${k})`);
  if (opts.scale !== undefined) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "gemmMinifloat: pass the scale as channelScale when packing",
    );
  }
  checkEpilogue("gemmMinifloat", n, m, opts);
  const [lo, hi] = bounds(opts.activation);
  const i = internal(kernels);
  const aPtr = slot(i, "a", m * k * 4);
  const cPtr = slot(i, "c", m * n * 4);
  const [flags, sp, bp] = epilogueArgs(kernels, i, n, meta.colScale, opts.bias);
  f32View(kernels, aPtr, m * k).set(a);
  if (meta.actScale !== 1) i.ex.mfw_scale_f32(aPtr, m * k, meta.actScale);
  const fin = finisher(kernels, cPtr, m * n, opts.out);
  if (m === 1) {
    const tmp = slot(i, "tmp", Math.ceil(n / 16) * 256 + 128);
    return makeCall(i, "gemv_mfw_f32_minmax_1x8", n, 16, [
      meta.fmt,
      n,
      k,
      aPtr,
      r.ptr,
      meta.scalesPtr,
      meta.block,
      cPtr,
      tmp,
      flags,
      sp,
      bp,
      lo,
      hi,
    ], fin);
  }
  const slotBytes = i.ex.gemm_mfw_scratch_bytes();
  const scratch = slot(i, "mfw", slotBytes * Math.ceil(n / MF_NCM));
  return makeCall(i, "gemm_mfw_f32_minmax_4x8", n, MF_NCM, [
    meta.fmt,
    m,
    k,
    aPtr,
    k,
    r.ptr,
    meta.scalesPtr,
    meta.block,
    cPtr,
    n,
    scratch,
    flags,
    sp,
    bp,
    lo,
    hi,
  ], fin);
}

/** Columns per decode slot of the minifloat GEMM (NCM in _minifloat_impl.ts). */
const MF_NCM = 128;

/**
 * The decoded weights W[K×N] (row-major): element value, times the block scale in f32 (NVFP4's
 * tensor scale and channel scales are not included: the epilogue applies them). With `domain`
 * `"kernel"`, fp8 / fp6 element values are taken at w·2^-B (B = `minifloatWeightShift`) before
 * the block scale, exactly as the kernels multiply them (the input of `refGemmMinifloat`).
 *
 * @param w the codes, scales and shape (as for {@link packMinifloatB})
 * @param domain `"value"` (default: true values) or `"kernel"`
 * @returns W, row-major K×N
 *
 * @example
 * ```ts
 * import { decodeMinifloatWeights } from "@lowbit/kernels";
 * const d = decodeMinifloatWeights({ format: "mxfp4", k: 1, n: 1, codes: new Uint8Array([7]),
 *   scales: new Uint8Array([128]) });
 * if (d[0] !== 12) throw new Error(String(d[0]));
 * ```
 */
export function decodeMinifloatWeights(
  w: MinifloatWeights,
  domain: "value" | "kernel" = "value",
): Float32Array {
  const blockInfo = BLOCK_FORMATS[w.format];
  const element = (blockInfo ? blockInfo.element : w.format) as MinifloatElement;
  if (!ELEMENT_BITS[element]) {
    throw new LowbitError(
      "UNKNOWN_NAME",
      `decodeMinifloatWeights: unsupported format '${w.format}'`,
    );
  }
  const { k, n } = w;
  const layout = w.layout ?? "kn";
  const nb = blockInfo ? Math.ceil(k / blockInfo.block) : 0;
  const out = new Float32Array(k * n);
  const down = domain === "kernel" ? 2 ** -minifloatWeightShift(element) : 1; // exact (f32 subnormal at worst)
  for (let kk = 0; kk < k; kk++) {
    for (let j = 0; j < n; j++) {
      const c = layout === "kn" ? w.codes[kk * n + j] : w.codes[j * k + kk];
      let v = decodeMinifloat(element, c) * down;
      if (blockInfo) {
        const b = Math.floor(kk / blockInfo.block);
        const s = layout === "kn" ? w.scales![b * n + j] : w.scales![j * nb + b];
        v = Math.fround(
          v * (blockInfo.scale === "e8m0" ? decodeE8M0(s) : decodeMinifloat("fp8_e4m3fn", s)),
        );
      }
      out[kk * n + j] = v;
    }
  }
  return out;
}

// *** conv ***

/** Options of {@link conv2dF32} and {@link depthwiseConv2dF32} (ONNX Conv attributes). */
export interface Conv2dF32Options {
  /** [sh, sw] (default [1, 1]). */
  strides?: readonly [number, number];
  /** [top, left, bottom, right] (ONNX order; default zeros). */
  pads?: readonly [number, number, number, number];
  /** [dh, dw] (default [1, 1]). */
  dilations?: readonly [number, number];
  /** Groups (default 1). */
  group?: number;
  /** Per-output-channel bias (length O). */
  bias?: Float32Array;
  /**
   * Per-output-channel scale (length O), applied to the sum before the bias:
   * y = f32(f32(acc · scale[o]) + bias[o]) (default none).
   */
  scale?: Float32Array;
  /** Activation (default none). */
  activation?: Activation;
  /** Elementwise ops after the activation (default none). */
  post?: ConvPostOps;
  /**
   * Quantize the input first, as {@link quantizeF32} (in the kernel memory's copy of it: the
   * caller's array is not modified): the conv then sums centred codes (default none).
   */
  inputQuantize?: { scale: number; lo: number; hi: number };
  /** Output buffer (length N·O·OH·OW). */
  out?: Float32Array;
  /** Context (default {@link floatKernels}; ignored when the weight is prepared). */
  kernels?: FloatKernels;
  /**
   * Integer route (default false): a dense conv whose weights were prepared with `integer` sums
   * every im2col chunk whose values are integers in i16 range with `i32x4.dot_i16x8_s` (other
   * chunks, e.g. with NaN, run on the f32 kernel), then applies the scale as
   * f32(f64(sum)·f64(scale)) and the rest of the epilogue as usual. The caller promises the int32
   * sums do not overflow (|sum| < 2³¹). While every partial sum is below 2²⁴ in magnitude (the
   * integer plan's centred codes, mostly) the result has the f32 kernel's bits; beyond, the exact
   * sum's (`Math.fround(sum * scale)`, as the integer plan's TypeScript epilogue).
   */
  integerSums?: boolean;
  /**
   * Integer-only requantization of a dense conv's sums instead of scale, bias, activation and
   * post-ops (none of which may be given): six numbers per output channel, `[bq, m0, 2^−shift,
   * zy, lo, hi]`, and the output is the code clamp(sign(t)·floor(|t|·2^−shift + 1/2) + zy, lo,
   * hi), t = (sum + bq)·m0, computed in double (as JavaScript would), as f32. The sums must be
   * exact in f32 (|partial sums| < 2²⁴: integer inputs and weights). Default none.
   */
  requantize?: Float64Array;
}

/**
 * Elementwise ops a conv applies to its output after the activation, in this order, each step
 * rounded to f32 as separate ONNX ops would: `Mul(·, preMul)`, `Add(·, preAdd)`, HardSwish
 * computed as ONNX's decomposition `Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)`, `Mul(·, mul)`,
 * `Add(·, add)`, then `quantize`.
 */
export interface ConvPostOps {
  /** Multiply by this scalar first. */
  preMul?: number;
  /** Then add this scalar. */
  preAdd?: number;
  /** Apply HardSwish. */
  hardswish?: boolean;
  /** Multiply by this scalar. */
  mul?: number;
  /** Add this scalar. */
  add?: number;
  /**
   * Last, quantize as ONNX QuantizeLinear (per tensor) and keep the code minus the zero point:
   * min(max(round_half_even(f32(v / scale)), lo), hi) as an f32 integer (NaN stays NaN).
   * `lo` / `hi` are the code range minus the zero point (e.g. −128 − z, 127 − z).
   */
  quantize?: { scale: number; lo: number; hi: number };
  /**
   * With `quantize`, after it: DequantizeLinear of the centred code, f32(c · scale), with a NaN
   * taken as the code `nanCode` (QuantizeLinear stores NaN as code 0: nanCode = −zero point, an
   * integer in [−512, 511]) — the values of {@link quantizeF32}'s `dequantize` pass.
   */
  dequantize?: { nanCode: number };
  /**
   * Instead of `quantize`, last: DequantizeLinear(QuantizeLinear(v)) to a float8 format, per
   * tensor, zero point 0, saturating (the values of {@link qdqFp8F32}).
   */
  qdqFp8?: { scale: number; format: "fp8_e4m3fn" | "fp8_e5m2" };
}

/** The post-op arguments of the split conv entry points (bits, then the eight scalars). */
function postArgs(post: ConvPostOps | undefined): number[] {
  if (post === undefined) return [0, 1, 0, 1, 0, 1, 0, 0];
  for (const k of ["mul", "add", "preMul", "preAdd"] as const) {
    const v = post[k];
    if (v !== undefined && typeof v !== "number") {
      throw new LowbitError("INVALID_ARGUMENT", `conv post-op ${k} must be a number, got ${v}`);
    }
  }
  const q = post.quantize;
  if (q !== undefined) {
    const ok = q !== null && typeof q === "object" && Number.isFinite(q.scale) && q.scale > 0 &&
      Math.fround(q.scale) > 0 && Number.isInteger(q.lo) && Number.isInteger(q.hi) &&
      q.lo <= q.hi && Math.abs(q.lo) < 2 ** 24 && Math.abs(q.hi) < 2 ** 24;
    if (!ok) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `conv post-op quantize needs a finite scale > 0 and integer bounds lo <= hi, got ${
          JSON.stringify(q)
        }`,
      );
    }
  }
  const dq = post.dequantize;
  if (
    dq !== undefined &&
    (q === undefined || dq === null || typeof dq !== "object" || !Number.isInteger(dq.nanCode) ||
      dq.nanCode < -512 || dq.nanCode > 511)
  ) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `conv post-op dequantize needs quantize and an integer nanCode in [-512, 511], got ${
        JSON.stringify(dq)
      }`,
    );
  }
  const f8 = post.qdqFp8;
  const fmt = f8 === undefined ? undefined : fp8Qdq(f8.format);
  if (
    f8 !== undefined &&
    (q !== undefined || fmt === undefined || !Number.isFinite(f8.scale) || !(f8.scale > 0) ||
      !(Math.fround(f8.scale) > 0))
  ) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `conv post-op qdqFp8 needs a finite scale > 0, a float8 format and no quantize, got ${
        JSON.stringify(f8)
      }`,
    );
  }
  const bits = (post.hardswish ? 1 : 0) | (post.mul !== undefined ? 2 : 0) |
    (post.add !== undefined ? 4 : 0) | (post.preMul !== undefined ? 8 : 0) |
    (post.preAdd !== undefined ? 16 : 0) | (q !== undefined ? 32 : 0) |
    (fmt !== undefined ? 64 | (fmt[0] << 8) | ((127 + fmt[1]) << 16) : 0) |
    (dq !== undefined ? 128 | ((dq.nanCode + 512) << 8) : 0);
  return [
    bits,
    post.mul ?? 1,
    post.add ?? 0,
    post.preMul ?? 1,
    post.preAdd ?? 0,
    q?.scale ?? f8?.scale ?? 1,
    q?.lo ?? 0,
    q?.hi ?? fmt?.[2] ?? 0,
  ];
}

/** A conv output: NCHW data and its shape. */
export interface Conv2dResult {
  /** The output, NCHW. */
  data: Float32Array;
  /** [N, O, OH, OW]. */
  shape: [number, number, number, number];
}

/** Conv weights copied once into the context's memory (see {@link prepareConv2dF32}). */
export interface PreparedConv2dF32 {
  /** Discriminant. */
  readonly kind: "conv2d_f32";
  /** [O, C/group, kh, kw]. */
  readonly shape: readonly [number, number, number, number];
  /** Whether an i16 copy was kept for the integer route (see {@link PrepareConv2dOptions}). */
  readonly integer: boolean;
  /** The context that holds it. */
  readonly kernels: FloatKernels;
  /** Frees the weights (idempotent). */
  dispose(): void;
}

/** Options of {@link prepareConv2dF32}. */
export interface PrepareConv2dOptions {
  /**
   * Also keep the weights as i16 (rows of K = C/group·kh·kw rounded up to even) when they are
   * all integers in [−32768, 32767], for the integer route of convs called with `integerSums`
   * (ignored otherwise; default false).
   */
  integer?: boolean;
}

/**
 * Copies OIHW conv weights into the context's memory once, for repeated {@link conv2dF32} /
 * {@link depthwiseConv2dF32} calls (the GEMM reads them in place: OIHW is its A layout).
 *
 * @param weight OIHW weights
 * @param shape [O, C/group, kh, kw]
 * @param kernels context (default {@link floatKernels})
 * @param opts `integer`: keep an i16 copy too (see {@link PrepareConv2dOptions})
 * @returns the prepared weights
 *
 * @example
 * ```ts
 * import { conv2dF32, prepareConv2dF32 } from "@lowbit/kernels";
 * const w = prepareConv2dF32(new Float32Array([2]), [1, 1, 1, 1]);
 * const y = conv2dF32(new Float32Array([1, 2, 3, 4]), [1, 1, 2, 2], w);
 * if (y.data.join() !== "2,4,6,8") throw new Error();
 * w.dispose();
 * ```
 */
export function prepareConv2dF32(
  weight: Float32Array,
  shape: readonly [number, number, number, number],
  kernels: FloatKernels = floatKernels(),
  opts: PrepareConv2dOptions = {},
): PreparedConv2dF32 {
  checkShape4(shape, "prepareConv2dF32: weight shape");
  checkLen(
    weight,
    shape[0] * shape[1] * shape[2] * shape[3],
    `prepareConv2dF32: weight [${shape}]`,
  );
  const i = internal(kernels);
  const bytes = weight.length * 4;
  const ptr = i.alloc(bytes);
  f32View(kernels, ptr, weight.length).set(weight);
  // The i16 copy (rows of K rounded up to even, zero-padded): integers in i16 range only.
  // Convs with kh·kw > 1 and an even channel count per group get a second copy right after it,
  // rows in (ky, kx, c) order, for the channel-pair image (see splitCalls).
  let w16 = 0;
  if (opts.integer && weight.every((v) => Number.isInteger(v) && v >= -32768 && v <= 32767)) {
    const [o, cg, kh, kw] = shape, k = weight.length / o, kp = k + (k & 1);
    const pairs = hasPairCopy(shape);
    w16 = i.alloc(o * kp * 2 + (pairs ? o * k * 2 : 0));
    const v = new Int16Array(kernels.memory.buffer, w16, o * kp);
    v.fill(0);
    for (let r = 0; r < o; r++) v.set(weight.subarray(r * k, (r + 1) * k), r * kp);
    if (pairs) {
      const v2 = new Int16Array(kernels.memory.buffer, w16 + o * kp * 2, o * k);
      for (let r = 0; r < o; r++) {
        for (let c = 0; c < cg; c++) {
          for (let t = 0; t < kh * kw; t++) {
            v2[r * k + t * cg + c] = weight[r * k + c * kh * kw + t];
          }
        }
      }
    }
  }
  return makeResident<PreparedConv2dF32>(
    i,
    { kind: "conv2d_f32", shape: [...shape], kernels, integer: w16 !== 0 },
    ptr,
    bytes,
    w16,
  );
}

/** Whether integer weights of this OIHW shape get the (ky, kx, c) pair copy: kh·kw > 1, cg even. */
function hasPairCopy(shape: readonly number[]): boolean {
  return shape[2] * shape[3] > 1 && shape[1] % 2 === 0;
}

function checkShape4(s: readonly number[], what: string): void {
  if (!Array.isArray(s) || s.length !== 4) {
    throw new LowbitError("SHAPE_MISMATCH", `${what} must have 4 dimensions, got [${s}]`);
  }
  for (const d of s) checkDim(d, `${what} [${s}] entries`);
}

interface ConvPlan {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  cg: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pads: readonly [number, number, number, number];
  group: number;
  oh: number;
  ow: number;
}

function planConv(
  what: string,
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  wshape: readonly [number, number, number, number],
  opts: Conv2dF32Options,
): ConvPlan {
  checkShape4(inputShape, `${what}: input shape`);
  checkShape4(wshape, `${what}: weight shape`);
  const [n, c, h, w] = inputShape;
  const [o, cg, kh, kw] = wshape;
  checkLen(input, n * c * h * w, `${what}: input [${inputShape}]`);
  const group = opts.group ?? 1;
  checkDim(group, `${what}: group`);
  const [sh, sw] = opts.strides ?? [1, 1];
  const [dh, dw] = opts.dilations ?? [1, 1];
  const pads = opts.pads ?? [0, 0, 0, 0];
  checkDim(sh, `${what}: stride`);
  checkDim(sw, `${what}: stride`);
  checkDim(dh, `${what}: dilation`);
  checkDim(dw, `${what}: dilation`);
  if (pads.length !== 4) {
    throw new LowbitError("INVALID_ARGUMENT", `${what}: pads must have 4 entries`);
  }
  for (const p of pads) checkDim(p, `${what}: pads`, 0);
  if (c % group !== 0 || o % group !== 0 || c / group !== cg) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what}: input channels ${c} and output channels ${o} must split into ${group} groups ` +
        `of ${cg} input channels (weight [${wshape}])`,
    );
  }
  const oh = Math.floor((h + pads[0] + pads[2] - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pads[1] + pads[3] - dw * (kw - 1) - 1) / sw) + 1;
  if (oh < 1 || ow < 1) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what}: the kernel ${kh}×${kw} (dilation ${dh}×${dw}) does not fit the padded input ${h}×${w}`,
    );
  }
  if (opts.bias !== undefined) checkLen(opts.bias, o, `${what}: bias`);
  if (opts.scale !== undefined) checkLen(opts.scale, o, `${what}: scale`);
  if (opts.out !== undefined) checkLen(opts.out, n * o * oh * ow, `${what}: out`);
  return { n, c, h, w, o, cg, kh, kw, sh, sw, dh, dw, pads, group, oh, ow };
}

interface ConvSetup {
  kernels: FloatKernels;
  i: Internal;
  p: ConvPlan;
  depthwise: boolean;
  xPtr: number;
  wPtr: number;
  /** The i16 weights of the integer route (0: none). */
  w16: number;
  yPtr: number;
  outLen: number;
  flags: number;
  bp: number;
  sp: number;
  lo: number;
  hi: number;
  /**
   * `inputQuantize`, not yet applied to the input at xPtr: splitCalls quantizes the input there
   * (quantizeConvInput), or per image while converting it to the integer route's i16 copy.
   */
  iq: { scale: number; lo: number; hi: number } | undefined;
}

/** Quantizes the whole conv input in place (setupConv left it to the caller), once. */
function quantizeConvInput(s: ConvSetup): void {
  const { iq } = s;
  if (iq === undefined) return;
  s.iq = undefined;
  const inLen = s.p.n * s.p.c * s.p.h * s.p.w;
  kernel(s.i, "quantize_f32_centred")(s.xPtr, inLen, s.xPtr, iq.scale, iq.lo, iq.hi);
}

/**
 * Validates a conv call and copies input, weights (unless prepared) and bias into memory. An
 * `inputQuantize` is left to the caller (ConvSetup.iq).
 */
function setupConv(
  what: string,
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShape: readonly [number, number, number, number] | undefined,
  opts: Conv2dF32Options,
  depthwiseOnly: boolean,
): ConvSetup {
  let kernels: FloatKernels;
  let wshape: readonly [number, number, number, number];
  let wPtr = -1, w16 = 0;
  if (weight instanceof Float32Array) {
    if (weightShape === undefined) {
      throw new LowbitError("INVALID_ARGUMENT", `${what}: the weight shape is required`);
    }
    wshape = weightShape;
    kernels = opts.kernels ?? floatKernels();
  } else {
    kernels = weight.kernels;
    const r = residentOf(weight, kernels, what);
    wPtr = r.ptr;
    if (weight.integer && opts.integerSums === true) w16 = r.scalePtr;
    wshape = weight.shape;
    if (weightShape !== undefined && weightShape.join() !== wshape.join()) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${what}: weight shape [${weightShape}] ≠ prepared [${wshape}]`,
      );
    }
  }
  const p = planConv(what, input, inputShape, wshape, opts);
  if (weight instanceof Float32Array) {
    checkLen(weight, wshape[0] * wshape[1] * wshape[2] * wshape[3], `${what}: weight [${wshape}]`);
  }
  const depthwise = p.group === p.c && p.o === p.c && p.cg === 1;
  if (depthwise) w16 = 0; // the direct depthwise kernel has no integer route
  if (depthwiseOnly && !depthwise) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${what}: depthwise needs group = channels = output channels and weight [C, 1, kh, kw]; got input [${inputShape}], weight [${wshape}], group ${p.group}`,
    );
  }
  const [lo, hi] = bounds(opts.activation);
  const i = internal(kernels);
  const inLen = p.n * p.c * p.h * p.w;
  const outLen = p.n * p.o * p.oh * p.ow;
  // Arrays already in the context's memory (residentF32) are used in place: no copies.
  const iq = opts.inputQuantize;
  if (iq !== undefined) postArgs({ quantize: iq }); // validates
  // A resident input is read in place, unless it is to be quantized (into the slot instead).
  const rx = iq === undefined ? residentOf32(input, kernels) : undefined;
  const ry = residentOf32(opts.out, kernels);
  const xPtr = rx ?? slot(i, "a", inLen * 4);
  const yPtr = ry ?? slot(i, "c", outLen * 4);
  if (wPtr < 0) {
    wPtr = slot(i, "w", (weight as Float32Array).length * 4);
    f32View(kernels, wPtr, (weight as Float32Array).length).set(weight as Float32Array);
  }
  let flags = 0, bp = 0, sp = 0;
  const rq = opts.requantize;
  if (rq !== undefined) {
    if (
      !(rq instanceof Float64Array) || rq.length !== 6 * p.o || depthwise ||
      opts.bias !== undefined || opts.scale !== undefined || opts.post !== undefined ||
      (opts.activation !== undefined && opts.activation !== "none")
    ) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${what}: requantize needs 6·O = ${6 * p.o} float64 numbers, a dense conv, and no bias, ` +
          "scale, activation or post-ops",
      );
    }
    flags = EPI_DYADIC | EPI_ROW;
    sp = slot(i, "epiScale", rq.length * 8 + 32);
    new Float64Array(kernels.memory.buffer, sp, rq.length).set(rq);
  }
  if (opts.bias) {
    flags = EPI_BIAS | EPI_ROW;
    bp = slot(i, "epi", p.o * 4 + 32);
    f32View(kernels, bp, p.o).set(opts.bias);
  }
  if (opts.scale) {
    flags |= EPI_SCALE | EPI_ROW;
    sp = slot(i, "epiScale", p.o * 4 + 32);
    f32View(kernels, sp, p.o).set(opts.scale);
  }
  if (rx === undefined) f32View(kernels, xPtr, inLen).set(input);
  return { kernels, i, p, depthwise, xPtr, wPtr, w16, yPtr, outLen, flags, bp, sp, lo, hi, iq };
}

function convResult(s: ConvSetup, opts: Conv2dF32Options): Conv2dResult {
  const { p } = s;
  const out = opts.out ?? new Float32Array(s.outLen);
  if (residentOf32(out, s.kernels) !== s.yPtr) out.set(f32View(s.kernels, s.yPtr, s.outLen));
  return { data: out, shape: [p.n, p.o, p.oh, p.ow] };
}

// *** arrays resident in a context's memory ***

const residentF32s = new WeakMap<Float32Array, { kernels: FloatKernels; ptr: number }>();

/** The address of `a` in `kernels`' memory when `a` came from {@link residentF32} there. */
function residentOf32(a: Float32Array | undefined, kernels: FloatKernels): number | undefined {
  const r = a === undefined ? undefined : residentF32s.get(a);
  return r !== undefined && r.kernels === kernels ? r.ptr : undefined;
}

/**
 * A float32 array allocated in the memory of a context on a shared memory (a worker pool's):
 * convs on that context read such an input and write such an `out` in place, without copying
 * them in and out. The memory must be shared, since growing a non-shared one detaches every
 * view of it. Free it with {@link freeResidentF32}.
 *
 * @param kernels a context from {@link createFloatKernelsOn} on a shared-memory pool
 * @param n elements
 * @returns the array (contents arbitrary)
 *
 * @example
 * ```ts
 * import { createFloatKernels, residentF32 } from "@lowbit/kernels";
 * let refused = false;
 * try {
 *   residentF32(createFloatKernels(), 4); // not shared memory
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error();
 * ```
 */
export function residentF32(kernels: FloatKernels, n: number): Float32Array {
  checkDim(n, "residentF32: n");
  if (!(kernels.memory.buffer instanceof SharedArrayBuffer)) {
    throw new LowbitError(
      "UNSUPPORTED",
      "residentF32: the context's memory is not shared (growing it would detach the array)",
    );
  }
  const ptr = internal(kernels).alloc(n * 4);
  const a = new Float32Array(kernels.memory.buffer, ptr, n);
  residentF32s.set(a, { kernels, ptr });
  return a;
}

/**
 * Whether `a` is an array from {@link residentF32} in `kernels`' memory (convs and
 * {@link quantizeF32} on that context then read and write it in place).
 *
 * @param a the array
 * @param kernels the context
 * @returns true when `a` is resident there
 *
 * @example
 * ```ts
 * import { createFloatKernels, isResidentF32 } from "@lowbit/kernels";
 * if (isResidentF32(new Float32Array(4), createFloatKernels())) throw new Error();
 * ```
 */
export function isResidentF32(a: Float32Array, kernels: FloatKernels): boolean {
  return residentOf32(a, kernels) !== undefined;
}

/**
 * Frees an array from {@link residentF32} (once; it must not be used afterwards).
 *
 * @param a the array
 *
 * @example
 * ```ts
 * import { freeResidentF32 } from "@lowbit/kernels";
 * freeResidentF32(new Float32Array(1)); // not resident: nothing to do
 * ```
 */
export function freeResidentF32(a: Float32Array): void {
  const r = residentF32s.get(a);
  if (r === undefined) return;
  residentF32s.delete(a);
  internal(r.kernels).free(r.ptr);
}

/**
 * ONNX QuantizeLinear (per tensor) to centred codes, as f32: out[i] = min(max(round_half_even(
 * f32(x[i] / scale)), lo), hi) (+0 for −0; NaN stays NaN), with lo / hi the code range minus the
 * zero point. The input side of the exact integer-on-float convs (the conv epilogue's
 * `post.quantize` is the same operation).
 *
 * @param x the values
 * @param scale the quantization scale (f32, > 0)
 * @param lo lowest centred code (an integer)
 * @param hi highest centred code (an integer ≥ lo)
 * @param opts `out` (length n, x itself for in place; default a new array), `kernels` (default {@link floatKernels}),
 *   `dequantize`: return f32(c·scale) instead of c (DequantizeLinear after it), NaN taking the
 *   centred code `nanCode` (QuantizeLinear stores NaN as code 0: nanCode = −zero point)
 * @returns the centred codes (or their dequantized values)
 *
 * @example
 * ```ts
 * import { quantizeF32 } from "@lowbit/kernels";
 * // 0.25 / 0.5 = 0.5 → 0, 0.75 / 0.5 = 1.5 → 2 (ties to even), 100 → clamped to 9
 * const q = quantizeF32(new Float32Array([0.25, 0.75, 100, -3]), 0.5, -10, 9);
 * if (q.join() !== "0,2,9,-6") throw new Error(q.join());
 * ```
 */
export function quantizeF32(
  x: Float32Array,
  scale: number,
  lo: number,
  hi: number,
  opts: { out?: Float32Array; kernels?: FloatKernels; dequantize?: { nanCode: number } } = {},
): Float32Array {
  if (!(x instanceof Float32Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "quantizeF32: x must be a Float32Array");
  }
  postArgs({ quantize: { scale, lo, hi } }); // validates
  const n = x.length;
  const out = opts.out ?? new Float32Array(n);
  checkLen(out, n, "quantizeF32: out");
  const kernels = opts.kernels ?? floatKernels();
  const i = internal(kernels);
  const rx = residentOf32(x, kernels), ry = residentOf32(out, kernels);
  const xPtr = rx ?? slot(i, "a", n * 4);
  // In place (out is x): one copy in kernel memory, read and written value by value.
  const yPtr = ry ?? (out === x ? xPtr : slot(i, "c", n * 4));
  if (rx === undefined) f32View(kernels, xPtr, n).set(x);
  const dq = opts.dequantize;
  if (dq === undefined) kernel(i, "quantize_f32_centred")(xPtr, n, yPtr, scale, lo, hi);
  else kernel(i, "qdq_f32")(xPtr, n, yPtr, scale, lo, hi, dq.nanCode);
  if (ry === undefined) out.set(f32View(kernels, yPtr, n));
  return out;
}

/**
 * y = f32(a + b) elementwise (same lengths), then optionally `relu` as the Relu op computes it
 * (v > 0 ? v : 0: NaN and −0 give +0), then optionally `quantize` as {@link quantizeF32} (the
 * centred codes), in one SIMD pass: a residual sum, its ReLU and the next layer's
 * QuantizeLinear without the round trips of three ops. With `dequantize`, `a` holds centred
 * codes and is dequantized first as `quantizeF32(…, { dequantize })` does: f32(c·scale), a NaN
 * code taken as `nanCode` (a QuantizeLinear → DequantizeLinear pair on the residual branch).
 *
 * @param a the first operand (centred codes with `dequantize`)
 * @param b the second operand (same length)
 * @param opts `out` (length n; a or b itself for in place; default a new array), `kernels`
 *   (default {@link floatKernels}), `dequantize` ({ scale, nanCode }: a's codes), `relu`,
 *   `quantize` ({ scale, lo, hi } as quantizeF32)
 * @returns the sums (after the ReLU; or their centred codes)
 *
 * @example
 * ```ts
 * import { addF32 } from "@lowbit/kernels";
 * const y = addF32(new Float32Array([1, -3, 0.5]), new Float32Array([2, 1, NaN]), { relu: true });
 * if (y.join() !== "3,0,0") throw new Error(y.join());
 * // then QuantizeLinear with scale 0.5 into [0, 5]: 3 / 0.5 = 6 → 5
 * const q = addF32(new Float32Array([1, 0.2]), new Float32Array([2, 0.1]), {
 *   relu: true,
 *   quantize: { scale: 0.5, lo: 0, hi: 5 },
 * });
 * if (q.join() !== "5,1") throw new Error(q.join());
 * // a as centred codes with scale 0.25 (NaN → code 2): 4·0.25 + 1 = 2, 2·0.25 + 1 = 1.5
 * const d = addF32(new Float32Array([4, NaN]), new Float32Array([1, 1]), {
 *   dequantize: { scale: 0.25, nanCode: 2 },
 * });
 * if (d.join() !== "2,1.5") throw new Error(d.join());
 * ```
 */
export function addF32(
  a: Float32Array,
  b: Float32Array,
  opts: {
    out?: Float32Array;
    kernels?: FloatKernels;
    dequantize?: { scale: number; nanCode: number };
    relu?: boolean;
    quantize?: { scale: number; lo: number; hi: number };
  } = {},
): Float32Array {
  if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "addF32: a and b must be Float32Arrays");
  }
  const dq = opts.dequantize;
  if (
    dq !== undefined &&
    (!(Math.fround(dq.scale) > 0) || !Number.isFinite(Math.fround(dq.scale)) ||
      !Number.isInteger(dq.nanCode))
  ) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `addF32: dequantize needs a finite f32 scale > 0 and an integer nanCode, got ${dq.scale}, ${dq.nanCode}`,
    );
  }
  const n = a.length;
  checkLen(b, n, "addF32: b");
  const q = opts.quantize;
  if (q !== undefined) postArgs({ quantize: q }); // validates
  const out = opts.out ?? new Float32Array(n);
  checkLen(out, n, "addF32: out");
  const kernels = opts.kernels ?? floatKernels();
  const i = internal(kernels);
  const ra = residentOf32(a, kernels),
    rb = residentOf32(b, kernels),
    ro = residentOf32(out, kernels);
  const aPtr = ra ?? slot(i, "a", n * 4);
  const bPtr = rb ?? slot(i, "b", n * 4);
  // Written over an operand's copy when out is that operand (each value read before written).
  const yPtr = ro ?? (out === a ? aPtr : out === b ? bPtr : slot(i, "c", n * 4));
  if (ra === undefined) f32View(kernels, aPtr, n).set(a);
  if (rb === undefined) f32View(kernels, bPtr, n).set(b);
  kernel(i, "add_f32_post")(
    aPtr,
    bPtr,
    n,
    yPtr,
    opts.relu ? 1 : 0,
    q ? 1 : 0,
    q?.scale ?? 1,
    q?.lo ?? 0,
    q?.hi ?? 0,
    dq?.scale ?? 0,
    dq?.nanCode ?? 0,
  );
  if (ro === undefined) out.set(f32View(kernels, yPtr, n));
  return out;
}

/** The float8 formats of {@link qdqFp8F32}: [mantissa bits, smallest normal exponent, max]. */
function fp8Qdq(format: string): readonly [number, number, number] | undefined {
  return Object.hasOwn(FP8_QDQ_FORMATS, format)
    ? FP8_QDQ_FORMATS[format as keyof typeof FP8_QDQ_FORMATS]
    : undefined;
}

/**
 * DequantizeLinear(QuantizeLinear(x)) to a float8 format (per tensor, zero point 0, saturating),
 * in one SIMD pass: y = f32(r·scale), r = f32(x / scale) rounded half to even to the format
 * (its subnormal quantum below the smallest normal), |r| ≤ the format's max, NaN kept, ±0 kept.
 *
 * @param x the values
 * @param scale the quantization scale (f32, > 0)
 * @param format `"fp8_e4m3fn"` or `"fp8_e5m2"`
 * @param opts `out` (length n, x itself for in place; default a new array), `kernels` (default {@link floatKernels})
 * @returns the dequantized values
 *
 * @example
 * ```ts
 * import { qdqFp8F32 } from "@lowbit/kernels";
 * // e4m3 near 1: quantum 1/8; 1.0625 is a tie → 1 (even), 1.1875 → 1.25; 1000 saturates to 448
 * const y = qdqFp8F32(new Float32Array([1.0625, 1.1875, 1000, -0.3]), 1, "fp8_e4m3fn");
 * if (y.join() !== "1,1.25,448,-0.3125") throw new Error(y.join());
 * ```
 */
export function qdqFp8F32(
  x: Float32Array,
  scale: number,
  format: "fp8_e4m3fn" | "fp8_e5m2",
  opts: { out?: Float32Array; kernels?: FloatKernels } = {},
): Float32Array {
  if (!(x instanceof Float32Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "qdqFp8F32: x must be a Float32Array");
  }
  const f = fp8Qdq(format);
  if (f === undefined) {
    throw new LowbitError("UNSUPPORTED", `qdqFp8F32: format ${format} (fp8_e4m3fn, fp8_e5m2)`);
  }
  if (!(Number.isFinite(scale) && Math.fround(scale) > 0)) {
    throw new LowbitError("INVALID_ARGUMENT", `qdqFp8F32: scale must be finite and > 0: ${scale}`);
  }
  const n = x.length;
  const out = opts.out ?? new Float32Array(n);
  checkLen(out, n, "qdqFp8F32: out");
  const kernels = opts.kernels ?? floatKernels();
  const i = internal(kernels);
  const rx = residentOf32(x, kernels), ry = residentOf32(out, kernels);
  const xPtr = rx ?? slot(i, "a", n * 4);
  const yPtr = ry ?? (out === x ? xPtr : slot(i, "c", n * 4)); // in place: one copy
  if (rx === undefined) f32View(kernels, xPtr, n).set(x);
  const [m, minNormal, max] = f;
  kernel(i, "qdq_fp8_f32")(xPtr, n, yPtr, scale, m, 127 + minNormal, max);
  if (ry === undefined) out.set(f32View(kernels, yPtr, n));
  return out;
}

function runConv(
  what: string,
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShape: readonly [number, number, number, number] | undefined,
  opts: Conv2dF32Options,
  depthwiseOnly: boolean,
): Conv2dResult {
  const s = setupConv(what, input, inputShape, weight, weightShape, opts, depthwiseOnly);
  if (opts.post !== undefined || opts.scale !== undefined || s.w16 !== 0 || s.flags & EPI_DYADIC) {
    // Post-ops, scales and the integer route exist on the split entry points only: run them as
    // one range.
    for (const c of splitCalls(s, 1, opts.post)) {
      c.before?.();
      s.i.ex[c.fn](0, c.rows, ...c.args);
    }
    return convResult(s, opts);
  }
  quantizeConvInput(s);
  const { i, p, xPtr, wPtr, yPtr, flags, bp, lo, hi } = s;
  const [pt, pl] = p.pads;
  if (s.depthwise) {
    const sb = i.ex.dwconv_scratch_bytes(p.oh, p.ow, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw);
    const scratch = slot(i, "conv", sb);
    kernel(i, "dwconv2d_f32_minmax_4x1")(
      p.n,
      p.c,
      p.h,
      p.w,
      p.kh,
      p.kw,
      p.sh,
      p.sw,
      p.dh,
      p.dw,
      pt,
      pl,
      p.oh,
      p.ow,
      xPtr,
      wPtr,
      yPtr,
      scratch,
      flags,
      bp,
      lo,
      hi,
    );
  } else {
    const sb = i.ex.conv2d_scratch_bytes(
      p.c,
      p.h,
      p.w,
      p.cg,
      p.kh,
      p.kw,
      p.sh,
      p.sw,
      p.dh,
      p.dw,
      pt,
      pl,
      p.oh,
      p.ow,
    );
    const scratch = slot(i, "conv", sb);
    kernel(i, "conv2d_f32_minmax_im2col_4x8")(
      p.n,
      p.c,
      p.h,
      p.w,
      p.o,
      p.group,
      p.kh,
      p.kw,
      p.sh,
      p.sw,
      p.dh,
      p.dw,
      pt,
      pl,
      p.oh,
      p.ow,
      xPtr,
      wPtr,
      yPtr,
      scratch,
      flags,
      bp,
      lo,
      hi,
    );
  }
  return convResult(s, opts);
}

/**
 * The conv entry points' trailing arguments, `(weightShape, opts)` or `(opts)`: the weight shape
 * (undefined when the weight is prepared) and the options.
 */
function convArgs(
  weightShapeOrOpts: readonly [number, number, number, number] | Conv2dF32Options | undefined,
  opts: Conv2dF32Options,
): [readonly [number, number, number, number] | undefined, Conv2dF32Options] {
  if (Array.isArray(weightShapeOrOpts)) {
    return [weightShapeOrOpts as [number, number, number, number], opts];
  }
  return [undefined, (weightShapeOrOpts ?? opts) as Conv2dF32Options];
}

/** The options of a depthwise entry point: `group` defaults to C. */
function depthwiseOpts(
  o: Conv2dF32Options,
  inputShape: readonly [number, number, number, number],
): Conv2dF32Options {
  const c = Array.isArray(inputShape) ? inputShape[1] : 0;
  return { ...o, group: o.group ?? c };
}

/**
 * Conv2d, ONNX semantics: NCHW input, OIHW weight, groups, strides, dilations, explicit pads, bias
 * and activation fused. Depthwise convs (group = C = O) run the direct depthwise kernel, the
 * others im2col (in L2-sized chunks) + the f32 GEMM; both sum in the same order (see
 * `reference_float.ts`).
 *
 * @param input input, NCHW
 * @param inputShape [N, C, H, W]
 * @param weight OIHW weights, or weights from {@link prepareConv2dF32}
 * @param weightShapeOrOpts [O, C/group, kh, kw] (with a Float32Array weight), else the options
 * @param opts the options when the weight shape is given
 * @returns the output and its shape
 *
 * @example
 * ```ts
 * import { conv2dF32 } from "@lowbit/kernels";
 * // 3×3 ones kernel, pad 1, on a 2×2 image of ones: every output sees 4 ones
 * const y = conv2dF32(new Float32Array(4).fill(1), [1, 1, 2, 2], new Float32Array(9).fill(1), [1, 1, 3, 3], {
 *   pads: [1, 1, 1, 1],
 * });
 * if (y.data.join() !== "4,4,4,4" || y.shape.join() !== "1,1,2,2") throw new Error();
 * ```
 */
export function conv2dF32(
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShapeOrOpts?: readonly [number, number, number, number] | Conv2dF32Options,
  opts: Conv2dF32Options = {},
): Conv2dResult {
  const [shape, o] = convArgs(weightShapeOrOpts, opts);
  return runConv("conv2dF32", input, inputShape, weight, shape, o, false);
}

/**
 * Depthwise Conv2d (group = C = O, weight [C, 1, kh, kw]) with the direct kernel: each channel is
 * zero-padded once into scratch, then four output columns are computed per step (strides 1 and
 * 2 vectorised, others gathered). `group` defaults to C here.
 *
 * @param input input, NCHW
 * @param inputShape [N, C, H, W]
 * @param weight weights [C, 1, kh, kw], or weights from {@link prepareConv2dF32}
 * @param weightShapeOrOpts [C, 1, kh, kw] (with a Float32Array weight), else the options
 * @param opts the options when the weight shape is given
 * @returns the output and its shape
 *
 * @example
 * ```ts
 * import { depthwiseConv2dF32 } from "@lowbit/kernels";
 * const x = new Float32Array([1, 2, 3, 4, 10, 20, 30, 40]); // 2 channels of 2×2
 * const y = depthwiseConv2dF32(x, [1, 2, 2, 2], new Float32Array([1, 1, 1, 1, 2, 2, 2, 2]), [2, 1, 2, 2], {
 *   bias: new Float32Array([0, 1]),
 * });
 * if (y.data.join() !== "10,201") throw new Error(y.data.join());
 * ```
 */
export function depthwiseConv2dF32(
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShapeOrOpts?: readonly [number, number, number, number] | Conv2dF32Options,
  opts: Conv2dF32Options = {},
): Conv2dResult {
  const [shape, o] = convArgs(weightShapeOrOpts, opts);
  return runConv(
    "depthwiseConv2dF32",
    input,
    inputShape,
    weight,
    shape,
    depthwiseOpts(o, inputShape),
    true,
  );
}

/** One call of a split conv entry point: rows [0, rows) in ranges of `align`. */
interface SplitCall {
  fn: string;
  rows: number;
  align: number;
  args: number[];
  /** Runs on the calling thread first (pads the image). */
  before?: () => void;
}

/**
 * The calls that run a conv on `threads` threads: whole images when there are at least as many
 * as threads, else one call per image split by output pixels (dense) or channels (depthwise).
 * Ranges start at multiples of `align` and hold one block each, so r0 / align numbers the
 * thread's scratch (see _conv_impl.ts).
 */
function splitCalls(s: ConvSetup, threads: number, post: ConvPostOps | undefined): SplitCall[] {
  const { i, p, xPtr, wPtr, yPtr, flags, bp, sp, lo, hi } = s;
  const [pt, pl] = p.pads;
  const ohw = p.oh * p.ow, inImg = p.c * p.h * p.w * 4, outImg = p.o * ohw * 4;
  const variant = (base: string, v: string): string => {
    const name = base + i.sfx + v;
    if (typeof i.ex[name] !== "function") {
      throw new LowbitError("INTERNAL", `missing kernel ${name}`);
    }
    return name;
  };
  // The epilogue parameter block (loadEpilogue in assembly/_float_common.ts).
  const eb = slot(i, "epiBlock", 64);
  const [bits, ...scalars] = postArgs(post);
  new Int32Array(s.kernels.memory.buffer, eb, 3).set([flags, sp, bp]);
  new Float32Array(s.kernels.memory.buffer, eb + 12, 2).set([lo, hi]);
  new Int32Array(s.kernels.memory.buffer, eb + 20, 1)[0] = bits;
  new Float32Array(s.kernels.memory.buffer, eb + 24, 7).set(scalars);
  new Uint32Array(s.kernels.memory.buffer, eb + 52, 3).set([s.w16, 0, 0]);
  const epilogue = [eb];
  const geo = [p.kh, p.kw, p.sh, p.sw, p.dh, p.dw, pt, pl, p.oh, p.ow];
  const calls: SplitCall[] = [];
  if (p.n >= threads && (threads > 1 || p.n > 1)) {
    // Whole images per thread (one call for a batch on one thread).
    quantizeConvInput(s);
    const align = Math.ceil(p.n / threads);
    if (s.depthwise) {
      const fn = variant("dwconv2d_f32_minmax_4x1", "_images");
      const stride = Math.ceil(
        i.ex.dwconv_scratch_bytes(p.oh, p.ow, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw) / 16,
      ) * 16;
      const scratch = slot(i, "conv", stride * threads);
      const args = [p.c, p.h, p.w, ...geo, xPtr, wPtr, yPtr, scratch, stride, align];
      return [{ fn, rows: p.n, align, args: [...args, ...epilogue] }];
    }
    const fn = variant("conv2d_f32_minmax_im2col_4x8", "_images");
    const stride = Math.ceil(
          i.ex.conv2d_pixels_scratch_bytes(p.cg, p.kh, p.kw, p.oh, p.ow) / 16,
        ) * 16 + Math.ceil(i.ex.conv2d_pad_bytes(p.c, p.h, p.w, ...geo) / 16) * 16;
    const scratch = slot(i, "conv", stride * threads);
    const args = [p.c, p.h, p.w, p.o, p.group, ...geo, xPtr, wPtr, yPtr, scratch, stride, align];
    return [{ fn, rows: p.n, align, args: [...args, ...epilogue] }];
  }
  if (s.depthwise) {
    quantizeConvInput(s);
    const fn = variant("dwconv2d_f32_minmax_4x1", "_channels");
    const stride = Math.ceil(
      i.ex.dwconv_scratch_bytes(p.oh, p.ow, p.kh, p.kw, p.sh, p.sw, p.dh, p.dw) / 16,
    ) * 16;
    const align = Math.ceil(p.c / threads);
    const scratch = slot(i, "conv", stride * threads);
    for (let n = 0; n < p.n; n++) {
      const args = [p.h, p.w, ...geo, xPtr + n * inImg, wPtr, yPtr + n * outImg, scratch];
      calls.push({ fn, rows: p.c, align, args: [...args, stride, align, ...epilogue] });
    }
    return calls;
  }
  const fn = variant("conv2d_f32_minmax_im2col_4x8", "_pixels");
  // One thread pads the image first (whole rows copied, no bounds checks in im2col); split over
  // threads, im2col checks bounds instead, so that no serial pass precedes the split.
  const padBytes = threads > 1 ? 0 : i.ex.conv2d_pad_bytes(p.c, p.h, p.w, ...geo);
  const stride = Math.ceil(
    i.ex.conv2d_pixels_scratch_bytes(p.cg, p.kh, p.kw, p.oh, p.ow) / 16,
  ) * 16;
  const align = Math.ceil(ohw / threads / 8) * 8;
  // The integer route: each image is checked and converted once into a padded i16 copy (a pass
  // over the input, before the split), from which every thread gathers its pair panels; an
  // image that is not all integers in i16 range runs on the f32 route instead, from the plain
  // image (im2col checks bounds: the same panels). No f32 padded copy is made then, nor kept
  // room for: the i16 copy alone, half its size, in the conv scratch block (PP-OCRv4 det w8a8 at
  // 640×640: that block 10.4 → 6.2 MB, now fitting a hole the prepared weights left, no separate
  // i16 block; kernel memory 61.0 → 45.8 MB, the float plan's 48.1).
  // A pointwise conv (1×1, stride 1, no padding) makes no i16 copy: its im2col chunks are
  // plain row copies, converted chunk by chunk (panelsToI16) in the thread's scratch, which
  // measured faster than gathering from the copy (CPU time, medians of 21 interleaved rounds,
  // 2026-12-07: 96→96 at 28×44 0.94, 48→48 at 56×88 0.96, 192→192 at 14×22 0.94, 384→384 at
  // 7×11 0.93, 96→24 at 160×160 0.98 the time; 3×3 96→24 at 56×88 1.54, so those keep it) and
  // saves the copy's memory (two threads: PP-OCRv4 det at 640×640 up to 4.9 MB).
  const pointwise = p.kh === 1 && p.kw === 1 && p.sh === 1 && p.sw === 1 &&
    p.pads.every((v) => v === 0);
  const x16Bytes = s.w16 !== 0 && !pointwise ? i.ex.conv2d_pad_i16_bytes(p.c, p.h, p.w, ...geo) : 0;
  // With the pair copy of the weights (prepareConv2dF32), the i16 copy is made in channel pairs:
  // every panel row of 8 pixels in one output row is then 32 contiguous bytes of it (the integer
  // sums are exact, so summing K in (ky, kx, c) order gives the same bits), copied instead of
  // gathered tap by tap and interleaved. Measured (one thread, CPU time, medians of 21
  // interleaved rounds, 2026-12-07), the time of the tap-order gather's conv, 3×3 96→24 with
  // the integer plan's epilogue: 0.86 at 56×88, 0.83 at 28×44, 0.80 at 14×22, 0.84 at 160×160.
  const pairs = x16Bytes > 0 && hasPairCopy([p.o, p.cg, p.kh, p.kw]);
  const w16Pairs = pairs ? s.w16 + p.o * p.cg * p.kh * p.kw * 2 : 0;
  const padF32 = x16Bytes === 0 && padBytes > 0;
  // A float input to quantize (inputQuantize) is quantized while the i16 copy is made, image by
  // image, without a pass of its own (the same codes: the i16 image holds quantize_f32_centred's
  // values); an image that then fails the i16 check is quantized in place for the f32 route.
  const iq = x16Bytes > 0 ? s.iq : undefined;
  if (iq === undefined) quantizeConvInput(s);
  const q = iq === undefined ? [0, 0, 0] : [iq.scale, iq.lo, iq.hi];
  const scratch = slot(i, "conv", stride * threads + (x16Bytes > 0 ? x16Bytes : padBytes));
  const padded = scratch + stride * threads;
  for (let n = 0; n < p.n; n++) {
    const x = xPtr + n * inImg;
    const args = [p.c, p.h, p.w, p.o, p.group, ...geo, padF32 ? padded : x, wPtr];
    args.push(yPtr + n * outImg, scratch, stride, align, padF32 ? 1 : 0, ...epilogue);
    const before = x16Bytes > 0
      ? () => {
        const pad = pairs ? i.ex.conv2d_pad_i16_pairs : i.ex.conv2d_pad_i16;
        const ok = pad(p.c, p.h, p.w, ...geo, x, padded, ...q) === 1;
        if (!ok && iq !== undefined) {
          kernel(i, "quantize_f32_centred")(x, inImg / 4, x, iq.scale, iq.lo, iq.hi);
        }
        // words 13–15: weights, image, pair layout (the plain weights when the image failed)
        new Uint32Array(s.kernels.memory.buffer, eb + 52, 3).set(
          ok && pairs ? [w16Pairs, padded, 1] : [s.w16, ok ? padded : 0, 0],
        );
      }
      : padF32
      ? () => void i.ex.conv2d_pad_f32(p.c, p.h, p.w, ...geo, x, padded)
      : undefined;
    calls.push({ fn, rows: ohw, align, args, before });
  }
  return calls;
}

/**
 * Below this many multiply-adds a conv runs on the calling thread: about 30 µs of work, a few
 * times the pool's round trip.
 */
const PARALLEL_CONV_MIN = 1 << 18;

/** Runs a conv over the context's threads (see {@link splitCalls}). */
async function runConvParallel(
  what: string,
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShape: readonly [number, number, number, number] | undefined,
  opts: Conv2dF32Options,
  depthwiseOnly: boolean,
): Promise<Conv2dResult> {
  const s = setupConv(what, input, inputShape, weight, weightShape, opts, depthwiseOnly);
  const { i, p } = s;
  const work = p.n * p.o * p.cg * p.kh * p.kw * p.oh * p.ow;
  const threads = i.runner && work >= PARALLEL_CONV_MIN ? i.runner.threads : 1;
  for (const c of splitCalls(s, threads, opts.post)) {
    c.before?.();
    if (threads < 2) i.ex[c.fn](0, c.rows, ...c.args);
    else await i.runner!.run(i.module, c.fn, c.rows, c.args, c.align);
  }
  return convResult(s, opts);
}

/**
 * {@link conv2dF32} split over the context's threads (see {@link createFloatKernelsOn}): dense
 * convs by output pixels, depthwise convs by channels, every output computed exactly as
 * {@link conv2dF32} computes it, so the result has the same bits whatever the thread count.
 * Small convs run on the calling thread.
 *
 * @param input input, NCHW
 * @param inputShape [N, C, H, W]
 * @param weight OIHW weights, or weights from {@link prepareConv2dF32}
 * @param weightShapeOrOpts [O, C/group, kh, kw] (with a Float32Array weight), else the options
 * @param opts the options when the weight shape is given
 * @returns the output and its shape
 *
 * @example
 * ```ts
 * import { conv2dF32Parallel } from "@lowbit/kernels";
 * const y = await conv2dF32Parallel(new Float32Array(4).fill(1), [1, 1, 2, 2], new Float32Array(9).fill(1), [1, 1, 3, 3], {
 *   pads: [1, 1, 1, 1],
 * });
 * if (y.data.join() !== "4,4,4,4") throw new Error();
 * ```
 */
export function conv2dF32Parallel(
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShapeOrOpts?: readonly [number, number, number, number] | Conv2dF32Options,
  opts: Conv2dF32Options = {},
): Promise<Conv2dResult> {
  const [shape, o] = convArgs(weightShapeOrOpts, opts);
  return runConvParallel("conv2dF32Parallel", input, inputShape, weight, shape, o, false);
}

/**
 * {@link depthwiseConv2dF32} split over the context's threads by channels; the same bits as one
 * thread.
 *
 * @param input input, NCHW
 * @param inputShape [N, C, H, W]
 * @param weight weights [C, 1, kh, kw], or weights from {@link prepareConv2dF32}
 * @param weightShapeOrOpts [C, 1, kh, kw] (with a Float32Array weight), else the options
 * @param opts the options when the weight shape is given
 * @returns the output and its shape
 *
 * @example
 * ```ts
 * import { depthwiseConv2dF32Parallel } from "@lowbit/kernels";
 * const x = new Float32Array([1, 2, 3, 4, 10, 20, 30, 40]); // 2 channels of 2×2
 * const y = await depthwiseConv2dF32Parallel(x, [1, 2, 2, 2], new Float32Array([1, 1, 1, 1, 2, 2, 2, 2]), [2, 1, 2, 2]);
 * if (y.data.join() !== "10,200") throw new Error(y.data.join());
 * ```
 */
export function depthwiseConv2dF32Parallel(
  input: Float32Array,
  inputShape: readonly [number, number, number, number],
  weight: Float32Array | PreparedConv2dF32,
  weightShapeOrOpts?: readonly [number, number, number, number] | Conv2dF32Options,
  opts: Conv2dF32Options = {},
): Promise<Conv2dResult> {
  const [shape, o] = convArgs(weightShapeOrOpts, opts);
  return runConvParallel(
    "depthwiseConv2dF32Parallel",
    input,
    inputShape,
    weight,
    shape,
    depthwiseOpts(o, inputShape),
    true,
  );
}
