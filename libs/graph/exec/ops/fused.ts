/**
 * lowbit's fused quantized operators (domain "lowbit"), produced by
 * `fuseQdq` from DequantizeLinear → MatMul / Gemm / Conv ← DequantizeLinear(QuantizeLinear)
 * patterns, and run on integer arithmetic:
 *
 * - `QGemmFused(x, x_scale, x_zp, w_q[N×K], w_scale, w_zp, bias?, y_scale?, y_zp?)`:
 *   y[…, n] = Σ_k (q(x)[…, k] − x_zp)(w_q[n, k] − w_zp[n]) · x_scale · w_scale[n] + bias[n]
 * - `QConvFused` (same inputs, `w_q` in Conv layout, Conv attributes): the convolution
 *   of (q(x) − x_zp) with (w_q − w_zp), scaled and biased the same way.
 *
 * q(x) is exactly ONNX QuantizeLinear. The integer sum is exact; the float
 * reference (DQ → float op) rounds every product and partial sum, so results
 * differ by at most K·2⁻²³·Σ|terms| (≈ 1e-5 relative in practice). With
 * `y_scale` / `y_zp` the output is requantized integer-only: the bias is
 * folded into the int32 accumulator (round(bias / (x_scale·w_scale))), and the
 * accumulator is scaled by a dyadic multiplier m₀·2⁻ˢʰⁱᶠᵗ (31-bit m₀), rounded
 * half away from zero; codes then differ from Q(float reference) by at most 1.
 * Without them, a Relu / Clip the executor fused (`lowbit_clamp`) is applied to the float output.
 *
 * Where the sums run: the integer sum is the same number however it is computed, so when
 * K·max|q(x) − x_zp|·max|w_q − w_zp| < 2²⁴ (every partial sum an integer that float32 holds
 * exactly; K = C/group·kh·kw) the centred codes go through the float32 WASM SIMD conv / GEMM
 * kernels, whose accumulators then equal the int32 ones bit for bit (and results equal the
 * TypeScript reference's). Otherwise: the int8 GEMM (`gemmS8`, weights packed once) on im2row of
 * the codes, all images of a batch in one call; depthwise in direct integer loops.
 *
 * @module
 */

import { dyadicFromScale, LowbitError } from "@lowbit/core";
import {
  conv2dF32,
  type Conv2dF32Options,
  conv2dF32Parallel,
  depthwiseConv2dF32,
  depthwiseConv2dF32Parallel,
  type FloatKernels,
  isResidentF32,
  type PackedF32B,
  packF32B,
  prepareConv2dF32,
  type PreparedConv2dF32,
  qdqFp8F32,
  quantizeF32,
  refPost,
  type RefPostOps,
  refQdqFp8,
} from "@lowbit/kernels";
import type { Node, TensorData } from "../../ir.ts";
import {
  alloc,
  attrFloats,
  attrInt,
  fusedClamp,
  normAxis,
  outF32,
  size,
  toF32,
} from "../_tensor.ts";
import { forwardWindow, pointwiseWindow, spatial2d, type Window2d } from "./_conv_geom.ts";
import { igemm, igemmScaled } from "./_int_backend.ts";
import {
  backendKernels,
  convF32,
  convF32Threaded,
  type ConvRef,
  matmulF32Threaded,
} from "./_float_backend.ts";
import { conv2dRef } from "./conv.ts";
import { shapeOps } from "./shape.ts";
import { INT_RANGES } from "./qlinear.ts";
import { quantizeInto, RNE } from "./_qint.ts";
import { roundHalfEven } from "./elementwise.ts";
import { qdqPost } from "./_post.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

/** Quantizes x exactly as QuantizeLinear (per-tensor) into codes of the zero point's type. */
function quantizeCodes(
  x: Float32Array,
  s: number,
  z: number,
  lo: number,
  hi: number,
  signed: boolean,
): Int8Array | Uint8Array {
  return signed
    ? quantizeInto(x, s, z, lo, hi, new Int8Array(x.length))
    : quantizeInto(x, s, z, lo, hi, new Uint8Array(x.length));
}

/** Weight codes as a typed array of their values (int8/int4 → Int8Array, uint8/uint4 → Uint8Array). */
function weightCodes(w: TensorData, node: Node): Int8Array | Uint8Array {
  if (w.data instanceof Int8Array || w.data instanceof Uint8Array) return w.data;
  throw new LowbitError("UNSUPPORTED", `${node.op}: weight codes of dtype ${w.dtype}`, {
    node: node.name,
  });
}

// Per-group weight views, made once per weight array so that packed forms are cached.
const groupViews = new WeakMap<object, (Int8Array | Uint8Array)[]>();
function groupsOf(w: Int8Array | Uint8Array, group: number): (Int8Array | Uint8Array)[] {
  if (group === 1) return [w];
  let v = groupViews.get(w);
  if (v === undefined || v.length !== group) {
    const per = w.length / group;
    v = Array.from({ length: group }, (_, g) => w.subarray(g * per, (g + 1) * per));
    groupViews.set(w, v);
  }
  return v;
}

/**
 * A dyadic approximation m₀·2⁻ˢʰⁱᶠᵗ of a positive real multiplier (m₀ < 2³¹).
 *
 * @param m the multiplier
 * @returns [m0, shift]
 *
 * @example
 * ```ts
 * import { dyadic } from "./fused.ts";
 * const [m0, shift] = dyadic(0.375);
 * if (m0 / 2 ** shift !== 0.375) throw new Error();
 * ```
 */
export function dyadic(m: number): [number, number] {
  if (!(m > 0) || !Number.isFinite(m) || m >= 2 ** 31) return [0, 0];
  // Defined once, in core (the kernels' epilogues match it bit for bit).
  const d = dyadicFromScale(m);
  return [d.multiplier, d.shift];
}

/**
 * y[o][c][i] = fround(fround(acc·sc[c]) + bias[c]) for accumulators laid out [outer][ch][inner],
 * or [outer][inner][ch] when `transposed`.
 */
function scaleBias(
  acc: Int32Array | Float32Array,
  outer: number,
  ch: number,
  inner: number,
  sc: Float32Array,
  bias: Float32Array | undefined,
  transposed: boolean,
): Float32Array {
  const y = new Float32Array(outer * ch * inner);
  const cs = transposed ? 1 : inner, is = transposed ? ch : 1;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < ch; c++) {
      const s = sc[c], b = bias ? bias[c] : 0;
      const base = (o * ch + c) * inner, ab = o * ch * inner + c * cs;
      for (let i = 0; i < inner; i++) y[base + i] = Math.fround(acc[ab + i * is] * s) + b;
    }
  }
  return y;
}

/**
 * Writes float or requantized outputs [outer][ch][inner] from integer-valued accumulators laid
 * out [outer][ch][inner], or [outer][inner][ch] when `transposed` (a GEMM's rows × columns).
 */
function epilogue(
  acc: Int32Array | Float32Array,
  outer: number,
  ch: number,
  inner: number,
  sx: number,
  sw: Float32Array,
  bias: Float32Array | undefined,
  yScale: TensorData | undefined,
  yZero: TensorData | undefined,
  node: Node,
  shape: number[],
  transposed = false,
  allocF32?: (n: number) => Float32Array,
): TensorData {
  // Accumulator of output (o, c, i): acc[o·ch·inner + c·cs + i·is].
  const cs = transposed ? 1 : inner, is = transposed ? ch : 1;
  const swAt = (c: number): number => sw[sw.length === 1 ? 0 : c];
  if (yScale === undefined) {
    // y = clamp(fround(fround(acc·sc[c]) + bias[c])), sc[c] = fround(sx·sw[c]): the float32
    // multiply-then-add of the float kernels' 1×1 depthwise conv (plain SIMD, no fused
    // multiply-add), which runs it for float32 accumulators with rows of ≥ 16 (both routes agree
    // bit for bit), then the Relu / Clip the executor fused, if any.
    const clamp = fusedClamp(node);
    const sc = new Float32Array(ch);
    for (let c = 0; c < ch; c++) sc[c] = sx * swAt(c);
    if (acc instanceof Float32Array && !transposed && inner >= 16) {
      const ref: ConvRef = (x, w, b, n, cin) => scaleBias(x, n, cin, inner, w, b, false);
      const data = convF32(acc, sc, bias, outer, ch, ch, ch, pointwiseWindow(1, inner), {
        reference: false,
        constant: false,
        clamp,
        alloc: allocF32,
      }, ref);
      return { dtype: "float32", shape, data };
    }
    const y = scaleBias(acc, outer, ch, inner, sc, bias, transposed);
    if (clamp) {
      const [lo, hi] = clamp;
      for (let i = 0; i < y.length; i++) y[i] = Math.min(hi, Math.max(lo, y[i]));
    }
    return { dtype: "float32", shape, data: y };
  }
  const dtype = yZero?.dtype ?? "uint8";
  const range = INT_RANGES[dtype];
  if (range === undefined) {
    throw new LowbitError("UNSUPPORTED", `${node.op}: requantized output dtype ${dtype}`, {
      node: node.name,
    });
  }
  const [lo, hi] = range;
  const sy = toF32(yScale)[0];
  const zy = yZero ? toF32(yZero)[0] : 0;
  const out = alloc(dtype, acc.length) as Int32Array;
  for (let c = 0; c < ch; c++) {
    const accScale = sx * swAt(c);
    const bq = bias ? roundHalfEven(bias[c] / accScale) : 0;
    const [m0, shift] = dyadic(accScale / sy);
    const inv = 2 ** -shift; // v · 2⁻ˢʰⁱᶠᵗ is v / 2ˢʰⁱᶠᵗ exactly (a power of two), without a divide
    for (let o = 0; o < outer; o++) {
      const base = (o * ch + c) * inner, ab = o * ch * inner + c * cs;
      for (let i = 0; i < inner; i++) {
        const v = (acc[ab + i * is] + bq) * m0; // exact: |v| < 2⁵³
        const r = v >= 0 ? Math.floor(v * inv + 0.5) : -Math.floor(-v * inv + 0.5);
        const q = r + zy;
        out[base + i] = q < lo ? lo : q > hi ? hi : q;
      }
    }
  }
  return { dtype, shape, data: out as unknown as TensorData["data"] };
}

function activationParams(node: Node, inputs: readonly (TensorData | undefined)[]) {
  const x = need(node, inputs[0], "x");
  const sx = toF32(need(node, inputs[1], "x_scale"))[0];
  const zt = inputs[2];
  const zx = zt ? toF32(zt)[0] : 0;
  const dtype = zt?.dtype ?? "uint8";
  const [lo, hi] = INT_RANGES[dtype] ?? [0, 255];
  return { x, sx, zx, lo, hi, signed: lo < 0 };
}

const qgemm: OpImpl = async (inputs, node, ctx) => {
  const { x, sx, zx, lo, hi, signed } = activationParams(node, inputs);
  const w = need(node, inputs[3], "w_q");
  const sw = toF32(need(node, inputs[4], "w_scale"));
  const wz = inputs[5] ? toF32(inputs[5]) : undefined;
  const bias = inputs[6] ? toF32(inputs[6]) : undefined;
  const [n, k] = w.shape;
  if (x.shape[x.shape.length - 1] !== k) {
    throw new LowbitError("SHAPE_MISMATCH", `QGemmFused: x [${x.shape}] × w [${w.shape}]ᵀ`, {
      node: node.name,
    });
  }
  const m = size(x.shape) / k;
  const shape = [...x.shape.slice(0, -1), n];
  const wc = weightCodes(w, node);
  const constant = ctx.isConstant?.(w) ?? false;
  if (!ctx.reference) {
    // On the float GEMM when exact, as QConvFused does (see there).
    const fw = centredWeights(wc, wz, n, k, constant);
    if (k * Math.max(hi - zx, zx - lo) * fw.range < 2 ** 24) {
      // The centred codes: the SIMD quantize kernel when there is one (the same bits), into
      // recycled storage, handed back once the GEMM has read them.
      const fk = floatContext(ctx.floatKernels);
      const buf = ctx.allocF32?.(m * k) ?? new Float32Array(m * k);
      const xc = fk !== null
        ? quantizeF32(toF32(x), sx, lo - zx, hi - zx, { kernels: fk, out: buf })
        : quantizeInto(toF32(x), sx, 0, lo - zx, hi - zx, buf);
      // Over the executor's worker pool when it has one (same bits: each column on one thread).
      // A float output takes the epilogue below in the GEMM's store: f32(f32(acc·sc[c]) +
      // bias[c]), sc[c] = f32(sx·sw[c]), then the clamp — the kernels' plain-SIMD multiply and
      // add, the bits of `epilogue` (exact integer sums, then the same two roundings).
      const float = inputs[7] === undefined;
      const sc = float
        ? Float32Array.from({ length: n }, (_, c) => sx * sw[sw.length === 1 ? 0 : c])
        : undefined;
      // A constant weight the kernels take (m·n·k ≥ 4096, matmulF32's own rule) is packed once
      // per kernel context, and its float copy dropped (see packedWeights).
      const packed = constant && fk !== null && m * n * k >= 4096
        ? packedWeights(fw, k, n, fk)
        : undefined;
      const wf = packed !== undefined ? NO_WEIGHTS : centredData(fw);
      const acc = await matmulF32Threaded(xc, m, wf, 0, k, n, "nk", sc && bias, {
        reference: false,
        constant,
        kernels: ctx.floatKernels,
        packed,
        scale: sc,
        clamp: float ? fusedClamp(node) : undefined,
        alloc: ctx.allocF32,
      });
      ctx.releaseF32?.(buf);
      if (float) return [{ dtype: "float32", shape, data: acc }];
      const out = epilogue(acc, m, n, 1, sx, sw, bias, inputs[7], inputs[8], node, shape);
      ctx.releaseF32?.(acc);
      return [out];
    }
  }
  const args = {
    a: quantizeCodes(toF32(x), sx, zx, lo, hi, signed),
    za: zx,
    w: wc,
    zb: wz,
    m,
    n,
    k,
    reference: ctx.reference ?? false,
    constant,
  };
  if (inputs[7] === undefined) {
    // Float output: the scale / bias / clamp epilogue below, fused into the int8 GEMM's tile
    // store (the same bits: sc[c] = fround(sx·sw[c]), fround(fround(acc·sc) + bias), clamp).
    const sc = Float32Array.from({ length: n }, (_, c) => sx * sw[sw.length === 1 ? 0 : c]);
    const y = await igemmScaled(args, sc, bias, fusedClamp(node));
    if (y !== null) return [{ dtype: "float32", shape, data: y }];
  }
  const acc = await igemm(args);
  // acc is [m][n]: outer = m, ch = n, inner = 1.
  return [epilogue(acc, m, n, 1, sx, sw, bias, inputs[7], inputs[8], node, shape)];
};

/** The bytes of int8 / uint8 codes (copies do not care about the sign; one array type). */
const bytes = (a: Int8Array | Uint8Array): Uint8Array =>
  a instanceof Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.length);

/**
 * im2row of activation codes (as bytes): one row of (ci, ki, kj) per output pixel; padding
 * reads the byte `pad`. The image is copied once into a padded `scratch` so the gather has no
 * bounds checks.
 */
function im2row(
  x: Uint8Array,
  xOff: number,
  cin: number,
  g: Window2d,
  pad: number,
  out: Uint8Array,
  scratch: Uint8Array,
): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow } = g;
  const hw = h * w;
  if (
    kh === 1 && kw === 1 && sh === 1 && sw === 1 && pt === 0 && pl === 0 && oh === h && ow === w
  ) {
    // Pointwise: a transpose of [cin][h·w] into [h·w][cin].
    for (let ci = 0; ci < cin; ci++) {
      const xc = xOff + ci * hw;
      for (let q = 0, o = ci; q < hw; q++, o += cin) out[o] = x[xc + q];
    }
    return;
  }
  const hp = h + pt + pb, wp = w + pl + pr, plane = hp * wp;
  const xp = scratch.length >= cin * plane ? scratch : new Uint8Array(cin * plane);
  xp.fill(pad, 0, cin * plane);
  for (let ci = 0; ci < cin; ci++) {
    for (let iy = 0; iy < h; iy++) {
      const src = xOff + ci * hw + iy * w, dst = ci * plane + (iy + pt) * wp + pl;
      for (let ix = 0; ix < w; ix++) xp[dst + ix] = x[src + ix];
    }
  }
  let o = 0;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ci = 0; ci < cin; ci++) {
        const base = ci * plane + oy * sh * wp + ox * sw;
        for (let ki = 0; ki < kh; ki++) {
          const r = base + ki * dh * wp;
          for (let kj = 0; kj < kw; kj++) out[o++] = xp[r + kj * dw];
        }
      }
    }
  }
}

/** One depthwise channel in exact integer arithmetic: acc += Σ (x − zx)(w − zw); padding contributes 0. */
function depthwiseInt(
  x: Int8Array | Uint8Array,
  xOff: number,
  zx: number,
  w: Int8Array | Uint8Array,
  wOff: number,
  zw: number,
  g: Window2d,
  acc: Int32Array,
  oOff: number,
): void {
  const { h, w: iw, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  for (let ki = 0; ki < kh; ki++) {
    for (let kj = 0; kj < kw; kj++) {
      const wv = w[wOff + ki * kw + kj] - zw;
      if (wv === 0) continue;
      const dx = kj * dw - pl;
      const ox0 = Math.min(ow, Math.max(0, Math.ceil(-dx / sw)));
      const ox1 = Math.min(ow, Math.max(ox0, Math.floor((iw - 1 - dx) / sw) + 1));
      for (let oy = 0; oy < oh; oy++) {
        const iy = oy * sh + ki * dh - pt;
        if (iy < 0 || iy >= h) continue;
        const xr = xOff + iy * iw + dx;
        const orow = oOff + oy * ow;
        for (let ox = ox0; ox < ox1; ox++) acc[orow + ox] += wv * (x[xr + ox * sw] - zx);
      }
    }
  }
}

/** Depthwise over the whole batch in exact integer arithmetic (int32 accumulators, NCHW). */
function depthwiseAll(
  xq: Int8Array | Uint8Array,
  zx: number,
  wc: Int8Array | Uint8Array,
  wz: Float32Array | undefined,
  nb: number,
  cout: number,
  g: Window2d,
): Int32Array {
  const ohw = g.oh * g.ow, hw = g.h * g.w, kk = g.kh * g.kw;
  const acc = new Int32Array(nb * cout * ohw);
  for (let b = 0; b < nb; b++) {
    for (let c = 0; c < cout; c++) {
      const z = wz ? wz[wz.length === 1 ? 0 : c] : 0;
      depthwiseInt(xq, (b * cout + c) * hw, zx, wc, c * kk, z, g, acc, (b * cout + c) * ohw);
    }
  }
  return acc;
}

/**
 * Centred float weights (w − zw) of a conv, made once per constant weight array. Once a kernel
 * context holds them (`preparedWeights`), the JavaScript copy is dropped (`w` undefined): the
 * kernel route reads the prepared copy, and a route that needs the array again recomputes it
 * (`centredData`), so a quantized model does not keep a float32 copy of every weight besides
 * its codes and the kernels' copy (PP-OCRv4 det: 4.7 MB of peak memory).
 */
interface CentredWeights {
  /** (w − zw) as float32, same layout (undefined once prepared: see `centredData`). */
  w: Float32Array | undefined;
  /** max |w − zw|. */
  range: number;
  /** The zero points they were made with. */
  wz: Float32Array | undefined;
  /** The codes, output channels and values per channel they were made from. */
  wc: Int8Array | Uint8Array;
  cout: number;
  kk: number;
}
const centred = new WeakMap<object, CentredWeights>();
const sameZeros = (a: Float32Array | undefined, b: Float32Array | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length &&
    a.every((v, i) => v === b[i]));

/** (w − zw) as float32 and max |w − zw|. */
function centre(
  wc: Int8Array | Uint8Array,
  wz: Float32Array | undefined,
  cout: number,
  kk: number,
): [Float32Array, number] {
  const w = new Float32Array(wc.length);
  let range = 0;
  for (let c = 0; c < cout; c++) {
    const z = wz ? wz[wz.length === 1 ? 0 : c] : 0;
    for (let i = c * kk; i < (c + 1) * kk; i++) {
      w[i] = wc[i] - z;
      range = Math.max(range, Math.abs(w[i]));
    }
  }
  return [w, range];
}

function centredWeights(
  wc: Int8Array | Uint8Array,
  wz: Float32Array | undefined,
  cout: number,
  kk: number,
  constant: boolean,
): CentredWeights {
  let e = constant ? centred.get(wc) : undefined;
  if (e === undefined || !sameZeros(e.wz, wz)) {
    const [w, range] = centre(wc, wz, cout, kk);
    e = { w, range, wz: wz?.slice(), wc, cout, kk };
    if (constant) centred.set(wc, e);
  }
  return e;
}

/** The centred weights as an array: the cached one, or recomputed once it was dropped. */
function centredData(e: CentredWeights): Float32Array {
  return e.w ?? centre(e.wc, e.wz, e.cout, e.kk)[0];
}

/**
 * The post-ops `_fuse.ts` gave a QConvFused with float output: `lowbit_qpost` [preMul, preAdd,
 * hardswish (0 / 1), mul, add] (NaN: absent) and `lowbit_qout` [scale, lo, hi] (the consumer's
 * QuantizeLinear: the output is then its centred codes, code − zero point, as f32 integers) or
 * `lowbit_qdq` (the reader's Q → DQ pair: float values, see ops/_post.ts).
 */
function qconvPost(node: Node): RefPostOps | undefined {
  const p = attrFloats(node, "lowbit_qpost"), q = attrFloats(node, "lowbit_qout");
  const qi = attrFloats(node, "lowbit_qdq");
  if (p === undefined && q === undefined && qi === undefined) return undefined;
  const num = (v: number | undefined): number | undefined =>
    v === undefined || Number.isNaN(v) ? undefined : v;
  const post: RefPostOps = {};
  if (p !== undefined) {
    post.preMul = num(p[0]);
    post.preAdd = num(p[1]);
    post.hardswish = p[2] === 1;
    post.mul = num(p[3]);
    post.add = num(p[4]);
  }
  if (q !== undefined) post.quantize = { scale: q[0], lo: q[1], hi: q[2] };
  // The reader's int8 / uint8 Q → DQ pair (`lowbit_qdq`, _fuse.ts): float output.
  else if (qi !== undefined) Object.assign(post, qdqPost(qi));
  return post;
}

/** The input's codes: quantized here, or already centred codes (`lowbit_codes_in`) shifted back. */
function inputCodes(
  xs: Float32Array,
  codesIn: boolean,
  sx: number,
  zx: number,
  lo: number,
  hi: number,
  signed: boolean,
): Int8Array | Uint8Array {
  if (!codesIn) return quantizeCodes(xs, sx, zx, lo, hi, signed);
  // c + zx is the code (NaN stores as 0, as QuantizeLinear's NaN above).
  const out = signed ? new Int8Array(xs.length) : new Uint8Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i] + zx;
  return out;
}

/**
 * The float kernels on the executor's pool, else the float ops' calling-thread context (null:
 * no SIMD). Shared with them rather than a context of its own: a second context's scratch
 * blocks cost 33 MB of peak memory on PP-OCRv4 det at 640×640, while its relaxed-SIMD FMA
 * (exact here: integer sums) was worth ≈ 2 % of det's run time (CPU time, 224×352, within noise).
 */
function floatContext(k: FloatKernels | undefined): FloatKernels | null {
  return k !== undefined ? k : backendKernels();
}

// Centred constant weights made once into each kernel context's memory, by centred-weights entry
// (alive as long as the codes are): a conv's prepared weights (with an i16 copy for the dense
// convs' integer route), a GEMM's packed N×K rows. The JavaScript float copy is then dropped
// (PP-OCRv4 rec w8a8: its 120 → 6625 classifier alone kept 3.2 MB of float32 rows besides their
// codes and the kernels' packed copy).
type KernelHeld = { dispose(): void };
const disposer = new FinalizationRegistry<KernelHeld>((p) => p.dispose());
function heldByKernels<T extends KernelHeld>(
  cache: WeakMap<FloatKernels, WeakMap<CentredWeights, T>>,
  e: CentredWeights,
  k: FloatKernels,
  make: (w: Float32Array) => T,
): T {
  let m = cache.get(k);
  if (m === undefined) cache.set(k, m = new WeakMap());
  let p = m.get(e);
  if (p === undefined) {
    p = make(centredData(e));
    m.set(e, p);
    disposer.register(e, p);
    e.w = undefined; // the kernels hold them now
  }
  return p;
}

const preparedConvs = new WeakMap<FloatKernels, WeakMap<CentredWeights, PreparedConv2dF32>>();
function preparedWeights(
  e: CentredWeights,
  shape: [number, number, number, number],
  k: FloatKernels,
): PreparedConv2dF32 {
  return heldByKernels(
    preparedConvs,
    e,
    k,
    (w) => prepareConv2dF32(w, shape, k, { integer: true }),
  );
}

const packedGemms = new WeakMap<FloatKernels, WeakMap<CentredWeights, PackedF32B>>();
const NO_WEIGHTS = new Float32Array(0);
function packedWeights(e: CentredWeights, k: number, n: number, fk: FloatKernels): PackedF32B {
  return heldByKernels(packedGemms, e, fk, (w) => packF32B(w, k, n, { layout: "nk", kernels: fk }));
}

/**
 * Whether the integer plan still holds a JavaScript float32 copy of the centred constant
 * weights made from these codes (`undefined`: none was made). False once a kernel context holds
 * them (a conv's prepared weights, a GEMM's packed ones): what a test of the plan's memory asks.
 *
 * @param codes a fused op's constant weight codes (the array its `w_q` input holds)
 * @returns true / false, or undefined when no centred copy was made from them
 *
 * @example
 * ```ts
 * import { holdsCentredCopy } from "./fused.ts";
 * if (holdsCentredCopy(new Int8Array(4)) !== undefined) throw new Error("never used");
 * ```
 */
export function holdsCentredCopy(codes: Int8Array | Uint8Array): boolean | undefined {
  const e = centred.get(codes);
  return e === undefined ? undefined : e.w !== undefined;
}

const qconv: OpImpl = async (inputs, node, ctx) => {
  const { x, sx, zx, lo, hi, signed } = activationParams(node, inputs);
  const codesIn = attrInt(node, "lowbit_codes_in", 0) === 1;
  const post = qconvPost(node);
  if (post !== undefined && inputs[7] !== undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "QConvFused: post-ops with a requantized output", {
      node: node.name,
    });
  }
  const w = need(node, inputs[3], "w_q");
  const sw = toF32(need(node, inputs[4], "w_scale"));
  const wz = inputs[5] ? toF32(inputs[5]) : undefined;
  const bias = inputs[6] ? toF32(inputs[6]) : undefined;
  const group = attrInt(node, "group", 1);
  const [nb, cin] = x.shape;
  const cout = w.shape[0];
  if (w.shape.length !== x.shape.length || w.shape[1] * group !== cin || cout % group !== 0) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `QConvFused: input [${x.shape}] and weight [${w.shape}] disagree (group ${group})`,
      { node: node.name },
    );
  }
  const [kh, kw] = spatial2d(w.shape, node);
  const g = forwardWindow(node, x.shape, [kh, kw]);
  const cinG = cin / group, coutG = cout / group;
  const kk = cinG * kh * kw, ohw = g.oh * g.ow, hw = g.h * g.w;
  const shape = x.shape.length === 3 ? [nb, cout, g.ow] : [nb, cout, g.oh, g.ow];
  const wc = weightCodes(w, node);
  const constant = ctx.isConstant?.(w) ?? false;
  // On the float kernels when exact: the operands are the centred integers (x − zx), (w − zw),
  // so every product and partial sum is an integer below 2²⁴ and the float32 accumulators equal
  // the int32 ones, in any summation order.
  const fw = ctx.reference ? undefined : centredWeights(wc, wz, cout, kk, constant);
  const xr = Math.max(hi - zx, zx - lo);
  const fk = fw === undefined ? null : floatContext(ctx.floatKernels);
  const dw = group === cin && cout === cin && cinG === 1;
  // Dense convs with constant weights also take the kernels beyond 2²⁴: their integer route sums
  // in int32 (exact below 2³¹) and scales as Math.fround(acc·sc) does, the epilogue's bits.
  const bound = fw === undefined ? Infinity : kk * xr * fw.range;
  const intRoute = fw !== undefined && constant && !dw && xr <= 32767 && fw.range <= 32767 &&
    bound < 2 ** 31;
  // A requantized output (y_scale, y_zero_point): the kernels requantize in their epilogue too,
  // integer-only as the TypeScript epilogue below (dense convs, exact f32 sums, no clamp).
  const rq = inputs[7] === undefined || dw || bound >= 2 ** 24 || fusedClamp(node) !== undefined
    ? undefined
    : requantParams(sx, sw, bias, inputs[7], inputs[8], cout);
  if (
    fw !== undefined && fk !== null && (bound < 2 ** 24 || intRoute) &&
    (inputs[7] === undefined || rq !== undefined)
  ) {
    // One conv call: exact integer sums, then the epilogue fused in the kernel's store:
    // f32(f32(acc·sc[c]) + bias[c]), sc[c] = f32(sx·sw[c]), the clamp, the post-ops (and the
    // consumer's quantization), the same steps as the TypeScript route below.
    // Float input: quantized by the conv call itself, in its copy of the input.
    let xc = toF32(x);
    let inputQuantize = codesIn ? undefined : { scale: sx, lo: lo - zx, hi: hi - zx };
    // On a pool the kernels read resident arrays in place, but an input they quantize goes to
    // the context's input slot, a block the size of the largest such input kept for good
    // (PP-OCRv4 det at 640×640: 9.8 MB, the neck's 96 channels). A resident input is quantized
    // here instead (the same kernel, the same codes): in place when it dies with this step,
    // else into recycled resident storage, handed back after the conv.
    let own: Float32Array | undefined;
    if (inputQuantize !== undefined && fk.threads > 1 && isResidentF32(xc, fk)) {
      const dst = ctx.reusable?.(x) ? xc : (own = ctx.allocF32?.(xc.length));
      if (dst !== undefined) {
        xc = quantizeF32(xc, sx, inputQuantize.lo, inputQuantize.hi, { out: dst, kernels: fk });
        inputQuantize = undefined;
      }
    }
    const sc = new Float32Array(cout);
    for (let c = 0; c < cout; c++) sc[c] = sx * sw[sw.length === 1 ? 0 : c];
    const wShape: [number, number, number, number] = [cout, cinG, kh, kw];
    const [clo, chi] = fusedClamp(node) ?? [-Infinity, Infinity];
    const opts: Conv2dF32Options = {
      strides: [g.sh, g.sw],
      pads: [g.pt, g.pl, g.pb, g.pr],
      dilations: [g.dh, g.dw],
      group,
      ...(rq !== undefined ? { requantize: rq.params } : {
        scale: sc,
        bias: bias ?? new Float32Array(cout),
        activation: clo === -Infinity && chi === Infinity ? "none" : { min: clo, max: chi },
        post,
      }),
      inputQuantize,
      out: ctx.allocF32?.(nb * cout * ohw),
      kernels: fk,
      // The kernels' integer route (i16 dot products, exact int32 sums: the bits of this op's
      // epilogue): needed beyond 2²⁴; below, taken where it is the faster one. Measured (CPU
      // time, i16 / plain-SIMD f32, the same fused epilogue, 2026-12-07): 3×3 3→16 stride 2 at
      // 224×352 0.85–0.87, 1×1 96→96 at 28×44 0.76, 48→96 0.84, 48→48 at 56×88 0.87, 32→48
      // 0.93–0.95, 96→24 0.94, 42→96 at 14×22 0.92, 192→48 on one pixel 0.78, but 1×1 16→32
      // at 112×176 1.05, 16→16 over 64 images of 8×8 1.07, 96→18 1.19, 48→12 1.47: with few
      // input or output channels, converting the input costs more than the dot products save
      // (so does K < 27, e.g. 3×3 1→16 over 64 images of 8×8: 1.17). Since pointwise convs
      // read their i16 panels straight from the image (no f32 im2col copy, 2026-12-07): 1×1
      // 96→18 at 28×44 0.86–0.91, 24→96 at 56×88 0.92–0.93, 96→24 on one pixel 0.90, 24→96
      // 0.95, but 16→32 at 112×176 0.97–1.01, 32→20 at 28×44 1.00, 16→18 1.02, 48→12 at 56×88
      // 1.04–1.06, 16→16 over 64 images of 8×8 1.04–1.06 (not taken).
      integerSums: bound >= 2 ** 24 ||
        (kh * kw > 1
          ? kk >= 64 || (kk >= 27 && coutG >= 16)
          : (kk >= 32 && coutG >= 24) || (kk >= 64 && coutG >= 16) || (kk >= 24 && coutG >= 64)),
    };
    const weight = constant ? preparedWeights(fw, wShape, fk) : centredData(fw);
    const xShape: [number, number, number, number] = [nb, cin, g.h, g.w];
    const y = fk.threads > 1
      ? await (dw ? depthwiseConv2dF32Parallel : conv2dF32Parallel)(
        xc,
        xShape,
        weight,
        wShape,
        opts,
      )
      : (dw ? depthwiseConv2dF32 : conv2dF32)(xc, xShape, weight, wShape, opts);
    if (own !== undefined) ctx.releaseF32?.(own);
    if (rq !== undefined) {
      // The codes, as f32 integers, into the zero point's type (NaN stores as 0, as there).
      const out = alloc(rq.dtype, y.data.length) as Int8Array | Uint8Array;
      out.set(y.data);
      ctx.releaseF32?.(y.data);
      return [{ dtype: rq.dtype, shape, data: out }];
    }
    return [{ dtype: "float32", shape, data: y.data }];
  }
  if (fw !== undefined && kk * xr * fw.range < 2 ** 24) {
    // The centred codes go to recycled storage (a fresh array costs page faults), handed back
    // once the conv has read them.
    const n = size(x.shape);
    const buf = (): Float32Array => ctx.allocF32?.(n) ?? new Float32Array(n);
    const xc = codesIn
      ? toF32(x)
      : fk !== null
      ? quantizeF32(toF32(x), sx, lo - zx, hi - zx, { out: buf(), kernels: fk })
      : quantizeInto(toF32(x), sx, 0, lo - zx, hi - zx, buf());
    // Over the executor's worker pool when it has one (the same bits: the sums are exact).
    const y = await convF32Threaded(xc, centredData(fw), undefined, nb, cin, cout, group, g, {
      reference: false,
      constant,
      kernels: ctx.floatKernels,
      alloc: ctx.allocF32,
    }, conv2dRef);
    if (!codesIn) ctx.releaseF32?.(xc);
    const args = [sx, sw, bias, inputs[7], inputs[8], node, shape, false, ctx.allocF32] as const;
    const out = withPost(epilogue(y, nb, cout, ohw, ...args), post);
    ctx.releaseF32?.(y);
    return [out];
  }
  if (cinG === 1 && coutG === 1) {
    // Direct integer loops (a GEMM with one output column per group is all overhead).
    const xq = inputCodes(toF32(x), codesIn, sx, zx, lo, hi, signed);
    return [
      withPost(
        epilogue(
          depthwiseAll(xq, zx, wc, wz, nb, cout, g),
          nb,
          cout,
          ohw,
          sx,
          sw,
          bias,
          inputs[7],
          inputs[8],
          node,
          shape,
        ),
        post,
      ),
    ];
  }
  const xq = inputCodes(toF32(x), codesIn, sx, zx, lo, hi, signed);
  const acc = new Int32Array(nb * cout * ohw);
  const groups = groupsOf(wc, group);
  // Several images per GEMM call (rows of all of them stacked), up to ~16 MB of rows.
  const chunk = Math.max(1, Math.min(nb, Math.floor((1 << 24) / Math.max(1, ohw * kk))));
  const rows = signed ? new Int8Array(chunk * ohw * kk) : new Uint8Array(chunk * ohw * kk);
  const xb = bytes(xq), rb = bytes(rows);
  const pad = new Uint8Array(cinG * (g.h + g.pt + g.pb) * (g.w + g.pl + g.pr));
  for (let b0 = 0; b0 < nb; b0 += chunk) {
    const bc = Math.min(chunk, nb - b0);
    for (let gi = 0; gi < group; gi++) {
      for (let b = 0; b < bc; b++) {
        const xOff = ((b0 + b) * cin + gi * cinG) * hw;
        im2row(xb, xOff, cinG, g, zx & 255, rb.subarray(b * ohw * kk, (b + 1) * ohw * kk), pad);
      }
      const zb = wz && wz.length > 1 ? wz.subarray(gi * coutG, (gi + 1) * coutG) : wz;
      const part = await igemm({
        a: bc === chunk ? rows : rows.subarray(0, bc * ohw * kk),
        za: zx,
        w: groups[gi],
        zb,
        m: bc * ohw,
        n: coutG,
        k: kk,
        reference: ctx.reference ?? false,
        constant,
      });
      if (group === 1) {
        // Kept as [b][pixel][channel]; the epilogue reads it transposed.
        acc.set(part, b0 * ohw * cout);
        continue;
      }
      for (let b = 0; b < bc; b++) {
        for (let c = 0; c < coutG; c++) {
          const o = ((b0 + b) * cout + gi * coutG + c) * ohw;
          for (let p = 0, q = b * ohw * coutG + c; p < ohw; p++, q += coutG) acc[o + p] = part[q];
        }
      }
    }
  }
  const args = [sx, sw, bias, inputs[7], inputs[8], node, shape] as const;
  return [withPost(epilogue(acc, nb, cout, ohw, ...args, group === 1), post)];
};

/**
 * The kernels' requantization records (`Conv2dF32Options.requantize`): per output channel
 * [bq, m0, 2^−shift, zy, lo, hi], the numbers `epilogue` computes its codes with; undefined for an
 * output type without a range (the TypeScript route then reports it).
 */
function requantParams(
  sx: number,
  sw: Float32Array,
  bias: Float32Array | undefined,
  yScale: TensorData,
  yZero: TensorData | undefined,
  cout: number,
): { params: Float64Array; dtype: TensorData["dtype"] } | undefined {
  const dtype = yZero?.dtype ?? "uint8";
  const range = INT_RANGES[dtype];
  if (range === undefined) return undefined;
  const sy = toF32(yScale)[0], zy = yZero ? toF32(yZero)[0] : 0;
  const params = new Float64Array(6 * cout);
  for (let c = 0; c < cout; c++) {
    const accScale = sx * sw[sw.length === 1 ? 0 : c];
    const bq = bias ? roundHalfEven(bias[c] / accScale) : 0;
    const [m0, shift] = dyadic(accScale / sy);
    params.set([bq, m0, 2 ** -shift, zy, range[0], range[1]], 6 * c);
  }
  return { params, dtype };
}

/** Applies the post-ops to a float epilogue's output in place (the kernels' scalar twin). */
function withPost(t: TensorData, post: RefPostOps | undefined): TensorData {
  if (post === undefined) return t;
  const y = t.data as Float32Array;
  for (let i = 0; i < y.length; i++) y[i] = refPost(y[i], post);
  return t;
}

/**
 * DequantizeLinear(QuantizeLinear(x)) to float8 with saturation, per tensor, zero point 0, value
 * by value (refQdqFp8: the values of encodeFp8 then the fp8 decode, ops/qlinear.ts).
 */
function qdqFp8(xs: Float32Array, s: number, fmt: string, y: Float32Array): void {
  const f = fmt === "float8e4m3fn" ? "fp8_e4m3fn" : "fp8_e5m2";
  for (let i = 0; i < xs.length; i++) y[i] = refQdqFp8(xs[i], s, f);
}

/**
 * Where QdqFused writes: in place over a float32 input that dies here (each value is read
 * before its result is written, in the SIMD passes and the loops below alike: the same values;
 * PP-OCRv4 det fp8 quantizes the image and the 96-channel Concat of its neck this way, 4.9 and
 * 9.8 MB at 640×640 that no longer need a second buffer), else recycled or fresh storage.
 */
function qdqOut(x: TensorData, xs: Float32Array, ctx: OpContext): Float32Array {
  if (x.dtype === "float32" && xs === x.data && ctx.reusable?.(x)) return xs;
  return ctx.allocF32?.(xs.length) ?? new Float32Array(xs.length);
}

/**
 * `QdqFused(x, scale, zero_point?)`: DequantizeLinear(QuantizeLinear(x)) with one per-tensor
 * scale and zero point, in one pass: y = fround(c·s), c = clamp(round_half_even(fround(x / s)),
 * lo − z, hi − z), the centred code (q − z, exact). The same bits as the two ops: their code q
 * is c + z (NaN stores as code 0, i.e. c = −z), and DequantizeLinear computes fround((q − z)·s).
 */
const qdq: OpImpl = (inputs, node, ctx) => {
  const x = need(node, inputs[0], "x");
  const xs = toF32(x);
  const y = qdqOut(x, xs, ctx);
  qdqInto(xs, inputs, node, ctx, y);
  return [{ dtype: "float32", shape: [...x.shape], data: y }];
};

/**
 * QdqFused's values of `xs` (its input 0's values; inputs 1 and 2 the scale and zero point) into
 * `y` (the same length; xs itself for in place): float8 (zero point of a float8 type) or int8 /
 * uint8, in one SIMD pass when there are kernels, else the reference loops.
 */
function qdqInto(
  xs: Float32Array,
  inputs: readonly (TensorData | undefined)[],
  node: Node,
  ctx: OpContext,
  y: Float32Array,
): void {
  const fmt = inputs[2]?.dtype;
  const fk = ctx.reference ? null : floatContext(ctx.floatKernels);
  if (fmt === "float8e4m3fn" || fmt === "float8e5m2") {
    const s = toF32(need(node, inputs[1], "x_scale"))[0];
    // The same steps in one SIMD pass (f32 arithmetic, each step exact but the division and the
    // last multiply, which round as here); the loop below is its reference.
    if (fk !== null && Math.fround(s) > 0 && Number.isFinite(s)) {
      qdqFp8F32(xs, s, fmt === "float8e4m3fn" ? "fp8_e4m3fn" : "fp8_e5m2", { out: y, kernels: fk });
    } else qdqFp8(xs, s, fmt, y);
    return;
  }
  const { sx, zx, lo, hi } = activationParams(node, inputs);
  if (fk !== null) {
    // The same c and y = f32(c·s) in one SIMD pass; NaN: code 0, as QuantizeLinear stores it
    // (0 − 0 is +0, as DQ gives).
    quantizeF32(xs, sx, lo - zx, hi - zx, { out: y, kernels: fk, dequantize: { nanCode: 0 - zx } });
    return;
  }
  const a = lo - zx, b = hi - zx, nan = 0 - zx; // 0 − 0 is +0, as DQ gives
  for (let i = 0; i < xs.length; i++) {
    const v = Math.fround(xs[i] / sx) + RNE - RNE;
    y[i] = (v < a ? a : v > b ? b : v === v ? v : nan) * sx;
  }
}

/**
 * `ConcatQdqFused(x_scale, x_zero_point, x₁, …, xₙ)` (Concat's `axis`): QdqFused(Concat(x₁, …,
 * xₙ)), the Q → DQ pair a QDQ export puts behind a feature pyramid's Concat (PP-OCRv4 det's neck).
 * Float32 parts that are contiguous blocks of the output (every dimension before `axis` is 1) go
 * through the Q → DQ pass straight into their place in the output: no copy of the concatenation
 * for the pair to read. The values are QdqFused's, element by element (the pair is elementwise,
 * so it commutes with the concatenation); other inputs run Concat, then QdqFused.
 */
const concatQdq: OpImpl = async (inputs, node, ctx) => {
  const [scale, zero] = inputs;
  const parts = inputs.slice(2);
  const first = parts[0];
  const axis = first === undefined
    ? 0
    : normAxis(attrInt(node, "axis", 0), first.shape.length, node);
  const direct = parts.length > 0 &&
    parts.every((t) =>
      t !== undefined && t.dtype === "float32" && t.shape.length === first!.shape.length &&
      t.shape.every((d, i) => i === axis || d === first!.shape[i]) &&
      t.shape.slice(0, axis).every((d) => d === 1)
    );
  if (!direct) {
    const [cat] = await shapeOps.Concat(parts, node, ctx);
    const xs = toF32(cat);
    // Concat's own storage (of two or more parts; one part is shared, as Identity's).
    const y = xs === cat.data && parts.length > 1 ? xs : outF32(ctx, xs.length);
    qdqInto(xs, [cat, scale, zero], node, ctx, y);
    return [{ dtype: "float32", shape: [...cat.shape], data: y }];
  }
  const shape = [...first!.shape];
  shape[axis] = parts.reduce((a, t) => a + t!.shape[axis], 0);
  const y = outF32(ctx, size(shape));
  let at = 0;
  for (const t of parts) {
    const xs = t!.data as Float32Array;
    qdqInto(xs, [t, scale, zero], node, ctx, y.subarray(at, at + xs.length));
    at += xs.length;
  }
  return [{ dtype: "float32", shape, data: y }];
};

/**
 * The fused quantized ops, by name.
 *
 * @example
 * ```ts
 * import { fusedOps } from "./fused.ts";
 * const node = { name: "q", op: "QGemmFused", domain: "lowbit", inputs: [], outputs: ["y"], attrs: {} };
 * const f = (shape: number[], v: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(v) });
 * const x = f([1, 2], [1, 2]);
 * const w = { dtype: "int8" as const, shape: [1, 2], data: new Int8Array([3, 4]) };
 * const xz = { dtype: "int8" as const, shape: [], data: new Int8Array([0]) };
 * const [y] = await fusedOps.QGemmFused([x, f([], [1]), xz, w, f([1], [0.5])], node, { opset: 13 });
 * if (y.data[0] !== 5.5) throw new Error(String(y.data[0]));
 * ```
 */
export const fusedOps: OpTable<"QGemmFused" | "QConvFused" | "QdqFused" | "ConcatQdqFused"> = {
  QGemmFused: qgemm,
  QConvFused: qconv,
  QdqFused: qdq,
  ConcatQdqFused: concatQdq,
};
