/**
 * Datasets in memory: samples for every model input, batch first, sliced into batches and
 * checked against a model's inputs. No file system here (the browser's quantize page uses it);
 * reading `.npy` files and image folders is `data.ts`.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { TensorData, ValueInfo } from "@lowbit/graph";

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

/**
 * The sample axis of a model input: its first dimension that is not a fixed size (0 if none).
 *
 * @param vi the model input
 * @returns the axis
 *
 * @example
 * ```ts
 * import { sampleAxis } from "./dataset.ts";
 * if (sampleAxis({ name: "h", dtype: "float32", shape: [2, "N", 64] }) !== 1) throw new Error();
 * ```
 */
export function sampleAxis(vi: ValueInfo): number {
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
