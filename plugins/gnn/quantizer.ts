/**
 * The `gnn-degree` quantizer: per-node (row) integer quantization of a `[nodes, F]` tensor with
 * one scale / zero point per in-degree bin, and protected nodes (the top fraction by degree)
 * at int8 or left in float. Degrees are computed at run time from the graph input the point
 * `reads` (the adjacency or the edge index), so any graph — not only the calibration graph —
 * picks each row's parameters from its own degrees.
 *
 * Parameters: `scale` / `zeroPoint` hold G + 1 sets (G degree bins, then the protected set);
 * `extra` holds `bins` [G], `protect` [fraction], `protect_float` [0 | 1], `source_kind`
 * [0 adjacency | 1 edge index] and `source_row` [destination row, -1 for a 1-D index]. With
 * per-column ranges (`columns` [F] in `extra`), each set holds F parameters, one per feature
 * column: `scale[s·F + c]` is set s's scale of column c (bin × column ranges).
 *
 * @module
 */

import {
  chooseQParams,
  defaultRegistry,
  LowbitError,
  type NumberFormat,
  type QParams,
  type Quantizer,
  type Range,
  type Registry,
  roundHalfEven,
  type Tensor,
  type TensorValue,
} from "@lowbit/core";
import type { DegreeSource } from "./detect.ts";
import { degreeBin, nodeDegrees, protectedNodes } from "./degrees.ts";

/** Registry name of the quantizer. */
export const DEGREE_QUANTIZER = "gnn-degree";

/** How a degree-aware point is laid out (what `extra` records). */
export interface DegreeLayout {
  /** Number of degree bins G. */
  readonly bins: number;
  /** Fraction of nodes protected (0: none). */
  readonly protect: number;
  /** Protected rows left in float (true) or at int8 (false). */
  readonly protectFloat: boolean;
  /** Where degrees come from. */
  readonly source: DegreeSource;
  /** Feature columns F with one range each per set; 0 or absent: one range per set. */
  readonly columns?: number;
}

/** The layout `extra` records. */
function layoutOf(qp: QParams): DegreeLayout {
  const x = qp.extra ?? {};
  const input = qp.reads?.[0];
  if (!x.bins || !input) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `'${DEGREE_QUANTIZER}' parameters need extra.bins and the graph input it reads (reads)`,
    );
  }
  return {
    bins: x.bins[0],
    protect: x.protect?.[0] ?? 0,
    protectFloat: (x.protect_float?.[0] ?? 0) === 1,
    source: {
      input,
      kind: (x.source_kind?.[0] ?? 0) === 1 ? "edges" : "adjacency",
      row: x.source_row?.[0] ?? -1,
    },
    columns: x.columns?.[0] ?? 0,
  };
}

/**
 * The `extra` record of a layout.
 *
 * @param l the layout
 * @returns numbers by name, for `QParams.extra`
 *
 * @example
 * ```ts
 * import { layoutExtra } from "@lowbit/gnn";
 * const e = layoutExtra({ bins: 4, protect: 0.05, protectFloat: false,
 *   source: { input: "edge_index", kind: "edges", row: 1 } });
 * if (e.bins[0] !== 4 || e.source_kind[0] !== 1 || e.source_row[0] !== 1) throw new Error();
 * ```
 */
export function layoutExtra(l: DegreeLayout): Record<string, number[]> {
  return {
    bins: [l.bins],
    protect: [l.protect],
    protect_float: [l.protectFloat ? 1 : 0],
    source_kind: [l.source.kind === "edges" ? 1 : 0],
    source_row: [l.source.row],
    ...(l.columns ? { columns: [l.columns] } : {}),
  };
}

/**
 * Which parameter set each row uses: its degree bin (0..G-1), or G when protected.
 *
 * @param degrees one degree per node
 * @param l the layout
 * @returns one set index per node
 *
 * @example
 * ```ts
 * import { rowSets } from "@lowbit/gnn";
 * const l = { bins: 3, protect: 0.25, protectFloat: true,
 *   source: { input: "adj", kind: "adjacency" as const, row: -1 } };
 * if ([...rowSets(Int32Array.of(1, 3, 5, 40), l)].join() !== "0,1,2,3") throw new Error();
 * ```
 */
export function rowSets(degrees: Int32Array, l: DegreeLayout): Uint8Array {
  const prot = protectedNodes(degrees, l.protect);
  return Uint8Array.from(degrees, (d, i) => (prot[i] ? l.bins : degreeBin(d, l.bins)));
}

/**
 * Fits the G + 1 parameter sets of a `[nodes, F]` tensor from its values and its nodes'
 * degrees: min / max of the rows in each set, per column when `layout.columns` is F (an empty
 * bin takes the nearest populated bin's ranges, higher bins first; an empty protected set the
 * whole tensor's), or with `fit: "mse"` each range shrunk to the clip ratio of least squared
 * error on its own values.
 *
 * @param t the tensor (first axis: nodes)
 * @param degrees one degree per node
 * @param layout bins, protection, degree source, columns
 * @param opts the format and mode of the bins (protected rows: int8, same mode), the fit
 * @returns the parameters
 *
 * @example
 * ```ts
 * import { fitDegreeParams } from "@lowbit/gnn";
 * import assert from "node:assert/strict";
 * // two nodes of degree 1 with values in [0, 1], one hub of degree 9 with values up to 15
 * const t = { shape: [3, 2], data: Float32Array.of(0, 1, 0.5, 0, 15, 3) };
 * const qp = fitDegreeParams(t, Int32Array.of(1, 1, 9), { bins: 4, protect: 0,
 *   protectFloat: false, source: { input: "adj", kind: "adjacency", row: -1 } },
 *   { format: "uint4", mode: "affine" });
 * assert.equal(qp.scale[0], Math.fround(1 / 15)); // bin [0, 2)
 * assert.equal(qp.scale[3], 1); // bin [8, ∞): 15 / 15
 * ```
 */
export function fitDegreeParams(
  t: Tensor,
  degrees: Int32Array,
  layout: DegreeLayout,
  opts: { format: string; mode: "symmetric" | "affine"; fit?: "minmax" | "mse" },
): QParams {
  const nodes = t.shape[0], per = t.data.length / Math.max(1, nodes);
  const K = columnsOf(layout, per);
  const sets = rowSets(degrees, layout);
  const G = layout.bins;
  // ranges by (set, column): index s·K + k, k = j when per column, else 0
  const lo = new Float32Array((G + 1) * K).fill(Infinity);
  const hi = new Float32Array((G + 1) * K).fill(-Infinity);
  const allLo = new Float32Array(K).fill(Infinity), allHi = new Float32Array(K).fill(-Infinity);
  for (let r = 0; r < nodes; r++) {
    const s = sets[r];
    for (let j = 0; j < per; j++) {
      const v = t.data[r * per + j], k = K === 1 ? 0 : j, i = s * K + k;
      if (v < lo[i]) lo[i] = v;
      if (v > hi[i]) hi[i] = v;
      if (v < allLo[k]) allLo[k] = v;
      if (v > allHi[k]) allHi[k] = v;
    }
  }
  for (let k = 0; k < K; k++) if (!(allLo[k] <= allHi[k])) allLo[k] = allHi[k] = 0;
  const filled = (s: number): boolean => lo[s * K] <= hi[s * K];
  const copy = (to: number, from: number): void => {
    for (let k = 0; k < K; k++) {
      lo[to * K + k] = from < 0 ? allLo[k] : lo[from * K + k];
      hi[to * K + k] = from < 0 ? allHi[k] : hi[from * K + k];
    }
  };
  for (let s = 0; s < G; s++) {
    if (filled(s)) continue;
    let src = -1;
    for (let d = 1; d < G && src < 0; d++) {
      if (s + d < G && filled(s + d)) src = s + d;
      else if (s - d >= 0 && filled(s - d)) src = s - d;
    }
    copy(s, src);
  }
  if (!filled(G)) copy(G, -1);
  if (opts.fit === "mse") clipByError(t.data, per, K, sets, lo, hi, G, opts);
  const bins = chooseQParams({ min: lo.slice(0, G * K), max: hi.slice(0, G * K) }, {
    format: opts.format,
    granularity: { kind: "channel", axis: 0 },
    mode: opts.mode,
  });
  const prot = chooseQParams({ min: lo.slice(G * K), max: hi.slice(G * K) }, {
    format: "int8",
    granularity: K === 1 ? { kind: "tensor" } : { kind: "channel", axis: 0 },
    mode: opts.mode,
  });
  return {
    format: opts.format,
    granularity: { kind: "tensor" },
    mode: opts.mode,
    scale: Float32Array.of(...bins.scale, ...prot.scale),
    zeroPoint: Int32Array.of(...bins.zeroPoint, ...prot.zeroPoint),
    extra: layoutExtra(K === 1 ? { ...layout, columns: 0 } : layout),
    reads: [layout.source.input],
  };
}

/** Ranges per set and column (K = F) or per set (K = 1); F must match the layout's. */
function columnsOf(l: DegreeLayout, per: number): number {
  if (!l.columns) return 1;
  if (l.columns !== per) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `'${DEGREE_QUANTIZER}' has ranges for ${l.columns} feature columns, the tensor has ${per}`,
    );
  }
  return per;
}

/** Clip ratios tried per set by the `mse` fit: 1, 0.95, …, 0.2 of the set's min / max. */
const CLIP_RATIOS = Array.from({ length: 17 }, (_, i) => 1 - 0.05 * i);

/**
 * Shrinks each set's (or each set and column's) [lo, hi] to the clip ratio whose
 * fake-quantization of its own values has the least squared error (the protected set, at int8,
 * keeps its min / max).
 */
function clipByError(
  data: ArrayLike<number>,
  per: number,
  K: number,
  sets: Uint8Array,
  lo: Float32Array,
  hi: Float32Array,
  G: number,
  opts: { format: string; mode: "symmetric" | "affine" },
): void {
  const fmt = defaultRegistry().formats.get(opts.format);
  const rows: number[][] = Array.from({ length: G }, () => []);
  sets.forEach((s, r) => s < G && rows[s].push(r));
  const step = K === 1 ? 1 : per;
  for (let s = 0; s < G; s++) {
    if (rows[s].length === 0) continue;
    for (let k = 0; k < K; k++) {
      const i = s * K + k;
      let best = Infinity, bestC = 1;
      for (const c of CLIP_RATIOS) {
        const qp = chooseQParams(
          { min: Float32Array.of(lo[i] * c), max: Float32Array.of(hi[i] * c) },
          { format: opts.format, granularity: { kind: "tensor" }, mode: opts.mode },
        );
        const sc = qp.scale[0], z = qp.zeroPoint[0];
        const qlo = qp.quantMin ?? fmt.min, qhi = qp.quantMax ?? fmt.max;
        let err = 0;
        for (const r of rows[s]) {
          for (let j = r * per + k; j < (r + 1) * per; j += step) {
            const q = Math.min(qhi, Math.max(qlo, roundHalfEven(data[j] / sc) + z));
            err += ((q - z) * sc - data[j]) ** 2;
          }
        }
        if (err < best) best = err, bestC = c;
      }
      lo[i] *= bestC;
      hi[i] *= bestC;
    }
  }
}

/**
 * x → clamp(round_half_even(x / s) + z) → (q − z)·s, as QuantizeLinear / DequantizeLinear, with
 * the scale / zero point of column j at `at + j` (K = row length) or `at` (K = 1).
 */
function quantRow(
  src: ArrayLike<number>,
  dst: Float32Array,
  from: number,
  len: number,
  qp: QParams,
  at: number,
  K: number,
  lo: number,
  hi: number,
): void {
  for (let j = 0; j < len; j++) {
    const p = K === 1 ? at : at + j, s = qp.scale[p], z = qp.zeroPoint[p];
    const q = Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(src[from + j] / s)) + z));
    dst[from + j] = Math.fround((q - z) * s);
  }
}

/**
 * The `gnn-degree` quantizer (see the module documentation).
 *
 * @param registry where formats are looked up
 * @returns the quantizer record
 *
 * @example
 * ```ts
 * import { degreeQuantizer, fitDegreeParams } from "@lowbit/gnn";
 * import { defaultRegistry } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const q = degreeQuantizer(defaultRegistry());
 * // a path 0 – 1 – 2: in-degrees 1, 2, 1 (bins [0, 2) and [2, 4))
 * const adj = { dtype: "float32", shape: [3, 3], data: Float32Array.of(0, 1, 0, 1, 0, 1, 0, 1, 0) };
 * const t = { shape: [3, 1], data: Float32Array.of(0.3, 7, 0.3) };
 * const qp = fitDegreeParams(t, Int32Array.of(1, 2, 1), { bins: 2, protect: 0, protectFloat: false,
 *   source: { input: "adj", kind: "adjacency", row: -1 } }, { format: "int4", mode: "symmetric" });
 * const y = q.fakeQuant(t, qp, { batch: 0, tags: {}, inputs: { adj } });
 * // each row at its own bin's scale (0.3 / 7.5 and 7 / 7.5): code 7 of each, not 0.3 → 0
 * const [s0, s1] = [qp.scale[0], qp.scale[1]];
 * assert.deepEqual([...y.data], [Math.fround(7 * s0), Math.fround(7 * s1), Math.fround(7 * s0)]);
 * assert.ok(y.data[0] > 0.25);
 * ```
 */
export function degreeQuantizer(registry: Registry): Quantizer {
  const fmtOf = (name: string): NumberFormat => registry.formats.get(name);
  return {
    name: DEGREE_QUANTIZER,
    supports: (f) => f.family === "int" && f.bits <= 8,
    fit(_input: Range | Tensor): QParams {
      // The bins need each row's degree: the plugin's stage fits them from the calibration graph.
      throw new LowbitError(
        "UNSUPPORTED",
        `'${DEGREE_QUANTIZER}' is fitted from the calibration graph by the gnn plugin's stage ` +
          `(load the plugin, and give the whole graph as calibration data)`,
      );
    },
    quantize(): never {
      throw new LowbitError(
        "UNSUPPORTED",
        `'${DEGREE_QUANTIZER}' picks each row's scale from run-time degrees: it has no stored ` +
          `codes (activations only)`,
      );
    },
    dequantize(): never {
      throw new LowbitError(
        "UNSUPPORTED",
        `'${DEGREE_QUANTIZER}' has no stored codes (activations only)`,
      );
    },
    fakeQuant(t: Tensor, qp: QParams, ctx): Tensor {
      const l = layoutOf(qp);
      const src = ctx?.inputs?.[l.source.input] as TensorValue | undefined;
      if (!src) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `'${DEGREE_QUANTIZER}' needs the graph input '${l.source.input}' at run time`,
          { tensor: l.source.input },
        );
      }
      const nodes = t.shape[0];
      const sets = rowSets(nodeDegrees(src, l.source, nodes), l);
      const per = t.data.length / Math.max(1, nodes);
      const K = columnsOf(l, per);
      if (qp.scale.length !== (l.bins + 1) * K) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `'${DEGREE_QUANTIZER}' needs ${(l.bins + 1) * K} scales (${l.bins} bins and the ` +
            `protected set, ${K} per set), it has ${qp.scale.length}`,
        );
      }
      const f = fmtOf(qp.format), i8 = fmtOf("int8");
      const lo = qp.quantMin ?? f.min, hi = qp.quantMax ?? f.max;
      const out = new Float32Array(t.data.length);
      for (let r = 0; r < nodes; r++) {
        const s = sets[r];
        if (s === l.bins && l.protectFloat) {
          out.set(t.data.subarray(r * per, (r + 1) * per), r * per);
        } else if (s === l.bins) {
          quantRow(t.data, out, r * per, per, qp, s * K, K, i8.min, i8.max);
        } else quantRow(t.data, out, r * per, per, qp, s * K, K, lo, hi);
      }
      return { shape: [...t.shape], data: out };
    },
  };
}
