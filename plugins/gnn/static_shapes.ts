/**
 * `lowbit gnn static MODEL --input NAME=FILE ... --out STATIC.onnx`: a copy of a graph model
 * whose inputs have the static shapes of one given graph. The CLI's data loader treats a `.npy`
 * of an input's full static shape as one whole sample; with dynamic node / edge axes it cannot,
 * and an edge index `[2, edges]` beside node features `[nodes, F]` reads as 2 vs `nodes` samples.
 * On the static copy, `lowbit quantize --calib x=x.npy --calib edge_index=edge_index.npy` takes
 * the graph as one sample; the quantized model still runs any graph size that its ops allow.
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import { type Model, readNpy, readOnnxFile, type TensorData, writeOnnxFile } from "@lowbit/graph";
import { parseArgs } from "node:util";

/**
 * The model with each given input's shape set to that tensor's shape (dtype checked).
 *
 * @param model the model (not changed)
 * @param inputs tensors by input name
 * @returns a copy with static input shapes
 *
 * @example
 * ```ts
 * import { withGraphShapes } from "@lowbit/gnn";
 * const m = { irVersion: 8, opsets: [], producerName: "", producerVersion: "", metadata: {},
 *   graph: { name: "g", inputs: [{ name: "x", dtype: "float32" as const, shape: ["n", 4] }],
 *     outputs: [], valueInfo: new Map(), nodes: [], initializers: new Map() } };
 * const x = { dtype: "float32" as const, shape: [7, 4], data: new Float32Array(28) };
 * if (withGraphShapes(m, { x }).graph.inputs[0].shape?.join() !== "7,4") throw new Error();
 * ```
 */
export function withGraphShapes(model: Model, inputs: Readonly<Record<string, TensorData>>): Model {
  const names = model.graph.inputs.map((i) => i.name);
  for (const n of Object.keys(inputs)) {
    if (!names.includes(n)) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `the model has no input of this name; its inputs are: ${names.join(", ")}`,
        { tensor: n },
      );
    }
  }
  const graph = {
    ...model.graph,
    inputs: model.graph.inputs.map((vi) => {
      const t = inputs[vi.name];
      if (!t) return vi;
      if (t.dtype !== vi.dtype) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `is ${t.dtype}, the model input is ${vi.dtype}`,
          { tensor: vi.name },
        );
      }
      const rank = vi.shape?.length ?? t.shape.length;
      const fixed = vi.shape?.every((d, i) => typeof d !== "number" || d === t.shape[i]) ?? true;
      if (rank !== t.shape.length || !fixed) {
        throw new LowbitError(
          "SHAPE_MISMATCH",
          `is [${t.shape.join(", ")}], the model input is [${(vi.shape ?? []).join(", ")}]`,
          { tensor: vi.name },
        );
      }
      return { ...vi, shape: [...t.shape] };
    }),
  };
  return { ...model, graph };
}

/**
 * `lowbit gnn static` (see the module documentation).
 *
 * @param args the arguments after `static`
 * @returns the exit code
 *
 * @example
 * ```ts
 * import { staticMain } from "@lowbit/gnn";
 * const e = await staticMain(["m.onnx"]).catch((e) => e);
 * if (e.code !== "INVALID_ARGUMENT") throw e;
 * ```
 */
export async function staticMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: "string", multiple: true }, out: { type: "string" } },
  });
  if (positionals.length !== 1 || !values.out || !values.input?.length) {
    throw new LowbitError(
      "INVALID_ARGUMENT",
      "gnn static needs one model, --input NAME=FILE.npy (one per graph input) and --out FILE",
    );
  }
  const inputs: Record<string, TensorData> = {};
  for (const spec of values.input) {
    const eq = spec.indexOf("=");
    if (eq <= 0) throw new LowbitError("INVALID_ARGUMENT", `--input is NAME=FILE, got '${spec}'`);
    const path = spec.slice(eq + 1);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch {
      throw new LowbitError("IO_ERROR", "cannot read", { file: path });
    }
    inputs[spec.slice(0, eq)] = readNpy(bytes, path);
  }
  const model = withGraphShapes(await readOnnxFile(positionals[0]), inputs);
  await writeOnnxFile(values.out, model);
  console.log(
    `${values.out}: inputs ${
      model.graph.inputs.map((i) => `${i.name} [${(i.shape ?? []).join(", ")}]`).join(", ")
    }`,
  );
  return 0;
}
