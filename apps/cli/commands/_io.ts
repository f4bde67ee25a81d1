// Private helpers of the quantize / eval / inspect / report commands: option
// parsing that turns bad flags into user errors, and model / JSON loading.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { LowbitError } from "@lowbit/core";
import { type Model, readOnnx } from "@lowbit/graph";
import { isLowbitPath, readModelBytes, sha256Hex } from "@lowbit/pipeline";

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

/**
 * Reads a float ONNX model to quantize, and hashes it. A lowbit file is refused with a clear
 * error: it is already quantized (its graph holds dequantized weights).
 */
export async function readModelFile(path: string): Promise<{ model: Model; sha256: string }> {
  if (isLowbitPath(path)) {
    throw new LowbitError(
      "UNSUPPORTED",
      "this is a lowbit file, already quantized: quantize takes the float ONNX model",
      { file: path },
    );
  }
  const bytes = await readModelBytes(path);
  const sha256 = await sha256Hex(bytes);
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
