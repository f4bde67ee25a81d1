// The per-tensor 8-bit DequantizeLinear path (codes read in place, recycled storage) and the
// one-input Concat (the identity): checked against independently computed values.

import assert from "node:assert/strict";
import type { Node, TensorData } from "../../ir.ts";
import { qlinearOps } from "./qlinear.ts";
import { shapeOps } from "./shape.ts";

const node = (op: string, attrs: Node["attrs"] = {}): Node => ({
  name: "n",
  op,
  domain: "",
  inputs: [],
  outputs: ["y"],
  attrs,
});

Deno.test("DequantizeLinear per tensor, int8 / uint8 codes: fround((q − z)·s) for every code", async () => {
  // Scales with long mantissas, where rounding the double product matters.
  const scales = [0.1, 0.0123456789, 3.3e-5, 1.7, 2 ** -20 * 1.999];
  for (const signed of [true, false]) {
    const n = 256;
    const q = signed ? new Int8Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) q[i] = signed ? i - 128 : i;
    for (const s of scales) {
      for (const z of signed ? [-128, -3, 0, 127] : [0, 7, 128, 255]) {
        const x: TensorData = { dtype: signed ? "int8" : "uint8", shape: [4, 64], data: q };
        const st: TensorData = { dtype: "float32", shape: [], data: Float32Array.of(s) };
        const zt: TensorData = signed
          ? { dtype: "int8", shape: [], data: Int8Array.of(z) }
          : { dtype: "uint8", shape: [], data: Uint8Array.of(z) };
        // Recycled storage full of garbage: every element must be written.
        const recycled = new Float32Array(n).fill(NaN);
        const ctx = {
          opset: 19,
          allocF32: (k: number) => (k === n ? recycled : new Float32Array(k)),
        };
        const [y] = await qlinearOps.DequantizeLinear([x, st, zt], node("DequantizeLinear"), ctx);
        assert.equal(y.data, recycled, "the recycled storage is used");
        assert.deepEqual(y.shape, [4, 64]);
        const sf = Math.fround(s);
        for (let i = 0; i < n; i++) {
          // Independent: the exact product (q − z)·s rounded once to f32.
          const want = Math.fround((q[i] - z) * sf);
          assert.ok(Object.is(y.data[i], want), `q ${q[i]} z ${z} s ${s}: ${y.data[i]} ≠ ${want}`);
        }
        // Without a zero point: z = 0; without recycled storage: a fresh array.
        const [y0] = await qlinearOps.DequantizeLinear([x, st], node("DequantizeLinear"), {
          opset: 19,
        });
        for (let i = 0; i < n; i++) assert.equal(y0.data[i], Math.fround(q[i] * sf));
      }
    }
  }
});

Deno.test("Concat of one input is the identity (storage shared), of two a copy", async () => {
  const a: TensorData = {
    dtype: "float32",
    shape: [1, 2, 3],
    data: Float32Array.of(1, 2, 3, 4, 5, 6),
  };
  const [y] = await shapeOps.Concat([a], node("Concat", { axis: { kind: "int", value: 1 } }), {
    opset: 13,
  });
  assert.equal(y, a);
  const [z] = await shapeOps.Concat([a, a], node("Concat", { axis: { kind: "int", value: 1 } }), {
    opset: 13,
  });
  assert.deepEqual(z.shape, [1, 4, 3]);
  assert.deepEqual(Array.from(z.data as Float32Array), [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
  // One input is still checked (its axis must exist).
  await assert.rejects(async () =>
    await shapeOps.Concat([a], node("Concat", { axis: { kind: "int", value: 3 } }), { opset: 13 })
  );
});
