/**
 * SmoothQuant (Xiao et al., 2023): migrate activation outliers into the
 * weights with a per-input-channel factor s_c = max|X_c|^α / max|W_c|^(1−α).
 * The layer's weights are multiplied by s along their input channels and the
 * activation is divided by s — folded into the op that produces it
 * (LayerNormalization or BatchNormalization scale and bias, or the output
 * channels of a preceding Gemm / MatMul / Conv), so the graph keeps its shape
 * and the float function is unchanged. Inputs whose producer cannot absorb the
 * division, or that feed anything besides the smoothed layers, are left alone
 * with a note saying why.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Model, Node, TensorData } from "@lowbit/graph";
import type { Layer } from "./layers.ts";

/** What smoothing did. */
export interface SmoothResult {
  /** Factor per input channel, by layer node. */
  factors: Record<string, number[]>;
  /** One line per input that was not smoothed, with the reason. */
  notes: string[];
}

/**
 * The channel axis of a layer's input that SmoothQuant scales.
 *
 * @param layer the layer
 * @returns 1 for Conv (NCHW), -1 (last) for Gemm / MatMul
 *
 * @example
 * ```ts
 * import { smoothAxis } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [2, 2], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 2, in: 2 };
 * if (smoothAxis(fc) !== -1) throw new Error();
 * ```
 */
export function smoothAxis(layer: Layer): number {
  return layer.op === "Conv" ? 1 : -1;
}

function f32(model: Model, name: string | undefined): TensorData | undefined {
  if (!name) return undefined;
  const t = model.graph.initializers.get(name);
  return t && t.dtype === "float32" ? t : undefined;
}

/** Whether only `nodes` read `value` (Shape / Size readers do not see values, so they do not count). */
function usedOnlyBy(model: Model, value: string, nodes: readonly string[]): boolean {
  for (const n of model.graph.nodes) {
    if (n.op === "Shape" || n.op === "Size") continue;
    if (n.inputs.includes(value) && !nodes.includes(n.name)) return false;
  }
  return !model.graph.outputs.some((o) => o.name === value);
}

/** Divides the producer's output channels by s; returns why not, or undefined when done. */
function foldIntoProducer(model: Model, producer: Node, s: Float64Array): string | undefined {
  const C = s.length;
  const own = (name: string | undefined): TensorData | undefined => {
    const t = f32(model, name);
    return t && usedOnlyBy(model, name!, [producer.name]) ? t : undefined;
  };
  // Copy-on-write: initializers are replaced, never changed in place (executors may cache
  // derived forms, e.g. packed weights, keyed by the array).
  const divide = (t: TensorData | undefined, stride: number, inner: number): void => {
    if (!t) return;
    const name = [...model.graph.initializers].find(([, v]) => v === t)![0];
    const d = Float32Array.from(t.data as Float32Array);
    for (let i = 0; i < d.length; i++) d[i] /= s[Math.floor(i / inner) % stride];
    model.graph.initializers.set(name, { ...t, shape: [...t.shape], data: d });
  };
  switch (producer.op) {
    case "LayerNormalization": {
      const scale = own(producer.inputs[1]), bias = own(producer.inputs[2]);
      if (!scale || scale.data.length !== C) {
        return "its LayerNormalization scale is not per channel";
      }
      if (producer.inputs[2] && !bias) return "its LayerNormalization bias is shared";
      divide(scale, C, 1);
      divide(bias, C, 1);
      return undefined;
    }
    case "BatchNormalization": {
      const scale = own(producer.inputs[1]), bias = own(producer.inputs[2]);
      if (!scale || !bias || scale.data.length !== C) {
        return "its BatchNormalization params are shared";
      }
      divide(scale, C, 1);
      divide(bias, C, 1);
      return undefined;
    }
    case "Gemm":
    case "MatMul": {
      const w = own(producer.inputs[1]);
      if (!w || w.shape.length !== 2) return `its ${producer.op} has no own constant weight`;
      const transB = producer.attrs.transB?.kind === "int" && producer.attrs.transB.value === 1;
      if (producer.op === "Gemm" && producer.attrs.transA?.value) return "its Gemm has transA=1";
      const n = transB && producer.op === "Gemm" ? w.shape[0] : w.shape[1];
      if (n !== C) return `its ${producer.op} has ${n} outputs, not ${C}`;
      if (transB && producer.op === "Gemm") divide(w, C, w.shape[1]);
      else divide(w, C, 1);
      const b = own(producer.inputs[2]);
      if (producer.inputs[2] && !b) return `its ${producer.op} bias is shared`;
      if (b && b.data.length !== C) return `its ${producer.op} bias is not per output`;
      divide(b, C, 1);
      return undefined;
    }
    case "Conv": {
      const w = own(producer.inputs[1]);
      if (!w || w.shape[0] !== C) return "its Conv has no own constant weight";
      divide(w, C, w.data.length / C);
      const b = own(producer.inputs[2]);
      if (producer.inputs[2] && !b) return "its Conv bias is shared";
      divide(b, C, 1);
      return undefined;
    }
    default:
      return `its producer ${producer.op} '${producer.name}' cannot absorb a per-channel scale`;
  }
}

/**
 * Applies SmoothQuant in place to a model (pass a copy to keep the original).
 *
 * @param model the model (initializers are modified)
 * @param layers the quantizable layers to smooth
 * @param actAbsMax per input value, max |x| per channel (axis of {@link smoothAxis})
 * @param alpha migration strength in [0, 1] (0.5 is the paper's default)
 * @param given factors to apply instead of computing them (replaying a plan), by layer node
 * @returns factors per layer and notes for inputs left alone
 *
 * @example
 * ```ts
 * import { smoothQuant } from "@lowbit/pipeline";
 * const t = (shape: number[], v: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(v) });
 * const model = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(),
 *     nodes: [
 *       { name: "ln", op: "LayerNormalization", domain: "", inputs: ["x", "g", "b"], outputs: ["h"], attrs: {} },
 *       { name: "fc", op: "MatMul", domain: "", inputs: ["h", "W"], outputs: ["y"], attrs: {} },
 *     ],
 *     initializers: new Map([["g", t([2], [1, 1])], ["b", t([2], [0, 0])], ["W", t([2, 1], [1, 1])]]) } };
 * const fc = { node: "fc", op: "MatMul", input: "h", weight: "W", shape: [2, 1], outAxis: 1, inAxis: 0,
 *   window: 1, groups: 1, out: 1, in: 2 };
 * const r = smoothQuant(model, [fc], new Map([["h", new Float32Array([16, 1])]]), 0.5);
 * if (r.factors.fc[0] !== 4) throw new Error(String(r.factors.fc));
 * ```
 */
export function smoothQuant(
  model: Model,
  layers: readonly Layer[],
  actAbsMax: ReadonlyMap<string, Float32Array>,
  alpha: number,
  given?: Readonly<Record<string, readonly number[]>>,
): SmoothResult {
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new LowbitError("INVALID_ARGUMENT", `SmoothQuant alpha must be in [0, 1], got ${alpha}`);
  }
  const factors: Record<string, number[]> = {};
  const notes: string[] = [];
  const byInput = new Map<string, Layer[]>();
  for (const l of layers) byInput.set(l.input, [...(byInput.get(l.input) ?? []), l]);
  for (const [value, consumers] of byInput) {
    const names = consumers.map((l) => l.node).join(", ");
    const note = (why: string): void => {
      notes.push(`SmoothQuant skips the input of ${names}: ${why}`);
    };
    const conv = consumers.every((l) => l.op === "Conv" && l.groups === 1);
    const rows = consumers.every((l) => l.op === "Gemm" || l.op === "MatMul");
    if (!conv && !rows) {
      note("only Gemm/MatMul or ungrouped Conv consumers can be smoothed");
      continue;
    }
    const amax = actAbsMax.get(value);
    const C = conv ? consumers[0].shape[1] : consumers[0].in;
    const fixed = given?.[consumers[0].node];
    if (given && !fixed) continue;
    if (fixed && fixed.length !== C) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `the plan has ${fixed.length} smoothing factors, the input has ${C} channels`,
        { node: consumers[0].node },
      );
    }
    if (
      !fixed && (!amax || amax.length !== C || consumers.some((l) => l.shape[l.inAxis] !== C))
    ) {
      note("no per-channel activation statistics");
      continue;
    }
    if (!usedOnlyBy(model, value, consumers.map((l) => l.node))) {
      note(`'${value}' also feeds other nodes`);
      continue;
    }
    const producer = model.graph.nodes.find((n) => n.outputs[0] === value);
    if (!producer) {
      note(`'${value}' is a graph input`);
      continue;
    }
    // Weight max per input channel over every consumer.
    const wmax = new Float64Array(C);
    for (const l of consumers) {
      const w = model.graph.initializers.get(l.weight)!.data as Float32Array;
      const inner = l.inAxis === 0 ? l.shape[1] : l.window;
      const stride = l.inAxis === 0 ? 1 : C * l.window; // per input channel c: elements …
      for (let i = 0; i < w.length; i++) {
        const c = l.inAxis === 0 ? Math.floor(i / inner) : Math.floor((i % stride) / inner);
        wmax[c] = Math.max(wmax[c], Math.abs(w[i]));
      }
    }
    const s = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      if (fixed) {
        s[c] = fixed[c];
        continue;
      }
      const v = amax![c] > 0 && wmax[c] > 0
        ? Math.pow(amax![c], alpha) / Math.pow(wmax[c], 1 - alpha)
        : 1;
      s[c] = Math.min(1e4, Math.max(1e-4, v));
    }
    const why = foldIntoProducer(model, producer, s);
    if (why) {
      note(why);
      continue;
    }
    for (const l of consumers) {
      const t = model.graph.initializers.get(l.weight)!;
      const w = Float32Array.from(t.data as Float32Array);
      const inner = l.inAxis === 0 ? l.shape[1] : l.window;
      const stride = l.inAxis === 0 ? 1 : C * l.window;
      for (let i = 0; i < w.length; i++) {
        const c = l.inAxis === 0 ? Math.floor(i / inner) : Math.floor((i % stride) / inner);
        w[i] *= s[c];
      }
      model.graph.initializers.set(l.weight, { ...t, shape: [...t.shape], data: w });
      factors[l.node] = [...s];
    }
  }
  return { factors, notes };
}
