// `lowbit quantize --plugin diffusion --calib images.npy`: the calibration source forward-noises
// the images and makes the time input itself (it `provides` it), so --calib leaves it out.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { cli } from "../../apps/cli/_cli_test_util.ts";
import { plugin } from "./mod.ts";

const FIX = fileURLToPath(new URL("../../fixtures/ddpm/", import.meta.url));

Deno.test({
  name: "--calib gives only the images: the source makes t; the plan is the library's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lowbit-diffusion-" });
    try {
      const opts = ["--schedule", `${FIX}betas.npy`, "--calib-samples", "64"];
      const r = await cli([
        "quantize",
        `${FIX}ddpm.onnx`,
        "--plugin",
        "diffusion",
        ...opts,
        "--calib",
        `${FIX}calib_x0.npy`,
        "--out",
        `${dir}/m.lowbit`,
        "--json",
      ]);
      assert.equal(r.code, 0, r.err);
      const summary = JSON.parse(r.out);
      assert.ok(
        summary.warnings.some((w: string) =>
          w.startsWith("accuracy guard skipped: the calibration data has no 't'")
        ),
        JSON.stringify(summary.warnings),
      );
      const plan = JSON.parse(await Deno.readTextFile(`${dir}/m.plan.json`));
      // The same quantization through the library, the images given as the dataset.
      const registry = createRegistry();
      registerBuiltins(registry);
      registry.use(plugin);
      const x = readNpy(await Deno.readFile(`${FIX}calib_x0.npy`));
      const { quantized } = await quantize({
        model: await readOnnxFile(`${FIX}ddpm.onnx`),
        calib: { inputs: { x }, count: x.shape[0] },
        preset: "w8a8",
        registry,
        pluginOptions: { schedule: `${FIX}betas.npy`, "calib-samples": 64 },
      });
      const acts = (p: { entries: { role: string; skip?: boolean; scale?: number[] }[] }) =>
        p.entries.filter((e) => e.role === "activation" && !e.skip).map((e) => e.scale);
      assert.ok(acts(plan).length > 10);
      assert.deepEqual(acts(plan), acts(JSON.parse(JSON.stringify(quantized.plan))));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
