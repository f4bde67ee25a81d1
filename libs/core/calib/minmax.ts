/**
 * Min-max and moving-average min-max calibrators: O(channels) memory.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Calibrator, CalibratorFactory, CalibratorOptions, CalibResult } from "../types.ts";
import { batchMinMax } from "./_hist.ts";
import {
  checkObserved,
  commonOptions,
  numberOption,
  otherState,
  STATE,
  type WithState,
} from "./_calibrator.ts";

interface MinMaxState {
  key: string;
  min: Float64Array;
  max: Float64Array;
  /** Batches folded in (ema weights merges by it). */
  batches: number;
}

function make(name: string, opts: CalibratorOptions, momentum: number | undefined): Calibrator {
  const common = commonOptions(opts, name);
  const state: MinMaxState = {
    key: JSON.stringify({ ...common, momentum: momentum ?? null }),
    min: new Float64Array(0),
    max: new Float64Array(0),
    batches: 0,
  };
  const cal: WithState<MinMaxState> = {
    name,
    [STATE]: state,
    observe(batch: Tensor): void {
      if (batch.data.length === 0) return;
      const known = state.batches ? state.min.length : undefined;
      const { min, max } = batchMinMax(batch, common.axis, known, name);
      if (!state.batches) {
        state.min = min;
        state.max = max;
      } else {
        for (let c = 0; c < min.length; c++) {
          if (momentum === undefined) {
            state.min[c] = Math.min(state.min[c], min[c]);
            state.max[c] = Math.max(state.max[c], max[c]);
          } else {
            state.min[c] += momentum * (min[c] - state.min[c]);
            state.max[c] += momentum * (max[c] - state.max[c]);
          }
        }
      }
      state.batches++;
    },
    merge(other: Calibrator): void {
      const o = otherState(state, name, other);
      if (!o.batches) return;
      if (!state.batches) {
        state.min = o.min.slice();
        state.max = o.max.slice();
        state.batches = o.batches;
        return;
      }
      if (o.min.length !== state.min.length) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `cannot merge calibrator '${name}' with ${o.min.length} channels into one with ` +
            `${state.min.length}`,
        );
      }
      const wa = state.batches / (state.batches + o.batches), wb = 1 - wa;
      for (let c = 0; c < state.min.length; c++) {
        if (momentum === undefined) {
          state.min[c] = Math.min(state.min[c], o.min[c]);
          state.max[c] = Math.max(state.max[c], o.max[c]);
        } else {
          state.min[c] = wa * state.min[c] + wb * o.min[c];
          state.max[c] = wa * state.max[c] + wb * o.max[c];
        }
      }
      state.batches += o.batches;
    },
    result(): CalibResult {
      checkObserved(state.batches ? state.min : [], name);
      return { min: Float32Array.from(state.min), max: Float32Array.from(state.max) };
    },
  };
  return cal;
}

/**
 * The `"minmax"` calibrator: the running minimum and maximum per tensor or per
 * channel (`axis`), as observed (a symmetric quantizer then uses
 * `max(|min|, |max|)`). Merging takes the minimum of minima and maximum of
 * maxima, so it equals one pass exactly.
 *
 * @returns the factory
 *
 * @example
 * ```ts
 * import { minmaxCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const c = minmaxCalibrator().create({ axis: 1, mode: "affine" });
 * c.observe(tensor(new Float32Array([1, -2, 3, 4]), [2, 2]));
 * assert.deepEqual([...c.result().min], [1, -2]);
 * assert.deepEqual([...c.result().max], [3, 4]);
 * ```
 */
export function minmaxCalibrator(): CalibratorFactory {
  return { name: "minmax", create: (opts = {}) => make("minmax", opts, undefined) };
}

/**
 * The `"ema-minmax"` calibrator (torch's `MovingAverageMinMaxObserver`): the
 * first batch sets min and max, each later batch moves them by `momentum`
 * (default 0.01) towards its own: `min += momentum * (batchMin - min)`. Merging
 * two calibrators averages their states weighted by the number of batches each
 * saw (an approximation: an EMA depends on batch order, so no merge can equal
 * one stream).
 *
 * @returns the factory
 *
 * @example
 * ```ts
 * import { emaMinmaxCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const c = emaMinmaxCalibrator().create({ momentum: 0.5, mode: "affine" });
 * c.observe(tensor(new Float32Array([0, 2]), [2]));
 * c.observe(tensor(new Float32Array([0, 4]), [2]));
 * assert.equal(c.result().max[0], 3);
 * ```
 */
export function emaMinmaxCalibrator(): CalibratorFactory {
  return {
    name: "ema-minmax",
    create(opts: CalibratorOptions = {}) {
      const m = numberOption(opts, "momentum", 0.01, "ema-minmax");
      if (!(m > 0 && m <= 1)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `calibrator 'ema-minmax': option momentum must be in (0, 1], got ${m}`,
        );
      }
      return make("ema-minmax", opts, m);
    },
  };
}
