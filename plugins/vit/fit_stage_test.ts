// The fit stage: the matrix-product error against a plain triple loop, and AdaLog's base on the
// digits ViT against an independent search (its own log grid, its own P·V product) over the same
// candidate bases and the same 32 calibration samples.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { FIT_SAMPLES, productSquaredNorm } from "./fit_stage.ts";
import { plugin } from "./plugin.ts";

const FIX = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));

Deno.test("productSquaredNorm equals Σ (A·B)² of a triple loop, batched and broadcast", () => {
  const a = { shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => (i % 7) - 3) };
  const b = { shape: [2, 4, 5], data: Float32Array.from({ length: 40 }, (_, i) => (i % 5) / 2) };
  const w = { shape: [4, 5], data: b.data.slice(0, 20) };
  const naive = (bb: number) => {
    let s = 0;
    for (let t = 0; t < 2; t++) {
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 5; j++) {
          let v = 0;
          for (let k = 0; k < 4; k++) {
            v += a.data[t * 12 + i * 4 + k] * b.data[bb * t * 20 + k * 5 + j];
          }
          s += v * v;
        }
      }
    }
    return s;
  };
  assert.equal(productSquaredNorm(a, b), naive(1));
  assert.equal(productSquaredNorm(a, w), naive(0));
  assert.throws(
    () => productSquaredNorm(a, { shape: [3, 5], data: new Float32Array(15) }),
    /multiply/,
  );
});

/** Independent log grid: nearest level by rounding −log_b(p/s), 0 below half the smallest. */
function logRef(p: number, s: number, b: number, levels: number): number {
  if (p <= 0) return 0;
  const k = Math.max(0, Math.round(-Math.log(p / s) / Math.log(b)));
  if (k <= levels - 1) return Math.fround(s * b ** -k);
  const smallest = Math.fround(s * b ** -(levels - 1));
  return p >= smallest / 2 ? smallest : 0;
}

Deno.test({
  name: "adalog's base minimises the attention output error ‖(P̂ − P)·V‖² on calibration data",
  sanitizeResources: false,
  async fn() {
    const r = createRegistry();
    registerBuiltins(r);
    r.use(plugin);
    const model = await readOnnxFile(`${FIX}vit.onnx`);
    const x = readNpy(await Deno.readFile(`${FIX}calib_x.npy`));
    const { quantized, prepared } = await quantize({
      model,
      calib: { inputs: { x }, count: x.shape[0] },
      preset: "w4a4",
      registry: r,
    });
    const e = quantized.plan.entries.find((p) => p.value === "/blocks.0/attn/Softmax_output_0")!;
    assert.equal(e.quantizer, "adalog");
    const P = "/blocks.0/attn/Softmax_output_0", V = "/blocks.0/attn/Transpose_1_output_0";
    const got = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    const n = FIT_SAMPLES * 64;
    await createExecutor(prepared, { registry: r }).run(
      { x: { ...x, shape: [FIT_SAMPLES, 1, 8, 8], data: (x.data as Float32Array).slice(0, n) } },
      { watch: [P, V], observe: (name, t) => got.set(name, t as never) },
    );
    const p = got.get(P)!, v = got.get(V)!;
    const [B, H, T, D] = v.shape;
    assert.deepEqual(p.shape, [B, H, T, T]);
    const s = e.scale![0];
    const err = (base: number) => {
      let sum = 0;
      for (let bh = 0; bh < B * H; bh++) {
        for (let i = 0; i < T; i++) {
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j < T; j++) {
              const pv = p.data[(bh * T + i) * T + j];
              acc += (logRef(pv, s, base, 15) - pv) * v.data[(bh * T + j) * D + d];
            }
            sum += acc * acc;
          }
        }
      }
      return sum;
    };
    const bases = Array.from({ length: 13 }, (_, i) => Math.fround(2 ** (1 / (1 + i / 4))));
    const errs = bases.map(err);
    const best = bases[errs.indexOf(Math.min(...errs))];
    assert.equal(e.extra!.base[0], best, `errors ${errs.map((v) => v.toFixed(4))}`);
    // and it beats log2 (base 2) there
    assert.ok(Math.min(...errs) <= errs[0]);
  },
});
