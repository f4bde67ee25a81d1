/**
 * The closed set of operators the executor runs, and the shape of one op's
 * implementation. Dispatch goes through a `Record<OpName, OpImpl>` so that a
 * name without an implementation is a compile error.
 *
 * @module
 */

import type { FloatKernels } from "@lowbit/kernels";
import type { Quantizer } from "@lowbit/core";
import type { Graph, Node, TensorData } from "../../ir.ts";

/** Every operator the executor implements (default ONNX domain, plus lowbit's fused ops). */
export const OP_NAMES = [
  // elementwise
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Min",
  "Max",
  "Mod",
  "Equal",
  "Greater",
  "GreaterOrEqual",
  "Less",
  "LessOrEqual",
  "And",
  "Or",
  "Xor",
  "Not",
  "Where",
  "Sqrt",
  "Exp",
  "Log",
  "Neg",
  "Abs",
  "Reciprocal",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Sin",
  "Cos",
  "Erf",
  "Sum",
  // activation
  "Relu",
  "LeakyRelu",
  "PRelu",
  "Elu",
  "Clip",
  "Sigmoid",
  "HardSigmoid",
  "HardSwish",
  "Tanh",
  "Gelu",
  "Softplus",
  "Softmax",
  "LogSoftmax",
  // conv / pool
  "Conv",
  "ConvTranspose",
  "MaxPool",
  "AveragePool",
  "GlobalAveragePool",
  "GlobalMaxPool",
  // matmul
  "Gemm",
  "MatMul",
  // normalization
  "BatchNormalization",
  "LayerNormalization",
  "InstanceNormalization",
  // reduce
  "ReduceMean",
  "ReduceSum",
  "ReduceMax",
  "ReduceMin",
  "ArgMax",
  "TopK",
  // shape / tensor manipulation
  "Concat",
  "Split",
  "Slice",
  "Gather",
  "Reshape",
  "Flatten",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Expand",
  "Shape",
  "Cast",
  "Constant",
  "ConstantOfShape",
  "Identity",
  "Dropout",
  "Range",
  "Tile",
  "Pad",
  "Resize",
  // gather / scatter (gather_scatter.ts)
  "GatherElements",
  "GatherND",
  "ScatterElements",
  "Scatter",
  "ScatterND",
  "NonZero",
  "Compress",
  "OneHot",
  // more reductions (reduce_more.ts)
  "ReduceL1",
  "ReduceL2",
  "ReduceLogSum",
  "ReduceLogSumExp",
  "ReduceProd",
  "ReduceSumSquare",
  "ArgMin",
  // losses (loss.ts)
  "NegativeLogLikelihoodLoss",
  "SoftmaxCrossEntropyLoss",
  // more math (math_extra.ts)
  "Tan",
  "Asin",
  "Acos",
  "Atan",
  "Sinh",
  "Cosh",
  "Asinh",
  "Acosh",
  "Atanh",
  "IsInf",
  "IsNaN",
  "BitShift",
  "Mean",
  "Selu",
  "Celu",
  "Softsign",
  "Shrink",
  "ThresholdedRelu",
  "Mish",
  "Hardmax",
  "Det",
  "BitwiseAnd",
  "BitwiseOr",
  "BitwiseXor",
  "BitwiseNot",
  // more tensor ops (tensor_extra.ts)
  "Trilu",
  "CumSum",
  "Size",
  "EyeLike",
  "CastLike",
  "Unique",
  "DepthToSpace",
  "SpaceToDepth",
  "ReverseSequence",
  "Einsum",
  // detection / sampling (detection.ts)
  "NonMaxSuppression",
  "RoiAlign",
  "GridSample",
  // N-D windows (window_nd.ts)
  "LpPool",
  "MaxUnpool",
  "GlobalLpPool",
  // more normalisation (normalization_extra.ts)
  "LRN",
  "MeanVarianceNormalization",
  "GroupNormalization",
  "LpNormalization",
  // signal processing (signal.ts)
  "DFT",
  "STFT",
  "HannWindow",
  "HammingWindow",
  "BlackmanWindow",
  "MelWeightMatrix",
  // optimizer updates, domain ai.onnx.preview.training (training.ts)
  "Adagrad",
  "Momentum",
  "Adam",
  // text (text.ts)
  "TfIdfVectorizer",
  "StringNormalizer",
  // deprecated form of Resize (resize.ts)
  "Upsample",
  // control flow (controlflow.ts)
  "If",
  "Loop",
  "Scan",
  // recurrent (rnn.ts)
  "LSTM",
  "GRU",
  "RNN",
  // quantization
  "QuantizeLinear",
  "DequantizeLinear",
  // onnxruntime's quantizer output, default domain (ort_quant.ts)
  "DynamicQuantizeLinear",
  "MatMulInteger",
  "ConvInteger",
  "QLinearConv",
  "QLinearMatMul",
  // lowbit fused quantized ops (domain "lowbit"), produced by `fuseQdq`
  "QGemmFused",
  "QConvFused",
  "MinifloatGemmFused",
  // QuantizeLinear → DequantizeLinear with the same per-tensor scale / zero point (domain
  // "lowbit"), produced by the executor's fusion
  "QdqFused",
  // Concat → QuantizeLinear → DequantizeLinear (domain "lowbit"): the pair written straight into
  // the concatenation, produced by the executor's fusion
  "ConcatQdqFused",
  // lowbit fused pointwise chain (domain "lowbit"), produced by the executor's fusion
  "PointwiseFused",
  // lowbit fused Mul → Add and Resize → Add (domain "lowbit"), produced by the executor's fusion
  "MulAddFused",
  "ResizeAddFused",
  // lowbit fused Add of two tensors → pointwise steps [→ QuantizeLinear to centred codes]
  "AddFused",
  // a quantization point run through a registered quantizer (domain "lowbit"), written by
  // `materializeQuantized` for points QDQ ONNX cannot express
  "FakeQuant",
] as const;

/** Name of an operator the executor implements. */
export type OpName = typeof OP_NAMES[number];

/** What an op sees besides its inputs and node. */
export interface OpContext {
  /** Opset version of the default ONNX domain. */
  readonly opset: number;
  /** The registered quantizers (`FakeQuant` nodes look theirs up here). */
  readonly quantizers?: { get(name: string): Quantizer };
  /** Run Conv / Gemm / MatMul on the TypeScript reference instead of the WASM kernels. */
  readonly reference?: boolean;
  /**
   * Float kernel context on a worker pool: Conv / ConvTranspose / Gemm / MatMul split their work
   * over its threads (the same bits as one thread). Undefined: the calling thread only.
   */
  readonly floatKernels?: FloatKernels;
  /** True when `t` is the same constant on every run (an initializer or Constant): kernels may cache a packed form. */
  readonly isConstant?: (t: TensorData) => boolean;
  /**
   * True when `t` (one of this call's inputs) is not used after this op and its
   * storage is shared with no live value: the op may write its output into it.
   */
  readonly reusable?: (t: TensorData) => boolean;
  /**
   * An uninitialised float32 buffer of `n` elements, possibly the recycled storage of a dead
   * value (so the op must write every element). Undefined: the op allocates.
   */
  readonly allocF32?: (n: number) => Float32Array;
  /** Hands back a temporary buffer the op allocated and no longer uses (for reuse). */
  readonly releaseF32?: (a: Float32Array) => void;
  /**
   * Runs a subgraph of this node (an If branch, a Loop / Scan body) with `inputs` by name: its
   * formal inputs and the outer-scope values it reads (see `_subgraph.ts`); returns its outputs
   * in order. Hooks of the run apply inside. Undefined outside the executor.
   */
  readonly runSubgraph?: (g: Graph, inputs: Record<string, TensorData>) => Promise<TensorData[]>;
}

/**
 * One operator: takes the node's inputs (undefined for omitted optional ones)
 * and returns one tensor per node output (trailing optional outputs may be omitted).
 */
export type OpImpl = (
  inputs: readonly (TensorData | undefined)[],
  node: Node,
  ctx: OpContext,
) => TensorData[] | Promise<TensorData[]>;

/** A table of implementations for a subset of the ops. */
export type OpTable<K extends OpName> = Record<K, OpImpl>;
