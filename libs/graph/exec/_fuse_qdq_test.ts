import assert from "node:assert/strict";
import type { Graph, TensorData } from "../ir.ts";
import { createExecutor } from "./executor.ts";
import { fuseGraph } from "./_fuse.ts";

/** x → QuantizeLinear(s, z) → DequantizeLinear(s, z) → Mul(·, 1) (so the pair is interior). */
function qdqGraph(zt: TensorData, s: number): Graph {
  const f = (v: number): TensorData => ({
    dtype: "float32",
    shape: [],
    data: new Float32Array([v]),
  });
  return {
    name: "qdq",
    nodes: [
      {
        name: "q",
        op: "QuantizeLinear",
        domain: "",
        inputs: ["x", "s", "z"],
        outputs: ["xq"],
        attrs: {},
      },
      {
        name: "dq",
        op: "DequantizeLinear",
        domain: "",
        inputs: ["xq", "s", "z"],
        outputs: ["xd"],
        attrs: {},
      },
      { name: "m", op: "Mul", domain: "", inputs: ["xd", "one"], outputs: ["y"], attrs: {} },
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [6, 7] }],
    outputs: [{ name: "y", dtype: "float32", shape: [6, 7] }],
    initializers: new Map<string, TensorData>([["s", f(s)], ["z", zt], ["one", f(1)]]),
    valueInfo: new Map(),
  };
}

Deno.test("fuseGraph() turns QuantizeLinear → DequantizeLinear into QdqFused, same bits", async () => {
  // Ties (k + 0.5)·s, values beyond both ends of the code range, NaN, ±0, ±Infinity.
  const s = 0.0625;
  const vals = [NaN, -0, 0, Infinity, -Infinity, 0.5 * s, 1.5 * s, 2.5 * s, -0.5 * s, -1.5 * s];
  for (let i = vals.length; i < 42; i++) vals.push(Math.sin(i * 1.7) * 12 + (i % 5) * 0.031);
  const x: TensorData = { dtype: "float32", shape: [6, 7], data: new Float32Array(vals) };
  const zeros: TensorData[] = [
    { dtype: "int8", shape: [], data: new Int8Array([0]) },
    { dtype: "int8", shape: [], data: new Int8Array([-3]) },
    { dtype: "uint8", shape: [], data: new Uint8Array([128]) },
    { dtype: "uint8", shape: [], data: new Uint8Array([7]) },
  ];
  for (const zt of zeros) {
    const g = qdqGraph(zt, s);
    assert.deepEqual(fuseGraph(g).nodes.map((n) => n.op), ["QdqFused", "Mul"]);
    const fused = (await createExecutor(g).run({ x })).y.data as Float32Array;
    const plain = (await createExecutor(g, { fuse: false }).run({ x })).y.data as Float32Array;
    // Independent check of a few values: code = clamp(rne(x / s) + z), y = (code − z)·s.
    const z = Number(zt.data[0]), [lo, hi] = zt.dtype === "int8" ? [-128, 127] : [0, 255];
    const expect = (v: number): number => {
      if (Number.isNaN(v)) return (0 - z) * s;
      const r = v / s, f = Math.floor(r);
      const q = r - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(r);
      return (Math.min(hi, Math.max(lo, q + z)) - z) * s;
    };
    for (let i = 0; i < 10; i++) assert.ok(Object.is(fused[i] + 0, expect(vals[i]) + 0), `${i}`);
    assert.deepEqual(
      new Uint32Array(fused.buffer.slice(0)),
      new Uint32Array(plain.buffer.slice(0)),
      `zero point ${zt.dtype} ${z}`,
    );
  }
});

Deno.test("fuseGraph() keeps QuantizeLinear → DequantizeLinear with different scales", () => {
  const g = qdqGraph({ dtype: "int8", shape: [], data: new Int8Array([0]) }, 0.5);
  g.initializers.set("s2", { dtype: "float32", shape: [], data: new Float32Array([0.25]) });
  g.nodes[1] = { ...g.nodes[1], inputs: ["xq", "s2", "z"] };
  assert.deepEqual(fuseGraph(g).nodes.map((n) => n.op), [
    "QuantizeLinear",
    "DequantizeLinear",
    "Mul",
  ]);
});

Deno.test("QdqFused writes over an input that dies there, and not over one read later", async () => {
  // x → Mul(1) → m → Q → DQ → d → Mul(1) → y; with `keep`, also y2 = Add(m, d): m must survive
  // the pair (in place over it would make y2 = 2·d).
  const f = (v: number): TensorData => ({ dtype: "float32", shape: [], data: Float32Array.of(v) });
  const zeros: TensorData[] = [
    { dtype: "int8", shape: [], data: Int8Array.of(-3) },
    { dtype: "float8e4m3fn", shape: [], data: Uint8Array.of(0) },
  ];
  const vals = Array.from({ length: 42 }, (_, i) => Math.sin(i * 1.3) * 9);
  vals[5] = NaN;
  const x: TensorData = { dtype: "float32", shape: [6, 7], data: Float32Array.from(vals) };
  for (const zt of zeros) {
    for (const keep of [false, true]) {
      const g: Graph = {
        name: "qdq_in_place",
        nodes: [
          { name: "m0", op: "Mul", domain: "", inputs: ["x", "one"], outputs: ["m"], attrs: {} },
          {
            name: "q",
            op: "QuantizeLinear",
            domain: "",
            inputs: ["m", "s", "z"],
            outputs: ["mq"],
            attrs: {},
          },
          {
            name: "dq",
            op: "DequantizeLinear",
            domain: "",
            inputs: ["mq", "s", "z"],
            outputs: ["d"],
            attrs: {},
          },
          { name: "m1", op: "Mul", domain: "", inputs: ["d", "one"], outputs: ["y"], attrs: {} },
          ...(keep
            ? [{ name: "a", op: "Add", domain: "", inputs: ["m", "d"], outputs: ["y2"], attrs: {} }]
            : []),
        ],
        inputs: [{ name: "x", dtype: "float32", shape: [6, 7] }],
        outputs: [
          { name: "y", dtype: "float32", shape: [6, 7] },
          ...(keep ? [{ name: "y2", dtype: "float32" as const, shape: [6, 7] }] : []),
        ],
        initializers: new Map<string, TensorData>([["s", f(0.0625)], ["z", zt], ["one", f(1)]]),
        valueInfo: new Map(),
      };
      assert.ok(fuseGraph(g).nodes.some((n) => n.op === "QdqFused"));
      const fused = await createExecutor(g).run({ x });
      const plain = await createExecutor(g, { fuse: false }).run({ x });
      for (const o of keep ? ["y", "y2"] : ["y"]) {
        const a = fused[o].data as Float32Array, b = plain[o].data as Float32Array;
        for (let i = 0; i < a.length; i++) {
          const same = Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i]));
          assert.ok(same, `${zt.dtype} keep ${keep} ${o}[${i}]: ${a[i]} ≠ ${b[i]}`);
        }
      }
      // Hand-checked: y2 = m + d with m = x (× 1), so y2 − y is x, not d (0.0625·code).
      if (keep) {
        const y = fused.y.data as Float32Array, y2 = fused.y2.data as Float32Array;
        assert.equal(Math.fround(y2[1] - y[1]), Math.fround(vals[1]));
      }
    }
  }
});

Deno.test("Shape / Size of a Q → DQ pair read the pair's input; a pair read by nothing else goes", async () => {
  const zt: TensorData = { dtype: "int8", shape: [], data: new Int8Array([3]) };
  // Only Shape and Size read the pair (y = Mul(x, 1), a float reader of x itself): no QdqFused.
  const g = qdqGraph(zt, 0.05);
  g.nodes[2] = { ...g.nodes[2], inputs: ["x", "one"] };
  g.nodes.push(
    { name: "sh", op: "Shape", domain: "", inputs: ["xd"], outputs: ["shape"], attrs: {} },
    { name: "sz", op: "Size", domain: "", inputs: ["xd"], outputs: ["size"], attrs: {} },
  );
  g.outputs.push({ name: "shape", dtype: "int64", shape: [2] }, { name: "size", dtype: "int64" });
  const fused = fuseGraph(g);
  assert.deepEqual(fused.nodes.map((n) => n.op), ["Mul", "Shape", "Size"]);
  assert.deepEqual(fused.nodes.slice(1).map((n) => n.inputs[0]), ["x", "x"]);
  // Another reader of the pair's values keeps it (the Shape still reads x).
  const h = qdqGraph(zt, 0.05);
  h.nodes.push({
    name: "sh",
    op: "Shape",
    domain: "",
    inputs: ["xd"],
    outputs: ["shape"],
    attrs: {},
  });
  h.outputs.push({ name: "shape", dtype: "int64", shape: [2] });
  const fh = fuseGraph(h);
  assert.deepEqual(fh.nodes.map((n) => n.op), ["QdqFused", "Mul", "Shape"]);
  assert.equal(fh.nodes[2].inputs[0], "x");
  const x = {
    dtype: "float32" as const,
    shape: [6, 7],
    data: Float32Array.from({ length: 42 }, (_, i) => i / 7 - 3),
  };
  for (const graph of [g, h]) {
    const got = await createExecutor(graph).run({ x });
    const want = await createExecutor(graph, { fuse: false }).run({ x });
    // [6, 7] and 42, as the unfused plan's Shape / Size of the pair's output say.
    assert.deepEqual([...(got.shape.data as BigInt64Array)], [6n, 7n]);
    for (const k of Object.keys(want)) assert.deepEqual(got[k].data, want[k].data, k);
  }
});
