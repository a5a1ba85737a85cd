/**
 * `mod.ts` as a library: it loads in a project that does not have this
 * repository's deno.json (every npm package is imported by its full `npm:`
 * specifier), and it exports the chosen API.
 */

import { ok, strictEqual } from "node:assert/strict";
import * as simp from "../mod.ts";

Deno.test("mod.ts loads without this repository's deno.json and without permissions", async () => {
  const modUrl = new URL("../mod.ts", import.meta.url).href;
  const code = `
    const simp = await import(${JSON.stringify(modUrl)});
    const bytes = simp.encodeDatagram({
      type: simp.Type.CHAT, op: simp.Op.CHAT, seq: 0, user: "a", payload: "hi",
    });
    console.log(simp.decodeDatagram(bytes).payload, typeof simp.connect);
  `;
  // Run from the system's temporary directory, where no deno.json is found,
  // and with no permission at all: a program that only imports the library
  // must not need any (picocolors, which reads the environment when loaded,
  // once made it need --allow-env).
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-lock", "-"],
    cwd: "/tmp",
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(code));
  await writer.close();
  const { code: exit, stdout, stderr } = await child.output();
  const out = new TextDecoder().decode(stdout).trim();
  strictEqual(exit, 0, new TextDecoder().decode(stderr));
  strictEqual(out, "hi function");
});

Deno.test("mod.ts names the API of every layer", () => {
  for (
    const name of [
      "encodeDatagram",
      "decodeDatagram",
      "Session",
      "DaemonCore",
      "runDaemon",
      "ClientEnd",
      "DaemonEnd",
      "parseDaemonMessage",
      "connect",
      "Chat",
      "ChatError",
    ]
  ) {
    ok(name in simp, `mod.ts does not export ${name}`);
  }
});
