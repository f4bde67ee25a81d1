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
