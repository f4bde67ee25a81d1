/**
 * Signal processing ops (opset 17): DFT (forward / inverse, onesided, any axis, real or complex
 * input), STFT, the HannWindow / HammingWindow / BlackmanWindow generators and MelWeightMatrix.
 * Transforms are direct O(n²) sums in float64 (the lengths models use are small), stored as
 * float32.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { DType, Node, TensorData } from "../../ir.ts";
import { DTYPE_BY_CODE } from "../../passes/_const_eval.ts";
import { attrInt, normAxis, size, toF32, toNumbers } from "../_tensor.ts";
import { castTo } from "./shape.ts";
import type { OpImpl, OpTable } from "./types.ts";

function need(node: Node, t: TensorData | undefined, what: string): TensorData {
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} is missing`, {
      node: node.name,
    });
  }
  return t;
}

function scalar(node: Node, t: TensorData | undefined, what: string): number {
  const v = toNumbers(need(node, t, what));
  if (v.length !== 1) {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op}: ${what} must be a scalar`, {
      node: node.name,
    });
  }
  return v[0];
}

/**
 * One transform: `len` complex inputs read through `re(k)` / `im(k)` (zero beyond `n`),
 * `bins` outputs written to out[o + 2·b·stride], out[… + 1].
 */
function dft1(
  re: (k: number) => number,
  im: (k: number) => number,
  n: number,
  len: number,
  bins: number,
  inverse: boolean,
  out: Float32Array,
  o: number,
  stride: number,
): void {
  const sign = inverse ? 1 : -1;
  for (let b = 0; b < bins; b++) {
    let sr = 0, si = 0;
    for (let k = 0; k < Math.min(n, len); k++) {
      // Angle reduced modulo len first: exact for the integer product b·k.
      const a = (sign * 2 * Math.PI * ((b * k) % len)) / len;
      const c = Math.cos(a), s = Math.sin(a);
      const xr = re(k), xi = im(k);
      sr += xr * c - xi * s;
      si += xr * s + xi * c;
    }
    out[o + 2 * b * stride] = inverse ? sr / len : sr;
    out[o + 2 * b * stride + 1] = inverse ? si / len : si;
  }
}

const dft: OpImpl = (inputs, node, ctx) => {
  const xt = need(node, inputs[0], "input");
  if (xt.dtype !== "float32" && xt.dtype !== "float64") {
    throw new LowbitError("UNSUPPORTED", `DFT: dtype ${xt.dtype}`, { node: node.name });
  }
  const x = toF32(xt);
  const rank = xt.shape.length;
  const last = xt.shape[rank - 1];
  if (last !== 1 && last !== 2) {
    throw new LowbitError("SHAPE_MISMATCH", "DFT: the last dimension must be 1 or 2", {
      node: node.name,
    });
  }
  // Opset 20 moved axis to input 2 (default -2: the last signal axis); before, an attribute.
  const axisIn = ctx.opset >= 20 ? inputs[2] : undefined;
  const axis = axisIn !== undefined && axisIn.data.length > 0
    ? normAxis(scalar(node, axisIn, "axis"), rank, node)
    : ctx.opset >= 20
    ? rank - 2
    : normAxis(attrInt(node, "axis", 1), rank - 1, node);
  if (axis === rank - 1) {
    throw new LowbitError("INVALID_ARGUMENT", "DFT: the axis cannot be the real/imaginary one", {
      node: node.name,
    });
  }
  const inverse = attrInt(node, "inverse", 0) === 1;
  const onesided = attrInt(node, "onesided", 0) === 1;
  const n = xt.shape[axis];
  const len = inputs[1] !== undefined && inputs[1].data.length > 0
    ? scalar(node, inputs[1], "dft_length")
    : n;
  const bins = onesided ? Math.floor(len / 2) + 1 : len;
  const outer = size(xt.shape.slice(0, axis));
  const inner = size(xt.shape.slice(axis + 1, rank - 1));
  const shape = [...xt.shape];
  shape[axis] = bins;
  shape[rank - 1] = 2;
  const y = new Float32Array(size(shape));
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const at = (k: number) => ((o * n + k) * inner + j) * last;
      dft1(
        (k) => x[at(k)],
        (k) => (last === 2 ? x[at(k) + 1] : 0),
        n,
        len,
        bins,
        inverse,
        y,
        (o * bins * inner + j) * 2,
        inner,
      );
    }
  }
  return [{ dtype: "float32", shape, data: y }];
};

const stft: OpImpl = (inputs, node) => {
  const st = need(node, inputs[0], "signal");
  if (st.dtype !== "float32" || st.shape.length !== 3) {
    throw new LowbitError("UNSUPPORTED", "STFT: signal must be float32 [batch, length, 1|2]", {
      node: node.name,
    });
  }
  const x = st.data as Float32Array;
  const [batch, length, last] = st.shape;
  const step = scalar(node, inputs[1], "frame_step");
  const win = inputs[2] !== undefined && inputs[2].data.length > 0 ? toF32(inputs[2]) : undefined;
  const frame = inputs[3] !== undefined && inputs[3].data.length > 0
    ? scalar(node, inputs[3], "frame_length")
    : win?.length;
  if (frame === undefined || !(frame > 0) || !(step > 0) || frame > length) {
    throw new LowbitError("INVALID_ARGUMENT", "STFT: needs frame_length or window, and step > 0", {
      node: node.name,
    });
  }
  const onesided = attrInt(node, "onesided", 1) === 1;
  const bins = onesided ? Math.floor(frame / 2) + 1 : frame;
  const frames = Math.floor((length - frame) / step) + 1;
  const y = new Float32Array(batch * frames * bins * 2);
  for (let b = 0; b < batch; b++) {
    for (let f = 0; f < frames; f++) {
      const at = (k: number) => (b * length + f * step + k) * last;
      const w = (k: number) => (win ? win[k] : 1);
      dft1(
        (k) => x[at(k)] * w(k),
        (k) => (last === 2 ? x[at(k) + 1] * w(k) : 0),
        frame,
        frame,
        bins,
        false,
        y,
        (b * frames + f) * bins * 2,
        1,
      );
    }
  }
  return [{ dtype: "float32", shape: [batch, frames, bins, 2], data: y }];
};

function outType(node: Node): DType {
  const code = attrInt(node, "output_datatype", 1);
  const d = DTYPE_BY_CODE[code];
  if (d === undefined || d === "string") {
    throw new LowbitError("UNSUPPORTED", `${node.op}: output_datatype ${code}`, {
      node: node.name,
    });
  }
  return d;
}

function window(coeffs: number[]): OpImpl {
  return (inputs, node) => {
    const n = scalar(node, inputs[0], "size");
    const periodic = attrInt(node, "periodic", 1) === 1;
    const denom = periodic ? n : n - 1;
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let v = 0;
      coeffs.forEach((a, k) => {
        v += (k % 2 === 0 ? a : -a) * Math.cos((2 * Math.PI * k * i) / denom);
      });
      w[i] = v;
    }
    return [castTo({ dtype: "float32", shape: [n], data: w }, outType(node))];
  };
}

const melWeightMatrix: OpImpl = (inputs, node) => {
  const mels = scalar(node, inputs[0], "num_mel_bins");
  const len = scalar(node, inputs[1], "dft_length");
  const rate = scalar(node, inputs[2], "sample_rate");
  const lo = scalar(node, inputs[3], "lower_edge_hertz");
  const hi = scalar(node, inputs[4], "upper_edge_hertz");
  const specBins = Math.floor(len / 2) + 1;
  // ONNX's reference: mel points spaced evenly (over num_mel_bins + 2 steps), mapped back to
  // Hz and to integer DFT bins, then triangles between neighbouring points.
  const loMel = 2595 * Math.log10(1 + lo / 700), hiMel = 2595 * Math.log10(1 + hi / 700);
  const stepMel = (hiMel - loMel) / (mels + 2);
  const pts = Array.from({ length: mels + 2 }, (_, i) => {
    const hz = 700 * (Math.pow(10, (i * stepMel + loMel) / 2595) - 1);
    return Math.floor(((len + 1) * hz) / rate);
  });
  const w = new Float32Array(specBins * mels);
  const set = (j: number, i: number, v: number) => {
    if (j >= 0 && j < specBins) w[j * mels + i] = v;
  };
  for (let i = 0; i < mels; i++) {
    const l = pts[i], c = pts[i + 1], r = pts[i + 2];
    if (c === l) set(c, i, 1);
    else for (let j = l; j <= c; j++) set(j, i, (j - l) / (c - l));
    if (r > c) { for (let j = c; j < r; j++) set(j, i, (r - j) / (r - c)); }
  }
  return [castTo({ dtype: "float32", shape: [specBins, mels], data: w }, outType(node))];
};

/**
 * The signal ops, by name.
 *
 * @example
 * ```ts
 * import { signalOps } from "./signal.ts";
 * const node = { name: "d", op: "DFT", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} };
 * // [1, 2, 3, 4] as [batch 1, n 4, real]: DFT = [10, -2+2i, -2, -2-2i]
 * const x = { dtype: "float32" as const, shape: [1, 4, 1], data: new Float32Array([1, 2, 3, 4]) };
 * const [y] = await signalOps.DFT([x], node, { opset: 17 });
 * const want = [10, 0, -2, 2, -2, 0, -2, -2];
 * if (want.some((v, i) => Math.abs((y.data[i] as number) - v) > 1e-5)) throw new Error();
 * ```
 */
export const signalOps: OpTable<
  "DFT" | "STFT" | "HannWindow" | "HammingWindow" | "BlackmanWindow" | "MelWeightMatrix"
> = {
  DFT: dft,
  STFT: stft,
  HannWindow: window([0.5, 0.5]),
  HammingWindow: window([25 / 46, 21 / 46]),
  BlackmanWindow: window([0.42, 0.5, 0.08]),
  MelWeightMatrix: melWeightMatrix,
};
