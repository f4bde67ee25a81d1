/**
 * `lowbit inspect`: what a model is made of and what lowbit can quantize in
 * it — inputs, outputs, an operator histogram, parameters per layer, the
 * quantizable layers and, for every other Conv / Gemm / MatMul, why not. Ops the
 * executor does not run are marked (with their node names) instead of failing:
 * `run` and `quantize` refuse such models, naming the node.
 *
 * ```sh
 * lowbit inspect model.onnx [--json]
 * ```
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import {
  foldBatchNorm,
  type Graph,
  isSupportedOp,
  type Model,
  readOnnx,
  type ValueInfo,
} from "@lowbit/graph";
import {
  isLowbitPath,
  LAYER_OPS,
  loadModelFile,
  readModelBytes,
  scanLayers,
} from "@lowbit/pipeline";
import type { Command } from "../main.ts";
import { parseOptions } from "./_io.ts";

const HELP = `usage: lowbit inspect MODEL [--json]

Prints a model's inputs and outputs, operator histogram, parameters per layer,
and which layers lowbit quantizes (Conv, ConvTranspose, Gemm, MatMul with a
float32 constant weight) and why the others are not. Operators lowbit cannot
run are marked "(unsupported)" and their nodes listed; run and quantize refuse
such a model.

  --no-fold   inspect the graph as written (default: BatchNormalization folded,
              as quantize does)
  --json      one JSON object
  -h, --help  this help`;

/** What `inspect` reports. */
export interface Inspection {
  /** Graph inputs. */
  inputs: { name: string; dtype: string; shape: (number | string)[] | null }[];
  /** Graph outputs. */
  outputs: { name: string; dtype: string; shape: (number | string)[] | null }[];
  /** Node count per operator (nodes of subgraphs included). */
  ops: Record<string, number>;
  /** Total parameters (elements of all initializers). */
  params: number;
  /** Quantizable layers. */
  layers: { node: string; op: string; weight: string; shape: number[]; params: number }[];
  /** Nodes of layer operators that are not quantizable, with the reason. */
  notQuantizable: { node: string; op: string; reason: string }[];
  /**
   * Nodes whose operator the executor does not run (run / quantize refuse the model); a node
   * of a subgraph is named `outer/attribute/inner`.
   */
  unsupported: { node: string; op: string; domain: string }[];
}

function info(v: ValueInfo): Inspection["inputs"][number] {
  return {
    name: v.name,
    dtype: v.dtype,
    shape: v.shape ? v.shape.map((d) => d === "" ? "?" : d) : null,
  };
}

/**
 * Inspects a model.
 *
 * @param model the model
 * @returns the inspection
 *
 * @example
 * ```ts
 * import { inspectModel } from "./inspect.ts";
 * import { readOnnx } from "@lowbit/graph";
 * const r = inspectModel(readOnnx(await Deno.readFile("fixtures/digits/mlp.onnx")));
 * if (r.layers.length !== 3 || r.ops.Gemm !== 3) throw new Error(JSON.stringify(r.ops));
 * ```
 */
export function inspectModel(model: Model): Inspection {
  const g = model.graph;
  const ops: Record<string, number> = {};
  const unsupported: Inspection["unsupported"] = [];
  // Nodes of subgraphs (If / Loop / Scan bodies) count too, named `outer/attribute/inner`.
  const visit = (graph: Graph, prefix: string): void => {
    for (const n of graph.nodes) {
      const k = opKey(n.op, n.domain);
      ops[k] = (ops[k] ?? 0) + 1;
      if (!isSupportedOp(n.op, n.domain)) {
        unsupported.push({ node: prefix + n.name, op: n.op, domain: n.domain });
      }
      for (const [name, a] of Object.entries(n.attrs)) {
        if (a.kind === "graph") visit(a.value, `${prefix}${n.name}/${name}/`);
      }
    }
  };
  visit(g, "");
  let params = 0;
  for (const t of g.initializers.values()) params += t.shape.reduce((a, b) => a * b, 1);
  const { layers, rejected } = scanLayers(g);
  return {
    inputs: g.inputs.map(info),
    outputs: g.outputs.map(info),
    ops,
    params,
    layers: layers.map((l) => ({
      node: l.node,
      op: l.op,
      weight: l.weight,
      shape: l.shape,
      params: l.shape.reduce((a, b) => a * b, 1),
    })),
    notQuantizable: rejected,
    unsupported,
  };
}

/** The histogram key of an op: its name, prefixed by a domain other than ONNX's default. */
function opKey(op: string, domain: string): string {
  return domain && domain !== "ai.onnx" ? `${domain}.${op}` : op;
}

/**
 * Runs `lowbit inspect`.
 *
 * @param args arguments after `inspect`
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { inspectMain } from "./inspect.ts";
 * if (await inspectMain(["--help"]) !== 0) throw new Error();
 * ```
 */
export async function inspectMain(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    json: { type: "boolean" },
    "no-fold": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, HELP);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new LowbitError("INVALID_ARGUMENT", `need one model\n\n${HELP}`);
  }
  const path = positionals[0];
  // ONNX models are only read (not prepared for running), so unsupported ops do not stop this.
  const loaded = isLowbitPath(path)
    ? await loadModelFile(path)
    : { model: readOnnx(await readModelBytes(path), { baseDir: dirOf(path), fileName: path }) };
  const kind = "kind" in loaded
    ? loaded.kind
    : loaded.model.graph.nodes.some((n) => n.op === "DequantizeLinear")
    ? "qdq"
    : "float";
  const model = values["no-fold"]
    ? loaded.model
    : { ...loaded.model, graph: foldBatchNorm(loaded.model.graph) };
  const r = inspectModel(model);
  if (values.json) {
    console.log(JSON.stringify(r));
    return 0;
  }
  const shape = (s: (number | string)[] | null): string => s ? `[${s.join(", ")}]` : "[?]";
  const lines = [`lowbit inspect: ${path} (${kind})`, "", "inputs"];
  for (const v of r.inputs) lines.push(`  ${v.name}  ${v.dtype} ${shape(v.shape)}`);
  lines.push("outputs");
  for (const v of r.outputs) lines.push(`  ${v.name}  ${v.dtype} ${shape(v.shape)}`);
  lines.push("", `operators (${Object.values(r.ops).reduce((a, b) => a + b, 0)} nodes)`);
  for (
    const [op, n] of Object.entries(r.ops).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
  ) {
    const bad = r.unsupported.some((u) => opKey(u.op, u.domain) === op);
    const mark = bad ? "  (unsupported)" : LAYER_OPS.includes(op) ? "  (layer op)" : "";
    lines.push(`  ${String(n).padStart(5)}  ${op}${mark}`);
  }
  if (r.unsupported.length) {
    lines.push(
      "",
      `unsupported by lowbit's executor (${r.unsupported.length} nodes; run and quantize refuse ` +
        "this model)",
    );
    for (const u of r.unsupported) lines.push(`  ${u.node}  ${opKey(u.op, u.domain)}`);
  }
  lines.push("", `parameters: ${r.params.toLocaleString("en-US")}`, "");
  const w = Math.max(5, ...r.layers.map((l) => l.node.length));
  lines.push(`quantizable layers (${r.layers.length})`);
  for (const l of r.layers) {
    lines.push(
      `  ${l.node.padEnd(w)}  ${l.op.padEnd(13)}  ${shape(l.shape).padEnd(18)}  ${
        l.params.toLocaleString("en-US")
      } params`,
    );
  }
  if (r.notQuantizable.length) {
    lines.push("", `not quantizable (${r.notQuantizable.length})`);
    for (const x of r.notQuantizable) lines.push(`  ${x.node}  ${x.op}: ${x.reason}`);
  }
  if (r.layers.length === 0) {
    lines.push("  (none: lowbit quantize would refuse this model)");
  }
  console.log(lines.join("\n"));
  return 0;
}

function dirOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
}

/** The `inspect` subcommand. */
export const inspectCommand: Command = {
  summary: "inputs, outputs, operators, parameters, and which layers are quantizable (and why not)",
  main: inspectMain,
};
