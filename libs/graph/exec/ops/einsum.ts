/**
 * Einsum: any equation (explicit or implicit output, ellipsis, repeated labels for diagonals,
 * broadcasting of size-1 ellipsis dimensions), evaluated by direct summation over every label
 * combination in float64 (integers exactly as numbers; int64 as bigint). Meant for the small
 * contractions models contain, not as a fast path for large MatMuls.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Node, TensorData, TensorStorage } from "../../ir.ts";
import { alloc, attrString, isBig, size, strides } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

function bad(node: Node, detail: string): LowbitError {
  return new LowbitError("INVALID_ARGUMENT", `Einsum: ${detail}`, { node: node.name });
}

/**
 * Operand terms and the output term as label lists. Ellipsis dimensions become the labels
 * "0" … "<ell-1>", right-aligned: an operand with fewer of them gets the last ones.
 */
function parse(node: Node, eq: string, ranks: number[]): { ins: string[][]; out: string[] } {
  const e = eq.replace(/\s+/g, "");
  const [lhs, rhs] = e.includes("->") ? e.split("->") : [e, undefined];
  const terms = lhs.split(",");
  if (terms.length !== ranks.length) {
    throw bad(node, `${terms.length} terms for ${ranks.length} inputs`);
  }
  const ellOf = (t: string, rank: number) =>
    t.includes("...") ? rank - t.replace("...", "").length : 0;
  const ell = Math.max(0, ...terms.map((t, k) => ellOf(t, ranks[k])));
  const ins = terms.map((t, k) => expand(node, t, ranks[k], ell, ellOf(t, ranks[k])));
  let out: string[];
  if (rhs !== undefined) out = expand(node, rhs, -1, ell, ell);
  else {
    const count = new Map<string, number>();
    for (const t of ins) for (const l of t) count.set(l, (count.get(l) ?? 0) + 1);
    const letters = [...count].filter(([l, c]) => c === 1 && !/^[0-9]+$/.test(l)).map(([l]) => l);
    out = [...Array.from({ length: ell }, (_, i) => String(i)), ...letters.sort()];
  }
  return { ins, out };
}

function expand(node: Node, term: string, rank: number, ell: number, n: number): string[] {
  const i = term.indexOf("...");
  const letters = [...term.replace("...", "")];
  if (letters.some((c) => !/[a-zA-Z]/.test(c))) throw bad(node, `bad term '${term}'`);
  if (rank >= 0 && letters.length + (i < 0 ? 0 : n) !== rank) {
    throw bad(node, `term '${term}' for rank ${rank}`);
  }
  if (i < 0) return letters;
  const labels = Array.from({ length: n }, (_, j) => String(ell - n + j));
  return [...letters.slice(0, i), ...labels, ...letters.slice(i)];
}

const einsum: OpImpl = (inputs, node) => {
  const ts = inputs.filter((t): t is TensorData => t !== undefined);
  const eq = attrString(node, "equation", "");
  const { ins, out } = parse(node, eq, ts.map((t) => t.shape.length));
  const dims = new Map<string, number>();
  ins.forEach((labels, k) => {
    labels.forEach((l, a) => {
      const d = ts[k].shape[a];
      const prev = dims.get(l);
      if (prev === undefined || prev === 1) dims.set(l, d);
      else if (d !== prev && d !== 1) throw bad(node, `label '${l}' has sizes ${prev} and ${d}`);
    });
  });
  for (const l of out) if (!dims.has(l)) throw bad(node, `output label '${l}' not in any input`);
  const all = [...out, ...[...dims.keys()].filter((l) => !out.includes(l))];
  const pos = new Map(all.map((l, i) => [l, i]));
  const full = all.map((l) => dims.get(l)!);
  const outShape = out.map((l) => dims.get(l)!);
  const outN = size(outShape);
  const big = ts.some((t) => isBig(t.dtype));
  const dtype = ts[0].dtype;
  if (dtype === "string" || ts.some((t) => t.dtype !== dtype)) {
    throw new LowbitError("UNSUPPORTED", `Einsum: dtypes ${ts.map((t) => t.dtype)}`, {
      node: node.name,
    });
  }
  // Per operand: its element stride for each label of `all` (0 where absent or broadcast).
  const opStrides = ts.map((t, k) => {
    const st = strides(t.shape);
    const r = new Array<number>(all.length).fill(0);
    ins[k].forEach((l, a) => {
      if (t.shape[a] !== 1) r[pos.get(l)!] += st[a];
    });
    return r;
  });
  const total = size(full);
  const inner = total / Math.max(1, outN);
  const acc = big ? new Array<bigint>(outN).fill(0n) : new Float64Array(outN);
  const idx = new Array<number>(all.length).fill(0);
  const offs = new Array<number>(ts.length).fill(0);
  for (let p = 0; p < total; p++) {
    if (big) {
      let v = 1n;
      for (let k = 0; k < ts.length; k++) v *= (ts[k].data as BigInt64Array)[offs[k]];
      (acc as bigint[])[Math.floor(p / inner)] += v;
    } else {
      let v = 1;
      for (let k = 0; k < ts.length; k++) v *= (ts[k].data as Float32Array)[offs[k]];
      (acc as Float64Array)[Math.floor(p / inner)] += v;
    }
    for (let a = all.length - 1; a >= 0; a--) {
      idx[a]++;
      for (let k = 0; k < ts.length; k++) offs[k] += opStrides[k][a];
      if (idx[a] < full[a]) break;
      for (let k = 0; k < ts.length; k++) offs[k] -= opStrides[k][a] * full[a];
      idx[a] = 0;
    }
  }
  const y = alloc(dtype, outN) as unknown as (number | bigint)[];
  for (let i = 0; i < outN; i++) {
    y[i] = big ? BigInt.asIntN(64, (acc as bigint[])[i]) : (acc as Float64Array)[i];
  }
  return [{ dtype, shape: outShape, data: y as unknown as TensorStorage }];
};

/**
 * The Einsum op.
 *
 * @example
 * ```ts
 * import { einsumOps } from "./einsum.ts";
 * const node = {
 *   name: "e", op: "Einsum", domain: "", inputs: ["a", "b"], outputs: ["y"],
 *   attrs: { equation: { kind: "string" as const, value: "ij,jk->ik" } },
 * };
 * const a = { dtype: "float32" as const, shape: [1, 2], data: new Float32Array([1, 2]) };
 * const b = { dtype: "float32" as const, shape: [2, 1], data: new Float32Array([3, 4]) };
 * const [y] = await einsumOps.Einsum([a, b], node, { opset: 12 });
 * if (y.data[0] !== 11) throw new Error();
 * ```
 */
export const einsumOps: OpTable<"Einsum"> = { Einsum: einsum };
