/**
 * Fixed-bin histograms for the report: small, serialisable, mergeable.
 *
 * @module
 */

/** A histogram over [lo, hi] with equal bins. */
export interface Histogram {
  /** Lower edge of the first bin. */
  lo: number;
  /** Upper edge of the last bin. */
  hi: number;
  /** Count per bin. */
  counts: number[];
}

/**
 * Histogram of values over their own range (or a given one).
 *
 * @param x the values
 * @param bins number of bins (64)
 * @param range [lo, hi]; values outside are counted in the edge bins
 * @returns the histogram
 *
 * @example
 * ```ts
 * import { histogram } from "@lowbit/pipeline";
 * const h = histogram(new Float32Array([0, 0.5, 1]), 2);
 * if (h.counts.join() !== "1,2") throw new Error(h.counts.join());
 * ```
 */
export function histogram(x: Float32Array, bins = 64, range?: [number, number]): Histogram {
  let lo = range?.[0] ?? Infinity, hi = range?.[1] ?? -Infinity;
  if (!range) {
    for (const v of x) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) lo = hi = 0;
  if (hi === lo) hi = lo + 1;
  const counts = new Array<number>(bins).fill(0);
  const f = bins / (hi - lo);
  for (const v of x) {
    if (!Number.isFinite(v)) continue;
    const b = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) * f)));
    counts[b]++;
  }
  return { lo, hi, counts };
}
