/**
 * The greedy baseline: start every layer at its least sensitive candidate, then
 * repeatedly take the downgrade with the smallest sensitivity increase per unit
 * of budget overshoot saved, until every limit holds.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Allocation, SearchStrategy } from "../types.ts";
import {
  checkFeasible,
  checkProblem,
  expandChoice,
  type Group,
  type SearchProblem,
  withinLimits,
} from "./problem.ts";

/**
 * Greedy allocation under the problem's limits.
 *
 * @param layers layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate (lower is better)
 * @param problem costs, limits and ties
 * @returns candidate per layer
 *
 * @example
 * ```ts
 * import { greedyAllocate } from "@lowbit/core";
 * const a = greedyAllocate(["a", "b"], { a: ["hi", "lo"], b: ["hi", "lo"] },
 *   { a: { hi: 0, lo: 5 }, b: { hi: 0, lo: 1 } },
 *   { costs: { a: { hi: { size: 8 }, lo: { size: 4 } }, b: { hi: { size: 8 }, lo: { size: 4 } } }, limits: { size: 12 } });
 * if (a.a !== "hi" || a.b !== "lo") throw new Error(JSON.stringify(a));
 * ```
 */
export function greedyAllocate(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  problem: SearchProblem,
): Allocation {
  const groups = checkProblem(layers, candidates, scores, problem);
  const limits = problem.limits ?? {};
  checkFeasible(groups, limits, problem.units);
  const choice = groups.map((g) => best(g));
  while (!withinLimits(groups, choice, limits)) {
    const over = overshoot(groups, choice, limits);
    let bestMove: [number, string] | undefined, bestRate = Infinity;
    groups.forEach((g, i) => {
      for (const c of g.candidates) {
        const next = [...choice];
        next[i] = c;
        const saved = over - overshoot(groups, next, limits);
        if (saved <= 1e-15) continue;
        const rate = (g.score[c] - g.score[choice[i]]) / saved;
        if (rate < bestRate) {
          bestRate = rate;
          bestMove = [i, c];
        }
      }
    });
    if (!bestMove) {
      throw new LowbitError("INFEASIBLE", `greedy found no allocation within ${fmtLimits(limits)}`);
    }
    choice[bestMove[0]] = bestMove[1];
  }
  return expandChoice(groups, choice);
}

function best(g: Group): string {
  let b = g.candidates[0];
  for (const c of g.candidates) {
    if (g.score[c] < g.score[b] || (g.score[c] === g.score[b] && sum(g.cost[c]) < sum(g.cost[b]))) {
      b = c;
    }
  }
  return b;
}

function sum(c: Record<string, number>): number {
  return Object.values(c).reduce((a, b) => a + b, 0);
}

/** Σ over violated resources of (cost − limit) / limit. */
function overshoot(
  groups: readonly Group[],
  choice: readonly string[],
  limits: Readonly<Record<string, number>>,
): number {
  let o = 0;
  for (const [r, lim] of Object.entries(limits)) {
    let s = 0;
    groups.forEach((g, i) => (s += g.cost[choice[i]][r] ?? 0));
    if (s > lim) o += (s - lim) / Math.max(Math.abs(lim), 1e-30);
  }
  return o;
}

function fmtLimits(l: Readonly<Record<string, number>>): string {
  return Object.entries(l).map(([r, v]) => `${r} ≤ ${v}`).join(", ");
}

/**
 * The `greedy` search strategy (its `budget` is a {@link SearchProblem}).
 *
 * @example
 * ```ts
 * import { greedyStrategy } from "@lowbit/core";
 * const a = await greedyStrategy.allocate(["a"], { a: ["x"] }, { a: { x: 0 } }, { costs: { a: { x: { size: 1 } } } });
 * if (a.a !== "x") throw new Error();
 * ```
 */
export const greedyStrategy: SearchStrategy = {
  name: "greedy",
  allocate: (layers, candidates, scores, budget) =>
    greedyAllocate(layers, candidates, scores, budget as SearchProblem),
};
