// GroupNormalization (opsets 18 and 21), LpNormalization and GlobalLpPool against
// onnxruntime-web on one-node models (the node tests of onnx 1.12 do not cover them).

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import type { Attr, Model, TensorData } from "../../ir.ts";
import { writeOnnx } from "../../onnx.ts";
import { createExecutor } from "../executor.ts";
import { assertClose, pattern } from "../_testing.ts";

ort.env.wasm.numThreads = 1;

async function againstOrt(
  op: string,
  opset: number,
  x: TensorData,
  consts: TensorData[],
  attrs: Record<string, Attr>,
): Promise<void> {
  const names = consts.map((_, i) => `c${i}`);
  const m: Model = {
    irVersion: 8,
    opsets: [{ domain: "", version: opset }],
    producerName: "test",
    producerVersion: "",
    metadata: {},
    graph: {
      name: "g",
      nodes: [{ name: "n", op, domain: "", inputs: ["x", ...names], outputs: ["y"], attrs }],
      inputs: [{ name: "x", dtype: "float32", shape: x.shape }],
      outputs: [{ name: "y", dtype: "float32" }],
      initializers: new Map(consts.map((t, i) => [names[i], t])),
      valueInfo: new Map(),
    },
  };
  const session = await ort.InferenceSession.create(writeOnnx(m));
  const theirs = await session.run({
    x: new ort.Tensor("float32", x.data as Float32Array, x.shape),
  });
  await session.release();
  const ours = (await createExecutor(m).run({ x })).y;
  assert.deepEqual(ours.shape, [...theirs.y.dims], `${op}-${opset} shape`);
  assertClose(
    ours.data as Float32Array,
    theirs.y.data as Float32Array,
    1e-4,
    1e-5,
    `${op}-${opset}`,
  );
}

Deno.test("GroupNormalization matches onnxruntime-web: per-group (opset 18) and per-channel (21)", async () => {
  const x = pattern([2, 6, 3, 2], 3, 2);
  const groups: Attr = { kind: "int", value: 3 };
  const eps: Attr = { kind: "float", value: 1e-3 };
  await againstOrt("GroupNormalization", 18, x, [pattern([3], 5), pattern([3], 7)], {
    num_groups: groups,
    epsilon: eps,
  });
  await againstOrt("GroupNormalization", 21, x, [pattern([6], 5), pattern([6], 7)], {
    num_groups: groups,
    epsilon: eps,
  });
});

Deno.test("LpNormalization (p = 1, 2; any axis) and GlobalLpPool match onnxruntime-web", async () => {
  const x = pattern([2, 3, 4], 11, 3);
  for (const p of [1, 2]) {
    for (const axis of [-1, 1]) {
      await againstOrt("LpNormalization", 17, x, [], {
        p: { kind: "int", value: p },
        axis: { kind: "int", value: axis },
      });
    }
  }
  for (const p of [1, 2, 3]) {
    await againstOrt("GlobalLpPool", 17, pattern([2, 3, 4, 5], 13), [], {
      p: { kind: "int", value: p },
    });
  }
});
