// Test helpers: small models built in the IR, run by onnxruntime-web (the oracle) and by our
// executor (through writeOnnx → readOnnx, so attribute and subgraph round trips are covered),
// every output compared: float tensors at rtol / atol, integer and bool ones exactly.

import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import type { DType, Graph, Model, Node, TensorData, ValueInfo } from "../ir.ts";
import { readOnnx, writeOnnx } from "../onnx.ts";
import { toFloat32 } from "../tensor_data.ts";
import { createExecutor, type ExecutorOptions } from "./executor.ts";
import { assertClose } from "./_testing.ts";

ort.env.wasm.numThreads = 1;

/** A graph from nodes, with inputs typed after the given example tensors. */
export function graphOf(
  name: string,
  nodes: Node[],
  inputs: Record<string, TensorData>,
  outputs: (string | ValueInfo)[],
  initializers: Record<string, TensorData> = {},
): Graph {
  return {
    name,
    nodes,
    inputs: Object.entries(inputs).map(([n, t]) => ({ name: n, dtype: t.dtype, shape: t.shape })),
    outputs: outputs.map((o) => typeof o === "string" ? { name: o, dtype: "float32" } : o),
    initializers: new Map(Object.entries(initializers)),
    valueInfo: new Map(),
  };
}

/** A node in the default domain (or `domain`). */
export function node(
  op: string,
  inputs: string[],
  outputs: string[],
  attrs: Node["attrs"] = {},
  domain = "",
): Node {
  return { name: `${op}_${outputs[0]}`, op, domain, inputs, outputs, attrs };
}

/** A model around `graph` with the given opsets (default ONNX 17, com.microsoft 1). */
export function modelOf(graph: Graph, opset = 17): Model {
  return {
    irVersion: 8,
    opsets: [{ domain: "", version: opset }, { domain: "com.microsoft", version: 1 }],
    producerName: "lowbit-test",
    producerVersion: "0",
    metadata: {},
    graph,
  };
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: "float32",
  float16: "float16",
  int64: "int64",
  int32: "int32",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
};

const TYPE_NAMES: Record<string, DType> = {
  float: "float32",
  float16: "float16",
  int64: "int64",
  int32: "int32",
  bool: "bool",
  uint8: "uint8",
  int8: "int8",
};

/** Runs `m` in onnxruntime-web; output dtypes it rejects are fixed from its error message. */
export async function runOrt(
  m: Model,
  inputs: Record<string, TensorData>,
): Promise<Record<string, ort.Tensor>> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(inputs)) {
    feeds[k] = new ort.Tensor(ORT_TYPE[t.dtype]!, t.data as Float32Array, t.shape);
  }
  let session: ort.InferenceSession | undefined;
  for (let attempt = 0; session === undefined; attempt++) {
    try {
      session = await ort.InferenceSession.create(writeOnnx(m));
    } catch (e) {
      const r = /output arg \(([^)]+)\).*expected type \(tensor\((\w+)\)\)/.exec(String(e));
      if (!r || attempt > m.graph.outputs.length || TYPE_NAMES[r[2]] === undefined) throw e;
      m.graph.outputs = m.graph.outputs.map((o) =>
        o.name === r[1] ? { ...o, dtype: TYPE_NAMES[r[2]] } : o
      );
    }
  }
  const out = await session.run(feeds);
  await session.release();
  return out;
}

/**
 * Runs `m` in onnxruntime-web and in our executor (each of `variants`), asserting every graph
 * output equal in shape and dtype, and close (float: rtol / atol on the float32 values; other
 * types exactly). Returns our outputs of the first variant.
 */
export async function matchOrt(
  what: string,
  m: Model,
  inputs: Record<string, TensorData>,
  rtol = 1e-4,
  atol = 1e-5,
  variants: ExecutorOptions[] = [{}, { fuse: false }],
): Promise<Record<string, TensorData>> {
  const theirs = await runOrt(m, inputs);
  const again = readOnnx(writeOnnx(m));
  let first: Record<string, TensorData> | undefined;
  for (const opts of variants) {
    const ours = await createExecutor(again, opts).run(inputs);
    first ??= ours;
    for (const o of m.graph.outputs) {
      const t = theirs[o.name], g = ours[o.name];
      const label = `${what} ${JSON.stringify(opts)} ${o.name}`;
      assert.deepEqual(g.shape, [...t.dims], `${label}: shape`);
      assert.equal(ORT_TYPE[g.dtype], t.type, `${label}: dtype`);
      if (t.type === "float32" || t.type === "float16") {
        // onnxruntime-web hands float16 back as Float16Array where the runtime has one.
        const ref = t.data instanceof Uint16Array
          ? toFloat32({ dtype: g.dtype, shape: g.shape, data: t.data })
          : Float32Array.from(t.data as ArrayLike<number>);
        assertClose(toFloat32(g), ref, rtol, atol, label);
      } else {
        assert.deepEqual(
          Array.from(g.data as Int32Array, String),
          Array.from(t.data as Int32Array, String),
          label,
        );
      }
    }
  }
  return first!;
}
