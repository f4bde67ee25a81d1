/**
 * Test reference, not shipped: the protobufjs description of onnx.proto that
 * `libs/graph/_onnx_schema.ts` held until lowbit replaced protobufjs with its own
 * codec (`_protobuf.ts`), copied unchanged from that file (git history: the commit
 * before "ONNX codec without generated code"). `_onnx_schema_test.ts` checks that the
 * new codec decodes every model to the same objects and encodes the same bytes.
 *
 * @module
 */

import protobuf from "protobufjs/light.js";

// NOTE: onnx.proto is proto2: repeated scalars are unpacked except the tensor
// payload fields, which it declares [packed = true]. Decoders accept either.
const unpacked = { packed: false };
const packed = { packed: true };

const f = (
  id: number,
  type: string,
  opts: Record<string, unknown> = {},
): Record<string, unknown> => ({
  id,
  type,
  ...opts,
});
const rep = (
  id: number,
  type: string,
  options?: Record<string, boolean>,
): Record<string, unknown> =>
  options ? { id, type, rule: "repeated", options } : { id, type, rule: "repeated" };

const descriptor = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: f(1, "string"), value: f(2, "string") } },
        OperatorSetIdProto: { fields: { domain: f(1, "string"), version: f(2, "int64") } },
        TensorShapeProto: {
          fields: { dim: rep(1, "Dimension") },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ["dimValue", "dimParam"] } },
              fields: {
                dimValue: f(1, "int64"),
                dimParam: f(2, "string"),
                denotation: f(3, "string"),
              },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ["tensorType", "sequenceType", "mapType", "optionalType"] } },
          fields: {
            tensorType: f(1, "Tensor"),
            sequenceType: f(4, "Sequence"),
            mapType: f(5, "Map"),
            optionalType: f(9, "Optional"),
            denotation: f(6, "string"),
          },
          nested: {
            Tensor: { fields: { elemType: f(1, "int32"), shape: f(2, "TensorShapeProto") } },
            Sequence: { fields: { elemType: f(1, "TypeProto") } },
            Map: { fields: { keyType: f(1, "int32"), valueType: f(2, "TypeProto") } },
            Optional: { fields: { elemType: f(1, "TypeProto") } },
          },
        },
        ValueInfoProto: {
          fields: { name: f(1, "string"), type: f(2, "TypeProto"), docString: f(3, "string") },
        },
        TensorProto: {
          fields: {
            dims: rep(1, "int64", unpacked),
            dataType: f(2, "int32"),
            floatData: rep(4, "float", packed),
            int32Data: rep(5, "int32", packed),
            stringData: rep(6, "bytes"),
            int64Data: rep(7, "int64", packed),
            name: f(8, "string"),
            rawData: f(9, "bytes"),
            doubleData: rep(10, "double", packed),
            uint64Data: rep(11, "uint64", packed),
            docString: f(12, "string"),
            externalData: rep(13, "StringStringEntryProto"),
            dataLocation: f(14, "int32"),
          },
        },
        AttributeProto: {
          fields: {
            name: f(1, "string"),
            f: f(2, "float"),
            i: f(3, "int64"),
            s: f(4, "bytes"),
            t: f(5, "TensorProto"),
            g: f(6, "GraphProto"),
            floats: rep(7, "float", unpacked),
            ints: rep(8, "int64", unpacked),
            strings: rep(9, "bytes"),
            tensors: rep(10, "TensorProto"),
            graphs: rep(11, "GraphProto"),
            docString: f(13, "string"),
            type: f(20, "int32"),
            refAttrName: f(21, "string"),
          },
        },
        NodeProto: {
          fields: {
            input: rep(1, "string"),
            output: rep(2, "string"),
            name: f(3, "string"),
            opType: f(4, "string"),
            attribute: rep(5, "AttributeProto"),
            docString: f(6, "string"),
            domain: f(7, "string"),
          },
        },
        GraphProto: {
          fields: {
            node: rep(1, "NodeProto"),
            name: f(2, "string"),
            initializer: rep(5, "TensorProto"),
            docString: f(10, "string"),
            input: rep(11, "ValueInfoProto"),
            output: rep(12, "ValueInfoProto"),
            valueInfo: rep(13, "ValueInfoProto"),
          },
        },
        ModelProto: {
          fields: {
            irVersion: f(1, "int64"),
            producerName: f(2, "string"),
            producerVersion: f(3, "string"),
            domain: f(4, "string"),
            modelVersion: f(5, "int64"),
            docString: f(6, "string"),
            graph: f(7, "GraphProto"),
            opsetImport: rep(8, "OperatorSetIdProto"),
            metadataProps: rep(14, "StringStringEntryProto"),
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

/** The ModelProto message type. */
export const ModelProto: protobuf.Type = root.lookupType("onnx.ModelProto");
/** The TensorProto message type. */
export const TensorProto: protobuf.Type = root.lookupType("onnx.TensorProto");
