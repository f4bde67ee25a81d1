/**
 * Running a {@link QuantizedModel} on our executor in simulation: weights are
 * already on their grids; every quantized activation is fake-quantized by the
 * executor's `transform` hook with the plan's scales (or dynamic block
 * scales) as it is produced — where a QDQ export puts QuantizeLinear →
 * DequantizeLinear, so all its consumers see the quantized value.
 *
 * @module
 */

import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import type { PlanEntry } from "./plan.ts";
import type { QuantizedModel } from "./quantize.ts";
import { activationsByValue } from "./export.ts";
import { fakeQuantActivation } from "./tensor_quant.ts";

/** Runs a model on one batch and returns its first output. */
export interface Runner {
  /** Runs one batch. */
  run(inputs: Record<string, TensorData>): Promise<TensorData>;
}

/**
 * A runner for a model on our executor (QDQ models run their Q/DQ nodes).
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
 * const y = await r.run({ x });
 * if (y.shape[1] !== 10) throw new Error();
 * ```
 */
export function floatRunner(model: Model): Runner {
  const exec = createExecutor(model);
  const out = model.graph.outputs[0].name;
  return { run: async (inputs) => (await exec.run(inputs))[out] };
}

/**
 * The executor `transform` hook that fake-quantizes a quantized model's
 * activations (static plan scales, or dynamic block scales).
 *
 * @param qm the quantized model
 * @returns the hook
 *
 * @example
 * ```ts
 * import { activationTransform } from "@lowbit/pipeline";
 * const hook = activationTransform({ model: {} as never, layers: [], plan: { version: 1,
 *   model: { name: "", sha256: "" }, preset: null, entries: [],
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } } } });
 * if (hook("x", { dtype: "float32", shape: [1], data: new Float32Array(1) }) !== undefined) throw new Error();
 * ```
 */
export function activationTransform(
  qm: QuantizedModel,
): (name: string, t: TensorData) => TensorData | undefined {
  const hooks = new Map<string, { entry: PlanEntry; axis: number }>();
  for (const [value, entry] of activationsByValue(qm.plan)) {
    const layer = qm.layers.find((l) => l.node === entry.node);
    const conv = layer?.op === "Conv" || layer?.op === "ConvTranspose";
    hooks.set(value, { entry, axis: conv ? 1 : -1 });
  }
  return (name, t) => {
    const h = hooks.get(name);
    if (!h) return undefined;
    return {
      dtype: "float32",
      shape: [...t.shape],
      data: fakeQuantActivation(t.data as Float32Array, t.shape, h.entry, h.axis),
    };
  };
}

/**
 * The fake-quant simulation of a quantized model on our executor.
 *
 * @param qm the quantized model
 * @returns the runner
 *
 * @example
 * ```ts
 * import { quantize, simulate } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 } });
 * const y = await simulate(quantized).run({ x });
 * if (y.shape[0] !== 200) throw new Error();
 * ```
 */
export function simulate(qm: QuantizedModel): Runner {
  const transform = activationTransform(qm);
  const exec = createExecutor(qm.model);
  const out = qm.model.graph.outputs[0].name;
  return { run: async (inputs) => (await exec.run(inputs, { transform }))[out] };
}
