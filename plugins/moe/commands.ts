/**
 * `lowbit moe inspect MODEL` (the routers, experts and combines found) and `lowbit moe eval
 * FLOAT QUANT --data X.npy` (routing agreement float vs quantized, per router and per expert,
 * as JSON).
 *
 * @module
 */

import { LowbitError, type PluginCommand, type Registry } from "@lowbit/core";
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
import { routingAgreement } from "./agreement.ts";
import type { MoEInfo } from "./detect.ts";
import { detectWithConfig } from "./options.ts";

const USAGE = `usage:
  lowbit moe inspect MODEL [--moe-config FILE] [--json]
  lowbit moe eval FLOAT.onnx QUANT.(lowbit|onnx) --data X.npy [--labels Y.npy] [--moe-config FILE]`;

/**
 * Loads a model: `.lowbit` / `.safetensors` lowbit files (with the registry's quantizers), else
 * ONNX.
 *
 * @param path model file
 * @param registry registry for a lowbit file's quantizers
 * @returns the model
 *
 * @example
 * ```ts
 * import { loadAnyModel } from "@lowbit/moe";
 * const e = await loadAnyModel("no/such.onnx").catch((e) => e);
 * if (e.code !== "IO_ERROR") throw e;
 * ```
 */
export async function loadAnyModel(path: string, registry?: Registry): Promise<Model> {
  if (path.endsWith(".lowbit") || path.endsWith(".safetensors")) {
    return lowbitModel(await readLowbitFile(path), registry ? { registry } : {});
  }
  return await readOnnxFile(path);
}

/**
 * What detection found, as text lines (for `lowbit moe inspect`).
 *
 * @param info detection result
 * @returns the lines
 *
 * @example
 * ```ts
 * import { describeMoE } from "@lowbit/moe";
 * if (!describeMoE({ routers: [] })[0].startsWith("no router")) throw new Error();
 * ```
 */
export function describeMoE(info: MoEInfo): string[] {
  if (info.routers.length === 0) {
    return ["no router found (a TopK over a MatMul / Gemm output); name them with --moe-config"];
  }
  const out: string[] = [];
  for (const r of info.routers) {
    out.push(
      `router ${r.node} (${r.dispatch} dispatch, top-${r.k ?? "?"} of ${r.numExperts ?? "?"}): ` +
        `tokens ${r.tokens}, gate ${r.softmax ?? "(no Softmax)"} -> ${r.topk}` +
        (r.combine ? `, combine ${r.combine}` : ""),
    );
    for (const e of r.experts) {
      out.push(
        `  expert ${e.index}: ${e.layers.join(", ")}` +
          (e.dispatch ? ` (dispatch ${e.dispatch})` : "") +
          (e.gate ? `, gate ${e.gate}` : ", gate not found"),
      );
    }
  }
  return out;
}

function readData(path: string, what: string): TensorData {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new LowbitError("IO_ERROR", `cannot read ${what}: ${(e as Error).message}`, {
      file: path,
    });
  }
  return readNpy(bytes, path);
}

function argmaxRows(t: TensorData): number[] {
  const c = t.shape[t.shape.length - 1], d = t.data as Float32Array;
  return Array.from({ length: d.length / c }, (_, i) => {
    let best = 0;
    for (let j = 1; j < c; j++) if (d[i * c + j] > d[i * c + best]) best = j;
    return best;
  });
}

/**
 * The `lowbit moe` command.
 *
 * @param registry the registry the plugin is in (quantizers of loaded lowbit files)
 * @returns the command
 *
 * @example
 * ```ts
 * import { moeCommand } from "@lowbit/moe";
 * import { defaultRegistry } from "@lowbit/core";
 * const c = moeCommand(defaultRegistry());
 * if (c.name !== "moe") throw new Error();
 * ```
 */
export function moeCommand(registry: Registry): PluginCommand {
  return {
    name: "moe",
    summary: "MoE: `moe inspect MODEL` (routers, experts), `moe eval FLOAT QUANT --data X`",
    async main(args: string[]): Promise<number> {
      const [sub, ...rest] = args;
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          "moe-config": { type: "string" },
          json: { type: "boolean" },
          data: { type: "string" },
          labels: { type: "string" },
          input: { type: "string" },
        },
      });
      const config = values["moe-config"];
      if (sub === "inspect" && positionals.length === 1) {
        const m = await loadAnyModel(positionals[0], registry);
        const info = detectWithConfig(m.graph, config);
        if (values.json) console.log(JSON.stringify(info, null, 2));
        else console.log(describeMoE(info).join("\n"));
        return info.routers.length ? 0 : 1;
      }
      if (sub === "eval" && positionals.length === 2 && values.data) {
        const float = await loadAnyModel(positionals[0], registry);
        const quant = await loadAnyModel(positionals[1], registry);
        const info = detectWithConfig(float.graph, config);
        if (info.routers.length === 0) {
          throw new LowbitError("INVALID_ARGUMENT", "no router found in the float model", {
            file: positionals[0],
          });
        }
        const name = values.input ?? float.graph.inputs[0].name;
        const x = readData(values.data, "--data");
        const routers = await routingAgreement(float, quant, info, { [name]: x }, { registry });
        const out: Record<string, unknown> = { samples: x.shape[0], routers };
        if (values.labels) {
          const y = Array.from(
            readData(values.labels, "--labels").data as ArrayLike<bigint>,
            Number,
          );
          const acc = async (m: Model) => {
            const o = await createExecutor(m, { registry }).run({ [name]: x });
            const p = argmaxRows(o[float.graph.outputs[0].name]);
            return p.filter((v, i) => v === y[i]).length / y.length;
          };
          out.top1 = { float: await acc(float), quant: await acc(quant) };
        }
        console.log(JSON.stringify(out, null, 2));
        return 0;
      }
      console.error(USAGE);
      return 2;
    },
  };
}
