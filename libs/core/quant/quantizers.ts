/**
 * The built-in quantizers, one per kind of grid:
 *
 * - `"uniform"`: integer and minifloat formats with scales (and integer zero points) per tensor,
 *   channel or group — or, with `{ kind: "row" }` granularity, scales computed per row at run
 *   time (dynamic per-token quantization). QDQ ONNX expresses it where the format has an ONNX
 *   type ({@link onnxQuantType}).
 * - `"block"`: MX and NVFP4, whose scales live per block of the format: weights keep the block
 *   scale codes and the tensor scale they were fitted with in `extra` (`block_scales`,
 *   `tensor_scale`); activations get theirs at run time. Rows run along the granularity's axis.
 * - `"scaled"`: ternary, binary, PTQTP and NUPES weights, whose formats fit their own scale
 *   (γ, α, a step and an exponent...) while encoding: kept in `extra` (`tensor_scale`,
 *   `params`), so codes written to a file decode to the same values.
 *
 * Each fits from a calibrated range or from the tensor, fake-quantizes, encodes and decodes, and
 * says whether QDQ ONNX can express it.
 *
 * @module
 */

import { LowbitError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type {
  BatchContext,
  BlockFormat,
  Codes,
  FitOptions,
  NumberFormat,
  QParams,
  Quantizer,
  Range,
} from "../types.ts";
import { chooseQParams, fitQParams } from "./qparams.ts";
import { dequantizeAffine, fakeQuantize, quantizeAffine } from "./affine.ts";
import { isBlockFormat, isIntFormat, quantBounds } from "./_format.ts";
import { checkParams, forEachScale } from "./_apply.ts";
import { rowLayout, rowsOf } from "./_rows.ts";
import { roundHalfEven } from "./round.ts";
import { attachParams } from "../formats/_scaled.ts";
import { scaledParams } from "../formats/scaled.ts";
import { onnxQuantType } from "../formats/onnx_types.ts";

/** Resolves a format name (a registry's formats table). */
export type FormatResolver = (name: string) => NumberFormat;

const isRange = (x: Range | Tensor): x is Range => "min" in x && "max" in x;

// *** uniform ***

/** Per-tensor integer fake-quant as QuantizeLinear computes it: x / s, ties to even, clamp. */
function divideQuant(x: Float32Array, qp: QParams, fmt: NumberFormat): Float32Array {
  const [lo, hi] = quantBounds(fmt, qp.quantMin, qp.quantMax);
  const s = qp.scale[0], z = qp.zeroPoint[0], out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const q = Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(x[i] / s)) + z));
    out[i] = Math.fround((q - z) * s);
  }
  return out;
}

/** Dynamic per-row quantization: each row gets the scale of its own range. */
function rowQuant(t: Tensor, qp: QParams, fmt: NumberFormat): Tensor {
  const g = qp.granularity as Extract<QParams["granularity"], { kind: "row" }>;
  const { rows, len, index } = rowsOf(t.shape, g);
  const out = new Float32Array(t.data.length);
  const row = new Float32Array(len);
  for (let r = 0; r < rows; r++) {
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < len; j++) {
      const v = t.data[index[r * len + j]];
      row[j] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const rq = chooseQParams({ min: Float32Array.of(lo), max: Float32Array.of(hi) }, {
      format: qp.format,
      granularity: { kind: "tensor" },
      mode: qp.mode,
      quantMin: qp.quantMin,
      quantMax: qp.quantMax,
    });
    const y = isIntFormat(fmt)
      ? divideQuant(row, rq, fmt)
      : fakeQuantize({ shape: [len], data: row }, rq).data;
    for (let j = 0; j < len; j++) out[index[r * len + j]] = y[j];
  }
  return { shape: [...t.shape], data: out };
}

function uniform(resolve: FormatResolver): Quantizer {
  return {
    name: "uniform",
    supports: (f) => !isBlockFormat(f) && (f.family === "int" || f.family === "float"),
    fit(input: Range | Tensor, opts: FitOptions): QParams {
      if (opts.granularity.kind === "row") {
        resolve(opts.format);
        return {
          format: opts.format,
          granularity: opts.granularity,
          mode: opts.mode,
          scale: Float32Array.of(1),
          zeroPoint: Int32Array.of(0),
          dynamic: true,
          ...(opts.quantMin !== undefined ? { quantMin: opts.quantMin } : {}),
          ...(opts.quantMax !== undefined ? { quantMax: opts.quantMax } : {}),
        };
      }
      return isRange(input) ? chooseQParams(input, opts) : fitQParams(input, opts);
    },
    quantize(t: Tensor, qp: QParams): Codes {
      if (qp.dynamic) throw dynamicCodes(qp);
      return quantizeAffine(t, qp);
    },
    dequantize(codes: Codes, qp: QParams, shape: readonly number[]): Tensor {
      if (qp.dynamic) throw dynamicCodes(qp);
      return dequantizeAffine(codes, qp, shape);
    },
    fakeQuant(t: Tensor, qp: QParams): Tensor {
      const fmt = resolve(qp.format);
      if (qp.dynamic) return rowQuant(t, qp, fmt);
      if (isIntFormat(fmt) && qp.scale.length === 1 && qp.granularity.kind === "tensor") {
        return { shape: [...t.shape], data: divideQuant(t.data, qp, fmt) };
      }
      return fakeQuantize(t, qp);
    },
    onnx(qp: QParams): boolean {
      const k = qp.granularity.kind;
      return !qp.dynamic && (k === "tensor" || k === "channel" || k === "group") &&
        onnxQuantType(qp.format) !== undefined;
    },
  };
}

function dynamicCodes(qp: QParams): LowbitError {
  return new LowbitError(
    "UNSUPPORTED",
    `'${qp.format}' with scales computed at run time has no stored codes`,
  );
}

// *** block (MX, NVFP4) ***

function blockGranularity(qp: QParams | FitOptions) {
  const g = qp.granularity;
  if (g.kind !== "block") {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `block format '${qp.format}' needs { kind: "block", axis, size } granularity, got ` +
        JSON.stringify(g),
    );
  }
  return g;
}

/** Gathers the rows of `x`, zero-padded to whole blocks. */
function gatherRows(x: Float32Array, shape: readonly number[], qp: QParams, bf: BlockFormat) {
  const v = rowsOf(shape, blockGranularity(qp));
  const pc = Math.ceil(v.len / bf.blockSize) * bf.blockSize;
  const buf = new Float32Array(v.rows * pc);
  for (let r = 0; r < v.rows; r++) {
    for (let j = 0; j < v.len; j++) buf[r * pc + j] = x[v.index[r * v.len + j]];
  }
  return { ...v, pc, buf };
}

/** Per-element scale of stored block scales: fround(block scale × tensor scale) per block. */
function blockScales(qp: QParams, bf: BlockFormat, rows: number, pc: number): Float64Array {
  const codes = qp.extra?.block_scales;
  const nb = pc / bf.blockSize;
  if (!codes || codes.length !== rows * nb) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `block format '${qp.format}': ${rows * nb} block scales are needed, ` +
        `${codes?.length ?? 0} are stored`,
    );
  }
  const ts = qp.extra?.tensor_scale?.[0] ?? 1;
  const sc = bf.scaleFormat.decode(Uint8Array.from(codes));
  const out = new Float64Array(sc.length);
  for (let i = 0; i < sc.length; i++) out[i] = sc[i] * ts;
  return out;
}

function block(resolve: FormatResolver): Quantizer {
  const bfOf = (name: string): BlockFormat => {
    const f = resolve(name);
    if (!isBlockFormat(f)) {
      throw new LowbitError("INVALID_ARGUMENT", `'${name}' is not a block format`);
    }
    return f;
  };
  const quantize = (t: Tensor, qp: QParams): Codes => {
    const bf = bfOf(qp.format);
    const g = gatherRows(t.data, t.shape, qp, bf);
    const s = blockScales(qp, bf, g.rows, g.pc);
    const y = new Float32Array(t.data.length);
    for (let r = 0; r < g.rows; r++) {
      for (let j = 0; j < g.len; j++) {
        const sc = Math.fround(s[r * (g.pc / bf.blockSize) + Math.floor(j / bf.blockSize)]);
        y[g.index[r * g.len + j]] = sc > 0 ? Math.fround(g.buf[r * g.pc + j] / sc) : 0;
      }
    }
    return bf.element.encode(y);
  };
  const dequantize = (codes: Codes, qp: QParams, shape: readonly number[]): Tensor => {
    const bf = bfOf(qp.format);
    const v = rowsOf(shape, blockGranularity(qp));
    const pc = Math.ceil(v.len / bf.blockSize) * bf.blockSize;
    const s = blockScales(qp, bf, v.rows, pc);
    const e = bf.element.decode(codes);
    const out = new Float32Array(codes.length);
    for (let r = 0; r < v.rows; r++) {
      for (let j = 0; j < v.len; j++) {
        const i = v.index[r * v.len + j];
        // As the format decodes: element × (block scale × tensor scale), rounded once.
        out[i] = e[i] * s[r * (pc / bf.blockSize) + Math.floor(j / bf.blockSize)];
      }
    }
    return { shape: [...shape], data: out };
  };
  return {
    name: "block",
    supports: (f) => isBlockFormat(f),
    fit(input: Range | Tensor, opts: FitOptions): QParams {
      const bf = bfOf(opts.format);
      blockGranularity(opts);
      const base: QParams = {
        format: opts.format,
        granularity: opts.granularity,
        mode: "symmetric",
        scale: Float32Array.of(1),
        zeroPoint: Int32Array.of(0),
      };
      if (isRange(input)) return { ...base, dynamic: true };
      const g = gatherRows(input.data, input.shape, base, bf);
      const enc = bf.encodeBlocks(g.buf);
      return {
        ...base,
        extra: { block_scales: [...enc.scales], tensor_scale: [enc.tensorScale] },
      };
    },
    quantize,
    dequantize,
    fakeQuant(t: Tensor, qp: QParams, _ctx?: BatchContext, into?: Float32Array): Tensor {
      if (!qp.dynamic) return dequantize(quantize(t, qp), qp, t.shape);
      const bf = bfOf(qp.format);
      const gr = blockGranularity(qp);
      if (bf.roundBlocks) {
        // No scale spans blocks (MX): the tensor read in place as [outer, len, inner], blocks
        // along len, a short last block as the zero-padded one; into `into` when given.
        const dst = into?.length === t.data.length ? into : undefined;
        const data = bf.roundBlocks(t.data, dst, rowLayout(t.shape, gr));
        return { shape: [...t.shape], data };
      }
      const g = gatherRows(t.data, t.shape, qp, bf);
      // Each sample (first axis) on its own, so a result never depends on the batch it ran in
      // (NVFP4's tensor scale would otherwise span the batch).
      const rank = t.shape.length;
      const perSample = rank > 1 && (gr.axis + rank) % rank !== 0
        ? g.rows / Math.max(1, t.shape[0])
        : g.rows;
      const fq = new Float32Array(g.buf.length);
      for (let r0 = 0; r0 < g.rows; r0 += perSample) {
        const part = g.buf.subarray(r0 * g.pc, (r0 + perSample) * g.pc);
        fq.set(bf.decodeBlocks(bf.encodeBlocks(part)), r0 * g.pc);
      }
      const out = new Float32Array(t.data.length);
      for (let r = 0; r < g.rows; r++) {
        for (let j = 0; j < g.len; j++) out[g.index[r * g.len + j]] = fq[r * g.pc + j];
      }
      return { shape: [...t.shape], data: out };
    },
  };
}

// *** scaled (ternary, binary, PTQTP, NUPES) ***

const SCALED_FAMILIES = new Set(["ternary", "binary", "nonuniform"]);

/** Whether `c` is a code of the format: ternary-family codes hold 2-bit trits, never 0b10. */
function validCode(fmt: NumberFormat, c: number): boolean {
  if (fmt.family === "binary") return c <= 1;
  if (fmt.family !== "ternary") return true;
  for (let b = 0; b < fmt.bits; b += 2) if (((c >> b) & 3) === 2) return false;
  return true;
}

/** Codes nearest to `y` under fixed fitted parameters (every valid code of the format tried). */
function nearestCodes(fmt: NumberFormat, y: Float32Array, ts: number, params: Float32Array): Codes {
  const n = y.length;
  const codes: Codes = fmt.bits <= 8 ? new Uint8Array(n) : new Uint16Array(n);
  const best = new Float64Array(n).fill(Infinity);
  for (let c = 0; c < 2 ** fmt.bits; c++) {
    if (!validCode(fmt, c)) continue;
    const cc: Codes = fmt.bits <= 8 ? new Uint8Array(n).fill(c) : new Uint16Array(n).fill(c);
    let v: Float32Array;
    try {
      v = fmt.decode(attachParams(cc, ts, params));
    } catch {
      continue; // not a code of this format
    }
    for (let i = 0; i < n; i++) {
      const d = Math.abs(v[i] - y[i]);
      // On a tie the code with the same sign wins (NUPES has −0).
      if (d < best[i] || (d === best[i] && Object.is(v[i], y[i]))) best[i] = d, codes[i] = c;
    }
  }
  return codes;
}

function scaled(resolve: FormatResolver): Quantizer {
  const params = (qp: QParams) => ({
    ts: qp.extra?.tensor_scale?.[0] ?? 1,
    p: Float32Array.from(qp.extra?.params ?? []),
  });
  const quantize = (t: Tensor, qp: QParams): Codes => {
    const fmt = resolve(qp.format);
    const L = checkParams(t.shape, t.data.length, qp);
    const { ts, p } = params(qp);
    // The format's own encoding, when it fits the stored parameters again (the tensor they were
    // fitted on): NUPES rounds in its power domain, not to the nearest value.
    const own = quantizeAffine(t, qp);
    const sp = scaledParams(own);
    if (
      sp.tensorScale === ts && sp.params.length === p.length &&
      sp.params.every((v, i) => v === p[i])
    ) {
      return own.slice();
    }
    // Other data (on-grid values being saved): the nearest code under the stored parameters;
    // x / scale without clamping to the unit grid: on-grid values of a format whose fitted
    // levels exceed ±1 (PTQTP's α1 + α2) must find their own code again.
    const y = new Float32Array(t.data.length);
    forEachScale(L, (i, k) => (y[i] = Math.fround(t.data[i] / qp.scale[k])));
    return nearestCodes(fmt, y, ts, p);
  };
  const dequantize = (codes: Codes, qp: QParams, shape: readonly number[]): Tensor => {
    const { ts, p } = params(qp);
    const c = attachParams(codes.slice(), ts, p.length ? p : undefined);
    return dequantizeAffine(c, qp, shape);
  };
  return {
    name: "scaled",
    supports: (f) => SCALED_FAMILIES.has(f.family) && !isBlockFormat(f),
    fit(input: Range | Tensor, opts: FitOptions): QParams {
      if (isRange(input)) {
        throw new LowbitError(
          "UNSUPPORTED",
          `'${opts.format}' fits its scale to the tensor itself: it quantizes weights only`,
        );
      }
      const qp = fitQParams(input, opts);
      const sp = scaledParams(quantizeAffine(input, qp));
      return { ...qp, extra: { tensor_scale: [sp.tensorScale], params: [...sp.params] } };
    },
    quantize,
    dequantize,
    fakeQuant: (t, qp) => dequantize(quantize(t, qp), qp, t.shape),
  };
}

/**
 * The built-in quantizers: `"uniform"`, `"block"` and `"scaled"` (see the module doc).
 *
 * @param resolve how format names are looked up (the registry's formats table)
 * @returns fresh quantizer records
 *
 * @example
 * ```ts
 * import { builtinQuantizers, getFormat, tensor } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * const [uniform] = builtinQuantizers(getFormat);
 * const qp = uniform.fit({ min: new Float32Array([-2]), max: new Float32Array([1]) },
 *   { format: "int8", granularity: { kind: "tensor" }, mode: "symmetric" });
 * const t = uniform.dequantize(uniform.quantize(tensor(new Float32Array([1]), [1]), qp), qp, [1]);
 * assert.ok(Math.abs(t.data[0] - 1) <= qp.scale[0] / 2);
 * assert.equal(uniform.onnx!(qp), true);
 * ```
 */
export function builtinQuantizers(resolve: FormatResolver): Quantizer[] {
  return [uniform(resolve), block(resolve), scaled(resolve)];
}

/**
 * The name of the built-in quantizer for a format: `"block"` for MX / NVFP4, `"scaled"` for
 * ternary, binary, PTQTP and NUPES, `"uniform"` otherwise.
 *
 * @param format the format
 * @returns the quantizer name
 *
 * @example
 * ```ts
 * import { defaultQuantizerFor, getFormat } from "@lowbit/core";
 * import assert from "node:assert/strict";
 * assert.equal(defaultQuantizerFor(getFormat("mxfp4")), "block");
 * assert.equal(defaultQuantizerFor(getFormat("ternary")), "scaled");
 * assert.equal(defaultQuantizerFor(getFormat("int4")), "uniform");
 * ```
 */
export function defaultQuantizerFor(format: NumberFormat): string {
  if (isBlockFormat(format)) return "block";
  if (SCALED_FAMILIES.has(format.family)) return "scaled";
  return "uniform";
}

/** A `BatchContext` for code that observes outside a calibration run. */
export const NO_BATCH: BatchContext = { batch: 0, tags: {} };
