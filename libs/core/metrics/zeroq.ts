/**
 * `zeroq` (ZeroQ): KL(float output ‖ output with only this layer quantized),
 * measured on calibration data. A candidate's weight and activation parts are
 * measured separately and added: KL with only this layer's weight quantized
 * plus KL with only this layer's input quantized
 * (`SensitivityContext.activationDivergence`, 0 for float inputs).
 *
 * @module
 */

import type { SensitivityMetric } from "../types.ts";
import { asContext, requireCapability } from "./context.ts";

/**
 * The `zeroq` metric.
 *
 * @example
 * ```ts
 * import { zeroqMetric } from "@lowbit/core";
 * const ctx = { hasLabels: false, paramCount: () => 1, quantError: () => 0,
 *   outputDivergence: (q: Record<string, string>) => (q.l === "int4" ? 0.2 : 0) };
 * if ((await zeroqMetric.score(ctx, "l", "int4")) !== 0.2) throw new Error();
 * const act = { ...ctx, activationDivergence: () => 0.05 };
 * if (Math.abs((await zeroqMetric.score(act, "l", "int4")) - 0.25) > 1e-15) throw new Error();
 * ```
 */
export const zeroqMetric: SensitivityMetric = {
  name: "zeroq",
  async score(ctx, layer, candidate) {
    const c = asContext(ctx, "zeroq");
    return await requireCapability(c, "outputDivergence", "zeroq")({ [layer]: candidate }) +
      (await c.activationDivergence?.(layer, candidate) ?? 0);
  },
};
