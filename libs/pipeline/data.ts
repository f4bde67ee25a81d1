/**
 * Calibration and evaluation data: `.npy` files (batch first, one per model
 * input, `name=path`), or a folder of PNG / JPEG images with a preprocessing
 * spec, decoded with `pngjs` and `jpeg-js`. Everything is checked against the
 * model's declared inputs before any batch runs: a wrong shape or dtype, an
 * empty folder or an unreadable image is a `LowbitError` naming the file.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { readNpy, type TensorData, type ValueInfo } from "@lowbit/graph";
import pngjs from "pngjs";
import jpeg from "jpeg-js";
import { extname, join } from "node:path";
import { Buffer } from "node:buffer";
import { checkDataset, constantInput, type Dataset, isWholeInput, sampleAxis } from "./dataset.ts";
import { type ImageSpec, preprocessImage, type Rgba } from "./images.ts";

export {
  checkDataset,
  constantInput,
  type Dataset,
  isWholeInput,
  sliceBatch,
  sliceSamples,
} from "./dataset.ts";
export {
  type ImageSpec,
  imagesToTensor,
  parseImageSpec,
  preprocessImage,
  type Rgba,
} from "./images.ts";

/**
 * Parses `name=path` (or a bare `path` for the model's single input).
 *
 * @param specs the `--calib` / `--data` values
 * @param inputs the model's graph inputs
 * @returns input name → path
 *
 * @example
 * ```ts
 * import { parseDataSpecs } from "@lowbit/pipeline";
 * const m = parseDataSpecs(["calib.npy"], [{ name: "x", dtype: "float32" }]);
 * if (m.x !== "calib.npy") throw new Error();
 * ```
 */
export function parseDataSpecs(
  specs: readonly string[],
  inputs: readonly ValueInfo[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of specs) {
    const eq = s.indexOf("=");
    // A bare path (Windows drive letters aside) feeds the model's only input.
    if (eq > 0 && !s.slice(0, eq).includes("/")) {
      out[s.slice(0, eq)] = s.slice(eq + 1);
    } else {
      if (inputs.length !== 1) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `the model has ${inputs.length} inputs (${
            inputs.map((v) => v.name).join(", ")
          }); name each: name=path`,
        );
      }
      out[inputs[0].name] = s;
    }
  }
  return out;
}

async function readFileOrFail(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new LowbitError(
      "IO_ERROR",
      `cannot read: ${e instanceof Error ? e.message : String(e)}`,
      { file: path },
    );
  }
}

/**
 * Loads a dataset from `.npy` files and image folders, one per model input,
 * and checks it against the model.
 *
 * @param specs `name=path` or a bare path for single-input models
 * @param inputs the model's graph inputs
 * @param image preprocessing for image folders (required if a path is a folder)
 * @param what "calibration data" / "evaluation data", for messages
 * @param wholeInputs inputs given whole to every batch whatever their shape (`--whole`: a
 *   graph's node features and edge list, one sample)
 * @returns the dataset
 *
 * @example
 * ```ts
 * import { loadDataset } from "@lowbit/pipeline";
 * const d = await loadDataset(["fixtures/digits/calib_x.npy"], [{ name: "x", dtype: "float32", shape: ["N", 1, 8, 8] }]);
 * if (d.count !== 200) throw new Error(String(d.count));
 * ```
 */
export async function loadDataset(
  specs: readonly string[],
  inputs: readonly ValueInfo[],
  image?: ImageSpec,
  what = "calibration data",
  wholeInputs: readonly string[] = [],
): Promise<Dataset> {
  const paths = parseDataSpecs(specs, inputs);
  for (const w of wholeInputs) {
    if (!inputs.some((v) => v.name === w)) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `--whole names '${w}', which is not a model input (inputs: ${
          inputs.map((v) => v.name).join(", ")
        })`,
      );
    }
  }
  const out: Record<string, TensorData> = {};
  const whole: Record<string, TensorData> = {};
  const axes: Record<string, number> = {};
  let count = -1;
  for (const [name, path] of Object.entries(paths)) {
    const vi = inputs.find((v) => v.name === name);
    if (vi && /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(path)) {
      whole[name] = constantInput(Number(path), vi);
      continue;
    }
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(path);
    } catch {
      throw new LowbitError("IO_ERROR", `${what} not found`, { file: path });
    }
    let t: TensorData;
    if (stat.isDirectory) {
      if (!image) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          "is a folder of images: give the preprocessing (--size HxW, --layout, --mean, --std)",
          { file: path },
        );
      }
      t = await loadImageFolder(path, image);
    } else {
      t = readNpy(await readFileOrFail(path), path);
    }
    if (vi && (wholeInputs.includes(name) || isWholeInput(t, vi))) {
      whole[name] = t;
      continue;
    }
    if (t.shape.length === 0) {
      throw new LowbitError("SHAPE_MISMATCH", "is a scalar; data must be batch first", {
        file: path,
      });
    }
    const axis = vi && vi.shape && t.shape.length === vi.shape.length ? sampleAxis(vi) : 0;
    if (axis !== 0) axes[name] = axis;
    if (count === -1) count = t.shape[axis];
    out[name] = t;
  }
  // Only whole inputs: the data is one sample.
  if (count === -1 && Object.keys(whole).length) count = 1;
  const data: Dataset = {
    inputs: out,
    count: Math.max(0, count),
    ...(Object.keys(whole).length ? { whole } : {}),
    ...(Object.keys(axes).length ? { axes } : {}),
  };
  try {
    checkDataset(data, inputs, what);
  } catch (e) {
    if (e instanceof LowbitError && e.subject.tensor && paths[e.subject.tensor]) {
      throw new LowbitError(e.code, e.message, { file: paths[e.subject.tensor] });
    }
    throw e;
  }
  return data;
}

const IMAGE_EXT = [".png", ".jpg", ".jpeg"];

/**
 * Decodes a PNG or JPEG to RGBA.
 *
 * @param bytes the file
 * @param file its name, for messages
 * @returns width, height and RGBA bytes
 *
 * @example
 * ```ts
 * import { decodeImage } from "@lowbit/pipeline";
 * let threw = false;
 * try { decodeImage(new Uint8Array([1, 2, 3]), "x.png"); } catch { threw = true; }
 * if (!threw) throw new Error();
 * ```
 */
export function decodeImage(bytes: Uint8Array, file: string): Rgba {
  const ext = extname(file).toLowerCase();
  try {
    if (ext === ".png") {
      const png = (pngjs as unknown as {
        PNG: { sync: { read(b: Uint8Array): Rgba } };
      }).PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)); // pngjs needs a Buffer
      return { width: png.width, height: png.height, data: new Uint8Array(png.data) };
    }
    const img = (jpeg as unknown as {
      decode(b: Uint8Array, o: Record<string, unknown>): Rgba;
    }).decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512 });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new LowbitError(
      "PARSE_ERROR",
      `unreadable image: ${e instanceof Error ? e.message : String(e)}`,
      { file },
    );
  }
}

/**
 * Loads every PNG / JPEG of a folder (sorted by name) into one float32 batch.
 *
 * @param dir the folder
 * @param spec size, layout, channels, mean, std
 * @returns N×C×H×W (or N×H×W×C) float32
 *
 * @example
 * ```ts
 * import { loadImageFolder } from "@lowbit/pipeline";
 * const dir = await Deno.makeTempDir();
 * let threw = false;
 * try {
 *   await loadImageFolder(dir, { size: [8, 8], layout: "NCHW", channels: 1, mean: [0], std: [1] });
 * } catch { threw = true; }
 * await Deno.remove(dir);
 * if (!threw) throw new Error("an empty folder must be an error");
 * ```
 */
export async function loadImageFolder(dir: string, spec: ImageSpec): Promise<TensorData> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    // Symbolic links count when they point at files (e.g. a split made of links).
    if (!IMAGE_EXT.includes(extname(e.name).toLowerCase())) continue;
    if (
      e.isFile || (e.isSymlink && (await Deno.stat(join(dir, e.name)).catch(() => null))?.isFile)
    ) {
      files.push(e.name);
    }
  }
  files.sort();
  if (files.length === 0) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `holds no images (${IMAGE_EXT.join(", ")}); nothing to calibrate on`,
      { file: dir },
    );
  }
  const [H, W] = spec.size;
  const C = spec.channels;
  const data = new Float32Array(files.length * C * H * W);
  for (let i = 0; i < files.length; i++) {
    const path = join(dir, files[i]);
    preprocessImage(decodeImage(await readFileOrFail(path), path), spec, data, i);
  }
  const shape = spec.layout === "NCHW" ? [files.length, C, H, W] : [files.length, H, W, C];
  return { dtype: "float32", shape, data };
}
