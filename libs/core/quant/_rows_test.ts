import assert from "node:assert/strict";
import { rowsOf } from "./_rows.ts";

/** The definition, element by element: row = the other axes' row-major number, j = the run's. */
function reference(shape: number[], a: number, f: number): { rows: number; index: Int32Array } {
  const rank = shape.length;
  const numel = shape.reduce((x, y) => x * y, 1);
  let len = 1;
  for (let i = a; i <= a + f; i++) len *= shape[i];
  const index = new Int32Array(numel);
  const idx = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < numel; flat++) {
    let r = 0, j = 0;
    for (let i = 0; i < rank; i++) {
      if (i >= a && i <= a + f) j = j * shape[i] + idx[i];
      else r = r * shape[i] + idx[i];
    }
    index[r * len + j] = flat;
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return { rows: len === 0 ? 0 : numel / len, index };
}

Deno.test("rowsOf: a hand-derived 2×3 case along each axis", () => {
  // [[0 1 2] [3 4 5]]: rows along axis 1 are the matrix rows, along axis 0 its columns.
  assert.deepEqual([...rowsOf([2, 3], { kind: "block", axis: 1, size: 3 }).index], [
    0,
    1,
    2,
    3,
    4,
    5,
  ]);
  const c = rowsOf([2, 3], { kind: "block", axis: 0, size: 2 });
  assert.equal(c.rows, 3);
  assert.deepEqual([...c.index], [0, 3, 1, 4, 2, 5]);
});

Deno.test("rowsOf equals the element-by-element definition on every axis and flatten", () => {
  for (const shape of [[4], [2, 3], [3, 1, 4], [2, 3, 4, 5], [2, 0, 3]]) {
    for (let a = 0; a < shape.length; a++) {
      for (let f = 0; a + f < shape.length; f++) {
        const got = rowsOf(shape, { kind: "block", axis: a, size: 2, flatten: f });
        const want = reference(shape, a, f);
        assert.equal(got.rows, want.rows, `${shape} axis ${a} flatten ${f}`);
        assert.deepEqual(got.index, want.index, `${shape} axis ${a} flatten ${f}`);
      }
    }
  }
});
