/**
 * Conformance tests: the real `simp daemon`, started as a subprocess, checked
 * on the wire by an outside SIMP implementation. Expectations come from
 * the rules alone (§N, as numbered in docs/PROTOCOL.md, "Rules").
 *
 * The datagrams are built and read by a small codec written here from the
 * table of §2; it deliberately does not use `lib/wire/datagram.ts`, so that these
 * tests cross-check the project's codec. The daemon's user is driven through
 * its client port with the JSON link of `docs/PROTOCOL.md` (TCP, one object
 * per line).
 *
 * Addresses: test N runs its daemon on 127.0.81.(10·N) and its peers on
 * 127.0.81.(10·N + 1…5); nothing else uses 127.0.81.x.
 */

import { deepStrictEqual, fail, ok, strictEqual } from "node:assert/strict";
import { Proc } from "../tools/_processes.ts";

// ---------------------------------------------------------------------------
// Settings

/** The daemon's retransmission timeout (`--timeout 0.3`). */
const T = 300;
/** How long "no answer" is watched; loopback answers come within ms. */
const QUIET = 150;
/** Deadline for something that must arrive. */
const WAIT = 2000;
const SIMP_PORT = 7777;
const CLIENT_PORT = 7778;
const NET = "127.0.81.";
const BUSY_TEXT = "User already in another chat";
/** Our user name and the daemon's. */
const BOB = "bob";
const ALICE = "alice";

// ---------------------------------------------------------------------------
// An independent SIMP codec (§2)

const HEADER = 39;
const USER_FIELD = 32;
const CONTROL = 0x01;
const CHAT = 0x02;
const ERR = 0x01;
const SYN = 0x02;
const ACK = 0x04;
const SYN_ACK = 0x06;
const FIN = 0x08;
const CHAT_OP = 0x01;

/** One byte per character (char codes up to 0xFF), or the bytes as given. */
function raw(text: string | Uint8Array): Uint8Array {
  if (typeof text !== "string") return text;
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw new RangeError(`not a byte: ${text[i]}`);
    out[i] = code;
  }
  return out;
}

interface Fields {
  type: number;
  op: number;
  seq: number;
  /** The User field's bytes before the NUL padding. */
  user?: string | Uint8Array;
  payload?: string | Uint8Array;
  /** Overrides the Length field (for malformed datagrams). */
  length?: number;
}

/** Header (Type, Operation, Sequence, User NUL-padded, Length BE) + payload. */
function encode(f: Fields): Uint8Array {
  const user = raw(f.user ?? "");
  const payload = raw(f.payload ?? "");
  if (user.length > USER_FIELD) throw new RangeError("User over 32 bytes");
  const out = new Uint8Array(HEADER + payload.length);
  out[0] = f.type;
  out[1] = f.op;
  out[2] = f.seq;
  out.set(user, 3); // the rest of the field stays 0x00
  new DataView(out.buffer).setUint32(35, f.length ?? payload.length, false);
  out.set(payload, HEADER);
  return out;
}

function control(
  op: number,
  seq: number,
  user: string | Uint8Array,
  payload: string | Uint8Array = "",
): Uint8Array {
  return encode({ type: CONTROL, op, seq, user, payload });
}

function chat(
  seq: number,
  user: string | Uint8Array,
  text: string | Uint8Array,
): Uint8Array {
  return encode({ type: CHAT, op: CHAT_OP, seq, user, payload: text });
}

/** Byte-exact comparison with a readable message. */
function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const at = got.findIndex((b, i) => b !== want[i]);
  if (got.length === want.length && at < 0) return;
  const where = got.length !== want.length
    ? `${got.length} bytes instead of ${want.length}`
    : `first difference at offset ${at}`;
  fail(
    `${what}: ${where}\n  want ${describe(want)}\n       ${
      hex(want.subarray(0, 48))
    }\n  got  ${describe(got)}\n       ${hex(got.subarray(0, 48))}`,
  );
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const OP_NAMES: Record<number, string> = {
  [ERR]: "ERR",
  [SYN]: "SYN",
  [ACK]: "ACK",
  [SYN_ACK]: "SYN+ACK",
  [FIN]: "FIN",
};

/** A readable description of any bytes, for failure messages. */
function describe(bytes: Uint8Array): string {
  if (bytes.length < HEADER) return `<${bytes.length} bytes ${hex(bytes)}>`;
  const type = bytes[0];
  const op = bytes[1];
  const name = type === CHAT
    ? (op === CHAT_OP ? "CHAT" : `CHAT op=0x${op.toString(16)}`)
    : type === CONTROL
    ? OP_NAMES[op] ?? `op=0x${op.toString(16)}`
    : `type=0x${type.toString(16)}`;
  const userField = bytes.subarray(3, 3 + USER_FIELD);
  const nul = userField.indexOf(0);
  const user = String.fromCharCode(
    ...userField.subarray(0, nul < 0 ? USER_FIELD : nul),
  );
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(35);
  const body = bytes.subarray(HEADER);
  const payload = String.fromCharCode(...body.subarray(0, 60)) +
    (body.length > 60 ? "…" : "");
  return `${name} seq=${bytes[2]} user=${JSON.stringify(user)} len=${length}` +
    (payload ? ` ${JSON.stringify(payload)}` : "") +
    (length !== bytes.length - HEADER ? ` (${bytes.length} bytes)` : "");
}

// ---------------------------------------------------------------------------
// Waiting with deadlines

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wakes pollers when something arrived. */
class Signal {
  #waiters = new Set<() => void>();

  notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** `check()` as soon as it is defined, or `undefined` after `ms`. */
  async poll<R>(
    check: () => R | undefined,
    ms: number,
  ): Promise<R | undefined> {
    const deadline = performance.now() + ms;
    for (;;) {
      const result = check();
      if (result !== undefined) return result;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }
}

interface Addr {
  hostname: string;
  port: number;
}

interface Received {
  bytes: Uint8Array;
  from: Addr;
  /** `performance.now()` when it arrived. */
  at: number;
}

/** A raw UDP socket of an outside SIMP peer. */
class Peer {
  readonly conn: Deno.DatagramConn;
  readonly queue: Received[] = [];
  /** Everything ever received, for after-the-fact checks. */
  readonly all: Received[] = [];
  #signal = new Signal();
  #loop: Promise<void>;

  constructor(hostname: string, port: number) {
    this.conn = Deno.listenDatagram({ hostname, port, transport: "udp" });
    this.#loop = this.#receive();
  }

  get addr(): Addr {
    const { hostname, port } = this.conn.addr as Deno.NetAddr;
    return { hostname, port };
  }

  get label(): string {
    return `${this.addr.hostname}:${this.addr.port}`;
  }

  async #receive(): Promise<void> {
    for (;;) {
      let data: Uint8Array;
      let addr: Deno.Addr;
      try {
        [data, addr] = await this.conn.receive();
      } catch {
        return; // closed
      }
      const { hostname, port } = addr as Deno.NetAddr;
      const item = {
        bytes: data,
        from: { hostname, port },
        at: performance.now(),
      };
      this.queue.push(item);
      this.all.push(item);
      this.#signal.notify();
    }
  }

  async send(bytes: Uint8Array, to: Addr): Promise<void> {
    await this.conn.send(bytes, { transport: "udp", ...to });
  }

  /** The next datagram; fails after `ms`. */
  async next(ms = WAIT): Promise<Received> {
    const item = await this.#signal.poll(() => this.queue.shift(), ms);
    if (item === undefined) {
      fail(`${this.label}: nothing received within ${ms} ms`);
    }
    return item;
  }

  /** Watches for `ms` and fails if anything arrived. */
  async quiet(ms = QUIET, why = ""): Promise<void> {
    await sleep(ms);
    if (this.queue.length > 0) {
      fail(
        `${this.label} expected no datagram${
          why ? ` (${why})` : ""
        } but got: ` +
          this.queue.map((r) => describe(r.bytes)).join("; "),
      );
    }
  }

  async close(): Promise<void> {
    this.conn.close();
    await this.#loop;
  }
}

// ---------------------------------------------------------------------------
// The daemon's client port (docs/PROTOCOL.md)

type Json = Record<string, unknown>;

/**
 * A minimal client of the link (TCP, one JSON object per line), written
 * from docs/PROTOCOL.md alone.
 */
class ControlClient {
  readonly daemon: Addr;
  readonly events: Json[] = [];
  #conn: Promise<Deno.TcpConn>;
  #loops: Promise<void>[] = [];
  #replies = new Map<number, Json>();
  #signal = new Signal();
  #nextId = 1;
  #loop: Promise<void>;

  constructor(_hostname: string, daemon: Addr) {
    this.daemon = daemon;
    this.#conn = Deno.connect({ hostname: daemon.hostname, port: daemon.port });
    this.#loop = this.#receive();
  }

  /**
   * Closes the connection without quitting and connects again, until the
   * daemon has freed the slot; returns the new hello's reply.
   */
  async reconnect(name: string): Promise<Json> {
    for (let attempt = 0; attempt < 50; attempt++) {
      (await this.#conn).close();
      this.#loops.push(this.#loop);
      this.#replies.clear();
      this.#conn = Deno.connect({
        hostname: this.daemon.hostname,
        port: this.daemon.port,
      });
      this.#loop = this.#receive();
      const reply = await this.reply("hello", { v: 2, name });
      if (reply.ok === true) return reply;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    fail("the daemon never freed the slot");
  }

  async #receive(): Promise<void> {
    let conn: Deno.TcpConn;
    try {
      conn = await this.#conn;
    } catch {
      return; // not reachable: requests fail
    }
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65_536);
    let pending = "";
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        return; // closed
      }
      if (n === null) return;
      pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      let end: number;
      while ((end = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        let message: Json;
        try {
          message = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof message.event === "object" && message.event !== null) {
          this.events.push(message.event as Json);
        } else if (typeof message.re === "number") {
          this.#replies.set(message.re, message);
        } else if (message.re === null) {
          this.#replies.set(-1, message); // answers the request outstanding
        }
      }
      this.#signal.notify();
    }
  }

  /** Sends a command (retransmitted like a real client) and returns its ok reply. */
  async request(cmd: string, fields: Json = {}): Promise<Json> {
    const reply = await this.reply(cmd, fields);
    if (reply.ok !== true) fail(`${cmd} was refused: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Sends a command and returns its reply, whatever it is. */
  async reply(cmd: string, fields: Json = {}): Promise<Json> {
    const id = this.#nextId++;
    const conn = await this.#conn;
    const bytes = new TextEncoder().encode(
      JSON.stringify({ id, cmd, ...fields }) + "\n",
    );
    let written = 0;
    while (written < bytes.length) {
      written += await conn.write(bytes.subarray(written));
    }
    const reply = await this.#signal.poll(
      () => this.#replies.get(id) ?? this.#replies.get(-1),
      WAIT,
    );
    if (reply !== undefined) return reply;
    fail(`no reply to ${cmd}`);
  }

  /** The events of `type` so far. */
  of(type: string): Json[] {
    return this.events.filter((e) => e.type === type);
  }

  /** The `n`-th event of `type`, waiting for it. */
  async event(type: string, n = 1, ms = WAIT): Promise<Json> {
    const found = await this.#signal.poll(() => this.of(type)[n - 1], ms);
    if (found === undefined) {
      fail(
        `no ${type} event #${n} within ${ms} ms; events: ${
          JSON.stringify(this.events)
        }`,
      );
    }
    return found;
  }

  /** `[name, text]` of every message event. */
  messages(): [unknown, unknown][] {
    const joined: [unknown, unknown][] = [];
    for (const e of this.of("message")) joined.push([e.name, e.text]);
    return joined;
  }

  /** Waits until `n` whole messages have arrived. */
  async waitMessages(n: number, ms = WAIT): Promise<[unknown, unknown][]> {
    const all = await this.#signal.poll(
      () => this.messages().length >= n ? this.messages() : undefined,
      ms,
    );
    if (all === undefined) {
      fail(`${n} messages expected, got ${this.messages().length}`);
    }
    return all;
  }

  async close(): Promise<void> {
    try {
      (await this.#conn).close();
    } catch {
      // never connected, or already closed
    }
    await Promise.all([this.#loop, ...this.#loops]);
  }
}

// ---------------------------------------------------------------------------
// One scenario: a daemon subprocess, its connected client, peers

/** Starts the daemon on `ip`; resolves once it is listening. */
async function startDaemon(ip: string, args: string[]): Promise<Proc> {
  const daemon = new Proc(`daemon ${ip}`, [
    "run",
    "-A",
    "mod.ts",
    "daemon",
    ip,
    "--timeout",
    String(T / 1000),
    "--log-level",
    "debug",
    ...args,
  ], { stdin: false });
  try {
    await daemon.expect(/^simp daemon listening on /, {
      stream: "stderr",
      timeoutMs: 10_000,
    });
  } catch {
    await stopDaemon(daemon);
    fail(`the daemon did not start:\n${daemon.lines.stderr.join("\n")}`);
  }
  return daemon;
}

/**
 * Kills the daemon outright: its graceful stop is not part of SIMP (and a
 * SIGTERM sent right after the listening line can arrive before its signal
 * handler is installed).
 */
async function stopDaemon(daemon: Proc): Promise<void> {
  await daemon.stop("SIGKILL");
}

interface Scene {
  /** The daemon's address for SIMP (§1.1). */
  daemon: Addr;
  /** Its user, connected as `alice`. */
  client: ControlClient;
  /** A peer socket on 127.0.81.(base + n), port 7777 unless given (0: ephemeral). */
  peer(n: number, port?: number): Peer;
  /** The next datagram on `peer`: exactly `want`, from the daemon's 7777 (§1.4). */
  expect(peer: Peer, want: Uint8Array, what?: string): Promise<Received>;
}

async function scenario(
  base: number,
  args: string[],
  body: (scene: Scene) => Promise<void>,
  { connect = true } = {},
): Promise<void> {
  const ip = NET + base;
  const daemonAddr = { hostname: ip, port: SIMP_PORT };
  const daemon = await startDaemon(ip, args);
  const peers: Peer[] = [];
  const client = new ControlClient(ip, { hostname: ip, port: CLIENT_PORT });
  const scene: Scene = {
    daemon: daemonAddr,
    client,
    peer(n, port = SIMP_PORT) {
      const peer = new Peer(NET + (base + n), port);
      peers.push(peer);
      return peer;
    },
    async expect(peer, want, what) {
      const got = await peer.next();
      const label = what ?? describe(want);
      assertBytes(got.bytes, want, `${peer.label} expected ${label}`);
      deepStrictEqual(got.from, daemonAddr, `${label}: source address`);
      return got;
    },
  };
  try {
    if (connect) await client.request("hello", { v: 2, name: ALICE });
    await body(scene);
  } catch (error) {
    if (error instanceof Error) {
      const log = daemon.lines.stderr.slice(-60).join("\n");
      error.message += `\n--- daemon log (last lines) ---\n${log}`;
    }
    throw error;
  } finally {
    await stopDaemon(daemon);
    await client.close();
    for (const peer of peers) await peer.close();
  }
}

/** A datagram received on `peer` must be exactly `want` except for its Sequence, which must be 0 or 1. */
async function expectAnySeq(
  scene: Scene,
  peer: Peer,
  want: Uint8Array,
): Promise<Received> {
  const got = await peer.next();
  ok(
    got.bytes.length >= 3 && (got.bytes[2] === 0 || got.bytes[2] === 1),
    `Sequence 0 or 1 expected, got ${describe(got.bytes)}`,
  );
  const same = want.slice();
  same[2] = got.bytes[2];
  assertBytes(got.bytes, same, `${peer.label}`);
  deepStrictEqual(got.from, scene.daemon, "source address");
  return got;
}

/** The gap between two sendings of a retransmitted datagram is about T (§5.2). */
function assertTimeoutGap(first: Received, second: Received, what: string) {
  const gap = second.at - first.at;
  ok(
    gap >= 0.8 * T && gap <= 3 * T,
    `${what}: sent again after ${gap.toFixed(0)} ms, timeout is ${T} ms`,
  );
}

/** Peer at `peer` invites the auto-accepting daemon and completes the handshake (§4.3). */
async function establish(scene: Scene, peer: Peer): Promise<void> {
  await peer.send(control(SYN, 0, BOB), scene.daemon);
  await scene.expect(peer, control(SYN_ACK, 0, ALICE));
  await peer.send(control(ACK, 0, BOB), scene.daemon);
  await scene.client.event("chat-started");
}

/**
 * The undelivered messages reported with a `peer-lost`/`peer-left` event:
 * docs/PROTOCOL.md lists them in the event, or (newer) gives their number
 * and sends one `undelivered` event per message after it.
 */
async function undelivered(
  client: ControlClient,
  event: Json,
): Promise<unknown[]> {
  if (Array.isArray(event.undelivered)) return event.undelivered;
  const count = event.undelivered;
  ok(typeof count === "number", `undelivered: ${JSON.stringify(event)}`);
  if (count > 0) await client.event("undelivered", count);
  const at = client.events.indexOf(event);
  return client.events.slice(at + 1).filter((e) => e.type === "undelivered")
    .slice(0, count).map((e) => ({ id: e.id, text: e.text }));
}

/** The next datagram on `peer` has this Type, Operation and Sequence and no payload; the User field is not checked. */
async function expectHeader(
  scene: Scene,
  peer: Peer,
  type: number,
  op: number,
  seq: number,
): Promise<Received> {
  const got = await peer.next();
  ok(
    got.bytes.length === HEADER && got.bytes[0] === type &&
      got.bytes[1] === op && got.bytes[2] === seq,
    `want ${describe(encode({ type, op, seq }))}, got ${describe(got.bytes)}`,
  );
  deepStrictEqual(got.from, scene.daemon, "source address");
  return got;
}

/**
 * The daemon's phase, from the state in a hello reply: the link has no
 * other way to ask. The client closes its connection without quitting
 * (the chat goes on, §7.2) and says hello again on a new one.
 */
async function phase(client: ControlClient): Promise<unknown> {
  const reply = await client.reconnect(ALICE);
  return (reply.state as Json).phase;
}

// ---------------------------------------------------------------------------
// §4 Handshake

Deno.test("§4.1 §4.5 §3: the daemon's SYN, its ACK, its alternating chat datagrams and its ACKs are exact", async () => {
  await scenario(10, [], async (s) => {
    const p = s.peer(1);
    await s.client.request("invite", { ip: p.addr.hostname });
    const first = await s.expect(p, control(SYN, 0, ALICE), "SYN seq 0");
    strictEqual(first.bytes.length, 39, "a SYN is the bare 39-byte header");
    strictEqual(
      hex(first.bytes),
      "010200616c696365" + "00".repeat(27) + "00000000",
    );
    // §4.5: unanswered, the SYN is retransmitted every timeout, unchanged.
    const again = await s.expect(p, control(SYN, 0, ALICE), "SYN again");
    assertTimeoutGap(first, again, "SYN");
    await p.send(control(SYN_ACK, 0, BOB), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE), "handshake ACK seq 0");
    const started = await s.client.event("chat-started");
    deepStrictEqual(
      [started.ip, started.port, started.name],
      [p.addr.hostname, SIMP_PORT, BOB],
    );
    // §4.5: a duplicate SYN+ACK is answered with ACK again.
    await p.send(control(SYN_ACK, 0, BOB), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE), "ACK of a duplicate SYN+ACK");
    // §3.1: our direction alternates 0, 1, 0; §3.2: ACKs echo our Sequence.
    for (const text of ["one", "two", "three"]) {
      await s.client.request("send", { text });
    }
    let seq = 0;
    for (const text of ["one", "two", "three"]) {
      await s.expect(p, chat(seq, ALICE, text));
      await p.send(control(ACK, seq, BOB), s.daemon);
      seq = 1 - seq;
    }
    await s.client.event("delivered", 3);
    await p.send(chat(0, BOB, "hi"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE), "ACK echoing seq 0");
    await p.send(chat(1, BOB, "there"), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE), "ACK echoing seq 1");
    await s.client.event("message", 2);
    deepStrictEqual(s.client.messages(), [[BOB, "hi"], [BOB, "there"]]);
    await p.quiet();
  });
});

Deno.test("§1.4 §4.2 §4.3: a SYN from an ephemeral port waits for the user, duplicates change nothing, every answer goes to that port from 7777", async () => {
  await scenario(20, [], async (s) => {
    const e = s.peer(1, 0); // ephemeral port
    const catcher = s.peer(1); // the same IP's 7777: must get nothing
    await e.send(control(SYN, 0, BOB), s.daemon);
    const invitation = await s.client.event("invitation");
    deepStrictEqual(
      [invitation.ip, invitation.port, invitation.name],
      [e.addr.hostname, e.addr.port, BOB],
    );
    // §4.2: no answer until the user decides; §4.5: duplicates while pending
    // are not new invitations and not busy.
    await e.quiet(QUIET, "no answer before the user decides (§4.2)");
    await e.send(control(SYN, 0, BOB), s.daemon);
    await e.send(control(SYN, 0, BOB), s.daemon);
    await e.quiet(QUIET, "a duplicate SYN is not answered (§4.2, §4.5)");
    strictEqual(s.client.of("invitation").length, 1);
    await s.client.request("accept");
    const synAck = await s.expect(e, control(SYN_ACK, 0, ALICE), "SYN+ACK");
    // §4.5: SYN+ACK is retransmitted until the ACK or a chat datagram.
    const again = await s.expect(
      e,
      control(SYN_ACK, 0, ALICE),
      "SYN+ACK again",
    );
    assertTimeoutGap(synAck, again, "SYN+ACK");
    // §4.3: the first chat datagram implies the handshake ACK.
    await e.send(chat(0, BOB, "hello"), s.daemon);
    await s.expect(e, control(ACK, 0, ALICE));
    await s.client.event("chat-started");
    await s.client.event("message");
    deepStrictEqual(s.client.messages(), [[BOB, "hello"]]);
    await s.client.request("send", { text: "reply" });
    await s.expect(e, chat(0, ALICE, "reply"));
    await e.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered");
    // §3.3: after one chat datagram, the daemon's FIN carries Sequence 1.
    await s.client.request("leave");
    await s.expect(e, control(FIN, 1, ALICE));
    await e.send(control(ACK, 1, BOB), s.daemon);
    await s.client.event("chat-closed");
    await e.quiet();
    deepStrictEqual(catcher.all.map((r) => describe(r.bytes)), []);
  });
});

Deno.test("§1.4: when the invited daemon answers from another port, the chat goes on with that port", async () => {
  await scenario(30, [], async (s) => {
    const p = s.peer(1); // receives the SYN on 7777
    const e = s.peer(1, 0); // answers from an ephemeral port
    await s.client.request("invite", { ip: p.addr.hostname });
    await s.expect(p, control(SYN, 0, ALICE));
    await e.send(control(SYN_ACK, 0, BOB), s.daemon);
    await s.expect(e, control(ACK, 0, ALICE), "ACK to the answering port");
    const started = await s.client.event("chat-started");
    strictEqual(started.port, e.addr.port);
    await e.send(chat(0, BOB, "hey"), s.daemon);
    await s.expect(e, control(ACK, 0, ALICE));
    // §3.3: no chat datagram sent yet, so the daemon's FIN has Sequence 0.
    await s.client.request("leave");
    await s.expect(
      e,
      control(FIN, 0, ALICE),
      "FIN seq 0 to the answering port",
    );
    await e.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("chat-closed");
    await e.quiet();
    // The 7777 socket got the SYN (and maybe one retransmission), nothing else.
    ok(
      p.all.every((r) => hex(r.bytes) === hex(control(SYN, 0, ALICE))),
      p.all.map((r) => describe(r.bytes)).join("; "),
    );
  });
});

Deno.test("§4.7: crossed invitations: a SYN from the daemon being invited gets SYN+ACK, never busy", async () => {
  await scenario(40, [], async (s) => {
    const p = s.peer(1);
    await s.client.request("invite", { ip: p.addr.hostname });
    await s.expect(p, control(SYN, 0, ALICE));
    await p.send(control(SYN, 0, BOB), s.daemon);
    await s.expect(p, control(SYN_ACK, 0, ALICE), "SYN+ACK to a crossed SYN");
    await p.send(control(ACK, 0, BOB), s.daemon);
    const started = await s.client.event("chat-started");
    strictEqual(started.name, BOB);
    await p.send(chat(0, BOB, "crossed"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message");
    await p.quiet();
  });
});

Deno.test("§4.4: declining sends FIN seq 0 instead of SYN+ACK; once ACKed, nothing more", async () => {
  await scenario(50, [], async (s) => {
    const p = s.peer(1);
    await p.send(control(SYN, 0, BOB), s.daemon);
    await s.client.event("invitation");
    await s.client.request("decline");
    await s.expect(p, control(FIN, 0, ALICE), "FIN seq 0 (decline)");
    await p.send(control(ACK, 0, BOB), s.daemon);
    await p.quiet(T + QUIET, "the ACKed FIN is not retransmitted");
    strictEqual(await phase(s.client), "idle");
  });
});

// ---------------------------------------------------------------------------
// §4.8 Busy

/** The third address gets ERR (exact text and Length) then FIN, from 7777 (§4.8). */
async function expectBusy(s: Scene, third: Peer): Promise<void> {
  // The spec does not fix the Sequence of these two; all else is exact.
  const err = await expectAnySeq(s, third, control(ERR, 0, ALICE, BUSY_TEXT));
  strictEqual(err.bytes.length, 39 + 28);
  strictEqual(hex(err.bytes.subarray(35, 39)), "0000001c", "Length is 28");
  strictEqual(
    new TextDecoder().decode(err.bytes.subarray(39)),
    "User already in another chat",
  );
  await expectAnySeq(s, third, control(FIN, 0, ALICE));
  // The inviter ACKs the FIN (§4.8); that must change nothing here.
  await third.send(control(ACK, 0, "carol"), s.daemon);
  await third.quiet();
}

Deno.test("§4.8: a SYN from a third address during a chat gets ERR + FIN; the chat is unaffected", async () => {
  await scenario(60, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    const third = s.peer(2, 0);
    await establish(s, p);
    await third.send(control(SYN, 0, "carol"), s.daemon);
    await expectBusy(s, third);
    await p.quiet(0);
    await p.send(chat(0, BOB, "still here"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.request("send", { text: "me too" });
    await s.expect(p, chat(0, ALICE, "me too"));
    await p.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered");
    deepStrictEqual(s.client.messages(), [[BOB, "still here"]]);
    strictEqual(s.client.of("invitation").length, 1);
    strictEqual(await phase(s.client), "established");
  });
});

Deno.test("§4.8: a SYN from a third address while an invitation is pending gets ERR + FIN; the invitation stays", async () => {
  await scenario(70, [], async (s) => {
    const p = s.peer(1);
    const third = s.peer(2, 0);
    await p.send(control(SYN, 0, BOB), s.daemon);
    await s.client.event("invitation");
    await third.send(control(SYN, 0, "carol"), s.daemon);
    await expectBusy(s, third);
    await p.quiet(0, "the pending inviter is not answered");
    strictEqual(s.client.of("invitation").length, 1);
    await s.client.request("accept");
    await s.expect(p, control(SYN_ACK, 0, ALICE));
    await p.send(control(ACK, 0, BOB), s.daemon);
    strictEqual((await s.client.event("chat-started")).name, BOB);
    await p.send(chat(0, BOB, "hi"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
  });
});

Deno.test("§4.8: a SYN from a third address while inviting gets ERR + FIN; the invitation goes on", async () => {
  await scenario(80, [], async (s) => {
    const p = s.peer(1);
    const third = s.peer(2, 0);
    await s.client.request("invite", { ip: p.addr.hostname });
    await s.expect(p, control(SYN, 0, ALICE));
    await third.send(control(SYN, 0, "carol"), s.daemon);
    await expectBusy(s, third);
    await p.send(control(SYN_ACK, 0, BOB), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    strictEqual((await s.client.event("chat-started")).name, BOB);
    strictEqual(s.client.of("invitation").length, 0);
  });
});

// ---------------------------------------------------------------------------
// §5 Stop-and-wait

Deno.test("§5.2 §5.5: an unACKed chat datagram is resent unchanged every timeout, then one FIN after max retries", async () => {
  await scenario(90, ["--auto-accept", "--retries", "2"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    const { msgId } = await s.client.request("send", { text: "ping" });
    const sent = [await s.expect(p, chat(0, ALICE, "ping"), "CHAT")];
    for (const n of [1, 2]) {
      sent.push(
        await s.expect(p, chat(0, ALICE, "ping"), `retransmission ${n}`),
      );
      assertTimeoutGap(sent[n - 1], sent[n], `retransmission ${n}`);
    }
    // §5.5: after 2 retransmissions without an ACK, one FIN.
    const fin = await expectAnySeq(s, p, control(FIN, 0, ALICE));
    assertTimeoutGap(sent[2], fin, "FIN after the last retransmission");
    await p.quiet(2 * T + QUIET, "the FIN is sent once, nothing follows");
    deepStrictEqual(
      s.client.of("retransmitted").map((e) => [e.id, e.attempt]),
      [[msgId, 1], [msgId, 2]],
    );
    // §5.5: undelivered messages are reported back to the user.
    const lost = await s.client.event("peer-lost");
    deepStrictEqual(await undelivered(s.client, lost), [
      { id: msgId, text: "ping" },
    ]);
    strictEqual(s.client.of("delivered").length, 0);
  });
});

Deno.test("§5.3: a duplicate chat datagram is ACKed again and delivered once", async () => {
  await scenario(100, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    for (const [seq, text] of [[0, "hello"], [1, "world"]] as const) {
      await p.send(chat(seq, BOB, text), s.daemon);
      await s.expect(p, control(ACK, seq, ALICE));
      await p.send(chat(seq, BOB, text), s.daemon);
      await s.expect(p, control(ACK, seq, ALICE), `re-ACK of duplicate ${seq}`);
    }
    await p.send(chat(0, BOB, "third"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message", 3);
    await sleep(QUIET);
    deepStrictEqual(s.client.messages(), [
      [BOB, "hello"],
      [BOB, "world"],
      [BOB, "third"],
    ]);
  });
});

Deno.test("§5.4: an ACK with the wrong Sequence, or a late duplicate ACK, does not release the datagram in flight", async () => {
  await scenario(110, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    await s.client.request("send", { text: "m1" });
    const m1 = await s.expect(p, chat(0, ALICE, "m1"));
    await p.send(control(ACK, 1, BOB), s.daemon); // wrong Sequence
    const m1again = await s.expect(p, chat(0, ALICE, "m1"), "m1 resent");
    assertTimeoutGap(m1, m1again, "m1 after a wrong ACK");
    strictEqual(s.client.of("delivered").length, 0);
    await p.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered");
    await s.client.request("send", { text: "m2" });
    const m2 = await s.expect(p, chat(1, ALICE, "m2"));
    await p.send(control(ACK, 0, BOB), s.daemon); // late duplicate of m1's ACK
    const m2again = await s.expect(p, chat(1, ALICE, "m2"), "m2 resent");
    assertTimeoutGap(m2, m2again, "m2 after a duplicate ACK");
    strictEqual(s.client.of("delivered").length, 1);
    await p.send(control(ACK, 1, BOB), s.daemon);
    await s.client.event("delivered", 2);
    await s.client.request("send", { text: "m3" });
    await s.expect(p, chat(0, ALICE, "m3"));
    await p.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered", 3);
    await p.quiet();
  });
});

// ---------------------------------------------------------------------------
// §6 Teardown

Deno.test("§6.1 §6.2 §4.5: the peer's FIN is ACKed with its Sequence, a duplicate FIN is re-ACKed, a late SYN gets SYN+ACK", async () => {
  await scenario(120, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    // §4.5: a SYN from the partner after the chat is established.
    await p.send(control(SYN, 0, BOB), s.daemon);
    await s.expect(p, control(SYN_ACK, 0, ALICE), "SYN+ACK to a late SYN");
    await p.send(control(ACK, 0, BOB), s.daemon); // a duplicate handshake ACK
    await p.quiet(QUIET, "an ACK is never answered");
    await p.send(chat(0, BOB, "bye soon"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    // Our next chat bit is 1, so our FIN has Sequence 1 (§3.3).
    await p.send(control(FIN, 1, BOB), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE), "ACK echoing the FIN's seq 1");
    const left = await s.client.event("peer-left");
    strictEqual(left.name, BOB);
    await sleep(50);
    await p.send(control(FIN, 1, BOB), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE), "re-ACK of a duplicate FIN");
    await sleep(QUIET);
    strictEqual(s.client.of("peer-left").length, 1);
    strictEqual(await phase(s.client), "idle");
  });
});

Deno.test("§6.1 §3.3: the daemon's FIN carries its next chat sequence bit and is resent until ACKed", async () => {
  await scenario(130, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    await s.client.request("send", { text: "only" });
    await s.expect(p, chat(0, ALICE, "only"));
    await p.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered");
    await s.client.request("leave");
    const fin = await s.expect(p, control(FIN, 1, ALICE), "FIN seq 1");
    const again = await s.expect(p, control(FIN, 1, ALICE), "FIN resent");
    assertTimeoutGap(fin, again, "FIN");
    await p.send(control(ACK, 1, BOB), s.daemon);
    await s.client.event("chat-closed");
    await p.quiet(T + QUIET, "nothing after the FIN's ACK");
  });
});

// ---------------------------------------------------------------------------
// §2 Malformed datagrams

Deno.test("§2.1: malformed SYN-like datagrams are never answered; a valid SYN still is", async () => {
  await scenario(140, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    const syn = control(SYN, 0, BOB);
    const junk: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["1 byte", new Uint8Array([CONTROL])],
      ["38 bytes", syn.subarray(0, 38)],
      [
        "Length 1, no payload",
        encode({ type: CONTROL, op: SYN, seq: 0, user: BOB, length: 1 }),
      ],
      [
        "Length 0, 1 byte after",
        encode({
          type: CONTROL,
          op: SYN,
          seq: 0,
          user: BOB,
          payload: "x",
          length: 0,
        }),
      ],
      [
        "Length 2^32-1",
        encode({
          type: CONTROL,
          op: SYN,
          seq: 0,
          user: BOB,
          length: 0xffffffff,
        }),
      ],
      ...[0x00, 0x03, 0x80, 0xff].map((type): [string, Uint8Array] => [
        `type 0x${type.toString(16)}`,
        encode({ type, op: SYN, seq: 0, user: BOB }),
      ]),
      ...[0x00, 0x03, 0x05, 0x07, 0x09, 0x0a, 0x0c, 0x0e, 0x10, 0x82, 0xff].map(
        (op): [string, Uint8Array] => [
          `control op 0x${op.toString(16)}`,
          encode({ type: CONTROL, op, seq: 0, user: BOB }),
        ],
      ),
      ...[2, 3, 0x80, 0xff].map((seq): [string, Uint8Array] => [
        `SYN seq ${seq}`,
        encode({ type: CONTROL, op: SYN, seq, user: BOB }),
      ]),
      ["chat op 0x02", encode({ type: CHAT, op: SYN, seq: 0, user: BOB })],
      ["chat, empty name", chat(0, "", "x")],
    ];
    for (const [, bytes] of junk) await p.send(bytes, s.daemon);
    await p.quiet(2 * QUIET, "malformed datagrams are never answered");
    strictEqual(s.client.of("invitation").length, 0);
    strictEqual(await phase(s.client), "idle");
    // Still working: a valid SYN is accepted (auto-accept).
    await establish(s, p);
    await p.send(chat(0, BOB, "ok"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message");
  });
});

Deno.test("§2.1 §2.2: malformed datagrams during a chat are neither ACKed nor delivered nor fatal", async () => {
  await scenario(150, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    const junk: Uint8Array[] = [
      chat(0, "", "empty name"),
      chat(0, "   ", "spaces-only name"), // empty after trimming (§2.2)
      chat(0, "\0bob", "name after a NUL"), // the name ends at the first NUL
      encode({ type: CHAT, op: CHAT_OP, seq: 2, user: BOB, payload: "seq 2" }),
      encode({
        type: CHAT,
        op: CHAT_OP,
        seq: 0,
        user: BOB,
        payload: "abc",
        length: 10,
      }),
      encode({
        type: CHAT,
        op: CHAT_OP,
        seq: 0,
        user: BOB,
        payload: "abc",
        length: 2,
      }),
      encode({ type: CHAT, op: 0x00, seq: 0, user: BOB, payload: "op 0" }),
      encode({ type: CHAT, op: 0x04, seq: 0, user: BOB, payload: "op 4" }),
      encode({ type: CONTROL, op: FIN, seq: 2, user: BOB }), // FIN seq 2
      encode({ type: CONTROL, op: FIN, seq: 0, user: BOB, length: 5 }),
      chat(0, BOB, "truncated").subarray(0, 38),
    ];
    for (const bytes of junk) await p.send(bytes, s.daemon);
    await p.quiet(2 * QUIET, "malformed datagrams are never answered");
    deepStrictEqual(s.client.messages(), []);
    strictEqual(await phase(s.client), "established");
    await p.send(chat(0, BOB, "valid"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message");
    deepStrictEqual(s.client.messages(), [[BOB, "valid"]]);
  });
});

// ---------------------------------------------------------------------------
// Sloppy peers: liberal in what is accepted, never delivered twice

Deno.test("§2.2 §2.4: space-padded names are trimmed; bytes after the NUL and payloads on SYN/ACK/FIN are ignored", async () => {
  await scenario(160, [], async (s) => {
    const p = s.peer(1);
    const spaced = BOB + " ".repeat(USER_FIELD - BOB.length); // no NUL at all
    await p.send(control(SYN, 0, spaced, "please ignore"), s.daemon);
    const invitation = await s.client.event("invitation");
    strictEqual(invitation.name, BOB);
    await s.client.request("accept");
    await s.expect(p, control(SYN_ACK, 0, ALICE));
    await p.send(control(ACK, 0, "bob   ", "junk"), s.daemon);
    strictEqual((await s.client.event("chat-started")).name, BOB);
    await p.send(chat(0, "bob  \0\x01garbage", "hi"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message");
    deepStrictEqual(s.client.messages(), [[BOB, "hi"]]);
    await p.send(control(FIN, 1, spaced, "goodbye"), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE), "ACK of a FIN with a payload");
    strictEqual((await s.client.event("peer-left")).name, BOB);
  });
});

Deno.test("§2.4: a SYN+ACK with a payload and a space-padded name is accepted", async () => {
  await scenario(170, [], async (s) => {
    const p = s.peer(1);
    await s.client.request("invite", { ip: p.addr.hostname });
    await s.expect(p, control(SYN, 0, ALICE));
    await p.send(control(SYN_ACK, 0, "bob    ", "extra"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    strictEqual((await s.client.event("chat-started")).name, BOB);
    // §2.3: a byte ≥ 0x80 in a name is shown as U+FFFD too.
    await p.send(chat(0, "b\xe9b", "hi"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    deepStrictEqual(await s.client.waitMessages(1), [["b\uFFFDb", "hi"]]);
  });
});

Deno.test("§5.3 §2.3 §5.4: a first chat datagram with Sequence 1 is delivered once, bytes ≥ 0x80 become U+FFFD, duplicate ACKs are ignored", async () => {
  await scenario(180, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    // A peer with one counter for everything: its first chat datagram has 1.
    await p.send(chat(1, BOB, "first"), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE));
    await p.send(chat(1, BOB, "first"), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE), "re-ACK of the duplicate");
    await p.send(
      chat(0, BOB, new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80, 0xff])),
      s.daemon,
    );
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message", 2);
    await sleep(QUIET);
    deepStrictEqual(s.client.messages(), [
      [BOB, "first"],
      [BOB, "caf\uFFFD \uFFFD\uFFFD"],
    ]);
    // Duplicate ACKs: one delivery, no answer, no release of the next.
    await s.client.request("send", { text: "m1" });
    await s.expect(p, chat(0, ALICE, "m1"));
    await p.send(control(ACK, 0, BOB), s.daemon);
    await p.send(control(ACK, 0, BOB), s.daemon);
    await p.send(control(ACK, 0, BOB), s.daemon);
    await p.quiet(QUIET, "ACKs are never answered");
    await sleep(QUIET);
    strictEqual(s.client.of("delivered").length, 1);
    await s.client.request("send", { text: "m2" });
    await s.expect(p, chat(1, ALICE, "m2"));
    await p.send(control(ACK, 1, BOB), s.daemon);
    await s.client.event("delivered", 2);
  });
});

// ---------------------------------------------------------------------------
// §7.1 Third addresses

Deno.test("§7.1: chat datagrams, ACKs and FINs from a third address (or the peer's IP on another port) are ignored", async () => {
  await scenario(190, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    const others = [s.peer(2), s.peer(1, 0)]; // another IP; same IP, other port
    await establish(s, p);
    await s.client.request("send", { text: "m1" });
    const m1 = await s.expect(p, chat(0, ALICE, "m1"));
    for (const other of others) {
      await other.send(control(ACK, 0, BOB), s.daemon);
      await other.send(chat(0, BOB, "intruder"), s.daemon);
      await other.send(chat(1, BOB, "intruder"), s.daemon);
      await other.send(control(FIN, 0, BOB), s.daemon);
      await other.send(control(FIN, 1, BOB), s.daemon);
    }
    // The third ACK did not release m1: it is resent after the timeout.
    const again = await s.expect(p, chat(0, ALICE, "m1"), "m1 resent");
    assertTimeoutGap(m1, again, "m1");
    for (const other of others) await other.quiet(0, "third address");
    strictEqual(s.client.of("delivered").length, 0);
    deepStrictEqual(s.client.messages(), []);
    strictEqual(await phase(s.client), "established");
    await p.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered");
    await p.send(chat(0, BOB, "real"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    await s.client.event("message");
    deepStrictEqual(s.client.messages(), [[BOB, "real"]]);
    for (const other of others) await other.quiet(0, "third address");
  });
});

// ---------------------------------------------------------------------------
// More of §2.5, §4

Deno.test("§4.4 §4.8: as the inviter, a FIN is ACKed and told as declined; ERR + FIN is told as busy, the FIN ACKed", async () => {
  await scenario(200, [], async (s) => {
    const p = s.peer(1);
    const q = s.peer(2);
    await s.client.request("invite", { ip: p.addr.hostname });
    await s.expect(p, control(SYN, 0, ALICE));
    await p.send(control(FIN, 0, BOB), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE), "ACK of the declining FIN");
    strictEqual((await s.client.event("declined")).name, BOB);
    strictEqual(await phase(s.client), "idle");
    await s.client.request("invite", { ip: q.addr.hostname });
    await s.expect(q, control(SYN, 0, ALICE));
    await q.send(control(ERR, 0, "carol", BUSY_TEXT), s.daemon);
    await q.send(control(FIN, 0, "carol"), s.daemon);
    await s.expect(q, control(ACK, 0, ALICE), "ACK of the busy FIN");
    strictEqual((await s.client.event("busy")).text, BUSY_TEXT);
    strictEqual(await phase(s.client), "idle");
    await p.quiet(T + QUIET, "no SYN after the decline");
    await q.quiet(0, "no SYN after the busy answer");
  });
});

Deno.test("§2.5 §2.3: the largest datagram (65,507 bytes) is taken and sent; a longer message is refused", async () => {
  await scenario(210, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await establish(s, p);
    const max = 65_507 - HEADER;
    const big = "y".repeat(max);
    await p.send(chat(0, BOB, big), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE), "ACK of the largest datagram");
    const high = new Uint8Array(max).map((_, i) => 0x80 + i % 0x80);
    await p.send(chat(1, BOB, high), s.daemon);
    await s.expect(p, control(ACK, 1, ALICE), "ACK of the largest, ≥ 0x80");
    const [[name1, text1], [name2, text2]] = await s.client.waitMessages(2);
    deepStrictEqual([name1, name2], [BOB, BOB]);
    ok(text1 === big, `text of ${String(text1).length} characters`);
    ok(text2 === "\uFFFD".repeat(max), `text of ${String(text2).length}`);
    const text = "z".repeat(max);
    await s.client.request("send", { text });
    const sent = await s.expect(p, chat(0, ALICE, text), "largest CHAT");
    strictEqual(sent.bytes.length, 65_507);
    await p.send(control(ACK, 0, BOB), s.daemon);
    await s.client.event("delivered");
    const refused = await s.client.reply("send", { text: text + "z" });
    strictEqual(refused.ok, false, JSON.stringify(refused).slice(0, 200));
    await p.quiet();
  });
});

Deno.test("§4.2: an invitation that arrives before any client connects stays pending, unanswered, and shows on connect", async () => {
  await scenario(220, [], async (s) => {
    const p = s.peer(1);
    await p.send(control(SYN, 0, BOB), s.daemon);
    await p.quiet(QUIET, "no answer while no client is connected");
    const reply = await s.client.request("hello", { v: 2, name: ALICE });
    const state = reply.state as Json;
    strictEqual(state.phase, "invited", JSON.stringify(state));
    strictEqual((state.peer as Json).name, BOB, JSON.stringify(state));
    await p.quiet(0, "no answer before the user decides");
    await s.client.request("accept");
    await s.expect(p, control(SYN_ACK, 0, ALICE));
    await p.send(control(ACK, 0, BOB), s.daemon);
    await p.send(chat(0, BOB, "hi"), s.daemon);
    await s.expect(p, control(ACK, 0, ALICE));
    deepStrictEqual(await s.client.waitMessages(1), [[BOB, "hi"]]);
  }, { connect: false });
});

Deno.test("§4.9: with auto-accept and no client, the chat is accepted and its messages are kept for the next client", async () => {
  await scenario(230, ["--auto-accept"], async (s) => {
    const p = s.peer(1);
    await p.send(control(SYN, 0, BOB), s.daemon);
    // No client has given a user name yet: the User field is not checked.
    await expectHeader(s, p, CONTROL, SYN_ACK, 0);
    await p.send(control(ACK, 0, BOB), s.daemon);
    await p.send(chat(0, BOB, "while you were away"), s.daemon);
    await expectHeader(s, p, CONTROL, ACK, 0);
    await p.send(chat(1, BOB, "and again"), s.daemon);
    await expectHeader(s, p, CONTROL, ACK, 1);
    const reply = await s.client.request("hello", { v: 2, name: ALICE });
    strictEqual((reply.state as Json).phase, "established");
    deepStrictEqual(await s.client.waitMessages(2), [
      [BOB, "while you were away"],
      [BOB, "and again"],
    ]);
    await s.client.request("send", { text: "back" });
    await s.expect(p, chat(0, ALICE, "back"));
  }, { connect: false });
});
