/**
 * Tests of the client's rendering (lib/user/render.ts): scripted text
 * lines, JSON lines, terminal lines and the stderr line of a fatal error —
 * each one line, and harmless whatever came from the network or the daemon.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { Ask, Output } from "../../lib/user/output.ts";
import {
  formatPeer,
  printable,
  renderJson,
  renderText,
  stderrLine,
  terminalLines,
} from "../../lib/user/render.ts";

/** Characters that must never reach a terminal raw. */
const HOSTILE = [
  "\x1b[2J", // ESC: clear the screen
  "\x1b]52;c;aGk=\x07", // OSC 52: write the clipboard
  "\x9b2J", // C1 CSI
  "\x85", // C1 NEL
  "\u202e", // right-to-left override
  "\u2066", // left-to-right isolate
  "\u2069", // pop directional isolate
  "\u202a", // left-to-right embedding
  "\u2028", // line separator
  "\u2029", // paragraph separator
  "\r",
  "\n",
  "\x00",
  "\x7f",
];

/** Whether `text` holds any character of the module documentation raw. */
function unsafe(text: string): boolean {
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  return /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(
    text,
  );
}

/** Every output that carries a text from the network or the daemon. */
function outputsCarrying(text: string): Output[] {
  const peer = { ip: "127.0.0.2", port: 7777, name: text };
  return [
    { type: "message", name: text, text },
    { type: "sent", id: 1, text },
    { type: "not-sent", text, reason: text },
    { type: "undelivered", id: 1, text },
    { type: "busy", ip: "127.0.0.2", port: 7777, text },
    { type: "peer-error", ip: "127.0.0.2", port: 7777, text },
    { type: "invitation", ...peer },
    { type: "invitation-ended", ...peer, reason: "expired" },
    { type: "chat-started", ...peer },
    { type: "declined", ...peer },
    { type: "peer-left", ...peer },
    { type: "peer-lost", ...peer },
    { type: "error", message: text },
    { type: "error", message: text, fatal: true },
  ];
}

Deno.test("render: text lines are one line, control characters escaped", () => {
  strictEqual(
    renderText({ type: "message", name: "bob", text: "a\nb\x1b[2J\tc" }),
    "bob: a\\nb\\x1b[2J\\tc",
  );
  strictEqual(printable("ok ~ �"), "ok ~ �");
  strictEqual(printable("\x9b\u202e\u2028"), "\\x9b\\u202e\\u2028");
  strictEqual(formatPeer("", "127.0.0.2", 7790), "127.0.0.2:7790");
});

Deno.test("render: nothing from the network reaches the terminal raw, in text, JSON, terminal or stderr lines", () => {
  for (const hostile of HOSTILE) {
    const text = `a${hostile}b`;
    for (const output of outputsCarrying(text)) {
      const lines = [
        renderText(output),
        renderJson(output),
        ...terminalLines(output, { name: text, colour: false }),
      ];
      const error = stderrLine(output);
      if (error !== undefined) lines.push(error);
      for (const line of lines) {
        ok(
          !unsafe(line),
          `${JSON.stringify(line)} (from ${output.type}) is not harmless`,
        );
      }
    }
  }
});

Deno.test("render: --json prints each output as one JSON object, its texts exactly as received", () => {
  const outputs: Output[] = [
    { type: "prompt", ask: "menu" as Ask, text: "1 = …" },
    { type: "message", name: "bob", text: "line\nbreak" },
    { type: "message", name: "bob", text: HOSTILE.join("") },
    { type: "retransmitted", id: 2, attempt: 3 },
    { type: "error", message: "Boom", fatal: true },
  ];
  for (const output of outputs) {
    const line = renderJson(output);
    ok(!line.includes("\n"));
    deepStrictEqual(JSON.parse(line), output);
  }
  strictEqual(
    renderJson({ type: "message", name: "b", text: "\u202e\x9b" }),
    '{"type":"message","name":"b","text":"\\u202e\\u009b"}',
  );
});

Deno.test("render: a fatal error's stderr line is simp: and the message, made harmless", () => {
  strictEqual(
    stderrLine({ type: "error", message: "Boom\x1b[2J", fatal: true }),
    "simp: Boom\\x1b[2J",
  );
  strictEqual(stderrLine({ type: "error", message: "Boom" }), undefined);
  strictEqual(stderrLine({ type: "bye" }), undefined);
});

Deno.test("render: the terminal view takes a message's text from its fields, whatever the peer's name", () => {
  const view = { name: "alice", colour: false };
  deepStrictEqual(
    terminalLines(
      { type: "message", name: "dr: who", text: "hi: there" },
      view,
    ),
    ["dr: who: hi: there"],
  );
  deepStrictEqual(
    terminalLines({ type: "sent", id: 2, text: "a: b\x1b[2J" }, {
      name: "x: y",
      colour: false,
    }),
    ["x: y: a: b\\x1b[2J #2"],
  );
  deepStrictEqual(
    terminalLines({ type: "retransmitted", id: 2, attempt: 1 }, view),
    ["  ↻ retransmitted #2 (attempt 1)"],
  );
});

Deno.test("render: held, in-flight and summary lines", () => {
  const view = { name: "alice", colour: false };
  strictEqual(
    renderText({ type: "held" }),
    "send queue full: the next messages wait until earlier ones are delivered",
  );
  strictEqual(
    renderText({ type: "in-flight", count: 1 }),
    "1 message not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver",
  );
  strictEqual(
    renderText({ type: "summary", failed: 3, total: 200 }),
    "3 of 200 messages not delivered",
  );
  deepStrictEqual(
    terminalLines({ type: "summary", failed: 1, total: 2 }, view),
    ["! 1 of 2 messages not delivered"],
  );
  deepStrictEqual(terminalLines({ type: "in-flight", count: 2 }, view), [
    "* 2 messages not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver",
  ]);
});

Deno.test("render: the new notices (issue 8) in text, harmless whatever the name", () => {
  const peer = { ip: "127.0.0.3", port: 7777, name: "car\x1b[2Jol" };
  strictEqual(
    renderText({ type: "busy-answered", ...peer }),
    "car\\x1b[2Jol at 127.0.0.3 tried to invite you and was told you are busy",
  );
  strictEqual(
    renderText({ type: "peer-reconnected", ...peer, name: "bob" }),
    "bob at 127.0.0.3 reconnected (their daemon restarted): messages around the restart may have been missed",
  );
  strictEqual(
    renderText({
      type: "invite-retry",
      ip: "127.0.0.5",
      port: 7790,
      attempt: 4,
      leftMs: 35_001,
    }),
    "no answer yet from 127.0.0.5:7790: invitation sent 5 times, giving up in 36 s (/leave cancels, q quits)",
  );
  strictEqual(
    renderText({ type: "delivered" }),
    "delivered (sent by an earlier client)",
  );
  deepStrictEqual(
    terminalLines({ type: "peer-reconnected", ...peer, name: "bob" }, {
      name: "alice",
      colour: false,
    }),
    [
      "* bob at 127.0.0.3 reconnected (their daemon restarted): messages around the restart may have been missed",
    ],
  );
});

Deno.test("render: the terminal shows a long refused line cut, saying how long it was (the scripted line keeps it whole)", () => {
  const view = { name: "alice", colour: false };
  const reason = "Message is 70000 bytes long; the limit is 65468";
  const long = "x".repeat(70_000);
  deepStrictEqual(
    terminalLines({ type: "not-sent", text: long, reason }, view),
    [`! not sent: ${reason}: ${"x".repeat(200)}… (70,000 characters)`],
  );
  deepStrictEqual(
    terminalLines({ type: "not-sent", text: "café\x1b", reason: "Bad" }, view),
    ["! not sent: Bad: café\\x1b"],
  );
  strictEqual(
    renderText({ type: "not-sent", text: long, reason }),
    `not sent: ${reason}: ${long}`,
  );
});
