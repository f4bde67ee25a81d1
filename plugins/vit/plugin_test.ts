// The plugin record: what it registers, and presets whose activation format its quantizers do
// not handle (fp8) falling back to the format's own quantizer, with a warning.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { plugin } from "./plugin.ts";

const FIX = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));

function registry() {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

Deno.test("the plugin registers its quantizers, markers, options and stages", () => {
  const r = registry();
  for (const q of ["log2", "logsqrt2", "adalog", "twin-uniform", "noisy-uniform", "uniform"]) {
    assert.ok(r.quantizers.list().includes(q), q);
  }
  assert.deepEqual(r.options.get("vit-softmax").choices, [
    "adalog",
    "log2",
    "logsqrt2",
    "twin",
    "uniform",
  ]);
  assert.equal(r.options.get("vit-softmax").default, "adalog");
  assert.deepEqual(r.options.get("vit-gelu").choices, ["auto", "twin", "adalog", "uniform"]);
  assert.equal(r.options.get("noisy-bias").type, "boolean");
  assert.deepEqual(r.options.get("vit-layernorm").choices, ["auto", "reparam", "tensor"]);
  assert.equal(r.options.get("vit-layernorm").default, "auto");
  assert.deepEqual(r.options.get("vit-bias").choices, ["auto", "empirical", "off"]);
  assert.equal(r.options.get("vit-bias").default, "auto");
  assert.deepEqual(r.stages.list(), [
    "vit-nothing",
    "vit-formats",
    "vit-noisy-bias",
    "vit-auto",
    "vit-reparam",
    "vit-fit",
    "vit-bias-ref",
    "vit-bias",
  ]);
});

Deno.test("fp8: the plugin's points fall back to the format's quantizer, saying so", async () => {
  const model = await readOnnxFile(`${FIX}vit.onnx`);
  const all = readNpy(await Deno.readFile(`${FIX}calib_x.npy`));
  const x = { ...all, shape: [16, 1, 8, 8], data: (all.data as Float32Array).slice(0, 16 * 64) };
  const { quantized, warnings } = await quantize({
    model,
    calib: { inputs: { x }, count: 16 },
    preset: "fp8",
    registry: registry(),
    // (the stages' choice is not what this tests: forced, to keep it short)
    pluginOptions: { "vit-layernorm": "reparam", "vit-bias": "empirical" },
  });
  assert.ok(warnings.includes(
    "vit: 'adalog' does not handle fp8_e4m3fn; the plugin's points in fp8_e4m3fn use 'uniform' instead",
  ));
  const soft = quantized.plan.entries.filter((e) => e.by === "vit-softmax");
  assert.deepEqual(soft.map((e) => e.quantizer), ["uniform", "uniform"]);
  const gelu = quantized.plan.entries.filter((e) => e.by === "vit-gelu");
  assert.deepEqual(gelu.map((e) => e.quantizer), ["uniform", "uniform"]);
  assert.ok(quantized.plan.entries.every((e) => e.skip || e.dynamic || e.scale));
});
