/** Tests of lib/invocation.ts: help texts show the command the user runs. */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  COMPILED,
  invocationFor,
  localiseCommands,
} from "../lib/invocation.ts";

Deno.test("a compiled binary is named by its file name", () => {
  deepStrictEqual(
    invocationFor({ execPath: "/usr/local/bin/simp", inTask: false }),
    COMPILED,
  );
  strictEqual(
    invocationFor({ execPath: "C:\\bin\\simp-x86.exe", inTask: true }).daemon,
    "simp-x86 daemon",
  );
});

Deno.test("under deno task: deno task daemon / client", () => {
  deepStrictEqual(
    invocationFor({ execPath: "/usr/bin/deno", inTask: true }),
    {
      simp: "deno task simp",
      daemon: "deno task daemon",
      client: "deno task client",
    },
  );
});

Deno.test("mod.ts run directly: deno run -A mod.ts", () => {
  strictEqual(
    invocationFor({ execPath: "/usr/bin/deno", inTask: false }).client,
    "deno run -A mod.ts client",
  );
});

Deno.test("texts are rewritten: commands, help flags; the simp: prefix is not", () => {
  const run = invocationFor({ execPath: "/usr/bin/deno", inTask: true });
  strictEqual(
    localiseCommands(
      "simp: Unknown option --foo (see simp daemon --help); is `simp daemon 127.0.0.2` running? simp --help, simp client",
      run,
    ),
    "simp: Unknown option --foo (see deno task daemon --help); is `deno task daemon 127.0.0.2` running? deno task simp --help, deno task client",
  );
  strictEqual(localiseCommands("simp daemon", COMPILED), "simp daemon");
  strictEqual(
    localiseCommands("see simp ladder --help; a simp relay log", {
      simp: "deno run -A mod.ts",
      daemon: "deno run -A mod.ts daemon",
      client: "deno run -A mod.ts client",
    }),
    "see deno run -A mod.ts ladder --help; a simp relay log",
  );
});
