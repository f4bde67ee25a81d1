import assert from "node:assert/strict";
import { createRng } from "../rng.ts";
import { LowbitError } from "../errors.ts";
import type { Allocation } from "../types.ts";
import {
  allocationCost,
  allocationScore,
  checkProblem,
  expandChoice,
  type SearchProblem,
} from "./problem.ts";
import { ilpAllocate } from "./ilp.ts";
import { paretoAllocate, paretoFrontier } from "./pareto.ts";
import { greedyAllocate } from "./greedy.ts";
import { bisectAllocate, bisectPath } from "./bisect.ts";

interface Instance {
  layers: string[];
  candidates: Record<string, string[]>;
  scores: Record<string, Record<string, number>>;
  problem: SearchProblem;
}

const FORMATS = ["int8", "int6", "int4", "int2"];
const BITS: Record<string, number> = { int8: 8, int6: 6, int4: 4, int2: 2 };

/** A random instance: monotone-ish sensitivities, size and BOPs costs, optional ties, a feasible budget. */
function randomInstance(
  seed: number,
  nLayers: number,
  twoBudgets: boolean,
  ties: boolean,
): Instance {
  const rng = createRng(seed);
  const layers = Array.from({ length: nLayers }, (_, i) => `l${i}`);
  const candidates: Record<string, string[]> = {},
    scores: Record<string, Record<string, number>> = {};
  const costs: Record<string, Record<string, Record<string, number>>> = {};
  for (const l of layers) {
    const k = 2 + rng.int(3);
    candidates[l] = FORMATS.slice(0, k);
    const params = 100 + rng.int(5000), macs = params * (1 + rng.int(30)), sens = rng.next() * 10;
    scores[l] = {}, costs[l] = {};
    for (const c of candidates[l]) {
      scores[l][c] = sens * Math.pow(2, -2 * BITS[c]) * (0.5 + rng.next());
      costs[l][c] = { size: params * BITS[c] + 32 * (1 + rng.int(4)), bops: macs * BITS[c] * 8 };
    }
  }
  let minSize = 0, maxSize = 0, minB = 0, maxB = 0;
  for (const l of layers) {
    const cs = candidates[l].map((c) => costs[l][c]);
    minSize += Math.min(...cs.map((c) => c.size));
    maxSize += Math.max(...cs.map((c) => c.size));
    minB += Math.min(...cs.map((c) => c.bops));
    maxB += Math.max(...cs.map((c) => c.bops));
  }
  const limits: Record<string, number> = { size: minSize + rng.next() * (maxSize - minSize) };
  if (twoBudgets) limits.bops = minB + (0.5 + 0.5 * rng.next()) * (maxB - minB);
  const tieList = ties && nLayers >= 4 ? [["l0", "l2"], ["l1", "l3"]] : [];
  return { layers, candidates, scores, problem: { costs, limits, ties: tieList } };
}

/** Best score over every allocation `feasible` accepts (Infinity if none is). */
function exhaustiveOptimum(
  { layers, candidates, scores }: Omit<Instance, "problem">,
  feasible: (a: Allocation) => boolean,
): number {
  let best = Infinity;
  const cur: Allocation = {};
  const rec = (i: number): void => {
    if (i === layers.length) {
      if (feasible(cur)) best = Math.min(best, allocationScore(cur, scores));
      return;
    }
    for (const c of candidates[layers[i]]) {
      cur[layers[i]] = c;
      rec(i + 1);
    }
  };
  rec(0);
  return best;
}

/** Exhaustive optimum (Infinity if nothing is feasible). */
function bruteForce(inst: Instance): number {
  const { problem } = inst;
  return exhaustiveOptimum(inst, (cur) => {
    for (const t of problem.ties ?? []) if (t.some((l) => cur[l] !== cur[t[0]])) return false;
    const c = allocationCost(cur, problem);
    for (const [r, lim] of Object.entries(problem.limits ?? {})) {
      if (c[r] > lim * (1 + 1e-12)) return false;
    }
    return true;
  });
}

function checkOptimal(inst: Instance, a: Allocation, opt: number, what: string): void {
  const c = allocationCost(a, inst.problem);
  for (const [r, lim] of Object.entries(inst.problem.limits ?? {})) {
    assert.ok(c[r] <= lim * (1 + 1e-9), `${what}: ${r} ${c[r]} over limit ${lim}`);
  }
  for (const t of inst.problem.ties ?? []) {
    for (const l of t) assert.equal(a[l], a[t[0]], `${what}: tie broken`);
  }
  const s = allocationScore(a, inst.scores);
  assert.ok(
    Math.abs(s - opt) <= 1e-9 * Math.max(1, Math.abs(opt)),
    `${what}: score ${s}, brute force ${opt}`,
  );
}

Deno.test("ilpAllocate() and paretoAllocate() return the brute-force optimum on random instances (≤ 10 layers)", async () => {
  let solved = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const n = 1 + (seed % 10);
    const inst = randomInstance(seed, n, seed % 3 === 0, seed % 4 === 0);
    const opt = bruteForce(inst);
    if (!Number.isFinite(opt)) continue;
    const args = [inst.layers, inst.candidates, inst.scores, inst.problem] as const;
    checkOptimal(inst, paretoAllocate(...args), opt, `pareto seed ${seed}`);
    checkOptimal(inst, await ilpAllocate(...args), opt, `ilp seed ${seed}`);
    const g = greedyAllocate(...args);
    assert.ok(allocationScore(g, inst.scores) >= opt - 1e-12, "greedy cannot beat the optimum");
    solved++;
  }
  assert.ok(solved >= 30, `only ${solved} feasible instances`);
});

Deno.test("checkFeasible(): an infeasible budget names the budget and the smallest feasible one", async () => {
  const inst = randomInstance(7, 4, false, false);
  const min = inst.layers.reduce(
    (s, l) => s + Math.min(...inst.candidates[l].map((c) => inst.problem.costs[l][c].size)),
    0,
  );
  const problem = { ...inst.problem, limits: { size: min - 1 }, units: { size: "bits" } };
  for (
    const run of [
      () => paretoAllocate(inst.layers, inst.candidates, inst.scores, problem),
      () => greedyAllocate(inst.layers, inst.candidates, inst.scores, problem),
      () => ilpAllocate(inst.layers, inst.candidates, inst.scores, problem),
    ]
  ) {
    await assert.rejects(async () => await run(), (e: unknown) => {
      assert.ok(e instanceof LowbitError && e.code === "INFEASIBLE");
      assert.match(e.message, new RegExp(`size budget ${min - 1} bits is infeasible`));
      assert.match(e.message, new RegExp(`smallest feasible size budget is ${min} bits`));
      return true;
    });
  }
});

Deno.test("paretoFrontier() is monotone and contains the constrained optimum", () => {
  const inst = randomInstance(11, 6, false, false);
  const f = paretoFrontier(inst.layers, inst.candidates, inst.scores, inst.problem);
  for (let i = 1; i < f.length; i++) {
    assert.ok(f[i].cost.size > f[i - 1].cost.size);
    assert.ok(f[i].score < f[i - 1].score);
  }
  const opt = bruteForce(inst);
  const best = Math.min(
    ...f.filter((p) => p.cost.size <= inst.problem.limits!.size).map((p) => p.score),
  );
  assert.ok(Math.abs(best - opt) < 1e-12);
});

Deno.test("bisectAllocate() finds the smallest path point within tolerance with few measurements", async () => {
  const inst = randomInstance(5, 8, false, false);
  const path = bisectPath(inst.layers, inst.candidates, inst.scores, inst.problem);
  for (let i = 1; i < path.length; i++) {
    assert.ok(
      allocationCost(path[i], inst.problem).size < allocationCost(path[i - 1], inst.problem).size,
    );
  }
  // The "real" loss: proportional to summed sensitivity (monotone along the path).
  let calls = 0;
  const measure = (a: Allocation): number => {
    calls++;
    return allocationScore(a, inst.scores);
  };
  const tol = allocationScore(path[Math.floor(path.length / 2)], inst.scores);
  const a = await bisectAllocate(inst.layers, inst.candidates, inst.scores, {
    ...inst.problem,
    measure,
    tolerance: tol,
  });
  const idx = path.findIndex((p) => JSON.stringify(p) === JSON.stringify(a));
  assert.ok(measure(a) <= tol);
  assert.ok(idx === path.length - 1 || measure(path[idx + 1]) > tol);
  assert.ok(calls <= Math.ceil(Math.log2(path.length)) + 4, `${calls} measurements`);
});

Deno.test("bisectAllocate(): a tolerance no allocation meets says so", async () => {
  const inst = randomInstance(5, 3, false, false);
  await assert.rejects(
    () =>
      bisectAllocate(inst.layers, inst.candidates, inst.scores, {
        ...inst.problem,
        measure: () => 0.5,
        tolerance: 0.01,
      }),
    /tolerance 0.01 is not met by any allocation: the most accurate candidate allocation measures 0.5000/,
  );
});

Deno.test("checkProblem(): tied layers without a common candidate are infeasible", () => {
  assert.throws(
    () =>
      greedyAllocate(["a", "b"], { a: ["x"], b: ["y"] }, { a: { x: 0 }, b: { y: 0 } }, {
        costs: { a: { x: { size: 1 } }, b: { y: { size: 1 } } },
        ties: [["a", "b"]],
      }),
    /tied layers 'a', 'b' share no candidate/,
  );
});

// *** (weight, activation) pair candidates with part ties ***

const ACTS = ["int8", "fp8", "none"];
const ACT_BITS: Record<string, number> = { int8: 8, fp8: 8, none: 32 };

interface PairInstance extends Instance {
  weightOf: Record<string, string>;
  actOf: Record<string, string>;
}

/**
 * A random instance over `w@a` candidates: additive sensitivities (weight term + activation
 * term, none = 0), size by weight bits only, BOPs = MACs × weight bits × activation bits, the
 * weight part tied across l0/l2 and the activation part across l1/l3/l4.
 */
function randomPairInstance(seed: number, nLayers: number): PairInstance {
  const rng = createRng(1000 + seed);
  const layers = Array.from({ length: nLayers }, (_, i) => `l${i}`);
  const candidates: Record<string, string[]> = {},
    scores: Record<string, Record<string, number>> = {};
  const costs: Record<string, Record<string, Record<string, number>>> = {};
  const weightOf: Record<string, string> = {}, actOf: Record<string, string> = {};
  for (const l of layers) {
    const ws = FORMATS.slice(0, 2 + rng.int(3));
    const as = ACTS.slice(rng.int(2));
    candidates[l] = ws.flatMap((w) => as.map((a) => `${w}@${a}`));
    const params = 100 + rng.int(5000), macs = params * (1 + rng.int(30));
    const sw = rng.next() * 10, sa = rng.next() * 1e-3;
    scores[l] = {}, costs[l] = {};
    for (const w of ws) {
      for (const a of as) {
        const c = `${w}@${a}`;
        weightOf[c] = w, actOf[c] = a;
        const act = a === "none" ? 0 : sa * (a === "fp8" ? 2 : 1) * (0.5 + rng.next());
        scores[l][c] = sw * Math.pow(2, -2 * BITS[w]) + act;
        costs[l][c] = { size: params * BITS[w] + 32, bops: macs * BITS[w] * ACT_BITS[a] };
      }
    }
  }
  let minB = 0, maxB = 0;
  for (const l of layers) {
    const bs = candidates[l].map((c) => costs[l][c].bops);
    minB += Math.min(...bs);
    maxB += Math.max(...bs);
  }
  const limits = { bops: minB + rng.next() * (maxB - minB) };
  const partTies = [
    ...(nLayers >= 3 ? [{ layers: ["l0", "l2"], part: weightOf }] : []),
    ...(nLayers >= 5 ? [{ layers: ["l1", "l3", "l4"], part: actOf }] : []),
  ];
  return {
    layers,
    candidates,
    scores,
    weightOf,
    actOf,
    problem: { costs, limits, partTies },
  };
}

/** Exhaustive optimum of a pair instance, part ties included. */
function bruteForcePairs(inst: PairInstance): number {
  const { problem } = inst;
  return exhaustiveOptimum(inst, (cur) => {
    for (const t of problem.partTies ?? []) {
      if (t.layers.some((l) => t.part[cur[l]] !== t.part[cur[t.layers[0]]])) return false;
    }
    return allocationCost(cur, problem).bops <= problem.limits!.bops * (1 + 1e-12);
  });
}

Deno.test("ilpAllocate() and paretoAllocate() return the brute-force optimum with weight@activation pairs and part ties", async () => {
  let solved = 0, mixedActs = 0;
  for (let seed = 1; seed <= 24; seed++) {
    const n = 1 + (seed % 6);
    const inst = randomPairInstance(seed, n);
    const opt = bruteForcePairs(inst);
    if (!Number.isFinite(opt)) continue;
    const args = [inst.layers, inst.candidates, inst.scores, inst.problem] as const;
    for (
      const [what, a] of [
        ["pareto", paretoAllocate(...args)],
        ["ilp", await ilpAllocate(...args)],
      ] as const
    ) {
      for (const t of inst.problem.partTies ?? []) {
        for (const l of t.layers) {
          assert.equal(
            t.part[a[l]],
            t.part[a[t.layers[0]]],
            `${what} seed ${seed}: part tie broken`,
          );
        }
      }
      checkOptimal(inst, a, opt, `${what} seed ${seed}`);
      if (new Set(Object.values(a).map((c) => inst.actOf[c])).size > 1) mixedActs++;
    }
    const g = greedyAllocate(...args);
    assert.ok(allocationScore(g, inst.scores) >= opt - 1e-12, "greedy cannot beat the optimum");
    solved++;
  }
  assert.ok(solved >= 18, `only ${solved} feasible instances`);
  assert.ok(mixedActs > 0, "no instance mixed activation formats");
});

Deno.test("checkProblem(): part-tied layers share only the tied part", () => {
  const part = { "w4@a8": "a8", "w8@a8": "a8", "w4@none": "none", "w8@none": "none" };
  const c = ["w4@a8", "w8@a8", "w4@none", "w8@none"];
  const costs = Object.fromEntries(c.map((x) => [x, { size: 1 }]));
  const groups = checkProblem(
    ["a", "b", "c"],
    { a: c, b: c, c: ["w8@a8"] },
    {
      a: { "w4@a8": 1, "w8@a8": 2, "w4@none": 3, "w8@none": 4 },
      b: { "w4@a8": 10, "w8@a8": 20, "w4@none": 30, "w8@none": 40 },
      c: { "w8@a8": 0 },
    },
    { costs: { a: costs, b: costs, c: costs }, partTies: [{ layers: ["a", "b"], part }] },
  );
  assert.equal(groups.length, 2);
  // 2 activation parts × 2 × 2 weight choices: 8 joint choices, each scored as the sum
  assert.deepEqual(groups[0].candidates, [
    "w4@a8 + w4@a8",
    "w4@a8 + w8@a8",
    "w8@a8 + w4@a8",
    "w8@a8 + w8@a8",
    "w4@none + w4@none",
    "w4@none + w8@none",
    "w8@none + w4@none",
    "w8@none + w8@none",
  ]);
  assert.equal(groups[0].score["w8@a8 + w4@a8"], 12);
  assert.equal(groups[0].cost["w4@none + w8@none"].size, 2);
  assert.deepEqual(expandChoice(groups, ["w4@none + w8@none", "w8@a8"]), {
    a: "w4@none",
    b: "w8@none",
    c: "w8@a8",
  });
  assert.throws(
    () =>
      checkProblem(["a", "b"], { a: ["w4@a8"], b: ["w4@none"] }, {
        a: { "w4@a8": 0 },
        b: { "w4@none": 0 },
      }, {
        costs: { a: { "w4@a8": { size: 1 } }, b: { "w4@none": { size: 1 } } },
        partTies: [{ layers: ["a", "b"], part }],
      }),
    /tied layers 'a', 'b' have no choice meeting their ties/,
  );
});
