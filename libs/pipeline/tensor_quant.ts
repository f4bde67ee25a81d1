/**
 * Applying plan entries to tensors: fit a weight's scales, fake-quantize
 * weights and activations, and round one weight column at a time for GPTQ —
 * for every format (integers, minifloats, block formats) and granularity, on
 * top of core's `fitQParams` / `chooseQParams` / `fakeQuantize`.
 *
 * @module
 */

import {
  type BlockFormat,
  defaultQuantizerFor,
  defaultRegistry,
  fakeQuantize,
  getFormat,
  type Granularity,
  LowbitError,
  type NumberFormat,
  type QParams,
  type Quantizer,
  type Range,
  type Registry,
  roundHalfEven,
} from "@lowbit/core";
import { effectiveGroupSize } from "./presets.ts";
import { type Layer, toOutIn } from "./layers.ts";
import type { PlanEntry } from "./plan.ts";
import type { GranularitySpec } from "./spec.ts";

/**
 * Whether a format carries its own per-block scales (MX, NVFP4).
 *
 * @param name format name
 * @returns true for block formats
 *
 * @example
 * ```ts
 * import { isBlockFormatName } from "@lowbit/pipeline";
 * if (!isBlockFormatName("mxfp4") || isBlockFormatName("int8")) throw new Error();
 * ```
 */
export function isBlockFormatName(name: string): boolean {
  const f = getFormat(name) as Partial<BlockFormat>;
  return f.family === "block" && typeof f.encodeBlocks === "function";
}

/**
 * Resolves a model-agnostic weight granularity on one layer's weight, in the
 * file's layout (see `plan.ts`).
 *
 * @param layer the layer
 * @param g the granularity as the preset / rules give it
 * @param format the format (block formats: per tensor, their blocks live in the format)
 * @returns core granularity on the weight tensor
 *
 * @example
 * ```ts
 * import { resolveWeightGranularity } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [10, 384], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 10, in: 384 };
 * const g = resolveWeightGranularity(fc, { group: 256 }, "int4");
 * if (g.kind !== "group" || g.size !== 192) throw new Error(JSON.stringify(g));
 * ```
 */
export function resolveWeightGranularity(
  layer: Layer,
  g: GranularitySpec,
  format: string,
): Granularity {
  if (isBlockFormatName(format)) return weightBlockGranularity(layer, format);
  if (g === "tensor") return { kind: "tensor" };
  const channel: Granularity = { kind: "channel", axis: layer.outAxis };
  if (g === "channel" || layer.op === "ConvTranspose") return channel;
  const len = layer.shape[layer.inAxis];
  // A group as long as the whole reduction row (C·kh·kw weights, the GEMM's K) is one scale per
  // output channel: a 3×3 conv over 3 channels takes int4 "groups of 128" per channel, not one
  // scale per (output channel, tap) over 3 weights.
  if (len * layer.window <= g.group) return channel;
  const size = effectiveGroupSize(len, g.group);
  if (len === 1 || (size === len && layer.window === 1)) return channel;
  return { kind: "group", axis: layer.inAxis, size };
}

/**
 * The block granularity of a block-format weight: blocks run along each output channel's row
 * of the layer's [out, in] view (a Conv's input channels and window together); a
 * ConvTranspose's along its input channels only.
 *
 * @param layer the layer
 * @param format block format name
 * @returns the granularity on the weight in the file's layout
 *
 * @example
 * ```ts
 * import { weightBlockGranularity } from "@lowbit/pipeline";
 * const conv = { node: "c", op: "Conv", input: "x", weight: "W", shape: [8, 4, 3, 3], outAxis: 0,
 *   inAxis: 1, window: 9, groups: 1, out: 8, in: 36 };
 * const g = weightBlockGranularity(conv, "mxfp4");
 * if (g.kind !== "block" || g.flatten !== 2 || g.size !== 32) throw new Error(JSON.stringify(g));
 * ```
 */
export function weightBlockGranularity(layer: Layer, format: string): Granularity {
  const size = (getFormat(format) as BlockFormat).blockSize;
  if (layer.op === "ConvTranspose") return { kind: "block", axis: 0, size };
  const flatten = layer.outAxis === 0 ? layer.shape.length - 2 : 0;
  return { kind: "block", axis: layer.inAxis, size, ...(flatten ? { flatten } : {}) };
}

/**
 * The registered quantizer of a plan entry: its `quantizer`, or the built-in one for its format.
 *
 * @param entry the entry
 * @param registry where quantizers are registered (default: the default registry)
 * @returns the quantizer
 *
 * @example
 * ```ts
 * import { entryQuantizer } from "@lowbit/pipeline";
 * const q = entryQuantizer({ node: "n", value: "W", role: "weight", format: "nvfp4" });
 * if (q.name !== "block") throw new Error(q.name);
 * ```
 */
export function entryQuantizer(
  entry: PlanEntry,
  registry: Registry = defaultRegistry(),
): Quantizer {
  if (entry.quantizer) return registry.quantizers.get(entry.quantizer);
  return registry.quantizers.get(defaultQuantizerFor(registry.formats.get(entry.format!)));
}

/** Rows of the [out, in] view zero-padded to whole blocks. */
function padRows(view: Float32Array, rows: number, cols: number, block: number) {
  const pc = Math.ceil(cols / block) * block;
  if (pc === cols) return { data: view, cols: pc };
  const out = new Float32Array(rows * pc);
  for (let r = 0; r < rows; r++) out.set(view.subarray(r * cols, (r + 1) * cols), r * pc);
  return { data: out, cols: pc };
}

/**
 * Fits a weight's parameters for a plan entry (scales and zero points on the
 * entry's granularity; `[1]` for block formats, whose scales live in the
 * codes).
 *
 * @param layer the layer
 * @param data the weight in the file's layout
 * @param entry the plan entry (format, granularity, mode)
 * @returns the parameters
 *
 * @example
 * ```ts
 * import { fitWeight } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [2, 2], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 2, in: 2 };
 * const qp = fitWeight(fc, new Float32Array([1, -2, 0.5, 0.25]), { node: "fc", value: "W",
 *   role: "weight", format: "int8", granularity: { kind: "channel", axis: 0 }, mode: "symmetric" });
 * if (qp.scale.length !== 2) throw new Error();
 * ```
 */
export function fitWeight(
  layer: Layer,
  data: Float32Array,
  entry: PlanEntry,
  registry: Registry = defaultRegistry(),
): QParams {
  const format = entry.format!, mode = entry.mode!;
  let granularity = entry.granularity!;
  // Plans of format version 1 wrote block formats as per tensor.
  if (isBlockFormatName(format) && granularity.kind !== "block") {
    granularity = weightBlockGranularity(layer, format);
  }
  try {
    return entryQuantizer(entry, registry).fit({ shape: layer.shape, data }, {
      format,
      granularity,
      mode,
    });
  } catch (e) {
    if (e instanceof LowbitError && !e.subject.tensor) {
      throw new LowbitError(e.code, e.message, { node: layer.node, tensor: layer.weight });
    }
    throw e;
  }
}

/**
 * The parameters an entry holds (fitted scales), as core `QParams`.
 *
 * @param entry a plan entry with `scale`
 * @returns the parameters
 *
 * @example
 * ```ts
 * import { entryQParams } from "@lowbit/pipeline";
 * const qp = entryQParams({ node: "n", value: "x", role: "activation", format: "int8",
 *   granularity: { kind: "tensor" }, mode: "affine", scale: [0.1], zeroPoint: [-3] });
 * if (qp.zeroPoint[0] !== -3) throw new Error();
 * ```
 */
export function entryQParams(entry: PlanEntry): QParams {
  if (entry.dynamic && !entry.scale && entry.format && entry.granularity && entry.mode) {
    return entryQParams({ ...entry, scale: [1], zeroPoint: [0] });
  }
  if (!entry.scale || !entry.format || !entry.granularity || !entry.mode) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `the plan's ${entry.role} entry has no fitted scale (run calibration, or give "scale")`,
      { node: entry.node, tensor: entry.value },
    );
  }
  return {
    format: entry.format,
    granularity: entry.granularity,
    mode: entry.mode,
    scale: Float32Array.from(entry.scale),
    zeroPoint: Int32Array.from(entry.zeroPoint ?? entry.scale.map(() => 0)),
    ...(entry.extra ? { extra: structuredClone(entry.extra) } : {}),
    ...(entry.dynamic ? { dynamic: true } : {}),
    ...(entry.reads?.length ? { reads: [...entry.reads] } : {}),
  };
}

/**
 * Fake-quantizes a weight (round to nearest) under fitted parameters.
 *
 * @param layer the layer
 * @param data the weight in the file's layout
 * @param qp the parameters (from {@link fitWeight} or the plan)
 * @returns dequantized values on the grid, in the file's layout
 *
 * @example
 * ```ts
 * import { fakeQuantWeight, fitWeight } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [1, 32], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 1, in: 32 };
 * const w = new Float32Array(32).map((_, i) => i / 31);
 * const e = { node: "fc", value: "W", role: "weight" as const, format: "mxfp4",
 *   granularity: { kind: "group" as const, axis: 1, size: 32 }, mode: "symmetric" as const };
 * const q = fakeQuantWeight(fc, w, fitWeight(fc, w, e));
 * if (q.length !== 32 || q[31] !== 1) throw new Error(String(q[31]));
 * ```
 */
export function fakeQuantWeight(
  layer: Layer,
  data: Float32Array,
  qp: QParams,
  quantizer?: Quantizer,
): Float32Array {
  const q = quantizer ??
    defaultRegistry().quantizers.get(defaultQuantizerFor(getFormat(qp.format)));
  // Uniform weights round as torch's fake_quantize does (× 1/scale), as GPTQ's column rounder does;
  // the values land on the grid either way, and their codes are exact.
  if (q.name === "uniform") {
    return fakeQuantize({ shape: layer.shape, data }, qp, layer.weight).data;
  }
  return q.fakeQuant({ shape: layer.shape, data }, qp).data;
}

/**
 * The scale index of each element of the [out, in] view, for GPTQ's column rounder.
 */
function viewScaleIndex(layer: Layer, qp: QParams): (o: number, j: number) => number {
  const g = qp.granularity;
  if (g.kind === "tensor" || g.kind === "block" || g.kind === "row") return () => 0;
  // Map view (o, j) to the file's flat index, then to the scale index.
  const shape = layer.shape;
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const fileIndex = (o: number, j: number): number => {
    if (layer.outAxis === 0) return o * layer.in + j; // Conv, Gemm transB=1
    if (layer.op === "ConvTranspose") {
      const og = shape[1], k = layer.window, ig = shape[0] / layer.groups;
      const grp = Math.floor(o / og), oo = o % og;
      const i = grp * ig + Math.floor(j / k), t = j % k;
      return (i * og + oo) * k + t;
    }
    return j * shape[1] + o; // [K, N]
  };
  const axis = g.axis;
  const dim = shape[axis], inner = strides[axis];
  if (g.kind === "channel") {
    return (o, j) => Math.floor(fileIndex(o, j) / inner) % dim;
  }
  const groups = dim / g.size;
  return (o, j) => {
    const f = fileIndex(o, j);
    const outer = Math.floor(f / (dim * inner));
    const d = Math.floor(f / inner) % dim;
    const r = f % inner;
    return (outer * groups + Math.floor(d / g.size)) * inner + r;
  };
}

/** Rounds v / s onto the format's grid and scales back (decoding with `sd`, default `s`). */
function roundScaled(
  fmt: NumberFormat,
  v: Float32Array,
  s: ArrayLike<number>,
  sd: ArrayLike<number> = s,
): Float32Array {
  const y = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) y[i] = s[i] > 0 ? v[i] / s[i] : 0;
  const d = fmt.decode(fmt.encode(y));
  for (let i = 0; i < v.length; i++) y[i] = d[i] * sd[i];
  return y;
}

/**
 * A column rounder for {@link gptq}: rounds column `j` of the [out, in] view
 * with the scales fitted on the original weight (static groups; block formats
 * keep the block scales of the original weight).
 *
 * @param layer the layer
 * @param data the original weight, file layout
 * @param qp its fitted parameters
 * @returns the rounder
 *
 * @example
 * ```ts
 * import { columnRounder, fitWeight } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [2, 2], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 2, in: 2 };
 * const w = new Float32Array([1, -2, 0.5, 0.25]);
 * const qp = fitWeight(fc, w, { node: "fc", value: "W", role: "weight", format: "int8",
 *   granularity: { kind: "channel", axis: 0 }, mode: "symmetric" });
 * const col = columnRounder(fc, w, qp)(new Float32Array([1, 0.5]), 0);
 * if (Math.abs(col[0] - 1) > 0.01) throw new Error(String(col));
 * ```
 */
export function columnRounder(
  layer: Layer,
  data: Float32Array,
  qp: QParams,
): (column: Float32Array, j: number) => Float32Array {
  const fmt = getFormat(qp.format);
  const bf = fmt as Partial<BlockFormat>;
  const rows = layer.out;
  if (bf.family === "block" && bf.blockSize && bf.encodeBlocks && bf.element && bf.scaleFormat) {
    // Static block scales from the original weight.
    const view = toOutIn(layer, data);
    const p = padRows(view, rows, layer.in, bf.blockSize);
    const enc = bf.encodeBlocks(p.data);
    const sc = bf.scaleFormat.decode(enc.scales);
    const perRow = p.cols / bf.blockSize;
    const elem = bf.element;
    // As the format does: divide by fround(scale · tensorScale), multiply by the exact product.
    const s = new Float32Array(rows), sd = new Float64Array(rows);
    return (col, j) => {
      for (let o = 0; o < rows; o++) {
        sd[o] = sc[o * perRow + Math.floor(j / bf.blockSize!)] * enc.tensorScale;
        s[o] = sd[o];
      }
      return roundScaled(elem, col, s, sd);
    };
  }
  const index = viewScaleIndex(layer, qp);
  const isInt = fmt.family === "int";
  const s = new Float32Array(rows), z = new Float32Array(rows);
  return (col, j) => {
    for (let o = 0; o < rows; o++) {
      const k = index(o, j);
      s[o] = qp.scale[k];
      z[o] = qp.zeroPoint[k];
    }
    if (!isInt) return roundScaled(fmt, col, s);
    const out = new Float32Array(rows);
    for (let o = 0; o < rows; o++) {
      const inv = Math.fround(1 / s[o]);
      const q = Math.min(
        fmt.max,
        Math.max(fmt.min, roundHalfEven(Math.fround(col[o] * inv)) + z[o]),
      );
      out[o] = Math.fround((q - z[o]) * s[o]);
    }
    return out;
  };
}

/**
 * Fits an activation's parameters from a calibrator's range.
 *
 * @param entry the activation entry (format, granularity, mode)
 * @param range the calibrated range
 * @returns scales and zero points
 *
 * @example
 * ```ts
 * import { fitActivation } from "@lowbit/pipeline";
 * const qp = fitActivation({ node: "n", value: "x", role: "activation", format: "int8",
 *   granularity: { kind: "tensor" }, mode: "affine" },
 *   { min: new Float32Array([0]), max: new Float32Array([2.55]) });
 * if (qp.zeroPoint[0] !== -128) throw new Error(String(qp.zeroPoint[0]));
 * ```
 */
export function fitActivation(
  entry: PlanEntry,
  range: Range,
  registry: Registry = defaultRegistry(),
): QParams {
  try {
    return entryQuantizer(entry, registry).fit(range, {
      format: entry.format!,
      granularity: entry.granularity!,
      mode: entry.mode!,
    });
  } catch (e) {
    if (e instanceof LowbitError && !e.subject.tensor) {
      throw new LowbitError(e.code, e.message, { node: entry.node, tensor: entry.value });
    }
    throw e;
  }
}

/**
 * Fake-quantizes an activation: static scales from the plan, or for dynamic
 * (block-format) entries per-block scales computed here along `axis`
 * (the channel axis), zero-padding the last block.
 *
 * @param data the activation values
 * @param shape its shape
 * @param entry the plan entry
 * @param axis channel axis for dynamic block formats (1 for NCHW, -1 for rows)
 * @returns fake-quantized values
 *
 * @example
 * ```ts
 * import { fakeQuantActivation } from "@lowbit/pipeline";
 * const y = fakeQuantActivation(new Float32Array([0.12, 1]), [2], { node: "n", value: "x",
 *   role: "activation", format: "int8", granularity: { kind: "tensor" }, mode: "symmetric",
 *   scale: [0.1], zeroPoint: [0] }, -1);
 * if (Math.abs(y[0] - 0.1) > 1e-6) throw new Error(String(y[0]));
 * ```
 */
export function fakeQuantActivation(
  data: Float32Array,
  shape: readonly number[],
  entry: PlanEntry,
  axis: number,
  registry: Registry = defaultRegistry(),
): Float32Array {
  let e = entry;
  if (e.dynamic && e.granularity?.kind !== "block" && isBlockFormatName(e.format!)) {
    e = { ...e, granularity: activationBlockGranularity(e.format!, axis) };
  }
  const q = entryQuantizer(e, registry);
  return q.fakeQuant({ shape, data }, entryQParams(e)).data;
}

/**
 * The granularity of a block-format activation: blocks of the format's size along `axis`
 * (the channel axis: 1 for NCHW, -1 for rows), scales computed at run time.
 *
 * @param format block format name
 * @param axis channel axis
 * @returns the granularity
 *
 * @example
 * ```ts
 * import { activationBlockGranularity } from "@lowbit/pipeline";
 * const g = activationBlockGranularity("nvfp4", 1);
 * if (g.kind !== "block" || g.size !== 16) throw new Error();
 * ```
 */
export function activationBlockGranularity(format: string, axis: number): Granularity {
  return { kind: "block", axis, size: (getFormat(format) as BlockFormat).blockSize };
}
