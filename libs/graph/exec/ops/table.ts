/**
 * The dispatch table: every op name of {@link OP_NAMES} mapped to its
 * implementation. Typed as `Record<OpName, OpImpl>`, so adding a name without
 * an implementation fails to compile.
 *
 * @module
 */

import { activationOps } from "./activation.ts";
import { controlFlowOps } from "./controlflow.ts";
import { convOps } from "./conv.ts";
import { elementwiseOps } from "./elementwise.ts";
import { fusedOps } from "./fused.ts";
import { matmulOps } from "./matmul.ts";
import { minifloatOps } from "./minifloat.ts";
import { msQuantOps } from "./ms_quant.ts";
import { normalizationOps } from "./normalization.ts";
import { ortQuantOps } from "./ort_quant.ts";
import { pointwiseOps } from "./pointwise.ts";
import { poolOps } from "./pool.ts";
import { qlinearOps } from "./qlinear.ts";
import { fakeQuantOps } from "./fake_quant.ts";
import { reduceOps } from "./reduce.ts";
import { resizeOps } from "./resize.ts";
import { rnnOps } from "./rnn.ts";
import { shapeOps } from "./shape.ts";
import { gatherScatterOps } from "./gather_scatter.ts";
import { exactBeyondF32, reduceMoreOps } from "./reduce_more.ts";
import { lossOps } from "./loss.ts";
import { mathExtraOps } from "./math_extra.ts";
import { tensorExtraOps } from "./tensor_extra.ts";
import { einsumOps } from "./einsum.ts";
import { detectionOps } from "./detection.ts";
import { windowNdOps, withNd } from "./window_nd.ts";
import { normalizationExtraOps, withTrainingMode } from "./normalization_extra.ts";
import { signalOps } from "./signal.ts";
import { trainingOps } from "./training.ts";
import { textOps } from "./text.ts";
import { OP_NAMES, type OpImpl, type OpName } from "./types.ts";

/**
 * Every op's implementation.
 *
 * @example
 * ```ts
 * import { OPS } from "./table.ts";
 * if (typeof OPS.Conv !== "function") throw new Error();
 * ```
 */
export const OPS: Readonly<Record<OpName, OpImpl>> = {
  ...elementwiseOps,
  ...activationOps,
  ...convOps,
  ...poolOps,
  ...matmulOps,
  ...normalizationOps,
  ...reduceOps,
  ...shapeOps,
  ...resizeOps,
  ...qlinearOps,
  ...fusedOps,
  ...minifloatOps,
  ...pointwiseOps,
  ...fakeQuantOps,
  ...gatherScatterOps,
  ...reduceMoreOps,
  ...lossOps,
  ...mathExtraOps,
  ...tensorExtraOps,
  ...einsumOps,
  ...detectionOps,
  // 3-D (and more) spatial dimensions, integer MaxPool: the N-D loops of window_nd.ts
  Conv: withNd("Conv", convOps.Conv),
  ConvTranspose: withNd("ConvTranspose", convOps.ConvTranspose),
  MaxPool: withNd("MaxPool", poolOps.MaxPool),
  AveragePool: withNd("AveragePool", poolOps.AveragePool),
  LpPool: windowNdOps.LpPool,
  MaxUnpool: windowNdOps.MaxUnpool,
  GlobalLpPool: windowNdOps.GlobalLpPool,
  ...normalizationExtraOps,
  BatchNormalization: withTrainingMode(normalizationOps.BatchNormalization),
  ...signalOps,
  ...trainingOps,
  ...textOps,
  // Integer and float64 inputs reduce exactly (reduce.ts computes in float32)
  ReduceSum: exactBeyondF32("ReduceSum", reduceOps.ReduceSum),
  ReduceMean: exactBeyondF32("ReduceMean", reduceOps.ReduceMean),
  ReduceMax: exactBeyondF32("ReduceMax", reduceOps.ReduceMax),
  ReduceMin: exactBeyondF32("ReduceMin", reduceOps.ReduceMin),
  ArgMax: exactBeyondF32("ArgMax", reduceOps.ArgMax),
  TopK: exactBeyondF32("TopK", reduceOps.TopK),
  ...controlFlowOps,
  ...rnnOps,
  ...ortQuantOps,
};

const FUSED: ReadonlySet<string> = new Set([
  ...Object.keys(fusedOps),
  ...Object.keys(minifloatOps),
  ...Object.keys(pointwiseOps),
  ...Object.keys(fakeQuantOps),
]);

/** Ops of the `ai.onnx.preview.training` domain (and only of it). */
const TRAINING: ReadonlySet<string> = new Set(Object.keys(trainingOps));

/**
 * The implementation of `op` in `domain`, or undefined when unsupported.
 * The default ONNX domain is "" (or "ai.onnx"); lowbit's fused ops live in "lowbit", the
 * optimizer updates in "ai.onnx.preview.training", onnxruntime's quantized contrib ops in
 * "com.microsoft".
 *
 * @param op operator type
 * @param domain operator domain
 * @returns the implementation, or undefined
 *
 * @example
 * ```ts
 * import { lookupOp } from "./table.ts";
 * if (lookupOp("Relu", "") === undefined || lookupOp("Relu", "com.example") !== undefined) {
 *   throw new Error();
 * }
 * ```
 */
export function lookupOp(op: string, domain: string): OpImpl | undefined {
  // onnxruntime's contrib ops (ms_quant.ts)
  if (domain === "com.microsoft") return Object.hasOwn(msQuantOps, op) ? msQuantOps[op] : undefined;
  if (!Object.hasOwn(OPS, op)) return undefined;
  if (TRAINING.has(op)) {
    return domain === "ai.onnx.preview.training" ? OPS[op as OpName] : undefined;
  }
  const fused = FUSED.has(op);
  if (domain === "lowbit") return fused ? OPS[op as OpName] : undefined;
  if (domain !== "" && domain !== "ai.onnx") return undefined;
  return fused ? undefined : OPS[op as OpName];
}

/**
 * Whether the executor runs `op` of `domain` ("" or "ai.onnx" for ONNX's default domain).
 *
 * @param op operator type
 * @param domain operator domain
 * @returns true when supported
 *
 * @example
 * ```ts
 * import { isSupportedOp } from "./table.ts";
 * if (!isSupportedOp("Einsum", "") || isSupportedOp("Einsum", "com.example")) throw new Error();
 * ```
 */
export function isSupportedOp(op: string, domain: string): boolean {
  return lookupOp(op, domain) !== undefined;
}

/**
 * The ONNX operators the executor runs (default domain), sorted; lowbit's
 * internal fused ops are not listed.
 *
 * @returns op names
 *
 * @example
 * ```ts
 * import { supportedOps } from "./table.ts";
 * if (!supportedOps().includes("Conv")) throw new Error();
 * ```
 */
export function supportedOps(): string[] {
  return OP_NAMES.filter((n) => !FUSED.has(n) && !TRAINING.has(n)).sort();
}

/**
 * onnxruntime's contrib ops (domain "com.microsoft") the executor runs, sorted.
 *
 * @returns op names
 *
 * @example
 * ```ts
 * import { supportedContribOps } from "./table.ts";
 * if (!supportedContribOps().includes("MatMulNBits")) throw new Error();
 * ```
 */
export function supportedContribOps(): string[] {
  return Object.keys(msQuantOps).sort();
}
