/**
 * The pool's worker: instantiates the kernel modules on the shared memory it is given, then
 * runs `exports[fn](r0, r1, ...args)` on request. Control goes through comlink; data stays in
 * the shared memory. The hot path is {@link WorkerApi.serve}: a loop on an `Atomics.wait`
 * channel (see `_channel.ts`) that answers calls without any message. It signals `"ready"`
 * after `Comlink.expose`, because a message that arrives before a worker's top-level await
 * finishes is lost in Deno.
 *
 * @module
 */

import * as Comlink from "comlink";
import { decodeBase64 } from "@lowbit/kernels/runner";
import { isNode, nodeEndpoint, type NodePortLike } from "./_endpoint.ts";
import { serveSlot, slotViews } from "./_channel.ts";

/** What the pool calls in each worker. */
export interface WorkerApi {
  /**
   * Instantiates the shared-memory flavour of each module on `memory`.
   * @param memory the shared memory
   * @param modules base64 wasm (shared flavour) by module name
   */
  init(memory: WebAssembly.Memory, modules: Record<string, string>): Promise<void>;
  /**
   * Runs `exports[fn](r0, r1, ...args)` of `module`.
   * @param module module name
   * @param fn exported function
   * @param r0 first row
   * @param r1 end row
   * @param args remaining arguments
   */
  run(module: string, fn: string, r0: number, r1: number, args: number[]): void;
  /**
   * Serves calls posted to slot `slot` of the channel `buf` until told to stop (blocks this
   * worker's event loop meanwhile). Functions are addressed by module index (in the order of
   * `init`'s record) and by index in `Object.keys(exports)`.
   * @param buf the channel buffer
   * @param slots number of slots in it
   * @param slot this worker's slot
   */
  serve(buf: SharedArrayBuffer, slots: number, slot: number): void;
}

const instances: Record<string, WebAssembly.Exports> = {};

const api: WorkerApi = {
  async init(memory, modules) {
    for (const [name, b64] of Object.entries(modules)) {
      const mod = await WebAssembly.compile(decodeBase64(b64));
      instances[name] = (await WebAssembly.instantiate(mod, { env: { memory } })).exports;
    }
  },
  run(module, fn, r0, r1, args) {
    const f = instances[module]?.[fn] as ((...a: number[]) => void) | undefined;
    if (typeof f !== "function") throw new Error(`kernel '${module}.${fn}' not loaded`);
    f(r0, r1, ...args);
  },
  serve(buf, slots, slot) {
    const fns = Object.values(instances).map((e) =>
      Object.values(e).map((v) =>
        typeof v === "function" ? v as (...a: number[]) => void : undefined
      )
    );
    const views = slotViews(buf, slots, slot);
    // Serve, turning the event loop every ~20 ms of work (see serveSlot) through a
    // MessageChannel (a macrotask without setTimeout's nesting clamp).
    const ch = new MessageChannel();
    const loop = (): void => {
      if (serveSlot(views, fns, 20) === "yield") ch.port2.postMessage(0);
      else {
        ch.port1.close();
        ch.port2.close();
      }
    };
    ch.port1.onmessage = loop;
    loop();
  },
};

if (isNode()) {
  const { parentPort } = await import("node:worker_threads");
  const ep = nodeEndpoint(parentPort as unknown as NodePortLike);
  Comlink.expose(api, ep);
  ep.postMessage("ready");
} else {
  const self = globalThis as unknown as Comlink.Endpoint;
  Comlink.expose(api, self);
  self.postMessage("ready");
}
