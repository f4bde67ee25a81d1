// A Concat of several tensors read only by a QuantizeLinear → DequantizeLinear pair (what a QDQ
// export puts behind a feature pyramid's Concat, in front of the next conv: PP-OCRv4 det's neck)
// becomes one ConcatQdqFused (_fuse.ts, ops/fused.ts): each part goes through the pair straight
// into its place in the output. Checked against the graph run as written (separate ONNX ops:
// ops/shape.ts's Concat, then ops/qlinear.ts's QuantizeLinear and DequantizeLinear), bit for bit,
// for int8 / uint8 (with and without a zero point) and both float8 formats, on the direct path
// (parts contiguous in the output) and the Concat-then-pair path, on one and two threads and on
// the reference path.

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { Graph, Node, TensorData } from "../ir.ts";
import { nodeOf as node } from "../model_of.ts";
import { createExecutor } from "./executor.ts";
import { fuseGraph } from "./_fuse.ts";
import { fusedOps } from "./ops/fused.ts";
import { f32, values } from "./_testing.ts";

type Zero = "int8" | "uint8" | "none" | "float8e4m3fn" | "float8e5m2";

function zeroPoint(z: Zero): TensorData | undefined {
  if (z === "int8") return { dtype: "int8", shape: [], data: Int8Array.of(-3) };
  if (z === "uint8") return { dtype: "uint8", shape: [], data: Uint8Array.of(130) };
  if (z === "none") return undefined;
  return { dtype: z, shape: [], data: new Uint8Array([0]) };
}

/** a [b, 2, h, w], c [b, 3, h, w] → Concat(axis) → Q(s, z) → DQ → y (and a Relu behind a). */
function graph(z: Zero, s: number, axis: number, shapes: number[][]): Graph {
  const zt = zeroPoint(z);
  const inits = new Map<string, TensorData>([["s", f32([], [s])]]);
  if (zt) inits.set("z", zt);
  const qz = zt ? ["s", "z"] : ["s"];
  const nodes: Node[] = [
    node("relu", "Relu", ["a"], ["a1"]),
    node("cat", "Concat", ["a1", "c"], ["y0"], { axis: { kind: "int", value: axis } }),
    node("q", "QuantizeLinear", ["y0", ...qz], ["yq"]),
    node("dq", "DequantizeLinear", ["yq", ...qz], ["y"]),
  ];
  const out = [...shapes[0]];
  const ax = axis < 0 ? axis + out.length : axis;
  out[ax] = shapes[0][ax] + shapes[1][ax];
  return {
    name: "concat_qdq",
    nodes,
    inputs: [
      { name: "a", dtype: "float32", shape: shapes[0] },
      { name: "c", dtype: "float32", shape: shapes[1] },
    ],
    outputs: [{ name: "y", dtype: "float32", shape: out }],
    initializers: inits,
    valueInfo: new Map(),
  };
}

function feeds(shapes: number[][], amp: number): Record<string, TensorData> {
  const n = (s: number[]): number => s.reduce((p, q) => p * q, 1);
  const a = values(n(shapes[0]), 7, amp), c = values(n(shapes[1]), 11, amp);
  // NaN (code 0), ±Infinity (saturate / clamp), −0, a tiny value (subnormal float8 codes or 0).
  c[0] = NaN;
  c[1] = Infinity;
  c[2] = -Infinity;
  c[3] = -0;
  c[4] = 1e-30;
  a[5] = 1e6;
  return { a: f32(shapes[0], a), c: f32(shapes[1], c) };
}

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    // The same bits (any NaN for NaN: payloads differ between routes).
    const same = Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]));
    if (!same) assert.fail(`${what}: [${i}] ${got[i]} ≠ ${want[i]}`);
  }
}

const ZEROS: Zero[] = ["int8", "uint8", "none", "float8e4m3fn", "float8e5m2"];

Deno.test("Concat → Q → DQ is one ConcatQdqFused with the bits of the separate ops", async () => {
  // Channel axis of one image (the parts are contiguous blocks of the output: direct path), of
  // two images and the last axis (Concat, then the pair), and a negative axis.
  const cases: [number, number[][]][] = [
    [1, [[1, 2, 3, 5], [1, 3, 3, 5]]],
    [-3, [[1, 2, 3, 5], [1, 3, 3, 5]]],
    [1, [[2, 2, 3, 5], [2, 3, 3, 5]]],
    [3, [[1, 2, 3, 5], [1, 2, 3, 4]]],
  ];
  for (const z of ZEROS) {
    for (const [axis, shapes] of cases) {
      const s = z.startsWith("float8") ? 0.05 : 0.02;
      const g = graph(z, s, axis, shapes);
      const fused = fuseGraph(g);
      assert.deepEqual(fused.nodes.map((n) => n.op), ["Relu", "ConcatQdqFused"]);
      const x = feeds(shapes, 3);
      const plain = createExecutor(g, { fuse: false });
      const want = (await plain.run(x)).y;
      await plain.close();
      const wd = want.data as Float32Array;
      assert.ok(wd.some((v) => v !== 0 && v !== wd[0]));
      // Two threads (a worker pool: resident arrays) on the channel-axis cases of two formats.
      const two = (z === "int8" || z === "float8e4m3fn") && axis === 1;
      for (const opts of [{ threads: 1 }, ...(two ? [{ threads: 2 }] : []), { reference: true }]) {
        const what = `${z} axis ${axis} [${shapes[0]}] ${JSON.stringify(opts)}`;
        const e = createExecutor(g, opts);
        try {
          const got = (await e.run(x)).y;
          assert.deepEqual(got.shape, want.shape, what);
          sameBits(got.data as Float32Array, wd, what);
          // The inputs are left as they were (the pair writes into the output only).
          sameBits(x.c.data as Float32Array, feeds(shapes, 3).c.data as Float32Array, what);
        } finally {
          await e.close();
        }
      }
    }
  }
});

Deno.test("the ConcatQdqFused of a hand-computed int8 case", async () => {
  // s = 0.5, z = −3: code = clamp(round_half_even(v / 0.5) − 3, −128, 127), value (code + 3)·0.5.
  // 1.25 → 2.5 → 2 (even) → 1.0; −0.75 → −1.5 → −2 → −1.0; 100 → 200 − 3 > 127 → 127 → 65;
  // NaN → code 0 → 1.5; −100 → −200 − 3 < −128 → −128 → −62.5.
  const g = graph("int8", 0.5, 1, [[1, 2, 1, 1], [1, 3, 1, 1]]);
  const e = createExecutor(g);
  try {
    const y = await e.run({
      a: f32([1, 2, 1, 1], [1.25, -0.75]),
      c: f32([1, 3, 1, 1], [100, NaN, -100]),
    });
    // Relu first on a: −0.75 → 0 → code −3 → 0.
    assert.deepEqual([...(y.y.data as Float32Array)], [1, 0, 65, 1.5, -62.5]);
  } finally {
    await e.close();
  }
});

Deno.test("a Concat read by the pair and by another node is left as it is", () => {
  const g = graph("int8", 0.02, 1, [[1, 2, 3, 5], [1, 3, 3, 5]]);
  g.nodes.push(node("other", "Relu", ["y0"], ["y5"]));
  g.outputs.push({ name: "y5", dtype: "float32", shape: [1, 5, 3, 5] });
  assert.deepEqual(fuseGraph(g).nodes.map((n) => n.op), ["Relu", "Concat", "QdqFused", "Relu"]);
});

Deno.test("ConcatQdqFused with parts that disagree reports Concat's error", async () => {
  const n = node("cat", "ConcatQdqFused", ["s", "z", "a", "c"], ["y"], {
    axis: { kind: "int", value: 1 },
  });
  const parts = [f32([1, 2, 3, 5], values(30, 1, 1)), f32([1, 3, 3, 4], values(36, 2, 1))];
  await assert.rejects(
    async () =>
      await fusedOps.ConcatQdqFused([f32([], [0.05]), zeroPoint("float8e4m3fn"), ...parts], n, {
        opset: 21,
      }),
    (err: unknown) =>
      err instanceof LowbitError && err.code === "SHAPE_MISMATCH" && err.subject.node === "cat" &&
      /Concat: shapes \[1,2,3,5\], \[1,3,3,4\]/.test(err.message),
  );
});
