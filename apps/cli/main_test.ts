import assert from "node:assert/strict";
import { COMMANDS, runCli, VERSION } from "./main.ts";
import meta from "./deno.json" with { type: "json" };

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await runCli(args), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

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
