// The gnn-degree quantizer on the hand-derived graph of degrees_test.ts (in-degrees 1, 4, 2, 0, 1;
// three bins [0,2) [2,4) [4,∞): nodes 0, 3, 4 in bin 0, node 2 in bin 1, node 1 in bin 2), int4
// symmetric (codes -8..7): each bin's scale is its rows' largest |x| / 7.5, as lowbit's symmetric
// fit spreads the range over the 15 steps; every value rounded by hand.
import assert from "node:assert/strict";
import { defaultRegistry, LowbitError } from "@lowbit/core";
import { type DegreeLayout, degreeQuantizer, fitDegreeParams, rowSets } from "./mod.ts";
import { ADJ, EDGES } from "./_small_graph.ts";

const t = {
  shape: [5, 2],
  // node 0 (bin 0), node 1 (bin 2, the hub), node 2 (bin 1), node 3 (bin 0), node 4 (bin 0)
  data: Float32Array.of(0.75, -0.26, 7.5, 2.6, 1.5, 0.46, 0.1, 0, -0.36, 0.2),
};
const layout = (protect = 0, protectFloat = false): DegreeLayout => ({
  bins: 3,
  protect,
  protectFloat,
  source: { input: "edge_index", kind: "edges", row: 1 },
});
const degrees = Int32Array.of(1, 4, 2, 0, 1);
const q = degreeQuantizer(defaultRegistry());
const ctx = { batch: 0, tags: {}, inputs: { edge_index: EDGES } as never };

function close(got: Float32Array, want: number[]): void {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
}

Deno.test("per-bin scales: bin 0 |x| ≤ 0.75, bin 1 ≤ 1.5, bin 2 ≤ 7.5; protected set at int8", () => {
  const qp = fitDegreeParams(t, degrees, layout(), { format: "int4", mode: "symmetric" });
  close(qp.scale.subarray(0, 3), [0.1, 0.2, 1]);
  assert.deepEqual([...qp.zeroPoint], [0, 0, 0, 0]);
  // no protected node: the protected set takes the whole tensor's range, int8: 7.5 / 127.5
  close(qp.scale.subarray(3), [1 / 17]);
  assert.deepEqual(qp.reads, ["edge_index"]);
  assert.deepEqual(qp.extra, {
    bins: [3],
    protect: [0],
    protect_float: [0],
    source_kind: [1],
    source_row: [1],
  });
});

Deno.test("fake-quant picks each row's set from run-time degrees", () => {
  const qp = fitDegreeParams(t, degrees, layout(), { format: "int4", mode: "symmetric" });
  const y = q.fakeQuant(t, qp, ctx).data;
  // 0.75/0.1 = 7.5 → code 7 at most, -0.26/0.1 = -2.6 → -3; 7.5 → 7, 2.6 → 3;
  // 1.5/0.2 → 7, 0.46/0.2 = 2.3 → 2; 0.1 → 1, 0 → 0; -0.36/0.1 = -3.6 → -4, 0.2 → 2
  close(y, [0.7, -0.3, 7, 3, 1.4, 0.4, 0.1, 0, -0.4, 0.2]);
  // the dense form of the same graph gives the same degrees, so the same values
  const dense = {
    ...qp,
    extra: { ...qp.extra, source_kind: [0], source_row: [-1] },
    reads: ["adj"],
  };
  assert.deepEqual(q.fakeQuant(t, dense, { ...ctx, inputs: { adj: ADJ } as never }).data, y);
  // another graph: node 3 becomes the hub (in-degree 4) and uses bin 2's scale 1: 0.1 → 0
  const other = {
    dtype: "int64",
    shape: [2, 4],
    data: BigInt64Array.of(0n, 1n, 2n, 4n, 3n, 3n, 3n, 3n),
  };
  const z = q.fakeQuant(t, qp, { ...ctx, inputs: { edge_index: other } as never }).data;
  close(z.subarray(6, 8), [0, 0]);
  // node 1 now has degree 0: bin 0's scale 0.1 clamps 7.5 and 2.6 to 0.7
  close(z.subarray(2, 4), [0.7, 0.7]);
});

Deno.test("protected nodes: the top 20 % (node 1) at int8 or in float", () => {
  const qp8 = fitDegreeParams(t, degrees, layout(0.2), { format: "int4", mode: "symmetric" });
  // the protected set holds node 1 only: |x| ≤ 7.5 at int8 (scale 7.5 / 127.5 = 1/17); bin 2 is
  // empty and takes bin 1's range
  close(qp8.scale, [0.1, 0.2, 0.2, 1 / 17]);
  const y = q.fakeQuant(t, qp8, ctx).data;
  // 7.5 · 17 = 127.5 → code 127 at most; 2.6 · 17 = 44.2 → 44
  close(y.subarray(2, 4), [127 / 17, 44 / 17]);
  const qpf = fitDegreeParams(t, degrees, layout(0.2, true), { format: "int4", mode: "symmetric" });
  const f = q.fakeQuant(t, qpf, ctx).data;
  assert.deepEqual([...f.subarray(2, 4)], [7.5, Math.fround(2.6)]);
  close(f.subarray(0, 2), [0.7, -0.3]);
  assert.deepEqual([...rowSets(degrees, layout(0.2))], [0, 3, 1, 0, 0]);
});

Deno.test("without its graph input, or asked for codes, the quantizer says why", () => {
  const qp = fitDegreeParams(t, degrees, layout(), { format: "int4", mode: "symmetric" });
  assert.throws(
    () => q.fakeQuant(t, qp, { batch: 0, tags: {} }),
    (e) => e instanceof LowbitError && /needs the graph input 'edge_index'/.test(e.message),
  );
  assert.throws(
    () => q.quantize(t, qp),
    (e) => e instanceof LowbitError && /no stored/.test(e.message),
  );
  assert.throws(
    () => q.fit({ min: Float32Array.of(0), max: Float32Array.of(1) }, qp),
    (e) => e instanceof LowbitError && /fitted from the calibration graph/.test(e.message),
  );
});

Deno.test("the mse fit clips a bin whose outlier wastes the grid, and leaves a tight bin alone", () => {
  // bin 0 (degree 1): 400 rows in (-1, 1) and one row at 7.5; bin 1 (degree 2): 0.5 and -0.5
  const n = 403, data = new Float32Array(n);
  for (let i = 0; i < 400; i++) data[i] = Math.sin(i * 1.7) * 0.99;
  data[400] = 7.5, data[401] = 0.5, data[402] = -0.5;
  const deg = Int32Array.from({ length: n }, (_, i) => (i < 401 ? 1 : 2));
  const l: DegreeLayout = { ...layout(), bins: 2 };
  const tt = { shape: [n, 1], data };
  const mm = fitDegreeParams(tt, deg, l, { format: "int4", mode: "symmetric" });
  const mse = fitDegreeParams(tt, deg, l, { format: "int4", mode: "symmetric", fit: "mse" });
  close(mm.scale.subarray(0, 2), [1, 0.5 / 7.5]);
  // reference: the squared error of bin 0 at scale s (codes -8..7, round half to even), by ratio
  const err = (s: number): number => {
    let e = 0;
    for (let i = 0; i <= 400; i++) {
      const x = data[i] / s, r = Math.round(x);
      const q = Math.max(-8, Math.min(7, Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r));
      e += (q * s - data[i]) ** 2;
    }
    return e;
  };
  const ratios = Array.from({ length: 17 }, (_, i) => 1 - 0.05 * i);
  const best = ratios.reduce((a, c) => (err(c) < err(a) ? c : a), 1);
  assert.ok(best < 1 && err(best) < 0.8 * err(1), `${best}: ${err(best)} vs ${err(1)}`);
  close(mse.scale.subarray(0, 2), [best, 0.5 / 7.5]); // bin 1: min / max is already best
});

Deno.test("bin × column ranges: each column of each bin at its own scale (hand-derived)", () => {
  // in-degrees 1, 1, 4, 4 → bins 0, 0, 2, 2 (bin 1 empty: it takes bin 2's ranges); column 0
  // holds values 20× smaller than column 1, which one range per bin would round to zero
  const tc = { shape: [4, 2], data: Float32Array.of(0.3, 6, -0.15, -3, 1.5, 30, 0.6, -12) };
  const deg = Int32Array.of(1, 1, 4, 4);
  const l: DegreeLayout = { ...layout(), columns: 2 };
  const qp = fitDegreeParams(tc, deg, l, { format: "int4", mode: "symmetric" });
  // scale[s·2 + c] = largest |x| of set s, column c / 7.5; protected set: int8, whole column
  close(qp.scale, [
    0.3 / 7.5,
    6 / 7.5,
    1.5 / 7.5,
    30 / 7.5,
    1.5 / 7.5,
    30 / 7.5,
    1.5 / 127.5,
    2 / 8.5,
  ]);
  assert.deepEqual(qp.extra?.columns, [2]);
  const edges = {
    dtype: "int64",
    shape: [2, 10],
    data: BigInt64Array.of(
      1n,
      2n,
      3n,
      0n,
      0n,
      0n,
      0n,
      1n,
      1n,
      1n,
      0n,
      1n,
      2n,
      2n,
      2n,
      2n,
      3n,
      3n,
      3n,
      3n,
    ),
  };
  const y = q.fakeQuant(tc, qp, { ...ctx, inputs: { edge_index: edges } as never }).data;
  // 0.3 / 0.04 = 7.5 → 7 (clamped): 0.28; 6 / 0.8 → 7: 5.6; -0.15 / 0.04 = -3.75 → -4: -0.16;
  // -3 / 0.8 = -3.75 → -4: -3.2; 1.5 / 0.2 → 7: 1.4; 30 / 4 → 7: 28; 0.6 / 0.2 = 3: 0.6;
  // -12 / 4 = -3: -12
  close(y, [0.28, 5.6, -0.16, -3.2, 1.4, 28, 0.6, -12]);
  // one range per bin: bin 0's scale 0.8 rounds column 0 (0.3, -0.15) to 0
  const one = fitDegreeParams(tc, deg, layout(), { format: "int4", mode: "symmetric" });
  const z = q.fakeQuant(tc, one, { ...ctx, inputs: { edge_index: edges } as never }).data;
  close(z.subarray(0, 4), [0, 5.6, 0, -3.2]);
  // ranges for 2 columns do not fit a tensor of 3 (on the 5-node graph of degrees_test.ts)
  assert.throws(
    () => q.fakeQuant({ shape: [5, 3], data: new Float32Array(15) }, qp, ctx),
    (e) =>
      e instanceof LowbitError && /ranges for 2 feature columns, the tensor has 3/.test(e.message),
  );
});
