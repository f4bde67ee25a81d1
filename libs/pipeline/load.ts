/**
 * Loading what `lowbit quantize` wrote, to run it on our runtime: QDQ ONNX
 * runs on the executor with Q/DQ patterns around MatMul / Gemm / Conv on the
 * integer kernels; a lowbit file is decoded (weights onto their grids) and run
 * with its plan's activation quantization.
 *
 * @module
 */

import { LowbitError, type Registry } from "@lowbit/core";
import { type LoadedModel, loadModelBytes } from "./model_bytes.ts";

export { isLowbitPath, type LoadedModel, loadModelBytes, modelOfBytes } from "./model_bytes.ts";

/**
 * Reads a model file (ONNX, QDQ ONNX or lowbit file) and prepares a runner.
 *
 * @param path the file
 * @param opts `threads` for Conv / Gemm / MatMul of ONNX and QDQ models (default 1; the same
 *   results); lowbit files run on one thread
 * @returns the model, its runner and kind
 *
 * @example
 * ```ts
 * import { loadModelFile } from "@lowbit/pipeline";
 * const m = await loadModelFile("fixtures/digits/mlp.onnx");
 * if (m.kind !== "float") throw new Error(m.kind);
 * ```
 */
export async function loadModelFile(
  path: string,
  opts: { threads?: number; registry?: Registry } = {},
): Promise<LoadedModel> {
  const baseDir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  return loadModelBytes(await readModelBytes(path), path, { ...opts, baseDir });
}

/**
 * Reads a model file's bytes; a missing or unreadable file is an `IO_ERROR` naming it.
 *
 * @param path the file
 * @returns its bytes
 *
 * @example
 * ```ts
 * import { readModelBytes } from "@lowbit/pipeline";
 * const e = await readModelBytes("no/such/model.onnx").catch((e) => e);
 * if (e.code !== "IO_ERROR" || !String(e.message).includes("no/such/model.onnx")) throw e;
 * ```
 */
export async function readModelBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError(
      "IO_ERROR",
      `cannot read the model: ${e instanceof Error ? e.message : String(e)}`,
      { file: path },
    );
  }
}
