// The plugin end to end on the fixture DDPM, at the scale a test affords (100 calibration samples;
// the README's table uses the defaults): quantize with the sampler's own trajectory, compare ε to
// the float model, replay the .lowbit through `lowbit run`, and the bad inputs.
import assert from "node:assert/strict";
import { createRegistry, LowbitError, registerBuiltins, type Registry } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { encodeLowbitModel, quantize, type Rule, simulate } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { plugin } from "./mod.ts";
import { epsRelativeMse } from "./metrics.ts";
import { findDiffusionInputs } from "./inputs.ts";
import type { Denoiser } from "./sampler.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIX = ROOT + "fixtures/ddpm/";
const model = await readOnnxFile(FIX + "ddpm.onnx");
const inputs = findDiffusionInputs(model.graph);
const npy = async (f: string) => readNpy(await Deno.readFile(FIX + f));
// (x_t, t) pairs made by the fixture script (two per timestep), independent of the plugin
const pairs = {
  x: await npy("eps_xt.npy"),
  t: Array.from((await npy("eps_t.npy")).data as Float32Array),
};
const floatExec = createExecutor(model);
const floatDenoise: Denoiser = async (i) => (await floatExec.run(i)).eps;

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

const INT6_ACTS: Rule[] = [{ match: "*", activation: { format: "int6" } }];

async function quantizeWith(
  options: Record<string, string | number | boolean>,
  rules: Rule[] = [],
) {
  const r = registry();
  const { quantized, warnings } = await quantize({
    model,
    name: "ddpm.onnx",
    preset: "w8a8",
    rules,
    registry: r,
    pluginOptions: { schedule: FIX + "betas.npy", "calib-samples": 100, ...options },
  });
  const sim = simulate(quantized);
  const eps = await epsRelativeMse((i) => sim.run(i), floatDenoise, pairs, inputs, 50);
  return { quantized, warnings, eps, registry: r, sim };
}

Deno.test({
  name:
    "w8a8 from the model's own trajectory: ε within 0.5 % of float, ≥ 5× better than the last step",
  sanitizeResources: false,
  async fn() {
    const uniform = await quantizeWith({});
    // `last` needs one trajectory per sample: 32 keep the test fast
    const last = await quantizeWith({ "diffusion-calib": "last", "calib-samples": 32 });
    assert.ok(uniform.eps.mean <= 0.005, `uniform ${uniform.eps.mean}`);
    assert.ok(
      last.eps.mean >= 5 * uniform.eps.mean,
      `last ${last.eps.mean} uniform ${uniform.eps.mean}`,
    );
    // Split shortcut: the upsampled path gets its own point, the joined Concat output none;
    // the time-embedding path is found (its Gemm inputs quantized, at int8).
    const entries = uniform.quantized.plan.entries;
    const byValue = (v: string) => entries.filter((e) => e.value === v && e.role === "activation");
    assert.equal(byValue("/Mul_1_output_0")[0].by, "diffusion-shortcut");
    assert.ok(byValue("/Concat_output_0").every((e) => e.skip));
    assert.ok(byValue("/res1/Add_1_output_0").some((e) => !e.skip)); // the skip input, its own
    assert.deepEqual(uniform.quantized.plan.plugins, [{ name: "diffusion", version: "0.1.0" }]);
  },
});

Deno.test({
  name:
    "timestep groups at w8a6 beat one group, and `lowbit run` of the .lowbit reproduces the simulation exactly",
  sanitizeResources: false,
  async fn() {
    const one = await quantizeWith({}, INT6_ACTS);
    const four = await quantizeWith({ "timestep-groups": 4 }, INT6_ACTS);
    assert.ok(four.eps.mean < one.eps.mean, `G=4 ${four.eps.mean} G=1 ${one.eps.mean}`);
    const grouped = four.quantized.plan.entries.filter((e) => e.quantizer === "timestep-grouped");
    assert.ok(grouped.length > 10);
    assert.ok(grouped.every((e) => e.reads?.[0] === "t" && e.extra?.scales.length === 4));
    // the time-embedding path stays int8 although activations are int6
    const temb = four.quantized.plan.entries.find((e) => e.value === "/time/Mul_1_output_0")!;
    assert.equal(temb.format, "int8");

    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/m.lowbit`, encodeLowbitModel(four.quantized));
      const cmd = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          ROOT + "apps/cli/main.ts",
          "run",
          `${dir}/m.lowbit`,
          "--plugin",
          "diffusion",
          "--input",
          `x=${FIX}eps_xt.npy`,
          "--input",
          `t=${FIX}eps_t.npy`,
          "--out",
          `${dir}/y.npy`,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      });
      const res = await cmd.output();
      assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
      const y = readNpy(await Deno.readFile(`${dir}/y.npy`));
      const sim = await four.sim.run({ x: pairs.x, t: await npy("eps_t.npy") });
      assert.deepEqual(y.shape, sim.shape);
      assert.deepEqual(y.data, sim.data);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bad input: schedule length vs --timesteps, a model without a time input, wrong noise", async () => {
  const e1 = await quantizeWith({ timesteps: 40 }).catch((e) => e);
  assert.ok(e1 instanceof LowbitError);
  assert.match(e1.message, /betas\.npy'.*50 betas but --timesteps is 40/);

  const mlp = await readOnnxFile(ROOT + "fixtures/digits/mlp.onnx");
  const x = await readNpy(await Deno.readFile(ROOT + "fixtures/digits/calib_x.npy"));
  const e2 = await quantize({
    model: mlp,
    name: "mlp.onnx",
    calib: { inputs: { x }, count: x.shape[0] },
    registry: registry(),
    pluginOptions: {},
  }).catch((e) => e);
  assert.ok(e2 instanceof LowbitError);
  assert.match(e2.message, /^file 'mlp\.onnx': the model has no time input/);

  const r = registry();
  const dir = await Deno.makeTempDir();
  try {
    const bad: TensorData = {
      dtype: "float32",
      shape: [51, 2, 1, 4, 4],
      data: new Float32Array(51 * 32),
    };
    const { writeNpy } = await import("@lowbit/graph");
    await Deno.writeFile(`${dir}/noise.npy`, writeNpy(bad));
    const e3 = await r.commands.get("diffusion").main([
      "sample",
      FIX + "ddpm.onnx",
      "--schedule",
      FIX + "betas.npy",
      "--noise",
      `${dir}/noise.npy`,
      "--out",
      `${dir}/s.npy`,
    ]).catch((e) => e);
    assert.ok(e3 instanceof LowbitError);
    assert.match(
      e3.message,
      /noise\.npy'.*one sample is \[1,4,4\] but the model's 'x' is \[1,8,8\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
