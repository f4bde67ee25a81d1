/**
 * Encoding a {@link QuantizedModel} to bytes, with no file system: QDQ ONNX (`.onnx`, through
 * `@lowbit/graph`'s `materializeQuantized`) or the lowbit file (`.lowbit` / `.safetensors`, see
 * `lowbit_model.ts`), chosen by a file name's extension; the plan as JSON. `export.ts` writes
 * them to files; the browser's quantize page hands them to the user.
 *
 * @module
 */

import { LowbitError, type QParams } from "@lowbit/core";
import { materializeQuantized, writeOnnx } from "@lowbit/graph";
import type { PlanEntry, QuantPlan } from "./plan.ts";
import { planPoints, type QuantizedModel } from "./quantize.ts";
import { entryQParams } from "./tensor_quant.ts";
import { encodeLowbitModel } from "./lowbit_model.ts";

/** The extension of a path's last segment, dot included, as `node:path`'s `extname` gives it. */
function extname(path: string): string {
  const base = path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
  const dot = base.lastIndexOf(".");
  return dot <= 0 ? "" : base.slice(dot);
}
/** Output kinds by extension. */
export type OutputKind = "onnx" | "lowbit";

/**
 * The output kind of a path, by extension: `.onnx` → QDQ ONNX; `.lowbit` and
 * `.safetensors` → the lowbit file.
 *
 * @param path the output path
 * @returns the kind
 *
 * @example
 * ```ts
 * import { outputKind } from "@lowbit/pipeline";
 * if (outputKind("a/b.onnx") !== "onnx" || outputKind("m.safetensors") !== "lowbit") throw new Error();
 * ```
 */
export function outputKind(path: string): OutputKind {
  const ext = extname(path).toLowerCase();
  if (ext === ".onnx") return "onnx";
  if (ext === ".lowbit" || ext === ".safetensors") return "lowbit";
  throw new LowbitError(
    "INVALID_ARGUMENT",
    `cannot tell the output format from '${ext || "(no extension)"}': use .onnx (QDQ ONNX), ` +
      `.lowbit or .safetensors (lowbit file)`,
    { file: path },
  );
}

/**
 * The activation point of each quantized value (one per value: layers that share an input
 * share its point).
 *
 * @param plan the fitted plan
 * @returns value → entry
 *
 * @example
 * ```ts
 * import { activationsByValue } from "@lowbit/pipeline";
 * const e = { node: "a", value: "x", role: "activation" as const, format: "int8",
 *   granularity: { kind: "tensor" as const }, mode: "affine" as const, scale: [0.1], zeroPoint: [0] };
 * const m = activationsByValue({ version: 1, model: { name: "", sha256: "" }, preset: null,
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [e, { ...e, node: "b" }] });
 * if (m.size !== 1) throw new Error();
 * ```
 */
export function activationsByValue(plan: QuantPlan): Map<string, PlanEntry> {
  // Plans hold one activation point per value (`buildEntries` refuses two specs on one tensor).
  const out = new Map<string, PlanEntry>();
  for (const e of plan.entries) {
    if (e.role === "activation" && !e.skip && !out.has(e.value)) out.set(e.value, e);
  }
  return out;
}

/**
 * Quantization parameters by value name, as `exportQdq` takes them.
 *
 * @param plan the fitted plan
 * @returns value → parameters (weights and static activations)
 *
 * @example
 * ```ts
 * import { planQParams } from "@lowbit/pipeline";
 * const p = planQParams({ version: 1, model: { name: "", sha256: "" }, preset: null,
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [{ node: "n", value: "W", role: "weight", format: "int8",
 *     granularity: { kind: "tensor" }, mode: "symmetric", scale: [0.5], zeroPoint: [0] }] });
 * if (p.W.scale[0] !== 0.5) throw new Error();
 * ```
 */
export function planQParams(plan: QuantPlan): Record<string, QParams> {
  const out: Record<string, QParams> = {};
  for (const e of plan.entries) {
    if (e.skip || e.role !== "weight") continue;
    out[e.value] = entryQParams(e);
  }
  for (const [value, e] of activationsByValue(plan)) {
    if (e.dynamic) {
      throw new LowbitError(
        "UNSUPPORTED",
        `'${e.format}' activations use scales computed at run time, which QDQ ONNX cannot ` +
          `express; write a .lowbit file instead`,
        { node: e.node, tensor: value },
      );
    }
    out[value] = entryQParams(e);
  }
  return out;
}

/**
 * Serialises a quantized model for a path's extension.
 *
 * @param qm the quantized model
 * @param path the output path (its extension picks the format)
 * @returns the file's bytes
 *
 * @example
 * ```ts
 * import { encodeQuantized, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 } });
 * if (encodeQuantized(quantized, "m.onnx").length < 1000) throw new Error();
 * ```
 */
export function encodeQuantized(qm: QuantizedModel, path: string): Uint8Array {
  const kind = outputKind(path);
  if (kind === "onnx") {
    const points = planPoints(qm.plan, qm.registry);
    return writeOnnx(
      materializeQuantized(qm.model, points, { target: "onnx", registry: qm.registry }),
    );
  }
  return encodeLowbitModel(qm);
}

/**
 * Where the plan of an output goes: `<output without extension>.plan.json`.
 *
 * @param path the model output
 * @returns the plan path
 *
 * @example
 * ```ts
 * import { planPathFor } from "@lowbit/pipeline";
 * if (planPathFor("out/cnn.w8a8.onnx") !== "out/cnn.w8a8.plan.json") throw new Error();
 * ```
 */
export function planPathFor(path: string): string {
  const ext = extname(path);
  return `${ext ? path.slice(0, -ext.length) : path}.plan.json`;
}

/**
 * Serialises a plan as readable JSON: two-space indent, number arrays on one line.
 *
 * @param plan the plan
 * @returns the JSON text (ends with a newline)
 *
 * @example
 * ```ts
 * import { planToJson } from "@lowbit/pipeline";
 * const text = planToJson({ version: 1, model: { name: "", sha256: "" }, preset: null,
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [{ node: "n", value: "W", role: "weight", scale: [0.5, 0.25] }] });
 * if (!text.includes('"scale": [0.5, 0.25]')) throw new Error(text);
 * ```
 */
export function planToJson(plan: QuantPlan): string {
  return JSON.stringify(plan, null, 2).replace(
    /\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]/g,
    (_, body: string) => `[${body.split(/,\s*/).join(", ")}]`,
  ) + "\n";
}
