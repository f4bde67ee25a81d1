/**
 * Text ops: TfIdfVectorizer on integer token ids (n-grams with skips, TF / IDF / TFIDF
 * weighting), counted as onnxruntime does: unigrams once, longer n-grams once per skip
 * distance (string tokens are not supported); StringNormalizer (stopwords, case change).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { attrFloats, attrInt, attrInts, attrString, toNumbers } from "../_tensor.ts";
import type { OpImpl, OpTable } from "./types.ts";

const tfIdf: OpImpl = (inputs, node) => {
  const xt = inputs[0];
  if (xt === undefined || (xt.dtype !== "int32" && xt.dtype !== "int64")) {
    throw new LowbitError(
      "UNSUPPORTED",
      `TfIdfVectorizer: input must be int32 / int64 token ids, got ${xt?.dtype ?? "nothing"}`,
      { node: node.name },
    );
  }
  const minN = attrInt(node, "min_gram_length", 1), maxN = attrInt(node, "max_gram_length", 1);
  const maxSkip = attrInt(node, "max_skip_count", 0);
  const mode = attrString(node, "mode", "TF");
  const counts = attrInts(node, "ngram_counts") ?? [];
  const indexes = attrInts(node, "ngram_indexes") ?? [];
  const pool = attrInts(node, "pool_int64s");
  if (pool === undefined || !["TF", "IDF", "TFIDF"].includes(mode) || minN < 1 || maxN < minN) {
    throw new LowbitError(
      "UNSUPPORTED",
      "TfIdfVectorizer: needs pool_int64s, mode TF / IDF / TFIDF and 1 <= min <= max gram length",
      { node: node.name },
    );
  }
  const weights = attrFloats(node, "weights");
  // Pool n-grams → output column.
  const column = new Map<string, number>();
  let id = 0;
  counts.forEach((start, i) => {
    const n = i + 1;
    const end = i + 1 < counts.length ? counts[i + 1] : pool.length;
    for (let p = start; p + n <= end; p += n) column.set(pool.slice(p, p + n).join(","), id++);
  });
  const width = Math.max(0, ...indexes) + 1;
  const x = toNumbers(xt);
  const rows = xt.shape.length === 2 ? xt.shape[0] : 1;
  const len = xt.shape.length === 2 ? xt.shape[1] : x.length;
  const freq = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * len, (r + 1) * len);
    let startN = minN;
    for (let skip = 1; skip <= maxSkip + 1; skip++) {
      for (let s = 0; s < len; s++) {
        if (s + skip * (startN - 1) >= len) break;
        const gram: number[] = [];
        for (let n = 1; n <= maxN && s + (n - 1) * skip < len; n++) {
          gram.push(row[s + (n - 1) * skip]);
          const c = column.get(gram.join(","));
          if (c !== undefined && n >= startN) freq[r * width + indexes[c]]++;
        }
      }
      // Unigrams do not depend on the skip distance: counted in the first pass only.
      if (startN === 1 && ++startN > maxN) break;
    }
  }
  const y = new Float32Array(freq.length);
  for (let i = 0; i < y.length; i++) {
    const w = weights ? weights[indexes.indexOf(i % width)] ?? 1 : 1;
    y[i] = mode === "TF" ? freq[i] : mode === "IDF" ? (freq[i] > 0 ? w : 0) : freq[i] * w;
  }
  const shape = xt.shape.length === 2 ? [rows, width] : [width];
  return [{ dtype: "float32", shape, data: y }];
};

const stringNormalizer: OpImpl = (inputs, node) => {
  const xt = inputs[0];
  if (
    xt === undefined || xt.dtype !== "string" || xt.shape.length > 2 ||
    (xt.shape.length === 2 && xt.shape[0] !== 1)
  ) {
    throw new LowbitError("UNSUPPORTED", "StringNormalizer: input must be string [C] or [1, C]", {
      node: node.name,
    });
  }
  const action = attrString(node, "case_change_action", "NONE");
  const sensitive = attrInt(node, "is_case_sensitive", 0) === 1;
  const a = node.attrs.stopwords;
  const stop = a?.kind === "strings" ? a.value : [];
  const key = (w: string) => (sensitive ? w : w.toLowerCase());
  const stops = new Set(stop.map(key));
  const kept = (xt.data as string[]).filter((w) => !stops.has(key(w)))
    .map((w) => (action === "LOWER" ? w.toLowerCase() : action === "UPPER" ? w.toUpperCase() : w));
  // Everything filtered out: one empty string (onnxruntime's and ONNX's reference behaviour).
  const out = kept.length > 0 ? kept : [""];
  const shape = xt.shape.length === 2 ? [1, out.length] : [out.length];
  return [{ dtype: "string", shape, data: out }];
};

/**
 * The text ops, by name.
 *
 * @example
 * ```ts
 * import { textOps } from "./text.ts";
 * const node = { name: "t", op: "TfIdfVectorizer", domain: "", inputs: ["x"], outputs: ["y"], attrs: {
 *   max_gram_length: { kind: "int" as const, value: 2 }, mode: { kind: "string" as const, value: "TF" },
 *   ngram_counts: { kind: "ints" as const, value: [0, 2] },
 *   ngram_indexes: { kind: "ints" as const, value: [0, 1, 2] },
 *   pool_int64s: { kind: "ints" as const, value: [5, 6, 5, 6] },
 * } };
 * const x = { dtype: "int32" as const, shape: [4], data: new Int32Array([5, 6, 5, 6]) };
 * const [y] = await textOps.TfIdfVectorizer([x], node, { opset: 9 });
 * if (y.data.join() !== "2,2,2") throw new Error(y.data.join()); // "5", "6", "5 6"
 * ```
 */
export const textOps: OpTable<"TfIdfVectorizer" | "StringNormalizer"> = {
  TfIdfVectorizer: tfIdf,
  StringNormalizer: stringNormalizer,
};
