import assert from "node:assert/strict";
import { createExecutor, modelOf } from "@lowbit/graph";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { type Dataset, sliceBatch } from "./dataset.ts";
import { describeGuard, guardQuantize } from "./guard.ts";
import { holdMaxDelta } from "./guard_delta.ts";
import { quantize, type QuantizeResult } from "./quantize.ts";
import { runnableModel } from "./simulate.ts";
import { silentProgress } from "./progress_api.ts";

/** Max |Δ| of the first output over the first `n` samples, computed here from the two models. */
async function maxAbsDelta(r: QuantizeResult, n: number, data?: Dataset): Promise<number> {
  const x = sliceBatch(data ?? await digitsCalib(), 0, n);
  const out = r.prepared.graph.outputs[0].name;
  const a = (await createExecutor(r.prepared).run(x))[out].data as Float32Array;
  const b = (await createExecutor(runnableModel(r.quantized)).run(x))[out].data as Float32Array;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("holdMaxDelta() leaves a result within the bound as it is", async () => {
  const model = await digitsModel("mlp");
  const options = { model, calib: await digitsCalib() };
  const first = await quantize(options);
  const d0 = await maxAbsDelta(first, 16);
  const h = await holdMaxDelta(options, first, {
    data: options.calib,
    maxDelta: 2 * d0,
    samples: 16,
  });
  assert.equal(h.result, first);
  assert.ok(Math.abs(h.report.initial - d0) <= 1e-6 * d0, `${h.report.initial} vs ${d0}`);
  assert.deepEqual([h.report.met, h.report.kept, h.report.remedies, h.warnings], [
    true,
    [],
    [],
    [],
  ]);
});

Deno.test("holdMaxDelta() keeps layers in int16 / float until the max |Δ| holds, and lists them", async () => {
  const model = await digitsModel("cnn");
  const options = { model, calib: await digitsCalib() };
  const first = await quantize(options);
  const d0 = await maxAbsDelta(first, 16);
  // A tenth of the w8a8 figure: only wider formats reach it.
  const bound = d0 / 10;
  const h = await holdMaxDelta(options, first, {
    data: options.calib,
    maxDelta: bound,
    samples: 16,
  });
  const d1 = await maxAbsDelta(h.result, 16);
  assert.ok(Math.abs(h.report.final - d1) <= 1e-6 * d0, `${h.report.final} vs ${d1}`);
  assert.ok(h.report.met && d1 <= bound, `max |Δ| ${d0} → ${d1}, bound ${bound}`);
  assert.ok(h.report.kept.length > 0);
  // Each kept layer is in the returned plan in its precision (a layer whose input alone is
  // kept: its weight in the preset's int8), and the options replay it.
  const entries = h.result.quantized.plan.entries;
  for (const k of h.report.kept) {
    const mine = entries.filter((e) => e.node === k.node);
    const wide = (role: string) => k.part === "input" && role === "weight" ? "int8" : "int16";
    assert.ok(
      mine.every((e) => k.precision === "float" ? e.skip : e.skip || e.format === wide(e.role)),
      `${k.node} ${k.part} ${k.precision}: ${
        JSON.stringify(mine.map((e) => [e.role, e.format, e.skip]))
      }`,
    );
  }
  const again = await quantize(h.options);
  assert.ok(Math.abs(await maxAbsDelta(again, 16) - d1) <= 1e-6 * d0);
  assert.match(
    h.warnings[0],
    new RegExp(`^accuracy guard \\(--max-delta ${bound}\\): max \\|Δ\\|`),
  );
  assert.match(h.warnings[0], /kept in (int16|float): '/);
});

Deno.test("guardQuantize() with maxDelta reports the bound and describes it", async () => {
  const model = await digitsModel("cnn");
  const options = { model, calib: await digitsCalib() };
  const first = await quantize(options);
  const d0 = await maxAbsDelta(first, 16);
  const g = await guardQuantize(options, first, {
    data: options.calib,
    minSqnrDb: null,
    maxDelta: d0 / 10,
    samples: 16,
  });
  assert.ok(g.report.maxDelta?.met, JSON.stringify(g.report.maxDelta));
  assert.ok(await maxAbsDelta(g.result, 16) <= d0 / 10);
  assert.match(
    describeGuard(g.report),
    /; max \|Δ\| [\d.e-]+ ≤ [\d.e-]+ \(was [\d.e-]+\)(; applied [^;]+)?; kept: /,
  );
  // Checked, not changed, when the guard may not fix (a replayed plan).
  const c = await guardQuantize(options, first, {
    data: options.calib,
    minSqnrDb: null,
    maxDelta: d0 / 10,
    samples: 16,
    fix: false,
  });
  assert.equal(c.report.maxDelta?.met, false);
  assert.ok(c.result.warnings.some((w) => /is above --max-delta .*checked, not changed/.test(w)));
});

Deno.test("holdMaxDelta() keeps only the input of a layer in int16 when its int8 weight holds the bound", async () => {
  // y = x·W, one layer: x's int8 range is set by one outlier (100, in a sample the guard does not
  // measure), so its step (0.78) costs much;
  // W's per-column int8 grids cost little (at most half a step, 1/255, of each column's largest).
  const model = modelOf({
    name: "fc",
    nodes: [{ name: "fc", op: "Gemm", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs: {} }],
    inputs: [{ name: "x", dtype: "float32", shape: ["N", 2] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: {
      W: { dtype: "float32", shape: [2, 3], data: Float32Array.of(1, -0.3, 0.7, 0.45, 1, -0.2) },
    },
  });
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(1.7 * i) * 2);
  x[62] = 100; // the last sample's: the guard measures the first 16
  const calib: Dataset = {
    inputs: { x: { dtype: "float32", shape: [32, 2], data: x } },
    count: 32,
  };
  const options = { model, calib, progress: silentProgress() };
  const first = await quantize(options);
  // Measured here: the input alone in int16 (a rule) against plain int8.
  const inputWide = await quantize({
    ...options,
    rules: [{ match: "fc", activation: { format: "int16" } }],
  });
  const [d8, dIn] = [await maxAbsDelta(first, 16, calib), await maxAbsDelta(inputWide, 16, calib)];
  assert.ok(dIn < d8 / 4, `int8 ${d8}, input in int16 ${dIn}`);
  const bound = 2 * dIn;
  const h = await holdMaxDelta(options, first, { data: calib, maxDelta: bound, samples: 16 });
  // Kept whole in int16 first (the only layer), then its weight back in int8.
  assert.deepEqual(h.report.kept.map((k) => [k.node, k.part, k.precision]), [
    ["fc", "input", "int16"],
  ]);
  const formats = h.result.quantized.plan.entries.map((e) => [e.role, e.format]);
  assert.deepEqual(formats, [["weight", "int8"], ["activation", "int16"]]);
  const d = await maxAbsDelta(h.result, 16, calib);
  assert.ok(Math.abs(d - dIn) <= 1e-6 * d8 && h.report.met, `${d} vs ${dIn}`);
  assert.match(h.warnings[0], /kept in int16: the input of 'fc'/);
});
