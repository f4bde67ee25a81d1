// The histogram algorithms against the independent numpy reference
// (tools/fixtures/calib_reference.py): same histograms in, same thresholds out.

import assert from "node:assert/strict";
import {
  klLevels,
  klThreshold,
  lpSearchRange,
  percentileRange,
  percentileThreshold,
  type QuantMode,
} from "@lowbit/core";

interface RefSet {
  amax: number;
  min: number;
  max: number;
  absHist: number[];
  signedHist: number[];
  kl: Record<string, { threshold: number; bins: number }>;
  percentile: Record<string, number>;
  percentileRange: Record<string, [number, number]>;
  mse: { format: string; mode: QuantMode; p: number; range: [number, number]; candidate: number }[];
}

const ref = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/calib_reference.json", import.meta.url)),
) as { bins: number; sets: Record<string, RefSet> };

Deno.test("klThreshold() matches the numpy TensorRT entropy reference within one bin", () => {
  let exact = 0, total = 0;
  for (const [name, s] of Object.entries(ref.sets)) {
    const h = Float64Array.from(s.absHist);
    const w = s.amax / ref.bins;
    for (const [fmt, want] of Object.entries(s.kl)) {
      const got = klThreshold(h, s.amax, { levels: klLevels(fmt) });
      assert.ok(
        Math.abs(got - want.threshold) <= w * 1.0000001,
        `${name} ${fmt}: got ${got} (${got / w} bins), reference ${want.threshold} (${want.bins})`,
      );
      total++;
      if (Math.abs(got - want.threshold) < w / 2) exact++;
    }
  }
  assert.ok(exact >= total - 1, `only ${exact} of ${total} thresholds on the same bin`);
});

Deno.test("percentileThreshold() and percentileRange() equal the numpy reference", () => {
  for (const [name, s] of Object.entries(ref.sets)) {
    for (const [pct, want] of Object.entries(s.percentile)) {
      assert.equal(
        percentileThreshold(Float64Array.from(s.absHist), s.amax, Number(pct)),
        want,
        `${name} ${pct}`,
      );
      assert.deepEqual(
        percentileRange(Float64Array.from(s.signedHist), s.min, s.max, Number(pct)),
        s.percentileRange[pct],
        `${name} ${pct} two-sided`,
      );
    }
  }
});

Deno.test("lpSearchRange() picks the reference candidate on int, FP8 and FP4 grids", () => {
  let exact = 0, total = 0;
  for (const [name, s] of Object.entries(ref.sets)) {
    const h = Float64Array.from(s.signedHist);
    for (const c of s.mse) {
      const [a, b] = lpSearchRange(h, s.min, s.max, { format: c.format, mode: c.mode, p: c.p });
      const step = (c.mode === "symmetric" ? Math.max(-s.min, s.max) : s.max) / 100;
      const where = `${name} ${c.format} ${c.mode} p=${c.p}: got [${a}, ${b}], ref ${c.range}`;
      assert.ok(Math.abs(b - c.range[1]) <= step * 1.0000001, where);
      total++;
      if (b === c.range[1] && a === c.range[0]) exact++;
    }
  }
  assert.ok(exact >= total - 1, `only ${exact} of ${total} candidates identical`);
});
