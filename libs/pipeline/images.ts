/**
 * Images to a model input: decoded RGBA pixels resized, converted and normalised into one
 * float32 batch by an {@link ImageSpec}. No decoder and no file system here: `data.ts` decodes
 * PNG / JPEG files for the CLI; the browser's quantize page decodes with the browser.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { TensorData } from "@lowbit/graph";

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

/** A decoded image: 8-bit RGBA pixels, row-major. */
export interface Rgba {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width × height × 4` bytes, R G B A per pixel. */
  data: Uint8Array;
}

/**
 * Resizes (bilinear, half-pixel centres), converts and normalises one image into `out` at sample
 * `index` (a batch of `spec`'s shape).
 *
 * @param img the decoded image
 * @param spec size, layout, channels, mean, std
 * @param out the batch's elements
 * @param index the sample
 *
 * @example
 * ```ts
 * import { preprocessImage } from "@lowbit/pipeline";
 * const out = new Float32Array(2);
 * const black = { width: 1, height: 1, data: new Uint8Array([0, 0, 0, 255]) };
 * preprocessImage(black, { size: [1, 1], layout: "NCHW", channels: 1, mean: [0.5], std: [1] }, out, 1);
 * if (out[1] !== -0.5 || out[0] !== 0) throw new Error();
 * ```
 */
export function preprocessImage(
  img: Rgba,
  spec: ImageSpec,
  out: Float32Array,
  index: number,
): void {
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
 * Preprocesses decoded images, in order, into one float32 batch.
 *
 * @param images decoded RGBA images
 * @param spec size, layout, channels, mean, std
 * @returns N×C×H×W (or N×H×W×C) float32
 *
 * @example
 * ```ts
 * import { imagesToTensor } from "@lowbit/pipeline";
 * const white = { width: 2, height: 2, data: new Uint8Array(16).fill(255) };
 * const t = imagesToTensor([white], { size: [1, 1], layout: "NCHW", channels: 1, mean: [0.5], std: [0.5] });
 * if (t.shape.join() !== "1,1,1,1" || Math.abs((t.data as Float32Array)[0] - 1) > 1e-6) throw new Error();
 * ```
 */
export function imagesToTensor(images: readonly Rgba[], spec: ImageSpec): TensorData {
  const [H, W] = spec.size;
  const C = spec.channels;
  const data = new Float32Array(images.length * C * H * W);
  for (let i = 0; i < images.length; i++) preprocessImage(images[i], spec, data, i);
  const n = images.length;
  return { dtype: "float32", shape: spec.layout === "NCHW" ? [n, C, H, W] : [n, H, W, C], data };
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
