import assert from "node:assert/strict";
import { allocationScore, LowbitError } from "@lowbit/core";
import { foldBatchNorm, readNpy, readOnnxFile } from "@lowbit/graph";
import { scanLayers } from "../layers.ts";
import { detectTies } from "./ties.ts";
import { parseBudget, parseTolerance } from "./budget.ts";
import { candidateCost, parseCandidate } from "./candidates.ts";
import { searchMixedPrecision } from "./search.ts";
import { parseMixedOptions } from "./hook.ts";
import { measureLayerLatency } from "./latency.ts";
import { createLatencyTable } from "@lowbit/core";

const ROOT = new URL("../../../fixtures/digits/", import.meta.url);
const model = await readOnnxFile(new URL("mlp.onnx", ROOT).pathname);
const x = readNpy(await Deno.readFile(new URL("calib_x.npy", ROOT)));
const CANDS = ["int8/channel", "int4/channel", "int2/channel"];

Deno.test("parseBudget() reads bits, sizes, latency and BOPs", () => {
  assert.deepEqual(parseBudget("4.5bits"), { kind: "bits", bits: 4.5 });
  assert.deepEqual(parseBudget("200KB"), { kind: "size", bytes: 204800 });
  assert.deepEqual(parseBudget("1.5MB"), { kind: "size", bytes: 1.5 * 1024 * 1024 });
  assert.deepEqual(parseBudget("3ms"), { kind: "latency", ms: 3 });
  assert.deepEqual(parseBudget("500us"), { kind: "latency", ms: 0.5 });
  assert.deepEqual(parseBudget("2GBOPs"), { kind: "bops", bops: 2e9 });
  assert.throws(() => parseBudget("4.5 parsecs"), /unknown budget unit 'parsecs'/);
  assert.equal(parseTolerance("1%"), 0.01);
  assert.throws(() => parseTolerance("lots"), /cannot read tolerance 'lots'/);
});

Deno.test("parseMixedOptions() needs a budget or a tolerance, and bisect needs a tolerance", () => {
  assert.throws(() => parseMixedOptions({ metric: "hawq" }), /needs a budget/);
  assert.throws(
    () => parseMixedOptions({ budget: "4bits", search: "bisect" }),
    /bisect needs --tolerance/,
  );
  const s = parseMixedOptions({ budget: "4.5", "budget-size": "6KB", metric: "zeroq" });
  assert.deepEqual(s.budgets, [{ kind: "bits", bits: 4.5 }, { kind: "size", bytes: 6144 }]);
  assert.equal(s.strategy, "ilp");
});

Deno.test("candidateCost() counts block scales for MX and NVFP4", () => {
  const fc = {
    node: "fc",
    op: "Gemm",
    input: "x",
    weight: "W",
    shape: [10, 32],
    outAxis: 0,
    inAxis: 1,
    window: 1,
    groups: 1,
    out: 10,
    in: 32,
  };
  const nv = candidateCost(fc, parseCandidate("nvfp4"), 8);
  assert.deepEqual([nv.bits, nv.scaleBits, nv.tensorBits], [4, 8, 32]);
  assert.equal(candidateCost(fc, parseCandidate("int4/group:16"), 8).granularity.kind, "group");
  assert.throws(() => parseCandidate("int99/channel"), LowbitError);
});

Deno.test("searchMixedPrecision(): an infeasible budget says which and the smallest feasible one", async () => {
  await assert.rejects(
    () =>
      searchMixedPrecision({
        model,
        calib: { x },
        metric: "layer-hessian",
        candidates: ["int8/channel", "int4/channel"],
        budgets: [{ kind: "bits", bits: 3 }],
        samples: 8,
      }),
    /the bits budget 3 bits per weight is infeasible with these candidates: the smallest feasible bits budget is 4 bits per weight/,
  );
  await assert.rejects(
    () =>
      searchMixedPrecision({
        model,
        calib: { x },
        metric: "layer-hessian",
        candidates: ["int8/channel", "int4/channel"],
        budgets: [{ kind: "size", bytes: 1024 }],
        samples: 8,
      }),
    /the size budget 1 KB is infeasible with these candidates: the smallest feasible size budget is 3\.\d+ KB/,
  );
});

Deno.test("searchMixedPrecision(): a tolerance no allocation meets says so", async () => {
  await assert.rejects(
    () =>
      searchMixedPrecision({
        model,
        calib: { x },
        metric: "layer-hessian",
        strategy: "bisect",
        candidates: CANDS,
        tolerance: 0.001,
        measure: () => Promise.resolve(0.2),
        samples: 8,
      }),
    /tolerance 0.001 is not met by any allocation/,
  );
});

Deno.test("searchMixedPrecision(): the cross-entropy loss without labels says it needs labels", async () => {
  await assert.rejects(
    () =>
      searchMixedPrecision({
        model,
        calib: { x },
        metric: "hawq-v2",
        loss: "cross-entropy",
        candidates: CANDS,
        budgets: [{ kind: "bits", bits: 5 }],
      }),
    /metric 'hawq-v2' with the cross-entropy loss needs labels/,
  );
});

Deno.test("searchMixedPrecision(): every metric × strategy meets the budget on the MLP", async () => {
  for (const metric of ["hawq-v2", "hawq", "layer-hessian", "zeroq", "inter-layer"]) {
    const r = await searchMixedPrecision({
      model,
      calib: { x },
      metric,
      strategy: "ilp",
      candidates: CANDS,
      budgets: [{ kind: "bits", bits: 5 }],
      tolerance: 0.05,
      samples: 16,
      probes: 8,
      measureFrontier: 2,
    });
    assert.ok(r.cost.avgBits <= 5 + 1e-9, `${metric}: ${r.cost.avgBits} bits`);
    assert.deepEqual(r.frontier.choices.map((c) => c.strategy), [
      "ilp",
      "pareto",
      "greedy",
      "bisect",
    ]);
    const ilp = r.frontier.choices[0], pareto = r.frontier.choices[1];
    assert.ok(
      Math.abs(ilp.score - pareto.score) <= 1e-9 * Math.max(1, ilp.score),
      `${metric}: ilp ≠ pareto`,
    );
    for (const l of r.perLayer) {
      // More bits never score worse for the error-based metrics.
      if (metric !== "zeroq" && metric !== "inter-layer") {
        assert.ok(l.scores["int8/channel"] <= l.scores["int2/channel"], `${metric} ${l.node}`);
      }
    }
    assert.ok(r.frontier.points.length >= 2);
    // Two frontier points measured: the smallest and the largest, each with an output SQNR.
    const measured = r.frontier.points.filter((p) => p.sqnrDb !== undefined);
    assert.deepEqual(measured, [r.frontier.points[0], r.frontier.points.at(-1)]);
    assert.ok(measured.every((p) => p.measured !== undefined && Number.isFinite(p.sqnrDb)));
    assert.ok(measured[1].sqnrDb! > measured[0].sqnrDb!, `${metric}: more bits, more SQNR`);
    assert.ok(r.frontier.choices.every((c) => Number.isFinite(c.sqnrDb)));
  }
});

Deno.test("searchMixedPrecision(): latency budgets use the table measured on our kernels", async () => {
  const table = createLatencyTable();
  const latency = { table, measure: measureLayerLatency };
  const opts = {
    model,
    calib: { x },
    metric: "layer-hessian",
    candidates: ["int8/channel", "int4/channel", "fp8_e4m3fn/channel"],
    samples: 8,
    measureFrontier: 0,
    latency,
  };
  await assert.rejects(
    () => searchMixedPrecision({ ...opts, budgets: [{ kind: "latency", ms: 1e-9 }] }),
    /the latency budget 0 ms is infeasible with these candidates: the smallest feasible latency budget is/,
  );
  assert.equal(Object.keys(table.entries()).length, 9, "3 layers × 3 formats measured once");
  const r = await searchMixedPrecision({ ...opts, budgets: [{ kind: "latency", ms: 1e3 }] });
  assert.ok(r.cost.latencyMs !== undefined && r.cost.latencyMs > 0 && r.cost.latencyMs <= 1e3);
  assert.equal(Object.keys(table.entries()).length, 9, "cached entries are reused");
});

Deno.test("detectTies() ties the convs whose outputs meet in the CNN's residual Adds", async () => {
  const cnn = await readOnnxFile(new URL("cnn.onnx", ROOT).pathname);
  // By hand from the graph: block1/Add sums Relu(bn0(stem)) and bn2(block1/pw);
  // block2/Add sums Relu(bn1(down)) and bn2(block2/pw). Relu and BN are passed through.
  const expected = [["/stem/Conv", "/block1/pw/Conv"], ["/down/Conv", "/block2/pw/Conv"]];
  assert.deepEqual(detectTies(cnn.graph, scanLayers(cnn.graph).layers), expected);
  // The search folds BatchNormalization first; the ties stay the same.
  const folded = foldBatchNorm(cnn.graph);
  assert.deepEqual(detectTies(folded, scanLayers(folded).layers), expected);
  // The MLP has no Add or Concat between layers.
  assert.deepEqual(detectTies(model.graph, scanLayers(model.graph).layers), []);
});

Deno.test("searchMixedPrecision(): ilp and pareto respect the automatic ties on the CNN; ties: false drops them", async () => {
  const cnn = await readOnnxFile(new URL("cnn.onnx", ROOT).pathname);
  const folded = { ...cnn, graph: foldBatchNorm(cnn.graph) };
  const ties = [["/stem/Conv", "/block1/pw/Conv"], ["/down/Conv", "/block2/pw/Conv"]];
  const scores: number[] = [];
  for (const strategy of ["ilp", "pareto"]) {
    const r = await searchMixedPrecision({
      model: folded,
      calib: { x },
      metric: "layer-hessian",
      strategy,
      candidates: CANDS,
      budgets: [{ kind: "bits", bits: 3.5 }],
      samples: 16,
      measureSamples: 16,
      measureFrontier: 0,
    });
    assert.deepEqual(r.ties, ties);
    assert.ok(r.cost.avgBits <= 3.5 + 1e-9, `${strategy}: ${r.cost.avgBits}`);
    scores.push(r.frontier.choices.find((c) => c.strategy === strategy)!.score);
    for (const [a, b] of ties) {
      assert.equal(r.allocation[a], r.allocation[b], `${strategy}: ${a} vs ${b}`);
      for (const p of r.frontier.points) assert.equal(p.allocation[a], p.allocation[b]);
      for (const c of r.frontier.choices) assert.equal(c.allocation[a], c.allocation[b]);
    }
  }
  const free = await searchMixedPrecision({
    model: folded,
    calib: { x },
    metric: "layer-hessian",
    strategy: "ilp",
    candidates: CANDS,
    budgets: [{ kind: "bits", bits: 3.5 }],
    samples: 16,
    measureSamples: 16,
    measureFrontier: 0,
    ties: false,
  });
  // Both exact strategies find the same tied optimum.
  assert.ok(Math.abs(scores[0] - scores[1]) <= 1e-9 * Math.max(1, scores[0]), `${scores}`);
  assert.deepEqual(free.ties, []);
  // At 3.5 bits the untied optimum splits a tied pair (down at int2, block2/pw at int8), and
  // tying can only cost sensitivity.
  assert.ok(ties.some(([a, b]) => free.allocation[a] !== free.allocation[b]));
  assert.ok(
    allocationScore(
      free.allocation,
      Object.fromEntries(
        free.perLayer.map((l) => [l.node, l.scores]),
      ),
    ) <= scores[0] + 1e-9,
  );
});

Deno.test("parseMixedOptions() ties by default; ties=false (the CLI's --no-ties) turns them off", () => {
  assert.equal(parseMixedOptions({ budget: "4bits" }).ties, true);
  assert.equal(parseMixedOptions({ budget: "4bits", ties: "false" }).ties, false);
});
