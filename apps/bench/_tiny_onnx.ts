/**
 * Hand-encoded ONNX models of a single MatMul / MatMulInteger node with the weight as an
 * initializer (a few lines of protobuf, so the benchmark depends on no ONNX writer).
 *
 * @module
 */

/** ONNX TensorProto data types used here. */
const DT = { float32: 1, uint8: 2, int8: 3 } as const;

/** Element type of a tiny-model tensor. */
export type TinyType = keyof typeof DT;

/** A protobuf writer: chunks, so that a 64 MB weight is never copied byte by byte. */
class Pb {
  chunks: Uint8Array[] = [];
  length = 0;
  private push(c: Uint8Array): this {
    this.chunks.push(c);
    this.length += c.length;
    return this;
  }
  varint(v: number): this {
    const out: number[] = [];
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x) b |= 0x80;
      out.push(b);
    } while (x);
    return this.push(new Uint8Array(out));
  }
  int(field: number, v: number): this {
    return this.varint(field << 3).varint(v);
  }
  raw(field: number, data: Uint8Array): this {
    return this.varint((field << 3) | 2).varint(data.length).push(data);
  }
  str(field: number, s: string): this {
    return this.raw(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    this.varint((field << 3) | 2).varint(m.length);
    for (const c of m.chunks) this.push(c);
    return this;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function valueInfo(name: string, type: TinyType, dims: number[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, new Pb().int(1, d));
  const tensor = new Pb().int(1, DT[type]).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensor));
}

/** Description of the single-node model. */
export interface TinyMatMul {
  /** `"MatMul"` (f32) or `"MatMulInteger"` (int32 output). */
  op: "MatMul" | "MatMulInteger";
  /** Activation type. */
  aType: TinyType;
  /** Weight type. */
  bType: TinyType;
  /** Rows of A. */
  M: number;
  /** Reduction length. */
  K: number;
  /** Columns of B. */
  N: number;
  /** Weight bytes, K×N row-major (Float32Array for f32). */
  b: Uint8Array | Int8Array | Float32Array;
}

/**
 * Encodes a one-node model `Y = op(A, B)` with A an input [M, K] and B an initializer [K, N].
 *
 * @param m the node description
 * @returns the ONNX model bytes
 *
 * @example
 * ```ts
 * import { tinyMatMulModel } from "./_tiny_onnx.ts";
 * const bytes = tinyMatMulModel({
 *   op: "MatMul", aType: "float32", bType: "float32", M: 1, K: 2, N: 1,
 *   b: new Float32Array([1, 2]),
 * });
 * if (bytes.length < 50) throw new Error();
 * ```
 */
export function tinyMatMulModel(m: TinyMatMul): Uint8Array {
  const outType = m.op === "MatMul" ? 1 : 6; // FLOAT or INT32
  const node = new Pb().str(1, "A").str(1, "B").str(2, "Y").str(3, "mm").str(4, m.op);
  const init = new Pb().int(1, m.K).int(1, m.N).int(2, DT[m.bType]).str(8, "B").raw(
    9,
    new Uint8Array(m.b.buffer, m.b.byteOffset, m.b.byteLength),
  );
  const yShape = new Pb().msg(1, new Pb().int(1, m.M)).msg(1, new Pb().int(1, m.N));
  const y = new Pb().str(1, "Y").msg(
    2,
    new Pb().msg(1, new Pb().int(1, outType).msg(2, yShape)),
  );
  const graph = new Pb().msg(1, node).str(2, "tiny").msg(5, init)
    .msg(11, valueInfo("A", m.aType, [m.M, m.K])).msg(12, y);
  const model = new Pb().int(1, 8).str(2, "lowbit-bench").msg(7, graph)
    .msg(8, new Pb().str(1, "").int(2, 13));
  return model.bytes();
}
