// Built-in evaluation of the shape-arithmetic ops on constant tensors, used by
// constant folding and shape inference. Works on small tensors as plain number
// arrays; returns undefined when it cannot (unsupported op or dtype, too big).

import type { Attr, DType, Node, TensorData } from "../ir.ts";
import { elementCount, fromFloat32, toFloat32 } from "../tensor_data.ts";
import { strides } from "../exec/_tensor.ts";

/** Largest tensor the built-in evaluator produces (elements). */
export const FOLD_LIMIT = 1 << 20;

/** Attribute helpers. */
export function attrInt(n: Node, name: string, dflt: number): number {
  const a = n.attrs[name];
  return a?.kind === "int" ? a.value : dflt;
}
export function attrInts(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a?.kind === "ints" ? a.value : undefined;
}
export function attrFloats(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a?.kind === "floats" ? a.value : undefined;
}
export function attrString(n: Node, name: string, dflt: string): string {
  const a = n.attrs[name];
  return a?.kind === "string" ? a.value : dflt;
}

/** ONNX TensorProto data type codes → IR dtypes (for Cast `to`, ConstantOfShape...). */
export const DTYPE_BY_CODE: Record<number, DType> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
  17: "float8e4m3fn",
  19: "float8e5m2",
  21: "uint4",
  22: "int4",
};

/** The elements of a numeric tensor as numbers. */
export function nums(t: TensorData): number[] {
  const d = t.data;
  if (Array.isArray(d)) throw new Error("string tensor");
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, Number);
  if (d instanceof Uint16Array && t.dtype !== "uint16") return Array.from(toFloat32(t));
  if (t.dtype.startsWith("float8")) return Array.from(toFloat32(t));
  return Array.from(d as ArrayLike<number>);
}

/** Numbers → a tensor of `dtype` (int64 clamped to its range). */
export function make(dtype: DType, shape: number[], v: number[]): TensorData {
  if (dtype === "int64" || dtype === "uint64") {
    const lo = dtype === "int64" ? -(2n ** 63n) : 0n;
    const hi = dtype === "int64" ? 2n ** 63n - 1n : 2n ** 64n - 1n;
    const big = v.map((x) => {
      if (Number.isNaN(x)) return 0n;
      if (x === Infinity) return hi;
      if (x === -Infinity) return lo;
      const b = BigInt(Math.trunc(x));
      return b < lo ? lo : b > hi ? hi : b;
    });
    return {
      dtype,
      shape,
      data: dtype === "int64" ? BigInt64Array.from(big) : BigUint64Array.from(big),
    };
  }
  if (dtype === "float64") return { dtype, shape, data: Float64Array.from(v) };
  return fromFloat32(v, shape, dtype);
}

/** Broadcast output shape, or undefined when the shapes do not broadcast. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

function expandTo(v: number[], shape: readonly number[], out: readonly number[]): number[] {
  const n = elementCount(out);
  const r = out.length;
  const st: number[] = new Array(r).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[r - shape.length + i] = shape[i] === 1 ? 0 : acc;
    acc *= shape[i];
  }
  const res = new Array<number>(n);
  const idx = new Array<number>(r).fill(0);
  for (let k = 0; k < n; k++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += idx[i] * st[i];
    res[k] = v[off];
    for (let i = r - 1; i >= 0; i--) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return res;
}

const isInt = (d: DType): boolean => !d.startsWith("float") && d !== "bfloat16";

const BINARY: Record<string, (a: number, b: number, int: boolean) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b, int) => (int ? (b === 0 ? 0 : Math.trunc(a / b)) : a / b),
  Min: (a, b) => Math.min(a, b),
  Max: (a, b) => Math.max(a, b),
  Pow: (a, b) => a ** b,
  Mod: (a, b) => (b === 0 ? 0 : a - Math.floor(a / b) * b),
  Equal: (a, b) => (a === b ? 1 : 0),
  Less: (a, b) => (a < b ? 1 : 0),
  LessOrEqual: (a, b) => (a <= b ? 1 : 0),
  Greater: (a, b) => (a > b ? 1 : 0),
  GreaterOrEqual: (a, b) => (a >= b ? 1 : 0),
  And: (a, b) => (a && b ? 1 : 0),
  Or: (a, b) => (a || b ? 1 : 0),
};
const UNARY: Record<string, (a: number) => number> = {
  Neg: (a) => -a,
  Abs: Math.abs,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Sqrt: Math.sqrt,
  Not: (a) => (a ? 0 : 1),
  Reciprocal: (a) => 1 / a,
  Relu: (a) => Math.max(a, 0),
  Sign: Math.sign,
};
const CMP = new Set([
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "And",
  "Or",
  "Not",
]);

/** Normalises a possibly negative axis; undefined when out of range. */
export function normAxis(a: number, rank: number): number | undefined {
  const x = a < 0 ? a + rank : a;
  return x >= 0 && x < rank ? x : undefined;
}

/** Computed [start, count, step] of one Slice axis, with ONNX's clamping. */
export function sliceRange(dim: number, s: number, e: number, step: number): [number, number] {
  if (s < 0) s += dim;
  if (e < 0) e += dim;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  return [s, Math.max(0, Math.ceil((e - s) / step))];
}

/** Tensor value of a Constant node, or undefined. */
export function constantValue(n: Node): TensorData | undefined {
  for (const [k, a] of Object.entries(n.attrs) as [string, Attr][]) {
    if (k === "value" && a.kind === "tensor") return a.value;
    if (k === "value_float" && a.kind === "float") return make("float32", [], [a.value]);
    if (k === "value_floats" && a.kind === "floats") {
      return make("float32", [a.value.length], a.value);
    }
    if (k === "value_int" && a.kind === "int") return make("int64", [], [a.value]);
    if (k === "value_ints" && a.kind === "ints") return make("int64", [a.value.length], a.value);
    if (k === "value_string" && a.kind === "string") {
      return { dtype: "string", shape: [], data: [a.value] };
    }
    if (k === "value_strings" && a.kind === "strings") {
      return { dtype: "string", shape: [a.value.length], data: [...a.value] };
    }
  }
  return undefined;
}

/**
 * Evaluates `node` on constant inputs (undefined for omitted optional ones).
 * Returns one tensor per output, or undefined when not supported.
 */
export function evalConst(
  node: Node,
  inputs: readonly (TensorData | undefined)[],
): TensorData[] | undefined {
  try {
    return evalInner(node, inputs);
  } catch {
    return undefined;
  }
}

function evalInner(
  node: Node,
  inputs: readonly (TensorData | undefined)[],
): TensorData[] | undefined {
  if (node.domain !== "" && node.domain !== "ai.onnx") return undefined;
  if (inputs.some((t) => t?.dtype === "string") && node.op !== "Identity") return undefined;
  const x = inputs[0];
  const op = node.op;
  const ok = (t: TensorData): TensorData[] | undefined =>
    t.data.length <= FOLD_LIMIT ? [t] : undefined;
  if (op === "Constant") {
    const v = constantValue(node);
    return v ? [v] : undefined;
  }
  if (!x && op !== "Range") return undefined;
  switch (op) {
    case "Identity":
      return [x!];
    case "Shape": {
      const r = x!.shape.length;
      const s = normStart(attrInt(node, "start", 0), r);
      const e = normStart(attrInt(node, "end", r), r);
      return [make("int64", [Math.max(0, e - s)], x!.shape.slice(s, e))];
    }
    case "Size":
      return [make("int64", [], [x!.data.length])];
    case "Cast": {
      const to = DTYPE_BY_CODE[attrInt(node, "to", 1)];
      if (!to) return undefined;
      return ok(make(to, [...x!.shape], nums(x!)));
    }
    case "Reshape": {
      const shape = computeReshape(x!.shape, nums(inputs[1]!), attrInt(node, "allowzero", 0));
      if (!shape || elementCount(shape) !== x!.data.length) return undefined;
      return [{ ...x!, shape }];
    }
    case "Flatten": {
      const r = x!.shape.length;
      let a = attrInt(node, "axis", 1);
      if (a < 0) a += r;
      const outer = elementCount(x!.shape.slice(0, a));
      return [{ ...x!, shape: [outer, elementCount(x!.shape.slice(a))] }];
    }
    case "Squeeze":
    case "Unsqueeze": {
      const axes = inputs[1] ? nums(inputs[1]) : attrInts(node, "axes");
      const shape = op === "Squeeze"
        ? squeezeShape(x!.shape, axes)
        : unsqueezeShape(x!.shape, axes!);
      if (!shape) return undefined;
      return [{ ...x!, shape }];
    }
    case "Concat": {
      const ts = inputs.filter((t): t is TensorData => !!t);
      const r = ts[0].shape.length;
      const axis = normAxis(attrInt(node, "axis", 0), r);
      if (axis === undefined) return undefined;
      const shape = [...ts[0].shape];
      shape[axis] = ts.reduce((a, t) => a + t.shape[axis], 0);
      const outer = elementCount(shape.slice(0, axis));
      const out: number[] = [];
      const vs = ts.map(nums);
      for (let o = 0; o < outer; o++) {
        ts.forEach((t, k) => {
          const blk = elementCount(t.shape.slice(axis));
          for (let i = 0; i < blk; i++) out.push(vs[k][o * blk + i]);
        });
      }
      return ok(make(ts[0].dtype, shape, out));
    }
    case "Gather": {
      const idx = inputs[1]!;
      const r = x!.shape.length;
      const axis = normAxis(attrInt(node, "axis", 0), r);
      if (axis === undefined) return undefined;
      const dim = x!.shape[axis];
      const iv = nums(idx).map((i) => (i < 0 ? i + dim : i));
      if (iv.some((i) => i < 0 || i >= dim)) return undefined;
      const outer = elementCount(x!.shape.slice(0, axis));
      const inner = elementCount(x!.shape.slice(axis + 1));
      const v = nums(x!);
      const out: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const i of iv) for (let k = 0; k < inner; k++) out.push(v[(o * dim + i) * inner + k]);
      }
      const shape = [...x!.shape.slice(0, axis), ...idx.shape, ...x!.shape.slice(axis + 1)];
      return ok(make(x!.dtype, shape, out));
    }
    case "Slice": {
      const r = x!.shape.length;
      let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
      if (inputs.length > 1) {
        starts = nums(inputs[1]!);
        ends = nums(inputs[2]!);
        axes = inputs[3] ? nums(inputs[3]) : undefined;
        steps = inputs[4] ? nums(inputs[4]) : undefined;
      } else {
        starts = attrInts(node, "starts")!;
        ends = attrInts(node, "ends")!;
        axes = attrInts(node, "axes");
      }
      axes ??= starts.map((_, i) => i);
      const begin = new Array(r).fill(0), step = new Array(r).fill(1), shape = [...x!.shape];
      axes.forEach((a0, i) => {
        const a = normAxis(a0, r)!;
        const st = steps?.[i] ?? 1;
        if (st === 0 || a === undefined) throw new Error("bad slice");
        const [s, c] = sliceRange(x!.shape[a], starts[i], ends[i], st);
        begin[a] = s;
        step[a] = st;
        shape[a] = c;
      });
      const v = nums(x!), sx = strides(x!.shape), n = elementCount(shape);
      const out = new Array<number>(n);
      const idx = new Array(r).fill(0);
      for (let k = 0; k < n; k++) {
        let off = 0;
        for (let i = 0; i < r; i++) off += (begin[i] + idx[i] * step[i]) * sx[i];
        out[k] = v[off];
        for (let i = r - 1; i >= 0; i--) {
          if (++idx[i] < shape[i]) break;
          idx[i] = 0;
        }
      }
      return ok(make(x!.dtype, shape, out));
    }
    case "Transpose": {
      const r = x!.shape.length;
      const perm = attrInts(node, "perm") ?? [...Array(r).keys()].reverse();
      const shape = perm.map((p) => x!.shape[p]);
      const v = nums(x!), sx = strides(x!.shape), n = v.length;
      const out = new Array<number>(n);
      const idx = new Array(r).fill(0);
      for (let k = 0; k < n; k++) {
        let off = 0;
        for (let i = 0; i < r; i++) off += idx[i] * sx[perm[i]];
        out[k] = v[off];
        for (let i = r - 1; i >= 0; i--) {
          if (++idx[i] < shape[i]) break;
          idx[i] = 0;
        }
      }
      return ok(make(x!.dtype, shape, out));
    }
    case "ConstantOfShape": {
      const shape = nums(x!);
      const n = elementCount(shape);
      if (n > FOLD_LIMIT) return undefined;
      const a = node.attrs.value;
      const fill = a?.kind === "tensor" ? a.value : make("float32", [1], [0]);
      return [make(fill.dtype, shape, new Array(n).fill(nums(fill)[0] ?? 0))];
    }
    case "Expand": {
      const target = nums(inputs[1]!);
      const shape = broadcastShape(x!.shape, target);
      if (!shape || elementCount(shape) > FOLD_LIMIT) return undefined;
      return [make(x!.dtype, shape, expandTo(nums(x!), x!.shape, shape))];
    }
    case "Range": {
      const [s, l, d] = inputs.map((t) => nums(t!)[0]);
      const n = Math.max(Math.ceil((l - s) / d), 0);
      if (!(n <= FOLD_LIMIT)) return undefined;
      return [make(inputs[0]!.dtype, [n], Array.from({ length: n }, (_, i) => s + i * d))];
    }
    case "Where": {
      const [c, a, b] = inputs as TensorData[];
      const s1 = broadcastShape(c.shape, a.shape);
      const shape = s1 && broadcastShape(s1, b.shape);
      if (!shape || elementCount(shape) > FOLD_LIMIT) return undefined;
      const cv = expandTo(nums(c), c.shape, shape), av = expandTo(nums(a), a.shape, shape);
      const bv = expandTo(nums(b), b.shape, shape);
      return [make(a.dtype, shape, cv.map((q, i) => (q ? av[i] : bv[i])))];
    }
    case "ReduceProd":
    case "ReduceSum": {
      if (inputs.length > 1 || attrInts(node, "axes") !== undefined) return undefined;
      const v = nums(x!);
      const keep = attrInt(node, "keepdims", 1);
      const res = op === "ReduceProd" ? v.reduce((a, b) => a * b, 1) : v.reduce((a, b) => a + b, 0);
      return [make(x!.dtype, keep ? x!.shape.map(() => 1) : [], [res])];
    }
  }
  if (BINARY[op] || op === "Sum") {
    const f = BINARY[op] ?? BINARY.Add;
    const ts = inputs.filter((t): t is TensorData => !!t);
    if (ts.length < 2 && op !== "Sum" && op !== "Min" && op !== "Max") return undefined;
    let shape = ts[0].shape;
    for (const t of ts.slice(1)) {
      const s = broadcastShape(shape, t.shape);
      if (!s) return undefined;
      shape = s;
    }
    if (elementCount(shape) > FOLD_LIMIT) return undefined;
    const int = isInt(ts[0].dtype);
    let acc = expandTo(nums(ts[0]), ts[0].shape, shape);
    for (const t of ts.slice(1)) {
      const v = expandTo(nums(t), t.shape, shape);
      acc = acc.map((a, i) => f(a, v[i], int));
    }
    return [make(CMP.has(op) ? "bool" : ts[0].dtype, [...shape], acc)];
  }
  if (UNARY[op]) {
    const v = nums(x!).map(UNARY[op]);
    return [make(CMP.has(op) ? "bool" : x!.dtype, [...x!.shape], v)];
  }
  return undefined;
}

function normStart(s: number, r: number): number {
  return Math.min(Math.max(s < 0 ? s + r : s, 0), r);
}

/** Reshape's output shape with 0 (copy unless allowzero) and one -1 resolved. */
export function computeReshape(
  inShape: readonly number[],
  target: readonly number[],
  allowzero: number,
): number[] | undefined {
  const out = target.map((d, i) => (d === 0 && !allowzero ? inShape[i] : d));
  if (out.some((d) => d === undefined || d < -1)) return undefined;
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    if (out.indexOf(-1, neg + 1) >= 0) return undefined;
    const known = out.reduce((a, d) => (d === -1 ? a : a * d), 1);
    const total = elementCount(inShape);
    if (known === 0 || total % known !== 0) return undefined;
    out[neg] = total / known;
  }
  return out;
}

function squeezeShape(shape: readonly number[], axes: number[] | undefined): number[] | undefined {
  if (!axes) return shape.filter((d) => d !== 1);
  const r = shape.length;
  const ax = axes.map((a) => normAxis(a, r));
  if (ax.some((a) => a === undefined || shape[a] !== 1)) return undefined;
  return shape.filter((_, i) => !ax.includes(i));
}

function unsqueezeShape(shape: readonly number[], axes: number[]): number[] | undefined {
  const r = shape.length + axes.length;
  const ax = axes.map((a) => normAxis(a, r));
  if (ax.some((a) => a === undefined) || new Set(ax).size !== ax.length) return undefined;
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : shape[k++]);
  return out;
}
