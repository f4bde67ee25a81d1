/**
 * Split a convolution whose weight is dominated by one kernel tap into two convolutions on the
 * same input, summed: the dominant tap alone (a 1-tap conv) and the rest with that tap zeroed.
 *
 * Structurally reparameterised convs (RepVGG, MobileOne, Silero VAD v5's encoder) fold a 1×1
 * branch into the centre tap of a 3-tap kernel: Silero v5's `encoder.3` has centre weights up
 * to 54.9 beside side taps of RMS 0.016. Quantized per output channel, each row's int8 step is
 * then set by its centre tap, and the side taps fall on a grid 2^b times coarser than their own
 * range would give (b = log2(row max / side max); mean b = 4.1 there, 11 % of its weights round
 * to 0). After the split each row of each part gets its own step; both stay plain int8 per
 * channel Convs (and the QDQ export standard Conv + Add). The float function is unchanged up to
 * the order of the sum (< 1e-6 relative).
 *
 * The rule: for a Conv with a constant float32 weight read by nothing else and more than one
 * tap, the tap chosen is the one with the largest mean over rows of b; the conv is split when
 * that mean reaches `minBits` (default 2: the other taps lose at least 12 dB of weight SQNR on
 * average, for one extra conv with 1/k of the layer's multiply-adds). A row whose other taps are
 * all zero counts as 8 bits (the whole int8 grid). Convs with `auto_pad` other than NOTSET /
 * VALID, or whose 1-tap part would need negative padding, are left alone.
 *
 * @module
 */

import { type Graph, type Node, type TensorData, walkGraphs } from "@lowbit/graph";

/** Options of {@link splitDominantTaps}. */
export interface TapSplitOptions {
  /** Split when the mean over rows of the other taps' lost bits reaches this (default 2). */
  minBits?: number;
}

/** One conv split by {@link splitDominantTaps}. */
export interface TapSplit {
  /** The conv (it keeps its name and now holds the other taps). */
  node: string;
  /** The new 1-tap conv. */
  tapNode: string;
  /** The dominant tap, one index per spatial axis of the kernel. */
  tap: number[];
  /** Mean over rows of the bits the other taps lost to it. */
  bits: number;
}

/** The default `minBits` of {@link splitDominantTaps}. */
export const TAP_SPLIT_MIN_BITS = 2;

const MAX_BITS = 8;

function ints(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a?.kind === "ints" ? a.value : undefined;
}

/**
 * The dominant tap of a weight: for each tap, the mean over rows of b = log2(row max / max of
 * the row's other taps) (8 when the others are all zero; dead rows count 0), the largest.
 *
 * @param w the weight, row-major `rows × cols × taps`
 * @param rows output channels
 * @param cols input channels (per group)
 * @param taps kernel taps (the product of the kernel's spatial sizes)
 * @returns the tap (flat index) and its mean bits
 *
 * @example
 * ```ts
 * import { dominantTap } from "@lowbit/pipeline";
 * // Row 0: centre 4, sides 1 → 2 bits; row 1: centre 1, sides 1 → 0 bits. Mean 1.
 * const d = dominantTap(Float32Array.of(1, 4, -1, 1, 1, 1), 2, 1, 3);
 * if (d.tap !== 1 || d.bits !== 1) throw new Error(JSON.stringify(d));
 * ```
 */
export function dominantTap(
  w: Float32Array,
  rows: number,
  cols: number,
  taps: number,
): { tap: number; bits: number } {
  let best = { tap: 0, bits: -1 };
  for (let t = 0; t < taps; t++) {
    let sum = 0;
    for (let o = 0; o < rows; o++) {
      let mt = 0, mr = 0;
      for (let c = 0; c < cols; c++) {
        const base = (o * cols + c) * taps;
        for (let u = 0; u < taps; u++) {
          const v = Math.abs(w[base + u]);
          if (u === t) mt = Math.max(mt, v);
          else mr = Math.max(mr, v);
        }
      }
      if (mt === 0 && mr === 0) continue; // a dead row loses nothing
      sum += mr === 0 ? MAX_BITS : Math.min(MAX_BITS, Math.log2(Math.max(mt, mr) / mr));
    }
    const bits = sum / rows;
    if (bits > best.bits) best = { tap: t, bits };
  }
  return best;
}

function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
  taken.add(name);
  return name;
}

/**
 * Splits every conv dominated by one tap (see the module documentation), in the main graph and
 * in If / Loop / Scan bodies. The conv keeps its name, inputs and bias and gets the weight with
 * the tap zeroed; a new conv `<name>/tap` reads the same input with the tap alone (no bias); an
 * `Add` named `<name>/sum` writes the original output.
 *
 * @param graph the graph (not changed)
 * @param opts the threshold
 * @returns the new graph and the convs split
 *
 * @example
 * ```ts
 * import { splitDominantTaps } from "@lowbit/pipeline";
 * // A 3-tap conv with a folded 1×1 branch: centre 50, sides ±0.1 (log2(500) ≈ 9 → 8 bits).
 * const W = { dtype: "float32" as const, shape: [1, 1, 3], data: Float32Array.of(0.1, 50, -0.1) };
 * const graph = { name: "g", valueInfo: new Map(), initializers: new Map([["W", W]]),
 *   inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 1, 8] }],
 *   outputs: [{ name: "y", dtype: "float32" as const, shape: [1, 1, 8] }],
 *   nodes: [{ name: "conv", op: "Conv", domain: "", inputs: ["x", "W"], outputs: ["y"],
 *     attrs: { pads: { kind: "ints" as const, value: [1, 1] } } }] };
 * const r = splitDominantTaps(graph);
 * if (r.split.length !== 1 || r.split[0].tap[0] !== 1 || r.split[0].bits !== 8) throw new Error();
 * if (r.graph.nodes.map((n) => n.op).join() !== "Conv,Conv,Add") throw new Error();
 * ```
 */
export function splitDominantTaps(
  graph: Graph,
  opts: TapSplitOptions = {},
): { graph: Graph; split: TapSplit[] } {
  const minBits = opts.minBits ?? TAP_SPLIT_MIN_BITS;
  const root = structuredClone(graph);
  const graphs = [...walkGraphs(root)];
  // How often each name is read anywhere (a weight read twice is not rewritten).
  const reads = new Map<string, number>();
  const taken = new Set<string>();
  for (const { graph: g } of graphs) {
    for (const n of g.nodes) {
      taken.add(n.name);
      for (const i of n.inputs) reads.set(i, (reads.get(i) ?? 0) + 1);
      for (const o of n.outputs) taken.add(o);
    }
    for (const o of g.outputs) reads.set(o.name, (reads.get(o.name) ?? 0) + 1);
    for (const k of g.initializers.keys()) taken.add(k);
    for (const i of g.inputs) taken.add(i.name);
  }
  const split: TapSplit[] = [];
  for (const { graph: g, scope } of graphs) {
    const nodes: Node[] = [];
    for (const n of g.nodes) {
      nodes.push(n);
      if (n.op !== "Conv" || n.domain !== "" || reads.get(n.inputs[1]) !== 1) continue;
      const owner = [g, ...scope].find((s) => s.initializers.has(n.inputs[1]));
      const w: TensorData | undefined = owner?.initializers.get(n.inputs[1]);
      if (!owner || !w || w.dtype !== "float32" || w.shape.length < 3) continue;
      const autoPad = n.attrs.auto_pad?.kind === "string" ? n.attrs.auto_pad.value : "NOTSET";
      if (autoPad !== "NOTSET" && autoPad !== "VALID") continue;
      const kernel = w.shape.slice(2);
      const taps = kernel.reduce((a, b) => a * b, 1);
      if (taps < 2) continue;
      const rows = w.shape[0], cols = w.shape[1];
      const data = w.data as Float32Array;
      const { tap, bits } = dominantTap(data, rows, cols, taps);
      if (bits < minBits) continue;
      // The tap's index per axis, and the 1-tap conv's padding: it reads x[j·s − p + t·d].
      const at: number[] = [];
      for (let a = kernel.length - 1, r = tap; a >= 0; a--) {
        at[a] = r % kernel[a];
        r = Math.floor(r / kernel[a]);
      }
      const nd = kernel.length;
      const pads = autoPad === "VALID" ? new Array(2 * nd).fill(0) : ints(n, "pads") ??
        new Array(2 * nd).fill(0);
      const dil = ints(n, "dilations") ?? new Array(nd).fill(1);
      const tapPads = [
        ...at.map((t, a) => pads[a] - t * dil[a]),
        ...at.map((t, a) => pads[a + nd] - (kernel[a] - 1 - t) * dil[a]),
      ];
      if (tapPads.some((p) => p < 0)) continue;
      const one = new Float32Array(rows * cols), rest = data.slice();
      for (let k = 0; k < rows * cols; k++) {
        one[k] = data[k * taps + tap];
        rest[k * taps + tap] = 0;
      }
      const wOne = uniqueName(taken, `${n.inputs[1]}/tap`);
      const wRest = uniqueName(taken, `${n.inputs[1]}/rest`);
      owner.initializers.delete(n.inputs[1]);
      g.initializers.set(wOne, {
        dtype: "float32",
        shape: [rows, cols, ...kernel.map(() => 1)],
        data: one,
      });
      g.initializers.set(wRest, { dtype: "float32", shape: w.shape.slice(), data: rest });
      const out = n.outputs[0];
      const yTap = uniqueName(taken, `${out}/tap`), yRest = uniqueName(taken, `${out}/rest`);
      const tapNode = uniqueName(taken, `${n.name}/tap`);
      const attrs = { ...n.attrs };
      delete attrs.auto_pad;
      nodes.push({
        name: tapNode,
        op: "Conv",
        domain: "",
        inputs: [n.inputs[0], wOne],
        outputs: [yTap],
        attrs: {
          ...attrs,
          kernel_shape: { kind: "ints", value: kernel.map(() => 1) },
          pads: { kind: "ints", value: tapPads },
        },
      }, {
        name: uniqueName(taken, `${n.name}/sum`),
        op: "Add",
        domain: "",
        inputs: [yRest, yTap],
        outputs: [out],
        attrs: {},
      });
      n.inputs = [n.inputs[0], wRest, ...n.inputs.slice(2)];
      n.outputs = [yRest, ...n.outputs.slice(1)];
      split.push({ node: n.name, tapNode, tap: at, bits });
    }
    g.nodes = nodes;
  }
  return { graph: root, split };
}
