/**
 * Which nodes of a graph are quantizable layers, how their weights are laid
 * out, and why the others are not. A layer is a Conv, ConvTranspose, Gemm or
 * MatMul whose weight is a float32 initializer, or one of the two weights of an
 * LSTM, GRU or RNN node (its input weight W and its recurrence weight R, each a
 * layer of the same node).
 *
 * Every weight is also seen in its [out, in] view: Conv [O, I/g, kh, kw] →
 * [O, I/g·kh·kw] (each of the g groups of output channels sees its own
 * inputs); Gemm with transB=1 [N, K] as is; Gemm with transB=0 and MatMul
 * [K, N] → transposed; ConvTranspose [I, O/g, kh, kw] → [O/g·…] is per-tensor
 * or per-input-channel only (no GPTQ). A recurrent weight [dirs, gates·hidden,
 * in] → [gates·hidden, dirs·in]: one row per gate and unit, both directions side
 * by side, so "per output channel" is per gate and unit (axis 1 of the file's
 * layout, which QDQ ONNX can hold); RTN only.
 *
 * @module
 */

import type { Graph, Node, TensorData } from "@lowbit/graph";

/** Recurrent operators: each of their weights W and R is a layer of its own. */
export const RECURRENT_OPS: readonly string[] = ["LSTM", "GRU", "RNN"];

/** Operators whose weights lowbit quantizes. */
export const LAYER_OPS: readonly string[] = [
  "Conv",
  "ConvTranspose",
  "Gemm",
  "MatMul",
  ...RECURRENT_OPS,
];

/** One quantizable layer. */
export interface Layer {
  /** Node name. */
  node: string;
  /** Operator type. */
  op: string;
  /** Name of the input activation. */
  input: string;
  /** Name of the weight initializer. */
  weight: string;
  /** Name of the bias initializer, if any. */
  bias?: string;
  /** Weight shape in the file. */
  shape: number[];
  /** Axis of the output channels in the file's layout. */
  outAxis: number;
  /** Axis of the reduction (input) dimension in the file's layout. */
  inAxis: number;
  /** Elements of the kernel window per input channel (kh·kw for Conv; 1 otherwise). */
  window: number;
  /** Conv groups (1 otherwise). */
  groups: number;
  /** Output channels. */
  out: number;
  /** Width of one output channel's row in the [out, in] view. */
  in: number;
  /** Inside a subgraph: the path of the nodes and attributes that hold it ("If_25/else_branch"). */
  scope?: string;
  /**
   * A recurrent node's weight: "input" (W, reading the layer's `input`) or "recurrence" (R,
   * reading the hidden state; its node's activation point is the W layer's).
   */
  part?: "input" | "recurrence";
}

/** A node that looks like a layer but cannot be quantized, with the reason. */
export interface Rejected {
  /** Node name. */
  node: string;
  /** Operator type. */
  op: string;
  /** Why it is not quantizable. */
  reason: string;
}

/** Layers and rejected candidates of a graph. */
export interface LayerScan {
  /** Quantizable layers, in file order. */
  layers: Layer[];
  /** Candidate nodes that are not quantizable, and why. */
  rejected: Rejected[];
}

function attrInt(n: Node, name: string, dflt: number): number {
  const a = n.attrs[name];
  return a && a.kind === "int" ? a.value : dflt;
}

/** Initializers visible from a graph: its own, then those of the graphs around it. */
type Scopes = readonly Graph[];

function initializer(scopes: Scopes, name: string | undefined): TensorData | undefined {
  if (!name) return undefined;
  for (let i = scopes.length - 1; i >= 0; i--) {
    const t = scopes[i].initializers.get(name);
    if (t) return t;
  }
  return undefined;
}

/** Options of {@link scanLayers}. */
export interface ScanOptions {
  /**
   * Also find layers inside subgraphs (If / Loop / Scan bodies), with their `scope`
   * (default false: the top-level graph only).
   */
  subgraphs?: boolean;
}

/**
 * Finds the quantizable layers of a graph.
 *
 * @param g the graph
 * @returns layers and, for every other Conv/Gemm/MatMul, the reason it was not taken
 *
 * @example
 * ```ts
 * import { scanLayers } from "@lowbit/pipeline";
 * const g = {
 *   name: "g", inputs: [], outputs: [], valueInfo: new Map(),
 *   nodes: [{ name: "fc", op: "Gemm", domain: "", inputs: ["x", "W"], outputs: ["y"],
 *     attrs: { transB: { kind: "int" as const, value: 1 } } }],
 *   initializers: new Map([["W", { dtype: "float32" as const, shape: [3, 4], data: new Float32Array(12) }]]),
 * };
 * const { layers } = scanLayers(g);
 * if (layers[0].out !== 3 || layers[0].in !== 4) throw new Error();
 * ```
 */
export function scanLayers(g: Graph, opts: ScanOptions = {}): LayerScan {
  const layers: Layer[] = [];
  const rejected: Rejected[] = [];
  scanGraph([g], undefined, layers, rejected, opts.subgraphs ?? false);
  return { layers, rejected };
}

function scanGraph(
  scopes: Scopes,
  scope: string | undefined,
  layers: Layer[],
  rejected: Rejected[],
  deep: boolean,
): void {
  const g = scopes[scopes.length - 1];
  const at = scope ? { scope } : {};
  for (const n of g.nodes) {
    if (deep) {
      for (const [k, a] of Object.entries(n.attrs)) {
        if (a.kind === "graph") {
          scanGraph(
            [...scopes, a.value],
            `${scope ? scope + "/" : ""}${n.name}/${k}`,
            layers,
            rejected,
            true,
          );
        }
      }
    }
    if (!LAYER_OPS.includes(n.op) || n.domain !== "") continue;
    const reject = (reason: string): void => {
      rejected.push({ node: n.name, op: n.op, reason });
    };
    if (RECURRENT_OPS.includes(n.op)) {
      scanRecurrent(scopes, n, at, layers, reject);
      continue;
    }
    const wName = n.inputs[1];
    const w = initializer(scopes, wName);
    if (!w) {
      reject(
        n.op === "MatMul"
          ? "both operands are activations (no constant weight), e.g. attention scores"
          : "its weight is not a constant initializer",
      );
      continue;
    }
    if (w.dtype !== "float32") {
      reject(`its weight is ${w.dtype}, not float32 (already quantized?)`);
      continue;
    }
    const bName = n.inputs[2] || undefined;
    const bias = bName && initializer(scopes, bName)?.dtype === "float32" ? bName : undefined;
    const shape = [...w.shape];
    const base = { node: n.name, op: n.op, input: n.inputs[0], weight: wName, shape, ...at };
    if (n.op === "Conv" || n.op === "ConvTranspose") {
      if (shape.length < 3) {
        reject(`its weight has rank ${shape.length}`);
        continue;
      }
      const groups = attrInt(n, "group", 1);
      const window = shape.slice(2).reduce((a, b) => a * b, 1);
      // Conv weights are [out, in/groups, ...window]; ConvTranspose's are [in, out/groups, ...window].
      const transposed = n.op === "ConvTranspose";
      layers.push({
        ...base,
        ...(bias ? { bias } : {}),
        outAxis: transposed ? 1 : 0,
        inAxis: transposed ? 0 : 1,
        window,
        groups,
        out: transposed ? shape[1] * groups : shape[0],
        in: transposed ? shape[0] / groups * window : shape[1] * window,
      });
    } else if (n.op === "Gemm") {
      if (shape.length !== 2) {
        reject(`its weight has rank ${shape.length}`);
        continue;
      }
      if (attrInt(n, "transA", 0) !== 0) {
        reject("transA=1 is not supported");
        continue;
      }
      const transB = attrInt(n, "transB", 0) === 1;
      layers.push({
        ...base,
        ...(bias ? { bias } : {}),
        outAxis: transB ? 0 : 1,
        inAxis: transB ? 1 : 0,
        window: 1,
        groups: 1,
        out: transB ? shape[0] : shape[1],
        in: transB ? shape[1] : shape[0],
      });
    } else {
      if (shape.length !== 2) {
        reject(`its constant operand has rank ${shape.length} (only 2-D weights are layers)`);
        continue;
      }
      if (initializer(scopes, n.inputs[0])) {
        reject("its first operand is the constant; only x·W is a layer");
        continue;
      }
      layers.push({
        ...base,
        outAxis: 1,
        inAxis: 0,
        window: 1,
        groups: 1,
        out: shape[1],
        in: shape[0],
      });
    }
  }
}

/** The two weights of an LSTM / GRU / RNN node, W [dirs, gates·hidden, in] and R [.., hidden]. */
function scanRecurrent(
  scopes: Scopes,
  n: Node,
  at: { scope?: string },
  layers: Layer[],
  reject: (reason: string) => void,
): void {
  const parts = [["input", n.inputs[1]], ["recurrence", n.inputs[2]]] as const;
  const found: Layer[] = [];
  for (const [part, name] of parts) {
    const w = initializer(scopes, name);
    if (!w) return reject(`its ${part} weight is not a constant initializer`);
    if (w.dtype !== "float32") {
      return reject(`its ${part} weight is ${w.dtype}, not float32 (already quantized?)`);
    }
    if (w.shape.length !== 3) return reject(`its ${part} weight has rank ${w.shape.length}`);
    const [dirs, rows, width] = w.shape;
    found.push({
      node: n.name,
      op: n.op,
      input: n.inputs[0],
      weight: name,
      shape: [...w.shape],
      outAxis: 1,
      inAxis: 2,
      window: 1,
      groups: 1,
      out: rows,
      in: dirs * width,
      part,
      ...at,
    });
  }
  layers.push(...found);
}

/**
 * A layer's weight in its [out, in] view (a copy).
 *
 * @param layer the layer
 * @param data the weight's values in the file's layout
 * @returns `out × in` values, row-major
 *
 * @example
 * ```ts
 * import { toOutIn } from "@lowbit/pipeline";
 * const layer = { node: "m", op: "MatMul", input: "x", weight: "W", shape: [2, 3], outAxis: 1,
 *   inAxis: 0, window: 1, groups: 1, out: 3, in: 2 };
 * const v = toOutIn(layer, new Float32Array([1, 2, 3, 4, 5, 6]));
 * if (v.join() !== "1,4,2,5,3,6") throw new Error(v.join());
 * ```
 */
export function toOutIn(layer: Layer, data: Float32Array): Float32Array {
  const at = outInIndex(layer);
  if (!at) return data.slice();
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[at[i]] = data[i];
  return out;
}

/**
 * Inverse of {@link toOutIn}: back to the file's layout.
 *
 * @param layer the layer
 * @param view `out × in` values
 * @returns the values in the file's layout
 *
 * @example
 * ```ts
 * import { fromOutIn, toOutIn } from "@lowbit/pipeline";
 * const layer = { node: "m", op: "MatMul", input: "x", weight: "W", shape: [2, 3], outAxis: 1,
 *   inAxis: 0, window: 1, groups: 1, out: 3, in: 2 };
 * const w = new Float32Array([1, 2, 3, 4, 5, 6]);
 * if (fromOutIn(layer, toOutIn(layer, w)).join() !== w.join()) throw new Error();
 * ```
 */
export function fromOutIn(layer: Layer, view: Float32Array): Float32Array {
  const at = outInIndex(layer);
  if (!at) return view.slice();
  const out = new Float32Array(view.length);
  for (let i = 0; i < view.length; i++) out[i] = view[at[i]];
  return out;
}

/**
 * Where each element of a weight in the file's layout sits in the `out × in` view (undefined
 * when the layouts are the same): the one permutation behind {@link toOutIn} and
 * {@link fromOutIn}.
 */
function outInIndex(layer: Layer): Int32Array | undefined {
  if (layer.outAxis === 0) return undefined;
  const n = layer.shape.reduce((a, b) => a * b, 1);
  const at = new Int32Array(n);
  if (layer.part) {
    // [dirs, rows, width] → [rows, dirs·width]
    const [dirs, rows, width] = layer.shape;
    for (let d = 0; d < dirs; d++) {
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < width; c++) {
          at[(d * rows + r) * width + c] = (r * dirs + d) * width + c;
        }
      }
    }
  } else if (layer.op === "ConvTranspose") {
    // [I, O/g, k] → [O, I/g·k]
    const [ci] = layer.shape;
    const og = layer.shape[1], k = layer.window, ig = ci / layer.groups;
    for (let i = 0; i < ci; i++) {
      const grp = Math.floor(i / ig);
      for (let o = 0; o < og; o++) {
        for (let t = 0; t < k; t++) {
          at[(i * og + o) * k + t] = (grp * og + o) * (ig * k) + (i % ig) * k + t;
        }
      }
    }
  } else {
    // [in, out] → [out, in]
    const [k, m] = layer.shape;
    for (let i = 0; i < k; i++) for (let j = 0; j < m; j++) at[i * m + j] = j * k + i;
  }
  return at;
}
