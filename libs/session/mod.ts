/**
 * @lowbit/session: run a quantized model anywhere JavaScript runs. `loadModel(bytes)` takes a
 * `.lowbit` file or an ONNX model (float or QDQ) and returns a session whose `run` maps input
 * tensors to output tensors — the same results as `lowbit run`. No file system, no `node:`
 * imports, no code generation from strings: it works in browsers, web workers, Deno, Node and
 * Cloudflare workers (give it the precompiled kernels there, see {@link LoadOptions.wasm}).
 *
 * @example
 * ```ts
 * import { loadModel } from "@lowbit/session";
 * const session = await loadModel(Deno.readFileSync("fixtures/digits/cnn.onnx"));
 * const out = await session.run({
 *   [session.inputNames[0]]: { data: new Float32Array(64), dims: [1, 1, 8, 8] },
 * });
 * if (out[session.outputNames[0]].data.length !== 10) throw new Error();
 * ```
 *
 * @module
 */

export {
  isLowbitBytes,
  KERNEL_FILES,
  loadModel,
  type LoadOptions,
  type Session,
  type Tensor,
  type TypedArray,
} from "./session.ts";
