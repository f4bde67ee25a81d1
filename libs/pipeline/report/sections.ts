/**
 * The report sections plugins add (`registry.reportSections`), rendered for one run: each
 * section gets the prepared float model, the quantized model as written, the evaluation inputs
 * and the plugin options. A section that fails becomes a warning, never a failed run.
 *
 * @module
 */

import {
  defaultRegistry,
  type GraphView,
  type PluginOptionValues,
  type Registry,
  type ReportPart,
  type TensorValue,
} from "@lowbit/core";
import { createExecutor, type Model, type TensorData } from "@lowbit/graph";
import { type Dataset, sliceBatch } from "../dataset.ts";

/** What {@link pluginReportSections} needs. */
export interface SectionInputs {
  /** The prepared float model. */
  float: Model;
  /** The quantized model as written (its runnable graph). */
  quantized: Model;
  /** The fitted plan. */
  plan: unknown;
  /** The evaluation (or calibration) data. */
  data?: Dataset;
  /** Plugin option values. */
  options?: PluginOptionValues;
  /** The registry (default: the default registry). */
  registry?: Registry;
}

/**
 * Renders every registered report section.
 *
 * @param inp models, plan, data, options
 * @returns the parts, and warnings for sections that failed
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { pluginReportSections } from "@lowbit/pipeline";
 * import { readOnnx } from "@lowbit/graph";
 * const model = readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx"));
 * const registry = createRegistry();
 * registerBuiltins(registry);
 * registry.reportSections.register({ name: "n", render: (c) => Promise.resolve({ title: "Nodes", html: `${c.graph.nodes.length}` }) });
 * const { parts } = await pluginReportSections({ float: model, quantized: model, plan: {}, registry });
 * if (parts[0].html !== "6") throw new Error(parts[0].html);
 * ```
 */
export async function pluginReportSections(
  inp: SectionInputs,
): Promise<{ parts: ReportPart[]; warnings: string[] }> {
  const reg = inp.registry ?? defaultRegistry();
  const names = reg.reportSections.list();
  const parts: ReportPart[] = [], warnings: string[] = [];
  if (names.length === 0) return { parts, warnings };
  const fe = createExecutor(inp.float, { registry: reg });
  const qe = createExecutor(inp.quantized, { registry: reg });
  const run = (e: typeof fe) => (x: Readonly<Record<string, TensorValue>>) =>
    e.run(x as Record<string, TensorData>) as Promise<Record<string, TensorValue>>;
  const ctx = {
    graph: inp.float.graph as unknown as GraphView,
    plan: inp.plan,
    options: inp.options ?? {},
    models: { float: inp.float, quantized: inp.quantized },
    ...(inp.data ? { inputs: sliceBatch(inp.data, 0, inp.data.count) } : {}),
    runFloat: run(fe),
    runQuantized: run(qe),
  };
  for (const n of names) {
    try {
      const p = await reg.reportSections.get(n).render(ctx);
      if (p) parts.push(p);
    } catch (e) {
      warnings.push(`report section '${n}' failed: ${e instanceof Error ? e.message : e}`);
    }
  }
  await fe.close();
  await qe.close();
  return { parts, warnings };
}
