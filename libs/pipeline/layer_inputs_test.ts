import assert from "node:assert/strict";
import { createRng } from "@lowbit/core";
import { createExecutor, type Node } from "@lowbit/graph";
import { layerInputRows } from "./layer_inputs.ts";
import { scanLayers, toOutIn } from "./layers.ts";

Deno.test("layerInputRows() unfolds Conv inputs so that W·rows equals the Conv output", async () => {
  const rng = createRng(9);
  for (
    const [attrs, groups] of [
      [
        { pads: { kind: "ints", value: [1, 1, 1, 1] }, strides: { kind: "ints", value: [2, 2] } },
        1,
      ],
      [{
        auto_pad: { kind: "string", value: "SAME_UPPER" },
        dilations: { kind: "ints", value: [2, 2] },
      }, 2],
      [{ group: { kind: "int", value: 4 } }, 4],
    ] as [Node["attrs"], number][]
  ) {
    const C = 4, O = 4, k = 3;
    const w = new Float32Array(O * (C / groups) * k * k).map(() => rng.normal());
    const node: Node = {
      name: "c",
      op: "Conv",
      domain: "",
      inputs: ["x", "W"],
      outputs: ["y"],
      attrs: { ...attrs, ...(groups > 1 ? { group: { kind: "int", value: groups } } : {}) },
    };
    const graph = {
      name: "g",
      nodes: [node],
      inputs: [{ name: "x", dtype: "float32" as const, shape: [2, C, 7, 7] }],
      outputs: [{ name: "y", dtype: "float32" as const }],
      initializers: new Map([["W", {
        dtype: "float32" as const,
        shape: [O, C / groups, k, k],
        data: w,
      }]]),
      valueInfo: new Map(),
    };
    const x = {
      dtype: "float32" as const,
      shape: [2, C, 7, 7],
      data: new Float32Array(2 * C * 49).map(() => rng.normal()),
    };
    const y = (await createExecutor(graph).run({ x })).y;
    const [layer] = scanLayers(graph).layers;
    const view = toOutIn(layer, w);
    const per = O / groups;
    const spatial = y.shape[2] * y.shape[3];
    for (const r of layerInputRows(layer, node, x)) {
      for (let o = r.group * per; o < (r.group + 1) * per; o++) {
        for (let i = 0; i < r.rows; i++) {
          let acc = 0;
          for (let j = 0; j < layer.in; j++) {
            acc += view[o * layer.in + j] * r.data[i * layer.in + j];
          }
          const n = Math.floor(i / spatial), p = i % spatial;
          const want = (y.data as Float32Array)[(n * O + o) * spatial + p];
          assert.ok(
            Math.abs(acc - want) < 1e-4,
            `group ${r.group} o ${o} row ${i}: ${acc} vs ${want}`,
          );
        }
      }
    }
  }
});

Deno.test("layerInputRows() keeps every k-th row under maxRows", () => {
  const layer = scanLayers({
    name: "g",
    nodes: [{ name: "c", op: "Conv", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: {} }],
    inputs: [],
    outputs: [],
    initializers: new Map([["W", {
      dtype: "float32" as const,
      shape: [1, 1, 1, 1],
      data: new Float32Array([1]),
    }]]),
    valueInfo: new Map(),
  }).layers[0];
  const node: Node = {
    name: "c",
    op: "Conv",
    domain: "",
    inputs: ["x", "W"],
    outputs: ["y"],
    attrs: {},
  };
  const x = {
    dtype: "float32" as const,
    shape: [1, 1, 4, 5],
    data: new Float32Array(20).map((_, i) => i),
  };
  const [all] = layerInputRows(layer, node, x);
  const [few] = layerInputRows(layer, node, x, 6);
  assert.equal(all.rows, 20);
  assert.equal(few.rows, 5); // step 4
  assert.deepEqual([...few.data], [0, 4, 8, 12, 16]);
});

Deno.test("layerInputRows() unfolds 1-D Conv inputs so that W·rows equals the Conv output", async () => {
  const rng = createRng(11);
  const C = 3, O = 2, k = 3, L = 11;
  const w = new Float32Array(O * C * k).map(() => rng.normal());
  const node: Node = {
    name: "c",
    op: "Conv",
    domain: "",
    inputs: ["x", "W"],
    outputs: ["y"],
    attrs: {
      pads: { kind: "ints", value: [1, 2] },
      strides: { kind: "ints", value: [2] },
      dilations: { kind: "ints", value: [2] },
    },
  };
  const graph = {
    name: "g",
    nodes: [node],
    inputs: [{ name: "x", dtype: "float32" as const, shape: [2, C, L] }],
    outputs: [{ name: "y", dtype: "float32" as const }],
    initializers: new Map([["W", { dtype: "float32" as const, shape: [O, C, k], data: w }]]),
    valueInfo: new Map(),
  };
  const x = {
    dtype: "float32" as const,
    shape: [2, C, L],
    data: new Float32Array(2 * C * L).map(() => rng.normal()),
  };
  const y = (await createExecutor(graph).run({ x })).y;
  const [layer] = scanLayers(graph).layers;
  const [r] = layerInputRows(layer, node, x);
  const OL = y.shape[2];
  assert.equal(r.rows, 2 * OL);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < r.rows; i++) {
      let acc = 0;
      for (let j = 0; j < layer.in; j++) acc += w[o * layer.in + j] * r.data[i * layer.in + j];
      const want = (y.data as Float32Array)[(Math.floor(i / OL) * O + o) * OL + i % OL];
      assert.ok(Math.abs(acc - want) < 1e-4, `o ${o} row ${i}: ${acc} vs ${want}`);
    }
  }
});
