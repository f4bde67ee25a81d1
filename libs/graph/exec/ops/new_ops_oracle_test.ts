// The ops added for issue 14 against onnxruntime-web on inputs and attribute combinations beyond
// ONNX's node tests: sampling coordinates outside the image, every padding mode, RoiAlign's
// modes, NMS corner cases, cubic Resize variants, Einsum equations, scatter reductions.

import type { Attr, TensorData } from "../../ir.ts";
import { pattern } from "../_testing.ts";
import { againstOrt } from "./_ort_oracle.ts";

const int = (v: number): Attr => ({ kind: "int", value: v });
const str = (v: string): Attr => ({ kind: "string", value: v });
const ints = (v: number[]): Attr => ({ kind: "ints", value: v });
const f = (v: number): Attr => ({ kind: "float", value: v });
const i64 = (v: number[], shape = [v.length]): TensorData => ({
  dtype: "int64",
  shape,
  data: BigInt64Array.from(v, (x) => BigInt(x)),
});
const f32 = (v: number[], shape = [v.length]): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});

Deno.test("GridSample: modes × padding × align_corners, grid beyond [-1, 1]", async () => {
  const x = pattern([2, 3, 4, 5], 3);
  const grid = pattern([2, 3, 4, 2], 5, 1.4);
  for (const mode of ["bilinear", "nearest", "bicubic"]) {
    for (const pad of ["zeros", "border", "reflection"]) {
      for (const align of [0, 1]) {
        await againstOrt("GridSample", 16, [x, grid], {
          mode: str(mode),
          padding_mode: str(pad),
          align_corners: int(align),
        });
      }
    }
  }
});

Deno.test("RoiAlign: avg / max, both coordinate modes, sampling ratios", async () => {
  const x = pattern([2, 2, 8, 7], 7, 3);
  const rois = f32([0, 0, 6, 5, 1.5, 2.2, 4.1, 7.3, -1, -0.5, 3, 2, 2, 1, 2.5, 1.5], [4, 4]);
  const idx = i64([0, 1, 1, 0]);
  for (const mode of ["avg", "max"]) {
    for (const ctm of ["half_pixel", "output_half_pixel"]) {
      for (const ratio of [0, 2]) {
        await againstOrt("RoiAlign", 16, [x, rois, idx], {
          mode: str(mode),
          coordinate_transformation_mode: str(ctm),
          sampling_ratio: int(ratio),
          output_height: int(3),
          output_width: int(2),
          spatial_scale: f(0.9),
        });
      }
    }
  }
});

Deno.test("NonMaxSuppression: corners flipped, center boxes, thresholds, several classes", async () => {
  const boxes = f32([
    0,
    0,
    1,
    1,
    0,
    0.1,
    1,
    1.1,
    1,
    1,
    0,
    0,
    0,
    10,
    1,
    11,
    0.5,
    0.5,
    2,
    2,
    0,
    10.1,
    1,
    11.1,
  ], [1, 6, 4]);
  const scores = f32([0.9, 0.75, 0.6, 0.95, 0.5, 0.3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [1, 2, 6]);
  for (const center of [0, 1]) {
    for (const [iou, score] of [[0.5, 0], [0.2, 0.35], [0.9, 0]]) {
      await againstOrt(
        "NonMaxSuppression",
        11,
        [boxes, scores, i64([3], [1]), f32([iou], [1]), f32([score], [1])],
        { center_point_box: int(center) },
      );
    }
  }
});

Deno.test("Resize cubic: coefficients, exclude_outside, coordinate modes, sizes", async () => {
  const x = pattern([1, 2, 5, 6], 9);
  for (const ctm of ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]) {
    for (const [a, ex] of [[-0.75, 0], [-0.5, 1]]) {
      const attrs = {
        mode: str("cubic"),
        coordinate_transformation_mode: str(ctm),
        cubic_coeff_a: f(a),
        exclude_outside: int(ex),
      };
      await againstOrt("Resize", 13, [x, undefined, undefined, i64([1, 2, 9, 4])], attrs);
      await againstOrt("Resize", 13, [x, undefined, f32([1, 1, 2, 0.5])], attrs);
    }
  }
});

Deno.test("Einsum, CumSum, Trilu, GatherND, ScatterND, DepthToSpace", async () => {
  const eq = (e: string) => ({ equation: str(e) });
  const a = pattern([2, 3, 4], 1), b = pattern([2, 4, 5], 2), sq = pattern([3, 3], 4);
  await againstOrt("Einsum", 12, [a, b], eq("bij,bjk->bik"));
  await againstOrt("Einsum", 12, [a], eq("bij->jb"));
  await againstOrt("Einsum", 12, [sq], eq("ii->i"));
  await againstOrt("Einsum", 12, [sq], eq("ii"));
  await againstOrt("Einsum", 12, [a, pattern([4], 3)], eq("...j,j->..."));
  for (const [exclusive, reverse] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
    await againstOrt("CumSum", 14, [a, i64([1], [])], {
      exclusive: int(exclusive),
      reverse: int(reverse),
    });
  }
  for (const k of [-1, 0, 2]) {
    for (const upper of [0, 1]) {
      await againstOrt("Trilu", 14, [a, i64([k], [])], { upper: int(upper) });
    }
  }
  const data = pattern([2, 3, 4], 6);
  await againstOrt("GatherND", 13, [data, i64([1, 2, 0, -1, 1, 0], [2, 1, 3])], {});
  await againstOrt("GatherND", 13, [data, i64([2, 0], [2, 1])], { batch_dims: int(1) });
  for (const reduction of ["none", "add", "mul"]) {
    await againstOrt(
      "ScatterND",
      16,
      [data, i64([1, 2, 0, 1, 1, 2], [3, 2]), pattern([3, 4], 8)],
      { reduction: str(reduction) },
    );
  }
  for (const mode of ["DCR", "CRD"]) {
    await againstOrt("DepthToSpace", 13, [pattern([1, 8, 2, 3], 10)], {
      blocksize: int(2),
      mode: str(mode),
    });
  }
  await againstOrt("SpaceToDepth", 13, [pattern([1, 2, 4, 6], 12)], { blocksize: int(2) });
});

Deno.test("3-D Conv (groups, strides, dilations, pads), ConvTranspose, pools", async () => {
  const x = pattern([1, 4, 5, 6, 7], 13);
  await againstOrt("Conv", 11, [x, pattern([6, 2, 2, 3, 2], 14), pattern([6], 15)], {
    group: int(2),
    strides: ints([1, 2, 2]),
    dilations: ints([2, 1, 1]),
    pads: ints([1, 0, 1, 0, 1, 1]),
  });
  await againstOrt("Conv", 11, [x, pattern([2, 4, 3, 3, 3], 16)], { auto_pad: str("SAME_UPPER") });
  await againstOrt("ConvTranspose", 11, [
    pattern([1, 4, 3, 2, 3], 17),
    pattern([4, 1, 2, 3, 2], 18),
  ], {
    group: int(2),
    strides: ints([2, 1, 2]),
    pads: ints([0, 1, 0, 1, 0, 1]),
    output_padding: ints([1, 0, 0]),
  });
  await againstOrt("MaxPool", 12, [x], {
    kernel_shape: ints([2, 3, 2]),
    strides: ints([2, 1, 2]),
    ceil_mode: int(1),
  }, { outputs: 2 });
  await againstOrt("AveragePool", 11, [x], {
    kernel_shape: ints([3, 2, 3]),
    pads: ints([1, 0, 1, 1, 1, 0]),
    count_include_pad: int(0),
  });
  await againstOrt("LpPool", 11, [x], { kernel_shape: ints([2, 2, 2]), p: int(3) });
});

Deno.test("losses: weights, ignore_index, reductions, spatial dimensions", async () => {
  const x = pattern([3, 4, 2, 2], 21, 2);
  const t = i64([0, 1, 3, 2, 1, 1, 0, 3, 2, 2, 0, 1], [3, 2, 2]);
  const w = f32([0.5, 1, 2, 1.5]);
  for (const reduction of ["none", "sum", "mean"]) {
    for (const ignore of [undefined, 1]) {
      const attrs: Record<string, Attr> = { reduction: str(reduction) };
      if (ignore !== undefined) attrs.ignore_index = int(ignore);
      await againstOrt("SoftmaxCrossEntropyLoss", 13, [x, t, w], attrs, { outputs: 2 });
      await againstOrt("SoftmaxCrossEntropyLoss", 13, [x, t], attrs);
      await againstOrt("NegativeLogLikelihoodLoss", 13, [x, t, w], attrs);
    }
  }
});

Deno.test("gather / scatter family, OneHot, Compress, NonZero, Unique", async () => {
  const d = pattern([3, 4], 22);
  const idx = i64([0, -1, 2, 1, 1, 0, 2, 3], [2, 4]);
  await againstOrt("GatherElements", 13, [d, idx], { axis: int(1) });
  await againstOrt("GatherElements", 13, [d, i64([2, 0, 1, 0, -1, 2, 0, 1], [2, 4])], {
    axis: int(0),
  });
  for (const reduction of ["none", "add", "mul", "max", "min"]) {
    await againstOrt("ScatterElements", 18, [d, i64([1, 0, 2, 1], [1, 4]), pattern([1, 4], 23)], {
      axis: int(0),
      reduction: str(reduction),
    });
    await againstOrt("ScatterND", 18, [d, i64([2, 0, 2], [3, 1]), pattern([3, 4], 24)], {
      reduction: str(reduction),
    });
  }
  await againstOrt("OneHot", 11, [i64([0, 3, -1, 2], [2, 2]), i64([4], [1]), f32([-1, 5])], {
    axis: int(1),
  });
  const cond: TensorData = { dtype: "bool", shape: [3], data: Uint8Array.from([1, 0, 1]) };
  await againstOrt("Compress", 11, [d, cond], { axis: int(0) });
  await againstOrt("Compress", 11, [d, cond], {});
  await againstOrt("NonZero", 13, [f32([0, 1, 0, 2, 3, 0], [2, 3])], {});
  const u = f32([2, 1, 1, 3, 4, 3, 2, 2], [4, 2]);
  for (const sorted of [0, 1]) {
    await againstOrt("Unique", 11, [u], { sorted: int(sorted) }, { outputs: 4 });
    await againstOrt("Unique", 11, [u], { sorted: int(sorted), axis: int(0) }, { outputs: 4 });
  }
});

Deno.test("elementwise additions: trig, activations, Hardmax, IsInf, Mod, reductions, ArgMin", async () => {
  const x = pattern([2, 3, 4], 25, 0.9);
  for (const op of ["Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Atanh", "Softsign"]) {
    await againstOrt(op, 13, [x], {});
  }
  await againstOrt(
    "Acosh",
    13,
    [pattern([5], 26, 3)].map((t) => ({
      ...t,
      data: (t.data as Float32Array).map((v) => 1 + Math.abs(v)),
    })),
    {},
  );
  await againstOrt("Selu", 6, [x], { alpha: f(1.5), gamma: f(0.8) });
  await againstOrt("Celu", 12, [x], { alpha: f(0.7) });
  await againstOrt("Shrink", 9, [x], { lambd: f(0.3), bias: f(0.1) });
  await againstOrt("ThresholdedRelu", 10, [x], { alpha: f(0.2) });
  await againstOrt("Mish", 18, [pattern([10], 27, 30)], {});
  for (const axis of [0, 1, -1]) await againstOrt("Hardmax", 13, [x], { axis: int(axis) });
  await againstOrt("Hardmax", 11, [x], { axis: int(1) });
  await againstOrt("Mod", 13, [pattern([6], 28, 7), f32([2, -2, 3, -3, 1.5, -0.5])], {
    fmod: int(1),
  });
  await againstOrt("Mod", 13, [i64([-7, 7, -7, 7, 0, 5]), i64([3, 3, -3, -3, 2, -5])], {});
  for (
    const op of [
      "ReduceL1",
      "ReduceL2",
      "ReduceLogSum",
      "ReduceLogSumExp",
      "ReduceProd",
      "ReduceSumSquare",
    ]
  ) {
    const pos = { ...x, data: (x.data as Float32Array).map((v) => Math.abs(v) + 0.1) };
    await againstOrt(op, 13, [pos], { axes: ints([0, 2]), keepdims: int(0) });
    await againstOrt(op, 13, [pos], {});
  }
  await againstOrt("ArgMin", 13, [f32([1, 0, 0, 2, 0, 3], [2, 3])], {
    axis: int(1),
    select_last_index: int(1),
  });
  await againstOrt("LRN", 13, [pattern([1, 5, 2, 2], 29)], {
    size: int(3),
    alpha: f(0.01),
    beta: f(0.6),
    bias: f(1.5),
  });
  await againstOrt("MeanVarianceNormalization", 13, [pattern([2, 3, 2, 2], 30)], {
    axes: ints([1, 2, 3]),
  });
  await againstOrt("Det", 11, [pattern([2, 3, 3], 31)], {});
});

Deno.test("signal ops: DFT (inverse, onesided, dft_length), STFT, windows", async () => {
  const s = pattern([2, 8, 1], 33), c = pattern([2, 8, 2], 34);
  await againstOrt("DFT", 17, [s], { onesided: int(1) });
  await againstOrt("DFT", 17, [c], { inverse: int(1) });
  await againstOrt("DFT", 17, [s, i64([10], [])], {});
  await againstOrt("STFT", 17, [pattern([1, 40, 1], 35), i64([6], [])], {}, {
    consts: [pattern([12], 36), i64([12], [])],
  });
  for (const op of ["HannWindow", "HammingWindow", "BlackmanWindow"]) {
    for (const periodic of [0, 1]) {
      await againstOrt(op, 17, [], { periodic: int(periodic) }, { consts: [i64([9], [])] });
    }
  }
});

Deno.test("EyeLike, ReverseSequence, BitShift, IsInf / IsNaN, Mean, CastLike, TfIdfVectorizer", async () => {
  await againstOrt("EyeLike", 9, [pattern([3, 5], 40)], { k: int(2) });
  await againstOrt("EyeLike", 9, [pattern([4, 3], 41)], { k: int(-1), dtype: int(7) });
  await againstOrt("ReverseSequence", 10, [pattern([4, 3, 2], 42), i64([4, 1, 3])], {
    batch_axis: int(1),
    time_axis: int(0),
  });
  await againstOrt("ReverseSequence", 10, [pattern([3, 4], 43), i64([1, 2, 3])], {
    batch_axis: int(0),
    time_axis: int(1),
  });
  const u8 = (v: number[]): TensorData => ({
    dtype: "uint8",
    shape: [v.length],
    data: Uint8Array.from(v),
  });
  for (const direction of ["LEFT", "RIGHT"]) {
    await againstOrt("BitShift", 11, [u8([1, 16, 255, 7]), u8([1, 2, 3, 0])], {
      direction: str(direction),
    });
  }
  const special = f32([1, Infinity, -Infinity, NaN, 0]);
  await againstOrt("IsNaN", 13, [special], {});
  for (const [neg, pos] of [[1, 1], [0, 1], [1, 0]]) {
    await againstOrt("IsInf", 10, [special], {
      detect_negative: int(neg),
      detect_positive: int(pos),
    });
  }
  await againstOrt("Mean", 13, [pattern([2, 3], 44), pattern([3], 45), pattern([2, 1], 46)], {});
  await againstOrt("CastLike", 15, [pattern([4], 47, 9)], {}, { consts: [i64([0])] });
  const tokens: TensorData = {
    dtype: "int32",
    shape: [2, 6],
    data: Int32Array.from([2, 3, 5, 4, 5, 6, 7, 8, 7, 5, 4, 4]),
  };
  for (const mode of ["TF", "IDF", "TFIDF"]) {
    await againstOrt("TfIdfVectorizer", 9, [tokens], {
      mode: str(mode),
      min_gram_length: int(1),
      max_gram_length: int(2),
      max_skip_count: int(2),
      ngram_counts: ints([0, 4]),
      ngram_indexes: ints([0, 1, 2, 3, 4, 5, 6]),
      pool_int64s: ints([2, 3, 5, 4, 5, 6, 7, 8, 6, 7]),
      weights: { kind: "floats", value: [1, 2, 0.5, 1, 3, 1, 0.25] },
    });
  }
});
