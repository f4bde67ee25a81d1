/**
 * The built-in calibrator factories and a by-name constructor.
 *
 * @module
 */

import type { Calibrator, CalibratorFactory, CalibratorOptions } from "../types.ts";
import { defaultRegistry } from "../default_registry.ts";
import { emaMinmaxCalibrator, minmaxCalibrator } from "./minmax.ts";
import { percentileCalibrator } from "./percentile.ts";
import { mseCalibrator } from "./mse.ts";
import { klCalibrator } from "./kl.ts";

/**
 * The built-in calibrator factories: `minmax`, `ema-minmax`, `percentile`,
 * `mse`, `kl`.
 *
 * @returns fresh factories
 *
 * @example
 * ```ts
 * import { builtinCalibrators } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.deepEqual(builtinCalibrators().map((f) => f.name),
 *   ["minmax", "ema-minmax", "percentile", "mse", "kl"]);
 * ```
 */
export function builtinCalibrators(): CalibratorFactory[] {
  return [
    minmaxCalibrator(),
    emaMinmaxCalibrator(),
    percentileCalibrator(),
    mseCalibrator(),
    klCalibrator(),
  ];
}

/**
 * Creates a calibrator by name from the default registry (plugins included);
 * an unknown name is a `LowbitError` listing the registered calibrators.
 *
 * @param name calibrator name
 * @param opts `axis`, `format`, `mode` and algorithm options
 * @returns a fresh calibrator
 *
 * @example
 * ```ts
 * import { createCalibrator, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const c = createCalibrator("minmax");
 * c.observe(tensor(new Float32Array([-1, 5]), [2]));
 * assert.equal(c.result().max[0], 5);
 * ```
 */
export function createCalibrator(name: string, opts: CalibratorOptions = {}): Calibrator {
  return defaultRegistry().calibrators.get(name).create(opts);
}
