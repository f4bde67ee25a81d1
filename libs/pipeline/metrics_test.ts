import assert from "node:assert/strict";
import { agreement, argmaxRows, cosine, sqnrDb } from "./metrics.ts";

Deno.test("sqnrDb() is infinite for identical outputs and 0 dB for noise as large as signal", () => {
  const a = new Float32Array([1, -2, 3]);
  assert.equal(sqnrDb(a, a), Infinity);
  assert.ok(Math.abs(sqnrDb(a, new Float32Array(3))) < 1e-9);
  assert.throws(() => sqnrDb(a, new Float32Array(2)), /differ in size/);
});

Deno.test("cosine() and argmaxRows() and agreement() agree with hand values", () => {
  assert.ok(Math.abs(cosine(new Float32Array([1, 1]), new Float32Array([2, 2])) - 1) < 1e-12);
  assert.deepEqual([...argmaxRows(new Float32Array([3, 1, 0, 9]), 2)], [0, 1]);
  assert.equal(agreement([1, 2, 3, 4], [1, 2, 0, 0]), 0.5);
});
