/** Tests of lib/user/terminal.ts: output choice, colours, prompt, times, texts. */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  BELL,
  bellFor,
  chatPrompt,
  chooseOutput,
  clockTime,
  colourWanted,
  interruptNotice,
  inviteStatus,
  isoTime,
  pasteQuestion,
} from "../../lib/user/terminal.ts";
import { palette } from "../../lib/user/palette.ts";

Deno.test("all terminals: interactive on stdout, no transcript", () => {
  deepStrictEqual(
    chooseOutput({ stdin: true, stdout: true, stderr: true }, false),
    { mode: "interactive", screen: "stdout", transcript: false },
  );
});

Deno.test("stdout redirected while typing in a terminal: drawn on stderr, plain transcript on stdout (defect 3)", () => {
  deepStrictEqual(
    chooseOutput({ stdin: true, stdout: false, stderr: true }, false),
    { mode: "interactive", screen: "stderr", transcript: true },
  );
});

Deno.test("no terminal to draw on, stdin not a terminal, or --json: scripted", () => {
  for (
    const [terminals, json] of [
      [{ stdin: true, stdout: false, stderr: false }, false],
      [{ stdin: false, stdout: true, stderr: true }, false],
      [{ stdin: true, stdout: true, stderr: true }, true],
    ] as const
  ) {
    deepStrictEqual(chooseOutput(terminals, json), { mode: "scripted" });
  }
});

Deno.test("NO_COLOR (not empty) turns colours off and wins over FORCE_COLOR", () => {
  strictEqual(colourWanted({ NO_COLOR: "1" }, true), false);
  strictEqual(colourWanted({ NO_COLOR: "1", FORCE_COLOR: "1" }, true), false);
  strictEqual(colourWanted({ NO_COLOR: "" }, true), true, "empty means unset");
});

Deno.test("FORCE_COLOR turns colours on off a terminal; 0 and false turn them off", () => {
  strictEqual(colourWanted({ FORCE_COLOR: "1" }, false), true);
  strictEqual(colourWanted({ FORCE_COLOR: "3" }, false), true);
  strictEqual(colourWanted({ FORCE_COLOR: "0" }, true), false);
  strictEqual(colourWanted({ FORCE_COLOR: "false" }, true), false);
  strictEqual(colourWanted({}, true), true);
  strictEqual(colourWanted({}, false), false);
});

Deno.test("the palette colours only when enabled", () => {
  strictEqual(palette(false).red("x"), "x");
  ok(palette(true).red("x").includes("\x1b["));
});

Deno.test("the chat prompt shows name@ip, the port only when unusual", () => {
  strictEqual(
    chatPrompt({ name: "bob", ip: "127.0.0.2" }),
    "[bob@127.0.0.2]> ",
  );
  strictEqual(
    chatPrompt({ name: "bob", ip: "127.0.0.2", port: 7777 }),
    "[bob@127.0.0.2]> ",
  );
  strictEqual(
    chatPrompt({ name: "bob", ip: "127.0.0.2", port: 7790 }),
    "[bob@127.0.0.2:7790]> ",
  );
  strictEqual(chatPrompt({ name: "", ip: "127.0.0.2" }), "[127.0.0.2]> ");
  strictEqual(
    chatPrompt({ name: "b\x1b[2Jb", ip: "127.0.0.2" }),
    "[b?[2Jb@127.0.0.2]> ",
    "controls in a name are not drawn raw",
  );
});

Deno.test("clock time is HH:MM, local; ISO time is UTC with milliseconds", () => {
  strictEqual(clockTime(new Date(2026, 11, 2, 9, 5, 59)), "09:05");
  strictEqual(clockTime(new Date(2026, 11, 2, 23, 0)), "23:00");
  strictEqual(
    isoTime(new Date(Date.UTC(2026, 11, 2, 4, 5, 6, 7))),
    "2026-12-02T04:05:06.007Z",
  );
});

Deno.test("the bell rings for an invitation always, for a message while typing", () => {
  strictEqual(bellFor("invitation", false), BELL);
  strictEqual(bellFor("message", true), BELL);
  strictEqual(bellFor("message", false), "");
});

Deno.test("Ctrl+C says what was not sent, quoted so that it can be copied", () => {
  strictEqual(interruptNotice(""), "^C");
  strictEqual(interruptNotice('say "hi"'), '^C (not sent: "say \\"hi\\"")');
});

Deno.test("the paste question counts the lines", () => {
  ok(pasteQuestion(120).includes("120 pasted lines"));
});

Deno.test("invite status: how long it waited, the tries and the time left once the daemon told, and how to cancel (issue 8)", () => {
  strictEqual(
    inviteStatus({ address: "127.0.0.5", elapsedMs: 0 }),
    "[inviting 127.0.0.5, 0 s: /leave cancels, q quits]> ",
  );
  strictEqual(
    inviteStatus({ address: "127.0.0.5:7790", elapsedMs: 61_999 }),
    "[inviting 127.0.0.5:7790, 61 s: /leave cancels, q quits]> ",
  );
  strictEqual(
    inviteStatus({
      address: "127.0.0.5",
      elapsedMs: 10_200,
      sent: 3,
      leftMs: 49_800,
    }),
    "[inviting 127.0.0.5, 10 s, sent 3 times, no answer, 50 s left: /leave cancels, q quits]> ",
  );
  strictEqual(
    inviteStatus({ address: "127.0.0.5", elapsedMs: 0, sent: 2, leftMs: -5 }),
    "[inviting 127.0.0.5, 0 s, sent 2 times, no answer, 0 s left: /leave cancels, q quits]> ",
  );
});
