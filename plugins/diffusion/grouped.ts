/**
 * Timestep-grouped activation quantization. The T timesteps split into G equal groups
 * (group g = ⌊t·G/T⌋); a calibrator `timestep-<base>` keeps one `<base>` calibrator (minmax, …)
 * per group, sorting each sample of a batch by the time input it sees in `ctx.inputs`, and returns
 * G ranges; the quantizer `timestep-grouped` fits one uniform parameter set per group (kept in
 * `params.extra`) and, at run time, fake-quantizes each sample with its group's set, reading the
 * time input (`params.reads`). Codes without a time value (`quantize` / `dequantize`) use the set
 * fitted on the union of the groups' ranges, which is also `params.scale`.
 *
 * @module
 */

import {
  type BatchContext,
  type Calibrator,
  type CalibratorFactory,
  type CalibratorOptions,
  type Codes,
  LowbitError,
  type QParams,
  type Quantizer,
  type Range,
  type Registry,
  type Tensor,
} from "@lowbit/core";
import { timesOf } from "./inputs.ts";

/** Where grouped calibration finds the timestep, and how many groups of how many timesteps. */
export interface GroupConfig {
  /** The time input's name. */
  readonly time: string;
  /** Timesteps of the schedule. */
  readonly T: number;
  /** Groups. */
  readonly groups: number;
}

/**
 * The group of a timestep: ⌊t·G/T⌋, clamped to 0 … G−1.
 *
 * @param t the timestep
 * @param T timesteps
 * @param G groups
 * @returns the group index
 *
 * @example
 * ```ts
 * import { timestepGroup } from "@lowbit/diffusion";
 * if ([0, 12, 13, 49].map((t) => timestepGroup(t, 50, 4)).join() !== "0,0,1,3") throw new Error();
 * ```
 */
export function timestepGroup(t: number, T: number, G: number): number {
  return Math.max(0, Math.min(G - 1, Math.floor((t * G) / T)));
}

/** Sample indices per group, from one timestep per sample (or one for the whole batch). */
function samplesByGroup(
  ts: Float64Array,
  n: number,
  T: number,
  G: number,
  what: string,
): number[][] {
  if (ts.length !== n && ts.length !== 1) {
    throw new LowbitError(
      "SHAPE_MISMATCH",
      `${ts.length} timesteps for a batch of ${n} samples; the time input needs one per sample`,
      { tensor: what },
    );
  }
  const by: number[][] = Array.from({ length: G }, () => []);
  for (let i = 0; i < n; i++) by[timestepGroup(ts[ts.length === 1 ? 0 : i], T, G)].push(i);
  return by;
}

function gather(t: Tensor, idx: readonly number[]): Tensor {
  const n = t.shape[0], per = t.data.length / n;
  const data = new Float32Array(idx.length * per);
  idx.forEach((s, k) => data.set(t.data.subarray(s * per, (s + 1) * per), k * per));
  return { shape: [idx.length, ...t.shape.slice(1)], data };
}

const PARTS = Symbol("timestep-parts");

/**
 * A calibrator factory `timestep-<base>`: one `base` calibrator per timestep group.
 *
 * @param registry where the base calibrator is registered
 * @param base the base calibrator's name ("minmax", "percentile", ...)
 * @param config the time input, T and G (read when a calibrator is created)
 * @returns the factory
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { timestepCalibrator } from "@lowbit/diffusion";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const c = timestepCalibrator(r, "minmax", () => ({ time: "t", T: 4, groups: 2 })).create();
 * const inputs = { t: { shape: [2], data: Float32Array.of(0, 3) } };
 * c.observe({ shape: [2, 1], data: Float32Array.of(-1, 5) }, { batch: 0, tags: {}, inputs });
 * const { min, max } = c.result();
 * if ([...min].join() !== "-1,5" || [...max].join() !== "-1,5") throw new Error();
 * ```
 */
export function timestepCalibrator(
  registry: Registry,
  base: string,
  config: () => GroupConfig,
): CalibratorFactory {
  return {
    name: `timestep-${base}`,
    create(opts?: CalibratorOptions): Calibrator {
      const { time, T, groups: G } = config();
      const parts = Array.from({ length: G }, () => registry.calibrators.get(base).create(opts));
      const seen = new Array<boolean>(G).fill(false);
      const self: Calibrator & { [PARTS]: { parts: Calibrator[]; seen: boolean[] } } = {
        name: `timestep-${base}`,
        [PARTS]: { parts, seen },
        observe(batch: Tensor, ctx?: BatchContext): void {
          const tv = ctx?.inputs?.[time] ?? (ctx?.tags.t ? { data: ctx.tags.t } : undefined);
          if (!tv) {
            throw new LowbitError(
              "INVALID_ARGUMENT",
              `timestep-grouped calibration needs the time input '${time}' of each batch`,
              { tensor: time },
            );
          }
          const by = samplesByGroup(timesOf(tv), batch.shape[0], T, G, time);
          by.forEach((idx, g) => {
            if (!idx.length) return;
            seen[g] = true;
            parts[g].observe(idx.length === batch.shape[0] ? batch : gather(batch, idx), ctx);
          });
        },
        merge(other: Calibrator): void {
          const o = (other as typeof self)[PARTS];
          o.parts.forEach((p, g) => {
            if (!o.seen[g]) return;
            if (seen[g]) parts[g].merge(p);
            else parts[g] = p;
            seen[g] = true;
          });
        },
        result(): Range {
          const rs = parts.map((p, g) => (seen[g] ? p.result() : undefined));
          const got = rs.filter((r): r is Range => !!r);
          if (!got.length) {
            throw new LowbitError("INVALID_ARGUMENT", "no calibration data reached this point");
          }
          // A group no sample fell into takes the union of the others.
          const lo = Math.min(...got.map((r) => r.min[0])),
            hi = Math.max(...got.map((r) => r.max[0]));
          return {
            min: Float32Array.from(rs, (r) => (r ? r.min[0] : lo)),
            max: Float32Array.from(rs, (r) => (r ? r.max[0] : hi)),
          };
        },
      };
      return self;
    },
  };
}

/**
 * The quantizer `timestep-grouped` (integer formats): G uniform parameter sets, one per timestep
 * group, in `extra` (`scales`, `zeroPoints`, `groups` = [G], `timesteps` = [T]); `fakeQuant` picks
 * each sample's set from the time input named first in `params.reads`.
 *
 * @param registry where the built-in `uniform` quantizer is registered
 * @param timesteps T, read when fitting
 * @returns the quantizer
 *
 * @example
 * ```ts
 * import { createRegistry, registerBuiltins } from "@lowbit/core";
 * import { groupedQuantizer } from "@lowbit/diffusion";
 * const r = createRegistry();
 * registerBuiltins(r);
 * const q = groupedQuantizer(r, () => 4);
 * const qp = { ...q.fit({ min: Float32Array.of(-1, -8), max: Float32Array.of(1, 8) },
 *   { format: "int8", granularity: { kind: "tensor" }, mode: "symmetric" }), reads: ["t"] };
 * const x = { shape: [2, 1], data: Float32Array.of(0.03, 0.03) };
 * const y = q.fakeQuant(x, qp, { batch: 0, tags: {}, inputs: { t: { shape: [2], data: Float32Array.of(0, 3) } } });
 * // t = 0 (group 0, step ≈ 1/127) keeps 0.03 close; t = 3 (group 1, step ≈ 8/127) rounds it to 0.
 * if (Math.abs(y.data[0] - 0.03) > 0.004 || y.data[1] !== 0) throw new Error(String(y.data));
 * ```
 */
export function groupedQuantizer(registry: Registry, timesteps: () => number): Quantizer {
  const uniform = () => registry.quantizers.get("uniform");
  const groupParams = (qp: QParams, g: number): QParams => {
    const { extra: _e, reads: _r, ...rest } = qp;
    return {
      ...rest,
      scale: Float32Array.of(qp.extra!.scales[g]),
      zeroPoint: Int32Array.of(qp.extra!.zeroPoints[g]),
    };
  };
  const baseParams = (qp: QParams): QParams => {
    const { extra: _e, reads: _r, ...rest } = qp;
    return rest;
  };
  return {
    name: "timestep-grouped",
    supports: (f) => f.family === "int" && uniform().supports(f),
    fit(input, opts): QParams {
      const u = uniform();
      const o = { ...opts, granularity: { kind: "tensor" as const } };
      if (!("min" in input)) {
        const qp = u.fit(input, o);
        return {
          ...qp,
          extra: {
            scales: [qp.scale[0]],
            zeroPoints: [qp.zeroPoint[0]],
            groups: [1],
            timesteps: [timesteps()],
          },
        };
      }
      const G = input.min.length;
      const sets = Array.from(
        { length: G },
        (_, g) =>
          u.fit({ min: input.min.subarray(g, g + 1), max: input.max.subarray(g, g + 1) }, o),
      );
      const all = u.fit({
        min: Float32Array.of(Math.min(...input.min)),
        max: Float32Array.of(Math.max(...input.max)),
      }, o);
      return {
        ...all,
        extra: {
          scales: sets.map((s) => s.scale[0]),
          zeroPoints: sets.map((s) => s.zeroPoint[0]),
          groups: [G],
          timesteps: [timesteps()],
        },
      };
    },
    quantize: (t: Tensor, qp: QParams): Codes => uniform().quantize(t, baseParams(qp)),
    dequantize: (c: Codes, qp: QParams, shape: readonly number[]): Tensor =>
      uniform().dequantize(c, baseParams(qp), shape),
    fakeQuant(t: Tensor, qp: QParams, ctx?: BatchContext): Tensor {
      const u = uniform();
      const G = qp.extra?.groups?.[0] ?? 1;
      if (G === 1) return u.fakeQuant(t, qp.extra ? groupParams(qp, 0) : baseParams(qp));
      const time = qp.reads?.[0];
      const tv = time === undefined ? undefined : ctx?.inputs?.[time];
      if (!tv) {
        throw new LowbitError(
          "INVALID_ARGUMENT",
          `a timestep-grouped point needs the time input${time ? ` '${time}'` : ""} at run time`,
          time ? { tensor: time } : {},
        );
      }
      const T = qp.extra!.timesteps[0];
      const by = samplesByGroup(timesOf(tv), t.shape[0], T, G, time!);
      const out = new Float32Array(t.data.length);
      const per = t.data.length / t.shape[0];
      by.forEach((idx, g) => {
        if (!idx.length) return;
        const y = u.fakeQuant(idx.length === t.shape[0] ? t : gather(t, idx), groupParams(qp, g));
        idx.forEach((s, k) => out.set(y.data.subarray(k * per, (k + 1) * per), s * per));
      });
      return { shape: [...t.shape], data: out };
    },
    onnx: (qp: QParams): boolean => (qp.extra?.groups?.[0] ?? 1) === 1,
  };
}
