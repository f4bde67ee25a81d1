import assert from "node:assert/strict";
import { etaText } from "./progress.ts";

Deno.test("etaText extrapolates the mean rate since the start, linearly", () => {
  // Hand-derived: 25 of 100 steps in 10 s → 75 more at 0.4 s each = 30 s.
  assert.equal(etaText(10_000, 25, 100), "~30s");
  // 34 s search, 80 % done after 27.2 s → 6.8 s left (the old bar read 13 min here).
  assert.equal(etaText(27_200, 80, 100), "~7s");
  // 1 of 30 steps in 65 s → 29 × 65 s = 31 min 25 s.
  assert.equal(etaText(65_000, 1, 30), "~31m25s");
  assert.equal(etaText(3_600_000, 1, 3), "~2h00m");
});

Deno.test("etaText promises nothing too early and nothing after the end", () => {
  assert.equal(etaText(500, 50, 100), "…"); // under a second
  assert.equal(etaText(60_000, 2, 100), "…"); // under 3 % of the steps
  assert.equal(etaText(60_000, 0, 100), "…");
  assert.equal(etaText(1_000, 100, 100), "0s");
  assert.equal(etaText(1_000, 120, 100), "0s");
});
