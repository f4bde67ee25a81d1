/**
 * Quantized execution: recognises QDQ patterns around MatMul / Gemm / Conv and
 * rewrites them into lowbit's fused integer ops (`ops/fused.ts` holds the
 * arithmetic and its tolerance against the float QDQ reference):
 *
 * ```
 * x ─ QuantizeLinear ─ DequantizeLinear ─┐
 * w_q ─ DequantizeLinear (per-tensor or ├─ Conv / MatMul / Gemm ─ y [─ QuantizeLinear ─ y_q]
 *        per-output-channel) ────────────┘
 * ```
 *
 * becomes `QConvFused` / `QGemmFused(x, x_scale, x_zp, w_q, w_scale, w_zp, bias[, y_scale, y_zp])`.
 * MatMul / Gemm with float8 (e4m3fn / e5m2) weights — DQ(w_fp8) with per-tensor or
 * per-output-channel scales — become `MinifloatGemmFused(x, w_codes, w_scale, bias)`, run on
 * the float kernels' minifloat GEMM (codes decoded in registers, scale in the epilogue).
 * A trailing QuantizeLinear that is the output's only consumer is absorbed, and
 * the op then requantizes integer-only. Anything else (blocked scales, float8
 * weights, per-tensor activation scales missing) stays as it is and runs in float;
 * a DequantizeLinear left with constant inputs only (weight-only, blocked or unfused
 * weights) is computed once here, with the op's own code (the same bits as every run
 * computing it), so those layers run on prepared float weights like the float model.
 *
 * @module
 */

import type { Graph, Node, TensorData } from "../ir.ts";
import { isBig, toF32 } from "./_tensor.ts";
import { qlinearOps } from "./ops/qlinear.ts";

const INT_CODES = new Set(["int8", "uint8", "int4", "uint4"]);

interface Ctx {
  nodes: (Node | undefined)[];
  consts: Map<string, TensorData>;
  producer: Map<string, number>;
  uses: Map<string, number>;
  outputs: Set<string>;
  fresh: number;
}

function attrInt(n: Node, name: string, def: number): number {
  const a = n.attrs[name];
  return a?.kind === "int" ? a.value : def;
}

function producerNode(c: Ctx, v: string, op: string): [number, Node] | undefined {
  const i = c.producer.get(v);
  const n = i === undefined ? undefined : c.nodes[i];
  return n && n.op === op && (n.domain === "" || n.domain === "ai.onnx") ? [i!, n] : undefined;
}

function singleUse(c: Ctx, v: string): boolean {
  return (c.uses.get(v) ?? 0) === 1 && !c.outputs.has(v);
}

function scalar(c: Ctx, v: string | undefined): boolean {
  if (!v) return true;
  const t = c.consts.get(v);
  return t !== undefined && t.data.length === 1;
}

/** The activation side: DQ(Q(x)) with per-tensor constant scale and zero point. */
function activation(c: Ctx, v: string) {
  const dq = producerNode(c, v, "DequantizeLinear");
  if (!dq) return undefined;
  const q = producerNode(c, dq[1].inputs[0], "QuantizeLinear");
  if (!q) return undefined;
  const [x, s, z] = q[1].inputs;
  const [, s2, z2] = dq[1].inputs;
  if (!c.consts.has(s) || !scalar(c, s) || !scalar(c, z)) return undefined;
  // The DQ must undo exactly this Q.
  if (s2 !== s || (z2 ?? "") !== (z ?? "")) {
    const a = c.consts.get(s), b = c.consts.get(s2);
    if (!a || !b || toF32(a)[0] !== toF32(b)[0]) return undefined;
  }
  const zt = z ? c.consts.get(z) : undefined;
  if (zt && !INT_CODES.has(zt.dtype)) return undefined;
  if (z === undefined || z === "") {
    const out = attrInt(q[1], "output_dtype", 2);
    if (out !== 2 && out !== 3) return undefined;
  }
  return { dq, q, x, s, z: z ?? "" };
}

/** The weight side: DQ of constant integer codes, per-tensor or per-axis `axis`. */
function weight(c: Ctx, v: string, axis: number) {
  const dq = producerNode(c, v, "DequantizeLinear");
  if (!dq) return undefined;
  const [w, s, z] = dq[1].inputs;
  const wt = c.consts.get(w), st = c.consts.get(s);
  if (!wt || !st || !INT_CODES.has(wt.dtype)) return undefined;
  if (attrInt(dq[1], "block_size", 0) !== 0) return undefined;
  if (st.data.length !== 1) {
    const a = attrInt(dq[1], "axis", 1);
    const r = wt.shape.length;
    if ((a < 0 ? a + r : a) !== axis || st.data.length !== wt.shape[axis]) return undefined;
  }
  if (z && !c.consts.has(z)) return undefined;
  return { dq, w: wt, s, z: z ?? "" };
}

function addConst(c: Ctx, base: string, t: TensorData): string {
  const name = `${base}.lowbit_q${c.fresh++}`;
  c.consts.set(name, t);
  return name;
}

/** Float bias: a float constant, or DQ(int32 constant). */
function bias(c: Ctx, v: string | undefined): string | undefined | null {
  if (!v) return undefined;
  const t = c.consts.get(v);
  if (t) return t.dtype === "float32" ? v : null;
  const dq = producerNode(c, v, "DequantizeLinear");
  if (!dq) return null;
  const [b, s, z] = dq[1].inputs;
  const bt = c.consts.get(b), st = c.consts.get(s);
  if (!bt || !st || isBig(bt.dtype) || (z && !c.consts.has(z))) return null;
  const bv = toF32(bt), sv = toF32(st), zv = z ? toF32(c.consts.get(z)!) : undefined;
  const out = new Float32Array(bv.length);
  for (let i = 0; i < bv.length; i++) {
    const k = sv.length === 1 ? 0 : i;
    out[i] = (bv[i] - (zv ? zv[zv.length === 1 ? 0 : i] : 0)) * sv[k];
  }
  return addConst(c, v, { dtype: "float32", shape: [out.length], data: out });
}

/** Transposes a K×N code matrix to N×K (same storage type). */
function transposeCodes(t: TensorData): TensorData {
  const [k, n] = t.shape;
  const src = t.data as Int8Array;
  const out = new (src.constructor as Int8ArrayConstructor)(src.length);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) out[j * k + i] = src[i * n + j];
  return { dtype: t.dtype, shape: [n, k], data: out };
}

const FP8: Record<string, "fp8_e4m3fn" | "fp8_e5m2"> = {
  float8e4m3fn: "fp8_e4m3fn",
  float8e5m2: "fp8_e5m2",
};

/**
 * MatMul / Gemm whose weight is DQ(float8 codes) with per-tensor or per-output-channel
 * scales (no zero point) → MinifloatGemmFused on the float kernels' minifloat GEMM.
 * The activation stays float (a DQ(Q(x)) in front of it is kept and runs as written).
 */
function rewriteMinifloat(c: Ctx, i: number, n: Node): boolean {
  const isGemm = n.op === "Gemm";
  if (!isGemm && n.op !== "MatMul") return false;
  if (isGemm) {
    if (attrInt(n, "transA", 0) !== 0) return false;
    const alpha = n.attrs.alpha, beta = n.attrs.beta;
    if ((alpha && alpha.value !== 1) || (beta && beta.value !== 1)) return false;
  }
  const transB = isGemm && attrInt(n, "transB", 0) === 1;
  const dq = producerNode(c, n.inputs[1], "DequantizeLinear");
  if (!dq) return false;
  const [w, s, z] = dq[1].inputs;
  const wt = c.consts.get(w), st = c.consts.get(s);
  if (!wt || !st || FP8[wt.dtype] === undefined || wt.shape.length !== 2) return false;
  if (attrInt(dq[1], "block_size", 0) !== 0) return false;
  if (z) {
    const zt = c.consts.get(z);
    if (!zt || toF32(zt).some((v) => v !== 0)) return false;
  }
  const nOut = transB ? wt.shape[0] : wt.shape[1];
  if (st.data.length !== 1) {
    const axis = attrInt(dq[1], "axis", 1);
    if ((axis < 0 ? axis + 2 : axis) !== (transB ? 0 : 1) || st.data.length !== nOut) return false;
  }
  const b = bias(c, n.inputs[2]);
  if (b === null) return false;
  c.nodes[i] = {
    name: n.name,
    op: "MinifloatGemmFused",
    domain: "lowbit",
    inputs: [n.inputs[0], w, s, b ?? ""],
    outputs: [n.outputs[0]],
    attrs: {
      format: { kind: "string", value: FP8[wt.dtype] },
      layout: { kind: "string", value: transB ? "nk" : "kn" },
    },
  };
  return true;
}

/**
 * The layer side of a fusable Conv / MatMul / Gemm (the op, its attributes, a weight that is
 * DQ(constant integer codes) on the output-channel axis), or undefined. Pure: `rewrite` fuses
 * what matches (when its activation and bias match too), and `feedsFusable` asks the same
 * question ahead of it.
 */
function fusableLayer(c: Ctx, n: Node) {
  if (n.domain !== "" && n.domain !== "ai.onnx") return undefined;
  const isConv = n.op === "Conv";
  const isGemm = n.op === "Gemm";
  if (!isConv && !isGemm && n.op !== "MatMul") return undefined;
  if (isGemm) {
    if (attrInt(n, "transA", 0) !== 0) return undefined;
    const alpha = n.attrs.alpha, beta = n.attrs.beta;
    if ((alpha && alpha.value !== 1) || (beta && beta.value !== 1)) return undefined;
  }
  const transB = isGemm && attrInt(n, "transB", 0) === 1;
  const w = weight(c, n.inputs[1], isConv || transB ? 0 : 1);
  if (!w || (!isConv && w.w.shape.length !== 2)) return undefined;
  return { isConv, transB, w };
}

/**
 * Whether the codes `v` (a QuantizeLinear's output) reach, through a DequantizeLinear, the data
 * input of a layer `rewrite` will fuse (its activation pattern is DQ(Q(x)), which absorbing the
 * Q would break).
 */
function feedsFusable(c: Ctx, v: string): boolean {
  return c.nodes.some((dq) =>
    dq !== undefined && dq.op === "DequantizeLinear" && dq.inputs[0] === v &&
    c.nodes.some((m) => m !== undefined && m.inputs[0] === dq.outputs[0] && !!fusableLayer(c, m))
  );
}

function rewrite(c: Ctx, i: number, n: Node): boolean {
  const layer = fusableLayer(c, n);
  if (!layer) return false;
  const { isConv, transB, w } = layer;
  const act = activation(c, n.inputs[0]);
  if (!act) return false;
  const b = bias(c, n.inputs[2]);
  if (b === null) return false;
  // Weights as the fused op wants them: Conv layout, or N×K rows for the GEMM.
  let wName = w.dq[1].inputs[0];
  if (!isConv && !transB) wName = addConst(c, wName, transposeCodes(w.w));
  const inputs = [act.x, act.s, act.z, wName, w.s, w.z, b ?? ""];
  let out = n.outputs[0];
  // Absorb a trailing QuantizeLinear (integer-only requantization), unless a DQ of its codes
  // feeds another Conv / MatMul / Gemm that fuses: that consumer's pattern needs the Q, and
  // the executor then passes the codes between the two in the producer's epilogue instead.
  const consumers = c.nodes.flatMap((m, j) => (m && m.inputs.includes(out) ? [j] : []));
  if (singleUse(c, out) && consumers.length === 1) {
    const qn = c.nodes[consumers[0]]!;
    if (
      qn.op === "QuantizeLinear" && qn.inputs[0] === out && !feedsFusable(c, qn.outputs[0]) &&
      scalar(c, qn.inputs[1]) &&
      c.consts.has(qn.inputs[1]) && scalar(c, qn.inputs[2]) &&
      ["int8", "uint8"].includes(qn.inputs[2] ? c.consts.get(qn.inputs[2])!.dtype : "uint8")
    ) {
      inputs.push(qn.inputs[1], qn.inputs[2] ?? "");
      out = qn.outputs[0];
      c.nodes[consumers[0]] = undefined;
    }
  }
  const attrs = isConv ? { ...n.attrs } : {};
  c.nodes[i] = {
    name: n.name,
    op: isConv ? "QConvFused" : "QGemmFused",
    domain: "lowbit",
    inputs: [...inputs],
    outputs: [out],
    attrs,
  };
  return true;
}

/** Computes every DequantizeLinear whose inputs are all constants into a constant. */
function foldConstantDq(c: Ctx): boolean {
  let changed = false;
  c.nodes.forEach((n, i) => {
    if (!n || n.op !== "DequantizeLinear" || (n.domain !== "" && n.domain !== "ai.onnx")) return;
    if (n.outputs.length !== 1 || c.outputs.has(n.outputs[0])) return;
    const ins = n.inputs.map((v) => (v ? c.consts.get(v) : undefined));
    if (ins.some((t, k) => t === undefined && n.inputs[k])) return;
    const r = qlinearOps.DequantizeLinear(ins, n, { opset: 21 });
    if (!Array.isArray(r)) return;
    c.consts.set(n.outputs[0], r[0]);
    c.nodes[i] = undefined;
    changed = true;
  });
  return changed;
}

/**
 * Rewrites QDQ patterns around MatMul / Gemm / Conv into `QGemmFused` /
 * `QConvFused` nodes (domain "lowbit"); Q / DQ nodes left without consumers are
 * dropped. Returns a new graph; nodes that do not match are kept as they are.
 *
 * @param g the graph
 * @returns the rewritten graph
 *
 * @example
 * ```ts
 * import { fuseQdq } from "./quantized.ts";
 * import type { TensorData } from "../ir.ts";
 * const f = (v: number): TensorData => ({ dtype: "float32", shape: [], data: new Float32Array([v]) });
 * const g = {
 *   name: "g",
 *   nodes: [
 *     { name: "q", op: "QuantizeLinear", domain: "", inputs: ["x", "s", "z"], outputs: ["xq"], attrs: {} },
 *     { name: "dq", op: "DequantizeLinear", domain: "", inputs: ["xq", "s", "z"], outputs: ["xd"], attrs: {} },
 *     { name: "dqw", op: "DequantizeLinear", domain: "", inputs: ["wq", "sw"], outputs: ["wd"], attrs: {} },
 *     { name: "mm", op: "MatMul", domain: "", inputs: ["xd", "wd"], outputs: ["y"], attrs: {} },
 *   ],
 *   inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 2] }],
 *   outputs: [{ name: "y", dtype: "float32" as const, shape: [1, 1] }],
 *   initializers: new Map<string, TensorData>([
 *     ["s", f(0.1)],
 *     ["sw", f(0.5)],
 *     ["z", { dtype: "int8" as const, shape: [], data: new Int8Array([0]) }],
 *     ["wq", { dtype: "int8" as const, shape: [2, 1], data: new Int8Array([3, 4]) }],
 *   ]),
 *   valueInfo: new Map(),
 * };
 * const fused = fuseQdq(g);
 * if (fused.nodes.map((n) => n.op).join() !== "QGemmFused") throw new Error();
 * ```
 */
export function fuseQdq(g: Graph): Graph {
  const consts = new Map(g.initializers);
  const nodes: (Node | undefined)[] = g.nodes.map((n) => {
    const v = n.op === "Constant" && n.domain === "" ? n.attrs.value : undefined;
    if (v?.kind === "tensor" && n.outputs.length === 1) {
      consts.set(n.outputs[0], v.value);
      return undefined;
    }
    return n;
  });
  const c: Ctx = {
    nodes,
    consts,
    producer: new Map(),
    uses: new Map(),
    outputs: new Set(g.outputs.map((o) => o.name)),
    fresh: 0,
  };
  const index = (): void => {
    c.producer.clear();
    c.uses.clear();
    c.nodes.forEach((n, i) => {
      if (!n) return;
      for (const o of n.outputs) c.producer.set(o, i);
      for (const v of n.inputs) if (v) c.uses.set(v, (c.uses.get(v) ?? 0) + 1);
    });
  };
  index();
  let changed = false;
  c.nodes.forEach((n, i) => {
    if (
      n && (n.domain === "" || n.domain === "ai.onnx") &&
      (rewrite(c, i, n) || rewriteMinifloat(c, i, n))
    ) {
      changed = true;
      index();
    }
  });
  // Drop Q / DQ nodes nothing reads any more (repeat: a DQ's Q frees up after it).
  for (let again = true; again;) {
    again = false;
    index();
    c.nodes.forEach((n, i) => {
      if (!n || (n.op !== "QuantizeLinear" && n.op !== "DequantizeLinear")) return;
      if (n.outputs.every((o) => !c.uses.has(o) && !c.outputs.has(o))) {
        c.nodes[i] = undefined;
        again = true;
      }
    });
  }
  if (foldConstantDq(c)) changed = true;
  if (!changed) return { ...g, nodes: [...g.nodes] };
  const kept = c.nodes.filter((n): n is Node => n !== undefined);
  const used = new Set<string>(g.outputs.map((o) => o.name));
  for (const n of kept) for (const v of n.inputs) used.add(v);
  const inits = new Map<string, TensorData>();
  for (const [k, v] of c.consts) if (used.has(k)) inits.set(k, v);
  return { ...g, nodes: kept, initializers: inits };
}
