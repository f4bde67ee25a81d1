/**
 * The MoE plugin's command-line options and how their values are read (defaults when a library
 * caller leaves them out), and the override file behind `--moe-config`.
 *
 * @module
 */

import {
  type GraphView,
  LowbitError,
  type PluginOption,
  type PluginOptionValues,
} from "@lowbit/core";
import { detectMoE, type MoEInfo, parseOverride } from "./detect.ts";

/** The options the plugin registers. */
export const MOE_OPTIONS: readonly PluginOption[] = [
  {
    name: "moe-calib",
    type: "string",
    choices: ["balanced", "natural"],
    default: "balanced",
    help: "moe: calibration routing; balanced: every expert gets >= --moe-min-tokens tokens",
  },
  {
    name: "moe-min-tokens",
    type: "number",
    default: 256,
    help: "moe: calibration tokens every expert receives at least (balanced calibration)",
  },
  {
    name: "moe-hessian",
    type: "string",
    choices: ["affinity", "plain"],
    default: "affinity",
    help: "moe: GPTQ Hessian rows of an expert weighted by the token's gate value, or not",
  },
  {
    name: "moe-affinity-floor",
    type: "number",
    default: 0.01,
    help: "moe: smallest GPTQ row weight (gates below it count as this; 0: exact gates)",
  },
  {
    name: "moe-router",
    type: "string",
    choices: ["float", "preset"],
    default: "float",
    help: "moe: routers kept in float, or quantized like the other layers (preset)",
  },
  {
    name: "moe-thin",
    type: "number",
    default: 16,
    help: "moe: experts the data routes fewer tokens to get dynamic per-token activation scales",
  },
  {
    name: "moe-config",
    type: "string",
    help: 'moe: JSON naming routers and experts: {"routers":[{"router":N,"experts":[PAT,...]}]}',
  },
];

/** Option values with defaults filled. */
export interface MoEOptions {
  /** Balanced or natural calibration routing. */
  readonly calib: "balanced" | "natural";
  /** Minimum calibration tokens per expert. */
  readonly minTokens: number;
  /** Affinity-weighted or plain GPTQ Hessians. */
  readonly hessian: "affinity" | "plain";
  /** Smallest row weight of affinity-weighted Hessians. */
  readonly floor: number;
  /** Routers in float or as the preset says. */
  readonly router: "float" | "preset";
  /** Natural token count below which an expert's activations are dynamic per token. */
  readonly thin: number;
  /** Override file, if any. */
  readonly config?: string;
}

/**
 * Reads the plugin's option values (as the CLI or a library caller gives them).
 *
 * @param o plugin option values
 * @returns the values with defaults
 *
 * @example
 * ```ts
 * import { moeOptions } from "@lowbit/moe";
 * const o = moeOptions({ "moe-calib": "natural" });
 * if (o.calib !== "natural" || o.minTokens !== 256 || o.hessian !== "affinity") throw new Error();
 * ```
 */
export function moeOptions(o: PluginOptionValues): MoEOptions {
  const num = (k: string, d: number) => {
    const v = o[k];
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) {
      throw new LowbitError("INVALID_ARGUMENT", `--${k} needs a number >= 0, got '${v}'`);
    }
    return x;
  };
  const pick = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = o[k] ?? allowed[0];
    if (!allowed.includes(v as T)) {
      throw new LowbitError("INVALID_ARGUMENT", `--${k} must be one of ${allowed.join(", ")}`);
    }
    return v as T;
  };
  return {
    calib: pick("moe-calib", ["balanced", "natural"]),
    minTokens: num("moe-min-tokens", 256),
    hessian: pick("moe-hessian", ["affinity", "plain"]),
    floor: num("moe-affinity-floor", 0.01),
    router: pick("moe-router", ["float", "preset"]),
    thin: num("moe-thin", 16),
    ...(typeof o["moe-config"] === "string" ? { config: o["moe-config"] } : {}),
  };
}

/**
 * Detection with the override file of `--moe-config`, if given.
 *
 * @param graph the graph
 * @param config override file path
 * @returns what was found
 *
 * @example
 * ```ts
 * import { detectWithConfig } from "@lowbit/moe";
 * const e = (() => { try { detectWithConfig({ nodes: [], inputs: [], outputs: [],
 *   initializers: new Map() }, "no/such.json"); } catch (e) { return e; } })();
 * if ((e as { code?: string }).code !== "IO_ERROR") throw new Error();
 * ```
 */
export function detectWithConfig(graph: GraphView, config?: string): MoEInfo {
  if (!config) return detectMoE(graph);
  let text: string;
  try {
    text = Deno.readTextFileSync(config);
  } catch (e) {
    throw new LowbitError("IO_ERROR", `cannot read: ${(e as Error).message}`, { file: config });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LowbitError("PARSE_ERROR", `not JSON: ${(e as Error).message}`, { file: config });
  }
  return detectMoE(graph, parseOverride(json, config));
}
