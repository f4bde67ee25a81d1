// The integer plan's dense convs on the kernels' i16 route (`integerSums`, ops/fused.ts): wide
// convs whose worst-case sum K·max|x − zx|·max|w − zw| passes 2²⁴ (where the f32 kernels would
// round) run there too, and must still give the TypeScript reference's bits (`reference: true`:
// int32 sums, Math.fround(acc·scale) + bias, the clamp, requantization), on one and two threads.

import assert from "node:assert/strict";
import type { Graph, Node, TensorData } from "../ir.ts";
import { createExecutor, type ExecutorOptions } from "./executor.ts";
import { pattern } from "./_testing.ts";

function n(name: string, op: string, inputs: string[], outputs: string[], attrs = {}): Node {
  return { name, op, domain: "", inputs, outputs, attrs };
}

const f32 = (shape: number[], v: number[]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});

/** int8 codes for a conv weight of `shape`: ±127 · [lo, 1) in magnitude (sign: `signed`). */
function codes(shape: number[], seed: number, lo: number, signed: boolean): TensorData {
  const w = pattern(shape, seed, 1).data as Float32Array;
  const f = (v: number): number => (signed ? Math.sign(v) : 1) * (lo + (1 - lo) * Math.abs(v));
  return { dtype: "int8", shape, data: Int8Array.from(w, (v) => Math.round(f(v) * 127)) };
}

/**
 * x → Q/DQ (uint8, zero point 0: centred codes 0..255) → Conv 3×3, 96 → 24 channels (K = 864)
 * → Relu → y1 (a float output: its bits show how the sums were rounded) and → Q/DQ (uint8, zero
 * point 5) → Conv 1×1 24 → 40 with a pixel count that leaves a column tail → y. With inputs near
 * the top code and positive weights of 64..127, conv1's sums reach ≈ 2e7 > 2²⁴, where the f32
 * kernels would round them (checked below: that route gives other bits).
 */
function wideGraph(): Graph {
  const q = (p: string, x: string, s: string, z: string): Node[] => [
    n(`${p}.q`, "QuantizeLinear", [x, s, z], [`${p}.xq`]),
    n(`${p}.dq`, "DequantizeLinear", [`${p}.xq`, s, z], [`${p}.xd`]),
  ];
  const axis0 = { axis: { kind: "int", value: 0 } };
  const scales = (k: number, base: number): TensorData =>
    f32([k], Array.from({ length: k }, (_, i) => base * (1 + i / k)));
  return {
    name: "wide",
    nodes: [
      ...q("a", "x", "sa", "za"),
      n("dw1", "DequantizeLinear", ["w1", "s1"], ["w1d"], axis0),
      n("conv1", "Conv", ["a.xd", "w1d", "b1"], ["y1"], {
        pads: { kind: "ints", value: [1, 1, 1, 1] },
      }),
      n("relu", "Relu", ["y1"], ["y2"]),
      ...q("b", "y2", "sb", "zb"),
      n("dw2", "DequantizeLinear", ["w2", "s2"], ["w2d"], axis0),
      n("conv2", "Conv", ["b.xd", "w2d", "b2"], ["y"]),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, 96, 11, 13] }],
    outputs: [{ name: "y", dtype: "float32" }, { name: "y2", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["sa", f32([], [0.004])],
      ["za", { dtype: "uint8", shape: [], data: new Uint8Array([0]) }],
      ["w1", codes([24, 96, 3, 3], 3, 0.5, false)],
      ["s1", scales(24, 0.00001)],
      ["b1", f32([24], Array.from({ length: 24 }, (_, i) => (i - 12) / 1000))],
      ["sb", f32([], [0.05])],
      ["zb", { dtype: "uint8", shape: [], data: new Uint8Array([5]) }],
      ["w2", codes([40, 24, 1, 1], 7, 0, true)],
      ["s2", scales(40, 0.01)],
      ["b2", f32([40], Array.from({ length: 40 }, (_, i) => i / 40))],
    ]),
    valueInfo: new Map(),
  };
}

async function run(g: Graph, x: TensorData, opts: ExecutorOptions): Promise<Float32Array[]> {
  const e = createExecutor(g, opts);
  try {
    const r = await e.run({ x });
    return [r.y.data as Float32Array, r.y2.data as Float32Array];
  } finally {
    await e.close();
  }
}

Deno.test("integer plan: wide dense convs (sums beyond 2^24) on the i16 route give the reference's bits, 1 and 2 threads", async () => {
  const g = wideGraph();
  // Inputs 0.85..1.05 (codes 212..255 after the Q): conv1's sums pass 2²⁴.
  const p = pattern([1, 96, 11, 13], 5, 0.1);
  const x = { ...p, data: (p.data as Float32Array).map((v) => v + 0.95) };
  const ref = await run(g, x, { quantized: "integer", reference: true });
  // y2 = acc·sx·sw[c] + b[c], sx·sw[c] < 0.004·2e-5, |b| ≤ 0.012: a lower bound on acc.
  assert.ok(ref[1].some((v) => (v - 0.012) / (0.004 * 2e-5) > 2 ** 24), "sums beyond 2^24");
  const one = await run(g, x, { quantized: "integer" });
  assert.deepEqual(one, ref, "one thread vs reference");
  const two = await run(g, x, { quantized: "integer", threads: 2 });
  assert.deepEqual(two, ref, "two threads vs reference");
  // The float QDQ simulation rounds those sums: conv1's float output differs in low bits only.
  const [, f1] = await run(g, x, { quantized: "float" });
  assert.notDeepEqual(f1, ref[1], "float rounding visible");
  for (let i = 0; i < f1.length; i++) {
    assert.ok(Math.abs(f1[i] - ref[1][i]) <= 1e-5 * Math.abs(ref[1][i]) + 1e-6, `y2[${i}]`);
  }
});

Deno.test("integer plan: convs with a requantized output (Conv → Q absorbed) requantize in the kernels with the reference's bits", async () => {
  // x → Q/DQ (uint8) → Conv 3×3 stride 2, 8 → 20 (K = 72: the i16 route) → Q (int8, zero
  // point −3) → DQ → y, and a 1×1 conv (K = 8: the f32 route) on the same codes → Q (uint8) →
  // DQ → y2: both convs end in the kernels' integer-only requantization (stride, padding, a
  // pixel tail).
  const q = (p: string, x: string, s: string, z: string): Node[] => [
    n(`${p}.q`, "QuantizeLinear", [x, s, z], [`${p}.xq`]),
    n(`${p}.dq`, "DequantizeLinear", [`${p}.xq`, s, z], [`${p}.xd`]),
  ];
  const axis0 = { axis: { kind: "int", value: 0 } };
  const scales = (k: number, base: number): TensorData =>
    f32([k], Array.from({ length: k }, (_, i) => base * (1 + i / k)));
  const g: Graph = {
    name: "requant",
    nodes: [
      ...q("a", "x", "sa", "za"),
      n("dw1", "DequantizeLinear", ["w1", "s1"], ["w1d"], axis0),
      n("conv1", "Conv", ["a.xd", "w1d", "b1"], ["c1"], {
        pads: { kind: "ints", value: [1, 1, 1, 1] },
        strides: { kind: "ints", value: [2, 2] },
      }),
      ...q("o1", "c1", "so1", "zo1"),
      n("dw2", "DequantizeLinear", ["w2", "s2"], ["w2d"], axis0),
      n("conv2", "Conv", ["a.xd", "w2d", "b2"], ["c2"]),
      ...q("o2", "c2", "so2", "zo2"),
      n("id1", "Identity", ["o1.xd"], ["y"]),
      n("id2", "Identity", ["o2.xd"], ["y2"]),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, 8, 13, 17] }],
    outputs: [{ name: "y", dtype: "float32" }, { name: "y2", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["sa", f32([], [0.01])],
      ["za", { dtype: "uint8", shape: [], data: new Uint8Array([128]) }],
      ["w1", codes([20, 8, 3, 3], 11, 0, true)],
      ["s1", scales(20, 0.01)],
      ["b1", f32([20], Array.from({ length: 20 }, (_, i) => (i - 10) / 7))],
      ["so1", f32([], [0.02])],
      ["zo1", { dtype: "int8", shape: [], data: new Int8Array([-3]) }],
      ["w2", codes([70, 8, 1, 1], 13, 0, true)],
      ["s2", scales(70, 0.02)],
      ["b2", f32([70], Array.from({ length: 70 }, (_, i) => i / 70))],
      ["so2", f32([], [0.015])],
      ["zo2", { dtype: "uint8", shape: [], data: new Uint8Array([100]) }],
    ]),
    valueInfo: new Map(),
  };
  const x = pattern([1, 8, 13, 17], 3, 1.3);
  const ref = await run(g, x, { quantized: "integer", reference: true });
  assert.ok(ref[0].some((v) => v !== ref[0][0]) && ref[1].some((v) => v !== ref[1][0]));
  assert.deepEqual(await run(g, x, { quantized: "integer" }), ref, "one thread");
  assert.deepEqual(await run(g, x, { quantized: "integer", threads: 2 }), ref, "two threads");
});
