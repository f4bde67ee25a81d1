// The log grids against values derived by hand: log-domain rounding thresholds at base^−(k+½),
// the smallest level or 0 below it, sign and magnitude for signed tensors, and codes that decode
// to what fake-quantization gives.
import assert from "node:assert/strict";
import { createRegistry, LowbitError, registerBuiltins, tensor } from "@lowbit/core";
import { logFakeQuant, logQuantizer } from "./log_quantizer.ts";

const r = createRegistry();
registerBuiltins(r);
const unsigned = { min: Float32Array.of(0), max: Float32Array.of(1) };
const opts = { format: "int4", granularity: { kind: "tensor" as const }, mode: "affine" as const };

Deno.test("log2, 4 bits, unsigned: 15 levels 2^0 … 2^−14 and 0, rounded in the log domain", () => {
  const q = logQuantizer("log2", r);
  const qp = q.fit(unsigned, opts);
  assert.deepEqual(qp.extra, { base: [2], signed: [0] });
  const x = Float32Array.of(1, 0.8, 0.7, 0.36, 0.3, 2 ** -14, 2 ** -15, 1e-6, 0, -0.5, 1.7);
  // 0.8 ≥ 2^−½ = 0.7071 → 1; 0.7 below it → ½; 0.36 ≥ 2^−1.5 = 0.3536 → ½; 0.3 → ¼;
  // 2^−15 is half the smallest level (a tie, kept); 1e−6 → 0; negatives → 0; above 1 → 1.
  const want = [1, 1, 0.5, 0.5, 0.25, 2 ** -14, 2 ** -14, 0, 0, 0, 1];
  assert.deepEqual([...q.fakeQuant(tensor(x, [x.length]), qp).data], want);
  const codes = q.quantize(tensor(x, [x.length]), qp);
  assert.deepEqual([...codes], [1, 1, 2, 2, 3, 15, 15, 0, 0, 0, 1]);
  assert.deepEqual([...q.dequantize(codes, qp, [x.length]).data], want);
});

Deno.test("logsqrt2, 4 bits: levels (√2)^−k", () => {
  const q = logQuantizer("logsqrt2", r);
  const qp = q.fit(unsigned, opts);
  const b = Math.fround(Math.SQRT2);
  // −log_√2 0.3 = 3.47 → k = 3; −log_√2 0.6 = 1.47 → k = 1; −log_√2 0.55 = 1.73 → k = 2
  const y = q.fakeQuant(tensor(Float32Array.of(0.3, 0.6, 0.55), [3]), qp).data;
  assert.deepEqual([...y], [b ** -3, b ** -1, b ** -2].map(Math.fround));
  // the smallest of 15 levels is (√2)^−14 = 2^−7
  assert.equal(q.fakeQuant(tensor(Float32Array.of(0.006), [1]), qp).data[0], Math.fround(b ** -14));
});

Deno.test("adalog with a signed range: sign and magnitude, 7 levels per sign", () => {
  const q = logQuantizer("adalog", r);
  const qp = q.fit({ min: Float32Array.of(-0.2), max: Float32Array.of(4) }, opts);
  assert.deepEqual(qp.extra, { base: [2], signed: [1] });
  assert.equal(qp.scale[0], 4);
  // levels 4, 2, 1, ½, ¼, ⅛, 1/16; −3 ≥ 4·2^−½ = 2.83 → −4; 1.5 ≥ 4·2^−1.5 = 1.41 → 2;
  // −0.02 < 1/32 → 0; 0.04 ≥ 1/32 → 1/16
  const x = tensor(Float32Array.of(-3, 1.5, -0.02, 0.04), [4]);
  assert.deepEqual([...q.fakeQuant(x, qp).data], [-4, 2, 0, 0.0625]);
  assert.deepEqual([...q.quantize(x, qp)], [8 | 1, 2, 0, 7]);
  // another base (as the fit stage writes it)
  const b3 = { ...qp, extra: { base: [3], signed: [1] } };
  assert.deepEqual([...q.fakeQuant(tensor(Float32Array.of(1.5, 0.5), [2]), b3).data], [
    Math.fround(4 / 3),
    Math.fround(4 / 9),
  ]);
});

Deno.test("log quantizers refuse bad parameters with a LowbitError", () => {
  const q = logQuantizer("log2", r);
  const qp = q.fit(unsigned, opts);
  const x = tensor(Float32Array.of(0.5), [1]);
  assert.throws(() => q.fakeQuant(x, { ...qp, extra: { base: [3] } }), LowbitError);
  assert.throws(() => q.fakeQuant(x, { ...qp, extra: {} }), /extra.base > 1/);
  assert.throws(() =>
    logFakeQuant(Float32Array.of(NaN), {
      scale: 1,
      base: 2,
      levels: 3,
      signed: false,
    }), LowbitError);
});
