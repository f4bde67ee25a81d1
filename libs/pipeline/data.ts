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

/** Samples for every model input, batch first. */
export interface Dataset {
  /** Input name → all samples (first dimension = sample). */
  inputs: Record<string, TensorData>;
  /** Number of samples. */
  count: number;
  /**
   * Inputs given whole to every batch, not sliced: a constant (`--calib sr=16000`) or a
   * non-batched input whose file holds the model input's full shape (a GNN's whole graph).
   */
  whole?: Record<string, TensorData>;
  /**
   * The sample axis of inputs whose batch dimension is not the first (a recurrent state
   * `[layers, batch, hidden]`: 1); absent inputs are batched along axis 0.
   */
  axes?: Record<string, number>;
}

/** How images become a model input. */
export interface ImageSpec {
  /** Target height and width (bilinear resize). */
  size: [number, number];
  /** Tensor layout. */
  layout: "NCHW" | "NHWC";
  /** 1 (luma) or 3 (RGB) channels. */
  channels: 1 | 3;
  /** Per-channel mean subtracted after scaling pixels to [0, 1]. */
  mean: number[];
  /** Per-channel standard deviation divided by. */
  std: number[];
}

/**
 * Slices samples [start, end) of every input.
 *
 * @param data the dataset
 * @param start first sample
 * @param end one past the last sample
 * @returns the batch, as model inputs
 *
 * @example
 * ```ts
 * import { sliceBatch } from "@lowbit/pipeline";
 * const data = { count: 3, inputs: { x: { dtype: "float32" as const, shape: [3, 2], data: new Float32Array(6).map((_, i) => i) } } };
 * const b = sliceBatch(data, 1, 3);
 * if (b.x.shape[0] !== 2 || (b.x.data as Float32Array)[0] !== 2) throw new Error();
 * ```
 */
export function sliceBatch(data: Dataset, start: number, end: number): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(data.inputs)) {
    const axis = data.axes?.[name] ?? 0;
    out[name] = axis === 0 ? sliceSamples(t, start, end) : sliceAxis(t, axis, start, end);
  }
  for (const [name, t] of Object.entries(data.whole ?? {})) out[name] = t;
  return out;
}

/**
 * Whether a tensor is one whole, non-batched sample of a model input: the input's shape is fully
 * static and the tensor has exactly that shape (a scalar input, a whole graph of a GNN).
 *
 * @param t the tensor from a file
 * @param vi the model input
 * @returns true when it is given whole to every batch
 *
 * @example
 * ```ts
 * import { isWholeInput } from "@lowbit/pipeline";
 * const t = { dtype: "float32" as const, shape: [5, 3], data: new Float32Array(15) };
 * if (!isWholeInput(t, { name: "x", dtype: "float32", shape: [5, 3] })) throw new Error();
 * if (isWholeInput(t, { name: "x", dtype: "float32", shape: ["N", 3] })) throw new Error();
 * ```
 */
export function isWholeInput(t: TensorData, vi: ValueInfo): boolean {
  const shape = vi.shape;
  if (!shape || shape.some((d) => typeof d !== "number" || d < 0)) return false;
  return t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
}

/**
 * A constant input from a number (`--calib sr=16000`): the model input's dtype, and its static
 * shape (a scalar when it has none) filled with the value.
 *
 * @param value the number
 * @param vi the model input
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { constantInput } from "@lowbit/pipeline";
 * const t = constantInput(16000, { name: "sr", dtype: "int64", shape: [] });
 * if (t.dtype !== "int64" || t.data[0] !== 16000n) throw new Error();
 * ```
 */
export function constantInput(value: number, vi: ValueInfo): TensorData {
  const subject = { tensor: vi.name };
  const shape = (vi.shape ?? []).map((d) => {
    if (typeof d !== "number" || d < 0) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `a constant needs a static input shape; '${vi.name}' is [${vi.shape}]`,
        subject,
      );
    }
    return d;
  });
  const n = shape.reduce((a, b) => a * b, 1);
  switch (vi.dtype) {
    case "float32":
      return { dtype: "float32", shape, data: new Float32Array(n).fill(value) };
    case "float64":
      return { dtype: "float64", shape, data: new Float64Array(n).fill(value) };
    case "int64":
    case "uint64":
      if (!Number.isInteger(value)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `${vi.dtype} input needs an integer, got ${value}`,
          subject,
        );
      }
      return vi.dtype === "int64"
        ? { dtype: "int64", shape, data: new BigInt64Array(n).fill(BigInt(value)) }
        : { dtype: "uint64", shape, data: new BigUint64Array(n).fill(BigInt(value)) };
    case "int32":
      return { dtype: "int32", shape, data: new Int32Array(n).fill(value) };
    default:
      throw new LowbitError(
        "UNSUPPORTED",
        `a constant for a ${vi.dtype} input is not supported (give a .npy file)`,
        subject,
      );
  }
}

/**
 * Copies samples [start, end) of one tensor (along its first axis).
 *
 * @param t the tensor, samples first
 * @param start first sample
 * @param end one past the last sample
 * @returns the slice, same dtype
 *
 * @example
 * ```ts
 * import { sliceSamples } from "@lowbit/pipeline";
 * const t = { dtype: "float32" as const, shape: [3, 2], data: new Float32Array([0, 1, 2, 3, 4, 5]) };
 * const s = sliceSamples(t, 2, 3);
 * if (s.shape.join() !== "1,2" || (s.data as Float32Array).join() !== "4,5") throw new Error();
 * ```
 */
export function sliceSamples(t: TensorData, start: number, end: number): TensorData {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    dtype: t.dtype,
    shape: [end - start, ...t.shape.slice(1)],
    data: (t.data as Float32Array).slice(start * per, end * per) as TensorData["data"],
  };
}

/** Copies indices [start, end) of one axis. */
function sliceAxis(t: TensorData, axis: number, start: number, end: number): TensorData {
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = t.shape[axis], m = end - start;
  const src = t.data as Float32Array;
  const dst = new (src.constructor as Float32ArrayConstructor)(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    dst.set(src.subarray((o * n + start) * inner, (o * n + end) * inner), o * m * inner);
  }
  const shape = [...t.shape];
  shape[axis] = m;
  return { dtype: t.dtype, shape, data: dst as unknown as TensorData["data"] };
}

/** The sample axis of a model input: its first dimension that is not a fixed size (0 if none). */
function sampleAxis(vi: ValueInfo): number {
  const i = (vi.shape ?? []).findIndex((d) => typeof d !== "number" || d < 0);
  return i < 0 ? 0 : i;
}

/**
 * Checks a dataset against a model's inputs: every input present, same dtype,
 * same rank, static dimensions equal, the same sample count everywhere, at
 * least one sample.
 *
 * @param data the dataset
 * @param inputs the model's graph inputs
 * @param what "calibration data" / "evaluation data", for messages
 * @returns nothing; throws a `LowbitError` naming the input and file on a mismatch
 *
 * @example
 * ```ts
 * import { checkDataset } from "@lowbit/pipeline";
 * const data = { count: 1, inputs: { x: { dtype: "float32" as const, shape: [1, 3], data: new Float32Array(3) } } };
 * checkDataset(data, [{ name: "x", dtype: "float32", shape: ["N", 3] }]);
 * ```
 */
export function checkDataset(data: Dataset, inputs: readonly ValueInfo[], what = "data"): void {
  for (const vi of inputs) {
    const t = data.inputs[vi.name];
    const subject = { tensor: vi.name };
    const whole = data.whole?.[vi.name];
    if (whole) {
      if (whole.dtype !== vi.dtype) {
        throw new LowbitError(
          "INVALID_TENSOR",
          `${what} is ${whole.dtype}, the model input is ${vi.dtype}`,
          subject,
        );
      }
      continue;
    }
    if (!t) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `the model needs input '${vi.name}' but the ${what} does not provide it ` +
          `(given: ${Object.keys(data.inputs).join(", ") || "nothing"}; pass name=path)`,
        subject,
      );
    }
    if (t.dtype !== vi.dtype) {
      throw new LowbitError(
        "INVALID_TENSOR",
        `${what} is ${t.dtype}, the model input is ${vi.dtype}`,
        subject,
      );
    }
    const shape = vi.shape;
    if (shape) {
      if (t.shape.length !== shape.length) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `${what} has shape [${t.shape}] (rank ${t.shape.length}); the model input is ` +
            `[${shape.map((d) => d === "" ? "?" : d)}] (rank ${shape.length}), batch first`,
          subject,
        );
      }
      const batchAxis = data.axes?.[vi.name] ?? 0;
      for (let i = 0; i < shape.length; i++) {
        if (i === batchAxis) continue;
        if (typeof shape[i] === "number" && shape[i] !== t.shape[i]) {
          throw new LowbitError(
            "SHAPE_MISMATCH",
            `${what} has shape [${t.shape}]; the model input is [${
              shape.map((d) => d === "" ? "?" : d)
            }] (dimension ${i} differs)`,
            subject,
          );
        }
      }
    }
    const n = t.shape[data.axes?.[vi.name] ?? 0];
    if (n !== data.count) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${what} has ${n} samples, other inputs have ${data.count}`,
        subject,
      );
    }
  }
  if (data.count < 1) throw new LowbitError("INVALID_ARGUMENT", `${what} holds no samples`);
  for (const name of [...Object.keys(data.inputs), ...Object.keys(data.whole ?? {})]) {
    if (!inputs.some((vi) => vi.name === name)) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `${what} names input '${name}', which the model does not have ` +
          `(inputs: ${inputs.map((v) => v.name).join(", ")})`,
      );
    }
  }
}

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

/** A decoded image: 8-bit RGBA pixels, row-major. */
export interface Rgba {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width × height × 4` bytes, R G B A per pixel. */
  data: Uint8Array;
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
 * Resizes (bilinear, half-pixel centres), converts and normalises one image
 * into `out` at sample `index`.
 */
function preprocess(img: Rgba, spec: ImageSpec, out: Float32Array, index: number): void {
  const [H, W] = spec.size;
  const C = spec.channels;
  const base = index * C * H * W;
  for (let y = 0; y < H; y++) {
    const sy = Math.min(Math.max((y + 0.5) * img.height / H - 0.5, 0), img.height - 1);
    const y0 = Math.floor(sy), y1 = Math.min(y0 + 1, img.height - 1), fy = sy - y0;
    for (let x = 0; x < W; x++) {
      const sx = Math.min(Math.max((x + 0.5) * img.width / W - 0.5, 0), img.width - 1);
      const x0 = Math.floor(sx), x1 = Math.min(x0 + 1, img.width - 1), fx = sx - x0;
      const px = [0, 0, 0];
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number): number => img.data[(yy * img.width + xx) * 4 + c];
        px[c] = ((at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) +
          (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy) / 255;
      }
      const vals = C === 1 ? [0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]] : px;
      for (let c = 0; c < C; c++) {
        const v = (vals[c] - (spec.mean[c] ?? spec.mean[0] ?? 0)) /
          (spec.std[c] ?? spec.std[0] ?? 1);
        const i = spec.layout === "NCHW" ? base + (c * H + y) * W + x : base + (y * W + x) * C + c;
        out[i] = v;
      }
    }
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
    preprocess(decodeImage(await readFileOrFail(path), path), spec, data, i);
  }
  const shape = spec.layout === "NCHW" ? [files.length, C, H, W] : [files.length, H, W, C];
  return { dtype: "float32", shape, data };
}

/**
 * Parses the image preprocessing options of the CLI.
 *
 * @param o `size` ("HxW" or "N"), `layout` ("NCHW" | "NHWC"), `channels` ("1" | "3"),
 *   `mean` and `std` (comma-separated)
 * @returns the spec
 *
 * @example
 * ```ts
 * import { parseImageSpec } from "@lowbit/pipeline";
 * const s = parseImageSpec({ size: "32x64", mean: "0.5", std: "0.5" });
 * if (s.size[1] !== 64 || s.layout !== "NCHW" || s.channels !== 3) throw new Error();
 * ```
 */
export function parseImageSpec(o: {
  size?: string;
  layout?: string;
  channels?: string;
  mean?: string;
  std?: string;
}): ImageSpec {
  const size = (o.size ?? "224").split(/[x,]/i).map(Number);
  if (size.length === 1) size.push(size[0]);
  if (size.length !== 2 || !size.every((d) => Number.isInteger(d) && d > 0)) {
    throw new LowbitError("INVALID_ARGUMENT", `bad --size '${o.size}'; use HxW, e.g. 224x224`);
  }
  const layout = (o.layout ?? "NCHW").toUpperCase();
  if (layout !== "NCHW" && layout !== "NHWC") {
    throw new LowbitError("INVALID_ARGUMENT", `bad --layout '${o.layout}'; use NCHW or NHWC`);
  }
  const channels = Number(o.channels ?? "3");
  if (channels !== 1 && channels !== 3) {
    throw new LowbitError("INVALID_ARGUMENT", `bad --channels '${o.channels}'; use 1 or 3`);
  }
  const nums = (s: string | undefined, d: number, flag: string): number[] => {
    const v = (s ?? String(d)).split(",").map(Number);
    if (!v.every(Number.isFinite) || (flag === "--std" && v.some((x) => x === 0))) {
      throw new LowbitError("INVALID_ARGUMENT", `bad ${flag} '${s}'`);
    }
    return v;
  };
  return {
    size: [size[0], size[1]],
    layout,
    channels,
    mean: nums(o.mean, 0, "--mean"),
    std: nums(o.std, 1, "--std"),
  };
}
