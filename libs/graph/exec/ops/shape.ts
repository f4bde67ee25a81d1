/**
 * Shape and tensor-manipulation operators, for every dtype: Concat, Split,
 * Slice, Gather, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand,
 * Shape, Cast, Constant, ConstantOfShape, Identity, Dropout, Range, Tile, Pad.
 * Operands given as attributes in old opsets and as inputs in new ones are
 * both accepted.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData, TensorStorage } from "../../ir.ts";
import { f32ToBf16Bits, f32ToF16Bits } from "../../tensor_data.ts";
import { DTYPE_BY_CODE } from "../../passes/_const_eval.ts";
import {
  alloc,
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  isBig,
  isNumeric,
  normAxis,
  outF32,
  size,
  strides,
  toF32,
  toNumbers,
} from "../_tensor.ts";
import { broadcastShapes, planBroadcast } from "./_broadcast.ts";
import type { OpImpl, OpTable } from "./types.ts";

type Any = (number | bigint | string)[];

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

function like(t: TensorData, shape: number[], data?: TensorStorage): TensorData {
  return { dtype: t.dtype, shape, data: data ?? alloc(t.dtype, size(shape)) };
}

/** Copies `len` elements between storages of the same kind. */
function copy(
  src: TensorStorage,
  so: number,
  dst: TensorStorage,
  d0: number,
  len: number,
): void {
  if (Array.isArray(src)) {
    for (let i = 0; i < len; i++) (dst as string[])[d0 + i] = src[so + i];
  } else {
    (dst as Float32Array).set((src as Float32Array).subarray(so, so + len), d0);
  }
}

/**
 * Generic strided gather: out[i] = src[base + Σ idx_d · st_d] over `shape`.
 * The innermost dim is copied in one block when its stride is 1.
 */
function stridedCopy(
  src: TensorStorage,
  base: number,
  st: readonly number[],
  shape: readonly number[],
  dst: TensorStorage,
): void {
  const rank = shape.length;
  const n = size(shape);
  if (n === 0) return;
  if (rank === 0) {
    (dst as Any)[0] = (src as Any)[base];
    return;
  }
  const inner = shape[rank - 1], is = st[rank - 1];
  const outer = n / inner;
  const idx = new Array<number>(rank - 1).fill(0);
  let off = base;
  const s = src as Any, d = dst as Any;
  for (let r = 0; r < outer; r++) {
    const o = r * inner;
    if (is === 1) copy(src, off, dst, o, inner);
    else for (let i = 0; i < inner; i++) d[o + i] = s[off + i * is];
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]++;
      off += st[k];
      if (idx[k] < shape[k]) break;
      off -= st[k] * shape[k];
      idx[k] = 0;
    }
  }
}

// *** Concat / Split / Slice / Gather ***

const concat: OpImpl = (inputs, node, ctx) => {
  const ts = inputs.filter((t): t is TensorData => t !== undefined);
  if (ts.length === 0) {
    throw new LowbitError("INVALID_ARGUMENT", "Concat: no inputs", { node: node.name });
  }
  const rank = ts[0].shape.length;
  const axis = normAxis(attrInt(node, "axis", 0), rank, node);
  const shape = [...ts[0].shape];
  shape[axis] = 0;
  for (const t of ts) {
    if (t.shape.length !== rank || t.shape.some((d, i) => i !== axis && d !== ts[0].shape[i])) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `Concat: shapes ${ts.map((x) => `[${x.shape}]`).join(", ")} differ outside axis ${axis}`,
        { node: node.name },
      );
    }
    if (t.dtype !== ts[0].dtype) {
      throw new LowbitError("INVALID_ARGUMENT", `Concat: mixed dtypes`, { node: node.name });
    }
    shape[axis] += t.shape[axis];
  }
  // One input: the identity (QDQ exports put one-input Concats in front of float8 / int4
  // Q/DQ pairs as fusion barriers for onnxruntime); its storage is shared, as Identity's.
  if (inputs.length === 1) return [ts[0]];
  // Every element is written: float32 may use recycled storage.
  const out = ts[0].dtype === "float32"
    ? { dtype: "float32" as const, shape, data: outF32(ctx, size(shape)) }
    : like(ts[0], shape);
  const outer = size(shape.slice(0, axis)), inner = size(shape.slice(axis + 1));
  const rowOut = shape[axis] * inner;
  let at = 0;
  for (const t of ts) {
    const row = t.shape[axis] * inner;
    for (let o = 0; o < outer; o++) copy(t.data, o * row, out.data, o * rowOut + at, row);
    at += row;
  }
  return [out];
};

const split: OpImpl = (inputs, node, ctx) => {
  const t = need(node, inputs[0], "input");
  const axis = normAxis(attrInt(node, "axis", 0), t.shape.length, node);
  const dim = t.shape[axis];
  let parts = ctx.opset < 13 ? attrInts(node, "split") : undefined;
  if (parts === undefined && inputs[1] !== undefined) parts = toNumbers(inputs[1]);
  const k = node.outputs.length;
  if (parts === undefined) {
    const num = attrInt(node, "num_outputs", k);
    const chunk = Math.ceil(dim / num);
    parts = [];
    for (let i = 0, left = dim; i < num; i++, left -= chunk) {
      parts.push(Math.max(0, Math.min(chunk, left)));
    }
  }
  if (parts.reduce((a, b) => a + b, 0) !== dim) {
    throw new LowbitError("SHAPE_MISMATCH", `Split: parts [${parts}] do not sum to ${dim}`, {
      node: node.name,
    });
  }
  const outer = size(t.shape.slice(0, axis)), inner = size(t.shape.slice(axis + 1));
  const outs: TensorData[] = [];
  let at = 0;
  for (const p of parts) {
    const shape = [...t.shape];
    shape[axis] = p;
    const o = like(t, shape);
    for (let r = 0; r < outer; r++) {
      copy(t.data, (r * dim + at) * inner, o.data, r * p * inner, p * inner);
    }
    outs.push(o);
    at += p;
  }
  return outs;
};

const slice: OpImpl = (inputs, node, ctx) => {
  const t = need(node, inputs[0], "data");
  const rank = t.shape.length;
  let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(node, "starts") ?? [];
    ends = attrInts(node, "ends") ?? [];
    axes = attrInts(node, "axes");
  } else {
    starts = toNumbers(need(node, inputs[1], "starts"));
    ends = toNumbers(need(node, inputs[2], "ends"));
    axes = inputs[3] ? toNumbers(inputs[3]) : undefined;
    steps = inputs[4] ? toNumbers(inputs[4]) : undefined;
  }
  const ax = axes ?? starts.map((_, i) => i);
  const begin = new Array<number>(rank).fill(0);
  const step = new Array<number>(rank).fill(1);
  const shape = [...t.shape];
  for (let i = 0; i < ax.length; i++) {
    const a = normAxis(ax[i], rank, node);
    const d = t.shape[a];
    const s = steps ? steps[i] : 1;
    if (s === 0) throw new LowbitError("INVALID_ARGUMENT", "Slice: step 0", { node: node.name });
    let b = starts[i], e = ends[i];
    if (b < 0) b += d;
    if (e < 0) e += d;
    if (s > 0) {
      b = Math.min(Math.max(b, 0), d);
      e = Math.min(Math.max(e, 0), d);
      shape[a] = Math.max(0, Math.ceil((e - b) / s));
    } else {
      b = Math.min(Math.max(b, -1), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
      shape[a] = Math.max(0, Math.ceil((b - e) / -s));
    }
    begin[a] = b;
    step[a] = s;
  }
  const st = strides(t.shape);
  let base = 0;
  for (let i = 0; i < rank; i++) base += begin[i] * st[i];
  const out = like(t, shape);
  stridedCopy(t.data, base, st.map((s, i) => s * step[i]), shape, out.data);
  return [out];
};

const gather: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "data");
  const it = need(node, inputs[1], "indices");
  const axis = normAxis(attrInt(node, "axis", 0), t.shape.length, node);
  const idx = toNumbers(it);
  const d = t.shape[axis];
  const outer = size(t.shape.slice(0, axis)), inner = size(t.shape.slice(axis + 1));
  const shape = [...t.shape.slice(0, axis), ...it.shape, ...t.shape.slice(axis + 1)];
  const out = like(t, shape);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < idx.length; j++) {
      let i = idx[j];
      if (i < 0) i += d;
      if (i < 0 || i >= d) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `Gather: index ${idx[j]} out of range [-${d}, ${d})`,
          {
            node: node.name,
          },
        );
      }
      copy(t.data, (o * d + i) * inner, out.data, (o * idx.length + j) * inner, inner);
    }
  }
  return [out];
};

// *** Reshape family ***

const reshape: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "data");
  const spec = inputs[1] ? toNumbers(inputs[1]) : attrInts(node, "shape") ?? [];
  const allowZero = attrInt(node, "allowzero", 0) === 1;
  const shape = spec.map((d, i) => (d === 0 && !allowZero ? t.shape[i] : d));
  const minus = shape.indexOf(-1);
  const n = size(t.shape);
  if (minus >= 0) {
    const known = shape.reduce((a, d, i) => (i === minus ? a : a * d), 1);
    shape[minus] = known === 0 ? 0 : n / known;
  }
  if (size(shape) !== n || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `Reshape: cannot reshape [${t.shape}] to [${spec}]`,
      { node: node.name },
    );
  }
  return [{ dtype: t.dtype, shape, data: t.data }];
};

const flatten: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "input");
  const r = t.shape.length;
  const axis = attrInt(node, "axis", 1);
  const a = axis < 0 ? axis + r : axis;
  if (a < 0 || a > r) {
    throw new LowbitError("INVALID_ARGUMENT", `Flatten: axis ${axis}`, { node: node.name });
  }
  return [{
    dtype: t.dtype,
    shape: [size(t.shape.slice(0, a)), size(t.shape.slice(a))],
    data: t.data,
  }];
};

function axesOf(node: Node, inputs: readonly (TensorData | undefined)[], ctx: { opset: number }) {
  if (ctx.opset < 13 || inputs[1] === undefined) return attrInts(node, "axes");
  return toNumbers(inputs[1]);
}

const squeeze: OpImpl = (inputs, node, ctx) => {
  const t = need(node, inputs[0], "data");
  const axes = axesOf(node, inputs, ctx);
  const drop = axes === undefined
    ? new Set(t.shape.flatMap((d, i) => (d === 1 ? [i] : [])))
    : new Set(axes.map((a) => normAxis(a, t.shape.length, node)));
  for (const a of drop) {
    if (t.shape[a] !== 1) {
      throw new LowbitError("SHAPE_MISMATCH", `Squeeze: axis ${a} of [${t.shape}] is not 1`, {
        node: node.name,
      });
    }
  }
  return [{ dtype: t.dtype, shape: t.shape.filter((_, i) => !drop.has(i)), data: t.data }];
};

const unsqueeze: OpImpl = (inputs, node, ctx) => {
  const t = need(node, inputs[0], "data");
  const axes = axesOf(node, inputs, ctx) ?? [];
  const r = t.shape.length + axes.length;
  const ins = new Set(axes.map((a) => normAxis(a, r, node)));
  const shape: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) shape.push(ins.has(i) ? 1 : t.shape[j++]);
  return [{ dtype: t.dtype, shape, data: t.data }];
};

const transpose: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "data");
  const r = t.shape.length;
  const perm = attrInts(node, "perm") ?? t.shape.map((_, i) => r - 1 - i);
  if (perm.length !== r || new Set(perm).size !== r) {
    throw new LowbitError("INVALID_ARGUMENT", `Transpose: perm [${perm}] for rank ${r}`, {
      node: node.name,
    });
  }
  const st = strides(t.shape);
  const shape = perm.map((p) => t.shape[p]);
  const out = like(t, shape);
  stridedCopy(t.data, 0, perm.map((p) => st[p]), shape, out.data);
  return [out];
};

const expand: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "input");
  const target = toNumbers(need(node, inputs[1], "shape"));
  const shape = broadcastShapes([t.shape, target], node);
  return [broadcastTo(t, shape)];
};

function broadcastTo(t: TensorData, shape: number[]): TensorData {
  const plan = planBroadcast([t.shape], shape);
  const out = like(t, shape);
  const s = t.data as Any, d = out.data as Any;
  let p = 0;
  for (let r = 0; r < plan.outer; r++) {
    const o = plan.offsets[0][r];
    if (plan.steps[0] === 1) {
      copy(t.data, o, out.data, p, plan.inner);
      p += plan.inner;
    } else {
      const v = s[o];
      for (let i = 0; i < plan.inner; i++) d[p++] = v;
    }
  }
  return out;
}

const tile: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "input");
  const reps = toNumbers(need(node, inputs[1], "repeats"));
  let cur = t;
  for (let a = 0; a < reps.length; a++) {
    if (reps[a] === 1) continue;
    const outer = size(cur.shape.slice(0, a)), row = size(cur.shape.slice(a));
    const shape = [...cur.shape];
    shape[a] *= reps[a];
    const out = like(cur, shape);
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < reps[a]; k++) {
        copy(cur.data, o * row, out.data, (o * reps[a] + k) * row, row);
      }
    }
    cur = out;
  }
  return [cur];
};

// *** Shape, Cast, constants ***

const shapeOp: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "data");
  const r = t.shape.length;
  let s = attrInt(node, "start", 0), e = attrInt(node, "end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = Math.min(Math.max(s, 0), r);
  e = Math.min(Math.max(e, 0), r);
  const dims = t.shape.slice(s, Math.max(s, e));
  return [{
    dtype: "int64",
    shape: [dims.length],
    data: BigInt64Array.from(dims, (d) => BigInt(d)),
  }];
};

/**
 * Converts a tensor to another dtype: floats → integers truncate toward zero
 * (as C casts, and onnxruntime, do); → bool is "non-zero"; float16 / bfloat16
 * round to nearest even.
 *
 * @param t the tensor
 * @param to the target dtype
 * @returns the converted tensor (the same object when the dtype already matches)
 *
 * @example
 * ```ts
 * import { castTo } from "./shape.ts";
 * const t = castTo({ dtype: "float32", shape: [2], data: new Float32Array([1.7, -1.7]) }, "int64");
 * if (t.data[0] !== 1n || t.data[1] !== -1n) throw new Error();
 * ```
 */
export function castTo(t: TensorData, to: DType): TensorData {
  if (t.dtype === to) return t;
  const n = t.data.length;
  const shape = [...t.shape];
  if (to === "string") {
    const src: ArrayLike<number | bigint> = isBig(t.dtype) || t.dtype === "float64"
      ? t.data as Float64Array
      : toF32(t);
    const f32 = !isBig(t.dtype) && t.dtype !== "float64";
    return { dtype: to, shape, data: Array.from(src, (v) => numberToString(v, f32)) };
  }
  const vals: ArrayLike<number> = t.dtype === "string"
    ? Float32Array.from(t.data as string[], stringToNumber)
    : isBig(t.dtype) || isNumeric(t.dtype)
    ? (isBig(t.dtype)
      ? Float64Array.from(t.data as BigInt64Array, (v) => Number(v))
      : t.data as Float32Array)
    : toF32(t);
  const out = alloc(to, n);
  switch (to) {
    case "float32":
    case "float64":
      (out as Float32Array).set(vals);
      break;
    case "float16":
      for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToF16Bits(vals[i]);
      break;
    case "bfloat16":
      for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToBf16Bits(vals[i]);
      break;
    case "bool":
      for (let i = 0; i < n; i++) (out as Uint8Array)[i] = vals[i] !== 0 ? 1 : 0;
      break;
    case "int64":
    case "uint64":
      if (isBig(t.dtype)) (out as BigInt64Array).set(t.data as BigInt64Array);
      else {
        for (let i = 0; i < n; i++) {
          const v = Math.trunc(vals[i]);
          (out as BigInt64Array)[i] = Number.isFinite(v) ? BigInt(v) : 0n;
        }
      }
      break;
    default:
      for (let i = 0; i < n; i++) (out as Int32Array)[i] = Math.trunc(vals[i]);
  }
  return { dtype: to, shape, data: out };
}

/**
 * A number as Cast writes it into a string tensor: integers in full, float32 values as the
 * shortest decimal that reads back as the same float32 (numpy's str of a float32), float64
 * values as the shortest decimal for float64; non-finite values as "NaN", "INF", "-INF".
 */
function numberToString(v: number | bigint, f32: boolean): string {
  if (typeof v === "bigint") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "INF" : "-INF";
  if (!f32 || Number.isInteger(v)) return String(v);
  for (let p = 1; p < 9; p++) {
    const r = Number(v.toPrecision(p));
    if (Math.fround(r) === v) return String(r);
  }
  return String(Number(v.toPrecision(9)));
}

/** A string tensor element as Cast reads it: decimal, or (any case, optional sign) INF / NaN. */
function stringToNumber(s: string): number {
  const t = s.trim();
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
  return t === "" ? NaN : Number(t);
}

const cast: OpImpl = (inputs, node) => {
  const t = need(node, inputs[0], "input");
  const code = attrInt(node, "to", 1);
  const to = DTYPE_BY_CODE[code];
  if (to === undefined) {
    throw new LowbitError("UNSUPPORTED", `Cast: target type ${code}`, { node: node.name });
  }
  return [castTo(t, to)];
};

const constant: OpImpl = (_inputs, node) => {
  const a = node.attrs;
  if (a.value?.kind === "tensor") return [a.value.value];
  if (a.value_float?.kind === "float") {
    return [{ dtype: "float32", shape: [], data: new Float32Array([a.value_float.value]) }];
  }
  if (a.value_floats?.kind === "floats") {
    const v = a.value_floats.value;
    return [{ dtype: "float32", shape: [v.length], data: Float32Array.from(v) }];
  }
  if (a.value_int?.kind === "int") {
    return [{ dtype: "int64", shape: [], data: new BigInt64Array([BigInt(a.value_int.value)]) }];
  }
  if (a.value_ints?.kind === "ints") {
    const v = a.value_ints.value;
    return [{ dtype: "int64", shape: [v.length], data: BigInt64Array.from(v, (x) => BigInt(x)) }];
  }
  if (a.value_string?.kind === "string") {
    return [{ dtype: "string", shape: [], data: [a.value_string.value] }];
  }
  if (a.value_strings?.kind === "strings") {
    return [{
      dtype: "string",
      shape: [a.value_strings.value.length],
      data: [...a.value_strings.value],
    }];
  }
  throw new LowbitError("UNSUPPORTED", "Constant: no supported value attribute", {
    node: node.name,
  });
};

const constantOfShape: OpImpl = (inputs, node) => {
  const shape = toNumbers(need(node, inputs[0], "input"));
  const a = node.attrs.value;
  const proto: TensorData = a?.kind === "tensor"
    ? a.value
    : { dtype: "float32", shape: [1], data: new Float32Array(1) };
  const out = alloc(proto.dtype, size(shape));
  const v = (proto.data as Any)[0];
  (out as Any).fill(v as never);
  return [{ dtype: proto.dtype, shape, data: out }];
};

const range: OpImpl = (inputs, node) => {
  const s = need(node, inputs[0], "start"), l = need(node, inputs[1], "limit");
  const d = need(node, inputs[2], "delta");
  const [start] = toNumbers(s), [limit] = toNumbers(l), [delta] = toNumbers(d);
  const n = Math.max(0, Math.ceil((limit - start) / delta));
  const out = alloc(s.dtype, n);
  for (let i = 0; i < n; i++) {
    (out as Any)[i] = isBig(s.dtype) ? BigInt(start + i * delta) : start + i * delta;
  }
  return [{ dtype: s.dtype, shape: [n], data: out }];
};

const pad: OpImpl = (inputs, node, ctx) => {
  const t = need(node, inputs[0], "data");
  const r = t.shape.length;
  const mode = attrString(node, "mode", "constant");
  let pads = ctx.opset < 11
    ? attrInts(node, "pads") ?? []
    : toNumbers(need(node, inputs[1], "pads"));
  let value = ctx.opset < 11 ? attrFloat(node, "value", 0) : 0;
  if (ctx.opset >= 11 && inputs[2] !== undefined && inputs[2].data.length > 0) {
    value = toNumbers(inputs[2])[0];
  }
  if (ctx.opset >= 18 && inputs[3] !== undefined) {
    const axes = toNumbers(inputs[3]).map((a) => normAxis(a, r, node));
    const full = new Array<number>(2 * r).fill(0);
    axes.forEach((a, i) => {
      full[a] = pads[i];
      full[a + r] = pads[i + axes.length];
    });
    pads = full;
  }
  const shape = t.shape.map((d, i) => d + pads[i] + pads[i + r]);
  const out = like(t, shape);
  const src = t.data as Any, dst = out.data as Any;
  const ost = strides(shape), ist = strides(t.shape);
  const n = size(shape);
  const fill = isBig(t.dtype) ? BigInt(value) : value;
  for (let o = 0; o < n; o++) {
    let rem = o, si = 0, inside = true;
    for (let a = 0; a < r; a++) {
      let c = Math.floor(rem / ost[a]) - pads[a];
      rem %= ost[a];
      const d = t.shape[a];
      if (c < 0 || c >= d) {
        if (mode === "constant") {
          inside = false;
          break;
        }
        if (mode === "edge") c = c < 0 ? 0 : d - 1;
        else if (mode === "reflect") c = c < 0 ? -c : 2 * (d - 1) - c;
        else if (mode === "wrap") c = ((c % d) + d) % d;
        else throw new LowbitError("UNSUPPORTED", `Pad: mode '${mode}'`, { node: node.name });
      }
      si += c * ist[a];
    }
    dst[o] = inside ? src[si] : fill;
  }
  return [out];
};

/**
 * Shape and tensor-manipulation ops, by name.
 *
 * @example
 * ```ts
 * import { shapeOps } from "./shape.ts";
 * const node = { name: "t", op: "Transpose", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
 * const [y] = await shapeOps.Transpose([x], node, { opset: 17 });
 * if (y.shape.join() !== "3,2" || y.data.join() !== "1,4,2,5,3,6") throw new Error();
 * ```
 */
export const shapeOps: OpTable<
  | "Concat"
  | "Split"
  | "Slice"
  | "Gather"
  | "Reshape"
  | "Flatten"
  | "Transpose"
  | "Squeeze"
  | "Unsqueeze"
  | "Expand"
  | "Shape"
  | "Cast"
  | "Constant"
  | "ConstantOfShape"
  | "Identity"
  | "Dropout"
  | "Range"
  | "Tile"
  | "Pad"
> = {
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Expand: expand,
  Shape: shapeOp,
  Cast: cast,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Identity: (inputs, node) => [need(node, inputs[0], "input")],
  Dropout: (inputs, node) => {
    const t = need(node, inputs[0], "data");
    // Training mode (input 2, opset 12+) with a ratio > 0 drops random elements: refuse rather
    // than return the identity, which would be a silently different result.
    const training = inputs[2] !== undefined && Number(inputs[2].data[0]) !== 0;
    const ratio = inputs[1] !== undefined ? Number(inputs[1].data[0]) : 0.5;
    if (training && ratio !== 0) {
      throw new LowbitError("UNSUPPORTED", "Dropout in training mode (random masks)", {
        node: node.name,
      });
    }
    return [t, { dtype: "bool", shape: [...t.shape], data: new Uint8Array(t.data.length).fill(1) }];
  },
  Range: range,
  Tile: tile,
  Pad: pad,
};
