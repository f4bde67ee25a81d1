/**
 * Mixed-precision search on a model: the graph-side sensitivity context
 * (Hessians by autodiff, captured inputs, output divergences), candidates,
 * budgets, and {@link searchMixedPrecision}, plus the hook that
 * `lowbit quantize --preset mixed` calls.
 *
 * @example
 * ```ts
 * import { parseBudget } from "@lowbit/pipeline/search";
 * if (parseBudget("4.5bits").kind !== "bits") throw new Error();
 * ```
 *
 * @module
 */

export * from "./candidates.ts";
export * from "./budget.ts";
export * from "./context.ts";
export * from "./search.ts";
export * from "./points.ts";
export * from "./hook.ts";
export * from "./latency.ts";
export * from "./ties.ts";
