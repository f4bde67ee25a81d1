/**
 * `lowbit inspect`: what a model is made of and what lowbit can quantize in
 * it — inputs, outputs, an operator histogram, parameters per layer, the
 * quantizable layers and, for every other Conv / Gemm / MatMul, why not. Ops the
 * executor does not run are marked (with their node names) instead of failing:
 * `run` and `quantize` refuse such models, naming the node. For a model lowbit
 * quantized (QDQ ONNX or a lowbit file), its quantization points: per weight and
 * activation, the reading layers, format, bits, granularity, mode and scales.
 *
 * ```sh
 * lowbit inspect model.onnx [--json]
 * ```
 *
 * @module
 */

import {
  defaultRegistry,
  getFormat,
  type GraphView,
  type InspectPart,
  LowbitError,
  type QuantPoint,
} from "@lowbit/core";
import {
  decodeLowbitFile,
  type Graph,
  isSupportedOp,
  lowbitPoints,
  type Model,
  readOnnx,
  readQdqPoints,
  unreadOutputs,
  type ValueInfo,
  walkGraphs,
} from "@lowbit/graph";
import {
  isLowbitPath,
  LAYER_OPS,
  prepareFolds,
  readModelBytes,
  scanLayers,
} from "@lowbit/pipeline";
import type { Command } from "./_command.ts";
import {
  loadPlugins,
  pluginHelp,
  pluginOptionValues,
  pluginParseOptions,
  splitPluginArgs,
} from "../plugins.ts";
import { parseOptions } from "./_io.ts";

const HELP = `usage: lowbit inspect MODEL [--json] [--plugin NAME|PATH ...]

Prints a model's inputs and outputs, operator histogram, parameters per layer,
and which layers lowbit quantizes (Conv, ConvTranspose, Gemm, MatMul with a
float32 constant weight) and why the others are not. Operators lowbit cannot
run are marked "(unsupported)" and their nodes listed; run and quantize refuse
such a model. For a quantized model (QDQ ONNX or a .lowbit file): every
quantization point with the layers reading it, its format, bits, granularity,
mode and scales (and for a lowbit file its quantizer, the plugin that marked it
and the plan's preset and plugins). With --plugin, what each plugin's markers
would quantize and what its inspectors find (routers and experts, ...).

  --plugin NAME|PATH  load a plugin (repeatable; built-ins vit, diffusion, gnn, moe)
  --no-fold   inspect the graph as written (default: as quantize sees it: Constant
              nodes, weights computed inside If / Loop bodies and BatchNormalization
              folded)
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
  /**
   * Total parameters: elements of the float and integer initializers (weights, biases, norms; a
   * quantized file's integer weights, scales and zero points; not int64 shapes or indices, nor
   * bool), those of subgraphs and of folded Constant nodes included; `lowbit inspect` adds a
   * lowbit file's weight codes.
   */
  params: number;
  /**
   * Quantizable layers, those inside If / Loop / Scan bodies included (with their `scope`, the
   * path of the nodes and attributes that hold them: "If_25/else_branch").
   */
  layers: {
    node: string;
    op: string;
    weight: string;
    shape: number[];
    params: number;
    scope?: string;
    /** A recurrent node's weight: "input" (W) or "recurrence" (R). */
    part?: string;
  }[];
  /** Nodes of layer operators that are not quantizable, with the reason. */
  notQuantizable: { node: string; op: string; reason: string }[];
  /**
   * Nodes whose operator the executor does not run (run / quantize refuse the model); a node
   * of a subgraph is named `outer/attribute/inner`.
   */
  unsupported: { node: string; op: string; domain: string }[];
  /** Quantization points of a quantized model (empty for a float one). */
  quantized: InspectedPoint[];
}

/** One quantization point of a quantized model, as `inspect` shows it. */
export interface InspectedPoint {
  /** The quantized value. */
  value: string;
  /** Weight or activation. */
  role: "weight" | "activation";
  /** The nodes reading it (through its Q / DQ nodes). */
  readers: string[];
  /** Format name. */
  format: string;
  /** Bits per element of the format (0 when the format is not registered here). */
  bits: number;
  /** Granularity: `tensor`, `channel:AXIS`, `group:AXIS/SIZE`, `block:AXIS/SIZE`, `row:AXIS`. */
  granularity: string;
  /** Symmetric or affine. */
  mode: string;
  /** Scales computed at run time (no stored scales). */
  dynamic: boolean;
  /** Number of stored scales, and their smallest and largest. */
  scales: { count: number; min: number; max: number };
  /** The zero point when it is the same everywhere. */
  zeroPoint?: number;
  /** Registered quantizer. */
  quantizer: string;
  /** The quantizer's fitted extras (MX block scale codes, a log base, ...): their lengths. */
  extra?: Record<string, number>;
  /** The plugin that marked it, if one did. */
  by?: string;
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
export function inspectModel(model: Model, points: readonly QuantPoint[] = []): Inspection {
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
  for (const v of walkGraphs(g)) {
    for (const t of v.graph.initializers.values()) {
      if (!NOT_PARAMS.has(t.dtype)) params += t.shape.reduce((a, b) => a * b, 1);
    }
  }
  // As quantize scans them: layers inside subgraphs are quantized too.
  const { layers, rejected } = scanLayers(g, { subgraphs: true });
  const quantized = points.map((p) => inspectPoint(g, p));
  const readsQuantizedWeight = new Set(
    quantized.filter((p) => p.role === "weight").flatMap((p) => p.readers),
  );
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
      ...(l.scope ? { scope: l.scope } : {}),
      ...(l.part ? { part: l.part } : {}),
    })),
    // A layer whose weight is already quantized is listed with its points, not as a refusal.
    notQuantizable: rejected.filter((r) => !readsQuantizedWeight.has(r.node)),
    unsupported,
    quantized,
  };
}

/**
 * The dtypes whose initializers are no parameters: shapes, axes and indices (int64), flags,
 * strings. Float and narrower integer ones count: a quantized file's weights are int8 / int4, its
 * biases int32.
 */
const NOT_PARAMS = new Set(["int64", "uint64", "bool", "string"]);

/** How a recurrent layer's two weights are shown. */
const PART: Record<string, string> = { input: "(W)", recurrence: "(R)" };

/** The nodes reading a value, looking through the Q / DQ nodes around it. */
function readersOf(g: Graph, value: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const todo = [value];
  while (todo.length) {
    const v = todo.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const n of g.nodes) {
      if (!n.inputs.includes(v)) continue;
      const qdq = n.op === "QuantizeLinear" || n.op === "DequantizeLinear";
      if (qdq && n.inputs[0] === v) todo.push(...n.outputs);
      else if (!qdq && !out.includes(n.name)) out.push(n.name);
    }
  }
  return out;
}

function granularityText(p: QuantPoint): string {
  const g = p.params.granularity;
  switch (g.kind) {
    case "tensor":
      return "tensor";
    case "channel":
    case "row":
      return `${g.kind}:${g.axis}`;
    case "group":
    case "block":
      return `${g.kind}:${g.axis}/${g.size}`;
  }
}

function inspectPoint(g: Graph, p: QuantPoint): InspectedPoint {
  let bits = 0;
  try {
    bits = getFormat(p.params.format).bits;
  } catch {
    // a plugin's format that is not registered here: shown by name, bits unknown (0)
  }
  const s = p.params.scale, z = p.params.zeroPoint;
  const dynamic = p.params.dynamic === true;
  return {
    value: p.value,
    role: p.role,
    readers: readersOf(g, p.value),
    format: p.params.format,
    bits,
    granularity: granularityText(p),
    mode: p.params.mode,
    dynamic,
    scales: {
      count: dynamic ? 0 : s.length,
      min: s.length && !dynamic ? Math.min(...s) : 0,
      max: s.length && !dynamic ? Math.max(...s) : 0,
    },
    ...(z.length && z.every((v) => v === z[0]) ? { zeroPoint: z[0] } : {}),
    quantizer: p.quantizer,
    ...(p.params.extra && Object.keys(p.params.extra).length
      ? {
        extra: Object.fromEntries(Object.entries(p.params.extra).map(([k, v]) => [k, v.length])),
      }
      : {}),
    ...(p.by ? { by: p.by } : {}),
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
  const split = splitPluginArgs(args);
  await loadPlugins(split.plugins);
  const help = HELP + pluginHelp();
  const { values, positionals } = parseOptions(split.rest, {
    ...pluginParseOptions(),
    json: { type: "boolean" },
    "no-fold": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, help);
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new LowbitError("INVALID_ARGUMENT", `need one model\n\n${HELP}`);
  }
  const path = positionals[0];
  // Models are only read (not prepared for running), so unsupported ops do not stop this; a
  // lowbit file is decoded, not loaded: its graph reads the quantized weights by name.
  const bytes = await readModelBytes(path);
  let model: Model, points: QuantPoint[], plan: unknown = null;
  /** A lowbit file's weight codes: parameters its graph holds outside the initializers. */
  let codes = 0;
  if (isLowbitPath(path)) {
    const file = decodeLowbitFile(bytes, path);
    model = file.model, points = lowbitPoints(file), plan = file.plan;
    const inits = new Set([...walkGraphs(file.model.graph)].flatMap((v) => [
      ...v.graph.initializers.keys(),
    ]));
    for (const [name, t] of file.tensors) {
      if (!inits.has(name)) codes += t.shape.reduce((a, b) => a * b, 1);
    }
  } else {
    model = readOnnx(bytes, { baseDir: dirOf(path), fileName: path });
    points = readQdqPoints(model.graph);
  }
  const kind = isLowbitPath(path) ? "lowbit" : points.length ? "qdq" : "float";
  // The graph quantize looks at (its folds; float files only: a quantized file is shown as written).
  if (!values["no-fold"] && kind === "float") {
    model = { ...model, graph: prepareFolds(model.graph) };
  }
  const r = inspectModel(model, points);
  r.params += codes;
  const made = planSummary(plan);
  const plugins = split.plugins.length
    ? inspectPlugins(model, pluginOptionValues(values as Record<string, unknown>))
    : undefined;
  if (values.json) {
    console.log(
      JSON.stringify({ ...r, ...(made ? { plan: made } : {}), ...(plugins ? { plugins } : {}) }),
    );
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
  // A layer inside a subgraph is named by its path, as the unsupported nodes are.
  const layerPath = (l: Inspection["layers"][number]) => l.scope ? `${l.scope}/${l.node}` : l.node;
  const w = Math.max(5, ...r.layers.map((l) => layerPath(l).length));
  lines.push(`quantizable layers (${r.layers.length})`);
  for (const l of r.layers) {
    lines.push(
      `  ${layerPath(l).padEnd(w)}  ${(l.part ? `${l.op} ${PART[l.part]}` : l.op).padEnd(13)}  ${
        shape(l.shape).padEnd(18)
      }  ${l.params.toLocaleString("en-US")} params`,
    );
  }
  if (r.notQuantizable.length) {
    lines.push("", `not quantizable (${r.notQuantizable.length})`);
    for (const x of r.notQuantizable) lines.push(`  ${x.node}  ${x.op}: ${x.reason}`);
  }
  if (r.layers.length === 0 && r.quantized.length === 0) {
    lines.push("  (none: lowbit quantize would refuse this model)");
  }
  if (r.quantized.length) lines.push("", ...pointLines(r.quantized, made));
  if (plugins) lines.push(...pluginLines(plugins));
  console.log(lines.join("\n"));
  return 0;
}

/** What the loaded plugins see in a model. */
interface PluginInspection {
  /** Values each marker would quantize, by marker name. */
  marked: Record<string, string[]>;
  /** Marked values that are graph outputs no node reads: quantize keeps them in float. */
  keptFloat: Record<string, string[]>;
  /** Each inspector's section, by inspector name (absent when it found nothing). */
  sections: Record<string, InspectPart>;
}

function inspectPlugins(
  model: Model,
  options: Record<string, string | number | boolean>,
): PluginInspection {
  const reg = defaultRegistry();
  const graph = model.graph as unknown as GraphView;
  const marked: Record<string, string[]> = {}, keptFloat: Record<string, string[]> = {};
  // As quantize plans them: a marked graph output no node reads stays float.
  const unread = unreadOutputs(model.graph);
  for (const name of reg.markers.list()) {
    const values = reg.markers.get(name).mark(graph, options).map((m) => m.value);
    marked[name] = values.filter((v) => !unread.has(v));
    const kept = values.filter((v) => unread.has(v));
    if (kept.length) keptFloat[name] = kept;
  }
  const sections: Record<string, InspectPart> = {};
  for (const name of reg.inspectors.list()) {
    const part = reg.inspectors.get(name).inspect(graph, options);
    if (part) sections[name] = part;
  }
  return { marked, keptFloat, sections };
}

function pluginLines(p: PluginInspection): string[] {
  const out: string[] = [];
  const names = Object.keys(p.marked);
  if (names.length) out.push("", "plugin markers (the values a plugin would quantize)");
  for (const name of names) {
    const v = p.marked[name];
    out.push(
      v.length
        ? `  ${name}: ${v.length} values: ${v.slice(0, 6).join(", ")}${v.length > 6 ? ", ..." : ""}`
        : `  ${name}: found nothing to quantize in this model`,
    );
    const kept = p.keptFloat[name];
    if (kept) out.push(`    kept in float (graph outputs no node reads): ${kept.join(", ")}`);
  }
  for (const part of Object.values(p.sections)) {
    out.push("", part.title, ...part.lines.map((l) => `  ${l}`));
  }
  return out;
}

/** The preset and plugins of a lowbit file's plan. */
function planSummary(plan: unknown): { preset: string | null; plugins: string[] } | undefined {
  if (!plan || typeof plan !== "object") return undefined;
  const p = plan as { preset?: unknown; plugins?: { name?: unknown; version?: unknown }[] };
  return {
    preset: typeof p.preset === "string" ? p.preset : null,
    plugins: Array.isArray(p.plugins)
      ? p.plugins.map((x) => `${x?.name}${x?.version ? `@${x.version}` : ""}`)
      : [],
  };
}

function pointLines(
  points: readonly InspectedPoint[],
  made: { preset: string | null; plugins: string[] } | undefined,
): string[] {
  const nw = points.filter((p) => p.role === "weight").length;
  const out = [
    `quantization points (${points.length}: ${nw} weights, ${points.length - nw} activations)` +
    (made
      ? `; plan: preset ${made.preset ?? "(none)"}` +
        (made.plugins.length ? `, plugins ${made.plugins.join(", ")}` : "")
      : ""),
  ];
  const num = (v: number): string => v.toPrecision(3);
  for (const p of points) {
    const scales = p.dynamic
      ? "scales at run time"
      : p.scales.count === 1
      ? `scale ${num(p.scales.min)}`
      : `${p.scales.count} scales ${num(p.scales.min)}..${num(p.scales.max)}`;
    const zp = p.zeroPoint !== undefined && p.zeroPoint !== 0 ? `, zero point ${p.zeroPoint}` : "";
    const extra = [
      p.quantizer !== "uniform" ? `quantizer ${p.quantizer}` : "",
      ...Object.entries(p.extra ?? {}).map(([k, n]) => `${k} ×${n}`),
      p.by ? `by ${p.by}` : "",
    ].filter(Boolean).join(", ");
    out.push(
      `  ${p.role.padEnd(10)}  ${p.value}  -> ${p.readers.join(", ") || "(no reader)"}`,
      `              ${p.format} (${p.bits || "?"} bits), ${p.granularity}, ${p.mode}, ` +
        `${scales}${zp}${extra ? `; ${extra}` : ""}`,
    );
  }
  return out;
}

function dirOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
}

/** The `inspect` subcommand. */
export const inspectCommand: Command = {
  summary: "inputs, outputs, operators, parameters, and which layers are quantizable (and why not)",
  main: inspectMain,
};
