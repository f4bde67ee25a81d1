/**
 * The plugin's fitting stage (after `calibrate`): it runs the float model on a few calibration
 * samples, watching each point the plugin fits and the other operand of the layer that reads
 * it, and chooses each point's parameters to minimise the error of that layer's output — the
 * attention output P·V for a Softmax point (as AdaLog does), the next Linear layer's output for
 * a GELU point:
 *
 * - `adalog`: the base, among 2^(1/r), r = 1, 1.25, …, 4 (float32, as the plan keeps it);
 * - `twin-uniform`: unsigned, Δ1 = Δ2 / 2^m, m = 0…10 (PTQ4ViT's power-of-two ratio); signed,
 *   the positive step Δ2 clipped by 1, 0.9, …, 0.3;
 * - `uniform` points the plugin marked (attention operands, LayerNorm outputs, `--vit-softmax
 *   uniform`) and `noisy-uniform` points: the range clipped by 1, 0.95, 0.9, 0.8, …, 0.4;
 * - GELU points with `--vit-gelu auto`: the best of twin-uniform, adalog and uniform;
 * - with `--noisy-bias`: the noisy bias' width, 0, ½, 1, 1½ or 2 quantization steps (NoisyQuant
 *   searches it per layer), seeded per point.
 *
 * It writes `scale`, `zeroPoint` and `extra` into the plan entries; the built-in activation
 * fitting then leaves them alone.
 *
 * @module
 */

import { LowbitError, type QParams, type Quantizer, type Range } from "@lowbit/core";
import { createExecutor, type Graph, type Node } from "@lowbit/graph";
import { activationKey, type PlanEntry, type QuantizeState, sliceBatch } from "@lowbit/pipeline";

/** The quantizers this stage fits. */
export const FITTED: ReadonlySet<string> = new Set([
  "log2",
  "logsqrt2",
  "adalog",
  "twin-uniform",
  "noisy-uniform",
]);

/** Calibration samples the stage runs (at most). */
export const FIT_SAMPLES = 32;

/** A tensor the fit stage captured (or a constant operand). */
export interface Captured {
  /** Dimensions. */
  shape: number[];
  /** Values, row-major. */
  data: Float32Array;
}

/** How a point's error is measured: through each layer that reads it. */
interface Reader {
  /** The other operand ([K, N] constant or captured run-time value). */
  other: Captured;
  /** Whether the point is the left operand. */
  left: boolean;
}

/**
 * Σ over batches of ‖A·B‖² for A [..., M, K] and B [..., K, N] (leading dims equal, or one side
 * 2-D), in float64.
 *
 * @param a left operand
 * @param b right operand
 * @returns the squared Frobenius norm of the product
 *
 * @example
 * ```ts
 * import { productSquaredNorm } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * // [1 2] · [[3], [4]] = 11
 * assert.equal(productSquaredNorm({ shape: [1, 2], data: Float32Array.of(1, 2) },
 *   { shape: [2, 1], data: Float32Array.of(3, 4) }), 121);
 * ```
 */
export function productSquaredNorm(a: Captured, b: Captured): number {
  const ar = a.shape.length, br = b.shape.length;
  const M = a.shape[ar - 2] ?? 1, K = a.shape[ar - 1], N = b.shape[br - 1];
  if ((b.shape[br - 2] ?? 1) !== K) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `cannot multiply [${a.shape}] by [${b.shape}]`,
    );
  }
  const ba = a.data.length / (M * K), bb = b.data.length / (K * N);
  const batches = Math.max(ba, bb);
  if (ba !== bb && ba !== 1 && bb !== 1) {
    throw new LowbitError("SHAPE_MISMATCH", `batch dims of [${a.shape}] and [${b.shape}] differ`);
  }
  let s = 0;
  const row = new Float64Array(N);
  for (let t = 0; t < batches; t++) {
    const ao = (ba === 1 ? 0 : t) * M * K, bo = (bb === 1 ? 0 : t) * K * N;
    for (let i = 0; i < M; i++) {
      row.fill(0);
      for (let k = 0; k < K; k++) {
        const v = a.data[ao + i * K + k];
        if (v === 0) continue;
        const bk = bo + k * N;
        for (let j = 0; j < N; j++) row[j] += v * b.data[bk + j];
      }
      for (let j = 0; j < N; j++) s += row[j] * row[j];
    }
  }
  return s;
}

/** Layers reading `value`: MatMul (either side) and Gemm (A side), with their other operand. */
function readersOf(
  g: Graph,
  value: string,
  captured: Map<string, Captured>,
): Reader[] {
  const out: Reader[] = [];
  for (const n of g.nodes) {
    if (n.op !== "MatMul" && n.op !== "Gemm") continue;
    const side = n.inputs.indexOf(value);
    if (side < 0 || side > 1 || (n.op === "Gemm" && side !== 0)) continue;
    const o = n.inputs[1 - side];
    const init = g.initializers.get(o);
    if (init) {
      let data = init.data as Float32Array, shape = [...init.shape];
      if (n.op === "Gemm" && transB(n)) {
        const [r, c] = shape;
        data = Float32Array.from({ length: r * c }, (_, i) => data[(i % r) * c + ((i / r) | 0)]);
        shape = [c, r];
      }
      out.push({ other: { shape, data }, left: side === 0 });
    } else if (captured.has(o)) out.push({ other: captured.get(o)!, left: side === 0 });
  }
  return out;
}

function transB(n: Node): boolean {
  const a = n.attrs.transB as { value?: unknown } | undefined;
  return Number(a?.value ?? 0) === 1;
}

/** Error of a fake-quantized point: Σ ‖ΔX · B‖² over its readers, or ‖ΔX‖² without readers. */
function errorOf(x: Captured, y: Float32Array, readers: Reader[]): number {
  const d = new Float32Array(y.length);
  for (let i = 0; i < d.length; i++) d[i] = y[i] - x.data[i];
  const delta = { shape: x.shape, data: d };
  if (readers.length === 0) return d.reduce((s, v) => s + v * v, 0);
  let s = 0;
  for (const r of readers) {
    s += r.left ? productSquaredNorm(delta, r.other) : productSquaredNorm(r.other, delta);
  }
  return s;
}

/** Clipping factors of the calibrated range that uniform points try. */
const CLIP = [1, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4];

/** Candidate parameter sets of one quantizer, starting from its fit on the calibrated range. */
function candidates(
  name: string,
  q: Quantizer,
  range: Range,
  fitOpts: Parameters<Quantizer["fit"]>[1],
): QParams[] {
  if (name === "uniform" || name === "noisy-uniform") {
    return CLIP.map((f) =>
      q.fit({
        min: Float32Array.of(Math.fround(range.min[0] * f)),
        max: Float32Array.of(Math.fround(range.max[0] * f)),
      }, fitOpts)
    );
  }
  const qp = q.fit(range, fitOpts);
  const ex = qp.extra ?? {};
  if (name === "adalog") {
    return Array.from({ length: 13 }, (_, i) => ({
      ...qp,
      extra: { ...ex, base: [Math.fround(2 ** (1 / (1 + i / 4)))] },
    }));
  }
  if (name === "twin-uniform" && !ex.signed?.[0]) {
    return Array.from({ length: 11 }, (_, m) => ({
      ...qp,
      extra: { ...ex, d1: [Math.fround(qp.scale[0] / 2 ** m)] },
    }));
  }
  if (name === "twin-uniform") {
    return Array.from({ length: 8 }, (_, i) => ({
      ...qp,
      scale: Float32Array.of(Math.fround(qp.scale[0] * (1 - i / 10))),
    }));
  }
  return [qp];
}

/** What the stage needs of the plugin's options. */
export interface VitFitOptions {
  /** `--vit-gelu`: "auto" chooses per point. */
  readonly gelu: string;
  /** `--noisy-bias`. */
  readonly noisy: boolean;
}

/**
 * Fits the plugin's points of a quantize state (see the module doc).
 *
 * @param st the pipeline's state after `calibrate`
 * @param opts the plugin's options
 * @returns nothing; the entries are fitted in place
 *
 * @example
 * ```ts
 * import { fitVitPoints } from "./fit_stage.ts";
 * import assert from "node:assert/strict";
 * // nothing to fit: the state is left alone
 * const st = { entries: [], warnings: [] } as never;
 * await fitVitPoints(st, { gelu: "auto", noisy: false });
 * assert.deepEqual((st as { entries: [] }).entries, []);
 * ```
 */
export async function fitVitPoints(st: QuantizeState, opts: VitFitOptions): Promise<void> {
  const mine = st.entries.filter((e) =>
    e.role === "activation" && !e.skip && !e.dynamic && !e.scale &&
    (FITTED.has(e.quantizer ?? "") || (e.by === "vit-gelu" && opts.gelu === "auto") ||
      (e.quantizer === "uniform" && e.by?.startsWith("vit-")))
  );
  if (mine.length === 0) return;
  const calib = st.opts.calib;
  if (!calib) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the vit plugin fits its quantizers on calibration data; pass --calib",
      { tensor: mine[0].value },
    );
  }
  const g = st.model.graph;
  const watch = new Set<string>();
  for (const e of mine) {
    watch.add(e.value);
    for (const n of g.nodes) {
      if (n.op === "MatMul" && n.inputs.includes(e.value)) n.inputs.forEach((v) => watch.add(v));
    }
  }
  const captured = new Map<string, Captured>();
  const inputs = sliceBatch(calib, 0, Math.min(calib.count, FIT_SAMPLES));
  await createExecutor(st.model, { registry: st.registry }).run(inputs, {
    watch,
    observe: (name, t) => {
      if (!captured.has(name)) {
        captured.set(name, {
          shape: [...t.shape],
          data: Float32Array.from(t.data as Float32Array),
        });
      }
    },
  });
  mine.forEach((e, i) => fitEntry(st, e, i, opts, captured));
}

function fitEntry(
  st: QuantizeState,
  e: PlanEntry,
  index: number,
  opts: VitFitOptions,
  captured: Map<string, Captured>,
): void {
  const range = st.stats?.ranges.get(activationKey(e));
  const x = captured.get(e.value);
  if (!range || !x) {
    throw new LowbitError("INTERNAL", "the vit plugin found no calibration data for this point", {
      node: e.node,
      tensor: e.value,
    });
  }
  const readers = readersOf(st.model.graph, e.value, captured);
  const fitOpts = { format: e.format!, granularity: e.granularity!, mode: e.mode! };
  const fmt = st.registry.formats.get(e.format!);
  const names = e.by === "vit-gelu" && opts.gelu === "auto"
    ? ["twin-uniform", "adalog", "uniform"].filter((n) =>
      st.registry.quantizers.get(n).supports(fmt)
    )
    : [e.quantizer!];
  let best: { q: string; qp: QParams; err: number } | undefined;
  for (const name of names) {
    const q: Quantizer = st.registry.quantizers.get(name);
    for (let qp of candidates(name, q, range, fitOpts)) {
      if (opts.noisy && (name === "twin-uniform" || name === "noisy-uniform")) {
        qp = bestNoise(q, qp, x, readers, index);
      }
      const err = errorOf(x, q.fakeQuant(x, qp).data, readers);
      if (!best || err < best.err) best = { q: name, qp, err };
    }
  }
  const { q, qp } = best!;
  e.quantizer = q;
  e.scale = [...qp.scale];
  e.zeroPoint = [...qp.zeroPoint];
  if (qp.extra) e.extra = qp.extra;
  e.mode = qp.mode;
}

/** The noisy bias width (in quantization steps) with the least error, seeded per point. */
function bestNoise(
  q: Quantizer,
  qp: QParams,
  x: Captured,
  readers: Reader[],
  index: number,
): QParams {
  const seed = 0x5eed + index;
  let best = qp, bestErr = Infinity;
  for (const a of [0, 0.5, 1, 1.5, 2]) {
    const cand = {
      ...qp,
      extra: { ...qp.extra, noise: [Math.fround(a * qp.scale[0]), seed] },
    };
    const err = errorOf(x, q.fakeQuant(x, cand).data, readers);
    if (err < bestErr) best = cand, bestErr = err;
  }
  return best;
}
