import assert from "node:assert/strict";
import { createRegistry, LowbitError, type QParams, registerBuiltins } from "@lowbit/core";
import { groupedQuantizer, timestepCalibrator, timestepGroup } from "./grouped.ts";

const registry = createRegistry();
registerBuiltins(registry);
const q = groupedQuantizer(registry, () => 50);
const ctxT = (...t: number[]) => ({
  batch: 0,
  tags: {},
  inputs: { t: { shape: [t.length], data: Float32Array.from(t) } },
});

Deno.test("timestep groups: T = 50, G = 4 splits at 12.5, 25, 37.5", () => {
  const g = Array.from({ length: 50 }, (_, t) => timestepGroup(t, 50, 4));
  assert.deepEqual([g.indexOf(1), g.indexOf(2), g.indexOf(3)], [13, 25, 38]);
});

Deno.test("the grouped quantizer picks each sample's parameter set from the time input", () => {
  // Hand-set parameters: group 0 step 0.1, group 1 step 1 (zero point 0), group 2 step 0.5
  // with zero point 2 (affine uint8-like grid on int8: codes clamp to −128…127).
  const qp: QParams = {
    format: "int8",
    granularity: { kind: "tensor" },
    mode: "affine",
    scale: Float32Array.of(1),
    zeroPoint: Int32Array.of(0),
    extra: { scales: [0.1, 1, 0.5], zeroPoints: [0, 0, 2], groups: [3], timesteps: [30] },
    reads: ["t"],
  };
  const x = { shape: [4, 2], data: Float32Array.of(0.26, -0.26, 0.26, 1.6, 0.26, 200, 0.26, -3.1) };
  // t = 0 → group 0, 29 → group ⌊29·3/30⌋ = 2, 10 → 1, 19 → 1
  const y = q.fakeQuant(x, qp, ctxT(0, 29, 10, 19));
  const f = Math.fround;
  assert.deepEqual([...y.data], [
    f(0.3), // group 0: round(2.6) = 3 steps of 0.1
    f(-0.3),
    0.5, // group 2: code round(0.52) + 2 = 3 → (3 − 2)·0.5
    1.5, // code round(3.2) + 2 = 5 → 1.5
    0, // group 1: step 1
    127, // 200 clamps at code 127
    0,
    -3,
  ]);
});

Deno.test("the grouped quantizer without its time input is a clear error naming it", () => {
  const qp = q.fit(
    { min: Float32Array.of(-1, -2), max: Float32Array.of(1, 2) },
    { format: "int8", granularity: { kind: "tensor" }, mode: "symmetric" },
  );
  const x = { shape: [1, 1], data: Float32Array.of(0.5) };
  assert.throws(
    () => q.fakeQuant(x, { ...qp, reads: ["time"] }, { batch: 0, tags: {} }),
    (e) => e instanceof LowbitError && /tensor 'time'.*needs the time input 'time'/.test(e.message),
  );
  assert.throws(
    () =>
      q.fakeQuant(
        { shape: [2, 1], data: new Float32Array(2) },
        { ...qp, reads: ["t"] },
        ctxT(1, 2, 3),
      ),
    /3 timesteps for a batch of 2/,
  );
  // fitted: one set per group from its range, the union as the scales without time
  assert.deepEqual(qp.extra!.groups, [2]);
  assert.ok(qp.extra!.scales[1] > qp.extra!.scales[0] * 1.9);
  assert.equal(qp.scale[0], Math.fround(qp.extra!.scales[1]));
  assert.equal(q.onnx!(qp), false);
});

Deno.test("the grouped calibrator keeps one range per group, by the batch's time input", () => {
  const f = timestepCalibrator(registry, "minmax", () => ({ time: "t", T: 50, groups: 4 }));
  const a = f.create({ format: "int8", mode: "affine" });
  // samples at t = 3 (g0), 30 (g2), 49 (g3), 5 (g0); two values each
  a.observe(
    { shape: [4, 2], data: Float32Array.of(1, 2, -5, 0, 7, 8, -1, 0.5) },
    ctxT(3, 30, 49, 5),
  );
  const b = f.create({ format: "int8", mode: "affine" });
  b.observe({ shape: [1, 2], data: Float32Array.of(9, 10) }, ctxT(49));
  a.merge(b);
  const r = a.result();
  // group 1 saw nothing: it takes the union −5…10
  assert.deepEqual([...r.min], [-1, -5, -5, 7]);
  assert.deepEqual([...r.max], [2, 10, 0, 10]);
  assert.throws(
    () => f.create().observe({ shape: [1, 1], data: Float32Array.of(1) }),
    /needs the time input 't'/,
  );
});
