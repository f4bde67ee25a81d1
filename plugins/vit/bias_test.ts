// Empirical bias correction: after it, every corrected layer's per-channel output mean on the
// correction's samples is the float model's (measured here on the input model and on the
// runnable quantized graph, independently of the stage's own runs); without it, it is not.
import assert from "node:assert/strict";
import { createRegistry, registerBuiltins } from "@lowbit/core";
import { createExecutor, readNpy, readOnnxFile, type TensorData } from "@lowbit/graph";
import { quantize, QUANTIZED_EXECUTION, runnableModel } from "@lowbit/pipeline";
import { fileURLToPath } from "node:url";
import { BIAS_SAMPLES, biasSites, channelMeans } from "./bias.ts";
import { plugin } from "./plugin.ts";

const FIX = fileURLToPath(new URL("../../fixtures/digits/", import.meta.url));

Deno.test("channelMeans: by hand, last axis and axis 1 of a 3-D tensor", () => {
  const t = {
    dtype: "float32" as const,
    shape: [2, 2, 2],
    data: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8),
  };
  assert.deepEqual([...channelMeans(t, -1)], [4, 5]); // (1+3+5+7)/4, (2+4+6+8)/4
  assert.deepEqual([...channelMeans(t, 1)], [3.5, 5.5]); // (1+2+5+6)/4, (3+4+7+8)/4
});

Deno.test({
  name: "vit-bias: every corrected layer's output mean equals the float model's (digits ViT, w4a4)",
  sanitizeResources: false,
  async fn() {
    const r = createRegistry();
    registerBuiltins(r);
    r.use(plugin);
    const model = await readOnnxFile(`${FIX}vit.onnx`);
    const x = readNpy(await Deno.readFile(`${FIX}calib_x.npy`));
    const calib = { inputs: { x }, count: 200 };
    const xs = {
      x: {
        ...x,
        shape: [BIAS_SAMPLES, 1, 8, 8],
        data: (x.data as Float32Array).slice(0, BIAS_SAMPLES * 64),
      },
    };
    const sites = biasSites(model.graph, model.graph.nodes.map((n) => n.name));
    // patch Conv, 2 × (q, k, v, proj, fc1, fc2), head
    assert.equal(sites.length, 14);
    const outs = sites.map((s) => s.output);
    const meansOf = async (m: typeof model, quantized: boolean) => {
      const got = new Map<string, Float64Array>();
      const exec = createExecutor(m, {
        registry: r,
        ...(quantized ? { quantized: QUANTIZED_EXECUTION } : {}),
      });
      await exec.run(xs as Record<string, TensorData>, {
        watch: outs,
        observe: (name, t) =>
          got.set(name, channelMeans(t, sites.find((s) => s.output === name)!.axis)),
      });
      return got;
    };
    const float = await meansOf(model, false);
    const worst = async (bias: string) => {
      const { quantized } = await quantize({
        model,
        calib,
        preset: "w4a4",
        registry: r,
        pluginOptions: { "vit-layernorm": "reparam", "vit-bias": bias },
      });
      const q = await meansOf(runnableModel(quantized), true);
      let w = 0;
      for (const o of outs) {
        const f = float.get(o)!, g = q.get(o)!;
        for (let c = 0; c < f.length; c++) w = Math.max(w, Math.abs(f[c] - g[c]));
      }
      return w;
    };
    const on = await worst("empirical"), off = await worst("off");
    assert.ok(on < 1e-4, `with the correction, largest mean shift ${on}`);
    assert.ok(off > 100 * on, `without it ${off}`);
  },
});
