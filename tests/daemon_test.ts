/**
 * Tests of the daemon: the daemon core (engine joined to the daemon's end
 * of the link) in virtual time (SPEC §4.9, §7, §9), then the real daemon
 * on real sockets, spoken to in raw SIMP over UDP and in raw link lines
 * over TCP. Every real test uses its own address in 127.0.90.0/24 or
 * 127.0.98.0/24 (never 127.0.0.1 or 127.0.0.2).
 */

import { currentInvocation } from "../lib/invocation.ts";
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  BUSY_TEXT,
  decodeDatagram,
  HEADER_SIZE,
  MAX_PAYLOAD,
  Op,
  type Seq,
} from "../lib/wire/datagram.ts";
import {
  type DaemonAction,
  DaemonCore,
  type DaemonCoreOptions,
  EVENT_LOG_BUDGET,
} from "../lib/daemon/core.ts";
import { type Address, formatAddress } from "../lib/address.ts";
import {
  type Command,
  type DaemonMessage,
  encodeRequest,
  type LinkEvent,
  MAX_LINE_BYTES,
  parseDaemonMessage,
  type Reply,
} from "../lib/link/protocol.ts";
import { LineSplitter } from "../lib/link/lines.ts";
import type { ConnectionId } from "../lib/link/daemon_end.ts";
import { runDaemon } from "../daemon.ts";
import { DAEMON_DEFAULTS, type DaemonOptions } from "../lib/cli.ts";
import { setupLogging } from "../lib/log.ts";
import { Proc, ROOT } from "../tools/_processes.ts";
import { chat, control, summary } from "./support/datagrams.ts";
import { rssKiB } from "./support/processes.ts";

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

// ---------------------------------------------------------------------------
// Helpers for the virtual-time tests

const OWN_IP = "127.0.90.1";
const CLIENT: Address = { ip: "127.0.0.1", port: 40001 };
const PEER: Address = { ip: "127.0.90.2", port: 7777 };
const T = 5000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A daemon core with a client on connection 1 (or none), in virtual time.
 * What the core writes to a connection is taken as written at once unless
 * the client is `paused`: then it piles up in the backlog.
 */
class Rig {
  readonly core: DaemonCore;
  conn: ConnectionId = 1;
  paused = false;
  #nextId = 1;
  /** Bytes written and not yet reported written (while paused). */
  #unreported = 0;

  constructor(options: Partial<DaemonCoreOptions> = {}) {
    this.core = new DaemonCore({
      ip: OWN_IP,
      port: 7777,
      clientPort: 7778,
      ...options,
      session: { timeout: T, ...options.session },
    });
  }

  /** Opens a client connection and says hello as alice. */
  connect(now = 0, conn = this.conn): this {
    this.conn = conn;
    this.core.clientOpened(conn, CLIENT, now);
    this.request({ cmd: "hello", v: 2, name: "alice" }, now);
    return this;
  }

  /** Sends one request; returns its id. */
  request(command: Command, now = 0): number {
    const id = this.#nextId++;
    this.line(encodeRequest({ id, ...command } as never), now);
    return id;
  }

  /** Sends raw text from the client. */
  line(text: string, now = 0): void {
    this.core.clientData(this.conn, encoder.encode(text), now);
  }

  /** The client's connection closes. */
  closeClient(now = 0): void {
    this.core.clientClosed(this.conn, now);
  }

  /** The client reads everything written so far. */
  resume(): void {
    this.paused = false;
    const count = this.#unreported;
    this.#unreported = 0;
    this.core.clientWrote(this.conn, count);
  }

  /** What the core did since the last look: datagrams, lines, closes. */
  drain(): { peer: string[]; lines: DaemonMessage[]; closed: ConnectionId[] } {
    const peer: string[] = [];
    const lines: DaemonMessage[] = [];
    const closed: ConnectionId[] = [];
    let written = 0;
    for (const action of this.core.takeActions() as DaemonAction[]) {
      switch (action.type) {
        case "peer":
          peer.push(summary(action.datagram, { user: false }));
          break;
        case "write": {
          const text = decoder.decode(action.bytes);
          for (const line of text.slice(0, -1).split("\n")) {
            lines.push(parseDaemonMessage(line));
          }
          if (action.conn === this.conn) written += action.bytes.length;
          break;
        }
        case "close":
          closed.push(action.conn);
          break;
      }
    }
    if (this.paused) {
      this.#unreported += written;
    } else if (written > 0) {
      this.core.clientWrote(this.conn, written);
    }
    return { peer, lines, closed };
  }

  /** The replies among `lines`. */
  static replies(lines: DaemonMessage[]): Reply[] {
    return lines.flatMap((m) => "event" in m ? [] : [m]);
  }

  /** The events among `lines`. */
  static events(lines: DaemonMessage[]): LinkEvent[] {
    return lines.flatMap((m) => "event" in m ? [m.event] : []);
  }
}

/** A rig connected as alice, in a chat with bob that alice started. */
function chatting(options: Partial<DaemonCoreOptions> = {}): Rig {
  const rig = new Rig(options).connect();
  rig.request({ cmd: "invite", ip: PEER.ip });
  rig.core.receivePeer(control(Op.SYN_ACK, 0, "bob"), PEER, 10);
  strictEqual(rig.core.session.phase, "established");
  return rig;
}

/** A chat datagram from bob with `payload` as its raw bytes. */
function rawChat(seq: Seq, payload: Uint8Array): Uint8Array {
  const bytes = chat(seq, "bob", "x".repeat(payload.length));
  bytes.set(payload, HEADER_SIZE);
  return bytes;
}

// ---------------------------------------------------------------------------
// The daemon core, in virtual time

Deno.test("daemon core: hello sets the name and answers with state and limits", () => {
  const rig = new Rig({ session: { maxQueue: 8 } }).connect();
  deepStrictEqual(rig.drain().lines, [{
    re: 1,
    ok: true,
    v: 2,
    state: { phase: "idle" },
    limits: { queue: 8, text: MAX_PAYLOAD },
  }]);
  strictEqual(rig.core.session.userName, "alice");
});

Deno.test("daemon core: a datagram from the daemon's own peer address, port 0, broadcast, multicast or the wildcard (spoofed) is dropped: no invitation, no chat with itself, even with auto-accept (§7.1)", () => {
  const self: Address = { ip: OWN_IP, port: 7777 };
  const rig = new Rig({ session: { autoAccept: true } }).connect();
  rig.drain();
  rig.core.receivePeer(control(Op.SYN, 0, "evil"), self, 10);
  rig.core.receivePeer(control(Op.SYN_ACK, 0, "evil"), self, 11);
  rig.core.receivePeer(chat(0, "evil", "hi me"), self, 12);
  deepStrictEqual(rig.drain(), { peer: [], lines: [], closed: [] });
  strictEqual(rig.core.session.phase, "idle");
  // No daemon sends from these either.
  for (
    const from of [
      { ip: "255.255.255.255", port: 7777 },
      { ip: "224.0.0.1", port: 7777 },
      { ip: "0.0.0.0", port: 7777 },
      { ip: "240.0.0.1", port: 7777 },
      { ip: PEER.ip, port: 0 },
    ]
  ) {
    rig.core.receivePeer(control(Op.SYN, 0, "evil"), from, 15);
    deepStrictEqual(rig.drain(), { peer: [], lines: [], closed: [] });
    strictEqual(rig.core.session.phase, "idle", formatAddress(from));
  }
  // From another address a SYN is an invitation, accepted at once.
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 20);
  deepStrictEqual(rig.drain().peer, ["SYN+ACK 0"]);
});

Deno.test("daemon core: hello shows a pending invitation in its state, and an invitation event follows it (§4.2)", () => {
  const rig = new Rig();
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  deepStrictEqual(rig.drain().peer, []); // no answer until the user decides
  rig.connect(5);
  deepStrictEqual(rig.drain().lines, [
    {
      re: 1,
      ok: true,
      v: 2,
      state: {
        phase: "invited",
        peer: { ip: PEER.ip, port: 7777, name: "bob" },
      },
      limits: { queue: 64, text: MAX_PAYLOAD },
    },
    { event: { type: "invitation", ip: PEER.ip, port: 7777, name: "bob" } },
  ]);
  rig.request({ cmd: "accept" }, 6);
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, ["SYN+ACK 0"]);
  deepStrictEqual(lines, [{ re: 2, ok: true }]);
});

Deno.test("daemon core: engine events reach the client as link events, after the reply of the request that caused them", () => {
  const rig = chatting();
  rig.drain();
  const id = rig.request({ cmd: "send", text: "hi" }, 20);
  rig.core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 30);
  rig.core.receivePeer(chat(0, "bob", "hello"), PEER, 40);
  rig.core.receivePeer(control(Op.FIN, 1, "bob"), PEER, 50);
  const { lines } = rig.drain();
  deepStrictEqual(lines, [
    { re: id, ok: true, msgId: 1 },
    { event: { type: "delivered", id: 1 } },
    { event: { type: "message", name: "bob", text: "hello" } },
    {
      event: {
        type: "peer-left",
        ip: PEER.ip,
        port: 7777,
        name: "bob",
        undelivered: 0,
      },
    },
  ]);
});

Deno.test("daemon core: pipelined requests are answered in order", () => {
  const rig = chatting();
  rig.drain();
  const lines = Array.from(
    { length: 5 },
    (_, i) => encodeRequest({ id: 10 + i, cmd: "send", text: `m${i}` }),
  ).join("");
  rig.line(
    lines + '{"id":15,"cmd":"frob"}\n' +
      encodeRequest({ id: 16, cmd: "accept" }),
    20,
  );
  deepStrictEqual(
    Rig.replies(rig.drain().lines).map((r) => [r.re, r.ok]),
    [[10, true], [11, true], [12, true], [13, true], [14, true], [15, false], [
      16,
      false,
    ]],
  );
});

Deno.test("daemon core: a full send queue gets code queue-full; limits.queue sends never do (§5.1)", () => {
  const rig = chatting({ session: { maxQueue: 3 } });
  rig.drain();
  const limit = rig.core.session.config.maxQueue;
  for (let i = 0; i < limit; i++) rig.request({ cmd: "send", text: `m${i}` });
  ok(Rig.replies(rig.drain().lines).every((r) => r.ok));
  // One is in flight, so the queue takes one more; the next is refused.
  rig.request({ cmd: "send", text: "one more" });
  rig.request({ cmd: "send", text: "too many" });
  const [fits, refused] = Rig.replies(rig.drain().lines);
  strictEqual(fits.ok, true);
  deepStrictEqual(refused, {
    re: refused.re,
    ok: false,
    error:
      "Send queue is full (3 messages waiting): wait until some are delivered",
    code: "queue-full",
  });
});

Deno.test("daemon core: inviting the daemon's own IP on either of its ports is refused", () => {
  const rig = new Rig().connect();
  rig.drain();
  rig.request({ cmd: "invite", ip: OWN_IP, port: 7777 });
  rig.request({ cmd: "invite", ip: OWN_IP, port: 7778 });
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, []);
  deepStrictEqual(
    Rig.replies(lines).map((r) => r.ok ? "ok" : r.error),
    [
      `${OWN_IP}:7777 is this daemon: invite another user's daemon IP address`,
      `${OWN_IP}:7778 is this daemon: invite another user's daemon IP address`,
    ],
  );
  // Another port on the same IP is another daemon.
  rig.request({ cmd: "invite", ip: OWN_IP, port: 7787 }, 1);
  deepStrictEqual(rig.drain().peer, ["SYN 0"]);
});

Deno.test("daemon core: inviting a wildcard, broadcast, multicast or reserved address is refused", () => {
  const rig = new Rig().connect();
  rig.drain();
  const ips = [
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.251",
    "239.255.255.250",
    "240.0.0.1",
  ];
  for (const ip of ips) rig.request({ cmd: "invite", ip });
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, []);
  deepStrictEqual(
    Rig.replies(lines).map((r) => r.ok ? "ok" : r.error.split(",")[0]),
    [
      "0.0.0.0 is the wildcard address",
      "255.255.255.255 is the broadcast address",
      "224.0.0.251 is a multicast address",
      "239.255.255.250 is a multicast address",
      "240.0.0.1 is a reserved address (240.0.0.0/4)",
    ],
  );
  strictEqual(rig.core.session.phase, "idle");
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
  const rig = new Rig().connect();
  rig.drain();
  rig.request({ cmd: "accept" });
  deepStrictEqual(rig.drain().lines, [
    { re: 2, ok: false, error: "There is no invitation to accept" },
  ]);
});

Deno.test("daemon core: quit leaves the chat with FIN, is answered, and the connection is closed (§8.4)", () => {
  const rig = chatting();
  rig.drain();
  const id = rig.request({ cmd: "quit" }, 20);
  const { peer, lines, closed } = rig.drain();
  deepStrictEqual(peer, ["FIN 0"]);
  deepStrictEqual(lines, [{ re: id, ok: true }]);
  deepStrictEqual(closed, [1]);
  strictEqual(rig.core.session.phase, "closing");
  rig.closeClient(21);
  strictEqual(rig.core.link.client, undefined);
});

Deno.test("daemon core: quit keeps an invitation from someone else pending (§4.2)", () => {
  const rig = new Rig().connect();
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  rig.request({ cmd: "quit" }, 10);
  deepStrictEqual(rig.drain().peer, []);
  strictEqual(rig.core.session.phase, "invited");
});

Deno.test("daemon core: a client that goes away frees the slot at once; the chat goes on and what arrives is kept for the next client (§7.2, §4.9)", () => {
  const rig = chatting();
  rig.drain();
  rig.closeClient(20);
  strictEqual(rig.core.link.client, undefined);
  strictEqual(rig.core.session.phase, "established");
  rig.core.receivePeer(chat(0, "bob", "still there?"), PEER, 30);
  deepStrictEqual(rig.drain().peer, ["ACK 0"]);
  rig.connect(40, 2);
  deepStrictEqual(rig.drain().lines, [
    {
      re: 3,
      ok: true,
      v: 2,
      state: {
        phase: "established",
        peer: { ip: PEER.ip, port: 7777, name: "bob" },
      },
      limits: { queue: 64, text: MAX_PAYLOAD },
    },
    { event: { type: "message", name: "bob", text: "still there?" } },
  ]);
});

Deno.test("daemon core: with auto-accept, messages that arrive with no client are kept for the next hello (§4.9)", () => {
  const rig = new Rig({ session: { autoAccept: true } });
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  deepStrictEqual(rig.drain().peer, ["SYN+ACK 0"]);
  rig.core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 10);
  rig.core.receivePeer(chat(0, "bob", "are you there?"), PEER, 20);
  rig.core.receivePeer(chat(1, "bob", "ok, later"), PEER, 30);
  deepStrictEqual(rig.drain().peer, ["ACK 0", "ACK 1"]);
  rig.connect(40);
  deepStrictEqual(Rig.events(rig.drain().lines), [
    { type: "message", name: "bob", text: "are you there?" },
    { type: "message", name: "bob", text: "ok, later" },
  ]);
});

Deno.test("daemon core: stop ends the chat with one FIN at once, tells the client, closes it and finishes once that is written", () => {
  const rig = chatting();
  rig.drain();
  rig.paused = true;
  rig.core.stop(100);
  const { peer, lines, closed } = rig.drain();
  deepStrictEqual(peer, ["FIN 0"]);
  deepStrictEqual(lines, [
    {
      event: {
        type: "chat-closed",
        ip: PEER.ip,
        port: 7777,
        name: "bob",
        undelivered: 0,
      },
    },
    { event: { type: "daemon-stopping" } },
  ]);
  deepStrictEqual(closed, [1]);
  strictEqual(rig.core.session.phase, "idle");
  strictEqual(rig.core.finished(101), false);
  // The FIN's ACK is not waited for: peers are ignored while stopping.
  rig.core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 110);
  rig.core.receivePeer(control(Op.SYN, 0, "carol"), PEER, 111);
  deepStrictEqual(rig.drain().peer, []);
  strictEqual(rig.core.finished(111), false);
  rig.resume();
  strictEqual(rig.core.finished(120), true);
});

Deno.test("daemon core: stop sends its FIN at once even with messages unacknowledged, and reports them undelivered (§5.5, §6.1)", () => {
  const rig = chatting();
  rig.drain();
  rig.request({ cmd: "send", text: "one" }, 20);
  rig.request({ cmd: "send", text: "two" }, 21);
  deepStrictEqual(rig.drain().peer, ["CHAT 0 one"]);
  rig.core.stop(100);
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer.map((d) => d.split(" ")[0]), ["FIN"]);
  deepStrictEqual(Rig.events(lines), [
    {
      type: "chat-closed",
      ip: PEER.ip,
      port: 7777,
      name: "bob",
      undelivered: 2,
    },
    { type: "undelivered", id: 1, text: "one" },
    { type: "undelivered", id: 2, text: "two" },
    { type: "daemon-stopping" },
  ]);
  // Nothing is retransmitted.
  for (let now = 100; now < 600; now = rig.core.nextTimeout()!) {
    rig.core.tick(now);
    deepStrictEqual(rig.drain().peer, []);
  }
});

Deno.test("daemon core: stop while invited declines with one FIN and finishes at once without a client", () => {
  const rig = new Rig();
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  rig.drain();
  rig.core.stop(10);
  deepStrictEqual(rig.drain().peer, ["FIN 0"]);
  strictEqual(rig.core.finished(10), true);
});

Deno.test("daemon core: a hello while stopping is refused", () => {
  const rig = new Rig();
  rig.core.stop(10);
  rig.drain();
  rig.connect(11);
  const [reply] = Rig.replies(rig.drain().lines);
  ok(!reply.ok && /stopping/.test(reply.error), JSON.stringify(reply));
  // The command with this daemon's IP (the client writes it as its user
  // runs simp), not a bare "simp daemon".
  ok(
    !reply.ok && reply.error.endsWith(`\`simp daemon ${OWN_IP}\``),
    JSON.stringify(reply),
  );
  strictEqual(rig.core.finished(11), true);
});

Deno.test("daemon core: stop gives up after the grace period when the client reads nothing", () => {
  const rig = chatting();
  rig.drain();
  rig.paused = true;
  rig.core.stop(100);
  rig.drain();
  for (let now = 100; now < 600; now = rig.core.nextTimeout()!) {
    rig.core.tick(now);
    strictEqual(rig.core.finished(now), false);
  }
  strictEqual(rig.core.nextTimeout(), 600);
  strictEqual(rig.core.finished(600), true);
});

Deno.test("daemon core: peer-lost with 64 long undelivered messages reaches the client whole and in order (§5.5)", () => {
  const rig = chatting({ session: { maxRetries: 1 } });
  rig.drain();
  const texts = Array.from(
    { length: 64 },
    (_, i) => String(i % 10).repeat(MAX_PAYLOAD),
  );
  for (const text of texts) rig.request({ cmd: "send", text }, 20);
  rig.drain();
  for (let now = 20; rig.core.session.phase !== "idle";) {
    now = rig.core.nextTimeout()!;
    rig.core.tick(now);
  }
  const events = Rig.events(rig.drain().lines);
  const lost = events.findIndex((e) => e.type === "peer-lost");
  deepStrictEqual(events[lost], {
    type: "peer-lost",
    ip: PEER.ip,
    port: 7777,
    name: "bob",
    undelivered: 64,
  });
  deepStrictEqual(
    events.slice(lost + 1),
    texts.map((text, i) => ({ type: "undelivered", id: i + 1, text })),
  );
});

/** A peer that sends numbered messages as fast as they are ACKed. */
class TestPeer {
  next = 0;
  acked = 0;
  sentAt: number | undefined;
  readonly retry: number;
  readonly count: number;
  readonly size: number;

  constructor(count: number, options: { retry?: number; size?: number } = {}) {
    this.count = count;
    this.retry = options.retry ?? 500;
    this.size = options.size ?? 0;
  }

  get done(): boolean {
    return this.next >= this.count;
  }

  text(n: number): string {
    return `m${n}`.padEnd(this.size, ".");
  }

  /** Sends the message in flight when it is due. */
  step(core: DaemonCore, now: number): void {
    if (this.done) return;
    if (this.sentAt !== undefined && now < this.sentAt + this.retry) return;
    this.sentAt = now;
    const text = this.text(this.next);
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

/** Runs `peer` against the rig in 10 ms steps from `from` to `until` (or `stop()`). */
function runPeer(
  rig: Rig,
  peer: TestPeer,
  options: { from: number; until: number; stop?: () => boolean },
): { now: number; messages: string[]; maxBacklog: number } {
  const messages: string[] = [];
  let maxBacklog = 0;
  let now = options.from;
  for (; now < options.until && !options.stop?.(); now += 10) {
    if ((rig.core.nextTimeout() ?? Infinity) <= now) rig.core.tick(now);
    for (let i = 0; i < 50; i++) {
      const sent = peer.next;
      peer.step(rig.core, now);
      const moved = rig.drain();
      peer.receive(moved.peer);
      for (const event of Rig.events(moved.lines)) {
        if (event.type === "message") messages.push(event.text);
      }
      if (peer.next === sent) break;
    }
    maxBacklog = Math.max(maxBacklog, rig.core.link.backlog);
  }
  return { now, messages, maxBacklog };
}

Deno.test("daemon core: a client that reads nothing holds the peer back — no ACK once the backlog is over its limit — and gets every ACKed message once, in order, when it reads again (flow control)", () => {
  const limit = 10_000;
  const rig = chatting({ link: { backlogLimit: limit } });
  rig.drain();
  const peer = new TestPeer(500, { size: 1000 });
  rig.paused = true;
  const paused = runPeer(rig, peer, { from: 20, until: 5020 });
  // About limit / 1 kB messages were ACKed, then nothing more.
  ok(peer.acked >= 9 && peer.acked <= 11, `${peer.acked} ACKed`);
  strictEqual(rig.core.session.acceptingMessages, false);
  ok(rig.core.session.counters.backpressure >= 5);
  ok(paused.maxBacklog < limit + 1100, `backlog ${paused.maxBacklog}`);
  strictEqual(rig.core.link.wantsInput(1), false);
  // A duplicate of the last message ACKed is still ACKed (SPEC §5.3).
  const last = peer.acked - 1;
  rig.core.receivePeer(
    chat(last % 2 as Seq, "bob", peer.text(last)),
    PEER,
    5020,
  );
  deepStrictEqual(rig.drain().peer, [`ACK ${last % 2}`]);
  // The client reads again: every message, once, in order.
  rig.resume();
  const resumed = runPeer(rig, peer, {
    from: 5030,
    until: 600_000,
    stop: () => peer.done,
  });
  ok(peer.done, `${peer.next} sent`);
  deepStrictEqual(
    [...paused.messages, ...resumed.messages],
    Array.from({ length: 500 }, (_, i) => peer.text(i)),
  );
  strictEqual(rig.core.session.acceptingMessages, true);
});

Deno.test("daemon core: with no client connected, the events kept hold the peer back at their limit, and the next client gets every message (§4.9, §7.3)", () => {
  const rig = new Rig({
    session: { autoAccept: true },
    link: { keptLimit: 2000 },
  });
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  rig.core.receivePeer(control(Op.ACK, 0, "bob"), PEER, 10);
  rig.drain();
  const peer = new TestPeer(30, { size: 100 });
  runPeer(rig, peer, { from: 20, until: 3000 });
  const kept = rig.core.link.kept;
  strictEqual(peer.acked, kept);
  ok(kept >= 10 && kept <= 20, `${kept} kept`);
  rig.connect(3000);
  const messages = Rig.events(rig.drain().lines).flatMap((e) =>
    e.type === "message" ? [e.text] : []
  );
  const rest = runPeer(rig, peer, {
    from: 3000,
    until: 60_000,
    stop: () => peer.done,
  });
  deepStrictEqual(
    [...messages, ...rest.messages],
    Array.from({ length: 30 }, (_, i) => peer.text(i)),
  );
});

Deno.test("daemon core: an invitation whose SYN cannot be sent is given up at once with no-answer; other send failures are only logged (§4.6, §5.5)", () => {
  const rig = new Rig().connect();
  rig.drain();
  rig.request({ cmd: "invite", ip: PEER.ip });
  const syn = rig.core.takeActions().find((a) => a.type === "peer");
  ok(syn?.type === "peer");
  const error = new TypeError("Invalid argument (os error 22)");
  const records = captureLogs(() => {
    rig.core.peerSendFailed({ to: syn.to, datagram: syn.datagram, error }, 5);
  });
  strictEqual(rig.core.session.phase, "idle");
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, ["FIN 0"]); // the invitation is withdrawn
  deepStrictEqual(Rig.events(lines), [
    { type: "no-answer", ip: PEER.ip, port: 7777 },
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
  const other = chatting();
  other.drain();
  const later = captureLogs(() => {
    for (let i = 0; i < 5; i++) {
      other.core.peerSendFailed({
        to: PEER,
        datagram: decodeDatagram(chat(0, "alice", "hi")),
        error,
      }, 100 + i);
    }
  });
  strictEqual(other.core.session.phase, "established");
  deepStrictEqual(other.drain(), { peer: [], lines: [], closed: [] });
  strictEqual(later.filter((r) => r.level === "WARN").length, 1);
});

Deno.test("daemon core: a failed SYN reported after the invitation limit passed gives one no-answer, not two (§4.6)", () => {
  const rig = new Rig().connect();
  rig.drain();
  rig.request({ cmd: "invite", ip: PEER.ip });
  const syn = rig.core.takeActions().find((a) => a.type === "peer");
  ok(syn?.type === "peer");
  const error = new TypeError("Invalid argument (os error 22)");
  captureLogs(() => {
    rig.core.peerSendFailed(
      { to: syn.to, datagram: syn.datagram, error },
      rig.core.session.config.invitationLimit + 1,
    );
  });
  strictEqual(rig.core.session.phase, "idle");
  deepStrictEqual(
    Rig.events(rig.drain().lines).map((e) => e.type).filter((t) =>
      t === "no-answer"
    ),
    ["no-answer"],
  );
});

// ---------------------------------------------------------------------------
// Helpers for the real-socket tests

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

  /** Everything received so far, as SIMP datagrams. */
  takeAll(): string[] {
    const all = this.#queue.map(([bytes]) =>
      summary(decodeDatagram(bytes), { user: false })
    );
    this.#queue = [];
    return all;
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

/** A raw TCP client of the link: lines out, lines in, nothing else. */
class TcpClient {
  readonly conn: Deno.TcpConn;
  readonly lines: string[] = [];
  readonly events: LinkEvent[] = [];
  #splitter = new LineSplitter();
  #ended = false;
  #waiter: (() => void) | undefined;
  #reading = false;
  #nextId = 1;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects to the daemon's client port and starts reading (unless `read` is false). */
  static async open(daemon: Address, read = true): Promise<TcpClient> {
    const conn = await Deno.connect({ hostname: daemon.ip, port: daemon.port });
    const client = new TcpClient(conn);
    if (read) client.startReading();
    return client;
  }

  /** Whether the daemon closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  startReading(): void {
    if (this.#reading) return;
    this.#reading = true;
    void this.#read();
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(65_536);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        for (const item of this.#splitter.push(buffer.subarray(0, n))) {
          if (item.type === "line") this.lines.push(item.text);
        }
        this.#waiter?.();
      }
    } catch {
      // closed or reset
    }
    this.#ended = true;
    this.#waiter?.();
  }

  async write(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let written = 0;
    while (written < bytes.length) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  /** Sends a request; returns its id. */
  async send(command: Command): Promise<number> {
    const id = this.#nextId++;
    await this.write(encodeRequest({ id, ...command } as never));
    return id;
  }

  /** Sends a request and waits for its reply (events meanwhile are kept). */
  async request(command: Command, ms = 3000): Promise<Reply> {
    const id = await this.send(command);
    return await this.reply(id, ms);
  }

  /** The reply to request `id`. */
  async reply(id: number | null, ms = 3000): Promise<Reply> {
    for (;;) {
      const message = await this.message(ms);
      if ("event" in message) continue;
      if (message.re === id) return message;
    }
  }

  /** The next event of `type`. */
  async event(type: LinkEvent["type"], ms = 3000): Promise<LinkEvent> {
    for (;;) {
      const found = this.events.find((e) => e.type === type);
      if (found) return found;
      await this.message(ms);
    }
  }

  #taken = 0;

  /** The next message from the daemon (events are also recorded). */
  async message(ms = 3000): Promise<DaemonMessage> {
    const line = await this.nextLine(ms);
    const message = parseDaemonMessage(line);
    if ("event" in message) this.events.push(message.event);
    return message;
  }

  /** The next raw line. */
  async nextLine(ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.lines.length <= this.#taken) {
      if (this.#ended) throw new Error("The daemon closed the connection");
      await this.#wait(deadline, ms);
    }
    return this.lines[this.#taken++];
  }

  /** Waits until the daemon closes the connection. */
  async closed(ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.#ended) await this.#wait(deadline, ms);
  }

  async #wait(deadline: number, ms: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`Nothing from the daemon within ${ms} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#waiter = resolve;
      timer = setTimeout(resolve, left);
    });
    clearTimeout(timer);
    this.#waiter = undefined;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
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
      peer: { ip, port: options.port ?? PEER_PORT },
      client: { ip, port: options.clientPort ?? CLIENT_PORT },
    });
  } finally {
    abort.abort();
    strictEqual(await running, 0);
  }
}

/** Closes every connection of a flood (some the daemon closed already). */
function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // already closed
    }
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

/** The ports of a test daemon on `ip`, as `simp daemon` arguments. */
function daemonArgs(ip: string, ...more: string[]): string[] {
  return [
    ip,
    "--port",
    String(PEER_PORT),
    "--client-port",
    String(CLIENT_PORT),
    ...more,
  ];
}

// ---------------------------------------------------------------------------
// The real daemon: the link over TCP

Deno.test("daemon: hello over TCP gets version, state and limits; another version gets code version and the connection is closed (§9)", async () => {
  await withDaemon("127.0.90.10", {}, async (daemon) => {
    const alice = await TcpClient.open(daemon.client);
    try {
      deepStrictEqual(
        await alice.request({ cmd: "hello", v: 2, name: "alice" }),
        {
          re: 1,
          ok: true,
          v: 2,
          state: { phase: "idle" },
          limits: { queue: 64, text: MAX_PAYLOAD },
        },
      );
      deepStrictEqual(await alice.request({ cmd: "quit" }), {
        re: 2,
        ok: true,
      });
      await alice.closed();
    } finally {
      alice.close();
    }
    const old = await TcpClient.open(daemon.client);
    try {
      const reply = await old.request({ cmd: "hello", v: 3, name: "bob" });
      strictEqual(!reply.ok && reply.code, "version");
      await old.closed();
    } finally {
      old.close();
    }
  });
});

Deno.test("daemon: a second client gets the busy line naming the first and is closed; the first goes on (§7.2)", async () => {
  await withDaemon("127.0.90.11", {}, async (daemon) => {
    const first = await TcpClient.open(daemon.client);
    const second = await TcpClient.open(daemon.client);
    try {
      strictEqual(
        (await first.request({ cmd: "hello", v: 2, name: "alice" })).ok,
        true,
      );
      const line = await second.nextLine();
      const { port } = first.conn.localAddr as Deno.NetAddr;
      deepStrictEqual(JSON.parse(line), {
        re: null,
        ok: false,
        error:
          `Another client is connected to this daemon (127.0.0.1:${port}): quit it first`,
        code: "busy",
      });
      await second.closed();
      deepStrictEqual(
        await first.request({ cmd: "accept" }),
        { re: 2, ok: false, error: "There is no invitation to accept" },
      );
    } finally {
      first.close();
      second.close();
    }
  });
});

Deno.test("daemon: a flood of connections while the slot is held is turned away without a read buffer each; memory stays bounded (§7.2, §7.3)", async () => {
  const ip = "127.0.90.43";
  const daemon = await spawnDaemon(daemonArgs(ip, "--log-level", "error"));
  const holder = await TcpClient.open({ ip, port: CLIENT_PORT });
  const flood: Deno.TcpConn[] = [];
  try {
    strictEqual(
      (await holder.request({ cmd: "hello", v: 2, name: "alice" })).ok,
      true,
    );
    const rssBefore = await rssKiB(daemon.child.pid);
    // 1,500 connections open at once (bounded; far below the fd limit):
    // each is told busy and closed by the daemon.
    for (let i = 0; i < 1500; i++) {
      flood.push(await Deno.connect({ hostname: ip, port: CLIENT_PORT }));
    }
    const buffer = new Uint8Array(512);
    let busy = 0;
    for (const conn of flood.slice(-20)) {
      const n = await conn.read(buffer);
      if (n !== null) {
        const line = new TextDecoder().decode(buffer.subarray(0, n));
        if (line.includes('"code":"busy"')) busy++;
      }
    }
    strictEqual(busy, 20, "the last connections were told busy");
    const rssFlood = await rssKiB(daemon.child.pid);
    console.log(`RSS ${rssBefore} → ${rssFlood} kB`);
    // Measured: ~30 MiB (sockets, promises); with a 64 KiB read buffer for
    // each connection it was ~96 MiB.
    ok(
      rssFlood - rssBefore < 60 * 1024,
      `RSS grew by ${
        rssFlood - rssBefore
      } kB over 1,500 turned-away connections`,
    );
    // The holder still has the slot and is answered.
    deepStrictEqual(
      await holder.request({ cmd: "accept" }),
      { re: 2, ok: false, error: "There is no invitation to accept" },
    );
  } finally {
    closeAll(flood);
    holder.close();
    await daemon.stop();
  }
});

Deno.test("daemon: a flood of connections cannot use up its file descriptors: under ulimit -n 80, 300 at once leave it running and serving (§7.3)", async () => {
  const ip = "127.0.90.45";
  // Deno 2.9.6 panics when the process runs out of file descriptors (seen
  // when it logs the first refused client then): the daemon keeps at most
  // 32 client connections open, the rest wait in the kernel's listen queue.
  // At the default log level, as users run it.
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 80 && exec "$0" run -A mod.ts daemon ${
        daemonArgs(ip).join(" ")
      }`,
      Deno.execPath(),
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr: string[] = [];
  const reading = (async () => {
    for await (
      const chunk of child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      stderr.push(chunk);
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const flood: Deno.TcpConn[] = [];
  let holder: TcpClient | undefined;
  try {
    const started = Date.now();
    while (
      !stderr.join("").includes("listening") && Date.now() - started < 20_000
    ) {
      ok(!exited, stderr.join(""));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    holder = await TcpClient.open({ ip, port: CLIENT_PORT });
    strictEqual(
      (await holder.request({ cmd: "hello", v: 2, name: "alice" })).ok,
      true,
    );
    for (let i = 0; i < 300; i++) {
      flood.push(await Deno.connect({ hostname: ip, port: CLIENT_PORT }));
    }
    // Every one of them is turned away in turn, as room frees.
    const buffer = new Uint8Array(512);
    for (const conn of flood.slice(-5)) {
      const n = await conn.read(buffer);
      ok(n !== null, "a connection of the flood was told busy");
    }
    ok(!exited, `the daemon died: ${stderr.join("")}`);
    deepStrictEqual(
      await holder.request({ cmd: "accept" }),
      { re: 2, ok: false, error: "There is no invitation to accept" },
    );
  } finally {
    closeAll(flood);
    holder?.close();
    if (!exited) child.kill("SIGTERM");
    const { code } = await status;
    await reading;
    strictEqual(code, 0, stderr.join(""));
  }
});

Deno.test("daemon: a client that only closes its sending side still gets its replies, and the slot is free at once (§7.2)", async () => {
  await withDaemon("127.0.90.16", {}, async (daemon) => {
    const client = await TcpClient.open(daemon.client);
    try {
      await client.send({ cmd: "hello", v: 2, name: "alice" });
      await client.send({ cmd: "accept" });
      await client.conn.closeWrite();
      strictEqual((await client.reply(1)).ok, true);
      deepStrictEqual(await client.reply(2), {
        re: 2,
        ok: false,
        error: "There is no invitation to accept",
      });
      await client.closed();
      const next = await TcpClient.open(daemon.client);
      try {
        strictEqual(
          (await next.request({ cmd: "hello", v: 2, name: "bob" })).ok,
          true,
        );
      } finally {
        next.close();
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("daemon: every kind of bad line gets an error reply and the daemon goes on; a huge line closes the connection (§9)", async () => {
  await withDaemon("127.0.90.12", {}, async (daemon) => {
    const client = await TcpClient.open(daemon.client);
    try {
      const bad: (string | Uint8Array)[] = [
        "not json\n",
        "[1]\n",
        '{"id":"x","cmd":"hello"}\n',
        '{"id":2,"cmd":"frob"}\n',
        '{"id":3,"cmd":"invite","ip":[[[[[[]]]]]]}\n',
        '{"id":4,"cmd":"hello","v":2,"name":' + "[".repeat(50_000) +
        "]".repeat(50_000) + "}\n",
        '{"id":5,"cmd":"hello","v":2,"name":"x","__proto__":{"id":9}}\n'
          .replace('"name":"x"', '"name":12'),
        '{"id":6,"cmd":"send","text":"x","id2":1e999}\n',
        new Uint8Array([0x7b, 0xc3, 0x28, 0x7d, 0x0a]),
      ];
      for (const line of bad) await client.write(line);
      const replies: Reply[] = [];
      for (let i = 0; i < bad.length; i++) {
        replies.push((await client.message()) as Reply);
      }
      ok(replies.every((r) => !r.ok), JSON.stringify(replies));
      deepStrictEqual(replies.map((r) => r.re), [
        null,
        null,
        null,
        2,
        3,
        4,
        5,
        6,
        null,
      ]);
      // id 6 was a good send before hello: refused, not run.
      ok(!replies[7].ok && /^Say hello first/.test(replies[7].error));
      // Still alive.
      strictEqual(
        (await client.request({ cmd: "hello", v: 2, name: "alice" })).ok,
        true,
      );
      // Endless input without a newline: one error line, then closed.
      const chunk = new Uint8Array(65_536).fill(0x20);
      let sent = 0;
      const writer = (async () => {
        try {
          while (!client.ended && sent < 64 * MAX_LINE_BYTES) {
            sent += await client.conn.write(chunk);
          }
        } catch {
          // reset by the daemon: expected
        }
      })();
      const reply = await client.reply(null, 10_000);
      ok(!reply.ok && /^Line longer than 524288 bytes/.test(reply.error));
      await client.closed(10_000);
      await writer;
      ok(sent < 64 * MAX_LINE_BYTES, `${sent} bytes taken`);
    } finally {
      client.close();
    }
  });
});

Deno.test("daemon: a client killed with kill -9 frees the slot within 100 ms (§7.2)", async () => {
  await withDaemon("127.0.90.13", {}, async (daemon) => {
    const script = `
      const c = await Deno.connect({ hostname: "${daemon.client.ip}", port: ${daemon.client.port} });
      await c.write(new TextEncoder().encode('{"id":1,"cmd":"hello","v":2,"name":"doomed"}\\n'));
      const buf = new Uint8Array(4096);
      await c.read(buf);
      console.log("ready");
      await new Promise(() => setInterval(() => {}, 1000));
    `;
    const doomed = new Proc("doomed client", ["eval", script], {
      stdin: false,
    });
    try {
      await doomed.expect("ready");
      // The slot is taken.
      const early = await TcpClient.open(daemon.client);
      strictEqual((await early.reply(null)).ok, false);
      early.close();
      const killed = performance.now();
      let exited: number | undefined;
      doomed.status.then(() => exited = performance.now());
      doomed.kill("SIGKILL");
      let freedAfter: number | undefined;
      for (let attempt = 0; attempt < 200; attempt++) {
        const next = await TcpClient.open(daemon.client);
        try {
          await next.send({ cmd: "hello", v: 2, name: "alice" });
          // The hello reply, or the busy line while the slot is held.
          const reply = (await next.message()) as Reply;
          if (reply.ok) {
            freedAfter = performance.now() - killed;
            break;
          }
        } finally {
          next.close();
        }
      }
      ok(freedAfter !== undefined, "the slot was never freed");
      const afterExit = exited === undefined
        ? "?"
        : (killed + freedAfter - exited).toFixed(1);
      console.log(
        `slot freed ${
          freedAfter.toFixed(1)
        } ms after kill -9 (${afterExit} ms after the exit was seen)`,
      );
      // The target is 100 ms; the margin is for a loaded machine.
      ok(freedAfter < 500, `slot freed after ${freedAfter} ms`);
    } finally {
      await doomed.stop("SIGKILL");
    }
  });
});

Deno.test("daemon: a client that stops reading holds the peer back (no more ACKs), the daemon's memory stays bounded, and every ACKed message arrives when it reads again", async () => {
  const ip = "127.0.90.14";
  const daemon = await spawnDaemon(daemonArgs(ip, "--auto-accept"));
  const peer = new TestSocket("127.0.90.15");
  const daemonPeer = { ip, port: PEER_PORT };
  const client = await TcpClient.open({ ip, port: CLIENT_PORT }, false);
  const size = 60_000;
  const text = (n: number) => `m${n}`.padEnd(size, ".");
  try {
    await client.send({ cmd: "hello", v: 2, name: "alice" });
    await peer.send(control(Op.SYN, 0, "bob"), daemonPeer);
    strictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
    await peer.send(control(Op.ACK, 0, "bob"), daemonPeer);
    const rssBefore = await rssKiB(daemon.child.pid);
    // Stop-and-wait as fast as ACKs come; a message not ACKed within 100 ms
    // is sent again. The client reads nothing.
    let acked = 0;
    let unanswered = 0;
    const started = Date.now();
    while (unanswered < 10 && acked < 2000 && Date.now() - started < 30_000) {
      await peer.send(chat(acked % 2 as Seq, "bob", text(acked)), daemonPeer);
      try {
        const answer = await peer.nextDatagram(100);
        if (answer.text === `ACK ${acked % 2}`) {
          acked++;
          unanswered = 0;
        }
      } catch {
        unanswered++;
      }
    }
    ok(unanswered >= 10, `the daemon ACKed all of ${acked} messages`);
    ok(acked > 10, `only ${acked} ACKed`);
    const rssHeld = await rssKiB(daemon.child.pid);
    console.log(
      `${acked} messages of ${size} bytes ACKed before the daemon held the peer back; RSS ${rssBefore} → ${rssHeld} kB`,
    );
    // What waits for the client is bounded (1 MiB backlog plus the kernel's
    // buffers), far below what was sent and refused.
    ok(
      rssHeld - rssBefore < 64 * 1024,
      `RSS grew by ${rssHeld - rssBefore} kB`,
    );
    // The client reads again: every ACKed message, once, in order.
    client.startReading();
    for (let n = 0; n < acked; n++) {
      const event = await client.event("message", 10_000);
      deepStrictEqual(event, { type: "message", name: "bob", text: text(n) });
      client.events.length = 0;
    }
    // And the peer's next message is taken again.
    peer.takeAll();
    await peer.send(chat(acked % 2 as Seq, "bob", text(acked)), daemonPeer);
    strictEqual((await peer.nextDatagram(3000)).text, `ACK ${acked % 2}`);
    deepStrictEqual(await client.event("message"), {
      type: "message",
      name: "bob",
      text: text(acked),
    });
  } finally {
    client.close();
    await peer.close();
    await daemon.stop("SIGKILL");
  }
});

// ---------------------------------------------------------------------------
// The real daemon: SIMP on UDP

Deno.test("daemon: a SYN from an ephemeral port is answered to that port after the client accepts (§1.4, §4.2)", async () => {
  await withDaemon("127.0.90.21", {}, async (daemon) => {
    const peer = new TestSocket("127.0.90.22");
    const client = await TcpClient.open(daemon.client);
    try {
      deepStrictEqual(
        await client.request({ cmd: "hello", v: 2, name: "alice" }),
        {
          re: 1,
          ok: true,
          v: 2,
          state: { phase: "idle" },
          limits: { queue: 64, text: MAX_PAYLOAD },
        },
      );
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual(await client.event("invitation"), {
        type: "invitation",
        ip: "127.0.90.22",
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
      await client.closed();
      deepStrictEqual((await peer.nextDatagram()).text, "FIN 0");
    } finally {
      await peer.close();
      client.close();
    }
  });
});

Deno.test("daemon: a SYN while an invitation is pending gets the exact busy ERR, then FIN (§4.8)", async () => {
  await withDaemon("127.0.90.23", {}, async (daemon) => {
    const first = new TestSocket("127.0.90.24");
    const second = new TestSocket("127.0.90.25");
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

Deno.test("daemon: malformed datagrams on the peer port are never answered and do not crash it (§2)", async () => {
  await withDaemon("127.0.90.26", { autoAccept: true }, async (daemon) => {
    const peer = new TestSocket("127.0.90.27");
    try {
      for (
        const junk of [
          new Uint8Array(0),
          new Uint8Array([1, 2, 3]),
          new Uint8Array(39).fill(0xff),
          encoder.encode('{"id":1,"cmd":"hello"}'),
        ]
      ) {
        await peer.send(junk, daemon.peer);
      }
      await peer.nothingFor(50);
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
    } finally {
      await peer.close();
    }
  });
});

Deno.test("daemon: a duplicate chat datagram is re-ACKed and delivered once, kept for the client that says hello later (§5.3, §4.9)", async () => {
  await withDaemon("127.0.90.28", { autoAccept: true }, async (daemon) => {
    const peer = new TestSocket("127.0.90.29");
    let client: TcpClient | undefined;
    try {
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
      await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
      await peer.send(chat(0, "bob", "hello"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 0");
      await peer.send(chat(0, "bob", "hello"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 0");
      client = await TcpClient.open(daemon.client);
      const reply = await client.request({ cmd: "hello", v: 2, name: "al" });
      deepStrictEqual(reply.ok && "state" in reply && reply.state, {
        phase: "established",
        peer: { ip: "127.0.90.29", port: peer.address.port, name: "bob" },
      });
      await client.event("message");
      await new Promise((resolve) => setTimeout(resolve, 100));
      deepStrictEqual(client.lines.length, 2);
      deepStrictEqual(client.events, [
        { type: "message", name: "bob", text: "hello" },
      ]);
    } finally {
      await peer.close();
      client?.close();
    }
  });
});

Deno.test("daemon: an unacknowledged chat datagram is retransmitted with the same sequence after the timeout (§5.2)", async () => {
  await withDaemon(
    "127.0.90.30",
    { autoAccept: true, timeoutMs: 200 },
    async (daemon) => {
      const peer = new TestSocket("127.0.90.31");
      const client = await TcpClient.open(daemon.client);
      try {
        await client.request({ cmd: "hello", v: 2, name: "alice" });
        await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
        deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
        await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
        await client.event("chat-started");
        const sent = await client.request({ cmd: "send", text: "hi bob" });
        deepStrictEqual(sent, { re: 2, ok: true, msgId: 1 });
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
        client.close();
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
    await withDaemon("127.0.90.32", {}, async (daemon) => {
      const first = new TestSocket("127.0.90.33");
      const second = new TestSocket("127.0.90.34");
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
      ["127.0.90.33 → 127.0.90.32  SYN seq=0 user=bob", "127.0.90.32:47777"],
      [
        "127.0.90.34 → 127.0.90.32  SYN seq=0 user={carol}",
        "127.0.90.32:47777",
      ],
      [
        `127.0.90.32 → 127.0.90.34  ERR seq=0 user= "${BUSY_TEXT}"`,
        wire[2]?.properties.to,
      ],
      ["127.0.90.32 → 127.0.90.34  FIN seq=0 user=", wire[3]?.properties.to],
      // Stopping declines the pending invitation (§4.4).
      ["127.0.90.32 → 127.0.90.33  FIN seq=0 user=", wire[4]?.properties.to],
    ],
  );
  ok(wire.every((r) => r.level === "DEBUG"), JSON.stringify(wire[0]));
});

Deno.test("daemon: a port in use gives one clear line naming the command the user runs, exit code 1 (issue 8)", async () => {
  for (const option of ["--port", "--client-port"]) {
    const blocker = option === "--port"
      ? Deno.listenDatagram({
        hostname: "127.0.90.35",
        port: PEER_PORT,
        transport: "udp",
      })
      : Deno.listen({ hostname: "127.0.90.35", port: CLIENT_PORT });
    try {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "mod.ts", "daemon", ...daemonArgs("127.0.90.35")],
        cwd: ROOT,
        stdin: "null",
        env: { INIT_CWD: "" }, // not under deno task, whoever runs the test
      }).output();
      strictEqual(output.code, 1);
      const stderr = decoder.decode(output.stderr);
      const lines = stderr.trimEnd().split("\n");
      strictEqual(lines.length, 1, stderr);
      const port = option === "--port" ? PEER_PORT : CLIENT_PORT;
      ok(lines[0].includes(`port ${port} is in use`), stderr);
      ok(lines[0].includes(`lsof -i :${port}`), stderr);
      ok(lines[0].includes(option), stderr);
      // The fix as the user runs it (deno run here), never `simp daemon`.
      ok(
        lines[0].includes(
          `e.g. \`deno run -A mod.ts daemon 127.0.90.35 ${option} ${
            port + 10
          }\``,
        ),
        stderr,
      );
      ok(!lines[0].includes("simp daemon"), stderr);
    } finally {
      blocker.close();
    }
  }
});

Deno.test("daemon: --pcap without write access gives one clear line naming how to run it with --allow-write, exit code 1", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "mod.ts",
      "daemon",
      ...daemonArgs("127.0.90.44", "--pcap", "capture.pcap"),
    ],
    cwd: ROOT,
    stdin: "null",
    env: { INIT_CWD: ROOT.pathname }, // as under `deno task daemon`
  }).output();
  strictEqual(output.code, 1);
  const lines = decoder.decode(output.stderr).trimEnd().split("\n");
  deepStrictEqual(lines, [
    "simp: Cannot write the capture file capture.pcap: write access not granted — run with --allow-write (`deno task daemon` does not grant it: run `deno run --allow-net --allow-write mod.ts daemon …`)",
  ]);
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
  ok(
    lines[0].includes(`e.g. \`${currentInvocation().daemon} 127.0.0.2\``),
    lines[0],
  );
});

Deno.test("daemon: SIGTERM right after the listening line is a clean stop (exit 0)", async () => {
  for (let i = 0; i < 3; i++) {
    const daemon = await spawnDaemon(daemonArgs("127.0.90.38"));
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
    chat: { daemon: Proc; peer: TestSocket; client: TcpClient },
  ) => Promise<void>,
): Promise<void> {
  const daemon = await spawnDaemon(daemonArgs(ip, "--auto-accept"));
  const peer = new TestSocket(peerIp);
  const client = await TcpClient.open({ ip, port: CLIENT_PORT });
  const daemonPeer = { ip, port: PEER_PORT };
  try {
    await client.request({ cmd: "hello", v: 2, name: "alice" });
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
    client.close();
  }
}

Deno.test("daemon: SIGTERM in a chat sends FIN, tells the client, closes the connection and exits 0 promptly (§6.1)", async () => {
  await withChattingDaemon(
    "127.0.90.36",
    "127.0.90.37",
    async ({ daemon, peer, client }) => {
      const start = performance.now();
      daemon.kill("SIGTERM");
      deepStrictEqual((await peer.nextDatagram()).text, "FIN 0");
      await client.event("daemon-stopping");
      await client.closed();
      await daemon.exit();
      const elapsed = performance.now() - start;
      ok(elapsed < 2000, `exited ${elapsed} ms after SIGTERM`);
    },
  );
});

Deno.test("daemon: SIGTERM with a message unacknowledged sends FIN at once and reports the message undelivered (§5.5, §6.1)", async () => {
  await withChattingDaemon(
    "127.0.90.39",
    "127.0.90.40",
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
          ip: "127.0.90.40",
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

Deno.test("daemon: a max-size chat datagram of bytes ≥ 0x80 reaches the client whole, and the next message is not stuck behind it (§2.3, §9)", async () => {
  await withDaemon("127.0.90.41", { autoAccept: true }, async (daemon) => {
    const peer = new TestSocket("127.0.90.42");
    const client = await TcpClient.open(daemon.client);
    try {
      strictEqual(
        (await client.request({ cmd: "hello", v: 2, name: "alice" })).ok,
        true,
      );
      await peer.send(control(Op.SYN, 0, "bob"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "SYN+ACK 0");
      await peer.send(control(Op.ACK, 0, "bob"), daemon.peer);
      await client.event("chat-started");
      const big = rawChat(0, new Uint8Array(MAX_PAYLOAD).fill(0xff));
      strictEqual(big.length, 65_507);
      await peer.send(big, daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 0");
      await peer.send(chat(1, "bob", "and a short one"), daemon.peer);
      deepStrictEqual((await peer.nextDatagram()).text, "ACK 1");
      const first = await client.event("message");
      deepStrictEqual(first, {
        type: "message",
        name: "bob",
        text: "\uFFFD".repeat(MAX_PAYLOAD),
      });
      client.events.length = 0;
      deepStrictEqual(await client.event("message"), {
        type: "message",
        name: "bob",
        text: "and a short one",
      });
      strictEqual((await client.request({ cmd: "quit" })).ok, true);
      deepStrictEqual((await peer.nextDatagram()).text, "FIN 0");
    } finally {
      await peer.close();
      client.close();
    }
  });
});

// ---------------------------------------------------------------------------
// The link events of issue 8: progress, busy answers, a partner's restart

Deno.test("daemon core: each SYN retransmission of an invitation is an invite-retry event for the client (§4.5, §4.6)", () => {
  const rig = new Rig({ session: { invitationLimit: 3 * T } }).connect();
  rig.request({ cmd: "invite", ip: PEER.ip });
  rig.drain();
  rig.core.tick(T);
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, ["SYN 0"]);
  deepStrictEqual(Rig.events(lines), [
    {
      type: "invite-retry",
      ip: PEER.ip,
      port: 7777,
      attempt: 1,
      leftMs: 2 * T,
    },
  ]);
});

Deno.test("daemon core: an inviter answered busy while an invitation is pending is told to the client and logged at info (§4.8)", () => {
  const carol = { ip: "127.0.90.3", port: 7777 };
  const rig = new Rig().connect();
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 0);
  rig.drain();
  const records = captureLogs(() => {
    rig.core.receivePeer(control(Op.SYN, 0, "carol"), carol, 10);
  });
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, [`ERR 0 ${BUSY_TEXT}`, "FIN 0"]);
  deepStrictEqual(Rig.events(lines), [
    { type: "busy-answered", ip: carol.ip, port: 7777, name: "carol" },
  ]);
  const info = records.filter((r) =>
    r.level === "INFO" && r.properties.type === "busy-answered"
  );
  strictEqual(info.length, 1, JSON.stringify(records));
  strictEqual(info[0].properties.name, "carol");
});

Deno.test("daemon core: the partner's SYN long after the handshake is peer-reconnected for the client, answered SYN+ACK (§4.5)", () => {
  const rig = chatting();
  rig.drain();
  rig.core.receivePeer(control(Op.SYN, 0, "bob"), PEER, 10 + 3 * T);
  const { peer, lines } = rig.drain();
  deepStrictEqual(peer, ["SYN+ACK 0"]);
  deepStrictEqual(Rig.events(lines), [
    { type: "peer-reconnected", ip: PEER.ip, port: 7777, name: "bob" },
  ]);
});

Deno.test("daemon core: an invitation answered at once is chat-started with atOnce for the client", () => {
  const rig = new Rig().connect();
  rig.request({ cmd: "invite", ip: PEER.ip }, 0);
  rig.core.receivePeer(control(Op.SYN_ACK, 0, "bob"), PEER, 10);
  deepStrictEqual(Rig.events(rig.drain().lines), [
    {
      type: "chat-started",
      ip: PEER.ip,
      port: 7777,
      name: "bob",
      atOnce: true,
    },
  ]);
  const slow = new Rig().connect();
  slow.request({ cmd: "invite", ip: PEER.ip }, 0);
  slow.core.receivePeer(control(Op.SYN_ACK, 0, "bob"), PEER, 2000);
  deepStrictEqual(Rig.events(slow.drain().lines), [
    { type: "chat-started", ip: PEER.ip, port: 7777, name: "bob" },
  ]);
});
