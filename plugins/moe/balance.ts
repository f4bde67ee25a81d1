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
export function balancedGraph<G extends GraphView>(graph: G, info: MoEInfo, frac: number): G {
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
    const shared: EditableNode[] = [];
    for (const e of r.experts) {
      const gateMul = e.gateMul && byName(e.gateMul);
      const dispatch = e.dispatch && byName(e.dispatch);
      if (!e.mask || !gateMul || !dispatch || !e.gate) continue;
      const q = `${p}/${e.index}`;
      const v = (s: string) => `${q}/${s}`;
      inits.set(v("start"), i64([e.index]));
      inits.set(v("end"), i64([e.index + 1]));
      const add = (op: string, inputs: string[], attrs: Record<string, unknown> = {}) => {
        const name = v(`${op.toLowerCase()}${shared.length}`);
        shared.push({ name, op, domain: "", inputs, outputs: [name], attrs });
        return name;
      };
      // affinity column [B,1] and [B]
      const col = add("Slice", [r.probs, v("start"), v("end"), `${p}/axis1`]);
      const flat = add("Reshape", [col, `${p}/minus1`]);
      // k = ceil(frac · B), as a [1] int64
      const b = add("Shape", [flat]);
      const bf = add("Cast", [b], { to: attr("int", 1) });
      const kf = add("Ceil", [add("Mul", [bf, `${p}/frac`])]);
      const k = add("Cast", [kf], { to: attr("int", 7) });
      const topk = v("topk");
      shared.push({
        name: topk,
        op: "TopK",
        domain: "",
        inputs: [flat, k],
        outputs: [`${topk}/values`, `${topk}/indices`],
        attrs: { axis: attr("int", 0), largest: attr("int", 1), sorted: attr("int", 1) },
      });
      const thr = add("ReduceMin", [`${topk}/values`], { keepdims: attr("int", 0) });
      const high = add("GreaterOrEqual", [flat, thr]);
      const or = v("or");
      shared.push({
        name: or,
        op: "Or",
        domain: "",
        inputs: [e.mask, high],
        outputs: [or],
        attrs: {},
      });
      // the dispatch selects routed-or-affine tokens
      for (const n of nodes) {
        if (n.op === "NonZero" && n.inputs[0] === e.mask) n.inputs[0] = or;
      }
      // their gate is their true affinity for this expert
      const gateGather = nodes.find((n) => n.outputs[0] === e.gate && n.op === "Gather");
      if (gateGather) gateGather.inputs[0] = col;
      // the combine adds only naturally routed rows
      const sel = dispatch.inputs[1];
      const natural = add("Cast", [e.mask], { to: attr("int", 1) });
      const natRows = add("Unsqueeze", [
        add("Gather", [natural, sel], { axis: attr("int", 0) }),
        `${p}/axis1`,
      ]);
      const kept = v("kept");
      const mulOut = gateMul.outputs[0];
      for (const n of nodes) n.inputs = n.inputs.map((i) => (i === mulOut ? kept : i));
      shared.push({
        name: kept,
        op: "Mul",
        domain: "",
        inputs: [mulOut, natRows],
        outputs: [kept],
        attrs: {},
      });
      // ScatterND / ScatterElements fed (through reshapes) by these rows accumulate
      let frontier = [kept];
      for (let h = 0; h < 4; h++) {
        const next: string[] = [];
        for (const n of nodes) {
          if (!n.inputs.some((i) => frontier.includes(i))) continue;
          if (n.op === "ScatterND" || n.op === "ScatterElements") {
            n.attrs = { ...n.attrs, reduction: attr("string", "add") };
          } else next.push(...n.outputs);
        }
        frontier = next;
      }
    }
    // new nodes go right after the router's TopK (they read its probabilities)
    const at = nodes.findIndex((n) => n.name === r.topk) + 1;
    const maskAt = Math.max(
      at,
      ...r.experts.map((e) => nodes.findIndex((n) => n.outputs.includes(e.mask ?? "")) + 1),
    );
    nodes = [...nodes.slice(0, maskAt), ...shared, ...nodes.slice(maskAt)];
  });
  return { ...graph, nodes, initializers: inits };
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
