/**
 * Lookups on a graph that a pass edits as it goes (equalisation and its homogeneous-op walk), so
 * read from the current nodes each time rather than from an index built once (`valueLinks`).
 *
 * @module
 */

import type { Model, Node } from "@lowbit/graph";

/** The node that computes `value`, if any. */
export function producerOf(model: Model, value: string): Node | undefined {
  return model.graph.nodes.find((n) => n.outputs.includes(value));
}

/** The nodes that read `value`'s data (Shape / Size read only its shape, so they do not count). */
export function readersOf(model: Model, value: string): Node[] {
  return model.graph.nodes.filter((n) =>
    n.op !== "Shape" && n.op !== "Size" && n.inputs.includes(value)
  );
}

/** Whether `value` is a graph output. */
export function isOutput(model: Model, value: string): boolean {
  return model.graph.outputs.some((o) => o.name === value);
}
