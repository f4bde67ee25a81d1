/**
 * The calibration batches of the MoE plugin: the user's data, then (balanced calibration, when
 * the data holds fewer samples than `--moe-min-tokens`) generated samples up to that count.
 *
 * @module
 */

import type { TensorValue } from "@lowbit/core";
import { extraSamples } from "./balance.ts";

/**
 * Splits calibration inputs into batches and appends `extra` generated samples.
 *
 * @param inputs calibration inputs by name (first dimension = sample)
 * @param count samples
 * @param batchSize samples per batch
 * @param extra samples to generate (see `extraSamples`)
 * @returns the batches, in order
 *
 * @example
 * ```ts
 * import { calibrationBatches } from "@lowbit/moe";
 * const x = { dtype: "float32", shape: [3, 2], data: Float32Array.of(0, 1, 2, 3, 4, 5) };
 * const b = calibrationBatches({ x }, 3, 2, 2);
 * if (b.map((t) => t.x.shape[0]).join() !== "2,1,2") throw new Error();
 * ```
 */
export function calibrationBatches(
  inputs: Readonly<Record<string, TensorValue>>,
  count: number,
  batchSize: number,
  extra = 0,
): Record<string, TensorValue>[] {
  const out: Record<string, TensorValue>[] = [];
  const slice = (src: Readonly<Record<string, TensorValue>>, n: number) => {
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const b: Record<string, TensorValue> = {};
      for (const [name, t] of Object.entries(src)) {
        const per = t.data.length / t.shape[0];
        const data = (t.data as Float32Array).slice(s * per, e * per);
        b[name] = { dtype: t.dtype, shape: [e - s, ...t.shape.slice(1)], data };
      }
      out.push(b);
    }
  };
  slice(inputs, count);
  if (extra > 0) slice(extraSamples(inputs, count, extra), extra);
  return out;
}
