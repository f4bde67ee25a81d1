/**
 * onnxruntime's quantized contrib ops (domain `com.microsoft`) as they appear in models from
 * onnxruntime's quantizer and transformers.js: `MatMulNBits` (2 to 8-bit blockwise weights),
 * `DynamicQuantizeMatMul`, `QGemm`, `QLinearAdd`, `QLinearMul`, `QLinearGlobalAveragePool`,
 * `QLinearConcat`, `QLinearSigmoid`, `QLinearLeakyRelu`, `QLinearSoftmax`, `GatherBlockQuantized` (4 / 8-bit
 * embeddings) and the contrib-domain `QuantizeLinear` / `DequantizeLinear` (16-bit and 4-bit
 * QDQ models). Arithmetic follows onnxruntime's CPU kernels (MLAS):
 * exact integer sums, float32 scale products, ties to even.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { alloc, attrFloat, attrInt, normAxis, size, toF32, toNumbers } from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import {
  codes,
  codeType,
  dynamicParams,
  matmulCodes,
  need,
  perChannel,
  quantizeOne,
  requantize,
  scalar,
} from "./_qint.ts";
import { matmulF32Threaded } from "./_float_backend.ts";
import { roundHalfEven } from "./elementwise.ts";
import { INT_RANGES, qlinearOps } from "./qlinear.ts";
import type { OpImpl } from "./types.ts";

function unsupported(node: Node, detail: string): LowbitError {
  return new LowbitError("UNSUPPORTED", `${node.op}: ${detail}`, { node: node.name });
}

/** Dequantized MatMulNBits weights of constant B, by B's storage. */
const nbitsCache = new WeakMap<object, Float32Array>();

/** Y = A · dequant(B)ᵀ (+ bias), B packed [N, blocks, blob] of `bits`-bit codes, low bits first. */
const MatMulNBits: OpImpl = async (args, node, ctx) => {
  const a = need(node, args[0], "A"), bq = need(node, args[1], "B");
  const scalesT = need(node, args[2], "scales");
  const K = attrInt(node, "K", 0), N = attrInt(node, "N", 0);
  if (a.shape[a.shape.length - 1] !== K) {
    throw new LowbitError("SHAPE_MISMATCH", `MatMulNBits: A [${a.shape}] needs last dim K=${K}`, {
      node: node.name,
    });
  }
  const constant = [bq, scalesT, args[3]].every((t) => t === undefined || ctx.isConstant?.(t));
  let w = constant ? nbitsCache.get(bq.data) : undefined;
  if (w === undefined) {
    w = dequantNBits(node, bq, scalesT, args[3], args[4], K, N);
    if (constant) nbitsCache.set(bq.data, w);
  }
  const x = toF32(a);
  const bias = args[5] === undefined ? undefined : toF32(args[5]);
  const y = await matmulF32Threaded(x, x.length / K, w, 0, K, N, "nk", bias, {
    reference: ctx.reference ?? false,
    constant,
    kernels: ctx.floatKernels,
  });
  return [{ dtype: "float32", shape: [...a.shape.slice(0, -1), N], data: y }];
};

/** MatMulNBits' B as float32 [N, K]: (code − zero point) · scale per block. */
function dequantNBits(
  node: Node,
  bq: TensorData,
  scalesT: TensorData,
  zpT: TensorData | undefined,
  gIdx: TensorData | undefined,
  K: number,
  N: number,
): Float32Array {
  const bits = attrInt(node, "bits", 4), block = attrInt(node, "block_size", 0);
  if (![2, 4, 8].includes(bits)) throw unsupported(node, `bits ${bits} (2, 4 or 8 supported)`);
  if (!(block >= 16) || (block & (block - 1)) !== 0) {
    throw unsupported(node, `block_size ${block} (a power of two ≥ 16)`);
  }
  if (gIdx !== undefined) throw unsupported(node, "g_idx (act-order) is not supported");
  if (zpT !== undefined && zpT.dtype !== "uint8") {
    throw unsupported(node, `zero_points of dtype ${zpT.dtype} (packed uint8 supported)`);
  }
  const blocks = Math.ceil(K / block), blob = block * bits / 8;
  if (bq.dtype !== "uint8" || size(bq.shape) !== N * blocks * blob) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `MatMulNBits: B ${bq.dtype}[${bq.shape}] must be uint8 [${N}, ${blocks}, ${blob}]`,
      { node: node.name },
    );
  }
  const q = bq.data as Uint8Array;
  const scales = toF32(scalesT);
  if (scales.length !== N * blocks) {
    throw new LowbitError("SHAPE_MISMATCH", `MatMulNBits: scales need ${N * blocks} elements`, {
      node: node.name,
    });
  }
  const zpBytes = Math.ceil(blocks * bits / 8);
  const zq = zpT?.data as Uint8Array | undefined;
  if (zq !== undefined && zq.length !== N * zpBytes) {
    throw new LowbitError("SHAPE_MISMATCH", `MatMulNBits: zero_points need ${N * zpBytes} bytes`, {
      node: node.name,
    });
  }
  const mask = (1 << bits) - 1, perByte = 8 / bits, mid = 1 << (bits - 1);
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let bi = 0; bi < blocks; bi++) {
      const s = scales[n * blocks + bi];
      let z = mid;
      if (zq !== undefined) {
        const byte = zq[n * zpBytes + Math.floor(bi / perByte)];
        z = (byte >> ((bi % perByte) * bits)) & mask;
      }
      const base = (n * blocks + bi) * blob;
      for (let j = 0; j < block; j++) {
        const k = bi * block + j;
        if (k >= K) break;
        const v = (q[base + Math.floor(j / perByte)] >> ((j % perByte) * bits)) & mask;
        w[n * K + k] = Math.fround((v - z) * s);
      }
    }
  }
  return w;
}

/** A quantized dynamically to uint8 (as DynamicQuantizeLinear), times int8/uint8 B, rescaled. */
const DynamicQuantizeMatMul: OpImpl = async (args, node, ctx) => {
  const a = toF32(need(node, args[0], "A"));
  const b = need(node, args[1], "B");
  const { scale, zp } = dynamicParams(a);
  const aq = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) aq[i] = quantizeOne(a[i], scale, zp, 0, 255);
  const n = b.shape[b.shape.length - 1];
  const bzp = perChannel(node, args[3], n, "b_zero_point", 0);
  const bs = perChannel(node, need(node, args[2], "b_scale"), n, "b_scale", 1);
  const aqT: TensorData = { dtype: "uint8", shape: args[0]!.shape, data: aq };
  const r = await matmulCodes(node, ctx, aqT, zp, b, bzp);
  const bias = args[4] === undefined ? undefined : toF32(args[4]);
  const y = new Float32Array(r.data.length);
  for (let i = 0; i < y.length; i++) {
    const j = i % n;
    const v = Math.fround(Math.fround(r.data[i]) * Math.fround(scale * bs[j]));
    y[i] = bias ? v + bias[j] : v;
  }
  return [{ dtype: "float32", shape: r.shape, data: y }];
};

/** 2-D transpose of 8-bit codes. */
function transposeCodes(t: TensorData): TensorData {
  const [r, c] = t.shape;
  const src = t.data as Uint8Array, out = alloc(t.dtype, src.length) as Uint8Array;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j];
  return { dtype: t.dtype, shape: [c, r], data: out };
}

/** Gemm on codes: int32 bias C, float output, or quantized when y_scale is given. */
const QGemm: OpImpl = async (args, node, ctx) => {
  let a = need(node, args[0], "A");
  const b = need(node, args[3], "B");
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw unsupported(node, `A and B must be 2-D, got [${a.shape}] and [${b.shape}]`);
  }
  if (attrInt(node, "transA", 0)) a = transposeCodes(a);
  const transB = attrInt(node, "transB", 0) !== 0;
  const alpha = attrFloat(node, "alpha", 1);
  const as = scalar(node, args[1], "a_scale"), azp = scalar(node, args[2], "a_zero_point", 0);
  const n = transB ? b.shape[0] : b.shape[1];
  const bs = perChannel(node, need(node, args[4], "b_scale"), n, "b_scale", 1);
  const bzp = perChannel(node, args[5], n, "b_zero_point", 0);
  const r = await matmulCodes(node, ctx, a, azp, b, bzp, transB);
  if (args[6] !== undefined) {
    const c = args[6];
    const cv = toNumbers(c);
    const plan = planBroadcast([c.shape], r.shape);
    let i = 0;
    for (let o = 0; o < plan.outer; o++) {
      for (let k = 0; k < plan.inner; k++, i++) {
        r.data[i] += cv[plan.offsets[0][o] + k * plan.steps[0]];
      }
    }
  }
  const scales = bs.map((s) => Math.fround(Math.fround(alpha * as) * s));
  if (args[7] === undefined) {
    const y = new Float32Array(r.data.length);
    for (let i = 0; i < y.length; i++) y[i] = Math.fround(r.data[i]) * scales[i % n];
    return [{ dtype: "float32", shape: r.shape, data: y }];
  }
  const ys = scalar(node, args[7], "y_scale"), yzp = scalar(node, args[8], "y_zero_point", 0);
  const q = scales.map((s) => Math.fround(s / ys));
  return [requantize(r.data, r.shape, q, q.map(() => yzp), (i) => i % n, codeType(node, args[8]))];
};

/** The dequantized value of each code −128..255 (index code + 128) for one scale / zero point. */
function dequantTable(scale: number, zp: number): Float32Array {
  const t = new Float32Array(384);
  for (let c = -128; c < 256; c++) t[c + 128] = Math.fround((c - zp) * scale);
  return t;
}

/** Applies `f` to the dequantized codes and quantizes the result (a per-code lookup table). */
function lookup(
  node: Node,
  x: TensorData,
  xs: number,
  xzp: number,
  ys: number,
  yzp: number,
  dtype: "int8" | "uint8",
  f: (v: number) => number,
): TensorData {
  const [lo, hi] = INT_RANGES[dtype]!;
  const deq = dequantTable(xs, xzp);
  const table = new Int32Array(384);
  for (let c = 0; c < 384; c++) table[c] = quantizeOne(Math.fround(f(deq[c])), ys, yzp, lo, hi);
  const src = codes(node, x, "X");
  const out = alloc(dtype, src.length) as Uint8Array;
  for (let i = 0; i < src.length; i++) out[i] = table[src[i] + 128];
  return { dtype, shape: [...x.shape], data: out };
}

const QLinearSigmoid: OpImpl = (args, node) => {
  const x = need(node, args[0], "X");
  const dtype = codeType(node, args[4] ?? { dtype: x.dtype, shape: [], data: new Uint8Array(1) });
  return [lookup(
    node,
    x,
    scalar(node, args[1], "X_scale"),
    scalar(node, args[2], "X_zero_point", 0),
    scalar(node, args[3], "Y_scale"),
    scalar(node, args[4], "Y_zero_point", 0),
    dtype,
    (v) => 1 / (1 + Math.exp(-v)),
  )];
};

/**
 * Elementwise binary op on codes with broadcasting; `make(scales)` gives the float value of C
 * for centred codes (a − a_zp, b − b_zp), its constants computed once.
 */
function binary(
  args: readonly (TensorData | undefined)[],
  node: Node,
  make: (as: number, bs: number, cs: number) => (va: number, vb: number) => number,
): TensorData[] {
  const a = need(node, args[0], "A"), b = need(node, args[3], "B");
  const as = scalar(node, args[1], "A_scale"), azp = scalar(node, args[2], "A_zero_point", 0);
  const bs = scalar(node, args[4], "B_scale"), bzp = scalar(node, args[5], "B_zero_point", 0);
  const cs = scalar(node, args[6], "C_scale"), czp = scalar(node, args[7], "C_zero_point", 0);
  const dtype = codeType(node, args[7] ?? { dtype: a.dtype, shape: [], data: new Uint8Array(1) });
  const [lo, hi] = INT_RANGES[dtype]!;
  const shape = broadcastShapes([a.shape, b.shape], node);
  const plan = planBroadcast([a.shape, b.shape], shape);
  const ac = codes(node, a, "A"), bc = codes(node, b, "B");
  const out = alloc(dtype, size(shape)) as Uint8Array;
  const f = make(as, bs, cs);
  const [sa, sb] = plan.steps;
  let i = 0;
  for (let o = 0; o < plan.outer; o++) {
    const ao = plan.offsets[0][o], bo = plan.offsets[1][o];
    for (let k = 0; k < plan.inner; k++, i++) {
      const v = roundHalfEven(f(ac[ao + k * sa] - azp, bc[bo + k * sb] - bzp)) + czp;
      out[i] = v < lo ? lo : v > hi ? hi : v;
    }
  }
  return [{ dtype, shape, data: out }];
}

// MLAS: C = (A − a_zp)·(a_s / c_s) + (B − b_zp)·(b_s / c_s), each product in float32.
const QLinearAdd: OpImpl = (args, node) =>
  binary(args, node, (as, bs, cs) => {
    const ra = Math.fround(as / cs), rb = Math.fround(bs / cs);
    return (va, vb) => Math.fround(Math.fround(va * ra) + Math.fround(vb * rb));
  });

// MLAS: C = (A − a_zp)·(B − b_zp)·(a_s·b_s / c_s), in float32.
const QLinearMul: OpImpl = (args, node) =>
  binary(args, node, (as, bs, cs) => {
    const m = Math.fround(Math.fround(as * bs) / cs);
    return (va, vb) => Math.fround(Math.fround(va * vb) * m);
  });

/** Mean over the spatial dims (NCHW, or NHWC with channels_last), requantized. */
const QLinearGlobalAveragePool: OpImpl = (args, node) => {
  const x = need(node, args[0], "X");
  const xs = scalar(node, args[1], "x_scale"), xzp = scalar(node, args[2], "x_zero_point", 0);
  const ys = scalar(node, args[3], "y_scale"), yzp = scalar(node, args[4], "y_zero_point", 0);
  const last = attrInt(node, "channels_last", 0) !== 0;
  if (x.shape.length < 3) throw unsupported(node, `input rank ${x.shape.length} (≥ 3 needed)`);
  const n = x.shape[0];
  const c = last ? x.shape[x.shape.length - 1] : x.shape[1];
  const hw = size(x.shape) / (n * c);
  const src = codes(node, x, "X");
  const dtype = codeType(node, args[4] ?? { dtype: x.dtype, shape: [], data: new Uint8Array(1) });
  const [lo, hi] = INT_RANGES[dtype]!;
  const scale = Math.fround(xs / Math.fround(ys * hw));
  const out = alloc(dtype, n * c) as Uint8Array;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      let acc = -xzp * hw;
      for (let i = 0; i < hw; i++) {
        acc += src[last ? (b * hw + i) * c + ch : (b * c + ch) * hw + i];
      }
      const v = roundHalfEven(Math.fround(Math.fround(acc) * scale)) + yzp;
      out[b * c + ch] = v < lo ? lo : v > hi ? hi : v;
    }
  }
  const ones = x.shape.slice(last ? 1 : 2, last ? -1 : undefined).map(() => 1);
  const shape = last ? [n, ...ones, c] : [n, c, ...ones];
  return [{ dtype, shape, data: out }];
};

/** Concat of (X, X_scale, X_zero_point) triples after Y_scale, Y_zero_point, requantized. */
const QLinearConcat: OpImpl = (args, node) => {
  const ys = scalar(node, args[0], "Y_scale"), yzp = scalar(node, args[1], "Y_zero_point", 0);
  if ((args.length - 2) % 3 !== 0 || args.length < 5) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "QLinearConcat: inputs must be Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) triples",
      { node: node.name },
    );
  }
  const parts: TensorData[] = [];
  const dtype = codeType(
    node,
    args[1] ?? { dtype: args[2]!.dtype, shape: [], data: new Uint8Array(1) },
  );
  for (let i = 2; i < args.length; i += 3) {
    const x = need(node, args[i], `X ${(i - 2) / 3}`);
    const xs = scalar(node, args[i + 1], "X_scale"),
      xzp = scalar(node, args[i + 2], "X_zero_point", 0);
    parts.push(
      xs === ys && xzp === yzp && x.dtype === dtype
        ? x
        : lookup(node, x, xs, xzp, ys, yzp, dtype, (v) => v),
    );
  }
  const rank = parts[0].shape.length;
  const axis = normAxis(attrInt(node, "axis", 0), rank, node);
  const outer = size(parts[0].shape.slice(0, axis));
  const total = parts.reduce((s, p) => s + p.shape[axis], 0);
  const inner = size(parts[0].shape.slice(axis + 1));
  for (const p of parts) {
    if (p.shape.length !== rank || p.shape.some((d, k) => k !== axis && d !== parts[0].shape[k])) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `QLinearConcat: shapes [${parts[0].shape}] and [${p.shape}] differ off axis ${axis}`,
        { node: node.name },
      );
    }
  }
  const out = alloc(dtype, outer * total * inner) as Uint8Array;
  let at = 0;
  for (const p of parts) {
    const len = p.shape[axis] * inner;
    const src = p.data as Uint8Array;
    for (let o = 0; o < outer; o++) {
      out.set(src.subarray(o * len, (o + 1) * len), o * total * inner + at);
    }
    at += len;
  }
  const shape = [...parts[0].shape];
  shape[axis] = total;
  return [{ dtype, shape, data: out }];
};

const QLinearLeakyRelu: OpImpl = (args, node) => {
  const x = need(node, args[0], "X");
  const alpha = attrFloat(node, "alpha", 0.01);
  const dtype = codeType(node, args[4] ?? { dtype: x.dtype, shape: [], data: new Uint8Array(1) });
  return [lookup(
    node,
    x,
    scalar(node, args[1], "X_scale"),
    scalar(node, args[2], "X_zero_point", 0),
    scalar(node, args[3], "Y_scale"),
    scalar(node, args[4], "Y_zero_point", 0),
    dtype,
    (v) => v >= 0 ? v : Math.fround(v * alpha),
  )];
};

/**
 * Gather from a blockwise-quantized uint8 matrix (bits 4: two codes per byte, low nibble first;
 * bits 8: one), dequantized per block of `block_size` along the last axis:
 * (code − zero point) · scale; zero points packed like the data (default 8 / 128).
 */
const GatherBlockQuantized: OpImpl = (args, node) => {
  const data = need(node, args[0], "data"), idx = need(node, args[1], "indices");
  const scalesT = need(node, args[2], "scales");
  const bits = attrInt(node, "bits", 4), block = attrInt(node, "block_size", 128);
  if (data.dtype !== "uint8") {
    throw unsupported(node, `data of dtype ${data.dtype} (uint8 supported)`);
  }
  if (bits !== 4 && bits !== 8) throw unsupported(node, `bits ${bits} (4 or 8 supported)`);
  const rank = data.shape.length;
  const qAxis = normAxis(attrInt(node, "quantize_axis", 1), rank, node);
  if (qAxis !== rank - 1) throw unsupported(node, "quantize_axis must be the last axis");
  const gAxis = normAxis(attrInt(node, "gather_axis", 0), rank, node);
  const perByte = 8 / bits, mask = (1 << bits) - 1;
  const shape = [...data.shape];
  shape[rank - 1] *= perByte; // logical (unpacked) shape
  const cols = shape[rank - 1], blocks = Math.ceil(cols / block);
  const rows = size(shape) / cols;
  const scales = toF32(scalesT);
  if (scales.length !== rows * blocks) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `GatherBlockQuantized: scales [${scalesT.shape}] need ${rows}×${blocks} elements`,
      { node: node.name },
    );
  }
  const zq = args[3]?.data as Uint8Array | undefined;
  const zpCols = Math.ceil(blocks / perByte);
  if (zq !== undefined && zq.length !== rows * zpCols) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `GatherBlockQuantized: zero_points need ${rows * zpCols} bytes`,
      {
        node: node.name,
      },
    );
  }
  const q = data.data as Uint8Array;
  const value = (flat: number): number => {
    const r = Math.floor(flat / cols), c = flat % cols, b = Math.floor(c / block);
    const code = (q[Math.floor(flat / perByte)] >> ((flat % perByte) * bits)) & mask;
    const z = zq === undefined
      ? 1 << (bits - 1)
      : (zq[r * zpCols + Math.floor(b / perByte)] >> ((b % perByte) * bits)) & mask;
    return Math.fround((code - z) * scales[r * blocks + b]);
  };
  const ind = toNumbers(idx);
  const n = shape[gAxis];
  const outer = size(shape.slice(0, gAxis)), inner = size(shape.slice(gAxis + 1));
  const out = new Float32Array(outer * ind.length * inner);
  for (let o = 0; o < outer; o++) {
    ind.forEach((i0, k) => {
      const i = i0 < 0 ? i0 + n : i0;
      if (i < 0 || i >= n) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `GatherBlockQuantized: index ${i0} out of [0, ${n})`,
          {
            node: node.name,
          },
        );
      }
      const from = (o * n + i) * inner, to = (o * ind.length + k) * inner;
      for (let j = 0; j < inner; j++) out[to + j] = value(from + j);
    });
  }
  const outShape = [...shape.slice(0, gAxis), ...idx.shape, ...shape.slice(gAxis + 1)];
  return [{ dtype: "float32", shape: outShape, data: out }];
};

/**
 * Softmax on codes, as onnxruntime computes it: a float32 table of exp((i − 255 + shift)·x_scale)
 * (shift keeps the sum of `D` terms finite), indexed by each code's distance to the row maximum;
 * y = nearbyint(table · ⌊1 / y_scale⌋ / Σ table) + y_zp. Attribute `opset` < 13 flattens from
 * `axis` (default 1), otherwise the op runs along `axis` (default −1).
 */
const QLinearSoftmax: OpImpl = (args, node) => {
  const x = need(node, args[0], "X");
  const xs = scalar(node, args[1], "X_scale");
  const ys = scalar(node, args[3], "y_scale"), yzp = scalar(node, args[4], "y_zero_point", 0);
  const opset = attrInt(node, "opset", -1);
  if (opset < 0) {
    throw new LowbitError("INVALID_ARGUMENT", "QLinearSoftmax needs attribute 'opset'", {
      node: node.name,
    });
  }
  const signed = codes(node, x, "X") instanceof Int8Array;
  const rank = x.shape.length;
  const axis = normAxis(attrInt(node, "axis", opset < 13 ? 1 : -1), rank, node);
  // Rows of D codes, `stride` apart (contiguous when flattening or on the last axis).
  const D = opset < 13 ? size(x.shape.slice(axis)) : x.shape[axis];
  const stride = opset < 13 ? 1 : size(x.shape.slice(axis + 1));
  const rows = size(x.shape) / D;
  const f = Math.fround;
  let shift = Math.log(f(3.4028234663852886e38 / D));
  shift = Math.max(0, shift - 5) / xs;
  const table = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    table[signed ? (i - 128) & 255 : i] = f(Math.exp((i - 255 + shift) * xs));
  }
  const yScale = f(Math.floor(f(1 / ys)));
  const hi = signed ? 127 : 255; // saturates above (as onnxruntime 1.30 does for int8 too)
  const src = x.data as Int8Array | Uint8Array;
  const out = alloc(x.dtype, src.length) as Uint8Array;
  for (let r = 0; r < rows; r++) {
    const base = stride === 1 ? r * D : Math.floor(r / stride) * D * stride + (r % stride);
    let xmax = -Infinity;
    for (let k = 0; k < D; k++) xmax = Math.max(xmax, src[base + k * stride]);
    const index = (v: number): number => signed ? (127 - xmax + v) & 255 : 255 - xmax + v;
    let sum = 0;
    for (let k = 0; k < D; k++) sum = f(sum + table[index(src[base + k * stride])]);
    if (sum === 0) continue;
    for (let k = 0; k < D; k++) {
      const q = roundHalfEven(f(f(table[index(src[base + k * stride])] * yScale) / sum)) + yzp;
      out[base + k * stride] = q > hi ? hi : q;
    }
  }
  return [{ dtype: x.dtype, shape: [...x.shape], data: out }];
};

/**
 * onnxruntime's quantized contrib ops (domain com.microsoft), by name.
 *
 * @example
 * ```ts
 * import { msQuantOps } from "./ms_quant.ts";
 * const node = { name: "a", op: "QLinearAdd", domain: "com.microsoft", inputs: [], outputs: ["c"], attrs: {} };
 * const u8 = (...v: number[]) => ({ dtype: "uint8" as const, shape: [v.length], data: Uint8Array.from(v) });
 * const s = (v: number) => ({ dtype: "float32" as const, shape: [], data: new Float32Array([v]) });
 * // (10 − 0)·0.5 + (4 − 0)·0.25 = 6, in steps of 0.5: code 12
 * const [c] = await msQuantOps.QLinearAdd([u8(10), s(0.5), u8(0), u8(4), s(0.25), u8(0), s(0.5), u8(0)], node, { opset: 17 });
 * if (c.data[0] !== 12) throw new Error();
 * ```
 */
export const msQuantOps: Readonly<Record<string, OpImpl>> = {
  MatMulNBits,
  DynamicQuantizeMatMul,
  QGemm,
  QLinearAdd,
  QLinearMul,
  QLinearGlobalAveragePool,
  QLinearConcat,
  QLinearSigmoid,
  QLinearLeakyRelu,
  GatherBlockQuantized,
  QLinearSoftmax,
  // The contrib-domain forms its quantizer writes for 16-bit and 4-bit QDQ models.
  QuantizeLinear: qlinearOps.QuantizeLinear,
  DequantizeLinear: qlinearOps.DequantizeLinear,
};
