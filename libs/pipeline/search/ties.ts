/**
 * Automatic tie constraints for the mixed-precision search: layers whose
 * outputs meet in a residual `Add` (or `Sum`) or a `Concat` must share a
 * weight format, so each such node ties the quantizable layers producing its
 * inputs (found by walking back through shape-only and elementwise-unary ops).
 *
 * Activation formats are tied differently. A layer's activation format is the
 * format of its *input* tensor, and the plan quantizes a tensor once for all
 * its consumers (a QDQ export puts one QuantizeLinear → DequantizeLinear on it;
 * `activationsByValue` rejects two formats on one tensor). So layers reading
 * the same tensor (attention q / k / v, a block's shortcut and main branch)
 * must share the activation format ({@link detectSharedInputs}), while layers
 * tied by their outputs read different tensors and keep their activation
 * formats free: the tensor their Add produces is quantized by the layers that
 * read it, which are tied by this rule if they are several.
 *
 * @module
 */

import type { Graph, Node } from "@lowbit/graph";
import type { Layer } from "../layers.ts";

/** Ops where branches meet. */
const MEET_OPS: ReadonlySet<string> = new Set(["Add", "Sum", "Concat"]);

/**
 * Ops the walk back passes through: shape-only ops, elementwise-unary ops and
 * per-channel affine ops that keep their first input's channels.
 */
const PASS_OPS: ReadonlySet<string> = new Set([
  "Identity",
  "Reshape",
  "Flatten",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Cast",
  "Dropout",
  "Relu",
  "LeakyRelu",
  "PRelu",
  "Clip",
  "Sigmoid",
  "HardSigmoid",
  "HardSwish",
  "Tanh",
  "Gelu",
  "Erf",
  "Elu",
  "Selu",
  "Softplus",
  "Neg",
  "Abs",
  "BatchNormalization",
]);

/**
 * Groups of layers that must share a format because their outputs meet in an
 * `Add` / `Sum` / `Concat`. Groups sharing a layer are merged; nodes reached
 * by fewer than two distinct layers give no tie.
 *
 * @param graph the model graph
 * @param layers the quantizable layers (from `scanLayers`)
 * @returns tie groups of layer node names, each with at least two layers, in graph order
 *
 * @example
 * ```ts
 * import { detectTies } from "@lowbit/pipeline/search";
 * import { scanLayers } from "@lowbit/pipeline";
 * import { readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/digits/cnn.onnx");
 * const ties = detectTies(model.graph, scanLayers(model.graph).layers);
 * if (JSON.stringify(ties[0]) !== '["/stem/Conv","/block1/pw/Conv"]') throw new Error(JSON.stringify(ties));
 * ```
 */
export function detectTies(graph: Graph, layers: readonly Layer[]): string[][] {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const layerNodes = new Set(layers.map((l) => l.node));
  const sourceLayer = (value: string): string | undefined => {
    const seen = new Set<string>();
    let v = value;
    while (!seen.has(v)) {
      seen.add(v);
      const n = producer.get(v);
      if (!n) return undefined;
      if (layerNodes.has(n.name)) return n.name;
      if (!PASS_OPS.has(n.op) || n.inputs.length === 0) return undefined;
      v = n.inputs[0];
    }
    return undefined;
  };
  const order = new Map(layers.map((l, i) => [l.node, i]));
  const groups: Set<string>[] = [];
  for (const n of graph.nodes) {
    if (!MEET_OPS.has(n.op)) continue;
    const found = new Set<string>();
    for (const i of n.inputs) {
      if (!i || graph.initializers.has(i)) continue;
      const l = sourceLayer(i);
      if (l !== undefined) found.add(l);
    }
    if (found.size < 2) continue;
    const hits = groups.filter((g) => [...found].some((l) => g.has(l)));
    const merged = new Set<string>(found);
    for (const g of hits) {
      for (const l of g) merged.add(l);
      groups.splice(groups.indexOf(g), 1);
    }
    groups.push(merged);
  }
  return groups
    .map((g) => [...g].sort((a, b) => order.get(a)! - order.get(b)!))
    .sort((a, b) => order.get(a[0])! - order.get(b[0])!);
}

/**
 * Groups of layers that read the same input tensor, which the plan quantizes
 * once, so they must share an activation format.
 *
 * @param layers the quantizable layers (from `scanLayers`)
 * @returns groups of at least two layer nodes, in layer order
 *
 * @example
 * ```ts
 * import { detectSharedInputs } from "@lowbit/pipeline/search";
 * const l = (node: string, input: string) => ({ node, op: "MatMul", input, weight: node + ".W",
 *   shape: [4, 4], outAxis: 1, inAxis: 0, window: 1, groups: 1, out: 4, in: 4 });
 * const g = detectSharedInputs([l("q", "h"), l("k", "h"), l("o", "a"), l("v", "h")]);
 * if (JSON.stringify(g) !== '[["q","k","v"]]') throw new Error(JSON.stringify(g));
 * ```
 */
export function detectSharedInputs(layers: readonly Layer[]): string[][] {
  const byInput = new Map<string, string[]>();
  for (const l of layers) byInput.set(l.input, [...(byInput.get(l.input) ?? []), l.node]);
  return [...byInput.values()].filter((g) => g.length > 1);
}
