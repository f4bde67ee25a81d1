import assert from "node:assert/strict";
import { createRng, LowbitError } from "@lowbit/core";
import type { Attr, Node, TensorData } from "../ir.ts";
import { FORWARD_ONLY_OPS, isDifferentiableOp, type OpName, OPS, type T64 } from "./ops.ts";
import { backward64, forward64 } from "./tape.ts";
import { supportedOps } from "../exec/ops/table.ts";

// *** helpers ***

const rng = createRng(1234);

function rand(shape: number[], lo = -1, hi = 1): T64 {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * rng.next();
  return { shape, data };
}

/** Values in ±[0.2, 1]: away from the kinks of Relu / MaxPool ties. */
function randAway(shape: number[]): T64 {
  const t = rand(shape, 0.2, 1);
  for (let i = 0; i < t.data.length; i++) if (rng.next() < 0.5) t.data[i] = -t.data[i];
  return t;
}

function consts(values: number[]): T64 {
  return { shape: [values.length], data: Float64Array.from(values) };
}

const int = (value: number): Attr => ({ kind: "int", value });
const ints = (value: number[]): Attr => ({ kind: "ints", value });
const float = (value: number): Attr => ({ kind: "float", value });
const str = (value: string): Attr => ({ kind: "string", value });

function node(op: string, nIn: number, attrs: Record<string, Attr> = {}, nOut = 1): Node {
  return {
    name: `${op}_test`,
    op,
    domain: "",
    inputs: Array.from({ length: nIn }, (_, i) => `i${i}`),
    outputs: Array.from({ length: nOut }, (_, i) => `o${i}`),
    attrs,
  };
}

/**
 * Checks the op's backward against central finite differences of the scalar
 * L = Σ_o ⟨r_o, y_o⟩ (random r) for every element of the inputs in `diff`.
 */
function gradCheck(n: Node, inputs: (T64 | undefined)[], diff: number[]): void {
  const op = OPS[n.op as OpName];
  const outs = op.forward(inputs, n);
  const r = outs.map((o) => rand([...o.shape]));
  const scalar = (ins: (T64 | undefined)[]): number => {
    const ys = op.forward(ins, n);
    let s = 0;
    ys.forEach((y, k) => y.data.forEach((v, i) => (s += v * r[k].data[i])));
    return s;
  };
  const grads = op.backward(r, inputs, outs, n);
  const h = 1e-6;
  for (const k of diff) {
    const x = inputs[k]!;
    const g = grads[k];
    assert.ok(g, `${n.op}: no gradient for input ${k}`);
    assert.deepEqual(g.shape, x.shape, `${n.op}: gradient shape of input ${k}`);
    for (let i = 0; i < x.data.length; i++) {
      const save = x.data[i];
      x.data[i] = save + h;
      const up = scalar(inputs);
      x.data[i] = save - h;
      const dn = scalar(inputs);
      x.data[i] = save;
      const fd = (up - dn) / (2 * h);
      const err = Math.abs(fd - g.data[i]);
      assert.ok(
        err <= 1e-6 * (1 + Math.abs(fd)),
        `${n.op}: input ${k}[${i}] analytic ${g.data[i]} vs finite difference ${fd}`,
      );
    }
  }
}

// *** cases: one or more per op ***

const cases: [string, () => void][] = [
  ["Add broadcasts", () => gradCheck(node("Add", 2), [rand([2, 3]), rand([3])], [0, 1])],
  [
    "Sub broadcasts both ways",
    () => gradCheck(node("Sub", 2), [rand([2, 1, 3]), rand([4, 1])], [0, 1]),
  ],
  ["Mul", () => gradCheck(node("Mul", 2), [rand([2, 3]), rand([2, 1])], [0, 1])],
  ["Div", () => gradCheck(node("Div", 2), [rand([2, 3]), rand([3], 0.5, 2)], [0, 1])],
  ["Pow", () => gradCheck(node("Pow", 2), [rand([2, 3], 0.5, 2), rand([3], -2, 3)], [0, 1])],
  ["Neg", () => gradCheck(node("Neg", 1), [rand([5])], [0])],
  ["Sqrt", () => gradCheck(node("Sqrt", 1), [rand([5], 0.2, 3)], [0])],
  ["Exp", () => gradCheck(node("Exp", 1), [rand([5])], [0])],
  ["Relu", () => gradCheck(node("Relu", 1), [randAway([6])], [0])],
  ["Sigmoid", () => gradCheck(node("Sigmoid", 1), [rand([5], -4, 4)], [0])],
  ["Tanh", () => gradCheck(node("Tanh", 1), [rand([5], -3, 3)], [0])],
  ["Erf", () => gradCheck(node("Erf", 1), [rand([7], -3, 3)], [0])],
  ["Gelu exact", () => gradCheck(node("Gelu", 1), [rand([7], -3, 3)], [0])],
  [
    "Gelu tanh",
    () => gradCheck(node("Gelu", 1, { approximate: str("tanh") }), [rand([7], -3, 3)], [0]),
  ],
  ["Softmax", () => gradCheck(node("Softmax", 1, { axis: int(1) }), [rand([2, 3, 4])], [0])],
  ["LogSoftmax", () => gradCheck(node("LogSoftmax", 1), [rand([3, 4])], [0])],
  ["MatMul batched", () => gradCheck(node("MatMul", 2), [rand([2, 3, 4]), rand([4, 5])], [0, 1])],
  [
    "MatMul batch broadcast",
    () => gradCheck(node("MatMul", 2), [rand([3, 4]), rand([2, 4, 5])], [0, 1]),
  ],
  ["MatMul vector × matrix", () => gradCheck(node("MatMul", 2), [rand([4]), rand([4, 5])], [0, 1])],
  ["MatMul matrix × vector", () => gradCheck(node("MatMul", 2), [rand([3, 4]), rand([4])], [0, 1])],
  [
    "Gemm transposes, alpha, beta",
    () =>
      gradCheck(
        node("Gemm", 3, { transA: int(1), transB: int(1), alpha: float(0.7), beta: float(1.3) }),
        [rand([4, 3]), rand([5, 4]), rand([5])],
        [0, 1, 2],
      ),
  ],
  [
    "Conv groups, stride, pads, dilation",
    () =>
      gradCheck(
        node("Conv", 3, {
          group: int(2),
          strides: ints([2, 1]),
          pads: ints([1, 0, 1, 2]),
          dilations: ints([1, 2]),
          kernel_shape: ints([3, 2]),
        }),
        [rand([2, 4, 5, 6]), rand([6, 2, 3, 2]), rand([6])],
        [0, 1, 2],
      ),
  ],
  [
    "Conv depthwise",
    () =>
      gradCheck(node("Conv", 2, { group: int(3), pads: ints([1, 1, 1, 1]) }), [
        rand([1, 3, 4, 4]),
        rand([3, 1, 3, 3]),
      ], [0, 1]),
  ],
  [
    "MaxPool",
    () =>
      gradCheck(
        node("MaxPool", 1, {
          kernel_shape: ints([2, 2]),
          strides: ints([2, 2]),
          pads: ints([0, 0, 1, 1]),
        }),
        [rand([2, 2, 5, 5])],
        [0],
      ),
  ],
  [
    "AveragePool excluding pads",
    () =>
      gradCheck(
        node("AveragePool", 1, { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
        [rand([1, 2, 4, 4])],
        [0],
      ),
  ],
  [
    "AveragePool including pads",
    () =>
      gradCheck(
        node("AveragePool", 1, {
          kernel_shape: ints([2, 2]),
          strides: ints([2, 2]),
          pads: ints([1, 1, 1, 1]),
          count_include_pad: int(1),
        }),
        [rand([1, 2, 4, 4])],
        [0],
      ),
  ],
  ["GlobalAveragePool", () => gradCheck(node("GlobalAveragePool", 1), [rand([2, 3, 4, 4])], [0])],
  [
    "BatchNormalization",
    () =>
      gradCheck(
        node("BatchNormalization", 5, { epsilon: float(1e-3) }),
        [rand([2, 3, 2, 2]), rand([3]), rand([3]), rand([3]), rand([3], 0.5, 2)],
        [0, 1, 2, 3, 4],
      ),
  ],
  [
    "LayerNormalization last axis",
    () =>
      gradCheck(node("LayerNormalization", 3), [rand([2, 3, 5]), rand([5]), rand([5])], [0, 1, 2]),
  ],
  [
    "LayerNormalization from axis 1",
    () =>
      gradCheck(
        node("LayerNormalization", 2, { axis: int(1) }),
        [rand([2, 3, 4]), rand([3, 4])],
        [0, 1],
      ),
  ],
  ["Reshape", () => gradCheck(node("Reshape", 2), [rand([2, 3, 4]), consts([0, -1])], [0])],
  ["Flatten", () => gradCheck(node("Flatten", 1, { axis: int(2) }), [rand([2, 3, 4])], [0])],
  [
    "Transpose",
    () => gradCheck(node("Transpose", 1, { perm: ints([2, 0, 1]) }), [rand([2, 3, 4])], [0]),
  ],
  ["Squeeze", () => gradCheck(node("Squeeze", 2), [rand([2, 1, 3]), consts([1])], [0])],
  ["Unsqueeze", () => gradCheck(node("Unsqueeze", 2), [rand([2, 3]), consts([0, -1])], [0])],
  [
    "Concat",
    () =>
      gradCheck(node("Concat", 3, { axis: int(-1) }), [rand([2, 1]), rand([2, 3]), rand([2, 2])], [
        0,
        1,
        2,
      ]),
  ],
  [
    "Split",
    () => gradCheck(node("Split", 2, { axis: int(1) }, 2), [rand([2, 5]), consts([2, 3])], [0]),
  ],
  ["Split equal", () => gradCheck(node("Split", 1, {}, 3), [rand([6, 2])], [0])],
  [
    "Slice with negative step",
    () =>
      gradCheck(node("Slice", 5), [
        rand([4, 5]),
        consts([3, 1]),
        consts([0, 5]),
        consts([0, 1]),
        consts([-1, 2]),
      ], [0]),
  ],
  [
    "Gather",
    () =>
      gradCheck(node("Gather", 2, { axis: int(1) }), [rand([2, 4, 3]), consts([3, -4, 3])], [0]),
  ],
  [
    "ReduceMean",
    () => gradCheck(node("ReduceMean", 1, { axes: ints([-1]) }), [rand([2, 3, 4])], [0]),
  ],
  [
    "ReduceSum axes input, no keepdims",
    () =>
      gradCheck(node("ReduceSum", 2, { keepdims: int(0) }), [rand([2, 3, 4]), consts([0, 2])], [0]),
  ],
  ["Identity", () => gradCheck(node("Identity", 1), [rand([3])], [0])],
  ["Dropout", () => gradCheck(node("Dropout", 1), [rand([3])], [0])],
  ["Cast", () => gradCheck(node("Cast", 1, { to: int(1) }), [rand([3])], [0])],
];

for (const [name, run] of cases) {
  Deno.test(`OPS backward matches central differences: ${name}`, run);
}

Deno.test("OPS covers every differentiable op with a gradient test", () => {
  const tested = new Set(cases.map(([n]) => n.split(" ")[0]));
  const nonDiff = ["Constant", "Shape"];
  for (const op of Object.keys(OPS)) {
    if (!nonDiff.includes(op)) assert.ok(tested.has(op), `no gradient test for ${op}`);
  }
});

Deno.test("OPS forward: Shape, Constant, Slice on shapes", () => {
  const s = OPS.Shape.forward([rand([2, 3, 4])], node("Shape", 1, { start: int(1) }));
  assert.deepEqual([...s[0].data], [3, 4]);
  const c = OPS.Constant.forward([], node("Constant", 0, { value_ints: ints([1, 2]) }));
  assert.deepEqual([...c[0].data], [1, 2]);
  const sl = OPS.Slice.forward([consts([5, 6, 7]), consts([0]), consts([-1])], node("Slice", 3));
  assert.deepEqual([...sl[0].data], [5, 6]);
});

Deno.test("isDifferentiableOp() knows the table", () => {
  assert.equal(isDifferentiableOp("Gemm"), true);
  assert.equal(isDifferentiableOp("Loop"), false);
});

Deno.test("every executor op is differentiable or declared forward-only", () => {
  const missing = supportedOps().filter((o) => !isDifferentiableOp(o) && !FORWARD_ONLY_OPS.has(o));
  assert.deepEqual(missing, [], "declare them in FORWARD_ONLY_OPS or give them a gradient");
  const both = [...FORWARD_ONLY_OPS].filter((o) => isDifferentiableOp(o));
  assert.deepEqual(both, []);
});

Deno.test("forward64() runs a forward-only op (Pad) and backward64() names it", () => {
  const g = {
    name: "g",
    inputs: [{ name: "x", dtype: "float32" as const }],
    outputs: [{ name: "y", dtype: "float32" as const }],
    nodes: [
      { name: "pad", op: "Pad", domain: "", inputs: ["x", "p"], outputs: ["xp"], attrs: {} },
      { name: "m", op: "Mul", domain: "", inputs: ["xp", "w"], outputs: ["y"], attrs: {} },
    ],
    initializers: new Map<string, TensorData>([
      ["p", { dtype: "int64", shape: [2], data: BigInt64Array.of(1n, 0n) }],
      ["w", { dtype: "float32", shape: [1], data: Float32Array.of(2) }],
    ]),
    valueInfo: new Map(),
  };
  const tape = forward64(g, { x: { shape: [2], data: Float64Array.of(3, 4) } });
  assert.deepEqual([...tape.values.get("y")!.data], [0, 6, 8]);
  // d y / d w flows through Mul only: fine.
  const gw = backward64(tape, new Map([["y", { shape: [3], data: Float64Array.of(1, 1, 1) }]]), [
    "w",
  ]);
  assert.deepEqual([...gw.get("w")!.data], [7]); // 0 + 3 + 4
  // d y / d x must cross the Pad: an error naming it.
  assert.throws(
    () => backward64(tape, new Map([["y", { shape: [3], data: Float64Array.of(1, 1, 1) }]]), ["x"]),
    (e: unknown) =>
      e instanceof LowbitError && e.subject.node === "pad" && /no gradient/.test(e.message),
  );
});
