/**
 * Hessian-aware metrics: `hawq-v2` (Hutchinson trace per parameter × ‖Q(W) − W‖²,
 * HAWQ-V2) and `hawq` (top Hessian eigenvalue × ‖Q(W) − W‖², HAWQ). Both are the
 * second-order Taylor estimate ½ ΔWᵀ H ΔW of the loss increase with H replaced
 * by its average (trace / n) or worst-case (λ_max) curvature; the ½ is dropped.
 *
 * @module
 */

import type { SensitivityMetric } from "../types.ts";
import { asContext, requireCapability } from "./context.ts";

/**
 * `hawq-v2`: tr(H_l) / n_l · ‖Q(W_l) − W_l‖².
 *
 * @example
 * ```ts
 * import { hawqV2Metric } from "@lowbit/core";
 * const ctx = { hasLabels: true, paramCount: () => 4, quantError: () => 0.5, hessianTrace: () => 8 };
 * if ((await hawqV2Metric.score(ctx, "l", "int4")) !== 1) throw new Error();
 * ```
 */
export const hawqV2Metric: SensitivityMetric = {
  name: "hawq-v2",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "hawq-v2");
    const trace = await requireCapability(c, "hessianTrace", "hawq-v2")(layer);
    return (trace / c.paramCount(layer)) * (await c.quantError(layer, candidate));
  },
};

/**
 * `hawq`: λ_max(H_l) · ‖Q(W_l) − W_l‖².
 *
 * @example
 * ```ts
 * import { hawqMetric } from "@lowbit/core";
 * const ctx = { hasLabels: true, paramCount: () => 4, quantError: () => 0.5, topEigenvalue: () => 3 };
 * if ((await hawqMetric.score(ctx, "l", "int4")) !== 1.5) throw new Error();
 * ```
 */
export const hawqMetric: SensitivityMetric = {
  name: "hawq",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "hawq");
    const lambda = await requireCapability(c, "topEigenvalue", "hawq")(layer);
    return lambda * (await c.quantError(layer, candidate));
  },
};
