/**
 * A small protobuf codec driven by a schema table: no generated code, no `eval` /
 * `new Function`, so it runs where string code generation is refused (Cloudflare workerd, strict
 * CSP pages). It reproduces what protobufjs 8 (the library lowbit used before) does with a
 * schema loaded by `Root.fromJSON` (which gives its fields proto3 presence):
 *
 * - decoding: a singular scalar is an own property only when it differs from its default (`""`,
 *   `0`, `+0`, empty bytes), except in a oneof, where it is kept and clears the oneof's other
 *   members; messages are own properties whenever present; every repeated field is an own array
 *   (empty when absent); reading an absent singular field gives its default through the
 *   message's prototype (`null` for messages); strings must be valid UTF-8; a field with an
 *   unexpected wire type, and every unknown field, is kept raw in a non-enumerable `$unknowns`
 *   array; int64 / uint64 are numbers when they are safe integers, else `{ low, high, unsigned }`
 *   (the shape of protobufjs' `Long`); bytes are views into the input;
 * - encoding: own, non-null fields in field-number order (singular scalars only when not the
 *   default, unless in a oneof), repeated numeric fields packed when the schema says so, then
 *   `$unknowns` — the same bytes protobufjs writes for the same object.
 *
 * @module
 */

/** Scalar field types this codec knows. */
export type ScalarType = "int32" | "int64" | "uint64" | "float" | "double" | "string" | "bytes";

/** One field of a message schema. */
export interface FieldSpec {
  /** Field number. */
  id: number;
  /** Property name in decoded objects (protobufjs' camelCase). */
  name: string;
  /** A scalar type or the name of a message in the same schema. */
  type: ScalarType | string;
  /** Repeated field. */
  repeated?: boolean;
  /** Repeated scalar written packed (decoding accepts both forms). */
  packed?: boolean;
  /** Name of the oneof the field belongs to (it then tracks presence: defaults are kept). */
  oneof?: string;
}

/** A schema: message name → fields. */
export type Schema = Record<string, FieldSpec[]>;

/** An int64 that is not a safe integer, as protobufjs' `Long` carries it. */
export interface LongBits {
  low: number;
  high: number;
  unsigned: boolean;
}

interface Field extends FieldSpec {
  msg: Message | undefined;
  wire: number;
  /** Other members of the field's oneof. */
  siblings: string[];
}

interface Message {
  name: string;
  fields: Field[];
  byId: Map<number, Field>;
  proto: object;
  repeated: string[];
}

/** A compiled schema (see {@link compileSchema}). */
export interface CompiledSchema {
  /** Messages by name. */
  readonly messages: ReadonlyMap<string, unknown>;
}

const SCALARS: Record<ScalarType, number> = {
  int32: 0,
  int64: 0,
  uint64: 0,
  float: 5,
  double: 1,
  string: 2,
  bytes: 2,
};

const EMPTY_ARRAY: readonly unknown[] = Object.freeze([]);

/** Largest message nesting accepted when decoding (guards the stack against hostile input). */
const MAX_DEPTH = 100;

/**
 * Checks and compiles a schema for {@link decodeMessage} / {@link encodeMessage}.
 *
 * @param schema message name → fields
 * @returns the compiled schema
 * @throws {Error} for duplicate field numbers or names, unknown types
 *
 * @example
 * ```ts
 * import { compileSchema, decodeMessage, encodeMessage } from "./_protobuf.ts";
 * const s = compileSchema({ Pt: [{ id: 1, name: "x", type: "int32" }] });
 * const bytes = encodeMessage(s, "Pt", { x: 150 });
 * if (bytes.join() !== "8,150,1") throw new Error(bytes.join());
 * if ((decodeMessage(s, "Pt", bytes) as { x: number }).x !== 150) throw new Error();
 * ```
 */
export function compileSchema(schema: Schema): CompiledSchema {
  const messages = new Map<string, Message>();
  for (const [name, specs] of Object.entries(schema)) {
    const ids = new Set<number>(), names = new Set<string>();
    for (const f of specs) {
      if (!Number.isInteger(f.id) || f.id < 1 || f.id > 536870911 || ids.has(f.id)) {
        throw new Error(`${name}: bad or duplicate field number ${f.id}`);
      }
      if (names.has(f.name)) throw new Error(`${name}: duplicate field name ${f.name}`);
      ids.add(f.id);
      names.add(f.name);
    }
    messages.set(name, {
      name,
      fields: [],
      byId: new Map(),
      proto: {},
      repeated: [],
    });
  }
  for (const [name, specs] of Object.entries(schema)) {
    const m = messages.get(name)!;
    const proto: Record<string, unknown> = {};
    for (const spec of [...specs].sort((a, b) => a.id - b.id)) {
      const scalar = spec.type in SCALARS;
      const msg = scalar ? undefined : messages.get(spec.type);
      if (!scalar && msg === undefined) {
        throw new Error(`${name}.${spec.name}: unknown type ${spec.type}`);
      }
      if (spec.packed && (!spec.repeated || !scalar || SCALARS[spec.type as ScalarType] === 2)) {
        throw new Error(`${name}.${spec.name}: only repeated numeric fields can be packed`);
      }
      const siblings = spec.oneof === undefined
        ? []
        : specs.filter((o) => o.oneof === spec.oneof && o !== spec).map((o) => o.name);
      if (spec.oneof !== undefined && spec.repeated) {
        throw new Error(`${name}.${spec.name}: a repeated field cannot be in a oneof`);
      }
      const wire = scalar ? SCALARS[spec.type as ScalarType] : 2;
      const field: Field = { ...spec, msg, wire, siblings };
      m.fields.push(field);
      m.byId.set(spec.id, field);
      if (spec.repeated) {
        m.repeated.push(spec.name);
        proto[spec.name] = EMPTY_ARRAY;
      } else {
        proto[spec.name] = msg
          ? null
          : spec.type === "string"
          ? ""
          : spec.type === "bytes"
          ? Object.freeze(new Uint8Array(0))
          : 0;
      }
    }
    m.proto = proto;
  }
  return { messages };
}

function message(s: CompiledSchema, name: string): Message {
  const m = (s.messages as Map<string, Message>).get(name);
  if (m === undefined) throw new Error(`unknown message type ${name}`);
  return m;
}

// *** decoding ***

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(what: string): never {
    throw new Error(`${what} at offset ${this.pos}`);
  }
  need(n: number, end: number): void {
    if (n > end - this.pos || n < 0) {
      throw new Error(`index out of range: ${this.pos} + ${n} > ${end}`);
    }
  }
  /** A varint's low 32 bits (the rest is read and dropped). */
  u32(end: number): number {
    const b = this.buf;
    let v = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= end) this.fail("truncated varint");
      const x = b[this.pos++];
      if (shift < 32) v |= (x & 0x7f) << shift;
      if (x < 0x80) return v >>> 0;
    }
    this.fail("varint longer than 10 bytes");
  }
  /** A varint as [low, high] 32-bit halves. */
  u64(end: number): [number, number] {
    const b = this.buf;
    let lo = 0, hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) this.fail("truncated varint");
      const x = b[this.pos++];
      if (i < 4) lo |= (x & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (x & 0x0f) << 28;
        hi |= (x & 0x7f) >> 4;
      } else hi |= (x & 0x7f) << (7 * i - 32);
      if (x < 0x80) return [lo >>> 0, hi >>> 0];
    }
    this.fail("varint longer than 10 bytes");
  }
  skip(wire: number, end: number, depth: number): void {
    switch (wire) {
      case 0:
        this.u64(end);
        return;
      case 1:
        this.need(8, end);
        this.pos += 8;
        return;
      case 2: {
        const n = this.u32(end);
        this.need(n, end);
        this.pos += n;
        return;
      }
      case 3: {
        if (depth > MAX_DEPTH) this.fail("groups nested too deeply");
        for (;;) {
          const tag = this.u32(end);
          if ((tag & 7) === 4) return;
          this.skip(tag & 7, end, depth + 1);
        }
      }
      case 5:
        this.need(4, end);
        this.pos += 4;
        return;
      default:
        this.fail(`invalid wire type ${wire}`);
    }
  }
}

/** A short ASCII string without TextDecoder's call overhead (undefined: not all ASCII). */
function shortString(b: Uint8Array, at: number, n: number): string | undefined {
  let s = "";
  for (let i = at; i < at + n; i++) {
    const c = b[i];
    if (c >= 0x80) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}

function int64Value(lo: number, hi: number, unsigned: boolean): number | LongBits {
  const n = unsigned ? hi * 4294967296 + lo : (hi | 0) * 4294967296 + lo;
  if (Number.isSafeInteger(n)) return n;
  return { low: lo | 0, high: hi | 0, unsigned };
}

function scalar(r: Reader, type: string, end: number): unknown {
  switch (type) {
    case "int32":
      return r.u32(end) | 0;
    case "int64":
    case "uint64": {
      const [lo, hi] = r.u64(end);
      return int64Value(lo, hi, type === "uint64");
    }
    case "float": {
      r.need(4, end);
      const v = r.view.getFloat32(r.pos, true);
      r.pos += 4;
      return v;
    }
    case "double": {
      r.need(8, end);
      const v = r.view.getFloat64(r.pos, true);
      r.pos += 8;
      return v;
    }
    case "string": {
      const n = r.u32(end);
      r.need(n, end);
      const s = n <= 64 ? shortString(r.buf, r.pos, n) : undefined;
      if (s !== undefined) {
        r.pos += n;
        return s;
      }
      let t: string;
      try {
        t = utf8.decode(r.buf.subarray(r.pos, r.pos + n));
      } catch {
        r.fail("invalid UTF-8 in a string");
      }
      r.pos += n;
      return t;
    }
    default: {
      const n = r.u32(end);
      r.need(n, end);
      const b = n === 0 ? new Uint8Array(0) : r.buf.subarray(r.pos, r.pos + n);
      r.pos += n;
      return b;
    }
  }
}

function decodeAt(r: Reader, m: Message, end: number, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) r.fail("messages nested too deeply");
  const out = Object.create(m.proto) as Record<string, unknown>;
  for (const k of m.repeated) out[k] = [];
  while (r.pos < end) {
    const tagStart = r.pos;
    const tag = r.u32(end);
    const id = tag >>> 3, wire = tag & 7;
    if (id === 0) r.fail("field number 0");
    const f = m.byId.get(id);
    if (f === undefined || (wire !== f.wire && !(wire === 2 && f.repeated && f.wire !== 2))) {
      // Unknown field, or a known one with another wire type: kept raw, like protobufjs.
      if (wire === 4) r.fail("unexpected end-group");
      r.skip(wire, end, depth);
      keepUnknown(out, r.buf, tagStart, r.pos);
      continue;
    }
    if (f.repeated && f.wire !== 2 && wire === 2) {
      // Packed run of numeric values (accepted whether or not the schema packs it).
      const n = r.u32(end);
      r.need(n, end);
      const stop = r.pos + n;
      const arr = out[f.name] as unknown[];
      while (r.pos < stop) arr.push(scalar(r, f.type, stop));
      continue;
    }
    let v: unknown;
    if (f.msg) {
      const n = r.u32(end);
      r.need(n, end);
      const stop = r.pos + n;
      v = decodeAt(r, f.msg, stop, depth + 1);
      r.pos = stop;
    } else v = scalar(r, f.type, end);
    if (f.repeated) (out[f.name] as unknown[]).push(v);
    else if (f.msg || f.oneof !== undefined || !isDefault(f.type, v)) {
      out[f.name] = v;
      // NOTE: delete only what is there: a delete turns the object into a slow dictionary.
      for (const o of f.siblings) if (Object.hasOwn(out, o)) delete out[o];
    } else if (Object.hasOwn(out, f.name)) delete out[f.name];
  }
  if (r.pos !== end) r.fail("message overruns its length");
  return out;
}

/** Whether a decoded singular scalar is its type's default (then not an own property). */
function isDefault(type: string, v: unknown): boolean {
  if (type === "string") return (v as string).length === 0;
  if (type === "bytes") return (v as Uint8Array).length === 0;
  if (typeof v === "number") return Object.is(v, 0);
  return false; // an int64 beyond 2^53 is never zero
}

/** Appends raw field bytes to the message's non-enumerable `$unknowns`. */
function keepUnknown(
  out: Record<string, unknown>,
  buf: Uint8Array,
  start: number,
  end: number,
): void {
  let u = out.$unknowns as Uint8Array[] | undefined;
  if (!Object.prototype.hasOwnProperty.call(out, "$unknowns")) {
    u = [];
    Object.defineProperty(out, "$unknowns", {
      value: u,
      writable: true,
      enumerable: false,
      configurable: true,
    });
  }
  u!.push(buf.subarray(start, end));
}

/**
 * Decodes one message.
 *
 * @param schema the compiled schema
 * @param type message name
 * @param bytes the encoded message
 * @returns the message object (see the module doc for its shape)
 * @throws {Error} for truncated or malformed input (the message names the offset)
 *
 * @example
 * ```ts
 * import { compileSchema, decodeMessage } from "./_protobuf.ts";
 * const s = compileSchema({ T: [{ id: 1, name: "v", type: "float", repeated: true, packed: true }] });
 * const m = decodeMessage(s, "T", new Uint8Array([10, 4, 0, 0, 128, 63])) as { v: number[] };
 * if (m.v.join() !== "1") throw new Error();
 * ```
 */
export function decodeMessage(
  schema: CompiledSchema,
  type: string,
  bytes: Uint8Array,
): Record<string, unknown> {
  const r = new Reader(bytes);
  return decodeAt(r, message(schema, type), bytes.length, 0);
}

// *** encoding ***

const utf8Enc = new TextEncoder();

function varintSize(v: number): number {
  // v: a uint32
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** An int64 / uint64 / int32 value as [low, high] 32-bit halves (two's complement). */
function halves(v: unknown, what: string): [number, number] {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`${what}: ${v} is not an integer`);
    const t = Math.trunc(v);
    const neg = t < 0;
    const a = Math.abs(t);
    let lo = a % 4294967296, hi = Math.floor(a / 4294967296) % 4294967296;
    if (neg) {
      lo = (~lo + 1) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
    return [lo >>> 0, hi >>> 0];
  }
  if (typeof v === "bigint") {
    const u = BigInt.asUintN(64, v);
    return [Number(u & 0xffffffffn), Number(u >> 32n)];
  }
  if (typeof v === "object" && v !== null && "low" in v && "high" in v) {
    const l = v as LongBits;
    return [l.low >>> 0, l.high >>> 0];
  }
  if (typeof v === "string" && /^-?\d+$/.test(v)) return halves(BigInt(v), what);
  throw new Error(`${what}: ${String(v)} is not an integer`);
}

function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varintSize(lo);
  let n = 5;
  for (let h = hi >>> 3; h !== 0; h >>>= 7) n++;
  return n;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Whether a singular field is written (own, non-null, and not a scalar default outside oneofs). */
function present(f: Field, o: Record<string, unknown>): boolean {
  const v = o[f.name];
  if (!Object.prototype.hasOwnProperty.call(o, f.name) || v === null || v === undefined) {
    return false;
  }
  if (f.msg || f.oneof !== undefined) return true;
  switch (f.type) {
    case "string":
      return v !== "";
    case "bytes":
      return (v as ArrayLike<number>).length > 0;
    case "float":
    case "double":
      return !Object.is(v, 0);
    case "int64":
    case "uint64":
      return typeof v === "object" ? ((v as LongBits).low | (v as LongBits).high) !== 0 : v !== 0;
    default:
      return v !== 0;
  }
}

function unknowns(o: Record<string, unknown>): Uint8Array[] | undefined {
  return Object.prototype.hasOwnProperty.call(o, "$unknowns")
    ? o.$unknowns as Uint8Array[] | undefined
    : undefined;
}

/** Byte sizes of nested messages, computed once by `sizeOf` and read back by `write`. */
type Sizes = Map<object, number>;

function scalarSize(type: string, v: unknown, what: string): number {
  switch (type) {
    case "int32": {
      const x = Number(v) | 0;
      return x < 0 ? 10 : varintSize(x);
    }
    case "int64":
    case "uint64": {
      const [lo, hi] = halves(v, what);
      return varint64Size(lo, hi);
    }
    case "float":
      return 4;
    case "double":
      return 8;
    case "string": {
      const n = utf8Length(String(v));
      return varintSize(n) + n;
    }
    default: {
      const b = bytesOf(v, what);
      return varintSize(b.length) + b.length;
    }
  }
}

function bytesOf(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  throw new Error(`${what}: expected bytes`);
}

function sizeOf(m: Message, o: Record<string, unknown>, sizes: Sizes, depth: number): number {
  if (depth > MAX_DEPTH) throw new Error("messages nested too deeply");
  let total = 0;
  for (const f of m.fields) {
    const tag = varintSize((f.id << 3) >>> 0);
    if (f.repeated) {
      const arr = o[f.name] as unknown[] | null | undefined;
      if (arr === null || arr === undefined || arr.length === 0) continue;
      if (f.packed) {
        let n = 0;
        for (const v of arr) n += scalarSize(f.type, v, `${m.name}.${f.name}`);
        sizes.set(arr, n);
        total += tag + varintSize(n) + n;
      } else {
        for (const v of arr) total += tag + valueSize(f, v, sizes, depth);
      }
    } else if (present(f, o)) total += tag + valueSize(f, o[f.name], sizes, depth);
  }
  for (const u of unknowns(o) ?? []) total += u.length;
  sizes.set(o, total);
  return total;
}

function valueSize(f: Field, v: unknown, sizes: Sizes, depth: number): number {
  if (f.msg) {
    const n = sizeOf(f.msg, v as Record<string, unknown>, sizes, depth + 1);
    return varintSize(n) + n;
  }
  return scalarSize(f.type, v, f.name);
}

class Writer {
  pos = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u32(v: number): void {
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }
  u64(lo: number, hi: number): void {
    while (hi !== 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }
  scalar(type: string, v: unknown, what: string): void {
    switch (type) {
      case "int32": {
        const x = Number(v) | 0;
        if (x < 0) this.u64(x >>> 0, 0xffffffff);
        else this.u32(x);
        return;
      }
      case "int64":
      case "uint64": {
        const [lo, hi] = halves(v, what);
        this.u64(lo, hi);
        return;
      }
      case "float":
        this.view.setFloat32(this.pos, Number(v), true);
        this.pos += 4;
        return;
      case "double":
        this.view.setFloat64(this.pos, Number(v), true);
        this.pos += 8;
        return;
      case "string": {
        const s = String(v);
        this.u32(utf8Length(s));
        this.pos += utf8Enc.encodeInto(s, this.buf.subarray(this.pos)).written;
        return;
      }
      default: {
        const b = bytesOf(v, what);
        this.u32(b.length);
        this.buf.set(b, this.pos);
        this.pos += b.length;
      }
    }
  }
}

function writeAt(w: Writer, m: Message, o: Record<string, unknown>, sizes: Sizes): void {
  for (const f of m.fields) {
    const tag = ((f.id << 3) | f.wire) >>> 0;
    if (f.repeated) {
      const arr = o[f.name] as unknown[] | null | undefined;
      if (arr === null || arr === undefined || arr.length === 0) continue;
      if (f.packed) {
        w.u32(((f.id << 3) | 2) >>> 0);
        w.u32(sizes.get(arr)!);
        for (const v of arr) w.scalar(f.type, v, f.name);
      } else {
        for (const v of arr) {
          w.u32(tag);
          writeValue(w, f, v, sizes);
        }
      }
    } else if (present(f, o)) {
      w.u32(tag);
      writeValue(w, f, o[f.name], sizes);
    }
  }
  for (const u of unknowns(o) ?? []) {
    w.buf.set(u, w.pos);
    w.pos += u.length;
  }
}

function writeValue(w: Writer, f: Field, v: unknown, sizes: Sizes): void {
  if (f.msg) {
    const o = v as Record<string, unknown>;
    w.u32(sizes.get(o)!);
    writeAt(w, f.msg, o, sizes);
  } else w.scalar(f.type, v, f.name);
}

/**
 * Encodes one message: fields that are own, non-null properties (repeated ones when non-empty),
 * in field-number order.
 *
 * @param schema the compiled schema
 * @param type message name
 * @param msg the message object
 * @returns the bytes
 * @throws {Error} when a value does not fit its field's type
 *
 * @example
 * ```ts
 * import { compileSchema, encodeMessage } from "./_protobuf.ts";
 * const s = compileSchema({ T: [{ id: 2, name: "s", type: "string" }, { id: 1, name: "i", type: "int64" }] });
 * const b = encodeMessage(s, "T", { s: "é", i: -1 });
 * if (b.length !== 1 + 10 + 1 + 1 + 2 || b[0] !== 8 || b[11] !== 18) throw new Error(b.join());
 * ```
 */
export function encodeMessage(
  schema: CompiledSchema,
  type: string,
  msg: Record<string, unknown>,
): Uint8Array {
  const m = message(schema, type);
  const sizes: Sizes = new Map();
  // A message object met twice (shared sub-objects) keeps one size: the sizes are identical.
  const n = sizeOf(m, msg, sizes, 0);
  const w = new Writer(new Uint8Array(n));
  writeAt(w, m, msg, sizes);
  if (w.pos !== n) throw new Error(`internal: wrote ${w.pos} bytes of ${n}`);
  return w.buf;
}
