/**
 * Bias correction (Nagel et al., 2019, "Data-Free Quantization"): rounding a
 * weight shifts the mean of each output channel by (W − Q)·E[x]; adding that
 * shift back to the bias removes the systematic part of the error. E[x] is
 * the mean of the layer's captured input rows (per conv group).
 *
 * When the layer's input is quantized too, the layer computes Q·x̂ (x̂ the
 * fake-quantized input) and its mean shifts by W·E[x] − Q·E[x̂]: the input's
 * rounding error has a mean of its own wherever the input sits still (a text
 * line's flat background rounds to the same wrong value at every pixel, and a
 * depthwise edge filter with taps of ±6 turns that into a constant offset of
 * its output channel). Given E[x̂], the shift corrects both.
 *
 * @module
 */

import { allNodes, type Model, walkGraphs } from "@lowbit/graph";
import type { Layer } from "./layers.ts";

/**
 * The per-output-channel bias shift (W − Q)·E[x].
 *
 * @param layer the layer
 * @param w float weight, [out, in] view
 * @param q quantized weight, [out, in] view
 * @param mean mean input row per group: groups × in values
 * @param quantizedMean the mean of the fake-quantized input rows (same layout), when the layer's
 *   input is quantized: the shift is then W·E[x] − Q·E[x̂]
 * @returns one correction per output channel
 *
 * @example
 * ```ts
 * import { biasShift } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [1, 2], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 1, in: 2 };
 * const d = biasShift(fc, new Float32Array([1, 1]), new Float32Array([0.5, 1]), new Float64Array([2, 3]));
 * if (d[0] !== 1) throw new Error(String(d[0]));
 * ```
 */
export function biasShift(
  layer: Layer,
  w: Float32Array,
  q: Float32Array,
  mean: Float64Array,
  quantizedMean: Float64Array = mean,
): Float64Array {
  const out = new Float64Array(layer.out);
  const perGroup = layer.out / layer.groups;
  for (let o = 0; o < layer.out; o++) {
    const g = Math.floor(o / perGroup);
    let d = 0;
    for (let j = 0; j < layer.in; j++) {
      // W·m − Q·m̂ = (W − Q)·m + Q·(m − m̂): the weights' part, then the input's.
      const k = g * layer.in + j, qk = q[o * layer.in + j];
      d += (w[o * layer.in + j] - qk) * mean[k] + qk * (mean[k] - quantizedMean[k]);
    }
    out[o] = d;
  }
  return out;
}

/**
 * Adds a per-output-channel shift to a layer's bias, creating the bias
 * initializer when the layer has none (Conv, Gemm). MatMul has no bias input:
 * returns false and leaves the model alone.
 *
 * @param model the model (modified in place)
 * @param layer the layer
 * @param shift one value per output channel
 * @returns whether the bias was changed
 *
 * @example
 * ```ts
 * import { addBias } from "@lowbit/pipeline";
 * const model = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(), initializers: new Map(),
 *     nodes: [{ name: "fc", op: "Gemm", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: {} }] } };
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [2, 1], outAxis: 1,
 *   inAxis: 0, window: 1, groups: 1, out: 1, in: 2 };
 * if (!addBias(model, fc, new Float64Array([0.5]))) throw new Error();
 * if (model.graph.nodes[0].inputs.length !== 3) throw new Error();
 * ```
 */
export function addBias(model: Model, layer: Layer, shift: Float64Array): boolean {
  if (layer.op !== "Conv" && layer.op !== "Gemm") return false;
  // The graph holding the node: the model's, or the If / Loop / Scan body it sits in.
  const at = [...walkGraphs(model.graph)].find((v) =>
    v.graph.nodes.some((n) => n.name === layer.node)
  );
  if (!at) return false;
  const graph = at.graph;
  const node = graph.nodes.find((n) => n.name === layer.node)!;
  let beta = 1;
  if (layer.op === "Gemm") {
    const b = node.attrs.beta;
    if (b && b.kind === "float") beta = b.value;
    if (beta === 0) return false;
  }
  const name = node.inputs[2];
  const existing = name ? graph.initializers.get(name) : undefined;
  if (name && (!existing || existing.dtype !== "float32" || existing.data.length !== layer.out)) {
    return false; // a broadcast or computed bias: leave it
  }
  if (existing) {
    if ([...allNodes(model.graph)].some((n) => n !== node && n.inputs.includes(name))) return false;
    // Copy-on-write (executors may cache derived forms keyed by the array).
    const d = Float32Array.from(existing.data as Float32Array);
    for (let o = 0; o < layer.out; o++) d[o] += shift[o] / beta;
    graph.initializers.set(name, { ...existing, shape: [...existing.shape], data: d });
    return true;
  }
  let fresh = `${layer.node}.bias_correction`;
  while (graph.initializers.has(fresh)) fresh += "_";
  const d = new Float32Array(layer.out);
  for (let o = 0; o < layer.out; o++) d[o] = shift[o] / beta;
  graph.initializers.set(fresh, { dtype: "float32", shape: [layer.out], data: d });
  while (node.inputs.length < 2) node.inputs.push("");
  node.inputs[2] = fresh;
  return true;
}
