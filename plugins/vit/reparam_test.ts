// RepQ-ViT's LayerNorm reparameterisation: the float model's output is unchanged by the folding,
// and per-tensor quantization of the reparameterised output is per-channel quantization of the
// original one (levels derived by hand: step (max_c − min_c) / 15 from min_c).
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { findLayerNorm } from "./markers.ts";
import { applyReparam, reparamFactors, reparamSite } from "./reparam.ts";
import { plugin } from "./plugin.ts";

const FIX = fileURLToPath(new URL("../../fixtures/", import.meta.url));

Deno.test("reparameterisation: per-channel ranges become one range, as worked by hand", () => {
  // ranges [−1, 0], [0, 3], [2, 4]: widths 1, 3, 2 (mean 2) → r = ½, 3⁄2, 1;
  // min / r = −2, 0, 2 (mean 0) → b = −2, 0, 2; each channel then spans [0, 2]
  const min = Float32Array.of(-1, 0, 2), max = Float32Array.of(0, 3, 4);
  const f = reparamFactors("y", min, max);
  assert.deepEqual([...f.r], [0.5, 1.5, 1]);
  assert.deepEqual([...f.b], [-2, 0, 2]);
  for (let c = 0; c < 3; c++) {
    assert.equal(min[c] / f.r[c] - f.b[c], 0);
    assert.equal(max[c] / f.r[c] - f.b[c], 2);
  }
});

Deno.test("per-tensor 4-bit of the reparameterised value = per-channel 4-bit of the original", () => {
  const C = 4, T = 50;
  const min = Float32Array.of(-0.5, -3, 0.25, -8), max = Float32Array.of(0.5, 1, 2.25, 4);
  const x = Float32Array.from({ length: T * C }, (_, i) => {
    const c = i % C, u = (((i * 7919) % 101) + 0.37) / 101.5; // deterministic, in (0, 1), no ties
    return min[c] + u * (max[c] - min[c]);
  });
  const f = reparamFactors("y", min, max);
  // the reparameterised tensor's single range and its 16-level grid
  const lo = Math.min(...Array.from(min, (m, c) => m / f.r[c] - f.b[c]));
  const hi = Math.max(...Array.from(max, (m, c) => m / f.r[c] - f.b[c]));
  const step = (hi - lo) / 15;
  for (let i = 0; i < x.length; i++) {
    const c = i % C;
    const xr = x[i] / f.r[c] - f.b[c];
    const q = lo + step * Math.min(15, Math.max(0, Math.round((xr - lo) / step)));
    const back = (q + f.b[c]) * f.r[c];
    // by hand: channel c's own grid min_c + k · (max_c − min_c) / 15
    const sc = (max[c] - min[c]) / 15;
    const own = min[c] + sc * Math.min(15, Math.max(0, Math.round((x[i] - min[c]) / sc)));
    assert.ok(Math.abs(back - own) < 1e-5 * (max[c] - min[c]), `${i}: ${back} vs ${own}`);
  }
});

async function logitsOf(model: Awaited<ReturnType<typeof readOnnxFile>>, x: unknown) {
  const r = createRegistry();
  registerBuiltins(r);
  const y = await createExecutor(model, { registry: r }).run({ x: x as never });
  return Object.values(y)[0].data as Float32Array;
}

Deno.test({
  name: "folding every LayerNorm of vit145 leaves the float model's logits unchanged (1e-5)",
  sanitizeResources: false,
  async fn() {
    const model = await readOnnxFile(`${FIX}vit145/vit145.onnx`);
    const x = readNpy(await Deno.readFile(`${FIX}vit145/calib_x.npy`));
    const n = 16, per = 24 * 24;
    const xs = { ...x, shape: [n, 1, 24, 24], data: (x.data as Float32Array).slice(0, n * per) };
    const before = await logitsOf(model, xs);
    const lns = findLayerNorm(model.graph as never);
    assert.equal(lns.length, 13);
    let folded = 0;
    for (const { value } of lns) {
      const site = reparamSite(model.graph, value);
      if (!site) continue;
      const C = model.graph.initializers.get(site.gamma)!.data.length;
      // strongly uneven factors, not only calibrated ones
      const min = Float32Array.from({ length: C }, (_, c) => -1 - (c % 5));
      const max = Float32Array.from({ length: C }, (_, c) => 0.5 + (c % 7) * 0.75);
      applyReparam(model.graph, site, reparamFactors(value, min, max));
      folded++;
    }
    // 6 × (ln1 → q, k, v; ln2 → fc1) and the final ln → head Gemm
    assert.equal(folded, 13);
    const after = await logitsOf(model, xs);
    let worst = 0;
    for (let i = 0; i < before.length; i++) {
      worst = Math.max(worst, Math.abs(after[i] - before[i]) / Math.max(1, Math.abs(before[i])));
    }
    assert.ok(worst < 1e-5, `largest change ${worst}`);
  },
});

Deno.test({
  name: "--vit-layernorm reparam: the stage folds the LayerNorms it can, tensor none",
  sanitizeResources: false,
  async fn() {
    const r = createRegistry();
    registerBuiltins(r);
    r.use(plugin);
    const model = await readOnnxFile(`${FIX}digits/vit.onnx`);
    const x = readNpy(await Deno.readFile(`${FIX}digits/calib_x.npy`));
    const calib = { inputs: { x }, count: 64 };
    const { quantized } = await quantize({
      model,
      calib,
      preset: "w8a8",
      registry: r,
      pluginOptions: { "vit-layernorm": "reparam", "vit-bias": "off" },
    });
    const lnPoints = quantized.plan.entries.filter((e) => e.by === "vit-layernorm" && !e.skip);
    // ln1 → q, k, v and ln2 → fc1 of both blocks; the final LayerNorm feeds a ReduceMean: kept
    const noted = lnPoints.filter((e) => /reparameterised/.test(e.note ?? "")).map((e) => e.value);
    assert.deepEqual(noted, [
      "/blocks.0/ln1/LayerNormalization_output_0",
      "/blocks.0/ln2/LayerNormalization_output_0",
      "/blocks.1/ln1/LayerNormalization_output_0",
      "/blocks.1/ln2/LayerNormalization_output_0",
    ]);
    assert.ok(lnPoints.some((e) => e.value === "/ln/LayerNormalization_output_0"));
    // γ of each folded LayerNorm is γ / r; --vit-layernorm tensor leaves it as it was
    const gammas = noted.map((v) => reparamSite(model.graph, v)!.gamma);
    const same = (m: typeof model) =>
      gammas.filter((k) =>
        m.graph.initializers.get(k)!.data.join() === model.graph.initializers.get(k)!.data.join()
      ).length;
    assert.equal(same(quantized.model), 0);
    const { quantized: off } = await quantize({
      model,
      calib,
      preset: "w8a8",
      registry: r,
      pluginOptions: { "vit-layernorm": "tensor", "vit-bias": "off" },
    });
    assert.ok(off.plan.entries.every((e) => !/reparameterised/.test(e.note ?? "")));
    assert.equal(same(off.model), gammas.length);
  },
});
