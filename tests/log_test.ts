/**
 * Tests of lib/log.ts: levels, text and JSON lines, categories, setting up
 * twice, and stderr (not stdout) as the default destination.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
// deno-lint-ignore no-import-prefix
import { getLogger as getLogTapeLogger } from "npm:@logtape/logtape@^2.4.2";
import { getLogger, setupLogging } from "../lib/log.ts";

/** Sets up logging into an array of lines and returns the array. */
function collect(
  level: "trace" | "debug" | "info" | "warning" | "error",
  format?: "text" | "json",
): string[] {
  const lines: string[] = [];
  setupLogging({ level, format, write: (line) => lines.push(line) });
  return lines;
}

Deno.test("log: text lines carry level, category, message and other properties", () => {
  const lines = collect("debug");
  getLogger("daemon").info("Chat with {peer} established", {
    peer: "127.0.77.2:7777",
    user: "bob",
  });
  strictEqual(lines.length, 1);
  ok(lines[0].endsWith("\n"));
  ok(
    / \[INF\] simp\.daemon: Chat with 127\.0\.77\.2:7777 established \{"user":"bob"\}\n$/
      .test(lines[0]),
    lines[0],
  );
});

Deno.test("log: an escaped {{name}} in a message does not hide the property", () => {
  const lines = collect("debug");
  getLogger("wire").debug('CHAT "{{from}}"', { from: "127.0.77.1" });
  ok(lines[0].includes('{"from":"127.0.77.1"}'), lines[0]);
});

Deno.test("log: control characters from peers are escaped in text lines", () => {
  const lines = collect("debug");
  getLogger("daemon").info("Invitation from {user}", { user: "e\x1b[2Jvil" });
  getLogger("daemon").info("Message", { text: "a\x1bb\nc" });
  ok(!lines.join("").includes("\x1b"), JSON.stringify(lines));
  strictEqual(lines.join("").split("\n").length, 3);
});

Deno.test("log: json format writes one JSON object per line", () => {
  const lines = collect("info", "json");
  getLogger(["daemon", "peer"]).warning("Peer {peer} lost", {
    peer: "127.0.77.2:7777",
    retries: 5,
  });
  strictEqual(lines.length, 1);
  ok(lines[0].endsWith("\n"));
  const record = JSON.parse(lines[0]);
  strictEqual(record.level, "WARN");
  strictEqual(record.logger, "simp.daemon.peer");
  strictEqual(record.message, 'Peer "127.0.77.2:7777" lost');
  deepStrictEqual(record.properties, { peer: "127.0.77.2:7777", retries: 5 });
});

Deno.test("log: records below the level are dropped", () => {
  const lines = collect("warning");
  const log = getLogger("daemon");
  log.trace("t");
  log.debug("d");
  log.info("i");
  log.warning("w");
  log.warn("w");
  log.error("e");
  strictEqual(lines.length, 3);
  ok(log.isEnabledFor("warning"));
  ok(!log.isEnabledFor("info"));
});

Deno.test("log: lazy properties are computed only when written", () => {
  const lines = collect("info");
  let calls = 0;
  getLogger().debug("skipped", () => {
    calls++;
    return {};
  });
  strictEqual(calls, 0);
  strictEqual(lines.length, 0);
});

Deno.test("log: categories outside simp are not written", () => {
  const lines = collect("trace");
  getLogTapeLogger(["other"]).error("not ours");
  getLogger().info("ours");
  strictEqual(lines.length, 1);
  ok(lines[0].includes("] simp: ours"), lines[0]);
});

Deno.test("log: getChild and with keep the simp category and add properties", () => {
  const lines = collect("info", "json");
  getLogger("daemon").getChild("client").with({ client: "127.0.0.1:5000" })
    .info("Connected");
  const record = JSON.parse(lines[0]);
  strictEqual(record.logger, "simp.daemon.client");
  deepStrictEqual(record.properties, { client: "127.0.0.1:5000" });
});

Deno.test("log: setting up again replaces the previous configuration", () => {
  const first = collect("info");
  const second = collect("error");
  getLogger().info("only info");
  getLogger().error("an error");
  strictEqual(first.length, 0);
  strictEqual(second.length, 1);
});

Deno.test("log: by default lines go to stderr, never stdout", async () => {
  const code = `
    import { getLogger, setupLogging } from "./lib/log.ts";
    setupLogging({ level: "info" });
    getLogger("test").info("to stderr");
    setupLogging({ level: "info", format: "json" });
    getLogger("test").info("json to stderr");
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: new URL("../", import.meta.url),
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  strictEqual(output.code, 0, stderr);
  strictEqual(stdout, "");
  const lines = stderr.trimEnd().split("\n");
  strictEqual(lines.length, 2, stderr);
  ok(lines[0].includes("[INF] simp.test: to stderr"), lines[0]);
  strictEqual(JSON.parse(lines[1]).message, "json to stderr");
});
