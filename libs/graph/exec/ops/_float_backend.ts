// The float32 compute the executor's Conv / Gemm / MatMul call: the WASM SIMD
// kernels of @lowbit/kernels (constant weights prepared once per kernel context
// and kept in its memory until the weight array is collected), or the plain
// TypeScript reference when `reference` is set or the kernels cannot load.
// `convF32` / `matmulF32` run on the calling thread; their `*Threaded` twins split
// the work over a worker pool's context (`opts.kernels`) with the same bits.

import {
  type Activation,
  conv2dF32,
  conv2dF32Parallel,
  type ConvPostOps,
  createFloatKernels,
  depthwiseConv2dF32,
  depthwiseConv2dF32Parallel,
  type FloatKernels,
  gemmF32,
  gemmF32Parallel,
  type PackedF32B,
  packF32B,
  prepareConv2dF32,
  type PreparedConv2dF32,
} from "@lowbit/kernels";
import { sgemmRef } from "./_gemm_ref.ts";
import { applyPost } from "./_post.ts";
import type { Window2d } from "./_conv_geom.ts";

let kernels: FloatKernels | null | undefined;

/**
 * The kernel context, or null when WASM SIMD is unavailable. NOTE plain SIMD, not
 * relaxed: its multiply-then-add rounds like onnxruntime-web's MLAS kernels, so
 * fake-quantized graphs hit the same rounding boundaries (the fused relaxed_madd
 * flips codes that then snowball through deep QDQ models), and results are the
 * same on every engine. The speed difference measured here is within noise.
 */
function ctx(): FloatKernels | null {
  if (kernels === undefined) {
    try {
      kernels = createFloatKernels({ isa: "wasmsimd" });
    } catch {
      kernels = null;
    }
  }
  return kernels;
}

/**
 * The calling-thread kernel context of the float ops (null when WASM SIMD is unavailable), for
 * the integer plan's fused ops to share: one context, one memory and one set of scratch blocks
 * per process instead of two (a second context's scratch cost 33 MB of peak memory on PP-OCRv4
 * det at 640×640).
 *
 * @returns the context, or null
 *
 * @example
 * ```ts
 * import { backendKernels } from "./_float_backend.ts";
 * const k = backendKernels();
 * if (k !== null && k !== backendKernels()) throw new Error("one context per process");
 * ```
 */
export function backendKernels(): FloatKernels | null {
  return ctx();
}

interface Disposable {
  dispose(): void;
}
const registry = new FinalizationRegistry<Disposable>((d) => d.dispose());
// Prepared / packed constant weights, per kernel context (each has its own memory).
const preparedConv = new WeakMap<FloatKernels, WeakMap<Float32Array, PreparedConv2dF32>>();
const packedB = new WeakMap<
  FloatKernels,
  WeakMap<Float32Array, { kn?: PackedF32B; nk?: PackedF32B }>
>();

function cacheOf<V>(
  m: WeakMap<FloatKernels, WeakMap<Float32Array, V>>,
  k: FloatKernels,
): WeakMap<Float32Array, V> {
  let c = m.get(k);
  if (c === undefined) m.set(k, c = new WeakMap());
  return c;
}

function convWeights(
  w: Float32Array,
  shape: [number, number, number, number],
  constant: boolean,
  k: FloatKernels,
): PreparedConv2dF32 | Float32Array {
  if (!constant) return w;
  const cache = cacheOf(preparedConv, k);
  let p = cache.get(w);
  if (p === undefined) {
    p = prepareConv2dF32(w, shape, k);
    cache.set(w, p);
    registry.register(w, p);
  }
  return p;
}

/** Clamp bounds → kernel activation. */
function activation(lo: number, hi: number): Activation {
  if (lo === -Infinity && hi === Infinity) return "none";
  if (lo === 0 && hi === Infinity) return "relu";
  return { min: lo, max: hi };
}

/** Options of a float conv / gemm call. */
export interface FloatCallOptions {
  /** Use the TypeScript reference instead of the kernels. */
  reference: boolean;
  /** The weight is constant across runs (may be prepared once and cached). */
  constant: boolean;
  /** Fused clamp of the output (default: none). */
  clamp?: [number, number];
  /**
   * Per-column scale of a matmul's sums, before the bias: y = f32(f32(acc·scale[j]) + bias[j])
   * (matmuls only; default: none).
   */
  scale?: Float32Array;
  /** Fused elementwise ops after the clamp (convs only; default: none). */
  post?: ConvPostOps;
  /** Output storage of `n` elements (every element is written; default: a new array). */
  alloc?: (n: number) => Float32Array;
  /**
   * Kernel context to run on (default: a calling-thread context with plain SIMD). The
   * `*Threaded` functions split work over its threads when it was made on a pool.
   */
  kernels?: FloatKernels;
  /**
   * The matmul's B already packed (layout as given) in the context the call runs on: `b` is then
   * not read (matmuls with the kernels only: the caller keeps no float copy of a packed constant).
   */
  packed?: PackedF32B;
}

/** Reference 2-D convolution (defined in conv.ts, injected to avoid an import cycle). */
export type ConvRef = (
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
) => Float32Array;

interface ConvCall {
  x: Float32Array;
  xShape: [number, number, number, number];
  weight: PreparedConv2dF32 | Float32Array;
  wShape: [number, number, number, number];
  depthwise: boolean;
  common: {
    strides: [number, number];
    dilations: [number, number];
    pads: [number, number, number, number];
    group: number;
    bias: Float32Array | undefined;
    activation: Activation;
    post: ConvPostOps | undefined;
    kernels: FloatKernels;
    out: Float32Array | undefined;
  };
}

function convCall(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
  opts: FloatCallOptions,
  k: FloatKernels,
): ConvCall {
  const [lo, hi] = opts.clamp ?? [-Infinity, Infinity];
  const cg = cin / group;
  const wShape: [number, number, number, number] = [cout, cg, g.kh, g.kw];
  return {
    x,
    xShape: [n, cin, g.h, g.w],
    weight: convWeights(w, wShape, opts.constant, k),
    wShape,
    depthwise: group === cin && cout === cin && cg === 1,
    common: {
      strides: [g.sh, g.sw],
      dilations: [g.dh, g.dw],
      pads: [g.pt, g.pl, g.pb, g.pr],
      group,
      bias,
      activation: activation(lo, hi),
      post: opts.post,
      kernels: k,
      out: opts.alloc?.(n * cout * g.oh * g.ow),
    },
  };
}

function convRef(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
  opts: FloatCallOptions,
  ref: ConvRef,
): Float32Array {
  const [lo, hi] = opts.clamp ?? [-Infinity, Infinity];
  const y = ref(x, w, bias, n, cin, cout, group, g);
  if (opts.clamp) { for (let i = 0; i < y.length; i++) y[i] = Math.min(hi, Math.max(lo, y[i])); }
  if (opts.post) applyPost(y, opts.post);
  return y;
}

/** NCHW convolution on the kernels when possible (calling thread). */
export function convF32(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
  opts: FloatCallOptions,
  ref: ConvRef,
): Float32Array {
  const k = opts.reference ? null : opts.kernels ?? ctx();
  if (k === null) return convRef(x, w, bias, n, cin, cout, group, g, opts, ref);
  const c = convCall(x, w, bias, n, cin, cout, group, g, opts, k);
  const r = c.weight instanceof Float32Array
    ? (c.depthwise ? depthwiseConv2dF32 : conv2dF32)(c.x, c.xShape, c.weight, c.wShape, c.common)
    : (c.depthwise ? depthwiseConv2dF32 : conv2dF32)(c.x, c.xShape, c.weight, c.common);
  return r.data;
}

/** {@link convF32} split over the threads of `opts.kernels` (same bits as one thread). */
export async function convF32Threaded(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
  opts: FloatCallOptions,
  ref: ConvRef,
): Promise<Float32Array> {
  const k = opts.kernels;
  if (opts.reference || k === undefined || k.threads < 2) {
    return convF32(x, w, bias, n, cin, cout, group, g, opts, ref);
  }
  const c = convCall(x, w, bias, n, cin, cout, group, g, opts, k);
  const f = c.depthwise ? depthwiseConv2dF32Parallel : conv2dF32Parallel;
  const r = c.weight instanceof Float32Array
    ? await f(c.x, c.xShape, c.weight, c.wShape, c.common)
    : await f(c.x, c.xShape, c.weight, c.common);
  return r.data;
}

/**
 * C[m×n] = A[m×k] · B (+ bias per column), B row-major k×n ("kn") or n×k ("nk"), on the
 * calling thread.
 */
export function matmulF32(
  a: Float32Array,
  m: number,
  b: Float32Array,
  bOff: number,
  k: number,
  n: number,
  layout: "kn" | "nk",
  bias: Float32Array | undefined,
  opts: FloatCallOptions,
): Float32Array {
  const r = matmulOn(a, m, b, bOff, k, n, layout, bias, opts, false);
  return r as Float32Array;
}

/** {@link matmulF32} split over the threads of `opts.kernels` (same bits as one thread). */
export function matmulF32Threaded(
  a: Float32Array,
  m: number,
  b: Float32Array,
  bOff: number,
  k: number,
  n: number,
  layout: "kn" | "nk",
  bias: Float32Array | undefined,
  opts: FloatCallOptions,
): Promise<Float32Array> {
  return Promise.resolve(matmulOn(a, m, b, bOff, k, n, layout, bias, opts, true));
}

function matmulOn(
  a: Float32Array,
  m: number,
  b: Float32Array,
  bOff: number,
  k: number,
  n: number,
  layout: "kn" | "nk",
  bias: Float32Array | undefined,
  opts: FloatCallOptions,
  threaded: boolean,
): Float32Array | Promise<Float32Array> {
  const kc = opts.reference || m * n * k < 4096 ? null : opts.kernels ?? ctx();
  if (kc === null) {
    let bb = b.subarray(bOff, bOff + k * n);
    if (layout === "nk") {
      const t = new Float32Array(k * n);
      for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) t[p * n + j] = bb[j * k + p];
      bb = t;
    }
    const c = new Float32Array(m * n);
    sgemmRef(m, n, k, a, 0, k, bb, 0, n, c, 0, n, false);
    const sc = opts.scale;
    if (sc) { for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c[i * n + j] *= sc[j]; }
    if (bias) { for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c[i * n + j] += bias[j]; }
    if (opts.clamp) {
      const [lo, hi] = opts.clamp;
      for (let i = 0; i < c.length; i++) c[i] = Math.min(hi, Math.max(lo, c[i]));
    }
    return c;
  }
  const whole = bOff === 0 && b.length === k * n;
  let packed: PackedF32B | undefined;
  let temporary = false;
  if (opts.packed !== undefined) {
    packed = opts.packed;
  } else if (opts.constant && whole) {
    const cache = cacheOf(packedB, kc);
    let e = cache.get(b);
    if (e === undefined) {
      e = {};
      cache.set(b, e);
    }
    packed = e[layout];
    if (packed === undefined) {
      packed = packF32B(b, k, n, { layout, kernels: kc });
      e[layout] = packed;
      registry.register(b, packed);
    }
  } else {
    packed = packF32B(whole ? b : b.slice(bOff, bOff + k * n), k, n, { layout, kernels: kc });
    temporary = true;
  }
  const [lo, hi] = opts.clamp ?? [-Infinity, Infinity];
  const aa = a.length === m * k ? a : a.subarray(0, m * k);
  const epi = { scale: opts.scale, bias, activation: activation(lo, hi), out: opts.alloc?.(m * n) };
  if (threaded && kc.threads > 1) {
    const p = packed;
    const r = gemmF32Parallel(aa, m, p, epi);
    return temporary ? r.finally(() => p.dispose()) : r;
  }
  try {
    return gemmF32(aa, m, packed, epi);
  } finally {
    if (temporary) packed.dispose();
  }
}
