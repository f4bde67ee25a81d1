/**
 * MSE / Lp calibration: search clipping ranges and keep the one whose
 * quantization error, measured on the target format's actual grid, is least.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { CalibratorFactory, CalibratorOptions, QuantMode } from "../types.ts";
import { getFormat } from "../default_registry.ts";
import { gridFormat } from "../quant/_format.ts";
import { chooseQParams } from "../quant/qparams.ts";
import { fakeQuantizeWith } from "../quant/_apply.ts";
import { histogramCalibrator, numberOption } from "./_calibrator.ts";

/** Options of {@link lpSearchRange}. */
export interface LpSearchOptions {
  /** Target format name; block formats are measured on their element grid. */
  format: string;
  /** "symmetric" (default) or "affine". */
  mode?: QuantMode;
  /** Error exponent (default 2; 2.4 is another common choice). */
  p?: number;
  /** Number of candidate ranges (default 100). */
  candidates?: number;
}

/**
 * Lp search on a signed histogram with `B` equal bins over `[lo, hi]`. Candidate
 * `j = 1..N` is the range `[-T_j, T_j]` with `T_j = max(-lo, hi) * j / N`
 * (symmetric) or `[lo * j / N, hi * j / N]` (affine). Each candidate is turned
 * into a scale and zero point with `chooseQParams` exactly as the quantizer
 * will, the bin centres `lo + (b + 0.5) * (hi - lo) / B` (as float32) are
 * fake-quantized on the format's grid, and the error is
 * `Σ_b counts[b] * |centre_b - fq(centre_b)|^p`. The first candidate of least
 * error wins.
 *
 * @param counts the histogram
 * @param lo its lower end (observed min)
 * @param hi its upper end (observed max)
 * @param opts format, mode, p, candidates
 * @returns the best `[min, max]`
 *
 * @example
 * ```ts
 * import { lpSearchRange } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * // the mass lies within ±0.2, one outlier at 0.99: clipping it wins
 * const counts = new Float64Array(100);
 * counts.fill(1000, 40, 60);
 * counts[99] = 1;
 * const [a, b] = lpSearchRange(counts, -1, 1, { format: "int4" });
 * assert.ok(b < 1 && a === -b);
 * ```
 */
export function lpSearchRange(
  counts: Float64Array,
  lo: number,
  hi: number,
  opts: LpSearchOptions,
): [number, number] {
  const p = opts.p ?? 2, N = opts.candidates ?? 100, mode = opts.mode ?? "symmetric";
  if (!(p > 0) || !Number.isInteger(N) || N < 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `lpSearchRange: need p > 0 and a positive integer number of candidates, got ${p}, ${N}`,
    );
  }
  const fmt = gridFormat(getFormat(opts.format));
  const B = counts.length, w = (hi - lo) / B;
  const centres = new Float32Array(B);
  for (let b = 0; b < B; b++) centres[b] = lo + (b + 0.5) * w;
  const t = { shape: [B], data: centres };
  const amax = Math.max(-lo, hi);
  let best = Infinity, bestRange: [number, number] = [lo, hi];
  for (let j = 1; j <= N; j++) {
    const range: [number, number] = mode === "symmetric"
      ? [-(amax * j) / N, (amax * j) / N]
      : [(lo * j) / N, (hi * j) / N];
    const qp = chooseQParams(
      { min: Float32Array.of(range[0]), max: Float32Array.of(range[1]) },
      { format: fmt, granularity: { kind: "tensor" }, mode },
    );
    const fq = fakeQuantizeWith(fmt, t, qp).data;
    let err = 0;
    for (let b = 0; b < B; b++) {
      if (counts[b] !== 0) err += counts[b] * Math.abs(centres[b] - fq[b]) ** p;
    }
    if (err < best) {
      best = err;
      bestRange = range;
    }
  }
  return bestRange;
}

/**
 * The `"mse"` calibrator: a streaming signed histogram (2048 bins) and
 * {@link lpSearchRange} on the target format's grid (FP8, FP4, MX element
 * grids as well as integers). Options: `format` (default "int8"), `mode`,
 * `p` (default 2), `candidates` (default 100), `bins`, `axis`, `oversample`.
 *
 * @returns the factory
 *
 * @example
 * ```ts
 * import { createRng, mseCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const rng = createRng(3);
 * const c = mseCalibrator().create({ format: "int4" });
 * c.observe(tensor(Float32Array.from({ length: 50000 }, () => rng.normal()), [50000]));
 * const { max } = c.result();
 * assert.ok(max[0] > 1.5 && max[0] < 3.5); // int4 clips a normal well inside its max
 * ```
 */
export function mseCalibrator(): CalibratorFactory {
  return {
    name: "mse",
    create(opts: CalibratorOptions = {}) {
      const p = numberOption(opts, "p", 2, "mse");
      const candidates = numberOption(opts, "candidates", 100, "mse");
      if (!(p > 0) || !Number.isInteger(candidates) || candidates < 1) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `calibrator 'mse': need p > 0 and a positive integer candidates, got ${p}, ${candidates}`,
        );
      }
      return histogramCalibrator(
        "mse",
        opts,
        { p, candidates },
        (h, common) =>
          lpSearchRange(h.counts, h.lo, h.hi, {
            format: common.format,
            mode: common.mode,
            p,
            candidates,
          }),
        "signed",
      );
    },
  };
}
