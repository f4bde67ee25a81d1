/**
 * A deterministic, voiced-speech-like test signal at 16 kHz, for tests of voice-activity models
 * (Silero VAD) on the executor and through quantization.
 *
 * @module
 */

const SR = 16000;

/**
 * A voiced-speech-like clip: a glottal pulse train (pitch gliding 110–190 Hz) through three
 * formant resonators whose centres move, with a 4 Hz syllable envelope, pauses and a little
 * deterministic noise.
 *
 * @param n samples
 * @returns the clip
 *
 * @example
 * ```ts
 * import { speechLike } from "./_speech_like.ts";
 * if (speechLike(1600).length !== 1600) throw new Error();
 * ```
 */
export function speechLike(n: number): Float32Array {
  const out = new Float32Array(n);
  let phase = 0, seed = 12345;
  const y1 = [0, 0, 0], y2 = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const t = i / SR;
    const f0 = 150 + 40 * Math.sin(2 * Math.PI * 0.7 * t);
    phase += f0 / SR;
    const pulse = phase >= 1 ? 1 : 0;
    if (phase >= 1) phase -= 1;
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const noise = (seed / 2 ** 32 - 0.5) * 0.02;
    let s = 0;
    const formants = [600 + 200 * Math.sin(2 * Math.PI * 3 * t), 1500, 2500];
    for (let k = 0; k < 3; k++) {
      const r = 0.97, w = 2 * Math.PI * formants[k] / SR;
      const y = pulse + 2 * r * Math.cos(w) * y1[k] - r * r * y2[k];
      y2[k] = y1[k];
      y1[k] = y;
      s += y / (k + 1);
    }
    const env = Math.max(0, Math.sin(2 * Math.PI * 4 * t)) * (t % 1 < 0.8 ? 1 : 0);
    out[i] = 0.05 * s * env + noise;
  }
  return out;
}
