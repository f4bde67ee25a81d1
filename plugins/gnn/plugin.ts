/**
 * The plugin record: what `--plugin gnn` registers.
 *
 * @module
 */

import type { Plugin, Registry } from "@lowbit/core";
import { aggregationMarker } from "./marker.ts";
import { degreeQuantizer } from "./quantizer.ts";
import { degreeFitStage, wholeGraphStage } from "./stages.ts";
import { gnnSearchGroups } from "./groups.ts";
import { GNN_OPTIONS } from "./options.ts";
import { gnnCommand } from "./eval_command.ts";
import { indexAddStage } from "./index_add.ts";
import { selfLoopStage } from "./self_loops.ts";

/**
 * The GNN plugin: the `gnn-aggregations` marker, the `gnn-degree` quantizer, the stages
 * `gnn-index-add`, `gnn-self-loops`, `gnn-whole-graph` and `gnn-degree-fit`, the `gnn-layers` search
 * groups, the `--gnn-*` options
 * and the `lowbit gnn eval` command.
 *
 * @example
 * ```ts
 * import { plugin } from "@lowbit/gnn";
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * const r = createRegistry();
 * registerBuiltins(r);
 * r.use(plugin);
 * if (!r.quantizers.list().includes("gnn-degree")) throw new Error();
 * ```
 */
export const plugin: Plugin = {
  name: "gnn",
  version: "0.1.0",
  register(r: Registry): void {
    r.quantizers.register(degreeQuantizer(r));
    r.markers.register(aggregationMarker);
    r.stages.register({ name: "gnn-index-add", after: "prepare", run: indexAddStage });
    r.stages.register({ name: "gnn-self-loops", after: "gnn-index-add", run: selfLoopStage });
    r.stages.register({ name: "gnn-whole-graph", before: "plan", run: wholeGraphStage });
    r.stages.register({ name: "gnn-degree-fit", after: "calibrate", run: degreeFitStage });
    r.searchGroups.register(gnnSearchGroups);
    for (const o of GNN_OPTIONS) r.options.register(o);
    r.commands.register({
      name: "gnn",
      summary:
        "gnn eval: node accuracy on the whole graph; gnn static: fix input shapes to a graph",
      main: gnnCommand,
    });
  },
};
