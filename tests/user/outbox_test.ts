/**
 * Tests of the outbox alone (lib/user/outbox.ts): the window of outstanding
 * sends, one outcome per message, and the counts for the summary. The
 * outbox joined to the dialogue and the link is tested in
 * tests/user/client_core_test.ts.
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  MAX_WAITING,
  Outbox,
  type OutboxAction,
} from "../../lib/user/outbox.ts";
import { renderText } from "../../lib/user/render.ts";

/** The actions as readable lines: `send text` or the output's text line. */
function show(actions: OutboxAction[]): string[] {
  return actions.map((action) =>
    action.type === "send" ? `send ${action.text}` : renderText(action.output)
  );
}

Deno.test("outbox: one send at a time until the limit is known, then up to the limit (§9)", () => {
  const outbox = new Outbox();
  outbox.add("one");
  outbox.add("two");
  outbox.add("three");
  deepStrictEqual(show(outbox.takeActions()), ["send one"]);
  outbox.limit = 2;
  deepStrictEqual(show(outbox.takeActions()), ["send two"]);
  strictEqual(outbox.outstanding, 2);
  strictEqual(outbox.handedOver, false);
  outbox.onSendReply({ ok: true, msgId: 1 });
  deepStrictEqual(show(outbox.takeActions()), ["sent #1: one"]);
  outbox.delivered(1);
  deepStrictEqual(show(outbox.takeActions()), [
    "delivered #1",
    "send three",
  ]);
  strictEqual(outbox.handedOver, true);
  strictEqual(outbox.settled, false);
});

Deno.test("outbox: every message ends in exactly one outcome, and failures are counted (§5.5)", () => {
  const outbox = new Outbox();
  outbox.limit = 10;
  outbox.add("héllo"); // refused locally
  outbox.add("a");
  outbox.add("b");
  outbox.add("c");
  outbox.onSendReply({ ok: true, msgId: 7 });
  outbox.onSendReply({ ok: false, error: "Not in a chat" });
  outbox.onSendReply({ ok: true, msgId: 8 });
  outbox.delivered(7);
  outbox.undelivered(8, "c");
  deepStrictEqual(
    show(outbox.takeActions()).filter((l) => !l.startsWith("send ")),
    [
      'not sent: Message contains the non-ASCII character "é"; SIMP carries ASCII only: héllo',
      "sent #1: a",
      "not sent: Not in a chat: b",
      "sent #2: c",
      "delivered #1",
      "undelivered #2: c",
    ],
  );
  strictEqual(outbox.typed, 4);
  strictEqual(outbox.failed, 3);
  strictEqual(outbox.settled, true);
});

Deno.test("outbox: news of an id it never sent is shown but settles nothing", () => {
  const outbox = new Outbox();
  outbox.add("a");
  outbox.onSendReply({ ok: true, msgId: 1 });
  outbox.takeActions();
  outbox.delivered(99);
  outbox.undelivered(98, "x");
  deepStrictEqual(show(outbox.takeActions()), [
    "delivered (sent by an earlier client)",
    "undelivered (sent by an earlier client): x",
  ]);
  strictEqual(outbox.outstanding, 1);
  strictEqual(outbox.failed, 0);
});

Deno.test("outbox: nothing is sent while a chat ends; what waited is not sent once it is over", () => {
  const outbox = new Outbox();
  outbox.add("a");
  outbox.add("b");
  outbox.onSendReply({ ok: true, msgId: 1 });
  outbox.takeActions();
  outbox.chatEnding();
  outbox.undelivered(1, "a");
  deepStrictEqual(show(outbox.takeActions()), ["undelivered #1: a"]);
  outbox.chatOver();
  deepStrictEqual(show(outbox.takeActions()), [
    "not sent: The chat ended before it could be handed to the daemon: b",
  ]);
  // The next chat sends again.
  outbox.add("c");
  deepStrictEqual(show(outbox.takeActions()), ["send c"]);
});

Deno.test("outbox: abandon shows the unanswered sends and the waiting ones as not sent", () => {
  const outbox = new Outbox();
  outbox.add("a");
  outbox.add("b");
  outbox.takeActions();
  outbox.abandon("No answer from the daemon");
  deepStrictEqual(show(outbox.takeActions()), [
    "not sent: No answer from the daemon: a",
    "not sent: The client stopped before handing it to the daemon: b",
  ]);
  strictEqual(outbox.failed, 2);
});

Deno.test("outbox: full once MAX_WAITING messages wait", () => {
  const outbox = new Outbox();
  for (let i = 0; i <= MAX_WAITING; i++) outbox.add(`m${i}`);
  strictEqual(outbox.full, true);
  outbox.onSendReply({ ok: true, msgId: 1 });
  outbox.delivered(1);
  strictEqual(outbox.full, false);
});

Deno.test("outbox: messages are numbered per chat, from 1, whatever msgId the daemon gave (issue 8)", () => {
  const outbox = new Outbox();
  outbox.limit = 10;
  outbox.add("a");
  outbox.onSendReply({ ok: true, msgId: 405 });
  outbox.delivered(405);
  outbox.newChat();
  outbox.add("b");
  outbox.onSendReply({ ok: true, msgId: 406 });
  outbox.retransmitted(406, 1);
  outbox.undelivered(406, "b");
  deepStrictEqual(
    show(outbox.takeActions()).filter((l) => !l.startsWith("send ")),
    [
      "sent #1: a",
      "delivered #1",
      "sent #1: b",
      "retransmitted #1 (attempt 1)",
      "undelivered #1: b",
    ],
  );
  strictEqual(outbox.numberOf(406), 1);
  strictEqual(outbox.numberOf(405), undefined);
});
