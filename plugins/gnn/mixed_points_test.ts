// Per-component bits (LPGNAS): `--preset mixed --budget-act B` allocates the formats of the
// aggregation inputs and outputs (the plugin's search-group points) under an average-bits budget.
// Checked against a brute force over every assignment, each point's score against the float32
// executor with that point alone fake-quantized, and the plan against the allocation.
import assert from "node:assert/strict";
import { createRegistry, LowbitError, registerBuiltins, type Registry } from "@lowbit/core";
import { createExecutor } from "@lowbit/graph";
import { fakeQuantActivation, fitActivation, quantize } from "@lowbit/pipeline";
import { createMixedSearch, type MixedPrecisionResult } from "@lowbit/pipeline/search";
import { aggregationPoints, plugin } from "./mod.ts";
import { graphInputs, model } from "./_fixtures.ts";

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

const BITS: Record<string, number> = { int4: 4, int8: 8, none: 32 };

Deno.test({
  name: "mixed search: --budget-act allocates the aggregation points' bits (brute force agrees)",
  sanitizeResources: false,
  async fn() {
    const m = await model("gin_edges");
    const inputs = await graphInputs("gin_edges");
    let result: MixedPrecisionResult | undefined;
    const r = registry();
    const { quantized } = await quantize({
      model: m,
      calib: { inputs: {}, count: 1, whole: { ...inputs } },
      preset: "mixed",
      registry: r,
      mixedSearch: createMixedSearch({
        model: m,
        calib: { inputs: {}, count: 1, whole: { ...inputs } },
        onResult: (x) => (result = x),
      }),
      mixedOptions: {
        budget: "7bits",
        metric: "layer-hessian",
        candidates: "int8/channel,int4/channel",
        "act-formats": "int4,int8",
        "budget-act": "6",
      },
    });
    const points = result!.points!;
    const gemms = m.graph.nodes.filter((n) => n.op === "Gemm").map((n) => n.name);
    assert.deepEqual(points.perPoint.map((p) => p.value), aggregationPoints(m.graph, gemms));
    assert.equal(points.perPoint.length, 4);

    // The brute force: every assignment within 6 bits per element, the least summed score.
    const pp = points.perPoint;
    const total = pp.reduce((s, p) => s + p.elements, 0);
    let best = Infinity, bestPick = "";
    for (let mask = 0; mask < 1 << pp.length; mask++) {
      const pick = pp.map((_, i) => (mask >> i & 1 ? "int8" : "int4"));
      const bits = pp.reduce((s, p, i) => s + p.elements * BITS[pick[i]], 0);
      if (bits > 6 * total) continue;
      const score = pp.reduce((s, p, i) => s + p.scores[pick[i]], 0);
      if (score < best) [best, bestPick] = [score, pick.join()];
    }
    assert.equal(pp.map((p) => p.format).join(), bestPick);
    assert.ok(points.avgBits <= 6 && points.avgBits > 4, String(points.avgBits));
    assert.ok(pp.some((p) => p.format === "int4") && pp.some((p) => p.format === "int8"));

    // One score, recomputed on the float32 executor: the point alone at int4, min / max range.
    const p = pp[1];
    const exec = createExecutor(m, { registry: r });
    const out = m.graph.outputs[0].name;
    let seen: Float32Array | undefined;
    const y = (await exec.run(inputs, {
      watch: [p.value],
      observe: (n, t) => n === p.value && (seen = (t.data as Float32Array).slice()),
    }))[out].data as Float32Array;
    let min = Infinity, max = -Infinity;
    for (const v of seen!) [min, max] = [Math.min(min, v), Math.max(max, v)];
    const entry = {
      node: "",
      value: p.value,
      role: "activation" as const,
      format: "int4",
      granularity: { kind: "tensor" as const },
      mode: "affine" as const,
      calibrator: "minmax",
    };
    const qp = fitActivation(entry, { min: Float32Array.of(min), max: Float32Array.of(max) });
    const fitted = { ...entry, scale: [...qp.scale], zeroPoint: [...qp.zeroPoint] };
    const yq = (await exec.run(inputs, {
      transform: (n, t) =>
        n === p.value
          ? {
            dtype: "float32",
            shape: [...t.shape],
            data: fakeQuantActivation(t.data as Float32Array, t.shape, fitted, -1),
          }
          : undefined,
    }))[out].data as Float32Array;
    let err = 0, energy = 0;
    for (let i = 0; i < y.length; i++) {
      [err, energy] = [err + (yq[i] - y[i]) ** 2, energy + y[i] ** 2];
    }
    assert.ok(Math.abs(err / energy - p.scores.int4) <= 1e-3 * p.scores.int4, `${err / energy}`);

    // The plan quantizes each point with the chosen format and the plugin's quantizer.
    for (const q of pp) {
      const e = quantized.plan.entries.find((x) => x.role === "activation" && x.value === q.value)!;
      assert.equal(e.format, q.format, q.value);
      assert.equal(e.quantizer, "gnn-degree");
    }
  },
});

Deno.test("--budget-act: below every format's bits, or on a model without points, is refused", async () => {
  const m = await model("gin_edges");
  const inputs = await graphInputs("gin_edges");
  const run = (reg: Registry, budgetAct: string) =>
    quantize({
      model: m,
      calib: { inputs: {}, count: 1, whole: { ...inputs } },
      preset: "mixed",
      registry: reg,
      mixedSearch: createMixedSearch({ model: m, calib: { inputs: {}, count: 1, whole: inputs } }),
      mixedOptions: { budget: "7bits", "act-formats": "int4,int8", "budget-act": budgetAct },
    }).then(() => undefined, (e) => e);
  const low = await run(registry(), "3bits");
  assert.ok(low instanceof LowbitError && low.code === "INFEASIBLE", String(low));
  assert.match(low.message, /activation budget 3 bits .* the smallest is 4 bits/);
  const bare = createRegistry();
  registerBuiltins(bare); // no plugin: no search groups, no points
  const none = await run(bare, "6bits");
  assert.ok(none instanceof LowbitError, String(none));
  assert.match(none.message, /--budget-act: this model has no activation points/);
});
