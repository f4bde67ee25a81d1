// PTQ4ViT's twin-uniform grid against hand-derived values.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins, tensor } from "@lowbit/core";
import { twinUniform } from "./twin.ts";

const r = createRegistry();
registerBuiltins(r);
const opts = { format: "int4", granularity: { kind: "tensor" as const }, mode: "affine" as const };

Deno.test("twin-uniform unsigned: small values on Δ1 below 8·Δ1, the rest on Δ2", () => {
  const q = twinUniform(r);
  const qp = q.fit({ min: Float32Array.of(0), max: Float32Array.of(0.875) }, opts);
  // Δ2 = 0.875 / 7 = 1/8, Δ1 = Δ2 / 16 = 1/128
  assert.deepEqual([qp.scale[0], qp.extra!.d1[0], qp.extra!.signed[0]], [0.125, 1 / 128, 0]);
  // 0.01·128 = 1.28 → 1; 0.06 < 8/128 stays in R1: 7.68 → 8, clamped to 7; 0.07 ≥ 8/128 → R2:
  // 0.07·8 = 0.56 → 1; 0.05·128 = 6.4 → 6; 0.3 → 2·⅛; 0.99 → 8 clamped to 7
  const x = tensor(Float32Array.of(0.01, 0.06, 0.07, 0.05, 0.3, 0.99), [6]);
  assert.deepEqual([...q.fakeQuant(x, qp).data], [1 / 128, 7 / 128, 0.125, 6 / 128, 0.25, 0.875]);
  assert.deepEqual([...q.quantize(x, qp)], [1, 7, 8 | 1, 6, 8 | 2, 8 | 7]);
});

Deno.test("twin-uniform signed: negatives on Δ1, positives on Δ2, ties to even", () => {
  const q = twinUniform(r);
  const qp = q.fit({ min: Float32Array.of(-0.14), max: Float32Array.of(7) }, opts);
  const d1 = Math.fround(0.02);
  assert.deepEqual([qp.scale[0], qp.extra!.d1[0], qp.extra!.signed[0]], [1, d1, 1]);
  // −0.045 / 0.02 = 2.25 → 2; −0.5 → 25 clamped to 7; 0.4 → 0; 2.5 → 2 (ties to even); 9 → 7
  const x = tensor(Float32Array.of(-0.045, -0.5, 0.4, 2.5, 9), [5]);
  const y = q.fakeQuant(x, qp).data;
  assert.deepEqual([...y], [-2 * d1, -7 * d1, 0, 2, 7].map(Math.fround));
});
