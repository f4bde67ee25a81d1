/**
 * The graph executor: validates a graph once (every op supported, inputs
 * resolvable, no cycle), precomputes a topological plan with the last use of
 * every value, then runs it on inputs, freeing each value as soon as its last
 * consumer ran. Hooks let callers observe values as they are produced
 * (activation capture for calibration) and replace them (fake quantization).
 * With `threads` > 1, Conv / ConvTranspose / Gemm / MatMul split over a worker
 * pool with results bit-identical to one thread.
 *
 * @module
 */

import { defaultRegistry, LowbitError, type Registry } from "@lowbit/core";
import {
  createFloatKernelsOn,
  type FloatKernels,
  floatKernelSources,
  freeResidentF32,
  residentF32,
} from "@lowbit/kernels";
import { createPool, type Pool } from "@lowbit/runtime";
import type { Graph, Model, Node, TensorData, ValueInfo } from "../ir.ts";
import { lookupOp, supportedContribOps, supportedOps } from "./ops/table.ts";
import type { OpContext, OpImpl } from "./ops/types.ts";
import { fuseQdq } from "./quantized.ts";
import { fuseGraph } from "./_fuse.ts";
import { topoSort } from "../passes/topo.ts";
import { allNodes } from "../subgraphs.ts";
import { bindOuterScope, outerNames, subgraphsOf } from "./_subgraph.ts";
import { halfAsFloat } from "./_half.ts";

/** Options fixed when an executor is created. */
export interface ExecutorOptions {
  /**
   * How QDQ patterns run: "float" (default) executes QuantizeLinear /
   * DequantizeLinear as written (the fake-quant reference); "integer" first
   * rewrites DQ(weight) → MatMul / Gemm / Conv ← DQ(Q(x)) into fused ops that
   * run on integer arithmetic (see `fuseQdq`).
   */
  quantized?: "float" | "integer";
  /** Default-domain opset when a bare `Graph` is given (default 17). */
  opset?: number;
  /**
   * Fold and fuse ops for runs without hooks (default true): Conv absorbs
   * BatchNormalization and per-channel affine ops, Relu / Clip fuse into
   * Conv / Gemm / MatMul, chains of elementwise ops run in one pass.
   */
  fuse?: boolean;
  /**
   * Run Conv / Gemm / MatMul on the plain TypeScript reference instead of the
   * WASM SIMD kernels (default false; the reference is also the fallback when
   * the kernels cannot load).
   */
  reference?: boolean;
  /**
   * Threads for Conv / ConvTranspose / Gemm / MatMul, the calling thread included (default 1).
   * With more, the first run starts a worker pool (shared WebAssembly memory) that later runs
   * reuse; every output element is still computed by one thread in the same order, so results
   * are bit-identical to `threads: 1`. Call `close()` to stop the workers. Where shared memory
   * is unavailable everything runs on the calling thread.
   */
  threads?: number;
  /** Registry whose quantizers run `FakeQuant` nodes (default: the default registry). */
  registry?: Registry;
}

/** Options of one run. */
export interface RunOptions {
  /**
   * Value names to watch. When given, `observe` is called only for these;
   * when omitted, for every value produced (graph inputs included).
   */
  watch?: Iterable<string>;
  /**
   * Called once per watched value as it is produced (graph inputs first, then
   * node outputs in plan order), after `transform`. `node` is undefined for
   * graph inputs. Only the current batch is alive; copy `t` to keep it. Values made inside
   * If / Loop / Scan subgraphs are shown (and transformed) as the subgraph runs, once per
   * iteration; a subgraph's inputs are not shown again.
   */
  observe?: (valueName: string, t: TensorData, node: Node | undefined) => void;
  /**
   * Called for every value as it is produced (graph inputs included), before
   * `observe`; returning a tensor (same shape and dtype) replaces the value for
   * all consumers, returning undefined keeps it. This is the fake-quantization
   * hook. Must not modify `t` in place (it may alias an initializer or input).
   */
  transform?: (
    valueName: string,
    t: TensorData,
    node: Node | undefined,
  ) => TensorData | undefined;
  /** Values to return (default: the graph outputs). Any produced value may be named. */
  outputs?: readonly string[];
  /** When given, wall time in ms is added per op type (e.g. `profile.Conv`). */
  profile?: Record<string, number>;
  /**
   * What `profile` is keyed by: the op type (default), or each node of the plan that ran
   * (`"<node name> <op>"`: the fused plan keeps the names of the nodes it replaced, so a float
   * model's and its quantized model's nodes line up).
   */
  profileBy?: "op" | "node";
  /**
   * The clock of `profile`, in ms (default `performance.now`); e.g. the process's CPU time, which
   * other processes on a shared machine do not advance (one thread only).
   */
  profileClock?: () => number;
}

/** A prepared graph. */
export interface Executor {
  /** The graph being run (after QDQ fusion when requested). */
  readonly graph: Graph;
  /** Default-domain opset the ops follow. */
  readonly opset: number;
  /** Nodes in execution order. */
  readonly plan: readonly Node[];
  /**
   * Runs the graph.
   *
   * @param inputs one tensor per graph input, by name
   * @param opts hooks and output selection
   * @returns the requested values (default: graph outputs), by name
   */
  run(
    inputs: Record<string, TensorData>,
    opts?: RunOptions,
  ): Promise<Record<string, TensorData>>;
  /**
   * Stops the worker pool of a multi-threaded executor (a no-op otherwise); a later run
   * starts a new one.
   */
  close(): Promise<void>;
}

interface Step {
  node: Node;
  impl: OpImpl;
  /** Values whose last consumer this step is (freed after it runs). */
  frees: string[];
}

/** What a run needs for subgraphs (outer values come as extra inputs: `_subgraph.ts`). */
interface RunScope {
  /** Prepared subgraphs of the plan's control-flow nodes, by the subgraph object. */
  subs: Map<Graph, Prepared>;
  /** Check graph inputs against their declared types (not for subgraphs). */
  check: boolean;
}

function opsetOf(m: Model | Graph, opts: ExecutorOptions): number {
  if ("graph" in m) {
    const imp = m.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx");
    if (imp) return imp.version;
  }
  return opts.opset ?? 17;
}

/**
 * Orders nodes topologically (the one `topoSort` of `passes/topo.ts`); a value produced twice,
 * or produced over an initializer or a graph input, is an error naming it.
 */
function executionOrder(g: Graph): Node[] {
  const given = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) {
    for (const o of n.outputs) {
      if (o !== "" && given.has(o)) {
        throw new LowbitError("DUPLICATE_NAME", `value '${o}' is produced more than once`, {
          node: n.name,
          tensor: o,
        });
      }
    }
  }
  return topoSort(g);
}

/**
 * Prepares a model or graph for execution. Everything that can be checked
 * without data is checked here: an unsupported op is reported with its node
 * name before anything runs, as are dangling inputs and cycles.
 *
 * @param model the model (or bare graph) to run
 * @param opts execution options
 * @returns the executor
 *
 * @example
 * ```ts
 * import { createExecutor } from "./executor.ts";
 * const graph = {
 *   name: "g",
 *   nodes: [{ name: "relu", op: "Relu", domain: "", inputs: ["x"], outputs: ["y"], attrs: {} }],
 *   inputs: [{ name: "x", dtype: "float32" as const, shape: [2] }],
 *   outputs: [{ name: "y", dtype: "float32" as const, shape: [2] }],
 *   initializers: new Map(),
 *   valueInfo: new Map(),
 * };
 * const exec = createExecutor(graph);
 * const seen: string[] = [];
 * const out = await exec.run(
 *   { x: { dtype: "float32", shape: [2], data: new Float32Array([-1, 3]) } },
 *   { observe: (name) => seen.push(name) },
 * );
 * if (out.y.data.join() !== "0,3" || seen.join() !== "x,y") throw new Error();
 * ```
 */
export function createExecutor(model: Model | Graph, opts: ExecutorOptions = {}): Executor {
  const opset = opsetOf(model, opts);
  let graph: Graph = "graph" in model ? model.graph : model;
  // Unsupported ops first: they are the most common reason a model cannot run.
  const unsupported = [...allNodes(graph)].filter((n) => lookupOp(n.op, n.domain) === undefined);
  if (unsupported.length > 0) {
    const n = unsupported[0];
    const others = unsupported.length > 1
      ? ` (${unsupported.length - 1} more unsupported node(s): ${
        [...new Set(unsupported.slice(1).map((u) => u.op))].join(", ")
      })`
      : "";
    throw new LowbitError(
      "UNSUPPORTED",
      `op '${n.op}'${
        n.domain ? ` of domain '${n.domain}'` : ""
      } is not supported by the executor${others}; supported ops: ${
        (n.domain === "com.microsoft" ? supportedContribOps() : supportedOps()).join(", ")
      }`,
      { node: n.name },
    );
  }
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `executor option threads must be an integer in [1, 256], got ${threads}`,
    );
  }
  // Outer-scope reads of If / Loop / Scan bodies become inputs of their nodes first, so that the
  // integer plan's rewrite sees them as uses (a value or constant read only inside a branch).
  graph = bindOuterScope(graph);
  if (opts.quantized === "integer") graph = fuseQdq(graph);
  const plain = prepare(graph, opset, opts);
  // The fast plan folds and fuses ops (see _fuse.ts); it runs when no value is
  // observed or transformed and every requested value still exists in it.
  const fast = opts.fuse === false
    ? plain
    : prepare(fuseGraph(graph), opset, opts, undefined, true);
  const parallel = threads > 1 && opts.reference !== true;
  let pool: Promise<{ pool: Pool; kernels: FloatKernels; recycler: Recycler }> | undefined;
  const recycler = createRecycler();
  // Runs on a pool share its kernel scratch: they go one after the other.
  let queue: Promise<unknown> = Promise.resolve();
  const runOnce = async (
    inputs: Record<string, TensorData>,
    runOpts: RunOptions,
  ): Promise<Record<string, TensorData>> => {
    const useFast = runOpts.observe === undefined && runOpts.transform === undefined &&
      (runOpts.outputs ?? []).every((v) => fast.values.has(v));
    const p = useFast ? fast : plain;
    if (!parallel) return runPlan(p.graph, p.ctx, p.steps, inputs, runOpts, recycler, p);
    pool ??= createPool({ modules: floatKernelSources("wasmsimd"), threads }).then(
      (q) => {
        const kernels = createFloatKernelsOn(q);
        return { pool: q, kernels, recycler: createRecycler(q.shared ? kernels : undefined) };
      },
      (e) => {
        pool = undefined; // a later run tries again
        throw e;
      },
    );
    const q = await pool;
    const ctx = { ...p.ctx, floatKernels: q.kernels };
    return runPlan(p.graph, ctx, p.steps, inputs, runOpts, q.recycler, p);
  };
  return {
    graph,
    opset,
    plan: plain.order,
    run: (inputs, runOpts = {}) => {
      if (!parallel) return runOnce(inputs, runOpts);
      const r = queue.then(() => runOnce(inputs, runOpts));
      queue = r.catch(() => undefined);
      return r;
    },
    close: async () => {
      const p = pool;
      pool = undefined;
      if (p) (await p).pool.close();
    },
  };
}

/**
 * Float32 storage of dead values, by length, reused for later outputs of the same size (within
 * a run and across runs): a fresh large array costs a page fault per 4 KiB on first write,
 * often more than the op that fills it. On a pool's shared memory the storage is allocated in
 * the kernels' memory itself, so convs read and write it in place (no copies in and out);
 * `owns` tells such arrays, which never leave a run (outputs are copied).
 */
interface Recycler {
  take(n: number): Float32Array;
  give(a: Float32Array): void;
  owns(a: TensorData["data"]): boolean;
}

/** At most this many spare arrays are kept per length. */
const SPARES = 4;

function createRecycler(kernels?: FloatKernels): Recycler {
  const free = new Map<number, Float32Array[]>();
  const mine = new WeakSet<Float32Array>();
  return {
    take: (n) => {
      const a = free.get(n)?.pop();
      if (a !== undefined) return a;
      if (kernels === undefined || n < 1024) return new Float32Array(n);
      const r = residentF32(kernels, n);
      mine.add(r);
      return r;
    },
    give: (a) => {
      if (mine.has(a)) {
        // Resident storage: kept for reuse, or handed back to the kernels' allocator.
        let l = free.get(a.length);
        if (l === undefined) free.set(a.length, l = []);
        if (l.includes(a)) return;
        if (l.length < SPARES) l.push(a);
        else {
          mine.delete(a);
          freeResidentF32(a);
        }
        return;
      }
      // Only whole, unshared buffers: never a view that other storage may overlap.
      if (a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength) return;
      if (!(a.buffer instanceof ArrayBuffer) || a.length < 1024) return;
      let l = free.get(a.length);
      if (l === undefined) free.set(a.length, l = []);
      if (l.length < SPARES && !l.includes(a)) l.push(a);
    },
    owns: (a) => a instanceof Float32Array && mine.has(a),
  };
}

interface Prepared {
  graph: Graph;
  order: Node[];
  steps: Step[];
  ctx: OpContext;
  /** Every value name that exists while the plan runs. */
  values: Set<string>;
  /** Prepared subgraphs, see {@link RunScope}. */
  subs: Map<Graph, Prepared>;
  check: boolean;
}

/**
 * Plans `graph`; for a subgraph, `outer` names the enclosing values it reads (extra inputs) and
 * `fused` says whether the enclosing plan is the fused one. Subgraphs are planned eagerly, so
 * their unknown names and cycles are reported before anything runs.
 */
function prepare(
  graph: Graph,
  opset: number,
  opts: ExecutorOptions,
  outer?: readonly string[],
  fused = false,
): Prepared {
  if (outer !== undefined) {
    const inputs = [...graph.inputs];
    for (const name of outer) {
      if (!inputs.some((v) => v.name === name)) inputs.push({ name, dtype: "float32" });
    }
    graph = { ...graph, inputs };
  }
  const order = executionOrder(graph);
  const subs = new Map<Graph, Prepared>();
  for (const node of order) {
    for (const sg of subgraphsOf(node)) {
      subs.set(sg, prepare(fused ? fuseGraph(sg) : sg, opset, opts, outerNames(node), fused));
    }
  }
  const outputNames = new Set(graph.outputs.map((o) => o.name));
  // Last consumer of each value; graph outputs are never freed.
  const last = new Map<string, number>();
  order.forEach((n, i) => {
    for (const v of n.inputs) if (v !== "") last.set(v, i);
  });
  const steps: Step[] = order.map((node) => {
    const impl = lookupOp(node.op, node.domain);
    if (impl === undefined) {
      throw new LowbitError("INTERNAL", `rewritten graph holds unknown op '${node.op}'`, {
        node: node.name,
      });
    }
    return { node, impl: halfAsFloat(node.op, impl), frees: [] };
  });
  for (const [v, i] of last) {
    if (!outputNames.has(v) && !graph.initializers.has(v)) steps[i].frees.push(v);
  }
  // Storage objects that are the same on every run: kernels may cache packed forms of them.
  const constants = new WeakSet<object>();
  for (const t of graph.initializers.values()) constants.add(t.data);
  for (const n of graph.nodes) {
    const v = n.op === "Constant" ? n.attrs.value : undefined;
    if (v?.kind === "tensor") constants.add(v.value.data);
  }
  const ctx: OpContext = {
    opset,
    quantizers: (opts.registry ?? defaultRegistry()).quantizers,
    reference: opts.reference ?? false,
    isConstant: (t) => constants.has(t.data),
  };
  const values = new Set<string>([
    ...graph.initializers.keys(),
    ...graph.inputs.map((v) => v.name),
  ]);
  for (const n of order) for (const o of n.outputs) values.add(o);
  return { graph, order, steps, ctx, values, subs, check: outer === undefined };
}

function dimsOk(info: ValueInfo, t: TensorData): string | undefined {
  if (t.dtype !== info.dtype) return `has dtype ${t.dtype}, the model expects ${info.dtype}`;
  if (info.shape !== undefined) {
    if (t.shape.length !== info.shape.length) {
      return `has shape [${t.shape}] (rank ${t.shape.length}), the model expects rank ${info.shape.length} [${info.shape}]`;
    }
    for (let i = 0; i < t.shape.length; i++) {
      const d = info.shape[i];
      if (typeof d === "number" && d >= 0 && d !== t.shape[i]) {
        return `has shape [${t.shape}], the model expects [${info.shape}] (dimension ${i} must be ${d})`;
      }
    }
  }
  let n = 1;
  for (const d of t.shape) {
    if (!Number.isInteger(d) || d < 0) return `has an invalid shape [${t.shape}]`;
    n *= d;
  }
  if (t.data.length !== n) return `has ${t.data.length} elements but shape [${t.shape}] holds ${n}`;
  return undefined;
}

async function runPlan(
  g: Graph,
  ctx: OpContext,
  steps: readonly Step[],
  inputs: Record<string, TensorData>,
  opts: RunOptions,
  recycler: Recycler,
  scope: RunScope,
): Promise<Record<string, TensorData>> {
  const values = new Map<string, TensorData>();
  const watch = opts.watch === undefined ? undefined : new Set(opts.watch);
  const { observe, transform, profile } = opts;
  const clock = opts.profileClock ?? (() => performance.now());
  const byNode = opts.profileBy === "node";
  const wanted = opts.outputs ?? g.outputs.map((o) => o.name);
  const keep = new Set(wanted);
  // Live values per storage object (Reshape & co. share storage), and storage
  // that must never be overwritten (the caller's inputs, hook results).
  const refs = new Map<object, number>();
  const pinned = new Set<object>();
  const produce = (name: string, t: TensorData, node: Node | undefined): void => {
    if (transform) {
      const r = transform(name, t, node);
      if (r !== undefined) t = r;
    }
    if (observe && (watch === undefined || watch.has(name))) observe(name, t, node);
    values.set(name, t);
    refs.set(t.data, (refs.get(t.data) ?? 0) + 1);
    if (ctx.isConstant?.(t)) pinned.add(t.data);
  };
  for (const name of Object.keys(inputs)) {
    if (!g.inputs.some((v) => v.name === name)) {
      throw new LowbitError(
        "UNKNOWN_NAME",
        `the model has no input of this name; its inputs are: ${
          g.inputs.map((v) => v.name).join(", ")
        }`,
        { tensor: name },
      );
    }
  }
  for (const info of g.inputs) {
    const t = inputs[info.name];
    if (t === undefined) {
      if (g.initializers.has(info.name)) continue;
      throw new LowbitError("INVALID_ARGUMENT", "input missing: every graph input needs a tensor", {
        tensor: info.name,
      });
    }
    const bad = scope.check ? dimsOk(info, t) : undefined;
    if (bad !== undefined) {
      throw new LowbitError("SHAPE_MISMATCH", `input ${bad}`, { tensor: info.name });
    }
    if (scope.check) produce(info.name, t, undefined);
    else {
      // A subgraph's inputs (outer values, loop-carried values, scan slices) were shown to the
      // hooks where they were produced: they are not shown again.
      values.set(info.name, t);
      refs.set(t.data, (refs.get(t.data) ?? 0) + 1);
    }
    pinned.add(t.data);
    pinned.add(values.get(info.name)!.data);
  }
  const donated = new Set<TensorData>();
  // Storage is recycled only without hooks (a hook may hold on to what it was shown).
  const recycle = transform === undefined && observe === undefined;
  const stepCtx: OpContext = {
    ...ctx,
    reusable: (t) => donated.has(t),
    allocF32: recycle ? recycler.take : undefined,
    releaseF32: recycle ? recycler.give : undefined,
    runSubgraph: async (sg, subInputs) => {
      const p = scope.subs.get(sg);
      if (p === undefined) {
        throw new LowbitError("INTERNAL", `subgraph '${sg.name}' was not planned`);
      }
      const subOpts: RunOptions = {
        watch: opts.watch,
        observe,
        transform,
        profile,
        profileBy: opts.profileBy,
        profileClock: opts.profileClock,
      };
      const subCtx = { ...p.ctx, floatKernels: ctx.floatKernels };
      const r = await runPlan(p.graph, subCtx, p.steps, subInputs, subOpts, recycler, p);
      return sg.outputs.map((o) => r[o.name]);
    },
  };
  const args: (TensorData | undefined)[] = [];
  for (const step of steps) {
    const { node } = step;
    args.length = 0;
    for (const v of node.inputs) {
      if (v === "") {
        args.push(undefined);
        continue;
      }
      const t = values.get(v) ?? g.initializers.get(v);
      if (t === undefined) {
        throw new LowbitError("INTERNAL", `value '${v}' is not available`, {
          node: node.name,
          tensor: v,
        });
      }
      args.push(t);
    }
    // Inputs whose storage dies with this step may be overwritten by the op.
    donated.clear();
    if (transform === undefined) {
      for (const v of step.frees) {
        const t = values.get(v);
        if (t && !keep.has(v) && refs.get(t.data) === 1 && !pinned.has(t.data)) donated.add(t);
      }
    }
    let outs: TensorData[];
    const t0 = profile ? clock() : 0;
    try {
      const r = step.impl(args, node, stepCtx);
      outs = r instanceof Promise ? await r : r;
      if (profile) {
        const key = byNode ? `${node.name} ${node.op}` : node.op;
        profile[key] = (profile[key] ?? 0) + clock() - t0;
      }
    } catch (e) {
      if (e instanceof LowbitError) {
        if (e.subject.node !== undefined) throw e;
        // Re-issue with the node added to the subject (and to the message's prefix).
        const old = new LowbitError(e.code, "", e.subject).message;
        const detail = e.message.startsWith(old) ? e.message.slice(old.length) : e.message;
        throw new LowbitError(e.code, detail, { ...e.subject, node: node.name });
      }
      throw new LowbitError(
        "INTERNAL",
        `${node.op} failed: ${e instanceof Error ? e.message : String(e)}`,
        { node: node.name },
      );
    }
    for (let i = 0; i < node.outputs.length; i++) {
      const name = node.outputs[i];
      if (name === "") continue;
      const t = outs[i];
      if (t === undefined) {
        throw new LowbitError(
          "UNSUPPORTED",
          `${node.op} does not produce output ${i} ('${name}')`,
          {
            node: node.name,
          },
        );
      }
      produce(name, t, node);
    }
    for (const v of step.frees) {
      if (keep.has(v)) continue;
      const t = values.get(v);
      values.delete(v);
      if (t) {
        const n = (refs.get(t.data) ?? 1) - 1;
        if (n > 0) refs.set(t.data, n);
        else {
          refs.delete(t.data);
          if (recycle && t.data instanceof Float32Array && !pinned.has(t.data)) {
            recycler.give(t.data);
          }
        }
      }
    }
  }
  const result: Record<string, TensorData> = {};
  const handedBack: Float32Array[] = [];
  for (const name of wanted) {
    const t = values.get(name) ?? g.initializers.get(name);
    if (t === undefined) {
      throw new LowbitError("UNKNOWN_NAME", "requested output is not a value of the graph", {
        tensor: name,
      });
    }
    if (recycler.owns(t.data)) {
      // Storage in the kernels' memory stays with the executor: the caller gets a copy.
      result[name] = { ...t, data: (t.data as Float32Array).slice() };
      handedBack.push(t.data as Float32Array);
    } else result[name] = t;
  }
  for (const a of handedBack) recycler.give(a);
  return result;
}
