// NoisyQuant's noisy bias: seeded, uniform, removed exactly; noisy-uniform is uniform without it.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins, tensor } from "@lowbit/core";
import { noisyBias, noisyUniform, uniformNoise, withNoise } from "./noise.ts";

const r = createRegistry();
registerBuiltins(r);
const opts = { format: "int4", granularity: { kind: "tensor" as const }, mode: "affine" as const };

Deno.test("noisy bias: seeded, uniform on [−w/2, w/2), added before and removed after", () => {
  const u = uniformNoise(42, 4000);
  assert.deepEqual(u, uniformNoise(42, 4000));
  assert.notDeepEqual(u, uniformNoise(43, 4000));
  const mean = u.reduce((s, v) => s + v, 0) / u.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `${mean}`);
  const n = noisyBias(0.5, 42, 4000);
  assert.ok(n.every((v) => v >= -0.25 && v < 0.25));
  // round to integers after the noise: y = round(x + n) − n, computed here by hand
  const t = tensor(Float32Array.of(0.3, 0.3, 0.3, 0.3, 0.3, 0.3), [2, 3]);
  const y = withNoise(t, { noise: [0.5, 42] }, (d) => d.map((v) => Math.round(v)));
  const nb = noisyBias(0.5, 42, 3);
  for (let i = 0; i < 6; i++) {
    assert.equal(
      y.data[i],
      Math.fround(Math.fround(Math.round(Math.fround(0.3 + nb[i % 3]))) - nb[i % 3]),
    );
  }
  // noisy-uniform without noise is the core's uniform, and QDQ-expressible; with noise it is not
  const q = noisyUniform(r);
  const qp = q.fit({ min: Float32Array.of(-1), max: Float32Array.of(1) }, opts);
  assert.equal(q.onnx!(qp), true);
  assert.equal(q.onnx!({ ...qp, extra: { noise: [0.1, 1] } }), false);
});
