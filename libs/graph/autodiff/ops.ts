/**
 * The differentiable op table: one `{ forward, backward }` pair per ONNX op, in
 * float64, tinygrad style. `forward` maps input tensors to output tensors;
 * `backward` maps the output gradients (and the forward's inputs and outputs) to
 * one gradient per input (`undefined` for inputs that are not differentiable,
 * such as shapes and indices).
 *
 * NOTE: every value, including int64 shapes and indices, is held as a float64
 * tensor; integer-valued tensors never receive gradients.
 *
 * @module
 */

import type { Attr, Node } from "../ir.ts";
import type { Window2d } from "../exec/ops/_conv_geom.ts";
import {
  add,
  broadcastShape,
  erf,
  expand,
  invPerm,
  map,
  mm,
  normAxis,
  size,
  strides,
  sumAxes,
  type T64,
  transpose,
  unbroadcast,
  zeros,
  zip,
} from "./_t64.ts";

export type { T64 } from "./_t64.ts";

/** Forward and backward of one op. */
export interface OpImpl {
  /** Computes the outputs from the inputs (`undefined` for omitted optional inputs). */
  forward(inputs: readonly (T64 | undefined)[], node: Node): T64[];
  /** Gradients of the inputs given the gradients of the outputs (`undefined` where zero). */
  backward(
    gradOut: readonly (T64 | undefined)[],
    inputs: readonly (T64 | undefined)[],
    outputs: readonly T64[],
    node: Node,
  ): (T64 | undefined)[];
}

/** The ops the autodiff interpreter knows. */
export type OpName =
  | "Identity"
  | "Dropout"
  | "Cast"
  | "Constant"
  | "Shape"
  | "Add"
  | "Sub"
  | "Mul"
  | "Div"
  | "Pow"
  | "Neg"
  | "Sqrt"
  | "Exp"
  | "Relu"
  | "Sigmoid"
  | "Tanh"
  | "Erf"
  | "Gelu"
  | "Softmax"
  | "LogSoftmax"
  | "MatMul"
  | "Gemm"
  | "Conv"
  | "MaxPool"
  | "AveragePool"
  | "GlobalAveragePool"
  | "BatchNormalization"
  | "LayerNormalization"
  | "Reshape"
  | "Flatten"
  | "Transpose"
  | "Squeeze"
  | "Unsqueeze"
  | "Concat"
  | "Split"
  | "Slice"
  | "Gather"
  | "ReduceMean"
  | "ReduceSum";

// *** attributes ***

function attrInt(node: Node, name: string, dflt: number): number {
  const a: Attr | undefined = node.attrs[name];
  return a && a.kind === "int" ? a.value : dflt;
}

function attrFloat(node: Node, name: string, dflt: number): number {
  const a: Attr | undefined = node.attrs[name];
  return a && a.kind === "float" ? a.value : dflt;
}

function attrInts(node: Node, name: string): number[] | undefined {
  const a: Attr | undefined = node.attrs[name];
  return a && a.kind === "ints" ? a.value : undefined;
}

function attrString(node: Node, name: string, dflt: string): string {
  const a: Attr | undefined = node.attrs[name];
  return a && a.kind === "string" ? a.value : dflt;
}

function ints(t: T64 | undefined): number[] | undefined {
  return t ? Array.from(t.data) : undefined;
}

function req(t: T64 | undefined, what: string): T64 {
  if (!t) throw new RangeError(`missing input ${what}`);
  return t;
}

// *** elementwise ***

function unary(f: (x: number) => number, df: (x: number, y: number) => number): OpImpl {
  return {
    forward: ([x]) => [map(req(x, "X"), f)],
    backward: ([g], [x], [y]) => {
      if (!g) return [undefined];
      const out = new Float64Array(g.data.length);
      for (let i = 0; i < out.length; i++) out[i] = g.data[i] * df(x!.data[i], y.data[i]);
      return [{ shape: [...g.shape], data: out }];
    },
  };
}

function binary(
  f: (a: number, b: number) => number,
  da: (a: number, b: number, y: number) => number,
  db: (a: number, b: number, y: number) => number,
): OpImpl {
  return {
    forward: ([a, b]) => [zip(req(a, "A"), req(b, "B"), f)],
    backward: ([g], [a, b], [y]) => {
      if (!g) return [undefined, undefined];
      const ea = expand(a!, y.shape), eb = expand(b!, y.shape);
      const ga = new Float64Array(g.data.length), gb = new Float64Array(g.data.length);
      for (let i = 0; i < ga.length; i++) {
        ga[i] = g.data[i] * da(ea.data[i], eb.data[i], y.data[i]);
        gb[i] = g.data[i] * db(ea.data[i], eb.data[i], y.data[i]);
      }
      return [
        unbroadcast({ shape: y.shape, data: ga }, a!.shape),
        unbroadcast({ shape: y.shape, data: gb }, b!.shape),
      ];
    },
  };
}

const passThrough: OpImpl = {
  forward: ([x]) => [req(x, "X")],
  backward: ([g]) => [g],
};

const noGrad = (n: number): (T64 | undefined)[] => new Array(n).fill(undefined);

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

// *** softmax family (over one axis) ***

function axisLoop(
  shape: readonly number[],
  axis: number,
  f: (base: number, stride: number, len: number) => void,
): void {
  const len = shape[axis];
  const inner = size(shape.slice(axis + 1));
  const outer = size(shape.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) f(o * len * inner + i, inner, len);
  }
}

function softmax(x: T64, axis: number, log: boolean): T64 {
  const out = new Float64Array(x.data.length);
  axisLoop(x.shape, axis, (b, s, n) => {
    let m = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, x.data[b + k * s]);
    let z = 0;
    for (let k = 0; k < n; k++) z += Math.exp(x.data[b + k * s] - m);
    const lz = Math.log(z);
    for (let k = 0; k < n; k++) {
      const v = x.data[b + k * s] - m;
      out[b + k * s] = log ? v - lz : Math.exp(v - lz);
    }
  });
  return { shape: [...x.shape], data: out };
}

// *** matrix products ***

/** Batched matmul with numpy semantics; returns the product and the promoted shapes. */
function matmul(a: T64, b: T64): T64 {
  if (a.shape.length >= 2 && b.shape.length === 2) {
    // NOTE: a batched left operand times a matrix is one product over the flattened rows.
    const k = a.shape[a.shape.length - 1], n = b.shape[1];
    if (b.shape[0] !== k) throw new RangeError(`MatMul: [${a.shape}] × [${b.shape}]`);
    const rows = a.data.length / k;
    return { shape: [...a.shape.slice(0, -1), n], data: mm(a.data, b.data, rows, k, n) };
  }
  if (a.shape.length === 2 && b.shape.length === 2) {
    const [m, k] = a.shape, n = b.shape[1];
    if (b.shape[0] !== k) throw new RangeError(`MatMul: [${a.shape}] × [${b.shape}]`);
    return { shape: [m, n], data: mm(a.data, b.data, m, k, n) };
  }
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const m = as[as.length - 2], k = as[as.length - 1], n = bs[bs.length - 1];
  if (bs[bs.length - 2] !== k) throw new RangeError(`MatMul: [${a.shape}] × [${b.shape}]`);
  const batch = broadcastShape(as.slice(0, -2), bs.slice(0, -2));
  const ae = expand({ shape: as, data: a.data }, [...batch, m, k]);
  const be = expand({ shape: bs, data: b.data }, [...batch, k, n]);
  const nb = size(batch);
  const out = new Float64Array(nb * m * n);
  for (let i = 0; i < nb; i++) {
    out.set(
      mm(
        ae.data.subarray(i * m * k, (i + 1) * m * k),
        be.data.subarray(i * k * n, (i + 1) * k * n),
        m,
        k,
        n,
      ),
      i * m * n,
    );
  }
  const shape = [...batch, m, n];
  if (a.shape.length === 1) shape.splice(shape.length - 2, 1);
  if (b.shape.length === 1) shape.splice(shape.length - 1, 1);
  return { shape, data: out };
}

function swapLast(t: T64): T64 {
  const r = t.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return transpose(t, perm);
}

function matmulBackward(g: T64, a: T64, b: T64): [T64, T64] {
  if (a.shape.length >= 2 && b.shape.length === 2) {
    const k = a.shape[a.shape.length - 1], n = b.shape[1], rows = a.data.length / k;
    const bt = transpose(b, [1, 0]);
    const ga = mm(g.data, bt.data, rows, n, k);
    const at = transpose({ shape: [rows, k], data: a.data }, [1, 0]);
    const gb = mm(at.data, g.data, k, rows, n);
    return [{ shape: [...a.shape], data: ga }, { shape: [...b.shape], data: gb }];
  }
  // NOTE: promote 1-D operands to matrices so one rule covers every case.
  const a2 = a.shape.length === 1 ? { shape: [1, a.shape[0]], data: a.data } : a;
  const b2 = b.shape.length === 1 ? { shape: [b.shape[0], 1], data: b.data } : b;
  const gs = [...g.shape];
  if (a.shape.length === 1) gs.splice(gs.length - 1, 0, 1);
  if (b.shape.length === 1) gs.push(1);
  const g2 = { shape: gs, data: g.data };
  const ga = unbroadcastBatch(matmul(g2, swapLast(b2)), a2.shape);
  const gb = unbroadcastBatch(matmul(swapLast(a2), g2), b2.shape);
  return [{ shape: [...a.shape], data: ga.data }, { shape: [...b.shape], data: gb.data }];
}

function unbroadcastBatch(g: T64, shape: readonly number[]): T64 {
  if (g.shape.length > shape.length) {
    const lead = g.shape.length - shape.length;
    const inner = size(g.shape.slice(lead));
    const out = new Float64Array(inner);
    for (let i = 0; i < g.data.length; i++) out[i % inner] += g.data[i];
    return unbroadcast({ shape: g.shape.slice(lead), data: out }, shape);
  }
  return unbroadcast(g, shape);
}

// *** convolution and pooling (2-D, NCHW) ***

type Win = Omit<Window2d, "h" | "w" | "pb" | "pr">;

function window(node: Node, h: number, w: number, kh: number, kw: number): Win {
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  if (autoPad !== "NOTSET" && autoPad !== "VALID") {
    throw new RangeError(`auto_pad=${autoPad} is not supported; export with explicit pads`);
  }
  if (attrInt(node, "ceil_mode", 0) !== 0) throw new RangeError("ceil_mode=1 is not supported");
  const [sh, sw] = attrInts(node, "strides") ?? [1, 1];
  const [dh, dw] = attrInts(node, "dilations") ?? [1, 1];
  const [pt, pl, pb, pr] = attrInts(node, "pads") ?? [0, 0, 0, 0];
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  return { kh, kw, sh, sw, dh, dw, pt, pl, oh, ow };
}

function rank4(t: T64, op: string): void {
  if (t.shape.length !== 4) {
    throw new RangeError(`${op}: only 2-D (NCHW) is supported, got rank ${t.shape.length}`);
  }
}

/**
 * im2col gather table of one group: for row (ic, ki, kj) and column (oy, ox),
 * the offset into one sample's group of input channels, or -1 in the padding.
 */
function im2colIndex(xs: readonly number[], ws: readonly number[], win: Win): Int32Array {
  const [, , h, w] = xs;
  const cg = ws[1];
  const p = win.oh * win.ow, k = cg * win.kh * win.kw;
  const idx = new Int32Array(k * p).fill(-1);
  for (let ic = 0; ic < cg; ic++) {
    for (let ki = 0; ki < win.kh; ki++) {
      for (let kj = 0; kj < win.kw; kj++) {
        const r = (ic * win.kh + ki) * win.kw + kj;
        for (let oy = 0; oy < win.oh; oy++) {
          const iy = oy * win.sh - win.pt + ki * win.dh;
          if (iy < 0 || iy >= h) continue;
          for (let ox = 0; ox < win.ow; ox++) {
            const ix = ox * win.sw - win.pl + kj * win.dw;
            if (ix < 0 || ix >= w) continue;
            idx[r * p + oy * win.ow + ox] = (ic * h + iy) * w + ix;
          }
        }
      }
    }
  }
  return idx;
}

/** [m, p] × [k, p]ᵀ → [m, k]. */
function mmABt(a: Float64Array, b: Float64Array, m: number, p: number, k: number): Float64Array {
  const out = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let q = 0; q < p; q++) s += a[i * p + q] * b[j * p + q];
      out[i * k + j] = s;
    }
  }
  return out;
}

/** [m, k]ᵀ × [m, p] → [k, p]. */
function mmAtB(a: Float64Array, b: Float64Array, m: number, k: number, p: number): Float64Array {
  const out = new Float64Array(k * p);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) {
      const av = a[i * k + j];
      if (av === 0) continue;
      for (let q = 0; q < p; q++) out[j * p + q] += av * b[i * p + q];
    }
  }
  return out;
}

interface ConvGeom {
  win: Win;
  group: number;
  idx: Int32Array;
  /** Rows of a group's column matrix: cg·kh·kw. */
  k: number;
  /** Output positions: oh·ow. */
  p: number;
  /** Output channels per group. */
  mg: number;
  /** Input elements per sample and group: cg·h·w. */
  gsz: number;
}

function convGeom(node: Node, x: T64, w: T64): ConvGeom {
  rank4(x, "Conv");
  const win = window(node, x.shape[2], x.shape[3], w.shape[2], w.shape[3]);
  const group = attrInt(node, "group", 1);
  const cg = w.shape[1];
  if (cg * group !== x.shape[1]) {
    throw new RangeError(
      `Conv: ${x.shape[1]} input channels, weight expects ${cg} × ${group} groups`,
    );
  }
  return {
    win,
    group,
    idx: im2colIndex(x.shape, w.shape, win),
    k: cg * win.kh * win.kw,
    p: win.oh * win.ow,
    mg: w.shape[0] / group,
    gsz: cg * x.shape[2] * x.shape[3],
  };
}

function im2col(x: T64, g: ConvGeom, b: number, gi: number): Float64Array {
  const cols = new Float64Array(g.k * g.p);
  const base = (b * g.group + gi) * g.gsz;
  for (let i = 0; i < cols.length; i++) if (g.idx[i] >= 0) cols[i] = x.data[base + g.idx[i]];
  return cols;
}

function poolLoop(
  xs: readonly number[],
  win: Win,
  f: (b: number, yi: number, taps: number[], padded: number) => void,
): void {
  const [n, c, h, w] = xs;
  for (let b = 0; b < n * c; b++) {
    for (let oy = 0; oy < win.oh; oy++) {
      for (let ox = 0; ox < win.ow; ox++) {
        const taps: number[] = [];
        let padded = 0;
        for (let ki = 0; ki < win.kh; ki++) {
          for (let kj = 0; kj < win.kw; kj++) {
            const iy = oy * win.sh - win.pt + ki * win.dh, ix = ox * win.sw - win.pl + kj * win.dw;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) padded++;
            else taps.push((b * h + iy) * w + ix);
          }
        }
        f(b, (b * win.oh + oy) * win.ow + ox, taps, padded);
      }
    }
  }
}

function poolWin(node: Node, x: T64): Win {
  const [kh, kw] = attrInts(node, "kernel_shape") ?? [1, 1];
  return window(node, x.shape[2], x.shape[3], kh, kw);
}

// *** reductions ***

function reduceAxes(node: Node, inputs: readonly (T64 | undefined)[], rank: number): number[] {
  const given = attrInts(node, "axes") ?? ints(inputs[1]);
  if (!given || given.length === 0) {
    return attrInt(node, "noop_with_empty_axes", 0) ? [] : [...Array(rank).keys()];
  }
  return given.map((a) => normAxis(a, rank));
}

function reduce(mean: boolean): OpImpl {
  return {
    forward: (inputs, node) => {
      const x = req(inputs[0], "data");
      const axes = reduceAxes(node, inputs, x.shape.length);
      const s = sumAxes(x, axes);
      const cnt = axes.reduce((p, a) => p * x.shape[a], 1);
      const data = mean ? s.data.map((v) => v / cnt) : s.data;
      const keep = attrInt(node, "keepdims", 1);
      const shape = keep ? s.shape : x.shape.filter((_, i) => !axes.includes(i));
      return [{ shape, data }];
    },
    backward: ([g], inputs, _o, node) => {
      const x = inputs[0]!;
      const axes = reduceAxes(node, inputs, x.shape.length);
      const cnt = axes.reduce((p, a) => p * x.shape[a], 1);
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const gx = expand({ shape: kept, data: g!.data }, x.shape);
      if (mean) { for (let i = 0; i < gx.data.length; i++) gx.data[i] /= cnt; }
      return [gx, ...noGrad(inputs.length - 1)];
    },
  };
}

// *** shape ops ***

function reshapeTo(x: T64, spec: readonly number[], allowZero: boolean): number[] {
  const shape = spec.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  const known = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
  return shape.map((d) => (d === -1 ? x.data.length / known : d));
}

function reshapeOp(
  shapeOf: (inputs: readonly (T64 | undefined)[], node: Node) => number[],
): OpImpl {
  return {
    forward: (inputs, node) => {
      const x = req(inputs[0], "data");
      const shape = shapeOf(inputs, node);
      if (size(shape) !== x.data.length) {
        throw new RangeError(`cannot reshape [${x.shape}] to [${shape}]`);
      }
      return [{ shape, data: x.data }];
    },
    backward: ([g], inputs) => [
      g ? { shape: [...inputs[0]!.shape], data: g.data } : undefined,
      ...noGrad(inputs.length - 1),
    ],
  };
}

function axesOf(node: Node, inputs: readonly (T64 | undefined)[]): number[] | undefined {
  return attrInts(node, "axes") ?? ints(inputs[1]);
}

/** Slice parameters per axis: start, step, count. */
function sliceSpec(
  inputs: readonly (T64 | undefined)[],
): { start: number[]; step: number[]; count: number[] } {
  const x = inputs[0]!;
  const r = x.shape.length;
  const starts = ints(inputs[1])!, ends = ints(inputs[2])!;
  const axes = (ints(inputs[3]) ?? starts.map((_, i) => i)).map((a) => normAxis(a, r));
  const steps = ints(inputs[4]) ?? starts.map(() => 1);
  const start = x.shape.map(() => 0), step = x.shape.map(() => 1), count = [...x.shape];
  axes.forEach((ax, i) => {
    const d = x.shape[ax], st = steps[i];
    let s = starts[i], e = ends[i];
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (st > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
      count[ax] = Math.max(0, Math.ceil((e - s) / st));
    } else {
      s = Math.min(Math.max(s, -1), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
      count[ax] = Math.max(0, Math.ceil((e - s) / st));
    }
    start[ax] = s;
    step[ax] = st;
  });
  return { start, step, count };
}

function sliceIndex(shape: readonly number[], spec: ReturnType<typeof sliceSpec>): Int32Array {
  const n = size(spec.count);
  const idx = new Int32Array(n);
  const st = strides(shape);
  const r = shape.length;
  const c = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (let d = 0; d < r; d++) j += (spec.start[d] + c[d] * spec.step[d]) * st[d];
    idx[i] = j;
    for (let d = r - 1; d >= 0; d--) {
      if (++c[d] < spec.count[d]) break;
      c[d] = 0;
    }
  }
  return idx;
}

/** Splits `x` along `axis` into pieces of the given lengths. */
function splitAxis(x: T64, axis: number, lens: readonly number[]): T64[] {
  const outer = size(x.shape.slice(0, axis)), inner = size(x.shape.slice(axis + 1));
  const d = x.shape[axis];
  let off = 0;
  return lens.map((len) => {
    const out = new Float64Array(outer * len * inner);
    for (let o = 0; o < outer; o++) {
      out.set(x.data.subarray((o * d + off) * inner, (o * d + off + len) * inner), o * len * inner);
    }
    off += len;
    const shape = [...x.shape];
    shape[axis] = len;
    return { shape, data: out };
  });
}

function concatAxis(parts: readonly T64[], axis: number): T64 {
  const shape = [...parts[0].shape];
  shape[axis] = parts.reduce((s, p) => s + p.shape[axis], 0);
  const outer = size(shape.slice(0, axis)), inner = size(shape.slice(axis + 1));
  const out = new Float64Array(size(shape));
  let off = 0;
  for (const p of parts) {
    const len = p.shape[axis];
    for (let o = 0; o < outer; o++) {
      out.set(
        p.data.subarray(o * len * inner, (o + 1) * len * inner),
        (o * shape[axis] + off) * inner,
      );
    }
    off += len;
  }
  return { shape, data: out };
}

function splitLens(node: Node, inputs: readonly (T64 | undefined)[], d: number): number[] {
  const given = attrInts(node, "split") ?? ints(inputs[1]);
  if (given) return given;
  const k = attrInt(node, "num_outputs", node.outputs.length);
  const each = Math.ceil(d / k);
  return Array.from({ length: k }, (_, i) => Math.min(each, d - i * each));
}

function tensorAttr(node: Node): T64 {
  const a = node.attrs["value"];
  if (a && a.kind === "tensor") {
    const d = a.value.data;
    if (Array.isArray(d)) throw new RangeError("string constants are not supported");
    const data = new Float64Array(d.length);
    for (let i = 0; i < d.length; i++) data[i] = Number(d[i]);
    return { shape: [...a.value.shape], data };
  }
  for (const k of ["value_float", "value_int"]) {
    const v = node.attrs[k];
    if (v && (v.kind === "float" || v.kind === "int")) {
      return { shape: [], data: Float64Array.of(v.value) };
    }
  }
  for (const k of ["value_floats", "value_ints"]) {
    const v = node.attrs[k];
    if (v && (v.kind === "floats" || v.kind === "ints")) {
      return { shape: [v.value.length], data: Float64Array.from(v.value) };
    }
  }
  throw new RangeError("Constant without a numeric value attribute");
}

// *** the table ***

/**
 * Every supported op's forward and backward. A missing entry is a compile
 * error, since the table is typed `Record<OpName, OpImpl>`.
 *
 * @example
 * ```ts
 * import { OPS } from "@lowbit/graph/autodiff";
 * const node = { name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const x = { shape: [2], data: Float64Array.of(-1, 2) };
 * const [y] = OPS.Relu.forward([x], node);
 * const [gx] = OPS.Relu.backward([{ shape: [2], data: Float64Array.of(1, 1) }], [x], [y], node);
 * if (y.data[0] !== 0 || gx!.data[0] !== 0 || gx!.data[1] !== 1) throw new Error();
 * ```
 */
export const OPS: Record<OpName, OpImpl> = {
  Identity: passThrough,
  Dropout: {
    forward: ([x]) => [req(x, "data")],
    backward: ([g], inputs) => [g, ...noGrad(inputs.length - 1)],
  },
  Cast: passThrough,
  Constant: { forward: (_i, node) => [tensorAttr(node)], backward: () => [] },
  Shape: {
    forward: ([x], node) => {
      const r = x!.shape.length;
      const s = normAxis(attrInt(node, "start", 0), r);
      const e = node.attrs["end"] ? normAxis(attrInt(node, "end", r), r) : r;
      const dims = x!.shape.slice(Math.max(0, s), Math.min(r, e));
      return [{ shape: [dims.length], data: Float64Array.from(dims) }];
    },
    backward: () => [undefined],
  },

  Add: binary((a, b) => a + b, () => 1, () => 1),
  Sub: binary((a, b) => a - b, () => 1, () => -1),
  Mul: binary((a, b) => a * b, (_a, b) => b, (a) => a),
  Div: binary((a, b) => a / b, (_a, b) => 1 / b, (a, b) => -a / (b * b)),
  Pow: binary(
    (a, b) => Math.pow(a, b),
    (a, b) => (b === 0 ? 0 : b * Math.pow(a, b - 1)),
    (a, _b, y) => (a > 0 ? y * Math.log(a) : 0),
  ),
  Neg: unary((x) => -x, () => -1),
  Sqrt: unary(Math.sqrt, (_x, y) => 0.5 / y),
  Exp: unary(Math.exp, (_x, y) => y),
  Relu: unary((x) => (x > 0 ? x : 0), (x) => (x > 0 ? 1 : 0)),
  Sigmoid: unary((x) => 1 / (1 + Math.exp(-x)), (_x, y) => y * (1 - y)),
  Tanh: unary(Math.tanh, (_x, y) => 1 - y * y),
  Erf: unary(erf, (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x)),
  Gelu: {
    forward: ([x], node) => {
      if (attrString(node, "approximate", "none") === "tanh") {
        const c = Math.sqrt(2 / Math.PI);
        return [map(x!, (v) => 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v))))];
      }
      return [map(x!, (v) => 0.5 * v * (1 + erf(v * SQRT1_2)))];
    },
    backward: ([g], [x], _o, node) => {
      const tanh = attrString(node, "approximate", "none") === "tanh";
      const c = Math.sqrt(2 / Math.PI);
      const d = map(x!, (v) => {
        if (!tanh) return 0.5 * (1 + erf(v * SQRT1_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
        const u = c * (v + 0.044715 * v * v * v), t = Math.tanh(u);
        return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v);
      });
      return [zip(g!, d, (a, b) => a * b)];
    },
  },

  Softmax: {
    forward: (
      [x],
      node,
    ) => [softmax(x!, normAxis(attrInt(node, "axis", -1), x!.shape.length), false)],
    backward: ([g], [x], [y], node) => {
      const out = new Float64Array(y.data.length);
      axisLoop(y.shape, normAxis(attrInt(node, "axis", -1), x!.shape.length), (b, s, n) => {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += g!.data[b + k * s] * y.data[b + k * s];
        for (let k = 0; k < n; k++) out[b + k * s] = y.data[b + k * s] * (g!.data[b + k * s] - dot);
      });
      return [{ shape: [...y.shape], data: out }];
    },
  },
  LogSoftmax: {
    forward: (
      [x],
      node,
    ) => [softmax(x!, normAxis(attrInt(node, "axis", -1), x!.shape.length), true)],
    backward: ([g], [x], [y], node) => {
      const out = new Float64Array(y.data.length);
      axisLoop(y.shape, normAxis(attrInt(node, "axis", -1), x!.shape.length), (b, s, n) => {
        let sum = 0;
        for (let k = 0; k < n; k++) sum += g!.data[b + k * s];
        for (let k = 0; k < n; k++) {
          out[b + k * s] = g!.data[b + k * s] - Math.exp(y.data[b + k * s]) * sum;
        }
      });
      return [{ shape: [...y.shape], data: out }];
    },
  },

  MatMul: {
    forward: ([a, b]) => [matmul(req(a, "A"), req(b, "B"))],
    backward: ([g], [a, b]) => matmulBackward(g!, a!, b!),
  },
  Gemm: {
    forward: ([a, b, c], node) => {
      const ta = attrInt(node, "transA", 0) ? transpose(a!, [1, 0]) : a!;
      const tb = attrInt(node, "transB", 0) ? transpose(b!, [1, 0]) : b!;
      const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
      const y = matmul(ta, tb);
      for (let i = 0; i < y.data.length; i++) y.data[i] *= alpha;
      return [c ? zip(y, c, (u, v) => u + beta * v) : y];
    },
    backward: ([g], [a, b, c], _o, node) => {
      const transA = attrInt(node, "transA", 0), transB = attrInt(node, "transB", 0);
      const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
      const ta = transA ? transpose(a!, [1, 0]) : a!;
      const tb = transB ? transpose(b!, [1, 0]) : b!;
      const [ga, gb] = matmulBackward(g!, ta, tb);
      for (const t of [ga, gb]) for (let i = 0; i < t.data.length; i++) t.data[i] *= alpha;
      const gc = c ? unbroadcast(g!, c.shape) : undefined;
      if (gc) { for (let i = 0; i < gc.data.length; i++) gc.data[i] *= beta; }
      return [transA ? transpose(ga, [1, 0]) : ga, transB ? transpose(gb, [1, 0]) : gb, gc];
    },
  },

  Conv: {
    forward: ([x, w, b], node) => {
      const g = convGeom(node, x!, w!);
      const n = x!.shape[0], m = w!.shape[0];
      const y = zeros([n, m, g.win.oh, g.win.ow]);
      for (let bi = 0; bi < n; bi++) {
        for (let gi = 0; gi < g.group; gi++) {
          const wg = w!.data.subarray(gi * g.mg * g.k, (gi + 1) * g.mg * g.k);
          const yg = mm(wg, im2col(x!, g, bi, gi), g.mg, g.k, g.p);
          y.data.set(yg, (bi * m + gi * g.mg) * g.p);
        }
      }
      if (b) {
        for (let i = 0; i < y.data.length; i++) y.data[i] += b.data[Math.floor(i / g.p) % m];
      }
      return [y];
    },
    backward: ([gy], [x, w, b], _o, node) => {
      const g = convGeom(node, x!, w!);
      const n = x!.shape[0], m = w!.shape[0];
      const gx = zeros(x!.shape), gw = zeros(w!.shape);
      for (let bi = 0; bi < n; bi++) {
        for (let gi = 0; gi < g.group; gi++) {
          const dy = gy!.data.subarray(
            (bi * m + gi * g.mg) * g.p,
            (bi * m + (gi + 1) * g.mg) * g.p,
          );
          const cols = im2col(x!, g, bi, gi);
          const dw = mmABt(dy, cols, g.mg, g.p, g.k);
          const wOff = gi * g.mg * g.k;
          for (let i = 0; i < dw.length; i++) gw.data[wOff + i] += dw[i];
          const wg = w!.data.subarray(wOff, wOff + g.mg * g.k);
          const dcols = mmAtB(wg, dy, g.mg, g.k, g.p);
          const base = (bi * g.group + gi) * g.gsz;
          for (let i = 0; i < dcols.length; i++) {
            if (g.idx[i] >= 0) gx.data[base + g.idx[i]] += dcols[i];
          }
        }
      }
      let gb: T64 | undefined;
      if (b) {
        gb = zeros(b.shape);
        for (let i = 0; i < gy!.data.length; i++) gb.data[Math.floor(i / g.p) % m] += gy!.data[i];
      }
      return [gx, gw, gb];
    },
  },
  MaxPool: {
    forward: ([x], node) => {
      rank4(x!, "MaxPool");
      const win = poolWin(node, x!);
      const y = zeros([x!.shape[0], x!.shape[1], win.oh, win.ow]);
      poolLoop(x!.shape, win, (_b, yi, taps) => {
        let m = -Infinity;
        for (const t of taps) m = Math.max(m, x!.data[t]);
        y.data[yi] = m;
      });
      return [y];
    },
    backward: ([g], [x], _o, node) => {
      const win = poolWin(node, x!);
      const gx = zeros(x!.shape);
      poolLoop(x!.shape, win, (_b, yi, taps) => {
        let best = taps[0];
        for (const t of taps) if (x!.data[t] > x!.data[best]) best = t;
        gx.data[best] += g!.data[yi];
      });
      return [gx];
    },
  },
  AveragePool: {
    forward: ([x], node) => {
      rank4(x!, "AveragePool");
      const win = poolWin(node, x!);
      const inc = attrInt(node, "count_include_pad", 0);
      const y = zeros([x!.shape[0], x!.shape[1], win.oh, win.ow]);
      poolLoop(x!.shape, win, (_b, yi, taps, padded) => {
        let s = 0;
        for (const t of taps) s += x!.data[t];
        y.data[yi] = s / (taps.length + (inc ? padded : 0));
      });
      return [y];
    },
    backward: ([g], [x], _o, node) => {
      const win = poolWin(node, x!);
      const inc = attrInt(node, "count_include_pad", 0);
      const gx = zeros(x!.shape);
      poolLoop(x!.shape, win, (_b, yi, taps, padded) => {
        const d = g!.data[yi] / (taps.length + (inc ? padded : 0));
        for (const t of taps) gx.data[t] += d;
      });
      return [gx];
    },
  },
  GlobalAveragePool: {
    forward: ([x]) => {
      const axes = x!.shape.map((_, i) => i).filter((i) => i >= 2);
      const s = sumAxes(x!, axes);
      const cnt = size(x!.shape.slice(2));
      return [{ shape: s.shape, data: s.data.map((v) => v / cnt) }];
    },
    backward: ([g], [x]) => {
      const cnt = size(x!.shape.slice(2));
      const gx = expand(g!, x!.shape);
      for (let i = 0; i < gx.data.length; i++) gx.data[i] /= cnt;
      return [gx];
    },
  },

  BatchNormalization: {
    forward: ([x, scale, bias, mean, variance], node) => {
      const eps = attrFloat(node, "epsilon", 1e-5);
      const c = x!.shape[1], hw = size(x!.shape.slice(2));
      const y = new Float64Array(x!.data.length);
      for (let i = 0; i < y.length; i++) {
        const k = Math.floor(i / hw) % c;
        y[i] =
          ((x!.data[i] - mean!.data[k]) / Math.sqrt(variance!.data[k] + eps)) * scale!.data[k] +
          bias!.data[k];
      }
      return [{ shape: [...x!.shape], data: y }];
    },
    backward: ([g], [x, scale, _bias, mean, variance], _o, node) => {
      const eps = attrFloat(node, "epsilon", 1e-5);
      const c = x!.shape[1], hw = size(x!.shape.slice(2));
      const gx = zeros(x!.shape),
        gs = zeros([c]),
        gb = zeros([c]),
        gm = zeros([c]),
        gv = zeros([c]);
      for (let i = 0; i < gx.data.length; i++) {
        const k = Math.floor(i / hw) % c;
        const inv = 1 / Math.sqrt(variance!.data[k] + eps), xc = x!.data[i] - mean!.data[k];
        const gi = g!.data[i];
        gx.data[i] = gi * scale!.data[k] * inv;
        gs.data[k] += gi * xc * inv;
        gb.data[k] += gi;
        gm.data[k] -= gi * scale!.data[k] * inv;
        gv.data[k] += gi * xc * scale!.data[k] * -0.5 * inv * inv * inv;
      }
      return [gx, gs, gb, gm, gv];
    },
  },
  LayerNormalization: {
    forward: ([x, scale, bias], node) => {
      const axis = normAxis(attrInt(node, "axis", -1), x!.shape.length);
      const eps = attrFloat(node, "epsilon", 1e-5);
      const n = size(x!.shape.slice(axis)), rows = x!.data.length / n;
      const xhat = new Float64Array(x!.data.length);
      for (let r = 0; r < rows; r++) {
        let mu = 0;
        for (let i = 0; i < n; i++) mu += x!.data[r * n + i];
        mu /= n;
        let v = 0;
        for (let i = 0; i < n; i++) v += (x!.data[r * n + i] - mu) ** 2;
        const inv = 1 / Math.sqrt(v / n + eps);
        for (let i = 0; i < n; i++) xhat[r * n + i] = (x!.data[r * n + i] - mu) * inv;
      }
      let y = zip({ shape: [...x!.shape], data: xhat }, scale!, (a, s) => a * s);
      if (bias) y = add(y, bias);
      return [y];
    },
    backward: ([g], [x, scale, bias], _o, node) => {
      const axis = normAxis(attrInt(node, "axis", -1), x!.shape.length);
      const eps = attrFloat(node, "epsilon", 1e-5);
      const n = size(x!.shape.slice(axis)), rows = x!.data.length / n;
      const dxhat = zip(g!, scale!, (a, s) => a * s);
      const xhat = new Float64Array(x!.data.length), gx = new Float64Array(x!.data.length);
      for (let r = 0; r < rows; r++) {
        let mu = 0;
        for (let i = 0; i < n; i++) mu += x!.data[r * n + i];
        mu /= n;
        let v = 0;
        for (let i = 0; i < n; i++) v += (x!.data[r * n + i] - mu) ** 2;
        const inv = 1 / Math.sqrt(v / n + eps);
        let m1 = 0, m2 = 0;
        for (let i = 0; i < n; i++) {
          const j = r * n + i;
          xhat[j] = (x!.data[j] - mu) * inv;
          m1 += dxhat.data[j];
          m2 += dxhat.data[j] * xhat[j];
        }
        m1 /= n;
        m2 /= n;
        for (let i = 0; i < n; i++) {
          const j = r * n + i;
          gx[j] = inv * (dxhat.data[j] - m1 - xhat[j] * m2);
        }
      }
      const gs = unbroadcast(
        zip(g!, { shape: [...x!.shape], data: xhat }, (a, b) => a * b),
        scale!.shape,
      );
      return [
        { shape: [...x!.shape], data: gx },
        gs,
        bias ? unbroadcast(g!, bias.shape) : undefined,
      ];
    },
  },

  Reshape: reshapeOp((inputs, node) =>
    reshapeTo(inputs[0]!, ints(inputs[1])!, attrInt(node, "allowzero", 0) === 1)
  ),
  Flatten: reshapeOp(([x], node) => {
    const axis = normAxis(attrInt(node, "axis", 1), x!.shape.length);
    return [size(x!.shape.slice(0, axis)), size(x!.shape.slice(axis))];
  }),
  Squeeze: reshapeOp((inputs, node) => {
    const x = inputs[0]!;
    const axes = axesOf(node, inputs)?.map((a) => normAxis(a, x.shape.length));
    return x.shape.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
  }),
  Unsqueeze: reshapeOp((inputs, node) => {
    const x = inputs[0]!;
    const r = x.shape.length + axesOf(node, inputs)!.length;
    const axes = axesOf(node, inputs)!.map((a) => normAxis(a, r));
    const shape: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) shape.push(axes.includes(i) ? 1 : x.shape[k++]);
    return shape;
  }),
  Transpose: {
    forward: ([x], node) => {
      const perm = attrInts(node, "perm") ?? [...x!.shape.keys()].reverse();
      return [transpose(x!, perm)];
    },
    backward: ([g], [x], _o, node) => {
      const perm = attrInts(node, "perm") ?? [...x!.shape.keys()].reverse();
      return [transpose(g!, invPerm(perm))];
    },
  },
  Concat: {
    forward: (inputs, node) => {
      const parts = inputs.filter((t): t is T64 => t !== undefined);
      return [concatAxis(parts, normAxis(attrInt(node, "axis", 0), parts[0].shape.length))];
    },
    backward: ([g], inputs, _o, node) => {
      const axis = normAxis(attrInt(node, "axis", 0), g!.shape.length);
      const pieces = splitAxis(g!, axis, inputs.map((t) => t!.shape[axis]));
      return pieces;
    },
  },
  Split: {
    forward: (inputs, node) => {
      const x = inputs[0]!;
      const axis = normAxis(attrInt(node, "axis", 0), x.shape.length);
      return splitAxis(x, axis, splitLens(node, inputs, x.shape[axis]));
    },
    backward: (gs, inputs, outputs, node) => {
      const x = inputs[0]!;
      const axis = normAxis(attrInt(node, "axis", 0), x.shape.length);
      const parts = outputs.map((o, i) => gs[i] ?? zeros(o.shape));
      return [concatAxis(parts, axis), ...noGrad(inputs.length - 1)];
    },
  },
  Slice: {
    forward: (inputs) => {
      const x = inputs[0]!;
      const spec = sliceSpec(inputs);
      const idx = sliceIndex(x.shape, spec);
      const out = new Float64Array(idx.length);
      for (let i = 0; i < idx.length; i++) out[i] = x.data[idx[i]];
      return [{ shape: spec.count, data: out }];
    },
    backward: ([g], inputs) => {
      const x = inputs[0]!;
      const idx = sliceIndex(x.shape, sliceSpec(inputs));
      const gx = zeros(x.shape);
      for (let i = 0; i < idx.length; i++) gx.data[idx[i]] += g!.data[i];
      return [gx, ...noGrad(inputs.length - 1)];
    },
  },
  Gather: {
    forward: ([x, ind], node) => {
      const axis = normAxis(attrInt(node, "axis", 0), x!.shape.length);
      const outer = size(x!.shape.slice(0, axis)), inner = size(x!.shape.slice(axis + 1));
      const d = x!.shape[axis], k = ind!.data.length;
      const out = new Float64Array(outer * k * inner);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < k; j++) {
          const i = ind!.data[j] < 0 ? ind!.data[j] + d : ind!.data[j];
          out.set(
            x!.data.subarray((o * d + i) * inner, (o * d + i + 1) * inner),
            (o * k + j) * inner,
          );
        }
      }
      return [{
        shape: [...x!.shape.slice(0, axis), ...ind!.shape, ...x!.shape.slice(axis + 1)],
        data: out,
      }];
    },
    backward: ([g], [x, ind], _o, node) => {
      const axis = normAxis(attrInt(node, "axis", 0), x!.shape.length);
      const outer = size(x!.shape.slice(0, axis)), inner = size(x!.shape.slice(axis + 1));
      const d = x!.shape[axis], k = ind!.data.length;
      const gx = zeros(x!.shape);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < k; j++) {
          const i = ind!.data[j] < 0 ? ind!.data[j] + d : ind!.data[j];
          for (let e = 0; e < inner; e++) {
            gx.data[(o * d + i) * inner + e] += g!.data[(o * k + j) * inner + e];
          }
        }
      }
      return [gx, undefined];
    },
  },
  ReduceMean: reduce(true),
  ReduceSum: reduce(false),
};

/**
 * Whether `op` has an entry in {@link OPS}.
 *
 * @param op ONNX op type
 * @returns true when the autodiff interpreter can run and differentiate it
 *
 * @example
 * ```ts
 * import { isDifferentiableOp } from "@lowbit/graph/autodiff";
 * if (!isDifferentiableOp("Conv") || isDifferentiableOp("NonMaxSuppression")) throw new Error();
 * ```
 */
export function isDifferentiableOp(op: string): op is OpName {
  return Object.hasOwn(OPS, op);
}

/**
 * The executor's ops that autodiff runs forward only (through the executor's own float32
 * implementation): values flow through them, gradients do not, and a metric that needs a
 * gradient through one falls back to one that does not. Every op the executor runs is either
 * differentiable ({@link isDifferentiableOp}) or listed here (a test checks it).
 */
export const FORWARD_ONLY_OPS: ReadonlySet<string> = new Set([
  "Abs",
  "Acos",
  "Acosh",
  "And",
  "ArgMax",
  "ArgMin",
  "Asin",
  "Asinh",
  "Atan",
  "Atanh",
  "BitShift",
  "BitwiseAnd",
  "BitwiseNot",
  "BitwiseOr",
  "BitwiseXor",
  "BlackmanWindow",
  "CastLike",
  "Ceil",
  "Celu",
  "Clip",
  "Compress",
  "ConstantOfShape",
  "ConvInteger",
  "ConvTranspose",
  "Cos",
  "Cosh",
  "CumSum",
  "DFT",
  "DepthToSpace",
  "DequantizeLinear",
  "Det",
  "DynamicQuantizeLinear",
  "Einsum",
  "Elu",
  "Equal",
  "Expand",
  "EyeLike",
  "Floor",
  "GRU",
  "GatherElements",
  "GatherND",
  "GlobalLpPool",
  "GlobalMaxPool",
  "Greater",
  "GreaterOrEqual",
  "GridSample",
  "GroupNormalization",
  "HammingWindow",
  "HannWindow",
  "HardSigmoid",
  "HardSwish",
  "Hardmax",
  "If",
  "InstanceNormalization",
  "IsInf",
  "IsNaN",
  "LRN",
  "LSTM",
  "LeakyRelu",
  "Less",
  "LessOrEqual",
  "Log",
  "Loop",
  "LpNormalization",
  "LpPool",
  "MatMulInteger",
  "Max",
  "MaxUnpool",
  "Mean",
  "MeanVarianceNormalization",
  "MelWeightMatrix",
  "Min",
  "Mish",
  "Mod",
  "NegativeLogLikelihoodLoss",
  "NonMaxSuppression",
  "NonZero",
  "Not",
  "OneHot",
  "Or",
  "PRelu",
  "Pad",
  "QLinearConv",
  "QLinearMatMul",
  "QuantizeLinear",
  "RNN",
  "Range",
  "Reciprocal",
  "ReduceL1",
  "ReduceL2",
  "ReduceLogSum",
  "ReduceLogSumExp",
  "ReduceMax",
  "ReduceMin",
  "ReduceProd",
  "ReduceSumSquare",
  "Resize",
  "ReverseSequence",
  "RoiAlign",
  "Round",
  "STFT",
  "Scan",
  "Scatter",
  "ScatterElements",
  "ScatterND",
  "Selu",
  "Shrink",
  "Sign",
  "Sin",
  "Sinh",
  "Size",
  "SoftmaxCrossEntropyLoss",
  "Softplus",
  "Softsign",
  "SpaceToDepth",
  "StringNormalizer",
  "Sum",
  "Tan",
  "TfIdfVectorizer",
  "ThresholdedRelu",
  "Tile",
  "TopK",
  "Trilu",
  "Unique",
  "Upsample",
  "Where",
  "Xor",
]);
