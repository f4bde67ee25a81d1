/**
 * Range equalisation through positively homogeneous ops that mix channels of one source: the
 * complex magnitude of an STFT front end. An STFT computed by a Conv (Silero VAD v5; torch
 * exports of an STFT by conv1d have the same pattern) splits the Conv's output channels into a real
 * and an imaginary half (Slice on the channel axis), squares both (`Pow` by 2 or `Mul(x, x)`),
 * adds them and takes `Sqrt`. That magnitude is homogeneous of degree 1 in the pair:
 * |(s·re_c, s·im_c)| = s·|(re_c, im_c)| for s > 0, so dividing bin c of the magnitude by s_c is
 * exactly dividing channels `re_c` and `im_c` of the Conv's output by s_c, which folds into that
 * Conv's rows. The table {@link HOMOGENEOUS} lists the ops a per-channel scale passes unchanged
 * (it commutes with them) — float Casts, Identity, Slices off the channel axis — and
 * {@link planMagnitude} recognises the magnitude; `equalize` walks through both.
 *
 * @module
 */

import type { Model, Node, TensorData } from "@lowbit/graph";
import { isOutput, producerOf, readersOf } from "./_graph_lookup.ts";

/**
 * Ops through which a per-channel scale passes unchanged, and when: `Cast` to float32 (its
 * input, produced by a float op upstream, keeps its value), `Identity`, `Slice` of other axes
 * than the channel axis (1).
 */
export const HOMOGENEOUS: Readonly<Record<string, (model: Model, node: Node) => boolean>> = {
  Cast: (_m, n) => n.attrs.to?.kind === "int" && n.attrs.to.value === 1,
  Identity: () => true,
  Slice: (m, n) => {
    const s = sliceOf(m, n);
    return typeof s !== "string" && s.channel === null;
  },
};

/** A Slice's range on the channel axis (null: it does not slice that axis), or why not known. */
interface SliceInfo {
  channel: { start: number; end: number } | null;
}

const INT = (m: Model, name: string | undefined): number[] | undefined => {
  if (!name) return undefined;
  const t = m.graph.initializers.get(name);
  if (!t || (t.dtype !== "int64" && t.dtype !== "int32")) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
};

/** The channel range a Slice takes (constant starts / ends / axes / steps), or why not. */
function sliceOf(m: Model, n: Node): SliceInfo | string {
  const starts = INT(m, n.inputs[1]), ends = INT(m, n.inputs[2]);
  if (!starts || !ends) return `its Slice '${n.name}' has no constant starts / ends`;
  const axes = n.inputs[3] ? INT(m, n.inputs[3]) : starts.map((_, i) => i);
  const steps = n.inputs[4] ? INT(m, n.inputs[4]) : starts.map(() => 1);
  if (!axes || !steps) return `its Slice '${n.name}' has no constant axes / steps`;
  let channel: SliceInfo["channel"] = null;
  for (let i = 0; i < axes.length; i++) {
    if (axes[i] < 0) return `its Slice '${n.name}' counts axes from the end`;
    if (axes[i] !== 1) continue;
    if (steps[i] !== 1 || starts[i] < 0 || ends[i] < 0) {
      return `its Slice '${n.name}' takes channels by a step or from the end`;
    }
    channel = { start: starts[i], end: ends[i] };
  }
  return { channel };
}

function scalar(m: Model, name: string | undefined): number | undefined {
  const t: TensorData | undefined = name ? m.graph.initializers.get(name) : undefined;
  return t && t.dtype === "float32" && t.data.length === 1
    ? (t.data as Float32Array)[0]
    : undefined;
}

/** x of a square `Pow(x, 2)` / `Mul(x, x)` producing `v`, or undefined. */
function squared(m: Model, v: string): string | undefined {
  const p = producerOf(m, v);
  if (p?.op === "Pow" && scalar(m, p.inputs[1]) === 2) return p.inputs[0];
  if (p?.op === "Mul" && p.inputs[0] === p.inputs[1]) return p.inputs[0];
  return undefined;
}

/** One operand's way back: values (from the square's input up), the Slices on the channel axis. */
interface Chain {
  values: string[];
  /** For each value, the node reading it on the way (the one below it). */
  via: Node[];
  slices: { at: number; start: number; end: number }[];
}

function chainOf(m: Model, x: string, square: Node): Chain | string {
  const c: Chain = { values: [x], via: [square], slices: [] };
  for (let v = x;;) {
    const p = producerOf(m, v);
    if (!p || !(p.op in HOMOGENEOUS || p.op === "Slice")) return c;
    if (p.op === "Slice") {
      const s = sliceOf(m, p);
      if (typeof s === "string") return s;
      if (s.channel) c.slices.push({ at: c.values.length, ...s.channel });
    } else if (!HOMOGENEOUS[p.op](m, p)) return c;
    v = p.inputs[0];
    c.values.push(v);
    c.via.push(p);
  }
}

/** Channels of a value, from the Conv / float constant it is computed from (channel-preserving). */
function channelsOf(m: Model, v: string): number | undefined {
  for (;;) {
    const p = producerOf(m, v);
    if (!p) return undefined;
    if (p.op === "Conv" || p.op === "ConvTranspose") {
      const w = m.graph.initializers.get(p.inputs[1]);
      if (!w) return undefined;
      const g = p.attrs.group?.kind === "int" ? p.attrs.group.value : 1;
      return p.op === "Conv" ? w.shape[0] : w.shape[1] * g;
    }
    const channelPreserving = ["Relu", "LeakyRelu", "Cast", "Identity", "Abs", "Neg"];
    if (p.op === "Slice") {
      const s = sliceOf(m, p);
      if (typeof s === "string" || s.channel) return undefined;
    } else if (!channelPreserving.includes(p.op)) return undefined;
    v = p.inputs[0];
  }
}

/**
 * Recognises `sqrt(a² + b²)` producing `value`, with a and b channel ranges of one source value
 * P; returns P and its per-channel factors (bin c's factor on both of its channels, 1 elsewhere),
 * or why not.
 *
 * @param model the model
 * @param sqrt the `Sqrt` node producing the equalised value
 * @param s the factor per channel of the magnitude
 * @returns the source value and its factors, or the reason it is not a magnitude that can take them
 *
 * @example
 * ```ts
 * import { planMagnitude } from "@lowbit/pipeline";
 * import type { Model, TensorData } from "@lowbit/graph";
 * const i64 = (v: number[]): TensorData => ({ dtype: "int64" as const, shape: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
 * const f = (shape: number[], v: number[]): TensorData => ({ dtype: "float32" as const, shape, data: Float32Array.from(v) });
 * const n = (name: string, op: string, inputs: string[], outputs: string[]) =>
 *   ({ name, op, domain: "", inputs, outputs, attrs: {} });
 * const model: Model = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(), nodes: [
 *     n("stft", "Conv", ["x", "W"], ["P"]),
 *     n("re", "Slice", ["P", "s0", "e2", "ax"], ["a"]),
 *     n("im", "Slice", ["P", "s2", "e4", "ax"], ["b"]),
 *     n("a2", "Mul", ["a", "a"], ["a2"]), n("b2", "Mul", ["b", "b"], ["b2"]),
 *     n("sum", "Add", ["a2", "b2"], ["m2"]), n("mag", "Sqrt", ["m2"], ["m"]),
 *   ], initializers: new Map([["W", f([4, 1, 1], [1, 2, 3, 4])], ["s0", i64([0])],
 *     ["e2", i64([2])], ["s2", i64([2])], ["e4", i64([4])], ["ax", i64([1])]]) } };
 * const r = planMagnitude(model, model.graph.nodes[6], Float64Array.of(2, 5));
 * if (typeof r === "string" || r.source !== "P" || r.s.join() !== "2,5,2,5") throw new Error(String(r));
 * ```
 */
export function planMagnitude(
  model: Model,
  sqrt: Node,
  s: Float64Array,
): { source: string; s: Float64Array } | string {
  const add = producerOf(model, sqrt.inputs[0]);
  const sum = sqrt.inputs[0];
  if (add?.op !== "Add" || readersOf(model, sum).length !== 1 || isOutput(model, sum)) {
    return `its Sqrt '${sqrt.name}' is not of a sum of squares read by it alone`;
  }
  const xs = add.inputs.map((v) => squared(model, v));
  if (xs.some((x) => !x) || add.inputs.some((v) => readersOf(model, v).length !== 1)) {
    return `its Sqrt '${sqrt.name}' is not of a sum of two squares read by it alone`;
  }
  const chains = xs.map((x, i) => chainOf(model, x!, producerOf(model, add.inputs[i])!));
  const bad = chains.find((c): c is string => typeof c === "string");
  if (bad) return bad;
  const [A, B] = chains as Chain[];
  const ia = A.values.findIndex((v) => B.values.includes(v));
  if (ia < 0) return `the two halves of '${sqrt.name}' do not come from one value`;
  const source = A.values[ia], ib = B.values.indexOf(source);
  const C = channelsOf(model, source);
  if (C === undefined) return `the channels of '${source}' are not known`;
  const M = s.length;
  // Channel offsets of each half in the source: the Slices from the source outwards.
  const offsetOf = (c: Chain, upTo: number): number | string => {
    let off = 0, n = C;
    for (const sl of [...c.slices].filter((x) => x.at <= upTo).sort((a, b) => b.at - a.at)) {
      const start = Math.min(sl.start, n), end = Math.min(sl.end, n);
      off += start, n = Math.max(0, end - start);
    }
    return n === M ? off : `a half of '${sqrt.name}' has ${n} channels, the magnitude ${M}`;
  };
  const [oa, ob] = [offsetOf(A, ia), offsetOf(B, ib)];
  if (typeof oa === "string") return oa;
  if (typeof ob === "string") return ob;
  if (oa !== ob && Math.abs(oa - ob) < M) return `the halves of '${sqrt.name}' overlap`;
  // Everything between the source and the squares is read on the way only.
  for (const [c, upTo] of [[A, ia], [B, ib]] as const) {
    for (let i = 0; i < upTo; i++) {
      if (readersOf(model, c.values[i]).length !== 1 || isOutput(model, c.values[i])) {
        return `'${c.values[i]}' on the way also feeds other nodes`;
      }
    }
  }
  const mine = new Set([A.via[ia], B.via[ib]]);
  if (isOutput(model, source) || readersOf(model, source).some((n) => !mine.has(n))) {
    return `'${source}' also feeds other nodes`;
  }
  const out = new Float64Array(C).fill(1);
  for (let c = 0; c < M; c++) out[oa + c] = out[ob + c] = s[c];
  return { source, s: out };
}
