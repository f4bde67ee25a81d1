/**
 * Percentile calibration: clip at the value below which a given share of the
 * observed values lies, read off the streaming histogram.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { CalibratorFactory, CalibratorOptions } from "../types.ts";
import { histogramCalibrator, numberOption } from "./_calibrator.ts";

/**
 * The symmetric percentile threshold on a histogram of |x| with `counts.length`
 * equal bins over `[0, hi]`: the upper edge `(k + 1) * hi / bins` of the first
 * bin `k` whose cumulative share `cumsum(counts)[k] / total` is `>= percentile / 100`
 * (numpy's `searchsorted(cdf, q)` followed by the bin's right edge).
 *
 * @param counts the histogram
 * @param hi its upper end (max |x|)
 * @param percentile in (0, 100]
 * @returns the threshold
 *
 * @example
 * ```ts
 * import { percentileThreshold } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * // 4 bins over [0, 4]; 90% of the mass lies in the first three bins
 * assert.equal(percentileThreshold(new Float64Array([30, 30, 30, 10]), 4, 90), 3);
 * ```
 */
export function percentileThreshold(counts: Float64Array, hi: number, percentile: number): number {
  const k = firstAtLeast(counts, percentile / 100);
  return (k + 1) * (hi / counts.length);
}

/**
 * The two-sided percentile range on a signed histogram with equal bins over
 * `[lo, hi]`: `(100 - percentile) / 2` percent is cut from each tail. The
 * lower end is the left edge of the first bin whose cumulative share reaches
 * `(1 - q) / 2`, the upper end the right edge of the first bin reaching
 * `1 - (1 - q) / 2`, with `q = percentile / 100`.
 *
 * @param counts the histogram
 * @param lo its lower end (observed min)
 * @param hi its upper end (observed max)
 * @param percentile in (0, 100]
 * @returns `[min, max]`
 *
 * @example
 * ```ts
 * import { percentileRange } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual(percentileRange(new Float64Array([4, 46, 46, 4]), -2, 2, 90), [-1, 1]);
 * ```
 */
export function percentileRange(
  counts: Float64Array,
  lo: number,
  hi: number,
  percentile: number,
): [number, number] {
  const cut = (1 - percentile / 100) / 2;
  const w = (hi - lo) / counts.length;
  const a = firstAtLeast(counts, cut), b = firstAtLeast(counts, 1 - cut);
  return [lo + a * w, lo + (b + 1) * w];
}

function firstAtLeast(counts: Float64Array, q: number): number {
  let total = 0;
  for (let k = 0; k < counts.length; k++) total += counts[k];
  let acc = 0;
  for (let k = 0; k < counts.length; k++) {
    acc += counts[k];
    if (acc / total >= q) return k;
  }
  return counts.length - 1;
}

/**
 * The `"percentile"` calibrator: a streaming histogram (2048 bins by default)
 * and {@link percentileThreshold} (symmetric) or {@link percentileRange}
 * (affine). Options: `percentile` (default 99.99), `bins`, `axis`, `mode`,
 * `oversample` (fine bins kept per output bin, default 4).
 *
 * @returns the factory
 *
 * @example
 * ```ts
 * import { createRng, percentileCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const rng = createRng(1);
 * const c = percentileCalibrator().create({ percentile: 99 });
 * c.observe(tensor(Float32Array.from({ length: 100000 }, () => rng.normal()), [100000]));
 * const { max } = c.result();
 * assert.ok(Math.abs(max[0] - 2.576) < 0.05); // the 99% two-sided normal quantile
 * ```
 */
export function percentileCalibrator(): CalibratorFactory {
  return {
    name: "percentile",
    create(opts: CalibratorOptions = {}) {
      const pct = numberOption(opts, "percentile", 99.99, "percentile");
      if (!(pct > 0 && pct <= 100)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `calibrator 'percentile': option percentile must be in (0, 100], got ${pct}`,
        );
      }
      return histogramCalibrator("percentile", opts, { percentile: pct }, (h) => {
        if (h.abs) {
          const t = percentileThreshold(h.counts, h.hi, pct);
          return [-t, t];
        }
        return percentileRange(h.counts, h.lo, h.hi, pct);
      });
    },
  };
}
