/**
 * safetensors read and write, with the header validated: length inside the
 * file and under a size limit, valid JSON, known dtypes, offsets inside the
 * data section, no overlaps (and, strict by default, no gaps), byte sizes
 * equal to dtype × shape. int4/uint4 tensors, which safetensors has no dtype
 * for, are stored packed as U8 with their real dtype and shape recorded under
 * the `lowbit.dtypes` metadata key.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { ErrorSubject } from "@lowbit/core";
import type { DType, TensorData } from "./ir.ts";
import { elementCount, packedByteLength, tensorFromBytes, tensorToBytes } from "./tensor_data.ts";

/** A safetensors file's content. */
export interface Safetensors {
  /** Tensors by name, in file order. */
  tensors: Map<string, TensorData>;
  /** The `__metadata__` string map (without the `lowbit.dtypes` bookkeeping key). */
  metadata: Record<string, string>;
}

/** Options of {@link readSafetensors}. */
export interface ReadSafetensorsOptions {
  /** File name to name in errors. */
  fileName?: string;
  /** Largest accepted header, in bytes (default 100 MB). */
  maxHeaderBytes?: number;
  /** Reject gaps between tensors and trailing bytes (default true). */
  strict?: boolean;
}

const ST_TO_DTYPE: Record<string, DType> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U64: "uint64",
  U32: "uint32",
  U16: "uint16",
  U8: "uint8",
  BOOL: "bool",
  F8_E4M3: "float8e4m3fn",
  F8_E5M2: "float8e5m2",
};
const DTYPE_TO_ST = Object.fromEntries(
  Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k]),
) as Partial<Record<DType, string>>;

/** Metadata key holding `{ name: { dtype, shape } }` for tensors stored packed as U8. */
const PACKED_KEY = "lowbit.dtypes";

/** Default header size limit (100 MB), as in the reference implementation. */
const MAX_HEADER = 100_000_000;

/**
 * Decodes a safetensors file. Tensors are copied out of `bytes`.
 *
 * @param bytes the file's bytes
 * @param opts file name for errors, header limit, strictness
 * @returns tensors and metadata
 * @throws {LowbitError} `PARSE_ERROR` naming the file and tensor for every
 *   malformed header or layout
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "@lowbit/graph";
 * const bytes = writeSafetensors(
 *   new Map([["w", { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) }]]),
 *   { source: "example" },
 * );
 * const st = readSafetensors(bytes);
 * if (st.tensors.get("w")?.data[1] !== 2 || st.metadata.source !== "example") throw new Error();
 * ```
 */
export function readSafetensors(bytes: Uint8Array, opts: ReadSafetensorsOptions = {}): Safetensors {
  const file: ErrorSubject = opts.fileName !== undefined ? { file: opts.fileName } : {};
  const fail = (msg: string, tensor?: string): never => {
    throw new LowbitError(
      "PARSE_ERROR",
      `invalid safetensors: ${msg}`,
      tensor === undefined ? file : { ...file, tensor },
    );
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes is shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  const limit = opts.maxHeaderBytes ?? MAX_HEADER;
  if (n64 > BigInt(bytes.length - 8)) {
    fail(`header length ${n64} is larger than the file (${bytes.length} bytes)`);
  }
  const n = Number(n64);
  if (n > limit) fail(`header length ${n} exceeds the limit of ${limit} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const data = bytes.subarray(8 + n);
  const h = header as Record<string, unknown>;
  const metadata: Record<string, string> = {};
  const rawMeta = h.__metadata__;
  if (rawMeta !== undefined) {
    if (typeof rawMeta !== "object" || rawMeta === null || Array.isArray(rawMeta)) {
      fail("__metadata__ is not an object");
    }
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== "string") fail(`__metadata__ value of '${k}' is not a string`);
      metadata[k] = v as string;
    }
  }
  let packed: Record<string, { dtype: DType; shape: number[] }> = {};
  if (metadata[PACKED_KEY] !== undefined) {
    try {
      packed = JSON.parse(metadata[PACKED_KEY]);
    } catch {
      fail(`__metadata__ '${PACKED_KEY}' is not JSON`);
    }
    if (typeof packed !== "object" || packed === null) fail(`bad '${PACKED_KEY}'`);
    delete metadata[PACKED_KEY];
  }
  interface Entry {
    name: string;
    dtype: DType;
    shape: number[];
    begin: number;
    end: number;
  }
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(h)) {
    if (name === "__metadata__") continue;
    if (typeof v !== "object" || v === null) fail("entry is not an object", name);
    const e = v as Record<string, unknown>;
    const dtype = typeof e.dtype === "string" ? ST_TO_DTYPE[e.dtype] : undefined;
    if (!dtype) fail(`unknown dtype ${JSON.stringify(e.dtype)}`, name);
    const intList = (x: unknown, what: string): number[] => {
      if (!Array.isArray(x) || !x.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        return fail(`${what} is not a list of non-negative integers`, name);
      }
      return x as number[];
    };
    const shape = intList(e.shape, "shape");
    const offs = intList(e.data_offsets, "data_offsets");
    if (offs.length !== 2) fail("data_offsets must be [begin, end]", name);
    const [begin, end] = offs;
    if (begin > end || end > data.length) {
      fail(`data_offsets [${begin}, ${end}] outside the data section (${data.length} bytes)`, name);
    }
    let count = 0;
    try {
      count = elementCount(shape);
    } catch (err) {
      fail((err as Error).message, name);
    }
    const want = packedByteLength(dtype!, count);
    if (end - begin !== want) {
      fail(`${e.dtype}[${shape}] needs ${want} bytes, data_offsets span ${end - begin}`, name);
    }
    entries.push({ name, dtype: dtype!, shape, begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const strict = opts.strict ?? true;
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) {
      fail(`data overlaps the previous tensor (begins at ${e.begin} < ${pos})`, e.name);
    }
    if (strict && e.begin !== pos) fail(`gap before the tensor (${pos}..${e.begin})`, e.name);
    pos = e.end;
  }
  if (strict && pos !== data.length) {
    fail(`${data.length - pos} unused bytes after the last tensor`);
  }
  const tensors = new Map<string, TensorData>();
  for (const e of entries) {
    const bytesOf = data.subarray(e.begin, e.end);
    const p = packed[e.name];
    if (p !== undefined) {
      if (
        e.dtype !== "uint8" || (p.dtype !== "int4" && p.dtype !== "uint4") ||
        !Array.isArray(p.shape)
      ) {
        fail(`bad '${PACKED_KEY}' entry`, e.name);
      }
      tensors.set(e.name, tensorFromBytes(p.dtype, p.shape, bytesOf, { ...file, tensor: e.name }));
    } else {
      tensors.set(e.name, tensorFromBytes(e.dtype, e.shape, bytesOf, { ...file, tensor: e.name }));
    }
  }
  return { tensors, metadata };
}

/**
 * Encodes tensors (and string metadata) as a safetensors file: header padded
 * to 8 bytes, data contiguous in the map's order.
 *
 * @param tensors tensors by name (not string dtype)
 * @param metadata the `__metadata__` string map
 * @returns the file's bytes
 * @throws {LowbitError} `UNSUPPORTED` for string tensors
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "@lowbit/graph";
 * const b = writeSafetensors(new Map([["x", { dtype: "int8", shape: [3], data: new Int8Array(3) }]]));
 * if (new DataView(b.buffer).getUint32(0, true) % 8 !== 0) throw new Error();
 * ```
 */
export function writeSafetensors(
  tensors: Map<string, TensorData>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const { header, chunks } = layout(tensors, metadata);
  const total = header.length + chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(total);
  out.set(header);
  let off = header.length;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Reads a safetensors file.
 *
 * @param path the file
 * @param opts header limit and strictness
 * @returns tensors and metadata
 * @throws {LowbitError} `IO_ERROR` when the file cannot be read; see {@link readSafetensors}
 *
 * @example
 * ```ts
 * import { readSafetensorsFile, writeSafetensorsFile } from "@lowbit/graph";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensorsFile(path, new Map([["b", { dtype: "bool", shape: [1], data: new Uint8Array([1]) }]]));
 * if ((await readSafetensorsFile(path)).tensors.get("b")?.data[0] !== 1) throw new Error();
 * await Deno.remove(path);
 * ```
 */
export async function readSafetensorsFile(
  path: string,
  opts: Omit<ReadSafetensorsOptions, "fileName"> = {},
): Promise<Safetensors> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError("IO_ERROR", `cannot read: ${(e as Error).message}`, { file: path });
  }
  return readSafetensors(bytes, { ...opts, fileName: path });
}

/**
 * Writes a safetensors file atomically (temporary file, then rename),
 * streaming the tensors rather than building one buffer.
 *
 * @param path the file
 * @param tensors tensors by name
 * @param metadata the `__metadata__` string map
 * @returns when the file is in place
 * @throws {LowbitError} `IO_ERROR` when writing fails
 *
 * @example
 * ```ts
 * import { writeSafetensorsFile } from "@lowbit/graph";
 * const path = await Deno.makeTempFile();
 * await writeSafetensorsFile(path, new Map(), { empty: "yes" });
 * if ((await Deno.stat(path)).size < 8) throw new Error();
 * await Deno.remove(path);
 * ```
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Map<string, TensorData>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const { header, chunks } = layout(tensors, metadata);
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      for (const c of [header, ...chunks]) {
        let done = 0;
        while (done < c.length) done += await f.write(c.subarray(done));
      }
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new LowbitError("IO_ERROR", `cannot write: ${(e as Error).message}`, { file: path });
  }
}

function layout(
  tensors: Map<string, TensorData>,
  metadata: Record<string, string>,
): { header: Uint8Array; chunks: Uint8Array[] } {
  const head: Record<string, unknown> = {};
  const meta: Record<string, string> = { ...metadata };
  const packed: Record<string, { dtype: DType; shape: number[] }> = {};
  const chunks: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of tensors) {
    if (name === "__metadata__") {
      throw new LowbitError("INVALID_ARGUMENT", "reserved tensor name", { tensor: name });
    }
    let st = DTYPE_TO_ST[t.dtype];
    let shape = t.shape;
    if (t.dtype === "int4" || t.dtype === "uint4") {
      packed[name] = { dtype: t.dtype, shape: [...t.shape] };
      st = "U8";
      shape = [packedByteLength(t.dtype, elementCount(t.shape))];
    }
    if (!st) {
      throw new LowbitError("UNSUPPORTED", `dtype ${t.dtype} cannot be stored in safetensors`, {
        tensor: name,
      });
    }
    const bytes = tensorToBytes(t);
    head[name] = { dtype: st, shape, data_offsets: [off, off + bytes.length] };
    chunks.push(bytes);
    off += bytes.length;
  }
  if (Object.keys(packed).length) meta[PACKED_KEY] = JSON.stringify(packed);
  if (Object.keys(meta).length) head.__metadata__ = meta;
  let json = JSON.stringify(head);
  const enc = new TextEncoder();
  let jb = enc.encode(json);
  json += " ".repeat((8 - (jb.length % 8)) % 8);
  jb = enc.encode(json);
  const header = new Uint8Array(8 + jb.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(jb.length), true);
  header.set(jb, 8);
  return { header, chunks };
}
