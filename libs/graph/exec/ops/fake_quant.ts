/**
 * `FakeQuant` (domain "lowbit"): a quantization point whose quantizer QDQ ONNX cannot express
 * (block formats' run-time scales, per-row dynamic scales, plugin quantizers such as log2), run
 * through the registered quantizer's `fakeQuant` — the same function the simulation uses, so a
 * lowbit file and the simulation give the same bits.
 *
 * Inputs: `x`, `scale`, `zero_point`, one float32 tensor per name in the `extra` attribute, then
 * one per name in `reads` (graph values the quantizer reads at run time, given to it in
 * `ctx.inputs`). Attributes: `quantizer`, `format`, `granularity` (JSON), `mode`, `dynamic`
 * (0 / 1), `extra` (names), `reads` (names), optional `quant_min` / `quant_max`.
 *
 * @module
 */

import { LowbitError, type QParams } from "@lowbit/core";
import type { Node, TensorData } from "../../ir.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { toF32 } from "../_tensor.ts";

function attr(node: Node, name: string): string | number | undefined {
  const a = node.attrs[name];
  if (a?.kind === "string" || a?.kind === "int" || a?.kind === "float") return a.value;
  return undefined;
}

function strings(node: Node, name: string): string[] {
  const a = node.attrs[name];
  return a?.kind === "strings" ? [...a.value] : [];
}

/**
 * The parameters a `FakeQuant` node carries.
 *
 * @param inputs the node's inputs (x, scale, zero point, extras)
 * @param node the node
 * @returns the quantizer name and its parameters
 *
 * @example
 * ```ts
 * import { fakeQuantParams } from "./fake_quant.ts";
 * const node = { name: "fq", op: "FakeQuant", domain: "lowbit", inputs: ["x", "s", "z"], outputs: ["y"],
 *   attrs: { quantizer: { kind: "string" as const, value: "uniform" },
 *     format: { kind: "string" as const, value: "int8" },
 *     granularity: { kind: "string" as const, value: '{"kind":"tensor"}' },
 *     mode: { kind: "string" as const, value: "symmetric" } } };
 * const s = { dtype: "float32" as const, shape: [1], data: new Float32Array([0.5]) };
 * const z = { dtype: "int32" as const, shape: [1], data: new Int32Array([0]) };
 * const { quantizer, qp } = fakeQuantParams([undefined, s, z], node);
 * if (quantizer !== "uniform" || qp.scale[0] !== 0.5) throw new Error();
 * ```
 */
export function fakeQuantParams(
  inputs: readonly (TensorData | undefined)[],
  node: Node,
): { quantizer: string; qp: QParams } {
  const subject = { node: node.name };
  const quantizer = attr(node, "quantizer"), format = attr(node, "format");
  const gran = attr(node, "granularity"), mode = attr(node, "mode");
  if (
    typeof quantizer !== "string" || typeof format !== "string" || typeof gran !== "string" ||
    (mode !== "symmetric" && mode !== "affine")
  ) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "FakeQuant needs string attributes quantizer, format, granularity and mode",
      subject,
    );
  }
  let granularity: QParams["granularity"];
  try {
    granularity = JSON.parse(gran);
  } catch {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      `FakeQuant granularity is not JSON: ${gran}`,
      subject,
    );
  }
  const [, s, z, ...rest] = inputs;
  if (!s || !z) {
    throw new LowbitError("INVALID_ARGUMENT", "FakeQuant needs scale and zero point", subject);
  }
  const names = strings(node, "extra");
  const extra: Record<string, number[]> = {};
  names.forEach((k, i) => {
    const t = rest[i];
    if (!t) throw new LowbitError("INVALID_ARGUMENT", `FakeQuant extra '${k}' missing`, subject);
    extra[k] = Array.from(toF32(t));
  });
  const reads = strings(node, "reads");
  const qmin = attr(node, "quant_min"), qmax = attr(node, "quant_max");
  return {
    quantizer,
    qp: {
      format,
      granularity,
      mode,
      scale: toF32(s),
      zeroPoint: Int32Array.from(toF32(z)),
      ...(names.length ? { extra } : {}),
      ...(attr(node, "dynamic") === 1 ? { dynamic: true } : {}),
      ...(reads.length ? { reads } : {}),
      ...(typeof qmin === "number" ? { quantMin: qmin } : {}),
      ...(typeof qmax === "number" ? { quantMax: qmax } : {}),
    },
  };
}

const fakeQuant: OpImpl = (inputs, node, ctx: OpContext) => {
  const x = inputs[0];
  if (!x || x.dtype !== "float32") {
    throw new LowbitError("UNSUPPORTED", "FakeQuant takes a float32 input", { node: node.name });
  }
  const { quantizer, qp } = fakeQuantParams(inputs, node);
  if (!ctx.quantizers) {
    throw new LowbitError("INTERNAL", "FakeQuant needs the executor's quantizers", {
      node: node.name,
    });
  }
  const q = ctx.quantizers.get(quantizer);
  // The values the quantizer reads at run time come after the extras.
  const offset = 3 + Object.keys(qp.extra ?? {}).length;
  const read: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  (qp.reads ?? []).forEach((name, i) => {
    const t = inputs[offset + i];
    if (!t) {
      throw new LowbitError("INVALID_ARGUMENT", `FakeQuant reads '${name}', which is missing`, {
        node: node.name,
      });
    }
    read[name] = { shape: t.shape, data: toF32(t) };
  });
  // The result may go to recycled storage (a fresh large array per run costs page faults and
  // resident memory); handed back when the quantizer returned its own array.
  const n = (x.data as Float32Array).length;
  const out = ctx.allocF32?.(n);
  const y = q.fakeQuant({ shape: x.shape, data: x.data as Float32Array }, qp, {
    batch: 0,
    tags: {},
    inputs: read,
  }, out);
  if (out !== undefined && y.data !== out) ctx.releaseF32?.(out);
  return [{ dtype: "float32", shape: [...x.shape], data: y.data }];
};

/** The `FakeQuant` op (domain "lowbit"). */
export const fakeQuantOps: { FakeQuant: OpImpl } = { FakeQuant: fakeQuant };
