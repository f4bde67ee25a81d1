import assert from "node:assert/strict";
import { exportQdq, type Model, modelOf, readQdqPoints } from "@lowbit/graph";

function model(): Model {
  const w = Float32Array.from({ length: 4 * 8 }, (_, i) => Math.sin(i) * 0.5);
  return modelOf({
    initializers: [
      ["w", { dtype: "float32", shape: [8, 4], data: w }],
      ["v", { dtype: "float32", shape: [4, 4], data: w.slice(0, 16) }],
    ],
    inputs: [{ name: "x", dtype: "float32", shape: [1, 8] }],
    outputs: [{ name: "z", dtype: "float32" }],
    nodes: [
      { name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} },
      { name: "mm2", op: "MatMul", domain: "", inputs: ["y", "v"], outputs: ["z"], attrs: {} },
    ],
  });
}

Deno.test("readQdqPoints() reads back what exportQdq wrote: int4 groups, fp8 per tensor, uint8 activations", () => {
  const groupScales = Float32Array.from({ length: 2 * 4 }, (_, i) => 0.01 * (i + 1));
  const q = exportQdq(model(), {
    w: {
      format: "int4",
      granularity: { kind: "group", axis: 0, size: 4 },
      mode: "symmetric",
      scale: groupScales,
      zeroPoint: new Int32Array(8),
    },
    v: {
      format: "fp8_e4m3fn",
      granularity: { kind: "tensor" },
      mode: "symmetric",
      scale: new Float32Array([0.5]),
      zeroPoint: new Int32Array(1),
    },
    y: {
      format: "uint8",
      granularity: { kind: "tensor" },
      mode: "affine",
      scale: new Float32Array([0.02]),
      zeroPoint: new Int32Array([131]),
    },
  });
  const points = readQdqPoints(q.graph);
  const byValue = Object.fromEntries(points.map((p) => [p.value, p]));
  assert.deepEqual(Object.keys(byValue).sort(), ["v", "w", "y"]);
  assert.equal(byValue.w.role, "weight");
  assert.equal(byValue.w.params.format, "int4");
  assert.deepEqual(byValue.w.params.granularity, { kind: "group", axis: 0, size: 4 });
  assert.deepEqual(byValue.w.params.scale, groupScales);
  assert.equal(byValue.v.params.format, "fp8_e4m3fn");
  assert.deepEqual(byValue.v.params.granularity, { kind: "tensor" });
  assert.equal(byValue.y.role, "activation");
  assert.equal(byValue.y.params.mode, "affine");
  assert.deepEqual(byValue.y.params.zeroPoint, new Int32Array([131]));
  assert.ok(Math.abs(byValue.y.params.scale[0] - 0.02) < 1e-9);
});

Deno.test("readQdqPoints() finds nothing in a float graph", () => {
  assert.deepEqual(readQdqPoints(model().graph), []);
});
