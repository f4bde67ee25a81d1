/**
 * Running a {@link QuantizedModel} on our executor: its graph and quantization points become one
 * runnable graph (`materializeQuantized`: Q/DQ pairs where ONNX expresses a point, `FakeQuant`
 * nodes running the registered quantizer elsewhere) — the same graph a written lowbit file loads
 * into, so the simulation, `lowbit run` and `lowbit eval` agree bit for bit.
 *
 * @module
 */

import {
  createExecutor,
  type ExecutorOptions,
  materializeQuantized,
  type Model,
  type TensorData,
} from "@lowbit/graph";
import { defaultRegistry } from "@lowbit/core";
import type { QuantizedModel } from "./quantize.ts";
import { planPoints } from "./quantize.ts";

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
 * The runnable graph of a quantized model (see the module doc).
 *
 * @param qm the quantized model
 * @returns the model with its quantization points as nodes
 *
 * @example
 * ```ts
 * import { quantize, runnableModel } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 } });
 * const m = runnableModel(quantized);
 * if (!m.graph.nodes.some((n) => n.op === "QuantizeLinear")) throw new Error();
 * ```
 */
export function runnableModel(qm: QuantizedModel): Model {
  return materializeQuantized(qm.model, planPoints(qm.plan, qm.registry), {
    registry: qm.registry,
  });
}

/**
 * How quantized models run here and in `lowbit run` / `lowbit eval`: Q/DQ as written (the ONNX
 * definition, what onnxruntime computes with its optimisations off). The executor's integer
 * path ("integer") is faster but rounds some requantizations differently; it is used once it
 * gives these bits.
 */
export const QUANTIZED_EXECUTION: ExecutorOptions["quantized"] = "float";

/**
 * The simulation of a quantized model on our executor: its runnable graph, run as every loader
 * runs it.
 *
 * @param qm the quantized model
 * @param opts threads (the same results for any count)
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
export function simulate(qm: QuantizedModel, opts: { threads?: number } = {}): Runner {
  const m = runnableModel(qm);
  const exec = createExecutor(m, {
    quantized: QUANTIZED_EXECUTION,
    registry: qm.registry,
    threads: opts.threads,
  });
  const out = m.graph.outputs[0].name;
  return { run: async (inputs) => (await exec.run(inputs))[out] };
}

/**
 * The executor `transform` hook that fake-quantizes a quantized model's activation points with
 * their registered quantizers, for code that runs the float graph with on-grid weights and
 * wants the activations quantized one value at a time (the accuracy guard isolates offenders
 * with it). The runnable graph of {@link runnableModel} computes the same values.
 *
 * @param qm the quantized model
 * @param inputs the run's graph inputs, for quantizers that read one at run time (a GNN's
 *   per-node ranges read the adjacency or edge index)
 * @returns the hook
 *
 * @example
 * ```ts
 * import { activationTransform } from "@lowbit/pipeline";
 * const hook = activationTransform({ model: {} as never, layers: [], plan: { version: 2,
 *   model: { name: "", sha256: "" }, preset: null, entries: [],
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } } } });
 * if (hook("x", { dtype: "float32", shape: [1], data: new Float32Array(1) }) !== undefined) throw new Error();
 * ```
 */
export function activationTransform(
  qm: QuantizedModel,
  inputs?: Readonly<Record<string, TensorData>>,
): (name: string, t: TensorData) => TensorData | undefined {
  const reg = qm.registry ?? defaultRegistry();
  const points = new Map(
    planPoints(qm.plan, reg).filter((p) => p.role === "activation").map((p) => [p.value, p]),
  );
  return (name, t) => {
    const p = points.get(name);
    if (!p || t.dtype !== "float32") return undefined;
    const y = reg.quantizers.get(p.quantizer).fakeQuant(
      { shape: t.shape, data: t.data as Float32Array },
      p.params,
      inputs && { batch: 0, tags: {}, inputs: inputs as never },
    );
    return { dtype: "float32", shape: [...t.shape], data: y.data };
  };
}
