/**
 * Progress bars with ETA for calibration, search and evaluation, drawn on
 * stderr by `cli-progress` when stdout is a terminal; silent (a no-op) with
 * `--json` or when stdout is piped, so that machine-readable output stays
 * clean.
 *
 * @module
 */

import cliProgress from "cli-progress";
import { type Progress, type ProgressBar, silentProgress } from "./progress_api.ts";

export { type Progress, type ProgressBar, silentProgress } from "./progress_api.ts";

interface CliBar {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  increment(n?: number): void;
  stop(): void;
}

/**
 * An honest time-left estimate: the mean rate since the phase started, extrapolated linearly
 * (cli-progress's own ETA extrapolates from the last few updates, which read 13 min for a 34 s
 * search whose steps are uneven). Nothing is promised before 3 % of the steps and one second.
 *
 * @param elapsedMs time since the phase started
 * @param done steps finished
 * @param total steps in the phase
 * @returns e.g. "~42s", "~3m05s", or "…" while too early to tell
 *
 * @example
 * ```ts
 * import { etaText } from "@lowbit/pipeline";
 * if (etaText(10_000, 25, 100) !== "~30s") throw new Error(etaText(10_000, 25, 100));
 * if (etaText(400, 50, 100) !== "…" || etaText(5_000, 100, 100) !== "0s") throw new Error();
 * ```
 */
export function etaText(elapsedMs: number, done: number, total: number): string {
  if (total > 0 && done >= total) return "0s";
  if (done <= 0 || total <= 0 || done / total < 0.03 || elapsedMs < 1000) return "…";
  const s = Math.round(elapsedMs * (total - done) / done / 1000);
  if (s < 60) return `~${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `~${m}m${String(s % 60).padStart(2, "0")}s`;
  return `~${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Creates the progress reporter: bars on stderr when `enabled`, else silent.
 *
 * @param enabled draw bars (the CLI passes `!json && Deno.stdout.isTerminal()`)
 * @returns the reporter
 *
 * @example
 * ```ts
 * import { createProgress } from "@lowbit/pipeline";
 * const p = createProgress(false);
 * if (p.enabled) throw new Error();
 * ```
 */
export function createProgress(enabled: boolean): Progress {
  if (!enabled) return silentProgress();
  return {
    enabled: true,
    start(label: string, total: number): ProgressBar {
      const Ctor = cliProgress as unknown as {
        SingleBar: new (o: Record<string, unknown>, preset: unknown) => CliBar;
        Presets: Record<string, unknown>;
      };
      const bar = new Ctor.SingleBar({
        format: `${label.padEnd(12)} {bar} {percentage}% | ETA {eta_text} | {value}/{total}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
      }, Ctor.Presets.shades_classic);
      const t0 = performance.now();
      const eta = (): { eta_text: string } => ({
        eta_text: etaText(performance.now() - t0, done, total),
      });
      let done = 0;
      bar.start(total, 0, eta());
      return {
        update(n: number): void {
          done = n;
          bar.update(n, eta());
        },
        increment(n = 1): void {
          done += n;
          bar.update(done, eta());
        },
        stop(): void {
          bar.stop();
        },
      };
    },
  };
}
