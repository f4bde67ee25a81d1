/**
 * Quantization config as ordered wildcard rules over node names, in the style
 * of TensorRT Model Optimizer: every rule whose pattern matches a node applies,
 * in order, so later rules override earlier ones field by field.
 *
 * ```json
 * [
 *   { "match": "*", "weight": { "format": "int4", "granularity": "group:32" } },
 *   { "match": "conv1", "weight": { "format": "int8" } },
 *   { "match": "head*", "skip": true }
 * ]
 * ```
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { type LayerConfig, parseGranularity, type TensorSpec } from "./spec.ts";

/** A partial tensor spec: the fields a rule overrides, or null for "leave in float". */
export type TensorOverride = Partial<TensorSpec> | null;

/** One rule: a glob over node names and what to change for the nodes it matches. */
export interface Rule {
  /** Glob over node names: `*` any run of characters, `?` one character. */
  match: string;
  /** true: leave matching layers in float; false: quantize them again. */
  skip?: boolean;
  /** Weight overrides (null: float weights). */
  weight?: TensorOverride;
  /** Activation overrides (null: float activations). */
  activation?: TensorOverride;
}

/** What applying rules gives. */
export interface RulesResult {
  /** Resolved config per node name. */
  configs: Record<string, LayerConfig>;
  /** Human-readable warnings (e.g. a rule that matches nothing). */
  warnings: string[];
  /** Indexes of the rules that matched no node (each also has a warning). */
  unmatched: number[];
}

/**
 * Compiles a glob (`*`, `?`) into an anchored regular expression.
 *
 * @param pattern the glob
 * @returns a RegExp matching whole names
 *
 * @example
 * ```ts
 * import { globToRegExp } from "@lowbit/pipeline";
 * if (!globToRegExp("conv?.*").test("conv1.weight")) throw new Error();
 * if (globToRegExp("conv?").test("conv12")) throw new Error();
 * ```
 */
export function globToRegExp(pattern: string): RegExp {
  let re = "^";
  for (const ch of pattern) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(re + "$", "s");
}

function mergeSpec(
  cur: TensorSpec | null,
  over: TensorOverride | undefined,
  base: TensorSpec | null,
): TensorSpec | null {
  if (over === undefined) return cur;
  if (over === null) return null;
  const from = cur ?? base;
  const merged = { ...(from ?? {}), ...over } as Partial<TensorSpec>;
  if (merged.format === undefined || merged.granularity === undefined || !merged.mode) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `a rule turns on quantization without a full spec (format, granularity, mode): ${
        JSON.stringify(over)
      }`,
    );
  }
  return merged as TensorSpec;
}

/**
 * Applies ordered rules to every node on top of a base config. A rule that
 * matches no node is not an error: it produces a warning naming it.
 *
 * @param nodes names of the quantizable nodes
 * @param base the preset's config for every node
 * @param rules the rules, in order; later rules override earlier ones
 * @returns per-node configs and warnings
 *
 * @example
 * ```ts
 * import { applyRules } from "@lowbit/pipeline";
 * const base = {
 *   skip: false,
 *   weight: { format: "int8", granularity: "channel" as const, mode: "symmetric" as const },
 *   activation: null,
 * };
 * const { configs, warnings } = applyRules(["conv1", "fc"], base, [
 *   { match: "*", weight: { format: "int4" } },
 *   { match: "conv*", weight: { format: "int8" } },
 *   { match: "nothing*", skip: true },
 * ]);
 * if (configs.fc.weight?.format !== "int4" || configs.conv1.weight?.format !== "int8") {
 *   throw new Error();
 * }
 * if (warnings.length !== 1) throw new Error();
 * ```
 */
export function applyRules(
  nodes: readonly string[],
  base: LayerConfig,
  rules: readonly Rule[],
): RulesResult {
  const configs: Record<string, LayerConfig> = {};
  for (const n of nodes) configs[n] = structuredClone(base);
  const warnings: string[] = [];
  const unmatched: number[] = [];
  rules.forEach((rule, i) => {
    const re = globToRegExp(rule.match);
    let hits = 0;
    for (const n of nodes) {
      if (!re.test(n)) continue;
      hits++;
      const c = configs[n];
      if (rule.skip !== undefined) c.skip = rule.skip;
      c.weight = mergeSpec(c.weight, rule.weight, base.weight);
      c.activation = mergeSpec(c.activation, rule.activation, base.activation);
    }
    if (hits === 0) {
      warnings.push(unmatchedRuleWarning(rule, i));
      unmatched.push(i);
    }
  });
  return { configs, warnings, unmatched };
}

/**
 * The warning for a rule that matches nothing.
 *
 * @param rule the rule
 * @param index its index in the rules
 * @returns the warning text
 *
 * @example
 * ```ts
 * import { unmatchedRuleWarning } from "@lowbit/pipeline";
 * const w = unmatchedRuleWarning({ match: "enc*", skip: true }, 0);
 * if (w !== "rule 1 'enc*' matches no quantizable node") throw new Error(w);
 * ```
 */
export function unmatchedRuleWarning(rule: Rule, index: number): string {
  return `rule ${index + 1} '${rule.match}' matches no quantizable node`;
}

/** What the rules say about one activation point marked by a plugin. */
export interface PointOverrides {
  /** Indexes of the rules that matched. */
  matched: number[];
  /** true: leave the point in float (a `skip` rule or `activation: null`). */
  float: boolean;
  /** The merged activation fields the rules set (later rules override earlier ones). */
  activation: Partial<TensorSpec>;
}

/**
 * The rules applied to a quantization point that is not a layer's input (a
 * plugin's marked value): a rule matches when its pattern matches any of the
 * given names (the producing node's, the value's). `skip: true` or
 * `activation: null` leave it in float; `skip: false` or an activation object
 * quantize it again; activation fields merge in rule order. Weight fields do
 * not apply to activation points.
 *
 * @param names the names to match (producer node, value)
 * @param rules the rules, in order
 * @returns which rules matched and what they set
 *
 * @example
 * ```ts
 * import { ruleOverrides } from "@lowbit/pipeline";
 * const o = ruleOverrides(["/attn/Softmax", "/attn/Softmax_output_0"], [
 *   { match: "*", activation: { format: "int4" } },
 *   { match: "*Softmax", activation: { format: "int8", calibrator: "mse" } },
 * ]);
 * if (o.float || o.activation.format !== "int8" || o.activation.calibrator !== "mse") {
 *   throw new Error();
 * }
 * if (o.matched.length !== 2) throw new Error();
 * ```
 */
export function ruleOverrides(names: readonly string[], rules: readonly Rule[]): PointOverrides {
  const out: PointOverrides = { matched: [], float: false, activation: {} };
  let skip = false, noActivation = false;
  rules.forEach((rule, i) => {
    const re = globToRegExp(rule.match);
    if (!names.some((n) => re.test(n))) return;
    out.matched.push(i);
    if (rule.skip !== undefined) skip = rule.skip;
    if (rule.activation === null) noActivation = true, out.activation = {};
    else if (rule.activation !== undefined) {
      noActivation = false;
      out.activation = { ...out.activation, ...rule.activation };
    }
  });
  out.float = skip || noActivation;
  return out;
}

function parseOverride(v: unknown, where: string): TensorOverride | undefined {
  if (v === undefined) return undefined;
  if (v === null || v === false || v === "float") return null;
  if (typeof v !== "object") {
    throw new LowbitError("INVALID_ARGUMENT", `${where}: expected an object, null or "float"`);
  }
  const o = v as Record<string, unknown>;
  const out: Partial<TensorSpec> = {};
  for (const k of Object.keys(o)) {
    if (!["format", "granularity", "mode", "calibrator", "rounding", "quantizer"].includes(k)) {
      throw new LowbitError("INVALID_ARGUMENT", `${where}: unknown field '${k}'`);
    }
  }
  if (o.format !== undefined) {
    if (typeof o.format !== "string") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}.format must be a string`);
    }
    out.format = o.format;
  }
  if (o.granularity !== undefined) out.granularity = parseGranularity(o.granularity);
  if (o.mode !== undefined) {
    if (o.mode !== "symmetric" && o.mode !== "affine") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}.mode must be "symmetric" or "affine"`);
    }
    out.mode = o.mode;
  }
  if (o.quantizer !== undefined) {
    if (typeof o.quantizer !== "string") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}.quantizer must be a string`);
    }
    out.quantizer = o.quantizer;
  }
  if (o.calibrator !== undefined) {
    if (typeof o.calibrator !== "string") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}.calibrator must be a string`);
    }
    out.calibrator = o.calibrator;
  }
  if (o.rounding !== undefined) {
    if (o.rounding !== "rtn" && o.rounding !== "gptq") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}.rounding must be "rtn" or "gptq"`);
    }
    out.rounding = o.rounding;
  }
  return out;
}

/**
 * Validates rules read from JSON: an array of `{ match, skip?, weight?,
 * activation? }`, or `{ "rules": [...] }`.
 *
 * @param json the parsed JSON
 * @param file the file it came from, for messages
 * @returns the rules
 *
 * @example
 * ```ts
 * import { parseRules } from "@lowbit/pipeline";
 * const rules = parseRules([{ match: "fc*", weight: { granularity: "group:32" } }]);
 * if (rules[0].weight?.granularity === undefined) throw new Error();
 * ```
 */
export function parseRules(json: unknown, file?: string): Rule[] {
  const subject = file === undefined ? {} : { file };
  const arr = Array.isArray(json)
    ? json
    : json && typeof json === "object" && Array.isArray((json as { rules?: unknown }).rules)
    ? (json as { rules: unknown[] }).rules
    : undefined;
  if (!arr) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      'rules must be a JSON array of { "match": "<glob>", ... } (or { "rules": [...] })',
      subject,
    );
  }
  return arr.map((r, i) => {
    const where = `rule ${i + 1}`;
    if (!r || typeof r !== "object" || typeof (r as Rule).match !== "string") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}: needs a string "match"`, subject);
    }
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!["match", "skip", "weight", "activation"].includes(k)) {
        throw new LowbitError("INVALID_ARGUMENT", `${where}: unknown field '${k}'`, subject);
      }
    }
    if (o.skip !== undefined && typeof o.skip !== "boolean") {
      throw new LowbitError("INVALID_ARGUMENT", `${where}: "skip" must be true or false`, subject);
    }
    const rule: Rule = { match: o.match as string };
    if (o.skip !== undefined) rule.skip = o.skip as boolean;
    const w = parseOverride(o.weight, `${where}.weight`);
    if (w !== undefined) rule.weight = w;
    const a = parseOverride(o.activation, `${where}.activation`);
    if (a !== undefined) rule.activation = a;
    return rule;
  });
}
