/**
 * The plugin record: what `--plugin diffusion` registers — options, the calibration source, the
 * timestep-grouped calibrator and quantizer, the split-shortcut marker, the points stage, the
 * `lowbit diffusion` command and the report section.
 *
 * @module
 */

import type { Plugin, Registry } from "@lowbit/core";
import { diffusionCommand } from "./commands.ts";
import { type GroupConfig, groupedQuantizer, timestepCalibrator } from "./grouped.ts";
import { DIFFUSION_OPTIONS } from "./options.ts";
import { pointsStage, shortcutMarker } from "./points.ts";
import { diffusionReportSection } from "./report_section.ts";
import { diffusionSource } from "./source.ts";

/** The diffusion plugin (`@lowbit/diffusion`). */
export const plugin: Plugin = {
  name: "diffusion",
  version: "0.1.0",
  register(r: Registry): void {
    const groups: { config: GroupConfig } = { config: { time: "t", T: 1, groups: 1 } };
    for (const o of DIFFUSION_OPTIONS) r.options.register(o);
    r.sources.register(diffusionSource());
    r.quantizers.register(groupedQuantizer(r, () => groups.config.T));
    r.calibrators.register(timestepCalibrator(r, "minmax", () => groups.config));
    r.markers.register(shortcutMarker());
    r.stages.register(pointsStage(r, groups));
    r.commands.register(diffusionCommand(r));
    r.reportSections.register(diffusionReportSection());
  },
};
