/**
 * Pareto-frontier allocation by dynamic programming over the budget (ZeroQ,
 * HAWQ-V2): layers are added one at a time, keeping only the (cost, summed
 * sensitivity) points no other point dominates. The result is exact; with more
 * than `maxPoints` points per step the cheapest-resource axis is bucketed.
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
} from "./problem.ts";

/** One point of a frontier. */
export interface FrontierPoint {
  /** Cost per limited resource (or the chosen resource for {@link paretoFrontier}). */
  cost: Record<string, number>;
  /** Summed sensitivity. */
  score: number;
  /** The allocation. */
  allocation: Allocation;
}

interface Pt {
  cost: number[];
  score: number;
  choice: string[];
}

function dominates(a: Pt, b: Pt): boolean {
  if (a.score > b.score) return false;
  for (let i = 0; i < a.cost.length; i++) if (a.cost[i] > b.cost[i]) return false;
  return true;
}

function prune(points: Pt[], maxPoints: number): Pt[] {
  points.sort((a, b) => a.score - b.score || a.cost[0] - b.cost[0]);
  const kept: Pt[] = [];
  for (const p of points) {
    if (p.cost.length === 1) {
      // NOTE: sorted by score, so p survives iff it is strictly cheaper than every kept point.
      if (kept.length === 0 || p.cost[0] < kept[kept.length - 1].cost[0]) kept.push(p);
    } else if (!kept.some((k) => dominates(k, p))) {
      kept.push(p);
    }
  }
  if (kept.length <= maxPoints) return kept;
  // Bucket along the first resource, keeping the best score per bucket.
  const lo = Math.min(...kept.map((p) => p.cost[0])), hi = Math.max(...kept.map((p) => p.cost[0]));
  const width = (hi - lo) / maxPoints || 1;
  const bucket = new Map<number, Pt>();
  for (const p of kept) {
    const b = Math.floor((p.cost[0] - lo) / width);
    const cur = bucket.get(b);
    if (!cur || p.score < cur.score) bucket.set(b, p);
  }
  return [...bucket.values()];
}

function dp(
  groups: readonly Group[],
  resources: readonly string[],
  limits: readonly number[],
  maxPoints: number,
): Pt[] {
  // Cheapest remaining cost per resource after group i, to drop points that cannot finish within limits.
  const rest: number[][] = groups.map(() => resources.map(() => 0));
  for (let i = groups.length - 2; i >= 0; i--) {
    const g = groups[i + 1];
    rest[i] = resources.map((r, k) =>
      rest[i + 1][k] + Math.min(...g.candidates.map((c) => g.cost[c][r] ?? 0))
    );
  }
  let points: Pt[] = [{ cost: resources.map(() => 0), score: 0, choice: [] }];
  groups.forEach((g, i) => {
    const next: Pt[] = [];
    for (const p of points) {
      for (const c of g.candidates) {
        const cost = resources.map((r, k) => p.cost[k] + (g.cost[c][r] ?? 0));
        if (cost.some((v, k) => v + rest[i][k] > limits[k] * (1 + 1e-12))) continue;
        next.push({ cost, score: p.score + g.score[c], choice: [...p.choice, c] });
      }
    }
    points = prune(next, maxPoints);
  });
  return points;
}

/**
 * The Pareto frontier of (cost on one resource, summed sensitivity), cheapest first.
 *
 * @param layers layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate
 * @param problem costs and ties (limits are ignored)
 * @param resource which resource to trade against (default "size")
 * @param maxPoints bucket the frontier above this many points (default 4096)
 * @returns non-dominated points, ascending cost and descending score
 *
 * @example
 * ```ts
 * import { paretoFrontier } from "@lowbit/core";
 * const f = paretoFrontier(["a"], { a: ["hi", "lo"] }, { a: { hi: 0, lo: 1 } },
 *   { costs: { a: { hi: { size: 8 }, lo: { size: 4 } } } });
 * if (f.length !== 2 || f[0].allocation.a !== "lo") throw new Error();
 * ```
 */
export function paretoFrontier(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  problem: SearchProblem,
  resource = "size",
  maxPoints = 4096,
): FrontierPoint[] {
  const groups = checkProblem(layers, candidates, scores, problem);
  const pts = dp(groups, [resource], [Infinity], maxPoints);
  return pts
    .sort((a, b) => a.cost[0] - b.cost[0])
    .map((p) => ({
      cost: { [resource]: p.cost[0] },
      score: p.score,
      allocation: expandChoice(groups, p.choice),
    }));
}

/**
 * Allocation with the least summed sensitivity within every limit, by DP over the frontier.
 *
 * @param layers layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate
 * @param problem costs, limits and ties
 * @param maxPoints bucket the frontier above this many points (default 4096)
 * @returns candidate per layer
 *
 * @example
 * ```ts
 * import { paretoAllocate } from "@lowbit/core";
 * const a = paretoAllocate(["a", "b"], { a: ["hi", "lo"], b: ["hi", "lo"] },
 *   { a: { hi: 0, lo: 5 }, b: { hi: 0, lo: 1 } },
 *   { costs: { a: { hi: { size: 8 }, lo: { size: 4 } }, b: { hi: { size: 8 }, lo: { size: 4 } } }, limits: { size: 12 } });
 * if (a.a !== "hi" || a.b !== "lo") throw new Error();
 * ```
 */
export function paretoAllocate(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  problem: SearchProblem,
  maxPoints = 4096,
): Allocation {
  const groups = checkProblem(layers, candidates, scores, problem);
  const limits = problem.limits ?? {};
  checkFeasible(groups, limits, problem.units);
  const resources = Object.keys(limits);
  const pts = dp(groups, resources, resources.map((r) => limits[r]), maxPoints);
  if (pts.length === 0) {
    throw new LowbitError(
      "INFEASIBLE",
      "no allocation meets all limits together: " + JSON.stringify(limits),
    );
  }
  let best = pts[0];
  for (const p of pts) if (p.score < best.score) best = p;
  return expandChoice(groups, best.choice);
}

/**
 * The `pareto` search strategy (its `budget` is a {@link SearchProblem}).
 *
 * @example
 * ```ts
 * import { paretoStrategy } from "@lowbit/core";
 * const a = await paretoStrategy.allocate(["a"], { a: ["x"] }, { a: { x: 0 } }, { costs: { a: { x: { size: 1 } } } });
 * if (a.a !== "x") throw new Error();
 * ```
 */
export const paretoStrategy: SearchStrategy = {
  name: "pareto",
  allocate: (layers, candidates, scores, budget) =>
    paretoAllocate(layers, candidates, scores, budget as SearchProblem),
};
