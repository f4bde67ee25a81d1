// The float8 activation QDQ that QDQ exports write behind a one-input Concat barrier (Conv → Concat
// → QuantizeLinear(fp8) → DequantizeLinear → …): the fused plan drops the Concat (it was a copy of
// the tensor) and the pair becomes one QdqFused (behind a float Conv, the conv's last post-op,
// lowbit_qdq8). Checked against the graph run as written (separate ONNX ops: ops/qlinear.ts's fp8
// encode, then decode), bit for bit.

import assert from "node:assert/strict";
import type { Graph, Node, TensorData } from "../ir.ts";
import { nodeOf as node } from "../model_of.ts";
import { createExecutor } from "./executor.ts";
import { fuseGraph } from "./_fuse.ts";
import { fuseQdq } from "./quantized.ts";
import { f32, values } from "./_testing.ts";

/**
 * x → [Q → DQ (int8) →] Conv(w, 3×3 pad 1, or depthwise) → Concat(1) → Q(fp8) → DQ → y. With `int8` the conv's input and weights are int8 QDQ (the integer plan's QConvFused).
 */
function graph(
  format: "float8e4m3fn" | "float8e5m2",
  depthwise: boolean,
  int8: boolean,
  s8: number,
): Graph {
  const c = 4, o = 4, kk = depthwise ? 1 : c;
  const inits = new Map<string, TensorData>([
    ["b", f32([o], values(o, 3, 0.5))],
    ["s8", f32([], [s8])],
    ["z8", { dtype: format, shape: [], data: new Uint8Array([0]) }],
  ]);
  const nodes: Node[] = [];
  let xin = "x", win = "w";
  if (int8) {
    inits.set("sx", f32([], [0.02]));
    inits.set("zx", { dtype: "int8", shape: [], data: Int8Array.of(3) });
    inits.set("wq", {
      dtype: "int8",
      shape: [o, kk, 3, 3],
      data: Int8Array.from(values(o * kk * 9, 5, 127), Math.round),
    });
    inits.set("sw", f32([o], [0.01, 0.02, 0.015, 0.03]));
    nodes.push(node("qx", "QuantizeLinear", ["x", "sx", "zx"], ["xq"]));
    nodes.push(node("dqx", "DequantizeLinear", ["xq", "sx", "zx"], ["xd"]));
    nodes.push(node("dqw", "DequantizeLinear", ["wq", "sw"], ["wd"], {
      axis: { kind: "int", value: 0 },
    }));
    xin = "xd";
    win = "wd";
  } else inits.set("w", f32([o, kk, 3, 3], values(o * kk * 9, 5, 1)));
  nodes.push(
    node("conv", "Conv", [xin, win, "b"], ["y0"], {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
      ...(depthwise ? { group: { kind: "int", value: c } } : {}),
    }),
    node("barrier", "Concat", ["y0"], ["y1"], { axis: { kind: "int", value: 1 } }),
    node("q8", "QuantizeLinear", ["y1", "s8", "z8"], ["y2"]),
    node("dq8", "DequantizeLinear", ["y2", "s8", "z8"], ["y"]),
  );
  return {
    name: "fp8",
    nodes,
    inputs: [{ name: "x", dtype: "float32", shape: [2, c, 5, 6] }],
    outputs: [{ name: "y", dtype: "float32", shape: [2, o, 5, 6] }],
    initializers: inits,
    valueInfo: new Map(),
  };
}

Deno.test("a one-input Concat barrier is dropped from the fused plan, same bits", async () => {
  // Large inputs saturate (±max), small ones land on subnormal codes; NaN and ±0 pass through.
  const xs = values(2 * 4 * 5 * 6, 9, 40);
  xs[0] = NaN;
  xs[7] = -0;
  xs[11] = 1e-30;
  const x = f32([2, 4, 5, 6], xs);
  for (const format of ["float8e4m3fn", "float8e5m2"] as const) {
    for (const depthwise of [false, true]) {
      for (const int8 of [false, true]) {
        for (const s8 of [0.05, 1.5]) {
          const g = graph(format, depthwise, int8, s8);
          const what = `${format} ${depthwise ? "depthwise" : "dense"} int8 ${int8} s ${s8}`;
          const opts = int8 ? { quantized: "integer" as const } : {};
          const fused = fuseGraph(int8 ? fuseQdq(g) : g);
          const ops = fused.nodes.map((n) => n.op);
          // A float Conv then takes the pair as its epilogue's last post-op (lowbit_qdq8).
          assert.deepEqual(ops, int8 ? ["QConvFused", "QdqFused"] : ["Conv"], what);
          if (!int8) {
            const fmt = format === "float8e5m2" ? 1 : 0;
            assert.deepEqual(fused.nodes[0].attrs.lowbit_qdq8?.value, [Math.fround(s8), fmt]);
          }
          for (const threads of s8 === 0.05 ? [1, 2] : [1]) {
            const e = createExecutor(g, { ...opts, threads });
            const plain = createExecutor(g, { ...opts, fuse: false });
            try {
              const want = (await plain.run({ x })).y.data as Float32Array;
              const got = (await e.run({ x })).y.data as Float32Array;
              // The same bits (any NaN for NaN: payloads differ between the routes).
              assert.equal(got.length, want.length);
              for (let i = 0; i < got.length; i++) {
                const same = Object.is(got[i], want[i]) ||
                  (Number.isNaN(got[i]) && Number.isNaN(want[i]));
                if (!same) {
                  assert.fail(`${what}, ${threads} thread(s): [${i}] ${got[i]} ≠ ${want[i]}`);
                }
              }
              assert.ok(want.some((v) => Number.isNaN(v)));
            } finally {
              await e.close();
              await plain.close();
            }
          }
        }
      }
    }
  }
});

Deno.test("a one-input Concat that is a graph output is kept", () => {
  const g = graph("float8e4m3fn", false, false, 0.5);
  g.outputs = [{ name: "y1", dtype: "float32", shape: [2, 4, 5, 6] }];
  g.nodes = g.nodes.slice(0, 2);
  assert.deepEqual(fuseGraph(g).nodes.map((n) => n.op), ["Conv", "Concat"]);
});

Deno.test("run() profiles by node with the given clock, or by op type", async () => {
  // The integer plan: the float8 pair stays a step of its own after the QConvFused.
  const g = graph("float8e4m3fn", false, true, 0.5);
  const x = f32([2, 4, 5, 6], values(240, 4, 3));
  const e = createExecutor(g, { quantized: "integer" });
  let ticks = 0;
  const byNode: Record<string, number> = {}, byOp: Record<string, number> = {};
  await e.run({ x }, { profile: byNode, profileBy: "node", profileClock: () => ticks++ });
  await e.run({ x }, { profile: byOp });
  // The fused plan: the conv, then the QDQ pair as one QdqFused (named after the Q node); each
  // step reads the clock twice, one tick apart.
  assert.deepEqual(byNode, { "conv QConvFused": 1, "q8 QdqFused": 1 });
  assert.deepEqual(Object.keys(byOp).sort(), ["QConvFused", "QdqFused"]);
  assert.ok(Object.values(byOp).every((v) => v >= 0));
});
