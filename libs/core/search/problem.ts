/**
 * The mixed-precision allocation problem every search strategy solves: per
 * layer, a set of candidates, each with a sensitivity (lower is better) and a
 * cost per resource ("size" in bits, "bops", "latency" in ms, or any other
 * name); limits per resource; groups of layers tied to one candidate.
 *
 * Strategies take the problem as the `budget` argument of
 * `SearchStrategy.allocate`, and validate it with {@link checkProblem}.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Allocation } from "../types.ts";

/** Resource costs of one (layer, candidate), e.g. `{ size: 4096, bops: 1.2e6 }`. */
export type Costs = Readonly<Record<string, number>>;

/** Upper limits per resource, e.g. `{ size: 8 * 200 * 1024 }`. */
export type Limits = Readonly<Record<string, number>>;

/** Measures a real quality loss of an allocation (e.g. top-1 drop as a fraction). */
export type MeasureFn = (allocation: Allocation) => number | Promise<number>;

/** Everything a strategy needs besides layers, candidates and scores. */
export interface SearchProblem {
  /** cost[layer][candidate][resource]. */
  readonly costs: Readonly<Record<string, Readonly<Record<string, Costs>>>>;
  /** Limits per resource; resources without a limit are free. */
  readonly limits?: Limits;
  /** Groups of layers that must all take the same candidate (residual branches, concatenations). */
  readonly ties?: readonly (readonly string[])[];
  /**
   * Groups of layers that must agree on one part of their candidates only, e.g. the same
   * activation format for layers reading one tensor while their weight formats stay free.
   */
  readonly partTies?: readonly PartTie[];
  /** Units per resource for messages, e.g. `{ size: "bits" }`. */
  readonly units?: Readonly<Record<string, string>>;
  /** For `bisect`: measures the real loss of an allocation. */
  readonly measure?: MeasureFn;
  /** For `bisect`: the largest acceptable measured loss. */
  readonly tolerance?: number;
}

/**
 * Layers that must take candidates with equal parts: `part[candidate]` names the part (e.g.
 * "int4/channel@none" → "none"); a candidate missing from `part` is its own part.
 */
export interface PartTie {
  /** The layers. */
  readonly layers: readonly string[];
  /** Candidate → the part the layers must share. */
  readonly part: Readonly<Record<string, string>>;
}

/** Largest number of joint choices a group of part-tied layers may expand to. */
const MAX_JOINT = 200_000;

/** A tie group merged into one decision: its layers and their common candidates. */
export interface Group {
  /** Layers deciding together. */
  layers: string[];
  /** Candidates every layer of the group offers. */
  candidates: string[];
  /** Summed sensitivity per candidate. */
  score: Record<string, number>;
  /** Summed costs per candidate. */
  cost: Record<string, Record<string, number>>;
  /**
   * For part-tied groups: each joint choice (named by its members' candidates joined with " + ")
   * → the candidate of each layer, in `layers` order. Absent when the group takes one candidate.
   */
  joint?: Record<string, string[]>;
}

/**
 * Validates a problem and merges tied layers into groups.
 *
 * @param layers the layers to allocate
 * @param candidates candidates per layer
 * @param scores sensitivity per layer and candidate (lower is better)
 * @param budget the {@link SearchProblem}
 * @returns one group per independent decision, in layer order
 *
 * @example
 * ```ts
 * import { checkProblem } from "@lowbit/core";
 * const groups = checkProblem(["a", "b"], { a: ["x"], b: ["x"] }, { a: { x: 1 }, b: { x: 2 } },
 *   { costs: { a: { x: { size: 1 } }, b: { x: { size: 1 } } }, ties: [["a", "b"]] });
 * if (groups.length !== 1 || groups[0].score.x !== 3) throw new Error();
 * // a part tie: "a" and "b" must share the part after "@", their prefixes are free
 * const part = { "w4@int8": "int8", "w8@int8": "int8", "w4@none": "none" };
 * const costs = { size: 1 };
 * const joint = checkProblem(["a", "b"], { a: ["w4@int8", "w4@none"], b: ["w8@int8", "w4@none"] },
 *   { a: { "w4@int8": 1, "w4@none": 0 }, b: { "w8@int8": 1, "w4@none": 0 } },
 *   { costs: { a: { "w4@int8": costs, "w4@none": costs }, b: { "w8@int8": costs, "w4@none": costs } },
 *     partTies: [{ layers: ["a", "b"], part }] });
 * if (JSON.stringify(joint[0].candidates) !== '["w4@int8 + w8@int8","w4@none + w4@none"]') throw new Error();
 * ```
 */
export function checkProblem(
  layers: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  budget: unknown,
): Group[] {
  if (typeof budget !== "object" || budget === null || !("costs" in budget)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "the search budget must be a SearchProblem with costs",
    );
  }
  const p = budget as SearchProblem;
  for (const l of layers) {
    const cs = candidates[l];
    if (!cs || cs.length === 0) {
      throw new LowbitError("INVALID_ARGUMENT", `layer '${l}' has no candidates`);
    }
    for (const c of cs) {
      const s = scores[l]?.[c];
      if (typeof s !== "number" || Number.isNaN(s)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `no sensitivity for layer '${l}', candidate '${c}'`,
        );
      }
      if (!p.costs[l]?.[c]) {
        throw new LowbitError("INVALID_ARGUMENT", `no cost for layer '${l}', candidate '${c}'`);
      }
    }
  }
  // Union-find over full ties and part ties: each component decides together.
  const parent = new Map<string, string>();
  const find = (l: string): string => {
    let r = l;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  const union = (a: string, b: string): void => {
    const ra = find(a), rb = find(b);
    if (ra === rb) return;
    // The earlier layer is the root, so groups come out in layer order.
    if (layers.indexOf(ra) <= layers.indexOf(rb)) parent.set(rb, ra);
    else parent.set(ra, rb);
  };
  const full: string[][] = [];
  for (const tie of p.ties ?? []) {
    const known = tie.filter((l) => layers.includes(l));
    for (const l of known.slice(1)) union(known[0], l);
    if (known.length > 1) full.push(known);
  }
  const parts: { layers: string[]; part: Readonly<Record<string, string>> }[] = [];
  for (const tie of p.partTies ?? []) {
    const known = tie.layers.filter((l) => layers.includes(l));
    for (const l of known.slice(1)) union(known[0], l);
    if (known.length > 1) parts.push({ layers: known, part: tie.part });
  }
  const members = new Map<string, string[]>();
  for (const l of layers) {
    const r = find(l);
    if (!members.has(r)) members.set(r, []);
    members.get(r)!.push(l);
  }
  const out: Group[] = [];
  for (const ms of members.values()) {
    const partsHere = parts.filter((t) => t.layers.some((l) => ms.includes(l)));
    if (partsHere.length === 0) {
      // Only full ties: one candidate for all.
      const common = candidates[ms[0]].filter((c) => ms.every((m) => candidates[m].includes(c)));
      if (common.length === 0) {
        throw new LowbitError(
          "INFEASIBLE",
          `tied layers ${ms.map((m) => `'${m}'`).join(", ")} share no candidate`,
        );
      }
      const score: Record<string, number> = {}, cost: Record<string, Record<string, number>> = {};
      for (const c of common) {
        score[c] = 0;
        cost[c] = {};
        for (const m of ms) {
          score[c] += scores[m][c];
          for (const [r, v] of Object.entries(p.costs[m][c])) cost[c][r] = (cost[c][r] ?? 0) + v;
        }
      }
      out.push({ layers: ms, candidates: common, score, cost });
      continue;
    }
    out.push(jointGroup(ms, candidates, scores, p, full, partsHere));
  }
  return out;
}

/** Enumerates the joint choices of part-tied layers (depth-first, pruned by every tie). */
function jointGroup(
  ms: readonly string[],
  candidates: Readonly<Record<string, readonly string[]>>,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
  p: SearchProblem,
  full: readonly (readonly string[])[],
  parts: readonly { layers: readonly string[]; part: Readonly<Record<string, string>> }[],
): Group {
  const idx = new Map(ms.map((m, i) => [m, i]));
  // checks[i]: constraints between layer i and an earlier layer j: [j, key function].
  const checks: [number, (c: string) => string][][] = ms.map(() => []);
  const link = (a: string, b: string, key: (c: string) => string): void => {
    const i = idx.get(a), j = idx.get(b);
    if (i === undefined || j === undefined || i === j) return;
    checks[Math.max(i, j)].push([Math.min(i, j), key]);
  };
  for (const t of full) for (const l of t.slice(1)) link(t[0], l, (c) => c);
  for (const t of parts) {
    for (const l of t.layers.slice(1)) link(t.layers[0], l, (c) => t.part[c] ?? c);
  }
  const candidatesOut: string[] = [];
  const joint: Record<string, string[]> = {};
  const score: Record<string, number> = {}, cost: Record<string, Record<string, number>> = {};
  const pick: string[] = [];
  const walk = (i: number): void => {
    if (i === ms.length) {
      const name = pick.join(" + ");
      if (candidatesOut.length >= MAX_JOINT) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `tied layers ${ms.map((m) => `'${m}'`).join(", ")} have more than ${MAX_JOINT} ` +
            `joint choices; offer fewer candidates`,
        );
      }
      candidatesOut.push(name);
      joint[name] = [...pick];
      score[name] = 0;
      cost[name] = {};
      ms.forEach((m, k) => {
        score[name] += scores[m][pick[k]];
        for (const [r, v] of Object.entries(p.costs[m][pick[k]])) {
          cost[name][r] = (cost[name][r] ?? 0) + v;
        }
      });
      return;
    }
    for (const c of candidates[ms[i]]) {
      if (checks[i].some(([j, key]) => key(pick[j]) !== key(c))) continue;
      pick[i] = c;
      walk(i + 1);
    }
  };
  walk(0);
  if (candidatesOut.length === 0) {
    throw new LowbitError(
      "INFEASIBLE",
      `tied layers ${ms.map((m) => `'${m}'`).join(", ")} have no choice meeting their ties`,
    );
  }
  return { layers: [...ms], candidates: candidatesOut, score, cost, joint };
}

/**
 * Total cost of an allocation per resource.
 *
 * @param allocation candidate per layer
 * @param problem the costs
 * @returns summed cost per resource
 *
 * @example
 * ```ts
 * import { allocationCost } from "@lowbit/core";
 * const c = allocationCost({ a: "x" }, { costs: { a: { x: { size: 8 } } } });
 * if (c.size !== 8) throw new Error();
 * ```
 */
export function allocationCost(
  allocation: Allocation,
  problem: SearchProblem,
): Record<string, number> {
  const total: Record<string, number> = {};
  for (const [l, c] of Object.entries(allocation)) {
    for (const [r, v] of Object.entries(problem.costs[l]?.[c] ?? {})) {
      total[r] = (total[r] ?? 0) + v;
    }
  }
  return total;
}

/**
 * Summed sensitivity of an allocation.
 *
 * @param allocation candidate per layer
 * @param scores sensitivity per layer and candidate
 * @returns the sum
 *
 * @example
 * ```ts
 * import { allocationScore } from "@lowbit/core";
 * if (allocationScore({ a: "x" }, { a: { x: 2 } }) !== 2) throw new Error();
 * ```
 */
export function allocationScore(
  allocation: Allocation,
  scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
): number {
  let s = 0;
  for (const [l, c] of Object.entries(allocation)) s += scores[l][c];
  return s;
}

/**
 * Throws an `INFEASIBLE` error naming the first limit that even the cheapest
 * choice per group exceeds, with the smallest feasible value of that budget.
 *
 * @param groups groups from {@link checkProblem}
 * @param limits limits per resource
 * @param units units per resource for the message
 *
 * @example
 * ```ts
 * import { checkProblem, checkFeasible } from "@lowbit/core";
 * const p = { costs: { a: { x: { size: 8 } } }, limits: { size: 4 } };
 * const g = checkProblem(["a"], { a: ["x"] }, { a: { x: 0 } }, p);
 * let msg = "";
 * try { checkFeasible(g, p.limits); } catch (e) { msg = (e as Error).message; }
 * if (!msg.includes("smallest feasible size budget is 8")) throw new Error(msg);
 * ```
 */
export function checkFeasible(
  groups: readonly Group[],
  limits: Limits = {},
  units: Readonly<Record<string, string>> = {},
): void {
  for (const [r, lim] of Object.entries(limits)) {
    let min = 0;
    for (const g of groups) min += Math.min(...g.candidates.map((c) => g.cost[c][r] ?? 0));
    if (min > lim * (1 + 1e-12)) {
      const u = units[r] ? ` ${units[r]}` : "";
      throw new LowbitError(
        "INFEASIBLE",
        `${r} budget ${fmt(lim)}${u} is infeasible: the smallest feasible ${r} budget is ${
          fmt(min)
        }${u}`,
      );
    }
  }
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(6);
}

/**
 * Expands a per-group choice into a per-layer allocation.
 *
 * @param groups groups from {@link checkProblem}
 * @param choice candidate per group index
 * @returns candidate per layer
 *
 * @example
 * ```ts
 * import { expandChoice } from "@lowbit/core";
 * const a = expandChoice([{ layers: ["a", "b"], candidates: ["x"], score: { x: 0 }, cost: { x: {} } }], ["x"]);
 * if (a.b !== "x") throw new Error();
 * ```
 */
export function expandChoice(groups: readonly Group[], choice: readonly string[]): Allocation {
  const out: Allocation = {};
  groups.forEach((g, i) => {
    const each = g.joint?.[choice[i]];
    g.layers.forEach((l, k) => (out[l] = each ? each[k] : choice[i]));
  });
  return out;
}

/**
 * Whether a group choice's cost is within all limits.
 *
 * @param groups groups from {@link checkProblem}
 * @param choice candidate per group index
 * @param limits limits per resource
 * @returns true when every limit holds
 *
 * @example
 * ```ts
 * import { withinLimits } from "@lowbit/core";
 * const g = [{ layers: ["a"], candidates: ["x"], score: { x: 0 }, cost: { x: { size: 3 } } }];
 * if (!withinLimits(g, ["x"], { size: 3 }) || withinLimits(g, ["x"], { size: 2 })) throw new Error();
 * ```
 */
export function withinLimits(
  groups: readonly Group[],
  choice: readonly string[],
  limits: Limits = {},
): boolean {
  for (const [r, lim] of Object.entries(limits)) {
    let s = 0;
    groups.forEach((g, i) => (s += g.cost[choice[i]][r] ?? 0));
    if (s > lim * (1 + 1e-12)) return false;
  }
  return true;
}
