/**
 * Tests of the client (SPEC §8, §9): the flow and its rendering, the control
 * channel and the line editor in virtual time, and the flow, channel and
 * daemon core joined in virtual time; the daemon link against a fake daemon
 * on real UDP sockets; and `mod.ts client` as a subprocess in scripted mode.
 * Every real test uses its own address 127.0.77.2xx or 127.0.87.x (never
 * 127.0.0.1 or 127.0.0.2).
 */

import {
  deepStrictEqual,
  match,
  ok,
  rejects,
  strictEqual,
  throws,
} from "node:assert/strict";
import {
  type Ask,
  ClientFlow,
  type FlowAction,
  type FlowOptions,
  formatPeer,
  type Output,
  parseTarget,
  printable,
  renderJson,
  renderText,
  sendProblem,
  unreachableMessage,
} from "../lib/client_flow.ts";
import {
  type ClientMessage,
  type Command,
  type ControlEvent,
  type DaemonState,
  encodeControl,
  KEEPALIVE_MS,
  MAX_CONTROL_DATAGRAM,
  parseClientMessage,
  parseDaemonMessage,
  type Reply,
  type Request,
  REQUEST_ATTEMPTS,
  REQUEST_RETRY_MS,
  splitEvent,
} from "../lib/control.ts";
import { type ChannelAction, ControlChannel } from "../lib/control_channel.ts";
import {
  BUSY_TEXT,
  type Datagram,
  MAX_PAYLOAD,
  Op,
  Type,
} from "../lib/wire/datagram.ts";
import { DaemonCore } from "../lib/daemon/core.ts";
import { control } from "./support/datagrams.ts";
import { LineEditor, visibleLength } from "../lib/user/line_editor.ts";
import {
  DaemonLink,
  DaemonUnreachableError,
  terminalLines,
} from "../client.ts";

// ---------------------------------------------------------------------------
// The flow (SPEC §8), in isolation

/** The flow's actions as readable lines: outputs as scripted text. */
function show(actions: FlowAction[]): string[] {
  return actions.map((action) => {
    switch (action.type) {
      case "request":
        return `→ ${JSON.stringify(action.command)}`;
      case "output":
        return renderText(action.output);
      case "exit":
        return `exit ${action.code}`;
    }
  });
}

function okReply(extra: { state?: DaemonState; msgId?: number } = {}): Reply {
  return { v: 1, re: 0, ok: true, ...extra };
}

function errReply(error: string): Reply {
  return { v: 1, re: 0, ok: false, error };
}

const MENU = "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit";
const CHAT = "? chat: type a message, /leave = leave the chat, q = quit";
const ANSWER = "? answer: y = accept, n = decline, q = quit";
const BOB = { ip: "127.0.0.2", port: 7777, name: "bob" };

/** A flow that has probed and connected as alice, its actions taken. */
function connected(
  state: DaemonState = { phase: "idle" },
  options: Partial<FlowOptions> = {},
): { flow: ClientFlow; lines: string[] } {
  const flow = new ClientFlow({
    ip: "127.0.0.1",
    port: 7778,
    name: "alice",
    ...options,
  });
  flow.start();
  flow.onReply({ cmd: "ping" }, errReply("Not connected: send connect first"));
  flow.takeActions();
  flow.onReply({ cmd: "connect", name: "alice" }, okReply({ state }));
  return { flow, lines: show(flow.takeActions()) };
}

/** A flow in a chat with bob (alice invited him). */
function inChat(): ClientFlow {
  const { flow } = connected();
  flow.onLine("1");
  flow.onLine("127.0.0.2");
  flow.onEvent({ type: "chat-started", ...BOB });
  flow.takeActions();
  return flow;
}

Deno.test("flow: the daemon is probed before the name is asked (§8.1)", () => {
  const flow = new ClientFlow({ ip: "127.0.0.1", port: 7778 });
  flow.start();
  deepStrictEqual(show(flow.takeActions()), ['→ {"cmd":"ping"}']);
  strictEqual(flow.ask, undefined);
  // Any reply, even "not connected", proves the daemon runs.
  flow.onReply({ cmd: "ping" }, errReply("Not connected: send connect first"));
  deepStrictEqual(show(flow.takeActions()), [
    "? name: your user name (q = quit)",
  ]);
  strictEqual(flow.ask, "name");
});

Deno.test("flow: a bad or empty name is refused and asked again (§2.3, §8.1)", () => {
  const flow = new ClientFlow({ ip: "127.0.0.1", port: 7778 });
  flow.start();
  flow.onReply({ cmd: "ping" }, okReply());
  flow.takeActions();
  strictEqual(flow.onLine("   "), false);
  deepStrictEqual(show(flow.takeActions()), [
    "error: User name must not be empty: type a name such as alice",
    "? name: your user name (q = quit)",
  ]);
  strictEqual(flow.onLine("x".repeat(33)), false);
  match(show(flow.takeActions())[0], /^error: User name is 33 characters/);
  strictEqual(flow.onLine("zoë"), false);
  match(show(flow.takeActions())[0], /^error: User name must be plain ASCII/);
  strictEqual(flow.onLine(" carol "), true);
  deepStrictEqual(show(flow.takeActions()), [
    '→ {"cmd":"connect","name":"carol"}',
  ]);
});

Deno.test("flow: --name skips the question; connected, then the menu (§8.3)", () => {
  const { flow, lines } = connected();
  deepStrictEqual(lines, ["connected to 127.0.0.1:7778 as alice", MENU]);
  strictEqual(flow.ask, "menu");
  strictEqual(flow.name, "alice");
  strictEqual(flow.connected, true);
});

Deno.test("flow: a pending invitation at connect is shown and asked about (§8.2)", () => {
  const { flow, lines } = connected({ phase: "invited", peer: BOB });
  deepStrictEqual(lines, [
    "connected to 127.0.0.1:7778 as alice",
    "invitation from bob at 127.0.0.2",
    ANSWER,
  ]);
  strictEqual(flow.ask, "answer");
  // The same invitation as an event as well is not asked twice.
  flow.onEvent({ type: "invitation", ...BOB });
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onLine("y");
  deepStrictEqual(show(flow.takeActions()), ['→ {"cmd":"accept"}']);
  flow.onEvent({ type: "chat-started", ...BOB });
  deepStrictEqual(show(flow.takeActions()), [
    "chat started with bob at 127.0.0.2",
    CHAT,
  ]);
});

Deno.test("flow: connecting during a chat goes straight into it", () => {
  const { flow, lines } = connected({ phase: "established", peer: BOB });
  deepStrictEqual(lines, [
    "connected to 127.0.0.1:7778 as alice",
    "chat started with bob at 127.0.0.2",
    CHAT,
  ]);
  strictEqual(flow.ask, "chat");
});

Deno.test("flow: a refused connect is fatal (exit 1)", () => {
  const flow = new ClientFlow({ ip: "127.0.0.1", port: 7778, name: "alice" });
  flow.start();
  flow.onReply({ cmd: "ping" }, okReply());
  flow.takeActions();
  flow.onReply(
    { cmd: "connect", name: "alice" },
    errReply("Another client (127.0.0.1:4000) is connected to this daemon"),
  );
  deepStrictEqual(show(flow.takeActions()), [
    "error: Another client (127.0.0.1:4000) is connected to this daemon",
    "bye",
    "exit 1",
  ]);
  strictEqual(flow.done, true);
});

Deno.test("flow: start a new chat asks the IP, validates it and invites (§8.3)", () => {
  const { flow } = connected();
  strictEqual(flow.onLine("3"), false);
  deepStrictEqual(show(flow.takeActions()), [
    "error: Type 1 to start a new chat, 2 to wait for invitations or q to quit",
    MENU,
  ]);
  flow.onLine("1");
  deepStrictEqual(show(flow.takeActions()), [
    "? ip: IPv4 address of the user to invite, e.g. 127.0.0.2 (empty = back to menu, q = quit)",
  ]);
  strictEqual(flow.onLine("127.0.0.256"), false);
  match(show(flow.takeActions())[0], /^error: "127\.0\.0\.256" is not an IPv4/);
  flow.onLine("127.0.0.2");
  deepStrictEqual(show(flow.takeActions()), [
    "inviting 127.0.0.2",
    '→ {"cmd":"invite","ip":"127.0.0.2"}',
  ]);
  strictEqual(flow.ask, undefined);
  flow.onReply({ cmd: "invite", ip: "127.0.0.2" }, okReply());
  flow.onEvent({ type: "chat-started", ...BOB });
  deepStrictEqual(show(flow.takeActions()), [
    "chat started with bob at 127.0.0.2",
    CHAT,
  ]);
});

Deno.test("flow: an IP with a port invites that port", () => {
  const { flow } = connected();
  flow.onLine("1");
  flow.takeActions();
  flow.onLine("127.0.0.2:7790");
  deepStrictEqual(show(flow.takeActions()), [
    "inviting 127.0.0.2:7790",
    '→ {"cmd":"invite","ip":"127.0.0.2","port":7790}',
  ]);
});

Deno.test("flow: declined, busy and no-answer return to the menu (§4.4, §4.6, §4.8)", () => {
  const cases: [ControlEvent, string][] = [
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
    const { flow } = connected();
    flow.onLine("1");
    flow.onLine("127.0.0.2");
    flow.takeActions();
    flow.onEvent(event);
    deepStrictEqual(show(flow.takeActions()), [line, MENU]);
  }
});

Deno.test("flow: an invite the daemon refuses returns to the menu with its message", () => {
  const { flow } = connected();
  flow.onLine("1");
  flow.onLine("127.0.0.1");
  flow.takeActions();
  flow.onReply(
    { cmd: "invite", ip: "127.0.0.1" },
    errReply(
      "127.0.0.1:7777 is this daemon: invite another user's daemon IP address",
    ),
  );
  deepStrictEqual(show(flow.takeActions()), [
    "error: 127.0.0.1:7777 is this daemon: invite another user's daemon IP address",
    MENU,
  ]);
});

Deno.test("flow: /leave while inviting cancels the invitation", () => {
  const { flow } = connected();
  flow.onLine("1");
  flow.onLine("127.0.0.2");
  flow.takeActions();
  strictEqual(flow.onLine("hello?"), false);
  flow.takeActions();
  flow.onLine("/leave");
  deepStrictEqual(show(flow.takeActions()), [
    "invitation to 127.0.0.2 cancelled",
    '→ {"cmd":"leave"}',
    MENU,
  ]);
});

Deno.test("flow: waiting for invitations idles until one arrives (§8.3)", () => {
  const { flow } = connected();
  flow.onLine("2");
  deepStrictEqual(show(flow.takeActions()), [
    "waiting for invitations",
    '→ {"cmd":"wait"}',
  ]);
  strictEqual(flow.ask, undefined);
  flow.onReply({ cmd: "wait" }, okReply({ state: { phase: "idle" } }));
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onEvent({ type: "invitation", ...BOB });
  deepStrictEqual(show(flow.takeActions()), [
    "invitation from bob at 127.0.0.2",
    ANSWER,
  ]);
  strictEqual(flow.onLine("maybe"), false);
  deepStrictEqual(show(flow.takeActions()), [
    "error: Type y to accept the invitation, n to decline it or q to quit",
    ANSWER,
  ]);
  flow.onLine("n");
  deepStrictEqual(show(flow.takeActions()), [
    '→ {"cmd":"decline"}',
    "declined invitation from bob at 127.0.0.2",
    MENU,
  ]);
});

Deno.test("flow: an invitation pending when wait is answered is asked about (§8.2)", () => {
  const { flow } = connected();
  flow.onLine("2");
  flow.takeActions();
  flow.onReply(
    { cmd: "wait" },
    okReply({ state: { phase: "invited", peer: BOB } }),
  );
  deepStrictEqual(show(flow.takeActions()), [
    "invitation from bob at 127.0.0.2",
    ANSWER,
  ]);
});

Deno.test("flow: a withdrawn invitation returns to the menu", () => {
  const { flow } = connected({ phase: "invited", peer: BOB });
  flow.onEvent({ type: "invitation-ended", ...BOB, reason: "withdrawn" });
  deepStrictEqual(show(flow.takeActions()), [
    "invitation from bob at 127.0.0.2 withdrawn",
    MENU,
  ]);
});

Deno.test("flow: an accept that fails returns to the menu", () => {
  const { flow } = connected({ phase: "invited", peer: BOB });
  flow.onLine("yes");
  flow.takeActions();
  flow.onReply({ cmd: "accept" }, errReply("There is no invitation to accept"));
  deepStrictEqual(show(flow.takeActions()), [
    "error: There is no invitation to accept",
    MENU,
  ]);
});

Deno.test("flow: chat lines are sent; sent, delivered, retransmitted are shown (§8.5)", () => {
  const flow = inChat();
  strictEqual(flow.onLine("hi bob"), true);
  deepStrictEqual(show(flow.takeActions()), [
    '→ {"cmd":"send","text":"hi bob"}',
  ]);
  flow.onReply({ cmd: "send", text: "hi bob" }, okReply({ msgId: 1 }));
  flow.onEvent({ type: "retransmitted", id: 1, attempt: 1 });
  flow.onEvent({ type: "delivered", id: 1 });
  flow.onEvent({ type: "message", name: "bob", text: "hi alice" });
  deepStrictEqual(show(flow.takeActions()), [
    "sent #1: hi bob",
    "retransmitted #1 (attempt 1)",
    "delivered #1",
    "bob: hi alice",
  ]);
  // Empty lines are not messages.
  strictEqual(flow.onLine(""), true);
  deepStrictEqual(show(flow.takeActions()), []);
});

Deno.test("flow: news of a message that arrives before its send reply waits for it", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onLine("two");
  flow.takeActions();
  flow.onEvent({ type: "delivered", id: 4 });
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 4 }));
  deepStrictEqual(show(flow.takeActions()), [
    "sent #4: one",
    "delivered #4",
    '→ {"cmd":"send","text":"two"}',
  ]);
  flow.onEvent({ type: "delivered", id: 5 });
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 5 }));
  deepStrictEqual(show(flow.takeActions()), ["sent #5: two", "delivered #5"]);
});

Deno.test("flow: a non-ASCII or too long message is refused locally, nothing sent (§2.3, §2.5)", () => {
  const flow = inChat();
  strictEqual(flow.onLine("héllo"), false);
  deepStrictEqual(show(flow.takeActions()), [
    'not sent: Message contains the non-ASCII character "é"; SIMP carries ASCII only: héllo',
  ]);
  strictEqual(flow.onLine("x".repeat(MAX_PAYLOAD + 1)), false);
  const [line] = show(flow.takeActions());
  match(line, /^not sent: Message is 65469 bytes long; the limit is 65468/);
  strictEqual(flow.ask, "chat");
});

Deno.test("flow: a message too long for the send request datagram is refused, saying how long it may be (§9)", () => {
  // The longest message of plain characters whose request, with any id,
  // fits in one datagram.
  const room = MAX_CONTROL_DATAGRAM -
    encodeControl({ v: 1, id: Number.MAX_SAFE_INTEGER, cmd: "send", text: "" })
      .length;
  strictEqual(sendProblem("x".repeat(room)), undefined);
  strictEqual(
    sendProblem("x".repeat(room + 1)),
    `Message is too long to hand to the daemon: it may be at most ${room} characters, counting each " or \\ as 2 and each control character as up to 6 (this one counts ${
      room + 1
    }): split it into shorter messages`,
  );
  // Escaped characters count as JSON makes them.
  match(sendProblem('"'.repeat(room / 2 + 1))!, /this one counts 65456\)/);
  match(sendProblem("\x01".repeat(20_000))!, /this one counts 120000\)/);
  // SIMP allows a full payload, but its request would not fit.
  ok(room < MAX_PAYLOAD);
  match(sendProblem("x".repeat(MAX_PAYLOAD))!, /^Message is too long/);
});

Deno.test("flow: a send the daemon refuses is reported with its text", () => {
  const flow = inChat();
  flow.onLine("hello");
  flow.takeActions();
  flow.onReply(
    { cmd: "send", text: "hello" },
    errReply(
      "Send queue is full (64 messages waiting): wait until some are delivered",
    ),
  );
  deepStrictEqual(show(flow.takeActions()), [
    "not sent: Send queue is full (64 messages waiting): wait until some are delivered: hello",
  ]);
});

Deno.test("flow: /leave leaves and returns to the menu after chat-closed (§6.1)", () => {
  const flow = inChat();
  flow.onLine("/leave");
  deepStrictEqual(show(flow.takeActions()), [
    "leaving the chat",
    '→ {"cmd":"leave"}',
  ]);
  strictEqual(flow.ask, undefined);
  flow.onReply({ cmd: "leave" }, okReply());
  flow.onEvent({ type: "chat-closed", ...BOB, undelivered: 0 });
  deepStrictEqual(show(flow.takeActions()), ["chat closed", MENU]);
});

Deno.test("flow: peer-left and peer-lost are followed by the undelivered messages, then the menu (§5.5, §6.1)", () => {
  for (const type of ["peer-left", "peer-lost"] as const) {
    const flow = inChat();
    flow.onEvent({ type, ...BOB, undelivered: 2 });
    flow.onEvent({ type: "undelivered", id: 3, text: "are you there?" });
    strictEqual(flow.ask, "chat"); // the menu comes after the last one
    flow.onEvent({ type: "undelivered", id: 4, text: "hello?" });
    deepStrictEqual(show(flow.takeActions()), [
      type === "peer-left"
        ? "bob left the chat"
        : "lost contact with bob at 127.0.0.2",
      "undelivered #3: are you there?",
      "undelivered #4: hello?",
      MENU,
    ]);
  }
});

Deno.test("flow: chat-closed is followed by the undelivered messages, then the menu (§5.5, §6.1)", () => {
  const flow = inChat();
  flow.onLine("/leave");
  flow.takeActions();
  flow.onEvent({ type: "chat-closed", ...BOB, undelivered: 2 });
  flow.onEvent({ type: "undelivered", id: 3, text: "are you there?" });
  strictEqual(flow.ask, undefined); // the menu comes after the last one
  flow.onEvent({ type: "undelivered", id: 4, text: "hello?" });
  deepStrictEqual(show(flow.takeActions()), [
    "chat closed",
    "undelivered #3: are you there?",
    "undelivered #4: hello?",
    MENU,
  ]);
});

Deno.test("flow: the retransmission count is the daemon's attempt, 1 = the first retransmission (§5.2)", () => {
  const flow = inChat();
  flow.onLine("hi");
  flow.onReply({ cmd: "send", text: "hi" }, okReply({ msgId: 1 }));
  flow.takeActions();
  flow.onEvent({ type: "retransmitted", id: 1, attempt: 3 });
  deepStrictEqual(flow.takeActions(), [{
    type: "output",
    output: { type: "retransmitted", id: 1, attempt: 3 },
  }]);
});

Deno.test("flow: messages whose send had no reply are shown as not sent when the daemon becomes unreachable", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onLine("two");
  flow.takeActions();
  flow.onUnreachable();
  deepStrictEqual(show(flow.takeActions()), [
    "not sent: No answer from the daemon: it may or may not have sent it: one",
    // One send at a time: "two" was still waiting in the client.
    "not sent: The client stopped before handing it to the daemon: two",
    "error: Daemon not reachable at 127.0.0.1:7778 — is `simp daemon 127.0.0.1` running?",
    "bye",
    "exit 1",
  ]);
});

Deno.test("flow: messages whose send had no reply are shown as not sent when the daemon stops or drops the client", () => {
  const stopping = inChat();
  stopping.onLine("one");
  stopping.takeActions();
  stopping.onEvent({ type: "daemon-stopping" });
  deepStrictEqual(show(stopping.takeActions()), [
    "not sent: No answer from the daemon before it stopped: it may or may not have sent it: one",
    "daemon is stopping",
    "bye",
    "exit 1",
  ]);
  const dropped = inChat();
  dropped.onLine("two");
  dropped.takeActions();
  dropped.onSlotLost("Not connected: send connect first");
  match(
    show(dropped.takeActions())[0],
    /^not sent: No answer from the daemon: .*: two$/,
  );
});

Deno.test("flow: an event other than undelivered after peer-lost ends the chat even if fewer came than announced", () => {
  const flow = inChat();
  flow.onEvent({ type: "peer-lost", ...BOB, undelivered: 2 });
  flow.onEvent({ type: "undelivered", id: 3, text: "are you there?" });
  flow.onEvent({ type: "invitation", ...BOB });
  deepStrictEqual(show(flow.takeActions()), [
    "lost contact with bob at 127.0.0.2",
    "undelivered #3: are you there?",
    MENU,
    "invitation from bob at 127.0.0.2",
    ANSWER,
  ]);
});

Deno.test("flow: q quits at any point; in a chat it sends quit (§8.4)", () => {
  // At the name question: nothing to tell the daemon.
  const asking = new ClientFlow({ ip: "127.0.0.1", port: 7778 });
  asking.start();
  asking.onReply({ cmd: "ping" }, okReply());
  asking.takeActions();
  asking.onLine("q");
  deepStrictEqual(show(asking.takeActions()), ["bye", "exit 0"]);

  for (const flow of [connected().flow, inChat()]) {
    flow.onLine(" q ");
    deepStrictEqual(show(flow.takeActions()), ['→ {"cmd":"quit"}']);
    strictEqual(flow.connected, false);
    flow.onReply({ cmd: "quit" }, okReply());
    deepStrictEqual(show(flow.takeActions()), ["bye", "exit 0"]);
  }
});

Deno.test("flow: q while waiting and the end of input quit too (§8.4)", () => {
  const { flow } = connected();
  flow.onLine("2");
  flow.takeActions();
  flow.onLine("q");
  deepStrictEqual(show(flow.takeActions()), ['→ {"cmd":"quit"}']);

  const chat = inChat();
  chat.onEof();
  deepStrictEqual(show(chat.takeActions()), ['→ {"cmd":"quit"}']);
  chat.onEof(); // twice changes nothing
  deepStrictEqual(show(chat.takeActions()), []);
});

Deno.test("flow: the end of input before the daemon answered waits for the answer", () => {
  const flow = new ClientFlow({ ip: "127.0.0.1", port: 7778, name: "alice" });
  flow.start();
  flow.takeActions();
  flow.onEof();
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onReply({ cmd: "ping" }, okReply());
  deepStrictEqual(show(flow.takeActions()), ["bye", "exit 0"]);

  const dead = new ClientFlow({ ip: "127.0.0.1", port: 7778, name: "alice" });
  dead.start();
  dead.onEof();
  dead.onUnreachable();
  deepStrictEqual(show(dead.takeActions()).slice(-2), ["bye", "exit 1"]);
});

Deno.test("flow: Ctrl+C quits at once, even before the daemon answered (§8.4)", () => {
  const flow = new ClientFlow({ ip: "127.0.0.1", port: 7778, name: "alice" });
  flow.start();
  flow.takeActions();
  flow.quit();
  deepStrictEqual(show(flow.takeActions()), ["bye", "exit 0"]);
});

Deno.test("flow: daemon-stopping ends the client with exit 1", () => {
  const flow = inChat();
  flow.onEvent({ type: "daemon-stopping" });
  deepStrictEqual(show(flow.takeActions()), [
    "daemon is stopping",
    "bye",
    "exit 1",
  ]);
});

Deno.test("flow: an unreachable daemon is named with the command to start it (§8.1)", () => {
  const flow = new ClientFlow({ ip: "127.0.0.2", port: 7778, name: "bob" });
  flow.start();
  flow.takeActions();
  flow.onUnreachable();
  const actions = flow.takeActions();
  deepStrictEqual(show(actions), [
    "error: Daemon not reachable at 127.0.0.2:7778 — is `simp daemon 127.0.0.2` running?",
    "bye",
    "exit 1",
  ]);
  deepStrictEqual(actions[0], {
    type: "output",
    output: {
      type: "error",
      message:
        "Daemon not reachable at 127.0.0.2:7778 — is `simp daemon 127.0.0.2` running?",
      fatal: true,
    },
  });
  strictEqual(
    unreachableMessage("127.0.0.3", 7000),
    "Daemon not reachable at 127.0.0.3:7000 — is `simp daemon 127.0.0.3 --client-port 7000` running?",
  );
});

// ---------------------------------------------------------------------------
// The flow: nothing dropped for a full queue, outcomes before the end of
// input, strict answers in scripted mode

const QUEUE_FULL =
  "Send queue is full (64 messages waiting): wait until some are delivered";
const HELD =
  "send queue full: the next messages wait until earlier ones are delivered";

/** The daemon's refusal of a `send` for a full queue (code `queue-full`). */
function queueFull(): Reply {
  return { v: 1, re: 0, ok: false, error: QUEUE_FULL, code: "queue-full" };
}

/** The texts of the `send` requests among `lines` (as {@linkcode show} writes them). */
function sends(lines: string[]): string[] {
  return lines.flatMap((line) => {
    const match = /^→ (\{"cmd":"send".*\})$/.exec(line);
    return match ? [JSON.parse(match[1]).text] : [];
  });
}

Deno.test("flow: chat messages go to the daemon one send at a time, in order (§5.1)", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onLine("two");
  flow.onLine("three");
  deepStrictEqual(sends(show(flow.takeActions())), ["one"]);
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  deepStrictEqual(show(flow.takeActions()), [
    "sent #1: one",
    '→ {"cmd":"send","text":"two"}',
  ]);
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 2 }));
  deepStrictEqual(sends(show(flow.takeActions())), ["three"]);
});

Deno.test("flow: a message refused for a full queue is held with the lines after it and sent again after the next delivered (§5.1)", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onLine("two");
  flow.onLine("three");
  flow.takeActions();
  flow.onReply({ cmd: "send", text: "two" }, queueFull());
  // Shown once, nothing lost, nothing sent until there is room.
  deepStrictEqual(show(flow.takeActions()), [HELD]);
  strictEqual(flow.ask, "chat");
  flow.onLine("four");
  flow.onEvent({ type: "retransmitted", id: 1, attempt: 1 });
  deepStrictEqual(show(flow.takeActions()), ["retransmitted #1 (attempt 1)"]);
  flow.onEvent({ type: "delivered", id: 1 });
  deepStrictEqual(show(flow.takeActions()), [
    "delivered #1",
    '→ {"cmd":"send","text":"two"}',
  ]);
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 2 }));
  deepStrictEqual(show(flow.takeActions()), [
    "sent #2: two",
    '→ {"cmd":"send","text":"three"}',
  ]);
  // Full again: held again, without a second notice for the same backlog.
  flow.onReply({ cmd: "send", text: "three" }, queueFull());
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onEvent({ type: "delivered", id: 2 });
  deepStrictEqual(sends(show(flow.takeActions())), ["three"]);
  flow.onReply({ cmd: "send", text: "three" }, okReply({ msgId: 3 }));
  deepStrictEqual(sends(show(flow.takeActions())), ["four"]);
  flow.onReply({ cmd: "send", text: "four" }, okReply({ msgId: 4 }));
  deepStrictEqual(show(flow.takeActions()), ["sent #4: four"]);
  // A new backlog gets its notice again.
  flow.onLine("five");
  flow.onReply({ cmd: "send", text: "five" }, queueFull());
  deepStrictEqual(show(flow.takeActions()).slice(-1), [HELD]);
});

Deno.test("flow: /leave typed behind held messages waits for them; the chat is closed after the last (§6.1)", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, queueFull());
  flow.onLine("/leave");
  deepStrictEqual(show(flow.takeActions()), [
    '→ {"cmd":"send","text":"one"}',
    HELD,
    "leaving the chat",
  ]);
  strictEqual(flow.ask, undefined); // the lines after /leave are not chat lines
  flow.onEvent({ type: "delivered", id: 7 });
  deepStrictEqual(sends(show(flow.takeActions())), ["one"]);
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 8 }));
  deepStrictEqual(show(flow.takeActions()), [
    "sent #8: one",
    '→ {"cmd":"leave"}',
  ]);
});

Deno.test("flow: held messages are reported not sent when the chat ends, after the undelivered ones, before the menu (§5.5)", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onLine("two");
  flow.onLine("three");
  flow.onReply({ cmd: "send", text: "two" }, queueFull());
  flow.takeActions();
  flow.onEvent({ type: "peer-lost", ...BOB, undelivered: 1 });
  flow.onEvent({ type: "undelivered", id: 1, text: "one" });
  deepStrictEqual(show(flow.takeActions()), [
    "lost contact with bob at 127.0.0.2",
    "undelivered #1: one",
    "not sent: The chat ended before it could be handed to the daemon: two",
    "not sent: The chat ended before it could be handed to the daemon: three",
    MENU,
  ]);
});

Deno.test("flow: a queue-full refusal after the chat ended is reported not sent", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.takeActions();
  flow.onEvent({ type: "peer-left", ...BOB, undelivered: 0 });
  flow.onReply({ cmd: "send", text: "one" }, queueFull());
  deepStrictEqual(show(flow.takeActions()), [
    "bob left the chat",
    MENU,
    `not sent: ${QUEUE_FULL}: one`,
  ]);
});

Deno.test("flow: at the end of input in a chat the client waits for every outcome, then quits with exit code 0", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onLine("two");
  flow.onEof();
  deepStrictEqual(sends(show(flow.takeActions())), ["one"]);
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 2 }));
  flow.onEvent({ type: "delivered", id: 1 });
  deepStrictEqual(show(flow.takeActions()), [
    "sent #1: one",
    '→ {"cmd":"send","text":"two"}',
    "sent #2: two",
    "delivered #1",
  ]);
  strictEqual(flow.done, false);
  flow.onEvent({ type: "delivered", id: 2 });
  deepStrictEqual(show(flow.takeActions()), [
    "delivered #2",
    '→ {"cmd":"quit"}',
  ]);
  flow.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(flow.takeActions()), ["bye", "exit 0"]);
});

Deno.test("flow: at the end of input, messages reported undelivered give a summary and exit code 1 (§5.5)", () => {
  const flow = inChat();
  for (const [index, text] of ["one", "two", "three"].entries()) {
    flow.onLine(text);
    flow.onReply({ cmd: "send", text }, okReply({ msgId: 5 + index }));
  }
  flow.takeActions();
  flow.onEof();
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onEvent({ type: "delivered", id: 5 });
  flow.onEvent({ type: "peer-lost", ...BOB, undelivered: 2 });
  flow.onEvent({ type: "undelivered", id: 6, text: "two" });
  deepStrictEqual(show(flow.takeActions()).slice(-1), ["undelivered #6: two"]);
  flow.onEvent({ type: "undelivered", id: 7, text: "three" });
  deepStrictEqual(show(flow.takeActions()), [
    "undelivered #7: three",
    MENU,
    "2 of 3 messages not delivered",
    '→ {"cmd":"quit"}',
  ]);
  flow.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(flow.takeActions()), ["bye", "exit 1"]);
});

Deno.test("flow: at the end of input, a line not sent counts too (exit code 1)", () => {
  const flow = inChat();
  flow.onLine("héllo");
  flow.onLine("hello");
  flow.onReply({ cmd: "send", text: "hello" }, okReply({ msgId: 1 }));
  flow.onEvent({ type: "delivered", id: 1 });
  flow.takeActions();
  flow.onEof();
  deepStrictEqual(show(flow.takeActions()), [
    "1 of 2 messages not delivered",
    '→ {"cmd":"quit"}',
  ]);
  flow.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(flow.takeActions()), ["bye", "exit 1"]);
});

Deno.test("flow: at the end of input, held messages are still sent before the client quits", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onLine("two");
  flow.onReply({ cmd: "send", text: "two" }, queueFull());
  flow.onEof();
  flow.takeActions();
  flow.onEvent({ type: "delivered", id: 1 });
  deepStrictEqual(sends(show(flow.takeActions())), ["two"]);
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 2 }));
  flow.onEvent({ type: "delivered", id: 2 });
  deepStrictEqual(show(flow.takeActions()), [
    "sent #2: two",
    "delivered #2",
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("flow: at the end of input while leaving, the client waits for chat-closed and its undelivered messages", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onLine("/leave");
  flow.onEof();
  deepStrictEqual(show(flow.takeActions()), [
    '→ {"cmd":"send","text":"one"}',
    "sent #1: one",
    "leaving the chat",
    '→ {"cmd":"leave"}',
  ]);
  flow.onReply({ cmd: "leave" }, okReply());
  flow.onEvent({ type: "chat-closed", ...BOB, undelivered: 1 });
  deepStrictEqual(show(flow.takeActions()), ["chat closed"]);
  flow.onEvent({ type: "undelivered", id: 1, text: "one" });
  deepStrictEqual(show(flow.takeActions()), [
    "undelivered #1: one",
    MENU,
    "1 of 1 message not delivered",
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("flow: a send answered only after the chat ended is settled by the outcome that came first, or counted undelivered", () => {
  // Its delivery came before the reply: delivered.
  const delivered = inChat();
  delivered.onLine("one");
  delivered.onEof();
  delivered.onEvent({ type: "delivered", id: 1 });
  delivered.onEvent({ type: "peer-left", ...BOB, undelivered: 0 });
  delivered.takeActions();
  delivered.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  deepStrictEqual(show(delivered.takeActions()), [
    "sent #1: one",
    '→ {"cmd":"quit"}',
  ]);
  delivered.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(delivered.takeActions()), ["bye", "exit 0"]);
  // No news came for it: it was not delivered, and the client does not wait.
  const lost = inChat();
  lost.onLine("one");
  lost.onEof();
  lost.onEvent({ type: "peer-left", ...BOB, undelivered: 0 });
  lost.takeActions();
  lost.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  deepStrictEqual(show(lost.takeActions()), [
    "sent #1: one",
    "1 of 1 message not delivered",
    '→ {"cmd":"quit"}',
  ]);
});

Deno.test("flow: q quits at once, saying how many messages are still in flight; those not handed over are not sent (§8.4)", () => {
  const flow = inChat();
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onLine("two");
  flow.onLine("three");
  flow.takeActions();
  flow.onLine("q");
  deepStrictEqual(show(flow.takeActions()), [
    "not sent: You quit before it was handed to the daemon: three",
    "2 messages not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver",
    '→ {"cmd":"quit"}',
  ]);
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 2 }));
  flow.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(flow.takeActions()), ["sent #2: two", "bye", "exit 0"]);
});

Deno.test("flow: strict mode: a q behind held messages quits once they are handed to the daemon (exit 0)", () => {
  const { flow } = connected({ phase: "established", peer: BOB }, {
    strict: true,
  });
  flow.onLine("one");
  flow.onReply({ cmd: "send", text: "one" }, okReply({ msgId: 1 }));
  flow.onLine("two");
  flow.onReply({ cmd: "send", text: "two" }, queueFull());
  flow.onLine("three");
  flow.onLine("q");
  flow.takeActions();
  strictEqual(flow.ask, undefined); // nothing after the q is read
  strictEqual(flow.onLine("four"), true);
  flow.onEof();
  deepStrictEqual(show(flow.takeActions()), []);
  flow.onEvent({ type: "delivered", id: 1 });
  flow.onReply({ cmd: "send", text: "two" }, okReply({ msgId: 2 }));
  flow.onReply({ cmd: "send", text: "three" }, okReply({ msgId: 3 }));
  deepStrictEqual(show(flow.takeActions()), [
    "delivered #1",
    '→ {"cmd":"send","text":"two"}',
    "sent #2: two",
    '→ {"cmd":"send","text":"three"}',
    "sent #3: three",
    "2 messages not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver",
    '→ {"cmd":"quit"}',
  ]);
  flow.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(flow.takeActions()), ["bye", "exit 0"]);
});

Deno.test("flow: strict mode: an invalid answer to a question is fatal, exit code 1", () => {
  const menu = connected({ phase: "idle" }, { strict: true }).flow;
  strictEqual(menu.onLine("hello bob"), true);
  deepStrictEqual(menu.takeActions(), [
    {
      type: "output",
      output: {
        type: "error",
        message:
          'Invalid answer "hello bob" to the menu in scripted input: type 1 to start a new chat, 2 to wait for invitations or q to quit',
        fatal: true,
      },
    },
    { type: "request", command: { cmd: "quit" } },
  ]);
  menu.onReply({ cmd: "quit" }, okReply());
  deepStrictEqual(show(menu.takeActions()), ["bye", "exit 1"]);

  const ip = connected({ phase: "idle" }, { strict: true }).flow;
  ip.onLine("1");
  ip.takeActions();
  ip.onLine("hello");
  match(
    show(ip.takeActions())[0],
    /^error: Invalid answer "hello" to the IP address question in scripted input: "hello" is not an IPv4 address/,
  );

  const answer = connected({ phase: "invited", peer: BOB }, { strict: true })
    .flow;
  answer.onLine("x".repeat(100));
  match(
    show(answer.takeActions())[0],
    /^error: Invalid answer "x{38}… to the invitation in scripted input: type y to accept/,
  );

  // Before connecting there is no slot to free: the client stops at once.
  const name = new ClientFlow({ ip: "127.0.0.1", port: 7778, strict: true });
  name.start();
  name.onReply({ cmd: "ping" }, okReply());
  name.takeActions();
  name.onLine("zoë");
  deepStrictEqual(show(name.takeActions()).slice(1), ["bye", "exit 1"]);
});

Deno.test("flow: strict mode: valid answers still lead on (/leave, the menu, a new chat)", () => {
  const { flow } = connected({ phase: "idle" }, { strict: true });
  flow.onLine("1");
  flow.onLine("");
  flow.onLine("2");
  flow.onLine("/leave");
  flow.onLine("1");
  flow.onLine("127.0.0.2");
  flow.onEvent({ type: "chat-started", ...BOB });
  flow.onLine("/leave");
  flow.onEvent({ type: "chat-closed", ...BOB, undelivered: 0 });
  strictEqual(flow.ask, "menu");
  ok(!show(flow.takeActions()).some((line) => line.startsWith("error")));
});

Deno.test("flow: only waiting for invitations is a wait without end", () => {
  const { flow } = connected();
  strictEqual(flow.waitingForInvitation, false);
  flow.onLine("2");
  strictEqual(flow.waitingForInvitation, true);
  flow.onEvent({ type: "invitation", ...BOB });
  strictEqual(flow.waitingForInvitation, false);
});

Deno.test("flow: an invitation while at the menu is asked about at once", () => {
  const { flow } = connected();
  flow.onEvent({ type: "invitation", ip: "127.0.0.3", port: 7777, name: "" });
  deepStrictEqual(show(flow.takeActions()), [
    "invitation from 127.0.0.3",
    ANSWER,
  ]);
});

// ---------------------------------------------------------------------------
// The flow, its control channel and a daemon core, joined in virtual time

const RIG_CLIENT = { ip: "127.0.87.1", port: 40000 };
const RIG_PEER = { ip: "127.0.87.2", port: 7777 };

/**
 * A scripted client's flow, its {@linkcode ControlChannel} and a
 * {@linkcode DaemonCore} joined as `client.ts` and `daemon.ts` join them
 * over UDP, in virtual time (nothing is lost between them). The other
 * daemon is the test: it reads {@linkcode toPeer} and answers with
 * {@linkcode fromPeer}.
 */
class Rig {
  readonly core: DaemonCore;
  readonly channel = new ControlChannel();
  readonly flow: ClientFlow;
  /** What the client showed, as scripted text. */
  readonly lines: string[] = [];
  /** The daemon's replies to `send` requests. */
  readonly sendReplies: Reply[] = [];
  /** The datagrams the daemon sent to the peer. */
  readonly toPeer: Datagram[] = [];
  exitCode: number | undefined;
  #commands = new Map<number, Command>();

  constructor(maxQueue: number) {
    this.core = new DaemonCore({
      ip: RIG_CLIENT.ip,
      port: 7777,
      session: { maxQueue },
    });
    this.flow = new ClientFlow({
      ip: RIG_CLIENT.ip,
      port: 7778,
      name: "alice",
      strict: true,
    });
    this.flow.start();
    this.run();
  }

  /** The user's lines, then perhaps the end of input. */
  input(...lines: (string | null)[]): void {
    for (const line of lines) {
      if (line === null) this.flow.onEof();
      else this.flow.onLine(line);
      this.run();
    }
  }

  /** A datagram from the peer. */
  fromPeer(bytes: Uint8Array): void {
    this.core.receivePeer(bytes, RIG_PEER, 0);
    this.run();
  }

  /** Moves everything between the three until nothing moves. */
  run(): void {
    for (let moved = true; moved;) {
      moved = false;
      for (const action of this.flow.takeActions()) {
        moved = true;
        if (action.type === "request") {
          this.#commands.set(
            this.channel.request(action.command, 0),
            action.command,
          );
        } else if (action.type === "output") {
          this.lines.push(renderText(action.output));
        } else {
          this.exitCode = action.code;
        }
      }
      for (const action of this.channel.takeActions()) {
        moved = true;
        if (action.type === "transmit") {
          this.core.receiveClient(action.bytes, RIG_CLIENT, 0);
        } else if (action.type === "reply") {
          const command = this.#commands.get(action.request.id)!;
          if (command.cmd === "send") this.sendReplies.push(action.reply);
          this.flow.onReply(command, action.reply);
        } else if (action.type === "event") {
          this.flow.onEvent(action.event);
        }
      }
      for (const action of this.core.takeActions()) {
        moved = true;
        if (action.type === "client") this.channel.receive(action.bytes, 0);
        else this.toPeer.push(action.datagram);
      }
    }
  }
}

Deno.test("client and daemon: a piped chat loses no line to a full send queue; the daemon says queue-full, the client holds and resends (§5.1, §9)", () => {
  const rig = new Rig(2);
  rig.input("1", RIG_PEER.ip);
  rig.fromPeer(control(Op.SYN_ACK, 0, "bob"));
  const texts = Array.from({ length: 8 }, (_, i) => `line ${i + 1}`);
  rig.input(...texts, null);
  // One in flight, two waiting: the fourth was refused and is held.
  deepStrictEqual(rig.sendReplies.at(-1), {
    v: 1,
    re: rig.sendReplies.at(-1)!.re,
    ok: false,
    error:
      "Send queue is full (2 messages waiting): wait until some are delivered",
    code: "queue-full",
  });
  ok(rig.lines.includes(HELD));
  strictEqual(rig.exitCode, undefined);
  // The peer acknowledges each chat datagram as it comes, one at a time.
  const received: string[] = [];
  for (let acked = 0; rig.exitCode === undefined && acked < 50;) {
    const chats = rig.toPeer.filter((d) => d.type === Type.CHAT);
    const next = chats[acked];
    if (next === undefined) break;
    received.push(next.payload);
    rig.fromPeer(control(Op.ACK, next.seq, "bob"));
    acked++;
  }
  deepStrictEqual(received, texts);
  deepStrictEqual(rig.lines.filter((line) => line.startsWith("not sent")), []);
  deepStrictEqual(
    rig.lines.filter((line) => line.startsWith("delivered #")).length,
    texts.length,
  );
  strictEqual(rig.exitCode, 0);
  strictEqual(rig.lines.at(-1), "bye");
});

Deno.test("client and daemon: other failed requests carry no code", () => {
  const core = new DaemonCore({ ip: RIG_CLIENT.ip, port: 7777 });
  const send = (id: number, command: Command) =>
    core.receiveClient(
      encodeControl({ v: 1, id, ...command } as ClientMessage),
      RIG_CLIENT,
      0,
    );
  send(1, { cmd: "connect", name: "alice" });
  send(2, { cmd: "send", text: "hi" });
  const replies = core.takeActions().flatMap((action) =>
    action.type === "client" && "re" in action.message ? [action.message] : []
  );
  deepStrictEqual(replies.at(-1), {
    v: 1,
    re: 2,
    ok: false,
    error: "Not in a chat: start one or accept an invitation first",
  });
});

// ---------------------------------------------------------------------------
// Rendering

Deno.test("render: text lines are one line, control characters escaped", () => {
  strictEqual(
    renderText({ type: "message", name: "bob", text: "a\nb\x1b[2J\tc" }),
    "bob: a\\nb\\x1b[2J\\tc",
  );
  strictEqual(printable("ok ~ �"), "ok ~ �");
  strictEqual(formatPeer("", "127.0.0.2", 7790), "127.0.0.2:7790");
});

Deno.test("render: --json prints each output as one JSON object", () => {
  const outputs: Output[] = [
    { type: "prompt", ask: "menu" as Ask, text: "1 = …" },
    { type: "message", name: "bob", text: "line\nbreak" },
    { type: "retransmitted", id: 2, attempt: 3 },
    { type: "error", message: "Boom", fatal: true },
  ];
  for (const output of outputs) {
    const line = renderJson(output);
    ok(!line.includes("\n"));
    deepStrictEqual(JSON.parse(line), output);
  }
});

Deno.test("render: invitation targets are IP or IP:PORT", () => {
  deepStrictEqual(parseTarget("127.0.0.2"), { ip: "127.0.0.2", port: 7777 });
  deepStrictEqual(parseTarget("10.0.0.1:9000"), { ip: "10.0.0.1", port: 9000 });
  match(parseTarget("localhost") as string, /is not an IPv4 address/);
  match(parseTarget("1.2.3.4:0") as string, /Port 0 is out of range/);
  match(parseTarget("1.2.3.4:") as string, /is not an IPv4 address/);
});

Deno.test("render: wildcard, broadcast and multicast addresses are refused as invitation targets", () => {
  for (
    const [ip, what] of [
      ["0.0.0.0", "the wildcard address"],
      ["255.255.255.255", "the broadcast address"],
      ["224.0.0.1", "a multicast address"],
      ["239.255.255.250:7777", "a multicast address"],
    ]
  ) {
    match(
      parseTarget(ip) as string,
      new RegExp(`^${ip.split(":")[0].replaceAll(".", "\\.")} is ${what}, `),
    );
  }
  deepStrictEqual(parseTarget("223.255.255.255"), {
    ip: "223.255.255.255",
    port: 7777,
  });
  // 240.0.0.0/4 is reserved: hosts refuse to send there (EINVAL).
  match(
    parseTarget("240.0.0.1") as string,
    /^240\.0\.0\.1 is a reserved address \(240\.0\.0\.0\/4\), /,
  );
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
    [
      "! 1 of 2 messages not delivered",
    ],
  );
  deepStrictEqual(terminalLines({ type: "in-flight", count: 2 }, view), [
    "* 2 messages not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver",
  ]);
});

// ---------------------------------------------------------------------------
// The control channel (SPEC §9), in virtual time

function transmitted(actions: ChannelAction[]): (Request | { ack: number })[] {
  return actions.flatMap((a) =>
    a.type === "transmit" ? [a.message as Request | { ack: number }] : []
  );
}

function reply(id: number, extra: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ v: 1, re: id, ok: true, ...extra }),
  );
}

function eventBytes(ev: number, event: ControlEvent): Uint8Array {
  return encodeControl({ v: 1, ev, event });
}

Deno.test("channel: a request is resent every REQUEST_RETRY_MS with the same id until answered (§9)", () => {
  const channel = new ControlChannel();
  const id = channel.request({ cmd: "connect", name: "alice" }, 0);
  deepStrictEqual(transmitted(channel.takeActions()), [
    { cmd: "connect", name: "alice", v: 1, id },
  ]);
  strictEqual(channel.nextTimeout(), REQUEST_RETRY_MS);
  channel.tick(REQUEST_RETRY_MS - 1);
  deepStrictEqual(channel.takeActions(), []);
  channel.tick(REQUEST_RETRY_MS);
  deepStrictEqual(transmitted(channel.takeActions()), [
    { cmd: "connect", name: "alice", v: 1, id },
  ]);
  channel.receive(reply(id, { state: { phase: "idle" } }), 400);
  const [answer] = channel.takeActions();
  strictEqual(answer.type, "reply");
  strictEqual(channel.busy, false);
  strictEqual(channel.nextTimeout(), undefined);
});

Deno.test("channel: after REQUEST_ATTEMPTS sendings without a reply the daemon is unreachable", () => {
  const channel = new ControlChannel();
  channel.request({ cmd: "ping" }, 0);
  let sent = transmitted(channel.takeActions()).length;
  let now = 0;
  for (;;) {
    now = channel.nextTimeout()!;
    channel.tick(now);
    const actions = channel.takeActions();
    sent += transmitted(actions).length;
    if (actions.some((a) => a.type === "unreachable")) break;
  }
  strictEqual(sent, REQUEST_ATTEMPTS);
  strictEqual(now, REQUEST_ATTEMPTS * REQUEST_RETRY_MS);
  strictEqual(channel.stopped, true);
  strictEqual(channel.nextTimeout(), undefined);
});

Deno.test("channel: requests go one at a time, in order (messages keep their order)", () => {
  const channel = new ControlChannel();
  const a = channel.request({ cmd: "send", text: "one" }, 0);
  const b = channel.request({ cmd: "send", text: "two" }, 0);
  deepStrictEqual(
    transmitted(channel.takeActions()).map((r) => "id" in r && r.id),
    [a],
  );
  channel.receive(reply(a, { msgId: 1 }), 10);
  const actions = channel.takeActions();
  deepStrictEqual(actions.map((x) => x.type), ["reply", "transmit"]);
  deepStrictEqual(transmitted(actions).map((r) => "id" in r && r.id), [b]);
});

Deno.test("channel: a late duplicate reply is ignored", () => {
  const channel = new ControlChannel();
  const a = channel.request({ cmd: "ping" }, 0);
  channel.receive(reply(a), 1);
  channel.takeActions();
  const b = channel.request({ cmd: "wait" }, 2);
  channel.takeActions();
  channel.receive(reply(a), 3);
  deepStrictEqual(channel.takeActions().map((x) => x.type), ["malformed"]);
  channel.receive(reply(b), 4);
  deepStrictEqual(channel.takeActions().map((x) => x.type), ["reply"]);
});

Deno.test("channel: events are delivered once, in order, and acknowledged cumulatively (§9)", () => {
  const channel = new ControlChannel();
  const message = (text: string): ControlEvent => ({
    type: "message",
    name: "bob",
    text,
  });
  const order: number[] = [2, 1, 1, 4, 3, 2];
  const delivered: string[] = [];
  const acks: number[] = [];
  for (const ev of order) {
    channel.receive(eventBytes(ev, message(`m${ev}`)), 0);
    for (const action of channel.takeActions()) {
      if (action.type === "event") {
        delivered.push((action.event as { text: string }).text);
      }
      if (action.type === "transmit" && "ack" in action.message) {
        acks.push(action.message.ack);
      }
    }
  }
  deepStrictEqual(delivered, ["m1", "m2", "m3", "m4"]);
  deepStrictEqual(acks, [0, 2, 2, 2, 4, 4]);
  strictEqual(channel.delivered, 4);
});

Deno.test("channel: the acknowledgement of events goes out before the events are reported", () => {
  // A request the client makes in answer to an event (a `quit` at the end
  // of input) must not overtake the acknowledgement, or the daemon would
  // keep the event for the next client.
  const channel = new ControlChannel();
  channel.receive(eventBytes(2, { type: "delivered", id: 2 }), 0);
  channel.takeActions();
  channel.receive(eventBytes(1, { type: "delivered", id: 1 }), 0);
  deepStrictEqual(
    channel.takeActions().map((a) =>
      a.type === "transmit"
        ? `ack ${"ack" in a.message && a.message.ack}`
        : a.type === "event"
        ? `event ${a.ev}`
        : a.type
    ),
    ["ack 2", "event 1", "event 2"],
  );
});

Deno.test("channel: the parts of a split event are joined and delivered once, whole (§9)", () => {
  const text = "\uFFFD".repeat(MAX_PAYLOAD);
  const parts = [
    ...splitEvent({ type: "undelivered", id: 7, text }),
    { type: "delivered", id: 8 },
  ] satisfies ControlEvent[];
  ok(parts.length >= 4, `${parts.length} events`);
  const channel = new ControlChannel();
  // Out of order and duplicated, as UDP may deliver them.
  const order = parts.map((_, i) => i + 1).reverse();
  for (const ev of [...order, 1, 2]) {
    const bytes = eventBytes(ev, parts[ev - 1]);
    ok(bytes.length <= MAX_CONTROL_DATAGRAM, `${bytes.length} bytes`);
    channel.receive(bytes, 0);
  }
  const delivered = channel.takeActions().flatMap((a) =>
    a.type === "event" ? [[a.ev, a.event]] : []
  );
  deepStrictEqual(delivered, [
    [parts.length - 1, { type: "undelivered", id: 7, text }],
    [parts.length, { type: "delivered", id: 8 }],
  ]);
});

Deno.test("channel: a split event broken off by another is shown as far as it came", () => {
  const channel = new ControlChannel();
  channel.receive(
    eventBytes(1, {
      type: "message",
      name: "bob",
      text: "he",
      continued: true,
    }),
    0,
  );
  channel.receive(eventBytes(2, { type: "daemon-stopping" }), 0);
  deepStrictEqual(
    channel.takeActions().flatMap((a) =>
      a.type === "transmit" ? [] : [a.type === "event" ? a.event : a.type]
    ),
    [
      "malformed",
      { type: "message", name: "bob", text: "he" },
      { type: "daemon-stopping" },
    ],
  );
});

Deno.test("channel: a new connect starts the event numbering again", () => {
  const channel = new ControlChannel();
  channel.receive(eventBytes(1, { type: "daemon-stopping" }), 0);
  channel.takeActions();
  strictEqual(channel.delivered, 1);
  channel.request({ cmd: "connect", name: "alice" }, 1);
  strictEqual(channel.delivered, 0);
});

Deno.test("channel: with keep-alive on, a ping follows KEEPALIVE_MS of silence; its reply is internal (§7.2)", () => {
  const channel = new ControlChannel();
  channel.setKeepAlive(true, 0);
  strictEqual(channel.nextTimeout(), KEEPALIVE_MS);
  channel.tick(KEEPALIVE_MS);
  const [ping] = transmitted(channel.takeActions()) as Request[];
  strictEqual(ping.cmd, "ping");
  channel.receive(
    reply(ping.id, { state: { phase: "idle" } }),
    KEEPALIVE_MS + 5,
  );
  deepStrictEqual(channel.takeActions(), []);
  strictEqual(channel.nextTimeout(), 2 * KEEPALIVE_MS + 5);
  channel.setKeepAlive(false, KEEPALIVE_MS + 6);
  strictEqual(channel.nextTimeout(), undefined);
});

Deno.test("channel: a refused keep-alive ping means the daemon dropped this client", () => {
  const channel = new ControlChannel();
  channel.setKeepAlive(true, 0);
  channel.tick(KEEPALIVE_MS);
  const [ping] = transmitted(channel.takeActions()) as Request[];
  channel.receive(
    new TextEncoder().encode(JSON.stringify({
      v: 1,
      re: ping.id,
      ok: false,
      error: "Not connected: send connect first",
    })),
    KEEPALIVE_MS + 1,
  );
  deepStrictEqual(channel.takeActions(), [
    { type: "slot-lost", error: "Not connected: send connect first" },
  ]);
});

Deno.test("flow: losing the daemon slot is fatal with a message saying what to do", () => {
  const flow = inChat();
  flow.onSlotLost("Not connected: send connect first");
  deepStrictEqual(show(flow.takeActions()), [
    "error: The daemon at 127.0.0.1:7778 no longer counts this client as connected (Not connected: send connect first): start the client again",
    "bye",
    "exit 1",
  ]);
});

Deno.test("channel: garbage from the daemon is reported and ignored", () => {
  const channel = new ControlChannel();
  channel.receive(new TextEncoder().encode("{nope"), 0);
  channel.receive(new TextEncoder().encode('{"v":2,"re":1,"ok":true}'), 0);
  for (
    const event of [
      { type: "message", name: "bob", text: "hi", continued: false },
      { type: "delivered", id: 1, continued: true },
      { type: "peer-left", ip: "127.0.0.2", port: 7777, name: "bob" },
      { type: "undelivered", id: 1 },
    ]
  ) {
    channel.receive(
      new TextEncoder().encode(JSON.stringify({ v: 1, ev: 1, event })),
      0,
    );
  }
  deepStrictEqual(
    channel.takeActions().map((a) => a.type),
    Array(6).fill("malformed"),
  );
  strictEqual(channel.delivered, 0);
});

// ---------------------------------------------------------------------------
// The line editor

Deno.test("line editor: typing, backspace, Ctrl+U, Ctrl+W and Enter", () => {
  const editor = new LineEditor();
  deepStrictEqual(editor.feed("helo\x7flo"), [{ type: "changed" }]);
  strictEqual(editor.buffer, "hello");
  editor.feed(" big world\x17");
  strictEqual(editor.buffer, "hello big ");
  editor.feed("\x15");
  strictEqual(editor.buffer, "");
  deepStrictEqual(editor.feed("hi\r\nyo\r"), [
    { type: "changed" },
    { type: "submit", line: "hi" },
    { type: "changed" },
    { type: "submit", line: "yo" },
  ]);
  strictEqual(editor.buffer, "");
});

Deno.test("line editor: Ctrl+C and Ctrl+D quit; escape sequences are ignored", () => {
  const editor = new LineEditor();
  deepStrictEqual(editor.feed("a\x1b[A\x1b[1;5Cb\x1bOPc"), [{
    type: "changed",
  }]);
  strictEqual(editor.buffer, "abc");
  deepStrictEqual(editor.feed("\x03"), [{ type: "quit" }]);
  deepStrictEqual(editor.feed("\x04"), [{ type: "quit" }]);
  editor.feed("é");
  strictEqual(editor.buffer, "abcé");
});

Deno.test("line editor: a bare Esc is dropped alone, the key after it is typed", () => {
  const editor = new LineEditor();
  deepStrictEqual(editor.feed("\x1bq"), [{ type: "changed" }]);
  strictEqual(editor.buffer, "q");
  editor.feed("\x1b\x1bw\x1b");
  strictEqual(editor.buffer, "qw");
  // An Esc at the end of one read and the key in the next.
  editor.feed("e");
  strictEqual(editor.buffer, "qwe");
  // Sequences with parameters and intermediates, and an SS3 key.
  editor.feed("\x1b[200~r\x1b[1;5D\x1bOHt");
  strictEqual(editor.buffer, "qwert");
  // A CSI broken off by a control character: Enter still submits.
  deepStrictEqual(editor.feed("\x1b[1\r"), [
    { type: "submit", line: "qwert" },
  ]);
});

Deno.test("line editor: Tab inserts a space", () => {
  const editor = new LineEditor();
  editor.feed("a\tb");
  strictEqual(editor.buffer, "a b");
});

Deno.test("line editor: the input line shows the end of a long text", () => {
  const editor = new LineEditor();
  editor.buffer = "0123456789abcdef";
  strictEqual(editor.render("> ", 80), "\r\x1b[2K> 0123456789abcdef");
  strictEqual(editor.render("> ", 10), "\r\x1b[2K> …abcdef");
  strictEqual(visibleLength("\x1b[1;36mbob\x1b[0m: "), 5);
});

// ---------------------------------------------------------------------------
// A fake daemon on a real socket, speaking lib/control.ts

/** Answers requests the way the daemon would, and sends events on demand. */
class FakeDaemon {
  readonly conn: Deno.DatagramConn;
  readonly received: { message: ClientMessage; from: Deno.NetAddr }[] = [];
  /** Decides the reply fields; `null` drops the request unanswered. */
  answer: (request: Request, copy: number) => Record<string, unknown> | null;
  #client: Deno.NetAddr | undefined;
  #nextEv = 1;
  #msgId = 0;
  #loop: Promise<void>;
  #waiters: (() => void)[] = [];

  constructor(hostname: string, port = 7778) {
    this.conn = Deno.listenDatagram({ transport: "udp", hostname, port });
    this.answer = (request) => this.#standard(request);
    this.#loop = this.#run();
  }

  get requests(): Request[] {
    return this.received.flatMap((r) => "id" in r.message ? [r.message] : []);
  }

  get acks(): number[] {
    return this.received.flatMap((r) =>
      "ack" in r.message && !("id" in r.message) ? [r.message.ack] : []
    );
  }

  /** Sends an event to the client (numbered in turn unless `ev` is given). */
  async event(event: ControlEvent, ev = this.#nextEv++): Promise<void> {
    await this.conn.send(encodeControl({ v: 1, ev, event }), {
      ...this.#client!,
      transport: "udp",
    });
  }

  /** Resolves when `predicate` holds for what was received (or fails after `ms`). */
  async until(predicate: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(
          `Fake daemon: condition not met; received ${
            JSON.stringify(this.received.map((r) => r.message))
          }`,
        );
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#waiters.push(resolve);
      const timer = setTimeout(resolve, 50);
      await promise;
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.conn.close();
    await this.#loop;
  }

  #standard(request: Request): Record<string, unknown> {
    switch (request.cmd) {
      case "ping":
      case "wait":
        return this.#client
          ? { state: { phase: "idle" } }
          : { ok: false, error: "Not connected: send connect first" };
      case "connect":
        return { state: { phase: "idle" } };
      case "send":
        return { msgId: ++this.#msgId };
      default:
        return {};
    }
  }

  async #run(): Promise<void> {
    const copies = new Map<number, number>();
    for (;;) {
      let bytes: Uint8Array;
      let from: Deno.NetAddr;
      try {
        const [data, addr] = await this.conn.receive();
        bytes = data;
        from = addr as Deno.NetAddr;
      } catch {
        return; // closed
      }
      const message = parseClientMessage(bytes);
      this.received.push({ message, from });
      for (const wake of this.#waiters.splice(0)) wake();
      if (!("id" in message)) continue;
      if (message.cmd === "connect") this.#client = from;
      const copy = (copies.get(message.id) ?? 0) + 1;
      copies.set(message.id, copy);
      const fields = this.answer(message, copy);
      if (fields === null) continue;
      const answer = { v: 1, re: message.id, ok: true, ...fields };
      try {
        await this.conn.send(new TextEncoder().encode(JSON.stringify(answer)), {
          ...from,
          transport: "udp",
        });
      } catch {
        return;
      }
    }
  }
}

Deno.test("link: a lost request is retransmitted with the same id; the reply resolves it (§9)", async () => {
  const daemon = new FakeDaemon("127.0.77.200");
  // The first two copies of every request are "lost".
  daemon.answer = (request, copy) =>
    copy <= 2 ? null : { state: { phase: "idle" }, echo: request.cmd };
  const link = DaemonLink.open("127.0.77.200", 7778, { retryMs: 30 });
  try {
    const answer = await link.request({ cmd: "connect", name: "alice" });
    strictEqual(answer.ok, true);
    const ids = daemon.requests.map((r) => r.id);
    strictEqual(ids.length, 3);
    deepStrictEqual(new Set(ids).size, 1);
  } finally {
    await link.close();
    await daemon.close();
  }
});

Deno.test("link: duplicate and reordered events are delivered once, in order, acked cumulatively", async () => {
  const daemon = new FakeDaemon("127.0.77.201");
  const got: number[] = [];
  const link = DaemonLink.open("127.0.77.201", 7778, {
    onEvent: (_event, ev) => got.push(ev),
  });
  try {
    await link.request({ cmd: "connect", name: "alice" });
    const hello: ControlEvent = { type: "message", name: "bob", text: "hi" };
    for (const ev of [2, 1, 1, 3]) {
      await daemon.event(hello, ev);
      await daemon.until(() =>
        daemon.acks.length >= 1 + [2, 1, 1, 3].indexOf(ev)
      );
    }
    await daemon.until(() => daemon.acks.length === 4);
    deepStrictEqual(got, [1, 2, 3]);
    deepStrictEqual(daemon.acks, [0, 2, 2, 3]);
    strictEqual(link.delivered, 3);
  } finally {
    await link.close();
    await daemon.close();
  }
});

Deno.test("link: a daemon that never answers rejects with the address and the command to run", async () => {
  const daemon = new FakeDaemon("127.0.77.202");
  daemon.answer = () => null;
  let reported: Error | undefined;
  const link = DaemonLink.open("127.0.77.202", 7778, {
    retryMs: 20,
    attempts: 3,
    onUnreachable: (error) => reported = error,
  });
  try {
    await rejects(
      link.request({ cmd: "ping" }),
      (error: Error) => {
        ok(error instanceof DaemonUnreachableError);
        strictEqual(
          error.message,
          "Daemon not reachable at 127.0.77.202:7778 — is `simp daemon 127.0.77.202` running?",
        );
        return true;
      },
    );
    strictEqual(daemon.requests.length, 3);
    ok(reported instanceof DaemonUnreachableError);
  } finally {
    await link.close();
    await daemon.close();
  }
});

Deno.test("link: keep-alive pings reach the daemon while idle (§7.2)", async () => {
  const daemon = new FakeDaemon("127.0.77.203");
  const link = DaemonLink.open("127.0.77.203", 7778, { keepAliveMs: 40 });
  try {
    await link.request({ cmd: "connect", name: "alice" });
    link.setKeepAlive(true);
    await daemon.until(() =>
      daemon.requests.filter((r) => r.cmd === "ping").length >= 2
    );
    link.setKeepAlive(false);
  } finally {
    await link.close();
    await daemon.close();
  }
});

Deno.test("link: datagrams from other addresses than the daemon's are ignored", async () => {
  const daemon = new FakeDaemon("127.0.77.204");
  const intruder = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.77.204",
    port: 0,
  });
  const got: ControlEvent[] = [];
  const link = DaemonLink.open("127.0.77.204", 7778, {
    onEvent: (event) => got.push(event),
  });
  try {
    await link.request({ cmd: "connect", name: "alice" });
    await intruder.send(
      encodeControl({ v: 1, ev: 1, event: { type: "daemon-stopping" } }),
      { ...link.localAddress, transport: "udp" },
    );
    await daemon.event({ type: "message", name: "bob", text: "real" });
    await daemon.until(() => daemon.acks.length === 1);
    deepStrictEqual(got, [{ type: "message", name: "bob", text: "real" }]);
  } finally {
    intruder.close();
    await link.close();
    await daemon.close();
  }
});

// ---------------------------------------------------------------------------
// `mod.ts client` in scripted mode, as a subprocess

const ROOT = new URL("..", import.meta.url);

/** A scripted client process with line-wise access to its stdout. */
class ClientProcess {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #reading: Promise<void>;
  #stderr: Promise<string>;

  constructor(args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "mod.ts", "client", ...args],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#stdin = this.child.stdin.getWriter();
    this.#reading = this.#read();
    this.#stderr = new Response(this.child.stderr).text();
  }

  async write(...lines: string[]): Promise<void> {
    await this.#stdin.write(
      new TextEncoder().encode(lines.map((l) => l + "\n").join("")),
    );
  }

  /** Resolves when a stdout line matches `pattern`. */
  async expect(pattern: RegExp | string, ms = 5000): Promise<string> {
    const test = (line: string) =>
      typeof pattern === "string" ? line === pattern : pattern.test(line);
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.lines.find(test);
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `No line ${pattern} in client output:\n${this.lines.join("\n")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** The stdout lines so far that match `pattern`. */
  grep(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }

  /** Closes stdin: the end of input. */
  async closeInput(): Promise<void> {
    try {
      await this.#stdin.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes stdin and waits for the exit; returns the code and stderr. */
  async finish(): Promise<{ code: number; stderr: string }> {
    try {
      await this.#stdin.close();
    } catch {
      // Already gone.
    }
    const { code } = await this.child.status;
    await this.#reading;
    return { code, stderr: await this.#stderr };
  }

  async #read(): Promise<void> {
    let rest = "";
    for await (
      const chunk of this.child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      this.lines.push(...parts);
    }
  }
}

Deno.test("mod.ts client: no daemon → exit 1 naming the address and the command (§8.1)", async () => {
  const client = new ClientProcess(["127.0.77.210", "--name", "alice"]);
  const { code, stderr } = await client.finish();
  strictEqual(code, 1);
  ok(
    stderr.includes(
      "simp: Daemon not reachable at 127.0.77.210:7778 — is `simp daemon 127.0.77.210` running?",
    ),
    stderr,
  );
  deepStrictEqual(client.lines, [
    "error: Daemon not reachable at 127.0.77.210:7778 — is `simp daemon 127.0.77.210` running?",
    "bye",
  ]);
});

Deno.test("mod.ts client: a scripted session reads answers only when asked (§8)", async () => {
  const daemon = new FakeDaemon("127.0.77.211");
  const client = new ClientProcess(["127.0.77.211", "--name", "alice"]);
  try {
    await client.expect(MENU);
    // Everything at once: the "y" must wait for the invitation.
    await client.write("2", "y");
    await client.expect("waiting for invitations");
    await daemon.until(() => daemon.requests.some((r) => r.cmd === "wait"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    ok(!daemon.requests.some((r) => r.cmd === "accept"), "y read too early");
    await daemon.event({ type: "invitation", ...BOB });
    await client.expect("invitation from bob at 127.0.0.2");
    await daemon.until(() => daemon.requests.some((r) => r.cmd === "accept"));
    await daemon.event({ type: "chat-started", ...BOB });
    await client.expect(CHAT);
    await client.write("hi bob", "héllo");
    await client.expect("sent #1: hi bob");
    await client.expect(/^not sent: .*non-ASCII.*: héllo$/);
    await daemon.event({ type: "delivered", id: 1 });
    await daemon.event({ type: "message", name: "bob", text: "hi alice" });
    await client.expect("bob: hi alice");
    await client.write("q");
    const { code } = await client.finish();
    strictEqual(code, 0);
    const sends = daemon.requests.filter((r) => r.cmd === "send");
    deepStrictEqual(sends.map((r) => "text" in r && r.text), ["hi bob"]);
    ok(daemon.requests.some((r) => r.cmd === "quit"));
    ok(client.lines.includes("delivered #1"));
    strictEqual(client.lines.at(-1), "bye");
  } finally {
    await client.finish();
    await daemon.close();
  }
});

Deno.test("mod.ts client: end of input quits like q (§8.4)", async () => {
  const daemon = new FakeDaemon("127.0.77.212");
  const client = new ClientProcess(["127.0.77.212", "--name", "alice"]);
  try {
    await client.expect(MENU);
    const { code } = await client.finish();
    strictEqual(code, 0);
    ok(daemon.requests.some((r) => r.cmd === "quit"));
  } finally {
    await daemon.close();
  }
});

Deno.test("mod.ts client --json: one JSON object per line", async () => {
  const daemon = new FakeDaemon("127.0.77.213");
  const client = new ClientProcess(["127.0.77.213", "--json"]);
  try {
    await client.expect(
      '{"type":"prompt","ask":"name","text":"your user name (q = quit)"}',
    );
    await client.write("carol");
    await client.expect(/"type":"connected"/);
    await client.write("1", "127.0.0.9");
    await client.expect('{"type":"inviting","ip":"127.0.0.9","port":7777}');
    await daemon.event({
      type: "busy",
      ip: "127.0.0.9",
      port: 7777,
      text: BUSY_TEXT,
    });
    await client.expect(
      `{"type":"busy","ip":"127.0.0.9","port":7777,"text":"${BUSY_TEXT}"}`,
    );
    await client.write("q");
    const { code } = await client.finish();
    strictEqual(code, 0);
    for (const line of client.lines) JSON.parse(line);
    deepStrictEqual(JSON.parse(client.lines[1]), {
      type: "connected",
      ip: "127.0.77.213",
      port: 7778,
      name: "carol",
    });
    const connect = daemon.requests.find((r) => r.cmd === "connect");
    deepStrictEqual(connect && "name" in connect && connect.name, "carol");
  } finally {
    await client.finish();
    await daemon.close();
  }
});

Deno.test("mod.ts client: SIGTERM quits cleanly, telling the daemon (§8.4)", async () => {
  const daemon = new FakeDaemon("127.0.77.215");
  const client = new ClientProcess(["127.0.77.215", "--name", "alice"]);
  try {
    await client.expect(MENU);
    client.child.kill("SIGTERM");
    const { code } = await client.finish();
    strictEqual(code, 0);
    ok(daemon.requests.some((r) => r.cmd === "quit"));
  } finally {
    await daemon.close();
  }
});

Deno.test("mod.ts client: daemon-stopping ends the client with exit 1", async () => {
  const daemon = new FakeDaemon("127.0.77.214");
  const client = new ClientProcess(["127.0.77.214", "--name", "alice"]);
  try {
    await client.expect(MENU);
    await daemon.event({ type: "daemon-stopping" });
    const { code } = await client.finish();
    strictEqual(code, 1);
    ok(client.lines.includes("daemon is stopping"));
  } finally {
    await daemon.close();
  }
});

// Scripted input against a fake daemon: nothing dropped for a full queue,
// outcomes before the exit, the end of input behind unread lines, strict
// answers. Addresses 127.0.87.x.

/**
 * Answers like a daemon in a chat with bob whose send queue has `room`
 * places: a `send` beyond them gets the `queue-full` error. A retransmitted
 * request gets the same answer again.
 */
function chattingDaemon(hostname: string): {
  daemon: FakeDaemon;
  accepted: string[];
  refused: () => number;
  setRoom: (room: number) => void;
} {
  const daemon = new FakeDaemon(hostname);
  const accepted: string[] = [];
  const answers = new Map<number, Record<string, unknown>>();
  let room = Infinity;
  let refused = 0;
  daemon.answer = (request) => {
    const cached = answers.get(request.id);
    if (cached !== undefined) return cached;
    let fields: Record<string, unknown> = {};
    if (request.cmd === "send") {
      if (room > 0) {
        room--;
        accepted.push(request.text);
        fields = { msgId: accepted.length };
      } else {
        refused++;
        fields = { ok: false, error: QUEUE_FULL, code: "queue-full" };
      }
    } else if (request.cmd !== "quit") {
      fields = { state: { phase: "established", peer: BOB } };
    }
    answers.set(request.id, fields);
    return fields;
  };
  return {
    daemon,
    accepted,
    refused: () => refused,
    setRoom: (places) => room = places,
  };
}

Deno.test("mod.ts client: piped lines refused for a full queue are held and sent again in order; at the end of input it waits for their delivery, exit 0 (§5.1)", async () => {
  const { daemon, accepted, refused, setRoom } = chattingDaemon(
    "127.0.87.10",
  );
  setRoom(2);
  const client = new ClientProcess(["127.0.87.10", "--name", "alice"]);
  try {
    await client.expect(CHAT);
    const texts = ["one", "two", "three", "four"];
    await client.write(...texts);
    await client.closeInput();
    await daemon.until(() => refused() >= 1 && accepted.length === 2);
    await client.expect(HELD);
    for (let id = 1; id <= texts.length; id++) {
      await daemon.until(() => accepted.length >= id);
      setRoom(1);
      await daemon.event({ type: "delivered", id });
    }
    const { code } = await client.finish();
    strictEqual(code, 0);
    deepStrictEqual(accepted, texts);
    deepStrictEqual(client.grep(/^not sent/), []);
    deepStrictEqual(client.grep(/^delivered #/), [
      "delivered #1",
      "delivered #2",
      "delivered #3",
      "delivered #4",
    ]);
    // It quit only after the last delivery.
    const commands = daemon.requests.map((r) => r.cmd);
    strictEqual(commands.indexOf("quit"), commands.length - 1);
    strictEqual(client.lines.at(-1), "bye");
  } finally {
    await client.finish();
    await daemon.close();
  }
});

Deno.test("mod.ts client: at the end of input it waits for the outcome; undelivered messages give a summary line and exit 1 (§5.5)", async () => {
  const { daemon, accepted } = chattingDaemon("127.0.87.11");
  const client = new ClientProcess(["127.0.87.11", "--name", "alice"]);
  try {
    await client.expect(CHAT);
    await client.write("one", "two");
    await client.closeInput();
    await client.expect("sent #2: two");
    let exited = false;
    client.child.status.then(() => exited = true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    ok(!exited, "the client must wait for the outcome of its messages");
    ok(!daemon.requests.some((r) => r.cmd === "quit"), "quit too early");
    await daemon.event({ type: "delivered", id: 1 });
    await daemon.event({ type: "peer-lost", ...BOB, undelivered: 1 });
    await daemon.event({ type: "undelivered", id: 2, text: "two" });
    const { code } = await client.finish();
    strictEqual(code, 1);
    deepStrictEqual(accepted, ["one", "two"]);
    deepStrictEqual(client.lines.slice(-4), [
      "undelivered #2: two",
      MENU,
      "1 of 2 messages not delivered",
      "bye",
    ]);
    ok(daemon.requests.some((r) => r.cmd === "quit"));
  } finally {
    await client.finish();
    await daemon.close();
  }
});

Deno.test("mod.ts client: the end of input quits while waiting for invitations, even behind an unread line (§8.4)", async () => {
  const daemon = new FakeDaemon("127.0.87.12");
  const client = new ClientProcess(["127.0.87.12", "--name", "alice"]);
  try {
    // printf '2\nhello\n' | simp client …
    await client.write("2", "hello");
    // Before the fix it waited for an invitation for ever.
    const hung = setTimeout(() => client.child.kill("SIGKILL"), 5000);
    const { code } = await client.finish();
    clearTimeout(hung);
    strictEqual(code, 0, "quit soon after the end of input");
    ok(client.lines.includes("waiting for invitations"));
    deepStrictEqual(client.grep(/^error/), []);
    ok(daemon.requests.some((r) => r.cmd === "quit"));
  } finally {
    await client.finish();
    await daemon.close();
  }
});

Deno.test("mod.ts client: a message line read as an answer after the chat ended is fatal, exit 1", async () => {
  const daemon = new FakeDaemon("127.0.87.13");
  const client = new ClientProcess(["127.0.87.13", "--name", "alice"]);
  try {
    await client.expect(MENU);
    // Written in one go, as a script would: the invitation is declined.
    await client.write("1", "127.0.0.2", "hello bob", "127.0.0.9");
    await client.expect("inviting 127.0.0.2");
    await daemon.event({ type: "declined", ...BOB });
    const { code, stderr } = await client.finish();
    strictEqual(code, 1);
    ok(
      stderr.includes(
        'simp: Invalid answer "hello bob" to the menu in scripted input: type 1 to start a new chat',
      ),
      stderr,
    );
    ok(client.lines.includes("declined by bob at 127.0.0.2"));
    strictEqual(client.lines.at(-1), "bye");
    deepStrictEqual(
      daemon.requests.filter((r) => r.cmd === "invite").length,
      1,
      "nothing more was invited",
    );
    ok(daemon.requests.some((r) => r.cmd === "quit"));
  } finally {
    await client.finish();
    await daemon.close();
  }
});

Deno.test("control: what the client cannot read is named as a daemon message, and the version as this client's", () => {
  throws(
    () => parseDaemonMessage(new TextEncoder().encode("nonsense")),
    /^ControlError: Malformed daemon message: not a JSON object in UTF-8$/,
  );
  throws(
    () => parseDaemonMessage(encodeControl({ v: 2, re: 1, ok: true } as never)),
    /this client speaks version 1/,
  );
});
