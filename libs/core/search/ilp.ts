/**
 * The HAWQ-V3 integer program, solved with HiGHS (npm `highs`, WebAssembly):
 *
 *     minimise   Σ_l Σ_c s_{l,c} · x_{l,c}
 *     subject to Σ_c x_{l,c} = 1                       for every layer group l
 *                Σ_l Σ_c cost_r(l,c) · x_{l,c} ≤ B_r   for every limited resource r
 *                x_{l,c} ∈ {0, 1}
 *
 * Tied layers (residual branches, concatenated inputs) share one set of
 * decision variables, which is the same as adding x_{a,c} = x_{b,c}. Scores
 * and costs are rescaled (objective by its largest |s|, each budget row by its
 * limit) so that the solver's tolerances mean the same on every model; the
 * MIP gap is set to zero so that the optimum is exact.
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

interface HighsColumn {
  Primal: number;
}
interface HighsResult {
  Status: string;
  Columns: Record<string, HighsColumn>;
}
interface HighsSolver {
  solve(lp: string, options?: Record<string, unknown>): HighsResult;
}

let solver: Promise<HighsSolver> | undefined;

async function loadHighs(): Promise<HighsSolver> {
  if (!solver) {
    solver = (async () => {
      // NOTE: highs is CommonJS; depending on the loader its factory is `default` or `default.default`.
      const mod = (await import("highs")) as any;
      const factory = typeof mod.default === "function" ? mod.default : mod.default.default;
      return (await factory()) as HighsSolver;
    })();
  }
  return await solver;
}

function num(x: number): string {
  // NOTE: LP text wants plain decimals; 17 significant digits round-trip a double.
  if (x === 0) return "0";
  return x.toPrecision(17).replace(/\.?0+(e|$)/, "$1");
}

/**
 * Writes the allocation problem in CPLEX LP format (the text HiGHS reads).
 *
 * @param groups groups from `checkProblem`
 * @param limits limits per resource
 * @returns the LP text; variable `x_i_j` is group i taking its j-th candidate
 *
 * @example
 * ```ts
 * import { checkProblem, ilpText } from "@lowbit/core";
 * const p = { costs: { a: { x: { size: 1 } } }, limits: { size: 2 } };
 * const lp = ilpText(checkProblem(["a"], { a: ["x"] }, { a: { x: 1 } }, p), p.limits);
 * if (!lp.includes("Binary") || !lp.includes("x_0_0")) throw new Error(lp);
 * ```
 */
export function ilpText(
  groups: readonly Group[],
  limits: Readonly<Record<string, number>>,
): string {
  let scale = 0;
  for (const g of groups) {
    for (const c of g.candidates) scale = Math.max(scale, Math.abs(g.score[c]));
  }
  scale = scale || 1;
  const terms = (f: (g: Group, c: string) => number): string => {
    const parts: string[] = [];
    groups.forEach((g, i) =>
      g.candidates.forEach((c, j) => {
        const v = f(g, c);
        if (v !== 0) parts.push(`${v < 0 ? "-" : "+"} ${num(Math.abs(v))} x_${i}_${j}`);
      })
    );
    return parts.length ? parts.join(" ") : "0 x_0_0";
  };
  const lines = ["Minimize", ` obj: ${terms((g, c) => g.score[c] / scale)}`, "Subject To"];
  groups.forEach((g, i) =>
    lines.push(` one_${i}: ${g.candidates.map((_, j) => `x_${i}_${j}`).join(" + ")} = 1`)
  );
  Object.entries(limits).forEach(([r, lim], k) => {
    if (!Number.isFinite(lim)) return;
    const denom = Math.abs(lim) || 1;
    lines.push(
      ` budget_${k}: ${terms((g, c) => (g.cost[c][r] ?? 0) / denom)} <= ${num(lim / denom)}`,
    );
  });
  lines.push("Binary");
  groups.forEach((g, i) => lines.push(" " + g.candidates.map((_, j) => `x_${i}_${j}`).join(" ")));
  lines.push("End");
  return lines.join("\n");
}

/**
 * Optimal allocation by integer programming (HiGHS).
 *
 * @param layers layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate (lower is better)
 * @param problem costs, limits and ties
 * @returns candidate per layer minimising the summed sensitivity within the limits
 *
 * @example
 * ```ts
 * import { ilpAllocate } from "@lowbit/core";
 * const a = await ilpAllocate(["a", "b"], { a: ["hi", "lo"], b: ["hi", "lo"] },
 *   { a: { hi: 0, lo: 5 }, b: { hi: 0, lo: 1 } },
 *   { costs: { a: { hi: { size: 8 }, lo: { size: 4 } }, b: { hi: { size: 8 }, lo: { size: 4 } } }, limits: { size: 12 } });
 * if (a.a !== "hi" || a.b !== "lo") throw new Error();
 * ```
 */
export async function ilpAllocate(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  problem: SearchProblem,
): Promise<Allocation> {
  const groups = checkProblem(layers, candidates, scores, problem);
  const limits = problem.limits ?? {};
  checkFeasible(groups, limits, problem.units);
  const highs = await loadHighs();
  const res = highs.solve(ilpText(groups, limits), {
    output_flag: false,
    mip_rel_gap: 0,
    mip_abs_gap: 0,
    mip_feasibility_tolerance: 1e-9,
    primal_feasibility_tolerance: 1e-9,
  });
  if (res.Status !== "Optimal") {
    const what = res.Status === "Infeasible"
      ? "no allocation meets all limits together: " + JSON.stringify(limits)
      : `HiGHS ended with status '${res.Status}'`;
    throw new LowbitError(res.Status === "Infeasible" ? "INFEASIBLE" : "INTERNAL", what);
  }
  const choice = groups.map((g, i) => {
    let best = 0;
    g.candidates.forEach((_, j) => {
      if (
        (res.Columns[`x_${i}_${j}`]?.Primal ?? 0) > (res.Columns[`x_${i}_${best}`]?.Primal ?? 0)
      ) best = j;
    });
    return g.candidates[best];
  });
  return expandChoice(groups, choice);
}

/**
 * The `ilp` search strategy (its `budget` is a {@link SearchProblem}).
 *
 * @example
 * ```ts
 * import { ilpStrategy } from "@lowbit/core";
 * const a = await ilpStrategy.allocate(["a"], { a: ["x", "y"] }, { a: { x: 1, y: 0 } },
 *   { costs: { a: { x: { size: 1 }, y: { size: 2 } } } });
 * if (a.a !== "y") throw new Error();
 * ```
 */
export const ilpStrategy: SearchStrategy = {
  name: "ilp",
  allocate: (layers, candidates, scores, budget) =>
    ilpAllocate(layers, candidates, scores, budget as SearchProblem),
};
