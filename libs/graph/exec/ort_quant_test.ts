// onnxruntime's quantized formats against onnxruntime-web: the default-domain integer ops, the
// com.microsoft contrib ops, and the graph onnxruntime's dynamic quantizer writes for a MatMul
// and a Conv (DynamicQuantizeLinear → MatMulInteger / ConvInteger → Cast → Mul → Add).
// Integer outputs must match exactly, float outputs at rtol 1e-5.

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { Attr, DType, TensorData } from "../ir.ts";
import { createExecutor } from "./executor.ts";
import { pattern } from "./_testing.ts";
import { graphOf, matchOrt, modelOf, node } from "./_ort_testing.ts";

const ints = (value: number[]): Attr => ({ kind: "ints", value });
const int = (value: number): Attr => ({ kind: "int", value });
const flt = (value: number): Attr => ({ kind: "float", value });
const MS = "com.microsoft";

/** Deterministic codes of `dtype` spread over its whole range. */
function q(dtype: "int8" | "uint8", shape: number[], seed: number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  let s = seed >>> 0 || 1;
  const data = dtype === "int8" ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s >>> 24) - (dtype === "int8" ? 128 : 0);
  }
  return { dtype, shape, data };
}
const sc = (v: number, shape: number[] = []): TensorData => ({
  dtype: "float32",
  shape,
  data: new Float32Array(
    shape.length ? Array.from({ length: shape[0] }, (_, i) => v * (1 + i / 7)) : [v],
  ),
});
const zp = (dtype: "int8" | "uint8", v: number[], shape: number[] = []): TensorData => ({
  dtype,
  shape,
  data: dtype === "int8" ? Int8Array.from(v) : Uint8Array.from(v),
});
const i32 = (v: number[]): TensorData => ({
  dtype: "int32",
  shape: [v.length],
  data: Int32Array.from(v),
});

/** One node, its inputs all graph inputs (omitted ones as ""). */
async function one(
  what: string,
  op: string,
  inputs: (TensorData | undefined)[],
  outs: { name: string; dtype: DType }[],
  attrs: Record<string, Attr> = {},
  domain = "",
  rtol = 1e-5,
) {
  const names = inputs.map((t, i) => t === undefined ? "" : `i${i}`);
  const feeds: Record<string, TensorData> = {};
  inputs.forEach((t, i) => t && (feeds[`i${i}`] = t));
  const g = graphOf(op, [node(op, names, outs.map((o) => o.name), attrs, domain)], feeds, outs);
  // the kernels where the operands fit them, and the TypeScript reference
  await matchOrt(what, modelOf(g), feeds, rtol, 1e-6, [{}, { reference: true }]);
}

Deno.test("DynamicQuantizeLinear, MatMulInteger, ConvInteger match onnxruntime-web", async () => {
  await one("DynamicQuantizeLinear", "DynamicQuantizeLinear", [pattern([3, 7], 1, 3)], [
    { name: "y", dtype: "uint8" },
    { name: "s", dtype: "float32" },
    { name: "z", dtype: "uint8" },
  ]);
  await one("DynamicQuantizeLinear, positive", "DynamicQuantizeLinear", [
    { dtype: "float32", shape: [4], data: new Float32Array([0.5, 1, 2.5, 3]) },
  ], [{ name: "y", dtype: "uint8" }, { name: "s", dtype: "float32" }, {
    name: "z",
    dtype: "uint8",
  }]);
  await one("MatMulInteger u8×u8", "MatMulInteger", [
    q("uint8", [2, 3, 8], 2),
    q("uint8", [8, 5], 3),
    zp("uint8", [131]),
    zp("uint8", [120]),
  ], [{ name: "y", dtype: "int32" }]);
  await one("MatMulInteger u8×i8, per-column zp", "MatMulInteger", [
    q("uint8", [4, 8], 4),
    q("int8", [8, 5], 5),
    zp("uint8", [7]),
    zp("int8", [1, -2, 3, 0, 5], [5]),
  ], [{ name: "y", dtype: "int32" }]);
  await one(
    "ConvInteger",
    "ConvInteger",
    [
      q("uint8", [1, 3, 7, 6], 6),
      q("uint8", [4, 3, 3, 3], 7),
      zp("uint8", [128]),
      zp("uint8", [100]),
    ],
    [{ name: "y", dtype: "int32" }],
    { pads: ints([1, 0, 1, 2]), strides: ints([2, 1]) },
  );
  await one(
    "ConvInteger grouped",
    "ConvInteger",
    [
      q("uint8", [2, 4, 5, 5], 8),
      q("uint8", [4, 2, 3, 3], 9),
      zp("uint8", [3]),
    ],
    [{ name: "y", dtype: "int32" }],
    { group: int(2), dilations: ints([2, 1]) },
  );
});

Deno.test("QLinearConv and QLinearMatMul match onnxruntime-web", async () => {
  await one(
    "QLinearConv u8, per-channel int8 weights, bias",
    "QLinearConv",
    [
      q("uint8", [1, 3, 8, 8], 10),
      sc(0.02),
      zp("uint8", [120]),
      q("int8", [5, 3, 3, 3], 11),
      sc(0.004, [5]),
      zp("int8", [0, 0, 0, 0, 0], [5]),
      sc(0.05),
      zp("uint8", [110]),
      i32([100, -2000, 30, 4000, -50]),
    ],
    [{ name: "y", dtype: "uint8" }],
    { pads: ints([1, 1, 1, 1]), strides: ints([2, 2]) },
  );
  await one(
    "QLinearConv i8 depthwise",
    "QLinearConv",
    [
      q("int8", [1, 4, 6, 6], 12),
      sc(0.03),
      zp("int8", [-3]),
      q("int8", [4, 1, 3, 3], 13),
      sc(0.01),
      zp("int8", [0]),
      sc(0.08),
      zp("int8", [5]),
    ],
    [{ name: "y", dtype: "int8" }],
    { group: int(4), pads: ints([1, 1, 1, 1]) },
  );
  await one("QLinearMatMul u8", "QLinearMatMul", [
    q("uint8", [2, 3, 16], 14),
    sc(0.02),
    zp("uint8", [128]),
    q("uint8", [16, 6], 15),
    sc(0.01),
    zp("uint8", [125]),
    sc(0.1),
    zp("uint8", [128]),
  ], [{ name: "y", dtype: "uint8" }]);
  await one("QLinearMatMul i8", "QLinearMatMul", [
    q("int8", [4, 16], 16),
    sc(0.02),
    zp("int8", [1]),
    q("int8", [16, 6], 17),
    sc(0.01),
    zp("int8", [0]),
    sc(0.05),
    zp("int8", [-2]),
  ], [{ name: "y", dtype: "int8" }]);
});

Deno.test("com.microsoft MatMulNBits, DynamicQuantizeMatMul, QGemm match onnxruntime-web", async () => {
  const K = 80, N = 6, block = 32, blocks = 3;
  for (const bits of [4, 8]) {
    const blob = block * bits / 8;
    const b = q("uint8", [N, blocks, blob], 20 + bits);
    const scales = pattern([N * blocks], 21, 0.05);
    const zps = q("uint8", [N * Math.ceil(blocks * bits / 8)], 22);
    const attrs = { K: int(K), N: int(N), bits: int(bits), block_size: int(block) };
    const y = [{ name: "y", dtype: "float32" as DType }];
    const a = pattern([2, 3, K], 23);
    await one(`MatMulNBits ${bits}-bit`, "MatMulNBits", [a, b, scales], y, attrs, MS, 1e-4);
    await one(
      `MatMulNBits ${bits}-bit, zero points`,
      "MatMulNBits",
      [a, b, scales, zps],
      y,
      attrs,
      MS,
      1e-4,
    );
  }
  // Constant weights (dequantized once, cached) on the kernel path (16 rows), with a bias.
  const b4 = q("uint8", [N, blocks, 16], 29);
  const a16 = pattern([16, K], 30);
  const nbits = graphOf(
    "nbits",
    [
      node("MatMulNBits", ["a", "b", "s", "z", "", "bias"], ["y"], {
        K: int(K),
        N: int(N),
        bits: int(4),
        block_size: int(block),
      }, MS),
    ],
    { a: a16 },
    ["y"],
    {
      b: b4,
      s: pattern([N * blocks], 31, 0.05),
      z: q("uint8", [N * 2], 32),
      bias: pattern([N], 33),
    },
  );
  await matchOrt("MatMulNBits constant", modelOf(nbits), { a: a16 }, 1e-4, 1e-5);
  await one(
    "DynamicQuantizeMatMul",
    "DynamicQuantizeMatMul",
    [
      pattern([3, 16], 24, 2),
      q("int8", [16, 5], 25),
      sc(0.01, [5]),
      undefined,
      pattern([5], 26),
    ],
    [{ name: "y", dtype: "float32" }],
    {},
    MS,
  );
  const gemm = [
    q("uint8", [3, 8], 27),
    sc(0.02),
    zp("uint8", [128]),
    q("int8", [5, 8], 28),
    sc(0.01),
    zp("int8", [0]),
    i32([10, -20, 300, 0, -4000]),
  ];
  await one("QGemm float out", "QGemm", gemm, [{ name: "y", dtype: "float32" }], {
    transB: int(1),
    alpha: flt(0.5),
  }, MS);
  await one(
    "QGemm u8 out",
    "QGemm",
    [...gemm, sc(0.05), zp("uint8", [120])],
    [{
      name: "y",
      dtype: "uint8",
    }],
    { transB: int(1) },
    MS,
  );
});

Deno.test("com.microsoft QLinearAdd / Mul / GlobalAveragePool / Concat / Sigmoid match onnxruntime-web", async () => {
  for (const dt of ["uint8", "int8"] as const) {
    const z = (v: number) => zp(dt, [dt === "uint8" ? v + 128 : v]);
    const bin = [
      q(dt, [2, 3, 4], 30),
      sc(0.03),
      z(3),
      q(dt, [3, 1], 31),
      sc(0.05),
      z(-4),
      sc(0.06),
      z(2),
    ];
    await one(`QLinearAdd ${dt}`, "QLinearAdd", bin, [{ name: "y", dtype: dt }], {}, MS);
    await one(`QLinearMul ${dt}`, "QLinearMul", bin, [{ name: "y", dtype: dt }], {}, MS);
    await one(
      `QLinearGlobalAveragePool ${dt}`,
      "QLinearGlobalAveragePool",
      [
        q(dt, [2, 3, 5, 4], 32),
        sc(0.03),
        z(1),
        sc(0.02),
        z(-1),
      ],
      [{ name: "y", dtype: dt }],
      { channels_last: int(0) },
      MS,
    );
    await one(
      `QLinearConcat ${dt}`,
      "QLinearConcat",
      [
        sc(0.04),
        z(0),
        q(dt, [2, 3, 2], 33),
        sc(0.03),
        z(5),
        q(dt, [2, 1, 2], 34),
        sc(0.04),
        z(0),
      ],
      [{ name: "y", dtype: dt }],
      { axis: int(1) },
      MS,
    );
    await one(
      `QLinearSigmoid ${dt}`,
      "QLinearSigmoid",
      [
        q(dt, [4, 16], 35),
        sc(0.05),
        z(0),
        sc(1 / 256),
        z(-128),
      ],
      [{ name: "y", dtype: dt }],
      {},
      MS,
    );
  }
});

Deno.test("the graphs of onnxruntime's dynamic quantizer (MatMul and Conv) match onnxruntime-web", async () => {
  // As quantize_dynamic writes them: the activation quantized at run time, weights stored
  // uint8 / int8 with scales, the integer product rescaled by a_scale · w_scale, bias added.
  const x = pattern([2, 16], 40, 2);
  const w = q("int8", [16, 8], 41);
  const mm = graphOf(
    "dyn_mm",
    [
      node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
      node("MatMulInteger", ["xq", "w", "xz", "wz"], ["acc"]),
      node("Cast", ["acc"], ["accf"], { to: int(1) }),
      node("Mul", ["xs", "ws"], ["s"]),
      node("Mul", ["accf", "s"], ["yf"]),
      node("Add", ["yf", "bias"], ["y"]),
    ],
    { x },
    ["y"],
    { w, wz: zp("int8", [0]), ws: sc(0.01), bias: pattern([8], 42) },
  );
  await matchOrt("dynamic MatMul", modelOf(mm), { x }, 1e-5, 1e-6);
  const img = pattern([1, 3, 6, 6], 43, 2);
  const conv = graphOf(
    "dyn_conv",
    [
      node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
      node("ConvInteger", ["xq", "w", "xz", "wz"], ["acc"], { pads: ints([1, 1, 1, 1]) }),
      node("Cast", ["acc"], ["accf"], { to: int(1) }),
      node("Mul", ["xs", "ws"], ["s"]),
      node("Mul", ["accf", "s"], ["yf"]),
      node("Add", ["yf", "bias"], ["y"]),
    ],
    { x: img },
    ["y"],
    {
      w: q("uint8", [4, 3, 3, 3], 44),
      wz: zp("uint8", [128]),
      ws: sc(0.01),
      bias: { dtype: "float32", shape: [4, 1, 1], data: new Float32Array([0.1, -0.2, 0.3, 0]) },
    },
  );
  await matchOrt("dynamic Conv", modelOf(conv), { x: img }, 1e-5, 1e-6);
});

Deno.test("com.microsoft QLinearLeakyRelu, GatherBlockQuantized, Q/DQ match onnxruntime-web", async () => {
  for (const dt of ["uint8", "int8"] as const) {
    const z = (v: number) => zp(dt, [dt === "uint8" ? v + 128 : v]);
    await one(
      `QLinearLeakyRelu ${dt}`,
      "QLinearLeakyRelu",
      [
        q(dt, [3, 16], 50),
        sc(0.05),
        z(3),
        sc(0.03),
        z(-20),
      ],
      [{ name: "y", dtype: dt }],
      { alpha: flt(0.1) },
      MS,
    );
  }
  const rows = 6, cols = 64, block = 32;
  const idx: TensorData = {
    dtype: "int64",
    shape: [2, 2],
    data: new BigInt64Array([5n, 0n, 2n, 5n]),
  };
  for (const bits of [4, 8]) {
    const per = 8 / bits;
    const data = q("uint8", [rows, cols / per], 51 + bits);
    const scales = pattern([rows, cols / block], 52, 0.1);
    const attrs = {
      bits: int(bits),
      block_size: int(block),
      gather_axis: int(0),
      quantize_axis: int(1),
    };
    const y = [{ name: "y", dtype: "float32" as DType }];
    await one(
      `GatherBlockQuantized ${bits}-bit`,
      "GatherBlockQuantized",
      [data, idx, scales],
      y,
      attrs,
      MS,
    );
    const zps = q("uint8", [rows, Math.ceil(cols / block / per)], 53);
    await one(
      `GatherBlockQuantized ${bits}-bit, zero points`,
      "GatherBlockQuantized",
      [data, idx, scales, zps],
      y,
      attrs,
      MS,
    );
  }
  const x = pattern([2, 5], 54, 3);
  const z16: TensorData = { dtype: "uint16", shape: [], data: new Uint16Array([30000]) };
  const g = graphOf(
    "qdq16",
    [
      node("QuantizeLinear", ["x", "s", "z"], ["xq"], {}, MS),
      node("DequantizeLinear", ["xq", "s", "z"], ["y"], {}, MS),
    ],
    { x },
    ["y"],
    { s: sc(0.001), z: z16 },
  );
  await matchOrt("com.microsoft Q/DQ uint16", modelOf(g), { x }, 1e-6, 1e-7);
});

Deno.test("unsupported quantized forms give a LowbitError naming the node", async () => {
  const a = pattern([2, 64], 60);
  const g = graphOf(
    "nbits",
    [
      node("MatMulNBits", ["a", "b", "s"], ["y"], {
        K: int(64),
        N: int(2),
        bits: int(3),
        block_size: int(32),
      }, MS),
    ],
    { a },
    ["y"],
    { b: q("uint8", [2, 2, 12], 61), s: pattern([4], 62) },
  );
  await assert.rejects(
    createExecutor(modelOf(g)).run({ a }),
    (e) =>
      e instanceof LowbitError && e.code === "UNSUPPORTED" && e.subject.node === "MatMulNBits_y" &&
      /bits 3/.test(e.message),
  );
  const f = pattern([2, 3], 63);
  const bad = graphOf("mmi", [node("MatMulInteger", ["f", "f"], ["y"])], { f }, ["y"]);
  await assert.rejects(
    createExecutor(modelOf(bad)).run({ f }),
    (e) => e instanceof LowbitError && /A must be int8 or uint8, got float32/.test(e.message),
  );
  const unknown = graphOf("u", [node("QAttention", ["f"], ["y"], {}, MS)], { f }, ["y"]);
  assert.throws(
    () => createExecutor(modelOf(unknown)),
    (e) =>
      e instanceof LowbitError && e.code === "UNSUPPORTED" && /com\.microsoft/.test(e.message) &&
      /MatMulNBits/.test(e.message),
  );
});

Deno.test("com.microsoft QLinearSoftmax matches onnxruntime-web (axes, opset 12 / 13, int8 / uint8)", async () => {
  for (const dt of ["uint8", "int8"] as const) {
    const z = (v: number) => zp(dt, [dt === "uint8" ? v + 128 : v]);
    const x = q(dt, [2, 5, 7], 70);
    for (
      const [opset, axis] of [[13, -1], [13, 1], [12, 1], [12, 2]] as const
    ) {
      await one(
        `QLinearSoftmax ${dt} opset ${opset} axis ${axis}`,
        "QLinearSoftmax",
        [x, sc(0.08), z(2), sc(1 / 256), z(-128)],
        [{ name: "y", dtype: dt }],
        { opset: int(opset), axis: int(axis) },
        MS,
      );
    }
  }
});
