import assert from "node:assert/strict";
import { COMMANDS, VERSION } from "./main.ts";
import { cli } from "./_cli_test_util.ts";
import meta from "./deno.json" with { type: "json" };

Deno.test("--version prints the CLI package's version", async () => {
  for (const flag of ["--version", "-V", "version"]) {
    const r = await cli([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.out, `lowbit ${meta.version}`);
  }
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

Deno.test("top-level help lists every command with its one-line summary", async () => {
  const r = await cli(["--help"]);
  assert.equal(r.code, 0);
  for (const [name, c] of Object.entries(COMMANDS)) {
    assert.match(r.out, new RegExp(`^  ${name} +${c.summary.replace(/[()]/g, "\\$&")}$`, "m"));
  }
});

Deno.test("the help table's summaries are the commands' own", async () => {
  for (const [name, c] of Object.entries(COMMANDS)) {
    assert.equal((await c.load()).summary, c.summary, name);
  }
});
