/**
 * Kernel runners: where the wasm modules live (one memory, one allocator) and how a kernel is
 * run over row ranges. {@link createLocalRunner} runs everything on the calling thread;
 * `@lowbit/runtime`'s `createPool` implements the same {@link KernelRunner} with workers on a
 * shared memory. Kernel drivers take `(m0, m1, ...args)` and compute rows `[m0, m1)`, so a
 * runner can split any of them.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";

/** A kernel module as embedded by `tools/build_kernels.ts`: two flavours, base64. */
export interface KernelSource {
  /** Imports a non-shared `env.memory`. */
  single: string;
  /** Imports a shared `env.memory` (threads). */
  shared: string;
}

/** Bytes at the start of every kernel memory that are never handed out (module statics). */
export const RESERVED_BYTES = 65536;

/** Default maximum size of a kernel memory: 2 GiB (32768 pages of 64 KiB). */
export const DEFAULT_MAX_PAGES = 32768;

/** Runs kernels over row ranges of one wasm memory. */
export interface KernelRunner {
  /** Number of threads `run` splits over (1 for the local runner). */
  readonly threads: number;
  /** The memory every module is instantiated on. */
  readonly memory: WebAssembly.Memory;
  /** Names of the loaded modules. */
  readonly modules: readonly string[];
  /**
   * The exports of a module instantiated on `memory` in the calling thread.
   * @param module module name
   */
  exports(module: string): WebAssembly.Exports;
  /**
   * Allocates `bytes` (16-byte aligned) in `memory`, growing it if needed.
   * @param bytes size in bytes
   */
  alloc(bytes: number): number;
  /**
   * Frees a block from `alloc`.
   * @param ptr the block
   */
  free(ptr: number): void;
  /**
   * Runs `exports[fn](r0, r1, ...args)` for contiguous row ranges that partition `[0, rows)`,
   * each a multiple of `align` rows (except the last), one per thread; resolves when all are done.
   * @param module module name
   * @param fn exported function
   * @param rows number of rows
   * @param args the arguments after `(r0, r1)`
   * @param align row granularity of the split
   */
  run(
    module: string,
    fn: string,
    rows: number,
    args: readonly number[],
    align?: number,
  ): Promise<void>;
  /** Releases workers (no-op for the local runner). */
  close(): void;
}

/**
 * Decodes base64 (the embedded kernels) to bytes.
 *
 * @param b64 base64 text
 * @returns the bytes
 *
 * @example
 * ```ts
 * import { decodeBase64 } from "@lowbit/kernels";
 * const b = decodeBase64("AGFzbQ==");
 * if (b.length !== 4 || b[1] !== 0x61) throw new Error();
 * ```
 */
export function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const providedModules = new Map<string, WebAssembly.Module>();

/**
 * Gives precompiled kernel modules to use instead of compiling the embedded bytes (for hosts
 * that refuse to compile wasm at run time, e.g. Cloudflare workerd, which hands over modules
 * imported from `.wasm` files). Keys are the build's file names: `int_gemm.wasm`,
 * `float_gemm.wasm`, `float_gemm_relaxed.wasm`, … (`….shared.wasm` for the shared-memory
 * flavour). Kernel contexts created afterwards instantiate these modules.
 *
 * @param modules modules by file name
 * @throws {LowbitError} `INVALID_ARGUMENT` for a key that is not a kernel file name or a value
 *   that is not a `WebAssembly.Module`
 *
 * @example
 * ```ts
 * import { decodeBase64, provideKernelModules, providedKernelModule } from "@lowbit/kernels";
 * const m = new WebAssembly.Module(decodeBase64("AGFzbQEAAAA="));
 * provideKernelModules({ "probe_test.wasm": m });
 * if (providedKernelModule("probe_test.wasm") !== m) throw new Error();
 * ```
 */
export function provideKernelModules(modules: Record<string, WebAssembly.Module>): void {
  for (const [file, m] of Object.entries(modules)) {
    if (!/^[a-z0-9_]+(\.shared)?\.wasm$/.test(file)) {
      throw new LowbitError("INVALID_ARGUMENT", `'${file}' is not a kernel file name (x.wasm)`);
    }
    if (!(m instanceof WebAssembly.Module)) {
      throw new LowbitError("INVALID_ARGUMENT", `'${file}' is not a WebAssembly.Module`);
    }
  }
  for (const [file, m] of Object.entries(modules)) providedModules.set(file, m);
}

/**
 * The module given to {@link provideKernelModules} for a file name, if any.
 *
 * @param file e.g. `int_gemm.wasm`
 * @returns the module, or undefined
 *
 * @example
 * ```ts
 * import { providedKernelModule } from "@lowbit/kernels";
 * if (providedKernelModule("nothing.wasm") !== undefined) throw new Error();
 * ```
 */
export function providedKernelModule(file: string): WebAssembly.Module | undefined {
  return providedModules.get(file);
}

/**
 * Splits `[0, rows)` into at most `parts` contiguous ranges, each a multiple of `align` rows
 * except possibly the last. Deterministic: it depends only on its arguments.
 *
 * @param rows number of rows
 * @param parts number of ranges wanted
 * @param align row granularity
 * @returns `[r0, r1]` pairs, empty ranges dropped
 *
 * @example
 * ```ts
 * import { splitRows } from "@lowbit/kernels";
 * const r = splitRows(10, 2, 4);
 * if (JSON.stringify(r) !== "[[0,8],[8,10]]") throw new Error(JSON.stringify(r));
 * ```
 */
export function splitRows(rows: number, parts: number, align = 1): [number, number][] {
  const blocks = Math.ceil(rows / align);
  const out: [number, number][] = [];
  let b0 = 0;
  for (let p = 0; p < parts; p++) {
    const b1 = b0 + Math.floor(blocks / parts) + (p < blocks % parts ? 1 : 0);
    const r0 = Math.min(rows, b0 * align), r1 = Math.min(rows, b1 * align);
    if (r1 > r0) out.push([r0, r1]);
    b0 = b1;
  }
  return out;
}

/** A first-fit allocator over a wasm memory (the memory is owned by one thread). */
export interface Arena {
  /**
   * Allocates `bytes`, 16-byte aligned, growing the memory if needed.
   * @param bytes size in bytes
   */
  alloc(bytes: number): number;
  /**
   * Frees a block.
   * @param ptr the block
   */
  free(ptr: number): void;
}

/**
 * Creates an allocator over `memory` above {@link RESERVED_BYTES}. Growth beyond the memory's
 * maximum throws a `LowbitError` with code `OUT_OF_MEMORY` (never a wasm trap).
 *
 * @param memory the memory
 * @param maxPages the memory's maximum in pages
 * @returns the allocator
 *
 * @example
 * ```ts
 * import { createArena } from "@lowbit/kernels";
 * const mem = new WebAssembly.Memory({ initial: 2, maximum: 4 });
 * const arena = createArena(mem, 4);
 * const p = arena.alloc(100);
 * arena.free(p);
 * if (arena.alloc(100) !== p) throw new Error("freed block is reused");
 * ```
 */
export function createArena(memory: WebAssembly.Memory, maxPages: number): Arena {
  // Free blocks sorted by address; `used` maps a pointer to its size.
  const freeList: { ptr: number; size: number }[] = [];
  const used = new Map<number, number>();
  let top = RESERVED_BYTES;
  return {
    alloc(bytes: number): number {
      if (!Number.isInteger(bytes) || bytes < 0) {
        throw new LowbitError("INVALID_ARGUMENT", `alloc: bad size ${bytes}`);
      }
      const size = Math.max(16, Math.ceil(bytes / 16) * 16);
      for (let i = 0; i < freeList.length; i++) {
        const f = freeList[i];
        if (f.size >= size) {
          const ptr = f.ptr;
          if (f.size === size) freeList.splice(i, 1);
          else {
            f.ptr += size;
            f.size -= size;
          }
          used.set(ptr, size);
          return ptr;
        }
      }
      const ptr = top;
      const end = ptr + size;
      const have = memory.buffer.byteLength;
      if (end > have) {
        const pages = Math.ceil((end - have) / 65536);
        const current = have / 65536;
        if (current + pages > maxPages) {
          throw new LowbitError(
            "OUT_OF_MEMORY",
            `kernel memory: cannot allocate ${bytes} bytes: would need ${current + pages} pages ` +
              `of 64 KiB, the maximum is ${maxPages} (${maxPages / 16} MiB); use smaller ` +
              `matrices or free packed weights you no longer need`,
          );
        }
        try {
          memory.grow(pages);
        } catch (e) {
          throw new LowbitError(
            "OUT_OF_MEMORY",
            `kernel memory: growing by ${pages} pages failed (${(e as Error).message})`,
          );
        }
      }
      top = end;
      used.set(ptr, size);
      return ptr;
    },
    free(ptr: number): void {
      const size = used.get(ptr);
      if (size === undefined) {
        throw new LowbitError("INVALID_ARGUMENT", `free: ${ptr} is not an allocated block`);
      }
      used.delete(ptr);
      let i = 0;
      while (i < freeList.length && freeList[i].ptr < ptr) i++;
      freeList.splice(i, 0, { ptr, size });
      // Coalesce with neighbours, and give the tail back to `top`.
      if (i + 1 < freeList.length && ptr + size === freeList[i + 1].ptr) {
        freeList[i].size += freeList[i + 1].size;
        freeList.splice(i + 1, 1);
      }
      if (i > 0 && freeList[i - 1].ptr + freeList[i - 1].size === ptr) {
        freeList[i - 1].size += freeList[i].size;
        freeList.splice(i, 1);
        i--;
      }
      const last = freeList[freeList.length - 1];
      if (last && last.ptr + last.size === top) {
        top = last.ptr;
        freeList.pop();
      }
    },
  };
}

// *** arrays in kernel memory ***

/** Element types of {@link KernelArray}s and their JavaScript views. */
export interface KernelDTypes {
  /** int8 */
  s8: Int8Array;
  /** uint8 */
  u8: Uint8Array;
  /** int32 */
  s32: Int32Array;
  /** float32 */
  f32: Float32Array;
}

/** Element type of a {@link KernelArray}. */
export type KernelDType = keyof KernelDTypes;

const DTYPE_CTORS = { s8: Int8Array, u8: Uint8Array, s32: Int32Array, f32: Float32Array } as const;

/**
 * A typed array that lives in a runner's memory (shared with the workers of a pool), so that
 * kernels read and write it in place: no copy in, no copy out. Made by {@link allocArray}.
 */
export interface KernelArray<D extends KernelDType = KernelDType> {
  /** The runner whose memory holds the array. */
  readonly runner: KernelRunner;
  /** Element type. */
  readonly dtype: D;
  /** Number of elements. */
  readonly length: number;
  /** Byte offset in the runner's memory (16-byte aligned, followed by ≥ 16 zero bytes). */
  readonly ptr: number;
  /**
   * A view of the elements. Take a fresh one after anything that may grow the memory
   * (allocations): a grown memory detaches (non-shared) or outgrows (shared) older views.
   */
  view(): KernelDTypes[D];
  /** Releases the memory (idempotent). */
  free(): void;
}

/**
 * Allocates a zero-filled typed array in a runner's memory, for the `…Into` kernels
 * (e.g. `gemmS8Into`) that read and write kernel memory in place.
 *
 * @param runner the runner (or pool)
 * @param dtype element type
 * @param length number of elements
 * @returns the array; `free()` it when done
 *
 * @example
 * ```ts
 * import { allocArray, createLocalRunner, intKernelSources } from "@lowbit/kernels";
 * const runner = await createLocalRunner(intKernelSources());
 * const x = allocArray(runner, "s32", 3);
 * x.view().set([1, -2, 3]);
 * if (x.view().join() !== "1,-2,3" || x.ptr % 16 !== 0) throw new Error();
 * x.free();
 * ```
 */
export function allocArray<D extends KernelDType>(
  runner: KernelRunner,
  dtype: D,
  length: number,
): KernelArray<D> {
  const Ctor = DTYPE_CTORS[dtype];
  if (Ctor === undefined) {
    throw new LowbitError("UNKNOWN_NAME", `unknown dtype '${dtype}' (s8, u8, s32, f32)`);
  }
  if (!Number.isInteger(length) || length < 0 || length > 2 ** 31) {
    throw new LowbitError("INVALID_ARGUMENT", `allocArray: bad length ${length}`);
  }
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  // 16 zero bytes after the end: kernels may load a whole vector at a row's tail.
  const ptr = runner.alloc(bytes + 16);
  new Uint8Array(runner.memory.buffer, ptr, bytes + 16).fill(0);
  let freed = false;
  return {
    runner,
    dtype,
    length,
    ptr,
    view: () => new Ctor(runner.memory.buffer as ArrayBuffer, ptr, length) as KernelDTypes[D],
    free(): void {
      if (freed) return;
      freed = true;
      runner.free(ptr);
    },
  };
}

/**
 * Whether `x` is a {@link KernelArray} (rather than a JavaScript typed array).
 *
 * @param x a value
 * @returns true for kernel arrays
 *
 * @example
 * ```ts
 * import { isKernelArray } from "@lowbit/kernels";
 * if (isKernelArray(new Int8Array(2))) throw new Error();
 * ```
 */
export function isKernelArray(x: unknown): x is KernelArray {
  return typeof x === "object" && x !== null && !ArrayBuffer.isView(x) &&
    typeof (x as KernelArray).ptr === "number" && typeof (x as KernelArray).view === "function";
}

/** Options of {@link createLocalRunner}. */
export interface LocalRunnerOptions {
  /** Maximum memory in 64 KiB pages (default {@link DEFAULT_MAX_PAGES}). */
  maxPages?: number;
}

/**
 * A runner on the calling thread with a non-shared memory: works everywhere (no
 * SharedArrayBuffer needed); `threads` is 1.
 *
 * @param sources modules by name
 * @param opts memory limits
 * @returns the runner
 *
 * @example
 * ```ts
 * import { createLocalRunner, intKernelSources } from "@lowbit/kernels";
 * const runner = await createLocalRunner(intKernelSources());
 * if (runner.threads !== 1 || !runner.modules.includes("int_gemm")) throw new Error();
 * ```
 */
export async function createLocalRunner(
  sources: Record<string, KernelSource>,
  opts: LocalRunnerOptions = {},
): Promise<KernelRunner> {
  const maxPages = opts.maxPages ?? DEFAULT_MAX_PAGES;
  const memory = new WebAssembly.Memory({ initial: 2, maximum: maxPages });
  const arena = createArena(memory, maxPages);
  const instances: Record<string, WebAssembly.Exports> = {};
  for (const [name, src] of Object.entries(sources)) {
    const module = providedKernelModule(`${name}.wasm`) ??
      await WebAssembly.compile(decodeBase64(src.single));
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    instances[name] = instance.exports;
  }
  const exportsOf = (module: string): WebAssembly.Exports => {
    const e = instances[module];
    if (!e) {
      throw new LowbitError("UNKNOWN_NAME", `kernel module '${module}' is not loaded`);
    }
    return e;
  };
  return {
    threads: 1,
    memory,
    modules: Object.keys(instances),
    exports: exportsOf,
    alloc: (bytes) => arena.alloc(bytes),
    free: (ptr) => arena.free(ptr),
    run(module, fn, rows, args): Promise<void> {
      const f = exportsOf(module)[fn] as ((...a: number[]) => void) | undefined;
      if (typeof f !== "function") {
        throw new LowbitError("UNKNOWN_NAME", `kernel '${fn}' not found in module '${module}'`);
      }
      if (rows > 0) f(0, rows, ...args);
      return Promise.resolve();
    },
    close(): void {},
  };
}
