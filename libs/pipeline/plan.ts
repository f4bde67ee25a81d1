/**
 * The QuantPlan: a serialisable JSON document saying, for every weight and
 * input activation of every quantizable layer, how it is quantized: format,
 * granularity (in core's vocabulary, on the tensor's own layout), mode,
 * calibrator or rounding, and, once fitted, the scales and zero points. It can
 * be written next to the output, edited by hand and replayed with `--plan`.
 *
 * ```json
 * {
 *   "version": 1,
 *   "model": { "name": "cnn.onnx", "sha256": "…" },
 *   "preset": "w8a8",
 *   "options": { "smoothquant": null, "biasCorrection": false, "gptq": { "blockSize": 128, "damp": 0.01, "actOrder": false } },
 *   "entries": [
 *     { "node": "conv1", "value": "conv1.weight", "role": "weight", "format": "int8",
 *       "granularity": { "kind": "channel", "axis": 0 }, "mode": "symmetric", "rounding": "rtn",
 *       "scale": [0.01, …], "zeroPoint": [0, …] },
 *     { "node": "conv1", "value": "x", "role": "activation", "format": "int8",
 *       "granularity": { "kind": "tensor" }, "mode": "affine", "calibrator": "minmax",
 *       "scale": [0.0039], "zeroPoint": [-128] },
 *     { "node": "head", "value": "head.weight", "role": "weight", "skip": true, "reason": "rule 2 'head*'" }
 *   ]
 * }
 * ```
 *
 * Weight granularity: `channel` on the output-channel axis (0 for Conv and
 * Gemm transB=1, 1 for MatMul and Gemm transB=0); `group` along the input axis
 * (1 for Conv, in input channels; scales then also vary over the kernel
 * window, as ONNX blocked quantization does). Block formats (MX, NVFP4) carry
 * their own scales: their entries say `{ "kind": "tensor" }` and `scale: [1]`;
 * the blocks run along each output channel's row of the [out, in] view (see
 * `layers.ts`), the last block zero-padded. Activations of block formats are
 * `dynamic` (scales computed per block at run time, along the channel axis).
 *
 * @module
 */

import { type Granularity, LowbitError, type QuantMode } from "@lowbit/core";
import type { Model } from "@lowbit/graph";
import type { Rounding } from "./spec.ts";
import { type Layer, scanLayers } from "./layers.ts";

/** Current plan schema version. */
export const PLAN_VERSION = 2;

/**
 * How one value is quantized: a quantization point of the model, keyed by `value` (any tensor:
 * a layer's weight or input, a Softmax output, a Concat input...).
 */
export interface PlanEntry {
  /** The layer (node) a weight belongs to; for an activation, a node reading it (or its producer). */
  node: string;
  /** The tensor quantized: a weight initializer or any activation of the graph. */
  value: string;
  /** Which of the layer's tensors. */
  role: "weight" | "activation";
  /** Left in float. */
  skip?: boolean;
  /** Why it is skipped (rule, unsupported shape, ...). */
  reason?: string;
  /** Registry format name. */
  format?: string;
  /** Granularity on the tensor's own layout. */
  granularity?: Granularity;
  /** Symmetric or affine. */
  mode?: QuantMode;
  /** Activations: calibrator name ("minmax", "percentile", "mse", "kl", ...; "dynamic" for block formats). */
  calibrator?: string;
  /** Weights: rounding. */
  rounding?: Rounding;
  /** Scales computed per block at run time (block formats' activations). */
  dynamic?: boolean;
  /** Fitted scales (one per tensor / channel / group), once known. */
  scale?: number[];
  /** Fitted zero points, in code units, once known. */
  zeroPoint?: number[];
  /** Registered quantizer (default: the built-in one for the format: uniform, block, scaled). */
  quantizer?: string;
  /** The quantizer's other fitted parameters (block scale codes, a ternary γ, a log base...). */
  extra?: Record<string, number[]>;
  /** Graph values the quantizer reads at run time (a time input, an adjacency). */
  reads?: string[];
  /** Who asked for this point: a plugin's marker name; absent for the layers' own points. */
  by?: string;
  /** Why it is a point ("Softmax output", ...), for the report. */
  note?: string;
}

/** Plan-level options that affect the result. */
export interface PlanOptions {
  /** SmoothQuant migration strength α, or null when off. */
  smoothquant: number | null;
  /**
   * Bias correction: true corrects each layer's output mean for its weights' rounding and its
   * quantized input's mean shift; "weights" for the weights' rounding only; false: off.
   */
  biasCorrection: boolean | "weights";
  /** GPTQ settings (used by entries with `rounding: "gptq"`). */
  gptq: { blockSize: number; damp: number; actOrder: boolean };
  /** Convs dominated by one tap were split at this threshold in bits (`splitDominantTaps`). */
  splitTaps?: number;
  /**
   * The rounded weights were refitted from the quantized model's own inputs (`propagate`): a
   * replay refits them again from its calibration data.
   */
  propagate?: boolean;
}

/** The plan. */
export interface QuantPlan {
  /** Schema version ({@link PLAN_VERSION}). */
  version: number;
  /** The model it was made for. */
  model: { name: string; sha256: string };
  /** Preset it came from, if any. */
  preset: string | null;
  /** Options. */
  options: PlanOptions;
  /** SmoothQuant per-input-channel factors by node (weights were multiplied, inputs divided). */
  smoothing?: Record<string, number[]>;
  /** Range-equalisation factors by activation value (the value was divided, its Conv weights multiplied). */
  equalization?: Record<string, number[]>;
  /** Plugins that took part (replaying the plan loads them again). */
  plugins?: { name: string; version: string; source?: string }[];
  /** Plugin option values the plan was made with. */
  pluginOptions?: Record<string, string | number | boolean>;
  /** What the mixed-precision search chose, when `--preset mixed` made the plan. */
  search?: {
    metric: string;
    strategy: string;
    allocation: Record<string, string>;
    /** Format per activation point the search allocated (`--budget-act`; "none": float). */
    points?: Record<string, string>;
  };
  /** Weight entries (one per layer weight) and activation entries (one per quantized value). */
  entries: PlanEntry[];
}

/**
 * SHA-256 of bytes, lower-case hex.
 *
 * @param bytes the data (e.g. the model file)
 * @returns the hex digest
 *
 * @example
 * ```ts
 * import { sha256Hex } from "@lowbit/pipeline";
 * const h = await sha256Hex(new Uint8Array());
 * if (!h.startsWith("e3b0c442")) throw new Error(h);
 * ```
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Number of scales a granularity gives on a shape (or an error message). */
function scaleCount(shape: readonly number[], g: Granularity): number | string {
  if (g.kind === "tensor" || g.kind === "block" || g.kind === "row") return 1;
  if (!Number.isInteger(g.axis) || g.axis < 0 || g.axis >= shape.length) {
    return `axis ${g.axis} is out of range for shape [${shape}]`;
  }
  const total = shape.reduce((a, b) => a * b, 1);
  if (g.kind === "channel") return shape[g.axis];
  if (!Number.isInteger(g.size) || g.size < 1 || shape[g.axis] % g.size !== 0) {
    return `group size ${g.size} does not divide axis ${g.axis} of shape [${shape}]`;
  }
  return total / g.size;
}

function isGranularity(g: unknown): g is Granularity {
  if (!g || typeof g !== "object") return false;
  const o = g as Record<string, unknown>;
  if (o.kind === "tensor") return true;
  if (o.kind === "channel") return typeof o.axis === "number";
  if (o.kind === "group" || o.kind === "block") {
    return typeof o.axis === "number" && typeof o.size === "number";
  }
  if (o.kind === "row") return typeof o.axis === "number";
  return false;
}

/**
 * Parses and checks the shape of a plan read from JSON (not yet against a
 * model: see {@link validatePlan}).
 *
 * @param json the parsed JSON
 * @param file the file, for messages
 * @returns the plan
 *
 * @example
 * ```ts
 * import { parsePlan } from "@lowbit/pipeline";
 * const plan = parsePlan({ version: 1, model: { name: "m", sha256: "" }, preset: null,
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [] });
 * if (plan.entries.length !== 0) throw new Error();
 * ```
 */
export function parsePlan(json: unknown, file?: string): QuantPlan {
  const subject = file === undefined ? {} : { file };
  const bad = (msg: string): never => {
    throw new LowbitError("INVALID_ARGUMENT", `not a lowbit plan: ${msg}`, subject);
  };
  if (!json || typeof json !== "object" || Array.isArray(json)) bad("expected a JSON object");
  const p = json as Record<string, unknown>;
  if (p.version !== PLAN_VERSION && p.version !== 1) {
    bad(`version ${p.version}; this lowbit reads 1 and ${PLAN_VERSION}`);
  }
  if (!Array.isArray(p.entries)) bad(`"entries" must be an array`);
  const entries = p.entries as unknown[];
  entries.forEach((e, i) => {
    if (!e || typeof e !== "object") bad(`entry ${i} is not an object`);
    const o = e as Record<string, unknown>;
    if (typeof o.node !== "string" || typeof o.value !== "string") {
      bad(`entry ${i} needs string "node" and "value"`);
    }
    if (o.role !== "weight" && o.role !== "activation") {
      bad(`entry ${i} has role ${JSON.stringify(o.role)}; use "weight" or "activation"`);
    }
    if (o.skip === true) return;
    if (typeof o.format !== "string") bad(`entry ${i} (${o.node}) needs a "format"`);
    if (!isGranularity(o.granularity)) bad(`entry ${i} (${o.node}) has a bad "granularity"`);
    if (o.mode !== "symmetric" && o.mode !== "affine") {
      bad(`entry ${i} (${o.node}) needs "mode": "symmetric" or "affine"`);
    }
    if (o.extra !== undefined) {
      const x = o.extra as Record<string, unknown>;
      if (
        typeof x !== "object" || x === null ||
        !Object.values(x).every((v) => Array.isArray(v) && v.every(Number.isFinite))
      ) {
        bad(`entry ${i} (${o.node}) "extra" must map names to arrays of finite numbers`);
      }
    }
    for (const k of ["scale", "zeroPoint"]) {
      if (
        o[k] !== undefined && !(Array.isArray(o[k]) && (o[k] as unknown[]).every(Number.isFinite))
      ) {
        bad(`entry ${i} (${o.node}) "${k}" must be an array of finite numbers`);
      }
    }
  });
  const opts = (p.options ?? {}) as Partial<PlanOptions>;
  const model = (p.model ?? {}) as { name?: unknown; sha256?: unknown };
  return {
    version: PLAN_VERSION,
    model: {
      name: typeof model.name === "string" ? model.name : "",
      sha256: typeof model.sha256 === "string" ? model.sha256 : "",
    },
    preset: typeof p.preset === "string" ? p.preset : null,
    options: {
      smoothquant: typeof opts.smoothquant === "number" ? opts.smoothquant : null,
      biasCorrection: opts.biasCorrection === "weights" ? "weights" : opts.biasCorrection === true,
      gptq: {
        blockSize: opts.gptq?.blockSize ?? 128,
        damp: opts.gptq?.damp ?? 0.01,
        actOrder: opts.gptq?.actOrder ?? false,
      },
      ...(typeof opts.splitTaps === "number" ? { splitTaps: opts.splitTaps } : {}),
      ...(opts.propagate === true ? { propagate: true } : {}),
    },
    ...(p.smoothing && typeof p.smoothing === "object"
      ? { smoothing: p.smoothing as Record<string, number[]> }
      : {}),
    ...(p.equalization && typeof p.equalization === "object"
      ? { equalization: p.equalization as Record<string, number[]> }
      : {}),
    ...(p.search && typeof p.search === "object"
      ? { search: p.search as NonNullable<QuantPlan["search"]> }
      : {}),
    ...(Array.isArray(p.plugins)
      ? { plugins: p.plugins as NonNullable<QuantPlan["plugins"]> }
      : {}),
    ...(p.pluginOptions && typeof p.pluginOptions === "object"
      ? { pluginOptions: p.pluginOptions as NonNullable<QuantPlan["pluginOptions"]> }
      : {}),
    entries: entries as PlanEntry[],
  };
}

/** Outcome of validating a plan against a model. */
export interface PlanCheck {
  /** Non-fatal findings (e.g. the model hash differs). */
  warnings: string[];
}

/**
 * Checks that a plan fits a model: every entry names a quantizable layer of
 * the model and that layer's weight or input, granularities fit the tensor
 * shapes, fitted scales have the right count, formats exist. Anything that
 * does not fit is a `LowbitError` naming the node and what is off.
 *
 * @param plan the plan
 * @param model the model
 * @param sha256 the model file's hash (a mismatch is a warning)
 * @param hasFormat whether a format name exists (defaults to accepting all)
 * @returns warnings
 *
 * @example
 * ```ts
 * import { validatePlan } from "@lowbit/pipeline";
 * const model = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [], outputs: [], valueInfo: new Map(), nodes: [], initializers: new Map() } };
 * const plan = { version: 1, model: { name: "m", sha256: "x" }, preset: null,
 *   options: { smoothquant: null, biasCorrection: false, gptq: { blockSize: 128, damp: 0.01, actOrder: false } },
 *   entries: [{ node: "fc", value: "W", role: "weight" as const, skip: true }] };
 * let threw = false;
 * try { validatePlan(plan, model, "x"); } catch { threw = true; }
 * if (!threw) throw new Error("a plan naming a missing node must not fit");
 * ```
 */
export function validatePlan(
  plan: QuantPlan,
  model: Model,
  sha256: string,
  hasFormat: (name: string) => boolean = () => true,
): PlanCheck {
  const warnings: string[] = [];
  if (plan.model.sha256 && sha256 && plan.model.sha256 !== sha256) {
    warnings.push(
      `the plan was made for a different model file (${plan.model.name}, sha256 ` +
        `${plan.model.sha256.slice(0, 12)}…); its entries fit this model, replaying it anyway`,
    );
  }
  const { layers, rejected } = scanLayers(model.graph, { subgraphs: true });
  const byNode = new Map<string, Layer>();
  // A recurrent node has two weight layers (W, R): its activation point is W's.
  for (const l of layers) if (!byNode.has(l.node)) byNode.set(l.node, l);
  const seen = new Set<string>();
  const produced = new Set<string>(model.graph.inputs.map((v) => v.name));
  for (const n of model.graph.nodes) for (const o of n.outputs) produced.add(o);
  const seenValues = new Set<string>();
  for (const e of plan.entries) {
    const subject = { node: e.node };
    const layer = e.role === "weight"
      ? layers.find((l) => l.node === e.node && l.weight === e.value) ?? byNode.get(e.node)
      : byNode.get(e.node);
    if (e.role === "activation" && (!layer || layer.input !== e.value)) {
      // A point on any value of the graph (marked by a plugin, or written by hand).
      if (!produced.has(e.value)) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          "the plan quantizes this value, but the model has no such activation",
          { tensor: e.value },
        );
      }
      if (!e.skip && seenValues.has(e.value)) {
        throw new LowbitError("INVALID_ARGUMENT", "the plan quantizes this value twice", {
          tensor: e.value,
        });
      }
      if (!e.skip) seenValues.add(e.value);
      if (!e.skip && (e.format === undefined || !hasFormat(e.format))) {
        throw new LowbitError("UNKNOWN_NAME", `unknown format '${e.format}'`, { tensor: e.value });
      }
      continue;
    }
    if (!layer) {
      const rej = rejected.find((r) => r.node === e.node);
      const exists = model.graph.nodes.some((n) => n.name === e.node);
      throw new LowbitError(
        "INVALID_ARGUMENT",
        rej
          ? `the plan quantizes it, but it is not quantizable here: ${rej.reason}`
          : exists
          ? "the plan quantizes it, but it is not a Conv/Gemm/MatMul layer in this model"
          : "the plan names this node, but the model has no such node (plan made for another model?)",
        subject,
      );
    }
    const key = `${e.node}\u0000${e.role}\u0000${e.role === "weight" ? e.value : ""}`;
    if (seen.has(key)) {
      throw new LowbitError("INVALID_ARGUMENT", `the plan has two ${e.role} entries`, subject);
    }
    seen.add(key);
    if (e.role === "activation" && !e.skip) {
      if (seenValues.has(e.value)) {
        throw new LowbitError("INVALID_ARGUMENT", "the plan quantizes this value twice", {
          tensor: e.value,
        });
      }
      seenValues.add(e.value);
    }
    const expected = e.role === "weight" ? layer.weight : layer.input;
    if (e.value !== expected) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `the plan's ${e.role} is '${e.value}', but the model's is '${expected}'`,
        subject,
      );
    }
    if (e.skip) continue;
    if (e.format === undefined || !hasFormat(e.format)) {
      throw new LowbitError("UNKNOWN_NAME", `unknown format '${e.format}'`, subject);
    }
    if (e.role === "weight" && e.granularity && e.granularity.kind !== "block") {
      const n = scaleCount(layer.shape, e.granularity);
      if (typeof n === "string") {
        throw new LowbitError("SHAPE_MISMATCH", `weight granularity does not fit: ${n}`, subject);
      }
      if (
        e.scale && e.scale.length !== n
      ) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `the plan has ${e.scale.length} weight scales; weight [${layer.shape}] under ` +
            `${JSON.stringify(e.granularity)} needs ${n}`,
          subject,
        );
      }
    }
    if (e.scale && e.zeroPoint && e.scale.length !== e.zeroPoint.length) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${e.role}: ${e.scale.length} scales but ${e.zeroPoint.length} zero points`,
        subject,
      );
    }
  }
  return { warnings };
}
