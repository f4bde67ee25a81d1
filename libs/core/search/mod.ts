/**
 * Mixed-precision search: the allocation problem, cost models (size, BOPs,
 * latency) and the built-in strategies `ilp`, `pareto`, `bisect`, `greedy`.
 *
 * @example
 * ```ts
 * import { builtinStrategies } from "@lowbit/core";
 * if (builtinStrategies().map((s) => s.name).join() !== "ilp,pareto,bisect,greedy") throw new Error();
 * ```
 *
 * @module
 */

import type { SearchStrategy } from "../types.ts";
import { bisectStrategy } from "./bisect.ts";
import { greedyStrategy } from "./greedy.ts";
import { ilpStrategy } from "./ilp.ts";
import { paretoStrategy } from "./pareto.ts";

export * from "./problem.ts";
export * from "./cost.ts";
export * from "./greedy.ts";
export * from "./pareto.ts";
export * from "./ilp.ts";
export * from "./bisect.ts";

/**
 * The built-in search strategies, in the order they are registered.
 *
 * @returns `ilp`, `pareto`, `bisect`, `greedy`
 *
 * @example
 * ```ts
 * import { builtinStrategies, createRegistry } from "@lowbit/core";
 * const r = createRegistry();
 * for (const s of builtinStrategies()) r.strategies.register(s);
 * if (!r.strategies.has("ilp")) throw new Error();
 * ```
 */
export function builtinStrategies(): SearchStrategy[] {
  return [ilpStrategy, paretoStrategy, bisectStrategy, greedyStrategy];
}
