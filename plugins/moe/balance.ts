/**
 * Expert-balanced calibration (MoEQuant's expert-balanced self-sampling, adapted): during
 * calibration only, each expert of a sparse-dispatch router receives, besides the tokens routed
 * to it, the tokens of the batch with the highest gate affinity for it (a fraction `frac` of
 * the batch), multiplied by that true affinity; the combine still adds only the naturally routed
 * rows, so every value after the MoE block sees the natural data. When the calibration data
 * holds fewer tokens than `--moe-min-tokens`, {@link extraSamples} makes more (convex mixes of
 * two calibration samples, deterministic).
 *
 * @module
 */

import type { GraphView, NodeView, TensorValue } from "@lowbit/core";

/** A node this module edits in place (its own copies). */
type EditableNode = {
  -readonly [K in keyof NodeView]: K extends "inputs" ? string[] : NodeView[K];
};
import type { MoEInfo, RouterInfo } from "./detect.ts";

const f32 = (data: number[]): TensorValue => ({
  dtype: "float32",
  shape: [data.length],
  data: Float32Array.from(data),
});
const i64 = (data: number[], shape = [data.length]): TensorValue => ({
  dtype: "int64",
  shape,
  data: BigInt64Array.from(data.map(BigInt)),
});
const attr = (kind: string, value: unknown) => ({ kind, value });

/**
 * Whether balanced re-routing applies to a router: sparse top-1 dispatch whose experts select
 * tokens by an `Equal(index, e)` mask (the pattern {@link balancedGraph} rewrites).
 *
 * @param r a detected router
 * @returns whether its experts can be re-routed
 *
 * @example
 * ```ts
 * import { balanceable, detectMoE } from "@lowbit/moe";
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile(new URL("../../fixtures/moe/moe_dense.onnx", import.meta.url).pathname);
 * if (balanceable(detectMoE(m.graph).routers[0])) throw new Error("dense experts see every token");
 * ```
 */
export function balanceable(r: RouterInfo): boolean {
  return r.dispatch !== "dense" && r.k === 1 && r.experts.some((e) => e.mask && e.dispatch);
}

/**
 * The calibration graph with balanced routing: every expert of a sparse router also receives
 * the `ceil(frac · batch)` tokens of highest affinity for it (ties included). Dense-dispatch
 * experts already compute every token and are left as they are.
 *
 * @param graph the (prepared) graph
 * @param info what detection found in it
 * @param frac fraction of each batch every expert receives at least (0..1)
 * @param notes receives one line per expert left as it is (its dispatch is another pattern)
 * @returns a new graph (the input is not changed)
 *
 * @example
 * ```ts
 * import { balancedGraph, detectMoE } from "@lowbit/moe";
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile(new URL("../../fixtures/moe/moe_sparse.onnx", import.meta.url).pathname);
 * const g = balancedGraph(m.graph, detectMoE(m.graph), 0.5);
 * if (!g.nodes.some((n) => n.name === "moe_bal/0/1/or")) throw new Error();
 * ```
 */
export function balancedGraph<G extends GraphView>(
  graph: G,
  info: MoEInfo,
  frac: number,
  notes?: string[],
): G {
  if (!(frac > 0)) return graph;
  const inits = new Map(graph.initializers);
  let nodes: EditableNode[] = graph.nodes.map((n) => ({ ...n, inputs: [...n.inputs] }));
  const byName = (name: string) => nodes.find((n) => n.name === name);
  info.routers.forEach((r, ri) => {
    if (!balanceable(r)) return;
    const p = `moe_bal/${ri}`;
    inits.set(`${p}/frac`, f32([frac]));
    inits.set(`${p}/minus1`, i64([-1]));
    inits.set(`${p}/axis1`, i64([1]));
    const early: EditableNode[] = [];
    const late = new Map<string, EditableNode[]>(); // inserted after the named node
    for (const e of r.experts) {
      // everything the rewrite touches must be there, or the expert is left as it is
      const gateMul = e.gateMul ? byName(e.gateMul) : undefined;
      const dispatch = e.dispatch ? byName(e.dispatch) : undefined;
      const nonzero = nodes.filter((n) => n.op === "NonZero" && n.inputs[0] === e.mask);
      const gateGather = nodes.find((n) =>
        n.op === "Gather" && n.outputs[0] === e.gate && n.inputs[0] === r.topkValues
      );
      const scatters = gateMul ? scattersFed(nodes, gateMul.outputs[0]) : [];
      if (
        !e.mask || !gateMul || !dispatch || nonzero.length !== 1 || !gateGather || !scatters.length
      ) {
        notes?.push(
          `moe: expert ${e.index} of router '${r.node}' is not re-routed (its dispatch is not ` +
            `Equal → NonZero → Gather, gate Gather of the TopK values, rows scattered back)`,
        );
        continue;
      }
      const q = `${p}/${e.index}`;
      const v = (s: string) => `${q}/${s}`;
      inits.set(v("start"), i64([e.index]));
      inits.set(v("end"), i64([e.index + 1]));
      const add = (
        to: EditableNode[],
        op: string,
        inputs: string[],
        attrs: Record<string, unknown> = {},
        name = v(`${op.toLowerCase()}${early.length + to.length}`),
      ) => {
        to.push({ name, op, domain: "", inputs, outputs: [name], attrs });
        return name;
      };
      // affinity column [B,1] and [B]
      const col = add(early, "Slice", [r.probs, v("start"), v("end"), `${p}/axis1`]);
      const flat = add(early, "Reshape", [col, `${p}/minus1`]);
      // k = ceil(frac · B), as a [1] int64
      const bf = add(early, "Cast", [add(early, "Shape", [flat])], { to: attr("int", 1) });
      const kf = add(early, "Ceil", [add(early, "Mul", [bf, `${p}/frac`])]);
      const k = add(early, "Cast", [kf], { to: attr("int", 7) });
      const topk = v("topk");
      early.push({
        name: topk,
        op: "TopK",
        domain: "",
        inputs: [flat, k],
        outputs: [`${topk}/values`, `${topk}/indices`],
        attrs: { axis: attr("int", 0), largest: attr("int", 1), sorted: attr("int", 1) },
      });
      const thr = add(early, "ReduceMin", [`${topk}/values`], { keepdims: attr("int", 0) });
      const high = add(early, "GreaterOrEqual", [flat, thr]);
      const or = add(early, "Or", [e.mask, high], {}, v("or"));
      // the dispatch selects routed-or-affine tokens, gated by their true affinity
      nonzero[0].inputs[0] = or;
      gateGather.inputs[0] = col;
      // the combine adds only naturally routed rows
      const mulOut = gateMul.outputs[0];
      const kept = v("kept");
      for (const n of nodes) n.inputs = n.inputs.map((i) => (i === mulOut ? kept : i));
      const after: EditableNode[] = [];
      const natural = add(after, "Cast", [e.mask], { to: attr("int", 1) });
      const rows = add(after, "Gather", [natural, dispatch.inputs[1]], { axis: attr("int", 0) });
      const natRows = add(after, "Unsqueeze", [rows, `${p}/axis1`]);
      add(after, "Mul", [mulOut, natRows], {}, kept);
      late.set(gateMul.name, after);
      for (const sc of scatters) sc.attrs = { ...sc.attrs, reduction: attr("string", "add") };
    }
    // new nodes: the masks' rewrite after the masks, the kept rows after each gate Mul
    const at = Math.max(
      nodes.findIndex((n) => n.name === r.topk) + 1,
      ...r.experts.map((e) => nodes.findIndex((n) => n.outputs.includes(e.mask ?? "")) + 1),
    );
    nodes = [...nodes.slice(0, at), ...early, ...nodes.slice(at)];
    nodes = nodes.flatMap((n) => [n, ...(late.get(n.name) ?? [])]);
  });
  return { ...graph, nodes, initializers: inits };
}

/** The ScatterND / ScatterElements whose updates come from `value` through shape-only ops. */
function scattersFed(nodes: readonly EditableNode[], value: string): EditableNode[] {
  const found: EditableNode[] = [];
  let frontier = [value];
  for (let h = 0; h < 4 && frontier.length; h++) {
    const next: string[] = [];
    for (const n of nodes) {
      const i = n.inputs.findIndex((x) => frontier.includes(x));
      if (i < 0) continue;
      if ((n.op === "ScatterND" || n.op === "ScatterElements") && i === 2) found.push(n);
      else if (
        ["Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity"].includes(n.op) && i === 0
      ) {
        next.push(...n.outputs);
      }
    }
    frontier = next;
  }
  return found;
}

/** A deterministic uniform generator in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * More calibration samples when the data holds fewer than needed: sample i mixes two data
 * samples, `(1 − λ)·a + λ·b` with λ in [0.25, 0.5) (seed 0, deterministic). Float inputs only;
 * integer inputs (token ids) are repeated as they are.
 *
 * @param inputs the calibration inputs (first dimension = sample)
 * @param count samples in `inputs`
 * @param extra how many samples to make
 * @returns the new samples by input name
 *
 * @example
 * ```ts
 * import { extraSamples } from "@lowbit/moe";
 * const x = { dtype: "float32", shape: [2, 1], data: Float32Array.of(0, 1) };
 * const e = extraSamples({ x }, 2, 3);
 * const v = e.x.data as Float32Array;
 * if (e.x.shape[0] !== 3 || v.some((t) => t < 0 || t > 1)) throw new Error();
 * ```
 */
export function extraSamples(
  inputs: Readonly<Record<string, TensorValue>>,
  count: number,
  extra: number,
): Record<string, TensorValue> {
  const r = rng(0);
  const pairs = Array.from({ length: extra }, () => {
    const a = Math.floor(r() * count), b = Math.floor(r() * count);
    return [a, b, 0.25 + 0.25 * r()] as const;
  });
  const out: Record<string, TensorValue> = {};
  for (const [name, t] of Object.entries(inputs)) {
    const per = t.data.length / t.shape[0];
    const float = t.dtype === "float32";
    const src = t.data as ArrayLike<number>;
    const data = float
      ? new Float32Array(extra * per)
      : new (t.data.constructor as any)(extra * per);
    pairs.forEach(([a, b, l], i) => {
      for (let j = 0; j < per; j++) {
        data[i * per + j] = float
          ? (1 - l) * src[a * per + j] + l * src[b * per + j]
          : (t.data as any)[a * per + j];
      }
    });
    out[name] = { dtype: t.dtype, shape: [extra, ...t.shape.slice(1)], data };
  }
  return out;
}
