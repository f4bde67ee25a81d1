/**
 * Calibrator state as plain data, to merge calibrators across workers: a
 * worker posts `snapshotCalibrator(c)` (structured-cloneable: typed arrays,
 * numbers, strings), the main thread merges it with `mergeSnapshot`.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Calibrator, CalibResult } from "../types.ts";
import { STATE, type WithState } from "./_calibrator.ts";

/** A calibrator's state, detached from the calibrator. */
export interface CalibratorSnapshot {
  /** The calibrator's registry name. */
  readonly name: string;
  /** Algorithm state (options key included); opaque, structured-cloneable. */
  readonly state: unknown;
}

/**
 * Copies a built-in calibrator's state into a snapshot that can cross a
 * worker boundary (`postMessage`) and be merged elsewhere.
 *
 * @param c a calibrator created by a built-in factory
 * @returns a deep copy of its state
 *
 * @example
 * ```ts
 * import { createCalibrator, mergeSnapshot, snapshotCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const worker = createCalibrator("percentile");
 * worker.observe(tensor(Float32Array.of(-3, 1, 2), [3]));
 * const snap = structuredClone(snapshotCalibrator(worker)); // as postMessage would
 * const main = createCalibrator("percentile");
 * mergeSnapshot(main, snap);
 * assert.deepEqual(main.result(), worker.result());
 * ```
 */
export function snapshotCalibrator(c: Calibrator): CalibratorSnapshot {
  const state = (c as Partial<WithState<unknown>>)[STATE];
  if (state === undefined) {
    throw new LowbitError(
      "UNSUPPORTED",
      `calibrator '${c.name}' does not expose its state; only built-in calibrators snapshot`,
    );
  }
  return { name: c.name, state: structuredClone(state) };
}

/**
 * Merges a snapshot (from {@link snapshotCalibrator}, possibly made in another
 * worker) into a calibrator of the same algorithm and options.
 *
 * @param c the calibrator to merge into
 * @param snap the snapshot
 *
 * @example
 * ```ts
 * import { createCalibrator, mergeSnapshot, snapshotCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const a = createCalibrator("minmax"), b = createCalibrator("minmax");
 * a.observe(tensor(Float32Array.of(1, 2), [2]));
 * b.observe(tensor(Float32Array.of(-5, 0), [2]));
 * mergeSnapshot(a, snapshotCalibrator(b));
 * assert.deepEqual([a.result().min[0], a.result().max[0]], [-5, 2]);
 * ```
 */
export function mergeSnapshot(c: Calibrator, snap: CalibratorSnapshot): void {
  const detached = (): never => {
    throw new LowbitError("UNSUPPORTED", `snapshot of '${snap.name}' is data, not a calibrator`);
  };
  const other: WithState<unknown> = {
    name: snap.name,
    [STATE]: snap.state,
    observe: detached,
    merge: detached,
    result: (): CalibResult => detached(),
  };
  c.merge(other);
}
