import assert from "node:assert/strict";
import { allocationScore, LowbitError } from "@lowbit/core";
import { foldBatchNorm, foldConstants, readNpy, readOnnxFile } from "@lowbit/graph";
import { scanLayers } from "../layers.ts";
import { quantize } from "../quantize.ts";
import { planToJson, writeQuantized } from "../export.ts";
import { parsePlan } from "../plan.ts";
import { loadModelFile } from "../load.ts";
import { evaluate } from "../evaluate.ts";
import { floatRunner, simulate } from "../simulate.ts";
import { detectSharedInputs, detectTies } from "./ties.ts";
import { parseBudget, parseTolerance } from "./budget.ts";
import { candidateCost, parseCandidate } from "./candidates.ts";
import { type MixedPrecisionResult, searchMixedPrecision } from "./search.ts";
import { createMixedSearch, parseMixedOptions } from "./hook.ts";
import { measureLayerLatency } from "./latency.ts";
import { createLatencyTable } from "@lowbit/core";
import { fcLayer } from "../_testdata.ts";

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
  const nv = candidateCost(fcLayer, parseCandidate("nvfp4"), 8);
  assert.deepEqual([nv.bits, nv.scaleBits, nv.tensorBits], [4, 8, 32]);
  assert.equal(
    candidateCost(fcLayer, parseCandidate("int4/group:16"), 8).granularity.kind,
    "group",
  );
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
    // Bits count what the file stores: the MLP's 6464 weights at 4 bits plus 106 fp32 channel
    // scales (64 + 32 + 10) = 29248 bits, 4.525 bits per weight.
    /the bits budget 3 bits per weight is infeasible with these candidates: the smallest feasible bits budget is 4.525 bits per weight/,
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

Deno.test("detectSharedInputs() ties the ViT's q / k / v, which read one tensor; the CNN has none", async () => {
  const vit = await readOnnxFile(new URL("vit.onnx", ROOT).pathname);
  const g = foldConstants(vit.graph);
  const shared = detectSharedInputs(scanLayers(g).layers);
  assert.deepEqual(
    shared,
    [0, 1].map((b) => ["q", "k", "v"].map((p) => `/blocks.${b}/attn/${p}/MatMul`)),
  );
  const cnn = await readOnnxFile(new URL("cnn.onnx", ROOT).pathname);
  assert.deepEqual(detectSharedInputs(scanLayers(foldBatchNorm(cnn.graph)).layers), []);
});

Deno.test("searchMixedPrecision(): residual ties share the weight format only; readers of one tensor share its activation format", async () => {
  // CNN: /stem and /block1/pw meet in an Add (weight tie), their inputs differ (activations free).
  const cnn = await readOnnxFile(new URL("cnn.onnx", ROOT).pathname);
  const folded = { ...cnn, graph: foldBatchNorm(cnn.graph) };
  const base = {
    calib: { x },
    metric: "layer-hessian",
    candidates: ["int8/channel", "int4/channel"],
    activationFormats: ["int8", "fp8_e4m3fn", "none"],
    samples: 8,
    measureFrontier: 0,
  };
  let differing = 0;
  for (const budget of [5e6, 6e6, 8e6, 12e6]) {
    const r = await searchMixedPrecision({
      ...base,
      model: folded,
      budgets: [{ kind: "bits", bits: 6 }, { kind: "bops", bops: budget }],
    });
    assert.ok(r.cost.bops <= budget * (1 + 1e-9));
    for (const t of r.ties) {
      const w = t.map((l) => r.allocation[l].split("@")[0]);
      assert.ok(
        w.every((v) => v === w[0]),
        `weight tie broken: ${JSON.stringify(t.map((l) => r.allocation[l]))}`,
      );
      if (new Set(t.map((l) => r.perLayer.find((p) => p.node === l)!.activation)).size > 1) {
        differing++;
      }
    }
  }
  assert.ok(differing > 0, "tied layers never took different activation formats");
  // ViT: q / k / v read one tensor, so they share its format even where their weights differ.
  const vit = await readOnnxFile(new URL("vit.onnx", ROOT).pathname);
  const folded2 = { ...vit, graph: foldConstants(vit.graph) };
  let mixed = 0;
  for (const bops of [6e6, 9e6, 12e6]) {
    const r = await searchMixedPrecision({
      ...base,
      model: folded2,
      candidates: ["int8/channel", "int4/channel", "int2/channel"],
      activationFormats: ["int8", "none"],
      budgets: [{ kind: "bits", bits: 5 }, { kind: "bops", bops }],
    });
    assert.equal(r.sharedInputs.length, 2);
    for (const g of r.sharedInputs) {
      const acts = g.map((l) => r.perLayer.find((p) => p.node === l)!.activation);
      assert.ok(acts.every((a) => a === acts[0]), `shared input split: ${acts}`);
    }
    if (new Set(r.perLayer.map((p) => p.activation)).size > 1) mixed++;
  }
  assert.ok(mixed > 0, "the ViT never mixed activation formats");
});

Deno.test("quantize() --preset mixed with act-formats: a BOPs budget picks float or fp8 inputs; the written model runs like the simulation and the plan replays", async () => {
  const cnn = await readOnnxFile(new URL("cnn.onnx", ROOT).pathname);
  const evalX = readNpy(await Deno.readFile(new URL("eval_x.npy", ROOT)));
  const evalY = readNpy(await Deno.readFile(new URL("eval_y.npy", ROOT)));
  const calib = { inputs: { x }, count: x.shape[0] };
  let result: MixedPrecisionResult | undefined;
  const mixedOptions = {
    budget: "5bits",
    "budget-bops": "8MBOPs",
    "act-formats": "int8,fp8_e4m3fn,none",
    candidates: "int8/channel,int4/channel,fp8_e4m3fn/channel",
    metric: "layer-hessian",
    samples: "16",
  };
  const { quantized } = await quantize({
    model: cnn,
    calib,
    preset: "mixed",
    mixedOptions,
    mixedSearch: createMixedSearch({ model: cnn, calib, onResult: (r) => (result = r) }),
  });
  const r = result!;
  assert.ok(r.cost.bops <= 8e6 && r.cost.avgBits <= 5 + 1e-9, JSON.stringify(r.cost));
  const acts = Object.values(r.activations).map((a) => a?.format ?? "none");
  assert.ok(acts.some((a) => a !== "int8"), `every input int8: ${acts}`);
  // The plan applies exactly the chosen activation formats (none: left in float).
  for (const l of quantized.layers) {
    const e = quantized.plan.entries.find((p) => p.node === l.node && p.role === "activation")!;
    const want = r.activations[l.node];
    if (want === null) assert.ok(e.skip, `${l.node} should read float`);
    else {
      assert.equal(e.format, want.format, l.node);
      assert.equal(e.skip, undefined);
      assert.ok(e.scale && e.scale[0] > 0, `${l.node} has a calibrated scale`);
    }
    const w = quantized.plan.entries.find((p) => p.node === l.node && p.role === "weight")!;
    assert.equal(w.format, r.specs[l.node].format);
  }
  // The written lowbit file runs exactly like the simulation.
  const dir = await Deno.makeTempDir();
  try {
    await writeQuantized(quantized, `${dir}/cnn.mixed.lowbit`);
    const loaded = await loadModelFile(`${dir}/cnn.mixed.lowbit`);
    const data = { inputs: { x: evalX }, count: evalX.shape[0] };
    const sim = await evaluate(floatRunner(cnn), simulate(quantized), data, { labels: evalY });
    const file = await evaluate(floatRunner(cnn), loaded.runner, data, { labels: evalY });
    assert.equal(file.top1_quant, sim.top1_quant);
    assert.ok(Math.abs(file.sqnr_db - sim.sqnr_db) < 1e-6, `${file.sqnr_db} vs ${sim.sqnr_db}`);
    assert.ok(sim.top1_quant! > 0.9, `top-1 ${sim.top1_quant}`);
    // Replaying the plan gives the same entries (activation formats and scales included).
    const plan = parsePlan(JSON.parse(planToJson(quantized.plan)));
    const again = await quantize({ model: cnn, calib, plan });
    assert.deepEqual(again.quantized.plan.entries, quantized.plan.entries);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("searchMixedPrecision(): latency is looked up per (weight, activation) pair", async () => {
  const table = createLatencyTable();
  const r = await searchMixedPrecision({
    model,
    calib: { x },
    metric: "layer-hessian",
    candidates: ["int8/channel"],
    activationFormats: ["int8", "none"],
    samples: 8,
    measureFrontier: 0,
    latency: { table, measure: measureLayerLatency },
    budgets: [{ kind: "latency", ms: 1e3 }],
  });
  // 3 layers × 2 pairs, int8 inputs keyed by the weight format as before, float inputs by the pair.
  const keys = Object.keys(table.entries()).map((k) => k.split("|")[1]).sort();
  assert.deepEqual(keys, ["int8", "int8", "int8", "int8@none", "int8@none", "int8@none"]);
  assert.ok(r.cost.latencyMs! > 0);
});

Deno.test("searchMixedPrecision() returns no allocation a measured point within the budget dominates", async () => {
  for (const metric of ["layer-hessian", "zeroq"]) {
    const r = await searchMixedPrecision({
      model,
      calib: { x },
      metric,
      candidates: ["int8/channel", "int4/channel", "int2/channel", "int4/group:16"],
      budgets: [{ kind: "bits", bits: 5 }],
      samples: 32,
    });
    assert.ok(r.measured !== undefined);
    for (const p of [...r.frontier.points, ...r.frontier.choices]) {
      if (p.measured === undefined || p.avgBits > 5 + 1e-9) continue;
      const dominates = p.sizeBytes <= r.cost.sizeBytes && p.measured <= r.measured! &&
        (p.sizeBytes < r.cost.sizeBytes || p.measured < r.measured!);
      assert.ok(!dominates, `${metric}: ${JSON.stringify(p.allocation)} dominates the choice`);
    }
  }
});
