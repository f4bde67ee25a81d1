/**
 * The graph IR: ONNX-shaped, plain data. Readers (ONNX, safetensors) produce it,
 * passes rewrite it, the executor runs it, writers serialise it.
 *
 * @module
 */

/** Element types, named as in ONNX (lower-case). */
export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool"
  | "string"
  | "float8e4m3fn"
  | "float8e5m2"
  | "int4"
  | "uint4";

/**
 * Storage of a tensor's elements. float32 → Float32Array, float64 → Float64Array,
 * int8 → Int8Array, uint8/bool → Uint8Array, int16 → Int16Array, uint16/float16/bfloat16 →
 * Uint16Array (raw bits), int32 → Int32Array, uint32 → Uint32Array, int64 → BigInt64Array,
 * uint64 → BigUint64Array, float8* → Uint8Array (raw codes), int4/uint4 → Int8Array/Uint8Array
 * (one element per entry, unpacked), string → string[].
 */
export type TensorStorage =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/** A typed, shaped tensor value (initializer, constant, runtime value). */
export interface TensorData {
  /** Element type. */
  dtype: DType;
  /** Concrete dimensions. */
  shape: number[];
  /** Row-major elements; see {@link TensorStorage}. */
  data: TensorStorage;
}

/** A dimension: a number, or a symbolic name for a dynamic dimension. */
export type Dim = number | string;

/** Declared type of a graph input, output or intermediate value. */
export interface ValueInfo {
  /** Value name. */
  name: string;
  /** Element type. */
  dtype: DType;
  /** Dimensions when known (symbolic names for dynamic ones). */
  shape?: Dim[];
}

/** A node attribute, tagged with its ONNX kind so that writing back is exact. */
export type Attr =
  | { kind: "float"; value: number }
  | { kind: "int"; value: number }
  | { kind: "string"; value: string }
  | { kind: "tensor"; value: TensorData }
  | { kind: "graph"; value: Graph }
  | { kind: "floats"; value: number[] }
  | { kind: "ints"; value: number[] }
  | { kind: "strings"; value: string[] };

/** One operator application. Empty strings in `inputs` mark omitted optional inputs. */
export interface Node {
  /** Unique node name (readers invent one when the file has none). */
  name: string;
  /** Operator type, e.g. "Conv". */
  op: string;
  /** Operator domain; "" is the default ONNX domain. */
  domain: string;
  /** Input value names. */
  inputs: string[];
  /** Output value names. */
  outputs: string[];
  /** Attributes by name. */
  attrs: Record<string, Attr>;
}

/** An operator-set import. */
export interface OpsetImport {
  /** Domain ("" for ONNX). */
  domain: string;
  /** Version. */
  version: number;
}

/** A graph (an ONNX model's main graph, or a subgraph of If/Loop). */
export interface Graph {
  /** Graph name. */
  name: string;
  /** Nodes, in file order (not necessarily topological). */
  nodes: Node[];
  /** Graph inputs that are not initializers. */
  inputs: ValueInfo[];
  /** Graph outputs. */
  outputs: ValueInfo[];
  /** Constant tensors by name. */
  initializers: Map<string, TensorData>;
  /** Known types of intermediate values. */
  valueInfo: Map<string, ValueInfo>;
}

/** A model: a graph plus its file-level metadata. */
export interface Model {
  /** The main graph. */
  graph: Graph;
  /** ONNX IR version. */
  irVersion: number;
  /** Opset imports. */
  opsets: OpsetImport[];
  /** Producer name, e.g. "lowbit". */
  producerName: string;
  /** Producer version. */
  producerVersion: string;
  /** Free-form string metadata. */
  metadata: Record<string, string>;
}
