import assert from "node:assert/strict";
import { createExecutor } from "@lowbit/graph";
import { digitsCalib, digitsModel } from "./_testdata.ts";
import { sliceBatch } from "./dataset.ts";
import { describeGuard, guardQuantize } from "./guard.ts";
import { holdMaxDelta } from "./guard_delta.ts";
import { quantize, type QuantizeResult } from "./quantize.ts";
import { runnableModel } from "./simulate.ts";

/** Max |Δ| of the first output over the first `n` samples, computed here from the two models. */
async function maxAbsDelta(r: QuantizeResult, n: number): Promise<number> {
  const calib = await digitsCalib();
  const x = sliceBatch(calib, 0, n);
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
  // Each kept layer is in the returned plan in its precision, and the options replay it.
  const entries = h.result.quantized.plan.entries;
  for (const k of h.report.kept) {
    const mine = entries.filter((e) => e.node === k.node);
    assert.ok(
      mine.every((e) => k.precision === "float" ? e.skip : e.skip || e.format === "int16"),
      `${k.node} ${k.precision}: ${JSON.stringify(mine.map((e) => [e.role, e.format, e.skip]))}`,
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
