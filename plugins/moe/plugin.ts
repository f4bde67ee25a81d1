/**
 * The MoE plugin's registration: options, the stages that detect routers and experts, keep
 * routers in float and measure calibration coverage, the calibration hook (balanced routing,
 * affinity-weighted GPTQ rows), the source that adds calibration samples, and `lowbit moe`.
 *
 * @module
 */

import {
  type CalibrationHook,
  type CalibrationSource,
  type GraphView,
  type HookBatch,
  type LayerView,
  LowbitError,
  type Plugin,
  type PluginOptionValues,
  type Registry,
  type ReportContext,
  type ReportPart,
  type ReportSection,
} from "@lowbit/core";
import type { Model } from "@lowbit/graph";
import type { PlanEntry, QuantizeState } from "@lowbit/pipeline";
import { routingAgreement } from "./agreement.ts";
import { balanceable, balancedGraph } from "./balance.ts";
import { describeMoE, moeCommand } from "./commands.ts";
import { countTokens, type RouterCoverage } from "./coverage.ts";
import { calibrationBatches } from "./data.ts";
import { detectMoE, layerRoles, type MoEInfo } from "./detect.ts";
import { detectWithConfig, MOE_OPTIONS, moeOptions } from "./options.ts";

/** What the stages found, shared with the hook and the source of one registry. */
interface MoEContext {
  info?: MoEInfo;
  /** Fraction of each batch every expert receives (balanced calibration). */
  frac: number;
  /** Samples the source generates. */
  extra: number;
  /** Whether generating samples is allowed (balanced calibration, float inputs, data given). */
  generate: boolean;
  /** Tokens per expert, once measured. */
  coverage?: RouterCoverage[];
  /** Layers whose GPTQ rows could not be matched to gates (weighted as 1), for a warning. */
  unweighted: Set<string>;
}

const sparse = (info: MoEInfo | undefined) => !!info?.routers.some(balanceable);

/** Detection, router precision, balancing figures (after the plan is made). */
function planStage(ctx: MoEContext, st: QuantizeState): void {
  const o = moeOptions(st.pluginOptions);
  const info = detectWithConfig(st.model.graph as unknown as GraphView, o.config);
  ctx.info = info;
  if (info.routers.length === 0) {
    st.warnings.push(
      "moe: no router found (a TopK over a MatMul / Gemm output); name them with --moe-config",
    );
    return;
  }
  const count = st.opts.calib?.count ?? 0;
  // dense dispatch: every expert computes every token, so more samples are all it needs
  const balanced = o.calib === "balanced";
  const total = balanced ? Math.max(count, o.minTokens) : count;
  const floatInputs = Object.values(st.opts.calib?.inputs ?? {}).every((t) =>
    t.dtype === "float32"
  );
  ctx.generate = balanced && count > 0 && floatInputs;
  ctx.extra = ctx.generate ? total - count : 0;
  if (balanced && !floatInputs && count < o.minTokens) {
    st.warnings.push(
      `moe: the calibration inputs are not all float32, so no samples are generated: experts ` +
        `see at most the ${count} calibration samples' tokens (--moe-min-tokens ${o.minTokens})`,
    );
  }
  ctx.frac = balanced && sparse(info) && total > 0 ? Math.min(1, o.minTokens / total) : 0;
  if (balanced) {
    for (const r of info.routers.filter((r) => r.dispatch !== "dense" && !balanceable(r))) {
      st.warnings.push(
        `moe: router '${r.node}' (top-${r.k ?? "?"}): balanced re-routing handles top-1 ` +
          `sparse dispatch by an Equal(index, e) mask; its experts see their routed tokens only ` +
          `(of the data and of generated samples)`,
      );
    }
  }
  if (st.opts.plan || o.router !== "float") return;
  for (const r of info.routers) {
    st.entries = st.entries.map((e): PlanEntry =>
      e.node === r.node && !e.skip
        ? {
          node: e.node,
          value: e.value,
          role: e.role,
          skip: true,
          reason: "MoE router kept in float (--moe-router float)",
        }
        : e
    );
  }
}

/** Tokens per expert (natural / in calibration); thin or empty experts get dynamic scales. */
async function coverageStage(ctx: MoEContext, st: QuantizeState): Promise<void> {
  const info = ctx.info;
  const data = st.opts.calib;
  if (!info?.routers.length || !data) return;
  const o = moeOptions(st.pluginOptions);
  const bs = st.opts.batchSize ?? 32;
  // the data's own routing, then what each expert receives in the calibration graph
  const natural = await countTokens(
    st.model,
    info,
    calibrationBatches(data.inputs, data.count, bs),
  );
  // Routers that cannot be re-routed reach the minimum through generated samples only: as many
  // as the rarest expert's share of the data needs (at most 16× the data).
  const fixed = info.routers.map((r, i) => [r, natural[i]] as const).filter(([r]) =>
    r.dispatch !== "dense" && !balanceable(r)
  );
  if (ctx.generate && fixed.length) {
    const rarest = Math.min(...fixed.flatMap(([, c]) => c.natural));
    const cap = 16 * data.count;
    const want = rarest > 0 ? Math.ceil((data.count * o.minTokens) / rarest) - data.count : cap;
    ctx.extra = Math.min(cap, Math.max(ctx.extra, want));
  }
  const notes: string[] = [];
  const graph = ctx.frac > 0
    ? balancedGraph(st.model.graph, info, ctx.frac, notes)
    : st.model.graph;
  st.warnings.push(...notes);
  const count = (extra: number) =>
    countTokens(
      { ...st.model, graph },
      info,
      calibrationBatches(data.inputs, data.count, bs, extra),
    );
  let seenBy = await count(ctx.extra);
  // generated samples route a little differently from the data: top up (at most twice)
  for (let round = 0; round < 2 && ctx.generate && fixed.length; round++) {
    const short = Math.min(
      ...fixed.map(([r]) => info.routers.indexOf(r)).flatMap((i) => seenBy[i].seen),
    );
    const cap = 16 * data.count;
    if (short >= o.minTokens || ctx.extra >= cap || short === 0) break;
    const total = data.count + ctx.extra;
    ctx.extra = Math.min(cap, Math.ceil((total * o.minTokens) / short * 1.05) - data.count);
    seenBy = await count(ctx.extra);
  }
  ctx.coverage = natural.map((c, i) => ({ ...c, seen: seenBy[i].seen }));
  info.routers.forEach((r, ri) => {
    const c = ctx.coverage![ri];
    st.warnings.push(
      `moe: router '${r.node}' tokens per expert: the data routes ${c.natural.join(" / ")}; ` +
        `calibration (${
          o.calib === "balanced"
            ? `balanced, min ${o.minTokens}, ${data.count} samples + ${ctx.extra} generated`
            : "natural"
        }) gives ${c.seen.join(" / ")}`,
    );
    for (const e of r.experts) {
      const natural = c.natural[e.index], seen = c.seen[e.index];
      const onnx = st.opts.target === "onnx";
      if (onnx && seen === 0) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `expert ${e.index} of router '${r.node}' sees no calibration token, and QDQ ONNX ` +
            `cannot hold the dynamic per-token scales it would need; use --moe-calib balanced ` +
            `or write a .lowbit file`,
          { node: e.layers[0], tensor: e.input },
        );
      }
      const dynamic = (natural < o.thin && !onnx) || seen === 0;
      if (onnx && natural < o.thin) {
        st.warnings.push(
          `moe: expert ${e.index} of router '${r.node}' keeps static (balanced) activation ` +
            `scales: QDQ ONNX cannot hold dynamic per-token scales (a .lowbit file can)`,
        );
      }
      const note = `moe expert ${e.index}: ${natural} routed / ${seen} calibration tokens` +
        (dynamic ? "; dynamic per-token activation scales" : "");
      if (natural === 0 || seen === 0) {
        st.warnings.push(
          `moe: expert ${e.index} of router '${r.node}' gets no calibration token from the ` +
            `data${seen > 0 ? ` (balanced calibration gives it ${seen})` : ""}` +
            (dynamic ? "; its activations get dynamic per-token scales" : ""),
        );
      }
      for (const ent of st.entries) {
        if (!e.layers.includes(ent.node) || ent.skip) continue;
        if (ent.role === "weight") {
          ent.note = note;
          if (seen === 0 && ent.rounding === "gptq") {
            // GPTQ zeroes the weights of inputs its Hessian never saw: the whole expert here
            ent.rounding = "rtn";
            st.warnings.push(
              `moe: ${ent.node}: expert ${e.index} sees no calibration token, so its GPTQ ` +
                `Hessian would be empty (GPTQ would zero its weights); rounded to nearest instead`,
            );
          }
          continue;
        }
        if (!dynamic || ent.value === r.tokens || ent.dynamic || st.opts.plan) continue;
        Object.assign(ent, {
          quantizer: "uniform",
          granularity: { kind: "row", axis: -1 },
          mode: "symmetric",
          dynamic: true,
          by: "moe",
          note,
        });
        delete ent.scale;
        delete ent.zeroPoint;
      }
    }
  });
}

/** The calibration hook: balanced routing, and GPTQ rows weighted by the gate. */
function hook(ctx: MoEContext): CalibrationHook {
  const infoFor = (g: GraphView, o: PluginOptionValues) =>
    ctx.info ?? detectWithConfig(g, moeOptions(o).config);
  let roles = new Map<string, { router: number; expert: number }>();
  let watchInfo: MoEInfo | undefined;
  let floor = 0.01;
  return {
    name: "moe",
    transformGraph<G extends GraphView>(graph: G, o: PluginOptionValues): G {
      if (moeOptions(o).calib !== "balanced" || !(ctx.frac > 0)) return graph;
      return balancedGraph(graph, infoFor(graph, o), ctx.frac);
    },
    watch(graph: GraphView, o: PluginOptionValues): string[] {
      if (moeOptions(o).hessian !== "affinity") {
        watchInfo = undefined;
        return [];
      }
      watchInfo = infoFor(graph, o);
      floor = moeOptions(o).floor;
      roles = layerRoles(watchInfo);
      return watchInfo.routers.flatMap((r) =>
        r.dispatch === "dense" ? [r.probs] : r.experts.flatMap((e) => (e.gate ? [e.gate] : []))
      );
    },
    rowWeights(layer: LayerView, batch: HookBatch, rows: number): Float32Array | undefined {
      const role = roles.get(layer.node);
      if (!watchInfo || !role || role.expert < 0) return undefined;
      const r = watchInfo.routers[role.router];
      const e = r.experts.find((x) => x.index === role.expert)!;
      if (r.dispatch === "dense") {
        const p = batch.values.get(r.probs);
        const E = p?.shape[p.shape.length - 1] ?? 0;
        if (!p || p.data.length / E !== rows) return void ctx.unweighted.add(layer.node);
        return Float32Array.from(
          { length: rows },
          (_, i) => Math.max(floor, Number(p.data[i * E + e.index])),
        );
      }
      const g = e.gate ? batch.values.get(e.gate) : undefined;
      if (!g || g.data.length !== rows) return void ctx.unweighted.add(layer.node);
      return Float32Array.from(g.data as ArrayLike<number>, (v) => Math.max(floor, v));
    },
  };
}

/** Balanced calibration with too few samples: the data, then generated samples. */
function source(ctx: MoEContext): CalibrationSource {
  return {
    name: "moe-balanced",
    applies: (_g, o) => moeOptions(o).calib === "balanced" && ctx.extra > 0,
    async *batches(c) {
      if (!c.data) return;
      for (const b of calibrationBatches(c.data.inputs, c.data.count, c.batchSize, ctx.extra)) {
        yield { inputs: b };
      }
    },
  };
}

/**
 * Tokens per expert measured by the last `quantize()` run with the plugin in this registry
 * (undefined before one ran).
 *
 * @param registry the registry the plugin was registered in
 * @returns per router: tokens the data routes to each expert, tokens each receives in calibration
 *
 * @example
 * ```ts
 * import { lastCoverage } from "@lowbit/moe";
 * import { createRegistry } from "@lowbit/core";
 * if (lastCoverage(createRegistry()) !== undefined) throw new Error();
 * ```
 */
export function lastCoverage(registry: Registry): RouterCoverage[] | undefined {
  return contexts.get(registry)?.coverage;
}

const contexts = new WeakMap<Registry, MoEContext>();

/**
 * The plugin: `--plugin moe` (or `plugins/moe/mod.ts`) loads it.
 *
 * @example
 * ```ts
 * import { plugin } from "@lowbit/moe";
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * const r = createRegistry();
 * registerBuiltins(r);
 * r.use(plugin);
 * if (!r.options.list().includes("moe-calib") || !r.commands.list().includes("moe")) throw new Error();
 * ```
 */
export const plugin: Plugin = {
  name: "moe",
  version: "0.1.0",
  register(r: Registry): void {
    const ctx: MoEContext = { frac: 0, extra: 0, generate: false, unweighted: new Set() };
    contexts.set(r, ctx);
    for (const o of MOE_OPTIONS) r.options.register(o);
    r.stages.register({ name: "moe-plan", after: "plan", run: (st) => planStage(ctx, st) });
    r.stages.register({
      name: "moe-coverage",
      before: "calibrate",
      run: (st) => coverageStage(ctx, st),
    });
    r.stages.register({
      name: "moe-calibrated",
      after: "calibrate",
      run(st: QuantizeState): void {
        for (const l of ctx.unweighted) {
          st.warnings.push(
            `moe: ${l}: its GPTQ rows do not line up with its gate values; rows weighted 1`,
          );
        }
        ctx.unweighted.clear();
      },
    });
    r.hooks.register(hook(ctx));
    r.sources.register(source(ctx));
    r.commands.register(moeCommand(r));
    r.reportSections.register(reportSection(ctx, r));
    r.inspectors.register({
      name: "moe",
      inspect: (graph, options) => {
        const info = detectWithConfig(graph, moeOptions(options).config);
        return {
          title: "MoE routing (routers, experts, combine)",
          lines: describeMoE(info),
          data: info,
        };
      },
    });
  },
};

/** Routing agreement and tokens per expert, in `lowbit quantize`'s HTML report. */
function reportSection(ctx: MoEContext, registry: Registry): ReportSection {
  return {
    name: "moe-routing",
    async render(c: ReportContext): Promise<ReportPart | undefined> {
      const info = detectMoE(c.graph);
      if (info.routers.length === 0 || !c.inputs) return undefined;
      const agree = await routingAgreement(
        c.models.float as Model,
        c.models.quantized as Model,
        info,
        c.inputs,
        { registry },
      );
      const esc = (t: string) => t.replace(/[&<>"']/g, (x) => `&#${x.charCodeAt(0)};`);
      const rows = agree.map((r, i) => {
        const cov = ctx.coverage?.[i];
        const experts = r.experts.map((e) =>
          `<tr><td>${e.expert}</td><td>${cov?.natural[e.expert] ?? "–"}</td><td>${
            cov?.seen[e.expert] ?? "–"
          }</td><td>${e.floatTokens}</td><td>${e.quantTokens}</td><td>${
            e.agreement === null ? "–" : `${(e.agreement * 100).toFixed(2)} %`
          }</td></tr>`
        ).join("");
        return `<h3>${esc(r.router)}: top-k agreement ${
          (r.agreement * 100).toFixed(2)
        } % over ${r.tokens} tokens</h3><table><thead><tr><th>expert</th><th>calibration tokens (routed)</th>` +
          `<th>calibration tokens (balanced)</th><th>evaluation tokens, float</th>` +
          `<th>evaluation tokens, quantized</th><th>agreement</th></tr></thead><tbody>${experts}` +
          `</tbody></table>`;
      });
      return { title: "Mixture of experts: routing", html: rows.join("\n") };
    },
  };
}
