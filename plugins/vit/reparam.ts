/**
 * RepQ-ViT's scale reparameterisation of post-LayerNorm activations (Li et al., ICCV 2023).
 *
 * A LayerNorm output has very different ranges per channel, which one 4-bit scale per tensor
 * serves badly; a per-channel scale serves them well but the Linear layer that reads the value
 * cannot take it. RepQ-ViT quantizes per channel in thought and folds the difference into the
 * graph: with each channel c's calibrated range [min_c, max_c], its per-channel step δ_c ∝
 * max_c − min_c and the per-tensor target δ̃ = mean(δ), let r_c = δ_c / δ̃ and
 * b_c = min_c / r_c − m̃ (m̃ the mean of min_c / r_c). Then
 *
 * - the LayerNorm's affine becomes γ'_c = γ_c / r_c, β'_c = β_c / r_c − b_c, so its output is
 *   x'_c = x_c / r_c − b_c: every channel now spans the same range [m̃, m̃ + mean(max − min)];
 * - each Linear reading it gets W'[c, :] = r_c · W[c, :] and bias' = bias + Σ_c W'[c, :] · b_c,
 *   so W'·x' + bias' = W·x + bias: the float model computes the same function.
 *
 * Quantizing x' per tensor (scale δ̃, zero point m̃ / δ̃) is exactly quantizing x per channel.
 * Applied where every reader of the LayerNorm output is a MatMul (the value on the left, a
 * constant [C, N] weight on the right, followed by an Add of a constant [N] bias) or a Gemm
 * (transA = 0, constant B and C), other than `Shape`; γ, β, the weights and biases must be
 * initializers read by nothing else. Other LayerNorms are left as they are.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { createExecutor, type Graph, type Node, type TensorData } from "@lowbit/graph";
import { type PlanEntry, type QuantizeState, sliceBatch } from "@lowbit/pipeline";

/** One LayerNorm output's reparameterisation. */
export interface LayerNormReparam {
  /** The LayerNorm output (the value quantized). */
  readonly value: string;
  /** Per-channel factors r_c (the channel's range over the mean range). */
  readonly r: Float32Array;
  /** Per-channel shifts b_c. */
  readonly b: Float32Array;
}

/** Where a LayerNorm output's γ, β and readers are, when it can be reparameterised. */
export interface ReparamSite {
  /** The LayerNorm output. */
  readonly value: string;
  /** Initializer of γ ([C]). */
  readonly gamma: string;
  /** Initializer of β ([C]). */
  readonly beta: string;
  /** Readers: the weight initializer, whether it is [N, C] (a Gemm with transB), the bias. */
  readonly readers: readonly { weight: string; transposed: boolean; bias: string }[];
}

function consumersOf(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!i) continue;
      if (!m.has(i)) m.set(i, []);
      m.get(i)!.push(n);
    }
  }
  return m;
}

const attrInt = (n: Node, name: string): number =>
  Number((n.attrs[name] as { value?: unknown } | undefined)?.value ?? 0);

/**
 * Where the LayerNorm output `value` can be reparameterised (see the module doc), or undefined.
 *
 * @param g the graph
 * @param value a LayerNorm output: of a `LayerNormalization` node, or the `Add β` ending a
 *   decomposed one (`Mul γ` then `Add β`)
 * @returns the site, or undefined when the pattern does not hold
 *
 * @example
 * ```ts
 * import { reparamSite } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const t = (n: number) => ({ dtype: "float32" as const, shape: [n], data: new Float32Array(n) });
 * const g = { name: "g", inputs: [], outputs: [], valueInfo: new Map(), initializers: new Map([
 *   ["g", t(2)], ["b", t(2)], ["w", { dtype: "float32" as const, shape: [2, 3], data: new Float32Array(6) }], ["c", t(3)]]),
 *   nodes: [
 *   { name: "ln", op: "LayerNormalization", domain: "", inputs: ["x", "g", "b"], outputs: ["y"], attrs: {} },
 *   { name: "mm", op: "MatMul", domain: "", inputs: ["y", "w"], outputs: ["z"], attrs: {} },
 *   { name: "add", op: "Add", domain: "", inputs: ["z", "c"], outputs: ["o"], attrs: {} }] };
 * assert.deepEqual(reparamSite(g, "y")?.readers, [{ weight: "w", transposed: false, bias: "c" }]);
 * ```
 */
export function reparamSite(g: Graph, value: string): ReparamSite | undefined {
  const cons = consumersOf(g);
  const producer = g.nodes.find((n) => n.outputs.includes(value));
  if (!producer) return undefined;
  const init = g.initializers;
  const isInit = (v: string | undefined): v is string => v !== undefined && init.has(v);
  let gamma: string | undefined, beta: string | undefined;
  if (producer.op === "LayerNormalization") {
    gamma = producer.inputs[1];
    beta = producer.inputs[2];
    // only the last axis normalised (the default, −1)
    if (producer.attrs.axis !== undefined && attrInt(producer, "axis") !== -1) return undefined;
  } else if (producer.op === "Add") {
    beta = producer.inputs.find(isInit);
    const from = producer.inputs.find((v) => v !== beta);
    const mul = g.nodes.find((n) => n.outputs.includes(from ?? ""));
    if (mul?.op !== "Mul" || (cons.get(mul.outputs[0]) ?? []).length !== 1) return undefined;
    gamma = mul.inputs.find(isInit);
  }
  if (!isInit(gamma) || !isInit(beta)) return undefined;
  const C = init.get(gamma)!.data.length;
  if (init.get(beta)!.data.length !== C) return undefined;
  // γ and β read by this LayerNorm only
  for (const p of [gamma, beta]) if ((cons.get(p) ?? []).length !== 1) return undefined;
  const readers: { weight: string; transposed: boolean; bias: string }[] = [];
  for (const n of cons.get(value) ?? []) {
    if (n.op === "Shape") continue;
    if (n.inputs[0] !== value || n.inputs.indexOf(value, 1) >= 0) return undefined;
    const w = n.inputs[1];
    if (!isInit(w) || (cons.get(w) ?? []).length !== 1) return undefined;
    const ws = init.get(w)!.shape;
    if (n.op === "MatMul") {
      if (ws.length !== 2 || ws[0] !== C) return undefined;
      const adds = cons.get(n.outputs[0]) ?? [];
      if (adds.length !== 1 || adds[0].op !== "Add") return undefined;
      const bias = adds[0].inputs.find((v) => v !== n.outputs[0]);
      if (!isInit(bias) || (cons.get(bias) ?? []).length !== 1) return undefined;
      if (init.get(bias)!.data.length !== ws[1]) return undefined;
      readers.push({ weight: w, transposed: false, bias });
    } else if (n.op === "Gemm") {
      if (attrInt(n, "transA") !== 0 || ws.length !== 2) return undefined;
      const transposed = attrInt(n, "transB") === 1;
      if ((transposed ? ws[1] : ws[0]) !== C) return undefined;
      const N = transposed ? ws[0] : ws[1];
      const bias = n.inputs[2];
      if (!isInit(bias) || (cons.get(bias) ?? []).length !== 1) return undefined;
      if (init.get(bias)!.data.length !== N) return undefined;
      const alpha = n.attrs.alpha as { value?: unknown } | undefined;
      const beta2 = n.attrs.beta as { value?: unknown } | undefined;
      if (Number(alpha?.value ?? 1) !== 1 || Number(beta2?.value ?? 1) !== 1) return undefined;
      readers.push({ weight: w, transposed, bias });
    } else return undefined;
  }
  if (readers.length === 0) return undefined;
  return { value, gamma, beta, readers };
}

/**
 * The factors of one LayerNorm output from its per-channel calibrated range (see the module
 * doc). A channel whose range is below 10⁻⁶ of the widest keeps that floor.
 *
 * @param value the LayerNorm output
 * @param min per-channel minima
 * @param max per-channel maxima
 * @returns r_c and b_c
 *
 * @example
 * ```ts
 * import { reparamFactors } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * // ranges 1 and 3 (mean 2): r = ½, 3⁄2; min / r = −2, 0 (mean −1): b = −1, 1
 * const f = reparamFactors("y", Float32Array.of(-1, 0), Float32Array.of(0, 3));
 * assert.deepEqual([...f.r], [0.5, 1.5]);
 * assert.deepEqual([...f.b], [-1, 1]);
 * ```
 */
export function reparamFactors(
  value: string,
  min: Float32Array,
  max: Float32Array,
): LayerNormReparam {
  const C = min.length;
  const range = Array.from({ length: C }, (_, c) => Math.max(max[c] - min[c], 0));
  const floor = Math.max(...range) * 1e-6 || 1;
  for (let c = 0; c < C; c++) range[c] = Math.max(range[c], floor);
  const mean = range.reduce((s, v) => s + v, 0) / C;
  const r = Float32Array.from(range, (v) => v / mean);
  const lo = Array.from({ length: C }, (_, c) => min[c] / r[c]);
  const target = lo.reduce((s, v) => s + v, 0) / C;
  const b = Float32Array.from(lo, (v) => v - target);
  return { value, r, b };
}

/**
 * Folds one reparameterisation into the graph's initializers (in place): γ / r, β / r − b,
 * each reader's weight rows (input channels) times r, its bias plus W'ᵀ·b.
 *
 * @param g the graph (its initializers are replaced)
 * @param site where the LayerNorm's parameters and readers are ({@link reparamSite})
 * @param f the factors ({@link reparamFactors})
 * @returns nothing
 *
 * @example
 * ```ts
 * import { applyReparam, reparamSite } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const f32 = (shape: number[], ...v: number[]) => ({ dtype: "float32" as const, shape, data: Float32Array.from(v) });
 * const g = { name: "g", inputs: [], outputs: [], valueInfo: new Map(), initializers: new Map([
 *   ["g", f32([2], 1, 1)], ["b", f32([2], 0, 0)], ["w", f32([2, 1], 1, 1)], ["c", f32([1], 0)]]),
 *   nodes: [
 *   { name: "ln", op: "LayerNormalization", domain: "", inputs: ["x", "g", "b"], outputs: ["y"], attrs: {} },
 *   { name: "mm", op: "MatMul", domain: "", inputs: ["y", "w"], outputs: ["z"], attrs: {} },
 *   { name: "add", op: "Add", domain: "", inputs: ["z", "c"], outputs: ["o"], attrs: {} }] };
 * applyReparam(g, reparamSite(g, "y")!, { value: "y", r: Float32Array.of(0.5, 1.5), b: Float32Array.of(-1, 1) });
 * assert.deepEqual([...g.initializers.get("g")!.data], [2, Math.fround(2 / 3)]);
 * assert.deepEqual([...g.initializers.get("w")!.data], [0.5, 1.5]);
 * assert.deepEqual([...g.initializers.get("c")!.data], [1]); // 0.5 · −1 + 1.5 · 1
 * ```
 */
export function applyReparam(g: Graph, site: ReparamSite, f: LayerNormReparam): void {
  const init = g.initializers;
  const set = (name: string, data: Float32Array) => {
    const t = init.get(name)! as TensorData;
    init.set(name, { ...t, data });
  };
  const gam = init.get(site.gamma)!.data as Float32Array;
  const bet = init.get(site.beta)!.data as Float32Array;
  const C = f.r.length;
  set(site.gamma, Float32Array.from(gam, (v, c) => v / f.r[c]));
  set(site.beta, Float32Array.from(bet, (v, c) => v / f.r[c] - f.b[c]));
  for (const rd of site.readers) {
    const wt = init.get(rd.weight)!;
    const w = wt.data as Float32Array;
    const N = w.length / C;
    // element (c, j) of the [C, N] view
    const at = (c: number, j: number) => rd.transposed ? j * C + c : c * N + j;
    const w2 = new Float32Array(w.length);
    for (let c = 0; c < C; c++) for (let j = 0; j < N; j++) w2[at(c, j)] = w[at(c, j)] * f.r[c];
    const bias = Float64Array.from(init.get(rd.bias)!.data as Float32Array);
    for (let c = 0; c < C; c++) {
      if (f.b[c] === 0) continue;
      for (let j = 0; j < N; j++) bias[j] += w2[at(c, j)] * f.b[c];
    }
    set(rd.weight, w2);
    set(rd.bias, Float32Array.from(bias));
  }
}

/** Calibration samples per batch of the reparameterisation's range pass. */
const BATCH = 32;

/**
 * The plugin's `vit-reparam` stage (before `calibrate`): every LayerNorm output the plugin marked
 * and quantizes statically in an integer format, where {@link reparamSite} finds the pattern, is
 * reparameterised from its per-channel range on the calibration data (all samples, in batches of
 * 32), so that the calibration that follows sees the reparameterised model. The points keep
 * their entries; their notes say so.
 *
 * @param st the pipeline's state (its model is changed in place)
 * @returns the reparameterisations applied
 *
 * @example
 * ```ts
 * import { reparamStage } from "./reparam.ts";
 * import assert from "node:assert/strict";
 * // no LayerNorm point: nothing to do
 * const st = { entries: [], warnings: [], opts: {}, model: { graph: { nodes: [] } } } as never;
 * assert.deepEqual(await reparamStage(st), []);
 * ```
 */
export async function reparamStage(st: QuantizeState): Promise<LayerNormReparam[]> {
  const g = st.model.graph;
  const todo: { entry: PlanEntry; site: ReparamSite }[] = [];
  for (const e of st.entries) {
    if (e.by !== "vit-layernorm" || e.role !== "activation" || e.skip || e.dynamic) continue;
    if (!e.format || st.registry.formats.get(e.format).family !== "int") continue;
    const site = reparamSite(g, e.value);
    if (site) todo.push({ entry: e, site });
  }
  if (todo.length === 0) return [];
  const calib = st.opts.calib;
  if (!calib) {
    // also when a plan is replayed: the factors are not in the plan, they are recomputed (the
    // same from the same data), as GPTQ's Hessians are
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the vit plugin reparameterises LayerNorm outputs from calibration data; pass --calib " +
        "(the same data to replay a plan), or --vit-layernorm tensor",
      { tensor: todo[0].site.value },
    );
  }
  const C = new Map(
    todo.map(({ site }) => [site.value, g.initializers.get(site.gamma)!.data.length]),
  );
  const min = new Map([...C].map(([v, c]) => [v, new Float32Array(c).fill(Infinity)]));
  const max = new Map([...C].map(([v, c]) => [v, new Float32Array(c).fill(-Infinity)]));
  const exec = createExecutor(st.model, { registry: st.registry });
  for (let s = 0; s < calib.count; s += BATCH) {
    await exec.run(sliceBatch(calib, s, Math.min(calib.count, s + BATCH)), {
      watch: C.keys(),
      observe: (name, t) => {
        const lo = min.get(name), hi = max.get(name);
        if (!lo || !hi) return;
        const d = t.data as Float32Array, n = lo.length;
        for (let i = 0; i < d.length; i++) {
          const c = i % n, v = d[i];
          if (v < lo[c]) lo[c] = v;
          if (v > hi[c]) hi[c] = v;
        }
      },
    });
  }
  const out: LayerNormReparam[] = [];
  for (const { entry, site } of todo) {
    const lo = min.get(site.value)!, hi = max.get(site.value)!;
    if (![...lo, ...hi].every(Number.isFinite)) continue;
    const f = reparamFactors(site.value, lo, hi);
    applyReparam(g, site, f);
    // (a replayed plan's entry says so already)
    if (!/reparameterised/.test(entry.note ?? "")) {
      entry.note = `${entry.note ?? "LayerNorm output"} (RepQ-ViT reparameterised: ` +
        `per-channel ranges folded into its affine and ${site.readers.length} reader(s))`;
    }
    out.push(f);
  }
  return out;
}
