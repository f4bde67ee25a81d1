/**
 * What a `lowbit` subcommand is (the commands implement it; `main.ts` dispatches to them).
 *
 * @module
 */

/** A subcommand: takes its arguments, returns an exit code. */
export interface Command {
  /** One line for `lowbit help`. */
  summary: string;
  /** Runs the command. */
  main(args: string[]): Promise<number>;
}
