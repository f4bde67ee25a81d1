// Integer arithmetic shared by onnxruntime's quantized ops (ort_quant.ts, ms_quant.ts): codes
// minus zero points, exact integer matmul / conv (sums of products in doubles, exact far past
// int32), onnxruntime's requantization (float32 product, ties to even, saturate) and dynamic
// uint8 quantization.

import { LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData } from "../../ir.ts";
import { alloc, size, toNumbers } from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import type { Window2d } from "./_conv_geom.ts";
import { igemm } from "./_int_backend.ts";
import { roundHalfEven } from "./elementwise.ts";
import { INT_RANGES } from "./qlinear.ts";
import type { OpContext } from "./types.ts";

/** A required input, or a clear error naming it. */
export function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: input ${what} is required`, {
      node: node.name,
    });
  }
  return t;
}

/** Throws unless `t` holds 8-bit integer codes. */
export function codes(node: Node, t: TensorData, what: string): Int8Array | Uint8Array {
  if (t.dtype !== "int8" && t.dtype !== "uint8") {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: ${what} must be int8 or uint8, got ${t.dtype}`,
      { node: node.name },
    );
  }
  return t.data as Int8Array | Uint8Array;
}

/** A scalar (one-element) input as a number; `def` when omitted. */
export function scalar(node: Node, t: TensorData | undefined, what: string, def?: number): number {
  if (t === undefined) {
    if (def !== undefined) return def;
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is required`, {
      node: node.name,
    });
  }
  if (size(t.shape) !== 1) {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: ${what} must be a scalar here, got shape [${t.shape}]`,
      { node: node.name },
    );
  }
  return toNumbers(t)[0];
}

/** Per-entry values of a scale / zero point of 1 or `n` elements (broadcast to `n`). */
export function perChannel(
  node: Node,
  t: TensorData | undefined,
  n: number,
  what: string,
  def: number,
): number[] {
  if (t === undefined) return new Array<number>(n).fill(def);
  const v = toNumbers(t);
  if (v.length === 1) return new Array<number>(n).fill(v[0]);
  if (v.length !== n) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: ${what} has ${v.length} elements, expected 1 or ${n}`,
      { node: node.name },
    );
  }
  return v;
}

/** `x − zp` as Int16 (8-bit codes minus an 8-bit zero point fit). */
export function centered(x: Int8Array | Uint8Array, zp: number): Int16Array {
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - zp;
  return out;
}

/**
 * Batched integer matmul with MatMul's broadcasting: `a` [..., M, K] (or [K]), `b` [..., K, N]
 * with column zero points `bzp` (one per N). Exact sums.
 */
export function intMatMul(
  node: Node,
  a: Int16Array,
  aShape: readonly number[],
  b: Int8Array | Uint8Array,
  bShape: readonly number[],
  bzp: readonly number[],
): { shape: number[]; data: Float64Array; m: number; n: number } {
  const aS = aShape.length === 1 ? [1, aShape[0]] : aShape;
  const bS = bShape.length === 1 ? [bShape[0], 1] : bShape;
  const m = aS[aS.length - 2], k = aS[aS.length - 1];
  const k2 = bS[bS.length - 2], n = bS[bS.length - 1];
  if (k !== k2) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: inner dimensions differ ([${aShape}] × [${bShape}])`,
      { node: node.name },
    );
  }
  const aBatch = aS.slice(0, -2), bBatch = bS.slice(0, -2);
  const batch = broadcastShapes([aBatch, bBatch], node);
  const plan = planBroadcast([aBatch, bBatch], batch);
  const out = new Float64Array(size(batch) * m * n);
  const row = new Float64Array(n);
  let r = 0;
  for (let o = 0; o < plan.outer; o++) {
    for (let i = 0; i < plan.inner; i++, r++) {
      const ai = (plan.offsets[0][o] + i * plan.steps[0]) * m * k;
      const bi = (plan.offsets[1][o] + i * plan.steps[1]) * k * n;
      for (let mi = 0; mi < m; mi++) {
        row.fill(0);
        for (let kk = 0; kk < k; kk++) {
          const av = a[ai + mi * k + kk];
          if (av === 0) continue;
          const bo = bi + kk * n;
          for (let j = 0; j < n; j++) row[j] += av * (b[bo + j] - bzp[j]);
        }
        out.set(row, (r * m + mi) * n);
      }
    }
  }
  const shape = [...batch];
  if (aShape.length !== 1) shape.push(m);
  if (bShape.length !== 1) shape.push(n);
  return { shape, data: out, m, n };
}

/** uint8 weight codes moved to int8 (code − 128), for constant weights kept by storage. */
const s8Cache = new WeakMap<object, Int8Array>();

/**
 * Weight codes as int8 and the shift applied: uint8 codes become code − 128 (the zero point
 * moves by the same 128, so (w − zb) is unchanged and the int8 kernels take them).
 */
function asS8(t: TensorData, constant: boolean): { w: Int8Array; shift: number } {
  if (t.dtype === "int8") return { w: t.data as Int8Array, shift: 0 };
  let w = constant ? s8Cache.get(t.data) : undefined;
  if (w === undefined) {
    const u = t.data as Uint8Array;
    w = new Int8Array(u.length);
    for (let i = 0; i < u.length; i++) w[i] = u[i] - 128;
    if (constant) s8Cache.set(t.data, w);
  }
  return { w, shift: 128 };
}

/** [K, N] int8 codes transposed to [N, K], for constant weights kept by storage. */
const nkCache = new WeakMap<object, Int8Array>();

/**
 * (A − a_zp)·(B − b_zp) exactly, B 2-D as [K, N] (or [N, K] with `bIsNK`), A [..., K] (its batch
 * folds into the rows). Weights with one zero point run on the int8 GEMM kernels (uint8 ones
 * shifted to int8; packed once for constant weights); other operands on {@link intMatMul}.
 */
export async function matmulCodes(
  node: Node,
  ctx: OpContext,
  a: TensorData,
  azp: number,
  b: TensorData,
  bzp: readonly number[],
  bIsNK = false,
): Promise<{ shape: number[]; data: Int32Array | Float64Array; m: number; n: number }> {
  const ac = codes(node, a, "A");
  const bc = codes(node, b, "B");
  if (!ctx.reference && b.shape.length === 2 && bzp.every((z) => z === bzp[0])) {
    const [K, N] = bIsNK ? [b.shape[1], b.shape[0]] : b.shape;
    if (a.shape[a.shape.length - 1] !== K) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${node.op}: inner dimensions differ ([${a.shape}] × ${bIsNK ? "ᵀ" : ""}[${b.shape}])`,
        { node: node.name },
      );
    }
    const constant = ctx.isConstant?.(b) ?? false;
    const { w: s8, shift } = asS8(b, constant);
    let w = bIsNK ? s8 : constant ? nkCache.get(s8) : undefined;
    if (w === undefined) {
      w = new Int8Array(K * N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) w[n * K + k] = s8[k * N + n];
      if (constant) nkCache.set(s8, w);
    }
    const m = ac.length / K;
    const data = await igemm({
      a: ac,
      za: azp,
      w,
      zb: Float32Array.of(bzp[0] - shift),
      m,
      n: N,
      k: K,
      reference: false,
      constant,
    });
    const shape = a.shape.length === 1 ? [N] : [...a.shape.slice(0, -1), N];
    return { shape, data, m, n: N };
  }
  let bKN = b;
  if (bIsNK) {
    const [r, c] = b.shape;
    const t = alloc(b.dtype, bc.length) as Uint8Array;
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = bc[i * c + j];
    bKN = { dtype: b.dtype, shape: [c, r], data: t };
  }
  return intMatMul(node, centered(ac, azp), a.shape, bKN.data as Int8Array, bKN.shape, bzp);
}

/** Per-group weight rows of constant int8 weights, the same subarray objects on every call. */
const groupCache = new WeakMap<object, Int8Array[]>();

/**
 * (x − x_zp) ⊛ (w − w_zp) exactly for 8-bit codes (padding is the zero point): weights with one
 * zero point run on the int8 GEMM kernels (uint8 ones shifted to int8), one GEMM per image and
 * group over the patch rows; other operands on {@link intConv}.
 */
export async function convCodes(
  node: Node,
  ctx: OpContext,
  x: TensorData,
  xzp: number,
  w: TensorData,
  wz: readonly number[],
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
): Promise<Int32Array | Float64Array> {
  const xc = codes(node, x, "x"), wc = codes(node, w, "w");
  const depthwise = cin === group && cout === group;
  if (ctx.reference || depthwise || !wz.every((z) => z === wz[0])) {
    // (depthwise: nine-tap dot products, plain loops beat one tiny GEMM per channel)
    const per = wc.length / cout;
    const wCentered = new Int16Array(wc.length);
    for (let i = 0; i < wc.length; i++) wCentered[i] = wc[i] - wz[Math.floor(i / per)];
    return intConv(centered(xc, xzp), wCentered, n, cin, cout, group, g);
  }
  const { h, w: iw, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const cinG = cin / group, coutG = cout / group, K = cinG * kh * kw, P = oh * ow;
  const constant = ctx.isConstant?.(w) ?? false;
  const { w: all, shift } = asS8(w, constant);
  let parts = constant ? groupCache.get(all) : undefined;
  if (parts === undefined) {
    parts = Array.from(
      { length: group },
      (_, gi) => all.subarray(gi * coutG * K, (gi + 1) * coutG * K),
    );
    if (constant) groupCache.set(all, parts);
  }
  // One row of K codes per output pixel of every image; taps in the padding hold the zero point.
  const rows = xc instanceof Int8Array ? new Int8Array(n * P * K) : new Uint8Array(n * P * K);
  const out = new Int32Array(n * cout * P);
  for (let gi = 0; gi < group; gi++) {
    for (let b = 0; b < n; b++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let r = ((b * oh + oy) * ow + ox) * K;
          for (let ci = 0; ci < cinG; ci++) {
            const xo = (b * cin + gi * cinG + ci) * h * iw;
            for (let ki = 0; ki < kh; ki++) {
              const iy = oy * sh + ki * dh - pt;
              for (let kj = 0; kj < kw; kj++, r++) {
                const ix = ox * sw + kj * dw - pl;
                rows[r] = iy >= 0 && iy < h && ix >= 0 && ix < iw ? xc[xo + iy * iw + ix] : xzp;
              }
            }
          }
        }
      }
    }
    const c = await igemm({
      a: rows,
      za: xzp,
      w: parts[gi],
      zb: Float32Array.of(wz[0] - shift),
      m: n * P,
      n: coutG,
      k: K,
      reference: false,
      constant,
    });
    for (let b = 0; b < n; b++) {
      for (let j = 0; j < coutG; j++) {
        const o = (b * cout + gi * coutG + j) * P, from = b * P * coutG;
        for (let p = 0; p < P; p++) out[o + p] = c[from + p * coutG + j];
      }
    }
  }
  return out;
}

/**
 * Exact integer 2-D convolution of centred input `x` (n × cin × h × w, padding contributes 0,
 * i.e. the zero point) with centred weights `w` (cout × cin/group × kh × kw).
 */
export function intConv(
  x: Int16Array,
  w: Int16Array,
  n: number,
  cin: number,
  cout: number,
  group: number,
  g: Window2d,
): Float64Array {
  const { h, w: iw, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const cinG = cin / group, coutG = cout / group;
  const out = new Float64Array(n * cout * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) {
      const gi = Math.floor(co / coutG);
      const oOff = (b * cout + co) * oh * ow;
      for (let ci = 0; ci < cinG; ci++) {
        const xOff = (b * cin + gi * cinG + ci) * h * iw;
        const wOff = (co * cinG + ci) * kh * kw;
        for (let ki = 0; ki < kh; ki++) {
          for (let kj = 0; kj < kw; kj++) {
            const wv = w[wOff + ki * kw + kj];
            if (wv === 0) continue;
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * sh + ki * dh - pt;
              if (iy < 0 || iy >= h) continue;
              const xr = xOff + iy * iw, orow = oOff + oy * ow;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * sw + kj * dw - pl;
                if (ix >= 0 && ix < iw) out[orow + ox] += wv * x[xr + ix];
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/** Output code dtype from a zero-point tensor (uint8 when omitted). */
export function codeType(node: Node, zp: TensorData | undefined): "int8" | "uint8" {
  const d = zp?.dtype ?? "uint8";
  if (d !== "int8" && d !== "uint8") {
    throw new LowbitError(
      "UNSUPPORTED",
      `${node.op}: output codes must be int8 or uint8, got ${d}`,
      {
        node: node.name,
      },
    );
  }
  return d;
}

/**
 * onnxruntime's requantization: code = saturate(roundHalfEven(f32(acc) · scale) + zp), with
 * `scale` already a float32 and `channelOf(i)` its index for output element i.
 */
export function requantize(
  acc: ArrayLike<number>,
  shape: number[],
  scales: readonly number[],
  zps: readonly number[],
  channelOf: (i: number) => number,
  dtype: DType,
): TensorData {
  const [lo, hi] = INT_RANGES[dtype]!;
  const out = alloc(dtype, acc.length) as Int8Array | Uint8Array;
  for (let i = 0; i < acc.length; i++) {
    const c = channelOf(i);
    const v = roundHalfEven(Math.fround(Math.fround(acc[i]) * scales[c])) + zps[c];
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return { dtype, shape, data: out };
}

/** 1.5·2⁵²: adding and subtracting it rounds a double (|v| < 2⁵¹) to an integer, ties to even. */
export const RNE = 6755399441055744;

/**
 * round_half_even(fround(x / s)) + z clamped to [lo, hi], written to `out`. Rounding (adding
 * and subtracting 1.5·2⁵²) comes before the clamp, which is ~12% faster than clamping first
 * (measured, 64K elements): it gives the same code since lo − z, hi − z are integers and the
 * rounding is monotone (|v| ≥ 2⁵¹ may round inexactly, but is clamped anyway); NaN stays NaN
 * and stores as 0, as before.
 */
export function quantizeInto<T extends Int8Array | Uint8Array | Float32Array>(
  x: Float32Array,
  s: number,
  z: number,
  lo: number,
  hi: number,
  out: T,
): T {
  const a = lo - z, b = hi - z;
  // One loop per array type, so that each store site stays monomorphic.
  if (out instanceof Float32Array) {
    for (let i = 0; i < x.length; i++) {
      const v = Math.fround(x[i] / s) + RNE - RNE;
      out[i] = (v < a ? a : v > b ? b : v) + z;
    }
  } else if (out instanceof Uint8Array) {
    for (let i = 0; i < x.length; i++) {
      const v = Math.fround(x[i] / s) + RNE - RNE;
      out[i] = (v < a ? a : v > b ? b : v) + z;
    }
  } else {
    for (let i = 0; i < x.length; i++) {
      const v = Math.fround(x[i] / s) + RNE - RNE;
      out[i] = (v < a ? a : v > b ? b : v) + z;
    }
  }
  return out;
}

/** Quantizes one float: saturate(roundHalfEven(f32(x / scale)) + zp). */
export function quantizeOne(x: number, scale: number, zp: number, lo: number, hi: number): number {
  const v = roundHalfEven(Math.fround(x / scale)) + zp;
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * DynamicQuantizeLinear's uint8 parameters as onnxruntime computes them: the range widened to
 * hold 0, scale = (max − min) / 255 (1 when the range is empty), zero point = round(−min / scale).
 */
export function dynamicParams(x: Float32Array): { scale: number; zp: number } {
  let lo = 0, hi = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi === lo ? 1 : Math.fround(Math.fround(hi - lo) / 255);
  const z = Math.fround(0 - Math.fround(lo / scale));
  return { scale, zp: roundHalfEven(Math.max(0, Math.min(255, z))) };
}
