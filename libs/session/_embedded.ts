/**
 * Where the embedded kernels come from. From source (Deno, the published package) the kernel
 * modules carry their bytes, so there is nothing to load. The runtime bundle (`tools/bundle.ts`)
 * swaps this module for one that imports `lowbit-kernels-embedded.js` — a separate file holding
 * the kernels' bytes — on the first call: `loadModel` calls it only when it has to compile
 * kernels (no `opts.wasm`, or a worker pool), so hosts given precompiled modules never load it.
 *
 * @module
 */

/**
 * Makes the embedded kernels' bytes available to the kernel modules.
 *
 * @returns when they are
 *
 * @example
 * ```ts
 * import { loadEmbeddedKernels } from "./_embedded.ts";
 * await loadEmbeddedKernels(); // from source: already there
 * ```
 */
export function loadEmbeddedKernels(): Promise<void> {
  return Promise.resolve();
}
