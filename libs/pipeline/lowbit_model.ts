/**
 * A {@link QuantizedModel} in and out of the lowbit file (`@lowbit/graph`'s
 * `encodeLowbitFile` / `decodeLowbitFile`): every quantized weight is stored
 * as its codes with its scales, the fitted plan rides along as metadata, and
 * loading dequantizes the codes back onto the grid, so the result runs on our
 * executor (with the plan's activation quantization) without the original
 * model.
 *
 * Block formats (MX, NVFP4) store one element code per weight (file layout),
 * the block scale codes as extra `block_scales` (blocks along each output
 * channel's row of the [out, in] view, the last block zero-padded, see
 * `layers.ts`) and the FP32 second-level scale as extra `tensor_scale`.
 *
 * @module
 */

import {
  type BlockFormat,
  type Codes,
  dequantizeAffine,
  getFormat,
  LowbitError,
  quantizeAffine,
} from "@lowbit/core";
import { decodeLowbitFile, encodeLowbitFile, type LowbitTensor, type Model } from "@lowbit/graph";
import { fromOutIn, type Layer, scanLayers, toOutIn } from "./layers.ts";
import { parsePlan } from "./plan.ts";
import type { QuantizedModel } from "./quantize.ts";
import { entryQParams, isBlockFormatName } from "./tensor_quant.ts";

function padRows(view: Float32Array, rows: number, cols: number, pc: number): Float32Array {
  const out = new Float32Array(rows * pc);
  for (let r = 0; r < rows; r++) out.set(view.subarray(r * cols, (r + 1) * cols), r * pc);
  return out;
}

/**
 * Encodes a layer weight in a block format. Block scales come from `ref`
 * (default: `w` itself), so weights already rounded against the original
 * weight's blocks (GPTQ) keep those scales; with `ref = w` the codes equal the
 * format's own `encodeBlocks`.
 *
 * @param layer the layer
 * @param w the weight to encode (file layout)
 * @param format block format name
 * @param ref the weight the block scales are taken from
 * @returns the lowbit tensor (codes, `block_scales`, `tensor_scale`)
 *
 * @example
 * ```ts
 * import { decodeBlockWeight, encodeBlockWeight } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [1, 40], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 1, in: 40 };
 * const w = new Float32Array(40).map((_, i) => (i - 20) / 8);
 * const t = encodeBlockWeight(fc, w, "mxfp4");
 * const back = decodeBlockWeight(fc, t);
 * // block 1: amax 2.5 → scale 2^-1; -2.5 / 0.5 = -5 rounds (ties to even) to -4 → -2
 * if (back[0] !== -2 || back.length !== 40) throw new Error(String(back[0]));
 * ```
 */
export function encodeBlockWeight(
  layer: Layer,
  w: Float32Array,
  format: string,
  ref: Float32Array = w,
): LowbitTensor {
  const f = getFormat(format) as BlockFormat;
  const pc = Math.ceil(layer.in / f.blockSize) * f.blockSize;
  const enc = f.encodeBlocks(padRows(toOutIn(layer, ref), layer.out, layer.in, pc));
  const scales = f.scaleFormat.decode(enc.scales);
  const v = toOutIn(layer, w);
  const y = new Float32Array(v.length);
  for (let r = 0; r < layer.out; r++) {
    for (let j = 0; j < layer.in; j++) {
      const s = Math.fround(
        scales[r * (pc / f.blockSize) + Math.floor(j / f.blockSize)] * enc.tensorScale,
      );
      y[r * layer.in + j] = s > 0 ? Math.fround(v[r * layer.in + j] / s) : 0;
    }
  }
  const codes = Uint8Array.from(fromOutIn(layer, Float32Array.from(f.element.encode(y))));
  return {
    format,
    bits: f.bits,
    shape: [...layer.shape],
    granularity: { kind: "tensor" },
    mode: "symmetric",
    codes,
    scale: new Float32Array([1]),
    zeroPoint: new Int32Array([0]),
    extra: {
      block_scales: {
        dtype: "uint8",
        shape: [enc.scales.length],
        data: Uint8Array.from(enc.scales),
      },
      tensor_scale: { dtype: "float32", shape: [1], data: new Float32Array([enc.tensorScale]) },
    },
  };
}

/**
 * Decodes what {@link encodeBlockWeight} produced.
 *
 * @param layer the layer
 * @param t the lowbit tensor
 * @returns the dequantized weight (file layout)
 *
 * @example
 * ```ts
 * import { decodeBlockWeight, encodeBlockWeight } from "@lowbit/pipeline";
 * const fc = { node: "fc", op: "Gemm", input: "x", weight: "W", shape: [1, 16], outAxis: 0,
 *   inAxis: 1, window: 1, groups: 1, out: 1, in: 16 };
 * const w = new Float32Array(16).fill(3);
 * const back = decodeBlockWeight(fc, encodeBlockWeight(fc, w, "nvfp4"));
 * if (Math.abs(back[5] - 3) > 1e-6) throw new Error(String(back[5]));
 * ```
 */
export function decodeBlockWeight(layer: Layer, t: LowbitTensor): Float32Array {
  const f = getFormat(t.format) as BlockFormat;
  const bs = t.extra?.block_scales?.data as Uint8Array | undefined;
  const ts = (t.extra?.tensor_scale?.data as Float32Array | undefined)?.[0] ?? 1;
  const nb = Math.ceil(layer.in / f.blockSize);
  if (!bs || bs.length !== layer.out * nb) {
    throw new LowbitError(
      "PARSE_ERROR",
      `block format '${t.format}' needs ${layer.out * nb} block scales`,
      { tensor: layer.weight },
    );
  }
  const scales = f.scaleFormat.decode(bs);
  const codesView = toOutIn(layer, Float32Array.from(t.codes));
  const elems = f.element.decode(Uint8Array.from(codesView));
  const view = new Float32Array(layer.out * layer.in);
  for (let r = 0; r < layer.out; r++) {
    for (let j = 0; j < layer.in; j++) {
      // As the format decodes: element × (block scale × tensor scale), rounded once.
      view[r * layer.in + j] = elems[r * layer.in + j] *
        (scales[r * nb + Math.floor(j / f.blockSize)] * ts);
    }
  }
  return fromOutIn(layer, view);
}

/**
 * Encodes a quantized model as a lowbit file.
 *
 * @param qm the quantized model
 * @returns the file's bytes
 *
 * @example
 * ```ts
 * import { decodeLowbitModel, encodeLowbitModel, quantize } from "@lowbit/pipeline";
 * import { readNpy, readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const x = readNpy(await Deno.readFile("fixtures/digits/calib_x.npy"));
 * const { quantized } = await quantize({ model, calib: { inputs: { x }, count: 200 }, preset: "nvfp4" });
 * const back = decodeLowbitModel(encodeLowbitModel(quantized));
 * const w = quantized.plan.entries[0].value;
 * const a = quantized.model.graph.initializers.get(w)!.data, b = back.model.graph.initializers.get(w)!.data;
 * if (a.join() !== b.join()) throw new Error("weights differ after the round trip");
 * ```
 */
export function encodeLowbitModel(qm: QuantizedModel): Uint8Array {
  const byNode = new Map(qm.layers.map((l) => [l.node, l]));
  const tensors = new Map<string, LowbitTensor>();
  for (const e of qm.plan.entries) {
    if (e.role !== "weight" || e.skip || tensors.has(e.value)) continue;
    const layer = byNode.get(e.node)!;
    const w = qm.model.graph.initializers.get(e.value)!.data as Float32Array;
    if (isBlockFormatName(e.format!)) {
      tensors.set(e.value, qm.encoded?.get(e.value) ?? encodeBlockWeight(layer, w, e.format!));
      continue;
    }
    const qp = entryQParams(e);
    const codes: Codes = quantizeAffine({ shape: layer.shape, data: w }, qp, e.value);
    tensors.set(e.value, {
      format: e.format!,
      bits: getFormat(e.format!).bits,
      shape: [...layer.shape],
      granularity: qp.granularity,
      mode: qp.mode,
      codes,
      scale: qp.scale,
      zeroPoint: qp.zeroPoint,
    });
  }
  return encodeLowbitFile(qm.model, qm.plan, tensors);
}

/**
 * Decodes a lowbit file into a quantized model whose weights are dequantized
 * onto their grids (runnable with `simulate`).
 *
 * @param bytes the file's bytes
 * @param fileName for messages
 * @returns the quantized model
 *
 * @example
 * ```ts
 * import { decodeLowbitModel } from "@lowbit/pipeline";
 * let threw = false;
 * try { decodeLowbitModel(new Uint8Array(8), "x.lowbit"); } catch { threw = true; }
 * if (!threw) throw new Error();
 * ```
 */
export function decodeLowbitModel(bytes: Uint8Array, fileName?: string): QuantizedModel {
  const file = decodeLowbitFile(bytes, fileName);
  const plan = parsePlan(file.plan, fileName);
  const model: Model = {
    ...file.model,
    graph: { ...file.model.graph, initializers: new Map(file.model.graph.initializers) },
  };
  // Layers are found once the weights are back in place.
  const shapes = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) {
    shapes.set(name, new Float32Array(t.shape.reduce((a, b) => a * b, 1)));
    model.graph.initializers.set(name, {
      dtype: "float32",
      shape: [...t.shape],
      data: shapes.get(name)!,
    });
  }
  const { layers } = scanLayers(model.graph);
  for (const [name, t] of file.tensors) {
    let data: Float32Array;
    if (isBlockFormatName(t.format)) {
      const layer = layers.find((l) => l.weight === name);
      if (!layer) {
        throw new LowbitError("PARSE_ERROR", "block-quantized tensor is not a layer weight", {
          file: fileName,
          tensor: name,
        });
      }
      data = decodeBlockWeight(layer, t);
    } else {
      data = dequantizeAffine(
        t.codes,
        {
          format: t.format,
          granularity: t.granularity,
          mode: t.mode,
          scale: t.scale,
          zeroPoint: t.zeroPoint,
        },
        t.shape,
        name,
      ).data;
    }
    model.graph.initializers.set(name, { dtype: "float32", shape: [...t.shape], data });
  }
  return { model, plan, layers };
}
