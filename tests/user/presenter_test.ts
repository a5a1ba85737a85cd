/** Tests of lib/user/presenter.ts: what the interactive client shows. */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { Presenter } from "../../lib/user/presenter.ts";
import type { Output } from "../../lib/user/output.ts";

const AT = new Date(2026, 11, 2, 9, 5);
const BOB = { name: "bob", ip: "127.0.0.2", port: 7777 };

function presenter(): Presenter {
  const p = new Presenter({ colour: false });
  p.present(
    { type: "connected", ip: "127.0.0.1", port: 7778, name: "alice" },
    AT,
    false,
  );
  return p;
}

function lines(p: Presenter, output: Output, typing = false): string[] {
  return p.present(output, AT, typing).lines;
}

Deno.test("every line starts with the time of day", () => {
  const p = presenter();
  deepStrictEqual(lines(p, { type: "message", name: "bob", text: "hi" }), [
    "09:05 bob: hi",
  ]);
  deepStrictEqual(lines(p, { type: "chat-started", ...BOB }), [
    "09:05 * chat started with bob at 127.0.0.2",
  ]);
});

Deno.test("a message sent is one line with the chat's number; delivered right after, it is amended with ✓", () => {
  const p = presenter();
  p.present({ type: "chat-started", ...BOB }, AT, false);
  deepStrictEqual(lines(p, { type: "sent", id: 1, text: "hello" }), [
    "09:05 alice: hello #1",
  ]);
  deepStrictEqual(p.present({ type: "delivered", id: 1 }, AT, false), {
    lines: [],
    bell: false,
    amend: "09:05 alice: hello #1 ✓",
  });
});

Deno.test("delivered after other lines: a short ✓ line with the chat's number", () => {
  const p = presenter();
  p.present({ type: "chat-started", ...BOB }, AT, false);
  p.present({ type: "sent", id: 1, text: "one" }, AT, false);
  p.present({ type: "message", name: "bob", text: "hi" }, AT, false);
  deepStrictEqual(p.present({ type: "delivered", id: 1 }, AT, false), {
    lines: ["09:05   ✓ #1"],
    bell: false,
  });
});

Deno.test("news of a message an earlier client sent names no number", () => {
  const p = presenter();
  deepStrictEqual(lines(p, { type: "delivered" }), [
    "09:05   ✓ (sent by an earlier client)",
  ]);
  deepStrictEqual(lines(p, { type: "undelivered", text: "x" }), [
    "09:05 ! (sent by an earlier client) not delivered: x",
  ]);
});

Deno.test("retransmitted and undelivered are short lines with the chat's number", () => {
  const p = presenter();
  p.present({ type: "chat-started", ...BOB }, AT, false);
  p.present({ type: "sent", id: 1, text: "x" }, AT, false);
  deepStrictEqual(lines(p, { type: "retransmitted", id: 1, attempt: 1 }), [
    "09:05   ↻ #1 sent again (attempt 2)",
  ]);
  deepStrictEqual(lines(p, { type: "undelivered", id: 1, text: "x" }), [
    "09:05 ! #1 not delivered: x",
  ]);
});

Deno.test("texts from the network are made harmless", () => {
  const p = presenter();
  const [line] = lines(p, {
    type: "message",
    name: "b\x1b[2Jb",
    text: "hi\u202e\u009b\x07",
  });
  // deno-lint-ignore no-control-regex -- looking for control characters
  ok(!/[\x00-\x1f\x7f-\x9f\u202e]/.test(line), JSON.stringify(line));
});

Deno.test("the bell rings for an invitation, and for a message while typing", () => {
  const p = presenter();
  strictEqual(p.present({ type: "invitation", ...BOB }, AT, false).bell, true);
  strictEqual(
    p.present({ type: "message", name: "bob", text: "hi" }, AT, true).bell,
    true,
  );
  strictEqual(
    p.present({ type: "message", name: "bob", text: "hi" }, AT, false).bell,
    false,
  );
});

Deno.test("the prompt: the question, the chat's partner, the invitation's seconds, waiting", () => {
  const p = presenter();
  strictEqual(p.prompt("menu", 0), "Choose 1, 2 or q: ");
  p.present({ type: "inviting", ip: "127.0.0.5", port: 7777 }, AT, false, 1000);
  strictEqual(p.inviting, true);
  strictEqual(
    p.prompt(undefined, 13_500),
    "[inviting 127.0.0.5, 12 s: /leave cancels, q quits]> ",
  );
  // The daemon's invite-retry: no line, the status counts down from it.
  deepStrictEqual(
    p.present(
      {
        type: "invite-retry",
        ip: "127.0.0.5",
        port: 7777,
        attempt: 2,
        leftMs: 50_000,
      },
      AT,
      false,
      15_000,
    ),
    { lines: [], bell: false },
  );
  strictEqual(
    p.prompt(undefined, 17_000),
    "[inviting 127.0.0.5, 16 s, sent 3 times, no answer, 48 s left: /leave cancels, q quits]> ",
  );
  p.present({ type: "chat-started", ...BOB }, AT, false);
  strictEqual(p.inviting, false);
  strictEqual(p.prompt("chat", 0), "[bob@127.0.0.2]> ");
  p.present({ type: "waiting" }, AT, false);
  strictEqual(
    p.prompt(undefined, 0),
    "[waiting for invitations: /leave = menu, q = quit]> ",
  );
});

Deno.test("an invitation ends: declined, busy, no answer or cancelled stop the seconds", () => {
  for (
    const end of [
      { type: "declined", ...BOB },
      { type: "no-answer", ip: "127.0.0.2", port: 7777 },
      { type: "invitation-cancelled", ip: "127.0.0.2", port: 7777 },
      { type: "busy", ip: "127.0.0.2", port: 7777, text: "busy" },
    ] as Output[]
  ) {
    const p = presenter();
    p.present({ type: "inviting", ip: "127.0.0.2", port: 7777 }, AT, false);
    p.present(end, AT, false);
    strictEqual(p.inviting, false, end.type);
  }
});

Deno.test("colours only when asked", () => {
  const plain = presenter();
  const coloured = new Presenter({ colour: true });
  ok(
    !lines(plain, { type: "message", name: "bob", text: "hi" })[0].includes(
      "\x1b",
    ),
  );
  ok(
    coloured.present({ type: "message", name: "bob", text: "hi" }, AT, false)
      .lines[0].includes("\x1b["),
  );
});
