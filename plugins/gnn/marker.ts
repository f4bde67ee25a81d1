/**
 * The `gnn-aggregations` marker: the input features and the output of every message-passing
 * aggregation become quantization points (of a mean aggregation, the mean: its sum is
 * internal). With degree-aware ranges (or protected nodes) they use the `gnn-degree` quantizer
 * and read the graph input that gives node degrees; with `--gnn-ranges uniform` and no
 * protection, the built-in per-tensor quantizer; with one bin (`--gnn-bins 1`), per-column
 * ranges and no protection, the built-in quantizer per channel along the feature axis (fitted by
 * the plugin's stage, written as per-axis QDQ in ONNX).
 *
 * @module
 */

import type { GraphView, Marker, MarkSpec, PluginOptionValues } from "@lowbit/core";
import { findAggregations, isLayer } from "./detect.ts";
import { gnnOptions } from "./options.ts";
import { DEGREE_QUANTIZER } from "./quantizer.ts";

/**
 * The points to quantize for a graph's aggregations.
 *
 * @param g the graph
 * @param options plugin options
 * @returns one point per distinct aggregation input and output
 *
 * @example
 * ```ts
 * import { markAggregations } from "@lowbit/gnn";
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile("fixtures/gnn/gcn_dense.onnx");
 * const specs = markAggregations(m.graph, {});
 * // two aggregations (input, output), and the second Gemm's input after the first
 * if (specs.length !== 5 || specs[0].quantizer !== "gnn-degree") throw new Error();
 * if (specs[0].reads?.[0] !== "adj") throw new Error();
 * ```
 */
export function markAggregations(g: GraphView, options: PluginOptionValues): MarkSpec[] {
  const o = gnnOptions(options);
  const degreeAware = o.ranges === "degree" || o.protect > 0;
  // one range per feature column and no degree bin: the built-in quantizer per channel along
  // the features (per-axis QDQ in ONNX); the plugin's stage fits it as it fits the bins
  const perColumn = o.ranges === "degree" && o.bins === 1 && o.protect === 0 && o.columns;
  const how = (source: string): Partial<MarkSpec> =>
    perColumn
      ? { granularity: COLUMNS }
      : degreeAware
      ? { quantizer: DEGREE_QUANTIZER, reads: [source] }
      : {};
  const out: MarkSpec[] = [];
  const seen = new Set<string>();
  const aggs = findAggregations(g);
  for (const a of aggs) {
    for (const [value, what] of [[a.input, "input"], [a.output, "output"]] as const) {
      if (seen.has(value)) continue;
      seen.add(value);
      out.push({
        value,
        ...(o.aggFormat ? { format: o.aggFormat } : {}),
        ...how(a.degrees.input),
        note: a.divide
          ? `${a.style} mean aggregation ${what} (${a.node}, ÷ in-degree at ${a.divide})`
          : `${a.style} aggregation ${what} (${a.node}${
            what === "output" && a.selfLoops ? SELF_LOOP_NOTE[a.selfLoops] : ""
          })`,
      });
    }
  }
  for (const [value, layer] of downstreamLayerInputs(g, aggs.map((a) => a.output))) {
    if (seen.has(value)) continue;
    seen.add(value);
    const source = aggs[0].degrees.input;
    out.push({
      value,
      ...(o.aggFormat ? { format: o.aggFormat } : {}),
      ...how(source),
      note: `node features after message passing (input of ${layer})`,
    });
  }
  return out;
}

/** How an aggregation output point stands to the self-loop term (see `Aggregation.selfLoops`). */
const SELF_LOOP_NOTE = {
  split: ", the neighbours' sum: the self-loop term is added after it",
  inside: ", with the self-loop term the export adds: a layer's input",
} as const;

/** Per channel along the feature axis of a [nodes, F] tensor. */
export const COLUMNS = { kind: "channel", axis: 1 } as const;

/**
 * The inputs of layers (Gemm / MatMul / Conv with a constant weight) that depend on an
 * aggregation output: node features whose rows carry the degree imbalance of the sums.
 */
function downstreamLayerInputs(g: GraphView, from: readonly string[]): [string, string][] {
  const reached = new Set(from);
  const out: [string, string][] = [];
  for (const n of g.nodes) {
    if (!n.inputs.some((i) => reached.has(i))) continue;
    for (const o of n.outputs) reached.add(o);
    if (isLayer(g, n) && reached.has(n.inputs[0])) {
      out.push([n.inputs[0], n.name]);
    }
  }
  return out;
}

/** The marker record. */
export const aggregationMarker: Marker = { name: "gnn-aggregations", mark: markAggregations };
