import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import { integerFormat } from "./integer.ts";
import { NUPES_EXPONENTS, nupesFit, nupesFormat } from "./nupes.ts";
import { scaledParams } from "./scaled.ts";
import { createRng } from "../rng.ts";

Deno.test("nupesFit() finds the exponent of data on a power grid", () => {
  const x = new Float32Array([0, 1, 8, 27, -64, 125, 216, 343]); // cubes → a = 1/3 is not searched
  const y = new Float32Array([0, 1, 4, 9, -16, 25, 36, 49]); // squares → a = 0.5
  assert.equal(nupesFit(y, 4).exponent, 0.5);
  assert.ok(nupesFit(x, 4).exponent < 0.5);
  assert.equal(NUPES_EXPONENTS[0], 0.25);
  assert.equal(NUPES_EXPONENTS.at(-1), 1.5);
});

Deno.test("nupes4 beats symmetric int4 on Laplace-like weights", () => {
  const rng = createRng(11);
  const w = new Float32Array(4096).map(() => {
    const u = rng.next() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  });
  const f = nupesFormat(4);
  const codes = f.encode(w);
  const y = f.decode(codes);
  const amax = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const int4 = integerFormat("int4", 4, true);
  const s = amax / 7;
  const u = int4.decode(int4.encode(w.map((v) => v / s))).map((v) => v * s);
  const mse = (a: Float32Array) => a.reduce((acc, v, i) => acc + (v - w[i]) ** 2, 0);
  assert.ok(mse(y) < mse(u), `nupes ${mse(y)} vs int4 ${mse(u)}`);
  assert.ok(scaledParams(codes).params[0] < 1);
});

Deno.test("nupes encode() handles zeros, rejects NaN, maps empty to empty", () => {
  const f = nupesFormat(8);
  assert.ok(f.decode(f.encode(new Float32Array(4))).every((v) => v === 0));
  assert.throws(() => f.encode(new Float32Array([Infinity])), LowbitError);
  assert.equal(f.encode(new Float32Array(0)).length, 0);
  assert.throws(() => nupesFormat(9), /2\.\.8/);
});
