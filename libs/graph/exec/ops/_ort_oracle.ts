// Test helper: one-node models run on onnxruntime-web (the float oracle) and on the executor.

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import type { Attr, DType, Model, TensorData } from "../../ir.ts";
import { writeOnnx } from "../../onnx.ts";
import { createExecutor } from "../executor.ts";
import { assertClose } from "../_testing.ts";

ort.env.wasm.numThreads = 1;

const ORT_TYPE: Partial<Record<string, ort.Tensor.Type>> = {
  float32: "float32",
  int64: "int64",
  int32: "int32",
  bool: "bool",
  uint8: "uint8",
};

const OUTPUT_TYPE: Partial<Record<string, DType>> = {
  int64: "int64",
  int32: "int32",
  uint8: "uint8",
  bool: "bool",
};

/**
 * Runs `op` on onnxruntime-web and on the executor with `inputs` fed as graph inputs (undefined:
 * an omitted optional input) and `consts` as initializers after them; asserts every output
 * agrees (float32 within rtol, atol; integers exactly).
 */
export async function againstOrt(
  op: string,
  opset: number,
  inputs: (TensorData | undefined)[],
  attrs: Record<string, Attr>,
  opts: { consts?: TensorData[]; outputs?: number; rtol?: number; atol?: number } = {},
): Promise<void> {
  const consts = opts.consts ?? [];
  const names = [
    ...inputs.map((t, i) => (t === undefined ? "" : `x${i}`)),
    ...consts.map((_, i) => `c${i}`),
  ];
  const outs = Array.from({ length: opts.outputs ?? 1 }, (_, i) => `y${i}`);
  const given = inputs.flatMap((t, i) => (t === undefined ? [] : [[`x${i}`, t] as const]));
  const m: Model = {
    irVersion: 8,
    opsets: [{ domain: "", version: opset }],
    producerName: "test",
    producerVersion: "",
    metadata: {},
    graph: {
      name: "g",
      nodes: [{ name: "n", op, domain: "", inputs: names, outputs: outs, attrs }],
      inputs: given.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
      outputs: outs.map((name) => ({ name, dtype: "float32" })),
      initializers: new Map(consts.map((t, i) => [`c${i}`, t])),
      valueInfo: new Map(),
    },
  };
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of given) {
    feeds[name] = new ort.Tensor(ORT_TYPE[t.dtype]!, t.data as Float32Array, t.shape);
  }
  const label = `${op}-${opset} ${JSON.stringify(attrs)}`;
  // onnxruntime checks declared output types: retry with the one its error names.
  let session: ort.InferenceSession | undefined;
  for (let attempt = 0; session === undefined; attempt++) {
    try {
      session = await ort.InferenceSession.create(writeOnnx(m));
    } catch (e) {
      const r = /output arg \((\w+)\).*expected type \(tensor\((\w+)\)\)/.exec(String(e));
      const dtype = r ? OUTPUT_TYPE[r[2]] : undefined;
      if (!r || attempt > 3 || dtype === undefined) throw e;
      m.graph.outputs = m.graph.outputs.map((o) => (o.name === r[1] ? { ...o, dtype } : o));
    }
  }
  const theirs = await session.run(feeds);
  await session.release();
  const ours = await createExecutor(m).run(Object.fromEntries(given));
  for (const name of outs) {
    const t = theirs[name], o = ours[name];
    assert.deepEqual(o.shape, [...t.dims], `${label}: ${name} shape`);
    if (t.type === "float32") {
      assertClose(
        o.data as Float32Array,
        t.data as Float32Array,
        opts.rtol ?? 1e-4,
        opts.atol ?? 1e-5,
        label,
      );
    } else {
      assert.deepEqual(
        Array.from(o.data as BigInt64Array, String),
        Array.from(t.data as BigInt64Array, String),
        label,
      );
    }
  }
}
