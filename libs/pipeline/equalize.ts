/**
 * Cross-layer range equalisation for convolutions (after Nagel et al., 2019,
 * "Data-Free Quantization"): a per-tensor-quantized activation whose channels
 * have very different ranges is rescaled channel by channel, the scale folded
 * exactly into the ops on both sides, so the float function is unchanged.
 *
 * For an activation `x` read only by Conv layers, channel c is divided by s_c
 * and the consumers' input-channel-c weights are multiplied by s_c:
 *
 * - every consumer depthwise (one input channel per output channel): the
 *   per-channel weight quantization does not see the factor at all, so s_c =
 *   r_c / max r puts every channel on the full activation range (per-tensor
 *   activation quantization then behaves like per-channel);
 * - otherwise s_c = r_c^α / w_c^(1−α) (w_c: the consumers' weight max on input
 *   channel c); α = 0.5 balances activation and weight ranges as in DFQ.
 *
 * The division is folded into the producer of `x`, walking back through ops
 * that per-channel scaling commutes with exactly: `Add`/`Sub` of a constant
 * (the constant is divided too), `Relu`/`LeakyRelu`/`PRelu` (positively
 * homogeneous), ending at a `Mul` or `Div` by a constant, a `Conv`'s output
 * channels, or a `BatchNormalization`. Scalar constants become per-channel
 * `[1, C, 1, 1]` ones; through the ops of `HOMOGENEOUS` (float Cast, Identity, Slices off the
 * channel axis) and a complex magnitude `Sqrt(a² + b²)` of two channel ranges of one value
 * (an STFT Conv's real and imaginary halves: bin c's factor divides both of its channels, see
 * `planMagnitude`). Not through HardSwish, Sigmoid, …; every value on the way
 * must be read by nothing else. Activations that cannot be equalised are left
 * alone with a note saying why.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Model, Node, TensorData } from "@lowbit/graph";
import type { Layer } from "./layers.ts";
import { HOMOGENEOUS, planMagnitude } from "./equalize_homogeneous.ts";
import { isOutput, producerOf, readersOf } from "./_graph_lookup.ts";

/** What equalisation did. */
export interface EqualizeResult {
  /** Factor s_c per input channel, by activation value (the value was divided, weights multiplied). */
  factors: Record<string, number[]>;
  /** One line per activation that was not equalised, with the reason. */
  notes: string[];
}

/** Smallest factor relative to the largest (keeps dead channels from blowing up). */
const MIN_RELATIVE = 1e-3;

function isDepthwise(l: Layer, C: number): boolean {
  return l.op === "Conv" && l.groups === C && l.shape[1] === 1;
}

function constOf(model: Model, name: string | undefined): TensorData | undefined {
  if (!name) return undefined;
  const t = model.graph.initializers.get(name);
  return t && t.dtype === "float32" ? t : undefined;
}

/** Whether a constant broadcasts per channel (or as a scalar) over a 4-D NCHW value of C channels. */
function perChannel(t: TensorData, C: number): boolean {
  const n = t.data.length;
  if (n === 1) return true;
  if (n !== C || t.shape.length > 4) return false;
  // The one non-unit axis must land on axis 1 of a 4-D value.
  const axis = 4 - t.shape.length + t.shape.findIndex((d) => d === C);
  return axis === 1;
}

let fresh = 0;

/** Sets a new, unshared initializer (copy-on-write) as input `i` of `node`. */
function replaceInput(model: Model, node: Node, i: number, t: TensorData): void {
  const old = node.inputs[i];
  const name = `${old}.eq${fresh++}`;
  model.graph.initializers.set(name, t);
  node.inputs[i] = name;
  if (!model.graph.nodes.some((n) => n.inputs.includes(old))) model.graph.initializers.delete(old);
}

/** Whether input `i` of `node` is read by that node only (so it can be changed under its name). */
function ownedBy(model: Model, node: Node, i: number): boolean {
  const name = node.inputs[i];
  return model.graph.nodes.every((n) => n === node || !n.inputs.includes(name)) &&
    node.inputs.filter((x) => x === name).length === 1;
}

/** Replaces input `i`'s initializer under its own name (copy-on-write; layers keep naming it). */
function setOwn(model: Model, node: Node, i: number, t: TensorData): void {
  model.graph.initializers.set(node.inputs[i], t);
}

/** `t` (scalar or per channel) as a [1, C, 1, 1] tensor with channel c mapped by `f`. */
function channelConst(t: TensorData, C: number, f: (v: number, c: number) => number): TensorData {
  const src = t.data as Float32Array;
  const d = new Float32Array(C);
  for (let c = 0; c < C; c++) d[c] = f(src.length === 1 ? src[0] : src[c], c);
  return { dtype: "float32", shape: [1, C, 1, 1], data: d };
}

/** Per-output-channel rescale of a weight laid out with output channels on axis 0. */
function scaleRows(
  t: TensorData,
  s: Float64Array,
  f: (v: number, s: number) => number,
): TensorData {
  const C = s.length, inner = t.data.length / C;
  const d = Float32Array.from(t.data as Float32Array);
  for (let i = 0; i < d.length; i++) d[i] = f(d[i], s[Math.floor(i / inner)]);
  return { ...t, shape: [...t.shape], data: d };
}

/** Whether `value` is a `Sqrt` output, up through the ops of `HOMOGENEOUS`. */
function isMagnitude(model: Model, value: string): boolean {
  for (let v = value;;) {
    const p = producerOf(model, v);
    if (p?.op === "Sqrt") return true;
    if (!p || !HOMOGENEOUS[p.op]?.(model, p)) return false;
    v = p.inputs[0];
  }
}

/**
 * Plans the division of `value` by s (per channel) in its producers; returns the edits, or why not.
 */
function planFold(model: Model, value: string, s: Float64Array): (() => void)[] | string {
  const C = s.length;
  const edits: (() => void)[] = [];
  const div = (v: number, c: number): number => v / s[c];
  for (let v = value, first = true;; first = false) {
    if (!first && (readersOf(model, v).length !== 1 || isOutput(model, v))) {
      return `'${v}' on the way also feeds other nodes`;
    }
    const p = producerOf(model, v);
    if (!p) return `'${v}' is a graph input`;
    switch (p.op) {
      case "Relu":
      case "LeakyRelu":
      case "PRelu":
        v = p.inputs[0];
        continue;
      case "Add":
      case "Sub":
      case "Mul":
      case "Div": {
        const k = constOf(model, p.inputs[1])
          ? 1
          : p.op === "Add" || p.op === "Mul"
          ? (constOf(model, p.inputs[0]) ? 0 : -1)
          : -1;
        const t = k < 0 ? undefined : constOf(model, p.inputs[k]);
        if (!t || !perChannel(t, C)) return `its ${p.op} '${p.name}' has no per-channel constant`;
        if (p.op === "Div") {
          edits.push(() => replaceInput(model, p, k, channelConst(t, C, (x, c) => x * s[c])));
          return edits;
        }
        edits.push(() => replaceInput(model, p, k, channelConst(t, C, div)));
        if (p.op === "Mul") return edits;
        v = p.inputs[1 - k];
        continue;
      }
      case "Conv": {
        const w = constOf(model, p.inputs[1]);
        if (!w || w.shape[0] !== C) return `its Conv '${p.name}' has no constant weight`;
        const b = constOf(model, p.inputs[2]);
        if (p.inputs[2] && !b) return `its Conv '${p.name}' bias is not constant`;
        if (!ownedBy(model, p, 1) || (b && !ownedBy(model, p, 2))) {
          return `its Conv '${p.name}' shares its weight or bias`;
        }
        edits.push(() => {
          setOwn(model, p, 1, scaleRows(w, s, (x, f) => x / f));
          if (b) setOwn(model, p, 2, scaleRows(b, s, (x, f) => x / f));
        });
        return edits;
      }
      case "BatchNormalization": {
        const g = constOf(model, p.inputs[1]), b = constOf(model, p.inputs[2]);
        if (!g || !b || g.data.length !== C) {
          return `its BatchNormalization params are not per channel`;
        }
        edits.push(() => {
          replaceInput(model, p, 1, scaleRows(g, s, (x, f) => x / f));
          replaceInput(model, p, 2, scaleRows(b, s, (x, f) => x / f));
        });
        return edits;
      }
      case "Sqrt": {
        // A complex magnitude: bin c's factor goes to both of its channels in the source.
        const mag = planMagnitude(model, p, s);
        if (typeof mag === "string") return mag;
        const rest = planFold(model, mag.source, mag.s);
        return typeof rest === "string" ? rest : [...edits, ...rest];
      }
      default:
        if (HOMOGENEOUS[p.op]?.(model, p)) {
          v = p.inputs[0];
          continue;
        }
        return `'${v}' comes from ${p.op} '${p.name}', which a per-channel scale does not commute with`;
    }
  }
}

/**
 * Applies range equalisation in place to a model (pass a copy to keep the original).
 *
 * @param model the model (initializers and node inputs are modified)
 * @param layers the layers whose inputs may be equalised (only Conv consumers are)
 * @param actAbsMax per input value, max |x| per channel (axis 1), e.g. from `calibrate`'s `absMax`
 * @param opts `alpha` (0.5): migration strength for inputs with ungrouped consumers;
 *   `given`: factors to apply instead of computing them (replaying a plan), by value;
 *   `spectra`: only values computed as a complex magnitude (`Sqrt(re² + im²)`, a spectrum's bins)
 * @returns factors per value and notes for values left alone
 *
 * @example
 * ```ts
 * import { equalize } from "@lowbit/pipeline";
 * import type { Model } from "@lowbit/graph";
 * const t = (shape: number[], v: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(v) });
 * const model: Model = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(),
 *     nodes: [
 *       { name: "m", op: "Mul", domain: "", inputs: ["x", "a"], outputs: ["h"], attrs: {} },
 *       { name: "dw", op: "Conv", domain: "", inputs: ["h", "W"], outputs: ["y"],
 *         attrs: { group: { kind: "int" as const, value: 2 } } },
 *     ],
 *     initializers: new Map([["a", t([1], [2])], ["W", t([2, 1, 1, 1], [1, 1])]]) } };
 * const dw = { node: "dw", op: "Conv", input: "h", weight: "W", shape: [2, 1, 1, 1], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 2, out: 2, in: 1 };
 * const r = equalize(model, [dw], new Map([["h", new Float32Array([8, 2])]]));
 * if (r.factors.h[1] !== 0.25) throw new Error(String(r.factors.h));
 * ```
 */
export function equalize(
  model: Model,
  layers: readonly Layer[],
  actAbsMax: ReadonlyMap<string, Float32Array>,
  opts: {
    alpha?: number;
    given?: Readonly<Record<string, readonly number[]>>;
    spectra?: boolean;
  } = {},
): EqualizeResult {
  const { alpha = 0.5, given } = opts;
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `equalisation alpha must be in [0, 1], got ${alpha}`,
    );
  }
  const factors: Record<string, number[]> = {};
  const notes: string[] = [];
  const byInput = new Map<string, Layer[]>();
  for (const l of layers) byInput.set(l.input, [...(byInput.get(l.input) ?? []), l]);
  for (const [value, consumers] of byInput) {
    if (given && !given[value]) continue;
    if (opts.spectra && !isMagnitude(model, value)) continue;
    const note = (why: string): void => {
      notes.push(`equalisation skips '${value}': ${why}`);
    };
    const amax = actAbsMax.get(value);
    const C = given?.[value]?.length ?? amax?.length ?? 0;
    const ok = (l: Layer): boolean =>
      isDepthwise(l, C) || (l.op === "Conv" && l.groups === 1 && l.shape[1] === C);
    if (C === 0 || !consumers.every(ok)) {
      note("only Conv consumers (ungrouped or depthwise) with per-channel statistics");
      continue;
    }
    const names = new Set(consumers.map((l) => l.node));
    if (isOutput(model, value) || readersOf(model, value).some((n) => !names.has(n.name))) {
      note("it also feeds other nodes");
      continue;
    }
    const s = new Float64Array(C);
    if (given) s.set(given[value]);
    else if (consumers.every((l) => isDepthwise(l, C))) {
      const R = Math.max(...amax!);
      if (!(R > 0)) continue;
      for (let c = 0; c < C; c++) s[c] = Math.max(amax![c], MIN_RELATIVE * R) / R;
    } else {
      const wmax = new Float64Array(C);
      for (const l of consumers) {
        const w = model.graph.initializers.get(l.weight)!.data as Float32Array;
        const dw = isDepthwise(l, C);
        for (let i = 0; i < w.length; i++) {
          const c = dw ? Math.floor(i / l.window) : Math.floor(i / l.window) % C;
          wmax[c] = Math.max(wmax[c], Math.abs(w[i]));
        }
      }
      for (let c = 0; c < C; c++) {
        const v = amax![c] > 0 && wmax[c] > 0
          ? Math.pow(amax![c], alpha) / Math.pow(wmax[c], 1 - alpha)
          : 1;
        s[c] = Math.min(1e4, Math.max(1e-4, v));
      }
    }
    const edits = planFold(model, value, s);
    if (typeof edits === "string") {
      note(edits);
      continue;
    }
    for (const e of edits) e();
    for (const l of consumers) {
      const t = model.graph.initializers.get(l.weight)!;
      const dw = isDepthwise(l, C);
      const w = Float32Array.from(t.data as Float32Array);
      for (let i = 0; i < w.length; i++) {
        w[i] *= s[dw ? Math.floor(i / l.window) : Math.floor(i / l.window) % C];
      }
      model.graph.initializers.set(l.weight, { ...t, shape: [...t.shape], data: w });
    }
    factors[value] = [...s];
  }
  return { factors, notes };
}
