import assert from "node:assert/strict";
import type { Attr, Graph, Node, TensorData } from "../ir.ts";
import { createExecutor, type ExecutorOptions } from "./executor.ts";
import { fuseGraph } from "./_fuse.ts";
import { pattern } from "./_testing.ts";

function node(op: string, inputs: string[], out: string, attrs: Record<string, Attr> = {}): Node {
  return { name: out, op, domain: "", inputs, outputs: [out], attrs };
}

const scalar = (v: number): TensorData => ({
  dtype: "float32",
  shape: [],
  data: new Float32Array([v]),
});

/**
 * Two convs with elementwise tails: HardSwish written as ONNX decomposes it, then × and + by
 * scalars (all fusable); and Relu, HardSwish, ×, − then Sigmoid (the Sigmoid is not).
 */
function graph(): Graph {
  const pads: Attr = { kind: "ints", value: [1, 1, 1, 1] };
  return {
    name: "post",
    nodes: [
      node("Conv", ["x", "w1", "b1"], "c1", { pads }),
      node("Add", ["c1", "three"], "a1"),
      node("Clip", ["a1", "zero", "six"], "k1"),
      node("Mul", ["c1", "k1"], "m1"),
      node("Div", ["m1", "six"], "h1"),
      node("Mul", ["h1", "s1"], "p1"),
      node("Add", ["p1", "t1"], "y1"),
      node("Conv", ["y1", "w2", "b2"], "c2", { pads, group: { kind: "int", value: 6 } }),
      node("Relu", ["c2"], "r2"),
      node("HardSwish", ["r2"], "h2"),
      node("Mul", ["h2", "s2"], "p2"),
      node("Sub", ["p2", "t2"], "q2"),
      node("Sigmoid", ["q2"], "y2"),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, 4, 9, 10] }],
    outputs: [{ name: "y1", dtype: "float32" }, { name: "y2", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["w1", pattern([6, 4, 3, 3], 3, 0.5)],
      ["b1", pattern([6], 4)],
      ["w2", pattern([6, 1, 3, 3], 5, 0.7)],
      ["b2", pattern([6], 6)],
      ["three", scalar(3)],
      ["zero", scalar(0)],
      ["six", scalar(6)],
      ["s1", scalar(0.7)],
      ["t1", scalar(-0.2)],
      ["s2", scalar(1.3)],
      ["t2", scalar(0.1)],
    ]),
    valueInfo: new Map(),
  };
}

Deno.test("fuseGraph() fuses HardSwish, × c and + c after a Conv into its epilogue", () => {
  const fused = fuseGraph(graph());
  assert.deepEqual(fused.nodes.map((n) => `${n.op}:${n.outputs[0]}`), [
    "Conv:y1",
    "Conv:r2",
    "PointwiseFused:y2",
  ]);
  const [c1, c2, rest] = fused.nodes;
  assert.deepEqual(c1.attrs.lowbit_post?.value, [1, Math.fround(0.7), Math.fround(-0.2)]);
  assert.equal(c1.attrs.lowbit_clamp, undefined);
  assert.deepEqual(c2.attrs.lowbit_post?.value, [1, Math.fround(1.3), -Math.fround(0.1)]);
  assert.deepEqual(c2.attrs.lowbit_clamp?.value, [0, Infinity]);
  assert.equal(rest.attrs.program?.value, '[{"op":"sigmoid"}]');
});

Deno.test("createExecutor() with Conv post-op fusion gives the unfused ops' bits", async () => {
  const x = pattern([1, 4, 9, 10], 7, 4);
  const variants: [ExecutorOptions, ExecutorOptions][] = [
    [{}, { fuse: false }],
    [{ reference: true }, { reference: true, fuse: false }],
    [{ threads: 2 }, { fuse: false }],
  ];
  for (const [a, b] of variants) {
    const ea = createExecutor(graph(), a), eb = createExecutor(graph(), b);
    const fused = await ea.run({ x }), plain = await eb.run({ x });
    await ea.close();
    for (const name of ["y1", "y2"]) {
      assert.deepEqual(fused[name].data, plain[name].data, `${name} ${JSON.stringify(a)}`);
    }
  }
});

Deno.test("fuseGraph() turns Mul → Add into MulAddFused with the separate ops' bits", async () => {
  // y = x + x·s (squeeze-excitation residual, s per channel), z = y·t + u (t, u broadcast rows)
  const g: Graph = {
    name: "muladd",
    nodes: [
      node("GlobalAveragePool", ["x"], "p"),
      node("Sigmoid", ["p"], "s"),
      node("Mul", ["x", "s"], "m"),
      node("Add", ["x", "m"], "y"),
      node("Mul", ["t", "y"], "n"),
      node("Add", ["n", "u"], "z"),
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [2, 3, 5, 7] }],
    outputs: [{ name: "z", dtype: "float32" }],
    initializers: new Map<string, TensorData>([
      ["t", pattern([5, 1], 8)],
      ["u", pattern([3, 1, 7], 9)],
    ]),
    valueInfo: new Map(),
  };
  const fused = fuseGraph(g);
  assert.deepEqual(fused.nodes.map((n) => n.op), [
    "GlobalAveragePool",
    "Sigmoid",
    "MulAddFused",
    "MulAddFused",
  ]);
  const x = pattern([2, 3, 5, 7], 10, 3);
  const a = await createExecutor(g).run({ x });
  const b = await createExecutor(g, { fuse: false }).run({ x });
  assert.deepEqual(a.z.data, b.z.data);
});

Deno.test("fuseGraph() turns Resize → Add into ResizeAddFused with the separate ops' bits", async () => {
  const attrs = (mode: string): Record<string, Attr> => ({
    mode: { kind: "string", value: mode },
    coordinate_transformation_mode: { kind: "string", value: "asymmetric" },
    nearest_mode: { kind: "string", value: "floor" },
  });
  // nearest ×2 (addend first and second), linear ×2, and an addend that broadcasts (row [1,1,1,8]).
  const g: Graph = {
    name: "resizeadd",
    nodes: [
      { ...node("Resize", ["x", "", "s2"], "u"), attrs: attrs("nearest") },
      node("Add", ["l", "u"], "a"),
      { ...node("Resize", ["a", "", "s2"], "v"), attrs: attrs("nearest") },
      node("Add", ["v", "m"], "b"),
      { ...node("Resize", ["x", "", "s2"], "w"), attrs: attrs("linear") },
      node("Add", ["w", "l"], "c"),
      { ...node("Resize", ["x", "", "s2"], "q"), attrs: attrs("nearest") },
      node("Add", ["q", "row"], "d"),
    ],
    inputs: [
      { name: "x", dtype: "float32", shape: [1, 3, 2, 4] },
      { name: "l", dtype: "float32", shape: [1, 3, 4, 8] },
      { name: "m", dtype: "float32", shape: [1, 3, 8, 16] },
    ],
    outputs: ["b", "c", "d"].map((name) => ({ name, dtype: "float32" as const })),
    initializers: new Map<string, TensorData>([
      ["s2", { dtype: "float32", shape: [4], data: new Float32Array([1, 1, 2, 2]) }],
      ["row", pattern([1, 1, 1, 8], 11)],
    ]),
    valueInfo: new Map(),
  };
  const fused = fuseGraph(g);
  assert.deepEqual(fused.nodes.map((n) => n.op), new Array(4).fill("ResizeAddFused"));
  const inputs = {
    x: pattern([1, 3, 2, 4], 12, 2),
    l: pattern([1, 3, 4, 8], 13, 2),
    m: pattern([1, 3, 8, 16], 14, 2),
  };
  const a = await createExecutor(g).run(inputs);
  const b = await createExecutor(g, { fuse: false }).run(inputs);
  for (const name of ["b", "c", "d"]) {
    assert.deepEqual(a[name].shape, b[name].shape, name);
    assert.deepEqual(a[name].data, b[name].data, name);
  }
});

Deno.test("fuseGraph() turns Add → Relu / activation chains into AddFused with the separate ops' bits", async () => {
  // y = Relu(a + b) (the SIMD pass), z = Sigmoid(y + c) · 2 (a PointwiseFused chain: the
  // steps one by one), w = Relu(a + r) with r a broadcast row (the separate Add, then the step),
  // and an integer Add → Mul (shape arithmetic) that stays as it is.
  const g: Graph = {
    name: "addact",
    nodes: [
      node("Add", ["a", "b"], "s"),
      node("Relu", ["s"], "y"),
      node("Add", ["y", "c"], "t"),
      node("Sigmoid", ["t"], "u"),
      node("Mul", ["u", "two"], "z"),
      node("Add", ["a", "r"], "v"),
      node("Relu", ["v"], "w"),
      node("Add", ["i", "j"], "k"),
      node("Mul", ["k", "three"], "l"),
    ],
    inputs: [
      { name: "a", dtype: "float32", shape: [2, 3, 5, 7] },
      { name: "b", dtype: "float32", shape: [2, 3, 5, 7] },
      { name: "c", dtype: "float32", shape: [2, 3, 5, 7] },
      { name: "r", dtype: "float32", shape: [1, 1, 1, 7] },
      { name: "i", dtype: "int64", shape: [2] },
      { name: "j", dtype: "int64", shape: [2] },
    ],
    outputs: ["z", "w", "l"].map((name) => ({ name, dtype: "float32" as const })),
    initializers: new Map<string, TensorData>([
      ["two", scalar(2)],
      ["three", { dtype: "int64", shape: [], data: new BigInt64Array([3n]) }],
    ]),
    valueInfo: new Map(),
  };
  const fused = fuseGraph(g);
  assert.deepEqual(fused.nodes.map((n) => n.op), [
    "AddFused",
    "AddFused",
    "AddFused",
    "Add",
    "Mul",
  ]);
  const a = pattern([2, 3, 5, 7], 13, 3);
  // NaN, −0 and values that cancel: the Relu op maps NaN and −0 to +0.
  (a.data as Float32Array).set([NaN, -0, 1.5, -1e30], 0);
  const feed = {
    a,
    b: pattern([2, 3, 5, 7], 14, 3),
    c: pattern([2, 3, 5, 7], 15, 3),
    r: pattern([1, 1, 1, 7], 12),
    i: { dtype: "int64" as const, shape: [2], data: new BigInt64Array([4n, 5n]) },
    j: { dtype: "int64" as const, shape: [2], data: new BigInt64Array([1n, -2n]) },
  };
  (feed.b.data as Float32Array).set([1, -0, -1.5, 1], 0);
  const one = await createExecutor(g).run(feed);
  const sep = await createExecutor(g, { fuse: false }).run(feed);
  for (const k of ["z", "w", "l"]) assert.deepEqual(one[k].data, sep[k].data, k);
  assert.deepEqual([...(one.l.data as BigInt64Array)], [15n, 9n]);
  assert.ok(Object.is((one.w.data as Float32Array)[1], 0));
});
