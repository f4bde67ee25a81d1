/**
 * Writing a {@link QuantizedModel}: QDQ ONNX (`.onnx`, through
 * `@lowbit/graph`'s `exportQdq`) or the lowbit file (`.lowbit` /
 * `.safetensors`, see `lowbit_model.ts`), chosen by the output's extension;
 * the plan JSON beside it. Every file is written to a temporary name in the same
 * folder and renamed into place, so an interrupted run (Ctrl-C) or a failure
 * never leaves a partial output; an output folder that does not exist is an
 * error before any work is done.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { dirname, extname } from "node:path";
import { encodeQuantized, outputKind, planPathFor, planToJson } from "./encode.ts";
import type { QuantizedModel } from "./quantize.ts";

export {
  activationsByValue,
  encodeQuantized,
  type OutputKind,
  outputKind,
  planPathFor,
  planQParams,
  planToJson,
} from "./encode.ts";

/**
 * Checks that an output can be written: known extension, existing folder.
 *
 * @param path the output path
 * @returns nothing; throws a `LowbitError` naming the path otherwise
 *
 * @example
 * ```ts
 * import { checkOutputPath } from "@lowbit/pipeline";
 * let threw = false;
 * try { await checkOutputPath("/no/such/folder/m.onnx"); } catch { threw = true; }
 * if (!threw) throw new Error();
 * ```
 */
export async function checkOutputPath(path: string): Promise<void> {
  outputKind(path);
  const dir = dirname(path);
  let ok = false;
  try {
    ok = (await Deno.stat(dir)).isDirectory;
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new LowbitError(
      "IO_ERROR",
      `the output folder '${dir}' does not exist (create it first)`,
      { file: path },
    );
  }
}

/** Temporary files being written, removed if the process is interrupted. */
const pending = new Set<string>();

/**
 * Temporary files not yet renamed into place (for a SIGINT handler to remove).
 *
 * @returns their paths
 *
 * @example
 * ```ts
 * import { pendingWrites } from "@lowbit/pipeline";
 * if (pendingWrites().length !== 0) throw new Error();
 * ```
 */
export function pendingWrites(): string[] {
  return [...pending];
}

/** Files written to temporary names beside their destinations, not yet renamed into place. */
export interface StagedFiles {
  /** Each file's temporary path (same folder and extension as its destination) and destination. */
  readonly files: readonly { readonly temp: string; readonly path: string }[];
}

/** `<dir>/<stem>.<pid>.tmp<ext>`: same folder (so the rename is atomic) and same extension. */
function tempPathFor(path: string): string {
  const ext = extname(path);
  const stem = ext ? path.slice(0, -ext.length) : path;
  return `${stem}.${Deno.pid}.tmp${ext}`;
}

/**
 * Writes files to temporary names beside their destinations (same folder, same extension, so a
 * staged model can be loaded and evaluated before it replaces anything). The writes are
 * synchronous, so a signal handler (Ctrl-C) sees each temporary file either absent or complete
 * and listed in {@link pendingWrites}. Nothing at the destinations changes until
 * {@link commitStaged}; {@link discardStaged} removes the temporary files.
 *
 * @param files destination path and content of each file
 * @returns the staged set
 *
 * @example
 * ```ts
 * import { commitStaged, stageFiles } from "@lowbit/pipeline";
 * const dir = await Deno.makeTempDir();
 * const staged = stageFiles([[`${dir}/a.onnx`, new Uint8Array([1])]]);
 * if (!staged.files[0].temp.endsWith(".onnx")) throw new Error(staged.files[0].temp);
 * commitStaged(staged);
 * if (Deno.readFileSync(`${dir}/a.onnx`)[0] !== 1) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function stageFiles(files: readonly (readonly [string, Uint8Array])[]): StagedFiles {
  const staged: { temp: string; path: string }[] = [];
  try {
    for (const [path, bytes] of files) {
      const temp = tempPathFor(path);
      pending.add(temp);
      staged.push({ temp, path });
      try {
        Deno.writeFileSync(temp, bytes);
      } catch (e) {
        throw new LowbitError(
          "IO_ERROR",
          `cannot write: ${e instanceof Error ? e.message : String(e)}`,
          { file: path },
        );
      }
    }
  } catch (e) {
    discardStaged({ files: staged });
    throw e;
  }
  return { files: staged };
}

/**
 * Renames every staged file into place, back to back and synchronously (a signal handler runs
 * before the first rename or after the last). On a failed rename the files not yet renamed are
 * removed and the error names the destination.
 *
 * @param staged what {@link stageFiles} returned
 * @returns nothing
 *
 * @example
 * ```ts
 * import { commitStaged, pendingWrites, stageFiles } from "@lowbit/pipeline";
 * const dir = await Deno.makeTempDir();
 * commitStaged(stageFiles([[`${dir}/p.json`, new TextEncoder().encode("{}")]]));
 * if (pendingWrites().length !== 0) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function commitStaged(staged: StagedFiles): void {
  try {
    for (const { temp, path } of staged.files) {
      try {
        Deno.renameSync(temp, path);
      } catch (e) {
        throw new LowbitError(
          "IO_ERROR",
          `cannot replace: ${e instanceof Error ? e.message : String(e)}`,
          { file: path },
        );
      }
      pending.delete(temp);
    }
  } finally {
    discardStaged(staged);
  }
}

/**
 * Removes the staged files still pending (none of their destinations is touched).
 *
 * @param staged what {@link stageFiles} returned
 * @returns nothing
 *
 * @example
 * ```ts
 * import { discardStaged, stageFiles } from "@lowbit/pipeline";
 * const dir = await Deno.makeTempDir();
 * discardStaged(stageFiles([[`${dir}/a.onnx`, new Uint8Array([1])]]));
 * for (const _ of Deno.readDirSync(dir)) throw new Error("left a file");
 * await Deno.remove(dir);
 * ```
 */
export function discardStaged(staged: StagedFiles): void {
  for (const { temp } of staged.files) {
    if (!pending.has(temp)) continue;
    try {
      Deno.removeSync(temp);
    } catch { /* never created */ }
    pending.delete(temp);
  }
}

/**
 * Writes files atomically, as a set: each staged beside its destination
 * ({@link stageFiles}), then every one renamed into place ({@link commitStaged}),
 * so an interrupted run leaves either no output or all of them.
 *
 * @param files destination path and content of each file
 * @returns nothing
 *
 * @example
 * ```ts
 * import { writeFilesAtomic } from "@lowbit/pipeline";
 * const dir = await Deno.makeTempDir();
 * const enc = new TextEncoder();
 * writeFilesAtomic([[`${dir}/a.txt`, enc.encode("a")], [`${dir}/b.txt`, enc.encode("b")]]);
 * if (Deno.readTextFileSync(`${dir}/b.txt`) !== "b") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeFilesAtomic(files: readonly (readonly [string, Uint8Array])[]): void {
  commitStaged(stageFiles(files));
}

/**
 * Writes one file atomically (see {@link writeFilesAtomic}).
 *
 * @param path destination
 * @param bytes content
 * @returns nothing
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@lowbit/pipeline";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("hi"));
 * if (await Deno.readTextFile(`${dir}/a.txt`) !== "hi") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  return Promise.resolve().then(() => writeFilesAtomic([[path, bytes]]));
}

/**
 * Writes the quantized model and its plan (`<output>.plan.json`), each atomically.
 *
 * @param qm the quantized model
 * @param path the output path
 * @returns the paths written
 *
 * @example
 * ```ts
 * import { quantize, writeQuantized } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 } });
 * const dir = await Deno.makeTempDir();
 * const { plan } = await writeQuantized(quantized, `${dir}/m.onnx`);
 * if (JSON.parse(await Deno.readTextFile(plan)).version !== 2) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeQuantized(
  qm: QuantizedModel,
  path: string,
): Promise<{ model: string; plan: string }> {
  await checkOutputPath(path);
  const bytes = encodeQuantized(qm, path);
  const planPath = planPathFor(path);
  writeFilesAtomic([[path, bytes], [planPath, new TextEncoder().encode(planToJson(qm.plan))]]);
  return { model: path, plan: planPath };
}
