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
