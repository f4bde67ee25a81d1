import assert from "node:assert/strict";
import { LowbitError } from "../errors.ts";
import { binaryFormat, signMeanBinary } from "./binary.ts";

Deno.test("signMeanBinary() gives sign codes and α = mean|w|", () => {
  const r = signMeanBinary(new Float32Array([1, -3, 0, -0, 2]));
  assert.equal(r.scale, Math.fround(6 / 5));
  assert.deepEqual([...r.codes], [1, 0, 1, 1, 1]); // ±0 → +
});

Deno.test("binary decode(encode()) is α · sign and minimizes the L2 error over α", () => {
  const f = binaryFormat();
  const x = new Float32Array(100).map((_, i) => Math.sin(i * 1.3) * 2);
  const y = f.decode(f.encode(x));
  const err = (a: number) => x.reduce((s, v, i) => s + (v - a * Math.sign(y[i])) ** 2, 0);
  const a = Math.abs(y[0]);
  assert.ok(err(a) <= err(a * 1.01) && err(a) <= err(a * 0.99));
});

Deno.test("binary encode() rejects NaN and maps empty to empty", () => {
  const f = binaryFormat();
  assert.throws(() => f.encode(new Float32Array([NaN])), LowbitError);
  assert.equal(f.decode(f.encode(new Float32Array(0))).length, 0);
});
