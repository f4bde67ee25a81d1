/**
 * The subset of onnx.proto (IR version ≤ 10) that lowbit reads and writes, as a table for the
 * hand-written protobuf codec of `_protobuf.ts` (no generated code: it runs where string code
 * generation is refused). Field numbers follow the public onnx.proto; messages and fields
 * lowbit does not use (training info, functions, device configurations) are left out, so
 * decoding keeps them raw (`$unknowns`) and encoding writes them back. onnx.proto is proto2:
 * repeated scalars are unpacked except the tensor payload fields, which it declares
 * `[packed = true]`; decoding accepts either form. Presence follows protobufjs' reading of the
 * schema lowbit used before (see `_protobuf.ts`): a default scalar (0, "") outside a oneof is
 * not an own property.
 *
 * @module
 */

import { compileSchema, decodeMessage, encodeMessage, type FieldSpec } from "./_protobuf.ts";

const f = (id: number, name: string, type: string, oneof?: string): FieldSpec =>
  oneof === undefined ? { id, name, type } : { id, name, type, oneof };
const rep = (id: number, name: string, type: string, packed = false): FieldSpec =>
  packed ? { id, name, type, repeated: true, packed } : { id, name, type, repeated: true };

/** The ONNX messages lowbit reads and writes (names as in onnx.proto, fields in camelCase). */
export const ONNX_SCHEMA: Record<string, FieldSpec[]> = {
  StringStringEntryProto: [f(1, "key", "string"), f(2, "value", "string")],
  OperatorSetIdProto: [f(1, "domain", "string"), f(2, "version", "int64")],
  TensorShapeProto: [rep(1, "dim", "TensorShapeProto.Dimension")],
  "TensorShapeProto.Dimension": [
    f(1, "dimValue", "int64", "value"),
    f(2, "dimParam", "string", "value"),
    f(3, "denotation", "string"),
  ],
  TypeProto: [
    f(1, "tensorType", "TypeProto.Tensor", "value"),
    f(4, "sequenceType", "TypeProto.Sequence", "value"),
    f(5, "mapType", "TypeProto.Map", "value"),
    f(6, "denotation", "string"),
    f(8, "sparseTensorType", "TypeProto.SparseTensor", "value"),
    f(9, "optionalType", "TypeProto.Optional", "value"),
  ],
  "TypeProto.Tensor": [f(1, "elemType", "int32"), f(2, "shape", "TensorShapeProto")],
  "TypeProto.Sequence": [f(1, "elemType", "TypeProto")],
  "TypeProto.Map": [f(1, "keyType", "int32"), f(2, "valueType", "TypeProto")],
  "TypeProto.Optional": [f(1, "elemType", "TypeProto")],
  "TypeProto.SparseTensor": [f(1, "elemType", "int32"), f(2, "shape", "TensorShapeProto")],
  ValueInfoProto: [f(1, "name", "string"), f(2, "type", "TypeProto"), f(3, "docString", "string")],
  TensorProto: [
    rep(1, "dims", "int64"),
    f(2, "dataType", "int32"),
    rep(4, "floatData", "float", true),
    rep(5, "int32Data", "int32", true),
    rep(6, "stringData", "bytes"),
    rep(7, "int64Data", "int64", true),
    f(8, "name", "string"),
    f(9, "rawData", "bytes"),
    rep(10, "doubleData", "double", true),
    rep(11, "uint64Data", "uint64", true),
    f(12, "docString", "string"),
    rep(13, "externalData", "StringStringEntryProto"),
    f(14, "dataLocation", "int32"),
  ],
  SparseTensorProto: [
    f(1, "values", "TensorProto"),
    f(2, "indices", "TensorProto"),
    rep(3, "dims", "int64"),
  ],
  AttributeProto: [
    f(1, "name", "string"),
    f(2, "f", "float"),
    f(3, "i", "int64"),
    f(4, "s", "bytes"),
    f(5, "t", "TensorProto"),
    f(6, "g", "GraphProto"),
    rep(7, "floats", "float"),
    rep(8, "ints", "int64"),
    rep(9, "strings", "bytes"),
    rep(10, "tensors", "TensorProto"),
    rep(11, "graphs", "GraphProto"),
    f(13, "docString", "string"),
    f(14, "tp", "TypeProto"),
    rep(15, "typeProtos", "TypeProto"),
    f(20, "type", "int32"),
    f(21, "refAttrName", "string"),
    f(22, "sparseTensor", "SparseTensorProto"),
    rep(23, "sparseTensors", "SparseTensorProto"),
  ],
  NodeProto: [
    rep(1, "input", "string"),
    rep(2, "output", "string"),
    f(3, "name", "string"),
    f(4, "opType", "string"),
    rep(5, "attribute", "AttributeProto"),
    f(6, "docString", "string"),
    f(7, "domain", "string"),
  ],
  GraphProto: [
    rep(1, "node", "NodeProto"),
    f(2, "name", "string"),
    rep(5, "initializer", "TensorProto"),
    f(10, "docString", "string"),
    rep(11, "input", "ValueInfoProto"),
    rep(12, "output", "ValueInfoProto"),
    rep(13, "valueInfo", "ValueInfoProto"),
    rep(15, "sparseInitializer", "SparseTensorProto"),
  ],
  ModelProto: [
    f(1, "irVersion", "int64"),
    f(2, "producerName", "string"),
    f(3, "producerVersion", "string"),
    f(4, "domain", "string"),
    f(5, "modelVersion", "int64"),
    f(6, "docString", "string"),
    f(7, "graph", "GraphProto"),
    rep(8, "opsetImport", "OperatorSetIdProto"),
    rep(14, "metadataProps", "StringStringEntryProto"),
  ],
};

const compiled = compileSchema(ONNX_SCHEMA);

/** Decode / encode of one message type, shaped like protobufjs' `Type` (`encode(m).finish()`). */
export interface MessageType {
  /**
   * Decodes bytes.
   * @param bytes the encoded message
   */
  decode(bytes: Uint8Array): Record<string, unknown>;
  /**
   * Encodes a message.
   * @param msg the message
   */
  encode(msg: object): { finish(): Uint8Array };
}

function messageType(name: string): MessageType {
  return {
    decode: (bytes) => decodeMessage(compiled, name, bytes),
    encode: (msg) => {
      const bytes = encodeMessage(compiled, name, msg as Record<string, unknown>);
      return { finish: () => bytes };
    },
  };
}

/** The ModelProto message type. */
export const ModelProto: MessageType = messageType("ModelProto");
/** The TensorProto message type. */
export const TensorProto: MessageType = messageType("TensorProto");

/** TensorProto.DataType codes. */
export const ONNX_DTYPE = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  bfloat16: 16,
  float8e4m3fn: 17,
  float8e5m2: 19,
  uint4: 21,
  int4: 22,
} as const;

/** AttributeProto.AttributeType codes. */
export const ATTR_TYPE = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
  strings: 8,
  tensors: 9,
  graphs: 10,
  sparseTensor: 11,
  sparseTensors: 12,
  typeProto: 13,
  typeProtos: 14,
} as const;

// *** decoded message shapes (int64 as a number, or as { low, high, unsigned } when unsafe) ***

/** An int64 as decoded: a number when it is a safe integer, else its two 32-bit halves. */
export type PbLong = number | { low: number; high: number; unsigned?: boolean };

/** Decoded StringStringEntryProto. */
export interface PbEntry {
  key?: string;
  value?: string;
}
/** Decoded TensorProto. */
export interface PbTensor {
  dims?: PbLong[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  stringData?: Uint8Array[];
  int64Data?: PbLong[];
  name?: string;
  rawData?: Uint8Array;
  doubleData?: number[];
  uint64Data?: PbLong[];
  externalData?: PbEntry[];
  dataLocation?: number;
}
/** Decoded TypeProto. */
export interface PbType {
  tensorType?: {
    elemType?: number;
    shape?: { dim?: { dimValue?: PbLong; dimParam?: string }[] };
  };
  sequenceType?: unknown;
  mapType?: unknown;
  optionalType?: unknown;
  sparseTensorType?: unknown;
}
/** Decoded SparseTensorProto. */
export interface PbSparseTensor {
  values?: PbTensor;
  indices?: PbTensor;
  dims?: PbLong[];
}
/** Decoded ValueInfoProto. */
export interface PbValueInfo {
  name?: string;
  type?: PbType;
}
/** Decoded AttributeProto. */
export interface PbAttr {
  name?: string;
  f?: number;
  i?: PbLong;
  s?: Uint8Array;
  t?: PbTensor;
  g?: PbGraph;
  floats?: number[];
  ints?: PbLong[];
  strings?: Uint8Array[];
  tensors?: PbTensor[];
  graphs?: PbGraph[];
  type?: number;
  refAttrName?: string;
  tp?: PbType;
  typeProtos?: PbType[];
  sparseTensor?: PbSparseTensor;
  sparseTensors?: PbSparseTensor[];
}
/** Decoded NodeProto. */
export interface PbNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  attribute?: PbAttr[];
  domain?: string;
}
/** Decoded GraphProto. */
export interface PbGraph {
  node?: PbNode[];
  name?: string;
  initializer?: PbTensor[];
  input?: PbValueInfo[];
  output?: PbValueInfo[];
  valueInfo?: PbValueInfo[];
  sparseInitializer?: PbSparseTensor[];
}
/** Decoded ModelProto. */
export interface PbModel {
  irVersion?: PbLong;
  producerName?: string;
  producerVersion?: string;
  graph?: PbGraph;
  opsetImport?: { domain?: string; version?: PbLong }[];
  metadataProps?: PbEntry[];
}
