/**
 * Loading what `lowbit quantize` wrote, to run it on our runtime: QDQ ONNX
 * runs on the executor with Q/DQ patterns around MatMul / Gemm / Conv on the
 * integer kernels; a lowbit file is decoded (weights onto their grids) and run
 * with its plan's activation quantization.
 *
 * @module
 */

import { LowbitError, type Registry } from "@lowbit/core";
import { createExecutor, decodeLowbitFile, lowbitModel, type Model, readOnnx } from "@lowbit/graph";
import { extname } from "node:path";
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
  const bytes = await readModelBytes(path);
  let model: Model;
  let kind: LoadedModel["kind"];
  if (isLowbitPath(path)) {
    // The one loader of lowbit files (the runtime and `lowbit run` use it too).
    model = lowbitModel(decodeLowbitFile(bytes, path), { registry: opts.registry });
    kind = "lowbit";
  } else {
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
    model = readOnnx(bytes, { baseDir: dir, fileName: path });
    kind = model.graph.nodes.some((n) => n.op === "DequantizeLinear") ? "qdq" : "float";
  }
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
  const ext = extname(path).toLowerCase();
  return ext === ".lowbit" || ext === ".safetensors";
}
