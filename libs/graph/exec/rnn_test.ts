// LSTM / GRU / RNN against onnxruntime-web: directions, biases, initial states, peepholes,
// sequence lengths, clip, input_forget, linear_before_reset, activations with alpha / beta, and
// every output. Layout 1 (which onnxruntime does not run) against layout 0 on transposed data.

import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import type { Attr, TensorData } from "../ir.ts";
import { createExecutor } from "./executor.ts";
import { pattern } from "./_testing.ts";
import { graphOf, matchOrt, modelOf, node } from "./_ort_testing.ts";

const T = 5, B = 3, I = 4, H = 6;
const int = (value: number): Attr => ({ kind: "int", value });
const flt = (value: number): Attr => ({ kind: "float", value });
const str = (value: string): Attr => ({ kind: "string", value });
const floats = (value: number[]): Attr => ({ kind: "floats", value });
const strs = (value: string[]): Attr => ({ kind: "strings", value });
const lens: TensorData = { dtype: "int32", shape: [B], data: new Int32Array([5, 2, 4]) };

interface Case {
  label: string;
  attrs: Record<string, Attr>;
  /** Which optional inputs to give: B, sequence_lens, initial_h, initial_c, P. */
  with: ("B" | "seq" | "h0" | "c0" | "P")[];
}

async function check(op: "LSTM" | "GRU" | "RNN", c: Case): Promise<void> {
  const G = op === "LSTM" ? 4 : op === "GRU" ? 3 : 1;
  const dir = c.attrs.direction?.kind === "string" ? c.attrs.direction.value : "forward";
  const D = dir === "bidirectional" ? 2 : 1;
  const inputs: Record<string, TensorData> = {
    X: pattern([T, B, I], 1),
    W: pattern([D, G * H, I], 2, 0.6),
    R: pattern([D, G * H, H], 3, 0.6),
  };
  if (c.with.includes("B")) inputs.B = pattern([D, 2 * G * H], 4, 0.5);
  if (c.with.includes("seq")) inputs.seq = lens;
  if (c.with.includes("h0")) inputs.h0 = pattern([D, B, H], 5);
  if (c.with.includes("c0")) inputs.c0 = pattern([D, B, H], 6);
  if (c.with.includes("P")) inputs.P = pattern([D, 3 * H], 7);
  const names = ["X", "W", "R", "B", "seq", "h0", "c0", "P"].slice(0, op === "LSTM" ? 8 : 6)
    .map((n) => n in inputs ? n : "");
  while (names.at(-1) === "") names.pop();
  const outs = op === "LSTM" ? ["Y", "Y_h", "Y_c"] : ["Y", "Y_h"];
  const g = graphOf(
    op,
    [
      node(op, names, outs, { hidden_size: int(H), ...c.attrs }),
    ],
    inputs,
    outs,
  );
  await matchOrt(`${op} ${c.label}`, modelOf(g), inputs, 1e-4, 1e-5);
}

Deno.test("LSTM matches onnxruntime-web", async () => {
  const cases: Case[] = [
    { label: "forward, no optional inputs", attrs: {}, with: [] },
    {
      label: "reverse, bias, states",
      attrs: { direction: str("reverse") },
      with: ["B", "h0", "c0"],
    },
    {
      label: "bidirectional, everything",
      attrs: { direction: str("bidirectional") },
      with: ["B", "seq", "h0", "c0", "P"],
    },
    {
      label: "clip, input_forget",
      attrs: { clip: flt(0.5), input_forget: int(1) },
      with: ["B", "P"],
    },
    {
      label: "activations with alpha / beta",
      attrs: {
        direction: str("bidirectional"),
        activations: strs(["HardSigmoid", "LeakyRelu", "Tanh", "Sigmoid", "Tanh", "ScaledTanh"]),
        activation_alpha: floats([0.3, 0.2, 0.9]),
        activation_beta: floats([0.4, 1.1]),
      },
      with: ["B", "seq"],
    },
  ];
  for (const c of cases) await check("LSTM", c);
});

Deno.test("GRU matches onnxruntime-web", async () => {
  const cases: Case[] = [
    { label: "forward", attrs: {}, with: ["B"] },
    { label: "linear_before_reset", attrs: { linear_before_reset: int(1) }, with: ["B", "h0"] },
    {
      label: "bidirectional, lengths, states",
      attrs: { direction: str("bidirectional"), linear_before_reset: int(1) },
      with: ["B", "seq", "h0"],
    },
    {
      label: "reverse, clip, activations",
      attrs: {
        direction: str("reverse"),
        clip: flt(0.7),
        activations: strs(["Sigmoid", "Softsign"]),
      },
      with: ["B", "seq"],
    },
  ];
  for (const c of cases) await check("GRU", c);
});

Deno.test("RNN matches onnxruntime-web", async () => {
  const cases: Case[] = [
    { label: "forward", attrs: {}, with: [] },
    {
      label: "bidirectional Relu / Tanh, lengths, states",
      attrs: { direction: str("bidirectional"), activations: strs(["Relu", "Tanh"]) },
      with: ["B", "seq", "h0"],
    },
    { label: "reverse, clip", attrs: { direction: str("reverse"), clip: flt(0.3) }, with: ["B"] },
  ];
  for (const c of cases) await check("RNN", c);
});

/** [n0, n1, ...rest] → [n1, n0, ...rest]. */
function swap01(t: TensorData): TensorData {
  const [n0, n1, ...rest] = t.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array, out = new Float32Array(src.length);
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      out.set(src.subarray((i * n1 + j) * inner, (i * n1 + j + 1) * inner), (j * n0 + i) * inner);
    }
  }
  return { dtype: t.dtype, shape: [n1, n0, ...rest], data: out };
}

Deno.test("layout 1 (batch first) equals layout 0 on transposed inputs and outputs", async () => {
  const D = 2;
  const X = pattern([T, B, I], 1), W = pattern([D, 4 * H, I], 2), R = pattern([D, 4 * H, H], 3);
  const h0 = pattern([D, B, H], 5), c0 = pattern([D, B, H], 6);
  const run = async (layout: number, x: TensorData, h: TensorData, c: TensorData) => {
    const inputs = { X: x, W, R, h0: h, c0: c, seq: lens };
    const g = graphOf(
      "lstm",
      [
        node("LSTM", ["X", "W", "R", "", "seq", "h0", "c0"], ["Y", "Y_h", "Y_c"], {
          hidden_size: int(H),
          direction: str("bidirectional"),
          layout: int(layout),
        }),
      ],
      inputs,
      ["Y", "Y_h", "Y_c"],
    );
    return await createExecutor(g).run(inputs);
  };
  const l0 = await run(0, X, h0, c0);
  const l1 = await run(1, swap01(X), swap01(h0), swap01(c0));
  // Y: [T, D, B, H] vs [B, T, D, H]
  const y0 = l0.Y.data as Float32Array, y1 = l1.Y.data as Float32Array;
  assert.deepEqual(l1.Y.shape, [B, T, D, H]);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          assert.equal(y1[((b * T + t) * D + d) * H + j], y0[((t * D + d) * B + b) * H + j]);
        }
      }
    }
  }
  assert.deepEqual(swap01(l1.Y_h), l0.Y_h);
  assert.deepEqual(swap01(l1.Y_c), l0.Y_c);
});

Deno.test("bad RNN inputs give a LowbitError naming the node", async () => {
  const X = pattern([T, B, I], 1);
  const run = (W: TensorData, attrs: Record<string, Attr> = {}) => {
    const inputs = { X, W, R: pattern([1, 4 * H, H], 3) };
    const g = graphOf(
      "lstm",
      [node("LSTM", ["X", "W", "R"], ["Y"], { hidden_size: int(H), ...attrs })],
      inputs,
      [
        "Y",
      ],
    );
    return createExecutor(g).run(inputs);
  };
  await assert.rejects(
    run(pattern([1, 4 * H, I + 1], 2)),
    (e) => e instanceof LowbitError && e.code === "SHAPE_MISMATCH" && e.subject.node === "LSTM_Y",
  );
  await assert.rejects(
    run(pattern([1, 4 * H, I], 2), { activations: strs(["Sigmoid", "Nope", "Tanh"]) }),
    (e) => e instanceof LowbitError && /unknown activation 'Nope'/.test(e.message),
  );
  await assert.rejects(
    run(pattern([1, 4 * H, I], 2), { direction: str("sideways") }),
    (e) => e instanceof LowbitError && e.code === "INVALID_ARGUMENT",
  );
});

Deno.test("kernel-sized LSTM / GRU / RNN with constant weights match onnxruntime-web", async () => {
  // Large enough for the float kernels (not the small-product reference path), weights as
  // initializers (packed once and cached), bidirectional so both per-direction halves are used.
  const T2 = 4, B2 = 2, I2 = 48, H2 = 40, D = 2;
  const X = pattern([T2, B2, I2], 11);
  for (const [op, G] of [["LSTM", 4], ["GRU", 3], ["RNN", 1]] as const) {
    const init = {
      W: pattern([D, G * H2, I2], 12, 0.3),
      R: pattern([D, G * H2, H2], 13, 0.3),
      B: pattern([D, 2 * G * H2], 14, 0.3),
    };
    const outs = op === "LSTM" ? ["Y", "Y_h", "Y_c"] : ["Y", "Y_h"];
    const g = graphOf(
      op,
      [
        node(op, ["X", "W", "R", "B"], outs, {
          hidden_size: int(H2),
          direction: str("bidirectional"),
          ...(op === "GRU" ? { linear_before_reset: int(1) } : {}),
        }),
      ],
      { X },
      outs,
      init,
    );
    await matchOrt(`${op} kernel-sized`, modelOf(g), { X }, 1e-4, 1e-5);
  }
});
