import assert from "node:assert/strict";
import {
  createRegistry,
  registerBuiltins,
  type ReportContext,
  type TensorValue,
} from "@lowbit/core";
import { createExecutor, readOnnxFile } from "@lowbit/graph";
import { fileURLToPath } from "node:url";
import { diffusionReportSection, plugin } from "./mod.ts";

const FIX = fileURLToPath(new URL("../../fixtures/ddpm/", import.meta.url));

Deno.test({
  name: "the report section charts ε error along the float trajectory: 1.1·ε gives 1 % at every t",
  sanitizeResources: false,
  async fn() {
    const model = await readOnnxFile(FIX + "ddpm.onnx");
    const exec = createExecutor(model);
    const out = model.graph.outputs[0].name;
    const runFloat = (i: Readonly<Record<string, TensorValue>>) =>
      exec.run(i as never) as Promise<Record<string, TensorValue>>;
    // A "quantized" model whose ε is the float ε × 1.1: on the float trajectory's own x_t its
    // relative squared error is (1.1 − 1)² = 0.01 at every t (hand-derived), and its samples
    // differ from the float ones.
    const runQuantized = async (i: Readonly<Record<string, TensorValue>>) => {
      const r = await exec.run(i as never);
      const e = r[out].data as Float32Array;
      return { [out]: { ...r[out], data: e.map((v) => v * 1.1) } } as Record<string, TensorValue>;
    };
    const registry = createRegistry();
    registerBuiltins(registry);
    registry.use(plugin);
    assert.ok(registry.reportSections.list().includes("diffusion"));
    const ctx: ReportContext = {
      graph: model.graph as never,
      plan: null,
      options: { schedule: FIX + "betas.npy" },
      models: { float: model, quantized: model },
      runFloat,
      runQuantized,
    };
    const part = await diffusionReportSection().render(ctx);
    assert.ok(part);
    assert.match(part.title, /ε error/);
    // mean ε relative MSE 1.000 % (printed with 3 decimals), the chart and both sample grids
    assert.match(part.html, /mean ε relative MSE over t<\/th><td>1\.000 %/);
    assert.ok(part.html.includes("<figcaption>float</figcaption>"));
    assert.ok(part.html.includes("<figcaption>quantized</figcaption>"));
    // Without --schedule the section has nothing to say.
    assert.equal(await diffusionReportSection().render({ ...ctx, options: {} }), undefined);
  },
});
