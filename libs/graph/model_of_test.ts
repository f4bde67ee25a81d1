import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { type Model, modelOf, type TensorData } from "@lowbit/graph";

const relu = {
  nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
  inputs: [{ name: "x", dtype: "float32" as const, shape: [2] }],
  outputs: [{ name: "y", dtype: "float32" as const }],
};

Deno.test("modelOf() defaults equal the hand-written literal", () => {
  // The literal the tests used to spell out, written by hand.
  const literal: Model = {
    irVersion: 8,
    opsets: [{ domain: "", version: 17 }],
    producerName: "",
    producerVersion: "",
    metadata: {},
    graph: {
      name: "g",
      valueInfo: new Map(),
      initializers: new Map(),
      inputs: relu.inputs,
      outputs: relu.outputs,
      nodes: relu.nodes,
    },
  };
  assert.deepEqual(modelOf(relu), literal);
});

Deno.test("modelOf() applies each override", () => {
  assert.deepEqual(modelOf(relu, { opset: 11 }).opsets, [{ domain: "", version: 11 }]);
  const opsets = [{ domain: "", version: 17 }, { domain: "com.example", version: 1 }];
  assert.deepEqual(modelOf(relu, { opsets }).opsets, opsets);
  assert.equal(modelOf(relu, { irVersion: 6 }).irVersion, 6);
  assert.equal(modelOf(relu, { producerName: "t" }).producerName, "t");
  assert.equal(modelOf({ ...relu, name: "relu" }).graph.name, "relu");
  const valueInfo = new Map([["y", { name: "y", dtype: "float32" as const, shape: [2] }]]);
  assert.equal(modelOf({ ...relu, valueInfo }).graph.valueInfo, valueInfo);
  // Each override leaves the other defaults alone.
  const m = modelOf(relu, { irVersion: 6 });
  assert.deepEqual([m.opsets, m.graph.name, m.producerName], [
    [{ domain: "", version: 17 }],
    "g",
    "",
  ]);
});

Deno.test("modelOf() takes initializers as a Map, a record or pairs, to the same Map", () => {
  const w: TensorData = { dtype: "float32", shape: [2], data: Float32Array.of(1, 2) };
  const b: TensorData = { dtype: "float32", shape: [], data: Float32Array.of(3) };
  const map = new Map([["w", w], ["b", b]]);
  const fromMap = modelOf({ ...relu, initializers: map }).graph.initializers;
  assert.equal(fromMap, map); // a Map is used as it is
  const fromRecord = modelOf({ ...relu, initializers: { w, b } }).graph.initializers;
  const fromPairs = modelOf({ ...relu, initializers: [["w", w], ["b", b]] }).graph.initializers;
  for (const got of [fromRecord, fromPairs]) {
    assert.ok(got instanceof Map);
    assert.deepEqual([...got], [["w", w], ["b", b]]);
  }
});

Deno.test("modelOf() refuses opset and opsets together", () => {
  assert.throws(
    () => modelOf(relu, { opset: 13, opsets: [{ domain: "", version: 13 }] }),
    (e) => e instanceof LowbitError && e.code === "INVALID_ARGUMENT" && /not both/.test(e.message),
  );
});
