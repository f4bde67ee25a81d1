/**
 * NumPy `.npy` read and write (format versions 1.0, 2.0 and 3.0, C order,
 * little-endian).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { DType, TensorData } from "./ir.ts";
import { elementCount, packedByteLength, tensorFromBytes, tensorToBytes } from "./tensor_data.ts";

const DESCR_TO_DTYPE: Record<string, DType> = {
  "<f4": "float32",
  "<f8": "float64",
  "<f2": "float16",
  "<i8": "int64",
  "<u8": "uint64",
  "<i4": "int32",
  "<u4": "uint32",
  "<i2": "int16",
  "<u2": "uint16",
  "|i1": "int8",
  "|u1": "uint8",
  "|b1": "bool",
};
const DTYPE_TO_DESCR = Object.fromEntries(
  Object.entries(DESCR_TO_DTYPE).map(([k, v]) => [v, k]),
) as Partial<Record<DType, string>>;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Decodes a `.npy` file: float32, float64, float16, int64, uint64, int32, uint32,
 * int16, uint16, int8, uint8 and bool arrays in C order.
 *
 * @param bytes the file's bytes
 * @param fileName the file to name in errors
 * @returns the array as a tensor
 * @throws {LowbitError} `PARSE_ERROR` for a malformed header or a data length that
 *   disagrees with dtype × shape; `UNSUPPORTED` for Fortran order, big-endian or
 *   other dtypes
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "@lowbit/graph";
 * const t = readNpy(writeNpy({ dtype: "int64", shape: [2], data: new BigInt64Array([3n, 4n]) }));
 * if (t.dtype !== "int64" || t.data[1] !== 4n) throw new Error();
 * ```
 */
export function readNpy(bytes: Uint8Array, fileName?: string): TensorData {
  const subject = fileName !== undefined ? { file: fileName } : {};
  const fail = (msg: string): never => {
    throw new LowbitError("PARSE_ERROR", `not a valid .npy file: ${msg}`, subject);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail("bad magic");
  const major = bytes[6];
  if (major < 1 || major > 3) fail(`unknown format version ${major}.${bytes[7]}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start: number, hlen: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    start = 10;
  } else {
    if (bytes.length < 12) fail("truncated header");
    hlen = dv.getUint32(8, true);
    start = 12;
  }
  if (start + hlen > bytes.length) fail(`header length ${hlen} exceeds the file`);
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(start, start + hlen),
  );
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    fail("header lacks descr, fortran_order or shape");
  }
  if (fortran === "True") {
    throw new LowbitError(
      "UNSUPPORTED",
      "Fortran-order arrays are not supported: save with np.ascontiguousarray(a)",
      subject,
    );
  }
  const norm = descr!.replace(/^=/, "<").replace(/^\|([fiu][2-8])$/, "<$1").replace(
    /^<([iub]1)$/,
    "|$1",
  );
  const dtype = DESCR_TO_DTYPE[norm];
  if (!dtype) {
    throw new LowbitError(
      "UNSUPPORTED",
      `dtype '${descr}' is not supported (little-endian float16/32/64, int8-64, uint8-64, bool are)`,
      subject,
    );
  }
  const parts = shapeText!.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const shape = parts.map((p) => (/^\d+L?$/.test(p) ? parseInt(p, 10) : fail(`bad shape '${p}'`)));
  let n: number;
  try {
    n = elementCount(shape, subject);
  } catch (e) {
    return fail((e as Error).message);
  }
  const want = packedByteLength(dtype, n);
  const data = bytes.subarray(start + hlen);
  if (data.length !== want) {
    fail(`${dtype}[${shape}] needs ${want} data bytes, found ${data.length}`);
  }
  return tensorFromBytes(dtype, shape, data, subject);
}

/**
 * Encodes a tensor as a `.npy` file (version 1.0, or 2.0 for huge headers).
 *
 * @param t the tensor: float32, float64, float16, int64, uint64, int32, uint32,
 *   int16, uint16, int8, uint8 or bool
 * @returns the file's bytes
 * @throws {LowbitError} `UNSUPPORTED` for other dtypes
 *
 * @example
 * ```ts
 * import { writeNpy } from "@lowbit/graph";
 * const b = writeNpy({ dtype: "float32", shape: [2, 2], data: new Float32Array(4) });
 * if (b.length % 64 !== 16) throw new Error(); // 64-aligned header, then 16 data bytes
 * ```
 */
export function writeNpy(t: TensorData): Uint8Array {
  const descr = DTYPE_TO_DESCR[t.dtype];
  if (!descr) {
    throw new LowbitError("UNSUPPORTED", `dtype ${t.dtype} cannot be written to .npy`);
  }
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const v1 = dict.length + 11 < 65536;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const data = tensorToBytes(t);
  const out = new Uint8Array(total + data.length);
  out.set(MAGIC);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (v1) dv.setUint16(8, dict.length, true);
  else dv.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[pre + i] = dict.charCodeAt(i);
  out.set(data, total);
  return out;
}
