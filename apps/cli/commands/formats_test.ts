import assert from "node:assert/strict";
import { LowbitError } from "@lowbit/core";
import { formatsCommand } from "./formats.ts";
import { runCli } from "../main.ts";

async function capture(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const code = await formatsCommand.main(args);
    return { code, out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

Deno.test("formats lists every registered format with bits, grid size and range", async () => {
  const { code, out } = await capture([]);
  assert.equal(code, 0);
  const lines = out.split("\n");
  assert.match(
    lines[0],
    /^name\s+family\s+bits\s+bits\/value\s+grid\s+max\s+min normal\s+min subnormal$/,
  );
  assert.match(out, /\nfp8_e4m3fn\s+float\s+8\s+8\s+253\s+448\s+0\.015625\s+0\.001953125\n/);
  assert.match(out, /\nmxfp4\s+block\s+4\s+4\.25\s+15\s+6\s+1\s+0\.5\n/);
  assert.match(out, /\ne8m0\s+float\s+8\s+8\s+255\s+2\^127\s+2\^-127\s+2\^-127\n/);
});

Deno.test("formats --values prints the grid, --json prints JSON", async () => {
  const { out } = await capture(["--values", "fp4_e2m1fn"]);
  assert.deepEqual(out.split("\n").map(Number), [
    -6,
    -4,
    -3,
    -2,
    -1.5,
    -1,
    -0.5,
    0,
    0.5,
    1,
    1.5,
    2,
    3,
    4,
    6,
  ]);
  const j = JSON.parse((await capture(["--values", "int3", "--json"])).out);
  assert.deepEqual(j, { name: "int3", values: [-4, -3, -2, -1, 0, 1, 2, 3] });
  const rows = JSON.parse((await capture(["--json"])).out) as { name: string; max: number }[];
  assert.equal(rows.find((r) => r.name === "fp8_e5m2")?.max, 57344);
  assert.equal((await capture(["--values", "fp_e3m4"])).out.split("\n").length, 223);
});

Deno.test("formats rejects unknown names and options with a LowbitError (exit code 2)", async () => {
  await assert.rejects(
    () => capture(["--values", "nope_format"]),
    (e: unknown) =>
      e instanceof LowbitError && e.code === "UNKNOWN_NAME" && e.message.includes("mxfp4"),
  );
  await assert.rejects(() => capture(["--bogus"]), LowbitError);
  const err = console.error;
  console.error = () => {};
  try {
    assert.equal(await runCli(["formats", "--values", "nope"]), 2);
  } finally {
    console.error = err;
  }
});
