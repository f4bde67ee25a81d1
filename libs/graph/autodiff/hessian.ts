/**
 * Second-order information of a loss with respect to one weight tensor (a
 * diagonal block of the Hessian): Hessian-vector products, the Hutchinson
 * trace estimate (HAWQ-V2, PyHessian) and the top eigenvalue by power
 * iteration (HAWQ).
 *
 * NOTE: Hessian-vector products are central differences of exact (reverse-mode)
 * gradients, Hv ≈ (∇L(w + εv) − ∇L(w − εv)) / 2ε, in float64. The truncation
 * error is O(ε²‖∇³L‖); with ε = 1e-4 · rms(w) / rms(v) it sits far below the
 * Monte-Carlo error of Hutchinson. Hutchinson and power iteration use forward
 * differences (∇L(w + εv) − ∇L(w)) / ε instead, half the cost, with a relative
 * error near 1e-4 — still two orders below the tolerances they are held to. For piecewise-linear activations (ReLU) the
 * difference agrees with the a.e. Hessian (what torch's double backward
 * computes) unless a perturbation crosses a kink, which at this ε is rare.
 *
 * @module
 */

import { check, createRng, type Rng } from "@lowbit/core";
import { lossAndGrad, type LossProblem } from "./grad.ts";
import type { T64 } from "./ops.ts";
import { forward64, type Tape } from "./tape.ts";

function rms(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s / Math.max(1, a.length));
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

const bases = new WeakMap<LossProblem, Tape>();

/** The unperturbed forward run of a problem, shared by its Hessian-vector products. */
function baseTape(problem: LossProblem): Tape {
  let t = bases.get(problem);
  if (!t) {
    t = forward64(problem.graph, problem.feeds);
    bases.set(problem, t);
  }
  return t;
}

function weightOf(problem: LossProblem, param: string): T64 {
  const t = problem.graph.initializers.get(param);
  check(t !== undefined, `graph has no initializer '${param}'`, { tensor: param });
  const src = t.data as ArrayLike<number>;
  return { shape: [...t.shape], data: Float64Array.from(src) };
}

/**
 * Hessian-vector product of the loss restricted to one weight tensor: H_ww · v.
 *
 * @param problem graph, inputs and loss
 * @param param initializer name (the block w)
 * @param v direction, same length as the weight
 * @param eps step relative to rms(w)/rms(v) (default 1e-4)
 * @param scheme "central" (default) or "forward" differences
 * @returns H_ww v
 *
 * @example
 * ```ts
 * import { hvp } from "@lowbit/graph/autodiff";
 * // loss = CE(softmax([w0, w1] * 1), label 0): H = p(1-p) [[1,-1],[-1,1]] with p = 1/2 at w = 0
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(0, 0) }]]),
 *   valueInfo: new Map() };
 * const p = { graph: g, feeds: { x: { shape: [1, 1], data: Float64Array.of(1) } }, loss: { kind: "cross-entropy" as const, labels: [0] } };
 * const hv = hvp(p, "w", Float64Array.of(1, 0));
 * if (Math.abs(hv[0] - 0.25) > 1e-8 || Math.abs(hv[1] + 0.25) > 1e-8) throw new Error();
 * ```
 */
export function hvp(
  problem: LossProblem,
  param: string,
  v: Float64Array,
  eps = 1e-4,
  scheme: DifferenceScheme = "central",
): Float64Array {
  const w = weightOf(problem, param);
  check(
    v.length === w.data.length,
    `direction has ${v.length} values, '${param}' has ${w.data.length}`,
  );
  const h = (eps * Math.max(rms(w.data), 1e-3)) / Math.max(rms(v), 1e-30);
  const base = baseTape(problem);
  const gradAt = (sign: number): Float64Array => {
    const moved = new Float64Array(w.data.length);
    for (let i = 0; i < moved.length; i++) moved[i] = w.data[i] + sign * h * v[i];
    const r = lossAndGrad(
      problem,
      [param],
      new Map([[param, { shape: w.shape, data: moved }]]),
      base,
    );
    return r.grads.get(param)!.data;
  };
  const a = gradAt(1);
  const b = scheme === "central" ? gradAt(-1) : baseGrad(problem, param);
  const d = scheme === "central" ? 2 * h : h;
  const out = new Float64Array(a.length);
  for (let i = 0; i < out.length; i++) out[i] = (a[i] - b[i]) / d;
  return out;
}

/**
 * How {@link hvp} differences gradients: "central" (two gradients, error O(ε²))
 * or "forward" (one gradient plus the cached unperturbed one, error O(ε)).
 */
export type DifferenceScheme = "central" | "forward";

const baseGrads = new WeakMap<LossProblem, Map<string, Float64Array>>();

function baseGrad(problem: LossProblem, param: string): Float64Array {
  let m = baseGrads.get(problem);
  if (!m) baseGrads.set(problem, m = new Map());
  let g = m.get(param);
  if (!g) {
    g = lossAndGrad(problem, [param], undefined, baseTape(problem)).grads.get(param)!.data;
    m.set(param, g);
  }
  return g;
}

/** Options of the Hutchinson estimator. */
export interface TraceOptions {
  /** Random source for the Rademacher probes (default `createRng(0)`). */
  rng?: Rng;
  /** Fewest probes (default 16). */
  minProbes?: number;
  /** Most probes (default 256). */
  maxProbes?: number;
  /** Stop when the standard error falls below this fraction of |estimate| (default 0.01). */
  relTol?: number;
}

/** A Hutchinson estimate. */
export interface TraceEstimate {
  /** Estimated tr(H_ww). */
  trace: number;
  /** Standard error of the estimate. */
  stderr: number;
  /** Probes used. */
  probes: number;
}

/**
 * Hutchinson's estimate tr(H_ww) ≈ mean over Rademacher v of vᵀ H_ww v, with
 * probes added until the standard error is below `relTol` of the estimate.
 *
 * @param problem graph, inputs and loss
 * @param param initializer name
 * @param opts probes, tolerance, random source
 * @returns the estimate, its standard error and the number of probes
 *
 * @example
 * ```ts
 * import { hutchinsonTrace } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(0, 0) }]]),
 *   valueInfo: new Map() };
 * const p = { graph: g, feeds: { x: { shape: [1, 1], data: Float64Array.of(1) } }, loss: { kind: "cross-entropy" as const, labels: [0] } };
 * const t = hutchinsonTrace(p, "w", { maxProbes: 64 });
 * // vᵀHv is 0 or 1 with equal odds here, so the estimate is 0.5 ± 0.5/√probes
 * if (Math.abs(t.trace - 0.5) > 0.25) throw new Error(String(t.trace));
 * ```
 */
export function hutchinsonTrace(
  problem: LossProblem,
  param: string,
  opts: TraceOptions = {},
): TraceEstimate {
  const rng = opts.rng ?? createRng(0);
  const minP = opts.minProbes ?? 16, maxP = opts.maxProbes ?? 256, tol = opts.relTol ?? 0.01;
  const n = weightOf(problem, param).data.length;
  let sum = 0, sumSq = 0, k = 0;
  while (k < maxP) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.next() < 0.5 ? -1 : 1;
    const s = dot(v, hvp(problem, param, v, 1e-4, "forward"));
    sum += s;
    sumSq += s * s;
    k++;
    if (k >= minP) {
      const mean = sum / k, variance = Math.max(0, sumSq / k - mean * mean) * (k / (k - 1));
      if (Math.sqrt(variance / k) <= tol * Math.abs(mean)) break;
    }
  }
  const mean = sum / k;
  const variance = k > 1 ? Math.max(0, sumSq / k - mean * mean) * (k / (k - 1)) : 0;
  return { trace: mean, stderr: Math.sqrt(variance / k), probes: k };
}

/** Options of power iteration. */
export interface EigenOptions {
  /** Random source for the start vector (default `createRng(0)`). */
  rng?: Rng;
  /** Most iterations (default 100). */
  maxIters?: number;
  /** Stop when the eigenvalue changes by less than this fraction (default 1e-5). */
  relTol?: number;
}

/** A power-iteration result. */
export interface EigenEstimate {
  /** Dominant eigenvalue (largest magnitude) of H_ww. */
  value: number;
  /** Its unit eigenvector. */
  vector: Float64Array;
  /** Iterations used. */
  iters: number;
}

/**
 * Top (largest-magnitude) eigenvalue of H_ww by power iteration on Hessian-vector products.
 *
 * @param problem graph, inputs and loss
 * @param param initializer name
 * @param opts iterations, tolerance, random source
 * @returns the eigenvalue, eigenvector and iterations used
 *
 * @example
 * ```ts
 * import { topEigenvalue } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(0, 0) }]]),
 *   valueInfo: new Map() };
 * const p = { graph: g, feeds: { x: { shape: [1, 1], data: Float64Array.of(1) } }, loss: { kind: "cross-entropy" as const, labels: [0] } };
 * if (Math.abs(topEigenvalue(p, "w").value - 0.5) > 1e-6) throw new Error();
 * ```
 */
export function topEigenvalue(
  problem: LossProblem,
  param: string,
  opts: EigenOptions = {},
): EigenEstimate {
  const rng = opts.rng ?? createRng(0);
  const maxIters = opts.maxIters ?? 100, tol = opts.relTol ?? 1e-5;
  const n = weightOf(problem, param).data.length;
  let v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal();
  let norm = Math.sqrt(dot(v, v));
  v = v.map((x) => x / norm);
  let lambda = 0, k = 0;
  while (k < maxIters) {
    const hv = hvp(problem, param, v, 1e-4, "forward");
    const next = dot(v, hv);
    k++;
    norm = Math.sqrt(dot(hv, hv));
    if (norm === 0) return { value: 0, vector: v, iters: k };
    v = hv.map((x) => x / norm);
    const done = k > 1 && Math.abs(next - lambda) <= tol * Math.abs(next);
    lambda = next;
    if (done) break;
  }
  return { value: lambda, vector: v, iters: k };
}

/**
 * Hutchinson traces of several Hessian blocks at once (PyHessian style): each
 * probe draws Rademacher v_l for every weight, takes one Hessian-vector product
 * of the whole direction, and reads tr(H_ll) ≈ v_lᵀ (H v)_l. Cross-layer terms
 * have zero mean, so each estimate stays unbiased, at the price of some extra
 * variance; the cost is one gradient per probe instead of one per probe and layer.
 *
 * @param problem graph, inputs and loss
 * @param params initializer names
 * @param probes number of probes (default 32)
 * @param rng random source (default `createRng(0)`)
 * @returns one estimate per name
 *
 * @example
 * ```ts
 * import { hutchinsonTraces } from "@lowbit/graph/autodiff";
 * const g = { name: "g", inputs: [{ name: "x", dtype: "float32" as const }], outputs: [{ name: "y", dtype: "float32" as const }],
 *   nodes: [{ name: "m", op: "MatMul", domain: "", inputs: ["x", "w"], outputs: ["y"], attrs: {} }],
 *   initializers: new Map([["w", { dtype: "float32" as const, shape: [1, 2], data: Float32Array.of(0, 0) }]]),
 *   valueInfo: new Map() };
 * const p = { graph: g, feeds: { x: { shape: [1, 1], data: Float64Array.of(1) } }, loss: { kind: "cross-entropy" as const, labels: [0] } };
 * const t = hutchinsonTraces(p, ["w"], 64);
 * if (Math.abs(t.w.trace - 0.5) > 0.25) throw new Error();
 * ```
 */
export function hutchinsonTraces(
  problem: LossProblem,
  params: readonly string[],
  probes = 32,
  rng: Rng = createRng(0),
): Record<string, TraceEstimate> {
  const ws = params.map((p) => weightOf(problem, p));
  const steps = ws.map((w) => 1e-4 * Math.max(rms(w.data), 1e-3));
  const base = baseTape(problem);
  const g0 = lossAndGrad(problem, params, undefined, base).grads;
  const sums = params.map(() => [0, 0]);
  for (let k = 0; k < probes; k++) {
    const vs = ws.map((w) => Float64Array.from(w.data, () => (rng.next() < 0.5 ? -1 : 1)));
    const moved = new Map<string, T64>();
    params.forEach((p, i) =>
      moved.set(p, { shape: ws[i].shape, data: ws[i].data.map((x, j) => x + steps[i] * vs[i][j]) })
    );
    const g1 = lossAndGrad(problem, params, moved, base).grads;
    params.forEach((p, i) => {
      const a = g1.get(p)!.data, b = g0.get(p)!.data;
      let s = 0;
      for (let j = 0; j < a.length; j++) s += (vs[i][j] * (a[j] - b[j])) / steps[i];
      sums[i][0] += s;
      sums[i][1] += s * s;
    });
  }
  const out: Record<string, TraceEstimate> = {};
  params.forEach((p, i) => {
    const mean = sums[i][0] / probes;
    const variance = probes > 1
      ? Math.max(0, sums[i][1] / probes - mean * mean) * (probes / (probes - 1))
      : 0;
    out[p] = { trace: mean, stderr: Math.sqrt(variance / probes), probes };
  });
  return out;
}
