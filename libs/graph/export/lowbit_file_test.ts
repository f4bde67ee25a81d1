import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { TensorData } from "../ir.ts";
import { ifNodeOf, modelOf } from "../model_of.ts";
import { readOnnx } from "../onnx.ts";
import { readSafetensors, writeSafetensors } from "../safetensors.ts";
import {
  decodeLowbitFile,
  encodeLowbitFile,
  type LowbitTensor,
  packCodes,
  readLowbitFile,
  unpackCodes,
  writeLowbitFile,
} from "./lowbit_file.ts";

const CNN = "fixtures/digits/cnn.onnx";

function quantizedCnn(): {
  tensors: Map<string, LowbitTensor>;
  model: ReturnType<typeof readOnnx>;
} {
  const model = readOnnx(Deno.readFileSync(CNN));
  const tensors = new Map<string, LowbitTensor>();
  let k = 0;
  for (const [name, t] of model.graph.initializers) {
    if (t.shape.length < 2) continue;
    const n = t.data.length;
    const bits = [4, 3, 8, 2, 12][k++ % 5];
    const codes = bits > 8 ? new Uint16Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) codes[i] = (i * 7 + k) % 2 ** bits;
    const lt: LowbitTensor = {
      format: `fmt${bits}`,
      bits,
      shape: [...t.shape],
      granularity: { kind: "channel", axis: 0 },
      mode: "symmetric",
      codes,
      scale: Float32Array.from({ length: t.shape[0] }, (_, i) => 0.01 * (i + 1)),
      zeroPoint: new Int32Array(t.shape[0]),
    };
    if (bits === 4) {
      lt.extra = {
        block_scales: { dtype: "uint8", shape: [3], data: new Uint8Array([127, 128, 1]) },
      };
    }
    tensors.set(name, lt);
  }
  return { tensors, model };
}

Deno.test("packCodes() and unpackCodes() round-trip every width 1..8", () => {
  for (let bits = 1; bits <= 8; bits++) {
    const codes = Uint8Array.from({ length: 37 }, (_, i) => (i * 13 + bits) % 2 ** bits);
    const packed = packCodes(codes, bits);
    assert.equal(packed.length, Math.ceil((37 * bits) / 8));
    assert.deepEqual(unpackCodes(packed, 37, bits), codes);
  }
});

Deno.test("writeLowbitFile() round-trips model, plan and quantized tensors", async () => {
  const { model, tensors } = quantizedCnn();
  assert.ok(tensors.size >= 3);
  const plan = { version: 1, entries: [{ value: "x", scale: [0.5] }], note: "ü" };
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/cnn.lowbit`;
    await writeLowbitFile(path, model, plan, tensors);
    const back = await readLowbitFile(path);
    assert.deepEqual(back.plan, plan);
    assert.deepStrictEqual(back.tensors, tensors);
    const expected = new Map([...model.graph.initializers].filter(([k]) => !tensors.has(k)));
    assert.deepStrictEqual(back.model.graph.initializers, expected);
    assert.deepStrictEqual(back.model.graph.nodes, model.graph.nodes);
    assert.deepStrictEqual(back.model.graph.inputs, model.graph.inputs);
    // Packed: the file is smaller than the float model.
    const size = (await Deno.stat(path)).size;
    assert.ok(size < Deno.statSync(CNN).size, `${size}`);
    // It is a valid safetensors file with the documented layout.
    const st = readSafetensors(await Deno.readFile(path));
    assert.equal(st.metadata["lowbit.version"], "2");
    assert.ok(st.tensors.has("lowbit.graph") && st.tensors.has("lowbit.plan"));
    // The header stays small: the plan is a tensor, not metadata.
    assert.equal(st.metadata["lowbit.plan"], undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeLowbitFile() rejects codes that do not fit their bits or shape", () => {
  const { model, tensors } = quantizedCnn();
  const [name, t] = [...tensors][0];
  const bad = new Map([[name, { ...t, bits: 2, codes: new Uint8Array(t.codes.length).fill(4) }]]);
  assert.throws(
    () => encodeLowbitFile(model, null, bad),
    (e) => e instanceof LowbitError && e.code === "INVALID_ARGUMENT" && e.subject.tensor === name,
  );
  const short = new Map([[name, { ...t, codes: new Uint8Array(3) }]]);
  assert.throws(() => encodeLowbitFile(model, null, short), /3 codes for shape/);
});

Deno.test("decodeLowbitFile() rejects files that are not lowbit files or miss tensors", () => {
  const parse = (e: unknown) => e instanceof LowbitError && e.code === "PARSE_ERROR";
  assert.throws(() => decodeLowbitFile(writeSafetensors(new Map()), "a.lowbit"), parse);
  const { model, tensors } = quantizedCnn();
  const st = readSafetensors(encodeLowbitFile(model, {}, tensors));
  const name = [...tensors.keys()][0];
  const missing = new Map<string, TensorData>(st.tensors);
  missing.delete(`q/${name}/scale`);
  assert.throws(
    () => decodeLowbitFile(writeSafetensors(missing, st.metadata)),
    (e) => parse(e) && (e as LowbitError).subject.tensor === name,
  );
  const wrong = new Map<string, TensorData>(st.tensors);
  wrong.set(`q/${name}/codes`, { dtype: "uint8", shape: [1], data: new Uint8Array(1) });
  assert.throws(() => decodeLowbitFile(writeSafetensors(wrong, st.metadata)), /codes length/);
  assert.throws(
    () => decodeLowbitFile(writeSafetensors(st.tensors, { ...st.metadata, "lowbit.tensors": "{" })),
    parse,
  );
});

Deno.test("a quantized weight of an If branch is stored as codes only, and put back in its branch", () => {
  const w: TensorData = { dtype: "float32", shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  const branch = (tag: string) => ({
    name: tag,
    inputs: [],
    outputs: [{ name: `y_${tag}`, dtype: "float32" as const }],
    valueInfo: new Map(),
    initializers: new Map([[`w_${tag}`, w]]),
    nodes: [{
      name: `mm_${tag}`,
      op: "MatMul",
      domain: "",
      inputs: ["x", `w_${tag}`],
      outputs: [`y_${tag}`],
      attrs: {},
    }],
  });
  const model = modelOf({
    inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 2] }, {
      name: "c",
      dtype: "bool" as const,
      shape: [],
    }],
    outputs: [{ name: "y", dtype: "float32" as const }],
    nodes: [ifNodeOf("if", "c", ["y"], branch("a"), branch("b"))],
  });
  const q: LowbitTensor = {
    format: "int8",
    bits: 8,
    shape: [2, 2],
    granularity: { kind: "tensor" },
    mode: "symmetric",
    codes: Uint8Array.of(1, 2, 3, 4),
    scale: Float32Array.of(1),
    zeroPoint: Int32Array.of(0),
  };
  const bytes = encodeLowbitFile(model, {}, new Map([["w_a", q]]));
  const st = readSafetensors(bytes);
  // The graph bytes: w_a is gone from its branch (w_b, not quantized, stays there).
  const stored = readOnnx(st.tensors.get("lowbit.graph")!.data as Uint8Array);
  const body = (m: typeof stored, k: string) => {
    const a = m.graph.nodes[0].attrs[k];
    return a.kind === "graph" ? a.value : assert.fail(k);
  };
  assert.deepEqual([...body(stored, "then_branch").initializers.keys()], []);
  assert.deepEqual([...body(stored, "else_branch").initializers.keys()], ["w_b"]);
  // Decoded: an empty placeholder of its shape back in the then branch, its codes in `tensors`.
  const back = decodeLowbitFile(bytes);
  const ph = body(back.model, "then_branch").initializers.get("w_a")!;
  assert.deepEqual([ph.shape, ph.data.length], [[2, 2], 0]);
  assert.deepEqual([...back.tensors.get("w_a")!.codes], [1, 2, 3, 4]);
  assert.ok(!back.model.graph.initializers.has("w_a"));
  // A scope naming no subgraph is refused, naming the tensor.
  const metas = JSON.parse(st.metadata["lowbit.tensors"]);
  assert.deepEqual(metas.w_a.scope, [["if", "then_branch"]]);
  metas.w_a.scope = [["if", "no_branch"]];
  const bad = writeSafetensors(st.tensors, {
    ...st.metadata,
    "lowbit.tensors": JSON.stringify(metas),
  });
  assert.throws(
    () => decodeLowbitFile(bad, "x.lowbit"),
    (e) =>
      e instanceof LowbitError && e.code === "PARSE_ERROR" && e.subject.tensor === "w_a" &&
      /names no subgraph/.test(e.message),
  );
});
