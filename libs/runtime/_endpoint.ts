/**
 * Message endpoints for comlink across Deno / browser workers and Node `worker_threads`
 * (the same shape as comlink's node adapter, written here to avoid a deep npm import).
 *
 * @module
 */

import type { Endpoint } from "comlink";

/** The subset of a Node `MessagePort` / `Worker` that comlink needs. */
export interface NodePortLike {
  postMessage(message: unknown): void;
  on(event: "message", listener: (data: unknown) => void): unknown;
  off(event: "message", listener: (data: unknown) => void): unknown;
}

/** Wraps a Node port so that comlink can use it like a web `MessagePort`. */
export function nodeEndpoint(port: NodePortLike): Endpoint {
  const listeners = new WeakMap<object, (data: unknown) => void>();
  return {
    postMessage: (message: unknown) => port.postMessage(message),
    addEventListener(_type: string, handler: EventListenerOrEventListenerObject): void {
      const l = (data: unknown): void => {
        const ev = { data } as MessageEvent;
        if (typeof handler === "function") handler(ev);
        else handler.handleEvent(ev);
      };
      port.on("message", l);
      listeners.set(handler, l);
    },
    removeEventListener(_type: string, handler: EventListenerOrEventListenerObject): void {
      const l = listeners.get(handler);
      if (l) {
        port.off("message", l);
        listeners.delete(handler);
      }
    },
  };
}

/** True when running in Node (not Deno, which also defines `process`). */
export function isNode(): boolean {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  return g.Deno === undefined && typeof g.process?.versions?.node === "string";
}
