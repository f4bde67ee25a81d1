/**
 * The lowbit file: one safetensors file holding a quantized model that our
 * runtime loads without the original model.
 *
 * Layout (format version 2):
 * - `lowbit.graph` (U8): the model as ONNX bytes, without its initializers
 *   (string initializers stay inside);
 * - `init/<name>`: every other initializer, in its own dtype;
 * - `q/<name>/codes` (U8, codes packed LSB-first at `bits` per code, or U16 for
 *   codes wider than 8 bits), `q/<name>/scale` (F32), `q/<name>/zero_point`
 *   (I32), `q/<name>/x/<key>` (F32: the quantizer's fitted extras, e.g. MX
 *   block scale codes or a ternary γ) for every quantized weight;
 * - `lowbit.plan` (U8): the plan as JSON; `lowbit.activations` (U8): the
 *   activation quantization points (value, quantizer, fitted parameters) as JSON;
 * - `__metadata__` (kept small): `lowbit.version` = "2", `lowbit.tensors`
 *   (JSON: per quantized tensor its quantizer, format, bits, shape, granularity,
 *   mode and extra names, and for a weight of an If / Loop / Scan body its `scope`:
 *   the [node, attribute] path to that body).
 *
 * A quantized weight of a subgraph is stored as codes like any other: the body in
 * `lowbit.graph` holds no float copy of it. Decoding puts an empty placeholder
 * (its shape, no values) back where it was, so loaders find the weight in its body.
 *
 * Version 1 files (plan in the metadata, no quantizer names, no activation
 * points) are still read.
 *
 * @module
 */

import { defaultQuantizerFor, getFormat, LowbitError } from "@lowbit/core";
import type { Codes, Granularity, QParams, QuantMode, QuantPoint } from "@lowbit/core";
import type { Attr, Graph, Model, TensorData } from "../ir.ts";
import { readOnnx, writeOnnx } from "../onnx.ts";
import { readSafetensors, writeSafetensors, writeSafetensorsFile } from "../safetensors.ts";
import { elementCount } from "../tensor_data.ts";

/** One quantized tensor of a lowbit file. */
export interface LowbitTensor {
  /** Registered quantizer that made the codes (default: the built-in one for the format). */
  quantizer?: string;
  /** Registry format name ("int4", "fp8_e4m3fn", "nvfp4", ...). */
  format: string;
  /** Bits per code, 1–16. */
  bits: number;
  /** Shape of the (float) tensor. */
  shape: number[];
  /** Granularity of `scale` / `zeroPoint`. */
  granularity: Granularity;
  /** Symmetric or affine. */
  mode: QuantMode;
  /** One code per element, row-major (Uint8Array for bits ≤ 8, else Uint16Array). */
  codes: Codes;
  /** Scales, one per tensor / channel / group. */
  scale: Float32Array;
  /** Zero points, one per scale. */
  zeroPoint: Int32Array;
  /** Format-specific extra arrays (block scale codes, a tensor scale, ...), by name. */
  extra?: Record<string, TensorData>;
}

/** The content of a lowbit file. */
export interface LowbitFile {
  /** The model; quantized weights are absent from its initializers (see `tensors`). */
  model: Model;
  /** The quantization plan, as the JSON it was written from. */
  plan: unknown;
  /** Quantized tensors by the initializer name they replace. */
  tensors: Map<string, LowbitTensor>;
  /** Activation quantization points (with their fitted parameters). */
  activations: QuantPoint[];
}

const VERSION = "2";

interface TensorMeta {
  quantizer?: string;
  format: string;
  bits: number;
  shape: number[];
  granularity: Granularity;
  mode: QuantMode;
  extra: string[];
  /** The [node, attribute] path of the subgraph holding it (absent: the top-level graph). */
  scope?: [string, string][];
}

type ScopePath = [string, string][];

/**
 * The graph without the subgraph initializers named in `drop` (any depth), and where each was.
 */
function stripSubgraphWeights(
  g: Graph,
  drop: ReadonlySet<string>,
  path: ScopePath,
  found: Map<string, ScopePath>,
): Graph {
  let inits = g.initializers;
  if (path.length) {
    for (const name of g.initializers.keys()) {
      if (!drop.has(name)) continue;
      if (inits === g.initializers) inits = new Map(g.initializers);
      inits.delete(name);
      found.set(name, path);
    }
  }
  let changed = inits !== g.initializers;
  const nodes = g.nodes.map((n) => {
    let attrs = n.attrs;
    for (const [k, a] of Object.entries(n.attrs)) {
      if (a.kind !== "graph") continue;
      const sub = stripSubgraphWeights(a.value, drop, [...path, [n.name, k]], found);
      if (sub !== a.value) attrs = { ...attrs, [k]: { kind: "graph", value: sub } };
    }
    if (attrs !== n.attrs) changed = true;
    return attrs === n.attrs ? n : { ...n, attrs };
  });
  return changed ? { ...g, nodes, initializers: inits } : g;
}

/** The subgraph at a scope path, or undefined. */
function subgraphAt(g: Graph, path: ScopePath): Graph | undefined {
  let cur: Graph | undefined = g;
  for (const [node, attr] of path) {
    const a: Attr | undefined = cur?.nodes.find((n) => n.name === node)?.attrs[attr];
    cur = a && a.kind === "graph" ? a.value : undefined;
  }
  return cur;
}

/**
 * Packs codes LSB-first at `bits` per code (1 ≤ bits ≤ 8).
 *
 * @param codes one code per element
 * @param bits bits per code
 * @returns ceil(n·bits/8) bytes
 *
 * @example
 * ```ts
 * import { packCodes } from "@lowbit/graph";
 * const b = packCodes(new Uint8Array([1, 2, 3]), 4);
 * if (b.length !== 2 || b[0] !== 0x21 || b[1] !== 0x03) throw new Error();
 * ```
 */
export function packCodes(codes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((codes.length * bits) / 8));
  const mask = (1 << bits) - 1;
  let bit = 0;
  for (let i = 0; i < codes.length; i++, bit += bits) {
    const v = codes[i] & mask;
    const byte = bit >> 3, off = bit & 7;
    out[byte] |= (v << off) & 0xff;
    if (off + bits > 8) out[byte + 1] |= v >> (8 - off);
  }
  return out;
}

/**
 * Unpacks `n` codes of `bits` bits from LSB-first packed bytes.
 *
 * @param bytes packed codes
 * @param n number of codes
 * @param bits bits per code (1–8)
 * @returns one code per element
 *
 * @example
 * ```ts
 * import { unpackCodes } from "@lowbit/graph";
 * if (unpackCodes(new Uint8Array([0x21, 0x03]), 3, 4).join() !== "1,2,3") throw new Error();
 * ```
 */
export function unpackCodes(bytes: Uint8Array, n: number, bits: number): Uint8Array {
  const out = new Uint8Array(n);
  const mask = (1 << bits) - 1;
  let bit = 0;
  for (let i = 0; i < n; i++, bit += bits) {
    const byte = bit >> 3, off = bit & 7;
    let v = bytes[byte] >> off;
    if (off + bits > 8) v |= bytes[byte + 1] << (8 - off);
    out[i] = v & mask;
  }
  return out;
}

/**
 * Encodes a quantized model as lowbit file bytes (see the module doc for the layout).
 *
 * @param model the model; initializers named in `tensors` are replaced by them
 * @param plan the quantization plan (any JSON-serialisable value)
 * @param tensors quantized tensors by initializer name
 * @returns the file's bytes
 * @throws {LowbitError} `INVALID_ARGUMENT` naming the tensor for codes that do
 *   not fit `bits` or do not match the shape
 *
 * @example
 * ```ts
 * import { encodeLowbitFile, decodeLowbitFile, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(Deno.readFileSync("fixtures/digits/mlp.onnx"));
 * const [name, w] = [...model.graph.initializers].find(([, t]) => t.shape.length === 2)!;
 * const codes = new Uint8Array(w.data.length).fill(9);
 * const bytes = encodeLowbitFile(model, { preset: "w4" }, new Map([[name, {
 *   format: "uint4", bits: 4, shape: w.shape, granularity: { kind: "tensor" }, mode: "affine",
 *   codes, scale: new Float32Array([0.1]), zeroPoint: new Int32Array([8]) }]]));
 * const back = decodeLowbitFile(bytes);
 * if (back.tensors.get(name)?.codes[0] !== 9 || back.model.graph.initializers.has(name)) throw new Error();
 * ```
 */
export function encodeLowbitFile(
  model: Model,
  plan: unknown,
  tensors: ReadonlyMap<string, LowbitTensor>,
  activations: readonly QuantPoint[] = [],
): Uint8Array {
  const { st, meta } = layout(model, plan, tensors, activations);
  return writeSafetensors(st, meta);
}

/**
 * Writes a lowbit file atomically (temporary file, then rename).
 *
 * @param path the file (by convention `*.lowbit`)
 * @param model the model; initializers named in `tensors` are replaced by them
 * @param plan the quantization plan (any JSON-serialisable value)
 * @param tensors quantized tensors by initializer name
 * @returns when the file is in place
 * @throws {LowbitError} `INVALID_ARGUMENT` for inconsistent tensors, `IO_ERROR` when writing fails
 *
 * @example
 * ```ts
 * import { readLowbitFile, writeLowbitFile, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(Deno.readFileSync("fixtures/digits/mlp.onnx"));
 * const path = await Deno.makeTempFile({ suffix: ".lowbit" });
 * await writeLowbitFile(path, model, { entries: [] }, new Map());
 * const back = await readLowbitFile(path);
 * if (back.model.graph.initializers.size !== model.graph.initializers.size) throw new Error();
 * await Deno.remove(path);
 * ```
 */
export async function writeLowbitFile(
  path: string,
  model: Model,
  plan: unknown,
  tensors: ReadonlyMap<string, LowbitTensor>,
  activations: readonly QuantPoint[] = [],
): Promise<void> {
  const { st, meta } = layout(model, plan, tensors, activations);
  await writeSafetensorsFile(path, st, meta);
}

/**
 * Reads a lowbit file.
 *
 * @param path the file
 * @returns model, plan and quantized tensors
 * @throws {LowbitError} `IO_ERROR` when the file cannot be read, `PARSE_ERROR`
 *   naming the file (and tensor) when it is not a valid lowbit file
 *
 * @example
 * ```ts
 * import { readLowbitFile } from "@lowbit/graph";
 * try {
 *   await readLowbitFile("does/not/exist.lowbit");
 *   throw new Error("unreachable");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "IO_ERROR") throw e;
 * }
 * ```
 */
export async function readLowbitFile(path: string): Promise<LowbitFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError("IO_ERROR", `cannot read: ${(e as Error).message}`, { file: path });
  }
  return decodeLowbitFile(bytes, path);
}

/**
 * Decodes lowbit file bytes (for environments without a file system).
 *
 * @param bytes the file's bytes
 * @param fileName the file to name in errors
 * @returns model, plan and quantized tensors
 * @throws {LowbitError} `PARSE_ERROR` naming the file (and tensor) when invalid
 *
 * @example
 * ```ts
 * import { decodeLowbitFile, writeSafetensors } from "@lowbit/graph";
 * try {
 *   decodeLowbitFile(writeSafetensors(new Map()), "plain.safetensors");
 *   throw new Error("unreachable");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "PARSE_ERROR") throw e;
 * }
 * ```
 */
export function decodeLowbitFile(bytes: Uint8Array, fileName?: string): LowbitFile {
  const file = fileName !== undefined ? { file: fileName } : {};
  const fail = (msg: string, tensor?: string): never => {
    throw new LowbitError(
      "PARSE_ERROR",
      `invalid lowbit file: ${msg}`,
      tensor ? { ...file, tensor } : file,
    );
  };
  const st = readSafetensors(bytes, { fileName });
  const md = st.metadata;
  const version = md["lowbit.version"];
  if (version !== VERSION && version !== "1") {
    fail(`lowbit.version is ${JSON.stringify(version)}, expected "${VERSION}" (or "1")`);
  }
  const graphBytes = st.tensors.get("lowbit.graph");
  if (!graphBytes || graphBytes.dtype !== "uint8") fail("no lowbit.graph tensor");
  const model = readOnnx(graphBytes!.data as Uint8Array, { fileName });
  let plan: unknown, metas: Record<string, TensorMeta>, acts: unknown;
  const text = jsonText(st, fail);
  try {
    plan = planOf(st, fail);
    metas = JSON.parse(md["lowbit.tensors"] ?? "{}");
    acts = JSON.parse(text("lowbit.activations") ?? "[]");
  } catch (e) {
    return fail(`metadata is not JSON (${(e as Error).message})`);
  }
  const activations = parseActivations(acts, fail);
  if (typeof metas !== "object" || metas === null || Array.isArray(metas)) {
    fail("lowbit.tensors is not an object");
  }
  const inits = new Map(model.graph.initializers);
  for (const [k, t] of st.tensors) if (k.startsWith("init/")) inits.set(k.slice(5), t);
  const tensors = new Map<string, LowbitTensor>();
  for (const [name, m] of Object.entries(metas!)) {
    const get = (k: string): TensorData =>
      st.tensors.get(`q/${name}/${k}`) ?? fail(`missing ${k}`, name);
    if (
      typeof m !== "object" || m === null || typeof m.format !== "string" ||
      !Number.isInteger(m.bits) ||
      m.bits < 1 || m.bits > 16 || !Array.isArray(m.shape) || typeof m.granularity !== "object" ||
      !Array.isArray(m.extra ?? [])
    ) {
      fail("bad tensor metadata", name);
    }
    let n = 0;
    try {
      n = elementCount(m.shape);
    } catch (e) {
      fail((e as Error).message, name);
    }
    const c = get("codes");
    let codes: Codes;
    if (m.bits <= 8) {
      if (c.dtype !== "uint8" || c.data.length !== Math.ceil((n * m.bits) / 8)) {
        fail("codes length disagrees with shape × bits", name);
      }
      codes = unpackCodes(c.data as Uint8Array, n, m.bits);
    } else {
      if (c.dtype !== "uint16" || c.data.length !== n) {
        fail("codes length disagrees with shape", name);
      }
      codes = c.data as Uint16Array;
    }
    const scale = get("scale"), zp = get("zero_point");
    if (scale.dtype !== "float32" || zp.dtype !== "int32" || scale.data.length !== zp.data.length) {
      fail("scale must be F32 and zero_point I32 of the same length", name);
    }
    const t: LowbitTensor = {
      ...(typeof m.quantizer === "string" ? { quantizer: m.quantizer } : {}),
      format: m.format,
      bits: m.bits,
      shape: [...m.shape],
      granularity: m.granularity,
      mode: m.mode,
      codes,
      scale: scale.data as Float32Array,
      zeroPoint: zp.data as Int32Array,
    };
    if (m.extra?.length) t.extra = Object.fromEntries(m.extra.map((k) => [k, get(`x/${k}`)]));
    tensors.set(name, t);
    inits.delete(name);
    if (m.scope !== undefined) {
      // A weight of a subgraph: an empty placeholder goes back into its body.
      const ok = Array.isArray(m.scope) &&
        m.scope.every((p) =>
          Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === "string")
        );
      const body = ok ? subgraphAt(model.graph, m.scope) : undefined;
      if (!body) fail(`scope ${JSON.stringify(m.scope)} names no subgraph of the graph`, name);
      body!.initializers.set(name, {
        dtype: "float32",
        shape: [...m.shape],
        data: new Float32Array(0),
      });
    }
  }
  return {
    model: { ...model, graph: { ...model.graph, initializers: inits } },
    plan,
    tensors,
    activations,
  };
}

type Safetensors = ReturnType<typeof readSafetensors>;

/** The text of a U8 JSON tensor of the file, if present. */
function jsonText(st: Safetensors, fail: (msg: string) => never) {
  return (k: string): string | undefined => {
    const t = st.tensors.get(k);
    if (t === undefined) return undefined;
    if (t.dtype !== "uint8") fail(`${k} must be U8 JSON bytes`);
    return new TextDecoder().decode(t.data as Uint8Array);
  };
}

/** The plan of a file: a JSON tensor (version 2) or metadata (version 1). */
function planOf(st: Safetensors, fail: (msg: string) => never): unknown {
  return JSON.parse(jsonText(st, fail)("lowbit.plan") ?? st.metadata["lowbit.plan"] ?? "null");
}

/**
 * The plan of a lowbit file, read without decoding its graph or tensors (to see which plugins
 * made it before loading it).
 *
 * @param bytes the file's bytes
 * @param fileName the file to name in errors
 * @returns the plan as JSON (null when the file has none)
 * @throws {LowbitError} `PARSE_ERROR` naming the file when it is not a lowbit file
 *
 * @example
 * ```ts
 * import { readLowbitPlan } from "@lowbit/graph";
 * try {
 *   readLowbitPlan(new Uint8Array(8), "x.lowbit");
 *   throw new Error("unreachable");
 * } catch (e) {
 *   if ((e as { code?: string }).code !== "PARSE_ERROR") throw e;
 * }
 * ```
 */
export function readLowbitPlan(bytes: Uint8Array, fileName?: string): unknown {
  const fail = (msg: string): never => {
    throw new LowbitError(
      "PARSE_ERROR",
      `invalid lowbit file: ${msg}`,
      fileName !== undefined ? { file: fileName } : {},
    );
  };
  const st = readSafetensors(bytes, { fileName });
  try {
    return planOf(st, fail);
  } catch (e) {
    if (e instanceof LowbitError) throw e;
    return fail(`metadata is not JSON (${(e as Error).message})`);
  }
}

/** Checks and converts the JSON activation points of a file. */
function parseActivations(
  json: unknown,
  fail: (msg: string, tensor?: string) => never,
): QuantPoint[] {
  if (!Array.isArray(json)) fail("lowbit.activations is not a list");
  const nums = (v: unknown): v is number[] =>
    Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isFinite(x));
  return (json as unknown[]).map((p, i) => {
    const o = (p ?? {}) as Record<string, unknown>;
    const q = (o.params ?? {}) as Record<string, unknown>;
    const name = typeof o.value === "string" ? o.value : undefined;
    if (
      !name || typeof o.quantizer !== "string" || typeof q.format !== "string" ||
      typeof q.granularity !== "object" || q.granularity === null ||
      (q.mode !== "symmetric" && q.mode !== "affine") || !nums(q.scale) || !nums(q.zeroPoint) ||
      q.scale.length !== q.zeroPoint.length
    ) {
      return fail(`activation point ${i} is malformed`, name);
    }
    const extra = q.extra as Record<string, unknown> | undefined;
    if (extra !== undefined && (typeof extra !== "object" || !Object.values(extra).every(nums))) {
      return fail(`activation point ${i} has bad extras`, name);
    }
    const params: QParams = {
      format: q.format,
      granularity: q.granularity as Granularity,
      mode: q.mode,
      scale: Float32Array.from(q.scale),
      zeroPoint: Int32Array.from(q.zeroPoint),
      ...(extra ? { extra: extra as Record<string, number[]> } : {}),
      ...(q.dynamic === true ? { dynamic: true } : {}),
      ...(Array.isArray(q.reads) && q.reads.every((r) => typeof r === "string")
        ? { reads: q.reads as string[] }
        : {}),
      ...(typeof q.quantMin === "number" ? { quantMin: q.quantMin } : {}),
      ...(typeof q.quantMax === "number" ? { quantMax: q.quantMax } : {}),
    };
    return {
      value: name,
      role: "activation",
      quantizer: o.quantizer,
      params,
      ...(typeof o.by === "string" ? { by: o.by } : {}),
    };
  });
}

/**
 * The quantization points of a decoded lowbit file: one per quantized weight (its parameters
 * from the file, its codes in `file.tensors`) and the file's activation points.
 *
 * @param file a decoded lowbit file
 * @returns the points, weights first
 *
 * @example
 * ```ts
 * import { lowbitPoints } from "@lowbit/graph";
 * const file = { model: {} as never, plan: null, activations: [], tensors: new Map([["w", {
 *   format: "int8", bits: 8, shape: [2], granularity: { kind: "tensor" as const },
 *   mode: "symmetric" as const, codes: new Uint8Array(2), scale: new Float32Array([0.5]),
 *   zeroPoint: new Int32Array(1) }]]) };
 * if (lowbitPoints(file)[0].quantizer !== "uniform") throw new Error();
 * ```
 */
export function lowbitPoints(file: LowbitFile): QuantPoint[] {
  const out: QuantPoint[] = [];
  for (const [name, t] of file.tensors) {
    const extra: Record<string, number[]> = {};
    for (const [k, x] of Object.entries(t.extra ?? {})) {
      extra[k] = Array.from(x.data as ArrayLike<number>);
    }
    let quantizer = t.quantizer;
    if (quantizer === undefined) {
      try {
        quantizer = defaultQuantizerFor(getFormat(t.format));
      } catch {
        quantizer = "uniform"; // an unknown format is reported, with its name, when it is used
      }
    }
    out.push({
      value: name,
      role: "weight",
      quantizer,
      params: {
        format: t.format,
        granularity: t.granularity,
        mode: t.mode,
        scale: t.scale,
        zeroPoint: t.zeroPoint,
        ...(Object.keys(extra).length ? { extra } : {}),
      },
    });
  }
  return [...out, ...file.activations];
}

function layout(
  model: Model,
  plan: unknown,
  tensors: ReadonlyMap<string, LowbitTensor>,
  activations: readonly QuantPoint[],
): { st: Map<string, TensorData>; meta: Record<string, string> } {
  const st = new Map<string, TensorData>();
  const keep = new Map<string, TensorData>();
  const floats = new Map<string, TensorData>();
  for (const [k, t] of model.graph.initializers) {
    if (tensors.has(k)) continue;
    if (t.dtype === "string") keep.set(k, t);
    else floats.set(k, t);
  }
  // Quantized weights of subgraphs leave their bodies: their codes are stored below.
  const scopes = new Map<string, ScopePath>();
  const graph = stripSubgraphWeights(model.graph, new Set(tensors.keys()), [], scopes);
  const graphBytes = writeOnnx({ ...model, graph: { ...graph, initializers: keep } });
  st.set("lowbit.graph", { dtype: "uint8", shape: [graphBytes.length], data: graphBytes });
  for (const [k, t] of floats) st.set(`init/${k}`, t);
  const metas: Record<string, TensorMeta> = {};
  for (const [name, t] of tensors) {
    const subject = { tensor: name };
    const n = elementCount(t.shape, subject);
    if (!Number.isInteger(t.bits) || t.bits < 1 || t.bits > 16) {
      throw new LowbitError("INVALID_ARGUMENT", `bits ${t.bits} not in 1..16`, subject);
    }
    if (t.codes.length !== n) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${t.codes.length} codes for shape [${t.shape}]`,
        subject,
      );
    }
    const limit = 2 ** t.bits;
    for (let i = 0; i < n; i++) {
      if (t.codes[i] >= limit) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `code ${t.codes[i]} at ${i} does not fit ${t.bits} bits`,
          subject,
        );
      }
    }
    if (t.scale.length !== t.zeroPoint.length) {
      throw new LowbitError("INVALID_ARGUMENT", "scale and zeroPoint lengths differ", subject);
    }
    if (t.bits <= 8) {
      const packed = packCodes(
        t.codes instanceof Uint8Array ? t.codes : Uint8Array.from(t.codes),
        t.bits,
      );
      st.set(`q/${name}/codes`, { dtype: "uint8", shape: [packed.length], data: packed });
    } else {
      st.set(`q/${name}/codes`, { dtype: "uint16", shape: [n], data: Uint16Array.from(t.codes) });
    }
    st.set(`q/${name}/scale`, { dtype: "float32", shape: [t.scale.length], data: t.scale });
    st.set(`q/${name}/zero_point`, {
      dtype: "int32",
      shape: [t.zeroPoint.length],
      data: t.zeroPoint,
    });
    for (const [k, x] of Object.entries(t.extra ?? {})) st.set(`q/${name}/x/${k}`, x);
    metas[name] = {
      ...(t.quantizer ? { quantizer: t.quantizer } : {}),
      format: t.format,
      bits: t.bits,
      shape: [...t.shape],
      granularity: t.granularity,
      mode: t.mode,
      extra: Object.keys(t.extra ?? {}),
      ...(scopes.has(name) ? { scope: scopes.get(name) } : {}),
    };
  }
  const bytes = (v: unknown): TensorData => {
    const b = new TextEncoder().encode(JSON.stringify(v));
    return { dtype: "uint8", shape: [b.length], data: b };
  };
  st.set("lowbit.plan", bytes(plan ?? null));
  st.set(
    "lowbit.activations",
    bytes(activations.map((p) => ({
      value: p.value,
      quantizer: p.quantizer,
      ...(p.by ? { by: p.by } : {}),
      params: {
        ...p.params,
        scale: [...p.params.scale],
        zeroPoint: [...p.params.zeroPoint],
      },
    }))),
  );
  const meta = { "lowbit.version": VERSION, "lowbit.tensors": JSON.stringify(metas) };
  return { st, meta };
}
