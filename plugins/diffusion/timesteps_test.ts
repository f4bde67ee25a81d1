import assert from "node:assert/strict";
import { chooseTimesteps } from "./timesteps.ts";

Deno.test("calibration timesteps: uniform covers every t equally, last is t = 0, normal skews low", () => {
  const u = chooseTimesteps("uniform", 50, 100);
  for (let t = 0; t < 50; t++) assert.equal(u.filter((v) => v === t).length, 2, `t=${t}`);
  assert.deepEqual(chooseTimesteps("last", 50, 5), [0, 0, 0, 0, 0]);
  const n = chooseTimesteps("normal", 50, 400, 3);
  assert.deepEqual(n, chooseTimesteps("normal", 50, 400, 3)); // seeded
  const mean = n.reduce((a, b) => a + b, 0) / n.length;
  // N(20, 12.5²) clipped to 0…49: mean near 20, below the uniform mean 24.5
  assert.ok(mean > 18 && mean < 22.5, String(mean));
  assert.ok(n.every((t) => t >= 0 && t <= 49) && n[0] >= n[n.length - 1]);
});

Deno.test("a bad sample count or distribution is a clear error", () => {
  assert.throws(
    () => chooseTimesteps("uniform", 50, 0),
    /--calib-samples must be a positive integer/,
  );
  assert.throws(() => chooseTimesteps("mid" as never, 50, 4), /--diffusion-calib must be one of/);
});
