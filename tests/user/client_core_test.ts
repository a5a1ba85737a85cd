/**
 * Tests of the client core (SPEC §8, §9): the real {@linkcode ClientCore} —
 * dialogue, outbox and the client's end of the link together, exactly as
 * `client.ts` runs it — against a fake daemon in virtual time
 * (tests/user/_harness.ts). No sockets, no sleeps.
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { BUSY_TEXT, MAX_PAYLOAD } from "../../lib/wire/datagram.ts";
import { encodeRequest, MAX_LINE_BYTES } from "../../lib/link/protocol.ts";
import {
  CONNECT_TIMEOUT_MS,
  HELLO_TIMEOUT_MS,
  MAX_QUEUED_LINES,
  QUIT_TIMEOUT_MS,
  unreachableMessage,
} from "../../lib/user/client_core.ts";
import { MAX_WAITING, sendProblem } from "../../lib/user/outbox.ts";
import type { LinkEvent } from "../../lib/link/protocol.ts";
import {
  ANSWER,
  BOB,
  CHAT,
  connected,
  Harness,
  inChat,
  MENU,
  NAME,
  sends,
} from "./_harness.ts";

const QUEUE_FULL =
  "Send queue is full (64 messages waiting): wait until some are delivered";
const HELD =
  "send queue full: the next messages wait until earlier ones are delivered";
const IN_FLIGHT_2 =
  "2 messages not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver";

// ---------------------------------------------------------------------------
// Connecting, hello, the questions (§8.1–§8.3)

Deno.test("core: the name is asked once the connection is open, then hello is sent (§8.1)", () => {
  const client = new Harness({ name: undefined });
  deepStrictEqual(client.take(), []);
  strictEqual(client.core.ask, undefined);
  client.open();
  deepStrictEqual(client.take(), [NAME]);
  strictEqual(client.core.ask, "name");
  strictEqual(client.line(" carol "), true);
  deepStrictEqual(client.take(), ['→ {"cmd":"hello","v":2,"name":"carol"}']);
});

Deno.test("core: a bad or empty name is refused and asked again (§2.3, §8.1)", () => {
  const client = new Harness({ name: undefined }).open();
  client.take();
  strictEqual(client.line("   "), false);
  deepStrictEqual(client.take(), [
    "error: User name must not be empty: type a name such as alice",
    NAME,
  ]);
  strictEqual(client.line("x".repeat(33)), false);
  match(client.take()[0], /^error: User name is 33 characters/);
  strictEqual(client.line("zoë"), false);
  match(client.take()[0], /^error: User name must be plain ASCII/);
  deepStrictEqual(client.requests, []);
});

Deno.test("core: --name says hello at once; connected, then the menu (§8.3)", () => {
  const client = new Harness().open();
  deepStrictEqual(client.take(), ['→ {"cmd":"hello","v":2,"name":"alice"}']);
  client.hello();
  deepStrictEqual(client.take(), [
    "connected to 127.0.0.1:7778 as alice",
    MENU,
  ]);
  strictEqual(client.core.ask, "menu");
  strictEqual(client.core.name, "alice");
});

Deno.test("core: a pending invitation at hello is shown and asked about (§8.2)", () => {
  const client = new Harness().open();
  client.take();
  client.hello({ phase: "invited", peer: BOB });
  deepStrictEqual(client.take(), [
    "connected to 127.0.0.1:7778 as alice",
    "invitation from bob at 127.0.0.2",
    ANSWER,
  ]);
  strictEqual(client.core.ask, "answer");
  // The same invitation as an event as well is not asked twice.
  client.event({ type: "invitation", ...BOB });
  deepStrictEqual(client.take(), []);
  client.line("y");
  deepStrictEqual(client.take(), ['→ {"cmd":"accept"}']);
  client.reply();
  client.event({ type: "chat-started", ...BOB });
  deepStrictEqual(client.take(), ["chat started with bob at 127.0.0.2", CHAT]);
});

Deno.test("core: connecting during a chat goes straight into it", () => {
  const client = new Harness().open();
  client.take();
  client.hello({ phase: "established", peer: BOB });
  deepStrictEqual(client.take(), [
    "connected to 127.0.0.1:7778 as alice",
    "chat started with bob at 127.0.0.2",
    CHAT,
  ]);
  strictEqual(client.core.ask, "chat");
});

Deno.test("core: a hello the daemon refuses is fatal (exit 1)", () => {
  const client = new Harness().open();
  client.take();
  client.refuse(
    "This daemon speaks link version 3: use a client of that version",
    "version",
  );
  deepStrictEqual(client.take(), [
    "error: This daemon speaks link version 3: use a client of that version",
    "exit 1", // never connected: no bye
  ]);
  strictEqual(client.core.done, true);
});

Deno.test("core: a second client is refused by the daemon before its hello: fatal, exit 1 (§7.2)", () => {
  const client = new Harness({ name: undefined }).open();
  client.take();
  client.raw(
    '{"re":null,"ok":false,"error":"Another client is connected to this daemon (127.0.0.1:40112): quit it first","code":"busy"}',
  );
  deepStrictEqual(client.take(), [
    "error: Another client is connected to this daemon (127.0.0.1:40112): quit it first",
    "exit 1",
  ]);
});

Deno.test("core: start a new chat asks the IP, validates it and invites (§8.3)", () => {
  const client = connected();
  strictEqual(client.line("3"), false);
  deepStrictEqual(client.take(), [
    "error: Type 1 to start a new chat, 2 to wait for invitations or q to quit",
    MENU,
  ]);
  client.line("1");
  deepStrictEqual(client.take(), [
    "? ip: IPv4 address of the user to invite, e.g. 127.0.0.2 (empty = back to menu, q = quit)",
  ]);
  strictEqual(client.line("127.0.0.256"), false);
  match(client.take()[0], /^error: "127\.0\.0\.256" is not an IPv4/);
  client.line("127.0.0.2");
  deepStrictEqual(client.take(), [
    "inviting 127.0.0.2",
    '→ {"cmd":"invite","ip":"127.0.0.2"}',
  ]);
  strictEqual(client.core.ask, undefined);
  client.reply();
  client.event({ type: "chat-started", ...BOB });
  deepStrictEqual(client.take(), ["chat started with bob at 127.0.0.2", CHAT]);
});

Deno.test("core: an IP with a port invites that port; localhost is 127.0.0.1", () => {
  const client = connected();
  client.line("1");
  client.take();
  client.line("127.0.0.2:7790");
  deepStrictEqual(client.take(), [
    "inviting 127.0.0.2:7790",
    '→ {"cmd":"invite","ip":"127.0.0.2","port":7790}',
  ]);
  const local = connected();
  local.line("1");
  local.line("localhost");
  deepStrictEqual(local.take().slice(-1), [
    '→ {"cmd":"invite","ip":"127.0.0.1"}',
  ]);
});

Deno.test("core: wildcard, broadcast, multicast and reserved addresses are refused as invitation targets", () => {
  for (
    const [ip, what] of [
      ["0.0.0.0", "the wildcard address"],
      ["255.255.255.255", "the broadcast address"],
      ["224.0.0.1", "a multicast address"],
      ["240.0.0.1", "a reserved address"],
    ]
  ) {
    const client = connected();
    client.line("1");
    client.take();
    strictEqual(client.line(ip), false);
    match(
      client.take()[0],
      new RegExp(`^error: ${ip.replaceAll(".", "\\.")} is ${what}`),
    );
  }
  const client = connected();
  client.line("1");
  client.take();
  strictEqual(client.line("1.2.3.4:0"), false);
  match(client.take()[0], /Port 0 is out of range/);
});

Deno.test("core: declined, busy and no-answer return to the menu (§4.4, §4.6, §4.8)", () => {
  const cases: [LinkEvent, string][] = [
    [{ type: "declined", ...BOB }, "declined by bob at 127.0.0.2"],
    [
      { type: "busy", ip: "127.0.0.2", port: 7777, text: BUSY_TEXT },
      "busy: User already in another chat",
    ],
    [
      { type: "no-answer", ip: "127.0.0.2", port: 7777 },
      "no answer from 127.0.0.2",
    ],
  ];
  for (const [event, line] of cases) {
    const client = connected();
    client.line("1");
    client.line("127.0.0.2");
    client.reply();
    client.take();
    client.event(event);
    deepStrictEqual(client.take(), [line, MENU]);
  }
});

Deno.test("core: an invite the daemon refuses returns to the menu with its message", () => {
  const client = connected();
  client.line("1");
  client.line("127.0.0.1");
  client.take();
  client.refuse(
    "127.0.0.1:7777 is this daemon: invite another user's daemon IP address",
  );
  deepStrictEqual(client.take(), [
    "error: 127.0.0.1:7777 is this daemon: invite another user's daemon IP address",
    MENU,
  ]);
});

Deno.test("core: /leave while inviting cancels the invitation", () => {
  const client = connected();
  client.line("1");
  client.line("127.0.0.2");
  client.take();
  strictEqual(client.line("hello?"), false);
  client.take();
  client.line("/leave");
  deepStrictEqual(client.take(), [
    "invitation to 127.0.0.2 cancelled",
    '→ {"cmd":"leave"}',
    MENU,
  ]);
});

Deno.test("core: waiting for invitations idles until one arrives, without asking the daemon (§8.3); after declining it waits again", () => {
  const client = connected();
  client.line("2");
  deepStrictEqual(client.take(), ["waiting for invitations"]);
  strictEqual(client.core.ask, undefined);
  client.event({ type: "invitation", ...BOB });
  deepStrictEqual(client.take(), ["invitation from bob at 127.0.0.2", ANSWER]);
  strictEqual(client.line("maybe"), false);
  deepStrictEqual(client.take(), [
    "error: Type y to accept the invitation, n to decline it or q to quit",
    ANSWER,
  ]);
  client.line("n");
  deepStrictEqual(client.take(), [
    '→ {"cmd":"decline"}',
    "declined invitation from bob at 127.0.0.2",
    "waiting for invitations",
  ]);
  strictEqual(client.core.ask, undefined);
});

Deno.test("core: /leave while waiting goes back to the menu", () => {
  const client = connected();
  client.line("2");
  strictEqual(client.line("hello"), false);
  client.take();
  client.line("/leave");
  deepStrictEqual(client.take(), [MENU]);
});

Deno.test("core: a withdrawn invitation returns to the menu", () => {
  const client = connected({ phase: "invited", peer: BOB });
  client.event({ type: "invitation-ended", ...BOB, reason: "withdrawn" });
  deepStrictEqual(client.take(), [
    "invitation from bob at 127.0.0.2 withdrawn",
    MENU,
  ]);
});

Deno.test("core: a withdrawn or expired invitation to a user who chose to wait: back to waiting", () => {
  for (const reason of ["withdrawn", "expired"] as const) {
    const client = connected();
    client.line("2");
    client.take();
    client.event({ type: "invitation", ...BOB });
    client.take();
    client.event({ type: "invitation-ended", ...BOB, reason });
    deepStrictEqual(client.take(), [
      `invitation from bob at 127.0.0.2 ${reason}`,
      "waiting for invitations",
    ]);
    strictEqual(client.core.ask, undefined);
  }
});

Deno.test("core: an accept that fails returns to the menu", () => {
  const client = connected({ phase: "invited", peer: BOB });
  client.line("yes");
  client.take();
  client.refuse("There is no invitation to accept");
  deepStrictEqual(client.take(), [
    "error: There is no invitation to accept",
    MENU,
  ]);
});

Deno.test("core: an invitation while at the menu is asked about at once", () => {
  const client = connected();
  client.event({ type: "invitation", ip: "127.0.0.3", port: 7777, name: "" });
  deepStrictEqual(client.take(), ["invitation from 127.0.0.3", ANSWER]);
});

// ---------------------------------------------------------------------------
// Chatting (§8.5) and the outbox

Deno.test("core: chat lines are sent; sent, delivered, retransmitted are shown (§8.5)", () => {
  const client = inChat();
  strictEqual(client.line("hi bob"), true);
  deepStrictEqual(client.take(), ['→ {"cmd":"send","text":"hi bob"}']);
  client.sent(1);
  client.event({ type: "retransmitted", id: 1, attempt: 1 });
  client.event({ type: "delivered", id: 1 });
  client.event({ type: "message", name: "bob", text: "hi alice" });
  deepStrictEqual(client.take(), [
    "sent #1: hi bob",
    "retransmitted #1 (attempt 1)",
    "delivered #1",
    "bob: hi alice",
  ]);
  // Empty lines are not messages.
  strictEqual(client.line(""), true);
  deepStrictEqual(client.take(), []);
});

Deno.test("core: the retransmission count is the daemon's attempt, 1 = the first retransmission (§5.2)", () => {
  const client = inChat();
  client.line("hi");
  client.sent(1);
  client.take();
  client.event({ type: "retransmitted", id: 1, attempt: 3 });
  deepStrictEqual(client.outputs.at(-1), {
    type: "retransmitted",
    id: 1,
    attempt: 3,
  });
});

Deno.test("core: sends are pipelined up to the daemon's limits.queue, never more (§5.1, §9)", () => {
  const client = inChat({}, 3);
  for (const text of ["one", "two", "three", "four", "five"]) {
    client.line(text);
  }
  // Three outstanding without waiting for any reply.
  deepStrictEqual(sends(client.take()), ["one", "two", "three"]);
  client.sent(1).sent(2);
  // Replied but not delivered: still outstanding.
  deepStrictEqual(sends(client.take()), []);
  client.event({ type: "delivered", id: 1 });
  deepStrictEqual(client.take(), [
    "delivered #1",
    '→ {"cmd":"send","text":"four"}',
  ]);
  client.event({ type: "undelivered", id: 2, text: "two" });
  deepStrictEqual(sends(client.take()), ["five"]);
  // The order on the link is the order typed.
  deepStrictEqual(
    client.requests.filter((r) => r.cmd === "send").map((r) =>
      r.cmd === "send" && r.text
    ),
    ["one", "two", "three", "four", "five"],
  );
});

Deno.test("core: a non-ASCII or too long message is refused locally, nothing sent (§2.3, §2.5)", () => {
  const client = inChat();
  strictEqual(client.line("héllo"), false);
  deepStrictEqual(client.take(), [
    'not sent: Message contains the non-ASCII character "é"; SIMP carries ASCII only: héllo',
  ]);
  strictEqual(client.line("x".repeat(MAX_PAYLOAD + 1)), false);
  match(
    client.take()[0],
    /^not sent: Message is 65469 bytes long; the limit is 65468/,
  );
  strictEqual(client.core.ask, "chat");
  deepStrictEqual(
    sends(client.requests.map((r) => `→ ${JSON.stringify(r)}`)),
    [],
  );
});

Deno.test("core: the longest message, even of characters JSON escapes, fits in one send line (§9)", () => {
  for (const c of ["x", '"', "\x01"]) {
    const text = c.repeat(MAX_PAYLOAD);
    strictEqual(sendProblem(text), undefined);
    const line = encodeRequest({
      id: Number.MAX_SAFE_INTEGER,
      cmd: "send",
      text,
    });
    ok(new TextEncoder().encode(line).length - 1 <= MAX_LINE_BYTES);
  }
});

Deno.test("core: a send the daemon refuses is reported with its text", () => {
  const client = inChat();
  client.line("hello");
  client.take();
  client.refuse("Not in a chat: start one or accept an invitation first");
  deepStrictEqual(client.take(), [
    "not sent: Not in a chat: start one or accept an invitation first: hello",
  ]);
});

Deno.test("core: /leave leaves and returns to the menu after chat-closed (§6.1)", () => {
  const client = inChat();
  client.line("/leave");
  deepStrictEqual(client.take(), ["leaving the chat", '→ {"cmd":"leave"}']);
  strictEqual(client.core.ask, undefined);
  client.reply();
  client.event({ type: "chat-closed", ...BOB, undelivered: 0 });
  deepStrictEqual(client.take(), ["chat closed", MENU]);
});

Deno.test("core: /leave typed behind waiting messages follows them; the chat is closed after the last (§6.1)", () => {
  const client = inChat({}, 1);
  client.line("one");
  client.line("two");
  client.line("/leave");
  deepStrictEqual(client.take(), [
    '→ {"cmd":"send","text":"one"}',
    "leaving the chat",
  ]);
  strictEqual(client.core.ask, undefined); // the lines after /leave are not chat lines
  client.sent(1);
  client.event({ type: "delivered", id: 1 });
  deepStrictEqual(client.take(), [
    "sent #1: one",
    "delivered #1",
    '→ {"cmd":"send","text":"two"}',
    '→ {"cmd":"leave"}',
  ]);
});

Deno.test("core: peer-left and peer-lost are followed by the undelivered messages, then the menu (§5.5, §6.1)", () => {
  for (const type of ["peer-left", "peer-lost"] as const) {
    const client = inChat();
    client.event({ type, ...BOB, undelivered: 2 });
    client.event({ type: "undelivered", id: 3, text: "are you there?" });
    strictEqual(client.core.ask, "chat"); // the menu comes after the last one
    client.event({ type: "undelivered", id: 4, text: "hello?" });
    deepStrictEqual(client.take(), [
      type === "peer-left"
        ? "bob left the chat"
        : "lost contact with bob at 127.0.0.2",
      // Sent by an earlier client of the daemon: no number in this chat.
      "undelivered (sent by an earlier client): are you there?",
      "undelivered (sent by an earlier client): hello?",
      MENU,
    ]);
  }
});

Deno.test("core: chat-closed is followed by the undelivered messages, then the menu (§5.5, §6.1)", () => {
  const client = inChat();
  client.line("/leave");
  client.take();
  client.event({ type: "chat-closed", ...BOB, undelivered: 2 });
  client.event({ type: "undelivered", id: 3, text: "are you there?" });
  strictEqual(client.core.ask, undefined);
  client.event({ type: "undelivered", id: 4, text: "hello?" });
  deepStrictEqual(client.take(), [
    "chat closed",
    "undelivered (sent by an earlier client): are you there?",
    "undelivered (sent by an earlier client): hello?",
    MENU,
  ]);
});

Deno.test("core: an event other than undelivered after peer-lost ends the chat even if fewer came than announced", () => {
  const client = inChat();
  client.event({ type: "peer-lost", ...BOB, undelivered: 2 });
  client.event({ type: "undelivered", id: 3, text: "are you there?" });
  client.event({ type: "invitation", ...BOB });
  deepStrictEqual(client.take(), [
    "lost contact with bob at 127.0.0.2",
    "undelivered (sent by an earlier client): are you there?",
    MENU,
    "invitation from bob at 127.0.0.2",
    ANSWER,
  ]);
});

Deno.test("core: messages not handed over are reported not sent when the chat ends, after the undelivered ones, before the menu (§5.5)", () => {
  const client = inChat({}, 1);
  client.line("one");
  client.sent(1);
  client.line("two");
  client.line("three");
  client.take();
  client.event({ type: "peer-lost", ...BOB, undelivered: 1 });
  client.event({ type: "undelivered", id: 1, text: "one" });
  deepStrictEqual(client.take(), [
    "lost contact with bob at 127.0.0.2",
    "undelivered #1: one",
    "not sent: The chat ended before it could be handed to the daemon: two",
    "not sent: The chat ended before it could be handed to the daemon: three",
    MENU,
  ]);
});

Deno.test("core: a queue-full refusal all the same holds the message and those after it; sent again in order after the next outcome (§5.1)", () => {
  const client = inChat({}, 2);
  client.line("one");
  client.line("two");
  client.line("three");
  client.take();
  client.sent(1);
  client.refuse(QUEUE_FULL, "queue-full");
  // Shown once, nothing lost, nothing sent until there is room.
  deepStrictEqual(client.take(), ["sent #1: one", HELD]);
  strictEqual(client.core.ask, "chat");
  client.line("four");
  client.event({ type: "retransmitted", id: 1, attempt: 1 });
  deepStrictEqual(client.take(), ["retransmitted #1 (attempt 1)"]);
  client.event({ type: "delivered", id: 1 });
  deepStrictEqual(client.take(), [
    "delivered #1",
    '→ {"cmd":"send","text":"two"}',
  ]);
  client.sent(2);
  client.event({ type: "delivered", id: 2 });
  client.sent(3);
  client.event({ type: "delivered", id: 3 });
  deepStrictEqual(sends(client.take()), ["three", "four"]);
  deepStrictEqual(
    client.outputs.filter((o) => o.type === "not-sent"),
    [],
  );
});

Deno.test("core: a queue-full refusal after the chat ended is reported not sent", () => {
  const client = inChat();
  client.line("one");
  client.take();
  client.event({ type: "peer-left", ...BOB, undelivered: 0 });
  client.refuse("Not in a chat: start one or accept an invitation first");
  deepStrictEqual(client.take(), [
    "bob left the chat",
    MENU,
    "not sent: Not in a chat: start one or accept an invitation first: one",
  ]);
});

// ---------------------------------------------------------------------------
// Quitting and the end of input (§8.4)

Deno.test("core: q quits at any point; after hello it sends quit (§8.4)", () => {
  // At the name question: nothing to tell the daemon.
  const asking = new Harness({ name: undefined }).open();
  asking.take();
  asking.line("q");
  deepStrictEqual(asking.take(), ["exit 0"]); // never connected: no bye

  for (const client of [connected(), inChat()]) {
    client.line(" q ");
    deepStrictEqual(client.take(), ['→ {"cmd":"quit"}']);
    client.reply();
    deepStrictEqual(client.take(), ["bye", "exit 0"]);
  }
});

Deno.test("core: q while waiting and the end of input quit too (§8.4)", () => {
  const client = connected();
  client.line("2");
  client.take();
  client.line("q");
  deepStrictEqual(client.take(), ['→ {"cmd":"quit"}']);

  const chat = inChat();
  chat.input(null);
  deepStrictEqual(chat.take(), ['→ {"cmd":"quit"}']);
  chat.input(null); // twice changes nothing
  deepStrictEqual(chat.take(), []);
});

Deno.test("core: the end of input before the daemon answered hello waits for the answer", () => {
  const client = new Harness().open();
  client.take();
  client.input(null);
  deepStrictEqual(client.take(), []);
  client.hello();
  deepStrictEqual(client.take(), [
    "connected to 127.0.0.1:7778 as alice",
    MENU,
    '→ {"cmd":"quit"}',
  ]);
  client.reply();
  deepStrictEqual(client.take(), ["bye", "exit 0"]);
});

Deno.test("core: the end of input before the connection opened ends once it does, without a hello", () => {
  const client = new Harness();
  client.input(null);
  client.open();
  deepStrictEqual(client.take(), ["exit 0"]);
});

Deno.test("core: Ctrl+C quits at once, even before the daemon answered (§8.4)", () => {
  const before = new Harness();
  before.interrupt();
  deepStrictEqual(before.take(), ["exit 0"]);
  const greeting = new Harness().open();
  greeting.take();
  greeting.interrupt();
  deepStrictEqual(greeting.take(), ['→ {"cmd":"quit"}']);
  // A second one does not wait for the daemon's answer.
  greeting.interrupt();
  deepStrictEqual(greeting.take(), ["exit 130"]);
});

Deno.test("core: a quit the daemon does not answer ends the client after QUIT_TIMEOUT_MS with the code it quit with", () => {
  const client = connected();
  client.line("q");
  client.take();
  strictEqual(client.core.nextTimeout(), client.now + QUIT_TIMEOUT_MS);
  client.advance(QUIT_TIMEOUT_MS - 1);
  deepStrictEqual(client.take(), []);
  client.advance(1);
  deepStrictEqual(client.take(), ["bye", "exit 0"]);
});

Deno.test("core: the daemon closing the connection after quit is the expected end", () => {
  const client = connected();
  client.line("q");
  client.take();
  client.close();
  deepStrictEqual(client.take(), ["bye", "exit 0"]);
});

Deno.test("core: q quits at once; those not handed over are not sent; those still without news when the daemon answers quit are counted once, before bye (§8.4)", () => {
  const client = inChat({}, 2);
  client.line("one");
  client.sent(1);
  client.line("two");
  client.line("three");
  client.take();
  client.line("q");
  deepStrictEqual(client.take(), [
    "not sent: You quit before it was handed to the daemon: three",
    '→ {"cmd":"quit"}',
  ]);
  client.sent(2);
  client.reply();
  deepStrictEqual(client.take(), [
    "sent #2: two",
    IN_FLIGHT_2,
    "bye",
    "exit 0",
  ]);
});

Deno.test("core: news that comes between q and the daemon's answer is shown, and the in-flight count is what is still unknown (issue 8 defect 5)", () => {
  const client = inChat({}, 2);
  client.line("one");
  client.line("two");
  client.sent(4).sent(5);
  client.take();
  client.line("q");
  deepStrictEqual(client.take(), ['→ {"cmd":"quit"}']);
  client.event({ type: "delivered", id: 4 });
  client.reply();
  // Never "2 messages not delivered yet" and then "delivered #1".
  deepStrictEqual(client.take(), [
    "delivered #1",
    "1 message not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver",
    "bye",
    "exit 0",
  ]);
  const all = inChat({}, 2);
  all.line("one");
  all.sent(4);
  all.line("q");
  all.event({ type: "delivered", id: 4 });
  all.reply();
  deepStrictEqual(all.take().slice(-4), [
    '→ {"cmd":"quit"}',
    "delivered #1",
    "bye",
    "exit 0",
  ]);
});

Deno.test("core: at the end of input in a chat the client waits for every outcome, then quits with exit code 0", () => {
  const client = inChat();
  client.input("one", "two", null);
  deepStrictEqual(sends(client.take()), ["one", "two"]);
  client.sent(1).sent(2);
  client.event({ type: "delivered", id: 1 });
  deepStrictEqual(client.take(), [
    "sent #1: one",
    "sent #2: two",
    "delivered #1",
  ]);
  strictEqual(client.core.done, false);
  client.event({ type: "delivered", id: 2 });
  deepStrictEqual(client.take(), ["delivered #2", '→ {"cmd":"quit"}']);
  client.reply();
  deepStrictEqual(client.take(), ["bye", "exit 0"]);
});

Deno.test("core: at the end of input, messages reported undelivered give a summary and exit code 1 (§5.5)", () => {
  const client = inChat();
  client.input("one", "two", "three");
  client.sent(5).sent(6).sent(7);
  client.take();
  client.input(null);
  deepStrictEqual(client.take(), []);
  client.event({ type: "delivered", id: 5 });
  client.event({ type: "peer-lost", ...BOB, undelivered: 2 });
  client.event({ type: "undelivered", id: 6, text: "two" });
  // Numbered in this chat (#2), not with the daemon's id (6).
  deepStrictEqual(client.take().slice(-1), ["undelivered #2: two"]);
  client.event({ type: "undelivered", id: 7, text: "three" });
  deepStrictEqual(client.take(), [
    "undelivered #3: three",
    MENU,
    "2 of 3 messages not delivered",
    '→ {"cmd":"quit"}',
  ]);
  client.reply();
  deepStrictEqual(client.take(), ["bye", "exit 1"]);
});

Deno.test("core: at the end of input, a line not sent counts too (exit code 1)", () => {
  const client = inChat();
  client.input("héllo", "hello");
  client.sent(1);
  client.event({ type: "delivered", id: 1 });
  client.take();
  client.input(null);
  deepStrictEqual(client.take(), [
    "1 of 2 messages not delivered",
    '→ {"cmd":"quit"}',
  ]);
  client.reply();
  deepStrictEqual(client.take(), ["bye", "exit 1"]);
});

Deno.test("core: at the end of input, held messages are still sent before the client quits", () => {
  const client = inChat({}, 1);
  client.input("one", "two", null);
  client.sent(1);
  client.take();
  client.event({ type: "delivered", id: 1 });
  deepStrictEqual(sends(client.take()), ["two"]);
  client.sent(2);
  client.event({ type: "delivered", id: 2 });
  deepStrictEqual(client.take(), [
    "sent #2: two",
    "delivered #2",
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("core: at the end of input while leaving, the client waits for chat-closed and its undelivered messages", () => {
  const client = inChat();
  client.input("one", "/leave", null);
  deepStrictEqual(client.take(), [
    '→ {"cmd":"send","text":"one"}',
    "leaving the chat",
    '→ {"cmd":"leave"}',
  ]);
  client.sent(1);
  client.reply();
  client.event({ type: "chat-closed", ...BOB, undelivered: 1 });
  deepStrictEqual(client.take(), ["sent #1: one", "chat closed"]);
  client.event({ type: "undelivered", id: 1, text: "one" });
  deepStrictEqual(client.take(), [
    "undelivered #1: one",
    MENU,
    "1 of 1 message not delivered",
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("core: a send the daemon refuses because the chat ended counts as not delivered at the end of input", () => {
  const client = inChat();
  client.input("one", null);
  client.event({ type: "peer-left", ...BOB, undelivered: 0 });
  client.take();
  client.refuse("Not in a chat: start one or accept an invitation first");
  deepStrictEqual(client.take(), [
    "not sent: Not in a chat: start one or accept an invitation first: one",
    "1 of 1 message not delivered",
    '→ {"cmd":"quit"}',
  ]);
});

// ---------------------------------------------------------------------------
// Scripted input: read only when asked, strict answers

Deno.test("core: scripted input is read only when the dialogue asks; a q line at any point (§8)", () => {
  const client = connected({ phase: "idle" }, { strict: true });
  // Everything at once: the "y" must wait for the invitation.
  client.input("2", "y");
  deepStrictEqual(client.take(), ["waiting for invitations"]);
  client.event({ type: "invitation", ...BOB });
  deepStrictEqual(client.take(), [
    "invitation from bob at 127.0.0.2",
    ANSWER,
    '→ {"cmd":"accept"}',
  ]);
  client.reply();
  client.event({ type: "chat-started", ...BOB });
  client.input("hello", "q");
  deepStrictEqual(client.take(), [
    "chat started with bob at 127.0.0.2",
    CHAT,
    '→ {"cmd":"send","text":"hello"}',
  ]);
  // A script's q waits for the outcome of its messages (issue 8 defect 5).
  client.sent(4);
  client.event({ type: "delivered", id: 4 });
  deepStrictEqual(client.take(), [
    "sent #1: hello",
    "delivered #1",
    '→ {"cmd":"quit"}',
  ]);
  client.reply();
  deepStrictEqual(client.take(), ["bye", "exit 0"]);
});

Deno.test('core: scripted input: a q waits for the outcomes; one not delivered gives the summary and exit code 1, never "not delivered yet" (issue 8 defect 5)', () => {
  const client = inChat({ strict: true });
  client.input("one", "q", "never read");
  client.sent(9);
  client.event({ type: "retransmitted", id: 9, attempt: 1 });
  deepStrictEqual(client.take(), [
    '→ {"cmd":"send","text":"one"}',
    "sent #1: one",
    "retransmitted #1 (attempt 1)",
  ]);
  strictEqual(client.core.done, false);
  client.event({ type: "peer-lost", ...BOB, undelivered: 1 });
  client.event({ type: "undelivered", id: 9, text: "one" });
  client.reply();
  deepStrictEqual(client.take(), [
    "lost contact with bob at 127.0.0.2",
    "undelivered #1: one",
    MENU,
    "1 of 1 message not delivered",
    '→ {"cmd":"quit"}',
    "bye",
    "exit 1",
  ]);
  ok(!client.requests.some((r) => r.cmd === "send" && r.text === "never read"));
});

Deno.test("core: scripted input: a q line while nothing is asked quits at once", () => {
  const client = connected({ phase: "idle" }, { strict: true });
  client.input("1", "127.0.0.2", "q");
  deepStrictEqual(client.take(), [
    "? ip: IPv4 address of the user to invite, e.g. 127.0.0.2 (empty = back to menu, q = quit)",
    "inviting 127.0.0.2",
    '→ {"cmd":"invite","ip":"127.0.0.2"}',
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("core: scripted input: the end of input quits while waiting for invitations, even behind an unread line (§8.4)", () => {
  const client = connected({ phase: "idle" }, { strict: true });
  client.input("2", "hello", null);
  deepStrictEqual(client.take(), [
    "waiting for invitations",
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("core: scripted input: a q behind messages not handed over quits once they are (exit 0)", () => {
  const client = connected({ phase: "established", peer: BOB }, {
    strict: true,
  }, 1);
  client.input("one", "two", "three", "q", "four", null);
  deepStrictEqual(sends(client.take()), ["one"]);
  strictEqual(client.core.ask, undefined); // nothing after the q is read
  client.sent(1);
  client.event({ type: "delivered", id: 1 });
  client.sent(2);
  client.event({ type: "delivered", id: 2 });
  deepStrictEqual(client.take(), [
    "sent #1: one",
    "delivered #1",
    '→ {"cmd":"send","text":"two"}',
    "sent #2: two",
    "delivered #2",
    '→ {"cmd":"send","text":"three"}',
  ]);
  client.sent(3);
  deepStrictEqual(client.take(), ["sent #3: three"]);
  client.event({ type: "delivered", id: 3 });
  deepStrictEqual(client.take(), ["delivered #3", '→ {"cmd":"quit"}']);
  client.reply();
  deepStrictEqual(client.take(), ["bye", "exit 0"]);
  deepStrictEqual(
    sends(
      client.requests.map((r) =>
        `→ ${JSON.stringify({ ...r, id: undefined })}`
      ),
    ),
    ["one", "two", "three"],
  );
});

Deno.test("core: scripted input: an invalid answer to a question is fatal, exit code 1", () => {
  const menu = connected({ phase: "idle" }, { strict: true });
  menu.input("hello bob");
  deepStrictEqual(menu.outputs.at(-1), {
    type: "error",
    message:
      'Invalid answer "hello bob" to the menu in scripted input: type 1 to start a new chat, 2 to wait for invitations or q to quit',
    fatal: true,
  });
  deepStrictEqual(menu.take().slice(-1), ['→ {"cmd":"quit"}']);
  menu.reply();
  deepStrictEqual(menu.take(), ["bye", "exit 1"]);

  const ip = connected({ phase: "idle" }, { strict: true });
  ip.input("1", "hello");
  match(
    ip.take()[1],
    /^error: Invalid answer "hello" to the IP address question in scripted input: "hello" is not an IPv4 address/,
  );

  const answer = connected({ phase: "invited", peer: BOB }, { strict: true });
  answer.input("x".repeat(100));
  match(
    answer.take()[0],
    /^error: Invalid answer "x{39}…" to the invitation in scripted input: type y to accept/,
  );

  // Before hello there is no slot to free: the client stops at once.
  const name = new Harness({ name: undefined, strict: true }).open();
  name.take();
  name.input("zoë");
  deepStrictEqual(name.take().slice(1), ["exit 1"]);
});

Deno.test("core: scripted input: valid answers still lead on (/leave, the menu, a new chat)", () => {
  const client = connected({ phase: "idle" }, { strict: true });
  for (const line of ["1", "", "2", "/leave", "1", "127.0.0.2"]) {
    client.line(line);
  }
  client.reply();
  client.event({ type: "chat-started", ...BOB });
  client.line("/leave");
  client.reply();
  client.event({ type: "chat-closed", ...BOB, undelivered: 0 });
  strictEqual(client.core.ask, "menu");
  ok(!client.take().some((line) => line.startsWith("error")));
});

Deno.test("core: scripted input: lines wait in a bounded queue; wantsInput says when to read more", () => {
  const client = connected({ phase: "idle" }, { strict: true });
  client.input("2");
  strictEqual(client.core.wantsInput, true);
  for (let i = 0; i < MAX_QUEUED_LINES; i++) client.input(`line ${i}`);
  strictEqual(client.core.wantsInput, false);
});

Deno.test("core: a huge piped chat is taken into the outbox only up to MAX_WAITING messages", () => {
  const client = inChat({ strict: true }, 2);
  const lines = Array.from({ length: MAX_WAITING + 100 }, (_, i) => `m${i}`);
  client.input(...lines);
  client.take();
  // Two handed to the daemon, MAX_WAITING waiting in the outbox, the rest unread.
  strictEqual(client.core.wantsInput, true);
  strictEqual(
    sends(
      client.requests.map((r) =>
        `→ ${JSON.stringify({ ...r, id: undefined })}`
      ),
    ).length,
    2,
  );
  client.sent(1);
  client.event({ type: "delivered", id: 1 });
  // One more handed over, one more read.
  strictEqual(client.requests.filter((r) => r.cmd === "send").length, 3);
});

// ---------------------------------------------------------------------------
// The link: not running, gone, broken, slow (§8.1, §9)

Deno.test("core: a daemon that is not running is named with the command to start it (§8.1)", () => {
  const client = new Harness({ ip: "127.0.0.2", name: "bob" });
  client.unreachable();
  deepStrictEqual(client.outputs, [{
    type: "error",
    message:
      "Daemon not reachable at 127.0.0.2:7778 — is `simp daemon 127.0.0.2` running?",
    fatal: true,
  }]); // once, and no bye: it never connected (issue 8 defect 5)
  strictEqual(client.exitCode, 1);
  strictEqual(
    unreachableMessage("127.0.0.3", 7000),
    "Daemon not reachable at 127.0.0.3:7000 — is `simp daemon 127.0.0.3 --client-port 7000` running?",
  );
});

Deno.test("core: an address of another machine is refused before connecting (§7.2)", () => {
  const client = new Harness({ ip: "192.0.2.1" });
  client.unreachable("not-this-machine");
  match(
    client.outputs[0].type === "error" ? client.outputs[0].message : "",
    /^192\.0\.2\.1 is not an address of this machine: run the client on the daemon's machine/,
  );
  strictEqual(client.exitCode, 1);
});

Deno.test("core: connecting for longer than CONNECT_TIMEOUT_MS counts as not running", () => {
  const client = new Harness();
  strictEqual(client.core.nextTimeout(), CONNECT_TIMEOUT_MS);
  client.advance(CONNECT_TIMEOUT_MS);
  match(client.take()[0], /^error: Daemon not reachable at 127\.0\.0\.1:7778/);
  strictEqual(client.exitCode, 1);
});

Deno.test("core: a daemon that never answers hello is reported after HELLO_TIMEOUT_MS", () => {
  const client = new Harness().open();
  client.take();
  client.advance(HELLO_TIMEOUT_MS - 1);
  deepStrictEqual(client.take(), []);
  client.advance(1);
  deepStrictEqual(client.take(), [
    "error: The daemon at 127.0.0.1:7778 did not answer within 10 s: is it a simp daemon of this version? Start one with `simp daemon 127.0.0.1`",
    "exit 1",
  ]);
});

Deno.test("core: nothing is timed once connected: a client idle for an hour stays (§9)", () => {
  const client = inChat();
  strictEqual(client.core.nextTimeout(), undefined);
  client.advance(3_600_000);
  deepStrictEqual(client.take(), []);
  strictEqual(client.exitCode, undefined);
});

Deno.test("core: the daemon going away is one clear line and exit 1; unanswered sends are not sent (§9)", () => {
  const client = inChat({}, 1);
  client.line("one");
  client.line("two");
  client.take();
  client.close();
  deepStrictEqual(client.take(), [
    "not sent: No answer from the daemon: it may or may not have sent it: one",
    "not sent: The client stopped before handing it to the daemon: two",
    "error: Lost the connection to the daemon at 127.0.0.1:7778: it stopped or was killed; start it again with `simp daemon 127.0.0.1`, then the client",
    "bye",
    "exit 1",
  ]);
  // Nothing after the end changes anything.
  client.close().event({ type: "message", name: "bob", text: "late" });
  deepStrictEqual(client.take(), []);
});

Deno.test("core: daemon-stopping ends the client with exit 1; unanswered sends are not sent", () => {
  const client = inChat();
  client.line("one");
  client.take();
  client.event({ type: "daemon-stopping" });
  deepStrictEqual(client.take(), [
    "not sent: No answer from the daemon before it stopped: it may or may not have sent it: one",
    "daemon is stopping",
    "bye",
    "exit 1",
  ]);
});

Deno.test("core: a line the client cannot read breaks the link: one clear line, exit 1 (§9)", () => {
  const cases: [string, RegExp][] = [
    ["nonsense", /\(Bad daemon message: not JSON/],
    [
      '{"event":{"type":"message","name":7,"text":"hi"}}',
      /\(Bad message event: `name`/,
    ],
    [
      '{"event":{"type":"message","name":[[[[]]]],"text":"hi"}}',
      /\(Bad message event/,
    ],
    ['{"event":{"type":"teleport"}}', /\(Unknown event type "teleport"/],
    ['{"re":99,"ok":true}', /\(A reply to request 99 that was not asked/],
    ["[1,2,3]", /is not a JSON object/],
  ];
  for (const [line, why] of cases) {
    const client = connected();
    client.raw(line);
    const shown = client.take();
    match(shown[0], why);
    match(
      shown[0],
      /^error: The daemon at 127\.0\.0\.1:7778 sent what this client cannot read/,
    );
    deepStrictEqual(shown.slice(1), ["bye", "exit 1"]);
  }
});

Deno.test("core: a line that is not UTF-8 or too long breaks the link; an unfinished last line is left to the close", () => {
  const bad = connected();
  bad.item({ type: "invalid-utf8", bytes: 3 });
  const badLines = bad.take();
  match(badLines[0], /a line of 3 bytes that is not UTF-8/);
  deepStrictEqual(badLines.slice(1), ["bye", "exit 1"]);
  const long = connected();
  long.item({
    type: "too-long",
    bytes: MAX_LINE_BYTES + 1,
    limit: MAX_LINE_BYTES,
  });
  const longLines = long.take();
  match(longLines[0], /a line longer than 524288 bytes \(the link's limit\)/);
  deepStrictEqual(longLines.slice(1), ["bye", "exit 1"]);
  const cut = connected();
  cut.item({ type: "unterminated", bytes: 10 });
  strictEqual(cut.exitCode, undefined);
});

Deno.test("core: a never-ending stream of events is shown as it comes, and nothing piles up", () => {
  const client = inChat();
  for (let i = 0; i < 10_000; i++) {
    client.event({ type: "message", name: "bob", text: `flood ${i}` });
    client.take();
  }
  strictEqual(client.exitCode, undefined);
  strictEqual(client.core.ask, "chat");
  // The core keeps nothing per event: its actions were all taken.
  deepStrictEqual(client.core.takeActions(), []);
});

Deno.test("core: at the end of input while leaving with every message delivered, the client still waits for chat-closed (§6.1)", () => {
  const client = inChat();
  client.input("one", "/leave", null);
  client.sent(1);
  client.reply();
  client.event({ type: "delivered", id: 1 });
  deepStrictEqual(client.take().slice(-2), ["sent #1: one", "delivered #1"]);
  strictEqual(client.exitCode, undefined);
  client.event({ type: "chat-closed", ...BOB, undelivered: 0 });
  deepStrictEqual(client.take(), ["chat closed", MENU, '→ {"cmd":"quit"}']);
});

Deno.test("core: messages are numbered per chat: the first message of the next chat is #1 again, whatever msgId the daemon gives (issue 8)", () => {
  const client = inChat();
  client.line("one");
  client.sent(404);
  client.event({ type: "delivered", id: 404 });
  client.event({ type: "peer-left", ...BOB, undelivered: 0 });
  client.take();
  client.line("1");
  client.line("127.0.0.2");
  client.reply();
  client.event({ type: "chat-started", ...BOB });
  client.line("two");
  client.sent(405);
  client.event({ type: "delivered", id: 405 });
  deepStrictEqual(client.take().slice(-3), [
    '→ {"cmd":"send","text":"two"}',
    "sent #1: two",
    "delivered #1",
  ]);
  // The JSON output carries the chat's number too.
  deepStrictEqual(client.outputs.filter((o) => o.type === "sent"), [
    { type: "sent", id: 1, text: "one" },
    { type: "sent", id: 1, text: "two" },
  ]);
});

// ---------------------------------------------------------------------------
// Progress and notices the daemon adds (issue 8)

Deno.test("core: while inviting, each invite-retry is a line with the tries and the time left; none once cancelled", () => {
  const client = connected({ phase: "idle" }, { strict: true });
  client.input("1", "127.0.0.5");
  client.reply();
  client.take();
  client.event({
    type: "invite-retry",
    ip: "127.0.0.5",
    port: 7777,
    attempt: 1,
    leftMs: 55_000,
  });
  deepStrictEqual(client.take(), [
    "no answer yet from 127.0.0.5: invitation sent 2 times, giving up in 55 s (/leave cancels, q quits)",
  ]);
  deepStrictEqual(client.outputs.at(-1), {
    type: "invite-retry",
    ip: "127.0.0.5",
    port: 7777,
    attempt: 1,
    leftMs: 55_000,
  });
  client.line("/leave");
  client.take();
  client.event({
    type: "invite-retry",
    ip: "127.0.0.5",
    port: 7777,
    attempt: 2,
    leftMs: 50_000,
  });
  deepStrictEqual(client.take(), []);
});

Deno.test("core: someone answered busy while an invitation is pending is told, the question stays (§4.8)", () => {
  const client = connected({ phase: "invited", peer: BOB });
  client.take();
  client.event({
    type: "busy-answered",
    ip: "127.0.0.3",
    port: 7777,
    name: "carol",
  });
  deepStrictEqual(client.take(), [
    "carol at 127.0.0.3 tried to invite you and was told you are busy",
  ]);
  strictEqual(client.core.ask, "answer");
});

Deno.test("core: the partner's daemon restarted during the chat: told that messages may have been missed; the chat goes on (§4.5)", () => {
  const client = inChat();
  client.event({ type: "peer-reconnected", ...BOB });
  deepStrictEqual(client.take(), [
    "bob at 127.0.0.2 reconnected (their daemon restarted): messages around the restart may have been missed",
  ]);
  strictEqual(client.core.ask, "chat");
});

Deno.test("core: a chat answered at once says so after chat started, not as if bob had accepted (§4.5, §4.9)", () => {
  const client = connected({ phase: "idle" });
  client.line("1");
  client.line("127.0.0.2");
  client.reply();
  client.take();
  client.event({ type: "chat-started", ...BOB, atOnce: true });
  deepStrictEqual(client.take(), [
    "chat started with bob at 127.0.0.2",
    "bob answered at once: if your daemon restarted during a chat with bob, this is that chat going on (messages may have been missed); otherwise their side accepts by itself",
    CHAT,
  ]);
});

Deno.test("core: a message typed after accepting, before chat started, keeps its number once the chat starts (§8.5)", () => {
  // Through a lossy link the handshake can take seconds after `y`; what the
  // user typed meanwhile is this chat's message #1, not an earlier client's.
  const client = new Harness().open();
  client.take();
  client.hello({ phase: "invited", peer: BOB });
  client.line("y");
  client.reply();
  client.take();
  strictEqual(client.line("early bird"), true);
  client.sent(7);
  client.event({ type: "chat-started", ...BOB });
  client.event({ type: "delivered", id: 7 });
  client.line("second");
  client.sent(8);
  client.event({ type: "delivered", id: 8 });
  deepStrictEqual(client.take(), [
    '→ {"cmd":"send","text":"early bird"}',
    "sent #1: early bird",
    "chat started with bob at 127.0.0.2",
    CHAT,
    "delivered #1",
    '→ {"cmd":"send","text":"second"}',
    "sent #2: second",
    "delivered #2",
  ]);
});
