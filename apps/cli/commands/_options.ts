// Private helper of the CLI commands: numeric options checked at parse time, each against its
// allowed range, with that range in the message. Nothing numeric reaches the libraries unchecked.

import { LowbitError } from "@lowbit/core";
import type { Budget } from "@lowbit/pipeline/search";

/** A decimal number as users type it: `12`, `-0.5`, `.5`, `1e-3` (no hex, no Infinity, no blanks). */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

/** One numeric option's rule. */
export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  /** Smallest allowed value. */
  min?: number;
  /** Whether `min` itself is excluded (e.g. a dampening > 0). */
  minExclusive?: boolean;
  /** Largest allowed value. */
  max?: number;
}

/**
 * The allowed range of a rule, as the error message shows it.
 *
 * @param r the rule
 * @returns e.g. "an integer in 1..65536"
 *
 * @example
 * ```ts
 * import { describeRule } from "./_options.ts";
 * if (describeRule({ integer: true, min: 1, max: 8 }) !== "an integer in 1..8") throw new Error();
 * ```
 */
export function describeRule(r: NumberRule): string {
  const kind = r.integer ? "an integer" : "a number";
  const lo = r.min === undefined ? undefined : `${r.minExclusive ? ">" : "≥"} ${r.min}`;
  if (r.integer && r.min !== undefined && r.max !== undefined) {
    return `${kind} in ${r.min}..${r.max}`;
  }
  if (lo !== undefined && r.max !== undefined) {
    return `${kind} ${r.minExclusive ? `in (${r.min}, ${r.max}]` : `in [${r.min}, ${r.max}]`}`;
  }
  if (lo !== undefined) return `${kind} ${lo}`;
  if (r.max !== undefined) return `${kind} ≤ ${r.max}`;
  return `a finite ${r.integer ? "integer" : "number"}`;
}

/**
 * A checked number from an option, or undefined when the option is absent.
 *
 * @param v the option's value as parsed (a string, or undefined)
 * @param flag the flag, for the message (`--gptq-block`)
 * @param rule allowed values
 * @returns the number
 *
 * @example
 * ```ts
 * import { checkedNumber } from "./_options.ts";
 * if (checkedNumber("128", "--gptq-block", { integer: true, min: 1, max: 65536 }) !== 128) {
 *   throw new Error();
 * }
 * let msg = "";
 * try { checkedNumber("0", "--gptq-block", { integer: true, min: 1, max: 65536 }); }
 * catch (e) { msg = (e as Error).message; }
 * if (!msg.includes("an integer in 1..65536")) throw new Error(msg);
 * ```
 */
export function checkedNumber(v: unknown, flag: string, rule: NumberRule): number | undefined {
  if (v === undefined) return undefined;
  const text = typeof v === "string" ? v.trim() : "";
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  const ok = Number.isFinite(n) && (!rule.integer || Number.isInteger(n)) &&
    (rule.min === undefined || (rule.minExclusive ? n > rule.min : n >= rule.min)) &&
    (rule.max === undefined || n <= rule.max);
  if (!ok) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${flag} must be ${describeRule(rule)}, got '${String(v)}'`,
    );
  }
  return n;
}

/**
 * The cores this machine reports (at least 1).
 *
 * @returns the count
 *
 * @example
 * ```ts
 * import { coreCount } from "./_options.ts";
 * if (coreCount() < 1) throw new Error();
 * ```
 */
export function coreCount(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/**
 * `--threads N`: an integer in 1..256, capped to the cores with a warning (more threads than cores
 * only add contention: 256 threads on 2 cores took 22.7 s and 3.5 GB for a 0.26 s job).
 *
 * @param v the option's value
 * @param command the command, for the warning (`eval`)
 * @param warn where the warning goes (stderr by default)
 * @returns the thread count to use (1 when absent)
 *
 * @example
 * ```ts
 * import { coreCount, threadsOption } from "./_options.ts";
 * if (threadsOption("256", "run", () => {}) !== Math.min(256, coreCount())) throw new Error();
 * ```
 */
export function threadsOption(
  v: unknown,
  command: string,
  warn: (msg: string) => void = (m) => console.error(m),
): number {
  const n = checkedNumber(v, "--threads", { integer: true, min: 1, max: 256 }) ?? 1;
  const cores = coreCount();
  if (n > cores) {
    warn(
      `lowbit ${command}: warning: --threads ${n} is more than the ${cores} cores here; using ${cores}`,
    );
    return cores;
  }
  return n;
}

/**
 * `--tolerance`: the largest top-1 drop, written with its unit, `%` (`--tolerance 1%`). A bare
 * number is refused: `5` could mean 5 % or 500 %, and a guess that goes wrong costs the model.
 *
 * @param v the option's value
 * @returns the same text when valid (the search parses it), or undefined when absent
 *
 * @example
 * ```ts
 * import { toleranceOption } from "./_options.ts";
 * if (toleranceOption("1%") !== "1%") throw new Error();
 * let threw = false;
 * try { toleranceOption("5"); } catch { threw = true; }
 * if (!threw) throw new Error("a bare 5 was taken");
 * ```
 */
export function toleranceOption(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const text = String(v).trim();
  const m = /^(.*)%$/.exec(text);
  const pct = m && DECIMAL.test(m[1].trim()) ? Number(m[1]) : NaN;
  if (!(pct > 0 && pct < 100)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `--tolerance must be a percentage of top-1 in (0%, 100%) with its unit, e.g. 1%, got '${text}'`,
    );
  }
  return text;
}

/**
 * Budgets the searched allocation does not meet, as warnings: an unmet budget (a latency the
 * kernels cannot reach, a size below the smallest candidate) is never silent.
 *
 * @param r the search's totals for the chosen allocation
 * @param budgets the budgets given
 * @returns one warning per unmet budget
 *
 * @example
 * ```ts
 * import { unmetBudgets } from "./_options.ts";
 * const w = unmetBudgets({ cost: { avgBits: 4, sizeBytes: 900, bops: 1, latencyMs: 2.5 } },
 *   [{ kind: "latency", ms: 1 }]);
 * if (!w[0].includes("--budget-latency 1 ms is NOT met")) throw new Error(w[0]);
 * ```
 */
export function unmetBudgets(
  r: { cost: { avgBits: number; sizeBytes: number; bops: number; latencyMs?: number } },
  budgets: readonly Budget[],
): string[] {
  const out: string[] = [];
  for (const b of budgets) {
    const [flag, want, got, over] = b.kind === "latency"
      ? [
        "--budget-latency",
        `${b.ms} ms`,
        r.cost.latencyMs === undefined
          ? "no latency (not measured)"
          : `${r.cost.latencyMs.toFixed(3)} ms`,
        (r.cost.latencyMs ?? Infinity) > b.ms,
      ]
      : b.kind === "bits"
      ? [
        "--budget",
        `${b.bits} bits`,
        `${r.cost.avgBits.toFixed(3)} bits per weight`,
        r.cost.avgBits > b.bits + 1e-9,
      ]
      : b.kind === "size"
      ? ["--budget-size", `${b.bytes} B`, `${r.cost.sizeBytes} B`, r.cost.sizeBytes > b.bytes]
      : ["--budget-bops", `${b.bops} BOPs`, `${r.cost.bops} BOPs`, r.cost.bops > b.bops];
    if (over) {
      out.push(
        `${flag} ${want} is NOT met: the smallest allocation the search found measures ${got}`,
      );
    }
  }
  return out;
}
