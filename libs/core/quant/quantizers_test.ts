import assert from "node:assert/strict";
import {
  createRng,
  defaultRegistry,
  fakeQuantize,
  fitQParams,
  LowbitError,
  rangeOf,
  tensor,
} from "@lowbit/core";

Deno.test("registered quantizers fit, quantize and dequantize like the plain functions", () => {
  const rng = createRng(21);
  const w = tensor(Float32Array.from({ length: 8 * 16 }, () => rng.normal()), [8, 16]);
  const granularity = { kind: "group", axis: 1, size: 8 } as const;
  for (
    const [name, format] of [["symmetric", "int4"], ["affine", "uint4"], [
      "symmetric",
      "fp8_e4m3fn",
    ]]
  ) {
    const q = defaultRegistry().quantizers.get(name);
    const mode = name as "symmetric" | "affine";
    const qp = q.fit(rangeOf(w, granularity), { format, granularity, mode });
    assert.deepEqual(qp, fitQParams(w, { format, granularity, mode }));
    const back = q.dequantize(q.quantize(w, qp), qp, w.shape);
    assert.deepEqual(back.data, fakeQuantize(w, qp).data, `${name} ${format}`);
  }
  assert.throws(
    () =>
      defaultRegistry().quantizers.get("symmetric").fit(rangeOf(w, granularity), {
        format: "int8",
        granularity,
        mode: "affine",
      }),
    (e: unknown) => e instanceof LowbitError && /use the 'affine' quantizer/.test(e.message),
  );
});

Deno.test("fitQParams() per-group puts each group's amax on the format's max", () => {
  const rng = createRng(22);
  const w = tensor(Float32Array.from({ length: 4 * 32 }, () => rng.normal() * 3), [4, 32]);
  for (const format of ["int8", "fp8_e4m3fn", "fp4_e2m1fn", "fp6_e2m3fn"]) {
    const granularity = { kind: "group", axis: 1, size: 16 } as const;
    const qp = fitQParams(w, { format, granularity });
    const fq = fakeQuantize(w, qp).data;
    const r = rangeOf(w, granularity);
    for (let g = 0; g < 8; g++) {
      const amax = Math.max(-r.min[g], r.max[g]);
      let worst = 0;
      for (let i = 0; i < 16; i++) {
        const k = Math.floor(g / 2) * 32 + (g % 2) * 16 + i;
        worst = Math.max(worst, Math.abs(fq[k]));
      }
      // the largest magnitude comes back to within float32 / step rounding of amax
      assert.ok(Math.abs(worst - amax) <= qp.scale[g] * 1.01, `${format} group ${g}`);
    }
  }
});
