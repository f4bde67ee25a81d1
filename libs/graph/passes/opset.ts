/**
 * Opset upgrade of the default ONNX domain, for the operators whose signature
 * changed between opsets 9 and 21 (attributes that became inputs, Softmax's
 * axis semantics, Upsample → Resize, Dropout → Identity at inference).
 *
 * @module
 */

import { LowbitError } from "@lowbit/core";
import type { Attr, Graph, Model, Node, TensorData } from "../ir.ts";
import { attrInt, attrInts, make } from "./_const_eval.ts";
import { inferShapes } from "./shape_infer.ts";

/**
 * Smallest IR version that may import a given default-domain opset.
 *
 * @param opset the default-domain opset
 * @returns the IR version
 *
 * @example
 * ```ts
 * import { irVersionFor } from "@lowbit/graph";
 * if (irVersionFor(13) !== 7 || irVersionFor(21) !== 10) throw new Error();
 * ```
 */
export function irVersionFor(opset: number): number {
  return opset >= 21
    ? 10
    : opset >= 19
    ? 9
    : opset >= 15
    ? 8
    : opset >= 13
    ? 7
    : opset >= 12
    ? 7
    : opset >= 11
    ? 6
    : 5;
}

const REDUCE_18 = [
  "ReduceMean",
  "ReduceMax",
  "ReduceMin",
  "ReduceProd",
  "ReduceL1",
  "ReduceL2",
  "ReduceLogSum",
  "ReduceLogSumExp",
  "ReduceSumSquare",
];

/**
 * Rewrites a model to import the default ONNX domain at `target` (≥ its
 * current opset, at most 21), converting the operators whose interface
 * changed: Clip (min/max → inputs, 11), Slice (attrs → inputs, 10), Pad (11),
 * TopK (k → input, 10), Squeeze/Unsqueeze/Split/ReduceSum (axes/split →
 * inputs, 13), other Reduce* (18), Split's num_outputs (18), Softmax /
 * LogSoftmax / Hardmax (single-axis semantics, 13), Upsample and Resize-10
 * (→ Resize-11 asymmetric), Dropout (→ Identity). Also raises the IR version
 * as the opset requires. Subgraphs are converted too.
 *
 * @param model the model (not modified)
 * @param target the opset to import
 * @returns the upgraded model (the same object when nothing changes)
 * @throws {LowbitError} `UNSUPPORTED` when a conversion needs information the
 *   graph lacks (e.g. Softmax over an input of unknown rank)
 *
 * @example
 * ```ts
 * import { upgradeOpset, type Model } from "@lowbit/graph";
 * const m: Model = { irVersion: 4, opsets: [{ domain: "", version: 9 }], producerName: "", producerVersion: "",
 *   metadata: {}, graph: { name: "g", initializers: new Map(), valueInfo: new Map(),
 *   inputs: [{ name: "x", dtype: "float32", shape: [1, 4] }], outputs: [{ name: "y", dtype: "float32" }],
 *   nodes: [{ name: "clip", op: "Clip", domain: "", inputs: ["x"], outputs: ["y"],
 *     attrs: { min: { kind: "float", value: 0 }, max: { kind: "float", value: 6 } } }] } };
 * const u = upgradeOpset(m, 13);
 * if (u.graph.nodes[0].inputs.length !== 3 || u.opsets[0].version !== 13) throw new Error();
 * ```
 */
export function upgradeOpset(model: Model, target: number): Model {
  const cur = model.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 1;
  if (target <= cur) return model;
  if (target > 21) {
    throw new LowbitError("UNSUPPORTED", `opset ${target} is newer than lowbit knows (21)`);
  }
  const graph = upgradeGraph(model.graph, cur, target);
  const opsets = model.opsets.filter((o) => o.domain !== "" && o.domain !== "ai.onnx");
  return {
    ...model,
    graph,
    irVersion: Math.max(model.irVersion, irVersionFor(target)),
    opsets: [{ domain: "", version: target }, ...opsets],
  };
}

function upgradeGraph(g: Graph, from: number, to: number): Graph {
  const inits = new Map(g.initializers);
  const taken = new Set<string>([...inits.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) for (const o of n.outputs) taken.add(o);
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const constInput = (node: Node, what: string, t: TensorData): string => {
    const name = fresh(`${node.name}_${what}`);
    inits.set(name, t);
    return name;
  };
  const crosses = (v: number): boolean => from < v && to >= v;
  let facts: ReturnType<typeof inferShapes>["facts"] | undefined;
  const rankOf = (v: string): number | undefined => {
    try {
      facts ??= inferShapes(g).facts;
    } catch {
      facts = new Map();
    }
    return facts.get(v)?.shape?.length;
  };
  const nodes: Node[] = [];
  for (const n0 of g.nodes) {
    let n: Node = { ...n0, attrs: { ...n0.attrs }, inputs: [...n0.inputs] };
    for (const [k, a] of Object.entries(n.attrs)) {
      if (a.kind === "graph") {
        n.attrs[k] = { kind: "graph", value: upgradeGraph(a.value, from, to) };
      }
    }
    if (n.domain !== "" && n.domain !== "ai.onnx") {
      nodes.push(n);
      continue;
    }
    const take = (name: string): Attr | undefined => {
      const a = n.attrs[name];
      delete n.attrs[name];
      return a;
    };
    const i64 = (v: number[]): TensorData => make("int64", [v.length], v);
    switch (n.op) {
      case "Clip":
        if (crosses(11) && n.inputs.length === 1) {
          const lo = take("min"), hi = take("max");
          const f = (a: Attr | undefined, w: string): string =>
            a?.kind === "float" ? constInput(n, w, make("float32", [], [a.value])) : "";
          n.inputs.push(f(lo, "min"), f(hi, "max"));
          while (n.inputs.length > 1 && n.inputs[n.inputs.length - 1] === "") n.inputs.pop();
        }
        break;
      case "Slice":
        if (crosses(10) && n.inputs.length === 1) {
          const s = attrInts(n, "starts") ?? [],
            e = attrInts(n, "ends") ?? [],
            ax = attrInts(n, "axes");
          take("starts");
          take("ends");
          take("axes");
          n.inputs.push(constInput(n, "starts", i64(s)), constInput(n, "ends", i64(e)));
          if (ax) n.inputs.push(constInput(n, "axes", i64(ax)));
        }
        break;
      case "Pad":
        if (crosses(11) && n.inputs.length === 1) {
          const pads = attrInts(n, "pads") ?? attrInts(n, "paddings") ?? [];
          take("pads");
          take("paddings");
          const v = take("value");
          n.inputs.push(constInput(n, "pads", i64(pads)));
          if (v?.kind === "float" && v.value !== 0) {
            n.inputs.push(constInput(n, "value", make("float32", [], [v.value])));
          }
        }
        break;
      case "TopK":
        if (crosses(10) && n.inputs.length === 1) {
          const k = attrInt(n, "k", 1);
          take("k");
          n.inputs.push(constInput(n, "k", i64([k])));
        }
        break;
      case "Squeeze":
      case "Unsqueeze":
      case "ReduceSum":
        if (crosses(13) && n.inputs.length === 1) {
          const ax = attrInts(n, "axes");
          take("axes");
          if (ax) n.inputs.push(constInput(n, "axes", i64(ax)));
        }
        break;
      case "Split":
        if (crosses(13) && n.inputs.length === 1) {
          const sp = attrInts(n, "split");
          take("split");
          if (sp) n.inputs.push(constInput(n, "split", i64(sp)));
        }
        if (crosses(18) && !n.inputs[1] && !n.attrs.num_outputs) {
          n.attrs.num_outputs = { kind: "int", value: n.outputs.length };
        }
        break;
      case "Softmax":
      case "LogSoftmax":
      case "Hardmax":
        if (crosses(13)) {
          const r = rankOf(n.inputs[0]);
          let axis = attrInt(n, "axis", 1);
          if (r === undefined) {
            throw new LowbitError(
              "UNSUPPORTED",
              `cannot upgrade ${n.op} to opset ${to}: input rank unknown`,
              {
                node: n.name,
              },
            );
          }
          if (axis < 0) axis += r;
          if (axis === r - 1) {
            n.attrs.axis = { kind: "int", value: axis };
          } else {
            // Old semantics: flatten to 2-D at `axis`, normalise rows, restore the shape.
            const flat = fresh(`${n.name}_flat`), shp = fresh(`${n.name}_shape`);
            const y = fresh(`${n.name}_2d`);
            nodes.push(
              {
                name: fresh(`${n.name}_shape_of`),
                op: "Shape",
                domain: "",
                inputs: [n.inputs[0]],
                outputs: [shp],
                attrs: {},
              },
              {
                name: fresh(`${n.name}_flatten`),
                op: "Flatten",
                domain: "",
                inputs: [n.inputs[0]],
                outputs: [flat],
                attrs: { axis: { kind: "int", value: axis } },
              },
            );
            nodes.push({
              ...n,
              inputs: [flat],
              outputs: [y],
              attrs: { axis: { kind: "int", value: 1 } },
            });
            n = {
              name: fresh(`${n.name}_reshape`),
              op: "Reshape",
              domain: "",
              inputs: [y, shp],
              outputs: n.outputs,
              attrs: {},
            };
          }
        }
        break;
      case "Upsample":
      case "Resize":
        if ((n.op === "Upsample" || from === 10) && to >= 11 && n.inputs.length === 2) {
          const mode = attrString0(n.attrs.mode) ?? "nearest";
          n = {
            ...n,
            op: "Resize",
            inputs: [n.inputs[0], "", n.inputs[1]],
            attrs: {
              mode: { kind: "string", value: mode },
              coordinate_transformation_mode: { kind: "string", value: "asymmetric" },
              ...(mode === "nearest" ? { nearest_mode: { kind: "string", value: "floor" } } : {}),
            },
          };
          if (from < 13) {
            // NOTE: Resize-11/12 need a roi input even when unused.
            n.inputs[1] = constInput(n, "roi", make("float32", [0], []));
          }
        }
        break;
      case "Dropout":
        if (crosses(12) && n.outputs.length === 1) {
          n = { ...n, op: "Identity", inputs: [n.inputs[0]], attrs: {} };
        }
        break;
    }
    if (REDUCE_18.includes(n.op) && crosses(18) && n.inputs.length === 1) {
      const ax = attrInts(n, "axes");
      delete n.attrs.axes;
      if (ax) n.inputs.push(constInput(n, "axes", i64(ax)));
    }
    nodes.push(n);
  }
  return { ...g, nodes, initializers: inits };
}

function attrString0(a: Attr | undefined): string | undefined {
  return a?.kind === "string" ? a.value : undefined;
}
