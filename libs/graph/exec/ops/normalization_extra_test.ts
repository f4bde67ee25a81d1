// GroupNormalization (opsets 18 and 21), LpNormalization and GlobalLpPool against
// onnxruntime-web on one-node models (the node tests of onnx 1.12 do not cover them).

import type { Attr } from "../../ir.ts";
import { pattern } from "../_testing.ts";
import { againstOrt } from "./_ort_oracle.ts";

Deno.test("GroupNormalization matches onnxruntime-web: per-group (opset 18) and per-channel (21)", async () => {
  const x = pattern([2, 6, 3, 2], 3, 2);
  const groups: Attr = { kind: "int", value: 3 };
  const eps: Attr = { kind: "float", value: 1e-3 };
  const attrs = { num_groups: groups, epsilon: eps };
  await againstOrt("GroupNormalization", 18, [x], attrs, {
    consts: [pattern([3], 5), pattern([3], 7)],
  });
  await againstOrt("GroupNormalization", 21, [x], attrs, {
    consts: [pattern([6], 5), pattern([6], 7)],
  });
});

Deno.test("LpNormalization (p = 1, 2; any axis) and GlobalLpPool match onnxruntime-web", async () => {
  const x = pattern([2, 3, 4], 11, 3);
  for (const p of [1, 2]) {
    for (const axis of [-1, 1]) {
      await againstOrt("LpNormalization", 17, [x], {
        p: { kind: "int", value: p },
        axis: { kind: "int", value: axis },
      });
    }
  }
  for (const p of [1, 2, 3]) {
    await againstOrt("GlobalLpPool", 17, [pattern([2, 3, 4, 5], 13)], {
      p: { kind: "int", value: p },
    });
  }
});
