// Private helpers of the quantize / eval / inspect / report commands: option
// parsing that turns bad flags into user errors, and model / JSON loading.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { LowbitError } from "@lowbit/core";
import * as graphLib from "@lowbit/graph";
import { type Model, readOnnx } from "@lowbit/graph";
import { sha256Hex } from "@lowbit/pipeline";

/** parseArgs, with unknown or malformed options as a LowbitError that shows the help. */
// deno-lint-ignore explicit-function-return-type
export function parseOptions<const T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
  help: string,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new LowbitError("INVALID_ARGUMENT", `${e instanceof Error ? e.message : e}\n\n${help}`);
  }
}

/** Reads an ONNX model (or a lowbit file, when the graph library can) and hashes it. */
export async function readModelFile(path: string): Promise<{ model: Model; sha256: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError(
      "IO_ERROR",
      `cannot read the model: ${e instanceof Error ? e.message : String(e)}`,
      { file: path },
    );
  }
  const sha256 = await sha256Hex(bytes);
  if (path.endsWith(".lowbit") || path.endsWith(".safetensors")) {
    const reader = (graphLib as Record<string, unknown>)["readLowbitFile"];
    if (typeof reader !== "function") {
      throw new LowbitError("UNSUPPORTED", "lowbit files cannot be read by this build", {
        file: path,
      });
    }
    return { model: await (reader as (p: string) => Promise<Model>)(path), sha256 };
  }
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  return { model: readOnnx(bytes, { baseDir: dir, fileName: path }), sha256 };
}

/** Reads and parses a JSON file; missing or malformed files are user errors. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new LowbitError(
      "IO_ERROR",
      `cannot read the ${what}: ${e instanceof Error ? e.message : String(e)}`,
      { file: path },
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LowbitError(
      "PARSE_ERROR",
      `the ${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`,
      { file: path },
    );
  }
}

/** A finite number from an option, or undefined when absent. */
export function numberOption(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isFinite(n)) {
    throw new LowbitError("INVALID_ARGUMENT", `${flag} needs a number, got '${v}'`);
  }
  return n;
}
