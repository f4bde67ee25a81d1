/**
 * Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", §4.2's empirical
 * variant; AIMET's "empirical bias correction"): quantization shifts the mean of each output
 * channel of a layer — its 4-bit weights by (W − Ŵ)·E[x], its quantized input by W·E[x − x̂],
 * and everything quantized upstream by what reaches it. The shift is measured, not modelled:
 * the float model and the quantized one (on-grid weights, every activation point
 * fake-quantized) run on the first {@link BIAS_SAMPLES} calibration samples, and each layer's
 * bias gets E[y_float] − E[y_quantized] per output channel. Layers are corrected in order of
 * depth, each depth after a run that already has the shallower corrections, so a layer's
 * correction sees its inputs as the corrected model makes them.
 *
 * Layers: a MatMul with a constant 2-D weight whose output goes only to an `Add` of a constant
 * bias (the Linear layer torch exports), a Gemm with a constant bias C, a Conv with a constant
 * bias — with its weight or its input quantized. Channels: the last axis (MatMul, Gemm) or
 * axis 1 (Conv).
 *
 * @module
 */

import { LowbitError, valueLinks } from "@lowbit/core";
import type { Graph, TensorData } from "@lowbit/graph";
import { createExecutor } from "@lowbit/graph";
import {
  activationTransform,
  type QuantizeState,
  type QuantPlan,
  sliceBatch,
} from "@lowbit/pipeline";

/** Calibration samples the correction runs (at most). */
export const BIAS_SAMPLES = 64;

/** A layer whose bias the correction adjusts. */
export interface BiasSite {
  /** The layer's node (MatMul, Gemm or Conv). */
  readonly node: string;
  /** The value whose per-channel mean is corrected (the bias Add's output, or the node's). */
  readonly output: string;
  /** The bias initializer. */
  readonly bias: string;
  /** The channel axis of `output` (−1: the last). */
  readonly axis: number;
  /** Depth: 0 when no other site is upstream, else 1 + the deepest upstream site's. */
  readonly depth: number;
}

/**
 * The layers of `g` the correction can adjust (see the module doc), with their depths.
 *
 * @param g the graph
 * @param nodes the candidate layer nodes (the quantized ones)
 * @returns the sites, in order of depth
 *
 * @example
 * ```ts
 * import { biasSites } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const t = (...shape: number[]) => ({ dtype: "float32" as const, shape,
 *   data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
 * const g = { name: "g", inputs: [], outputs: [], valueInfo: new Map(), initializers: new Map([
 *   ["w1", t(2, 2)], ["b1", t(2)], ["w2", t(2, 2)], ["b2", t(2)]]), nodes: [
 *   { name: "m1", op: "MatMul", domain: "", inputs: ["x", "w1"], outputs: ["y1"], attrs: {} },
 *   { name: "a1", op: "Add", domain: "", inputs: ["b1", "y1"], outputs: ["z1"], attrs: {} },
 *   { name: "m2", op: "MatMul", domain: "", inputs: ["z1", "w2"], outputs: ["y2"], attrs: {} },
 *   { name: "a2", op: "Add", domain: "", inputs: ["y2", "b2"], outputs: ["z2"], attrs: {} }] };
 * assert.deepEqual(biasSites(g, ["m1", "m2"]).map((s) => [s.node, s.bias, s.depth]),
 *   [["m1", "b1", 0], ["m2", "b2", 1]]);
 * ```
 */
export function biasSites(g: Graph, nodes: readonly string[]): BiasSite[] {
  const { producer, consumers } = valueLinks(g);
  const init = g.initializers;
  const single = (v: string) => (consumers.get(v) ?? []).length === 1;
  const found = new Map<string, Omit<BiasSite, "depth">>();
  for (const name of nodes) {
    const n = g.nodes.find((m) => m.name === name);
    if (!n) continue;
    if (n.op === "MatMul") {
      const w = init.get(n.inputs[1]);
      const adds = consumers.get(n.outputs[0]) ?? [];
      if (!w || w.shape.length !== 2 || adds.length !== 1 || adds[0].op !== "Add") continue;
      const bias = adds[0].inputs.find((v) => v !== n.outputs[0]);
      if (!bias || !init.has(bias) || !single(bias)) continue;
      if (init.get(bias)!.data.length !== w.shape[1]) continue;
      found.set(name, { node: name, output: adds[0].outputs[0], bias, axis: -1 });
    } else if (n.op === "Gemm" || n.op === "Conv") {
      const bias = n.inputs[2];
      if (!bias || !init.has(bias) || !single(bias)) continue;
      found.set(name, { node: name, output: n.outputs[0], bias, axis: n.op === "Conv" ? 1 : -1 });
    }
  }
  // depth: the deepest site upstream, through any node
  const memo = new Map<string, Set<string>>(); // value → sites upstream of it (inclusive)
  const upstream = (v: string, stack: Set<string>): Set<string> => {
    if (memo.has(v)) return memo.get(v)!;
    const out = new Set<string>();
    const p = producer.get(v);
    if (p && !stack.has(p.name)) {
      stack.add(p.name);
      if (found.has(p.name)) out.add(p.name);
      for (const i of p.inputs) if (i) { for (const s of upstream(i, stack)) out.add(s); }
      stack.delete(p.name);
    }
    memo.set(v, out);
    return out;
  };
  const depth = new Map<string, number>();
  const depthOf = (name: string): number => {
    if (depth.has(name)) return depth.get(name)!;
    const n = g.nodes.find((m) => m.name === name)!;
    let d = 0;
    for (const i of n.inputs) {
      for (const s of upstream(i, new Set())) if (s !== name) d = Math.max(d, depthOf(s) + 1);
    }
    depth.set(name, d);
    return d;
  };
  return [...found.values()].map((s) => ({ ...s, depth: depthOf(s.node) }))
    .sort((a, b) => a.depth - b.depth);
}

/**
 * Per-channel means of a tensor along `axis` (−1: the last).
 *
 * @param t the tensor
 * @param axis the channel axis
 * @returns one mean per channel
 *
 * @example
 * ```ts
 * import { channelMeans } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const t = { dtype: "float32" as const, shape: [2, 3], data: Float32Array.of(1, 2, 3, 3, 4, 5) };
 * assert.deepEqual([...channelMeans(t, -1)], [2, 3, 4]);
 * assert.deepEqual([...channelMeans(t, 0)], [2, 4]);
 * ```
 */
export function channelMeans(t: TensorData, axis: number): Float64Array {
  const shape = t.shape;
  const ax = axis < 0 ? shape.length + axis : axis;
  const C = shape[ax];
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const d = t.data as Float32Array;
  const sum = new Float64Array(C);
  for (let i = 0; i < d.length; i++) sum[Math.floor(i / inner) % C] += d[i];
  const per = d.length / C;
  return sum.map((s) => s / per);
}

const refs = new WeakMap<QuantizeState, { sites: BiasSite[]; means: Map<string, Float64Array> }>();

async function means(
  st: QuantizeState,
  sites: readonly BiasSite[],
  transform?: ReturnType<typeof activationTransform>,
): Promise<Map<string, Float64Array>> {
  const calib = st.opts.calib!;
  const n = Math.min(calib.count, BIAS_SAMPLES);
  const acc = new Map<string, { sum: Float64Array; runs: number }>();
  const axis = new Map(sites.map((s) => [s.output, s.axis]));
  const exec = createExecutor(st.model, { registry: st.registry });
  for (let s = 0; s < n; s += 32) {
    const batch = sliceBatch(calib, s, Math.min(n, s + 32));
    await exec.run(batch, {
      watch: axis.keys(),
      ...(transform ? { transform } : {}),
      observe: (name, t) => {
        const m = channelMeans(t, axis.get(name)!);
        const a = acc.get(name) ?? { sum: new Float64Array(m.length), runs: 0 };
        const w = t.shape[0];
        for (let c = 0; c < m.length; c++) a.sum[c] += m[c] * w;
        a.runs += w;
        acc.set(name, a);
      },
    });
  }
  return new Map([...acc].map(([k, a]) => [k, a.sum.map((v) => v / a.runs)]));
}

/**
 * Stage `vit-bias-ref` (before `weights`): the float model's per-channel output means of the
 * layers to correct, on the first {@link BIAS_SAMPLES} calibration samples.
 *
 * @param st the pipeline's state
 * @returns nothing
 */
export async function biasReferenceStage(st: QuantizeState): Promise<void> {
  const quantized = new Set(
    st.entries.filter((e) => !e.skip).map((e) => e.node),
  );
  const nodes = st.layers.filter((l) => !l.scope && quantized.has(l.node)).map((l) => l.node);
  const sites = biasSites(st.model.graph, nodes);
  if (sites.length === 0) return;
  if (!st.opts.calib) {
    // also when a plan is replayed: the shifts are not in the plan, they are measured again
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the vit plugin's bias correction measures the layers' output means on calibration " +
        "data; pass --calib (the same data to replay a plan), or --vit-bias off",
      { node: sites[0].node },
    );
  }
  refs.set(st, { sites, means: await means(st, sites) });
}

/**
 * Stage `vit-bias` (after `weights`): corrects each site's bias, depth by depth (see the module
 * doc).
 *
 * @param st the pipeline's state (bias initializers changed in place)
 * @returns the number of layers corrected
 */
export async function biasCorrectionStage(st: QuantizeState): Promise<number> {
  const ref = refs.get(st);
  if (!ref) return 0;
  refs.delete(st);
  const g = st.model.graph;
  const plan = { entries: st.entries } as unknown as QuantPlan;
  const maxDepth = Math.max(...ref.sites.map((s) => s.depth));
  let done = 0;
  for (let d = 0; d <= maxDepth; d++) {
    const here = ref.sites.filter((s) => s.depth === d);
    if (here.length === 0) continue;
    const hook = activationTransform({
      model: st.model,
      plan,
      layers: st.layers,
      registry: st.registry,
    });
    const got = await means(st, here, hook);
    for (const s of here) {
      const q = got.get(s.output), f = ref.means.get(s.output);
      if (!q || !f) continue;
      const b = g.initializers.get(s.bias)!;
      const data = Float32Array.from(b.data as Float32Array, (v, c) => v + (f[c] - q[c]));
      g.initializers.set(s.bias, { ...b, data });
      done++;
    }
  }
  return done;
}
