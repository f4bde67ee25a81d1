/**
 * Runs lowbit files: the one loader that turns a {@link LowbitFile} (the float graph without its
 * quantized weights, their codes, and the activation points) into the runnable graph of
 * `materializeQuantized` — weights ONNX can hold become DequantizeLinear of their codes (the
 * executor's integer path runs them), the others their decoded values; activations get
 * QuantizeLinear → DequantizeLinear or a `FakeQuant` node running their registered quantizer.
 * `lowbit run`, `lowbit eval` and the runtime all load lowbit files through here.
 *
 * @module
 */

import type { Codes, Registry } from "@lowbit/core";
import { type LowbitFile, lowbitPoints } from "../export/lowbit_file.ts";
import { materializeQuantized } from "../export/quantized_model.ts";
import { findInitializer } from "../subgraphs.ts";
import type { Model } from "../ir.ts";

/**
 * The runnable model of a lowbit file.
 *
 * @param file a decoded lowbit file (`readLowbitFile` / `decodeLowbitFile`)
 * @param opts the registry whose quantizers the file names (default: the default registry)
 * @returns the model, ready for `createExecutor`
 *
 * @example
 * ```ts
 * import { lowbitModel } from "./lowbit_model.ts";
 * const file = {
 *   plan: {}, activations: [],
 *   model: {
 *     irVersion: 9, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *     metadata: {},
 *     graph: {
 *       name: "g", valueInfo: new Map(), initializers: new Map(),
 *       inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 2] }],
 *       outputs: [{ name: "y", dtype: "float32" as const }],
 *       nodes: [{ name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *     },
 *   },
 *   tensors: new Map([["w", {
 *     format: "int8", bits: 8, shape: [2, 1], granularity: { kind: "tensor" as const },
 *     mode: "symmetric" as const, codes: new Uint8Array([2, 254]), scale: new Float32Array([0.5]),
 *     zeroPoint: new Int32Array(1),
 *   }]]),
 * };
 * const m = lowbitModel(file);
 * if (m.graph.nodes[0].op !== "DequantizeLinear") throw new Error();
 * ```
 */
export function lowbitModel(file: LowbitFile, opts: { registry?: Registry } = {}): Model {
  const inits = new Map(file.model.graph.initializers);
  const stored = new Map<string, Codes>();
  for (const [name, t] of file.tensors) {
    // Shape only: the values come from the codes. A weight of a subgraph stays where it is.
    if (!findInitializer(file.model.graph, name)) {
      inits.set(name, { dtype: "float32", shape: [...t.shape], data: new Float32Array(0) });
    }
    stored.set(name, t.codes);
  }
  const model: Model = { ...file.model, graph: { ...file.model.graph, initializers: inits } };
  return materializeQuantized(model, lowbitPoints(file), {
    registry: opts.registry,
    codes: stored,
  });
}
