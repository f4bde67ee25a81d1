/**
 * A quantized model as one runnable graph: the float graph plus its quantization points
 * (`QuantPoint`, keyed by value) turned into nodes —
 *
 * - points QDQ ONNX expresses (the quantizer's `onnx(params)` says so): DequantizeLinear of the
 *   weight's codes, QuantizeLinear → DequantizeLinear after an activation (`exportQdq`), which
 *   the executor's integer path fuses into its kernels;
 * - other weights: their decoded values, on the grid, as float32 initializers;
 * - other activations: a `FakeQuant` node (domain "lowbit") that runs the registered quantizer.
 *
 * A point on a graph output quantizes the output itself (its producer writes a new name and the
 * point's last node writes the output's), as every reader inside the graph sees it.
 *
 * The simulation during quantization, `lowbit run` / `lowbit eval` of a lowbit file, and the
 * embeddable runtime all run this same graph, so they agree bit for bit; the `"onnx"` target
 * refuses (before any work) a point ONNX cannot express.
 *
 * @module
 */

import {
  type Codes,
  defaultRegistry,
  LowbitError,
  type QParams,
  type QuantPoint,
  type Registry,
} from "@lowbit/core";
import type { Model, Node, TensorData } from "../ir.ts";
import { exportQdq } from "./qdq.ts";
import { toFloat32 } from "../tensor_data.ts";
import { renameOutputs, renameReads } from "../subgraphs.ts";

/** Options of {@link materializeQuantized}. */
export interface MaterializeOptions {
  /** `"run"` (default): any point; `"onnx"`: standard QDQ ONNX only, else an error. */
  target?: "run" | "onnx";
  /** Registry whose quantizers the points name (default: the default registry). */
  registry?: Registry;
  /** Stored codes of quantized weights, by value (a lowbit file's); else weights are re-encoded. */
  codes?: ReadonlyMap<string, Codes>;
}

/**
 * Checks every point against a target: known quantizer, format it supports, and for `"onnx"` a
 * QDQ form. Called before any work, so a `.onnx` output that cannot hold the plan fails early.
 *
 * @param points the points
 * @param opts target and registry
 * @returns nothing; throws a `LowbitError` naming the value otherwise
 *
 * @example
 * ```ts
 * import { checkQuantPoints } from "@lowbit/graph";
 * const p = { value: "x", role: "activation" as const, quantizer: "block", params: {
 *   format: "mxfp8_e4m3", granularity: { kind: "block" as const, axis: 1, size: 32 },
 *   mode: "symmetric" as const, scale: new Float32Array([1]), zeroPoint: new Int32Array([0]),
 *   dynamic: true } };
 * checkQuantPoints([p]);
 * let threw = false;
 * try { checkQuantPoints([p], { target: "onnx" }); } catch { threw = true; }
 * if (!threw) throw new Error("mxfp8 activations have no QDQ form");
 * ```
 */
export function checkQuantPoints(
  points: readonly QuantPoint[],
  opts: MaterializeOptions = {},
): void {
  const reg = opts.registry ?? defaultRegistry();
  for (const p of points) {
    const subject = { tensor: p.value };
    let q;
    try {
      q = reg.quantizers.get(p.quantizer);
      const f = reg.formats.get(p.params.format);
      if (!q.supports(f)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `quantizer '${p.quantizer}' does not handle format '${f.name}'`,
        );
      }
    } catch (e) {
      if (e instanceof LowbitError) throw new LowbitError(e.code, e.message, subject);
      throw e;
    }
    if ((opts.target ?? "run") === "onnx" && !q.onnx?.(p.params)) {
      throw new LowbitError(
        "UNSUPPORTED",
        `${p.role} quantized by '${p.quantizer}' as ${p.params.format} ` +
          `(${
            p.params.dynamic ? "scales computed at run time, " : ""
          }${p.params.granularity.kind} ` +
          `granularity) has no QDQ ONNX form; write a .lowbit file instead`,
        subject,
      );
    }
  }
}

/** Float32 initializer of `values`, with the ONNX scalar shape for per-tensor parameters. */
function f32(shape: number[], values: ArrayLike<number>): TensorData {
  return { dtype: "float32", shape, data: Float32Array.from(values) };
}

/**
 * The runnable graph of a quantized model (see the module doc).
 *
 * @param model the float model; quantized weights hold their float values (original or on the
 *   grid) unless `opts.codes` gives their codes
 * @param points the quantization points, with fitted parameters
 * @param opts target, registry, stored codes
 * @returns a new model
 *
 * @example
 * ```ts
 * import { createExecutor, materializeQuantized } from "@lowbit/graph";
 * const model = {
 *   irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *   metadata: {},
 *   graph: {
 *     name: "g", valueInfo: new Map(), initializers: new Map(),
 *     inputs: [{ name: "x", dtype: "float32" as const, shape: [2] }],
 *     outputs: [{ name: "y", dtype: "float32" as const }],
 *     nodes: [{ name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
 *   },
 * };
 * const params = { format: "int8", granularity: { kind: "row" as const, axis: -1 },
 *   mode: "symmetric" as const, scale: new Float32Array([1]), zeroPoint: new Int32Array([0]), dynamic: true };
 * const m = materializeQuantized(model, [{ value: "x", role: "activation", quantizer: "uniform", params }]);
 * const { y } = await createExecutor(m).run({ x: { dtype: "float32", shape: [2], data: new Float32Array([1, 0.5]) } });
 * if (m.graph.nodes[0].op !== "FakeQuant" || Math.abs(Number(y.data[0]) - 1) > 0.01) throw new Error();
 * ```
 */
export function materializeQuantized(
  model: Model,
  points: readonly QuantPoint[],
  opts: MaterializeOptions = {},
): Model {
  checkQuantPoints(points, opts);
  // Points on values of If / Loop / Scan bodies are materialized inside those bodies.
  const here = points.filter((p) => holds(model.graph, p.value));
  const inner = points.filter((p) => !holds(model.graph, p.value));
  if (inner.length) {
    const placed = new Set<QuantPoint>();
    model = { ...model, graph: intoSubgraphs(model, model.graph, inner, placed, opts) };
    const missing = inner.filter((p) => !placed.has(p));
    if (missing.length) {
      throw new LowbitError("UNKNOWN_NAME", "no such value in the graph or its subgraphs", {
        tensor: missing[0].value,
      });
    }
  }
  return materializeHere(model, here, opts);
}

/** Whether a graph itself holds a value (an input, an initializer or a node's output). */
function holds(g: Model["graph"], value: string): boolean {
  return g.initializers.has(value) || g.inputs.some((v) => v.name === value) ||
    g.nodes.some((n) => n.outputs.includes(value));
}

/**
 * The graph with each subgraph attribute's points materialized inside it (deepest first);
 * `placed` collects the points placed.
 */
function intoSubgraphs(
  model: Model,
  g: Model["graph"],
  points: readonly QuantPoint[],
  placed: Set<QuantPoint>,
  opts: MaterializeOptions,
): Model["graph"] {
  let changed = false;
  const nodes = g.nodes.map((n) => {
    let attrs = n.attrs;
    for (const [k, a] of Object.entries(n.attrs)) {
      if (a.kind !== "graph") continue;
      let sub = intoSubgraphs(model, a.value, points, placed, opts);
      const mine = points.filter((p) => !placed.has(p) && holds(sub, p.value));
      if (mine.length) {
        for (const p of mine) placed.add(p);
        sub = materializeHere({ ...model, graph: sub }, mine, opts).graph;
      }
      if (sub !== a.value) {
        attrs = { ...attrs, [k]: { kind: "graph", value: sub } };
        changed = true;
      }
    }
    return attrs === n.attrs ? n : { ...n, attrs };
  });
  return changed ? { ...g, nodes } : g;
}

/** Points on values the model's own graph holds (see the module doc). */
function materializeHere(
  model: Model,
  points: readonly QuantPoint[],
  opts: MaterializeOptions,
): Model {
  const reg = opts.registry ?? defaultRegistry();
  const inits = new Map(model.graph.initializers);
  const qdq: Record<string, QParams> = {};
  const fake: QuantPoint[] = [];
  for (const p of points) {
    const q = reg.quantizers.get(p.quantizer);
    const exportable = q.onnx?.(p.params) ?? false;
    if (p.role === "weight") {
      const w = inits.get(p.value);
      if (!w) {
        throw new LowbitError("UNKNOWN_NAME", "quantized weight is not an initializer", {
          tensor: p.value,
        });
      }
      const codes = opts.codes?.get(p.value);
      const values = codes
        ? q.dequantize(codes, p.params, w.shape).data
        : q.fakeQuant({ shape: w.shape, data: toFloat32(w) }, p.params).data;
      inits.set(p.value, { dtype: "float32", shape: [...w.shape], data: values });
      if (exportable) qdq[p.value] = p.params;
    } else if (exportable) {
      qdq[p.value] = p.params;
    } else {
      fake.push(p);
    }
  }
  const base: Model = { ...model, graph: { ...model.graph, initializers: inits } };
  const m = Object.keys(qdq).length ? exportQdq(base, qdq) : base;
  if (fake.length === 0) return m;
  const g = m.graph;
  const inits2 = new Map(g.initializers);
  const taken = new Set<string>([...inits2.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) for (const o of n.outputs) taken.add(o);
  const fresh = (base: string): string => {
    let s = base;
    for (let k = 1; taken.has(s); k++) s = `${base}_${k}`;
    taken.add(s);
    return s;
  };
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const front: Node[] = [];
  const after = new Map<number, Node[]>();
  const rename = new Map<string, string>();
  const graphOutputs = new Set(g.outputs.map((v) => v.name));
  /** Producers' outputs renamed so that a quantized graph output keeps its name. */
  const produced = new Map<string, string>();
  for (const p of fake) {
    const subject = { tensor: p.value };
    if (!producer.has(p.value) && !g.inputs.some((v) => v.name === p.value)) {
      throw new LowbitError("UNKNOWN_NAME", "no such activation in the graph", subject);
    }
    const qp = p.params;
    const sName = fresh(`${p.value}.lowbit_scale`), zName = fresh(`${p.value}.lowbit_zero_point`);
    inits2.set(sName, f32([qp.scale.length], qp.scale));
    inits2.set(zName, {
      dtype: "int32",
      shape: [qp.zeroPoint.length],
      data: Int32Array.from(qp.zeroPoint),
    });
    const extraNames = Object.keys(qp.extra ?? {});
    const extraInputs = extraNames.map((k) => {
      const n = fresh(`${p.value}.lowbit_${k}`);
      inits2.set(n, f32([qp.extra![k].length], qp.extra![k]));
      return n;
    });
    const reads = qp.reads ?? [];
    for (const r of reads) {
      if (!producer.has(r) && !g.inputs.some((v) => v.name === r) && !inits2.has(r)) {
        throw new LowbitError(
          "UNKNOWN_NAME",
          `the quantizer reads '${r}', which the graph lacks`,
          subject,
        );
      }
    }
    const i = producer.get(p.value);
    // A graph output made by a node: the node writes a new name, the FakeQuant the output's.
    const output = i !== undefined && graphOutputs.has(p.value);
    const src = output ? fresh(`${p.value}.lowbit_float`) : p.value;
    if (output) produced.set(p.value, src);
    const out = output ? p.value : fresh(`${p.value}.lowbit_fake_quant`);
    const node: Node = {
      name: fresh(`${p.value}_FakeQuant`),
      op: "FakeQuant",
      domain: "lowbit",
      inputs: [src, sName, zName, ...extraInputs, ...reads],
      outputs: [out],
      attrs: {
        quantizer: { kind: "string", value: p.quantizer },
        format: { kind: "string", value: qp.format },
        granularity: { kind: "string", value: JSON.stringify(qp.granularity) },
        mode: { kind: "string", value: qp.mode },
        ...(qp.dynamic ? { dynamic: { kind: "int", value: 1 } } : {}),
        ...(extraNames.length ? { extra: { kind: "strings", value: extraNames } } : {}),
        ...(reads.length ? { reads: { kind: "strings", value: [...reads] } } : {}),
        ...(qp.quantMin !== undefined ? { quant_min: { kind: "int", value: qp.quantMin } } : {}),
        ...(qp.quantMax !== undefined ? { quant_max: { kind: "int", value: qp.quantMax } } : {}),
      },
    };
    if (i === undefined) front.push(node);
    else after.set(i, [...(after.get(i) ?? []), node]);
    if (!output) rename.set(p.value, out);
  }
  const nodes: Node[] = [...front];
  g.nodes.forEach((n, i) => {
    nodes.push(renameOutputs(renameReads(n, rename), produced));
    nodes.push(...(after.get(i) ?? []));
  });
  const opsets = m.opsets.some((o) => o.domain === "lowbit")
    ? m.opsets
    : [...m.opsets, { domain: "lowbit", version: 1 }];
  return { ...m, opsets, graph: { ...g, nodes, initializers: inits2 } };
}
