/**
 * Log-axis histograms of the plugin's points and the grids fitted to them, for `lowbit
 * quantize`'s HTML report (the `vit-histograms` report section): for each attention point
 * (Softmax output, activation × activation MatMul operand) and GELU point, the magnitudes the
 * float model produces on the evaluation data, binned in quarter octaves, with the fitted
 * quantizer's nonzero levels drawn on the same log axis.
 *
 * @module
 */

import { LowbitError, type NumberFormat, type Registry } from "@lowbit/core";
import { logGridOf, logLevels } from "./log_quantizer.ts";

/** Bins per octave of the log axis. */
export const BINS_PER_OCTAVE = 4;

/** Octaves the axis spans at most below its top (smaller magnitudes are counted as below it). */
export const MAX_OCTAVES = 24;

/** A histogram of magnitudes on a log2 axis, one sign. */
export interface LogHistogram {
  /** log2 of the left edge of bin 0. */
  readonly lo: number;
  /** Bins per octave. */
  readonly perOctave: number;
  /** Counts per bin: bin i holds |x| in [2^(lo + i/perOctave), 2^(lo + (i+1)/perOctave)). */
  readonly counts: number[];
  /** Values that are exactly 0. */
  readonly zeros: number;
  /** Nonzero values below the axis (|x| < 2^lo). */
  readonly below: number;
  /** Negative values among the counted (bins and below). */
  readonly negative: number;
}

/**
 * The log-axis histogram of `|x|`: quarter-octave bins from the largest magnitude's octave
 * down to the smallest nonzero magnitude (at most {@link MAX_OCTAVES} octaves; smaller ones are
 * counted in `below`), exact zeros apart. `zeros + below + Σ counts` = `x.length`.
 *
 * @param x values (NaN is an error)
 * @returns the histogram
 *
 * @example
 * ```ts
 * import { logHistogram } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const h = logHistogram(Float32Array.of(0, 1, 0.5, -0.5, 0.75));
 * // the axis starts at 2^−1: 0.5 and −0.5 in bin 0, 0.75 in bin 2 (log2 0.75 = −0.415), 1 in bin 4
 * assert.deepEqual([h.lo, h.zeros, h.below, h.negative], [-1, 1, 0, 1]);
 * assert.deepEqual(h.counts, [2, 0, 1, 0, 1]);
 * ```
 */
export function logHistogram(x: Float32Array): LogHistogram {
  let mn = Infinity, mx = 0, zeros = 0;
  for (const v of x) {
    if (!(v === v)) throw new LowbitError("INVALID_TENSOR", "a histogram was given NaN");
    const a = Math.abs(v);
    if (a === 0) zeros++;
    else {
      if (a < mn) mn = a;
      if (a > mx) mx = a;
    }
  }
  if (mx === 0) {
    return { lo: 0, perOctave: BINS_PER_OCTAVE, counts: [], zeros, below: 0, negative: 0 };
  }
  const hi = Math.floor(Math.log2(mx)) + 1;
  const lo = Math.max(Math.floor(Math.log2(mn)), hi - MAX_OCTAVES);
  const n = (hi - lo) * BINS_PER_OCTAVE + 1; // + 1: |x| = 2^hi exactly cannot occur, but rounding
  const counts = new Array<number>(n).fill(0);
  let below = 0, negative = 0;
  for (const v of x) {
    if (v === 0) continue;
    if (v < 0) negative++;
    const a = Math.abs(v);
    const b = Math.floor((Math.log2(a) - lo) * BINS_PER_OCTAVE);
    if (b < 0) below++;
    else counts[Math.min(b, n - 1)]++;
  }
  while (counts.length > 1 && counts[counts.length - 1] === 0) counts.pop();
  return { lo, perOctave: BINS_PER_OCTAVE, counts, zeros, below, negative };
}

/** A fitted point as the plan keeps it (the fields the grid needs). */
export interface GridEntry {
  /** The quantizer's name (default "uniform"). */
  readonly quantizer?: string;
  /** The number format. */
  readonly format?: string;
  /** Scales (per tensor: one). */
  readonly scale?: readonly number[];
  /** Zero points. */
  readonly zeroPoint?: readonly number[];
  /** Quantizer-specific parameters. */
  readonly extra?: Readonly<Record<string, readonly number[]>>;
}

/**
 * The distinct nonzero magnitudes a fitted per-tensor point can take, ascending: a log
 * quantizer's `scale · base^−k`, twin-uniform's `k · Δ1` and `k · Δ2`, a uniform grid's
 * `|scale · (q − zeroPoint)|` over the format's codes (a noisy bias ignored).
 *
 * @param e the plan entry
 * @param registry where the format is resolved
 * @returns the levels (float32 values), ascending, without 0
 *
 * @example
 * ```ts
 * import { gridLevels } from "@lowbit/vit";
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const e = { quantizer: "log2", format: "uint4", scale: [1], zeroPoint: [0],
 *   extra: { base: [2], signed: [0] } };
 * assert.deepEqual(gridLevels(e, r), Array.from({ length: 15 }, (_, k) => 2 ** (k - 14)));
 * ```
 */
export function gridLevels(e: GridEntry, registry: Registry): number[] {
  if (!e.format || !e.scale || e.scale.length === 0) {
    throw new LowbitError("INVALID_ARGUMENT", "a grid needs a fitted format and scale");
  }
  const fmt: NumberFormat = registry.formats.get(e.format);
  const q = e.quantizer ?? "uniform";
  const out = new Set<number>();
  if (q === "log2" || q === "logsqrt2" || q === "adalog") {
    const g = logGridOf(
      {
        format: e.format,
        granularity: { kind: "tensor" },
        mode: "symmetric",
        scale: Float32Array.of(e.scale[0]),
        zeroPoint: Int32Array.of(0),
        extra: e.extra as Record<string, number[]>,
      },
      fmt.bits,
    );
    for (const v of logLevels(g)) out.add(v);
  } else if (q === "twin-uniform") {
    const d1 = e.extra?.d1?.[0], d2 = e.scale[0];
    if (d1 === undefined) throw new LowbitError("INVALID_ARGUMENT", "twin-uniform needs extra.d1");
    const top = 2 ** (fmt.bits - 1) - 1;
    for (let k = 1; k <= top; k++) out.add(Math.fround(k * d1)).add(Math.fround(k * d2));
  } else {
    if (fmt.family !== "int") {
      throw new LowbitError("INVALID_ARGUMENT", `no grid drawn for format ${e.format}`);
    }
    const s = e.scale[0], z = e.zeroPoint?.[0] ?? 0;
    for (let c = fmt.min; c <= fmt.max; c++) {
      const v = Math.abs(Math.fround(s * (c - z)));
      if (v > 0) out.add(v);
    }
  }
  return [...out].sort((a, b) => a - b);
}
