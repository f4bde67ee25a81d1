import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import { absmeanTernary, ternaryFormat } from "./ternary.ts";
import { scaledParams } from "./scaled.ts";

Deno.test("absmeanTernary() scales by mean|w| and rounds half to even", () => {
  const { codes, scale } = absmeanTernary(new Float32Array([0.5, -0.5, 1.5, -3, 0]));
  assert.equal(scale, Math.fround(1.1)); // (0.5 + 0.5 + 1.5 + 3) / 5
  // mean |w| = 1; w / γ = [0.5, -0.5, 1.5, -2, 0.5] → [0, 0, 1, -1, 0] (±0.5 ties to 0).
  const w = new Float32Array([0.5, -0.5, 1.5, -2, 0.5]);
  const r = absmeanTernary(w);
  assert.equal(r.scale, 1);
  assert.deepEqual([...r.codes], [0, 0, 1, 3, 0]);
  assert.equal(codes.length, 5);
});

Deno.test("absmeanTernary() floors the scale at 1e-5 and handles all zeros", () => {
  const r = absmeanTernary(new Float32Array(8));
  assert.equal(r.scale, Math.fround(1e-5));
  assert.ok(r.codes.every((c) => c === 0));
});

Deno.test("ternary encode() attaches γ and decode() applies it", () => {
  const f = ternaryFormat();
  const x = new Float32Array([2, -2, 0.9, 3.1]); // mean 2
  const codes = f.encode(x);
  assert.equal(scaledParams(codes).tensorScale, 2);
  assert.deepEqual([...f.decode(codes)], [2, -2, 0, 2]);
  assert.deepEqual([...f.decode(codes.slice())], [1, -1, 0, 1]); // bare codes: unit grid
});

Deno.test("ternary encode() rejects NaN and Inf, and maps empty to empty", () => {
  const f = ternaryFormat();
  assert.throws(() => f.encode(new Float32Array([1, NaN])), LowbitError);
  assert.throws(() => f.encode(new Float32Array([Infinity])), /non-finite/);
  assert.equal(f.encode(new Float32Array(0)).length, 0);
  assert.equal(f.decode(new Uint8Array(0)).length, 0);
});
