import assert from "node:assert/strict";
import type { Graph, Node, TensorData } from "../ir.ts";
import { createExecutor } from "./executor.ts";
import { fuseQdq } from "./quantized.ts";
import { fuseGraph } from "./_fuse.ts";
import { assertClose, pattern } from "./_testing.ts";
import { encodeFp8 } from "./ops/qlinear.ts";

function f32(shape: number[], data: number[] | Float32Array): TensorData {
  return { dtype: "float32", shape, data: Float32Array.from(data) };
}

/** Symmetric per-channel int8 codes of `w` along `axis` (0 or 1 of a 2-D view [rows, cols]). */
function quantizeWeights(w: Float32Array, rows: number, cols: number, axis: 0 | 1) {
  const nch = axis === 0 ? rows : cols;
  const scale = new Float32Array(nch);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const c = axis === 0 ? i : j;
      scale[c] = Math.max(scale[c], Math.abs(w[i * cols + j]) / 127);
    }
  }
  const q = new Int8Array(w.length);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const c = axis === 0 ? i : j;
      q[i * cols + j] = Math.max(-127, Math.min(127, Math.round(w[i * cols + j] / scale[c])));
    }
  }
  return { q, scale };
}

function n(name: string, op: string, inputs: string[], outputs: string[], attrs = {}): Node {
  return { name, op, domain: "", inputs, outputs, attrs };
}

/** x → Q/DQ (uint8, zp 128) → Conv(DQ(w int8 per-channel), bias) → y [→ Q → yq]. */
function convGraph(requant: boolean, group = 1, cout = 6): Graph {
  const cin = 4, k = 3;
  const w = pattern([cout, cin / group, k, k], 7, 0.5).data as Float32Array;
  const { q, scale } = quantizeWeights(w, cout, (cin / group) * k * k, 0);
  const nodes = [
    n("qx", "QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
    n("dqx", "DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
    n("dqw", "DequantizeLinear", ["wq", "sw"], ["wd"], { axis: { kind: "int", value: 0 } }),
    n("conv", "Conv", ["xd", "wd", "b"], ["y"], {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
      strides: { kind: "ints", value: [2, 1] },
      group: { kind: "int", value: group },
    }),
  ];
  if (requant) nodes.push(n("qy", "QuantizeLinear", ["y", "sy", "zy"], ["yq"]));
  return {
    name: "qconv",
    nodes,
    inputs: [{ name: "x", dtype: "float32", shape: [2, cin, 9, 7] }],
    outputs: [{ name: requant ? "yq" : "y", dtype: requant ? "uint8" : "float32" }],
    initializers: new Map<string, TensorData>([
      ["sx", f32([], [0.02])],
      ["zx", { dtype: "uint8", shape: [], data: new Uint8Array([128]) }],
      ["wq", { dtype: "int8", shape: [cout, cin / group, k, k], data: q }],
      ["sw", f32([cout], scale)],
      ["b", f32([cout], [0.1, -0.2, 0.3, 0, 0.05, -0.01].slice(0, cout))],
      ["sy", f32([], [0.05])],
      ["zy", { dtype: "uint8", shape: [], data: new Uint8Array([100]) }],
    ]),
    valueInfo: new Map(),
  };
}

/** x → Q/DQ (int8) → MatMul(DQ(w int8 [K, N] per-column)) → Add(bias). */
function matmulGraph(gemm: boolean, kk = 24, rows = 5): Graph {
  const nn = 10;
  const w = pattern(gemm ? [nn, kk] : [kk, nn], 3, 0.3).data as Float32Array;
  const { q, scale } = gemm ? quantizeWeights(w, nn, kk, 0) : quantizeWeights(w, kk, nn, 1);
  return {
    name: "qmm",
    nodes: [
      n("qx", "QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
      n("dqx", "DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
      n("dqw", "DequantizeLinear", ["wq", "sw"], ["wd"], {
        axis: { kind: "int", value: gemm ? 0 : 1 },
      }),
      gemm
        ? n("mm", "Gemm", ["xd", "wd", "b"], ["y"], { transB: { kind: "int", value: 1 } })
        : n("mm", "MatMul", ["xd", "wd"], ["y"]),
    ],
    inputs: [{
      name: "x",
      dtype: "float32",
      shape: gemm ? [rows, kk] : [2, rows === 5 ? 3 : rows, kk],
    }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["sx", f32([], [0.01])],
      ["zx", { dtype: "int8", shape: [], data: new Int8Array([-3]) }],
      ["wq", { dtype: "int8", shape: gemm ? [nn, kk] : [kk, nn], data: q }],
      ["sw", f32([nn], scale)],
      ["b", f32([nn], Array.from({ length: nn }, (_, i) => i / 10))],
    ]),
    valueInfo: new Map(),
  };
}

Deno.test("fuseQdq() rewrites QDQ Conv / MatMul / Gemm into fused ops", () => {
  assert.deepEqual(fuseQdq(convGraph(false)).nodes.map((x) => x.op), ["QConvFused"]);
  assert.deepEqual(fuseQdq(convGraph(true)).nodes.map((x) => x.op), ["QConvFused"]);
  assert.deepEqual(fuseQdq(matmulGraph(false)).nodes.map((x) => x.op), ["QGemmFused"]);
  assert.deepEqual(fuseQdq(matmulGraph(true)).nodes.map((x) => x.op), ["QGemmFused"]);
});

/**
 * convGraph(true) followed by DQ(yq) → Conv 1×1 (DQ(int8 weights) when `quantizedWeights`, else
 * float weights) → z: the producer's trailing Q is also the consumer's activation Q.
 */
function convChainGraph(quantizedWeights: boolean): Graph {
  const g = convGraph(true);
  const w2 = Int8Array.from({ length: 3 * 6 }, (_, i) => ((i * 37) % 255) - 127);
  g.nodes.push(n("dqy", "DequantizeLinear", ["yq", "sy", "zy"], ["yd"]));
  if (quantizedWeights) {
    g.nodes.push(n("dqw2", "DequantizeLinear", ["w2q", "sw2"], ["w2"]));
    g.initializers.set("w2q", { dtype: "int8", shape: [3, 6, 1, 1], data: w2 });
    g.initializers.set("sw2", f32([], [0.004]));
  } else g.initializers.set("w2", f32([3, 6, 1, 1], Float32Array.from(w2, (v) => v * 0.004)));
  g.nodes.push(n("conv2", "Conv", ["yd", "w2"], ["z"]));
  g.outputs = [{ name: "z", dtype: "float32" }];
  return g;
}

Deno.test("fuseQdq() leaves a Q that a fusable consumer's DQ reads to that consumer", () => {
  // Absorbing the Q into the first conv (integer requantization) used to leave the second as a
  // float Conv on DQ(codes): PP-OCRv4 det's first 3×3 → depthwise and its neck 1×1s.
  const fused = fuseQdq(convChainGraph(true)).nodes;
  assert.deepEqual(fused.map((x) => x.op), ["QConvFused", "QConvFused"]);
  assert.equal(fused[0].inputs.length, 7); // float output: no y_scale / y_zero_point
  assert.equal(fused[1].inputs[0], "y");
  // With a float-weight consumer the Q is still absorbed (integer requantization).
  const plain = fuseQdq(convChainGraph(false)).nodes;
  assert.deepEqual(plain.map((x) => x.op), ["QConvFused", "DequantizeLinear", "Conv"]);
  assert.equal(plain[0].inputs.length, 9);
});

Deno.test("a Conv → Q → DQ → Conv chain in the integer plan matches the float QDQ reference", async () => {
  const x = pattern([2, 4, 9, 7], 17, 2);
  for (const q of [true, false]) {
    const g = convChainGraph(q);
    const ref = (await createExecutor(g).run({ x })).z.data as Float32Array;
    const int = (await createExecutor(g, { quantized: "integer" }).run({ x })).z
      .data as Float32Array;
    // One code of y (0.05) off through the 1×1's weights (|w| ≤ 127·0.004) on a few values: the
    // integer requantization (q = false) rounds the sums in another order than Q(float conv).
    let big = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(int[i] - ref[i]);
      assert.ok(d <= 0.05 * 127 * 0.004 * 6 + 1e-5, `${q}: |Δ| ${d} at ${i}`);
      if (d > 1e-5 + 1e-5 * Math.abs(ref[i])) big++;
    }
    assert.ok(big <= ref.length * 0.05, `${q}: ${big} of ${ref.length} beyond float rounding`);
  }
});

Deno.test("integer execution matches the float QDQ reference (Conv, groups 1, 2, depthwise)", async () => {
  for (const [group, cout] of [[1, 6], [2, 6], [4, 4]]) {
    const g = convGraph(false, group, cout);
    const x = pattern([2, 4, 9, 7], 11, 2);
    const ref = (await createExecutor(g).run({ x })).y;
    const int = (await createExecutor(g, { quantized: "integer" }).run({ x })).y;
    assert.deepEqual(int.shape, ref.shape);
    assertClose(
      int.data as Float32Array,
      ref.data as Float32Array,
      1e-5,
      1e-5,
      `conv group ${group}`,
    );
  }
});

Deno.test("integer execution matches the float QDQ reference (MatMul, Gemm)", async () => {
  for (const gemm of [false, true]) {
    const g = matmulGraph(gemm);
    const x = pattern(gemm ? [5, 24] : [2, 3, 24], 5, 1);
    const ref = (await createExecutor(g).run({ x })).y;
    const int = (await createExecutor(g, { quantized: "integer" }).run({ x })).y;
    assert.deepEqual(int.shape, ref.shape);
    assertClose(
      int.data as Float32Array,
      ref.data as Float32Array,
      1e-5,
      1e-5,
      gemm ? "gemm" : "matmul",
    );
  }
});

Deno.test("integer-only requantization is within one code of Q(float reference)", async () => {
  const g = convGraph(true);
  const x = pattern([2, 4, 9, 7], 13, 2);
  const ref = (await createExecutor(g).run({ x })).yq;
  const int = (await createExecutor(g, { quantized: "integer" }).run({ x })).yq;
  assert.equal(int.dtype, "uint8");
  let diff = 0, off = 0;
  for (let i = 0; i < ref.data.length; i++) {
    const d = Math.abs(Number(int.data[i]) - Number(ref.data[i]));
    diff = Math.max(diff, d);
    if (d) off++;
  }
  assert.ok(diff <= 1, `max code difference ${diff}`);
  assert.ok(off <= ref.data.length * 0.02, `${off} of ${ref.data.length} codes off by one`);
});

Deno.test("integer kernels and the TypeScript reference give identical results", async () => {
  for (
    const [g, shape] of [
      [convGraph(true, 2), [2, 4, 9, 7]],
      [matmulGraph(true), [5, 24]],
      // K·max|x − zx|·max|w| ≥ 2^24: the int8 GEMM with the float epilogue fused in its store.
      [matmulGraph(true, 1500), [5, 1500]],
      // Exact float sums on the float GEMM kernels (M·N·K ≥ 4096), the scale, bias and the
      // fused Relu in their store: with and without a bias, with a Relu.
      [matmulGraph(true, 64, 37), [37, 64]],
      [matmulGraph(false, 64, 19), [2, 19, 64]],
      [withRelu(matmulGraph(true, 64, 37)), [37, 64]],
    ] as const
  ) {
    const x = pattern([...shape], 17, 2);
    const a = await createExecutor(g, { quantized: "integer" }).run({ x });
    const b = await createExecutor(g, { quantized: "integer", reference: true }).run({ x });
    for (const k of Object.keys(a)) assert.deepEqual(a[k].data, b[k].data);
    if (shape[0] === 37) {
      const two = createExecutor(g, { quantized: "integer", threads: 2 });
      try {
        const c = await two.run({ x });
        for (const k of Object.keys(a)) assert.deepEqual(c[k].data, b[k].data, `2 threads ${k}`);
      } finally {
        await two.close();
      }
    }
  }
});

Deno.test("a MatMul's bias exported as an Add runs in the QGemmFused's epilogue with the Add's bits", async () => {
  // MatMul (no bias) → Add(b, ·) [→ Relu]: the Add of a constant [N] becomes the op's bias.
  for (const relu of [false, true]) {
    const g = matmulGraph(false, 64, 19);
    g.nodes[g.nodes.length - 1].outputs = ["mm"];
    g.initializers.set("bv", f32([10], Array.from({ length: 10 }, (_, i) => (i - 4.5) / 3)));
    g.nodes.push(n("add", "Add", ["bv", "mm"], [relu ? "s" : "y"]));
    if (relu) g.nodes.push(n("relu", "Relu", ["s"], ["y"]));
    const plan = fuseGraph(fuseQdq(g));
    assert.deepEqual(plan.nodes.map((x) => x.op), ["QGemmFused"]);
    assert.equal(plan.nodes[0].inputs[6], "bv");
    assert.equal(plan.nodes[0].attrs.lowbit_clamp !== undefined, relu);
    const x = pattern([2, 19, 64], 29, 2);
    const want = await createExecutor(g, { quantized: "integer", fuse: false }).run({ x });
    for (const opts of [{}, { reference: true }, { threads: 2 }]) {
      const e = createExecutor(g, { quantized: "integer", ...opts });
      try {
        const got = await e.run({ x });
        assert.deepEqual(got.y.data, want.y.data, `relu ${relu} ${JSON.stringify(opts)}`);
      } finally {
        await e.close();
      }
    }
  }
});

Deno.test("a float8-weight MatMul's bias exported as an Add runs in the minifloat GEMM's epilogue with the Add's bits", async () => {
  for (const rows of [37, 1]) {
    const g = fp8Graph(false, rows);
    g.nodes[g.nodes.length - 1].outputs = ["mm"];
    g.initializers.set("bv", f32([12], Array.from({ length: 12 }, (_, i) => (i - 5.5) / 3)));
    g.nodes.push(n("add", "Add", ["mm", "bv"], ["y"]));
    const plan = fuseGraph(fuseQdq(g));
    assert.deepEqual(plan.nodes.map((x) => x.op), ["MinifloatGemmFused"]);
    assert.equal(plan.nodes[0].inputs[3], "bv");
    const x = pattern([rows, 40], 31, 1);
    const want = await createExecutor(g, { quantized: "integer", fuse: false }).run({ x });
    for (const threads of [1, 2]) {
      const e = createExecutor(g, { quantized: "integer", threads });
      try {
        assert.deepEqual((await e.run({ x })).y.data, want.y.data, `${rows} rows, ${threads}t`);
      } finally {
        await e.close();
      }
    }
  }
});

/** The graph with a Relu on its output y (the executor fuses it into the QGemmFused). */
function withRelu(g: Graph): Graph {
  g.nodes[g.nodes.length - 1].outputs = ["y0"];
  g.nodes.push(n("relu", "Relu", ["y0"], ["y"]));
  return g;
}

Deno.test("integer execution with threads: 2 gives the TypeScript reference's bits (Conv)", async () => {
  // The exact-float conv then runs over the worker pool (convF32Threaded), split by images.
  for (const [requant, group, cout] of [[false, 1, 6], [true, 2, 6], [false, 4, 4]] as const) {
    const g = convGraph(requant, group, cout);
    const x = pattern([2, 4, 9, 7], 23, 2);
    const ref = await createExecutor(g, { quantized: "integer", reference: true }).run({ x });
    const two = createExecutor(g, { quantized: "integer", threads: 2 });
    try {
      const a = await two.run({ x });
      for (const k of Object.keys(ref)) {
        assert.deepEqual(a[k].data, ref[k].data, `requant ${requant} group ${group}: ${k}`);
      }
    } finally {
      await two.close();
    }
  }
});

/** x (float) → MatMul / Gemm(transB) with DQ(float8 e4m3fn weights, per-output-channel scales). */
function fp8Graph(gemm: boolean, rows = 3): Graph {
  const kk = 40, nn = 12;
  const w = pattern(gemm ? [nn, kk] : [kk, nn], 21, 3).data as Float32Array;
  const scale = Float32Array.from({ length: nn }, (_, i) => 0.01 * (i + 1));
  const codes = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const col = gemm ? Math.floor(i / kk) : i % nn;
    codes[i] = encodeFp8(w[i] / scale[col], "float8e4m3fn", true);
  }
  return {
    name: "fp8",
    nodes: [
      n("dqw", "DequantizeLinear", ["wq", "sw"], ["wd"], {
        axis: { kind: "int", value: gemm ? 0 : 1 },
      }),
      gemm
        ? n("mm", "Gemm", ["x", "wd", "b"], ["y"], { transB: { kind: "int", value: 1 } })
        : n("mm", "MatMul", ["x", "wd"], ["y"]),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [rows, kk] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["wq", { dtype: "float8e4m3fn", shape: gemm ? [nn, kk] : [kk, nn], data: codes }],
      ["sw", f32([nn], scale)],
      ["b", f32([nn], Array.from({ length: nn }, (_, i) => i / 7))],
    ]),
    valueInfo: new Map(),
  };
}

Deno.test("float8 weights run on the minifloat GEMM like the float QDQ reference", async () => {
  for (const gemm of [false, true]) {
    const g = fp8Graph(gemm);
    assert.deepEqual(fuseQdq(g).nodes.map((x) => x.op), ["MinifloatGemmFused"]);
    const x = pattern([3, 40], 9, 1);
    const ref = (await createExecutor(g).run({ x })).y.data as Float32Array;
    for (const reference of [false, true]) {
      const got = (await createExecutor(g, { quantized: "integer", reference }).run({ x })).y;
      assertClose(
        got.data as Float32Array,
        ref,
        1e-5,
        1e-5,
        `fp8 gemm=${gemm} reference=${reference}`,
      );
    }
  }
});

Deno.test("float8 weights: the same bits on one and two threads, near the float64 sums", async () => {
  // 37 rows (the pool splits them); the float plan (DQ weights, float GEMM) as a float64 sum:
  // Σ_k x·decode(code)·scale + bias, the codes' exact values, within the op's K·2⁻²³ bound.
  for (const gemm of [false, true]) {
    const g = fp8Graph(gemm, 37);
    const x = pattern([37, 40], 11, 1);
    const codes = g.initializers.get("wq")!.data as Uint8Array;
    const sw = g.initializers.get("sw")!.data as Float32Array;
    const b = g.initializers.get("b")!.data as Float32Array;
    const dec = (c: number): number => {
      const e = (c >> 3) & 15,
        mant = c & 7,
        v = e === 0 ? mant / 8 * 2 ** -6 : (1 + mant / 8) * 2 ** (e - 7);
      return c & 128 ? -v : v;
    };
    const want = new Float64Array(37 * 12);
    for (let r = 0; r < 37; r++) {
      for (let j = 0; j < 12; j++) {
        let acc = 0;
        for (let i = 0; i < 40; i++) {
          const c = codes[gemm ? j * 40 + i : i * 12 + j];
          acc += (x.data as Float32Array)[r * 40 + i] * dec(c) * sw[j];
        }
        want[r * 12 + j] = acc + (gemm ? b[j] : 0);
      }
    }
    const outs: Float32Array[] = [];
    for (const threads of [1, 2]) {
      const e = createExecutor(g, { quantized: "integer", threads });
      try {
        outs.push((await e.run({ x })).y.data as Float32Array);
      } finally {
        await e.close();
      }
    }
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Object.is(outs[0][i], outs[1][i]),
        `gemm=${gemm} [${i}]: ${outs[0][i]} ≠ ${outs[1][i]}`,
      );
      assert.ok(
        Math.abs(outs[0][i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])),
        `gemm=${gemm} [${i}]`,
      );
    }
  }
});

Deno.test("integer execution keeps values only an If branch reads (a Constant, the fused output)", async () => {
  const base = matmulGraph(true);
  const branch = (op: string): Graph => ({
    name: op,
    nodes: [n(op, op, ["y", "c"], [`${op}_out`])],
    inputs: [],
    outputs: [{ name: `${op}_out`, dtype: "float32" }],
    initializers: new Map(),
    valueInfo: new Map(),
  });
  const g: Graph = {
    ...base,
    nodes: [
      ...base.nodes,
      n("c", "Constant", [], ["c"], { value: { kind: "tensor", value: f32([], [2]) } }),
      n("if", "If", ["cond"], ["z"], {
        then_branch: { kind: "graph", value: branch("Mul") },
        else_branch: { kind: "graph", value: branch("Add") },
      }),
    ],
    inputs: [...base.inputs, { name: "cond", dtype: "bool", shape: [] }],
    outputs: [{ name: "z", dtype: "float32" }],
  };
  const x = pattern([5, 24], 7, 1);
  for (const c of [true, false]) {
    const cond: TensorData = { dtype: "bool", shape: [], data: Uint8Array.of(c ? 1 : 0) };
    const ref = (await createExecutor(g).run({ x, cond })).z;
    const int = (await createExecutor(g, { quantized: "integer" }).run({ x, cond })).z;
    assertClose(int.data as Float32Array, ref.data as Float32Array, 1e-5, 1e-5);
  }
});
