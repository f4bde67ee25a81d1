// Private helpers shared by the executor and its ops: element counts, strides,
// allocation by dtype, conversions between storages, attribute access.

import { LowbitError } from "@lowbit/core";
import type { Attr, DType, Node, TensorData, TensorStorage } from "../ir.ts";
import { allocStorage, toFloat32 } from "../tensor_data.ts";

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
export const alloc: (dtype: DType, n: number) => TensorStorage = allocStorage;

/** The elements of `t` as float32 (no copy when already float32). */
export const toF32: (t: TensorData) => Float32Array = toFloat32;

/**
 * A float32 buffer of `n` elements for an op's output: recycled storage from the executor when
 * it offers some (contents arbitrary: write every element), else a new zero-filled array.
 */
export function outF32(ctx: { allocF32?: (n: number) => Float32Array }, n: number): Float32Array {
  return ctx.allocF32 ? ctx.allocF32(n) : new Float32Array(n);
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

/** Clamp fused into a node by the executor's activation fusion (attribute `lowbit_clamp`). */
export function fusedClamp(node: Node): [number, number] | undefined {
  const c = attrFloats(node, "lowbit_clamp");
  return c === undefined ? undefined : [c[0], c[1]];
}
