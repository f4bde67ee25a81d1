// The float32 compute the executor's Conv / Gemm / MatMul call: the WASM SIMD
// kernels of @lowbit/kernels (constant weights prepared once and kept in the
// kernels' memory until the weight array is collected), or the plain
// TypeScript reference when `reference` is set or the kernels cannot load.

import {
  type Activation,
  conv2dF32,
  createFloatKernels,
  depthwiseConv2dF32,
  type FloatKernels,
  gemmF32,
  type PackedF32B,
  packF32B,
  prepareConv2dF32,
  type PreparedConv2dF32,
} from "@lowbit/kernels";
import { sgemmRef } from "./_gemm_ref.ts";
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

interface Disposable {
  dispose(): void;
}
const registry = new FinalizationRegistry<Disposable>((d) => d.dispose());
const preparedConv = new WeakMap<Float32Array, PreparedConv2dF32>();
const packedB = new WeakMap<Float32Array, { kn?: PackedF32B; nk?: PackedF32B }>();

function convWeights(
  w: Float32Array,
  shape: [number, number, number, number],
  constant: boolean,
  k: FloatKernels,
): PreparedConv2dF32 | Float32Array {
  if (!constant) return w;
  let p = preparedConv.get(w);
  if (p === undefined) {
    p = prepareConv2dF32(w, shape, k);
    preparedConv.set(w, p);
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

/** NCHW convolution on the kernels when possible. */
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
  const k = opts.reference ? null : ctx();
  const [lo, hi] = opts.clamp ?? [-Infinity, Infinity];
  if (k === null) {
    const y = ref(x, w, bias, n, cin, cout, group, g);
    if (opts.clamp) { for (let i = 0; i < y.length; i++) y[i] = Math.min(hi, Math.max(lo, y[i])); }
    return y;
  }
  const cg = cin / group;
  const wShape: [number, number, number, number] = [cout, cg, g.kh, g.kw];
  const weight = convWeights(w, wShape, opts.constant, k);
  const common = {
    strides: [g.sh, g.sw] as [number, number],
    dilations: [g.dh, g.dw] as [number, number],
    pads: [g.pt, g.pl, g.pb, g.pr] as [number, number, number, number],
    group,
    bias,
    activation: activation(lo, hi),
    kernels: k,
  };
  const xShape: [number, number, number, number] = [n, cin, g.h, g.w];
  const depthwise = group === cin && cout === cin && cg === 1;
  const r = weight instanceof Float32Array
    ? (depthwise ? depthwiseConv2dF32 : conv2dF32)(x, xShape, weight, wShape, common)
    : (depthwise ? depthwiseConv2dF32 : conv2dF32)(x, xShape, weight, common);
  return r.data;
}

/**
 * C[m×n] = A[m×k] · B (+ bias per column), B row-major k×n ("kn") or n×k ("nk").
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
  const kc = opts.reference || m * n * k < 4096 ? null : ctx();
  if (kc === null) {
    let bb = b.subarray(bOff, bOff + k * n);
    if (layout === "nk") {
      const t = new Float32Array(k * n);
      for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) t[p * n + j] = bb[j * k + p];
      bb = t;
    }
    const c = new Float32Array(m * n);
    sgemmRef(m, n, k, a, 0, k, bb, 0, n, c, 0, n, false);
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
  if (opts.constant && whole) {
    let e = packedB.get(b);
    if (e === undefined) {
      e = {};
      packedB.set(b, e);
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
  try {
    const [lo, hi] = opts.clamp ?? [-Infinity, Infinity];
    return gemmF32(a.length === m * k ? a : a.subarray(0, m * k), m, packed, {
      bias,
      activation: activation(lo, hi),
    });
  } finally {
    if (temporary) packed.dispose();
  }
}
