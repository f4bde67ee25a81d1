/**
 * BatchNormalization folding into a preceding Conv, ConvTranspose or Gemm.
 *
 * @module
 */

import type { Graph, Node, TensorData } from "../ir.ts";
import { toFloat32 } from "../tensor_data.ts";
import { attrInt } from "./_const_eval.ts";
import { implicitInputs } from "./topo.ts";

/**
 * Folds each inference-mode BatchNormalization whose input comes from a Conv,
 * ConvTranspose or Gemm (read by nothing else) into that node's weight and
 * bias: `W' = W·s`, `b' = (b − mean)·s + β` with `s = γ / √(var + ε)` per output
 * channel. Weights, bias and BN parameters must be float32 initializers (run
 * {@link foldConstants} first to turn Constant nodes into initializers). The
 * folded weights get new names (`<W>_bnfold`), so shared weights stay intact;
 * the producer takes over the BN's output name.
 *
 * @param graph the graph (not modified)
 * @returns a new graph
 *
 * @example
 * ```ts
 * import { foldBatchNorm, type Graph } from "@lowbit/graph";
 * const t = (v: number[]) => ({ dtype: "float32" as const, shape: [v.length], data: Float32Array.from(v) });
 * const g: Graph = { name: "g", valueInfo: new Map(),
 *   initializers: new Map([
 *     ["w", { dtype: "float32", shape: [1, 1, 1, 1], data: new Float32Array([2]) }],
 *     ["gamma", t([3])], ["beta", t([1])], ["mean", t([0.5])], ["var", t([1])],
 *   ]),
 *   inputs: [{ name: "x", dtype: "float32", shape: [1, 1, 4, 4] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [
 *     { name: "conv", op: "Conv", domain: "", inputs: ["x", "w"], outputs: ["c"], attrs: {} },
 *     { name: "bn", op: "BatchNormalization", domain: "", inputs: ["c", "gamma", "beta", "mean", "var"],
 *       outputs: ["y"], attrs: { epsilon: { kind: "float", value: 0 } } },
 *   ] };
 * const f = foldBatchNorm(g);
 * if (f.nodes.length !== 1 || f.initializers.get("w_bnfold")?.data[0] !== 6) throw new Error();
 * ```
 */
export function foldBatchNorm(graph: Graph): Graph {
  const producer = new Map<string, Node>();
  const readers = new Map<string, number>();
  for (const n of graph.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of [...n.inputs, ...implicitInputs(n)]) readers.set(i, (readers.get(i) ?? 0) + 1);
  }
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const inits = new Map(graph.initializers);
  const f32 = (name: string | undefined): Float32Array | undefined => {
    const t = name ? inits.get(name) : undefined;
    return t?.dtype === "float32" ? (t.data as Float32Array) : undefined;
  };
  const replaced = new Map<Node, Node>();
  const removed = new Set<Node>();
  for (const bn of graph.nodes) {
    if (bn.op !== "BatchNormalization" || bn.domain !== "") continue;
    if (bn.outputs.slice(1).some((o) => o !== "")) continue; // training mode
    if (attrInt(bn, "training_mode", 0)) continue;
    const x = bn.inputs[0];
    const p = producer.get(x);
    if (!p || replaced.has(p) || removed.has(p) || readers.get(x) !== 1 || outputs.has(x)) continue;
    if (!["Conv", "ConvTranspose", "Gemm"].includes(p.op) || p.domain !== "") continue;
    const [gamma, beta, mean, vari] = bn.inputs.slice(1, 5).map(f32);
    const w = f32(p.inputs[1]), wt = inits.get(p.inputs[1]);
    if (!gamma || !beta || !mean || !vari || !w || !wt) continue;
    const eps = bn.attrs.epsilon?.kind === "float" ? bn.attrs.epsilon.value : 1e-5;
    const m = gamma.length;
    if (beta.length !== m || mean.length !== m || vari.length !== m) continue;
    const s = new Float32Array(m);
    for (let c = 0; c < m; c++) s[c] = gamma[c] / Math.sqrt(vari[c] + eps);
    // channel(i): the output channel the i-th weight element feeds.
    let channel: (i: number) => number;
    let bias: Float32Array | undefined;
    const biasName = p.inputs[2] || undefined;
    const bt = biasName ? inits.get(biasName) : undefined;
    if (biasName && (!bt || bt.dtype !== "float32")) continue;
    if (p.op === "Conv") {
      if (wt.shape[0] !== m) continue;
      const per = w.length / m;
      channel = (i) => Math.floor(i / per);
      if (bt && bt.data.length !== m) continue;
      bias = bt ? Float32Array.from(bt.data as Float32Array) : new Float32Array(m);
    } else if (p.op === "ConvTranspose") {
      const g = attrInt(p, "group", 1);
      const [cin, mg] = wt.shape;
      if (mg * g !== m) continue;
      const k = w.length / (cin * mg);
      const cpg = cin / g;
      channel = (i) => {
        const c = Math.floor(i / (mg * k)), j = Math.floor(i / k) % mg;
        return Math.floor(c / cpg) * mg + j;
      };
      if (bt && bt.data.length !== m) continue;
      bias = bt ? Float32Array.from(bt.data as Float32Array) : new Float32Array(m);
    } else {
      if (wt.shape.length !== 2) continue;
      const tb = attrInt(p, "transB", 0);
      const n = tb ? wt.shape[0] : wt.shape[1];
      if (n !== m) continue;
      channel = tb ? (i) => Math.floor(i / wt.shape[1]) : (i) => i % m;
      const beta0 = p.attrs.beta?.kind === "float" ? p.attrs.beta.value : 1;
      if (bt) {
        const ok = bt.data.length === m && (bt.shape.length === 1 || bt.shape[0] === 1);
        if (!ok) continue;
        bias = Float32Array.from(toFloat32(bt), (v) => v * beta0);
      } else bias = new Float32Array(m);
    }
    const nw = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) nw[i] = w[i] * s[channel(i)];
    const nb = new Float32Array(m);
    for (let c = 0; c < m; c++) nb[c] = (bias![c] - mean[c]) * s[c] + beta[c];
    const wName = fresh(`${p.inputs[1]}_bnfold`, inits);
    inits.set(wName, { dtype: "float32", shape: [...wt.shape], data: nw });
    const bName = fresh(`${biasName ?? p.name + "_bias"}_bnfold`, inits);
    const bShape = p.op === "Gemm" && bt ? [...bt.shape] : [m];
    inits.set(bName, { dtype: "float32", shape: bShape, data: nb } as TensorData);
    const attrs = { ...p.attrs };
    if (p.op === "Gemm") attrs.beta = { kind: "float", value: 1 };
    replaced.set(p, {
      ...p,
      inputs: [p.inputs[0], wName, bName],
      outputs: [bn.outputs[0], ...p.outputs.slice(1)],
      attrs,
    });
    removed.add(bn);
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  const used = new Set<string>(graph.outputs.map((o) => o.name));
  for (const n of nodes) for (const i of [...n.inputs, ...implicitInputs(n)]) used.add(i);
  const touched = [...removed, ...replaced.keys()].flatMap((n) => n.inputs);
  for (const k of touched) if (!used.has(k)) inits.delete(k);
  const valueInfo = new Map(graph.valueInfo);
  for (const bn of removed) valueInfo.delete(bn.inputs[0]);
  return { ...graph, nodes, initializers: inits, valueInfo };
}

function fresh(base: string, taken: Map<string, unknown>): string {
  let name = base;
  for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
  return name;
}
