/**
 * The accuracy guard's check split: when the guard has only the calibration data to measure on,
 * every `every`-th sample is set aside to check and the rest fit (ranges, bias correction, GPTQ,
 * the choice of calibrator). A figure measured on the samples a remedy was fitted on overstates
 * what it gives on other data (PP-OCRv4 rec: 19.5 dB on the calibration lines, 18.3 dB held-out),
 * so the guard stopped too early; on samples it did not fit on, its figure predicts held-out.
 *
 * @module
 */

import type { TensorData } from "@lowbit/graph";
import type { Dataset } from "./dataset.ts";

/** The calibration data split into the samples that fit and the samples that check. */
export interface CheckSplit {
  /** The samples quantization fits on (every sample but the checking ones). */
  fit: Dataset;
  /** Every `every`-th sample (indices every−1, 2·every−1, …): measured on, never fitted on. */
  check: Dataset;
}

/** Fewest samples that are split: below this, a check part of one or two samples says little. */
export const MIN_SPLIT_SAMPLES = 8;

/** Copies the samples at `rows` of a tensor (samples first). */
function takeRows(t: TensorData, rows: readonly number[]): TensorData {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array;
  const dst = new (src.constructor as Float32ArrayConstructor)(rows.length * per);
  rows.forEach((r, i) => dst.set(src.subarray(r * per, (r + 1) * per), i * per));
  return {
    dtype: t.dtype,
    shape: [rows.length, ...t.shape.slice(1)],
    data: dst as unknown as TensorData["data"],
  };
}

/**
 * Splits a dataset into a fit part and a check part: sample i checks when (i + 1) is a multiple
 * of `every` (with 32 samples and `every` 4: 8 check, 24 fit; the checking samples are spread
 * over the data, not its tail). Returns null when there are fewer than
 * {@link MIN_SPLIT_SAMPLES} samples or an input's samples are not along its first axis (a
 * recurrent state: its samples form streams, which a split would cut).
 *
 * @param data the calibration data
 * @param every one sample in this many checks (default 4)
 * @returns the two parts, or null when the data is not split
 *
 * @example
 * ```ts
 * import { splitForCheck } from "@lowbit/pipeline";
 * const x = { dtype: "float32" as const, shape: [8, 1], data: Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7) };
 * const s = splitForCheck({ inputs: { x }, count: 8 })!;
 * if ((s.check.inputs.x.data as Float32Array).join() !== "3,7") throw new Error();
 * if (s.fit.count !== 6 || (s.fit.inputs.x.data as Float32Array).join() !== "0,1,2,4,5,6") {
 *   throw new Error();
 * }
 * ```
 */
export function splitForCheck(data: Dataset, every = 4): CheckSplit | null {
  if (!(every >= 2) || data.count < MIN_SPLIT_SAMPLES) return null;
  if (Object.keys(data.inputs).some((n) => (data.axes?.[n] ?? 0) !== 0)) return null;
  const fitRows: number[] = [], checkRows: number[] = [];
  for (let i = 0; i < data.count; i++) ((i + 1) % every === 0 ? checkRows : fitRows).push(i);
  const part = (rows: number[]): Dataset => ({
    ...data,
    count: rows.length,
    inputs: Object.fromEntries(
      Object.entries(data.inputs).map(([n, t]) => [n, takeRows(t, rows)]),
    ),
  });
  return { fit: part(fitRows), check: part(checkRows) };
}
