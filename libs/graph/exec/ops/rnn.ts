/**
 * Recurrent ops as ONNX defines them: `LSTM` (gates i, o, f, c; peepholes; input_forget),
 * `GRU` (gates z, r, h; linear_before_reset) and `RNN`, each forward, reverse or
 * bidirectional, with configurable activations (and their alpha / beta), clip,
 * sequence_lens, initial states, layout 0 / 1 and every output (Y, Y_h, Y_c). Computed in
 * float32 in plain loops (one dot product per gate element and step); outputs past a
 * batch entry's sequence length are zero, its final state is the one at its last step.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import { attrFloat, attrFloats, attrInt, attrString, toF32, toNumbers } from "../_tensor.ts";
import { type FloatCallOptions, matmulF32 } from "./_float_backend.ts";
import type { OpContext, OpImpl, OpTable } from "./types.ts";

type Act = (x: number) => number;

/** Activation functions an RNN op may name: [uses alpha, uses beta, default alpha, beta, make]. */
const ACTS: Record<string, [boolean, boolean, number, number, (a: number, b: number) => Act]> = {
  sigmoid: [false, false, 0, 0, () => (x) => 1 / (1 + Math.exp(-x))],
  tanh: [false, false, 0, 0, () => Math.tanh],
  relu: [false, false, 0, 0, () => (x) => x > 0 ? x : 0],
  affine: [true, true, 1, 0, (a, b) => (x) => a * x + b],
  leakyrelu: [true, false, 0.01, 0, (a) => (x) => x >= 0 ? x : a * x],
  thresholdedrelu: [true, false, 1, 0, (a) => (x) => x > a ? x : 0],
  scaledtanh: [true, true, 1, 1, (a, b) => (x) => a * Math.tanh(b * x)],
  hardsigmoid: [true, true, 0.2, 0.5, (a, b) => (x) => Math.max(0, Math.min(1, a * x + b))],
  elu: [true, false, 1, 0, (a) => (x) => x >= 0 ? x : a * (Math.exp(x) - 1)],
  softsign: [false, false, 0, 0, () => (x) => x / (1 + Math.abs(x))],
  softplus: [false, false, 0, 0, () => (x) => Math.log1p(Math.exp(x))],
};

interface Common {
  T: number;
  B: number;
  I: number;
  H: number;
  D: number;
  /** X as [T, B, I]. */
  x: Float32Array;
  w: Float32Array;
  r: Float32Array;
  /** Bias [D, 2·G·H] or undefined. */
  b?: Float32Array;
  lens: number[];
  /** Initial states as [D, B, H] (zeros when omitted). */
  h0: Float32Array;
  /** Activations per direction. */
  acts: Act[][];
  clip: number;
  layout: number;
  reverse: boolean[];
  /** W and R split per direction (stable objects, so the kernels' packed forms are cached). */
  wDir: Float32Array[];
  rDir: Float32Array[];
  /** Kernel options for X·Wᵀ and h·Rᵀ. */
  wOpts: FloatCallOptions;
  rOpts: FloatCallOptions;
}

const dirCache = new WeakMap<Float32Array, Float32Array[]>();

/** `a` as D equal consecutive parts, the same subarray objects on every call. */
function perDirection(a: Float32Array, D: number): Float32Array[] {
  let v = dirCache.get(a);
  if (v === undefined || v.length !== D) {
    const n = a.length / D;
    v = Array.from({ length: D }, (_, d) => a.subarray(d * n, (d + 1) * n));
    dirCache.set(a, v);
  }
  return v;
}

function bad(node: Node, detail: string): LowbitError {
  return new LowbitError("INVALID_ARGUMENT", `${node.op}: ${detail}`, { node: node.name });
}

function shapeIs(node: Node, t: TensorData, want: number[], what: string): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${node.op}: ${what} has shape [${t.shape}], expected [${want}]`,
      { node: node.name },
    );
  }
}

/** [B, D, H] (layout 1) → [D, B, H] and back is the same swap of the first two axes. */
function swap01(a: Float32Array, n0: number, n1: number, inner: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      out.set(a.subarray((i * n1 + j) * inner, (i * n1 + j + 1) * inner), (j * n0 + i) * inner);
    }
  }
  return out;
}

function parseActs(node: Node, defaults: string[], D: number): Act[][] {
  const names = node.attrs.activations?.kind === "strings"
    ? node.attrs.activations.value
    : Array.from({ length: D }, () => defaults).flat();
  const per = defaults.length;
  if (names.length !== per * D) {
    throw bad(node, `needs ${per * D} activations (${per} per direction), got ${names.length}`);
  }
  const alphas = attrFloats(node, "activation_alpha") ?? [];
  const betas = attrFloats(node, "activation_beta") ?? [];
  let ai = 0, bi = 0;
  const fns = names.map((name) => {
    const spec = ACTS[name.toLowerCase()];
    if (spec === undefined) throw bad(node, `unknown activation '${name}'`);
    const [ua, ub, da, db, make] = spec;
    const a = ua ? (ai < alphas.length ? alphas[ai++] : da) : 0;
    const b = ub ? (bi < betas.length ? betas[bi++] : db) : 0;
    return make(a, b);
  });
  return Array.from({ length: D }, (_, d) => fns.slice(d * per, (d + 1) * per));
}

function common(
  args: readonly (TensorData | undefined)[],
  node: Node,
  ctx: OpContext,
  gates: number,
  defaults: string[],
): Common {
  const [X, W, R, Bias, seqLens, initH] = args;
  if (X === undefined || W === undefined || R === undefined) throw bad(node, "needs X, W and R");
  const dir = attrString(node, "direction", "forward");
  if (dir !== "forward" && dir !== "reverse" && dir !== "bidirectional") {
    throw bad(node, `unknown direction '${dir}'`);
  }
  const D = dir === "bidirectional" ? 2 : 1;
  const layout = attrInt(node, "layout", 0);
  if (layout !== 0 && layout !== 1) throw bad(node, `layout must be 0 or 1, got ${layout}`);
  if (X.shape.length !== 3) {
    throw new LowbitError("SHAPE_MISMATCH", `${node.op}: X must have rank 3, got [${X.shape}]`, {
      node: node.name,
    });
  }
  const [T, B, I] = layout === 0 ? X.shape : [X.shape[1], X.shape[0], X.shape[2]];
  const H = attrInt(node, "hidden_size", R.shape[2] ?? 0);
  shapeIs(node, W, [D, gates * H, I], "W");
  shapeIs(node, R, [D, gates * H, H], "R");
  let x = toF32(X);
  if (layout === 1) x = swap01(x, B, T, I);
  const b = Bias === undefined ? undefined : toF32(Bias);
  if (Bias !== undefined) shapeIs(node, Bias, [D, 2 * gates * H], "B");
  let lens = Array.from({ length: B }, () => T);
  if (seqLens !== undefined) {
    shapeIs(node, seqLens, [B], "sequence_lens");
    lens = toNumbers(seqLens);
    if (lens.some((l) => !Number.isInteger(l) || l < 0 || l > T)) {
      throw bad(node, `sequence_lens [${lens}] must lie in [0, ${T}]`);
    }
  }
  const h0 = initState(node, initH, D, B, H, layout, "initial_h");
  const clipA = node.attrs.clip;
  const clip = clipA === undefined ? Infinity : attrFloat(node, "clip", Infinity);
  if (!(clip > 0)) throw bad(node, `clip must be positive, got ${clip}`);
  const reverse = D === 2 ? [false, true] : [dir === "reverse"];
  const w = toF32(W), r = toF32(R);
  const base = { reference: ctx.reference ?? false, kernels: ctx.floatKernels };
  return {
    T,
    B,
    I,
    H,
    D,
    x,
    w,
    r,
    b,
    lens,
    h0,
    acts: parseActs(node, defaults, D),
    clip,
    layout,
    reverse,
    wDir: perDirection(w, D),
    rDir: perDirection(r, D),
    wOpts: { ...base, constant: ctx.isConstant?.(W) ?? false },
    rOpts: { ...base, constant: ctx.isConstant?.(R) ?? false },
  };
}

function initState(
  node: Node,
  t: TensorData | undefined,
  D: number,
  B: number,
  H: number,
  layout: number,
  what: string,
): Float32Array {
  if (t === undefined) return new Float32Array(D * B * H);
  shapeIs(node, t, layout === 0 ? [D, B, H] : [B, D, H], what);
  const a = toF32(t);
  return layout === 0 ? a.slice() : swap01(a, B, D, H);
}

/** X·Wᵀ (+ the given bias sums) for one direction: [T·B, G·H]. */
function inputProjection(c: Common, d: number, G: number, bias: Float32Array): Float32Array {
  return matmulF32(c.x, c.T * c.B, c.wDir[d], 0, c.I, G * c.H, "nk", bias, c.wOpts);
}

/** h·Rᵀ of direction d for every batch row: [B, G·H]. */
function recurrent(c: Common, d: number, G: number, h: Float32Array): Float32Array {
  const { B, H } = c;
  return matmulF32(
    h.subarray(d * B * H, (d + 1) * B * H),
    B,
    c.rDir[d],
    0,
    H,
    G * H,
    "nk",
    undefined,
    c.rOpts,
  );
}

/** out[g] = base[bo + g] + Σ_k h[ho + k]·r[ro + g·H + k] for the gate rows g < rows. */
function matvec(
  out: Float32Array,
  base: Float32Array | undefined,
  bo: number,
  r: Float32Array,
  ro: number,
  h: Float32Array,
  ho: number,
  rows: number,
  H: number,
): void {
  for (let g = 0; g < rows; g++) {
    let s = base === undefined ? 0 : base[bo + g];
    const o = ro + g * H;
    for (let k = 0; k < H; k++) s += h[ho + k] * r[o + k];
    out[g] = s;
  }
}

/** Output layout: Y [T, D, B, H] → layout 1 [B, T, D, H]; states [D, B, H] → [B, D, H]. */
function outputs(c: Common, y: Float32Array, states: Float32Array[]): TensorData[] {
  const { T, D, B, H, layout } = c;
  if (layout === 0) {
    return [
      { dtype: "float32", shape: [T, D, B, H], data: y },
      ...states.map((s): TensorData => ({ dtype: "float32", shape: [D, B, H], data: s })),
    ];
  }
  // [T, D, B, H] → [B, T, D, H]
  const yl = new Float32Array(y.length);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      for (let b = 0; b < B; b++) {
        const from = ((t * D + d) * B + b) * H;
        yl.set(y.subarray(from, from + H), ((b * T + t) * D + d) * H);
      }
    }
  }
  return [
    { dtype: "float32", shape: [B, T, D, H], data: yl },
    ...states.map((s): TensorData => ({
      dtype: "float32",
      shape: [B, D, H],
      data: swap01(s, D, B, H),
    })),
  ];
}

/** Time index of step s of batch entry b, or -1 when b's sequence is over. */
function timeOf(c: Common, d: number, b: number, s: number): number {
  const L = c.lens[b];
  if (s >= L) return -1;
  return c.reverse[d] ? L - 1 - s : s;
}

function biasSum(c: Common, d: number, G: number, skipR: (g: number) => boolean): Float32Array {
  const GH = G * c.H;
  const out = new Float32Array(GH);
  if (c.b === undefined) return out;
  const o = d * 2 * GH;
  for (let g = 0; g < GH; g++) out[g] = c.b[o + g] + (skipR(g) ? 0 : c.b[o + GH + g]);
  return out;
}

const LSTM: OpImpl = (args, node, ctx) => {
  const c = common(args, node, ctx, 4, ["Sigmoid", "Tanh", "Tanh"]);
  const { T, B, H, D, clip } = c;
  const c0 = initState(node, args[6], D, B, H, c.layout, "initial_c");
  const P = args[7] === undefined ? undefined : toF32(args[7]);
  if (args[7] !== undefined) shapeIs(node, args[7], [D, 3 * H], "P");
  const inputForget = attrInt(node, "input_forget", 0) !== 0;
  const y = new Float32Array(T * D * B * H);
  const hs = c.h0, cs = c0;
  const cl = (v: number): number => v < -clip ? -clip : v > clip ? clip : v;
  const gates = new Float32Array(4 * H);
  for (let d = 0; d < D; d++) {
    const [f, g, h] = c.acts[d];
    const xw = inputProjection(c, d, 4, biasSum(c, d, 4, () => false));
    const po = d * 3 * H;
    for (let s = 0; s < T; s++) {
      const hr = recurrent(c, d, 4, hs);
      for (let b = 0; b < B; b++) {
        const t = timeOf(c, d, b, s);
        if (t < 0) continue;
        const so = (d * B + b) * H;
        const xo = (t * B + b) * 4 * H;
        for (let q = 0; q < 4 * H; q++) gates[q] = xw[xo + q] + hr[b * 4 * H + q];
        for (let j = 0; j < H; j++) {
          const cp = cs[so + j];
          const i = f(cl(gates[j] + (P ? P[po + j] * cp : 0)));
          const fg = inputForget
            ? 1 - i
            : f(cl(gates[2 * H + j] + (P ? P[po + 2 * H + j] * cp : 0)));
          const cn = fg * cp + i * g(cl(gates[3 * H + j]));
          const o = f(cl(gates[H + j] + (P ? P[po + H + j] * cn : 0)));
          cs[so + j] = cn;
          gates[j] = o * h(cn); // h of this step, kept until every element is computed
        }
        for (let j = 0; j < H; j++) {
          hs[so + j] = gates[j];
          y[((t * D + d) * B + b) * H + j] = gates[j];
        }
      }
    }
  }
  return outputs(c, y, [hs, cs]);
};

const GRU: OpImpl = (args, node, ctx) => {
  const c = common(args, node, ctx, 3, ["Sigmoid", "Tanh"]);
  const { T, B, H, D, clip } = c;
  const lbr = attrInt(node, "linear_before_reset", 0) !== 0;
  const y = new Float32Array(T * D * B * H);
  const hs = c.h0;
  const cl = (v: number): number => v < -clip ? -clip : v > clip ? clip : v;
  const zr = new Float32Array(2 * H), hn = new Float32Array(H);
  const rh = new Float32Array(H), rhR = new Float32Array(H);
  for (let d = 0; d < D; d++) {
    const [f, g] = c.acts[d];
    // Rb of z and r join the input projection; Rb of h stays apart (it is inside the reset).
    const xw = inputProjection(c, d, 3, biasSum(c, d, 3, (k) => k >= 2 * H));
    const ro = d * 3 * H * H;
    const rbh = c.b === undefined
      ? new Float32Array(H)
      : c.b.subarray(d * 6 * H + 5 * H, (d * 6 + 6) * H);
    for (let s = 0; s < T; s++) {
      const hr = recurrent(c, d, 3, hs);
      for (let b = 0; b < B; b++) {
        const t = timeOf(c, d, b, s);
        if (t < 0) continue;
        const so = (d * B + b) * H;
        const xo = (t * B + b) * 3 * H, ho = b * 3 * H;
        for (let j = 0; j < 2 * H; j++) zr[j] = f(cl(xw[xo + j] + hr[ho + j]));
        if (lbr) {
          for (let j = 0; j < H; j++) {
            const lin = hr[ho + 2 * H + j] + rbh[j];
            hn[j] = g(cl(xw[xo + 2 * H + j] + zr[H + j] * lin));
          }
        } else {
          for (let j = 0; j < H; j++) rh[j] = zr[H + j] * hs[so + j];
          matvec(rhR, rbh, 0, c.r, ro + 2 * H * H, rh, 0, H, H);
          for (let j = 0; j < H; j++) hn[j] = g(cl(xw[xo + 2 * H + j] + rhR[j]));
        }
        for (let j = 0; j < H; j++) {
          const v = (1 - zr[j]) * hn[j] + zr[j] * hs[so + j];
          hs[so + j] = v;
          y[((t * D + d) * B + b) * H + j] = v;
        }
      }
    }
  }
  return outputs(c, y, [hs]);
};

const RNN: OpImpl = (args, node, ctx) => {
  const c = common(args, node, ctx, 1, ["Tanh"]);
  const { T, B, H, D, clip } = c;
  const y = new Float32Array(T * D * B * H);
  const hs = c.h0;
  const cl = (v: number): number => v < -clip ? -clip : v > clip ? clip : v;
  const hn = new Float32Array(H);
  for (let d = 0; d < D; d++) {
    const [f] = c.acts[d];
    const xw = inputProjection(c, d, 1, biasSum(c, d, 1, () => false));
    for (let s = 0; s < T; s++) {
      const hr = recurrent(c, d, 1, hs);
      for (let b = 0; b < B; b++) {
        const t = timeOf(c, d, b, s);
        if (t < 0) continue;
        const so = (d * B + b) * H;
        const xo = (t * B + b) * H;
        for (let j = 0; j < H; j++) hn[j] = f(cl(xw[xo + j] + hr[b * H + j]));
        for (let j = 0; j < H; j++) {
          hs[so + j] = hn[j];
          y[((t * D + d) * B + b) * H + j] = hn[j];
        }
      }
    }
  }
  return outputs(c, y, [hs]);
};

/**
 * Recurrent ops.
 *
 * @example
 * ```ts
 * import { rnnOps } from "./rnn.ts";
 * // One step of a 1-unit RNN: h = tanh(x·w + h0·r) = tanh(0.5·2 + 0) = tanh(1).
 * const t = (v: number, shape: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array([v]) });
 * const node = { name: "r", op: "RNN", domain: "", inputs: [], outputs: ["y", "h"],
 *   attrs: { hidden_size: { kind: "int" as const, value: 1 } } };
 * const [, h] = await rnnOps.RNN([t(0.5, [1, 1, 1]), t(2, [1, 1, 1]), t(3, [1, 1, 1])], node, { opset: 17 });
 * if (Math.abs(h.data[0] as number - Math.tanh(1)) > 1e-6) throw new Error();
 * ```
 */
export const rnnOps: OpTable<"LSTM" | "GRU" | "RNN"> = { LSTM, GRU, RNN };
