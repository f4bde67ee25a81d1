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
import { reduceOps } from "./reduce.ts";
import { resizeOps } from "./resize.ts";
import { rnnOps } from "./rnn.ts";
import { shapeOps } from "./shape.ts";
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
  ...controlFlowOps,
  ...rnnOps,
  ...ortQuantOps,
};

const FUSED: ReadonlySet<string> = new Set([
  ...Object.keys(fusedOps),
  ...Object.keys(minifloatOps),
  ...Object.keys(pointwiseOps),
]);

/**
 * The implementation of `op` in `domain`, or undefined when unsupported.
 * The default ONNX domain is "" (or "ai.onnx"); lowbit's fused ops live in "lowbit";
 * onnxruntime's quantized contrib ops in "com.microsoft".
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
  const fused = FUSED.has(op);
  if (domain === "lowbit") return fused ? OPS[op as OpName] : undefined;
  if (domain !== "" && domain !== "ai.onnx") return undefined;
  return fused ? undefined : OPS[op as OpName];
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
  return OP_NAMES.filter((n) => !FUSED.has(n)).sort();
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
