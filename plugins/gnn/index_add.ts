/**
 * torch ≤ 1.13's `index_add` / `index_put(accumulate=True)` exports. torch writes
 * `zeros.index_add(0, dst, messages)` as a `ScatterElements` (`index_put`: `ScatterND`) **without**
 * reduction into zeros, followed by an `Add`; per the ONNX specification a repeated index keeps one
 * update, so the file computes something else than torch wherever a node has more than one
 * in-edge (torch warns so at export). This module finds that pattern — a reduction-less scatter
 * into zeros whose updates gather node features and whose indices come from a graph input, read
 * by an `Add` — and repairs it on request into the sum torch meant: one `ScatterElements` /
 * `ScatterND` with reduction `add` into the `Add`'s other operand, writing the `Add`'s output.
 *
 * The plugin's stage `gnn-index-add` (after `prepare`) refuses such a model when the calibration
 * graph repeats a destination (the export is wrong there), naming the node, unless
 * `--gnn-index-add sum` asks for the repair; the repaired aggregations are then found, quantized
 * and written like scatter-add exports.
 *
 * @module
 */

import { LowbitError, type TensorValue } from "@lowbit/core";
import type { Graph, Model, Node } from "@lowbit/graph";
import type { QuantizeState } from "@lowbit/pipeline";
import { indexSource, sourceGather } from "./detect.ts";
import { nodeDegrees } from "./degrees.ts";

/** One index_add-style aggregation. */
export interface IndexAddExport {
  /** The reduction-less scatter (`ScatterElements` / `ScatterND`). */
  readonly scatter: string;
  /** The `Add` reading it. */
  readonly add: string;
  /** The `Add`'s other operand (what index_add adds into: zeros, or the node features). */
  readonly base: string;
  /** The graph input the indices come from, and its row of destinations (-1: 1-D). */
  readonly index: { readonly input: string; readonly row: number };
}

function attrValue(n: Node, name: string): unknown {
  const a = n.attrs[name] as { value?: unknown } | undefined;
  return a && typeof a === "object" && "value" in a ? a.value : a;
}

/** Whether a value is all zeros: `ConstantOfShape` with no value or a zero one. */
function isZeros(producer: Map<string, Node>, v: string): boolean {
  const p = producer.get(v);
  if (p?.op !== "ConstantOfShape") return false;
  const value = attrValue(p, "value") as { data?: ArrayLike<number | bigint> } | undefined;
  return !value?.data || Array.from(value.data).every((x) => Number(x) === 0);
}

/**
 * The index_add-style aggregations of a graph (see the module documentation).
 *
 * @param g the graph
 * @returns one record per reduction-less scatter into zeros read by an `Add`
 *
 * @example
 * ```ts
 * import { findIndexAddExports } from "@lowbit/gnn";
 * import { readOnnxFile } from "@lowbit/graph";
 * const g = (await readOnnxFile("fixtures/gnn/gin_index_add.onnx")).graph;
 * const found = findIndexAddExports(g);
 * if (found.length !== 2 || found[0].index.input !== "edge_index") throw new Error();
 * ```
 */
export function findIndexAddExports(g: Graph): IndexAddExport[] {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const inputs = new Map(g.inputs.map((i) => [i.name, i]));
  const view = g as unknown as Parameters<typeof indexSource>[1];
  const out: IndexAddExport[] = [];
  for (const add of g.nodes) {
    if (add.op !== "Add") continue;
    for (const k of [0, 1]) {
      const s = producer.get(add.inputs[k]);
      if (!s || (s.op !== "ScatterElements" && s.op !== "ScatterND")) continue;
      if (String(attrValue(s, "reduction") ?? "none") !== "none") continue;
      if (s.op === "ScatterElements" && Number(attrValue(s, "axis") ?? 0) !== 0) continue;
      if (!isZeros(producer, s.inputs[0])) continue;
      if (!sourceGather(s.inputs[2], producer as never)) continue;
      const src = indexSource(s.inputs[1], view, producer as never, inputs as never);
      if (!src) continue;
      out.push({
        scatter: s.name,
        add: add.name,
        base: add.inputs[1 - k],
        index: { input: src.input, row: src.row },
      });
      break;
    }
  }
  return out;
}

/**
 * The graph with every index_add-style aggregation replaced by a scatter with reduction `add`
 * into the `Add`'s other operand, writing the `Add`'s output: torch's `index_add`.
 *
 * @param g the graph
 * @param found its index_add-style aggregations ({@link findIndexAddExports})
 * @returns a new graph (the given one is not changed)
 *
 * @example
 * ```ts
 * import { findIndexAddExports, repairIndexAdd } from "@lowbit/gnn";
 * import { readOnnxFile } from "@lowbit/graph";
 * const g = (await readOnnxFile("fixtures/gnn/gin_index_add.onnx")).graph;
 * const fixed = repairIndexAdd(g, findIndexAddExports(g));
 * if (findIndexAddExports(fixed).length !== 0) throw new Error();
 * ```
 */
export function repairIndexAdd(g: Graph, found: readonly IndexAddExport[]): Graph {
  const byAdd = new Map(found.map((f) => [f.add, f]));
  const scatters = new Map(g.nodes.map((n) => [n.name, n]));
  const drop = new Set(found.map((f) => f.scatter));
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (drop.has(n.name)) continue;
    const f = byAdd.get(n.name);
    if (!f) {
      nodes.push(n);
      continue;
    }
    const s = scatters.get(f.scatter)!;
    nodes.push({
      ...s,
      inputs: [f.base, s.inputs[1], s.inputs[2]],
      outputs: [n.outputs[0]],
      attrs: { ...s.attrs, reduction: { kind: "string", value: "add" } } as Node["attrs"],
    });
  }
  // The scatter moves to the Add's place, after everything the Add read: still in order.
  return { ...g, nodes };
}

/** The first node with more than one in-edge, if any (-1: none). */
function repeatedDestination(t: TensorValue, f: IndexAddExport, nodes: number): number {
  return nodeDegrees(t, { input: f.index.input, kind: "edges", row: f.index.row }, nodes)
    .findIndex((d) => d > 1);
}

/**
 * Stage `gnn-index-add` (after `prepare`): see the module documentation.
 *
 * @param st the quantize state
 *
 * @example
 * ```ts
 * import { indexAddStage } from "./index_add.ts";
 * import { readOnnxFile } from "@lowbit/graph";
 * const model = await readOnnxFile("fixtures/gnn/gin_index_add.onnx");
 * const st = { model, prepared: model, pluginOptions: { "gnn-index-add": "sum" }, warnings: [],
 *   opts: {} };
 * indexAddStage(st as never);
 * if (st.model.graph.nodes.some((n) => n.op === "ScatterElements" && !n.attrs.reduction)) {
 *   throw new Error("repaired");
 * }
 * ```
 */
export function indexAddStage(st: QuantizeState): void {
  const found = findIndexAddExports(st.model.graph);
  if (found.length === 0) return;
  const mode = String(st.pluginOptions["gnn-index-add"] ?? "error");
  if (mode === "sum") {
    const fix = (m: Model): Model => ({ ...m, graph: repairIndexAdd(m.graph, found) });
    st.model = fix(st.model);
    st.prepared = fix(st.prepared);
    st.warnings.push(
      `gnn: ${found.length} index_add-style aggregation(s) (a scatter without reduction into ` +
        `zeros, then Add) read as torch's sums (--gnn-index-add sum): ${
          found.map((f) => f.scatter).join(", ")
        }`,
    );
    return;
  }
  const calib = st.opts.calib;
  const data = calib ? { ...calib.inputs, ...(calib.whole ?? {}) } : {};
  for (const f of found) {
    const t = data[f.index.input];
    if (!t) continue;
    const features = Object.values(data).find((v) => v.dtype === "float32" && v.shape.length === 2);
    if (!features) continue;
    const node = repeatedDestination(t as TensorValue, f, features.shape[0]);
    if (node < 0) continue;
    throw new LowbitError(
      "UNSUPPORTED",
      `an index_add-style export (a ${
        st.model.graph.nodes.find((n) => n.name === f.scatter)?.op
      } without reduction into zeros, then Add, as torch ≤ 1.13 writes index_add / ` +
        `index_put(accumulate=True)) keeps one message per node where torch sums them, and ` +
        `node ${node} of '${f.index.input}' has several in-edges: the model does not compute ` +
        `what torch computed. Pass --gnn-index-add sum to read it as torch's sum, or re-export ` +
        `with scatter_add (ScatterElements with reduction "add", opset 16)`,
      { node: f.scatter, tensor: f.index.input },
    );
  }
}
