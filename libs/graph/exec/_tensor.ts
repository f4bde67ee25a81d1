// Private helpers shared by the executor and its ops: element counts, strides,
// allocation by dtype, conversions between storages, attribute access.

import { LowbitError } from "@lowbit/core";
import type { Attr, DType, Node, TensorData, TensorStorage } from "../ir.ts";

/** Product of the dimensions (1 for a scalar). */
export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A zero-filled storage of `n` elements of `dtype`. */
export function alloc(dtype: DType, n: number): TensorStorage {
  switch (dtype) {
    case "float32":
      return new Float32Array(n);
    case "float64":
      return new Float64Array(n);
    case "int8":
    case "int4":
      return new Int8Array(n);
    case "uint8":
    case "uint4":
    case "bool":
    case "float8e4m3fn":
    case "float8e5m2":
      return new Uint8Array(n);
    case "int16":
      return new Int16Array(n);
    case "uint16":
    case "float16":
    case "bfloat16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
    case "uint32":
      return new Uint32Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "uint64":
      return new BigUint64Array(n);
    case "string":
      return new Array<string>(n).fill("");
  }
}

/** A fresh float32 tensor. */
export function f32(shape: number[], data?: Float32Array): TensorData {
  return { dtype: "float32", shape, data: data ?? new Float32Array(size(shape)) };
}

/** True for dtypes stored as bigint arrays. */
export function isBig(dtype: DType): boolean {
  return dtype === "int64" || dtype === "uint64";
}

/** True for dtypes whose storage holds plain numbers with their numeric value. */
export function isNumeric(dtype: DType): boolean {
  return dtype !== "string" && dtype !== "float16" && dtype !== "bfloat16" &&
    dtype !== "float8e4m3fn" && dtype !== "float8e5m2";
}

const F16_BUF = new Float32Array(1);
const F16_U32 = new Uint32Array(F16_BUF.buffer);

/** Decodes an IEEE half-precision bit pattern. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Encodes a number as an IEEE half-precision bit pattern (round to nearest even). */
export function floatToHalf(x: number): number {
  F16_BUF[0] = x;
  const f = F16_U32[0];
  const sign = (f >>> 16) & 0x8000;
  const e = (f >>> 23) & 0xff;
  let m = f & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let ne = e - 127 + 15;
  if (ne >= 31) return sign | 0x7c00;
  if (ne <= 0) {
    if (ne < -10) return sign;
    m |= 0x800000;
    const shift = 14 - ne;
    let r = m >> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = m >> 13;
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      ne++;
      if (ne >= 31) return sign | 0x7c00;
    }
  }
  return sign | (ne << 10) | r;
}

/** Decodes a bfloat16 bit pattern. */
export function bf16ToFloat(h: number): number {
  F16_U32[0] = h << 16;
  return F16_BUF[0];
}

/** Decodes an fp8 e4m3fn code. */
export function e4m3fnToFloat(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 0xf;
  const m = c & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return s * m * 2 ** -9;
  return s * (1 + m / 8) * 2 ** (e - 7);
}

/** Decodes an fp8 e5m2 code. */
export function e5m2ToFloat(c: number): number {
  return halfToFloat(c << 8);
}

/**
 * The elements of `t` as float32 (copy unless already float32).
 * Handles every numeric dtype including float16/bfloat16/fp8 codes.
 */
export function toF32(t: TensorData): Float32Array {
  const d = t.data;
  if (t.dtype === "float32") return d as Float32Array;
  const n = d.length;
  const out = new Float32Array(n);
  switch (t.dtype) {
    case "float16":
      for (let i = 0; i < n; i++) out[i] = halfToFloat((d as Uint16Array)[i]);
      return out;
    case "bfloat16":
      for (let i = 0; i < n; i++) out[i] = bf16ToFloat((d as Uint16Array)[i]);
      return out;
    case "float8e4m3fn":
      for (let i = 0; i < n; i++) out[i] = e4m3fnToFloat((d as Uint8Array)[i]);
      return out;
    case "float8e5m2":
      for (let i = 0; i < n; i++) out[i] = e5m2ToFloat((d as Uint8Array)[i]);
      return out;
    case "string":
      throw new LowbitError("UNSUPPORTED", "string tensors have no numeric value");
    default:
      if (isBig(t.dtype)) {
        for (let i = 0; i < n; i++) out[i] = Number((d as BigInt64Array)[i]);
      } else out.set(d as Int32Array);
      return out;
  }
}

/** The elements of `t` as plain numbers (for shape-like int64/int32 tensors). */
export function toNumbers(t: TensorData): number[] {
  const d = t.data;
  if (isBig(t.dtype)) return Array.from(d as BigInt64Array, (v) => Number(v));
  if (!isNumeric(t.dtype)) return Array.from(toF32(t));
  return Array.from(d as Int32Array);
}

/** A 1-D int64 tensor of `values`. */
export function int64(values: readonly number[], shape: number[] = [values.length]): TensorData {
  return { dtype: "int64", shape, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

// *** attributes ***

/** An integer attribute, or `def` when absent. */
export function attrInt(node: Node, name: string, def: number): number {
  const a = node.attrs[name];
  if (a === undefined) return def;
  if (a.kind === "int" || a.kind === "float") return a.value;
  throw badAttr(node, name, a);
}

/** A float attribute, or `def` when absent. */
export function attrFloat(node: Node, name: string, def: number): number {
  const a = node.attrs[name];
  if (a === undefined) return def;
  if (a.kind === "float" || a.kind === "int") return a.value;
  throw badAttr(node, name, a);
}

/** A string attribute, or `def` when absent. */
export function attrString(node: Node, name: string, def: string): string {
  const a = node.attrs[name];
  if (a === undefined) return def;
  if (a.kind === "string") return a.value;
  throw badAttr(node, name, a);
}

/** An ints attribute, or `undefined` when absent. */
export function attrInts(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (a === undefined) return undefined;
  if (a.kind === "ints" || a.kind === "floats") return a.value;
  if (a.kind === "int") return [a.value];
  throw badAttr(node, name, a);
}

/** A floats attribute, or `undefined` when absent. */
export function attrFloats(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (a === undefined) return undefined;
  if (a.kind === "floats" || a.kind === "ints") return a.value;
  if (a.kind === "float") return [a.value];
  throw badAttr(node, name, a);
}

function badAttr(node: Node, name: string, a: Attr): LowbitError {
  return new LowbitError(
    "INVALID_ARGUMENT",
    `attribute '${name}' of ${node.op} has kind '${a.kind}'`,
    { node: node.name },
  );
}

/** Normalises a possibly negative axis into [0, rank). */
export function normAxis(axis: number, rank: number, node: Node): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw new LowbitError("INVALID_ARGUMENT", `axis ${axis} out of range for rank ${rank}`, {
      node: node.name,
    });
  }
  return a;
}

/** Throws a SHAPE_MISMATCH error about `node`. */
export function shapeError(node: Node, detail: string): LowbitError {
  return new LowbitError("SHAPE_MISMATCH", `${node.op}: ${detail}`, { node: node.name });
}
