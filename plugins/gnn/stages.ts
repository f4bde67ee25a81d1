/**
 * The plugin's stages of `quantize()`:
 *
 * - `gnn-whole-graph` (before `plan`): the graph inputs of a model with message passing are
 *   checked (square adjacency, edge index in range) and the calibration data is given whole to
 *   every batch — the whole graph is one sample, even when the inputs have dynamic node / edge
 *   axes (which the data loader cannot tell from a batch axis);
 * - `gnn-degree-fit` (after `calibrate`): every `gnn-degree` point is fitted from the
 *   calibration graph: per in-degree bin ranges, one per feature column in each bin by default
 *   (`--gnn-columns`), and the protected nodes' ranges, with the degrees computed from the graph
 *   input the point reads (a `--gnn-bins 1` point, the built-in quantizer per column: its
 *   column ranges). With `--gnn-fit auto` (the default) each point, in graph order, takes the
 *   min / max or the mse fit, whichever makes the model output closer to float on the
 *   calibration graph (label-free: the MSE of the float outputs, the points before it fixed, the
 *   rest and the weights in float); the choice and both figures go into the point's note.
 *
 * @module
 */

import { LowbitError, type QParams, type Quantizer, type TensorValue } from "@lowbit/core";
import { createExecutor, type TensorData } from "@lowbit/graph";
import {
  type Dataset,
  entryQuantizer,
  type PlanEntry,
  type QuantizeState,
  sumSquaredError,
} from "@lowbit/pipeline";
import { aggregationMarker, COLUMNS } from "./marker.ts";
import { type Aggregation, findAggregations } from "./detect.ts";
import { nodeDegrees } from "./degrees.ts";
import { DEGREE_QUANTIZER, fitDegreeParams } from "./quantizer.ts";
import { gnnOptions } from "./options.ts";

/**
 * Checks a graph's inputs against its aggregations: each adjacency square and as large as the
 * node features, each edge index's destinations inside the graph. The node count is the first
 * dimension of the first float 2-D input that is not an adjacency.
 *
 * @param aggs the graph's aggregations ({@link findAggregations})
 * @param inputs the graph inputs by name
 * @throws LowbitError naming the input when it is malformed
 *
 * @example
 * ```ts
 * import { checkGraphInputs } from "@lowbit/gnn";
 * import assert from "node:assert/strict";
 * const agg = { node: "s", style: "edges" as const, input: "x", output: "y", reduce: "sum" as const,
 *   degrees: { input: "edge_index", kind: "edges" as const, row: 1 } };
 * const x = { dtype: "float32", shape: [3, 2], data: new Float32Array(6) };
 * const edge_index = { dtype: "int64", shape: [2, 1], data: BigInt64Array.of(0n, 3n) };
 * assert.throws(() => checkGraphInputs([agg], { x, edge_index }), /outside the graph's 3 nodes/);
 * ```
 */
export function checkGraphInputs(
  aggs: readonly Aggregation[],
  inputs: Readonly<Record<string, TensorValue>>,
): void {
  const adjacency = new Set(
    aggs.filter((a) => a.degrees.kind === "adjacency").map((a) => a.degrees.input),
  );
  const features = Object.entries(inputs).find(([n, t]) =>
    !adjacency.has(n) && t.dtype === "float32" && t.shape.length === 2
  )?.[1];
  for (const a of aggs) {
    const t = inputs[a.degrees.input];
    if (!t) continue;
    const nodes = a.degrees.kind === "adjacency"
      ? (t.shape.length === 2 && t.shape[0] === t.shape[1] ? t.shape[0] : -1)
      : features?.shape[0];
    if (nodes === undefined) continue;
    nodeDegrees(t, a.degrees, nodes < 0 ? 0 : nodes);
    if (a.degrees.kind === "edges" && a.degrees.row >= 0) {
      checkSources(t, a.degrees.input, a.degrees.row, nodes);
    }
  }
}

/** The other rows of a [2, edges] edge index (the sources) inside the graph too. */
function checkSources(t: TensorValue, name: string, dstRow: number, nodes: number): void {
  const count = t.shape[1];
  for (let r = 0; r < t.shape[0]; r++) {
    if (r === dstRow) continue;
    for (let e = 0; e < count; e++) {
      const v = Number(t.data[r * count + e]);
      if (!Number.isInteger(v) || v < 0 || v >= nodes) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `edge ${e} has source ${v} (row ${r}), outside the graph's ${nodes} nodes ` +
            `(0..${nodes - 1})`,
          { tensor: name },
        );
      }
    }
  }
}

/** All the data's inputs, unsliced (the whole graph). */
function wholeInputs(d: Dataset): Record<string, TensorData> {
  return { ...d.inputs, ...(d.whole ?? {}) };
}

/**
 * Stage `gnn-whole-graph`: see the module documentation.
 *
 * @param st the quantize state
 *
 * @example
 * ```ts
 * import { wholeGraphStage } from "./stages.ts";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/gnn/gin_dense.onnx");
 * const x = readNpy(await Deno.readFile("fixtures/gnn/x.npy"));
 * const adj = readNpy(await Deno.readFile("fixtures/gnn/adj.npy"));
 * const opts = { model, calib: { inputs: { x, adj }, count: 400 } };
 * wholeGraphStage({ opts, model } as never);
 * if (opts.calib.count !== 1 || !("whole" in opts.calib)) throw new Error("the graph is one sample");
 * ```
 */
export function wholeGraphStage(st: QuantizeState): void {
  const aggs = findAggregations(st.model.graph);
  const calib = st.opts.calib;
  if (aggs.length === 0 || !calib) return;
  checkGraphInputs(aggs, wholeInputs(calib));
  if (calib.count === 1 && Object.keys(calib.inputs).length === 0) return;
  // The options object is the caller's: its dataset becomes one sample, the whole graph, given
  // whole to every batch (\`whole\` overrides the sliced inputs of the same names); \`inputs\`
  // stay as they were for the mixed search, which reads them directly.
  const d = calib as { whole?: Dataset["whole"]; count: number };
  d.whole = wholeInputs(calib);
  d.count = 1;
}

/**
 * Stage `gnn-degree-fit`: see the module documentation.
 *
 * @param st the quantize state
 *
 * @example
 * ```ts
 * import { degreeFitStage } from "./stages.ts";
 * // with no gnn-degree point, it does nothing
 * await degreeFitStage({ entries: [], pluginOptions: {}, opts: {} } as never);
 * ```
 */
export async function degreeFitStage(st: QuantizeState): Promise<void> {
  const todo = st.entries.filter((e) =>
    !e.skip && e.role === "activation" && !e.scale &&
    (e.quantizer === DEGREE_QUANTIZER || perColumnPoint(e))
  );
  if (todo.length === 0) return;
  const calib = st.opts.calib;
  if (!calib) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "degree-aware ranges are fitted on a calibration graph; pass --calib with the whole graph",
    );
  }
  const aggs = findAggregations(st.model.graph);
  const opts = gnnOptions(st.pluginOptions);
  const inputs = wholeInputs(calib);
  const values = new Map<string, TensorData>();
  const watch = todo.map((e) => e.value);
  await createExecutor(st.model, { registry: st.registry }).run(inputs, {
    watch,
    observe: (name, t) => {
      if (!values.has(name)) {
        values.set(name, { ...t, data: (t.data as Float32Array).slice() } as TensorData);
      }
    },
  });
  // in the order the graph produces them (inputs first), so auto's greedy choice runs forward
  const order = [...values.keys()];
  const rank = (v: string): number => (inputs[v] ? -1 : order.indexOf(v));
  const sorted = [...todo].sort((p, q) => rank(p.value) - rank(q.value));
  const fits: FitChoice[] = opts.fit === "auto" ? ["minmax", "mse"] : [opts.fit];
  const chooser = fits.length > 1 ? await autoChooser(st, inputs) : undefined;
  for (const e of sorted) {
    const t = inputs[e.value] ?? values.get(e.value);
    // (a per-column point reads no degrees: one set for every row)
    const source = perColumnPoint(e)
      ? aggs[0]?.degrees
      : aggs.find((a) => a.degrees.input === e.reads?.[0])?.degrees;
    if (!t || !source) {
      throw new LowbitError("INTERNAL", "no calibration value or degree source for this point", {
        tensor: e.value,
      });
    }
    const perColumn = perColumnPoint(e);
    // a per-column point is per channel along axis 1: of a [nodes, heads, C] tensor (a
    // multi-head GAT's), one range per head; its rows are fitted as [nodes · C, heads]
    const tensor = perColumn
      ? channelsLast(t)
      : { shape: [...t.shape], data: t.data as Float32Array };
    const nodeDeg = nodeDegrees(inputs[source.input], source, t.shape[0]);
    const inner = tensor.shape[0] / Math.max(1, t.shape[0]);
    const degrees = inner === 1 ? nodeDeg : Int32Array.from(
      { length: tensor.shape[0] },
      (_, r) => nodeDeg[Math.floor(r / inner)],
    );
    const layout = {
      bins: opts.ranges === "degree" ? opts.bins : 1,
      protect: opts.protect,
      protectFloat: opts.protectFormat === "float",
      source,
      // uniform ranges (with protected nodes) stay one range per set, as the option says
      columns: opts.columns && opts.ranges === "degree"
        ? tensor.data.length / Math.max(1, tensor.shape[0])
        : 0,
    };
    const candidates = fits.map((fit) =>
      fitDegreeParams(tensor, degrees, layout, { format: e.format!, mode: e.mode ?? "affine", fit })
    );
    let qp = candidates[0];
    if (chooser) {
      // a per-column point is scored as the built-in quantizer per channel runs it
      const scores = await chooser.score(
        e.value,
        perColumn ? candidates.map((c) => asColumns(c, layout.columns || 1)) : candidates,
        perColumn ? entryQuantizer(e, st.registry) : undefined,
      );
      const best = scores.indexOf(Math.min(...scores));
      qp = candidates[best];
      chooser.fix(
        e.value,
        perColumn ? asColumns(qp, layout.columns || 1) : qp,
        perColumn ? entryQuantizer(e, st.registry) : undefined,
      );
      const figures = fits.map((f, i) => `${f} ${scores[i].toPrecision(4)}`).join(", ");
      e.note = `${e.note ? e.note + "; " : ""}--gnn-fit auto: ${fits[best]} ` +
        `(output MSE against float: ${figures})`;
    }
    const F = layout.columns || 1;
    if (perColumnPoint(e)) {
      // one set (no bin, no protection) of one range per column: the built-in quantizer per
      // channel along the feature axis computes the same values
      e.scale = [...qp.scale.subarray(0, F)];
      e.zeroPoint = [...qp.zeroPoint.subarray(0, F)];
      continue;
    }
    e.granularity = qp.granularity;
    e.scale = [...qp.scale];
    e.zeroPoint = [...qp.zeroPoint];
    e.extra = qp.extra;
  }
}

/** A tensor with its axis 1 last and the others flattened: [d0 · d2 · …, d1] (rank 2: as is). */
function channelsLast(t: TensorData): { shape: number[]; data: Float32Array } {
  const data = t.data as Float32Array;
  if (t.shape.length <= 2) return { shape: [...t.shape], data };
  const n = t.shape[0], c = t.shape[1], inner = data.length / Math.max(1, n * c);
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < c; h++) {
      for (let k = 0; k < inner; k++) out[(i * inner + k) * c + h] = data[(i * c + h) * inner + k];
    }
  }
  return { shape: [n * inner, c], data: out };
}

/** The first set of a one-bin fit as the built-in quantizer's per-channel (axis 1) parameters. */
function asColumns(qp: QParams, columns: number): QParams {
  return {
    format: qp.format,
    mode: qp.mode,
    granularity: COLUMNS,
    scale: qp.scale.slice(0, columns),
    zeroPoint: qp.zeroPoint.slice(0, columns),
  };
}

/** A point the marker gave the built-in quantizer per feature column (`--gnn-bins 1`). */
function perColumnPoint(e: PlanEntry): boolean {
  return e.by === aggregationMarker.name && e.quantizer !== DEGREE_QUANTIZER &&
    e.granularity?.kind === COLUMNS.kind && e.granularity.axis === COLUMNS.axis;
}

/** A fit a point can take. */
type FitChoice = "minmax" | "mse";

/** Scores candidate parameters of one point by the model output's error, earlier points fixed. */
interface AutoChooser {
  /** The output MSE against float of each candidate, with the points fixed so far applied. */
  score(value: string, candidates: readonly QParams[], quantizer?: Quantizer): Promise<number[]>;
  /** Keeps a point's chosen parameters (and quantizer) for the later points' scores. */
  fix(value: string, qp: QParams, quantizer?: Quantizer): void;
}

/**
 * `--gnn-fit auto`: each point, in graph order, takes the fit (min / max or mse) whose model
 * output is closest to the float model's (mean squared error over every float graph output, on the
 * calibration graph: label-free), with the points before it already fake-quantized by their
 * chosen parameters and the rest (and the weights) in float.
 */
async function autoChooser(
  st: QuantizeState,
  inputs: Readonly<Record<string, TensorData>>,
): Promise<AutoChooser> {
  const exec = createExecutor(st.model, { registry: st.registry });
  const float = await exec.run(inputs);
  const q = st.registry.quantizers.get(DEGREE_QUANTIZER);
  const ctx = { batch: 0, tags: {}, inputs: inputs as never };
  // each point's parameters and the quantizer that runs them (the plugin's, or the built-in
  // one of a per-column point)
  const fixed = new Map<string, [QParams, Quantizer]>();
  const outputError = async (
    params: ReadonlyMap<string, [QParams, Quantizer]>,
  ): Promise<number> => {
    const out = await exec.run(inputs, {
      transform: (name, t) => {
        const p = params.get(name);
        if (!p) return undefined;
        const y = p[1].fakeQuant({ shape: t.shape, data: t.data as Float32Array }, p[0], ctx);
        return { ...t, data: y.data } as TensorData;
      },
    });
    let err = 0, n = 0;
    // float outputs only: an integer one (an ArgMax's labels) is not a distance to float (its
    // BigInt data would not mix with numbers)
    for (const [name, ref] of Object.entries(float)) {
      if (!(ref.data instanceof Float32Array || ref.data instanceof Float64Array)) continue;
      err += sumSquaredError(ref.data, out[name].data as Float32Array | Float64Array);
      n += ref.data.length;
    }
    return err / Math.max(1, n);
  };
  return {
    async score(value, candidates, quantizer = q) {
      const scores: number[] = [];
      for (const qp of candidates) {
        scores.push(await outputError(new Map([...fixed, [value, [qp, quantizer]]])));
      }
      return scores;
    },
    fix(value, qp, quantizer = q) {
      fixed.set(value, [qp, quantizer]);
    },
  };
}
