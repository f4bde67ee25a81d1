/**
 * What a progress reporter is, and the one that draws nothing: the pipeline's stages take a
 * {@link Progress}. Drawing bars on a terminal is `progress.ts` (`cli-progress`); the browser's
 * quantize page posts progress messages instead.
 *
 * @module
 */

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
