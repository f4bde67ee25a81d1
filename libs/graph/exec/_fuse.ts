// Inference-time graph rewrites used by the executor's fast plan (never when
// values are observed or transformed, since they remove intermediate values):
//
// - Constant nodes become initializers;
// - Conv ← BatchNormalization / Mul / Div / Add / Sub by per-channel constants fold into the
//   Conv's weights and bias;
// - Add(x, 3) → Clip(0, 6) → Mul(x, ·) → Div(6) becomes HardSwish(x);
// - an Add of a constant [N] vector after a QGemmFused with float output (or a
//   MinifloatGemmFused) and no bias becomes its bias (a MatMul's bias exported as an Add);
// - Relu / constant Clip after Conv / Gemm / MatMul (and lowbit's QConvFused / QGemmFused
//   with float output) fuse into the kernel epilogue (attribute `lowbit_clamp`);
// - QuantizeLinear → DequantizeLinear (the Q's only consumer) with the same per-tensor int8 /
//   uint8 scale and zero point becomes one QdqFused (ops/fused.ts: same bits, one pass);
// - chains of scalar elementwise ops and activations become one PointwiseFused node
//   (attribute `program`, a JSON list of steps), one pass over the data;
// - Mul whose only consumer is an Add becomes one MulAddFused (a squeeze-excitation scale and
//   its residual: one pass instead of two), a Resize whose only consumer is an Add one
//   ResizeAddFused (a feature pyramid's upsample and sum);
// - the head of such a chain (or a single such op) after a Conv that fits the kernels'
//   epilogue — clamps, then HardSwish, then × c, then + c — fuses into the Conv
//   (attributes `lowbit_clamp` and `lowbit_post`, see ops/_post.ts); the rest stays a chain;
// - likewise after a QConvFused with float output: clamps, × c, + c, HardSwish, × c, + c
//   (attribute `lowbit_qpost`, ops/fused.ts); and when its only consumer is another QConvFused,
//   that consumer's QuantizeLinear moves into its epilogue (`lowbit_qout`): the value between
//   them is then the consumer's centred integer codes (code − zero point) as f32, and the
//   consumer reads them as they are (`lowbit_codes_in`) — quantize / dequantize only at float
//   boundaries;
// - a float Conv whose only reader is a float8 QdqFused takes it as its last post-op
//   (`lowbit_qdq8`, ops/_post.ts); a float Conv / ConvTranspose or a QConvFused with float
//   output whose only reader is an int8 / uint8 QdqFused takes that (`lowbit_qdq`);
// - an Add of two tensors whose only consumer is a chain of scalar pointwise steps (a residual
//   sum and its ReLU) becomes one AddFused (ops/pointwise.ts); when that chain's only consumer
//   is a QConvFused, the consumer's quantization moves into it too (`lowbit_qout` /
//   `lowbit_codes_in`, as between two QConvFused); and when one operand is an int8 / uint8
//   QdqFused of a QConvFused's output that another QConvFused quantizes with the same scale and
//   zero point (a residual block's input), that QConvFused (or a float Conv: its weights stayed
//   float) writes the codes (`lowbit_qout`), its
//   consumer reads them (`lowbit_codes_in`) and the AddFused dequantizes them as the QdqFused
//   did (`lowbit_dq` = [scale, NaN's centred code]): the QdqFused pass is gone;
// - a Concat of several tensors whose only reader is a QdqFused becomes one ConcatQdqFused: each
//   part goes through the pair into its place in the output (ops/fused.ts);
// - Shape / Size of a QdqFused's output read its input (the same shape); a QdqFused left without
//   readers is dropped;
// - a Concat with one input is dropped (the identity: QDQ exports put one in front of float8 /
//   int4 Q/DQ pairs as a barrier against onnxruntime's fusions).
//
// NOTE folding changes float rounding slightly (conv(x, W·a) vs conv(x, W)·a): within
// a few ulps, far inside the executor's 1e-4 tolerance against onnxruntime.

import type { Attr, Graph, Node, TensorData } from "../ir.ts";
import { size } from "./_tensor.ts";

/** One step of a PointwiseFused program. */
export type PointwiseStep =
  | { op: "mul" | "add" | "sub" | "div" | "rsub" | "rdiv"; c: number }
  | { op: "clip"; lo: number; hi: number }
  | { op: "relu" | "sigmoid" | "hardswish" | "tanh" }
  | { op: "hardsigmoid"; alpha: number; beta: number }
  | { op: "leakyrelu"; alpha: number };

interface Ctx {
  nodes: (Node | undefined)[];
  consts: Map<string, TensorData>;
  outputs: Set<string>;
  fresh: number;
}

function f32const(c: Ctx, name: string): Float32Array | undefined {
  const t = c.consts.get(name);
  return t && t.dtype === "float32" ? t.data as Float32Array : undefined;
}

function scalarConst(c: Ctx, name: string): number | undefined {
  const d = f32const(c, name);
  return d && d.length === 1 ? d[0] : undefined;
}

function attr(n: Node, name: string): Attr | undefined {
  return n.attrs[name];
}

function consumers(c: Ctx): Map<string, number[]> {
  const m = new Map<string, number[]>();
  c.nodes.forEach((n, i) => {
    if (!n) return;
    for (const v of new Set(n.inputs)) {
      if (v === "") continue;
      let l = m.get(v);
      if (!l) m.set(v, l = []);
      l.push(i);
    }
  });
  return m;
}

/** The single consumer of `v`, when there is exactly one and `v` is not a graph output. */
function only(c: Ctx, cons: Map<string, number[]>, v: string): number | undefined {
  const l = cons.get(v);
  if (!l || l.length !== 1 || c.outputs.has(v)) return undefined;
  return l[0];
}

function addConst(c: Ctx, base: string, t: TensorData): string {
  const name = `${base}.lowbit_fused_${c.fresh++}`;
  c.consts.set(name, t);
  return name;
}

/** Per-channel values of a constant broadcast against an NCHW conv output, or undefined. */
function perChannel(c: Ctx, name: string, cout: number): Float32Array | undefined {
  const t = c.consts.get(name);
  if (!t || t.dtype !== "float32") return undefined;
  const d = t.data as Float32Array;
  if (d.length === 1) return new Float32Array(cout).fill(d[0]);
  if (d.length !== cout) return undefined;
  const s = t.shape;
  // [C,1,1], [1,C,1,1]: the channel axis is the third from the end.
  const ok = (s.length === 3 && s[0] === cout) || (s.length === 4 && s[0] === 1 && s[1] === cout);
  return ok && s.slice(-2).every((x) => x === 1) ? d : undefined;
}

function foldIntoConv(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((n, i) => {
    if (!n || (n.op !== "Conv" && n.op !== "ConvTranspose") || n.domain !== "") return;
    if (attr(n, "lowbit_clamp") || attr(n, "lowbit_post")) return;
    const w = c.consts.get(n.inputs[1]);
    if (!w || w.dtype !== "float32" || w.shape.length !== 4) return;
    // ConvTranspose weights are [Cin, Cout, kh, kw]: fold only without groups.
    const transposed = n.op === "ConvTranspose";
    if (transposed && (attr(n, "group")?.value ?? 1) !== 1) return;
    const b = n.inputs[2] ? c.consts.get(n.inputs[2]) : undefined;
    if (n.inputs[2] && (!b || b.dtype !== "float32")) return;
    const j = only(c, cons, n.outputs[0]);
    if (j === undefined) return;
    const m = c.nodes[j]!;
    const cout = transposed ? w.shape[1] : w.shape[0];
    const per = size(w.shape.slice(1));
    // Index of weight element (output channel k, position p within the channel's weights).
    const cin = w.shape[0], khw = size(w.shape.slice(2));
    const at = transposed
      ? (k: number, p: number): number => (Math.floor(p / khw) * cout + k) * khw + (p % khw)
      : (k: number, p: number): number => k * per + p;
    const perW = transposed ? cin * khw : per;
    const wd = w.data as Float32Array;
    const bd = b ? b.data as Float32Array : new Float32Array(cout);
    let scale: Float32Array | undefined, shift: Float32Array | undefined;
    const y = n.outputs[0];
    if (
      m.op === "BatchNormalization" && m.inputs[0] === y && m.outputs.filter((o) => o).length === 1
    ) {
      const [s, bb, mean, vr] = m.inputs.slice(1, 5).map((v) => f32const(c, v));
      if (!s || !bb || !mean || !vr || s.length !== cout) return;
      const eps = attr(m, "epsilon")?.value as number ?? 1e-5;
      scale = new Float32Array(cout);
      shift = new Float32Array(cout);
      for (let k = 0; k < cout; k++) {
        scale[k] = s[k] / Math.sqrt(vr[k] + eps);
        shift[k] = bb[k] - mean[k] * scale[k];
      }
    } else if (m.op === "Mul" || m.op === "Div" || m.op === "Add" || m.op === "Sub") {
      const other = m.inputs[0] === y ? m.inputs[1] : m.inputs[0];
      if (m.inputs[0] !== y && m.inputs[1] !== y) return;
      if ((m.op === "Div" || m.op === "Sub") && m.inputs[0] !== y) return;
      const v = perChannel(c, other, cout);
      if (!v) return;
      if (m.op === "Mul") scale = v;
      else if (m.op === "Div") scale = v.map((x) => 1 / x);
      else if (m.op === "Add") shift = v;
      else shift = v.map((x) => -x);
      if (m.op === "Div") {
        // Divide exactly as the graph would (x / d), not multiply by a rounded reciprocal.
        const nw = new Float32Array(wd.length), nb = new Float32Array(cout);
        for (let k = 0; k < cout; k++) {
          for (let p = 0; p < perW; p++) nw[at(k, p)] = wd[at(k, p)] / v[k];
          nb[k] = bd[k] / v[k];
        }
        replaceConv(c, i, j, n, m, nw, nb, w.shape);
        changed = true;
        return;
      }
    } else return;
    const nw = new Float32Array(wd.length), nb = new Float32Array(cout);
    for (let k = 0; k < cout; k++) {
      const a = scale ? scale[k] : 1, s0 = shift ? shift[k] : 0;
      for (let p = 0; p < perW; p++) nw[at(k, p)] = wd[at(k, p)] * a;
      nb[k] = bd[k] * a + s0;
    }
    replaceConv(c, i, j, n, m, nw, nb, w.shape);
    changed = true;
  });
  return changed;
}

function replaceConv(
  c: Ctx,
  i: number,
  j: number,
  n: Node,
  m: Node,
  w: Float32Array,
  b: Float32Array,
  wShape: number[],
): void {
  const wn = addConst(c, n.name + ".w", { dtype: "float32", shape: [...wShape], data: w });
  const bn = addConst(c, n.name + ".b", { dtype: "float32", shape: [b.length], data: b });
  c.nodes[i] = { ...n, inputs: [n.inputs[0], wn, bn], outputs: [m.outputs[0]] };
  c.nodes[j] = undefined;
}

function clipBounds(c: Ctx, n: Node): [number, number] | undefined {
  if (n.op === "Relu") return [0, Infinity];
  if (n.op !== "Clip") return undefined;
  if (attr(n, "min") || attr(n, "max")) {
    const lo = attr(n, "min")?.value, hi = attr(n, "max")?.value;
    return [typeof lo === "number" ? lo : -Infinity, typeof hi === "number" ? hi : Infinity];
  }
  const lo = n.inputs[1] ? scalarConst(c, n.inputs[1]) : -Infinity;
  const hi = n.inputs[2] ? scalarConst(c, n.inputs[2]) : Infinity;
  return lo === undefined || hi === undefined ? undefined : [lo, hi];
}

function fuseHardSwish(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((a, i) => {
    if (!a || a.op !== "Add") return;
    const t = scalarConst(c, a.inputs[1]) === 3
      ? a.inputs[0]
      : scalarConst(c, a.inputs[0]) === 3
      ? a.inputs[1]
      : undefined;
    if (t === undefined) return;
    const ci = only(c, cons, a.outputs[0]);
    const clip = ci === undefined ? undefined : c.nodes[ci];
    if (!clip || clip.op !== "Clip") return;
    const b = clipBounds(c, clip);
    if (!b || b[0] !== 0 || b[1] !== 6) return;
    const mi = only(c, cons, clip.outputs[0]);
    const mul = mi === undefined ? undefined : c.nodes[mi];
    if (!mul || mul.op !== "Mul") return;
    const other = mul.inputs[0] === clip.outputs[0] ? mul.inputs[1] : mul.inputs[0];
    if (other !== t) return;
    const di = only(c, cons, mul.outputs[0]);
    const div = di === undefined ? undefined : c.nodes[di];
    if (
      !div || div.op !== "Div" || div.inputs[0] !== mul.outputs[0] ||
      scalarConst(c, div.inputs[1]) !== 6
    ) return;
    c.nodes[i] = {
      name: div.name,
      op: "HardSwish",
      domain: "",
      inputs: [t],
      outputs: [div.outputs[0]],
      attrs: {},
    };
    c.nodes[ci!] = c.nodes[mi!] = c.nodes[di!] = undefined;
    changed = true;
  });
  return changed;
}

function fuseClamp(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((n, i) => {
    // lowbit's fused integer ops clamp in their float epilogue (not when they requantize).
    const qfused = n?.domain === "lowbit" && (n.op === "QConvFused" || n.op === "QGemmFused") &&
      (n.inputs[7] ?? "") === "";
    if (
      !n ||
      (!qfused && (n.domain !== "" || !["Conv", "ConvTranspose", "Gemm", "MatMul"].includes(n.op)))
    ) {
      return;
    }
    if (
      n.op === "Gemm" && typeof attr(n, "alpha")?.value === "number" &&
      attr(n, "alpha")!.value !== 1
    ) return;
    const j = only(c, cons, n.outputs[0]);
    const r = j === undefined ? undefined : c.nodes[j];
    if (!r || r.inputs[0] !== n.outputs[0]) return;
    const b = clipBounds(c, r);
    if (!b) return;
    const prev = attr(n, "lowbit_clamp")?.value as number[] | undefined;
    const lo = Math.max(b[0], prev ? prev[0] : -Infinity),
      hi = Math.min(b[1], prev ? prev[1] : Infinity);
    c.nodes[i] = {
      ...n,
      outputs: [r.outputs[0]],
      attrs: { ...n.attrs, lowbit_clamp: { kind: "floats", value: [lo, hi] } },
    };
    c.nodes[j!] = undefined;
    changed = true;
  });
  return changed;
}

/** The value of a per-tensor (one-element) constant, as a number, or undefined. */
function oneConst(c: Ctx, name: string | undefined): number | undefined {
  const t = name ? c.consts.get(name) : undefined;
  return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
}

function fuseQdqPair(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((q, i) => {
    if (!q || q.domain !== "" || q.op !== "QuantizeLinear") return;
    const j = only(c, cons, q.outputs[0]);
    const d = j === undefined ? undefined : c.nodes[j];
    if (!d || d.domain !== "" || d.op !== "DequantizeLinear" || d.inputs[0] !== q.outputs[0]) {
      return;
    }
    const [, qs, qz] = q.inputs, [, ds, dz] = d.inputs;
    const zt = qz ? c.consts.get(qz) : undefined;
    const dzt = dz ? c.consts.get(dz) : undefined;
    const zType = zt?.dtype ?? "uint8";
    if (zType === "float8e4m3fn" || zType === "float8e5m2") {
      // float8 with saturation, zero points +0 (ops/fused.ts qdqFp8).
      const s = scalarConst(c, qs), s2 = scalarConst(c, ds);
      const zeros = [zt, dzt].every((t) =>
        t !== undefined && t.dtype === zType && t.data.length === 1 && Number(t.data[0]) === 0
      );
      const sat = attr(q, "saturate")?.value ?? 1;
      if (s === undefined || s !== s2 || !zeros || sat !== 1 || attr(q, "output_dtype")) return;
      c.nodes[i] = {
        name: q.name,
        op: "QdqFused",
        domain: "lowbit",
        inputs: q.inputs,
        outputs: [d.outputs[0]],
        attrs: {},
      };
      c.nodes[j!] = undefined;
      return;
    }
    if (
      !["int8", "uint8"].includes(zType) || (dzt?.dtype ?? "uint8") !== zType ||
      (qz !== undefined && qz !== "" && zt === undefined) ||
      (dz !== undefined && dz !== "" && dzt === undefined) ||
      attr(q, "output_dtype") !== undefined
    ) return;
    const s = scalarConst(c, qs), s2 = scalarConst(c, ds);
    if (s === undefined || s !== s2 || (oneConst(c, qz) ?? 0) !== (oneConst(c, dz) ?? 0)) return;
    if ((zt && zt.data.length !== 1) || (dzt && dzt.data.length !== 1)) return;
    c.nodes[i] = {
      name: q.name,
      op: "QdqFused",
      domain: "lowbit",
      inputs: q.inputs,
      outputs: [d.outputs[0]],
      attrs: {},
    };
    c.nodes[j!] = undefined;
  });
}

function pointwiseStep(c: Ctx, n: Node): PointwiseStep | undefined {
  if (n.domain !== "") return undefined;
  const num = (name: string, def: number): number => {
    const v = attr(n, name)?.value;
    return typeof v === "number" ? v : def;
  };
  switch (n.op) {
    case "Mul":
    case "Add":
    case "Sub":
    case "Div": {
      const op = n.op.toLowerCase() as "mul" | "add" | "sub" | "div";
      const b = scalarConst(c, n.inputs[1]);
      if (b !== undefined && !c.consts.has(n.inputs[0])) return { op, c: b };
      const a = scalarConst(c, n.inputs[0]);
      if (a === undefined || c.consts.has(n.inputs[1])) return undefined;
      if (op === "mul" || op === "add") return { op, c: a };
      return { op: op === "sub" ? "rsub" : "rdiv", c: a };
    }
    case "Clip": {
      const b = clipBounds(c, n);
      return b ? { op: "clip", lo: b[0], hi: b[1] } : undefined;
    }
    case "Relu":
      return { op: "relu" };
    case "Sigmoid":
      return { op: "sigmoid" };
    case "HardSwish":
      return { op: "hardswish" };
    case "Tanh":
      return { op: "tanh" };
    case "HardSigmoid":
      return { op: "hardsigmoid", alpha: num("alpha", 0.2), beta: num("beta", 0.5) };
    case "LeakyRelu":
      return { op: "leakyrelu", alpha: num("alpha", 0.01) };
  }
  return undefined;
}

/** The tensor input of a pointwise node (the non-constant operand). */
function dataInput(c: Ctx, n: Node): string {
  if (
    (n.op === "Mul" || n.op === "Add" || n.op === "Sub" || n.op === "Div") &&
    c.consts.has(n.inputs[0])
  ) {
    return n.inputs[1];
  }
  return n.inputs[0];
}

function fusePointwise(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  const producerOf = new Map<string, number>();
  c.nodes.forEach((n, i) => n?.outputs.forEach((o) => producerOf.set(o, i)));
  c.nodes.forEach((n, i) => {
    if (!n || pointwiseStep(c, n) === undefined) return;
    // Start only at a chain head: the input is not itself a fusable single-use pointwise output.
    const src = dataInput(c, n);
    const p = producerOf.get(src);
    const pn = p === undefined ? undefined : c.nodes[p];
    if (pn && pointwiseStep(c, pn) !== undefined && only(c, cons, src) === i) return;
    const chain = [i];
    let cur = n;
    for (;;) {
      const j = only(c, cons, cur.outputs[0]);
      const next = j === undefined ? undefined : c.nodes[j];
      if (!next || pointwiseStep(c, next) === undefined || dataInput(c, next) !== cur.outputs[0]) {
        break;
      }
      chain.push(j!);
      cur = next;
    }
    if (chain.length < 2) return;
    const program = chain.map((k) => pointwiseStep(c, c.nodes[k]!)!);
    c.nodes[i] = {
      name: cur.name,
      op: "PointwiseFused",
      domain: "lowbit",
      inputs: [src],
      outputs: [cur.outputs[0]],
      attrs: { program: { kind: "string", value: JSON.stringify(program) } },
    };
    for (const k of chain.slice(1)) c.nodes[k] = undefined;
    changed = true;
  });
  return changed;
}

function fuseMulAdd(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((m, i) => {
    if (!m || m.op !== "Mul" || m.domain !== "" || m.inputs.length !== 2) return;
    // Both operands constant: leave it to constant folding.
    if (m.inputs.every((v) => c.consts.has(v))) return;
    const j = only(c, cons, m.outputs[0]);
    const a = j === undefined ? undefined : c.nodes[j];
    if (!a || a.op !== "Add" || a.domain !== "" || a.inputs.length !== 2) return;
    if (a.inputs[0] === a.inputs[1]) return;
    const other = a.inputs[0] === m.outputs[0] ? a.inputs[1] : a.inputs[0];
    c.nodes[j!] = {
      name: a.name,
      op: "MulAddFused",
      domain: "lowbit",
      inputs: [m.inputs[0], m.inputs[1], other],
      outputs: [a.outputs[0]],
      attrs: {},
    };
    c.nodes[i] = undefined;
    changed = true;
  });
  return changed;
}

function fuseResizeAdd(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((r, i) => {
    if (!r || r.op !== "Resize" || r.domain !== "" || r.inputs.length > 4) return;
    const j = only(c, cons, r.outputs[0]);
    const a = j === undefined ? undefined : c.nodes[j];
    if (!a || a.op !== "Add" || a.domain !== "" || a.inputs.length !== 2) return;
    if (a.inputs[0] === a.inputs[1]) return;
    const first = a.inputs[1] === r.outputs[0];
    const other = first ? a.inputs[0] : a.inputs[1];
    if (other === r.inputs[0]) return;
    const ins = [...r.inputs];
    while (ins.length < 4) ins.push("");
    c.nodes[j!] = {
      name: a.name,
      op: "ResizeAddFused",
      domain: "lowbit",
      inputs: [...ins, other],
      outputs: [a.outputs[0]],
      attrs: { ...r.attrs, lowbit_addend_first: { kind: "int", value: first ? 1 : 0 } },
    };
    c.nodes[i] = undefined;
    changed = true;
  });
  return changed;
}

/** The steps a PointwiseFused node runs, or the single step of a fusable op, or undefined. */
function stepsOf(c: Ctx, n: Node): PointwiseStep[] | undefined {
  if (n.op === "PointwiseFused" && n.domain === "lowbit") {
    const p = n.attrs.program;
    return p?.kind === "string" ? JSON.parse(p.value) as PointwiseStep[] : undefined;
  }
  const s = pointwiseStep(c, n);
  return s === undefined ? undefined : [s];
}

function fuseConvPost(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((n, i) => {
    if (!n || n.op !== "Conv" || n.domain !== "" || attr(n, "lowbit_post")) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || (m.op !== "PointwiseFused" && dataInput(c, m) !== n.outputs[0])) return;
    if (m.op === "PointwiseFused" && m.inputs[0] !== n.outputs[0]) return;
    const steps = stepsOf(c, m);
    if (!steps) return;
    const prev = attr(n, "lowbit_clamp")?.value as number[] | undefined;
    let lo = prev ? prev[0] : -Infinity, hi = prev ? prev[1] : Infinity;
    // Stages of the epilogue: 0 clamps, 1 HardSwish, 2 × c, 3 + c; each at most once, in order.
    let stage = 0, k = 0, hardswish = false, mul = NaN, add = NaN;
    for (; k < steps.length; k++) {
      const s = steps[k];
      if (stage === 0 && (s.op === "relu" || s.op === "clip")) {
        const [a, b] = s.op === "clip" ? [s.lo, s.hi] : [0, Infinity];
        if (Math.max(lo, a) > Math.min(hi, b)) break;
        lo = Math.max(lo, a);
        hi = Math.min(hi, b);
      } else if (stage === 0 && s.op === "hardswish") {
        hardswish = true;
        stage = 1;
      } else if (stage <= 1 && s.op === "mul") {
        mul = s.c;
        stage = 2;
      } else if (stage <= 2 && (s.op === "add" || s.op === "sub")) {
        add = s.op === "add" ? s.c : -s.c; // x − c and x + (−c) are the same IEEE operation
        stage = 3;
      } else break;
    }
    if (stage === 0) return; // clamps alone are fuseClamp's
    const attrs: Record<string, Attr> = {
      ...n.attrs,
      lowbit_post: { kind: "floats", value: [hardswish ? 1 : 0, mul, add] },
    };
    if (lo !== -Infinity || hi !== Infinity) {
      attrs.lowbit_clamp = { kind: "floats", value: [lo, hi] };
    }
    if (k === steps.length) {
      c.nodes[i] = { ...n, outputs: [m.outputs[0]], attrs };
      c.nodes[j!] = undefined;
    } else {
      c.nodes[i] = { ...n, attrs };
      c.nodes[j!] = {
        name: m.name,
        op: "PointwiseFused",
        domain: "lowbit",
        inputs: [n.outputs[0]],
        outputs: [m.outputs[0]],
        attrs: { program: { kind: "string", value: JSON.stringify(steps.slice(k)) } },
      };
    }
    changed = true;
  });
  return changed;
}

/**
 * A float Conv (or ConvTranspose: the pair is elementwise, it commutes with the depth-to-space or
 * scatter after the kernel) whose only reader is a float8 QdqFused (what a QDQ export puts in
 * front of the next layer) takes it as its last post-op (attribute `lowbit_qdq8` = [scale, 0 e4m3fn | 1
 * e5m2]): the kernels' epilogue computes the pair's values (the same bits as the QdqFused pass,
 * ops/_post.ts), with no pass of its own over the output.
 */
function fuseConvQdqFp8(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (!n || (n.op !== "Conv" && n.op !== "ConvTranspose") || n.domain !== "") return;
    if (attr(n, "lowbit_qdq8") || (n.op === "ConvTranspose" && attr(n, "lowbit_post"))) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || m.op !== "QdqFused" || m.domain !== "lowbit" || m.inputs[0] !== n.outputs[0]) return;
    const zt = m.inputs[2] ? c.consts.get(m.inputs[2]) : undefined;
    const fmt = zt?.dtype === "float8e4m3fn" ? 0 : zt?.dtype === "float8e5m2" ? 1 : -1;
    const s = scalarConst(c, m.inputs[1]);
    if (fmt < 0 || s === undefined || !(Math.fround(s) > 0) || !Number.isFinite(s)) return;
    c.nodes[i] = {
      ...n,
      outputs: [m.outputs[0]],
      attrs: { ...n.attrs, lowbit_qdq8: { kind: "floats", value: [s, fmt] } },
    };
    c.nodes[j!] = undefined;
  });
}

/**
 * A float conv whose only reader is an int8 / uint8 QdqFused takes it as its last post-op
 * (attribute `lowbit_qdq` = [scale, lo − z, hi − z, −z]: QuantizeLinear to the centred code,
 * then DequantizeLinear, a NaN taken as the code 0): the kernels' epilogue computes the pair's
 * values (`ConvPostOps.quantize` + `dequantize`, the same bits as the QdqFused pass), with no
 * pass of its own over the output. Readers: a Conv (after its other post-ops), a ConvTranspose
 * (its only post-op: the pair is elementwise, so it commutes with the depth-to-space or scatter
 * after the kernel) and a QConvFused with a float output (PP-OCRv4 det's head: the last conv
 * of the neck and the first ConvTranspose, each read by the next layer's Q → DQ).
 */
function fuseConvQdqInt(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (!n || attr(n, "lowbit_qdq") || attr(n, "lowbit_qdq8")) return;
    const float = (n.op === "Conv" || n.op === "ConvTranspose") && n.domain === "";
    const qfloat = isQConv(n) && (n.inputs[7] ?? "") === "" && !attr(n, "lowbit_qout");
    if (!float && !qfloat) return;
    if (n.op === "ConvTranspose" && attr(n, "lowbit_post")) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || m.op !== "QdqFused" || m.domain !== "lowbit" || m.inputs[0] !== n.outputs[0]) return;
    const aq = actQuant(c, m);
    if (!aq) return;
    const [sf, z, range] = aq;
    c.nodes[i] = {
      ...n,
      outputs: [m.outputs[0]],
      attrs: {
        ...n.attrs,
        lowbit_qdq: { kind: "floats", value: [sf, range[0] - z, range[1] - z, 0 - z] },
      },
    };
    c.nodes[j!] = undefined;
  });
}

const isQConv = (n: Node | undefined): n is Node =>
  n !== undefined && n.op === "QConvFused" && n.domain === "lowbit";

function fuseQConvPost(c: Ctx): boolean {
  const cons = consumers(c);
  let changed = false;
  c.nodes.forEach((n, i) => {
    if (!isQConv(n) || (n.inputs[7] ?? "") !== "" || attr(n, "lowbit_qpost")) return;
    if (attr(n, "lowbit_qout")) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || (m.op === "PointwiseFused" ? m.inputs[0] : dataInput(c, m)) !== n.outputs[0]) return;
    const steps = stepsOf(c, m);
    if (!steps) return;
    const prev = attr(n, "lowbit_clamp")?.value as number[] | undefined;
    let lo = prev ? prev[0] : -Infinity, hi = prev ? prev[1] : Infinity;
    // [preMul, preAdd, hardswish, mul, add], NaN: absent; stages in this order, each once.
    const q = [NaN, NaN, 0, NaN, NaN];
    let stage = 0, k = 0;
    for (; k < steps.length; k++) {
      const s = steps[k];
      if (stage === 0 && (s.op === "relu" || s.op === "clip")) {
        const [a, b] = s.op === "clip" ? [s.lo, s.hi] : [0, Infinity];
        if (Math.max(lo, a) > Math.min(hi, b)) break;
        lo = Math.max(lo, a);
        hi = Math.min(hi, b);
      } else if (s.op === "mul" && stage < 1) {
        q[0] = s.c;
        stage = 1;
      } else if ((s.op === "add" || s.op === "sub") && stage < 2) {
        q[1] = s.op === "add" ? s.c : -s.c;
        stage = 2;
      } else if (s.op === "hardswish" && stage < 3) {
        q[2] = 1;
        stage = 3;
      } else if (s.op === "mul" && stage < 4) {
        q[3] = s.c;
        stage = 4;
      } else if ((s.op === "add" || s.op === "sub") && stage < 5) {
        q[4] = s.op === "add" ? s.c : -s.c;
        stage = 5;
      } else break;
    }
    if (k === 0) return;
    const attrs: Record<string, Attr> = { ...n.attrs };
    if (stage > 0) attrs.lowbit_qpost = { kind: "floats", value: q };
    if (lo !== -Infinity || hi !== Infinity) {
      attrs.lowbit_clamp = { kind: "floats", value: [lo, hi] };
    }
    if (k === steps.length) {
      c.nodes[i] = { ...n, outputs: [m.outputs[0]], attrs };
      c.nodes[j!] = undefined;
    } else {
      c.nodes[i] = { ...n, attrs };
      c.nodes[j!] = {
        name: m.name,
        op: "PointwiseFused",
        domain: "lowbit",
        inputs: [n.outputs[0]],
        outputs: [m.outputs[0]],
        attrs: { program: { kind: "string", value: JSON.stringify(steps.slice(k)) } },
      };
    }
    changed = true;
  });
  return changed;
}

const CODE_RANGE: Record<string, [number, number]> = { int8: [-128, 127], uint8: [0, 255] };

function fuseQConvCodes(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (!isQConv(n) || (n.inputs[7] ?? "") !== "" || attr(n, "lowbit_qout")) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!isQConv(m) || m.inputs[0] !== n.outputs[0] || attr(m, "lowbit_codes_in")) return;
    if (m.inputs.indexOf(n.outputs[0], 1) !== -1) return;
    const aq = actQuant(c, m);
    if (!aq) return;
    const [s, z, range] = aq;
    c.nodes[i] = {
      ...n,
      attrs: {
        ...n.attrs,
        lowbit_qout: { kind: "floats", value: [s, range[0] - z, range[1] - z] },
      },
    };
    c.nodes[j!] = { ...m, attrs: { ...m.attrs, lowbit_codes_in: { kind: "int", value: 1 } } };
  });
}

const FLOAT_FIRST = new Set(["relu", "leakyrelu", "sigmoid", "hardsigmoid", "hardswish", "tanh"]);

/** Add(a, b) (tensors) → pointwise steps [→ QConvFused's quantization]: one AddFused. */
function fuseAddSteps(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (!n || n.op !== "Add" || n.domain !== "" || n.inputs.length !== 2) return;
    if (n.inputs.some((v) => v === "" || c.consts.has(v)) || n.outputs.length !== 1) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || (m.op === "PointwiseFused" ? m.inputs[0] : dataInput(c, m)) !== n.outputs[0]) return;
    const steps = stepsOf(c, m);
    if (!steps || m.outputs.length !== 1) return;
    // Only where the separate ops take float32 alone (a PointwiseFused, or a float activation
    // first): an integer Add → Mul / Clip chain (shape arithmetic) stays as it is.
    if (m.op !== "PointwiseFused" && !FLOAT_FIRST.has(steps[0].op)) return;
    const attrs: Record<string, Attr> = {
      program: { kind: "string", value: JSON.stringify(steps) },
    };
    const k = only(c, cons, m.outputs[0]);
    const q = k === undefined ? undefined : c.nodes[k];
    if (
      isQConv(q) && q.inputs[0] === m.outputs[0] && q.inputs.indexOf(m.outputs[0], 1) === -1 &&
      !attr(q, "lowbit_codes_in")
    ) {
      const aq = actQuant(c, q);
      if (aq) {
        const [s, z, range] = aq;
        attrs.lowbit_qout = { kind: "floats", value: [s, range[0] - z, range[1] - z] };
        c.nodes[k!] = { ...q, attrs: { ...q.attrs, lowbit_codes_in: { kind: "int", value: 1 } } };
      }
    }
    c.nodes[i] = {
      name: n.name,
      op: "AddFused",
      domain: "lowbit",
      inputs: [...n.inputs],
      outputs: [m.outputs[0]],
      attrs,
    };
    c.nodes[j!] = undefined;
  });
}

/**
 * The per-tensor int8 / uint8 quantization (f32 scale, zero point, code range) of a node's
 * inputs 1 and 2 (QdqFused, QConvFused), or undefined. The scale of a valid model is a float
 * tensor's value, so its f32 rounding changes nothing.
 */
function actQuant(c: Ctx, n: Node): [number, number, [number, number]] | undefined {
  const s = scalarConst(c, n.inputs[1]);
  const zt = n.inputs[2] ? c.consts.get(n.inputs[2]) : undefined;
  if (n.inputs[2] && (zt === undefined || zt.data.length !== 1)) return undefined;
  const range = CODE_RANGE[zt?.dtype ?? "uint8"];
  if (range === undefined || s === undefined) return undefined;
  const sf = Math.fround(s);
  if (!(sf > 0) || !Number.isFinite(sf)) return undefined;
  return [sf, zt ? Number(zt.data[0]) : 0, range];
}

/**
 * AddFused(QdqFused(x), y) where x, a QConvFused's float output or a float Conv's, is read only
 * by that QdqFused and by a QConvFused quantizing it with the same scale and zero point: the
 * producer writes the codes, the conv reads them, the AddFused dequantizes them (the QdqFused's
 * values: its codes are the producer's, the same quantization of the same values).
 */
function fuseResidualCodes(c: Ctx): void {
  const cons = consumers(c);
  const producer = new Map<string, number>();
  c.nodes.forEach((n, i) => n?.outputs.forEach((o) => producer.set(o, i)));
  c.nodes.forEach((a, i) => {
    if (!a || a.op !== "AddFused" || a.domain !== "lowbit" || attr(a, "lowbit_dq")) return;
    if (a.inputs[0] === a.inputs[1]) return;
    for (let k = 0; k < 2; k++) {
      const dIdx = producer.get(a.inputs[k]);
      const d = dIdx === undefined ? undefined : c.nodes[dIdx];
      if (!d || d.op !== "QdqFused" || d.domain !== "lowbit") continue;
      if (only(c, cons, a.inputs[k]) !== i) continue;
      const x = d.inputs[0];
      const pIdx = producer.get(x);
      const p = pIdx === undefined ? undefined : c.nodes[pIdx];
      // A QConvFused with float output, or a float Conv (whose weights stayed float, e.g. int4
      // with blocked scales): either quantizes in its epilogue (ConvPostOps.quantize, last).
      const floatConv = p !== undefined && p.op === "Conv" && p.domain === "";
      if (!floatConv && (!isQConv(p) || (p.inputs[7] ?? "") !== "")) continue;
      if (p === undefined || p.outputs.length !== 1) continue;
      if (attr(p, "lowbit_qout") || attr(p, "lowbit_qdq") || attr(p, "lowbit_qdq8")) continue;
      const readers = cons.get(x) ?? [];
      if (c.outputs.has(x) || readers.length !== 2) continue;
      const cIdx = readers.find((r) => r !== dIdx);
      const q = cIdx === undefined ? undefined : c.nodes[cIdx];
      if (!isQConv(q) || q.inputs[0] !== x || q.inputs.indexOf(x, 1) !== -1) continue;
      if (attr(q, "lowbit_codes_in")) continue;
      const dq = actQuant(c, d), cq = actQuant(c, q);
      if (!dq || !cq || dq[0] !== cq[0] || dq[1] !== cq[1] || dq[2] !== cq[2]) continue;
      const [s, z, range] = dq;
      c.nodes[pIdx!] = {
        ...p,
        attrs: {
          ...p.attrs,
          lowbit_qout: { kind: "floats", value: [s, range[0] - z, range[1] - z] },
        },
      };
      c.nodes[cIdx!] = { ...q, attrs: { ...q.attrs, lowbit_codes_in: { kind: "int", value: 1 } } };
      c.nodes[i] = {
        ...a,
        inputs: [x, a.inputs[1 - k]],
        attrs: { ...a.attrs, lowbit_dq: { kind: "floats", value: [s, 0 - z] } },
      };
      c.nodes[dIdx!] = undefined;
      return;
    }
  });
}

/**
 * A Concat of two or more tensors whose only reader is a QdqFused (int8 / uint8 per tensor, or
 * float8: the pair a QDQ export puts in front of the conv after a feature pyramid's Concat)
 * becomes one ConcatQdqFused(x_scale, x_zero_point, parts…) (ops/fused.ts): each part goes
 * through the pair straight into its place in the output (the pair is elementwise, so it
 * commutes with the concatenation), with no copy of the concatenation for the pair to read.
 */
function fuseConcatQdq(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (!n || n.op !== "Concat" || n.domain !== "" || n.inputs.length < 2) return;
    if (n.outputs.length !== 1 || n.inputs.some((v) => v === "")) return;
    const j = only(c, cons, n.outputs[0]);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || m.op !== "QdqFused" || m.domain !== "lowbit" || m.inputs[0] !== n.outputs[0]) return;
    c.nodes[i] = {
      name: n.name,
      op: "ConcatQdqFused",
      domain: "lowbit",
      inputs: [m.inputs[1], m.inputs[2] ?? "", ...n.inputs],
      outputs: [m.outputs[0]],
      attrs: { ...n.attrs },
    };
    c.nodes[j!] = undefined;
  });
}

/**
 * Add(QGemmFused(…), b) with b a float32 constant of shape [N] (a MatMul's bias, exported as its
 * own Add) moves into the QGemmFused as its bias, when it has none and a float output: its
 * epilogue then computes f32(f32(acc·sc) + b), the Add's bits on the op's output f32(acc·sc)
 * (addition commutes), in the GEMM's store instead of a pass of its own. Likewise for a
 * MinifloatGemmFused (the plain-SIMD minifloat GEMM: × column scale, then + bias, each rounded).
 */
function fuseQGemmBias(c: Ctx): void {
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (!n || n.domain !== "lowbit" || n.outputs.length !== 1 || attr(n, "lowbit_clamp")) return;
    // QGemmFused: bias input 6, no requantized output; MinifloatGemmFused: bias input 3.
    const q = n.op === "QGemmFused", mf = n.op === "MinifloatGemmFused";
    if (!q && !mf) return;
    const at = q ? 6 : 3;
    if ((n.inputs[at] ?? "") !== "" || (q && (n.inputs[7] ?? "") !== "")) return;
    const y = n.outputs[0];
    const j = only(c, cons, y);
    const m = j === undefined ? undefined : c.nodes[j];
    if (!m || m.op !== "Add" || m.domain !== "" || m.inputs.length !== 2) return;
    const b = m.inputs[0] === y ? m.inputs[1] : m.inputs[0];
    if (b === y || (m.inputs[0] !== y && m.inputs[1] !== y)) return;
    const t = c.consts.get(b), w = c.consts.get(n.inputs[q ? 3 : 1]);
    if (!t || t.dtype !== "float32" || t.shape.length !== 1 || !w || w.shape.length !== 2) return;
    const kn = mf && (n.attrs.layout?.value ?? "kn") === "kn";
    if (t.shape[0] !== w.shape[kn ? 1 : 0]) return;
    const inputs = [...n.inputs];
    while (inputs.length < at) inputs.push("");
    inputs[at] = b;
    c.nodes[i] = { ...n, inputs: inputs.slice(0, at + 1), outputs: [m.outputs[0]] };
    c.nodes[j!] = undefined;
  });
}

/**
 * Shape / Size of a QdqFused's output read the QdqFused's input instead (the pair keeps the
 * shape), and a QdqFused left without readers is dropped: a QDQ export quantizes a LayerNorm's
 * output for the Q / K / V projections, which quantize it themselves once fused, and the only
 * readers left of the pair's values were the Shape ops of the attention's reshapes (the digits
 * ViT: a full Q → DQ pass per block for a shape). Not in graphs with subgraphs (a body may read
 * the output by name).
 */
function shapeSkipsQdq(c: Ctx): void {
  if (c.nodes.some((n) => n && Object.values(n.attrs).some((a) => a.kind === "graph"))) return;
  const producer = new Map<string, Node>();
  c.nodes.forEach((n) => n?.outputs.forEach((o) => producer.set(o, n)));
  const isQdq = (n: Node | undefined): n is Node =>
    n !== undefined && n.op === "QdqFused" && n.domain === "lowbit";
  const rewired = new Set<Node>();
  c.nodes.forEach((n, i) => {
    if (!n || (n.op !== "Shape" && n.op !== "Size") || n.domain !== "") return;
    const q = producer.get(n.inputs[0]);
    if (!isQdq(q) || q.inputs[0] === "") return;
    c.nodes[i] = { ...n, inputs: [q.inputs[0], ...n.inputs.slice(1)] };
    rewired.add(q);
  });
  if (rewired.size === 0) return;
  const cons = consumers(c);
  c.nodes.forEach((n, i) => {
    if (n && rewired.has(n) && !c.outputs.has(n.outputs[0]) && !cons.has(n.outputs[0])) {
      c.nodes[i] = undefined;
    }
  });
}

/**
 * Concat with one input is the identity: its consumers read the input instead (QDQ exports put
 * one in front of every float8 / int4 Q/DQ pair as a barrier against onnxruntime's fusions; here it
 * was a copy of the tensor). Kept when its output is a graph output, and in graphs with subgraphs
 * (a body may read the output by name).
 */
function dropOneInputConcat(c: Ctx): void {
  // A subgraph body may read any outer value by name: then nothing is renamed.
  const bodies = c.nodes.some((n) => n && Object.values(n.attrs).some((a) => a.kind === "graph"));
  if (bodies) return;
  const rename = new Map<string, string>();
  c.nodes.forEach((n, i) => {
    if (!n || n.op !== "Concat" || n.domain !== "" || n.inputs.length !== 1) return;
    if (n.inputs[0] === "" || n.outputs.length !== 1 || c.outputs.has(n.outputs[0])) return;
    rename.set(n.outputs[0], n.inputs[0]);
    c.nodes[i] = undefined;
  });
  if (rename.size === 0) return;
  const to = (v: string): string => {
    while (rename.has(v)) v = rename.get(v)!;
    return v;
  };
  c.nodes.forEach((n, i) => {
    if (n && n.inputs.some((v) => rename.has(v))) c.nodes[i] = { ...n, inputs: n.inputs.map(to) };
  });
}

/**
 * Applies the inference rewrites to a graph (see the file comment).
 *
 * @param g the graph
 * @returns a new graph computing the same outputs
 */
export function fuseGraph(g: Graph): Graph {
  const consts = new Map(g.initializers);
  const nodes: (Node | undefined)[] = g.nodes.map((n) => {
    const v = n.op === "Constant" && n.domain === "" ? n.attrs.value : undefined;
    if (v?.kind === "tensor" && n.outputs.length === 1) {
      consts.set(n.outputs[0], v.value);
      return undefined;
    }
    return n;
  });
  const c: Ctx = { nodes, consts, outputs: new Set(g.outputs.map((o) => o.name)), fresh: 0 };
  dropOneInputConcat(c);
  while (foldIntoConv(c)) { /* until no more folds */ }
  fuseHardSwish(c);
  fuseQdqPair(c);
  shapeSkipsQdq(c);
  fuseQGemmBias(c);
  while (fuseClamp(c)) { /* Relu then Clip */ }
  fusePointwise(c);
  fuseConvPost(c);
  fuseConvQdqFp8(c);
  while (fuseQConvPost(c)) { /* a chain's rest may fit again after a split */ }
  fuseQConvCodes(c);
  fuseConvQdqInt(c);
  fuseMulAdd(c);
  fuseResizeAdd(c);
  fuseAddSteps(c);
  fuseResidualCodes(c);
  fuseConcatQdq(c);
  const kept = c.nodes.filter((n): n is Node => n !== undefined);
  // Drop constants nothing uses any more (folded weights' originals).
  const used = new Set<string>(g.outputs.map((o) => o.name));
  for (const n of kept) for (const v of n.inputs) used.add(v);
  const inits = new Map<string, TensorData>();
  for (const [k, v] of c.consts) if (used.has(k)) inits.set(k, v);
  return { ...g, nodes: kept, initializers: inits };
}
