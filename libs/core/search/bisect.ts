/**
 * Bisection over the sensitivity ordering: build the path of allocations from
 * every layer at its least sensitive candidate down to every layer at its
 * cheapest, one downgrade at a time (the downgrade costing the least
 * sensitivity per unit of size saved first), then bisect along the path for the
 * smallest model whose really measured loss (a callback, e.g. the top-1 drop on
 * calibration data) stays within the tolerance. Assumes the measured loss grows
 * along the path, as sensitivity orderings intend.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Allocation, SearchStrategy } from "../types.ts";
import { checkProblem, expandChoice, type SearchProblem } from "./problem.ts";

/**
 * The downgrade path from the least sensitive to the cheapest allocation.
 *
 * @param layers layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate
 * @param problem costs and ties
 * @param resource the resource the path saves (default: "size" if present, else the first cost)
 * @returns allocations, most accurate first, each one downgrade cheaper than the last
 *
 * @example
 * ```ts
 * import { bisectPath } from "@lowbit/core";
 * const path = bisectPath(["a", "b"], { a: ["hi", "lo"], b: ["hi", "lo"] },
 *   { a: { hi: 0, lo: 5 }, b: { hi: 0, lo: 1 } },
 *   { costs: { a: { hi: { size: 8 }, lo: { size: 4 } }, b: { hi: { size: 8 }, lo: { size: 4 } } } });
 * if (path.length !== 3 || path[1].b !== "lo" || path[1].a !== "hi") throw new Error();
 * ```
 */
export function bisectPath(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  problem: SearchProblem,
  resource?: string,
): Allocation[] {
  const groups = checkProblem(layers, candidates, scores, problem);
  const first = groups[0]?.candidates[0];
  const r = resource ??
    (groups.length && "size" in groups[0].cost[first]
      ? "size"
      : Object.keys(groups[0]?.cost[first] ?? {})[0]);
  const cost = (gi: number, c: string): number => groups[gi].cost[c][r] ?? 0;
  const cost0 = (g: (typeof groups)[number], c: string): number => g.cost[c][r] ?? 0;
  // NOTE: the path starts at the most accurate allocation: least sensitive, ties to the costlier.
  const choice = groups.map((g) =>
    g.candidates.reduce((b, c) =>
      g.score[c] < g.score[b] || (g.score[c] === g.score[b] && cost0(g, c) > cost0(g, b)) ? c : b
    )
  );
  const path: Allocation[] = [expandChoice(groups, choice)];
  for (;;) {
    let move: [number, string] | undefined, bestRate = Infinity;
    groups.forEach((g, i) => {
      for (const c of g.candidates) {
        const saved = cost(i, choice[i]) - cost(i, c);
        if (saved <= 0) continue;
        const rate = (g.score[c] - g.score[choice[i]]) / saved;
        if (rate < bestRate) {
          bestRate = rate;
          move = [i, c];
        }
      }
    });
    if (!move) break;
    choice[move[0]] = move[1];
    path.push(expandChoice(groups, choice));
  }
  return path;
}

/**
 * The smallest allocation along {@link bisectPath} whose measured loss is within the tolerance.
 *
 * @param layers layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate
 * @param problem costs, ties, `measure` and `tolerance`
 * @returns candidate per layer
 *
 * @example
 * ```ts
 * import { bisectAllocate } from "@lowbit/core";
 * const a = await bisectAllocate(["a", "b"], { a: ["hi", "lo"], b: ["hi", "lo"] },
 *   { a: { hi: 0, lo: 5 }, b: { hi: 0, lo: 1 } },
 *   { costs: { a: { hi: { size: 8 }, lo: { size: 4 } }, b: { hi: { size: 8 }, lo: { size: 4 } } },
 *     measure: (al) => (al.a === "lo" ? 0.05 : 0) + (al.b === "lo" ? 0.001 : 0), tolerance: 0.01 });
 * if (a.a !== "hi" || a.b !== "lo") throw new Error();
 * ```
 */
export async function bisectAllocate(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  problem: SearchProblem,
): Promise<Allocation> {
  const { measure, tolerance } = problem;
  if (!measure || tolerance === undefined) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "bisect needs a tolerance and a measure callback (e.g. --tolerance 1%)",
    );
  }
  const path = bisectPath(layers, candidates, scores, problem);
  const first = await measure(path[0]);
  if (first > tolerance) {
    throw new LowbitError(
      "INFEASIBLE",
      `tolerance ${tolerance} is not met by any allocation: the most accurate candidate allocation measures ${
        first.toPrecision(4)
      }`,
    );
  }
  // Invariant: path[lo] meets the tolerance; path[hi + 1..] are assumed not to.
  let lo = 0, hi = path.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await measure(path[mid])) <= tolerance) lo = mid;
    else hi = mid - 1;
  }
  return path[lo];
}

/**
 * The `bisect` search strategy (its `budget` is a {@link SearchProblem} with `measure` and `tolerance`).
 *
 * @example
 * ```ts
 * import { bisectStrategy } from "@lowbit/core";
 * const a = await bisectStrategy.allocate(["a"], { a: ["x", "y"] }, { a: { x: 0, y: 1 } },
 *   { costs: { a: { x: { size: 2 }, y: { size: 1 } } }, measure: () => 0, tolerance: 0.01 });
 * if (a.a !== "y") throw new Error();
 * ```
 */
export const bisectStrategy: SearchStrategy = {
  name: "bisect",
  allocate: (layers, candidates, scores, budget) =>
    bisectAllocate(layers, candidates, scores, budget as SearchProblem),
};
