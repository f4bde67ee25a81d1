/**
 * Router consistency: how often the quantized model routes a token to the same experts as the
 * float model, per router and per expert (EAQuant's router alignment, measured).
 *
 * @module
 */

import type { Registry, TensorValue } from "@lowbit/core";
import { createExecutor, type Model } from "@lowbit/graph";
import type { MoEInfo } from "./detect.ts";

/** Agreement of one expert. */
export interface ExpertAgreement {
  /** Expert index. */
  readonly expert: number;
  /** Tokens the float model routes to it. */
  readonly floatTokens: number;
  /** Tokens the quantized model routes to it. */
  readonly quantTokens: number;
  /** Of the float model's tokens, the fraction the quantized model also routes here. */
  readonly agreement: number | null;
}

/** Agreement of one router. */
export interface RouterAgreement {
  /** Router layer. */
  readonly router: string;
  /** Tokens. */
  readonly tokens: number;
  /** Fraction of tokens whose top-k expert set is the same. */
  readonly agreement: number;
  /** Per expert. */
  readonly experts: ExpertAgreement[];
}

/** Top-k sets of each token from a TopK indices tensor [tokens, k]. */
function topSets(t: TensorValue): number[][] {
  const k = t.shape[t.shape.length - 1] ?? 1;
  const d = Array.from(t.data as ArrayLike<bigint | number>, Number);
  return Array.from({ length: d.length / k }, (_, i) => d.slice(i * k, (i + 1) * k).sort());
}

/**
 * Runs both models on the same inputs and compares each router's TopK indices.
 *
 * @param float the float model
 * @param quant the quantized model (same value names: a simulated or loaded lowbit model)
 * @param info detection on the float graph
 * @param inputs model inputs by name
 * @param opts registry for the quantized model's quantizers; batch size
 * @returns one record per router
 *
 * @example
 * ```ts
 * import { detectMoE, routingAgreement } from "@lowbit/moe";
 * import { readNpy, readOnnxFile } from "@lowbit/graph";
 * const dir = new URL("../../fixtures/moe/", import.meta.url);
 * const m = await readOnnxFile(new URL("moe_dense.onnx", dir).pathname);
 * const x = readNpy(Deno.readFileSync(new URL("calib_x.npy", dir)));
 * const [r] = await routingAgreement(m, m, detectMoE(m.graph), { x });
 * if (r.agreement !== 1 || r.experts[0].floatTokens !== 65) throw new Error();
 * ```
 */
export async function routingAgreement(
  float: Model,
  quant: Model,
  info: MoEInfo,
  inputs: Readonly<Record<string, TensorValue>>,
  opts: { registry?: Registry; batchSize?: number } = {},
): Promise<RouterAgreement[]> {
  const watch = new Set(info.routers.map((r) => r.topkIndices));
  const routes = async (m: Model): Promise<Map<string, number[][]>> => {
    const exec = createExecutor(m, opts.registry ? { registry: opts.registry } : {});
    const out = new Map<string, number[][]>();
    const first = Object.values(inputs)[0];
    const n = first.shape[0], bs = opts.batchSize ?? 256;
    for (let s = 0; s < n; s += bs) {
      const e = Math.min(n, s + bs);
      const b: Record<string, TensorValue> = {};
      for (const [name, t] of Object.entries(inputs)) {
        const per = t.data.length / t.shape[0];
        b[name] = {
          dtype: t.dtype,
          shape: [e - s, ...t.shape.slice(1)],
          data: (t.data as Float32Array).slice(s * per, e * per),
        };
      }
      await exec.run(b as never, {
        watch,
        observe: (v, t) => void out.set(v, [...(out.get(v) ?? []), ...topSets(t)]),
      });
    }
    return out;
  };
  const fr = await routes(float), qr = await routes(quant);
  return info.routers.map((r) => {
    const a = fr.get(r.topkIndices) ?? [], b = qr.get(r.topkIndices) ?? [];
    const n = Math.max(r.numExperts ?? 0, ...r.experts.map((e) => e.index + 1));
    const experts: ExpertAgreement[] = Array.from({ length: n }, (_, ex) => {
      let ft = 0, qt = 0, both = 0;
      a.forEach((s, i) => {
        const inF = s.includes(ex), inQ = b[i]?.includes(ex) ?? false;
        ft += +inF;
        qt += +inQ;
        both += +(inF && inQ);
      });
      return { expert: ex, floatTokens: ft, quantTokens: qt, agreement: ft ? both / ft : null };
    });
    const same = a.filter((s, i) => s.join() === b[i]?.join()).length;
    return { router: r.node, tokens: a.length, agreement: a.length ? same / a.length : 1, experts };
  });
}
