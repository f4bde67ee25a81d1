// The mixed search runs on the model quantize() prepared: weights held in Constant nodes
// (paddle2onnx exports) are layers there too, and an op autodiff cannot differentiate (Pad) runs
// forward only, with the Hessian metric falling back to one that needs no gradient.
import assert from "node:assert/strict";
import { createExecutor, type Model, type Node, readNpy, readOnnxFile } from "@lowbit/graph";
import { quantize } from "@lowbit/pipeline";
import { createMixedSearch } from "@lowbit/pipeline/search";
import { fileURLToPath } from "node:url";

const FIX = fileURLToPath(new URL("../../../fixtures/digits/", import.meta.url));

/**
 * The digits CNN rewritten the way paddle2onnx writes models: every Conv weight in a Constant
 * node, and the second Conv's zero padding (inside the first residual block) as an explicit Pad
 * node (its own pads set to 0), so the function computed is exactly the original one.
 */
async function padConstCnn(): Promise<Model> {
  const m = await readOnnxFile(`${FIX}cnn.onnx`);
  const g = m.graph;
  const nodes: Node[] = [];
  let padded = false, convs = 0;
  for (const n of g.nodes) {
    if (n.op === "Conv") {
      convs++;
      const w = g.initializers.get(n.inputs[1])!;
      g.initializers.delete(n.inputs[1]);
      nodes.push({
        name: `${n.name}/const_w`,
        op: "Constant",
        domain: "",
        inputs: [],
        outputs: [n.inputs[1]],
        attrs: { value: { kind: "tensor", value: w } },
      });
      if (!padded && convs === 2) {
        padded = true;
        const p = n.attrs.pads;
        assert.ok(p?.kind === "ints" && p.value.every((v) => v === 1));
        g.initializers.set("pad_amounts", {
          dtype: "int64",
          shape: [8],
          data: BigInt64Array.from([0n, 0n, 1n, 1n, 0n, 0n, 1n, 1n]),
        });
        nodes.push({
          name: "explicit_pad",
          op: "Pad",
          domain: "",
          inputs: [n.inputs[0], "pad_amounts"],
          outputs: ["padded_input"],
          attrs: { mode: { kind: "string", value: "constant" } },
        });
        nodes.push({
          ...n,
          inputs: ["padded_input", ...n.inputs.slice(1)],
          attrs: { ...n.attrs, pads: { kind: "ints", value: [0, 0, 0, 0] } },
        });
        continue;
      }
    }
    nodes.push(n);
  }
  g.nodes = nodes;
  return m;
}

Deno.test({
  name: "quantize --preset mixed works on a model with Constant-node weights and a Pad",
  sanitizeResources: false,
  async fn() {
    const model = await padConstCnn();
    const x = readNpy(await Deno.readFile(`${FIX}calib_x.npy`));
    const calib = { inputs: { x }, count: x.shape[0] };
    // The rewritten model computes what the original does.
    const orig = await readOnnxFile(`${FIX}cnn.onnx`);
    const a = (await createExecutor(orig).run({ x })).logits.data as Float32Array;
    const b = (await createExecutor(model).run({ x })).logits.data as Float32Array;
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(a[i])));
    }
    let metric = "";
    const mixedSearch = createMixedSearch({ model, calib, onResult: (r) => (metric = r.metric) });
    const { quantized, warnings } = await quantize({
      model,
      calib,
      preset: "mixed",
      mixedSearch,
      mixedOptions: { budget: "6bits", candidates: "int8/channel,int4/channel", samples: "16" },
    });
    // Every Conv and the Gemm is a layer with a weight format from the search.
    const weights = quantized.plan.entries.filter((e) => e.role === "weight" && !e.skip);
    assert.equal(weights.length, 7);
    assert.ok(weights.every((e) => e.format === "int8" || e.format === "int4"));
    // hawq-v2 (the default) needs gradients through the Pad: the search says it fell back.
    assert.equal(metric, "layer-hessian");
    assert.ok(
      warnings.some((w) => /metric 'hawq-v2' needs gradients through explicit_pad/.test(w)),
      warnings.join("\n"),
    );
  },
});
