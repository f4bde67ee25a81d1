/**
 * Standard-op ONNX for the log quantizers (`log2`, `logsqrt2`, `adalog`): in the runnable graph
 * of a lowbit file, each of their `FakeQuant` nodes becomes comparisons against the grid's
 * rounding thresholds, a count, and a lookup of the level —
 *
 * ```
 * a = Abs(x); k = ReduceSum(Cast(Less(Unsqueeze(a, -1), thresholds))); m = Gather(levels, k)
 * m = Where(And(Less(a, smallest / 2), Equal(k, L − 1)), 0, m)
 * y = Where(Less(x, 0), 0 (unsigned) | −m (signed), m) + 0
 * ```
 *
 * — the same decisions the quantizer's `fakeQuant` makes (its float64 thresholds rounded up to
 * float32, which decides every float32 input alike), so onnxruntime computes the same values.
 * Weights and uniform points are already DequantizeLinear / QuantizeLinear; any other
 * `FakeQuant` (twin-uniform, a noisy bias) has no standard form and is refused by name.
 * `lowbit vit-onnx IN.lowbit OUT.onnx` (with `--plugin vit`) writes such a file.
 *
 * @module
 */

import { LowbitError, type Registry } from "@lowbit/core";
import type { Graph, Model, Node, TensorData } from "@lowbit/graph";
import { logLevels } from "./log_quantizer.ts";

const LOG = new Set(["log2", "logsqrt2", "adalog"]);

/**
 * The smallest float32 ≥ `t` (`t` > 0): `a < t` and `a < ceilF32(t)` agree for every float32 `a`.
 *
 * @param t a positive number
 * @returns the float32 at or above it
 *
 * @example
 * ```ts
 * import { ceilF32 } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * assert.equal(ceilF32(0.5), 0.5);
 * assert.ok(ceilF32(0.1) >= 0.1 && Math.fround(ceilF32(0.1)) === ceilF32(0.1));
 * ```
 */
export function ceilF32(t: number): number {
  const f = Math.fround(t);
  if (f >= t) return f;
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, f);
  b.setUint32(0, b.getUint32(0) + 1);
  return b.getFloat32(0);
}

const f32 = (shape: number[], v: ArrayLike<number>): TensorData => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(v),
});

/**
 * Replaces every log-quantizer `FakeQuant` node of a runnable quantized model (`lowbitModel`)
 * by standard ONNX ops; any other `FakeQuant` node is an error naming its point.
 *
 * @param model the runnable model
 * @param registry where formats are resolved
 * @returns a model of standard ops only
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { createExecutor } from "@lowbit/graph";
 * import { logOnnxModel } from "@lowbit/vit";
 * import assert from "node:assert/strict";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const f = (v: number[]) => ({ dtype: "float32" as const, shape: [v.length], data: Float32Array.from(v) });
 * const model = { irVersion: 8, opsets: [{ domain: "", version: 17 }], producerName: "", producerVersion: "",
 *   metadata: {}, graph: { name: "g", valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float32" as const, shape: [3] }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   initializers: new Map<string, unknown>([["s", f([1])], ["z", { dtype: "int32" as const, shape: [1], data: Int32Array.of(0) }],
 *     ["b", f([2])], ["sg", f([0])]]),
 *   nodes: [{ name: "fq", op: "FakeQuant", domain: "lowbit", inputs: ["x", "s", "z", "b", "sg"], outputs: ["y"],
 *     attrs: { quantizer: { kind: "string", value: "log2" }, format: { kind: "string", value: "int4" },
 *       extra: { kind: "strings", value: ["base", "signed"] } } }] } };
 * const m = logOnnxModel(model as never, r);
 * assert.ok(m.graph.nodes.every((n) => n.domain === ""));
 * const { y } = await createExecutor(m).run({ x: f([0.3, 0.8, 1e-6]) });
 * assert.deepEqual([...y.data as Float32Array], [0.25, 1, 0]);
 * ```
 */
export function logOnnxModel(model: Model, registry: Registry): Model {
  const g = model.graph;
  const inits = new Map(g.initializers);
  const nodes: Node[] = [];
  const attr = (n: Node, k: string) => (n.attrs[k] as { value?: unknown } | undefined)?.value;
  for (const n of g.nodes) {
    if (n.op !== "FakeQuant" || n.domain !== "lowbit") {
      nodes.push(n);
      continue;
    }
    const q = String(attr(n, "quantizer"));
    const x = n.inputs[0];
    if (!LOG.has(q)) {
      throw new LowbitError(
        "UNSUPPORTED",
        `'${q}' has no standard ONNX form; write a .lowbit file and run it with lowbit run`,
        { node: n.name, tensor: x },
      );
    }
    const num = (name: string) => (inits.get(name)!.data as Float32Array)[0];
    const names = (attr(n, "extra") as string[] | undefined) ?? [];
    const ex = (k: string) => {
      const i = names.indexOf(k);
      return i < 0 ? undefined : num(n.inputs[3 + i]);
    };
    const bits = registry.formats.get(String(attr(n, "format"))).bits;
    const signed = (ex("signed") ?? 0) !== 0;
    const scale = num(n.inputs[1]), base = ex("base")!;
    const L = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
    const lv = logLevels({ scale, base, levels: L, signed });
    const th = Array.from({ length: L - 1 }, (_, k) => ceilF32(scale * base ** -(k + 0.5)));
    for (const v of n.inputs.slice(1)) inits.delete(v); // the point's scale, zero point, extras
    const p = `${n.name}.vit`;
    const c = (name: string, t: TensorData) => (inits.set(`${p}.${name}`, t), `${p}.${name}`);
    const TH = c("thresholds", f32([L - 1], th)), LV = c("levels", f32([L], lv));
    const LAST = c("half_smallest", f32([], [lv[L - 1] / 2]));
    const ZERO = c("zero", f32([], [0]));
    const AX = c("axis", { dtype: "int64", shape: [1], data: BigInt64Array.of(-1n) });
    const KL = c("last_index", {
      dtype: "int64",
      shape: [],
      data: BigInt64Array.of(BigInt(L - 1)),
    });
    const node = (op: string, inputs: string[], out: string, attrs: Node["attrs"] = {}) => {
      nodes.push({ name: `${p}.${out}`, op, domain: "", inputs, outputs: [`${p}.${out}`], attrs });
      return `${p}.${out}`;
    };
    const a = node("Abs", [x], "abs");
    const lt = node("Less", [node("Unsqueeze", [a, AX], "abs_1"), TH], "below");
    const cnt = node(
      "ReduceSum",
      [node("Cast", [lt], "below_f", { to: { kind: "int", value: 1 } }), AX],
      "k_f",
      {
        keepdims: { kind: "int", value: 0 },
      },
    );
    const k = node("Cast", [cnt], "k", { to: { kind: "int", value: 7 } });
    const m0 = node("Gather", [LV, k], "level");
    const zero = node(
      "And",
      [node("Less", [a, LAST], "tiny"), node("Equal", [k, KL], "at_last")],
      "to_zero",
    );
    const m = node("Where", [zero, ZERO, m0], "magnitude");
    const neg = node("Less", [x, ZERO], "negative");
    const y = node("Where", [neg, signed ? node("Neg", [m], "negated") : ZERO, m], "signed");
    // + 0 turns the −0 of a negative value rounded to 0 into +0, as the quantizer writes it
    nodes.push({
      name: `${p}.out`,
      op: "Add",
      domain: "",
      inputs: [y, ZERO],
      outputs: n.outputs,
      attrs: {},
    });
  }
  const graph: Graph = { ...g, nodes, initializers: inits };
  return { ...model, opsets: model.opsets.filter((o) => o.domain !== "lowbit"), graph };
}
