/**
 * Helpers over {@link TensorData}: element counts, dtype sizes, storage
 * allocation, raw little-endian bytes in and out, and scalar conversions
 * (float16 / bfloat16 / float8 bits ↔ float32, int64 ↔ number).
 *
 * @module
 */

import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  f8e4m3fnToF32,
  f8e5m2ToF32,
  LowbitError,
  roundHalfEven,
} from "@lowbit/core";
import type { ErrorSubject } from "@lowbit/core";
import type { DType, TensorData, TensorStorage } from "./ir.ts";

/** Every dtype of the IR, in a fixed order. */
export const DTYPES: readonly DType[] = [
  "float32",
  "float16",
  "bfloat16",
  "float64",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "bool",
  "string",
  "float8e4m3fn",
  "float8e5m2",
  "int4",
  "uint4",
];

const BITS: Record<DType, number> = {
  float32: 32,
  float16: 16,
  bfloat16: 16,
  float64: 64,
  int8: 8,
  uint8: 8,
  int16: 16,
  uint16: 16,
  int32: 32,
  uint32: 32,
  int64: 64,
  uint64: 64,
  bool: 8,
  string: 0,
  float8e4m3fn: 8,
  float8e5m2: 8,
  int4: 4,
  uint4: 4,
};

/**
 * Number of elements of a shape, checked: every dimension a non-negative
 * integer and the product a safe integer.
 *
 * @param shape dimensions
 * @param subject what to name in the error
 * @returns the product of the dimensions (1 for a scalar)
 *
 * @example
 * ```ts
 * import { elementCount } from "@lowbit/graph";
 * if (elementCount([2, 3, 4]) !== 24) throw new Error();
 * ```
 */
export function elementCount(shape: readonly number[], subject: ErrorSubject = {}): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new LowbitError("INVALID_TENSOR", `bad dimension ${d} in shape [${shape}]`, subject);
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new LowbitError("INVALID_TENSOR", `shape [${shape}] has too many elements`, subject);
    }
  }
  return n;
}

/**
 * Bits one element of `dtype` occupies when stored packed (4 for int4/uint4,
 * 0 for string, which has no fixed size).
 *
 * @param dtype the element type
 * @returns bits per element
 *
 * @example
 * ```ts
 * import { dtypeBits } from "@lowbit/graph";
 * if (dtypeBits("float16") !== 16 || dtypeBits("int4") !== 4) throw new Error();
 * ```
 */
export function dtypeBits(dtype: DType): number {
  const b = BITS[dtype];
  if (b === undefined) throw new LowbitError("UNSUPPORTED", `unknown dtype '${dtype}'`);
  return b;
}

/**
 * Bytes `count` elements of `dtype` occupy when stored packed little-endian
 * (int4/uint4: two per byte, low nibble first).
 *
 * @param dtype the element type (not string)
 * @param count number of elements
 * @returns the byte length
 *
 * @example
 * ```ts
 * import { packedByteLength } from "@lowbit/graph";
 * if (packedByteLength("float32", 3) !== 12 || packedByteLength("int4", 3) !== 2) throw new Error();
 * ```
 */
export function packedByteLength(dtype: DType, count: number): number {
  const bits = dtypeBits(dtype);
  if (bits === 0) throw new LowbitError("UNSUPPORTED", `dtype '${dtype}' has no fixed byte size`);
  return bits === 4 ? Math.ceil(count / 2) : count * (bits / 8);
}

/** A typed-array constructor: zeroed storage of a length, or a view of a buffer. */
interface StorageConstructor {
  new (length: number): TensorStorage;
  new (buffer: ArrayBuffer): TensorStorage;
}

/** The storage of each numeric dtype: its typed array (codes of 8-bit floats and int4 raw). */
const STORAGE: Readonly<Record<Exclude<DType, "string">, StorageConstructor>> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int4: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  uint4: Uint8Array,
  float8e4m3fn: Uint8Array,
  float8e5m2: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
};

/**
 * Allocates zeroed storage for `n` elements of `dtype`, of the array type the
 * IR prescribes (see `TensorStorage`).
 *
 * @param dtype the element type
 * @param n number of elements
 * @returns the storage
 *
 * @example
 * ```ts
 * import { allocStorage } from "@lowbit/graph";
 * if (!(allocStorage("int64", 2) instanceof BigInt64Array)) throw new Error();
 * ```
 */
export function allocStorage(dtype: DType, n: number): TensorStorage {
  if (dtype === "string") return new Array<string>(n).fill("");
  const make = STORAGE[dtype];
  if (!make) throw new LowbitError("UNSUPPORTED", `unknown dtype '${dtype}'`);
  return new make(n);
}

/**
 * Builds a `TensorData`, checking that the storage has the right type and
 * length for the dtype and shape.
 *
 * @param dtype the element type
 * @param shape dimensions
 * @param data storage (zeroed storage when omitted)
 * @param subject what to name in errors
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { tensorData } from "@lowbit/graph";
 * const t = tensorData("float32", [2], new Float32Array([1, 2]));
 * if (t.shape[0] !== 2) throw new Error();
 * ```
 */
export function tensorData(
  dtype: DType,
  shape: readonly number[],
  data?: TensorStorage,
  subject: ErrorSubject = {},
): TensorData {
  const n = elementCount(shape, subject);
  const d = data ?? allocStorage(dtype, n);
  const proto = allocStorage(dtype, 0);
  if (Object.getPrototypeOf(d) !== Object.getPrototypeOf(proto)) {
    throw new LowbitError(
      "INVALID_TENSOR",
      `dtype ${dtype} needs ${proto.constructor.name} storage, got ${d.constructor.name}`,
      subject,
    );
  }
  if (d.length !== n) {
    throw new LowbitError(
      "INVALID_TENSOR",
      `shape [${shape}] holds ${n} elements, storage has ${d.length}`,
      subject,
    );
  }
  return { dtype, shape: [...shape], data: d };
}

/**
 * Decodes packed little-endian bytes into a tensor (int4/uint4 two per byte,
 * low nibble first; bool any non-zero byte → 1). Copies the bytes.
 *
 * @param dtype the element type (not string)
 * @param shape dimensions
 * @param bytes exactly `packedByteLength(dtype, elementCount(shape))` bytes
 * @param subject what to name in errors
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { tensorFromBytes } from "@lowbit/graph";
 * const t = tensorFromBytes("int16", [2], new Uint8Array([1, 0, 255, 255]));
 * if (t.data[1] !== -1) throw new Error();
 * ```
 */
export function tensorFromBytes(
  dtype: DType,
  shape: readonly number[],
  bytes: Uint8Array,
  subject: ErrorSubject = {},
): TensorData {
  const n = elementCount(shape, subject);
  if (dtype === "string") {
    throw new LowbitError("UNSUPPORTED", "string tensors have no raw byte form", subject);
  }
  const want = packedByteLength(dtype, n);
  if (bytes.length !== want) {
    throw new LowbitError(
      "PARSE_ERROR",
      `${dtype}[${shape}] needs ${want} bytes, found ${bytes.length}`,
      subject,
    );
  }
  if (dtype === "int4" || dtype === "uint4") {
    const out = dtype === "int4" ? new Int8Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const b = bytes[i >> 1];
      let v = (i & 1) ? b >> 4 : b & 15;
      if (dtype === "int4" && v >= 8) v -= 16;
      out[i] = v;
    }
    return { dtype, shape: [...shape], data: out };
  }
  const copy = new Uint8Array(want);
  copy.set(bytes);
  if (dtype === "bool") {
    for (let i = 0; i < n; i++) if (copy[i] > 1) copy[i] = 1;
  }
  const data = new STORAGE[dtype](copy.buffer);
  return { dtype, shape: [...shape], data };
}

/**
 * Encodes a tensor's elements as packed little-endian bytes (the inverse of
 * {@link tensorFromBytes}). Returns a view of the storage when possible.
 *
 * @param t the tensor (not string)
 * @returns the bytes
 *
 * @example
 * ```ts
 * import { tensorToBytes } from "@lowbit/graph";
 * const b = tensorToBytes({ dtype: "int4", shape: [2], data: new Int8Array([1, -1]) });
 * if (b.length !== 1 || b[0] !== 0xf1) throw new Error();
 * ```
 */
export function tensorToBytes(t: TensorData): Uint8Array {
  const d = t.data;
  if (Array.isArray(d) || t.dtype === "string") {
    throw new LowbitError("UNSUPPORTED", "string tensors have no raw byte form");
  }
  if (t.dtype === "int4" || t.dtype === "uint4") {
    const out = new Uint8Array(Math.ceil(d.length / 2));
    for (let i = 0; i < d.length; i++) {
      const v = Number(d[i]) & 15;
      out[i >> 1] |= (i & 1) ? v << 4 : v;
    }
    return out;
  }
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

// *** scalar conversions ***

// The scalar IEEE-style codecs live in core, defined once; re-exported here for this package's
// users (ONNX float16 / bfloat16 / float8 tensors).
export {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  f8e4m3fnToF32,
  f8e5m2ToF32,
} from "@lowbit/core";

/**
 * int64 → number, throwing a `LowbitError` when the value is not a safe integer.
 *
 * @param v the value
 * @param subject what to name in the error
 * @returns the number
 *
 * @example
 * ```ts
 * import { int64ToNumber } from "@lowbit/graph";
 * if (int64ToNumber(-5n) !== -5) throw new Error();
 * ```
 */
export function int64ToNumber(v: bigint, subject: ErrorSubject = {}): number {
  if (v > 9007199254740991n || v < -9007199254740991n) {
    throw new LowbitError("INVALID_TENSOR", `int64 value ${v} does not fit a number`, subject);
  }
  return Number(v);
}

/**
 * Number → int64, checking that it is an integer.
 *
 * @param x the value
 * @param subject what to name in the error
 * @returns the bigint
 *
 * @example
 * ```ts
 * import { numberToInt64 } from "@lowbit/graph";
 * if (numberToInt64(3) !== 3n) throw new Error();
 * ```
 */
export function numberToInt64(x: number, subject: ErrorSubject = {}): bigint {
  if (!Number.isInteger(x)) {
    throw new LowbitError("INVALID_ARGUMENT", `${x} is not an integer`, subject);
  }
  return BigInt(x);
}

/**
 * Any numeric tensor → float32 values (float16/bfloat16/float8 decoded, ints
 * converted, bool → 0/1). Returns the storage itself for float32.
 *
 * @param t the tensor (not string)
 * @returns the values, row-major
 *
 * @example
 * ```ts
 * import { toFloat32 } from "@lowbit/graph";
 * const v = toFloat32({ dtype: "int64", shape: [2], data: new BigInt64Array([1n, -2n]) });
 * if (v[1] !== -2) throw new Error();
 * ```
 */
export function toFloat32(t: TensorData): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (Array.isArray(d)) throw new LowbitError("UNSUPPORTED", "cannot convert strings to float32");
  const out = new Float32Array(d.length);
  const dec = t.dtype === "float16"
    ? f16BitsToF32
    : t.dtype === "bfloat16"
    ? bf16BitsToF32
    : t.dtype === "float8e4m3fn"
    ? f8e4m3fnToF32
    : t.dtype === "float8e5m2"
    ? f8e5m2ToF32
    : undefined;
  if (dec) {
    for (let i = 0; i < d.length; i++) out[i] = dec(Number(d[i]));
  } else {
    for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  }
  return out;
}

/**
 * Float values → a tensor of `dtype` (rounding to nearest even for float16 /
 * bfloat16; integers rounded half to even and saturated; bool: non-zero → 1).
 *
 * @param values row-major values
 * @param shape dimensions
 * @param dtype target element type (not string, not float8)
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { fromFloat32 } from "@lowbit/graph";
 * const t = fromFloat32(new Float32Array([1.5, 2.5]), [2], "int32");
 * if (t.data[0] !== 2 || t.data[1] !== 2) throw new Error();
 * ```
 */
export function fromFloat32(
  values: ArrayLike<number>,
  shape: readonly number[],
  dtype: DType,
): TensorData {
  const n = values.length;
  const t = tensorData(dtype, shape, undefined);
  if (t.data.length !== n) {
    throw new LowbitError("SHAPE_MISMATCH", `shape [${shape}] does not hold ${n} values`);
  }
  const d = t.data;
  const sat = (x: number, lo: number, hi: number): number =>
    Number.isNaN(x) ? 0 : Math.min(hi, Math.max(lo, roundHalfEven(x)));
  switch (dtype) {
    case "float32":
    case "float64":
      for (let i = 0; i < n; i++) (d as Float32Array)[i] = values[i];
      break;
    case "float16":
      for (let i = 0; i < n; i++) (d as Uint16Array)[i] = f32ToF16Bits(values[i]);
      break;
    case "bfloat16":
      for (let i = 0; i < n; i++) (d as Uint16Array)[i] = f32ToBf16Bits(values[i]);
      break;
    case "bool":
      for (let i = 0; i < n; i++) (d as Uint8Array)[i] = values[i] !== 0 ? 1 : 0;
      break;
    case "int64":
      for (let i = 0; i < n; i++) {
        (d as BigInt64Array)[i] = BigInt(sat(values[i], -(2 ** 63), 2 ** 63 - 1024));
      }
      break;
    case "uint64":
      for (let i = 0; i < n; i++) {
        (d as BigUint64Array)[i] = BigInt(sat(values[i], 0, 2 ** 64 - 2048));
      }
      break;
    default: {
      const range: Partial<Record<DType, [number, number]>> = {
        int8: [-128, 127],
        uint8: [0, 255],
        int16: [-32768, 32767],
        uint16: [0, 65535],
        int32: [-2147483648, 2147483647],
        uint32: [0, 4294967295],
        int4: [-8, 7],
        uint4: [0, 15],
      };
      const r = range[dtype];
      if (!r) throw new LowbitError("UNSUPPORTED", `cannot convert float32 to ${dtype}`);
      for (let i = 0; i < n; i++) (d as Int32Array)[i] = sat(values[i], r[0], r[1]);
    }
  }
  return t;
}
