/**
 * `lowbit run`: runs a model (ONNX, or a lowbit file) on `.npy` inputs and
 * writes its outputs as `.npy`.
 *
 * ```sh
 * lowbit run model.onnx --input x.npy --out y.npy
 * lowbit run model.onnx --input x=a.npy --input mask=b.npy --out logits=l.npy --out probs=p.npy
 * lowbit run model.qdq.onnx --input x.npy --out y.npy --quantized integer
 * ```
 *
 * @module
 */

import { threadsOption } from "./_options.ts";
import { parseArgs } from "node:util";
import { LowbitError } from "@lowbit/core";
import {
  createExecutor,
  type Executor,
  lowbitModel,
  type Model,
  readLowbitFile,
  readNpy,
  readOnnxFile,
  type TensorData,
  writeNpy,
} from "@lowbit/graph";
import type { Command } from "./_command.ts";
import { loadPlugins, loadPluginsOfFile, splitPluginArgs } from "../plugins.ts";

const HELP = `usage: lowbit run <model> --input [NAME=]FILE.npy ... [--out [NAME=]FILE.npy ...]

Runs a model on .npy inputs (float32, float64, int64, int32, uint8, ...) and
writes outputs as .npy. <model> is an ONNX file or a lowbit file.

  --input [NAME=]FILE   an input; without NAME, inputs fill the model's inputs in order
  --out [NAME=]FILE     where to write an output; without NAME, the model's outputs in
                        order (default: the first output to out.npy)
  --quantized MODE      "float" (default: Q/DQ run as written, as lowbit eval and the
                        simulation run them) or "integer" (QDQ patterns around MatMul / Gemm /
                        Conv on integer arithmetic: faster, may round differently)
  --plugin NAME|PATH    load a plugin (repeatable), for models its quantizers made
  --threads N           threads for Conv / Gemm / MatMul (default 1; same results)
  --json                print a JSON summary
  -h, --help            this help

float64 inputs are converted to float32 when the model expects float32.`;

/** Splits "name=path" when `name` is one of `names`, else returns the whole string as a path. */
function splitNamed(arg: string, names: readonly string[]): [string | undefined, string] {
  const eq = arg.indexOf("=");
  if (eq > 0 && names.includes(arg.slice(0, eq))) return [arg.slice(0, eq), arg.slice(eq + 1)];
  return [undefined, arg];
}

/**
 * Pairs `[NAME=]FILE` arguments with value names: named ones by name, the
 * others in order over the names not yet taken.
 *
 * @param args the command-line values
 * @param names the model's value names, in order
 * @param what "input" or "output", for errors
 * @returns name → path
 *
 * @example
 * ```ts
 * import { assignNames } from "./run.ts";
 * const m = assignNames(["b=y.npy", "x.npy"], ["a", "b"], "input");
 * if (m.get("a") !== "x.npy" || m.get("b") !== "y.npy") throw new Error();
 * ```
 */
export function assignNames(
  args: readonly string[],
  names: readonly string[],
  what: string,
): Map<string, string> {
  const out = new Map<string, string>();
  const unnamed: string[] = [];
  for (const a of args) {
    const [name, path] = splitNamed(a, names);
    if (name === undefined) unnamed.push(path);
    else if (out.has(name)) {
      throw new LowbitError("DUPLICATE_NAME", `${what} given twice`, { tensor: name });
    } else out.set(name, path);
  }
  const free = names.filter((n) => !out.has(n));
  if (unnamed.length > free.length) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${args.length} ${what}(s) given, the model has ${names.length}: ${names.join(", ")}`,
    );
  }
  unnamed.forEach((p, i) => out.set(free[i], p));
  return out;
}

/** `.lowbit` / `.safetensors` files are lowbit files, anything else ONNX. */
async function loadModel(path: string): Promise<Model> {
  if (path.endsWith(".lowbit") || path.endsWith(".safetensors")) {
    return lowbitModel(await readLowbitFile(path));
  }
  return await readOnnxFile(path);
}

async function readInput(path: string): Promise<TensorData> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError("IO_ERROR", `cannot read: ${e instanceof Error ? e.message : e}`, {
      file: path,
    });
  }
  return readNpy(bytes, path);
}

/**
 * Writes bytes atomically: to a temporary file beside `path`, then renamed over it.
 *
 * @param path destination
 * @param bytes contents
 *
 * @example
 * ```ts
 * import { writeAtomic } from "./run.ts";
 * const dir = await Deno.makeTempDir();
 * await writeAtomic(`${dir}/a.bin`, new Uint8Array([1, 2]));
 * if ((await Deno.readFile(`${dir}/a.bin`)).length !== 2) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new LowbitError("IO_ERROR", `cannot write: ${e instanceof Error ? e.message : e}`, {
      file: path,
    });
  }
}

/** Summary of one written output. */
export interface RunOutputSummary {
  /** Output name. */
  name: string;
  /** File written. */
  path: string;
  /** Element type. */
  dtype: string;
  /** Dimensions. */
  shape: number[];
}

/**
 * Runs a model file on `.npy` inputs and writes the requested outputs.
 *
 * @param modelPath ONNX or lowbit file
 * @param inputArgs `[NAME=]FILE` per input
 * @param outArgs `[NAME=]FILE` per output (default: first output to out.npy)
 * @param quantized "float" or "integer"
 * @param threads threads for Conv / Gemm / MatMul (default 1; results are the same)
 * @returns what was written
 *
 * @example
 * ```ts ignore
 * import { runModelFiles } from "./run.ts";
 * await runModelFiles("model.onnx", ["x.npy"], ["y.npy"]);
 * ```
 */
export async function runModelFiles(
  modelPath: string,
  inputArgs: readonly string[],
  outArgs: readonly string[],
  quantized: "float" | "integer" = "float",
  threads = 1,
): Promise<RunOutputSummary[]> {
  const model = await loadModel(modelPath);
  const exec = createExecutor(model, { quantized, threads });
  try {
    return await runAndWrite(exec, inputArgs, outArgs);
  } finally {
    await exec.close();
  }
}

async function runAndWrite(
  exec: Executor,
  inputArgs: readonly string[],
  outArgs: readonly string[],
): Promise<RunOutputSummary[]> {
  const g = exec.graph;
  const inputNames = g.inputs.filter((v) => !g.initializers.has(v.name)).map((v) => v.name);
  const inMap = assignNames(inputArgs, inputNames, "input");
  const inputs: Record<string, TensorData> = {};
  for (const [name, path] of inMap) {
    let t = await readInput(path);
    const want = g.inputs.find((v) => v.name === name)!.dtype;
    if (t.dtype === "float64" && want === "float32") {
      t = { dtype: "float32", shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
    }
    inputs[name] = t;
  }
  const outputNames = g.outputs.map((o) => o.name);
  const outMap = assignNames(outArgs.length ? outArgs : ["out.npy"], outputNames, "output");
  const result = await exec.run(inputs, { outputs: [...outMap.keys()] });
  const written: RunOutputSummary[] = [];
  for (const [name, path] of outMap) {
    const t = result[name];
    await writeAtomic(path, writeNpy(t));
    written.push({ name, path, dtype: t.dtype, shape: [...t.shape] });
  }
  return written;
}

/** The `run` subcommand. */
export const runCommand: Command = {
  summary: "run a model on .npy inputs and write its outputs as .npy",
  async main(argv: string[]): Promise<number> {
    const split = splitPluginArgs(argv);
    await loadPlugins(split.plugins);
    const args = split.rest;
    // A lowbit file names the plugins its quantizers come from: load them too.
    for (const a of args) if (!a.startsWith("-")) await loadPluginsOfFile(a);
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          input: { type: "string", short: "i", multiple: true },
          out: { type: "string", short: "o", multiple: true },
          quantized: { type: "string" },
          threads: { type: "string" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        },
      });
    } catch (e) {
      throw new LowbitError("INVALID_ARGUMENT", `${e instanceof Error ? e.message : e}\n\n${HELP}`);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      console.error(HELP);
      return 2;
    }
    const q = values.quantized ?? "float";
    if (q !== "float" && q !== "integer") {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `--quantized must be "float" or "integer", not '${q}'`,
      );
    }
    const threads = threadsOption(values.threads, "run");
    const t0 = performance.now();
    const written = await runModelFiles(
      positionals[0],
      values.input ?? [],
      values.out ?? [],
      q,
      threads,
    );
    const ms = performance.now() - t0;
    if (values.json) console.log(JSON.stringify({ outputs: written, ms }, null, 2));
    else {
      for (const w of written) {
        console.log(`${w.name}: ${w.dtype} [${w.shape.join(", ")}] → ${w.path}`);
      }
    }
    return 0;
  },
};
