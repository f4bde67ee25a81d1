/**
 * How sizes and fractions read in the summary, the report and the quantize page.
 *
 * @module
 */

/**
 * A byte count as B, KiB (one decimal) or MiB (two decimals).
 *
 * @param n bytes
 * @returns the text
 *
 * @example
 * ```ts
 * import { formatBytes } from "@lowbit/pipeline";
 * if (formatBytes(1000) !== "1000 B" || formatBytes(1536) !== "1.5 KiB") throw new Error();
 * if (formatBytes(3 << 20) !== "3.00 MiB") throw new Error();
 * ```
 */
export function formatBytes(n: number): string {
  return n >= 1 << 20
    ? `${(n / (1 << 20)).toFixed(2)} MiB`
    : n >= 1024
    ? `${(n / 1024).toFixed(1)} KiB`
    : `${n} B`;
}

/**
 * A fraction as a percentage with two decimals; "–" when there is none.
 *
 * @param x the fraction (0.5 → "50.00 %"), or null / undefined
 * @returns the text
 *
 * @example
 * ```ts
 * import { formatPercent } from "@lowbit/pipeline";
 * if (formatPercent(0.98765) !== "98.77 %" || formatPercent(null) !== "–") throw new Error();
 * ```
 */
export function formatPercent(x: number | null | undefined): string {
  return x === null || x === undefined ? "–" : `${(x * 100).toFixed(2)} %`;
}
