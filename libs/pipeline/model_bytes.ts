/**
 * A model file's bytes to a runner on our runtime, with no file system: QDQ ONNX runs on the
 * executor with Q/DQ patterns around MatMul / Gemm / Conv on the integer kernels; a lowbit file
 * is decoded (weights onto their grids) and run with its plan's activation quantization.
 * `load.ts` reads the file first; the browser's quantize page loads what it just encoded.
 *
 * @module
 */

import type { Registry } from "@lowbit/core";
import { createExecutor, decodeLowbitFile, lowbitModel, type Model, readOnnx } from "@lowbit/graph";
import { QUANTIZED_EXECUTION, type Runner } from "./simulate.ts";

/** A model file loaded for running. */
export interface LoadedModel {
  /** The graph (for a lowbit file: with dequantized weights). */
  model: Model;
  /** Runs it on our runtime. */
  runner: Runner;
  /** "float" (plain ONNX), "qdq" (ONNX with Q/DQ nodes) or "lowbit". */
  kind: "float" | "qdq" | "lowbit";
}

/**
 * The runnable graph of a model file's bytes (ONNX, QDQ ONNX or lowbit file, told apart by the
 * file name's extension), and which of the three it is, without an executor.
 *
 * @param bytes the file's bytes
 * @param path the file's name (its extension picks the decoder; named in errors)
 * @param opts `registry`, whose quantizers a lowbit file names; `baseDir`, the folder an ONNX
 *   model's external data is read from
 * @returns the model and its kind
 *
 * @example
 * ```ts
 * import { modelOfBytes } from "@lowbit/pipeline";
 * const m = modelOfBytes(Deno.readFileSync("fixtures/digits/mlp.onnx"), "mlp.onnx");
 * if (m.kind !== "float" || m.model.graph.nodes.length === 0) throw new Error(m.kind);
 * ```
 */
export function modelOfBytes(
  bytes: Uint8Array,
  path: string,
  opts: { registry?: Registry; baseDir?: string } = {},
): Pick<LoadedModel, "model" | "kind"> {
  if (isLowbitPath(path)) {
    // The one loader of lowbit files (the runtime and `lowbit run` use it too).
    const model = lowbitModel(decodeLowbitFile(bytes, path), { registry: opts.registry });
    return { model, kind: "lowbit" };
  }
  const model = readOnnx(bytes, { baseDir: opts.baseDir, fileName: path });
  const qdq = model.graph.nodes.some((n) => n.op === "DequantizeLinear");
  return { model, kind: qdq ? "qdq" : "float" };
}

/**
 * Prepares a runner for a model file's bytes (ONNX, QDQ ONNX or lowbit file, told apart by the
 * file name's extension).
 *
 * @param bytes the file's bytes
 * @param path the file's name (its extension picks the decoder; named in errors)
 * @param opts `threads` for Conv / Gemm / MatMul of ONNX and QDQ models (default 1; the same
 *   results; lowbit files run on one thread); `baseDir`, the folder an ONNX model's external
 *   data is read from (where a file system is; without it such a model is an error)
 * @returns the model, its runner and kind
 *
 * @example
 * ```ts
 * import { loadModelBytes } from "@lowbit/pipeline";
 * const m = loadModelBytes(Deno.readFileSync("fixtures/digits/mlp.onnx"), "mlp.onnx");
 * if (m.kind !== "float") throw new Error(m.kind);
 * ```
 */
export function loadModelBytes(
  bytes: Uint8Array,
  path: string,
  opts: { threads?: number; registry?: Registry; baseDir?: string } = {},
): LoadedModel {
  const { model, kind } = modelOfBytes(bytes, path, opts);
  const exec = createExecutor(model, {
    quantized: kind === "float" ? "float" : QUANTIZED_EXECUTION,
    threads: opts.threads,
    registry: opts.registry,
  });
  const out = model.graph.outputs[0].name;
  return {
    model,
    runner: { run: async (inputs) => (await exec.run(inputs))[out] },
    kind,
  };
}

/**
 * Whether a path names a lowbit file (`.lowbit`, or `.safetensors` holding one) rather than ONNX.
 *
 * @param path the file
 * @returns true for `.lowbit` / `.safetensors`
 *
 * @example
 * ```ts
 * import { isLowbitPath } from "@lowbit/pipeline";
 * if (!isLowbitPath("m.LOWBIT") || isLowbitPath("m.onnx")) throw new Error();
 * ```
 */
export function isLowbitPath(path: string): boolean {
  const p = path.toLowerCase();
  return p.endsWith(".lowbit") || p.endsWith(".safetensors");
}
