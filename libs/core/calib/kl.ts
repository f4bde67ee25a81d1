/**
 * KL-divergence (entropy) calibration, TensorRT's algorithm (Migacz, "8-bit
 * Inference with TensorRT", GTC 2017): choose the clipping threshold whose
 * quantized distribution loses the least information relative to the observed
 * one.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { CalibratorFactory, CalibratorOptions, NumberFormat } from "../types.ts";
import { getFormat } from "../default_registry.ts";
import { gridFormat, isIntFormat } from "../quant/_format.ts";
import { histogramCalibrator, numberOption } from "./_calibrator.ts";

/** Options of {@link klThreshold}. */
export interface KlOptions {
  /**
   * The target grid's non-negative levels: a count for a uniform (integer)
   * grid, e.g. 128 for int8; or the non-negative grid values themselves,
   * ascending from 0 (a minifloat's grid), to which bins are mapped by nearest
   * value.
   */
  levels: number | Float32Array;
  /** Step between candidate bin counts (default 1: every candidate). */
  stride?: number;
}

/**
 * TensorRT's entropy threshold on a histogram of |x| with `B` equal bins over
 * `[0, hi]`. For every candidate `i` from the number of levels `L` to `B`:
 *
 * - P = bins `0..i-1`, with the count of every bin from `i` on (the clipped
 *   outliers) added to bin `i-1`;
 * - Q = bins `0..i-1` merged into the L levels (uniform grid: bin `j` goes to
 *   level `floor(j * L / i)`; value grid: the level nearest to the bin centre
 *   when the grid is stretched over `[0, i * hi / B]`, ties to the lower level), each level's count then
 *   spread evenly over its non-empty bins (empty bins stay 0);
 * - divergence = Σ P·ln(P/Q) over P > 0 after normalising both (infinite when
 *   some P > 0 has Q = 0).
 *
 * The threshold is `i * hi / B` (the upper edge of the last kept bin) for the
 * `i` of least divergence; ties go to the larger `i`. With fewer bins than
 * levels it is `hi`.
 *
 * @param counts the |x| histogram
 * @param hi its upper end (max |x|)
 * @param opts levels and stride
 * @returns the threshold
 *
 * @example
 * ```ts
 * import { klThreshold } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * // 4 bins, 2 levels; the tail bin is nearly empty, so clipping it costs little
 * const t = klThreshold(new Float64Array([100, 50, 50, 0.001]), 4, { levels: 2 });
 * assert.equal(t, 3);
 * ```
 */
export function klThreshold(counts: Float64Array, hi: number, opts: KlOptions): number {
  const B = counts.length;
  const grid = typeof opts.levels === "number" ? undefined : opts.levels;
  const L = grid ? grid.length : (opts.levels as number);
  const stride = opts.stride ?? 1;
  if (!Number.isInteger(L) || L < 2 || !Number.isInteger(stride) || stride < 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `klThreshold: need at least 2 integer levels and a positive integer stride, got ${L}, ${stride}`,
    );
  }
  if (B <= L) return hi;
  // suffix sums of the outliers
  const tail = new Float64Array(B + 1);
  for (let j = B - 1; j >= 0; j--) tail[j] = tail[j + 1] + counts[j];
  const level = new Int32Array(B);
  const sums = new Float64Array(L), nonzero = new Float64Array(L);
  let best = Infinity, bestI = B;
  for (let i = L; i <= B; i += stride) {
    // assign bins to levels
    if (grid) {
      const gmax = grid[L - 1];
      let g = 0;
      for (let j = 0; j < i; j++) {
        const c = ((j + 0.5) / i) * gmax; // bin centre on the grid's scale
        while (g + 1 < L && grid[g + 1] - c < c - grid[g]) g++; // ties: lower level
        level[j] = g;
      }
    } else {
      for (let j = 0; j < i; j++) level[j] = Math.floor((j * L) / i);
    }
    sums.fill(0);
    nonzero.fill(0);
    for (let j = 0; j < i; j++) {
      if (counts[j] !== 0) {
        sums[level[j]] += counts[j];
        nonzero[level[j]]++;
      }
    }
    const totalP = tail[0]; // P keeps all mass (outliers folded into bin i-1)
    let totalQ = 0;
    for (let l = 0; l < L; l++) totalQ += sums[l];
    let kl = 0;
    for (let j = 0; j < i; j++) {
      const p = j === i - 1 ? counts[j] + tail[i] : counts[j];
      if (p === 0) continue;
      const q = counts[j] === 0 ? 0 : sums[level[j]] / nonzero[level[j]];
      if (q === 0) {
        kl = Infinity;
        break;
      }
      const pn = p / totalP, qn = q / totalQ;
      kl += pn * Math.log(pn / qn);
    }
    if (kl <= best) {
      best = kl;
      bestI = i;
    }
  }
  return bestI * (hi / B);
}

/**
 * The non-negative levels of a format for {@link klThreshold}: a count for
 * integer formats (int8 → 128, uint8 → 256, int4 → 8), the non-negative grid
 * values for others (a block format's element grid).
 *
 * @param format the format or its name
 * @returns levels for `klThreshold`
 *
 * @example
 * ```ts
 * import { klLevels } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.equal(klLevels("int8"), 128);
 * assert.equal((klLevels("fp4_e2m1fn") as Float32Array).length, 8);
 * ```
 */
export function klLevels(format: string | NumberFormat): number | Float32Array {
  const fmt = typeof format === "string" ? getFormat(format) : format;
  const grid = gridFormat(fmt).values().filter((v) => v >= 0);
  if (isIntFormat(fmt)) return grid.length;
  return grid;
}

/**
 * The `"kl"` calibrator: a streaming |x| histogram (2048 bins) and
 * {@link klThreshold} with the levels of the target `format` (int8: 128). The
 * range is symmetric `[-T, T]` intersected with the observed range, whatever
 * the mode. Options: `format` (default "int8"), `bins`, `axis`, `stride`,
 * `levels` (overrides the format's), `oversample`.
 *
 * @returns the factory
 *
 * @example
 * ```ts
 * import { createRng, klCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const rng = createRng(7);
 * const c = klCalibrator().create({ stride: 8 });
 * c.observe(tensor(Float32Array.from({ length: 50000 }, () => rng.normal()), [50000]));
 * const { max } = c.result();
 * assert.ok(max[0] > 2 && max[0] < 4.5);
 * ```
 */
export function klCalibrator(): CalibratorFactory {
  return {
    name: "kl",
    create(opts: CalibratorOptions = {}) {
      const stride = numberOption(opts, "stride", 1, "kl");
      const lv = opts.levels;
      if (lv !== undefined && (typeof lv !== "number" || !Number.isInteger(lv) || lv < 2)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `calibrator 'kl': option levels must be an integer >= 2, got ${String(lv)}`,
        );
      }
      const levels = (lv as number | undefined) ?? klLevels(String(opts.format ?? "int8"));
      return histogramCalibrator("kl", opts, { stride, levels: lv ?? null }, (h) => {
        const t = klThreshold(h.counts, h.hi, { levels, stride });
        return [-t, t];
      }, "abs");
    },
  };
}
