// The integer plan's memory: constant weights the kernels hold are not also kept as float32
// arrays in JavaScript, and the plan's outputs do not change once those copies are gone.
// Expected values are computed here from the codes (exact integer sums in doubles, then the
// fused epilogue's two roundings, f32(acc · f32(sx · sw))), not by the executor.

import assert from "node:assert/strict";
import type { Model, Node, TensorData } from "../ir.ts";
import { createExecutor } from "./executor.ts";
import { holdsCentredCopy } from "./ops/fused.ts";
import { qlinearOps } from "./ops/qlinear.ts";

const M = 8, K = 64, N = 32; // m·n·k = 16384: the kernels' GEMM (≥ 4096)
const SX = 0.25, SW = 0.01;

function node(name: string, op: string, inputs: string[], outputs: string[], attrs = {}): Node {
  return { name, op, domain: "", inputs, outputs, attrs };
}

/** x → Q → DQ → Gemm(transB) with DQ(int8 w [N, K]) per tensor: one QGemmFused. */
function gemmModel(wq: Int8Array): Model {
  const f = (v: number): TensorData => ({
    dtype: "float32",
    shape: [],
    data: new Float32Array([v]),
  });
  return {
    irVersion: 9,
    opsets: [{ domain: "", version: 21 }],
    producerName: "",
    producerVersion: "",
    metadata: {},
    graph: {
      name: "g",
      nodes: [
        node("q", "QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        node("dq", "DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        node("dqw", "DequantizeLinear", ["wq", "sw"], ["wd"]),
        node("mm", "Gemm", ["xd", "wd"], ["y"], { transB: { kind: "int", value: 1 } }),
      ],
      inputs: [{ name: "x", dtype: "float32", shape: [M, K] }],
      outputs: [{ name: "y", dtype: "float32", shape: [M, N] }],
      initializers: new Map<string, TensorData>([
        ["sx", f(SX)],
        ["zx", { dtype: "int8", shape: [], data: new Int8Array([0]) }],
        ["sw", f(SW)],
        ["wq", { dtype: "int8", shape: [N, K], data: wq }],
      ]),
      valueInfo: new Map(),
    },
  };
}

/** Deterministic integers in [lo, hi]. */
function ints(n: number, seed: number, lo: number, hi: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}

/** y[i][j] = f32(Σ_p xq[i][p]·wq[j][p] · f32(SX·SW)), the sums exact in doubles. */
function expected(xq: number[], wq: Int8Array): Float32Array {
  const sc = Math.fround(SX * SW);
  const y = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let p = 0; p < K; p++) acc += xq[i * K + p] * wq[j * K + p];
      y[i * N + j] = Math.fround(acc * sc);
    }
  }
  return y;
}

for (const threads of [1, 2]) {
  Deno.test(`integer plan (${threads} thread(s)): a QGemmFused's constant weights are packed once, its float copy dropped, its outputs unchanged`, async () => {
    const wq = Int8Array.from(ints(N * K, 7 + threads, -100, 100));
    const e = createExecutor(gemmModel(wq), { quantized: "integer", threads });
    try {
      assert.equal(holdsCentredCopy(wq), undefined, "nothing made before the first run");
      // x = code · SX exactly (SX a power of two): the codes are the integers themselves.
      for (let run = 0; run < 3; run++) {
        const xq = ints(M * K, 100 + run, -20, 20);
        const x = Float32Array.from(xq, (v) => v * SX);
        const y = (await e.run({ x: { dtype: "float32", shape: [M, K], data: x } })).y;
        assert.deepEqual(y.shape, [M, N]);
        assert.deepEqual(y.data, expected(xq, wq), `run ${run}`);
        assert.equal(holdsCentredCopy(wq), false, `run ${run}: the float copy was dropped`);
      }
    } finally {
      await e.close();
    }
  });
}

Deno.test("integer plan: a GEMM too small for the kernels keeps its float weights and the same bits", async () => {
  // m·n·k = 1·32·64 = 2048 < 4096: the TypeScript GEMM reads the centred array every run.
  const wq = Int8Array.from(ints(N * K, 3, -100, 100));
  const model = gemmModel(wq);
  model.graph.inputs[0].shape = [1, K];
  model.graph.outputs[0].shape = [1, N];
  const e = createExecutor(model, { quantized: "integer" });
  try {
    const xq = ints(K, 5, -20, 20);
    for (let run = 0; run < 2; run++) {
      const x = Float32Array.from(xq, (v) => v * SX);
      const y = (await e.run({ x: { dtype: "float32", shape: [1, K], data: x } })).y;
      assert.deepEqual(
        y.data,
        expected([...xq, ...new Array((M - 1) * K).fill(0)], wq).slice(0, N),
      );
      assert.equal(holdsCentredCopy(wq), true);
    }
  } finally {
    await e.close();
  }
});

Deno.test("DequantizeLinear of decoded codes writes into its own decode, never into the codes", async () => {
  // float8 e4m3fn bytes: 0x38 = 1, 0x40 = 2, 0x30 = 0.5, 0xB8 = −1, 0x3C = 1.5 (sign, 4-bit
  // exponent with bias 7, 3-bit mantissa); per-axis scales along axis 0.
  const f8 = new Uint8Array([0x38, 0x40, 0x30, 0xb8, 0x3c, 0x38]);
  const x: TensorData = { dtype: "float8e4m3fn", shape: [2, 3], data: f8 };
  const s: TensorData = { dtype: "float32", shape: [2], data: new Float32Array([0.5, 3]) };
  const dq: Node = {
    ...node("dq", "DequantizeLinear", ["x", "s"], ["y"]),
    attrs: { axis: { kind: "int", value: 0 } },
  };
  const [y] = await qlinearOps.DequantizeLinear([x, s], dq, { opset: 21 });
  assert.deepEqual(y.data, new Float32Array([0.5, 1, 0.25, -3, 4.5, 3]));
  assert.deepEqual(f8, new Uint8Array([0x38, 0x40, 0x30, 0xb8, 0x3c, 0x38]), "codes untouched");
  // int32 codes with a zero point: (q − 1)·0.25.
  const q32 = new Int32Array([5, -3, 100]);
  const [y2] = await qlinearOps.DequantizeLinear(
    [
      { dtype: "int32", shape: [3], data: q32 },
      { dtype: "float32", shape: [], data: new Float32Array([0.25]) },
      { dtype: "int32", shape: [], data: new Int32Array([1]) },
    ],
    node("dq2", "DequantizeLinear", ["q", "s", "z"], ["y"]),
    { opset: 21 },
  );
  assert.deepEqual(y2.data, new Float32Array([1, -1, 24.75]));
  assert.deepEqual(q32, new Int32Array([5, -3, 100]), "codes untouched");
  // Codes already float32 (outside the spec, accepted): a new array, the input left as it is.
  const xf = new Float32Array([3, 4]);
  const [y3] = await qlinearOps.DequantizeLinear(
    [
      { dtype: "float32", shape: [2], data: xf },
      { dtype: "float32", shape: [], data: new Float32Array([2]) },
    ],
    node("dq3", "DequantizeLinear", ["q", "s"], ["y"]),
    { opset: 21 },
  );
  assert.deepEqual(y3.data, new Float32Array([6, 8]));
  assert.notEqual(y3.data, xf);
  assert.deepEqual(xf, new Float32Array([3, 4]));
});
