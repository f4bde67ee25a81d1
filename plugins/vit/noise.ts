/**
 * NoisyQuant's noisy bias: a fixed vector of uniform noise, one value per channel (the last
 * axis), drawn from a seeded generator, added to an activation before it is quantized and
 * subtracted after — the subtraction is what folding `W·N` into the next layer's bias computes.
 * Its parameters live in `extra.noise = [width, seed]`: the noise is uniform on
 * [−width/2, width/2). The `noisy-uniform` quantizer is the core's `uniform` with this noise.
 *
 * @module
 */

import type { Codes, FitOptions, QParams, Quantizer, Range, Registry, Tensor } from "@lowbit/core";

/**
 * The `u`-th 32-bit output of mulberry32 seeded with `seed`, as a number in [0, 1).
 *
 * @param seed the seed (an integer)
 * @param n how many values
 * @returns n values in [0, 1)
 *
 * @example
 * ```ts
 * import { uniformNoise } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * assert.deepEqual(uniformNoise(1, 3), uniformNoise(1, 3));
 * assert.ok(uniformNoise(1, 100).every((u) => u >= 0 && u < 1));
 * ```
 */
export function uniformNoise(seed: number, n: number): Float64Array {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

/**
 * The noisy bias of `channels` channels: `(u − ½) · width` per channel, float32.
 *
 * @param width the noise range's width
 * @param seed the seed
 * @param channels the last axis' length
 * @returns the noise vector
 *
 * @example
 * ```ts
 * import { noisyBias } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const n = noisyBias(0.5, 7, 64);
 * assert.ok(n.every((v) => v >= -0.25 && v < 0.25));
 * assert.deepEqual([...noisyBias(0, 7, 2)], [0, 0]);
 * ```
 */
export function noisyBias(width: number, seed: number, channels: number): Float32Array {
  const u = uniformNoise(seed, channels);
  return Float32Array.from(u, (v) => width === 0 ? 0 : (v - 0.5) * width);
}

/**
 * Applies `f` to `x + N` and returns `f(x + N) − N`, N the noisy bias of `extra.noise` along the
 * last axis; `f(x)` itself when there is no noise.
 *
 * @param t the tensor
 * @param extra the fitted extras (`noise = [width, seed]`)
 * @param f the fake-quantizer
 * @returns the fake-quantized tensor
 *
 * @example
 * ```ts
 * import { withNoise } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const t = { shape: [2, 2], data: Float32Array.of(0.1, 0.2, 0.3, 0.4) };
 * const round = (d: Float32Array) => d.map((v) => Math.round(v * 4) / 4);
 * assert.deepEqual([...withNoise(t, undefined, round).data], [0, 0.25, 0.25, 0.5]);
 * ```
 */
export function withNoise(
  t: Tensor,
  extra: Record<string, number[]> | undefined,
  f: (x: Float32Array) => Float32Array,
): Tensor {
  const [width = 0, seed = 0] = extra?.noise ?? [];
  if (width === 0) return { shape: [...t.shape], data: f(t.data) };
  const c = t.shape[t.shape.length - 1] ?? 1;
  const n = noisyBias(width, seed, c);
  const x = new Float32Array(t.data.length);
  for (let i = 0; i < x.length; i++) x[i] = t.data[i] + n[i % c];
  const y = f(x);
  for (let i = 0; i < y.length; i++) y[i] = y[i] - n[i % c];
  return { shape: [...t.shape], data: y };
}

/**
 * `noisy-uniform`: the registry's `uniform` quantizer with a noisy bias (`extra.noise`, width 0
 * until the plugin's fit stage chooses one). Without noise it is QDQ-expressible as `uniform` is.
 *
 * @param registry where `uniform` is registered
 * @returns the quantizer
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins, tensor } from "@lowbit/core";
 * import { noisyUniform } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const q = noisyUniform(r);
 * const qp = q.fit({ min: Float32Array.of(-1), max: Float32Array.of(1) },
 *   { format: "int8", granularity: { kind: "tensor" }, mode: "symmetric" });
 * assert.deepEqual(qp.extra, { noise: [0, 0] });
 * const x = tensor(Float32Array.of(0.5), [1]);
 * assert.deepEqual(q.fakeQuant(x, qp).data, r.quantizers.get("uniform").fakeQuant(x, qp).data);
 * ```
 */
export function noisyUniform(registry: Registry): Quantizer {
  const base = (): Quantizer => registry.quantizers.get("uniform");
  return {
    name: "noisy-uniform",
    supports: (f) => f.family === "int" && base().supports(f),
    fit(input: Range | Tensor, opts: FitOptions): QParams {
      return { ...base().fit(input, opts), extra: { noise: [0, 0] } };
    },
    quantize: (t: Tensor, qp: QParams): Codes => base().quantize(t, qp),
    dequantize: (c: Codes, qp: QParams, shape: readonly number[]): Tensor =>
      base().dequantize(c, qp, shape),
    fakeQuant: (t: Tensor, qp: QParams): Tensor =>
      withNoise(t, qp.extra, (x) => base().fakeQuant({ shape: t.shape, data: x }, qp).data),
    onnx: (qp: QParams): boolean => (qp.extra?.noise?.[0] ?? 0) === 0 && !!base().onnx?.(qp),
  };
}
