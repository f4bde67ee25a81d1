/**
 * A {@link QuantizedModel} in and out of the lowbit file (`@lowbit/graph`'s
 * `encodeLowbitFile` / `decodeLowbitFile`): every quantized weight is stored as the codes its
 * quantizer gives, with its scales and the quantizer's other fitted parameters (MX block scale
 * codes, a ternary γ, ...); the activation points ride along with theirs, and the plan as JSON.
 * Loading decodes the codes with the same quantizers, so the model comes back on the same grid.
 *
 * @module
 */

import { defaultRegistry, type Registry } from "@lowbit/core";
import {
  decodeLowbitFile,
  encodeLowbitFile,
  findInitializer,
  lowbitPoints,
  type LowbitTensor,
  type Model,
} from "@lowbit/graph";
import { scanLayers } from "./layers.ts";
import { parsePlan } from "./plan.ts";
import { planPoints, type QuantizedModel } from "./quantize.ts";

/**
 * Encodes a quantized model as a lowbit file.
 *
 * @param qm the quantized model
 * @returns the file's bytes
 *
 * @example
 * ```ts
 * import { decodeLowbitModel, encodeLowbitModel, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 }, preset: "nvfp4" });
 * const back = decodeLowbitModel(encodeLowbitModel(quantized));
 * const w = quantized.plan.entries[0].value;
 * const a = quantized.model.graph.initializers.get(w)!.data, b = back.model.graph.initializers.get(w)!.data;
 * if (a.join() !== b.join()) throw new Error("weights differ after the round trip");
 * ```
 */
export function encodeLowbitModel(qm: QuantizedModel): Uint8Array {
  const reg = qm.registry ?? defaultRegistry();
  const points = planPoints(qm.plan, reg);
  const tensors = new Map<string, LowbitTensor>();
  for (const p of points) {
    if (p.role !== "weight") continue;
    const init = findInitializer(qm.model.graph, p.value)!.tensor;
    const q = reg.quantizers.get(p.quantizer);
    const codes = q.quantize({ shape: init.shape, data: init.data as Float32Array }, p.params);
    const extra: LowbitTensor["extra"] = {};
    for (const [k, v] of Object.entries(p.params.extra ?? {})) {
      extra[k] = { dtype: "float32", shape: [v.length], data: Float32Array.from(v) };
    }
    tensors.set(p.value, {
      quantizer: p.quantizer,
      format: p.params.format,
      bits: reg.formats.get(p.params.format).bits,
      shape: [...init.shape],
      granularity: p.params.granularity,
      mode: p.params.mode,
      codes,
      scale: p.params.scale,
      zeroPoint: p.params.zeroPoint,
      ...(Object.keys(extra).length ? { extra } : {}),
    });
  }
  const acts = points.filter((p) => p.role === "activation");
  return encodeLowbitFile(qm.model, qm.plan, tensors, acts);
}

/**
 * Decodes a lowbit file into a quantized model whose weights are decoded onto their grids.
 *
 * @param bytes the file's bytes
 * @param fileName for messages
 * @param registry where the file's quantizers are registered (default: the default registry)
 * @returns the quantized model
 *
 * @example
 * ```ts
 * import { decodeLowbitModel } from "@lowbit/pipeline";
 * let threw = false;
 * try { decodeLowbitModel(new Uint8Array(8), "x.lowbit"); } catch { threw = true; }
 * if (!threw) throw new Error();
 * ```
 */
export function decodeLowbitModel(
  bytes: Uint8Array,
  fileName?: string,
  registry: Registry = defaultRegistry(),
): QuantizedModel {
  const file = decodeLowbitFile(bytes, fileName);
  const plan = parsePlan(file.plan, fileName);
  const inits = new Map(file.model.graph.initializers);
  for (const p of lowbitPoints(file)) {
    if (p.role !== "weight") continue;
    const t = file.tensors.get(p.value)!;
    const data = registry.quantizers.get(p.quantizer).dequantize(t.codes, p.params, t.shape).data;
    // A weight of a subgraph (If / Loop / Scan body) is decoded where it is.
    const inner = findInitializer(file.model.graph, p.value);
    (inner ? inner.graph.initializers : inits).set(p.value, {
      dtype: "float32",
      shape: [...t.shape],
      data,
    });
  }
  const model: Model = { ...file.model, graph: { ...file.model.graph, initializers: inits } };
  return { model, plan, layers: scanLayers(model.graph, { subgraphs: true }).layers, registry };
}
