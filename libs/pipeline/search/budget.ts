/**
 * Budgets and tolerances as users write them: `4.5bits` (average bits per
 * weight element, scales not counted), `200KB` / `1.5MB` / `12000B` (weight
 * storage including scales; KB = 1024 bytes), `3ms` / `500us` (latency on our
 * kernels), `2.1GBOPs` / `5e6BOPs` (bit operations per sample), and
 * tolerances `1%` / `0.01` (largest top-1 drop).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";

/** One budget. */
export type Budget =
  | { readonly kind: "bits"; readonly bits: number }
  | { readonly kind: "size"; readonly bytes: number }
  | { readonly kind: "latency"; readonly ms: number }
  | { readonly kind: "bops"; readonly bops: number };

/**
 * Parses a budget.
 *
 * @param text e.g. "4.5bits", "200KB", "3ms", "1.2GBOPs"
 * @returns the budget
 *
 * @example
 * ```ts
 * import { parseBudget } from "@lowbit/pipeline/search";
 * const b = parseBudget("200KB");
 * if (b.kind !== "size" || b.bytes !== 204800) throw new Error();
 * ```
 */
export function parseBudget(text: string): Budget {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zA-Zµ]+)\s*$/.exec(text);
  if (!m) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `cannot read budget '${text}' (e.g. 4.5bits, 200KB, 3ms)`,
    );
  }
  const v = Number(m[1]), unit = m[2].toLowerCase();
  const bytes: Record<string, number> = {
    b: 1,
    kb: 1024,
    kib: 1024,
    mb: 1024 ** 2,
    mib: 1024 ** 2,
  };
  const ms: Record<string, number> = { ms: 1, s: 1000, us: 1e-3, "µs": 1e-3 };
  const bops: Record<string, number> = { bops: 1, kbops: 1e3, mbops: 1e6, gbops: 1e9 };
  if (unit === "bits" || unit === "bit" || unit === "b/w") return { kind: "bits", bits: v };
  if (unit in bytes) return { kind: "size", bytes: v * bytes[unit] };
  if (unit in ms) return { kind: "latency", ms: v * ms[unit] };
  if (unit in bops) return { kind: "bops", bops: v * bops[unit] };
  throw new LowbitError(
    "INVALID_ARGUMENT",
    `unknown budget unit '${m[2]}' in '${text}' (bits, B/KB/MB, ms/us, BOPs)`,
  );
}

/**
 * Parses a tolerance: "1%" or "0.01" (a fraction of top-1).
 *
 * @param text the tolerance
 * @returns the fraction
 *
 * @example
 * ```ts
 * import { parseTolerance } from "@lowbit/pipeline/search";
 * if (parseTolerance("1%") !== 0.01 || parseTolerance("0.02") !== 0.02) throw new Error();
 * ```
 */
export function parseTolerance(text: string): number {
  const pct = text.trim().endsWith("%");
  const v = Number(pct ? text.trim().slice(0, -1) : text);
  if (!Number.isFinite(v) || v < 0) {
    throw new LowbitError("INVALID_ARGUMENT", `cannot read tolerance '${text}' (e.g. 1% or 0.01)`);
  }
  return pct ? v / 100 : v;
}

/**
 * Writes a budget back the way users write it.
 *
 * @param b the budget
 * @returns e.g. "4.5 bits per weight", "200 KB", "3 ms"
 *
 * @example
 * ```ts
 * import { formatBudget } from "@lowbit/pipeline/search";
 * if (formatBudget({ kind: "size", bytes: 2048 }) !== "2 KB") throw new Error(formatBudget({ kind: "size", bytes: 2048 }));
 * ```
 */
export function formatBudget(b: Budget): string {
  const r = (x: number): string => String(Math.round(x * 1000) / 1000);
  switch (b.kind) {
    case "bits":
      return `${r(b.bits)} bits per weight`;
    case "size":
      return b.bytes >= 1024 * 1024 ? `${r(b.bytes / 1024 ** 2)} MB` : `${r(b.bytes / 1024)} KB`;
    case "latency":
      return `${r(b.ms)} ms`;
    case "bops":
      return `${r(b.bops / 1e6)} MBOPs`;
  }
}
