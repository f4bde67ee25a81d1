/**
 * A worker pool that runs kernels over row ranges of one shared wasm memory: comlink carries
 * control, a `SharedArrayBuffer`-backed `WebAssembly.Memory` carries the data. It implements
 * `KernelRunner` from `@lowbit/kernels`, so any kernel driver `(r0, r1, ...args)` (integer or
 * float) can be split over it. Works with Deno and browser workers and Node `worker_threads`;
 * where shared memory is unavailable it falls back to a same-thread runner.
 *
 * Results do not depend on the thread count: every row (or GEMV column) is computed by exactly
 * one thread, with the same kernel and the same summation order.
 *
 * @module
 */

import * as Comlink from "comlink";
import { LowbitError } from "@lowbit/core";
import {
  createArena,
  createLocalRunner,
  decodeBase64,
  DEFAULT_MAX_PAGES,
  type KernelRunner,
  type KernelSource,
  splitRows,
} from "@lowbit/kernels/runner";
import { isNode, nodeEndpoint, type NodePortLike } from "./_endpoint.ts";
import type { WorkerApi } from "./worker.ts";
import {
  canBlock,
  channelBytes,
  hasWaitAsync,
  MAX_ARGS,
  MODULE,
  post,
  SEQ,
  type Slot,
  slotError,
  slotViews,
  STOP,
  waitAsync,
  waitSync,
} from "./_channel.ts";

/** Options of {@link createPool}. */
export interface PoolOptions {
  /** Kernel modules to load in every thread (e.g. `intKernelSources()`). */
  modules: Record<string, KernelSource>;
  /** Threads including the calling one (default: `navigator.hardwareConcurrency` or 1). */
  threads?: number;
  /** Maximum memory in 64 KiB pages (default 32768 = 2 GiB). */
  maxPages?: number;
  /**
   * The worker script (default `./worker.ts` next to this file). Node needs JavaScript, e.g. a
   * bundle of `worker.ts`.
   */
  workerUrl?: string | URL;
  /**
   * How calls reach the workers. `"auto"` (default): an `Atomics.wait` / `notify` channel in
   * shared memory (a wake-up costs tens of µs; the workers block in it between calls), where
   * the calling thread can block or has `Atomics.waitAsync`. `"message"`: a comlink message per
   * call and per worker (≈ 0.2–0.5 ms a call; the workers' event loops stay free).
   */
  dispatch?: "auto" | "message";
}

/** A {@link KernelRunner} backed by workers; `shared` is false for the same-thread fallback. */
export interface Pool extends KernelRunner {
  /** Whether the memory is shared with workers (false: same-thread fallback). */
  readonly shared: boolean;
}

/**
 * Whether this environment can share wasm memory with workers.
 *
 * @returns true if a shared `WebAssembly.Memory` can be created
 *
 * @example
 * ```ts
 * import { sharedMemorySupported } from "@lowbit/runtime";
 * if (typeof sharedMemorySupported() !== "boolean") throw new Error();
 * ```
 */
export function sharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

interface WorkerHandle {
  api: Comlink.Remote<WorkerApi>;
  terminate(): void;
}

async function spawn(url: URL): Promise<WorkerHandle> {
  if (isNode()) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(url);
    const port = w as unknown as NodePortLike;
    await new Promise<void>((resolve, reject) => {
      const onMsg = (d: unknown) => {
        if (d === "ready") {
          port.off("message", onMsg);
          resolve();
        }
      };
      port.on("message", onMsg);
      w.once("error", reject);
    });
    return {
      api: Comlink.wrap<WorkerApi>(nodeEndpoint(port)),
      terminate: () => void w.terminate(),
    };
  }
  const w = new Worker(url.href, { type: "module" });
  await new Promise<void>((resolve, reject) => {
    const onMsg = (e: MessageEvent) => {
      if (e.data === "ready") {
        w.removeEventListener("message", onMsg);
        resolve();
      }
    };
    w.addEventListener("message", onMsg);
    w.addEventListener("error", (e) => reject(e), { once: true });
  });
  return { api: Comlink.wrap<WorkerApi>(w), terminate: () => w.terminate() };
}

/**
 * Creates a pool of `threads` threads (the calling thread plus `threads − 1` workers) with the
 * given kernel modules instantiated on one shared memory. With `threads: 1`, or without
 * `SharedArrayBuffer`, returns a same-thread runner (`shared: false`).
 *
 * @param opts modules, thread count, memory limit, worker script
 * @returns the pool; call `close()` when done
 *
 * @example
 * ```ts
 * import { createPool } from "@lowbit/runtime";
 * import { gemmIntRef, gemmS8, intKernelSources, loadIntKernels, packS8 } from "@lowbit/kernels";
 * const pool = await createPool({ modules: intKernelSources(), threads: 2 });
 * try {
 *   const k = await loadIntKernels({ runner: pool });
 *   const a = new Int8Array(64 * 32).fill(3), w = new Int8Array(32 * 8).fill(-2);
 *   const c = await gemmS8(k, a, 64, packS8(k, w, 32, 8));
 *   if (c.join() !== gemmIntRef(a, 64, 32, w, 8).join()) throw new Error();
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export async function createPool(opts: PoolOptions): Promise<Pool> {
  const hc = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  const threads = opts.threads ?? (hc && hc > 0 ? hc : 1);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `threads must be an integer in [1, 256], got ${threads}`,
    );
  }
  if (opts.dispatch !== undefined && opts.dispatch !== "auto" && opts.dispatch !== "message") {
    throw new LowbitError("UNKNOWN_NAME", `unknown dispatch '${opts.dispatch}' (auto, message)`);
  }
  const maxPages = opts.maxPages ?? DEFAULT_MAX_PAGES;
  if (threads === 1 || !sharedMemorySupported()) {
    const local = await createLocalRunner(opts.modules, { maxPages });
    return { ...local, shared: false };
  }
  const memory = new WebAssembly.Memory({ initial: 2, maximum: maxPages, shared: true });
  const arena = createArena(memory, maxPages);
  const instances: Record<string, WebAssembly.Exports> = {};
  const shared: Record<string, string> = {};
  for (const [name, src] of Object.entries(opts.modules)) {
    const mod = await WebAssembly.compile(decodeBase64(src.shared));
    instances[name] = (await WebAssembly.instantiate(mod, { env: { memory } })).exports;
    shared[name] = src.shared;
  }
  const url = opts.workerUrl !== undefined
    ? new URL(opts.workerUrl)
    : new URL("./worker.ts", import.meta.url);
  const workers: WorkerHandle[] = [];
  try {
    for (let t = 1; t < threads; t++) workers.push(await spawn(url));
    await Promise.all(workers.map((w) => w.api.init(memory, shared)));
  } catch (e) {
    for (const w of workers) w.terminate();
    throw new LowbitError("INTERNAL", `worker pool: could not start workers (${e})`);
  }
  const exportsOf = (module: string): WebAssembly.Exports => {
    const e = instances[module];
    if (!e) throw new LowbitError("UNKNOWN_NAME", `kernel module '${module}' is not loaded`);
    return e;
  };
  // Hot path: every worker serves an Atomics channel slot (no message per call). The calling
  // thread waits for the workers blocking where it may (Deno, Node, workers), with
  // Atomics.waitAsync on a browser's main thread, and through comlink where neither exists.
  const moduleNames = Object.keys(instances);
  const fnNames = moduleNames.map((m) => Object.keys(instances[m]));
  const blocking = canBlock();
  const dispatch = opts.dispatch ?? "auto";
  const atomics = dispatch === "auto" && (blocking || hasWaitAsync());
  const nw = workers.length;
  const chan = new SharedArrayBuffer(channelBytes(nw));
  const slots: Slot[] = workers.map((_, i) => slotViews(chan, nw, i));
  if (atomics) workers.forEach((w, i) => void w.api.serve(chan, nw, i).catch(() => {}));
  let queue: Promise<void> | null = null;
  const runNow = (
    module: string,
    fn: string,
    rows: number,
    args: readonly number[],
    align: number,
  ): void | Promise<void> => {
    const exp = exportsOf(module);
    const f = exp[fn] as ((...a: number[]) => void) | undefined;
    if (typeof f !== "function") {
      throw new LowbitError("UNKNOWN_NAME", `kernel '${fn}' not found in module '${module}'`);
    }
    if (args.length + 2 > MAX_ARGS) {
      throw new LowbitError("INVALID_ARGUMENT", `kernel '${fn}': more than ${MAX_ARGS} arguments`);
    }
    const ranges = splitRows(rows, threads, align);
    if (ranges.length === 0) return;
    if (ranges.length === 1) return f(ranges[0][0], ranges[0][1], ...args);
    if (!atomics) {
      // Workers take ranges 1.., the calling thread range 0 (while the workers run).
      const remote = ranges.slice(1).map(([r0, r1], i) =>
        workers[i].api.run(module, fn, r0, r1, [...args])
      );
      f(ranges[0][0], ranges[0][1], ...args);
      return Promise.all(remote).then(() => {});
    }
    const mi = moduleNames.indexOf(module), fi = fnNames[mi].indexOf(fn);
    const seqs = ranges.slice(1).map(([r0, r1], i) => post(slots[i], mi, fi, r0, r1, args));
    let mine: unknown;
    try {
      f(ranges[0][0], ranges[0][1], ...args);
    } catch (e) {
      mine = e;
    }
    const finish = (): void => {
      if (mine !== undefined) throw mine;
      for (let i = 0; i < seqs.length; i++) {
        const msg = slotError(slots[i]);
        if (msg !== undefined) {
          throw new LowbitError(
            "INTERNAL",
            `kernel '${module}.${fn}' failed in worker ${i + 1}: ${msg}`,
          );
        }
      }
    };
    if (blocking) {
      for (let i = 0; i < seqs.length; i++) waitSync(slots[i], seqs[i]);
      return finish();
    }
    return Promise.all(seqs.map((q, i) => waitAsync(slots[i], q))).then(finish);
  };
  let closed = false;
  return {
    threads,
    shared: true,
    memory,
    modules: moduleNames,
    exports: exportsOf,
    alloc: (bytes) => arena.alloc(bytes),
    free: (ptr) => arena.free(ptr),
    run(module, fn, rows, args, align = 1): Promise<void> {
      if (closed) return Promise.reject(new LowbitError("INVALID_ARGUMENT", "the pool is closed"));
      // Calls run one at a time (a slot holds one call); only the non-blocking waits can
      // overlap, and those queue behind the running call.
      const go = (): Promise<void> => {
        try {
          return Promise.resolve(runNow(module, fn, rows, args, align));
        } catch (e) {
          return Promise.reject(e);
        }
      };
      const p = queue ? queue.then(go, go) : go();
      if (blocking && !queue) return p;
      const tail: Promise<void> = p.then(() => {}, () => {}).then(() => {
        if (queue === tail) queue = null;
      });
      queue = tail;
      return p;
    },
    close(): void {
      if (closed) return;
      closed = true;
      if (atomics) {
        for (const slot of slots) {
          slot.ctl[MODULE] = STOP;
          Atomics.add(slot.ctl, SEQ, 1);
          Atomics.notify(slot.ctl, SEQ);
        }
      }
      for (const w of workers) {
        w.api[Comlink.releaseProxy]();
        w.terminate();
      }
    },
  };
}
