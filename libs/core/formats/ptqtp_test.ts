import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import { ptqtpFit, ptqtpFormat } from "./ptqtp.ts";
import { absmeanTernary } from "./ternary.ts";
import { createRng } from "../rng.ts";

function gaussian(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return new Float32Array(n).map(() => rng.normal());
}

Deno.test("ptqtpFit() beats a single absmean trit-plane on Gaussian weights", () => {
  const w = gaussian(1024, 7);
  const fit = ptqtpFit(w, { groupSize: 128 });
  let e2 = 0, e1 = 0;
  const one = absmeanTernary(w.subarray(0, 128));
  for (let i = 0; i < 128; i++) {
    const t = one.codes[i] === 3 ? -1 : one.codes[i];
    e1 += (w[i] - one.scale * t) ** 2;
    e2 += (w[i] - fit.alpha1[0] * fit.t1[i] - fit.alpha2[0] * fit.t2[i]) ** 2;
  }
  assert.ok(e2 < 0.5 * e1, `two planes ${e2} vs one ${e1}`);
  assert.equal(fit.alpha1.length, 8);
  assert.ok(fit.t1.every((t) => t >= -1 && t <= 1) && fit.t2.every((t) => t >= -1 && t <= 1));
});

Deno.test("ptqtpFit() error does not increase with more iterations", () => {
  const w = gaussian(256, 3);
  const err = (iters: number) => {
    const f = ptqtpFit(w, { groupSize: 256, iterations: iters });
    return w.reduce((s, v, i) => s + (v - f.alpha1[0] * f.t1[i] - f.alpha2[0] * f.t2[i]) ** 2, 0);
  };
  const e0 = err(0), e1 = err(1), e5 = err(5), e20 = err(20);
  assert.ok(e1 <= e0 + 1e-9 && e5 <= e1 + 1e-9 && e20 <= e5 + 1e-9, `${e0} ${e1} ${e5} ${e20}`);
});

Deno.test("ptqtp encode() packs (T1, T2) in 4 bits and attaches α per group", () => {
  const f = ptqtpFormat(4);
  const x = new Float32Array([3, -1, 2, 0, 6, -2, 4, 0, 1]); // 3 groups, last of 1
  const codes = f.encode(x);
  const params = (codes as unknown as { params: Float32Array }).params;
  assert.equal(params.length, 6);
  const y = f.decode(codes);
  y.forEach((v, i) => assert.ok(Math.abs(v - x[i]) < 1e-4, `${i}: ${v} vs ${x[i]}`));
  assert.ok(codes.every((c) => c < 16 && (c & 3) !== 2 && (c >> 2) !== 2));
  assert.deepEqual([...f.values()], [-2, -1, 0, 1, 2]);
});

Deno.test("ptqtp rejects bad input and maps empty to empty", () => {
  assert.throws(() => ptqtpFit(new Float32Array([NaN])), LowbitError);
  assert.throws(() => ptqtpFit(new Float32Array(4), { groupSize: 0 }), /group size/);
  const f = ptqtpFormat();
  assert.equal(f.name, "ptqtp");
  assert.equal(f.decode(f.encode(new Float32Array(0))).length, 0);
  const z = f.decode(f.encode(new Float32Array(5)));
  assert.ok(z.every((v) => v === 0));
});
