/**
 * Finding a denoiser's inputs: the time input (the per-sample scalar, shape `[batch]` or
 * `[batch, 1]`) and the image input (the other, higher-rank, float input), or the ones named.
 * Also time tensors in the time input's element type.
 *
 * @module
 */

import { type GraphView, LowbitError } from "@lowbit/core";
import type { TensorData } from "@lowbit/graph";

/** The inputs of a denoiser ε(x_t, t). */
export interface DiffusionInputs {
  /** The noisy image x_t. */
  readonly image: string;
  /** The timestep t. */
  readonly time: string;
  /** Element type of the time input ("float32", "int64", ...). */
  readonly timeDtype: string;
  /** Static shape of the image input (symbolic dimensions as strings), if declared. */
  readonly imageShape?: readonly unknown[];
  /** Declared shape of the time input, if any. */
  readonly timeShape?: readonly unknown[];
}

const isScalarPerSample = (shape?: readonly unknown[]): boolean =>
  !!shape && (shape.length === 1 || (shape.length === 2 && shape[1] === 1) || shape.length === 0);

/**
 * The time and image inputs of a graph.
 *
 * @param graph the model's graph
 * @param opts `timeInput` / `imageInput`: names given by the user; `file`: named in errors
 * @returns the inputs
 *
 * @example
 * ```ts
 * import { findDiffusionInputs } from "@lowbit/diffusion";
 * const g = { nodes: [], outputs: [], initializers: new Map(), inputs: [
 *   { name: "x", dtype: "float32", shape: ["b", 1, 8, 8] },
 *   { name: "t", dtype: "int64", shape: ["b"] }] };
 * const r = findDiffusionInputs(g);
 * if (r.time !== "t" || r.image !== "x" || r.timeDtype !== "int64") throw new Error();
 * ```
 */
export function findDiffusionInputs(
  graph: GraphView,
  opts: { timeInput?: string; imageInput?: string; file?: string } = {},
): DiffusionInputs {
  const subject = opts.file ? { file: opts.file } : {};
  const names = graph.inputs.map((i) => i.name);
  const named = (n: string, what: string) => {
    const v = graph.inputs.find((i) => i.name === n);
    if (!v) {
      throw new LowbitError(
        "UNKNOWN_NAME",
        `the model has no input '${n}' (${what}); its inputs: ${names.join(", ")}`,
        subject,
      );
    }
    return v;
  };
  const time = opts.timeInput !== undefined
    ? named(opts.timeInput, "--time-input")
    : graph.inputs.find((i) => isScalarPerSample(i.shape));
  if (!time) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `the model has no time input (a per-sample scalar input, shape [batch]); its inputs: ${
        graph.inputs.map((i) => `${i.name} [${i.shape ?? "?"}]`).join(", ")
      }; name it with --time-input`,
      subject,
    );
  }
  const image = opts.imageInput !== undefined
    ? named(opts.imageInput, "image input")
    : graph.inputs.find((i) => i !== time && (i.shape?.length ?? 0) >= 2);
  if (!image) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `the model has no image input besides the time input '${time.name}'; its inputs: ${
        names.join(", ")
      }`,
      subject,
    );
  }
  return {
    image: image.name,
    time: time.name,
    timeDtype: time.dtype,
    ...(image.shape ? { imageShape: image.shape } : {}),
    ...(time.shape ? { timeShape: time.shape } : {}),
  };
}

/**
 * A time tensor of `n` samples, all at timestep `t` (or one per sample), in the input's type.
 *
 * @param ts one timestep per sample
 * @param dtype the time input's element type
 * @param shape the time input's declared shape (rank 1 or `[batch, 1]`)
 * @returns the tensor
 *
 * @example
 * ```ts
 * import { timeTensor } from "@lowbit/diffusion";
 * const t = timeTensor([3, 4], "int64");
 * if (t.data[1] !== 4n || t.shape.join() !== "2") throw new Error();
 * ```
 */
export function timeTensor(
  ts: ArrayLike<number>,
  dtype: string,
  shape?: readonly unknown[],
): TensorData {
  const n = ts.length;
  const dims = shape?.length === 2 ? [n, 1] : shape?.length === 0 ? [] : [n];
  if (dtype === "int64") {
    return { dtype: "int64", shape: dims, data: BigInt64Array.from(Array.from(ts, BigInt)) };
  }
  if (dtype === "int32") return { dtype: "int32", shape: dims, data: Int32Array.from(ts) };
  if (dtype === "float32") return { dtype: "float32", shape: dims, data: Float32Array.from(ts) };
  if (dtype === "float64") return { dtype: "float64", shape: dims, data: Float64Array.from(ts) };
  throw new LowbitError(
    "UNSUPPORTED",
    `a time input of type ${dtype} (supported: float32, float64, int32, int64)`,
  );
}

/**
 * The timesteps of a time tensor, as numbers (one per sample).
 *
 * @param t a time tensor (any numeric type)
 * @returns the timesteps
 *
 * @example
 * ```ts
 * import { timesOf } from "@lowbit/diffusion";
 * if (timesOf({ data: BigInt64Array.of(7n) })[0] !== 7) throw new Error();
 * ```
 */
export function timesOf(t: { readonly data: ArrayLike<unknown> }): Float64Array {
  return Float64Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}
