/**
 * The extension points a plugin registers beside formats, quantizers, calibrators, metrics and
 * strategies: which values to quantize (markers), where calibration data comes from (sources),
 * hooks that act during calibration (graph / input transforms, GPTQ row weights), stages of the
 * quantize flow, search groups, and command-line options and commands.
 *
 * Core knows no graph: these signatures see a model through {@link GraphView}, a structural
 * view that `@lowbit/graph`'s IR satisfies, and tensors as {@link TensorValue}s.
 *
 * @module
 */

import type { BatchContext, Granularity, QuantMode } from "./types.ts";

/** A tensor as extension points see it (`@lowbit/graph`'s `TensorData` is one). */
export interface TensorValue {
  /** Element type name ("float32", "int64", ...). */
  readonly dtype: string;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Elements, row-major. */
  readonly data: ArrayLike<unknown>;
}

/** One node of a graph, as extension points see it. */
export interface NodeView {
  /** Unique node name. */
  readonly name: string;
  /** Operator type. */
  readonly op: string;
  /** Operator domain ("" for ONNX). */
  readonly domain: string;
  /** Input value names ("" for an absent optional input). */
  readonly inputs: readonly string[];
  /** Output value names. */
  readonly outputs: readonly string[];
  /** Attributes by name (`{ kind, value }` records in lowbit's IR). */
  readonly attrs: Readonly<Record<string, unknown>>;
}

/** A graph, as extension points see it (lowbit's graph IR satisfies this). */
export interface GraphView {
  /** Nodes in file order. */
  readonly nodes: readonly NodeView[];
  /** Graph inputs. */
  readonly inputs: readonly {
    readonly name: string;
    readonly dtype: string;
    readonly shape?: readonly unknown[];
  }[];
  /** Graph outputs. */
  readonly outputs: readonly { readonly name: string }[];
  /** Constant tensors by name. */
  readonly initializers: ReadonlyMap<string, TensorValue>;
}

/** Who writes and who reads each value of a graph. */
export interface ValueLinks<N> {
  /** The node writing each value (graph inputs and constants have none). */
  readonly producer: Map<string, N>;
  /** The nodes reading each value, in node order (absent optional inputs are not listed). */
  readonly consumers: Map<string, N[]>;
}

/**
 * The producer and consumers of every value of a graph, for pattern matching in markers,
 * search groups and stages.
 *
 * @param graph the graph (any node type with inputs and outputs)
 * @returns the links
 *
 * @example
 * ```ts
 * import { valueLinks } from "@lowbit/core";
 * const n = (name: string, inputs: string[], outputs: string[]) => ({ name, inputs, outputs });
 * const { producer, consumers } = valueLinks({ nodes: [n("a", ["x"], ["y"]), n("b", ["y", ""], ["z"])] });
 * if (producer.get("y")?.name !== "a" || consumers.get("y")?.[0].name !== "b" || consumers.has("")) {
 *   throw new Error();
 * }
 * ```
 */
export function valueLinks<
  N extends { readonly inputs: readonly string[]; readonly outputs: readonly string[] },
>(graph: { readonly nodes: readonly N[] }): ValueLinks<N> {
  const producer = new Map<string, N>();
  const consumers = new Map<string, N[]>();
  for (const n of graph.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) list.push(n);
      else consumers.set(i, [n]);
    }
  }
  return { producer, consumers };
}

/** Values of plugin options, by option name (as given on the command line or by the API). */
export type PluginOptionValues = Readonly<Record<string, string | number | boolean | undefined>>;

/** A value a marker asks to quantize, and optionally how. */
export interface MarkSpec {
  /** Value name (any tensor of the graph). */
  readonly value: string;
  /** Registered quantizer; default: the built-in one for the format. */
  readonly quantizer?: string;
  /** Format; default: the preset's activation format. */
  readonly format?: string;
  /** Granularity; default per tensor. */
  readonly granularity?: Granularity;
  /** Symmetric or affine; default the preset's. */
  readonly mode?: QuantMode;
  /** Calibrator; default the preset's. */
  readonly calibrator?: string;
  /** Graph values the quantizer reads at run time (see `QParams.reads`). */
  readonly reads?: readonly string[];
  /** Why it is marked, for the plan and the report ("Softmax output", ...). */
  readonly note?: string;
}

/** Says which values of a graph to quantize, by pattern ("every Softmax output", ...). */
export interface Marker {
  /** Registry name. */
  readonly name: string;
  /** The values to quantize; an empty list when the pattern is absent. */
  mark(graph: GraphView, options: PluginOptionValues): MarkSpec[];
}

/** One batch a calibration source yields. */
export interface SourceBatch {
  /** Model inputs by name. */
  readonly inputs: Readonly<Record<string, TensorValue>>;
  /** Tags per sample (a timestep, ...), handed to observers in the {@link BatchContext}. */
  readonly tags?: Readonly<Record<string, ArrayLike<number>>>;
}

/** What a calibration source is given. */
export interface SourceContext {
  /** The prepared float model's graph. */
  readonly graph: GraphView;
  /** Runs the float model (e.g. a sampler loop that runs the model itself). */
  run(inputs: Readonly<Record<string, TensorValue>>): Promise<Record<string, TensorValue>>;
  /** Plugin options. */
  readonly options: PluginOptionValues;
  /** Calibration data the user gave, if any (a source may transform it). */
  readonly data?: {
    readonly inputs: Readonly<Record<string, TensorValue>>;
    readonly count: number;
  };
  /** Samples per batch. */
  readonly batchSize: number;
}

/** Where calibration data comes from, when not (only) from a file. */
export interface CalibrationSource {
  /** Registry name. */
  readonly name: string;
  /** Whether this source applies (e.g. the plugin's model shape is found); default yes. */
  applies?(graph: GraphView, options: PluginOptionValues): boolean;
  /**
   * The model inputs this source makes itself (a diffusion model's time input, when it
   * forward-noises the given images): calibration data need not give them. Default none.
   */
  provides?(graph: GraphView, options: PluginOptionValues): readonly string[];
  /** The batches, in order. */
  batches(ctx: SourceContext): AsyncIterable<SourceBatch>;
}

/** A layer as calibration hooks see it. */
export interface LayerView {
  /** Node name. */
  readonly node: string;
  /** Operator. */
  readonly op: string;
  /** The input activation's value name. */
  readonly input: string;
}

/** A batch as a hook sees it: context plus the values it asked to watch. */
export interface HookBatch extends BatchContext {
  /** Watched values of this batch. */
  readonly values: ReadonlyMap<string, TensorValue>;
}

/** Acts during calibration only. */
export interface CalibrationHook {
  /** Registry name. */
  readonly name: string;
  /** Values the hook wants to see every batch. */
  watch?(graph: GraphView, options: PluginOptionValues): string[];
  /** Rewrites the graph used for calibration (never the exported model). */
  transformGraph?<G extends GraphView>(graph: G, options: PluginOptionValues): G;
  /**
   * Weights of the rows a layer's GPTQ Hessian accumulates this batch (one per input row, in
   * the order the layer's input rows come: samples, then positions); undefined: all 1.
   */
  rowWeights?(layer: LayerView, batch: HookBatch, rows: number): Float32Array | undefined;
}

/** Groups for the mixed-precision search. */
export interface SearchGroups {
  /** Layers (node names) that must share a weight format. */
  readonly ties?: readonly (readonly string[])[];
  /** Candidate list per layer, replacing the global one. */
  readonly candidates?: Readonly<Record<string, readonly string[]>>;
  /**
   * Activation values that are not layer inputs (a GNN's aggregation inputs and outputs) whose
   * formats `--preset mixed` allocates from `--act-formats` under `--budget-act` (average bits
   * per element); the plugin's markers quantize them with the chosen formats.
   */
  readonly points?: readonly string[];
}

/** Supplies search groups and candidate sets. */
export interface SearchGroupProvider {
  /** Registry name. */
  readonly name: string;
  /** Groups for the given layers of a graph. */
  groups(graph: GraphView, layers: readonly string[], options: PluginOptionValues): SearchGroups;
}

/**
 * A stage of the quantize flow. Stages run in order; a plugin's stage names the stage it runs
 * after (or before). `state` is the pipeline's `QuantizeState` (`@lowbit/pipeline`).
 */
export interface Stage {
  /** Registry name. */
  readonly name: string;
  /** Runs right after this stage (default: at the end). */
  readonly after?: string;
  /** Runs right before this stage. */
  readonly before?: string;
  /** Does the work; `state` is `@lowbit/pipeline`'s `QuantizeState`. */
  run(state: any): Promise<void> | void;
}

/** A command-line option a plugin adds to `lowbit quantize` (and `eval`, `inspect`). */
export interface PluginOption {
  /** Option name without dashes ("vit-softmax"). */
  readonly name: string;
  /** Value type. */
  readonly type: "string" | "number" | "boolean";
  /** One line of help. */
  readonly help: string;
  /** Allowed values (strings), if a closed set. */
  readonly choices?: readonly string[];
  /** Default value. */
  readonly default?: string | number | boolean;
}

/** A command a plugin adds (`lowbit diffusion sample`). */
export interface PluginCommand {
  /** Command name (the first word after `lowbit`). */
  readonly name: string;
  /** One line for `lowbit help`. */
  readonly summary: string;
  /** Runs it with the remaining arguments; returns the exit code. */
  main(args: string[]): Promise<number>;
}

/** A part of the HTML report a plugin adds. */
export interface ReportPart {
  /** Heading of the section. */
  readonly title: string;
  /** Self-contained HTML (tables, inline SVG); no scripts, no network. */
  readonly html: string;
}

/** What a report section is given. */
export interface ReportContext {
  /** The prepared float model's graph. */
  readonly graph: GraphView;
  /** The fitted plan (JSON). */
  readonly plan: unknown;
  /** Plugin option values. */
  readonly options: PluginOptionValues;
  /** The evaluation data (or the calibration data without it): model inputs, samples first. */
  readonly inputs?: Readonly<Record<string, TensorValue>>;
  /** The prepared float model and the quantized model as written (`@lowbit/graph` Models). */
  readonly models: { readonly float: unknown; readonly quantized: unknown };
  /** Runs the prepared float model. */
  runFloat(inputs: Readonly<Record<string, TensorValue>>): Promise<Record<string, TensorValue>>;
  /** Runs the quantized model as it is written. */
  runQuantized(inputs: Readonly<Record<string, TensorValue>>): Promise<Record<string, TensorValue>>;
}

/** Adds a section to `lowbit quantize`'s HTML report (routing agreement, ε over t, ...). */
export interface ReportSection {
  /** Registry name. */
  readonly name: string;
  /** The section, or undefined when it has nothing to say about this model. */
  render(ctx: ReportContext): Promise<ReportPart | undefined>;
}

/** What an {@link Inspector} has to say about a model, for `lowbit inspect`. */
export interface InspectPart {
  /** Section title ("MoE routing", ...). */
  readonly title: string;
  /** Text lines, printed under the title. */
  readonly lines: readonly string[];
  /** Plain data for `lowbit inspect --json` (under `plugins.sections.<inspector name>`). */
  readonly data?: unknown;
}

/**
 * Adds a section to `lowbit inspect --plugin NAME`: what the plugin finds in a model before any
 * quantization (routers and experts, message-passing aggregations, the time input, ...).
 */
export interface Inspector {
  /** Registry name. */
  readonly name: string;
  /** The section, or undefined when the plugin finds nothing in this model. */
  inspect(graph: GraphView, options: PluginOptionValues): InspectPart | undefined;
}
