import { digitsCalib, digitsModel } from "./_testdata.ts";
import { calibrate, cloneModel, scanLayers, smoothQuant, sqnrDb } from "@lowbit/pipeline";
import { createExecutor, foldBatchNorm, foldConstants } from "@lowbit/graph";
const vit = await digitsModel("vit");
const calib = await digitsCalib();
const m = cloneModel(vit);
m.graph = foldBatchNorm(foldConstants(m.graph));
const { layers } = scanLayers(m.graph);
const s = cloneModel(m);
const { absMax } = await calibrate(m, calib, { absMax: layers });
smoothQuant(s, layers, absMax, 0.5);
const grab = async (mm: any) => {
  const got = new Map<string, Float32Array>();
  await createExecutor(mm).run(calib.inputs, {
    observe: (n, t) => {
      if (t.dtype === "float32") got.set(n, Float32Array.from(t.data as Float32Array));
    },
  });
  return got;
};
const a = await grab(m), b = await grab(s);
for (const n of m.graph.nodes.slice(0, 40)) {
  const o = n.outputs[0];
  const x = a.get(o), y = b.get(o);
  if (x && y) console.log(n.op.padEnd(18), o.padEnd(48), sqnrDb(x, y).toFixed(1));
}
