import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { readSchedule, scheduleFromBetas } from "./schedule.ts";
import { fileURLToPath } from "node:url";

const BETAS = fileURLToPath(new URL("../../fixtures/ddpm/betas.npy", import.meta.url));

Deno.test("schedule coefficients, derived by hand for betas 0.1, 0.2", () => {
  const s = scheduleFromBetas([0.1, 0.2]);
  const f = Math.fround;
  // ᾱ = 0.9, 0.9·0.8 = 0.72 (in float64 from the float32 betas, then rounded)
  const b0 = f(0.1), b1 = f(0.2), ab1 = (1 - b0) * (1 - b1);
  assert.deepEqual([...s.alphaBar], [f(1 - b0), f(ab1)]);
  assert.equal(s.c1[1], f(1 / Math.sqrt(1 - b1)));
  assert.equal(s.c2[1], f(b1 / Math.sqrt(1 - ab1)));
  assert.equal(s.sigma[0], f(Math.sqrt(b0)));
  assert.equal(s.sqrtOneMinusAlphaBar[1], f(Math.sqrt(0.28)));
  assert.ok(Math.abs(s.alphaBar[1] - 0.72) < 1e-7);
});

Deno.test("the fixture's schedule: 50 linear betas from 0.002 to 0.4", async () => {
  const s = await readSchedule(BETAS);
  assert.equal(s.T, 50);
  assert.equal(s.betas[0], Math.fround(0.002));
  assert.equal(s.betas[49], Math.fround(0.4));
  // PROVENANCE: ᾱ_49 = 7.7e-6
  assert.ok(Math.abs(s.alphaBar[49] - 7.7e-6) < 0.05e-6, String(s.alphaBar[49]));
});

Deno.test("a schedule whose length disagrees with --timesteps is a clear error naming the file", async () => {
  const e = await readSchedule(BETAS, 100).catch((e) => e);
  assert.ok(e instanceof LowbitError);
  assert.equal(e.code, "SHAPE_MISMATCH");
  assert.match(e.message, /betas\.npy'.*50 betas but --timesteps is 100/);
  assert.throws(() => scheduleFromBetas([0.1, 1.5]), /beta\[1\] = 1\.5/);
  const missing = await readSchedule("/no/such/betas.npy").catch((e) => e);
  assert.equal(missing.code, "IO_ERROR");
});
