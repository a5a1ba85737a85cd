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

Deno.test({
  name:
    "without --allow-env on a terminal, importing mod.ts asks for no permission (deno task relay)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // `script` gives the program a terminal, where Deno prompts for a
    // permission instead of refusing it; the prompt would wait for an answer.
    const relay = "deno run --allow-net --allow-write mod.ts relay " +
      "127.0.105.240 --between 127.0.105.241 127.0.105.242 --duration 0.3";
    const { stdout } = await new Deno.Command("script", {
      args: ["-qec", relay, "/dev/null"],
      cwd: new URL("../", import.meta.url),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    const text = new TextDecoder().decode(stdout);
    strictEqual(text.includes("Deno requests"), false, text);
    strictEqual(
      text.includes("simp relay listening on 127.0.105.240"),
      true,
      text,
    );
  },
});
