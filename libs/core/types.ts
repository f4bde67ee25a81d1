/**
 * The plugin interfaces of lowbit's core: number formats, quantizers,
 * calibrators, sensitivity metrics and search strategies. Everything that can
 * be registered implements one of these; plugins register against them
 * exactly as built-ins do.
 *
 * @module
 */

import type { Tensor } from "./tensor.ts";

/** One code per element. Formats up to 8 bits use bytes, wider ones 16-bit words. */
export type Codes = Uint8Array | Uint16Array;

/** What kind of number a format holds. */
export type FormatFamily = "int" | "float" | "block" | "ternary" | "binary" | "nonuniform";

/**
 * A number format. One definition per format; everything else is derived from it.
 * `encode` rounds to nearest, ties to even, and saturates where the format has
 * no infinity. Block-scaled formats (MX, NVFP4) also implement {@link BlockFormat}.
 */
export interface NumberFormat {
  /** Registry name, e.g. "int8", "uint4", "fp8_e4m3fn", "mxfp4", "nvfp4". */
  readonly name: string;
  /** Bits of one element code (block scales not included). */
  readonly bits: number;
  /** Family of the format. */
  readonly family: FormatFamily;
  /** Largest finite value of the element grid. */
  readonly max: number;
  /** Smallest (most negative) finite value of the element grid. */
  readonly min: number;
  /** Smallest positive normal value (1 for integers). */
  readonly minNormal: number;
  /** Smallest positive value (subnormal if the format has them; 1 for integers). */
  readonly minSubnormal: number;
  /** Encodes each element to its code. */
  encode(x: Float32Array): Codes;
  /** Decodes codes to values. */
  decode(codes: Codes): Float32Array;
  /** The distinct finite values of the element grid, ascending. */
  values(): Float32Array;
  // Optional descriptive fields (added with the formats; additive only).
  /** Whether the grid has negative values (sign bit / two's complement). */
  readonly signed?: boolean;
  /** Storage bits per value including shared scales (MX: bits + 8/32); defaults to `bits`. */
  readonly bitsPerValue?: number;
  /** Minifloats: exponent field width. */
  readonly exponentBits?: number;
  /** Minifloats: mantissa field width. */
  readonly mantissaBits?: number;
  /** Minifloats: exponent bias. */
  readonly bias?: number;
  /** Minifloats: whether ±Inf are representable. */
  readonly hasInf?: boolean;
  /** Minifloats: whether NaN is representable. */
  readonly hasNaN?: boolean;
}

/** A block-scaled format: elements share a scale per block of `blockSize`. */
export interface BlockFormat extends NumberFormat {
  /** Elements per block (32 for MX, 16 for NVFP4). */
  readonly blockSize: number;
  /** Format of the elements. */
  readonly element: NumberFormat;
  /** Format of the per-block scale (e8m0 for MX, fp8_e4m3fn for NVFP4). */
  readonly scaleFormat: NumberFormat;
  /** Encodes `x` (length a multiple of `blockSize`, blocks contiguous) into codes and scales. */
  encodeBlocks(x: Float32Array): BlockEncoded;
  /** Decodes what `encodeBlocks` produced. */
  decodeBlocks(enc: BlockEncoded): Float32Array;
  /**
   * `decodeBlocks(encodeBlocks(x))` in one pass, the same bits (a fake quantization's inner
   * loop), written to `out` (default: a new array; `x` itself is allowed). `x` is viewed as
   * `[outer, len, inner]` (default `[1, x.length, 1]`) with blocks along `len` — a tensor's rows
   * along one axis, read in place — and a short last block is taken as zero-padded. Each block
   * on its own (MX: no scale spans blocks). Optional: formats without it are rounded through
   * their codes.
   */
  roundBlocks?(x: Float32Array, out?: Float32Array, layout?: BlockLayout): Float32Array;
}

/** A tensor as `[outer, len, inner]`, blocks running along `len` (see `roundBlocks`). */
export interface BlockLayout {
  /** Product of the axes before the block axis. */
  readonly outer: number;
  /** Length of the block axis (with the axes merged into it). */
  readonly len: number;
  /** Product of the axes after it. */
  readonly inner: number;
}

/** Output of a block format's encoder. */
export interface BlockEncoded {
  /** One element code per value. */
  codes: Codes;
  /** One scale code per block. */
  scales: Codes;
  /** Per-tensor FP32 scale (NVFP4's second level); 1 where unused. */
  tensorScale: number;
}

/**
 * Granularity as a block shape, in torchao's spirit: per-tensor, per-channel on
 * an axis, or per-group of `size` consecutive elements along an axis.
 */
export type Granularity =
  | { readonly kind: "tensor" }
  | { readonly kind: "channel"; readonly axis: number }
  | { readonly kind: "group"; readonly axis: number; readonly size: number }
  | {
    readonly kind: "block";
    readonly axis: number;
    readonly size: number;
    /** Axes right after `axis` merged into the run (a Conv weight's window: 2). */
    readonly flatten?: number;
  }
  | { readonly kind: "row"; readonly axis: number };

/** Symmetric (zero point 0) or affine (zero point fitted). */
export type QuantMode = "symmetric" | "affine";

/** Observed statistics of a tensor, per channel when per-channel. */
export interface Range {
  /** Minimum per channel (length 1 per-tensor). */
  min: Float32Array;
  /** Maximum per channel (length 1 per-tensor). */
  max: Float32Array;
}

/** Quantization parameters of one tensor. */
export interface QParams {
  /** Registry name of the target format. */
  format: string;
  /** Granularity the scales apply to. */
  granularity: Granularity;
  /** Symmetric or affine. */
  mode: QuantMode;
  /** One scale per tensor / channel / group. */
  scale: Float32Array;
  /** One zero point per scale (in code units; 0 for symmetric and float formats). */
  zeroPoint: Int32Array;
  /**
   * Integer formats: the smallest code to clamp to, when narrower than the
   * format's (e.g. -127 for restricted-range int8). Defaults to `format.min`.
   */
  quantMin?: number;
  /** Integer formats: the largest code to clamp to; defaults to `format.max`. */
  quantMax?: number;
  /**
   * Quantizer-specific fitted parameters, by name (a ternary tensor's γ, MX block scale codes,
   * a log quantizer's base, ...): saved with the scales in the plan and the lowbit file.
   */
  extra?: Record<string, number[]>;
  /** Scales computed at run time from the tensor itself (block formats, per-row tokens). */
  dynamic?: boolean;
  /**
   * Other graph values the quantizer reads at run time, handed to `fakeQuant` in
   * `ctx.inputs` (a diffusion model's time input picks a timestep group's scales; a graph's
   * adjacency gives node degrees). Graph inputs are also what calibrators see in `ctx.inputs`.
   */
  reads?: string[];
}

/** Options when fitting quantization parameters. */
export interface FitOptions {
  /** Target format name. */
  format: string;
  /** Granularity. */
  granularity: Granularity;
  /** Symmetric or affine. */
  mode: QuantMode;
  /** Round scales up to powers of two. */
  powerOfTwo?: boolean;
  /** Integer formats: a narrower code range than the format's (see {@link QParams}). */
  quantMin?: number;
  /** Integer formats: a narrower code range than the format's (see {@link QParams}). */
  quantMax?: number;
}

/**
 * What a batch is, for observers, calibrators and quantizers that care: its index in the
 * calibration run, tags a calibration source attached (a diffusion timestep, a graph's node
 * degrees, ...), and the model inputs of the batch.
 */
export interface BatchContext {
  /** Index of the batch in the run (0-based). */
  readonly batch: number;
  /** Tags by name: one number per sample, or any numbers the source attaches. */
  readonly tags: Readonly<Record<string, ArrayLike<number>>>;
  /** The batch's model inputs, by input name. */
  readonly inputs?: Readonly<Record<string, Tensor>>;
}

/**
 * A quantizer: fits its parameters, fake-quantizes, maps values to codes and
 * back under fitted parameters, and says whether standard QDQ ONNX expresses it.
 * Everything about a quantized tensor that is not its scales goes into
 * `QParams.extra`, so the plan and the lowbit file keep it.
 */
export interface Quantizer {
  /** Registry name ("uniform", "block", "scaled", plugins' "log2", "adalog", ...). */
  readonly name: string;
  /** Whether this quantizer handles a format (checked when a plan is built). */
  supports(format: NumberFormat): boolean;
  /**
   * Fits parameters: from a calibrated range (activations) or from the tensor itself
   * (weights; quantizers that fit more than a range, e.g. ternary γ or MX block scales).
   */
  fit(input: Range | Tensor, opts: FitOptions): QParams;
  /** Quantizes a tensor to codes under fitted parameters. */
  quantize(t: Tensor, qp: QParams): Codes;
  /** Dequantizes codes back to floats with `shape`. */
  dequantize(codes: Codes, qp: QParams, shape: readonly number[]): Tensor;
  /**
   * Quantize then dequantize, as the exported model computes it (dynamic scales included).
   * `out`, when given, is storage of `t`'s length (a runtime's recycled memory) the result may
   * be written to; a quantizer may ignore it and return a new array.
   */
  fakeQuant(t: Tensor, qp: QParams, ctx?: BatchContext, out?: Float32Array): Tensor;
  /**
   * Whether QuantizeLinear / DequantizeLinear express these parameters exactly; absent or
   * false: the point can only be written to a lowbit file.
   */
  onnx?(qp: QParams): boolean;
}

/** Result of a calibrator: the chosen clipping range. */
export type CalibResult = Range;

/**
 * A streaming calibrator. Memory is bounded by bins × channels, independent of
 * the amount of data observed; two calibrators of the same kind merge.
 */
export interface Calibrator {
  /** Registry name of the algorithm. */
  readonly name: string;
  /** Observes one batch (`ctx`: which batch, its tags; most calibrators ignore it). */
  observe(batch: Tensor, ctx?: BatchContext): void;
  /** Merges another calibrator's state (same kind and options) into this one. */
  merge(other: Calibrator): void;
  /** The chosen range. */
  result(): CalibResult;
}

/** Options every calibrator factory accepts. */
export interface CalibratorOptions {
  /** Per-channel axis, or undefined for per-tensor. */
  axis?: number;
  /** Target format name: error-based searches measure error on its grid. */
  format?: string;
  /** Symmetric or affine range. */
  mode?: QuantMode;
  /** The value (tensor name) being calibrated, when the pipeline creates it for a point. */
  value?: string;
  /** The graph values the point's quantizer reads at run time (see `QParams.reads`). */
  reads?: readonly string[];
  /** Plugin option values of the run. */
  options?: Readonly<Record<string, unknown>>;
  /** Algorithm-specific extras (bins, percentile, p, ...). */
  [key: string]: unknown;
}

/** Creates calibrators of one algorithm. */
export interface CalibratorFactory {
  /** Registry name, e.g. "minmax", "percentile", "mse", "kl". */
  readonly name: string;
  /** A fresh calibrator. */
  create(opts?: CalibratorOptions): Calibrator;
}

/** A per-layer sensitivity measure for mixed-precision search. */
export interface SensitivityMetric {
  /** Registry name, e.g. "hawq-v2". */
  readonly name: string;
  /** Scores quantizing `layer` with `candidate`; `ctx` is metric-specific. */
  score(ctx: unknown, layer: string, candidate: string): number | Promise<number>;
}

/** A mixed-precision allocation: one candidate per layer. */
export type Allocation = Record<string, string>;

/** Allocates candidates to layers under a budget. */
export interface SearchStrategy {
  /** Registry name, e.g. "ilp". */
  readonly name: string;
  /** Picks one candidate per layer. */
  allocate(
    layers: readonly string[],
    candidates: Readonly<Record<string, readonly string[]>>,
    scores: Readonly<Record<string, Readonly<Record<string, number>>>>,
    budget: unknown,
  ): Allocation | Promise<Allocation>;
}

/**
 * One quantization point of a quantized model, keyed by the value it quantizes: any tensor of
 * the graph (a weight, a layer input, a Softmax output, a Concat input...). With the float graph,
 * a list of these is the whole meaning of a quantized model: simulation, QDQ export, the lowbit
 * file and its loader all read it.
 */
export interface QuantPoint {
  /** The value (tensor name) it quantizes. */
  readonly value: string;
  /** A constant weight or a run-time activation. */
  readonly role: "weight" | "activation";
  /** Registered quantizer name. */
  readonly quantizer: string;
  /** Fitted parameters (format, granularity, mode, scales, zero points, extras). */
  readonly params: QParams;
  /** The plugin (or "core") that asked for it. */
  readonly by?: string;
}
