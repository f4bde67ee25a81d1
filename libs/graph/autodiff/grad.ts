/**
 * Loss and gradient of a graph with respect to its weights (initializers).
 *
 * @module
 */

import type { Graph } from "../ir.ts";
import { evalLoss, type LossSpec } from "./loss.ts";
import type { T64 } from "./ops.ts";
import { backward64, forward64, type Tape } from "./tape.ts";
import { LowbitError } from "@lowbit/core";

/** A fixed differentiable objective: a graph, its inputs, which output, which loss. */
export interface LossProblem {
  /** The model graph. */
  readonly graph: Graph;
  /** Graph inputs by name (float64). */
  readonly feeds: Readonly<Record<string, T64>>;
  /** Name of the logits output (defaults to the graph's first output). */
  readonly output?: string;
  /** The loss on those logits. */
  readonly loss: LossSpec;
}

/** A loss value and gradients. */
export interface LossGrad {
  /** Mean loss. */
  loss: number;
  /** Gradient per requested name. */
  grads: Map<string, T64>;
}

/**
 * The loss of `problem` and its gradient with respect to the named weights.
 *
 * @param problem graph, inputs and loss
 * @param wrt initializer names
 * @param overrides weights to use instead of the graph's initializers
 * @param base an earlier forward run on the same feeds, to reuse the values no override reaches
 * @returns the loss and one gradient per name in `wrt`
 *
 * @example
 * ```ts
 * import { lossAndGrad } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(0, 0) }]]),
 *   valueInfo: new Map() };
 * const r = lossAndGrad({ graph: g, feeds: { x: { shape: [1, 1], data: Float64Array.of(1) } },
 *   loss: { kind: "cross-entropy", labels: [0] } }, ["w"]);
 * if (Math.abs(r.grads.get("w")!.data[0] + 0.5) > 1e-12) throw new Error();
 * ```
 */
export function lossAndGrad(
  problem: LossProblem,
  wrt: readonly string[],
  overrides?: ReadonlyMap<string, T64>,
  base?: Tape,
): LossGrad {
  const out = outputName(problem);
  const tape = forward64(problem.graph, problem.feeds, overrides, base);
  const logits = tape.values.get(out);
  if (!logits) {
    throw new LowbitError("UNKNOWN_NAME", `graph has no output '${out}'`, { tensor: out });
  }
  const { loss, seed } = evalLoss(logits, problem.loss);
  return { loss, grads: backward64(tape, new Map([[out, seed]]), wrt) };
}

/**
 * The loss of `problem` only (no backward pass).
 *
 * @param problem graph, inputs and loss
 * @param overrides weights to use instead of the graph's initializers
 * @returns the mean loss
 *
 * @example
 * ```ts
 * import { lossOnly } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "x", dtype: "float32" as const }],
 *   nodes: [], initializers: new Map(), valueInfo: new Map() };
 * const l = lossOnly({ graph: g, feeds: { x: { shape: [1, 2], data: Float64Array.of(0, 0) } },
 *   loss: { kind: "cross-entropy", labels: [0] } });
 * if (Math.abs(l - Math.LN2) > 1e-12) throw new Error();
 * ```
 */
export function lossOnly(problem: LossProblem, overrides?: ReadonlyMap<string, T64>): number {
  const out = outputName(problem);
  const tape = forward64(problem.graph, problem.feeds, overrides);
  const logits = tape.values.get(out);
  if (!logits) {
    throw new LowbitError("UNKNOWN_NAME", `graph has no output '${out}'`, { tensor: out });
  }
  return evalLoss(logits, problem.loss).loss;
}

function outputName(p: LossProblem): string {
  const out = p.output ?? p.graph.outputs[0]?.name;
  if (!out) throw new LowbitError("INVALID_ARGUMENT", "graph has no outputs", {});
  return out;
}
