import assert from "node:assert/strict";
import { createRng } from "@lowbit/core";
import { createHessian, gptq } from "./gptq.ts";

function problem(rows: number, cols: number, n: number, seed: number) {
  const rng = createRng(seed);
  const w = new Float32Array(rows * cols).map(() => rng.normal());
  // Correlated inputs: x = z·M with a random mixing matrix.
  const m = new Float32Array(cols * cols).map(() => rng.normal() / Math.sqrt(cols));
  const x = new Float32Array(n * cols);
  for (let r = 0; r < n; r++) {
    const z = Array.from({ length: cols }, () => rng.normal());
    for (let j = 0; j < cols; j++) {
      let v = 0;
      for (let k = 0; k < cols; k++) v += z[k] * m[k * cols + j];
      x[r * cols + j] = v + 0.3 * z[j];
    }
  }
  return { w, x };
}

function outputError(
  w: Float32Array,
  q: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
) {
  const n = x.length / cols;
  let e = 0;
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < rows; o++) {
      let d = 0;
      for (let j = 0; j < cols; j++) d += (w[o * cols + j] - q[o * cols + j]) * x[r * cols + j];
      e += d * d;
    }
  }
  return e / n;
}

Deno.test("createHessian() accumulates 2·XᵀX/n over batches", () => {
  const h = createHessian(2);
  h.add(new Float32Array([1, 2]), 1);
  h.add(new Float32Array([3, 4]), 1);
  assert.deepEqual([h.count(), h.rows()], [2, 2]);
  // Row weights: count() sums them, rows() counts the rows that weigh anything.
  const w = createHessian(2);
  w.add(new Float32Array([1, 2, 3, 4, 5, 6]), 3, [0.25, 0, 0.5]);
  assert.deepEqual([w.count(), w.rows()], [0.75, 2]);
  assert.deepEqual([...h.result()], [10, 14, 14, 20]);
  assert.throws(() => h.add(new Float32Array(3), 1), /expected/);
});

Deno.test("gptq() beats round-to-nearest on the layer output at 3 bits", () => {
  const rows = 16, cols = 48;
  const { w, x } = problem(rows, cols, 512, 7);
  const h = createHessian(cols);
  h.add(x, 512);
  const scale = new Float32Array(rows);
  for (let o = 0; o < rows; o++) {
    let m = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(w[o * cols + j]));
    scale[o] = m / 3;
  }
  const round = (c: Float32Array) =>
    c.map((v, o) => Math.max(-4, Math.min(3, Math.round(v / scale[o]))) * scale[o]);
  const rtn = new Float32Array(w.length);
  for (let o = 0; o < rows; o++) {
    for (let j = 0; j < cols; j++) {
      rtn[o * cols + j] = round(new Float32Array(rows).fill(w[o * cols + j]))[o];
    }
  }
  for (const actOrder of [false, true]) {
    for (const blockSize of [128, 16, 5]) {
      const q = gptq(w, rows, cols, h.result(), round, { actOrder, blockSize });
      const eg = outputError(w, q, x, rows, cols), er = outputError(w, rtn, x, rows, cols);
      assert.ok(
        eg < 0.8 * er,
        `gptq ${eg} vs rtn ${er} (actOrder ${actOrder}, block ${blockSize})`,
      );
    }
  }
});

Deno.test("gptq() gives the same result whatever the block size", () => {
  const { w, x } = problem(4, 20, 64, 3);
  const h = createHessian(20);
  h.add(x, 64);
  const round = (c: Float32Array) => c.map((v) => Math.round(v * 4) / 4);
  const a = gptq(w, 4, 20, h.result(), round, { blockSize: 128 });
  const b = gptq(w, 4, 20, h.result(), round, { blockSize: 3 });
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6);
});

Deno.test("gptq() survives dead inputs and rejects wrong shapes", () => {
  const w = new Float32Array([1.3, 0.2, -0.6, 2.2]);
  const h = new Float64Array([2, 0, 0, 0]); // second input never fires
  const q = gptq(w, 2, 2, h, (c) => c.map(Math.round));
  assert.deepEqual([...q], [1, 0, -1, 0]);
  assert.throws(() => gptq(w, 2, 3, h, (c) => c), /gptq/);
});
