/**
 * The lowbit error hierarchy: every error a user can see carries a stable
 * `code`, a message they can act on, and the file / node / tensor it is about.
 *
 * @module
 */

/** Stable machine-readable error codes. */
export type LowbitErrorCode =
  | "UNKNOWN_NAME"
  | "DUPLICATE_NAME"
  | "INVALID_ARGUMENT"
  | "INVALID_TENSOR"
  | "SHAPE_MISMATCH"
  | "UNSUPPORTED"
  | "PARSE_ERROR"
  | "IO_ERROR"
  | "INFEASIBLE"
  | "OUT_OF_MEMORY"
  | "INTERNAL";

/** Where an error happened: any of a file, a graph node, a tensor. */
export interface ErrorSubject {
  /** A file path. */
  file?: string;
  /** A graph node name. */
  node?: string;
  /** A tensor / value name. */
  tensor?: string;
}

/**
 * Base class of every error lowbit throws on purpose.
 *
 * @example
 * ```ts
 * import { LowbitError } from "@lowbit/core";
 * const e = new LowbitError("INVALID_TENSOR", "contains NaN", { tensor: "conv1.weight" });
 * if (e.message !== "tensor 'conv1.weight': contains NaN") throw new Error(e.message);
 * ```
 */
export class LowbitError extends Error {
  /** A stable code, for programs. */
  readonly code: LowbitErrorCode;
  /** The file / node / tensor this error is about. */
  readonly subject: ErrorSubject;
  /**
   * Creates an error whose message starts with the subject (file / node / tensor).
   *
   * @param code stable error code
   * @param detail what is wrong and, where possible, what to do about it
   * @param subject the file / node / tensor concerned
   */
  constructor(code: LowbitErrorCode, detail: string, subject: ErrorSubject = {}) {
    super(prefix(subject) + detail);
    this.name = "LowbitError";
    this.code = code;
    this.subject = subject;
  }
}

function prefix(s: ErrorSubject): string {
  const parts: string[] = [];
  if (s.file !== undefined) parts.push(`file '${s.file}'`);
  if (s.node !== undefined) parts.push(`node '${s.node}'`);
  if (s.tensor !== undefined) parts.push(`tensor '${s.tensor}'`);
  return parts.length ? parts.join(", ") + ": " : "";
}

/**
 * Throws a `LowbitError` with code `INVALID_ARGUMENT` unless `cond` holds.
 *
 * @param cond the condition that must hold
 * @param detail the message when it does not
 * @param subject the file / node / tensor concerned
 *
 * @example
 * ```ts
 * import { check } from "@lowbit/core";
 * check(1 + 1 === 2, "arithmetic is broken");
 * ```
 */
export function check(cond: unknown, detail: string, subject: ErrorSubject = {}): asserts cond {
  if (!cond) throw new LowbitError("INVALID_ARGUMENT", detail, subject);
}
