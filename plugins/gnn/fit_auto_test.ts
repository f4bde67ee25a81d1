// --gnn-fit auto (the default): each degree-aware point takes the min / max or the mse fit,
// whichever gives the model output closer to float on the calibration graph. Checked against
// the plugin's own minmax and mse fits of the same points and an independent recomputation of
// the first point's two output errors (the float executor with only that point fake-quantized).
import assert from "node:assert/strict";
import { createRegistry, type QParams, registerBuiltins, type Registry } from "@lowbit/core";
import { createExecutor, type TensorData } from "@lowbit/graph";
import { type PlanEntry, quantize } from "@lowbit/pipeline";
import { degreeQuantizer, plugin } from "./mod.ts";
import { graphInputs, model } from "./_fixtures.ts";

function registry(): Registry {
  const r = createRegistry();
  registerBuiltins(r);
  r.use(plugin);
  return r;
}

const NAME = "gcn2_edges";

async function points(fit: string): Promise<PlanEntry[]> {
  const { quantized } = await quantize({
    model: await model(NAME),
    calib: { inputs: { ...(await graphInputs(NAME)) }, count: 400 },
    preset: "w8a4",
    registry: registry(),
    pluginOptions: { "gnn-fit": fit },
  });
  return quantized.plan.entries.filter((e) => !e.skip && e.quantizer === "gnn-degree");
}

const qparams = (e: PlanEntry): QParams => ({
  format: e.format!,
  granularity: e.granularity!,
  mode: e.mode!,
  scale: Float32Array.from(e.scale!),
  zeroPoint: Int32Array.from(e.zeroPoint!),
  extra: e.extra,
  reads: e.reads,
});

Deno.test({
  name: "--gnn-fit auto: each point takes the fit whose output error against float is smaller",
  sanitizeResources: false,
  async fn() {
    const [auto, minmax, mse] = await Promise.all(["auto", "minmax", "mse"].map(points));
    assert.equal(auto.length, 5);
    for (const e of auto) {
      const m = /--gnn-fit auto: (minmax|mse) \(output MSE against float: minmax (\S+), mse (\S+)\)/
        .exec(e.note ?? "");
      assert.ok(m, `${e.value}: ${e.note}`);
      const [, fit, a, b] = m;
      assert.equal(fit, Number(a) <= Number(b) ? "minmax" : "mse", e.note);
      const same = (fit === "minmax" ? minmax : mse).find((p) => p.value === e.value)!;
      assert.deepEqual(e.scale, same.scale, e.value);
      assert.deepEqual(e.zeroPoint, same.zeroPoint, e.value);
    }
    // the first point in graph order: both errors recomputed with it alone fake-quantized (x,
    // the first layer's input, is the preset's per-tensor point and is float here, as in auto)
    const inputs = await graphInputs(NAME);
    const exec = createExecutor(await model(NAME));
    const order: string[] = [];
    const float = (await exec.run(inputs, { observe: (n) => order.push(n) })).logits
      .data as Float32Array;
    const first = auto.map((e) => e.value).sort((a, b) => order.indexOf(a) - order.indexOf(b))[0];
    assert.equal(first, "/lin1/MatMul_output_0"); // Z = X·W, the first aggregation's operand
    const q = degreeQuantizer(registry());
    const err = async (e: PlanEntry): Promise<number> => {
      const out = await exec.run(inputs, {
        transform: (name, t) =>
          name !== first ? undefined : {
            ...t,
            data:
              q.fakeQuant(t as never, qparams(e), { batch: 0, tags: {}, inputs: inputs as never })
                .data,
          } as TensorData,
      });
      const y = out.logits.data as Float32Array;
      return y.reduce((s, v, i) => s + (v - float[i]) ** 2, 0) / y.length;
    };
    const note = auto.find((e) => e.value === first)!.note!;
    const figures = /minmax (\S+), mse (\S+)\)/.exec(note)!.slice(1).map(Number);
    const mm = await err(minmax.find((e) => e.value === first)!);
    const ms = await err(mse.find((e) => e.value === first)!);
    assert.ok(Math.abs(mm - figures[0]) <= 1e-3 * mm, `${mm} vs ${figures[0]}`);
    assert.ok(Math.abs(ms - figures[1]) <= 1e-3 * ms, `${ms} vs ${figures[1]}`);
  },
});

Deno.test({
  name: "--gnn-fit auto scores float outputs only: an int64 ArgMax output changes no choice",
  sanitizeResources: false,
  async fn() {
    // the same model with a second output, the predicted labels (int64): the float logits are
    // unchanged, so every point's choice and parameters must be those of the plain model
    const m = await model(NAME);
    const g = m.graph;
    const labels = {
      ...m,
      graph: {
        ...g,
        nodes: [...g.nodes, {
          name: "labels",
          op: "ArgMax",
          domain: "",
          inputs: ["logits"],
          outputs: ["labels"],
          attrs: { axis: { kind: "int" as const, value: 1 } },
        }],
        outputs: [...g.outputs, { name: "labels", dtype: "int64" as const }],
      },
    };
    const run = async (mm: typeof m): Promise<PlanEntry[]> =>
      (await quantize({
        model: mm,
        calib: { inputs: { ...(await graphInputs(NAME)) }, count: 400 },
        preset: "w8a4",
        registry: registry(),
      })).quantized.plan.entries.filter((e) => !e.skip && e.quantizer === "gnn-degree");
    const [plain, withLabels] = await Promise.all([run(m), run(labels)]);
    assert.equal(withLabels.length, plain.length);
    for (const e of withLabels) {
      const p = plain.find((x) => x.value === e.value)!;
      assert.equal(e.note, p.note);
      assert.deepEqual(e.scale, p.scale, e.value);
    }
  },
});
