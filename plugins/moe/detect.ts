/**
 * Finding the mixture-of-experts structure of a graph: routers (a TopK over a MatMul / Gemm
 * output, through the gate Softmax), the experts each dispatch feeds (sparse: a Gather of the
 * routed token rows; dense: every expert on every token, outputs times the masked gate) and the
 * combine. When detection fails, an override (wildcard patterns over node names, like a rules
 * file) names the router and each expert's nodes.
 *
 * @module
 */

import {
  type GraphView,
  LowbitError,
  type NodeView,
  type TensorValue,
  valueLinks,
} from "@lowbit/core";
import { globToRegExp } from "@lowbit/pipeline";

/** One expert of a router. */
export interface ExpertInfo {
  /** Expert number (the router's output column it answers to). */
  readonly index: number;
  /** Its nodes (dispatch Gather included), in graph order. */
  readonly nodes: string[];
  /** Its quantizable layers (MatMul / Gemm / Conv with a constant weight), in graph order. */
  readonly layers: string[];
  /** The value entering the expert (sparse: the gathered token rows; dense: the tokens). */
  readonly input: string;
  /** The expert's output before the gate multiply. */
  readonly output: string;
  /** The gate value its output is multiplied by (one per expert row), if found. */
  readonly gate?: string;
  /** The gate Mul node, if found. */
  readonly gateMul?: string;
  /** Sparse dispatch: the Gather that selects the expert's token rows. */
  readonly dispatch?: string;
  /** Sparse dispatch: the boolean "routed here" mask (Equal(index, e)). */
  readonly mask?: string;
}

/** One router with its experts. */
export interface RouterInfo {
  /** The router's MatMul / Gemm node. */
  readonly node: string;
  /** The token value it reads. */
  readonly tokens: string;
  /** Router logits (the layer's output). */
  readonly logits: string;
  /** The gate Softmax node and its output (probabilities), if any. */
  readonly softmax?: string;
  /** Gate probabilities (Softmax output, else the logits). */
  readonly probs: string;
  /** The TopK node. */
  readonly topk: string;
  /** TopK values (the gates of the chosen experts). */
  readonly topkValues: string;
  /** TopK indices (the chosen experts). */
  readonly topkIndices: string;
  /** k. */
  readonly k: number | undefined;
  /** Number of experts (the router's output width). */
  readonly numExperts: number | undefined;
  /** "sparse" (Gather / NonZero / Scatter), "dense" (every expert on every token) or "override". */
  readonly dispatch: "sparse" | "dense" | "override";
  /** The experts, by index. */
  readonly experts: ExpertInfo[];
  /** The node where every expert's output is merged (last ScatterND / Add), if found. */
  readonly combine?: string;
}

/** What detection found. */
export interface MoEInfo {
  /** Routers in graph order. */
  readonly routers: RouterInfo[];
}

/** A rules-style override: the router's layer and each expert's node patterns. */
export interface MoEOverride {
  /** One entry per router. */
  readonly routers: readonly {
    /** Router layer node name (wildcards allowed; must match one node). */
    readonly router: string;
    /** Per expert, in expert order: node-name patterns (`*` wildcard) of its nodes. */
    readonly experts: readonly (string | readonly string[])[];
  }[];
}

const PASS_THROUGH = new Set([
  "Softmax",
  "Sigmoid",
  "Identity",
  "Cast",
  "Reshape",
  "Flatten",
  "Squeeze",
  "Unsqueeze",
  "Transpose",
  "Div",
  "Add",
  "Sub",
]);

/** Ops whose later inputs are indices / shapes: values flow only from input 0 (and ScatterND's 2). */
const INDEXED = new Set(["Gather", "GatherElements", "GatherND", "Slice", "Reshape", "Expand"]);

interface Index {
  producer: Map<string, NodeView>;
  consumers: Map<string, NodeView[]>;
  order: Map<string, number>;
  graph: GraphView;
}

function indexGraph(graph: GraphView): Index {
  const order = new Map(graph.nodes.map((n, i) => [n.name, i]));
  return { ...valueLinks(graph), order, graph };
}

/**
 * A constant's elements as numbers (an initializer or a Constant node's value), if constant.
 *
 * @param graph the graph
 * @param value value name
 * @returns the numbers, or undefined
 *
 * @example
 * ```ts
 * import { constantOf } from "@lowbit/moe";
 * const g = { nodes: [], inputs: [], outputs: [], initializers: new Map([["k", {
 *   dtype: "int64", shape: [1], data: BigInt64Array.of(2n) }]]) };
 * if (constantOf(g, "k")?.[0] !== 2) throw new Error();
 * ```
 */
export function constantOf(graph: GraphView, value: string): number[] | undefined {
  let t: TensorValue | undefined = graph.initializers.get(value);
  if (!t) {
    const n = graph.nodes.find((m) => m.outputs[0] === value && m.op === "Constant");
    const a = n?.attrs.value as { kind?: string; value?: TensorValue } | undefined;
    if (a?.kind === "tensor") t = a.value;
  }
  if (!t) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

function isLayer(ix: Index, n: NodeView): boolean {
  if (!["MatMul", "Gemm", "Conv"].includes(n.op)) return false;
  const w = ix.graph.initializers.get(n.inputs[1]);
  return !!w && w.dtype === "float32";
}

/** The MatMul / Gemm a TopK's input comes from, through Softmax and shape-only ops. */
function routerOf(ix: Index, topk: NodeView): { layer: NodeView; softmax?: NodeView } | undefined {
  let v = topk.inputs[0];
  let softmax: NodeView | undefined;
  for (let hops = 0; hops < 8; hops++) {
    const p = ix.producer.get(v);
    if (!p) return undefined;
    if (isLayer(ix, p)) return { layer: p, softmax };
    if (!PASS_THROUGH.has(p.op)) return undefined;
    if (p.op === "Softmax" && !softmax) softmax = p;
    v = p.inputs[0];
  }
  return undefined;
}

/** Values derived (through data inputs, not indices) from the given seeds. */
function taint(ix: Index, seeds: readonly string[]): Set<string> {
  const out = new Set(seeds);
  for (const n of ix.graph.nodes) {
    const dataInputs = INDEXED.has(n.op)
      ? [n.inputs[0]]
      : n.op === "ScatterND" || n.op === "ScatterElements"
      ? [n.inputs[0], n.inputs[2]]
      : n.inputs;
    if (dataInputs.some((v) => out.has(v))) { for (const o of n.outputs) out.add(o); }
  }
  return out;
}

/** Values derived from the given seeds through any input (indices included). */
function taintAll(ix: Index, seeds: readonly string[]): Set<string> {
  const out = new Set(seeds);
  for (const n of ix.graph.nodes) {
    if (n.inputs.some((v) => out.has(v))) { for (const o of n.outputs) out.add(o); }
  }
  return out;
}

const GATHERS = new Set(["Gather", "GatherND", "GatherElements"]);

/** Nodes of an expert: backward from its output through data inputs, stopping at the tokens. */
function expertCone(ix: Index, output: string, tokens: string, tainted: Set<string>): NodeView[] {
  const seen = new Map<string, NodeView>();
  const stack = [output];
  while (stack.length) {
    const v = stack.pop()!;
    if (v === tokens || tainted.has(v)) continue;
    const p = ix.producer.get(v);
    if (!p || seen.has(p.name) || p.op === "Constant") continue;
    seen.set(p.name, p);
    const ins = INDEXED.has(p.op) ? [p.inputs[0]] : p.inputs;
    for (const i of ins) if (i && !ix.graph.initializers.has(i)) stack.push(i);
  }
  return [...seen.values()].sort((a, b) => ix.order.get(a.name)! - ix.order.get(b.name)!);
}

/** Backward search (any input) for a node satisfying `pred`, within `hops`. */
function findUp(
  ix: Index,
  v: string,
  pred: (n: NodeView) => boolean,
  hops = 6,
): NodeView | undefined {
  let frontier = [v];
  for (let h = 0; h < hops && frontier.length; h++) {
    const next: string[] = [];
    for (const f of frontier) {
      const p = ix.producer.get(f);
      if (!p) continue;
      if (pred(p)) return p;
      next.push(...p.inputs.filter((i) => i));
    }
    frontier = next;
  }
  return undefined;
}

/** The constant operand of an Equal / Slice start that names the expert. */
function expertNumber(ix: Index, gate: string | undefined, dispatch: NodeView | undefined) {
  if (dispatch) {
    const eq = findUp(ix, dispatch.inputs[1], (n) => n.op === "Equal");
    if (eq) {
      for (const i of eq.inputs) {
        const c = constantOf(ix.graph, i);
        if (c?.length === 1) return { index: c[0], mask: eq.outputs[0] };
      }
    }
    // a row of a one-hot expert mask: Gather(mask, e) before the NonZero
    const nz = findUp(ix, dispatch.inputs[1], (n) => n.op === "NonZero");
    const row = nz && ix.producer.get(nz.inputs[0]);
    const c = row?.op === "Gather" ? constantOf(ix.graph, row.inputs[1]) : undefined;
    if (c?.length === 1) return { index: c[0] };
  }
  if (gate) {
    const sl = findUp(ix, gate, (n) => n.op === "Slice", 3);
    const starts = sl && constantOf(ix.graph, sl.inputs[1]);
    if (starts?.length === 1) return { index: starts[0] };
  }
  return {};
}

/** The first node (graph order) downstream of which every given value has arrived. */
function mergePoint(ix: Index, values: readonly string[]): string | undefined {
  if (values.length < 2) return undefined;
  const reach = new Map<string, Set<number>>();
  values.forEach((v, i) => reach.set(v, new Set([i])));
  for (const n of ix.graph.nodes) {
    if (n.op === "Shape" || n.op === "Size") continue; // shape only: no value flows
    const s = new Set<number>();
    for (const i of n.inputs) for (const k of reach.get(i) ?? []) s.add(k);
    if (s.size === 0) continue;
    if (s.size === values.length) return n.name;
    for (const o of n.outputs) reach.set(o, s);
  }
  return undefined;
}

function routerBase(ix: Index, topk: NodeView, layer: NodeView, softmax?: NodeView) {
  const k = constantOf(ix.graph, topk.inputs[1])?.[0];
  const w = ix.graph.initializers.get(layer.inputs[1])!;
  const transB = (layer.attrs.transB as { value?: number } | undefined)?.value === 1;
  const numExperts = layer.op === "Gemm" && transB ? w.shape[0] : w.shape[w.shape.length - 1];
  return {
    node: layer.name,
    tokens: layer.inputs[0],
    logits: layer.outputs[0],
    ...(softmax ? { softmax: softmax.name } : {}),
    probs: softmax?.outputs[0] ?? layer.outputs[0],
    topk: topk.name,
    topkValues: topk.outputs[0],
    topkIndices: topk.outputs[1],
    k,
    numExperts,
  };
}

/**
 * Finds the routers, experts and combines of a mixture-of-experts graph (sparse or dense
 * dispatch); with an override, the routers and experts it names.
 *
 * @param graph the graph (lowbit's IR or any {@link GraphView})
 * @param override rules-style names for when detection fails
 * @returns what was found (no routers: not an MoE graph)
 *
 * @example
 * ```ts
 * import { detectMoE } from "@lowbit/moe";
 * import { readOnnxFile } from "@lowbit/graph";
 * const m = await readOnnxFile(new URL("../../fixtures/moe/moe_sparse.onnx", import.meta.url).pathname);
 * const info = detectMoE(m.graph);
 * if (info.routers[0].node !== "/router/Gemm" || info.routers[0].experts.length !== 4) throw new Error();
 * ```
 */
export function detectMoE(graph: GraphView, override?: MoEOverride): MoEInfo {
  const ix = indexGraph(graph);
  if (override) return applyOverride(ix, override);
  const routers: RouterInfo[] = [];
  for (const topk of graph.nodes.filter((n) => n.op === "TopK")) {
    const r = routerOf(ix, topk);
    if (!r) continue;
    const base = routerBase(ix, topk, r.layer, r.softmax);
    const tainted = taint(ix, [base.probs, base.topkValues, base.topkIndices]);
    const routed = taintAll(ix, [base.topkIndices, base.topkValues]);
    const experts: ExpertInfo[] = [];
    for (const n of graph.nodes) {
      if (n.op !== "Mul") continue;
      const t = n.inputs.map((v) => tainted.has(v));
      if (t[0] === t[1]) continue;
      const output = n.inputs[t[0] ? 1 : 0], gate = n.inputs[t[0] ? 0 : 1];
      const cone = expertCone(ix, output, base.tokens, tainted);
      const layers = cone.filter((c) => isLayer(ix, c)).map((c) => c.name);
      if (layers.length === 0) continue;
      // sparse: a gather whose indices come from the routing (NonZero of a routing mask)
      const dispatch = cone.find((c) =>
        GATHERS.has(c.op) && routed.has(c.inputs[1]) && !tainted.has(c.inputs[0])
      );
      const num = expertNumber(ix, gate, dispatch);
      experts.push({
        index: num.index ?? experts.length,
        nodes: cone.map((c) => c.name),
        layers,
        input: dispatch?.outputs[0] ?? base.tokens,
        output,
        gate,
        gateMul: n.name,
        ...(dispatch ? { dispatch: dispatch.name } : {}),
        ...(num.mask ? { mask: num.mask } : {}),
      });
    }
    if (experts.length === 0) continue;
    experts.sort((a, b) => a.index - b.index);
    const combine = mergePoint(
      ix,
      experts.map((e) => graph.nodes.find((n) => n.name === e.gateMul)!.outputs[0]),
    );
    routers.push({
      ...base,
      dispatch: experts.some((e) => e.dispatch) ? "sparse" : "dense",
      experts,
      ...(combine ? { combine } : {}),
    });
  }
  return { routers };
}

function applyOverride(ix: Index, o: MoEOverride): MoEInfo {
  const routers: RouterInfo[] = [];
  const auto = detectMoE(ix.graph);
  for (const spec of o.routers) {
    const re = globToRegExp(spec.router);
    const layers = ix.graph.nodes.filter((n) => re.test(n.name));
    if (layers.length !== 1 || !isLayer(ix, layers[0])) {
      throw new LowbitError(
        "INVALID_ARGUMENT",
        `MoE override: router '${spec.router}' must name one MatMul / Gemm node with a constant ` +
          `weight; it matches ${layers.length ? layers.map((l) => l.name).join(", ") : "nothing"}`,
        { node: spec.router },
      );
    }
    const layer = layers[0];
    // The TopK it feeds, through Softmax and shape-only ops.
    let topk: NodeView | undefined, softmax: NodeView | undefined;
    let v = layer.outputs[0];
    for (let hops = 0; hops < 8 && !topk; hops++) {
      const c = (ix.consumers.get(v) ?? []).find((n) => n.op === "TopK" || PASS_THROUGH.has(n.op));
      if (!c) break;
      if (c.op === "TopK") topk = c;
      else {
        if (c.op === "Softmax") softmax = c;
        v = c.outputs[0];
      }
    }
    if (!topk) {
      throw new LowbitError("INVALID_ARGUMENT", "MoE override: no TopK after the router", {
        node: layer.name,
      });
    }
    const base = routerBase(ix, topk, layer, softmax);
    const found = auto.routers.find((r) => r.node === layer.name);
    const experts = spec.experts.map((pats, index): ExpertInfo => {
      const res = (typeof pats === "string" ? [pats] : pats).map(globToRegExp);
      const nodes = ix.graph.nodes.filter((n) => res.some((r) => r.test(n.name)));
      const layers = nodes.filter((n) => isLayer(ix, n)).map((n) => n.name);
      if (layers.length === 0) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `MoE override: expert ${index} ('${[pats].flat().join("', '")}') matches no layer`,
          { node: layer.name },
        );
      }
      const same = found?.experts.find((e) => e.layers.includes(layers[0]));
      const first = nodes.find((n) => n.name === layers[0])!;
      return {
        index,
        nodes: nodes.map((n) => n.name),
        layers,
        input: same?.input ?? first.inputs[0],
        output: same?.output ?? nodes.at(-1)!.outputs[0],
        ...(same?.gate ? { gate: same.gate, gateMul: same.gateMul } : {}),
        ...(same?.dispatch ? { dispatch: same.dispatch } : {}),
        ...(same?.mask ? { mask: same.mask } : {}),
      };
    });
    routers.push({
      ...base,
      dispatch: "override",
      experts,
      ...(found?.combine ? { combine: found.combine } : {}),
    });
  }
  return { routers };
}

/**
 * Reads and checks an override file (`--moe-config FILE`): `{ "routers": [{ "router": NAME,
 * "experts": [PATTERN | [PATTERN...], ...] }] }`.
 *
 * @param json the parsed file
 * @param file its path, for errors
 * @returns the override
 *
 * @example
 * ```ts
 * import { parseOverride } from "@lowbit/moe";
 * const o = parseOverride({ routers: [{ router: "/router/Gemm", experts: ["/experts.0/*"] }] });
 * if (o.routers[0].experts.length !== 1) throw new Error();
 * ```
 */
export function parseOverride(json: unknown, file?: string): MoEOverride {
  const bad = (why: string) =>
    new LowbitError("INVALID_ARGUMENT", `MoE override: ${why}`, file ? { file } : {});
  const rs = (json as { routers?: unknown })?.routers;
  if (!Array.isArray(rs) || rs.length === 0) throw bad("needs a non-empty `routers` list");
  for (const r of rs) {
    if (typeof r?.router !== "string") throw bad("each router needs `router` (a node name)");
    if (!Array.isArray(r.experts) || r.experts.length === 0) {
      throw bad(`router '${r.router}' needs \`experts\`: node-name patterns per expert`);
    }
    for (const e of r.experts) {
      const ok = typeof e === "string" ||
        (Array.isArray(e) && e.length > 0 && e.every((p: unknown) => typeof p === "string"));
      if (!ok) throw bad(`router '${r.router}': an expert is a pattern or a list of patterns`);
    }
  }
  return json as MoEOverride;
}

/**
 * The router and expert of each layer (node name), for looking layers up.
 *
 * @param info detection result
 * @returns by layer node: router index, expert index (-1 for the router's own layer)
 *
 * @example
 * ```ts
 * import { layerRoles } from "@lowbit/moe";
 * const roles = layerRoles({ routers: [] });
 * if (roles.size !== 0) throw new Error();
 * ```
 */
export function layerRoles(info: MoEInfo): Map<string, { router: number; expert: number }> {
  const out = new Map<string, { router: number; expert: number }>();
  info.routers.forEach((r, ri) => {
    out.set(r.node, { router: ri, expert: -1 });
    for (const e of r.experts) {
      for (const l of e.layers) out.set(l, { router: ri, expert: e.index });
    }
  });
  return out;
}
