/**
 * Control flow: `If`, `Loop` and `Scan` (opset 9+) run their subgraphs through the executor
 * (`OpContext.runSubgraph`), with the outer-scope values the executor appended to the node's
 * inputs (see `../_subgraph.ts`). Sequence-typed values are not supported. Also `Size`, which
 * exported control flow uses to test for empty tensors.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Graph, Node, TensorData, TensorStorage } from "../../ir.ts";
import { alloc, attrInt, attrInts, int64, normAxis, size } from "../_tensor.ts";
import { splitOuter } from "../_subgraph.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

function graphAttr(node: Node, name: string): Graph {
  const a = node.attrs[name];
  if (a?.kind !== "graph") {
    throw new LowbitError("INVALID_ARGUMENT", `${node.op} needs graph attribute '${name}'`, {
      node: node.name,
    });
  }
  return a.value;
}

async function run(
  ctx: OpContext,
  node: Node,
  g: Graph,
  formal: readonly TensorData[],
  outer: Record<string, TensorData>,
): Promise<TensorData[]> {
  if (ctx.runSubgraph === undefined) {
    throw new LowbitError("UNSUPPORTED", `${node.op} runs only inside the executor`, {
      node: node.name,
    });
  }
  if (formal.length !== g.inputs.length) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `${node.op}: subgraph '${g.name}' declares ${g.inputs.length} inputs, the op passes ${formal.length}`,
      { node: node.name },
    );
  }
  const inputs: Record<string, TensorData> = { ...outer };
  g.inputs.forEach((v, i) => inputs[v.name] = formal[i]);
  return await ctx.runSubgraph(g, inputs);
}

/** The single element of a condition tensor, as a boolean. */
function truth(t: TensorData, node: Node, what: string): boolean {
  if (size(t.shape) !== 1 || Array.isArray(t.data)) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: ${what} must hold one element, got shape [${t.shape}]`,
      { node: node.name },
    );
  }
  return Number(t.data[0]) !== 0;
}

function boolScalar(v: boolean): TensorData {
  return { dtype: "bool", shape: [], data: new Uint8Array([v ? 1 : 0]) };
}

/** Slice `index` of `t` along `axis`, the axis removed. */
function sliceAxis(t: TensorData, axis: number, index: number): TensorData {
  const outer = size(t.shape.slice(0, axis));
  const inner = size(t.shape.slice(axis + 1));
  const len = t.shape[axis];
  const out = alloc(t.dtype, outer * inner);
  for (let o = 0; o < outer; o++) {
    const from = (o * len + index) * inner;
    copyInto(out, o * inner, t.data, from, inner);
  }
  return {
    dtype: t.dtype,
    shape: [...t.shape.slice(0, axis), ...t.shape.slice(axis + 1)],
    data: out,
  };
}

function copyInto(dst: TensorStorage, at: number, src: TensorStorage, from: number, n: number) {
  if (Array.isArray(dst)) {
    for (let i = 0; i < n; i++) dst[at + i] = (src as string[])[from + i];
  } else {
    (dst as Float32Array).set((src as Float32Array).subarray(from, from + n), at);
  }
}

/** Stacks equally shaped tensors along a new axis `axis`. */
function stackAxis(parts: readonly TensorData[], axis: number, node: Node): TensorData {
  const first = parts[0];
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.shape.join() !== first.shape.join()) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `${node.op}: scan outputs change from ${first.dtype}[${first.shape}] to ${p.dtype}[${p.shape}] between iterations`,
        { node: node.name },
      );
    }
  }
  const outer = size(first.shape.slice(0, axis));
  const inner = size(first.shape.slice(axis));
  const T = parts.length;
  const out = alloc(first.dtype, outer * T * inner);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outer; o++) {
      copyInto(out, (o * T + t) * inner, parts[t].data, o * inner, inner);
    }
  }
  const shape = [...first.shape.slice(0, axis), T, ...first.shape.slice(axis)];
  return { dtype: first.dtype, shape, data: out };
}

/** An empty scan output (zero iterations), shaped as the body declares when it can be. */
function emptyScan(g: Graph, k: number): TensorData {
  const v = g.outputs[k];
  const dims = (v.shape ?? []).map((d) => typeof d === "number" ? d : 0);
  return { dtype: v.dtype, shape: [0, ...dims], data: alloc(v.dtype, 0) };
}

const If: OpImpl = async (args, node, ctx) => {
  const { own, outer } = splitOuter(args, node);
  if (own[0] === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "If needs its condition input", { node: node.name });
  }
  const g = graphAttr(node, truth(own[0], node, "the condition") ? "then_branch" : "else_branch");
  return await run(ctx, node, g, [], outer);
};

const Loop: OpImpl = async (args, node, ctx) => {
  const { own, outer } = splitOuter(args, node);
  const body = graphAttr(node, "body");
  const [maxTrip, condIn, ...init] = own;
  const n = init.length;
  if (init.some((t) => t === undefined)) {
    throw new LowbitError("INVALID_ARGUMENT", "Loop: a loop-carried initial value is omitted", {
      node: node.name,
    });
  }
  if (body.outputs.length < 1 + n) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `Loop: body has ${body.outputs.length} outputs, needs the condition and ${n} carried values`,
      { node: node.name },
    );
  }
  const M = maxTrip === undefined ? Infinity : Number(maxTrip.data[0]);
  let cond = condIn === undefined ? true : truth(condIn, node, "the initial condition");
  let carried = init as TensorData[];
  const scans: TensorData[][] = [];
  let i = 0;
  while (i < M && cond) {
    const out = await run(ctx, node, body, [int64([i], []), boolScalar(cond), ...carried], outer);
    // NOTE: the spec's pseudo-code ignores the body's condition when the node has no condition
    // input; onnxruntime 1.30 stops on it anyway (checked in controlflow_test.ts), and so do we.
    cond = truth(out[0], node, "the body's condition output");
    carried = out.slice(1, 1 + n);
    out.slice(1 + n).forEach((t, k) => (scans[k] ??= []).push(t));
    i++;
  }
  const nScan = body.outputs.length - 1 - n;
  const stacked: TensorData[] = [];
  for (let k = 0; k < nScan; k++) {
    stacked.push(i === 0 ? emptyScan(body, 1 + n + k) : stackAxis(scans[k], 0, node));
  }
  return [...carried, ...stacked];
};

const Scan: OpImpl = async (args, node, ctx) => {
  const { own, outer } = splitOuter(args, node);
  if (ctx.opset < 9) return await scan8(ctx, node, own, outer);
  const body = graphAttr(node, "body");
  const m = attrInt(node, "num_scan_inputs", -1);
  if (m < 1 || m > own.length || own.some((t) => t === undefined)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `Scan: num_scan_inputs ${m} does not fit ${own.length} inputs (none may be omitted)`,
      { node: node.name },
    );
  }
  const all = own as TensorData[];
  const n = all.length - m;
  const scanIn = all.slice(n);
  const inAxes = attrInts(node, "scan_input_axes") ?? scanIn.map(() => 0);
  const inDirs = attrInts(node, "scan_input_directions") ?? scanIn.map(() => 0);
  const axes = scanIn.map((t, k) => normAxis(inAxes[k] ?? 0, t.shape.length, node));
  const T = scanIn[0].shape[axes[0]];
  scanIn.forEach((t, k) => {
    if (t.shape[axes[k]] !== T) {
      throw new LowbitError(
        "SHAPE_MISMATCH",
        `Scan: scan input ${k} has ${t.shape[axes[k]]} steps along axis ${
          axes[k]
        }, input 0 has ${T}`,
        { node: node.name },
      );
    }
  });
  const nOut = body.outputs.length - n;
  const outAxesAttr = attrInts(node, "scan_output_axes");
  const outDirs = attrInts(node, "scan_output_directions") ?? [];
  let states = all.slice(0, n);
  const parts: TensorData[][] = Array.from({ length: nOut }, () => []);
  for (let t = 0; t < T; t++) {
    const slices = scanIn.map((x, k) => sliceAxis(x, axes[k], inDirs[k] ? T - 1 - t : t));
    const out = await run(ctx, node, body, [...states, ...slices], outer);
    states = out.slice(0, n);
    out.slice(n).forEach((y, k) => parts[k].push(y));
  }
  const outs: TensorData[] = [];
  for (let k = 0; k < nOut; k++) {
    if (T === 0) {
      outs.push(emptyScan(body, n + k));
      continue;
    }
    const seq = outDirs[k] ? [...parts[k]].reverse() : parts[k];
    const axis = normAxis(outAxesAttr?.[k] ?? 0, seq[0].shape.length + 1, node);
    outs.push(stackAxis(seq, axis, node));
  }
  return [...states, ...outs];
};

/**
 * Scan of opset 8: inputs are [sequence_lens], states [batch, ...], scan inputs
 * [batch, time, ...]; every batch entry is scanned on its own (over its sequence length,
 * forward or reverse per `directions`), scan outputs are [batch, time, ...] with zeros past a
 * shorter sequence.
 */
async function scan8(
  ctx: OpContext,
  node: Node,
  own: (TensorData | undefined)[],
  outer: Record<string, TensorData>,
): Promise<TensorData[]> {
  const body = graphAttr(node, "body");
  const [lensT, ...rest] = own;
  const m = attrInt(node, "num_scan_inputs", -1);
  if (m < 1 || m > rest.length || rest.some((t) => t === undefined)) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `Scan: num_scan_inputs ${m} does not fit ${rest.length} inputs after sequence_lens`,
      { node: node.name },
    );
  }
  const all = rest as TensorData[];
  const n = all.length - m;
  const scanIn = all.slice(n);
  const dirs = attrInts(node, "directions") ?? scanIn.map(() => 0);
  const B = scanIn[0].shape[0], T = scanIn[0].shape[1];
  const lens = lensT === undefined ? new Array<number>(B).fill(T) : Array.from(lensT.data, Number);
  const finals: TensorData[][] = Array.from({ length: n }, () => []);
  const outs: TensorData[][] = [];
  for (let b = 0; b < B; b++) {
    let states = all.slice(0, n).map((t) => sliceAxis(t, 0, b));
    const rows = scanIn.map((t) => sliceAxis(t, 0, b));
    const steps: TensorData[][] = [];
    for (let t = 0; t < lens[b]; t++) {
      const slices = rows.map((x, k) => sliceAxis(x, 0, dirs[k] ? lens[b] - 1 - t : t));
      const out = await run(ctx, node, body, [...states, ...slices], outer);
      states = out.slice(0, n);
      out.slice(n).forEach((y, k) => (steps[k] ??= []).push(y));
    }
    states.forEach((s, k) => finals[k].push(s));
    const nOut = body.outputs.length - n;
    outs.push(Array.from({ length: nOut }, (_, k) => {
      const seq = steps[k] ?? [];
      const like = seq[0] ?? emptyScan(body, n + k);
      const shape = seq.length ? like.shape : like.shape.slice(1);
      const zero = { dtype: like.dtype, shape, data: alloc(like.dtype, size(shape)) };
      while (seq.length < T) seq.push(zero);
      return stackAxis(seq, 0, node);
    }));
  }
  return [
    ...finals.map((f) => stackAxis(f, 0, node)),
    ...(outs[0] ?? []).map((_, k) => stackAxis(outs.map((o) => o[k]), 0, node)),
  ];
}

/** Size: the element count as an int64 scalar. */
const Size: OpImpl = (args, node) => {
  const t = args[0];
  if (t === undefined) {
    throw new LowbitError("INVALID_ARGUMENT", "Size needs an input", { node: node.name });
  }
  return [int64([size(t.shape)], [])];
};

/**
 * Control-flow ops (If / Loop / Scan run their subgraphs through `ctx.runSubgraph`, which the
 * executor provides), and Size.
 *
 * @example
 * ```ts
 * import { controlFlowOps } from "./controlflow.ts";
 * const node = { name: "s", op: "Size", domain: "", inputs: ["x"], outputs: ["n"], attrs: {} };
 * const x = { dtype: "float32" as const, shape: [2, 3], data: new Float32Array(6) };
 * const [n] = await controlFlowOps.Size([x], node, { opset: 17 });
 * if (n.data[0] !== 6n) throw new Error();
 * ```
 */
export const controlFlowOps: OpTable<"If" | "Loop" | "Scan" | "Size"> = { If, Loop, Scan, Size };
