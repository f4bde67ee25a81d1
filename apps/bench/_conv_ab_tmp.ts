import { conv2dF32, createFloatKernels, prepareConv2dF32 } from "@lowbit/kernels";
const k = createFloatKernels();
const shapes: [string, [number, number, number, number], [number, number, number, number], number, number, number][] = [
  ["stem 3x3 s2 3->16 @640", [1, 3, 640, 640], [16, 3, 3, 3], 1, 2, 1],
  ["3x3 s1 32->32 @160", [1, 32, 160, 160], [32, 32, 3, 3], 1, 1, 1],
  ["1x1 64->128 @80", [1, 64, 80, 80], [128, 64, 1, 1], 1, 1, 0],
  ["1x1 16->32 @320", [1, 16, 320, 320], [32, 16, 1, 1], 1, 1, 0],
  ["dw 3x3 s1 64 @80", [1, 64, 80, 80], [64, 1, 3, 3], 64, 1, 1],
  ["dw 3x3 s2 32 @160", [1, 32, 160, 160], [32, 1, 3, 3], 32, 2, 1],
  ["dw 5x5 s1 128 @40", [1, 128, 40, 40], [128, 1, 5, 5], 128, 1, 2],
];
for (const [name, xs, ws, group, s, p] of shapes) {
  const x = Float32Array.from({ length: xs.reduce((a, b) => a * b) }, () => Math.random() - 0.5);
  const w = prepareConv2dF32(Float32Array.from({ length: ws.reduce((a, b) => a * b) }, () => Math.random() - 0.5), ws, k);
  const opts = { group, strides: [s, s] as [number, number], pads: [p, p, p, p] as [number, number, number, number], bias: new Float32Array(ws[0]), activation: "relu" as const };
  let y = conv2dF32(x, xs, w, opts);
  let best = Infinity;
  for (let r = 0; r < 15; r++) { const t0 = performance.now(); y = conv2dF32(x, xs, w, opts); best = Math.min(best, performance.now() - t0); }
  const macs = y.data.length * ws[1] * ws[2] * ws[3];
  console.log(name.padEnd(26), best.toFixed(3).padStart(8), "ms", (2 * macs / best / 1e6).toFixed(1).padStart(6), "GFLOP/s");
  w.dispose();
}
