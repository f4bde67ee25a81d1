/**
 * Shape inference: dtypes and (possibly symbolic) shapes of every value, with
 * small integer tensors (shapes, axes, sizes) propagated as values so that
 * Shape → Gather → Concat → Reshape chains resolve even with dynamic dims.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Dim, DType, Graph, Node, TensorData, ValueInfo } from "../ir.ts";
import {
  attrInt,
  attrInts,
  attrString,
  computeReshape,
  constantValue,
  DTYPE_BY_CODE,
  evalConst,
  normAxis,
  nums,
  sliceRange,
} from "./_const_eval.ts";
import { topoSort } from "./topo.ts";

/** What inference knows about one value. */
export interface ValueFacts {
  /** Element type, when known. */
  dtype?: DType;
  /** Dimensions, when the rank is known ("" marks an unknown dimension). */
  shape?: Dim[];
  /** The value itself, when constant (initializers, Constant, folded arithmetic). */
  value?: TensorData;
  /** Elements of a rank-0/1 integer tensor, possibly symbolic (e.g. the output of Shape). */
  elems?: Dim[];
}

/** Options of {@link inferShapes}. */
export interface InferShapesOptions {
  /** Shapes of graph inputs, replacing the declared ones (e.g. a concrete batch). */
  inputShapes?: Record<string, Dim[]>;
}

/** Result of {@link inferShapes}. */
export interface InferredShapes {
  /** The graph with `valueInfo` holding every inferred intermediate value. */
  graph: Graph;
  /** Everything known about every value, by name. */
  facts: Map<string, ValueFacts>;
}

type Rule = (ins: (ValueFacts | undefined)[], node: Node) => ValueFacts[];

const isNum = (d: Dim | undefined): d is number => typeof d === "number";

function fail(node: Node, msg: string): never {
  throw new LowbitError("SHAPE_MISMATCH", msg, { node: node.name });
}

function bcastDim(a: Dim, b: Dim, node: Node): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (isNum(a) && isNum(b)) fail(node, `cannot broadcast dimensions ${a} and ${b}`);
  if (isNum(a)) return a;
  if (isNum(b)) return b;
  return "";
}

function bcast(shapes: (Dim[] | undefined)[], node: Node): Dim[] | undefined {
  if (shapes.some((s) => !s)) return undefined;
  const r = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    let d: Dim = 1;
    for (const s of shapes) d = bcastDim(d, s![s!.length - r + i] ?? 1, node);
    out.push(d);
  }
  return out;
}

const prod = (ds: Dim[]): Dim =>
  ds.reduce<Dim>((a, d) => (isNum(a) && isNum(d) ? a * d : d === 1 ? a : a === 1 ? d : ""), 1);

/** Elements of a small integer tensor, if known. */
function elemsOf(f: ValueFacts | undefined): Dim[] | undefined {
  if (!f) return undefined;
  if (f.elems) return f.elems;
  if (
    f.value && f.value.shape.length <= 1 && f.value.data.length <= 64 && f.value.dtype !== "string"
  ) {
    return nums(f.value);
  }
  return undefined;
}
const numsOf = (f: ValueFacts | undefined): number[] | undefined => {
  const e = elemsOf(f);
  return e && e.every(isNum) ? e as number[] : undefined;
};

const same: Rule = (ins) => [{ dtype: ins[0]?.dtype, shape: ins[0]?.shape }];
const withDtype = (dtype: DType): Rule => (ins) => [{ dtype, shape: ins[0]?.shape }];

const broadcasting = (outDtype?: DType): Rule => (ins, node) => {
  const present = ins.filter((f): f is ValueFacts => !!f);
  const shape = bcast(present.map((f) => f.shape), node);
  const out: ValueFacts = { dtype: outDtype ?? present[0]?.dtype, shape };
  // Symbolic arithmetic on shape vectors (e.g. Mul(Gather(Shape(x)), 2)).
  const es = present.map(elemsOf);
  if (es.every((e) => e) && shape && shape.length <= 1 && !outDtype) {
    const n = Math.max(...es.map((e) => e!.length));
    if (es.every((e) => e!.length === n || e!.length === 1)) {
      const at = (e: Dim[], i: number): Dim => e[e.length === 1 ? 0 : i];
      out.elems = Array.from({ length: n }, (_, i) =>
        es.slice(1).reduce<Dim>((a, e) => {
          const b = at(e!, i);
          if (isNum(a) && isNum(b)) {
            switch (node.op) {
              case "Add":
                return a + b;
              case "Sub":
                return a - b;
              case "Mul":
                return a * b;
              case "Div":
                return b === 0 ? "" : Math.trunc(a / b);
              default:
                return "";
            }
          }
          if ((node.op === "Mul" || node.op === "Div") && b === 1) return a;
          if (node.op === "Mul" && a === 1) return b;
          if ((node.op === "Add" || node.op === "Sub") && b === 0) return a;
          return "";
        }, at(es[0]!, i)));
    }
  }
  return [out];
};

function spatial(
  ins: (ValueFacts | undefined)[],
  node: Node,
  kernel: Dim[] | undefined,
  channels: Dim,
  transposed: boolean,
): ValueFacts[] {
  const x = ins[0]?.shape;
  if (!x) return [{ dtype: ins[0]?.dtype }];
  const nsp = x.length - 2;
  const strides = attrInts(node, "strides") ?? new Array(nsp).fill(1);
  const dil = attrInts(node, "dilations") ?? new Array(nsp).fill(1);
  const pads = attrInts(node, "pads") ?? new Array(2 * nsp).fill(0);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  const ceil = attrInt(node, "ceil_mode", 0);
  const outPad = attrInts(node, "output_padding") ?? new Array(nsp).fill(0);
  const outShape = attrInts(node, "output_shape");
  const out: Dim[] = [x[0], channels];
  for (let i = 0; i < nsp; i++) {
    const d = x[i + 2], k = kernel?.[i], s = strides[i] ?? 1, dl = dil[i] ?? 1;
    if (transposed && outShape) {
      out.push(outShape[outShape.length - nsp + i]);
      continue;
    }
    if (!isNum(d) || !isNum(k)) {
      out.push("");
      continue;
    }
    const ek = (k - 1) * dl + 1;
    if (transposed) {
      if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") out.push(d * s);
      else out.push(s * (d - 1) + outPad[i] + ek - pads[i] - pads[i + nsp]);
    } else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      out.push(Math.ceil(d / s));
    } else if (autoPad === "VALID") {
      out.push(Math.floor((d - ek) / s) + 1);
    } else {
      const v = (d + pads[i] + pads[i + nsp] - ek) / s;
      out.push((ceil ? Math.ceil(v) : Math.floor(v)) + 1);
    }
  }
  for (const d of out) if (isNum(d) && d < 0) fail(node, `negative output dimension ${d}`);
  return [{ dtype: ins[0]?.dtype, shape: out }];
}

const reduce: Rule = (ins, node) => {
  const x = ins[0]?.shape;
  const keep = attrInt(node, "keepdims", 1);
  if (!x) return [{ dtype: ins[0]?.dtype }];
  const axesIn = node.inputs[1] ? numsOf(ins[1]) : attrInts(node, "axes");
  if (node.inputs[1] && !axesIn) {
    return [{ dtype: ins[0]?.dtype, shape: keep ? x.map(() => "") : undefined }];
  }
  const noop = attrInt(node, "noop_with_empty_axes", 0);
  if ((!axesIn || axesIn.length === 0) && noop) return [{ dtype: ins[0]?.dtype, shape: x }];
  const axes = (axesIn && axesIn.length ? axesIn : x.map((_, i) => i)).map((a) =>
    normAxis(a, x.length)
  );
  if (axes.some((a) => a === undefined)) fail(node, `axes out of range for rank ${x.length}`);
  const shape = keep
    ? x.map((d, i) => (axes.includes(i) ? 1 : d))
    : x.filter((_, i) => !axes.includes(i));
  return [{ dtype: ins[0]?.dtype, shape }];
};

const RULES: Record<string, Rule> = {
  Cast: (ins, node) => {
    const dtype = DTYPE_BY_CODE[attrInt(node, "to", 1)];
    return [{
      dtype,
      shape: ins[0]?.shape,
      elems: dtype && !dtype.startsWith("float") ? ins[0]?.elems : undefined,
    }];
  },
  Identity: (ins) => [{ ...ins[0], value: undefined }],
  Dropout: (
    ins,
  ) => [{ dtype: ins[0]?.dtype, shape: ins[0]?.shape }, { dtype: "bool", shape: ins[0]?.shape }],
  IsNaN: withDtype("bool"),
  IsInf: withDtype("bool"),
  Not: withDtype("bool"),
  BatchNormalization: same,
  LayerNormalization: (ins, node) => {
    const x = ins[0]?.shape;
    const axis = x ? normAxis(attrInt(node, "axis", -1), x.length) : undefined;
    const red = x && axis !== undefined ? x.map((d, i) => (i < axis ? d : 1)) : undefined;
    return [{ dtype: ins[0]?.dtype, shape: x }, { dtype: "float32", shape: red }, {
      dtype: "float32",
      shape: red,
    }];
  },
  Shape: (ins, node) => {
    const x = ins[0]?.shape;
    if (!x) return [{ dtype: "int64", shape: [""] }];
    const r = x.length;
    const clamp = (s: number): number => Math.min(Math.max(s < 0 ? s + r : s, 0), r);
    const e = x.slice(clamp(attrInt(node, "start", 0)), clamp(attrInt(node, "end", r)));
    return [{ dtype: "int64", shape: [e.length], elems: e }];
  },
  Size: (
    ins,
  ) => [{ dtype: "int64", shape: [], elems: ins[0]?.shape ? [prod(ins[0].shape)] : undefined }],
  Constant: (_ins, node) => {
    const v = constantValue(node);
    return [{ dtype: v?.dtype, shape: v?.shape, value: v }];
  },
  ConstantOfShape: (ins, node) => {
    const a = node.attrs.value;
    const dtype = a?.kind === "tensor" ? a.value.dtype : "float32";
    const e = elemsOf(ins[0]);
    const n = ins[0]?.shape?.[0];
    return [{ dtype, shape: e ?? (isNum(n) ? new Array(n).fill("") : undefined) }];
  },
  Gemm: (ins, node) => {
    const a = ins[0]?.shape, b = ins[1]?.shape;
    const ta = attrInt(node, "transA", 0), tb = attrInt(node, "transB", 0);
    const m = a ? a[ta ? 1 : 0] : "", k1 = a ? a[ta ? 0 : 1] : "";
    const n = b ? b[tb ? 0 : 1] : "", k2 = b ? b[tb ? 1 : 0] : "";
    if (isNum(k1) && isNum(k2) && k1 !== k2) {
      fail(node, `Gemm inner dimensions ${k1} and ${k2} differ`);
    }
    return [{ dtype: ins[0]?.dtype ?? ins[1]?.dtype, shape: [m ?? "", n ?? ""] }];
  },
  MatMul: (ins, node) => {
    const a = ins[0]?.shape, b = ins[1]?.shape;
    const dtype = ins[0]?.dtype;
    if (!a || !b) return [{ dtype }];
    if (a.length === 0 || b.length === 0) fail(node, "MatMul of a scalar");
    const a2 = a.length === 1 ? [1, a[0]] : a, b2 = b.length === 1 ? [b[0], 1] : b;
    const k1 = a2[a2.length - 1], k2 = b2[b2.length - 2];
    if (isNum(k1) && isNum(k2) && k1 !== k2) {
      fail(node, `MatMul inner dimensions ${k1} and ${k2} differ`);
    }
    const batch = bcast([a2.slice(0, -2), b2.slice(0, -2)], node)!;
    const out = [...batch];
    if (a.length > 1) out.push(a2[a2.length - 2]);
    if (b.length > 1) out.push(b2[b2.length - 1]);
    return [{ dtype, shape: out }];
  },
  Conv: (ins, node) => {
    const w = ins[1]?.shape;
    const x = ins[0]?.shape;
    const g = attrInt(node, "group", 1);
    if (x && w && isNum(x[1]) && isNum(w[1]) && x[1] !== w[1] * g) {
      fail(node, `input has ${x[1]} channels, weight expects ${w[1]} × group ${g}`);
    }
    return spatial(ins, node, attrInts(node, "kernel_shape") ?? w?.slice(2), w?.[0] ?? "", false);
  },
  ConvTranspose: (ins, node) => {
    const w = ins[1]?.shape;
    const g = attrInt(node, "group", 1);
    const c = w && isNum(w[1]) ? w[1] * g : "";
    return spatial(ins, node, attrInts(node, "kernel_shape") ?? w?.slice(2), c, true);
  },
  MaxPool: (ins, node) => {
    const r = spatial(ins, node, attrInts(node, "kernel_shape"), ins[0]?.shape?.[1] ?? "", false);
    return [r[0], { dtype: "int64", shape: r[0].shape }];
  },
  AveragePool: (ins, node) =>
    spatial(ins, node, attrInts(node, "kernel_shape"), ins[0]?.shape?.[1] ?? "", false),
  LpPool: (ins, node) =>
    spatial(ins, node, attrInts(node, "kernel_shape"), ins[0]?.shape?.[1] ?? "", false),
  GlobalAveragePool: (ins) => [{
    dtype: ins[0]?.dtype,
    shape: ins[0]?.shape?.map((d, i) => (i < 2 ? d : 1)),
  }],
  Reshape: (ins, node) => {
    const x = ins[0]?.shape;
    const t = elemsOf(ins[1]);
    const dtype = ins[0]?.dtype;
    if (!t) {
      const n = ins[1]?.shape?.[0];
      return [{ dtype, shape: isNum(n) ? new Array(n).fill("") : undefined }];
    }
    const allowzero = attrInt(node, "allowzero", 0);
    const out: Dim[] = t.map((d, i) => (d === 0 && !allowzero ? x?.[i] ?? "" : d));
    const neg = out.indexOf(-1);
    if (neg >= 0) {
      const known = out.filter((_, i) => i !== neg);
      if (x && x.every(isNum) && known.every(isNum)) {
        const r = computeReshape(x as number[], out as number[], 1);
        if (!r) fail(node, `cannot reshape [${x}] to [${t}]`);
        return [{ dtype, shape: r, elems: ins[0]?.elems }];
      }
      // Symbolic: cancel equal factors of input and target.
      const rest = x ? [...x] : undefined;
      let ok = !!rest;
      for (const d of known) {
        const j = rest?.indexOf(d) ?? -1;
        if (j >= 0) rest!.splice(j, 1);
        else if (d !== 1) ok = false;
      }
      out[neg] = ok ? prod(rest!) : "";
    }
    if (x && x.every(isNum) && out.every(isNum) && prod(x) !== prod(out)) {
      fail(node, `cannot reshape [${x}] to [${t}]`);
    }
    return [{ dtype, shape: out, elems: ins[0]?.elems }];
  },
  Flatten: (ins, node) => {
    const x = ins[0]?.shape;
    if (!x) return [{ dtype: ins[0]?.dtype }];
    let a = attrInt(node, "axis", 1);
    if (a < 0) a += x.length;
    return [{ dtype: ins[0]?.dtype, shape: [prod(x.slice(0, a)), prod(x.slice(a))] }];
  },
  Transpose: (ins, node) => {
    const x = ins[0]?.shape;
    if (!x) return [{ dtype: ins[0]?.dtype }];
    const perm = attrInts(node, "perm") ?? x.map((_, i) => x.length - 1 - i);
    if (perm.length !== x.length) fail(node, `perm [${perm}] does not match rank ${x.length}`);
    return [{ dtype: ins[0]?.dtype, shape: perm.map((p) => x[p]) }];
  },
  Concat: (ins, node) => {
    const present = ins.filter((f): f is ValueFacts => !!f);
    const dtype = present[0]?.dtype;
    const es = present.map(elemsOf);
    const elems = es.every((e) => e) ? es.flatMap((e) => e!) : undefined;
    if (present.some((f) => !f.shape)) {
      const r = present.find((f) => f.shape)?.shape?.length;
      return [{ dtype, shape: r !== undefined ? new Array(r).fill("") : undefined, elems }];
    }
    const r = present[0].shape!.length;
    const axis = normAxis(attrInt(node, "axis", 0), r);
    if (axis === undefined) fail(node, `axis out of range for rank ${r}`);
    const out = [...present[0].shape!];
    out[axis] = present.slice(1).reduce<Dim>((a, f) => {
      const d = f.shape![axis];
      return isNum(a) && isNum(d) ? a + d : "";
    }, out[axis]);
    for (const f of present.slice(1)) {
      if (f.shape!.length !== r) fail(node, "inputs of different ranks");
      f.shape!.forEach((d, i) => {
        if (i !== axis && isNum(d) && isNum(out[i]) && d !== out[i]) {
          fail(node, `dimension ${i} differs between inputs (${out[i]} vs ${d})`);
        }
        if (i !== axis && !isNum(out[i]) && isNum(d)) out[i] = d;
      });
    }
    return [{ dtype, shape: out, elems }];
  },
  Split: (ins, node) => {
    const x = ins[0]?.shape;
    const n = node.outputs.length;
    const dtype = ins[0]?.dtype;
    if (!x) return node.outputs.map(() => ({ dtype }));
    const axis = normAxis(attrInt(node, "axis", 0), x.length);
    if (axis === undefined) fail(node, "axis out of range");
    const sizes = node.inputs[1] ? numsOf(ins[1]) : attrInts(node, "split");
    const d = x[axis];
    return node.outputs.map((_, i) => {
      const s = [...x];
      if (sizes) s[axis] = sizes[i];
      else if (isNum(d)) {
        const chunk = Math.ceil(d / n);
        s[axis] = Math.max(0, Math.min(chunk, d - chunk * i));
      } else s[axis] = "";
      return { dtype, shape: s };
    });
  },
  Slice: (ins, node) => {
    const x = ins[0]?.shape;
    const dtype = ins[0]?.dtype;
    if (!x) return [{ dtype }];
    const useInputs = node.inputs.length > 1;
    const starts = useInputs ? numsOf(ins[1]) : attrInts(node, "starts");
    const ends = useInputs ? numsOf(ins[2]) : attrInts(node, "ends");
    const axes = useInputs ? (node.inputs[3] ? numsOf(ins[3]) : undefined) : attrInts(node, "axes");
    const steps = useInputs && node.inputs[4] ? numsOf(ins[4]) : undefined;
    if ((useInputs && node.inputs[3] && !axes) || (useInputs && node.inputs[4] && !steps)) {
      return [{ dtype, shape: x.map(() => "") }];
    }
    const out = [...x];
    if (!starts || !ends) {
      for (const a of axes ?? x.map((_, i) => i)) {
        const k = normAxis(a, x.length);
        if (k !== undefined) out[k] = "";
      }
      return [{ dtype, shape: out }];
    }
    const ax = axes ?? starts.map((_, i) => i);
    const e = ins[0]?.elems;
    let elems: Dim[] | undefined;
    ax.forEach((a0, i) => {
      const a = normAxis(a0, x.length);
      if (a === undefined) fail(node, `axis ${a0} out of range`);
      const st = steps?.[i] ?? 1;
      if (st === 0) fail(node, "slice step 0");
      const d = x[a];
      if (isNum(d)) {
        const [s, c] = sliceRange(d, starts[i], ends[i], st);
        out[a] = c;
        if (e && x.length === 1) elems = Array.from({ length: c }, (_, j) => e[s + j * st]);
      } else out[a] = "";
    });
    return [{ dtype, shape: out, elems }];
  },
  Gather: (ins, node) => {
    const x = ins[0]?.shape, idx = ins[1]?.shape;
    const dtype = ins[0]?.dtype;
    if (!x || !idx) return [{ dtype }];
    const axis = normAxis(attrInt(node, "axis", 0), x.length);
    if (axis === undefined) fail(node, `axis out of range for rank ${x.length}`);
    const shape = [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)];
    const e = ins[0]?.elems, iv = numsOf(ins[1]);
    let elems: Dim[] | undefined;
    if (e && iv && x.length === 1) elems = iv.map((i) => e[i < 0 ? i + e.length : i] ?? "");
    return [{ dtype, shape, elems }];
  },
  Squeeze: (ins, node) => {
    const x = ins[0]?.shape;
    const dtype = ins[0]?.dtype;
    if (!x) return [{ dtype }];
    const axes = node.inputs[1] ? numsOf(ins[1]) : attrInts(node, "axes");
    if (node.inputs[1] && !axes) return [{ dtype }];
    if (!axes) {
      if (x.some((d) => !isNum(d))) return [{ dtype }];
      return [{ dtype, shape: x.filter((d) => d !== 1), elems: ins[0]?.elems }];
    }
    const ax = axes.map((a) => normAxis(a, x.length));
    if (ax.some((a) => a === undefined)) fail(node, `axes [${axes}] out of range`);
    for (const a of ax) {
      if (isNum(x[a!]) && x[a!] !== 1) fail(node, `cannot squeeze dimension ${x[a!]}`);
    }
    return [{ dtype, shape: x.filter((_, i) => !ax.includes(i)), elems: ins[0]?.elems }];
  },
  Unsqueeze: (ins, node) => {
    const x = ins[0]?.shape;
    const dtype = ins[0]?.dtype;
    const axes = node.inputs[1] ? numsOf(ins[1]) : attrInts(node, "axes");
    if (!x || !axes) return [{ dtype }];
    const r = x.length + axes.length;
    const ax = axes.map((a) => normAxis(a, r));
    if (ax.some((a) => a === undefined)) fail(node, `axes [${axes}] out of range`);
    const out: Dim[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x[k++]);
    return [{ dtype, shape: out, elems: ins[0]?.elems }];
  },
  Resize: (ins, node) => {
    const x = ins[0]?.shape;
    const dtype = ins[0]?.dtype;
    if (!x) return [{ dtype }];
    const scalesIdx = node.inputs.length === 2 ? 1 : 2;
    const sizes = node.inputs[3] ? elemsOf(ins[3]) : undefined;
    const scalesF = node.inputs[scalesIdx] ? ins[scalesIdx]?.value : undefined;
    const scales = scalesF && scalesF.data.length > 0 ? nums(scalesF) : undefined;
    const axes = attrInts(node, "axes")?.map((a) => normAxis(a, x.length)!);
    const out: Dim[] = [...x];
    if (node.inputs[3] && sizes && sizes.length) {
      (axes ?? x.map((_, i) => i)).forEach((a, i) => (out[a] = sizes[i]));
    } else if (scales) {
      (axes ?? x.map((_, i) => i)).forEach((a, i) => {
        const d = x[a];
        out[a] = isNum(d) ? Math.floor(d * scales[i]) : scales[i] === 1 ? d : "";
      });
    } else return [{ dtype, shape: x.map((d, i) => (i < 2 ? d : "")) }];
    return [{ dtype, shape: out }];
  },
  Upsample: (ins, node) => RULES.Resize(ins, node),
  ReduceMean: reduce,
  ReduceSum: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceProd: reduce,
  ReduceL2: reduce,
  ArgMax: (ins, node) => {
    const x = ins[0]?.shape;
    if (!x) return [{ dtype: "int64" }];
    const a = normAxis(attrInt(node, "axis", 0), x.length)!;
    const keep = attrInt(node, "keepdims", 1);
    return [{
      dtype: "int64",
      shape: keep ? x.map((d, i) => (i === a ? 1 : d)) : x.filter((_, i) => i !== a),
    }];
  },
  Expand: (ins, node) => {
    const t = elemsOf(ins[1]);
    const dtype = ins[0]?.dtype;
    if (!t || !ins[0]?.shape) return [{ dtype }];
    return [{ dtype, shape: bcast([ins[0].shape, t], node) }];
  },
  Where: (
    ins,
    node,
  ) => [{ dtype: ins[1]?.dtype ?? ins[2]?.dtype, shape: bcast(ins.map((f) => f?.shape), node) }],
  TopK: (ins, node) => {
    const x = ins[0]?.shape;
    if (!x) return [{ dtype: ins[0]?.dtype }, { dtype: "int64" }];
    const axis = normAxis(attrInt(node, "axis", -1), x.length);
    if (axis === undefined) fail(node, "axis out of range");
    const k = node.inputs[1] ? elemsOf(ins[1])?.[0] ?? "" : attrInt(node, "k", 1);
    const shape = x.map((d, i) => (i === axis ? k : d));
    return [{ dtype: ins[0]?.dtype, shape }, { dtype: "int64", shape }];
  },
  Tile: (ins) => {
    const x = ins[0]?.shape, r = elemsOf(ins[1]);
    if (!x || !r) return [{ dtype: ins[0]?.dtype }];
    return [{
      dtype: ins[0]?.dtype,
      shape: x.map((d, i) => (isNum(d) && isNum(r[i]) ? d * r[i] : r[i] === 1 ? d : "")),
    }];
  },
  Pad: (ins, node) => {
    const x = ins[0]?.shape;
    const pads = node.inputs.length > 1 ? numsOf(ins[1]) : attrInts(node, "pads");
    if (!x || !pads || node.inputs[3]) return [{ dtype: ins[0]?.dtype, shape: x?.map(() => "") }];
    const r = x.length;
    return [{
      dtype: ins[0]?.dtype,
      shape: x.map((d, i) => (isNum(d) ? d + pads[i] + pads[i + r] : "")),
    }];
  },
  Range: (ins) => {
    const [s, l, d] = ins.map((f) => elemsOf(f)?.[0]);
    const n = isNum(s) && isNum(l) && isNum(d) && d !== 0
      ? Math.max(Math.ceil((l - s) / d), 0)
      : "";
    return [{ dtype: ins[0]?.dtype, shape: [n] }];
  },
  QuantizeLinear: (ins, node) => {
    const to = attrInt(node, "output_dtype", 0);
    return [{ dtype: to ? DTYPE_BY_CODE[to] : ins[2]?.dtype ?? "uint8", shape: ins[0]?.shape }];
  },
  DequantizeLinear: (ins) => [{ dtype: ins[1]?.dtype ?? "float32", shape: ins[0]?.shape }],
};
RULES.GlobalMaxPool = RULES.GlobalAveragePool;
RULES.GlobalLpPool = RULES.GlobalAveragePool;
for (
  const op of [
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Celu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Gelu",
    "Softplus",
    "Softsign",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    "Erf",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "InstanceNormalization",
    "LRN",
    "LpNormalization",
    "CumSum",
    "Mish",
    "ThresholdedRelu",
    "Dropout_",
    "Trilu",
  ]
) RULES[op] ??= same;
for (
  const op of ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "Min", "Max", "Sum", "Mean", "BitShift"]
) {
  RULES[op] = broadcasting();
}
for (
  const op of ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor"]
) {
  RULES[op] = broadcasting("bool");
}

/** Ops never evaluated at inference time (their result should stay a runtime op). */
const NO_EVAL = new Set(["QuantizeLinear", "DequantizeLinear", "RandomNormal", "RandomUniform"]);

/**
 * Infers the dtype and shape of every value of a graph, for the executor's
 * op set (elementwise with numpy broadcasting, Conv/ConvTranspose/pools,
 * Gemm/MatMul, shape manipulation, Resize, normalisations, reductions, TopK,
 * Q/DQ, ...). Unknown dimensions are `""`; unknown ops leave their outputs
 * unknown. Small integer tensors are propagated as (symbolic) values.
 *
 * @param graph the graph (not modified)
 * @param opts shapes of graph inputs to use instead of the declared ones
 * @returns the graph with `valueInfo` filled in, and every value's facts
 * @throws {LowbitError} `SHAPE_MISMATCH` naming the node when known shapes
 *   contradict each other; see {@link topoSort}
 *
 * @example
 * ```ts
 * import { inferShapes, type Graph } from "@lowbit/graph";
 * const g: Graph = { name: "g", valueInfo: new Map(),
 *   initializers: new Map([["w", { dtype: "float32", shape: [8, 4], data: new Float32Array(32) }]]),
 *   inputs: [{ name: "x", dtype: "float32", shape: ["batch", 8] }],
 *   outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "mm", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }] };
 * const { facts } = inferShapes(g);
 * if (facts.get("y")?.shape?.join() !== "batch,4") throw new Error();
 * ```
 */
export function inferShapes(graph: Graph, opts: InferShapesOptions = {}): InferredShapes {
  const facts = new Map<string, ValueFacts>();
  for (const v of graph.inputs) {
    facts.set(v.name, { dtype: v.dtype, shape: opts.inputShapes?.[v.name] ?? v.shape });
  }
  for (const [k, t] of graph.initializers) {
    facts.set(k, { dtype: t.dtype, shape: t.shape, value: t });
  }
  for (const node of topoSort(graph)) {
    const ins = node.inputs.map((n) => (n === "" ? undefined : facts.get(n)));
    let outs: ValueFacts[] | undefined;
    const present = node.inputs.filter((n) => n !== "");
    if (
      !NO_EVAL.has(node.op) && present.every((n) => facts.get(n)?.value) &&
      (present.length > 0 || node.op === "Constant")
    ) {
      const vals = evalConst(node, ins.map((f) => f?.value));
      if (vals) outs = vals.map((v) => ({ dtype: v.dtype, shape: v.shape, value: v }));
    }
    if (!outs && (node.domain === "" || node.domain === "ai.onnx")) {
      outs = RULES[node.op]?.(ins, node);
    }
    node.outputs.forEach((o, i) => {
      if (o === "") return;
      const f = outs?.[i];
      const declared = graph.valueInfo.get(o) ?? graph.outputs.find((v) => v.name === o);
      const fact: ValueFacts = { ...f };
      fact.dtype ??= declared?.dtype;
      if (!fact.shape && declared?.shape) fact.shape = declared.shape;
      else if (fact.shape && declared?.shape && declared.shape.length === fact.shape.length) {
        fact.shape = fact.shape.map((d, j) => (isNum(d) || d !== "" ? d : declared.shape![j]));
      }
      facts.set(o, fact);
    });
  }
  const valueInfo = new Map<string, ValueInfo>(graph.valueInfo);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  for (const n of graph.nodes) {
    for (const o of n.outputs) {
      const f = facts.get(o);
      if (o === "" || outputs.has(o) || !f?.dtype) continue;
      valueInfo.set(
        o,
        f.shape ? { name: o, dtype: f.dtype, shape: f.shape } : { name: o, dtype: f.dtype },
      );
    }
  }
  return { graph: { ...graph, valueInfo }, facts };
}
