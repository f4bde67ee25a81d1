import assert from "node:assert/strict";
import {
  createExecutor,
  type Graph,
  ifNodeOf,
  modelOf,
  type Node,
  type TensorData,
} from "@lowbit/graph";
import { dominantTap, splitDominantTaps } from "./tap_split.ts";
import { quantize } from "./quantize.ts";

/** Deterministic values in [-1, 1). */
function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const t = (shape: number[], data: Float32Array): TensorData => ({ dtype: "float32", shape, data });

/** A reparameterised weight: small taps everywhere, `big` added at `tap` (a folded 1×1 branch). */
function reparam(shape: number[], tap: number, big: number, seed: number): TensorData {
  const [o, c, ...k] = shape;
  const taps = k.reduce((a, b) => a * b, 1);
  const w = lcg(o * c * taps, seed).map((v) => v * 0.05);
  const b = lcg(o * c, seed + 1);
  for (let i = 0; i < o * c; i++) w[i * taps + tap] += big * b[i];
  return t(shape, w);
}

function convGraph(
  x: (number | string)[],
  w: TensorData,
  attrs: Node["attrs"],
  bias?: TensorData,
): Graph {
  const init = new Map([["W", w]]);
  if (bias) init.set("B", bias);
  return {
    name: "g",
    valueInfo: new Map(),
    initializers: init,
    inputs: [{ name: "x", dtype: "float32", shape: x }],
    outputs: [{ name: "y", dtype: "float32" }],
    nodes: [{
      name: "conv",
      op: "Conv",
      domain: "",
      inputs: ["x", "W", ...(bias ? ["B"] : [])],
      outputs: ["y"],
      attrs,
    }],
  };
}

async function run(g: Graph, x: TensorData): Promise<Float32Array> {
  return (await createExecutor(modelOf(g)).run({ x }))[g.outputs[0].name].data as Float32Array;
}

/** Max |a − b| relative to max |a|. */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return d / m;
}

const ints = (value: number[]) => ({ kind: "ints" as const, value });

Deno.test("dominantTap: mean over rows of log2(row max / other taps' max), capped at 8", () => {
  // Row 0: centre 50, sides 0.1 → log2(500) = 8.97 → 8. Row 1: centre 2, sides 0.5 → 2 bits.
  const w = Float32Array.of(0.1, 50, -0.1, 0.5, 2, -0.5);
  assert.deepEqual(dominantTap(w, 2, 1, 3), { tap: 1, bits: 5 });
  // Two input channels; the right tap holds each row's max: row 0 log2(8/1) = 3; row 1 other
  // taps all zero → 8. A dead row (all zero) counts 0.
  const w2 = Float32Array.of(
    1,
    0,
    8,
    0,
    0,
    1,
    /* row 1 */ 0,
    0,
    3,
    0,
    0,
    2,
    /* row 2 */ 0,
    0,
    0,
    0,
    0,
    0,
  );
  assert.deepEqual(dominantTap(w2, 3, 2, 3), { tap: 2, bits: 11 / 3 });
});

Deno.test("splitDominantTaps: 1-D, stride 2, bias: the weights split exactly, float output kept", async () => {
  const w = reparam([6, 4, 3], 1, 20, 7);
  const bias = t([6], lcg(6, 3));
  const g = convGraph([1, 4, 17], w, { pads: ints([1, 1]), strides: ints([2]) }, bias);
  const r = splitDominantTaps(g);
  assert.equal(r.split.length, 1);
  assert.deepEqual({ ...r.split[0], bits: 0 }, {
    node: "conv",
    tapNode: "conv/tap",
    tap: [1],
    bits: 0,
  });
  assert.ok(r.split[0].bits > 2, String(r.split[0].bits));
  assert.deepEqual(r.graph.nodes.map((n) => `${n.name}:${n.op}`), [
    "conv:Conv",
    "conv/tap:Conv",
    "conv/sum:Add",
  ]);
  // The input graph is untouched.
  assert.equal(g.nodes.length, 1);
  const one = r.graph.initializers.get("W/tap")!, rest = r.graph.initializers.get("W/rest")!;
  assert.deepEqual(one.shape, [6, 4, 1]);
  assert.deepEqual(rest.shape, [6, 4, 3]);
  assert.equal(r.graph.initializers.has("W"), false);
  const wd = w.data as Float32Array;
  for (let k = 0; k < 24; k++) {
    assert.equal((one.data as Float32Array)[k], wd[k * 3 + 1]);
    assert.deepEqual(
      Array.from((rest.data as Float32Array).subarray(k * 3, k * 3 + 3)),
      [wd[k * 3], 0, wd[k * 3 + 2]],
    );
  }
  // The 1-tap conv reads x[2j − 1 + 1] = x[2j]: no padding; the bias stays on the rest.
  const tapNode = r.graph.nodes[1];
  assert.deepEqual(tapNode.attrs.pads, ints([0, 0]));
  assert.deepEqual(tapNode.attrs.kernel_shape, ints([1]));
  assert.deepEqual(r.graph.nodes[0].inputs, ["x", "W/rest", "B"]);
  const x = t([1, 4, 17], lcg(68, 11));
  assert.ok(relErr(await run(g, x), await run(r.graph, x)) < 1e-6);
});

Deno.test("splitDominantTaps: 2-D, dilation 2, groups, an off-centre tap", async () => {
  // 3×3 kernel, dilation 2, tap (1, 2): the 1-tap conv's pads are the pads less the tap's
  // reach on each side, so pads [2, 4, 2, 0] (begin h, w; end h, w) allow it.
  const w = reparam([4, 2, 3, 3], 5, 30, 21); // tap 5 = (1, 2)
  const attrs = {
    pads: ints([2, 4, 2, 0]),
    dilations: ints([2, 2]),
    group: { kind: "int" as const, value: 2 },
  };
  const g = convGraph([1, 4, 9, 8], w, attrs);
  const r = splitDominantTaps(g);
  assert.equal(r.split.length, 1);
  assert.deepEqual(r.split[0].tap, [1, 2]);
  // Begin pads: 2 − 1·2, 4 − 2·2; end pads: 2 − (3 − 1 − 1)·2, 0 − 0.
  assert.deepEqual(r.graph.nodes[1].attrs.pads, ints([0, 0, 0, 0]));
  assert.deepEqual(r.graph.initializers.get("W/tap")!.shape, [4, 2, 1, 1]);
  const x = t([1, 4, 9, 8], lcg(288, 5));
  assert.ok(relErr(await run(g, x), await run(r.graph, x)) < 1e-6);
});

Deno.test("splitDominantTaps: left alone below the threshold, shared, auto_pad SAME, negative pads", () => {
  const w = reparam([4, 2, 3], 1, 20, 9);
  const mean = dominantTap(w.data as Float32Array, 4, 2, 3).bits;
  const pads = { pads: ints([1, 1]) };
  assert.equal(
    splitDominantTaps(convGraph([1, 2, 8], w, pads), { minBits: mean + 0.01 }).split.length,
    0,
  );
  assert.equal(splitDominantTaps(convGraph([1, 2, 8], w, pads), { minBits: mean }).split.length, 1);
  // Evenly spread weights: no tap dominates.
  const even = t([4, 2, 3], lcg(24, 4));
  assert.equal(splitDominantTaps(convGraph([1, 2, 8], even, pads)).split.length, 0);
  // auto_pad SAME_UPPER: left alone.
  const same = { auto_pad: { kind: "string" as const, value: "SAME_UPPER" } };
  assert.equal(splitDominantTaps(convGraph([1, 2, 8], w, same)).split.length, 0);
  // No padding: the centre tap alone would need pads of −1.
  assert.equal(splitDominantTaps(convGraph([1, 2, 8], w, {})).split.length, 0);
  // The weight read by a second node.
  const g = convGraph([1, 2, 8], w, pads);
  g.nodes.push({ ...g.nodes[0], name: "conv2", outputs: ["y2"] });
  assert.equal(splitDominantTaps(g).split.length, 0);
});

Deno.test("splitDominantTaps: a conv inside an If branch whose weight is an outer initializer", async () => {
  const w = reparam([3, 2, 3], 1, 10, 13);
  const body: Graph = {
    name: "then",
    valueInfo: new Map(),
    initializers: new Map(),
    inputs: [],
    outputs: [{ name: "yt", dtype: "float32" }],
    nodes: [{
      name: "inner",
      op: "Conv",
      domain: "",
      inputs: ["x", "W"],
      outputs: ["yt"],
      attrs: { pads: ints([1, 1]) },
    }],
  };
  const other: Graph = { ...structuredClone(body), name: "else" };
  other.nodes[0] = { ...other.nodes[0], op: "Identity", inputs: ["x"] };
  const g: Graph = {
    name: "g",
    valueInfo: new Map(),
    initializers: new Map([["W", w], ["c", { dtype: "bool", shape: [], data: Uint8Array.of(1) }]]),
    inputs: [{ name: "x", dtype: "float32", shape: [1, 2, 6] }],
    outputs: [{ name: "y", dtype: "float32" }],
    nodes: [ifNodeOf("if", "c", ["y"], body, other)],
  };
  const r = splitDominantTaps(g);
  assert.deepEqual(r.split.map((s) => s.node), ["inner"]);
  const then = r.graph.nodes[0].attrs.then_branch as { kind: "graph"; value: Graph };
  assert.deepEqual([...then.value.initializers.keys()], ["W/tap", "W/rest"]);
  assert.equal(r.graph.initializers.has("W"), false);
  const x = t([1, 2, 6], lcg(12, 17));
  assert.ok(relErr(await run(g, x), await run(r.graph, x)) < 1e-6);
});

Deno.test("quantize with splitTaps: the side taps on their own int8 grid, the output error falls", async () => {
  // Centre weights ~±20, side taps ~±0.05: whole, each row's int8 step (~0.16) rounds most side
  // weights to 0; split, the sides get a step ~400× finer.
  const w = reparam([8, 8, 3], 1, 20, 29);
  const g = convGraph(["n", 8, 32], w, { pads: ints([1, 1]) });
  const x = t([16, 8, 32], lcg(16 * 256, 31));
  const calib = { inputs: { x }, count: 16 };
  const weightsOnly = [{ match: "*", activation: null }];
  const whole = await quantize({ model: modelOf(g), calib, rules: weightsOnly });
  const split = await quantize({ model: modelOf(g), calib, rules: weightsOnly, splitTaps: 2 });
  assert.deepEqual(split.quantized.layers.map((l) => l.node), ["conv", "conv/tap"]);
  assert.equal(split.quantized.plan.options.splitTaps, 2);
  assert.equal(whole.quantized.plan.options.splitTaps, undefined);
  assert.match(split.warnings.join("\n"), /split 1 conv\(s\) .*: conv \([\d.]+ bits\)/);
  const ref = await run(g, x);
  const eWhole = relErr(ref, await run(whole.quantized.model.graph, x));
  const eSplit = relErr(ref, await run(split.quantized.model.graph, x));
  assert.ok(eSplit < eWhole, `split ${eSplit}, whole ${eWhole}`);
  // The side taps' rounding error: whole, within each row's centre-set step (most round to 0);
  // split, within a step set by the sides' own max, ~400× finer: its energy falls > 1000×.
  const f = w.data as Float32Array;
  const wq = whole.quantized.model.graph.initializers.get("W")!.data as Float32Array;
  const rq = split.quantized.model.graph.initializers.get("W/rest")!.data as Float32Array;
  let eW = 0, eS = 0, zeros = 0;
  for (let i = 0; i < f.length; i++) {
    if (i % 3 === 1) continue;
    eW += (wq[i] - f[i]) ** 2;
    eS += (rq[i] - f[i]) ** 2;
    if (wq[i] === 0) zeros++;
  }
  assert.ok(eS * 1000 < eW, `side taps' error² split ${eS}, whole ${eW}`);
  assert.ok(zeros > 64, `${zeros} of 128 side weights round to 0 whole`);
  // A replayed plan splits the same way.
  const replay = await quantize({ model: modelOf(g), calib, plan: split.quantized.plan });
  assert.deepEqual(replay.quantized.layers.map((l) => l.node), ["conv", "conv/tap"]);
});
