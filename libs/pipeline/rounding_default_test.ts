import assert from "node:assert/strict";
import type { Model, TensorData } from "@lowbit/graph";
import { quantize, type QuantizeOptions } from "./quantize.ts";

const t = (shape: number[], v: number[]): TensorData => ({
  dtype: "float32",
  shape,
  data: new Float32Array(v),
});

/**
 * x [N, 2, 1, 5] → depthwise Conv "dw" (2 channels, 1×3 taps, no padding) → pointwise Conv "pw"
 * (2 → 1). The int8 symmetric per-channel scale is s = max |w| / 127.5 (the [−max, max] range over
 * 255 steps), 0.01 for both channels here, so in steps of s the taps are channel 0's
 * [127.5, 0.3, 0.3] and channel 1's [127.5, −63.7, −63.7] (an edge filter: its taps sum to 0.1).
 */
function model(): Model {
  const attrs = { group: { kind: "int" as const, value: 2 } };
  return {
    irVersion: 8,
    opsets: [{ domain: "", version: 13 }],
    producerName: "",
    producerVersion: "",
    metadata: {},
    graph: {
      name: "g",
      inputs: [{ name: "x", dtype: "float32", shape: ["N", 2, 1, 5] }],
      outputs: [{ name: "z", dtype: "float32", shape: ["N", 1, 1, 3] }],
      valueInfo: new Map(),
      nodes: [
        { name: "dw", op: "Conv", domain: "", inputs: ["x", "W"], outputs: ["y"], attrs },
        { name: "pw", op: "Conv", domain: "", inputs: ["y", "P"], outputs: ["z"], attrs: {} },
      ],
      initializers: new Map([
        ["W", t([2, 1, 1, 3], [1.275, 0.003, 0.003, 1.275, -0.637, -0.637])],
        ["P", t([1, 2, 1, 1], [0.5, 127])],
      ]),
    },
  };
}

function codes(m: Model, scale: number[]): number[] {
  assert.equal(scale.length, 2);
  for (const v of scale) assert.ok(Math.abs(v - 0.01) < 1e-6, `scale ${v}`);
  const w = m.graph.initializers.get("W")!.data as Float32Array;
  return [...w].map((v, i) => {
    const c = v / scale[Math.floor(i / 3)];
    assert.ok(Math.abs(c - Math.round(c)) < 1e-3, `code ${c} is on the grid`);
    return Math.round(c);
  });
}

/** A flat input (every pixel 1): each dw output is its channel's taps' sum. */
const flat = (): QuantizeOptions["calib"] => {
  const n = 4;
  return { inputs: { x: t([n, 2, 1, 5], new Array(n * 10).fill(1)) }, count: n };
};

/** The dw weight's codes (quantized weight / its channel's scale) and its rounding. */
async function codesOf(
  opts: Partial<QuantizeOptions>,
): Promise<{ codes: number[]; rounding: string }> {
  const r = await quantize({
    model: model(),
    calib: flat(),
    // Activations in float: the weights' rounding alone is compared.
    rules: [{ match: "*", activation: null }],
    ...opts,
  });
  const e = r.quantized.plan.entries.find((e) => e.node === "dw" && e.role === "weight")!;
  const pw = r.quantized.plan.entries.find((e) => e.node === "pw" && e.role === "weight")!;
  assert.equal(pw.rounding, "rtn", "the pointwise conv rounds to nearest");
  return { codes: codes(r.quantized.model, e.scale!), rounding: e.rounding! };
}

Deno.test("w8a8 rounds a depthwise conv's taps with GPTQ by default: on a flat input the taps' sum stays on its nearest grid point", async () => {
  // Hand-derived, in steps of s. The flat input's Hessian is H = 2·J (J: all ones), damped by
  // 0.01 × its mean diagonal: ∝ J + λI, λ = 0.01. Rounding tap j moves its error e onto each
  // later tap k by e·(−H⁻¹[j,k] / H⁻¹[j,j]) over the taps not yet rounded, which for J + λI
  // on m taps is e / (λ + m − 1). Tap 0 (127.5) clamps to 127 (e = 0.5) in both channels.
  // channel 0: taps 1, 2 += 0.5/2.01 → 0.5488; tap 1 → 1 (e = −0.4512); tap 2 += −0.4512/1.01
  //   → 0.1020 → 0. [127, 1, 0] sums to 128, the grid point nearest 128.1 (RTN [127, 0, 0]:
  //   127).
  // channel 1: taps 1, 2 += 0.2488 → −63.4512; tap 1 → −63 (e = −0.4512); tap 2 → −63.8979
  //   → −64. [127, −63, −64] sums to 0, nearest 0.1 (RTN [127, −64, −64]: −1, ten times off).
  const d = await codesOf({ preset: "w8a8" });
  assert.equal(d.rounding, "gptq");
  assert.deepEqual(d.codes, [127, 1, 0, 127, -63, -64]);
});

Deno.test("an explicit rounding wins over the depthwise default", async () => {
  const rtn = await codesOf({ preset: "w8a8", rounding: "rtn" });
  assert.equal(rtn.rounding, "rtn");
  assert.deepEqual(rtn.codes, [127, 0, 0, 127, -64, -64]);
  const rule = await codesOf({
    preset: "w8a8",
    rules: [{ match: "*", activation: null }, { match: "dw", weight: { rounding: "rtn" } }],
  });
  assert.equal(rule.rounding, "rtn");
  // Presets that name their rounding (w4a8: rtn) keep it.
  const w4e = (await quantize({ model: model(), calib: flat(), preset: "w4a8" })).quantized.plan
    .entries.find((e) => e.node === "dw" && e.role === "weight")!;
  assert.equal(w4e.rounding, "rtn");
});

Deno.test("without calibration data a depthwise conv rounds to nearest", async () => {
  // Activations in float need no data; GPTQ would, so the default falls back to RTN.
  const q = await quantize({
    model: model(),
    preset: "w8a8",
    rules: [{ match: "*", activation: null }],
  });
  const e = q.quantized.plan.entries.find((e) => e.node === "dw" && e.role === "weight")!;
  assert.equal(e.rounding, "rtn");
  assert.deepEqual(codes(q.quantized.model, e.scale!), [127, 0, 0, 127, -64, -64]);
});
