/**
 * Progress bars with ETA for calibration, search and evaluation, drawn on
 * stderr by `cli-progress` when stdout is a terminal; silent (a no-op) with
 * `--json` or when stdout is piped, so that machine-readable output stays
 * clean.
 *
 * @module
 */

import cliProgress from "cli-progress";

/** One phase's progress. */
export interface ProgressBar {
  /** Sets the number of finished steps. */
  update(done: number): void;
  /** Advances by `n` steps (1 by default). */
  increment(n?: number): void;
  /** Ends the bar (leaves it on screen completed). */
  stop(): void;
}

/** Makes one bar per phase. */
export interface Progress {
  /** Whether bars are drawn. */
  readonly enabled: boolean;
  /** Starts a bar for a phase of `total` steps. */
  start(label: string, total: number): ProgressBar;
}

interface CliBar {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number): void;
  increment(n?: number): void;
  stop(): void;
}

const SILENT_BAR: ProgressBar = { update() {}, increment() {}, stop() {} };

/**
 * A progress reporter that draws nothing.
 *
 * @returns the reporter
 *
 * @example
 * ```ts
 * import { silentProgress } from "@lowbit/pipeline";
 * const bar = silentProgress().start("calibrate", 10);
 * bar.increment();
 * bar.stop();
 * ```
 */
export function silentProgress(): Progress {
  return { enabled: false, start: () => SILENT_BAR };
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
        format: `${label.padEnd(12)} {bar} {percentage}% | ETA {eta_formatted} | {value}/{total}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
      }, Ctor.Presets.shades_classic);
      bar.start(total, 0);
      let done = 0;
      return {
        update(n: number): void {
          done = n;
          bar.update(n);
        },
        increment(n = 1): void {
          done += n;
          bar.update(done);
        },
        stop(): void {
          bar.stop();
        },
      };
    },
  };
}
