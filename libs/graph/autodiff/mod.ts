/**
 * Reverse-mode differentiation over the graph IR, in float64: a table of
 * `{ forward, backward }` per op, a tape interpreter, cross-entropy / KL
 * losses, gradients with respect to weights, Hessian-vector products (central
 * differences of exact gradients), Hutchinson traces and power iteration.
 *
 * @example
 * ```ts
 * import { lossAndGrad } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(0, 0) }]]),
 *   valueInfo: new Map() };
 * const r = lossAndGrad({ graph: g, feeds: { x: { shape: [1, 1], data: Float64Array.of(1) } },
 *   loss: { kind: "cross-entropy", labels: [1] } }, ["w"]);
 * if (r.grads.get("w")!.data[1] >= 0) throw new Error();
 * ```
 *
 * @module
 */

export * from "./ops.ts";
export * from "./tape.ts";
export * from "./loss.ts";
export * from "./grad.ts";
export * from "./hessian.ts";
