// Private: option parsing and the shared shape of the histogram calibrators.

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Calibrator, CalibratorOptions, CalibResult, QuantMode } from "../types.ts";
import { getFormat } from "../default_registry.ts";
import { addBatch, createHist, type Hist, mergeHist, resample } from "./_hist.ts";

/** Where a calibrator keeps its state, so `merge` can reach another's. */
export const STATE: unique symbol = Symbol("lowbit.calibrator.state");

/** A calibrator with reachable state. */
export type WithState<S> = Calibrator & { [STATE]: S };

/** Reads a numeric option with a default. */
export function numberOption(
  opts: CalibratorOptions,
  key: string,
  fallback: number,
  calibrator: string,
): number {
  const v = opts[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${calibrator}': option ${key} must be a finite number, got ${String(v)}`,
    );
  }
  return v;
}

/** Options every calibrator shares, validated. */
export interface CommonOptions {
  axis: number | undefined;
  format: string;
  mode: QuantMode;
}

/** Validates axis / format / mode (the format must be registered). */
export function commonOptions(opts: CalibratorOptions, calibrator: string): CommonOptions {
  const { axis, mode = "symmetric", format = "int8" } = opts;
  if (axis !== undefined && !Number.isInteger(axis)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${calibrator}': option axis must be an integer, got ${String(axis)}`,
    );
  }
  if (mode !== "symmetric" && mode !== "affine") {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${calibrator}': option mode must be "symmetric" or "affine", got ${
        String(mode)
      }`,
    );
  }
  if (typeof format !== "string") {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${calibrator}': option format must be a format name, got ${String(format)}`,
    );
  }
  getFormat(format); // unknown names throw, listing the registered ones
  return { axis: axis as number | undefined, format, mode };
}

/** Checks `other` is a calibrator of the same kind and options; returns its state. */
export function otherState<S extends { key: string }>(
  self: S,
  name: string,
  other: Calibrator,
): S {
  const s = (other as Partial<WithState<S>>)[STATE];
  if (other.name !== name || s === undefined || s.key !== self.key) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `cannot merge calibrator '${other.name}' into '${name}': merge needs the same algorithm ` +
        `and options (${self.key} vs ${s?.key ?? "unknown"})`,
    );
  }
  return s;
}

/** Throws unless at least one value was observed in every channel. */
export function checkObserved(min: ArrayLike<number>, name: string): void {
  if (min.length === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${name}' has observed no data; call observe() with a non-empty batch first`,
    );
  }
  for (let c = 0; c < min.length; c++) {
    if (min[c] === Infinity) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `calibrator '${name}' has observed no data in channel ${c}`,
      );
    }
  }
}

/** One channel's resampled histogram, as the algorithms see it. */
export interface ChannelHist {
  /** `bins` equal bins over `[lo, hi]`. */
  counts: Float64Array;
  lo: number;
  hi: number;
  /** Whether this is a histogram of |x| (lo = 0). */
  abs: boolean;
}

interface HistState {
  key: string;
  hist: Hist | undefined;
}

/**
 * A calibrator over the streaming histogram: `choose` maps one channel's
 * histogram to a clipping range, which is then intersected with the observed
 * range. `shape` picks the histogram: `"abs"`, `"signed"`, or by mode (|x| when
 * symmetric).
 */
export function histogramCalibrator(
  name: string,
  opts: CalibratorOptions,
  extra: Record<string, unknown>,
  choose: (h: ChannelHist, common: CommonOptions) => [number, number],
  shape: "abs" | "signed" | "mode" = "mode",
): Calibrator {
  const common = commonOptions(opts, name);
  const bins = numberOption(opts, "bins", 2048, name);
  const oversample = numberOption(opts, "oversample", 4, name);
  if (!Number.isInteger(bins) || bins < 1 || !Number.isInteger(oversample) || oversample < 1) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${name}': bins and oversample must be positive integers, got ${bins} and ` +
        `${oversample}`,
    );
  }
  const nFine = 2 * bins * oversample;
  const state: HistState = {
    key: JSON.stringify({ ...common, bins, oversample, ...extra }),
    hist: undefined,
  };
  const abs = shape === "abs" || (shape === "mode" && common.mode === "symmetric");
  const cal: WithState<HistState> = {
    name,
    [STATE]: state,
    observe(batch: Tensor): void {
      if (batch.data.length === 0) return;
      if (!state.hist) {
        const channels = common.axis === undefined ? 1 : channelsOf(batch, common.axis, name);
        state.hist = createHist(channels, nFine);
      }
      addBatch(state.hist, batch, common.axis, name);
    },
    merge(other: Calibrator): void {
      const o = otherState(state, name, other);
      if (!o.hist) return;
      if (!state.hist) state.hist = createHist(o.hist.channels, nFine);
      if (state.hist.channels !== o.hist.channels) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `cannot merge calibrator '${name}' with ${o.hist.channels} channels into one with ` +
            `${state.hist.channels}`,
        );
      }
      mergeHist(state.hist, o.hist);
    },
    result(): CalibResult {
      const h = state.hist;
      checkObserved(h ? h.min : [], name);
      const C = h!.channels;
      const min = new Float32Array(C), max = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        const lo = h!.min[c], hi = h!.max[c];
        let a = lo, b = hi;
        if (Math.max(-lo, hi) > 0 && hi > lo) {
          const r = resample(h!, c, bins, abs);
          [a, b] = choose({ ...r, abs }, common);
        }
        min[c] = Math.max(lo, a);
        max[c] = Math.min(hi, b);
      }
      return { min, max };
    },
  };
  return cal;
}

/** Length of `axis` in `t` (checked). */
export function channelsOf(t: Tensor, axis: number, name: string): number {
  const rank = t.shape.length;
  if (axis < -rank || axis >= rank) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `calibrator '${name}': axis ${axis} is out of range for a batch of shape [${t.shape}]`,
    );
  }
  return t.shape[axis < 0 ? axis + rank : axis];
}
