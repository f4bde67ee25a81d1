/**
 * Fake quantization of a layer input with a candidate's activation format, as
 * the pipeline does it: one per-tensor scale (and zero point for integers)
 * fitted to the input's min/max range.
 *
 * @module
 */

import type { Graph } from "@lowbit/graph";
import type { Layer } from "../layers.ts";
import type { PlanEntry } from "../plan.ts";
import type { TensorSpec } from "../spec.ts";
import { fakeQuantActivation, fitActivation } from "../tensor_quant.ts";

/** Min and max of some values. */
export function minMax(data: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < min) min = data[i];
    if (data[i] > max) max = data[i];
  }
  return data.length ? { min, max } : { min: 0, max: 0 };
}

/** The fitted plan entry of a layer input under an activation spec and a range. */
export function fittedInputEntry(
  l: Layer,
  spec: TensorSpec,
  range: { min: number; max: number },
): PlanEntry {
  return fittedValueEntry(l.node, l.input, spec, range);
}

/** The fitted per-tensor plan entry of any value (read by `node`) under a spec and a range. */
export function fittedValueEntry(
  node: string,
  value: string,
  spec: TensorSpec,
  range: { min: number; max: number },
): PlanEntry {
  const e: PlanEntry = {
    node,
    value,
    role: "activation",
    format: spec.format,
    granularity: { kind: "tensor" },
    mode: spec.mode,
    calibrator: "minmax",
  };
  const qp = fitActivation(e, {
    min: Float32Array.of(range.min),
    max: Float32Array.of(range.max),
  });
  e.scale = [...qp.scale];
  e.zeroPoint = [...qp.zeroPoint];
  return e;
}

/** Fake-quantizes values of a layer input with a fitted entry (float32, as the executor runs). */
export function fakeQuantInput(
  l: Layer,
  entry: PlanEntry,
  data: ArrayLike<number>,
  shape: readonly number[],
): Float32Array {
  const conv = l.op === "Conv" || l.op === "ConvTranspose";
  return fakeQuantActivation(Float32Array.from(data), shape, entry, conv ? 1 : -1);
}

/**
 * The graph with every reader of `value` reading `replacement` instead: a fake-quantized copy
 * fed in as an extra value, with the rest of the graph (and its float run) unchanged.
 */
export function rewireReaders(graph: Graph, value: string, replacement: string): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((n) =>
      n.inputs.includes(value)
        ? { ...n, inputs: n.inputs.map((i) => (i === value ? replacement : i)) }
        : n
    ),
  };
}
