/**
 * `loadModel(bytes)` → a {@link Session} that runs a `.lowbit` or ONNX (float or QDQ) model.
 * Nothing here touches a file system, imports `node:` modules or generates code from strings,
 * so it runs in browsers, web workers, Deno, Node and Cloudflare workers.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import {
  createExecutor,
  decodeLowbitFile,
  type DType,
  type Executor,
  lowbitModel,
  type Model,
  readOnnx,
  type TensorData,
} from "@lowbit/graph/portable";
import { provideKernelModules } from "@lowbit/kernels/runner";
import { loadEmbeddedKernels } from "./_embedded.ts";

/** The typed arrays a tensor's elements come in. */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor handed to or returned by {@link Session.run}: row-major elements and dimensions. */
export interface Tensor {
  /** Elements, row-major. */
  data: TypedArray;
  /** Dimensions. */
  dims: number[];
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /**
   * Precompiled kernels by file name (`int_gemm.wasm`, `float_gemm.wasm`: the files `npx deno
   * task bundle` writes to `dist/`). Given, they are instantiated and no wasm bytes are ever
   * compiled (hosts such as Cloudflare workerd refuse run-time compilation); without them the
   * embedded kernels are compiled (in the bundle they are a separate file,
   * `lowbit-kernels-embedded.js`, imported only then). NOTE: with `threads` > 1 the pool's
   * shared-memory kernels are still compiled from the embedded bytes (hosts with threads allow
   * compilation).
   */
  wasm?: Record<string, WebAssembly.Module>;
  /**
   * Threads for Conv / Gemm / MatMul, the calling thread included (default 1; results are
   * identical for any count). More than 1 starts a worker pool on the first run (needs
   * `SharedArrayBuffer`; elsewhere everything runs on the calling thread).
   */
  threads?: number;
}

/** A loaded model. */
export interface Session {
  /** Names of the inputs {@link Session.run} expects, in the model's order. */
  readonly inputNames: readonly string[];
  /** Names of the outputs it returns, in the model's order. */
  readonly outputNames: readonly string[];
  /**
   * Runs the model.
   * @param feeds one tensor per input name
   * @returns one tensor per output name
   */
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  /**
   * Releases the session: stops its worker threads (`threads` > 1) and drops the model, so its
   * weights can be collected. Calling `run` afterwards rejects with a `LowbitError`
   * (`INVALID_ARGUMENT`); closing twice is harmless.
   */
  close(): Promise<void>;
}

/** The kernel files `opts.wasm` must hold: the ones the executor instantiates. */
export const KERNEL_FILES: readonly string[] = ["int_gemm.wasm", "float_gemm.wasm"];

/**
 * Whether bytes are a lowbit file (a safetensors file: 8-byte little-endian header length, then
 * a JSON object) rather than ONNX protobuf.
 *
 * @param bytes the model's bytes
 * @returns true for a lowbit / safetensors file
 *
 * @example
 * ```ts
 * import { isLowbitBytes } from "@lowbit/session";
 * const header = new TextEncoder().encode('{"x":1}');
 * const st = new Uint8Array([header.length, 0, 0, 0, 0, 0, 0, 0, ...header]);
 * if (!isLowbitBytes(st) || isLowbitBytes(new Uint8Array([8, 7, 18, 0]))) throw new Error();
 * ```
 */
export function isLowbitBytes(bytes: Uint8Array): boolean {
  if (bytes.length < 10 || bytes[8] !== 0x7b) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = v.getUint32(0, true) + v.getUint32(4, true) * 4294967296;
  return n >= 2 && n <= bytes.length - 8;
}

/** The one place a lowbit file is turned into a model. */
function lowbitFileModel(bytes: Uint8Array): Model {
  return lowbitModel(decodeLowbitFile(bytes));
}

const DTYPE_OF = new Map<unknown, DType>([
  [Float32Array, "float32"],
  [Float64Array, "float64"],
  [Int8Array, "int8"],
  [Uint8Array, "uint8"],
  [Int16Array, "int16"],
  [Uint16Array, "uint16"],
  [Int32Array, "int32"],
  [Uint32Array, "uint32"],
  [BigInt64Array, "int64"],
  [BigUint64Array, "uint64"],
]);

/** Model dtypes whose storage is the same typed array as another dtype's (see `TensorStorage`). */
const SAME_STORAGE: Partial<Record<DType, DType>> = {
  bool: "uint8",
  float16: "uint16",
  bfloat16: "uint16",
  float8e4m3fn: "uint8",
  float8e5m2: "uint8",
};

function checkOptions(opts: LoadOptions): void {
  if (typeof opts !== "object" || opts === null) {
    throw new LowbitError("INVALID_ARGUMENT", "loadModel options must be an object");
  }
  const t = opts.threads;
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 256)) {
    throw new LowbitError("INVALID_ARGUMENT", `threads must be an integer in [1, 256], got ${t}`);
  }
  if (opts.wasm !== undefined) {
    if (typeof opts.wasm !== "object" || opts.wasm === null) {
      throw new LowbitError("INVALID_ARGUMENT", "wasm must map file names to WebAssembly.Module");
    }
    const missing = KERNEL_FILES.filter((f) => !(f in opts.wasm!));
    if (missing.length > 0) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `wasm lacks ${missing.join(", ")} (give every kernel file of dist/: ${KERNEL_FILES})`,
      );
    }
    provideKernelModules(opts.wasm);
  }
}

function parse(bytes: Uint8Array): Model {
  if (!(bytes instanceof Uint8Array)) {
    throw new LowbitError("INVALID_ARGUMENT", "loadModel takes the model's bytes (a Uint8Array)");
  }
  if (isLowbitBytes(bytes)) return lowbitFileModel(bytes);
  return readOnnx(bytes);
}

/**
 * Loads a `.lowbit` file or an ONNX model (float or QDQ; told apart by content) and prepares it
 * to run — the same executor as `lowbit run`, so outputs are the same.
 *
 * @param bytes the model file's bytes
 * @param opts precompiled kernels, threads
 * @returns the session
 * @throws {LowbitError} `PARSE_ERROR` for bytes that are neither, `UNSUPPORTED` for ops the
 *   executor lacks, `INVALID_ARGUMENT` for bad options
 *
 * @example
 * ```ts
 * import { loadModel } from "@lowbit/session";
 * const s = await loadModel(Deno.readFileSync("fixtures/digits/mlp.onnx"));
 * const x = new Float32Array(64).fill(0.5);
 * const y = await s.run({ [s.inputNames[0]]: { data: x, dims: [1, 1, 8, 8] } });
 * if (y[s.outputNames[0]].dims.join() !== "1,10") throw new Error();
 * ```
 */
export async function loadModel(bytes: Uint8Array, opts: LoadOptions = {}): Promise<Session> {
  checkOptions(opts);
  const threads = opts.threads ?? 1;
  if (opts.wasm === undefined || threads > 1) {
    try {
      await loadEmbeddedKernels();
    } catch (e) {
      throw new LowbitError(
        "IO_ERROR",
        "cannot load the embedded kernels (lowbit-kernels-embedded.js, beside " +
          "lowbit-runtime.js): deploy that file, or pass opts.wasm with one thread " +
          `(${e instanceof Error ? e.message : String(e)})`,
        { file: "lowbit-kernels-embedded.js" },
      );
    }
  }
  const model = parse(bytes);
  let exec: Executor | undefined = createExecutor(model, { threads });
  const g = exec.graph;
  const inputs = g.inputs.filter((v) => !g.initializers.has(v.name));
  const outputNames = g.outputs.map((v) => v.name);
  return {
    inputNames: inputs.map((v) => v.name),
    outputNames,
    run: (feeds) => {
      if (exec === undefined) {
        return Promise.reject(
          new LowbitError("INVALID_ARGUMENT", "run after close: this session is closed"),
        );
      }
      return run(exec, inputs, outputNames, feeds);
    },
    close: async () => {
      const e = exec;
      exec = undefined;
      await e?.close();
    },
  };
}

async function run(
  exec: Executor,
  inputs: readonly { name: string; dtype: DType }[],
  outputNames: readonly string[],
  feeds: Record<string, Tensor>,
): Promise<Record<string, Tensor>> {
  if (typeof feeds !== "object" || feeds === null) {
    throw new LowbitError("INVALID_ARGUMENT", "run takes { [input name]: { data, dims } }");
  }
  const known = new Set(inputs.map((v) => v.name));
  for (const name of Object.keys(feeds)) {
    if (!known.has(name)) {
      throw new LowbitError("UNKNOWN_NAME", `not an input of the model (inputs: ${[...known]})`, {
        tensor: name,
      });
    }
  }
  const values: Record<string, TensorData> = {};
  for (const v of inputs) {
    const feed = feeds[v.name];
    if (feed === undefined) {
      throw new LowbitError("INVALID_ARGUMENT", "input not given", { tensor: v.name });
    }
    values[v.name] = toTensorData(feed, v.name, v.dtype);
  }
  const out = await exec.run(values);
  const result: Record<string, Tensor> = {};
  for (const name of outputNames) {
    const t = out[name];
    if (Array.isArray(t.data)) {
      throw new LowbitError("UNSUPPORTED", "string outputs are not supported", { tensor: name });
    }
    result[name] = { data: t.data as TypedArray, dims: [...t.shape] };
  }
  return result;
}

function toTensorData(feed: Tensor, name: string, want: DType): TensorData {
  if (typeof feed !== "object" || feed === null || !Array.isArray(feed.dims)) {
    throw new LowbitError("INVALID_ARGUMENT", "a feed is { data: TypedArray, dims: number[] }", {
      tensor: name,
    });
  }
  const dims = feed.dims;
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) {
      throw new LowbitError("INVALID_ARGUMENT", `dims [${dims}] are not non-negative integers`, {
        tensor: name,
      });
    }
    n *= d;
  }
  let dtype = DTYPE_OF.get(feed.data?.constructor);
  if (dtype === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "data must be a typed array", { tensor: name });
  }
  if (feed.data.length !== n) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `data holds ${feed.data.length} elements, dims [${dims}] make ${n}`,
      { tensor: name },
    );
  }
  let data: TypedArray = feed.data;
  if (dtype === "float64" && want === "float32") {
    // As `lowbit run` does with float64 .npy inputs.
    data = Float32Array.from(data as Float64Array);
    dtype = "float32";
  }
  if (SAME_STORAGE[want] === dtype) dtype = want;
  if (dtype !== want) {
    throw new LowbitError("INVALID_ARGUMENT", `the model expects ${want}, data is ${dtype}`, {
      tensor: name,
    });
  }
  return { dtype, shape: [...dims], data };
}
