/**
 * Scalar losses over logits for autodiff: cross-entropy with labels, or the KL
 * divergence to reference (float-model) probabilities when there are no labels.
 * Both are means over the batch (axis 0) and return the seed gradient with
 * respect to the logits.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { T64 } from "./ops.ts";

/** Which scalar loss to differentiate. */
export type LossSpec =
  | { readonly kind: "cross-entropy"; readonly labels: ArrayLike<number> }
  | { readonly kind: "kl"; readonly target: T64 };

/** A loss value and its gradient with respect to the logits. */
export interface LossValue {
  /** Mean loss over the batch. */
  loss: number;
  /** d loss / d logits, same shape as the logits. */
  seed: T64;
}

function logSoftmaxRows(x: T64): { rows: number; c: number; ls: Float64Array } {
  const c = x.shape[x.shape.length - 1];
  const rows = x.data.length / c;
  const ls = new Float64Array(x.data.length);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let k = 0; k < c; k++) m = Math.max(m, x.data[r * c + k]);
    let z = 0;
    for (let k = 0; k < c; k++) z += Math.exp(x.data[r * c + k] - m);
    const lz = Math.log(z) + m;
    for (let k = 0; k < c; k++) ls[r * c + k] = x.data[r * c + k] - lz;
  }
  return { rows, c, ls };
}

/**
 * Evaluates a loss on logits (last axis = classes) and its gradient.
 *
 * @param logits model outputs, shape [..., classes]
 * @param spec cross-entropy with one label per row, or KL(target ‖ softmax(logits)) with target probabilities
 * @returns the mean loss and d loss / d logits
 *
 * @example
 * ```ts
 * import { evalLoss } from "@lowbit/graph/autodiff";
 * const { loss } = evalLoss({ shape: [1, 2], data: Float64Array.of(0, 0) }, { kind: "cross-entropy", labels: [1] });
 * if (Math.abs(loss - Math.LN2) > 1e-12) throw new Error();
 * ```
 */
export function evalLoss(logits: T64, spec: LossSpec): LossValue {
  const { rows, c, ls } = logSoftmaxRows(logits);
  const seed = new Float64Array(ls.length);
  let loss = 0;
  if (spec.kind === "cross-entropy") {
    if (spec.labels.length !== rows) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${spec.labels.length} labels for ${rows} rows of logits`,
      );
    }
    for (let r = 0; r < rows; r++) {
      const y = spec.labels[r];
      if (!(y >= 0 && y < c && Number.isInteger(y))) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `label ${y} at row ${r} is not a class in 0..${c - 1}`,
        );
      }
      loss -= ls[r * c + y];
      for (let k = 0; k < c; k++) {
        seed[r * c + k] = (Math.exp(ls[r * c + k]) - (k === y ? 1 : 0)) / rows;
      }
    }
  } else {
    const p = spec.target.data;
    if (p.length !== ls.length) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `KL target has ${p.length} values, logits ${ls.length}`,
      );
    }
    for (let i = 0; i < ls.length; i++) {
      if (p[i] > 0) loss += p[i] * (Math.log(p[i]) - ls[i]);
      seed[i] = (Math.exp(ls[i]) - p[i]) / rows;
    }
  }
  return { loss: loss / rows, seed: { shape: [...logits.shape], data: seed } };
}

/**
 * Softmax over the last axis, e.g. to turn float-model logits into a KL target.
 *
 * @param logits shape [..., classes]
 * @returns probabilities of the same shape
 *
 * @example
 * ```ts
 * import { softmaxRows } from "@lowbit/graph/autodiff";
 * const p = softmaxRows({ shape: [1, 2], data: Float64Array.of(1, 1) });
 * if (Math.abs(p.data[0] - 0.5) > 1e-15) throw new Error();
 * ```
 */
export function softmaxRows(logits: T64): T64 {
  const { ls } = logSoftmaxRows(logits);
  return { shape: [...logits.shape], data: ls.map(Math.exp) };
}
