/**
 * Running a {@link QuantizedModel} on our executor in simulation: weights are
 * already on their grids; every quantized activation gets its own copy in
 * front of its layer (an Identity node), fake-quantized by the executor's
 * `transform` hook with the plan's scales (or dynamic block scales), exactly
 * where a QDQ export puts QuantizeLinear → DequantizeLinear. Other consumers
 * of the same tensor (a residual Add, say) still see the float value.
 *
 * @module
 */

import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import type { PlanEntry } from "./plan.ts";
import type { QuantizedModel } from "./quantize.ts";
import { cloneModel } from "./quantize.ts";
import { fakeQuantActivation } from "./tensor_quant.ts";

/** Runs a model on one batch and returns its first output. */
export interface Runner {
  /** Runs one batch. */
  run(inputs: Record<string, TensorData>): Promise<TensorData>;
}

/**
 * A runner for a float model on our executor.
 *
 * @param model the model
 * @returns the runner (first graph output)
 *
 * @example
 * ```ts
 * import { floatRunner } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const r = floatRunner(readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx")));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const y = await r.run({ x: { ...x, shape: [200, 1, 8, 8] } });
 * if (y.shape[1] !== 10) throw new Error();
 * ```
 */
export function floatRunner(model: Model): Runner {
  const exec = createExecutor(model);
  const out = model.graph.outputs[0].name;
  return { run: async (inputs) => (await exec.run(inputs))[out] };
}

/**
 * The fake-quant simulation of a quantized model: its graph with one Identity
 * per quantized activation, and the `transform` hook that quantizes them.
 *
 * @param qm the quantized model
 * @returns the rewritten model and the runner
 *
 * @example
 * ```ts
 * import { quantize, simulate } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 } });
 * const y = await simulate(quantized).runner.run({ x });
 * if (y.shape[0] !== 200) throw new Error();
 * ```
 */
export function simulate(qm: QuantizedModel): { model: Model; runner: Runner } {
  const model = cloneModel(qm.model);
  const hooks = new Map<string, { entry: PlanEntry; axis: number }>();
  for (const e of qm.plan.entries) {
    if (e.role !== "activation" || e.skip) continue;
    const node = model.graph.nodes.find((n) => n.name === e.node);
    const layer = qm.layers.find((l) => l.node === e.node);
    if (!node || !layer) continue;
    const value = `${e.value}::fq::${e.node}`;
    model.graph.nodes.push({
      name: `${e.node}::fq`,
      op: "Identity",
      domain: "",
      inputs: [e.value],
      outputs: [value],
      attrs: {},
    });
    node.inputs[0] = value;
    hooks.set(value, {
      entry: e,
      axis: layer.op === "Conv" || layer.op === "ConvTranspose" ? 1 : -1,
    });
  }
  const exec = createExecutor(model);
  const out = model.graph.outputs[0].name;
  return {
    model,
    runner: {
      run: async (inputs) =>
        (await exec.run(inputs, {
          transform: (name, t) => {
            const h = hooks.get(name);
            if (!h) return undefined;
            return {
              dtype: "float32",
              shape: [...t.shape],
              data: fakeQuantActivation(t.data as Float32Array, t.shape, h.entry, h.axis),
            };
          },
        }))[out],
    },
  };
}
