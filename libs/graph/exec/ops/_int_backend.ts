// The integer GEMM the fused quantized ops call: gemmS8 of @lowbit/kernels
// (int8 weights packed once per weight array and kept in the kernels' memory
// until the array is collected), or the TypeScript reference when `reference`
// is set, the kernels cannot load, or the operands do not fit them (uint8 or
// per-channel zero-point weights).

import {
  gemmS8,
  gemmS8Scaled,
  type IntKernels,
  loadIntKernels,
  type PackedS8,
  packS8,
} from "@lowbit/kernels";

let loading: Promise<IntKernels | null> | undefined;

function kernels(): Promise<IntKernels | null> {
  loading ??= loadIntKernels({ simd: "plain" }).catch(() => null);
  return loading;
}

const registry = new FinalizationRegistry<PackedS8>((p) => p.free());
const packed = new WeakMap<Int8Array, PackedS8>();

/** Integer GEMM operands: C[m×n] = Σ_k (A[m,k] − za)(W[n,k] − zb). */
export interface IgemmArgs {
  /** Activation codes, m×k row-major. */
  a: Int8Array | Uint8Array;
  /** Activation zero point. */
  za: number;
  /** Weight codes, n×k row-major (one row per output channel). */
  w: Int8Array | Uint8Array;
  /** Per-row weight zero points (length 1 or n). */
  zb: Float32Array | undefined;
  m: number;
  n: number;
  k: number;
  /** Use the TypeScript reference. */
  reference: boolean;
  /** `w` is constant across runs (may be packed once). */
  constant: boolean;
}

function reference(x: IgemmArgs): Int32Array {
  const { a, za, w, zb, m, n, k } = x;
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ao = i * k;
    for (let j = 0; j < n; j++) {
      const wo = j * k, z = zb ? zb[zb.length === 1 ? 0 : j] : 0;
      let s = 0;
      for (let p = 0; p < k; p++) s += (a[ao + p] - za) * (w[wo + p] - z);
      c[i * n + j] = s;
    }
  }
  return c;
}

/**
 * C = (A − za)(W − zb)ᵀ in int32, exact.
 *
 * @param x operands
 * @returns C, m×n row-major
 */
export async function igemm(x: IgemmArgs): Promise<Int32Array> {
  const k = await kernelsFor(x);
  if (k === null) return reference(x);
  return await withPacked(k, x, (p) =>
    gemmS8(k, x.a, x.m, p, {
      aType: x.a instanceof Uint8Array ? "u8" : "s8",
      aZeroPoint: x.za,
      bZeroPoint: x.zb ? x.zb[0] : 0,
    }));
}

/**
 * C = (A − za)(W − zb)ᵀ with the float epilogue fused into the kernel's tile store:
 * y = clamp(f32(f32(C · scale[j]) + bias[j]), lo, hi) — the same bits as scaling the int32 C
 * with `Math.fround(c * s) + b` and clamping. `null` when the kernels do not take these
 * operands (the caller runs {@link igemm} and its own epilogue).
 *
 * @param x operands
 * @param scale f32 scale per output column
 * @param bias f32 bias per output column
 * @param clamp [lo, hi] or undefined
 * @returns y, m×n row-major, or null
 */
export async function igemmScaled(
  x: IgemmArgs,
  scale: Float32Array,
  bias: Float32Array | undefined,
  clamp: readonly [number, number] | undefined,
): Promise<Float32Array | null> {
  const k = await kernelsFor(x);
  if (k === null) return null;
  return await withPacked(k, x, (p) =>
    gemmS8Scaled(k, x.a, x.m, p, { scale, bias, clamp }, {
      aType: x.a instanceof Uint8Array ? "u8" : "s8",
      aZeroPoint: x.za,
      bZeroPoint: x.zb ? x.zb[0] : 0,
    }));
}

/** The kernels when they take these operands (int8 weights, one weight zero point), else null. */
async function kernelsFor(x: IgemmArgs): Promise<IntKernels | null> {
  const uniformZb = !x.zb || x.zb.every((z) => z === x.zb![0]);
  return x.reference || !(x.w instanceof Int8Array) || !uniformZb ? null : await kernels();
}

/** Runs `f` on the packed weights (packed once for constants, else for this call). */
async function withPacked<T>(
  k: IntKernels,
  x: IgemmArgs,
  f: (p: PackedS8) => Promise<T>,
): Promise<T> {
  const w = x.w as Int8Array;
  let p = x.constant ? packed.get(w) : undefined;
  const temporary = p === undefined && !x.constant;
  if (p === undefined) {
    p = packS8(k, w, x.k, x.n, { layout: "nk" });
    if (x.constant) {
      packed.set(w, p);
      registry.register(w, p);
    }
  }
  try {
    return await f(p);
  } finally {
    if (temporary) p.free();
  }
}
