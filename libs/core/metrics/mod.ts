/**
 * Sensitivity metrics for mixed-precision search, as formulas over a
 * {@link SensitivityContext} that the graph side implements: `hawq-v2`, `hawq`,
 * `layer-hessian`, `zeroq`, `inter-layer`.
 *
 * @example
 * ```ts
 * import { builtinMetrics } from "@lowbit/core";
 * if (builtinMetrics().length !== 5) throw new Error();
 * ```
 *
 * @module
 */

import type { SensitivityMetric } from "../types.ts";
import { hawqMetric, hawqV2Metric } from "./hawq.ts";
import { interLayerMetric } from "./inter_layer.ts";
import { layerHessianMetric } from "./layer_hessian.ts";
import { zeroqMetric } from "./zeroq.ts";

export * from "./context.ts";
export * from "./hawq.ts";
export * from "./layer_hessian.ts";
export * from "./zeroq.ts";
export * from "./inter_layer.ts";

/**
 * The built-in sensitivity metrics, in registration order.
 *
 * @returns `hawq-v2`, `hawq`, `layer-hessian`, `zeroq`, `inter-layer`
 *
 * @example
 * ```ts
 * import { builtinMetrics } from "@lowbit/core";
 * if (builtinMetrics()[0].name !== "hawq-v2") throw new Error();
 * ```
 */
export function builtinMetrics(): SensitivityMetric[] {
  return [hawqV2Metric, hawqMetric, layerHessianMetric, zeroqMetric, interLayerMetric];
}
