// Hand-derived and cross-implementation checks of the ops added for issue 14 where ONNX's node
// tests (onnx_node_suite_test.ts) do not reach: int64 values beyond 2^53, Mod's two modes on
// mixed signs, N-D windows against the 2-D kernels, Einsum against MatMul, and the errors bad
// input gets.

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { Attr, Graph, TensorData } from "../../ir.ts";
import { createExecutor } from "../executor.ts";
import { pattern } from "../_testing.ts";

function graph(
  op: string,
  inputs: (TensorData | undefined)[],
  attrs: Record<string, Attr> = {},
  outputs = 1,
): { g: Graph; feeds: Record<string, TensorData> } {
  const feeds: Record<string, TensorData> = {};
  const names = inputs.map((t, i) => (t === undefined ? "" : `in${i}`));
  inputs.forEach((t, i) => {
    if (t !== undefined) feeds[`in${i}`] = t;
  });
  const outs = Array.from({ length: outputs }, (_, i) => `out${i}`);
  return {
    g: {
      name: "g",
      nodes: [{ name: "n", op, domain: "", inputs: names, outputs: outs, attrs }],
      inputs: Object.entries(feeds).map(([name, t]) => ({ name, dtype: t.dtype })),
      outputs: outs.map((name) => ({ name, dtype: "float32" as const })),
      initializers: new Map(),
      valueInfo: new Map(),
    },
    feeds,
  };
}

async function run1(
  op: string,
  inputs: (TensorData | undefined)[],
  attrs: Record<string, Attr> = {},
): Promise<TensorData> {
  const { g, feeds } = graph(op, inputs, attrs);
  return (await createExecutor(g, { opset: 17 }).run(feeds)).out0;
}

const i64 = (v: bigint[], shape = [v.length]): TensorData => ({
  dtype: "int64",
  shape,
  data: BigInt64Array.from(v),
});
const f32 = (v: number[], shape = [v.length]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});
const int = (v: number): Attr => ({ kind: "int", value: v });

Deno.test("Mod: fmod = 1 truncates (sign of the dividend), fmod = 0 floors (sign of the divisor)", async () => {
  const big = 2n ** 62n + 3n; // beyond float64's exact integers
  const a = i64([-7n, 7n, big, -big]), b = i64([3n, -3n, -5n, 5n]);
  // C fmod: -7 = -2·3 - 1; 7 = -2·(-3) + 1; (2^62 + 3) mod 5: 2^62 ≡ 4 (mod 5), so 4 + 3 ≡ 2
  assert.deepEqual([...(await run1("Mod", [a, b], { fmod: int(1) })).data], [-1n, 1n, 2n, -2n]);
  // Python %: -7 % 3 = 2; 7 % -3 = -2; big % -5 = 2 - 5 = -3; -big % 5 = -2 + 5 = 3
  assert.deepEqual([...(await run1("Mod", [a, b])).data], [2n, -2n, -3n, 3n]);
  // float, fmod = 0 (numpy.mod): -4.5 mod 2 = 1.5, 4.5 mod -2 = -1.5
  const y = await run1("Mod", [f32([-4.5, 4.5]), f32([2, -2])]);
  assert.deepEqual([...y.data], [1.5, -1.5]);
  const yf = await run1("Mod", [f32([-4.5, 4.5]), f32([2, -2])], { fmod: int(1) });
  assert.deepEqual([...yf.data], [-0.5, 0.5]);
});

Deno.test("reductions, ArgMax, CumSum on int64 beyond 2^53 are exact", async () => {
  const h = 2n ** 60n;
  const x = i64([h, 1n, h + 1n, 3n], [2, 2]);
  const axes: Attr = { kind: "ints", value: [0] };
  assert.deepEqual([...(await run1("ReduceSum", [x], { axes })).data], [2n * h + 1n, 4n]);
  assert.deepEqual([...(await run1("ReduceMax", [x], { axes })).data], [h + 1n, 3n]);
  assert.deepEqual([...(await run1("ReduceMin", [x], { axes })).data], [h, 1n]);
  assert.deepEqual([...(await run1("ReduceMean", [x], { axes })).data], [h, 2n]);
  assert.deepEqual([...(await run1("ArgMax", [x], { axis: int(0) })).data], [1n, 1n]);
  assert.deepEqual([...(await run1("ArgMin", [x], { axis: int(0) })).data], [0n, 0n]);
  assert.deepEqual([...(await run1("ReduceProd", [i64([h, 2n])])).data], [
    BigInt.asIntN(64, 2n * h),
  ]);
  const c = await run1("CumSum", [i64([h, 1n, h]), i64([0n], [])]);
  assert.deepEqual([...c.data], [h, h + 1n, 2n * h + 1n]);
});

Deno.test("3-D Conv, ConvTranspose, MaxPool, AveragePool with depth 1 equal the 2-D kernels", async () => {
  const x2 = pattern([1, 2, 5, 6], 3);
  const w2 = pattern([4, 2, 3, 3], 5);
  const b = pattern([4], 7);
  const to3 = (t: TensorData): TensorData => ({
    ...t,
    shape: [t.shape[0], t.shape[1], 1, ...t.shape.slice(2)],
  });
  const cases: [string, TensorData[], Record<string, Attr>, Record<string, Attr>][] = [
    ["Conv", [x2, w2, b], {
      pads: { kind: "ints", value: [1, 0, 1, 1] },
      strides: { kind: "ints", value: [2, 1] },
    }, {
      pads: { kind: "ints", value: [0, 1, 0, 0, 1, 1] },
      strides: { kind: "ints", value: [1, 2, 1] },
    }],
    ["ConvTranspose", [pattern([1, 4, 3, 2], 9), w2, pattern([2], 4)], {
      strides: { kind: "ints", value: [2, 1] },
    }, { strides: { kind: "ints", value: [1, 2, 1] } }],
    ["MaxPool", [x2], { kernel_shape: { kind: "ints", value: [2, 3] } }, {
      kernel_shape: { kind: "ints", value: [1, 2, 3] },
    }],
    ["AveragePool", [x2], {
      kernel_shape: { kind: "ints", value: [3, 3] },
      pads: { kind: "ints", value: [1, 1, 1, 1] },
      count_include_pad: int(1),
    }, {
      kernel_shape: { kind: "ints", value: [1, 3, 3] },
      pads: { kind: "ints", value: [0, 1, 1, 0, 1, 1] },
      count_include_pad: int(1),
    }],
  ];
  for (const [op, ins, a2, a3] of cases) {
    const y2 = await run1(op, ins, a2);
    const y3 = await run1(op, ins.map((t) => (t.shape.length === 4 ? to3(t) : t)), a3);
    assert.deepEqual(y3.shape, to3(y2).shape, op);
    const d2 = y2.data as Float32Array, d3 = y3.data as Float32Array;
    for (let i = 0; i < d2.length; i++) {
      assert.ok(Math.abs(d2[i] - d3[i]) <= 1e-5 * (1 + Math.abs(d2[i])), `${op} at ${i}`);
    }
  }
});

Deno.test("Einsum with broadcast ellipsis equals MatMul", async () => {
  const a = pattern([2, 1, 3, 4], 11), b = pattern([5, 4, 2], 13);
  const e = await run1("Einsum", [a, b], {
    equation: { kind: "string", value: "...ij,...jk->...ik" },
  });
  const m = await run1("MatMul", [a, b]);
  assert.deepEqual(e.shape, [2, 5, 3, 2]);
  assert.deepEqual(e.shape, m.shape);
  const de = e.data as Float32Array, dm = m.data as Float32Array;
  for (let i = 0; i < de.length; i++) assert.ok(Math.abs(de[i] - dm[i]) < 1e-5, `at ${i}`);
  // Implicit output: "ij,jk" sums j and keeps i, k in alphabetical order.
  const imp = await run1("Einsum", [f32([1, 2], [1, 2]), f32([3, 4], [2, 1])], {
    equation: { kind: "string", value: "ij,jk" },
  });
  assert.deepEqual([...imp.data], [11]);
});

Deno.test("gather / scatter: negative indices, reductions, and out-of-range indices name the node", async () => {
  const d = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const g = await run1("GatherElements", [d, i64([-1n, 0n, 1n], [1, 3])], { axis: int(1) });
  assert.deepEqual([...g.data], [3, 1, 2]);
  // ScatterElements max: data row 0 = [1, 2, 3]; updates 5 → col 0, 0 → col 2 (max keeps 3)
  const s = await run1("ScatterElements", [d, i64([0n, 2n], [1, 2]), f32([5, 0], [1, 2])], {
    axis: int(1),
    reduction: { kind: "string", value: "max" },
  });
  assert.deepEqual([...s.data], [5, 2, 3, 4, 5, 6]);
  await assert.rejects(
    run1("GatherElements", [d, i64([3n], [1, 1])], { axis: int(1) }),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "INVALID_ARGUMENT" && e.subject.node === "n",
  );
  await assert.rejects(
    run1("GatherND", [d, i64([2n, 0n], [1, 2])]),
    (e: unknown) =>
      e instanceof LowbitError && /out of range/.test(e.message) && e.subject.node === "n",
  );
});

Deno.test("training-mode Dropout refuses with the node's name; float16 Mod is widened", async () => {
  const x = f32([1, 2]);
  const on: TensorData = { dtype: "bool", shape: [], data: new Uint8Array([1]) };
  await assert.rejects(
    run1("Dropout", [x, f32([0.5], []), on]),
    (e: unknown) => e instanceof LowbitError && e.code === "UNSUPPORTED" && e.subject.node === "n",
  );
  // ratio 0 in training mode is the identity (ONNX's definition).
  assert.deepEqual([...(await run1("Dropout", [x, f32([0], []), on])).data], [1, 2]);
  // float16 inputs are widened to float32 and rounded back: fmod(3, 2) = 1 (0x4200 = 3, 0x3c00 = 1).
  const h3: TensorData = { dtype: "float16", shape: [1], data: new Uint16Array([0x4200]) };
  const h2: TensorData = { dtype: "float16", shape: [1], data: new Uint16Array([0x4000]) };
  const m = await run1("Mod", [h3, h2], { fmod: int(1) });
  assert.equal(m.dtype, "float16");
  assert.deepEqual([...m.data], [0x3c00]);
});

Deno.test("LpPool and N-D MaxPool indices: hand-derived values", async () => {
  // p = 2 over windows of 2: sqrt(3² + 4²) = 5, sqrt(4² + 0²) = 4; p = 1 sums magnitudes.
  const x = f32([3, -4, 0, 1], [1, 1, 4]);
  const k: Attr = { kind: "ints", value: [2] };
  const l2 = await run1("LpPool", [x], { kernel_shape: k, strides: { kind: "ints", value: [2] } });
  assert.deepEqual([...l2.data], [5, 1]);
  const l1 = await run1("LpPool", [x], { kernel_shape: k, p: int(1) });
  assert.deepEqual([...l1.data], [7, 4, 1]);
  // 3-D MaxPool with indices: flat positions in the [1, 1, 2, 2, 2] input.
  const v = f32([1, 8, 3, 4, 5, 6, 9, 2], [1, 1, 2, 2, 2]);
  const { g, feeds } = graph(
    "MaxPool",
    [v],
    { kernel_shape: { kind: "ints", value: [2, 1, 2] } },
    2,
  );
  const out = await createExecutor(g, { opset: 17 }).run(feeds);
  // windows over (d, w) at h = 0: {1, 8, 5, 6} → 8 at 1; at h = 1: {3, 4, 9, 2} → 9 at 6
  assert.deepEqual([...out.out0.data], [8, 9]);
  assert.deepEqual([...out.out1.data], [1n, 6n]);
});

Deno.test("a 3-D Conv → BatchNormalization → Relu runs the same fused and unfused", async () => {
  const w = pattern([3, 2, 2, 2, 2], 17);
  const c = (v: number[]) => f32(v);
  const g: Graph = {
    name: "g",
    nodes: [
      { name: "conv", op: "Conv", domain: "", inputs: ["x", "w"], outputs: ["c"], attrs: {} },
      {
        name: "bn",
        op: "BatchNormalization",
        domain: "",
        inputs: ["c", "s", "b", "m", "v"],
        outputs: ["n"],
        attrs: {},
      },
      { name: "relu", op: "Relu", domain: "", inputs: ["n"], outputs: ["y"], attrs: {} },
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, 2, 3, 4, 5] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: new Map([
      ["w", w],
      ["s", c([1.5, 0.5, 2])],
      ["b", c([0.1, -0.2, 0.3])],
      ["m", c([0.05, 0, -0.1])],
      ["v", c([1, 2, 0.5])],
    ]),
    valueInfo: new Map(),
  };
  const x = pattern([1, 2, 3, 4, 5], 19);
  const fused = (await createExecutor(g).run({ x })).y;
  const plain = (await createExecutor(g, { fuse: false }).run({ x })).y;
  assert.deepEqual(fused.shape, [1, 3, 2, 3, 4]);
  const a = fused.data as Float32Array, b = plain.data as Float32Array;
  assert.ok(b.some((v) => v > 0) && b.some((v) => v === 0), "Relu clips some outputs");
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `at ${i}`);
});

Deno.test("Resize (opset 18): axes, keep_aspect_ratio_policy, antialias refused", async () => {
  const nearest: Record<string, Attr> = {
    mode: { kind: "string", value: "nearest" },
    coordinate_transformation_mode: { kind: "string", value: "asymmetric" },
    nearest_mode: { kind: "string", value: "floor" },
  };
  const run18 = async (ins: (TensorData | undefined)[], attrs: Record<string, Attr>) => {
    const { g, feeds } = graph("Resize", ins, attrs);
    return (await createExecutor(g, { opset: 18 }).run(feeds)).out0;
  };
  const x = f32([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 4]);
  // scales on axis 3 only: every column doubled.
  const y = await run18([x, undefined, f32([2])], {
    ...nearest,
    axes: { kind: "ints", value: [3] },
  });
  assert.deepEqual(y.shape, [1, 1, 2, 8]);
  assert.deepEqual([...y.data], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]);
  // sizes [4, 4] on axes (2, 3): per-axis scales 2 and 1; not_larger takes 1, not_smaller 2.
  const sizes = i64([4n, 4n]);
  const axes: Attr = { kind: "ints", value: [2, 3] };
  const small = await run18([x, undefined, undefined, sizes], {
    ...nearest,
    axes,
    keep_aspect_ratio_policy: { kind: "string", value: "not_larger" },
  });
  assert.deepEqual(small.shape, [1, 1, 2, 4]);
  assert.deepEqual([...small.data], [...x.data]);
  const big = await run18([x, undefined, undefined, sizes], {
    ...nearest,
    axes,
    keep_aspect_ratio_policy: { kind: "string", value: "not_smaller" },
  });
  assert.deepEqual(big.shape, [1, 1, 4, 8]);
  assert.deepEqual([...big.data].slice(0, 8), [1, 1, 2, 2, 3, 3, 4, 4]);
  await assert.rejects(
    run18([x, undefined, f32([1, 1, 0.5, 0.5])], {
      mode: { kind: "string", value: "linear" },
      antialias: int(1),
    }),
    (e: unknown) => e instanceof LowbitError && e.code === "UNSUPPORTED" && e.subject.node === "n",
  );
});

Deno.test("TopK on int64 and int32 keeps the dtype and exact values; ties keep the lower index", async () => {
  const h = 2n ** 60n;
  const { g, feeds } = graph("TopK", [i64([h, h + 2n, h + 1n, h + 2n]), i64([3n])], {}, 2);
  const out = await createExecutor(g, { opset: 11 }).run(feeds);
  assert.deepEqual([...out.out0.data], [h + 2n, h + 2n, h + 1n]);
  assert.deepEqual([...out.out1.data], [1n, 3n, 2n]);
  const x: TensorData = { dtype: "int32", shape: [4], data: new Int32Array([5, -1, 7, -1]) };
  const s = graph("TopK", [x, i64([2n])], { largest: int(0) }, 2);
  const small = await createExecutor(s.g, { opset: 11 }).run(s.feeds);
  assert.equal(small.out0.dtype, "int32");
  assert.deepEqual([...small.out0.data], [-1, -1]);
  assert.deepEqual([...small.out1.data], [1n, 3n]);
});

Deno.test("opset 18 Bitwise ops on signed, unsigned and 64-bit integers", async () => {
  const u8 = (v: number[]): TensorData => ({
    dtype: "uint8",
    shape: [v.length],
    data: Uint8Array.from(v),
  });
  const a = u8([12, 255]), b = u8([10, 1]);
  assert.deepEqual([...(await run1("BitwiseAnd", [a, b])).data], [8, 1]);
  assert.deepEqual([...(await run1("BitwiseOr", [a, b])).data], [14, 255]);
  assert.deepEqual([...(await run1("BitwiseXor", [a, b])).data], [6, 254]);
  assert.deepEqual([...(await run1("BitwiseNot", [u8([5, 0])])).data], [250, 255]);
  const i32: TensorData = { dtype: "int32", shape: [2], data: new Int32Array([5, -1]) };
  assert.deepEqual([...(await run1("BitwiseNot", [i32])).data], [-6, 0]);
  const h = 2n ** 62n;
  assert.deepEqual([...(await run1("BitwiseOr", [i64([h, -1n]), i64([1n])])).data], [h + 1n, -1n]);
  await assert.rejects(
    run1("BitwiseAnd", [f32([1]), f32([1])]),
    (e: unknown) => e instanceof LowbitError && e.code === "UNSUPPORTED",
  );
});

Deno.test("opset 20 forms: GridSample's renamed modes, DFT's axis input", async () => {
  const x = pattern([1, 2, 3, 4], 23), grid = pattern([1, 2, 3, 2], 29, 1.2);
  const at = async (opset: number, ins: TensorData[], attrs: Record<string, Attr>, op: string) => {
    const { g, feeds } = graph(op, ins, attrs);
    return (await createExecutor(g, { opset }).run(feeds)).out0;
  };
  const str = (v: string): Attr => ({ kind: "string", value: v });
  for (const [old, now] of [["bilinear", "linear"], ["bicubic", "cubic"], ["nearest", "nearest"]]) {
    const a = await at(16, [x, grid], { mode: str(old) }, "GridSample");
    const b = await at(20, [x, grid], { mode: str(now) }, "GridSample");
    assert.deepEqual([...b.data], [...a.data], now);
  }
  // DFT over axis 2 of [1, 3, 4, 1]: attribute (opset 17) and input (opset 20) agree.
  const s = pattern([1, 3, 4, 1], 31);
  const a17 = await at(17, [s], { axis: int(2) }, "DFT");
  const { g, feeds } = graph("DFT", [s, undefined, i64([2n], [])]);
  const a20 = (await createExecutor(g, { opset: 20 }).run(feeds)).out0;
  assert.deepEqual(a20.shape, [1, 3, 4, 2]);
  assert.deepEqual([...a20.data], [...a17.data]);
  // Opset 20's default axis is -2 (the last signal axis): here 2 again.
  const d20 = await at(20, [s], {}, "DFT");
  assert.deepEqual([...d20.data], [...a17.data]);
});
