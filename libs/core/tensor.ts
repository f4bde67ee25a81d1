/**
 * The float tensor every core algorithm works on: a shape and row-major data.
 *
 * @module
 */

/** A dense row-major float32 tensor. */
export interface Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Row-major values; `data.length` equals the product of `shape`. */
  readonly data: Float32Array;
}

/**
 * Builds a tensor, checking that the data length matches the shape.
 *
 * @param data row-major values
 * @param shape dimensions
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { tensor } from "@lowbit/core";
 * const t = tensor(new Float32Array(6), [2, 3]);
 * if (t.shape[1] !== 3) throw new Error();
 * ```
 */
export function tensor(data: Float32Array, shape: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) {
    throw new RangeError(`tensor: shape [${shape}] holds ${n} values, data has ${data.length}`);
  }
  return { shape: [...shape], data };
}

/**
 * Number of elements of a shape.
 *
 * @param shape dimensions
 * @returns their product (1 for a scalar)
 *
 * @example
 * ```ts
 * import { numel } from "@lowbit/core";
 * if (numel([2, 3, 4]) !== 24) throw new Error();
 * ```
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
