/**
 * Graph analysis of a denoiser: which values depend on the time input only (the time-embedding
 * path, up to where it meets the image path), and which Concats join image-path values (UNet
 * skip connections, whose inputs Q-Diffusion quantizes separately).
 *
 * @module
 */

import type { GraphView } from "@lowbit/core";

/** Values downstream of each of a set of graph inputs (constants reach nothing). */
function reachable(graph: GraphView, from: string): Set<string> {
  const seen = new Set([from]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of graph.nodes) {
      if (!n.inputs.some((v) => seen.has(v))) continue;
      for (const o of n.outputs) {
        if (o && !seen.has(o)) {
          seen.add(o);
          grew = true;
        }
      }
    }
  }
  return seen;
}

/**
 * The time-embedding path: values that depend on the time input and not on the image input.
 *
 * @param graph the graph
 * @param time the time input
 * @param image the image input
 * @returns the value names (the time input included)
 *
 * @example
 * ```ts
 * import { timePath } from "@lowbit/diffusion";
 * const n = (name: string, inputs: string[], out: string) =>
 *   ({ name, op: "Add", domain: "", inputs, outputs: [out], attrs: {} });
 * const g = { inputs: [{ name: "x", dtype: "float32" }, { name: "t", dtype: "float32" }],
 *   outputs: [{ name: "y" }], initializers: new Map(),
 *   nodes: [n("a", ["t", "t"], "e"), n("b", ["x", "e"], "y")] };
 * if ([...timePath(g, "t", "x")].join() !== "t,e") throw new Error();
 * ```
 */
export function timePath(graph: GraphView, time: string, image: string): Set<string> {
  const fromImage = reachable(graph, image);
  return new Set([...reachable(graph, time)].filter((v) => !fromImage.has(v)));
}

/** A Concat of image-path values (a skip connection). */
export interface SkipConcat {
  /** The Concat node. */
  readonly node: string;
  /** Its inputs (image-path values). */
  readonly inputs: readonly string[];
  /** Its output. */
  readonly output: string;
}

/**
 * The Concats whose inputs (two or more) all lie on the image path: a UNet's skip connections.
 *
 * @param graph the graph
 * @param image the image input
 * @returns the Concats
 *
 * @example
 * ```ts
 * import { skipConcats } from "@lowbit/diffusion";
 * const g = { inputs: [{ name: "x", dtype: "float32" }], outputs: [{ name: "y" }],
 *   initializers: new Map(), nodes: [
 *     { name: "r", op: "Relu", domain: "", inputs: ["x"], outputs: ["h"], attrs: {} },
 *     { name: "c", op: "Concat", domain: "", inputs: ["x", "h"], outputs: ["y"], attrs: {} }] };
 * if (skipConcats(g, "x")[0].inputs.join() !== "x,h") throw new Error();
 * ```
 */
export function skipConcats(graph: GraphView, image: string): SkipConcat[] {
  const fromImage = reachable(graph, image);
  return graph.nodes
    .filter((n) =>
      n.op === "Concat" && n.domain === "" && n.inputs.length >= 2 &&
      n.inputs.every((v) => fromImage.has(v))
    )
    .map((n) => ({ node: n.name, inputs: [...n.inputs], output: n.outputs[0] }));
}
