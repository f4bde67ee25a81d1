/**
 * Loading what `lowbit quantize` wrote, to run it on our runtime: QDQ ONNX
 * runs on the executor with Q/DQ patterns around MatMul / Gemm / Conv on the
 * integer kernels; a lowbit file is decoded (weights onto their grids) and run
 * with its plan's activation quantization.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { createExecutor, type Model, readOnnx } from "@lowbit/graph";
import { extname } from "node:path";
import { decodeLowbitModel } from "./lowbit_model.ts";
import { type Runner, simulate } from "./simulate.ts";

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
  opts: { threads?: number } = {},
): Promise<LoadedModel> {
  const bytes = await readModelBytes(path);
  if (isLowbitPath(path)) {
    const qm = decodeLowbitModel(bytes, path);
    return { model: qm.model, runner: simulate(qm), kind: "lowbit" };
  }
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  const model = readOnnx(bytes, { baseDir: dir, fileName: path });
  const qdq = model.graph.nodes.some((n) => n.op === "DequantizeLinear");
  const exec = createExecutor(model, {
    quantized: qdq ? "integer" : "float",
    threads: opts.threads,
  });
  const out = model.graph.outputs[0].name;
  return {
    model,
    runner: { run: async (inputs) => (await exec.run(inputs))[out] },
    kind: qdq ? "qdq" : "float",
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
