// Geometry of sliding-window ops (Conv, ConvTranspose, pools): spatial sizes,
// strides, dilations, pads after auto_pad. 1-D inputs are handled as 2-D with
// a height of 1.

import { LowbitError } from "@lowbit/core";
import type { Node } from "../../ir.ts";
import { attrInts, attrString } from "../_tensor.ts";

/** Resolved 2-D window geometry. */
export interface Window2d {
  /** Input height / width. */
  h: number;
  w: number;
  /** Kernel height / width. */
  kh: number;
  kw: number;
  /** Strides. */
  sh: number;
  sw: number;
  /** Dilations. */
  dh: number;
  dw: number;
  /** Pads: top, left, bottom, right. */
  pt: number;
  pl: number;
  pb: number;
  pr: number;
  /** Output height / width. */
  oh: number;
  ow: number;
}

/** The window of a 1×1 convolution over an h×w input: stride 1, no dilation, no pads. */
export function pointwiseWindow(h: number, w: number): Window2d {
  return {
    h,
    w,
    kh: 1,
    kw: 1,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    pt: 0,
    pl: 0,
    pb: 0,
    pr: 0,
    oh: h,
    ow: w,
  };
}

/** Spatial dims of an N×C×spatial shape as [h, w] (1-D → [1, w]); throws beyond 2-D. */
export function spatial2d(shape: readonly number[], node: Node): [number, number] {
  if (shape.length === 4) return [shape[2], shape[3]];
  if (shape.length === 3) return [1, shape[2]];
  throw new LowbitError(
    "UNSUPPORTED",
    `${node.op}: only 1-D and 2-D spatial inputs are supported, got shape [${shape}]`,
    { node: node.name },
  );
}

function pad2(v: number[] | undefined, nd: number, def: number): number[] {
  if (v === undefined) return new Array<number>(nd).fill(def);
  return v;
}

/**
 * Resolves window geometry for a forward (Conv / pool) op.
 * `kernel` is [kh, kw] (1-D: [1, k]); `ceil` rounds output sizes up (pools).
 */
export function forwardWindow(
  node: Node,
  inShape: readonly number[],
  kernel: [number, number],
  ceil = false,
): Window2d {
  const [h, w] = spatial2d(inShape, node);
  const nd = inShape.length - 2;
  const strides = pad2(attrInts(node, "strides"), nd, 1);
  const dil = pad2(attrInts(node, "dilations"), nd, 1);
  let pads = pad2(attrInts(node, "pads"), 2 * nd, 0);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  const to2 = (v: number[], d: number): [number, number] => (nd === 1 ? [d, v[0]] : [v[0], v[1]]);
  const [sh, sw] = to2(strides, 1);
  const [dh, dw] = to2(dil, 1);
  const [kh, kw] = kernel;
  const ins = [h, w], ks = [kh, kw], ss = [sh, sw], ds = [dh, dw];
  const begin = [0, 0], end = [0, 0], out = [0, 0];
  if (nd === 1) pads = [0, pads[0], 0, pads[1]];
  for (let i = 0; i < 2; i++) {
    const ext = (ks[i] - 1) * ds[i] + 1;
    if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      out[i] = Math.ceil(ins[i] / ss[i]);
      const total = Math.max(0, (out[i] - 1) * ss[i] + ext - ins[i]);
      begin[i] = autoPad === "SAME_UPPER" ? Math.floor(total / 2) : Math.ceil(total / 2);
      end[i] = total - begin[i];
      continue;
    }
    if (autoPad === "VALID") {
      begin[i] = end[i] = 0;
    } else if (autoPad === "NOTSET") {
      begin[i] = pads[i];
      end[i] = pads[i + 2];
    } else {
      throw new LowbitError("UNSUPPORTED", `${node.op}: auto_pad '${autoPad}'`, {
        node: node.name,
      });
    }
    const span = ins[i] + begin[i] + end[i] - ext;
    out[i] = ceil ? Math.ceil(span / ss[i]) + 1 : Math.floor(span / ss[i]) + 1;
    // A window may not start inside the end padding only (PyTorch / ONNX rule).
    if (ceil && (out[i] - 1) * ss[i] >= ins[i] + begin[i]) out[i]--;
  }
  if (out[0] <= 0 || out[1] <= 0) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: input [${inShape}] is smaller than the kernel [${kernel}]`,
      { node: node.name },
    );
  }
  return {
    h,
    w,
    kh,
    kw,
    sh,
    sw,
    dh,
    dw,
    pt: begin[0],
    pl: begin[1],
    pb: end[0],
    pr: end[1],
    oh: out[0],
    ow: out[1],
  };
}
