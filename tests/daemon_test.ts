/**
 * Tests of the daemon: the client link and the daemon core in virtual time
 * (SPEC §4.9, §7.2, §9), then the real daemon on real UDP sockets, spoken to
 * in raw SIMP and in the control protocol from test sockets. Every real test
 * uses its own address 127.0.77.x or 127.0.79.x (never 127.0.0.1 or
 * 127.0.0.2).
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import {
  CLIENT_TIMEOUT_MS,
  type ClientMessage,
  type ControlEvent,
  type DaemonMessage,
  encodeControl,
  EVENT_RETRY_MS,
  type EventMessage,
  MAX_CONTROL_DATAGRAM,
  parseDaemonMessage,
  type Reply,
  splitEvent,
} from "../lib/control.ts";
import {
  BUSY_TEXT,
  decodeDatagram,
  HEADER_SIZE,
  MAX_PAYLOAD,
  Op,
  type Seq,
} from "../lib/wire/datagram.ts";
import {
  ClientLink,
  type CommandResult,
  DEFAULT_LINK_OPTIONS,
  keptWhileDisconnected,
  type LinkTransmit,
} from "../lib/client_link.ts";
import {
  type DaemonAction,
  DaemonCore,
  EVENT_LOG_BUDGET,
} from "../lib/daemon/core.ts";
import type { Address } from "../lib/address.ts";
import type { Command } from "../lib/control.ts";
import { ControlChannel } from "../lib/control_channel.ts";
import { runDaemon } from "../daemon.ts";
import { DaemonLink } from "../client.ts";
import { DAEMON_DEFAULTS, type DaemonOptions } from "../lib/cli.ts";
import { setupLogging } from "../lib/log.ts";

/** A log record as the JSON Lines format writes it. */
interface LogLine {
  logger: string;
  level: string;
  message: string;
  properties: Record<string, unknown>;
}

/** Runs `body` with every log record (debug and above) captured. */
function captureLogs(body: () => void): LogLine[] {
  const lines: string[] = [];
  setupLogging({
    level: "debug",
    format: "json",
    write: (line) => lines.push(line),
  });
  try {
    body();
  } finally {
    setupLogging({ level: "error", write: () => {} });
  }
  return lines.map((line) => JSON.parse(line));
}
import { Proc, ROOT } from "../tools/_processes.ts";
import { chat, control, summary } from "./support/datagrams.ts";

// ---------------------------------------------------------------------------
// Helpers for the virtual-time tests

const OWN_IP = "127.0.77.1";
const CLIENT: Address = { ip: "127.0.0.1", port: 40001 };
const OTHER_CLIENT: Address = { ip: "127.0.0.1", port: 40002 };
const PEER: Address = { ip: "127.0.77.2", port: 7777 };
const T = 5000;

function request(id: number, command: Command): Uint8Array {
  return encodeControl({ v: 1, id, ...command } as ClientMessage);
}

function ack(n: number): Uint8Array {
  return encodeControl({ v: 1, ack: n });
}

/** What the core sent since the last look, split by port. */
function drain(core: DaemonCore): {
  peer: string[];
  client: { to: Address; message: DaemonMessage }[];
} {
  const peer: string[] = [];
  const client: { to: Address; message: DaemonMessage }[] = [];
  for (const action of core.takeActions() as DaemonAction[]) {
    if (action.type === "peer") {
      peer.push(summary(action.datagram, { user: false }));
    } else {
      client.push({ to: action.to, message: action.message });
    }
  }
  return { peer, client };
}

function replies(
  sent: { message: DaemonMessage }[],
): Reply[] {
  return sent.flatMap(({ message }) => "re" in message ? [message] : []);
}

function events(sent: { message: DaemonMessage }[]): EventMessage[] {
  return sent.flatMap(({ message }) => "ev" in message ? [message] : []);
}

/** A core with a connected client named alice. */
function connected(
  options: { autoAccept?: boolean } = {},
): DaemonCore {
  const core = new DaemonCore({
    ip: OWN_IP,
    port: 7777,
    clientPort: 7778,
    session: { autoAccept: options.autoAccept ?? false, timeout: T },
  });
  core.receiveClient(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  drain(core);
  return core;
}

/** A link whose handler counts the commands it runs. */
function countingLink(): { link: ClientLink; ran: Command[] } {
  const ran: Command[] = [];
  const link = new ClientLink((command): CommandResult => {
    ran.push(command);
    return command.cmd === "send" ? { msgId: ran.length } : {};
  }, { ownIp: OWN_IP });
  return { link, ran };
}

function linkSent(link: ClientLink): { to: Address; message: DaemonMessage }[] {
  return link.takeTransmits().map(({ to, message }) => ({ to, message }));
}

/**
 * Carries what the core sends the client into the client's end of the
 * protocol and the client's acknowledgements back, until nothing moves.
 * Returns the events the client's end delivered (parts joined) and the
 * sizes of the event datagrams the core sent.
 */
function relay(
  core: DaemonCore,
  channel: ControlChannel,
  now: number,
): { delivered: ControlEvent[]; sizes: number[] } {
  const delivered: ControlEvent[] = [];
  const sizes: number[] = [];
  for (;;) {
    const toClient = core.takeActions().flatMap((action) =>
      action.type === "client" ? [action] : []
    );
    if (toClient.length === 0) break;
    for (const { message, bytes } of toClient) {
      if ("ev" in message) sizes.push(bytes.length);
      channel.receive(bytes, now);
    }
    for (const action of channel.takeActions()) {
      if (action.type === "event") delivered.push(action.event);
      if (action.type === "transmit") {
        core.receiveClient(action.bytes, CLIENT, now);
      }
    }
  }
  return { delivered, sizes };
}

/** A core connected as alice, in a chat with bob that alice started. */
function chatting(session: { timeout?: number } = {}): DaemonCore {
  const core = new DaemonCore({
    ip: OWN_IP,
    port: 7777,
    session: { timeout: T, ...session },
  });
  core.receiveClient(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  core.receiveClient(
    request(2, { cmd: "invite", ip: "127.0.77.2" }),
    CLIENT,
    0,
  );
  core.receivePeer(control(Op.SYN_ACK, 0, "bob"), PEER, 10);
  strictEqual(core.session.phase, "established");
  return core;
}

/** A chat datagram from bob with `payload` as its raw bytes. */
function rawChat(seq: Seq, payload: Uint8Array): Uint8Array {
  const bytes = chat(seq, "bob", "x".repeat(payload.length));
  bytes.set(payload, HEADER_SIZE);
  return bytes;
}

// ---------------------------------------------------------------------------
// The client link (SPEC §7.2, §9), in virtual time

Deno.test("client link: a duplicate request id gets the cached reply and does not run again (§9)", () => {
  const { link, ran } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  link.receive(request(2, { cmd: "send", text: "hi" }), CLIENT, 10);
  link.receive(request(2, { cmd: "send", text: "hi" }), CLIENT, 310);
  link.receive(request(2, { cmd: "send", text: "hi" }), CLIENT, 610);
  deepStrictEqual(ran.map((c) => c.cmd), ["connect", "send"]);
  const sent = replies(linkSent(link));
  deepStrictEqual(sent, [
    { v: 1, re: 1, ok: true },
    { v: 1, re: 2, ok: true, msgId: 2 },
    { v: 1, re: 2, ok: true, msgId: 2 },
    { v: 1, re: 2, ok: true, msgId: 2 },
  ]);
});

Deno.test("client link: a second client is refused with an error naming the first (§7.2)", () => {
  const { link, ran } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  link.receive(
    request(1, { cmd: "connect", name: "mallory" }),
    OTHER_CLIENT,
    5,
  );
  const [reply] = linkSent(link);
  deepStrictEqual(reply.to, OTHER_CLIENT);
  ok(!("ev" in reply.message) && reply.message.ok === false);
  ok(
    reply.message.error.includes("127.0.0.1:40001"),
    reply.message.error,
  );
  deepStrictEqual(ran.length, 1);
  deepStrictEqual(link.client, CLIENT);
  // Other commands from it are refused too, without running.
  link.receive(request(2, { cmd: "leave" }), OTHER_CLIENT, 6);
  const [refused] = replies(linkSent(link));
  strictEqual(refused.ok, false);
  deepStrictEqual(ran.length, 1);
});

Deno.test("client link: a command before connect is refused (§9)", () => {
  const { link, ran } = countingLink();
  link.receive(request(1, { cmd: "send", text: "hi" }), CLIENT, 0);
  deepStrictEqual(replies(linkSent(link)), [
    { v: 1, re: 1, ok: false, error: "Not connected: send connect first" },
  ]);
  deepStrictEqual(ran, []);
});

Deno.test("client link: connect again from the same address starts a new connection", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  link.emit({ type: "message", name: "bob", text: "one" }, 1);
  link.receive(ack(1), CLIENT, 2);
  link.emit({ type: "message", name: "bob", text: "two" }, 3);
  linkSent(link);
  link.receive(request(7, { cmd: "connect", name: "alice" }), CLIENT, 4);
  const sent = linkSent(link);
  // The reply first, then what the old connection did not acknowledge,
  // numbered from 1 again.
  deepStrictEqual(sent.map((s) => s.message), [
    { v: 1, re: 7, ok: true },
    { v: 1, ev: 1, event: { type: "message", name: "bob", text: "two" } },
  ]);
});

Deno.test("client link: the slot is freed after CLIENT_TIMEOUT_MS of silence, pings keep it (§7.2)", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  strictEqual(link.nextTimeout(), CLIENT_TIMEOUT_MS);
  link.receive(request(2, { cmd: "ping" }), CLIENT, 4000);
  link.tick(CLIENT_TIMEOUT_MS);
  deepStrictEqual(link.client, CLIENT);
  strictEqual(link.nextTimeout(), 4000 + CLIENT_TIMEOUT_MS);
  link.tick(4000 + CLIENT_TIMEOUT_MS);
  strictEqual(link.client, undefined);
  strictEqual(link.nextTimeout(), undefined);
  linkSent(link);
  // Now another client may connect.
  link.receive(
    request(1, { cmd: "connect", name: "bob" }),
    OTHER_CLIENT,
    9001,
  );
  deepStrictEqual(replies(linkSent(link)), [{ v: 1, re: 1, ok: true }]);
  deepStrictEqual(link.client, OTHER_CLIENT);
});

Deno.test("client link: quit frees the slot at once (§7.2)", () => {
  const { link, ran } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  link.receive(request(2, { cmd: "quit" }), CLIENT, 1);
  strictEqual(link.client, undefined);
  deepStrictEqual(ran.map((c) => c.cmd), ["connect", "quit"]);
  // A retransmitted quit (its reply was lost) is answered, not run.
  link.receive(request(2, { cmd: "quit" }), CLIENT, 300);
  deepStrictEqual(replies(linkSent(link)).map((r) => r.ok), [true, true, true]);
  strictEqual(ran.length, 2);
});

Deno.test("client link: events are retransmitted every EVENT_RETRY_MS until acknowledged cumulatively (§9)", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  link.emit({ type: "message", name: "bob", text: "one" }, 100);
  link.emit({ type: "message", name: "bob", text: "two" }, 100);
  link.emit({ type: "message", name: "bob", text: "three" }, 100);
  deepStrictEqual(events(linkSent(link)).map((e) => e.ev), [1, 2, 3]);
  strictEqual(link.nextTimeout(), 100 + EVENT_RETRY_MS);
  link.tick(100 + EVENT_RETRY_MS - 1);
  deepStrictEqual(linkSent(link), []);
  link.tick(100 + EVENT_RETRY_MS);
  deepStrictEqual(events(linkSent(link)).map((e) => e.ev), [1, 2, 3]);
  link.receive(ack(2), CLIENT, 450);
  link.tick(100 + 2 * EVENT_RETRY_MS);
  deepStrictEqual(events(linkSent(link)).map((e) => e.ev), [3]);
  link.receive(ack(3), CLIENT, 800);
  strictEqual(link.unacknowledged, 0);
  // Only the keep-alive deadline is left.
  strictEqual(link.nextTimeout(), 800 + CLIENT_TIMEOUT_MS);
  link.tick(1000);
  deepStrictEqual(linkSent(link), []);
});

Deno.test("client link: an acknowledgement from another address changes nothing", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  link.emit({ type: "message", name: "bob", text: "one" }, 0);
  link.receive(ack(1), OTHER_CLIENT, 10);
  strictEqual(link.unacknowledged, 1);
});

Deno.test("client link: an unknown command or malformed request gets an error reply (§9)", () => {
  const { link, ran } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  const bad = [
    encodeControl({ v: 1, id: 5, cmd: "dance" } as unknown as ClientMessage),
    new TextEncoder().encode("not json"),
    new Uint8Array([0xff, 0xfe, 0x00]),
    encodeControl({ v: 2, id: 6, cmd: "ping" } as unknown as ClientMessage),
    new TextEncoder().encode('{"v":1,"id":7,"cmd":"invite","ip":"x"}'),
  ];
  for (const bytes of bad) link.receive(bytes, CLIENT, 1);
  const sent = replies(linkSent(link));
  deepStrictEqual(sent.map((r) => [r.re, r.ok]), [
    [5, false],
    [null, false],
    [null, false],
    [6, false],
    [7, false],
  ]);
  deepStrictEqual(
    sent[0],
    { v: 1, re: 5, ok: false, error: 'Unknown command "dance"' },
  );
  strictEqual(ran.length, 1);
});

Deno.test("client link: datagrams from addresses not of this machine are dropped (§7.2)", () => {
  const { link, ran } = countingLink();
  const stranger = { ip: "192.0.2.7", port: 40001 };
  link.receive(request(1, { cmd: "connect", name: "eve" }), stranger, 0);
  deepStrictEqual(linkSent(link), []);
  deepStrictEqual(ran, []);
  strictEqual(link.client, undefined);
  // The daemon's own IP counts as this machine.
  const own = new ClientLink(() => ({}), { ownIp: "192.0.2.1" });
  own.receive(
    request(1, { cmd: "connect", name: "alice" }),
    { ip: "192.0.2.1", port: 40001 },
    0,
  );
  deepStrictEqual(replies(linkSent(own)), [{ v: 1, re: 1, ok: true }]);
});

Deno.test("client link: events with no client are kept and sent after connect, bounded: beyond maxEvents new ones are dropped, with a warning (§4.9, §7.3)", () => {
  const link = new ClientLink(() => ({}), { ownIp: OWN_IP, maxEvents: 3 });
  const records = captureLogs(() => {
    link.emit(
      { type: "invitation", ip: "127.0.77.2", port: 7777, name: "bob" },
      0,
    );
    for (const text of ["a", "b", "c", "d", "e"]) {
      link.emit({ type: "message", name: "bob", text }, 0);
    }
  });
  strictEqual(link.kept, 3);
  deepStrictEqual(
    records.filter((r) => r.level === "WARN").map((r) => r.message),
    [
      'No client connected and 3 events kept: dropped a new "message" event',
    ],
  );
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 1);
  const sent = linkSent(link);
  ok("re" in sent[0].message);
  // The oldest stay: a daemon that ACKed messages keeps them.
  deepStrictEqual(
    events(sent).map((e) => [e.ev, e.event]),
    [
      [1, { type: "message", name: "bob", text: "a" }],
      [2, { type: "message", name: "bob", text: "b" }],
      [3, { type: "message", name: "bob", text: "c" }],
    ],
  );
});

Deno.test("client link: news the connect state gives, or that only the gone connection needs, is not kept (§4.9)", () => {
  const peer = { ip: "127.0.77.2", port: 7777 };
  const kept = ([
    { type: "invitation", ...peer, name: "bob" },
    { type: "chat-started", ...peer, name: "bob" },
    { type: "delivered", id: 1 },
    { type: "chat-closed", ...peer, name: "bob", undelivered: 0 },
    { type: "message", name: "bob", text: "hi" },
    { type: "peer-left", ...peer, name: "bob", undelivered: 0 },
    { type: "busy", ...peer, text: BUSY_TEXT },
  ] satisfies ControlEvent[]).filter(keptWhileDisconnected);
  deepStrictEqual(kept.map((e) => e.type), ["message", "peer-left", "busy"]);
  // A chat that ended with messages undelivered is news for the next client.
  ok(keptWhileDisconnected({
    type: "chat-closed",
    ...peer,
    name: "bob",
    undelivered: 1,
  }));
});

Deno.test("client link: connect again from the same address re-sends only what a client that went away would get (§4.9)", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  link.emit({ type: "delivered", id: 1 }, 1);
  link.emit({ type: "message", name: "bob", text: "two" }, 1);
  linkSent(link);
  link.receive(request(2, { cmd: "connect", name: "alice" }), CLIENT, 4);
  deepStrictEqual(linkSent(link).map((s) => s.message), [
    { v: 1, re: 2, ok: true },
    { v: 1, ev: 1, event: { type: "message", name: "bob", text: "two" } },
  ]);
});

Deno.test("client link: an error reply quotes at most 40 characters of a client's value, and fits in one datagram (§9)", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  const templates = [
    (x: string) => `{"v":1,"id":2,"cmd":"${x}"}`,
    (x: string) => `{"v":"${x}","id":3,"cmd":"ping"}`,
    (x: string) => `{"v":1,"id":4,"cmd":"invite","ip":"${x}"}`,
  ];
  for (const template of templates) {
    const fill = "x".repeat(MAX_CONTROL_DATAGRAM - template("").length);
    const bytes = new TextEncoder().encode(template(fill));
    strictEqual(bytes.length, MAX_CONTROL_DATAGRAM);
    link.receive(bytes, CLIENT, 1);
    const [sent] = link.takeTransmits();
    ok(sent.bytes.length <= MAX_CONTROL_DATAGRAM, `${sent.bytes.length}`);
    const reply = sent.message as Reply;
    ok(!reply.ok, JSON.stringify(reply));
    ok(reply.error.includes(`"${"x".repeat(38)}…`), reply.error);
    ok(!reply.error.includes("x".repeat(40)), reply.error);
  }
});

Deno.test("client link: datagrams from other machines are logged at most once a minute, with the count of the others (§7.3)", () => {
  const { link } = countingLink();
  const records = captureLogs(() => {
    for (let i = 0; i < 100; i++) {
      link.receive(
        request(1, { cmd: "ping" }),
        { ip: "192.0.2.7", port: 40000 + i },
        i * 10,
      );
    }
    link.receive(
      request(1, { cmd: "ping" }),
      { ip: "198.51.100.1", port: 40000 },
      61_000,
    );
  });
  const warnings = records.filter((r) =>
    r.message.startsWith("Dropped a datagram on the client port")
  );
  deepStrictEqual(
    warnings.map((r) => [r.level, r.properties.from, r.properties.unlogged]),
    [
      ["WARN", "192.0.2.7:40000", undefined],
      ["WARN", "198.51.100.1:40000", 99],
    ],
  );
  ok(warnings[1].message.includes("99 more"), warnings[1].message);
});

Deno.test("client link: at most eventWindow events are unacknowledged on the wire", () => {
  const link = new ClientLink(() => ({}), { ownIp: OWN_IP, eventWindow: 2 });
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  for (const text of ["a", "b", "c"]) {
    link.emit({ type: "message", name: "bob", text }, 0);
  }
  deepStrictEqual(events(linkSent(link)).map((e) => e.ev), [1, 2]);
  link.receive(ack(1), CLIENT, 5);
  deepStrictEqual(events(linkSent(link)).map((e) => e.ev), [3]);
});

// ---------------------------------------------------------------------------
// The daemon core: commands and events through the engine, in virtual time

Deno.test("daemon core: connect shows a pending invitation in its state (§4.2)", () => {
  const core = new DaemonCore({ ip: OWN_IP, port: 7777 });
  core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  deepStrictEqual(drain(core).peer, []); // no answer until the user decides
  core.receiveClient(request(1, { cmd: "connect", name: "alice" }), CLIENT, 5);
  const { client } = drain(core);
  deepStrictEqual(client.map((c) => c.message), [{
    v: 1,
    re: 1,
    ok: true,
    state: {
      phase: "invited",
      peer: { ip: "127.0.77.2", port: 7777, name: "bob" },
    },
  }]);
  core.receiveClient(request(2, { cmd: "accept" }), CLIENT, 6);
  deepStrictEqual(drain(core).peer, ["SYN+ACK 0"]);
});

Deno.test("daemon core: a duplicate send is not sent twice (§9)", () => {
  const core = connected();
  core.receiveClient(
    request(2, { cmd: "invite", ip: "127.0.77.2" }),
    CLIENT,
    0,
  );
  core.receiveClient(
    request(2, { cmd: "invite", ip: "127.0.77.2" }),
    CLIENT,
    300,
  );
  deepStrictEqual(drain(core).peer, ["SYN 0"]);
  core.receivePeer(control(Op.SYN_ACK, 0, "bob"), PEER, 10);
  deepStrictEqual(drain(core).peer, ["ACK 0"]);
  core.receiveClient(request(3, { cmd: "send", text: "hi" }), CLIENT, 20);
  core.receiveClient(request(3, { cmd: "send", text: "hi" }), CLIENT, 320);
  const { peer, client } = drain(core);
  deepStrictEqual(peer, ["CHAT 0 hi"]);
  deepStrictEqual(replies(client), [
    { v: 1, re: 3, ok: true, msgId: 1 },
    { v: 1, re: 3, ok: true, msgId: 1 },
  ]);
});

Deno.test("daemon core: engine events reach the client as control events", () => {
  const core = chatting();
  core.receiveClient(request(3, { cmd: "send", text: "hi" }), CLIENT, 20);
  core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 30);
  core.receivePeer(chat(0, "bob", "hello"), PEER, 40);
  core.receivePeer(control(Op.FIN, 1, "bob"), PEER, 50);
  const { client } = drain(core);
  deepStrictEqual(
    events(client).map((e) => e.event),
    [
      { type: "chat-started", ip: "127.0.77.2", port: 7777, name: "bob" },
      { type: "delivered", id: 1 },
      { type: "message", name: "bob", text: "hello" },
      {
        type: "peer-left",
        ip: "127.0.77.2",
        port: 7777,
        name: "bob",
        undelivered: 0,
      },
    ] satisfies ControlEvent[],
  );
});

Deno.test("daemon core: inviting the daemon's own IP on either of its ports is refused", () => {
  const core = connected();
  core.receiveClient(
    request(2, { cmd: "invite", ip: OWN_IP, port: 7777 }),
    CLIENT,
    0,
  );
  core.receiveClient(
    request(3, { cmd: "invite", ip: OWN_IP, port: 7778 }),
    CLIENT,
    0,
  );
  const { peer, client } = drain(core);
  deepStrictEqual(peer, []);
  deepStrictEqual(
    replies(client).map((r) => r.ok ? "ok" : r.error),
    [
      `${OWN_IP}:7777 is this daemon: invite another user's daemon IP address`,
      `${OWN_IP}:7778 is this daemon: invite another user's daemon IP address`,
    ],
  );
  // Another port on the same IP is another daemon.
  core.receiveClient(
    request(4, { cmd: "invite", ip: OWN_IP, port: 7787 }),
    CLIENT,
    1,
  );
  deepStrictEqual(drain(core).peer, ["SYN 0"]);
});

Deno.test("daemon core: inviting a wildcard, broadcast, multicast or reserved address is refused", () => {
  const core = connected();
  const ips = [
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.251",
    "239.255.255.250",
    "240.0.0.1",
  ];
  for (const [i, ip] of ips.entries()) {
    core.receiveClient(request(2 + i, { cmd: "invite", ip }), CLIENT, i);
  }
  const { peer, client } = drain(core);
  deepStrictEqual(peer, []);
  deepStrictEqual(
    replies(client).map((r) => r.ok ? "ok" : r.error.split(",")[0]),
    [
      "0.0.0.0 is the wildcard address",
      "255.255.255.255 is the broadcast address",
      "224.0.0.251 is a multicast address",
      "239.255.255.250 is a multicast address",
      "240.0.0.1 is a reserved address (240.0.0.0/4)",
    ],
  );
  strictEqual(core.session.phase, "idle");
});

Deno.test("daemon core: invitations and their ends from other daemons are logged within a budget (§7.3)", () => {
  const core = new DaemonCore({ ip: OWN_IP, port: 7777 });
  const records = captureLogs(() => {
    for (let i = 0; i < 200; i++) {
      core.receivePeer(control(Op.SYN, 0, "bob"), PEER, i);
      core.receivePeer(control(Op.FIN, 0, "bob"), PEER, i + 0.5);
    }
    // A minute later there is room again: the line says how many were held back.
    core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 60_000);
  });
  const logged = records.filter((r) =>
    r.logger === "simp.daemon" && r.message.startsWith("Event ")
  );
  strictEqual(logged.length, EVENT_LOG_BUDGET.burst + 1);
  ok(logged.every((r) => r.level === "INFO"));
  deepStrictEqual(
    logged.at(-1)?.properties.withheld,
    400 - EVENT_LOG_BUDGET.burst,
  );
});

Deno.test("daemon core: a command that does not fit the phase gets the engine's message", () => {
  const core = connected();
  core.receiveClient(request(2, { cmd: "accept" }), CLIENT, 0);
  deepStrictEqual(replies(drain(core).client), [
    { v: 1, re: 2, ok: false, error: "There is no invitation to accept" },
  ]);
});

Deno.test("daemon core: quit leaves the chat with FIN and frees the slot (§8.4)", () => {
  const core = chatting();
  drain(core);
  core.receiveClient(request(3, { cmd: "quit" }), CLIENT, 20);
  deepStrictEqual(drain(core).peer, ["FIN 0"]);
  strictEqual(core.link.client, undefined);
  strictEqual(core.session.phase, "closing");
});

Deno.test("daemon core: quit keeps an invitation from someone else pending (§4.2)", () => {
  const core = connected();
  core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  core.receiveClient(request(2, { cmd: "quit" }), CLIENT, 10);
  deepStrictEqual(drain(core).peer, []);
  strictEqual(core.session.phase, "invited");
});

Deno.test("daemon core: with auto-accept, messages that arrive with no client are kept for the next connect (§4.9)", () => {
  const core = new DaemonCore({
    ip: OWN_IP,
    port: 7777,
    session: { autoAccept: true },
  });
  core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  deepStrictEqual(drain(core).peer, ["SYN+ACK 0"]);
  core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 10);
  core.receivePeer(chat(0, "bob", "are you there?"), PEER, 20);
  core.receivePeer(chat(1, "bob", "ok, later"), PEER, 30);
  deepStrictEqual(drain(core).peer, ["ACK 0", "ACK 1"]);
  core.receiveClient(request(1, { cmd: "connect", name: "alice" }), CLIENT, 40);
  const { client } = drain(core);
  deepStrictEqual(client.map((c) => c.message), [
    {
      v: 1,
      re: 1,
      ok: true,
      state: {
        phase: "established",
        peer: { ip: "127.0.77.2", port: 7777, name: "bob" },
      },
    },
    {
      v: 1,
      ev: 1,
      event: { type: "message", name: "bob", text: "are you there?" },
    },
    { v: 1, ev: 2, event: { type: "message", name: "bob", text: "ok, later" } },
  ]);
});

Deno.test("daemon core: stop ends the chat with one FIN at once, tells the client and finishes when the client has acknowledged", () => {
  const core = chatting();
  core.receiveClient(ack(1), CLIENT, 11);
  drain(core);
  core.stop(100);
  const { peer, client } = drain(core);
  deepStrictEqual(peer, ["FIN 0"]);
  deepStrictEqual(events(client).map((e) => [e.ev, e.event]), [
    [2, {
      type: "chat-closed",
      ip: "127.0.77.2",
      port: 7777,
      name: "bob",
      undelivered: 0,
    }],
    [3, { type: "daemon-stopping" }],
  ]);
  strictEqual(core.session.phase, "idle");
  strictEqual(core.finished(101), false);
  // The FIN's ACK is not waited for: peers are ignored while stopping.
  core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 110);
  core.receivePeer(control(Op.SYN, 0, "carol"), PEER, 111);
  deepStrictEqual(drain(core).peer, []);
  strictEqual(core.finished(111), false);
  core.receiveClient(ack(3), CLIENT, 120);
  strictEqual(core.finished(120), true);
  // Commands are refused while stopping.
  core.receiveClient(request(3, { cmd: "ping" }), CLIENT, 121);
  strictEqual(replies(drain(core).client).at(-1)?.ok, false);
});

Deno.test("daemon core: stop sends its FIN at once even with messages unacknowledged, and reports them undelivered (§5.5, §6.1)", () => {
  const core = chatting();
  drain(core);
  core.receiveClient(request(3, { cmd: "send", text: "one" }), CLIENT, 20);
  core.receiveClient(request(4, { cmd: "send", text: "two" }), CLIENT, 21);
  deepStrictEqual(drain(core).peer, ["CHAT 0 one"]);
  core.stop(100);
  const { peer, client } = drain(core);
  deepStrictEqual(peer.map((d) => d.split(" ")[0]), ["FIN"]);
  deepStrictEqual(
    events(client).map((e) => e.event),
    [
      {
        type: "chat-closed",
        ip: "127.0.77.2",
        port: 7777,
        name: "bob",
        undelivered: 2,
      },
      { type: "undelivered", id: 1, text: "one" },
      { type: "undelivered", id: 2, text: "two" },
      { type: "daemon-stopping" },
    ] satisfies ControlEvent[],
  );
  // Nothing is retransmitted: only the client's events are waited for.
  for (let now = 100; now < 600; now = core.nextTimeout()!) {
    core.tick(now);
    deepStrictEqual(drain(core).peer, []);
  }
});

Deno.test("daemon core: stop while invited declines with one FIN and finishes at once without a client", () => {
  const core = new DaemonCore({ ip: OWN_IP, port: 7777 });
  core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  drain(core);
  core.stop(10);
  deepStrictEqual(drain(core).peer, ["FIN 0"]);
  strictEqual(core.finished(10), true);
});

Deno.test("daemon core: a connect refused while stopping does not take the slot", () => {
  const core = new DaemonCore({ ip: OWN_IP, port: 7777 });
  core.stop(10);
  drain(core);
  core.receiveClient(request(1, { cmd: "connect", name: "late" }), CLIENT, 11);
  const { client } = drain(core);
  ok(JSON.stringify(client).includes('"ok":false'), JSON.stringify(client));
  strictEqual(core.link.client, undefined);
  strictEqual(core.finished(11), true);
});

Deno.test("daemon core: stop gives up after the grace period when nobody answers", () => {
  const core = chatting();
  core.stop(100);
  for (let now = 100; now < 600; now = core.nextTimeout()!) {
    core.tick(now);
    strictEqual(core.finished(now), false);
  }
  strictEqual(core.nextTimeout(), 600);
  strictEqual(core.finished(600), true);
});

Deno.test("splitEvent: every part fits in a datagram, all but the last continued, and they join to the text, no character cut (§9)", () => {
  const character = fc.constantFrom(
    "x",
    '"',
    "\\",
    "\x01",
    "\n",
    "\x7f",
    "\uFFFD",
    "é",
    "\u{1F600}",
  );
  fc.assert(
    fc.property(
      fc.array(character, { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 1, max: 400_000 }),
      fc.constantFrom("message", "undelivered", "busy", "peer-error"),
      (pattern, length, type) => {
        const unit = pattern.join("");
        const text = unit.repeat(Math.ceil(length / unit.length));
        const event: ControlEvent = type === "message"
          ? { type, name: "bob", text }
          : type === "undelivered"
          ? { type, id: 64, text }
          : { type, ip: "127.0.77.2", port: 7777, text };
        const parts = splitEvent(event);
        for (const [i, part] of parts.entries()) {
          const bytes = encodeControl({
            v: 1,
            ev: Number.MAX_SAFE_INTEGER,
            event: part,
          });
          ok(bytes.length <= MAX_CONTROL_DATAGRAM, `${bytes.length} bytes`);
          strictEqual(part.type, type);
          strictEqual("continued" in part, i < parts.length - 1);
          // No character is cut in two.
          ok("text" in part && part.text.isWellFormed());
        }
        const joined = parts.map((p) => "text" in p ? p.text : "").join("");
        strictEqual(joined, text);
        if (parts.length === 1) deepStrictEqual(parts[0], event);
      },
    ),
    { numRuns: 60 },
  );
});

for (
  const [kind, byte, shown] of [
    ["bytes ≥ 0x80", (_: number) => 0xff, (_: number) => "\uFFFD"],
    [
      "control characters",
      (i: number) => 1 + i % 31,
      (i: number) => String.fromCharCode(1 + i % 31),
    ],
  ] as const
) {
  Deno.test(`daemon core: a chat message of ${MAX_PAYLOAD} ${kind} reaches the client in parts of at most ${MAX_CONTROL_DATAGRAM} bytes, joined once (§9)`, () => {
    const core = chatting();
    const channel = new ControlChannel();
    relay(core, channel, 10);
    const payload = Uint8Array.from({ length: MAX_PAYLOAD }, (_, i) => byte(i));
    const text = Array.from({ length: MAX_PAYLOAD }, (_, i) => shown(i)).join(
      "",
    );
    // Escaped in JSON, the text alone is several times the datagram limit.
    ok(
      new TextEncoder().encode(JSON.stringify(text)).length >
        2 * MAX_CONTROL_DATAGRAM,
    );
    core.receivePeer(rawChat(0, payload), PEER, 20);
    const { delivered, sizes } = relay(core, channel, 20);
    ok(sizes.length >= 3, `${sizes.length} parts`);
    ok(
      sizes.every((size) => size <= MAX_CONTROL_DATAGRAM),
      `sizes ${sizes}`,
    );
    strictEqual(delivered.length, 1);
    deepStrictEqual(delivered[0], { type: "message", name: "bob", text });
    strictEqual(core.link.unacknowledged, 0);
  });
}

Deno.test("daemon core: peer-lost with 64 long undelivered messages reaches the client whole and in order (§5.5, §9)", () => {
  // Retransmissions every second: the client acknowledges the retransmitted
  // events and so keeps its slot while the peer is silent.
  const core = chatting({ timeout: 1000 });
  const channel = new ControlChannel();
  relay(core, channel, 10);
  const texts: string[] = [];
  for (let id = 3;; id++) {
    // Control characters: each is 6 bytes in JSON.
    const text = `#${id - 2} `.padEnd(MAX_PAYLOAD, "\x01\x1f");
    core.receiveClient(request(id, { cmd: "send", text }), CLIENT, 20);
    const reply = replies(drain(core).client)[0];
    if (!reply.ok) break;
    texts.push(text);
  }
  ok(texts.length >= 64, `${texts.length} messages accepted`);
  const delivered: ControlEvent[] = [];
  const sizes: number[] = [];
  for (let now = 20; core.session.phase !== "idle";) {
    now = core.nextTimeout()!;
    core.tick(now);
    const moved = relay(core, channel, now);
    delivered.push(...moved.delivered);
    sizes.push(...moved.sizes);
  }
  ok(sizes.every((size) => size <= MAX_CONTROL_DATAGRAM), `sizes ${sizes}`);
  const lost = delivered.findIndex((e) => e.type === "peer-lost");
  deepStrictEqual(delivered.slice(lost), [
    {
      type: "peer-lost",
      ip: "127.0.77.2",
      port: 7777,
      name: "bob",
      undelivered: texts.length,
    },
    ...texts.map((text, i): ControlEvent => ({
      type: "undelivered",
      id: i + 1,
      text,
    })),
  ]);
  strictEqual(core.link.unacknowledged, 0);
  deepStrictEqual(core.link.client, CLIENT);
});

Deno.test("client link: a split message only partly acknowledged when the slot is freed is kept whole", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  const text = "\uFFFD".repeat(MAX_PAYLOAD);
  link.emit({ type: "message", name: "bob", text }, 1);
  const parts = splitEvent({ type: "message", name: "bob", text });
  ok(parts.length >= 3, `${parts.length} parts`);
  deepStrictEqual(events(linkSent(link)).map((e) => e.ev), [1, 2]);
  link.receive(ack(2), CLIENT, 2); // the first two parts arrived
  link.tick(2 + CLIENT_TIMEOUT_MS); // then the client went silent
  strictEqual(link.client, undefined);
  strictEqual(link.kept, parts.length);
  // The next client gets every part again, and so the whole message.
  const channel = new ControlChannel();
  channel.request({ cmd: "connect", name: "alice" }, 9000);
  link.receive(
    channel.takeActions().flatMap((a) =>
      a.type === "transmit" ? [a.bytes] : []
    )[0],
    CLIENT,
    9000,
  );
  for (const { bytes } of link.takeTransmits()) channel.receive(bytes, 9001);
  deepStrictEqual(
    channel.takeActions().flatMap((a) => a.type === "event" ? [a.event] : []),
    [{ type: "message", name: "bob", text }],
  );
});

// ---------------------------------------------------------------------------
// Flow control: a slow or absent client holds the peer back (SPEC §5, §7.3)

/**
 * A chat partner that sends messages `m0`, `m1`, … one at a time and
 * retransmits the one in flight every `retry` ms until it is ACKed, as a
 * SIMP peer does (SPEC §5.2), counting what the daemon ACKed.
 */
class TestPeer {
  next = 0;
  acked = 0;
  sentAt: number | undefined;
  readonly retry: number;
  readonly count: number;

  constructor(count: number, retry = 500) {
    this.count = count;
    this.retry = retry;
  }

  get done(): boolean {
    return this.next >= this.count;
  }

  /** Sends the message in flight when it is due. */
  step(core: DaemonCore, now: number): void {
    if (this.done) return;
    if (this.sentAt !== undefined && now < this.sentAt + this.retry) return;
    this.sentAt = now;
    const text = `m${this.next}`;
    core.receivePeer(chat(this.next % 2 as Seq, "bob", text), PEER, now);
  }

  /** The datagrams the daemon sent it: an ACK of the one in flight releases it. */
  receive(datagrams: string[]): void {
    for (const d of datagrams) {
      if (d === `ACK ${this.next % 2}` && this.sentAt !== undefined) {
        this.acked++;
        this.next++;
        this.sentAt = undefined;
      }
    }
  }
}

/**
 * A client that takes at most `max` new events per call, in order, and
 * acknowledges what it took; events it does not take come again with the
 * daemon's retransmissions.
 */
class SlowClient {
  lastEv = 0;
  readonly events: ControlEvent[] = [];

  take(
    core: DaemonCore,
    sent: { message: DaemonMessage }[],
    now: number,
    max: number,
  ): void {
    const before = this.lastEv;
    for (const { message } of sent) {
      if (!("ev" in message) || message.ev !== this.lastEv + 1) continue;
      if (this.lastEv - before >= max) break;
      this.lastEv = message.ev;
      this.events.push(message.event);
    }
    if (this.lastEv > before) core.receiveClient(ack(this.lastEv), CLIENT, now);
  }

  get messages(): string[] {
    return this.events.flatMap((e) => e.type === "message" ? [e.text] : []);
  }
}

/**
 * Runs `peer` against `core` in 10 ms steps until `until` or `stop()`; the
 * client takes `rate(now)` events per step (0: paused). Returns the largest
 * backlog seen.
 */
function runFlow(
  core: DaemonCore,
  peer: TestPeer,
  client: SlowClient,
  options: {
    from: number;
    until: number;
    rate: (now: number) => number;
    stop?: () => boolean;
  },
): { now: number; maxBacklog: number } {
  let maxBacklog = 0;
  let now = options.from;
  for (; now < options.until && !options.stop?.(); now += 10) {
    if ((core.nextTimeout() ?? Infinity) <= now) core.tick(now);
    const toClient: { message: DaemonMessage }[] = [];
    // The peer sends as fast as the ACKs come, up to 50 messages a step.
    for (let i = 0; i < 50; i++) {
      const sent = peer.next;
      peer.step(core, now);
      const moved = drain(core);
      peer.receive(moved.peer);
      toClient.push(...moved.client);
      if (peer.next === sent) break;
    }
    client.take(core, toClient, now, options.rate(now));
    peer.receive(drain(core).peer);
    maxBacklog = Math.max(maxBacklog, core.link.backlog);
  }
  return { now, maxBacklog };
}

Deno.test("daemon core: a fast peer with a slow client is held back — no ACK beyond the backlog limit — and every message reaches the client once, in order (flow control)", () => {
  const core = chatting();
  const client = new SlowClient();
  client.take(core, drain(core).client, 10, Infinity); // chat-started
  const limit = DEFAULT_LINK_OPTIONS.backlogLimit;
  const peer = new TestPeer(2000);
  // The client takes nothing for 2 s: the daemon ACKs `limit` messages,
  // then the peer's next one is neither ACKed nor delivered.
  let run = runFlow(core, peer, client, {
    from: 20,
    until: 2020,
    rate: () => 0,
  });
  strictEqual(peer.acked, limit);
  strictEqual(core.link.backlog, limit);
  strictEqual(core.session.acceptingMessages, false);
  ok(core.session.counters.backpressure >= 3);
  // A duplicate of the last message ACKed is still ACKed (SPEC §5.3).
  core.receivePeer(
    chat((limit - 1) % 2 as Seq, "bob", `m${limit - 1}`),
    PEER,
    2020,
  );
  deepStrictEqual(drain(core).peer, [`ACK ${(limit - 1) % 2}`]);
  // Then it takes 20 events every 10 ms, slower than the peer could send.
  run = runFlow(core, peer, client, {
    from: 2030,
    until: 120_000,
    rate: () => 20,
    stop: () => peer.done && core.link.backlog === 0,
  });
  ok(peer.done, `${peer.next} sent`);
  ok(run.maxBacklog <= limit, `backlog up to ${run.maxBacklog}`);
  deepStrictEqual(
    client.messages,
    Array.from({ length: 2000 }, (_, i) => `m${i}`),
  );
  deepStrictEqual(core.link.client, CLIENT);
  strictEqual(core.session.acceptingMessages, true);
});

Deno.test("daemon core: a client paused for 3 s keeps its slot and then gets every message, in order (§7.2)", () => {
  const core = chatting();
  const client = new SlowClient();
  client.take(core, drain(core).client, 10, Infinity);
  const peer = new TestPeer(2000);
  const records = captureLogs(() => {
    runFlow(core, peer, client, {
      from: 20,
      until: 3020,
      rate: () => 0,
    });
    deepStrictEqual(core.link.client, CLIENT);
    runFlow(core, peer, client, {
      from: 3020,
      until: 60_000,
      rate: () => Infinity,
      stop: () => peer.done && core.link.backlog === 0,
    });
  });
  ok(peer.done);
  deepStrictEqual(
    client.messages,
    Array.from({ length: 2000 }, (_, i) => `m${i}`),
  );
  deepStrictEqual(core.link.client, CLIENT);
  deepStrictEqual(
    records.filter((r) => r.level === "WARN" || r.message.includes("slot")),
    [],
  );
});

Deno.test("daemon core: with no client connected, the events kept hold the peer back at the backlog limit, and the next client gets every message (§4.9, §7.3)", () => {
  const core = new DaemonCore({
    ip: OWN_IP,
    port: 7777,
    session: { autoAccept: true },
    link: { backlogLimit: 10 },
  });
  core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 10);
  drain(core);
  const peer = new TestPeer(30);
  const client = new SlowClient();
  runFlow(core, peer, client, { from: 20, until: 3000, rate: () => 0 });
  strictEqual(peer.acked, 10);
  strictEqual(core.link.kept, 10);
  core.receiveClient(
    request(1, { cmd: "connect", name: "alice" }),
    CLIENT,
    3000,
  );
  runFlow(core, peer, client, {
    from: 3000,
    until: 20_000,
    rate: () => Infinity,
    stop: () => peer.done && core.link.backlog === 0,
  });
  deepStrictEqual(
    client.messages,
    Array.from({ length: 30 }, (_, i) => `m${i}`),
  );
});

Deno.test("client link: a client that acknowledges nothing keeps its slot while it is heard; events beyond maxEvents are dropped, whole, with a warning (§7.2, §7.3)", () => {
  const link = new ClientLink(() => ({}), { ownIp: OWN_IP, maxEvents: 10 });
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  const records = captureLogs(() => {
    for (let i = 0; i < 12; i++) {
      link.emit({
        type: "peer-error",
        ip: PEER.ip,
        port: 7777,
        text: `e${i}`,
      }, i);
    }
    // A split event that would not fit goes whole: no part of it is queued.
    link.emit({
      type: "message",
      name: "bob",
      text: "\x01".repeat(MAX_PAYLOAD),
    }, 20);
    link.receive(request(2, { cmd: "ping" }), CLIENT, 4000);
    link.tick(8000);
  });
  deepStrictEqual(link.client, CLIENT);
  strictEqual(link.unacknowledged, 10);
  deepStrictEqual(
    records.filter((r) => r.level === "WARN").map((r) => r.properties),
    [{ max: 10, type: "peer-error", client: "127.0.0.1:40001" }],
  );
  // Once the client catches up there is room again.
  link.receive(ack(10), CLIENT, 8001);
  strictEqual(link.backlog, 0);
  linkSent(link);
  link.emit({ type: "message", name: "bob", text: "hi" }, 8002);
  deepStrictEqual(events(linkSent(link)).map((e) => [e.ev, e.event]), [
    [11, { type: "message", name: "bob", text: "hi" }],
  ]);
});

Deno.test("client link: at most windowBytes of event datagrams are unacknowledged on the wire, and always at least one event", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  // Control characters take 6 bytes each in JSON: 7 parts per message.
  const text = "\x01".repeat(MAX_PAYLOAD);
  for (let i = 0; i < 3; i++) {
    link.emit({ type: "message", name: "bob", text }, 0);
  }
  strictEqual(link.unacknowledged, 21);
  const bytesOf = (sent: LinkTransmit[]) =>
    sent.reduce((sum, t) => sum + t.bytes.length, 0);
  let sent = link.takeTransmits();
  deepStrictEqual(events(sent).map((e) => e.ev), [1, 2]);
  ok(bytesOf(sent) <= DEFAULT_LINK_OPTIONS.windowBytes, `${bytesOf(sent)}`);
  // Retransmission sends the same window again, nothing beyond it.
  link.tick(EVENT_RETRY_MS);
  deepStrictEqual(events(link.takeTransmits()).map((e) => e.ev), [1, 2]);
  link.receive(ack(1), CLIENT, 350);
  sent = link.takeTransmits();
  deepStrictEqual(events(sent).map((e) => e.ev), [3]);
  // A window smaller than one event still lets one through at a time.
  const small = new ClientLink(() => ({}), { ownIp: OWN_IP, windowBytes: 10 });
  small.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  small.emit({ type: "message", name: "bob", text: "one" }, 0);
  small.emit({ type: "message", name: "bob", text: "two" }, 0);
  deepStrictEqual(events(linkSent(small)).map((e) => e.ev), [1]);
  small.receive(ack(1), CLIENT, 5);
  deepStrictEqual(events(linkSent(small)).map((e) => e.ev), [2]);
});

Deno.test("client link: a malformed acknowledgement gets an error naming `ack` (§9)", () => {
  const { link } = countingLink();
  link.receive(request(1, { cmd: "connect", name: "alice" }), CLIENT, 0);
  linkSent(link);
  for (const value of ["-1", "1.5", '"3"', "null"]) {
    link.receive(
      new TextEncoder().encode(`{"v":1,"ack":${value}}`),
      CLIENT,
      1,
    );
  }
  deepStrictEqual(
    replies(linkSent(link)),
    Array(4).fill({
      v: 1,
      re: null,
      ok: false,
      error: "Malformed acknowledgement: `ack` must be a non-negative integer",
    }),
  );
});

Deno.test("daemon core: an invitation whose SYN cannot be sent is given up at once with no-answer; other send failures are only logged (§4.6, §5.5)", () => {
  const core = connected();
  core.receiveClient(
    request(2, { cmd: "invite", ip: "127.0.77.2" }),
    CLIENT,
    0,
  );
  const syn = core.takeActions().find((a) => a.type === "peer");
  ok(syn?.type === "peer");
  const error = new TypeError("Invalid argument (os error 22)");
  const records = captureLogs(() => {
    core.peerSendFailed({ to: syn.to, datagram: syn.datagram, error }, 5);
  });
  strictEqual(core.session.phase, "idle");
  const { peer, client } = drain(core);
  deepStrictEqual(peer, ["FIN 0"]); // the invitation is withdrawn
  deepStrictEqual(events(client).map((e) => e.event), [
    { type: "no-answer", ip: "127.0.77.2", port: 7777 },
  ]);
  ok(
    records.some((r) =>
      r.level === "WARN" && r.message.includes("given up") &&
      r.properties.error === error.message
    ),
    JSON.stringify(records),
  );
  // A late failure (that FIN, a datagram of a chat) changes nothing but a
  // log line, at most one a minute.
  const chatCore = chatting();
  drain(chatCore);
  const later = captureLogs(() => {
    for (let i = 0; i < 5; i++) {
      chatCore.peerSendFailed({
        to: PEER,
        datagram: decodeDatagram(chat(0, "alice", "hi")),
        error,
      }, 100 + i);
    }
  });
  strictEqual(chatCore.session.phase, "established");
  deepStrictEqual(drain(chatCore), { peer: [], client: [] });
  strictEqual(later.filter((r) => r.level === "WARN").length, 1);
});

Deno.test("daemon core: a failed SYN reported after the invitation limit passed gives one no-answer, not two (§4.6)", () => {
  const core = connected();
  core.receiveClient(
    request(2, { cmd: "invite", ip: "127.0.77.2" }),
    CLIENT,
    0,
  );
  const syn = core.takeActions().find((a) => a.type === "peer");
  ok(syn?.type === "peer");
  const error = new TypeError("Invalid argument (os error 22)");
  captureLogs(() => {
    core.peerSendFailed(
      { to: syn.to, datagram: syn.datagram, error },
      core.session.config.invitationLimit + 1,
    );
  });
  strictEqual(core.session.phase, "idle");
  const { client } = drain(core);
  deepStrictEqual(
    events(client).map((e) => e.event.type).filter((t) => t === "no-answer"),
    ["no-answer"],
  );
});

// ---------------------------------------------------------------------------
// Helpers for the real-UDP tests

/** A UDP socket for a test, with a receive queue and timeouts. */
class TestSocket {
  readonly conn: Deno.DatagramConn;
  #queue: [Uint8Array, Address][] = [];
  #waiter: (() => void) | undefined;
  #loop: Promise<void>;

  constructor(hostname: string, port = 0) {
    this.conn = Deno.listenDatagram({ hostname, port, transport: "udp" });
    this.#loop = this.#receive();
  }

  get address(): Address {
    const { hostname, port } = this.conn.addr as Deno.NetAddr;
    return { ip: hostname, port };
  }

  async #receive(): Promise<void> {
    try {
      for (;;) {
        const [bytes, addr] = await this.conn.receive();
        const { hostname, port } = addr as Deno.NetAddr;
        this.#queue.push([bytes, { ip: hostname, port }]);
        this.#waiter?.();
      }
    } catch {
      // closed
    }
  }

  async send(bytes: Uint8Array, to: Address): Promise<void> {
    await this.conn.send(bytes, {
      transport: "udp",
      hostname: to.ip,
      port: to.port,
    });
  }

  /** The next datagram, or an error after `ms`. */
  async next(ms = 3000): Promise<[Uint8Array, Address]> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Nothing received within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#waiter = undefined;
    }
    return this.#queue.shift()!;
  }

  /** The next SIMP datagram, described as `SYN+ACK 0` or `ERR 0 text`. */
  async nextDatagram(ms = 3000): Promise<{ text: string; from: Address }> {
    const [bytes, from] = await this.next(ms);
    return { text: summary(decodeDatagram(bytes), { user: false }), from };
  }

  /** Waits `ms` and checks that nothing arrived. */
  async nothingFor(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    deepStrictEqual(this.#queue.map(([b]) => b.length), []);
  }

  async close(): Promise<void> {
    this.conn.close();
    await this.#loop;
  }
}

/** A minimal control-protocol client on a test socket. */
class TestClient {
  readonly socket: TestSocket;
  readonly daemon: Address;
  readonly events: ControlEvent[] = [];
  #nextId = 1;
  #lastEv = 0;

  constructor(socket: TestSocket, daemon: Address) {
    this.socket = socket;
    this.daemon = daemon;
  }

  /** Sends a request and returns its reply, acknowledging events meanwhile. */
  async request(command: Command): Promise<Reply> {
    const id = this.#nextId++;
    await this.socket.send(request(id, command), this.daemon);
    for (;;) {
      const message = await this.#next();
      if ("re" in message && message.re === id) return message;
    }
  }

  /** The next event of `type`, acknowledging every event. */
  async event(type: ControlEvent["type"]): Promise<ControlEvent> {
    for (;;) {
      const found = this.events.find((e) => e.type === type);
      if (found) return found;
      await this.#next();
    }
  }

  async #next(): Promise<DaemonMessage> {
    const [bytes] = await this.socket.next();
    const message = parseDaemonMessage(bytes);
    if ("ev" in message) {
      if (message.ev === this.#lastEv + 1) {
        this.#lastEv = message.ev;
        this.events.push(message.event);
      }
      await this.socket.send(ack(this.#lastEv), this.daemon);
    }
    return message;
  }
}

const PEER_PORT = 47777;
const CLIENT_PORT = 47778;

/** Runs the daemon in this process on `ip` for the duration of `body`. */
async function withDaemon(
  ip: string,
  options: Partial<DaemonOptions>,
  body: (daemon: { peer: Address; client: Address }) => Promise<void>,
): Promise<void> {
  const abort = new AbortController();
  const lines: string[] = [];
  let ready!: () => void;
  const started = new Promise<void>((resolve) => ready = resolve);
  const running = runDaemon(
    {
      ...DAEMON_DEFAULTS,
      ip,
      port: PEER_PORT,
      clientPort: CLIENT_PORT,
      ...options,
    },
    {
      signal: abort.signal,
      handleSignals: false,
      report: (line) => {
        lines.push(line);
        ready();
      },
    },
  );
  await Promise.race([started, running]);
  ok(lines[0]?.startsWith("simp daemon listening on"), lines.join("\n"));
  try {
    await body({
      peer: { ip: ip, port: options.port ?? PEER_PORT },
      client: { ip: ip, port: options.clientPort ?? CLIENT_PORT },
    });
  } finally {
    abort.abort();
    strictEqual(await running, 0);
  }
}

/** Starts `simp daemon` as a subprocess; resolves once it is listening. */
async function spawnDaemon(args: string[]): Promise<Proc> {
  const daemon = new Proc(
    `daemon ${args[0]}`,
    ["run", "-A", "mod.ts", "daemon", ...args],
    { stdin: false },
  );
  try {
    await daemon.expect(/^simp daemon listening on /, { stream: "stderr" });
  } catch (error) {
    await daemon.stop("SIGKILL");
    throw error;
  }
  return daemon;
}

// ---------------------------------------------------------------------------
// The real daemon on real UDP

Deno.test("daemon: a SYN from an ephemeral port is answered to that port after the client accepts (§1.4, §4.2)", async () => {
  await withDaemon("127.0.77.21", {}, async (daemon) => {
    const peer = new TestSocket("127.0.77.22");
    const client = new TestClient(new TestSocket("127.0.77.21"), daemon.client);
    try {
      deepStrictEqual(await client.request({ cmd: "connect", name: "alice" }), {
        v: 1,
        re: 1,
        ok: true,
        state: { phase: "idle" },
      });
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual(await client.event("invitation"), {
        type: "invitation",
        ip: "127.0.77.22",
        port: peer.address.port,
        name: "bob",
      });
      await peer.nothingFor(50); // no answer before the user decides
      strictEqual((await client.request({ cmd: "accept" })).ok, true);
      const answer = await peer.nextDatagram();
      deepStrictEqual(answer, { text: "SYN+ACK 0", from: daemon.peer });
      await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
      await client.event("chat-started");
      strictEqual((await client.request({ cmd: "quit" })).ok, true);
      deepStrictEqual((await peer.nextDatagram()).text, "FIN 0");
    } finally {
      await peer.close();
      await client.socket.close();
    }
  });
});

Deno.test("daemon: a SYN while an invitation is pending gets the exact busy ERR, then FIN (§4.8)", async () => {
  await withDaemon("127.0.77.23", {}, async (daemon) => {
    const first = new TestSocket("127.0.77.24");
    const second = new TestSocket("127.0.77.25");
    try {
      await first.send(control(Op.SYN, 0, "bob"), daemon.peer);
      await first.nothingFor(50);
      await second.send(control(Op.SYN, 0, "carol"), daemon.peer);
      deepStrictEqual(
        (await second.nextDatagram()).text,
        `ERR 0 ${BUSY_TEXT}`,
      );
      deepStrictEqual((await second.nextDatagram()).text, "FIN 0");
    } finally {
      await first.close();
      await second.close();
    }
  });
});

Deno.test("daemon: malformed bytes on either port do not crash it (§2, §9)", async () => {
  await withDaemon("127.0.77.26", { autoAccept: true }, async (daemon) => {
    const peer = new TestSocket("127.0.77.27");
    const client = new TestClient(new TestSocket("127.0.77.26"), daemon.client);
    try {
      for (
        const junk of [
          new Uint8Array(0),
          new Uint8Array([1, 2, 3]),
          new Uint8Array(39).fill(0xff),
          new TextEncoder().encode('{"v":1,"id":1,"cmd":"connect"}'),
        ]
      ) {
        await peer.send(junk, daemon.peer);
        await client.socket.send(junk, daemon.client);
      }
      await peer.nothingFor(50); // malformed datagrams are never answered
      // The client port answered what it could read with error replies.
      const errors: Reply[] = [];
      for (let i = 0; i < 4; i++) {
        errors.push(
          parseDaemonMessage((await client.socket.next())[0]) as Reply,
        );
      }
      ok(errors.every((r) => r.ok === false), JSON.stringify(errors));
      // Still alive on both ports.
      strictEqual(
        (await client.request({ cmd: "connect", name: "alice" })).ok,
        true,
      );
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
    } finally {
      await peer.close();
      await client.socket.close();
    }
  });
});

Deno.test("daemon: a duplicate chat datagram is re-ACKed and delivered once (§5.3)", async () => {
  await withDaemon("127.0.77.28", { autoAccept: true }, async (daemon) => {
    const peer = new TestSocket("127.0.77.29");
    const client = new TestClient(new TestSocket("127.0.77.28"), daemon.client);
    try {
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
      await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
      await peer.send(chat(0, "bob", "hello"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 0");
      await peer.send(chat(0, "bob", "hello"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 0");
      // No client was connected: the message was kept, once (§4.9).
      const reply = await client.request({ cmd: "connect", name: "alice" });
      deepStrictEqual(reply, {
        v: 1,
        re: 1,
        ok: true,
        state: {
          phase: "established",
          peer: { ip: "127.0.77.29", port: peer.address.port, name: "bob" },
        },
      });
      await client.event("message");
      await client.socket.nothingFor(100);
      deepStrictEqual(client.events, [
        { type: "message", name: "bob", text: "hello" },
      ]);
    } finally {
      await peer.close();
      await client.socket.close();
    }
  });
});

Deno.test("daemon: an unacknowledged chat datagram is retransmitted with the same sequence after the timeout (§5.2)", async () => {
  await withDaemon(
    "127.0.77.30",
    { autoAccept: true, timeoutMs: 200 },
    async (daemon) => {
      const peer = new TestSocket("127.0.77.31");
      const client = new TestClient(
        new TestSocket("127.0.77.30"),
        daemon.client,
      );
      try {
        await client.request({ cmd: "connect", name: "alice" });
        await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
        deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
        await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
        await client.event("chat-started");
        const sent = await client.request({ cmd: "send", text: "hi bob" });
        deepStrictEqual(sent, { v: 1, re: 2, ok: true, msgId: 1 });
        const start = performance.now();
        deepStrictEqual((await peer.nextDatagram()).text, "CHAT 0 hi bob");
        deepStrictEqual((await peer.nextDatagram()).text, "CHAT 0 hi bob");
        const elapsed = performance.now() - start;
        ok(elapsed >= 150 && elapsed < 1000, `after ${elapsed} ms`);
        deepStrictEqual(await client.event("retransmitted"), {
          type: "retransmitted",
          id: 1,
          attempt: 1,
        });
        await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
        deepStrictEqual(await client.event("delivered"), {
          type: "delivered",
          id: 1,
        });
      } finally {
        await peer.close();
        await client.socket.close();
      }
    },
  );
});

Deno.test("daemon: every datagram is traced at debug level under simp.wire", async () => {
  const lines: string[] = [];
  setupLogging({
    level: "debug",
    format: "json",
    write: (line) => lines.push(line),
  });
  try {
    await withDaemon("127.0.77.32", {}, async (daemon) => {
      const first = new TestSocket("127.0.77.33");
      const second = new TestSocket("127.0.77.34");
      try {
        await first.send(control(Op.SYN, 0, "bob"), daemon.peer);
        await second.send(control(Op.SYN, 0, "{carol}"), daemon.peer);
        await second.nextDatagram();
        await second.nextDatagram();
      } finally {
        await first.close();
        await second.close();
      }
    });
  } finally {
    setupLogging({ level: "error", write: () => {} });
  }
  const wire = lines.map((line) => JSON.parse(line)).filter((r) =>
    r.logger === "simp.wire"
  );
  deepStrictEqual(
    wire.map((r) => [r.message, r.properties.to]),
    [
      ["127.0.77.33 → 127.0.77.32  SYN seq=0 user=bob", "127.0.77.32:47777"],
      [
        "127.0.77.34 → 127.0.77.32  SYN seq=0 user={carol}",
        "127.0.77.32:47777",
      ],
      [
        `127.0.77.32 → 127.0.77.34  ERR seq=0 user= "${BUSY_TEXT}"`,
        wire[2]?.properties.to,
      ],
      ["127.0.77.32 → 127.0.77.34  FIN seq=0 user=", wire[3]?.properties.to],
      // Stopping declines the pending invitation (§4.4).
      ["127.0.77.32 → 127.0.77.33  FIN seq=0 user=", wire[4]?.properties.to],
    ],
  );
  ok(wire.every((r) => r.level === "DEBUG"), JSON.stringify(wire[0]));
});

Deno.test("daemon: a port in use gives one clear line and exit code 1", async () => {
  const blocker = Deno.listenDatagram({
    hostname: "127.0.77.35",
    port: PEER_PORT,
    transport: "udp",
  });
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "mod.ts",
        "daemon",
        "127.0.77.35",
        "--port",
        String(PEER_PORT),
        "--client-port",
        String(CLIENT_PORT),
      ],
      cwd: ROOT,
      stdin: "null",
    }).output();
    strictEqual(output.code, 1);
    const stderr = new TextDecoder().decode(output.stderr);
    const lines = stderr.trimEnd().split("\n");
    strictEqual(lines.length, 1, stderr);
    ok(lines[0].includes(`port ${PEER_PORT} is in use`), stderr);
    ok(lines[0].includes(`lsof -i :${PEER_PORT}`), stderr);
    ok(lines[0].includes("--port"), stderr);
  } finally {
    blocker.close();
  }
});

Deno.test("daemon: an address that is not this machine's gives a clear line and exit code 1", async () => {
  const lines: string[] = [];
  const code = await runDaemon(
    { ...DAEMON_DEFAULTS, ip: "192.0.2.1", port: PEER_PORT },
    { handleSignals: false, report: (line) => lines.push(line) },
  );
  strictEqual(code, 1);
  strictEqual(lines.length, 1);
  ok(lines[0].includes("sudo ifconfig lo0 alias 192.0.2.1"), lines[0]);
});

Deno.test("daemon: SIGTERM right after the listening line is a clean stop (exit 0)", async () => {
  for (let i = 0; i < 5; i++) {
    const daemon = await spawnDaemon([
      "127.0.77.38",
      "--port",
      String(PEER_PORT),
      "--client-port",
      String(CLIENT_PORT),
    ]);
    const status = await daemon.stop("SIGTERM");
    strictEqual(status.code, 0, daemon.lines.stderr.join("\n"));
  }
});

/**
 * A daemon subprocess at `ip` (auto-accepting) with alice's client connected
 * and a raw peer at `peerIp` in an established chat with it; `body` runs
 * with them, then everything is stopped and closed.
 */
async function withChattingDaemon(
  ip: string,
  peerIp: string,
  body: (
    chat: { daemon: Proc; peer: TestSocket; client: TestClient },
  ) => Promise<void>,
): Promise<void> {
  const daemon = await spawnDaemon([
    ip,
    "--port",
    String(PEER_PORT),
    "--client-port",
    String(CLIENT_PORT),
    "--auto-accept",
  ]);
  const peer = new TestSocket(peerIp);
  const client = new TestClient(
    new TestSocket(ip),
    { ip: ip, port: CLIENT_PORT },
  );
  const daemonPeer = { ip: ip, port: PEER_PORT };
  try {
    await client.request({ cmd: "connect", name: "alice" });
    await peer.send(control(Op.SYN, 0, "bob"), daemonPeer);
    deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
    await peer.send(control(Op.ACK, 0, "bob"), daemonPeer);
    await client.event("chat-started");
    await body({ daemon, peer, client });
    const status = await daemon.exit();
    strictEqual(status.code, 0, daemon.lines.stderr.join("\n"));
  } finally {
    await daemon.stop("SIGKILL");
    await peer.close();
    await client.socket.close();
  }
}

Deno.test("daemon: SIGTERM in a chat sends FIN, tells the client and exits 0 (§6.1)", async () => {
  await withChattingDaemon(
    "127.0.77.36",
    "127.0.77.37",
    async ({ daemon, peer, client }) => {
      const daemonPeer = { ip: "127.0.77.36", port: PEER_PORT };
      daemon.kill("SIGTERM");
      deepStrictEqual((await peer.nextDatagram()).text, "FIN 0");
      await peer.send(control(Op.ACK, 0, "bob"), daemonPeer);
      await client.event("daemon-stopping");
    },
  );
});

Deno.test("daemon: SIGTERM with a message unacknowledged sends FIN at once and reports the message undelivered (§5.5, §6.1)", async () => {
  await withChattingDaemon(
    "127.0.85.1",
    "127.0.85.2",
    async ({ daemon, peer, client }) => {
      await client.request({ cmd: "send", text: "are you there?" });
      deepStrictEqual(
        (await peer.nextDatagram()).text,
        "CHAT 0 are you there?",
      );
      // Bob never ACKs it; alice's daemon is stopped.
      daemon.kill("SIGTERM");
      ok((await peer.nextDatagram(1000)).text.startsWith("FIN "));
      await client.event("daemon-stopping");
      const closed = client.events.findIndex((e) => e.type === "chat-closed");
      deepStrictEqual(client.events.slice(closed), [
        {
          type: "chat-closed",
          ip: "127.0.85.2",
          port: peer.address.port,
          name: "bob",
          undelivered: 1,
        },
        { type: "undelivered", id: 1, text: "are you there?" },
        { type: "daemon-stopping" },
      ]);
    },
  );
});

Deno.test("daemon: a max-size chat datagram of bytes ≥ 0x80 reaches the client whole, and the next message is not stuck behind it (§9)", async () => {
  await withDaemon("127.0.79.1", { autoAccept: true }, async (daemon) => {
    const peer = new TestSocket("127.0.79.2");
    const got: ControlEvent[] = [];
    let changed = () => {};
    const link = DaemonLink.open(daemon.client.ip, daemon.client.port, {
      onEvent: (event) => {
        got.push(event);
        changed();
      },
    });
    /** Resolves once `count` events have arrived, or fails after 5 s. */
    async function events(count: number): Promise<ControlEvent[]> {
      const deadline = Date.now() + 5000;
      while (got.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`${got.length} of ${count} events within 5 s`);
        }
        const { promise, resolve } = Promise.withResolvers<void>();
        changed = resolve;
        const timer = setTimeout(resolve, left);
        await promise;
        clearTimeout(timer);
      }
      return got;
    }
    try {
      strictEqual(
        (await link.request({ cmd: "connect", name: "alice" })).ok,
        true,
      );
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
      await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
      deepStrictEqual(
        (await events(2)).map((e) => e.type),
        ["invitation", "chat-started"], // auto-accepted
      );
      const big = rawChat(0, new Uint8Array(MAX_PAYLOAD).fill(0xff));
      strictEqual(big.length, MAX_CONTROL_DATAGRAM);
      await peer.send(big, daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 0");
      await peer.send(chat(1, "bob", "and a short one"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 1");
      deepStrictEqual((await events(4)).slice(2), [
        { type: "message", name: "bob", text: "\uFFFD".repeat(MAX_PAYLOAD) },
        { type: "message", name: "bob", text: "and a short one" },
      ]);
      strictEqual((await link.request({ cmd: "quit" })).ok, true);
      deepStrictEqual((await peer.nextDatagram()).text, "FIN 0");
    } finally {
      await link.close();
      await peer.close();
    }
  });
});
