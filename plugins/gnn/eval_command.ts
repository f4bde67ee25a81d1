/**
 * `lowbit gnn eval MODEL --input NAME=FILE ... --labels y.npy [--mask test_mask.npy] [--json]`:
 * runs a float `.onnx` or a quantized `.lowbit` graph model on the whole graph and prints the
 * node-classification accuracy on the masked nodes (all nodes without a mask).
 *
 * @module
 */

import { defaultRegistry, LowbitError, type TensorValue } from "@lowbit/core";
import {
  createExecutor,
  lowbitModel,
  type Model,
  readLowbitFile,
  readNpy,
  readOnnxFile,
  type TensorData,
} from "@lowbit/graph";
import { parseArgs } from "node:util";
import { findAggregations } from "./detect.ts";
import { checkGraphInputs } from "./stages.ts";
import { staticMain } from "./static_shapes.ts";

/**
 * Top-1 accuracy of node logits `[nodes, classes]` over the nodes a mask selects.
 *
 * @param logits the logits
 * @param labels one class per node (integers)
 * @param mask nonzero for the nodes counted (default all)
 * @returns correct / counted, and the count
 *
 * @example
 * ```ts
 * import { nodeAccuracy } from "@lowbit/gnn";
 * const logits = { dtype: "float32", shape: [3, 2], data: Float32Array.of(1, 0, 0, 1, 5, 4) };
 * const r = nodeAccuracy(logits, BigInt64Array.of(0n, 0n, 0n), Uint8Array.of(0, 1, 1));
 * if (r.accuracy !== 0.5 || r.count !== 2) throw new Error();
 * ```
 */
export function nodeAccuracy(
  logits: TensorValue,
  labels: ArrayLike<unknown>,
  mask?: ArrayLike<unknown>,
): { accuracy: number; count: number } {
  const nodes = logits.shape[0], classes = logits.data.length / Math.max(1, nodes);
  if (labels.length !== nodes || (mask && mask.length !== nodes)) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `the model gives ${nodes} nodes, the labels ${labels.length}` +
        (mask ? ` and the mask ${mask.length}` : ""),
    );
  }
  let ok = 0, count = 0;
  for (let i = 0; i < nodes; i++) {
    if (mask && !Number(mask[i])) continue;
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (Number(logits.data[i * classes + c]) > Number(logits.data[i * classes + best])) best = c;
    }
    count++;
    if (best === Number(labels[i])) ok++;
  }
  return { accuracy: count ? ok / count : 0, count };
}

const HELP = `usage: lowbit gnn eval <model.onnx|model.lowbit> --input NAME=FILE.npy ...
                     --labels y.npy [--mask test_mask.npy] [--json]
       lowbit gnn static <model.onnx> --input NAME=FILE.npy ... --out STATIC.onnx

eval    runs a graph model on the whole graph (one sample) and prints the node accuracy
        on the nodes the mask selects (bool or 0/1 .npy; all nodes without it)
static  writes the model with the given graph's static input shapes, so that
        lowbit quantize --calib takes each input .npy whole (the graph is one sample)`;

async function npy(path: string): Promise<TensorData> {
  try {
    return readNpy(await Deno.readFile(path), path);
  } catch (e) {
    if (e instanceof LowbitError) throw e;
    throw new LowbitError("IO_ERROR", "cannot read", { file: path });
  }
}

async function loadModel(path: string): Promise<Model> {
  if (path.endsWith(".lowbit")) {
    return lowbitModel(await readLowbitFile(path), { registry: defaultRegistry() });
  }
  return await readOnnxFile(path);
}

/**
 * The `lowbit gnn` command: `eval` (see the module documentation) and `static`
 * ({@link staticMain}).
 *
 * @param args the arguments after `gnn`
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { gnnCommand } from "@lowbit/gnn";
 * if (await gnnCommand(["--help"]) !== 0) throw new Error();
 * ```
 */
export async function gnnCommand(args: string[]): Promise<number> {
  if (args[0] === "static") return await staticMain(args.slice(1));
  if (args[0] !== "eval") {
    console.log(HELP);
    return args[0] === "--help" || args[0] === "-h" || args.length === 0 ? 0 : 2;
  }
  const { values, positionals } = parseArgs({
    args: args.slice(1),
    allowPositionals: true,
    options: {
      input: { type: "string", multiple: true },
      labels: { type: "string" },
      mask: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (positionals.length !== 1 || !values.labels) {
    throw new LowbitError("INVALID_ARGUMENT", "gnn eval needs one model and --labels");
  }
  const model = await loadModel(positionals[0]);
  const inputs: Record<string, TensorData> = {};
  for (const spec of values.input ?? []) {
    const eq = spec.indexOf("=");
    if (eq <= 0) throw new LowbitError("INVALID_ARGUMENT", `--input is NAME=FILE, got '${spec}'`);
    inputs[spec.slice(0, eq)] = await npy(spec.slice(eq + 1));
  }
  checkGraphInputs(findAggregations(model.graph), inputs);
  const out = await createExecutor(model, { registry: defaultRegistry() }).run(inputs);
  const logits = out[model.graph.outputs[0].name];
  const labels = await npy(values.labels);
  const mask = values.mask ? (await npy(values.mask)).data : undefined;
  const r = nodeAccuracy(logits, labels.data, mask);
  if (values.json) console.log(JSON.stringify({ model: positionals[0], ...r }));
  else console.log(`accuracy ${(100 * r.accuracy).toFixed(2)} % on ${r.count} nodes`);
  return 0;
}
