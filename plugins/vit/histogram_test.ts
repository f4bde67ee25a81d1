import assert from "node:assert/strict";
import { createRegistry, registerBuiltins, tensor } from "@lowbit/core";
import { readNpy, readOnnx } from "@lowbit/graph";
import {
  gridLevels,
  histogramSection,
  logHistogram,
  logQuantizer,
  MAX_OCTAVES,
  plugin,
  pointHistograms,
  twinUniform,
} from "./mod.ts";

const reg = () => {
  const r = createRegistry();
  registerBuiltins(r);
  return r;
};

Deno.test("logHistogram: hand-counted bins, zeros, values below the axis; counts sum to the samples", () => {
  const x = Float32Array.of(1, 2 ** -0.1, 2 ** -0.3, -(2 ** -2), 0, 0, 2 ** -2.9);
  const h = logHistogram(x);
  assert.equal(h.lo, -3); // floor(log2 2^−2.9) = −3
  // bins of width 1/4 from 2^−3: 2^−2.9 → 0; 2^−2 → 4; 2^−0.3 → floor(2.7·4) = 10; 2^−0.1 → 11; 1 → 12
  const want = new Array(13).fill(0);
  want[0] = 1, want[4] = 1, want[10] = 1, want[11] = 1, want[12] = 1;
  assert.deepEqual(h.counts, want);
  assert.deepEqual([h.zeros, h.below, h.negative], [2, 0, 1]);
  // the axis spans at most MAX_OCTAVES: a tiny value is counted below it
  const t = logHistogram(Float32Array.of(1, 2 ** -40, 0.5));
  assert.equal(t.lo, 1 - MAX_OCTAVES);
  assert.equal(t.below, 1);
  assert.equal(t.zeros + t.below + t.counts.reduce((a, b) => a + b, 0), 3);
  assert.throws(() => logHistogram(Float32Array.of(NaN)), /NaN/);
});

Deno.test("gridLevels: a fitted log2 grid is exactly the powers of two below its scale; adalog, twin, uniform", () => {
  const r = reg();
  const q = logQuantizer("log2", r);
  const qp = q.fit({ min: Float32Array.of(0), max: Float32Array.of(0.5) }, {
    format: "uint4",
    granularity: { kind: "tensor" },
    mode: "affine",
  });
  const e = { quantizer: "log2", format: "uint4", scale: [...qp.scale], extra: qp.extra };
  const lv = gridLevels(e, r);
  assert.deepEqual(lv, Array.from({ length: 15 }, (_, k) => 2 ** (k - 15)));
  // every level is a fixed point of the quantizer
  const y = q.fakeQuant(tensor(Float32Array.from(lv), [lv.length]), qp).data;
  assert.deepEqual([...y], lv);
  // adalog with base 2^(1/2), signed int4: 7 magnitudes scale·2^(−k/2)
  const b = Math.fround(Math.SQRT2);
  const ad = gridLevels({
    quantizer: "adalog",
    format: "int4",
    scale: [1],
    extra: { base: [b], signed: [1] },
  }, r);
  assert.deepEqual(ad, Array.from({ length: 7 }, (_, k) => Math.fround(b ** (k - 6))));
  // twin-uniform unsigned 4-bit: the levels are what its dequantize gives for all 16 codes
  const twq = twinUniform(r);
  const tw = twq.fit({ min: Float32Array.of(0), max: Float32Array.of(7 / 8) }, {
    format: "uint4",
    granularity: { kind: "tensor" },
    mode: "affine",
  });
  const twl = gridLevels({ quantizer: "twin-uniform", format: "uint4", ...plain(tw) }, r);
  const codes = Uint8Array.from({ length: 16 }, (_, c) => c);
  const all = new Set([...twq.dequantize(codes, tw, [16]).data].filter((v) => v > 0));
  assert.deepEqual(twl, [...all].sort((a, b) => a - b));
  assert.equal(twl.length, 14); // 1..7 · Δ1 and 1..7 · Δ2, Δ1 = Δ2 / 16
  // uniform uint4, scale 0.1, zero point 3: |0.1·(c − 3)| for c = 0..15 → 0.1 … 1.2
  const un = gridLevels({ quantizer: "uniform", format: "uint4", scale: [0.1], zeroPoint: [3] }, r);
  assert.deepEqual(un, Array.from({ length: 12 }, (_, k) => Math.fround(0.1 * (k + 1))));
  assert.throws(() => gridLevels({ quantizer: "log2", format: "uint4" }, r), /scale/);
});

function plain(
  qp: { scale: Float32Array; zeroPoint: Int32Array; extra?: Record<string, number[]> },
) {
  return { scale: [...qp.scale], zeroPoint: [...qp.zeroPoint], extra: qp.extra };
}

Deno.test("the report section: digits ViT Softmax points, counts sum to 32 images × 4 heads × 16²", async () => {
  const r = reg();
  r.use(plugin);
  assert.ok(r.reportSections.has("vit-histograms"));
  const model = readOnnx(await Deno.readFile("fixtures/digits/vit.onnx"));
  const sms = model.graph.nodes.filter((n) => n.op === "Softmax").map((n) => n.outputs[0]);
  const x = readNpy(await Deno.readFile("fixtures/digits/eval_x.npy"));
  const plan = {
    entries: [
      ...sms.map((v) => ({
        value: v,
        role: "activation",
        by: "vit-softmax",
        quantizer: "log2",
        format: "uint4",
        scale: [1],
        zeroPoint: [0],
        extra: { base: [2], signed: [0] },
      })),
      // a skipped point and a weight get no histogram
      { value: sms[0], role: "weight", by: "vit-softmax", format: "uint4", scale: [1] },
      { value: "other", role: "activation", skip: true, by: "vit-gelu" },
    ],
  };
  const ctx = {
    graph: model.graph,
    plan,
    options: {},
    inputs: { x },
    models: { float: model, quantized: model },
    runFloat: () => Promise.resolve({}),
    runQuantized: () => Promise.resolve({}),
  };
  const hs = await pointHistograms(ctx, r);
  assert.deepEqual(hs.map((h) => h.value), sms);
  for (const h of hs) {
    const n = h.histogram;
    assert.equal(h.samples, 32 * 4 * 16 * 16);
    assert.equal(n.zeros + n.below + n.counts.reduce((a, b) => a + b, 0), h.samples);
    assert.equal(n.negative, 0); // probabilities
    // Softmax outputs are ≤ 1: nothing above the 2^0 bin
    assert.ok(n.lo + n.counts.length / n.perOctave <= 0.25 + 1e-9);
    assert.deepEqual(h.levels, Array.from({ length: 15 }, (_, k) => 2 ** (k - 14)));
  }
  const part = await histogramSection(r).render(ctx);
  assert.ok(part);
  assert.equal((part.html.match(/<svg/g) ?? []).length, sms.length);
  assert.equal((part.html.match(/class="level"/g) ?? []).length, 15 * sms.length);
  // nothing to draw: no section
  assert.equal(await histogramSection(r).render({ ...ctx, plan: { entries: [] } }), undefined);
});
