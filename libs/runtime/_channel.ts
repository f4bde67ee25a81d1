/**
 * The pool's hot path: one slot per worker in a `SharedArrayBuffer`, written by the calling
 * thread and read by the worker, with `Atomics.wait` / `Atomics.notify` instead of messages.
 * A call costs a futex wake-up (tens of µs) where a comlink round trip through both event
 * loops costs 0.1–0.3 ms and lets the scheduler park the idle thread.
 *
 * Slot layout (`Int32Array` words, one 64-byte line per slot so that slots never share a cache
 * line): `SEQ` (call number, written by the caller), `DONE` (the last call number the worker
 * finished), `STATUS` (0 ok, 1 the kernel threw), `MODULE` (index into the module names, or
 * {@link STOP}), `FN` (index into `Object.keys(exports)` of that module), `NARGS`. The
 * arguments `(r0, r1, ...args)` are f64 (exact for every i32 and f32 a kernel takes), and an
 * error message is UTF-8 in a byte area per slot.
 *
 * @module
 */

/** Int32 words per slot. */
export const SLOT_WORDS = 16;
/** Maximum number of kernel arguments including `(r0, r1)`. */
export const MAX_ARGS = 32;
/** Bytes of error message per slot. */
export const ERR_BYTES = 512;
/** Word offsets inside a slot. */
export const SEQ = 0, DONE = 1, STATUS = 2, MODULE = 3, FN = 4, NARGS = 5, ERR_LEN = 6;
/** `MODULE` value that makes the worker leave its loop. */
export const STOP = -1;

/** Views of one slot. */
export interface Slot {
  /** Control words. */
  ctl: Int32Array;
  /** Arguments. */
  args: Float64Array;
  /** Error message bytes. */
  err: Uint8Array;
}

/** Bytes of a channel buffer for `slots` workers. */
export function channelBytes(slots: number): number {
  return slots * (SLOT_WORDS * 4 + MAX_ARGS * 8 + ERR_BYTES);
}

/** The views of slot `i` of a channel buffer for `slots` workers. */
export function slotViews(buf: SharedArrayBuffer, slots: number, i: number): Slot {
  const argsOff = slots * SLOT_WORDS * 4;
  const errOff = argsOff + slots * MAX_ARGS * 8;
  return {
    ctl: new Int32Array(buf, i * SLOT_WORDS * 4, SLOT_WORDS),
    args: new Float64Array(buf, argsOff + i * MAX_ARGS * 8, MAX_ARGS),
    err: new Uint8Array(buf, errOff + i * ERR_BYTES, ERR_BYTES),
  };
}

/**
 * Whether this thread may block in `Atomics.wait` (false on a browser's main thread).
 * @returns true if blocking waits are allowed
 */
export function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The worker's loop: waits for a call in `slot`, runs it, reports, until {@link STOP}
 * (returns `"stop"`) or until a call ends `yieldAfterMs` after the loop started (returns
 * `"yield"`: the worker should turn its event loop once and come back). The yield matters:
 * V8 finishes tiering wasm up from Liftoff to TurboFan through tasks that run only between
 * event-loop turns, so a worker that never left this loop ran its kernels at Liftoff speed
 * (1.7× slower) for its first ~20 calls of a 512³ GEMM, where one turn after the first call
 * suffices. A call posted meanwhile waits in the slot (served as soon as the loop restarts).
 *
 * @param slot the worker's slot
 * @param fns exported functions by module index, then by `Object.keys(exports)` index
 * @param yieldAfterMs how long to serve before yielding
 * @returns why it returned
 */
export function serveSlot(
  slot: Slot,
  fns: readonly (readonly (((...a: number[]) => void) | undefined)[])[],
  yieldAfterMs = Infinity,
): "stop" | "yield" {
  const { ctl, args, err } = slot;
  const t0 = performance.now();
  // DONE, not SEQ: a call posted before this loop started must still be served.
  let seen = Atomics.load(ctl, DONE);
  for (;;) {
    Atomics.wait(ctl, SEQ, seen);
    const seq = Atomics.load(ctl, SEQ);
    if (seq === seen) continue;
    seen = seq;
    const m = ctl[MODULE];
    if (m === STOP) {
      Atomics.store(ctl, DONE, seq);
      Atomics.notify(ctl, DONE);
      return "stop";
    }
    let status = 0;
    try {
      const f = fns[m]?.[ctl[FN]];
      if (typeof f !== "function") throw new Error(`no kernel at index ${m}.${ctl[FN]}`);
      const n = ctl[NARGS];
      const a: number[] = new Array(n);
      for (let i = 0; i < n; i++) a[i] = args[i];
      f(...a);
    } catch (e) {
      status = 1;
      const bytes = new TextEncoder().encode(String((e as Error)?.message ?? e));
      const len = Math.min(bytes.length, ERR_BYTES);
      err.set(bytes.subarray(0, len));
      ctl[ERR_LEN] = len;
    }
    ctl[STATUS] = status;
    Atomics.store(ctl, DONE, seq);
    Atomics.notify(ctl, DONE);
    if (performance.now() - t0 >= yieldAfterMs) return "yield";
  }
}

/**
 * Posts one call to a worker's slot (the caller side).
 *
 * @param slot the slot
 * @param module module index
 * @param fn function index
 * @param r0 first row
 * @param r1 end row
 * @param rest the remaining arguments
 * @returns the call number to wait for
 */
export function post(
  slot: Slot,
  module: number,
  fn: number,
  r0: number,
  r1: number,
  rest: readonly number[],
): number {
  const { ctl, args } = slot;
  args[0] = r0;
  args[1] = r1;
  for (let i = 0; i < rest.length; i++) args[i + 2] = rest[i];
  ctl[MODULE] = module;
  ctl[FN] = fn;
  ctl[NARGS] = rest.length + 2;
  ctl[STATUS] = 0;
  const seq = (ctl[SEQ] + 1) | 0;
  Atomics.store(ctl, SEQ, seq);
  Atomics.notify(ctl, SEQ);
  return seq;
}

/**
 * Waits (blocking) until the worker has finished call `seq`; spins briefly first, since the
 * caller's own share usually ends within microseconds of the worker's.
 */
export function waitSync(slot: Slot, seq: number): void {
  const ctl = slot.ctl;
  for (let spin = 0; spin < 2000; spin++) if (Atomics.load(ctl, DONE) === seq) return;
  for (;;) {
    const d = Atomics.load(ctl, DONE);
    if (d === seq) return;
    Atomics.wait(ctl, DONE, d);
  }
}

type WaitAsync = (
  a: Int32Array,
  i: number,
  v: number,
) => { async: boolean; value: Promise<string> | string };

/** Whether `Atomics.waitAsync` exists (Chromium, Deno, Node ≥ 16; not every browser). */
export function hasWaitAsync(): boolean {
  return typeof (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync === "function";
}

/** Waits (without blocking the thread) until the worker has finished call `seq`. */
export async function waitAsync(slot: Slot, seq: number): Promise<void> {
  const ctl = slot.ctl;
  const wa = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
  for (;;) {
    const d = Atomics.load(ctl, DONE);
    if (d === seq) return;
    const r = wa(ctl, DONE, d);
    if (r.async) await r.value;
  }
}

/** The error a worker reported for its last call, or undefined. */
export function slotError(slot: Slot): string | undefined {
  if (slot.ctl[STATUS] === 0) return undefined;
  const len = slot.ctl[ERR_LEN];
  return new TextDecoder().decode(slot.err.slice(0, len));
}
