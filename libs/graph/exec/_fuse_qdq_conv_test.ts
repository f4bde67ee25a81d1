// An int8 / uint8 QuantizeLinear → DequantizeLinear pair read from a conv's output (what a QDQ
// export puts in front of the next layer when that layer stays float, e.g. PP-OCRv4 det's
// ConvTranspose head) becomes the conv's last post-op (`lowbit_qdq`, _fuse.ts): float Conv
// (dense, depthwise), ConvTranspose (the disjoint 2×2 stride-2 path on the kernels, the general
// scatter path) and the integer plan's QConvFused with a float output. Checked against the graph
// run as written (separate ONNX ops: ops/qlinear.ts's QuantizeLinear, then DequantizeLinear), bit
// for bit, on one and two threads.

import assert from "node:assert/strict";
import type { Graph, Node, TensorData } from "../ir.ts";
import { nodeOf as node } from "../model_of.ts";
import { createExecutor } from "./executor.ts";
import { fuseGraph } from "./_fuse.ts";
import { fuseQdq } from "./quantized.ts";
import { f32, values } from "./_testing.ts";

type Kind = "conv" | "depthwise" | "convT2" | "convT3" | "qconv" | "qdepthwise";

/**
 * x → conv → Q(zq) → DQ → y, or for the integer plan x → Q → DQ (int8) → conv (int8 QDQ weights)
 * → Relu → Q(zq) → DQ → y (PP-OCRv4 det's last neck conv: without the Relu, the integer plan
 * absorbs the Q into the conv's requantized output instead).
 */
function graph(kind: Kind, zq: TensorData, s: number): Graph {
  const c = 4, o = 4;
  const dw = kind === "depthwise" || kind === "qdepthwise";
  const transposed = kind === "convT2" || kind === "convT3";
  const k = kind === "convT2" ? 2 : 3;
  const wShape = transposed ? [c, o, k, k] : [o, dw ? 1 : c, k, k];
  const wn = wShape.reduce((a, b) => a * b);
  const inits = new Map<string, TensorData>([
    ["b", f32([o], values(o, 3, 0.5))],
    ["sq", f32([], [s])],
    ["zq", zq],
  ]);
  const nodes: Node[] = [];
  let xin = "x", win = "w";
  const integer = kind === "qconv" || kind === "qdepthwise";
  if (integer) {
    inits.set("sx", f32([], [0.02]));
    inits.set("zx", { dtype: "int8", shape: [], data: Int8Array.of(3) });
    inits.set("wq", {
      dtype: "int8",
      shape: wShape,
      data: Int8Array.from(values(wn, 5, 127), Math.round),
    });
    inits.set("sw", f32([o], [0.01, 0.02, 0.015, 0.03]));
    nodes.push(node("qx", "QuantizeLinear", ["x", "sx", "zx"], ["xq"]));
    nodes.push(node("dqx", "DequantizeLinear", ["xq", "sx", "zx"], ["xd"]));
    nodes.push(node("dqw", "DequantizeLinear", ["wq", "sw"], ["wd"], {
      axis: { kind: "int", value: 0 },
    }));
    xin = "xd";
    win = "wd";
  } else inits.set("w", f32(wShape, values(wn, 5, 1)));
  const attrs: Node["attrs"] = kind === "convT2"
    ? { strides: { kind: "ints", value: [2, 2] } }
    : kind === "convT3"
    ? { strides: { kind: "ints", value: [2, 2] }, pads: { kind: "ints", value: [1, 1, 1, 1] } }
    : {
      pads: { kind: "ints", value: [1, 1, 1, 1] },
      ...(dw ? { group: { kind: "int", value: c } } : {}),
    };
  nodes.push(
    node(
      "conv",
      transposed ? "ConvTranspose" : "Conv",
      [xin, win, "b"],
      [integer ? "y0" : "y1"],
      attrs,
    ),
  );
  if (integer) nodes.push(node("relu", "Relu", ["y0"], ["y1"]));
  nodes.push(
    node("q", "QuantizeLinear", ["y1", "sq", "zq"], ["y2"]),
    node("dq", "DequantizeLinear", ["y2", "sq", "zq"], ["y"]),
  );
  return {
    name: "qdq_conv",
    nodes,
    inputs: [{ name: "x", dtype: "float32", shape: [2, c, 5, 6] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: inits,
    valueInfo: new Map(),
  };
}

Deno.test("an int8 / uint8 Q → DQ pair after a conv fuses into its epilogue, same bits", async () => {
  // Large inputs saturate the codes; a NaN input makes NaN conv outputs (code 0 after Q).
  const xs = values(2 * 4 * 5 * 6, 9, 6);
  xs[0] = NaN;
  xs[37] = -0;
  const x = f32([2, 4, 5, 6], xs);
  // The integer plan's conv passes a NaN input on as NaN and its fused Relu keeps it, where the
  // Relu op of the unfused plan gives 0 (not this rewrite's business): no NaN there.
  const xi = f32([2, 4, 5, 6], xs.map((v) => Number.isNaN(v) ? 0.25 : v));
  const zeros: TensorData[] = [
    { dtype: "int8", shape: [], data: Int8Array.of(-3) },
    { dtype: "uint8", shape: [], data: Uint8Array.of(128) },
  ];
  const kinds: Kind[] = ["conv", "depthwise", "convT2", "convT3", "qconv", "qdepthwise"];
  for (const kind of kinds) {
    for (const zq of zeros) {
      for (const s of [0.05, 0.7]) {
        const g = graph(kind, zq, s);
        const z = Number(zq.data[0]);
        const [lo, hi] = zq.dtype === "int8" ? [-128, 127] : [0, 255];
        const what = `${kind} ${zq.dtype} ${z} s ${s}`;
        const integer = kind === "qconv" || kind === "qdepthwise";
        const opts = integer ? { quantized: "integer" as const } : {};
        const fused = fuseGraph(integer ? fuseQdq(g) : g);
        const op = integer ? "QConvFused" : kind.startsWith("convT") ? "ConvTranspose" : "Conv";
        assert.deepEqual(fused.nodes.map((n) => n.op), [op], what);
        assert.deepEqual(
          fused.nodes[0].attrs.lowbit_qdq?.value,
          [Math.fround(s), lo - z, hi - z, -z],
          what,
        );
        for (const threads of s === 0.05 && zq.dtype === "int8" ? [1, 2] : [1]) {
          const e = createExecutor(g, { ...opts, threads });
          const plain = createExecutor(g, { ...opts, fuse: false });
          try {
            const feed = { x: integer ? xi : x };
            const want = (await plain.run(feed)).y.data as Float32Array;
            const got = (await e.run(feed)).y.data as Float32Array;
            assert.deepEqual(
              new Uint32Array(got.buffer, got.byteOffset, got.length),
              new Uint32Array(want.buffer, want.byteOffset, want.length),
              `${what}, ${threads} thread(s)`,
            );
            // Independent checks of the separate ops' values: every one is a code of the range
            // times the scale, and the NaN outputs took code 0 (value (0 − z)·s).
            const sf = Math.fround(s);
            for (const v of want) {
              const c = Math.round(v / sf);
              assert.ok(c >= lo - z && c <= hi - z && Math.fround(c * sf) === v, `${what}: ${v}`);
            }
            if (!integer) assert.ok(want.includes(Math.fround(-z * sf)), `${what}: NaN → code 0`);
          } finally {
            await e.close();
            await plain.close();
          }
        }
      }
    }
  }
});

Deno.test("a Q → DQ pair with per-channel scales or a second reader stays a step of its own", () => {
  const g = graph("conv", { dtype: "int8", shape: [], data: Int8Array.of(0) }, 0.1);
  const perChannel = {
    ...g,
    initializers: new Map(g.initializers).set("sq", f32([4], [0.1, 0.2, 0.3, 0.4])),
  };
  perChannel.nodes = perChannel.nodes.map((n) =>
    n.op === "QuantizeLinear" || n.op === "DequantizeLinear"
      ? { ...n, attrs: { axis: { kind: "int", value: 1 } } }
      : n
  );
  assert.ok(!fuseGraph(perChannel).nodes.some((n) => n.attrs.lowbit_qdq !== undefined));
  // The conv's output is also a graph output: the pair cannot take its place.
  const read = { ...g, outputs: [...g.outputs, { name: "y1", dtype: "float32" as const }] };
  const plan = fuseGraph(read);
  assert.deepEqual(plan.nodes.map((n) => n.op), ["Conv", "QdqFused"]);
  assert.equal(plan.nodes[0].attrs.lowbit_qdq, undefined);
});

Deno.test("a float8 Q → DQ pair after a ConvTranspose fuses into its epilogue, same bits", async () => {
  const xs = values(2 * 4 * 5 * 6, 11, 30);
  xs[3] = NaN;
  const x = f32([2, 4, 5, 6], xs);
  for (const kind of ["convT2", "convT3"] as const) {
    for (const dtype of ["float8e4m3fn", "float8e5m2"] as const) {
      const g = graph(kind, { dtype, shape: [], data: new Uint8Array([0]) }, 0.05);
      const plan = fuseGraph(g);
      const what = `${kind} ${dtype}`;
      assert.deepEqual(plan.nodes.map((n) => n.op), ["ConvTranspose"], what);
      const fmt = dtype === "float8e5m2" ? 1 : 0;
      assert.deepEqual(plan.nodes[0].attrs.lowbit_qdq8?.value, [Math.fround(0.05), fmt], what);
      const e = createExecutor(g), plain = createExecutor(g, { fuse: false });
      try {
        const want = (await plain.run({ x })).y.data as Float32Array;
        const got = (await e.run({ x })).y.data as Float32Array;
        assert.equal(got.length, want.length, what);
        for (let i = 0; i < got.length; i++) {
          const same = Object.is(got[i], want[i]) ||
            (Number.isNaN(got[i]) && Number.isNaN(want[i]));
          if (!same) assert.fail(`${what}: [${i}] ${got[i]} ≠ ${want[i]}`);
        }
        assert.ok(want.some((v) => Number.isNaN(v)), what);
      } finally {
        await e.close();
        await plain.close();
      }
    }
  }
});
