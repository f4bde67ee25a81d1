/**
 * Streaming calibrators: memory bounded by bins × channels whatever the amount
 * of data, mergeable across batches and workers. `minmax`, `ema-minmax`,
 * `percentile`, `mse` (Lp search on the target format's grid) and `kl`
 * (TensorRT's entropy calibration), each per tensor or per channel (`axis`).
 *
 * Memory: `minmax` / `ema-minmax` keep two numbers per channel; the histogram
 * calibrators keep `2 * bins * oversample` float64 counts per channel (128 KiB
 * with the defaults 2048 × 4), whatever the amount of data. Their histograms
 * re-bin exactly as the range grows, so any batching, and any merge order
 * (`merge`, or `snapshotCalibrator` / `mergeSnapshot` across workers), gives
 * the one-pass result bit for bit. NaN / ±Inf in a batch is a `LowbitError`;
 * an empty batch is ignored; `result()` before any data is an error.
 *
 * @example
 * ```ts
 * import { createCalibrator, createRng, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const rng = createRng(5);
 * const batch = () => tensor(Float32Array.from({ length: 4096 }, () => rng.normal()), [64, 64]);
 * const a = createCalibrator("percentile", { axis: 1 }), b = createCalibrator("percentile", { axis: 1 });
 * a.observe(batch());
 * b.observe(batch()); // e.g. in another worker
 * a.merge(b);
 * assert.equal(a.result().max.length, 64);
 * ```
 *
 * @module
 */

export * from "./minmax.ts";
export * from "./percentile.ts";
export * from "./mse.ts";
export * from "./kl.ts";
export * from "./builtins.ts";
export * from "./snapshot.ts";
