import assert from "node:assert/strict";
import { digitsModel } from "./_testdata.ts";
import { fromOutIn, scanLayers, toOutIn } from "./layers.ts";

Deno.test("scanLayers() finds every weight layer of the fixtures and says why the others are not", async () => {
  const cnn = scanLayers((await digitsModel("cnn")).graph);
  assert.deepEqual(cnn.layers.map((l) => l.op), [
    "Conv",
    "Conv",
    "Conv",
    "Conv",
    "Conv",
    "Conv",
    "Gemm",
  ]);
  assert.equal(cnn.layers[1].groups, 16); // depthwise
  const vit = scanLayers((await digitsModel("vit")).graph);
  assert.equal(vit.layers.length, 14);
  assert.equal(vit.rejected.length, 4);
  assert.ok(vit.rejected.every((r) => /both operands are activations/.test(r.reason)));
});

Deno.test("toOutIn() and fromOutIn() round-trip every layout", () => {
  const base = { node: "n", input: "x", weight: "W", window: 1, groups: 1 };
  const layers = [
    { ...base, op: "MatMul", shape: [3, 5], outAxis: 1, inAxis: 0, out: 5, in: 3 },
    { ...base, op: "Gemm", shape: [5, 3], outAxis: 0, inAxis: 1, out: 5, in: 3 },
    {
      ...base,
      op: "ConvTranspose",
      shape: [4, 3, 2, 2],
      outAxis: 1,
      inAxis: 0,
      window: 4,
      groups: 2,
      out: 6,
      in: 8,
    },
  ];
  for (const l of layers) {
    const n = l.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(n).map((_, i) => i);
    assert.deepEqual(fromOutIn(l, toOutIn(l, w)), w, l.op);
  }
});

Deno.test("scanLayers() takes an LSTM's W and R as two layers, one row per gate and unit", () => {
  const t = (shape: number[]) => ({
    dtype: "float32" as const,
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const lstm = (name: string, w: string, r: string) => ({
    name,
    op: "LSTM",
    domain: "",
    inputs: ["x", w, r],
    outputs: [`${name}_y`],
    attrs: {
      hidden_size: { kind: "int" as const, value: 3 },
      direction: { kind: "string" as const, value: "bidirectional" },
    },
  });
  const g = {
    name: "g",
    inputs: [],
    outputs: [],
    valueInfo: new Map(),
    nodes: [lstm("rnn", "W", "R"), lstm("computed", "W", "h0")],
    // bidirectional, hidden 3, input 5: W [2, 12, 5], R [2, 12, 3]
    initializers: new Map([["W", t([2, 12, 5])], ["R", t([2, 12, 3])]]),
  };
  const { layers, rejected } = scanLayers(g);
  assert.deepEqual(
    layers.map((l) => [l.node, l.weight, l.part, l.out, l.in, l.outAxis, l.input]),
    [["rnn", "W", "input", 12, 10, 1, "x"], ["rnn", "R", "recurrence", 12, 6, 1, "x"]],
  );
  assert.deepEqual(rejected, [{
    node: "computed",
    op: "LSTM",
    reason: "its recurrence weight is not a constant initializer",
  }]);
});

Deno.test("toOutIn() of a recurrent weight puts both directions of a gate row side by side", () => {
  // W [dirs 2, rows 3, width 2]: element (d, r, k) holds 100·d + 10·r + k.
  const layer = {
    node: "rnn",
    op: "GRU",
    input: "x",
    weight: "W",
    shape: [2, 3, 2],
    outAxis: 1,
    inAxis: 2,
    window: 1,
    groups: 1,
    out: 3,
    in: 4,
    part: "input" as const,
  };
  const w = Float32Array.from([0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121]);
  const view = toOutIn(layer, w);
  // Row r: [W[0, r, :], W[1, r, :]].
  assert.deepEqual([...view], [0, 1, 100, 101, 10, 11, 110, 111, 20, 21, 120, 121]);
  assert.deepEqual(fromOutIn(layer, view), w);
});
