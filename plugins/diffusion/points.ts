/**
 * The plugin's quantization points: a marker that gives each input of a skip-connection Concat
 * its own point (split shortcut quantization, Q-Diffusion), and a stage (after `mark`) that keeps
 * the time-embedding path at higher precision (TFMQ-DM), leaves the joined Concat output
 * unquantized when its inputs are split, and turns activation points timestep-grouped.
 *
 * @module
 */

import { type GraphView, LowbitError, type Marker, type Registry, type Stage } from "@lowbit/core";
import type { QuantizeState } from "@lowbit/pipeline";
import { type GroupConfig, timestepCalibrator } from "./grouped.ts";
import { findDiffusionInputs } from "./inputs.ts";
import { parseDiffusionOptions } from "./options.ts";
import { skipConcats, timePath } from "./paths.ts";
import { readSchedule } from "./schedule.ts";

/** The marker's registry name (plan entries it adds say `by: "diffusion-shortcut"`). */
export const SHORTCUT_MARKER = "diffusion-shortcut";

/**
 * The marker `diffusion-shortcut`: every input of a skip Concat (unless `--joint-shortcut`).
 *
 * @returns the marker
 *
 * @example
 * ```ts
 * import { shortcutMarker } from "@lowbit/diffusion";
 * const g = { inputs: [{ name: "x", dtype: "float32", shape: [1, 1, 2, 2] },
 *   { name: "t", dtype: "float32", shape: [1] }], outputs: [{ name: "y" }], initializers: new Map(),
 *   nodes: [{ name: "c", op: "Concat", domain: "", inputs: ["x", "x"], outputs: ["y"], attrs: {} }] };
 * if (shortcutMarker().mark(g, {}).length !== 1) throw new Error();
 * if (shortcutMarker().mark(g, { "joint-shortcut": true }).length !== 0) throw new Error();
 * ```
 */
export function shortcutMarker(): Marker {
  return {
    name: SHORTCUT_MARKER,
    mark(graph, options) {
      const o = parseDiffusionOptions(options);
      if (o.jointShortcut) return [];
      let image: string;
      try {
        image = findDiffusionInputs(graph, { timeInput: o.timeInput }).image;
      } catch {
        return []; // the stage `diffusion-points` reports the missing input, naming the model
      }
      const values = new Set(skipConcats(graph, image).flatMap((c) => c.inputs));
      return [...values].map((value) => ({
        value,
        note: "skip Concat input (split shortcut quantization)",
      }));
    },
  };
}

/**
 * The stage `diffusion-points` (after `mark`): time-embedding path precision, split shortcuts,
 * timestep groups. It writes the group configuration the grouped calibrators and quantizer read
 * into `groups`.
 *
 * @param registry the registry (base calibrators are wrapped into `timestep-<base>` here)
 * @param groups where the group configuration goes
 * @returns the stage
 *
 * @example
 * ```ts
 * import { createRegistry } from "@lowbit/core";
 * import { pointsStage } from "@lowbit/diffusion";
 * const s = pointsStage(createRegistry(), { config: { time: "t", T: 1, groups: 1 } });
 * if (s.after !== "mark") throw new Error();
 * ```
 */
export function pointsStage(
  registry: Registry,
  groups: { config: GroupConfig },
): Stage {
  return {
    name: "diffusion-points",
    after: "mark",
    async run(st: QuantizeState): Promise<void> {
      if (st.opts.plan) return; // a replayed plan carries its points, fitted
      const o = parseDiffusionOptions(st.pluginOptions);
      const schedule = o.schedule ? await readSchedule(o.schedule, o.timesteps) : undefined;
      const graph = st.model.graph as unknown as GraphView;
      const inputs = findDiffusionInputs(graph, { timeInput: o.timeInput, file: st.opts.name });
      const tp = timePath(graph, inputs.time, inputs.image);
      const layerInput = new Map(st.layers.map((l) => [l.node, l.input]));

      // The time-embedding path: int8 at least (or float), whatever the rest gets.
      if (o.timePrecision !== "same") {
        for (const e of st.entries) {
          const v = e.role === "activation" ? e.value : layerInput.get(e.node);
          if (e.skip || !v || !tp.has(v) || !e.format) continue;
          if (o.timePrecision === "float") {
            e.skip = true;
            e.reason = "time-embedding path kept in float (--time-precision float)";
            continue;
          }
          const f = st.registry.formats.get(e.format);
          if (f.family === "int" && f.bits < 8) {
            e.format = "int8";
            e.note = "time-embedding path at int8 (--time-precision)";
          }
        }
      }

      // Split shortcuts: the marker put a point on each Concat input; the joined output goes float.
      if (!o.jointShortcut) {
        for (const c of skipConcats(graph, inputs.image)) {
          const act = (v: string) =>
            st.entries.filter((e) => e.role === "activation" && !e.skip && e.value === v);
          const joint = act(c.output);
          const parts = c.inputs.map((v) => act(v)[0]);
          if (!joint.length || parts.some((p) => !p)) continue;
          for (const p of parts) {
            if (p.by !== SHORTCUT_MARKER) continue;
            p.format = joint[0].format;
            p.mode = joint[0].mode;
            p.calibrator = joint[0].calibrator;
          }
          for (const j of joint) {
            j.skip = true;
            j.reason = `split shortcut: each input of Concat '${c.node}' has its own parameters`;
          }
        }
      }

      // Timestep groups: G parameter sets per activation point, picked from the time input.
      if (o.groups > 1) {
        const T = schedule?.T ?? o.timesteps;
        if (T === undefined) {
          throw new LowbitError(
            "INVALID_ARGUMENT",
            "--timestep-groups needs the number of timesteps: give --schedule or --timesteps",
          );
        }
        if (o.groups > T) {
          throw new LowbitError(
            "INVALID_ARGUMENT",
            `--timestep-groups ${o.groups} exceeds the ${T} timesteps`,
          );
        }
        groups.config = { time: inputs.time, T, groups: o.groups };
        for (const e of st.entries) {
          if (e.role !== "activation" || e.skip || e.dynamic || e.scale || !e.format) continue;
          if (st.registry.formats.get(e.format).family !== "int") continue;
          const base = e.calibrator ?? "minmax";
          const name = base.startsWith("timestep-") ? base : `timestep-${base}`;
          if (!registry.calibrators.has(name)) {
            registry.calibrators.register(timestepCalibrator(registry, base, () => groups.config));
          }
          e.quantizer = "timestep-grouped";
          e.calibrator = name;
          e.reads = [inputs.time];
        }
      }
    },
  };
}
