// `--vit-layernorm auto` / `--vit-bias auto` on two hand-built models where the winner is known:
//
// - a LayerNorm whose γ makes one channel 100× wider than the three others, read by a Linear
//   that weighs the three narrow channels 50× more: per tensor, the 4-bit step (≈ 1.7 · 8 / 7)
//   is far wider than the narrow channels' whole range (±0.14), which all round to one level,
//   so their signal is lost; reparameterised, each channel has its own grid. `reparam` must win.
// - a Linear read by an almost constant input (3 + noise of ±0.01): its 4-bit weights' rounding
//   shifts every sample's output by nearly the same (W − Ŵ)ᵀ·3, which the empirical correction
//   removes (measured on samples 0–63, scored on 64–95). `empirical` must win.
//
// And the chosen setting's model is the one the forced options give, output for output.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { type Model, modelOf, type TensorData } from "@lowbit/graph";
import { quantize, simulate } from "@lowbit/pipeline";
import { HELD_OUT_FROM, stageCandidates } from "./auto.ts";
import { plugin } from "./plugin.ts";

const f32 = (shape: number[], data: number[]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(data),
});

function model(nodes: Model["graph"]["nodes"], inits: [string, TensorData][], C: number): Model {
  return modelOf({
    nodes,
    inputs: [{ name: "x", dtype: "float32", shape: ["N", C] }],
    outputs: [{ name: "y", dtype: "float32" }],
    initializers: inits,
  });
}

const node = (name: string, op: string, inputs: string[], out: string) => ({
  name,
  op,
  domain: "",
  inputs,
  outputs: [out],
  attrs: {},
});

/** 96 samples of C channels from a seeded generator (xorshift), mapped by `f`. */
function samples(C: number, f: (u: number, c: number) => number): TensorData {
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) % 1_000_003) / 1_000_003;
  };
  return f32([96, C], Array.from({ length: 96 * C }, (_, i) => f(next(), i % C)));
}

function registry() {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

async function outputs(m: Awaited<ReturnType<typeof quantize>>, x: TensorData) {
  return [...(await simulate(m.quantized).run({ x })).data as Float32Array];
}

Deno.test("stageCandidates: auto expands, forced values stay", () => {
  assert.deepEqual(stageCandidates("tensor", "auto"), [
    { layernorm: "tensor", bias: "empirical" },
    { layernorm: "tensor", bias: "off" },
  ]);
  assert.deepEqual(stageCandidates("auto", "auto").map((c) => `${c.layernorm}+${c.bias}`), [
    "reparam+empirical",
    "reparam+off",
    "tensor+empirical",
    "tensor+off",
  ]);
  assert.equal(HELD_OUT_FROM, 64);
});

Deno.test({
  name: "--vit-layernorm auto: reparam wins where one channel is 100× wider (hand-built)",
  sanitizeResources: false,
  async fn() {
    const C = 4;
    const m = model([
      node("ln", "LayerNormalization", ["x", "gamma", "beta"], "h"),
      node("fc", "MatMul", ["h", "W"], "z"),
      node("add", "Add", ["z", "b"], "y"),
    ], [
      ["gamma", f32([C], [8, 0.08, 0.08, 0.08])],
      ["beta", f32([C], [0, 0, 0, 0])],
      // rows: input channels; the narrow ones weigh 50× more
      ["W", f32([C, 2], [0.1, -0.1, 5, 4, -4, 5, 5, -5])],
      ["b", f32([2], [0.5, -0.5])],
    ], C);
    const x = samples(C, (u) => 2 * u - 1);
    const calib = { inputs: { x }, count: 96 };
    const r = registry();
    const chosen = await quantize({
      model: m,
      calib,
      preset: "w4a4",
      registry: r,
      pluginOptions: { "vit-layernorm": "auto", "vit-bias": "off" },
    });
    const note = chosen.warnings.find((w) => w.includes("auto chose"));
    assert.ok(note, chosen.warnings.join("\n"));
    assert.match(note, /chose reparam \+ off/);
    assert.match(note, /calibration samples 64–95/);
    const mse = Object.fromEntries(
      [...note.matchAll(/(reparam|tensor) \+ off ([0-9.e+-]+)/g)].map((g) => [g[1], +g[2]]),
    );
    assert.ok(mse.tensor > 10 * mse.reparam, JSON.stringify(mse));
    // the plan records the value used; the model is the forced option's
    assert.equal(chosen.quantized.plan.pluginOptions?.["vit-layernorm"], "reparam");
    const forced = await quantize({
      model: m,
      calib,
      preset: "w4a4",
      registry: r,
      pluginOptions: { "vit-layernorm": "reparam", "vit-bias": "off" },
    });
    assert.deepEqual(await outputs(chosen, x), await outputs(forced, x));
  },
});

Deno.test({
  name: "--vit-bias auto: empirical wins where weight rounding shifts every output (hand-built)",
  sanitizeResources: false,
  async fn() {
    const C = 4;
    const m = model([
      node("fc", "MatMul", ["x", "W"], "z"),
      node("add", "Add", ["z", "b"], "y"),
    ], [
      // 4-bit symmetric per output channel, step 1/7: 0.33 → 2/7, 0.55 → 4/7, 0.71 → 5/7
      ["W", f32([C, 2], [1, -1, 0.33, 0.55, 0.55, 0.33, 0.71, -0.71])],
      ["b", f32([2], [0, 0])],
    ], C);
    const x = samples(C, (u) => 3 + 0.02 * (u - 0.5));
    const r = registry();
    const chosen = await quantize({
      model: m,
      calib: { inputs: { x }, count: 96 },
      preset: "w4a4",
      registry: r,
      pluginOptions: { "vit-layernorm": "tensor", "vit-bias": "auto" },
    });
    const note = chosen.warnings.find((w) => w.includes("auto chose"));
    assert.ok(note, chosen.warnings.join("\n"));
    assert.match(note, /chose tensor \+ empirical/);
    const mse = Object.fromEntries(
      [...note.matchAll(/tensor \+ (empirical|off) ([0-9.e+-]+)/g)].map((g) => [g[1], +g[2]]),
    );
    assert.ok(mse.off > 10 * mse.empirical, JSON.stringify(mse));
    assert.equal(chosen.quantized.plan.pluginOptions?.["vit-bias"], "empirical");
  },
});
