// Per-op tests: each case is a one-node ONNX model run by onnxruntime-web (the
// oracle) and by our executor (kernels and TypeScript reference), compared at
// rtol 1e-4 / atol 1e-5 (integer and bool outputs exactly).

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import type { Attr, DType, Model, TensorData } from "../ir.ts";
import { writeOnnx } from "../onnx.ts";
import { createExecutor } from "./executor.ts";
import { assertClose, pattern } from "./_testing.ts";

ort.env.wasm.numThreads = 1;

interface Case {
  op: string;
  opset?: number;
  attrs?: Record<string, Attr>;
  inputs: (TensorData | undefined)[];
  outputs?: number;
  label?: string;
}

const i64 = (v: number[], shape = [v.length]): TensorData => ({
  dtype: "int64",
  shape,
  data: BigInt64Array.from(v, BigInt),
});
const f = (v: number[], shape = [v.length]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});
const ints = (value: number[]): Attr => ({ kind: "ints", value });
const int = (value: number): Attr => ({ kind: "int", value });
const flt = (value: number): Attr => ({ kind: "float", value });
const str = (value: string): Attr => ({ kind: "string", value });
const p = pattern;

const ORT_TYPES: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: "float32",
  int64: "int64",
  int32: "int32",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
};

function model(c: Case): Model {
  const names = c.inputs.map((t, i) => (t === undefined ? "" : `in${i}`));
  const nOut = c.outputs ?? 1;
  return {
    irVersion: 9,
    opsets: [{ domain: "", version: c.opset ?? 17 }],
    producerName: "lowbit-test",
    producerVersion: "0",
    metadata: {},
    graph: {
      name: c.op,
      nodes: [{
        name: "n",
        op: c.op,
        domain: "",
        inputs: names,
        outputs: Array.from({ length: nOut }, (_, i) => `out${i}`),
        attrs: c.attrs ?? {},
      }],
      inputs: c.inputs.flatMap((t, i) =>
        t === undefined ? [] : [{ name: `in${i}`, dtype: t.dtype, shape: t.shape }]
      ),
      outputs: Array.from(
        { length: nOut },
        (_, i) => ({ name: `out${i}`, dtype: "float32" as DType }),
      ),
      initializers: new Map(),
      valueInfo: new Map(),
    },
  };
}

async function check(c: Case): Promise<void> {
  const m = model(c);
  const what = c.label ?? `${c.op} ${JSON.stringify(c.attrs ?? {})}`;
  const feeds: Record<string, ort.Tensor> = {};
  const ours: Record<string, TensorData> = {};
  c.inputs.forEach((t, i) => {
    if (t === undefined) return;
    const type = ORT_TYPES[t.dtype]!;
    feeds[`in${i}`] = new ort.Tensor(type, t.data as Float32Array, t.shape);
    ours[`in${i}`] = t;
  });
  // onnxruntime checks declared output types: fix each one its error message names.
  const TYPE_NAMES: Record<string, DType> = {
    float: "float32",
    int64: "int64",
    int32: "int32",
    bool: "bool",
    uint8: "uint8",
    int8: "int8",
  };
  let session: ort.InferenceSession | undefined;
  for (let attempt = 0; session === undefined; attempt++) {
    try {
      session = await ort.InferenceSession.create(writeOnnx(m));
    } catch (e) {
      const r = /output arg \((\w+)\).*expected type \(tensor\((\w+)\)\)/.exec(String(e));
      if (!r || attempt > 4 || TYPE_NAMES[r[2]] === undefined) throw e;
      m.graph.outputs = m.graph.outputs.map((o) =>
        o.name === r[1] ? { ...o, dtype: TYPE_NAMES[r[2]] } : o
      );
    }
  }
  const theirs = await session.run(feeds);
  await session.release();
  for (const reference of [false, true]) {
    const got = await createExecutor(m, { reference }).run(ours);
    for (const name of Object.keys(theirs)) {
      const t = theirs[name], o = got[name];
      assert.deepEqual(o.shape, [...t.dims], `${what}: ${name} shape`);
      if (t.type === "float32") {
        assertClose(o.data as Float32Array, t.data as Float32Array, 1e-4, 1e-5, `${what} ${name}`);
      } else {
        assert.deepEqual(
          Array.from(o.data as Int32Array, String),
          Array.from(t.data as Int32Array, String),
          `${what} ${name}`,
        );
      }
    }
  }
}

async function checkAll(cases: Case[]): Promise<void> {
  for (const c of cases) await check(c);
}

Deno.test("elementwise ops match onnxruntime-web, with broadcasting", async () => {
  const a = p([2, 3, 4], 1), b = p([3, 1], 2), c = p([4], 3, 0.5);
  await checkAll([
    { op: "Add", inputs: [a, b] },
    { op: "Sub", inputs: [c, a] },
    { op: "Mul", inputs: [a, p([2, 1, 4], 4)] },
    { op: "Div", inputs: [a, f([2, -4, 0.5, 8], [4])] },
    { op: "Pow", inputs: [f([1, 2, 3, 0.5]), f([2])] },
    { op: "Pow", inputs: [f([1, 2, 3, 0.5], [4]), f([0.5, 3, -1, 2], [4])] },
    { op: "Sqrt", inputs: [f([0, 1, 2, 9])] },
    { op: "Exp", inputs: [c] },
    { op: "Log", inputs: [f([0.1, 1, 2, 30])] },
    { op: "Neg", inputs: [c] },
    { op: "Abs", inputs: [c] },
    { op: "Erf", inputs: [p([64], 5, 3)] },
    {
      op: "Where",
      inputs: [{ dtype: "bool", shape: [4], data: new Uint8Array([1, 0, 0, 1]) }, a, c],
    },
    { op: "Equal", inputs: [i64([1, 2, 3]), i64([3, 2, 1])] },
    { op: "Add", inputs: [i64([1, 2, 3]), i64([10])], label: "Add int64" },
    { op: "Mul", inputs: [i64([2, 3]), i64([-4, 5])], label: "Mul int64" },
    { op: "Min", inputs: [a, b] },
    { op: "Max", inputs: [a, c] },
  ]);
});

Deno.test("activations match onnxruntime-web", async () => {
  const x = p([2, 5, 3], 9, 4);
  await checkAll([
    { op: "Relu", inputs: [x] },
    { op: "LeakyRelu", inputs: [x], attrs: { alpha: flt(0.2) } },
    { op: "Clip", inputs: [x, f([-1], []), f([2], [])] },
    { op: "Clip", inputs: [x, undefined, f([0.5], [])] },
    { op: "Clip", opset: 9, inputs: [x], attrs: { min: flt(-0.5), max: flt(1) } },
    { op: "Sigmoid", inputs: [x] },
    { op: "HardSigmoid", inputs: [x], attrs: { alpha: flt(0.25), beta: flt(0.4) } },
    { op: "HardSwish", inputs: [x] },
    { op: "Tanh", inputs: [x] },
    { op: "Gelu", opset: 20, inputs: [x] },
    { op: "Gelu", opset: 20, inputs: [x], attrs: { approximate: str("tanh") } },
    { op: "Elu", inputs: [x] },
    { op: "Softplus", inputs: [x] },
    { op: "PRelu", inputs: [x, p([5, 1], 3)] },
    { op: "Softmax", inputs: [x] },
    { op: "Softmax", inputs: [x], attrs: { axis: int(1) } },
    { op: "Softmax", opset: 11, inputs: [x], attrs: { axis: int(1) } },
    { op: "LogSoftmax", inputs: [x], attrs: { axis: int(0) } },
  ]);
});

Deno.test("Conv and ConvTranspose match onnxruntime-web", async () => {
  const x = p([2, 4, 9, 8], 1), w = p([6, 2, 3, 3], 2, 0.5), b = p([6], 3);
  await checkAll([
    { op: "Conv", inputs: [x, p([5, 4, 3, 3], 4), p([5], 5)], attrs: { pads: ints([1, 1, 1, 1]) } },
    {
      op: "Conv",
      inputs: [x, w, b],
      attrs: { group: int(2), strides: ints([2, 1]), pads: ints([0, 1, 2, 1]) },
    },
    { op: "Conv", inputs: [x, w], attrs: { group: int(2), dilations: ints([2, 2]) } },
    {
      op: "Conv",
      inputs: [x, p([4, 1, 3, 3], 6), p([4], 7)],
      attrs: { group: int(4), pads: ints([1, 1, 1, 1]), strides: ints([2, 2]) },
    },
    {
      op: "Conv",
      inputs: [x, p([4, 1, 5, 5], 6)],
      attrs: { group: int(4), auto_pad: str("SAME_UPPER"), strides: ints([2, 2]) },
    },
    { op: "Conv", inputs: [x, p([3, 4, 2, 2], 8)], attrs: { auto_pad: str("SAME_LOWER") } },
    { op: "Conv", inputs: [x, p([3, 4, 1, 1], 8), p([3], 1)] },
    {
      op: "Conv",
      inputs: [p([1, 3, 10], 2), p([2, 3, 3], 3)],
      attrs: { pads: ints([1, 0]), strides: ints([2]) },
    },
    {
      op: "ConvTranspose",
      inputs: [x, p([4, 3, 2, 2], 9), p([3], 1)],
      attrs: { strides: ints([2, 2]) },
    },
    // stride = kernel, not square (the 1×1-conv + depth-to-space path, general width)
    {
      op: "ConvTranspose",
      inputs: [x, p([4, 5, 2, 3], 10), p([5], 2)],
      attrs: { strides: ints([2, 3]) },
    },
    {
      op: "ConvTranspose",
      inputs: [x, p([4, 2, 3, 3], 9)],
      attrs: { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), output_padding: ints([1, 1]) },
    },
    {
      op: "ConvTranspose",
      inputs: [x, p([4, 1, 3, 3], 9)],
      attrs: { group: int(2), dilations: ints([2, 1]) },
    },
    {
      op: "ConvTranspose",
      inputs: [x, p([4, 2, 3, 3], 9)],
      attrs: { strides: ints([2, 2]), output_shape: ints([18, 17]) },
    },
  ]);
});

Deno.test("pools match onnxruntime-web", async () => {
  const x = p([1, 3, 7, 8], 4);
  await checkAll([
    {
      op: "MaxPool",
      inputs: [x],
      attrs: { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
    },
    {
      op: "MaxPool",
      inputs: [x],
      attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]), ceil_mode: int(1) },
    },
    { op: "MaxPool", inputs: [x], attrs: { kernel_shape: ints([2, 3]), dilations: ints([2, 1]) } },
    {
      op: "AveragePool",
      inputs: [x],
      attrs: { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
    },
    {
      op: "AveragePool",
      inputs: [x],
      attrs: {
        kernel_shape: ints([3, 3]),
        strides: ints([2, 2]),
        pads: ints([1, 1, 1, 1]),
        count_include_pad: int(1),
      },
    },
    {
      op: "AveragePool",
      inputs: [x],
      attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]), ceil_mode: int(1) },
    },
    { op: "GlobalAveragePool", inputs: [x] },
    { op: "GlobalMaxPool", inputs: [x] },
  ]);
});

Deno.test("Gemm, MatMul and normalisations match onnxruntime-web", async () => {
  await checkAll([
    { op: "MatMul", inputs: [p([2, 1, 3, 4], 1), p([3, 4, 5], 2)] },
    { op: "MatMul", inputs: [p([3, 4], 1), p([4], 2)] },
    { op: "MatMul", inputs: [p([4], 1), p([2, 4, 3], 2)] },
    { op: "MatMul", inputs: [p([5, 40], 1), p([40, 70], 2)] },
    {
      op: "Gemm",
      inputs: [p([4, 3], 1), p([5, 4], 2), p([5], 3)],
      attrs: { transA: int(1), transB: int(1), alpha: flt(0.5), beta: flt(2) },
    },
    { op: "Gemm", inputs: [p([30, 40], 1), p([40, 20], 2), p([30, 1], 3)] },
    { op: "Gemm", inputs: [p([30, 40], 1), p([20, 40], 2), p([20], 3)], attrs: { transB: int(1) } },
    {
      op: "BatchNormalization",
      inputs: [p([2, 3, 4, 5], 1), p([3], 2), p([3], 3), p([3], 4), f([0.5, 1, 2])],
    },
    { op: "LayerNormalization", inputs: [p([2, 3, 8], 1), p([8], 2), p([8], 3)] },
    {
      op: "LayerNormalization",
      inputs: [p([2, 3, 8], 1), p([3, 8], 2)],
      attrs: { axis: int(1), epsilon: flt(1e-3) },
    },
    { op: "InstanceNormalization", inputs: [p([2, 3, 4, 5], 1), p([3], 2), p([3], 3)] },
  ]);
});

Deno.test("reductions and TopK match onnxruntime-web", async () => {
  const x = p([3, 4, 5], 2);
  await checkAll([
    { op: "ReduceMean", opset: 13, inputs: [x], attrs: { axes: ints([1]) } },
    { op: "ReduceMean", opset: 18, inputs: [x, i64([0, 2])], attrs: { keepdims: int(0) } },
    { op: "ReduceSum", inputs: [x, i64([-1])] },
    { op: "ReduceSum", inputs: [x], attrs: { keepdims: int(0) } },
    { op: "ReduceMax", opset: 13, inputs: [x], attrs: { axes: ints([0, 1]) } },
    { op: "ReduceMin", opset: 13, inputs: [x], attrs: { axes: ints([2]) } },
    { op: "TopK", inputs: [x, i64([3])], outputs: 2 },
    { op: "TopK", inputs: [x, i64([2])], attrs: { axis: int(0), largest: int(0) }, outputs: 2 },
    { op: "ArgMax", inputs: [x], attrs: { axis: int(1) } },
  ]);
});

Deno.test("shape and tensor ops match onnxruntime-web", async () => {
  const x = p([2, 3, 4], 5);
  await checkAll([
    { op: "Concat", inputs: [x, p([2, 3, 2], 6)], attrs: { axis: int(-1) } },
    { op: "Split", inputs: [x, i64([1, 3])], attrs: { axis: int(2) }, outputs: 2 },
    { op: "Split", opset: 11, inputs: [x], attrs: { axis: int(1) }, outputs: 3 },
    { op: "Slice", inputs: [x, i64([0, 3]), i64([2, 0]), i64([0, 2]), i64([1, -2])] },
    { op: "Slice", inputs: [x, i64([-2]), i64([100]), i64([1])] },
    {
      op: "Slice",
      opset: 9,
      inputs: [x],
      attrs: { starts: ints([1]), ends: ints([3]), axes: ints([2]) },
    },
    { op: "Gather", inputs: [x, i64([2, -1, 0], [3])], attrs: { axis: int(1) } },
    { op: "Gather", inputs: [x, i64([1], [])] },
    { op: "Reshape", inputs: [x, i64([0, -1])] },
    { op: "Flatten", inputs: [x], attrs: { axis: int(2) } },
    { op: "Transpose", inputs: [x], attrs: { perm: ints([2, 0, 1]) } },
    { op: "Transpose", inputs: [x] },
    { op: "Squeeze", inputs: [p([2, 1, 3, 1], 1), i64([1, -1])] },
    { op: "Unsqueeze", inputs: [x, i64([0, -1])] },
    { op: "Unsqueeze", opset: 11, inputs: [x], attrs: { axes: ints([1]) } },
    { op: "Expand", inputs: [p([3, 1], 1), i64([2, 3, 4])] },
    { op: "Tile", inputs: [x, i64([1, 2, 3])] },
    { op: "Pad", inputs: [x, i64([0, 1, 2, 0, 2, 1]), f([0.5], [])] },
    { op: "Pad", inputs: [x, i64([0, 1, 2, 0, 2, 1])], attrs: { mode: str("reflect") } },
    { op: "Pad", inputs: [x, i64([0, 1, 2, 0, 2, 1])], attrs: { mode: str("edge") } },
    { op: "Shape", inputs: [x] },
    { op: "Shape", opset: 15, inputs: [x], attrs: { start: int(1), end: int(-1) } },
    { op: "Cast", inputs: [f([1.7, -1.7, 3, 0])], attrs: { to: int(6) } },
    { op: "Cast", inputs: [i64([1, -2])], attrs: { to: int(1) } },
    {
      op: "ConstantOfShape",
      inputs: [i64([2, 3])],
      attrs: { value: { kind: "tensor", value: f([1.5], [1]) } },
    },
    { op: "Range", inputs: [f([1], []), f([4], []), f([0.5], [])] },
    { op: "Identity", inputs: [x] },
  ]);
});

Deno.test("Resize matches onnxruntime-web (nearest, linear; coordinate modes)", async () => {
  const x = p([1, 2, 4, 5], 7);
  const up = f([1, 1, 2, 1.5]), down = f([1, 1, 0.6, 0.5]);
  const cases: Case[] = [];
  for (const ctm of ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]) {
    for (const scales of [up, down]) {
      cases.push({
        op: "Resize",
        inputs: [x, undefined, scales],
        attrs: { mode: str("linear"), coordinate_transformation_mode: str(ctm) },
      });
    }
  }
  for (const nm of ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]) {
    for (const ctm of ["half_pixel", "asymmetric", "align_corners"]) {
      cases.push({
        op: "Resize",
        inputs: [x, undefined, up],
        attrs: {
          mode: str("nearest"),
          coordinate_transformation_mode: str(ctm),
          nearest_mode: str(nm),
        },
      });
    }
  }
  cases.push({
    op: "Resize",
    inputs: [x, undefined, undefined, i64([1, 2, 7, 3])],
    attrs: { mode: str("linear") },
  });
  cases.push({
    op: "Resize",
    inputs: [x, undefined, f([1, 1, 2, 2])],
    attrs: {
      mode: str("nearest"),
      coordinate_transformation_mode: str("asymmetric"),
      nearest_mode: str("floor"),
    },
  });
  await checkAll(cases);
});

Deno.test("QuantizeLinear / DequantizeLinear match onnxruntime-web", async () => {
  const x = p([2, 3, 4], 3, 2);
  const u8 = (v: number[], shape = [v.length]): TensorData => ({
    dtype: "uint8",
    shape,
    data: Uint8Array.from(v),
  });
  const s8 = (v: number[], shape = [v.length]): TensorData => ({
    dtype: "int8",
    shape,
    data: Int8Array.from(v),
  });
  await checkAll([
    { op: "QuantizeLinear", inputs: [x, f([0.01], []), u8([128], [])] },
    {
      op: "QuantizeLinear",
      inputs: [x, f([0.01, 0.02, 0.05]), s8([0, 1, -2])],
      attrs: { axis: int(1) },
    },
    {
      op: "DequantizeLinear",
      inputs: [s8([-128, -1, 0, 5, 127, 3], [2, 3]), f([0.5, 0.25]), s8([1, -1])],
      attrs: { axis: int(0) },
    },
    { op: "DequantizeLinear", inputs: [u8([0, 10, 255], [3]), f([0.1], []), u8([3], [])] },
  ]);
});
