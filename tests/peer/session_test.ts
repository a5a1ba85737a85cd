// Rule tests of the protocol engine (SPEC §3–§7), in virtual time: every
// `now` below is a number of milliseconds that the test chooses.

import assert from "node:assert/strict";
import { BUSY_TEXT, type Datagram, Op } from "../../lib/wire/datagram.ts";
import {
  type Action,
  AT_ONCE_MS,
  MAX_BUSY_REPORTS,
  Session,
  type SessionConfig,
  SessionError,
  type SessionEvent,
} from "../../lib/peer/session.ts";
import type { Address } from "../../lib/address.ts";
import { chat, control, summary } from "../support/datagrams.ts";

const A: Address = { ip: "127.0.77.1", port: 7777 };
const B: Address = { ip: "127.0.77.2", port: 7777 };
const C: Address = { ip: "127.0.77.3", port: 7777 };
const T = 5000; // the spec's default timeout

interface Sent {
  to: Address;
  d: Datagram;
  bytes: Uint8Array;
}

/** Events a session produced while {@linkcode pass} forwarded its datagrams. */
const unseen = new WeakMap<Session, SessionEvent[]>();

/** What a session did since the last look. */
function drain(s: Session): { sent: Sent[]; events: SessionEvent[] } {
  const sent: Sent[] = [];
  const events: SessionEvent[] = unseen.get(s) ?? [];
  unseen.delete(s);
  for (const action of s.takeActions() as Action[]) {
    if (action.type === "transmit") {
      sent.push({ to: action.to, d: action.datagram, bytes: action.bytes });
    } else if (action.type === "event") {
      events.push(action.event);
    }
  }
  return { sent, events };
}

/** A short text per datagram, e.g. `SYN 0 alice`, `CHAT 1 bob hi`, `ERR 0 bob …`. */
function show(sent: Sent[]): string[] {
  return sent.map(({ d }) => summary(d));
}

function eventTypes(events: SessionEvent[]): string[] {
  return events.map((e) => e.type);
}

function newPair(config: Partial<SessionConfig> = {}) {
  const a = new Session({ userName: "alice", ...config });
  const b = new Session({ userName: "bob", ...config });
  return { a, b };
}

/** Passes every datagram `from` sent to `to`, returning what was passed. */
function pass(
  from: Session,
  fromAddr: Address,
  to: Session,
  now: number,
): Sent[] {
  const { sent, events } = drain(from);
  unseen.set(from, events); // kept for the next drain
  for (const s of sent) to.receive(s.bytes, fromAddr, now);
  return sent;
}

/** alice invites bob at t = 0; her SYN reaches bob at t = 10. */
function invited(config: Partial<SessionConfig> = {}) {
  const { a, b } = newPair(config);
  a.invite(B, 0);
  pass(a, A, b, 10); // SYN
  return { a, b };
}

/** alice invites bob, bob accepts, the handshake completes; t = 100 after. */
function established(config: Partial<SessionConfig> = {}) {
  const { a, b } = invited(config);
  drain(b);
  b.accept(20);
  pass(b, B, a, 30); // SYN+ACK
  pass(a, A, b, 40); // ACK
  drain(a);
  drain(b);
  assert.equal(a.phase, "established");
  assert.equal(b.phase, "established");
  return { a, b };
}

Deno.test("§3 sequence bits alternate per direction; ACK echoes; FIN takes the next bit", () => {
  const { a, b } = established();
  const seqs: number[] = [];
  for (let i = 0; i < 3; i++) {
    a.send(`m${i}`, 100 + i * 10);
    const sent = pass(a, A, b, 101 + i * 10);
    seqs.push(sent[0].d.seq);
    const acks = pass(b, B, a, 102 + i * 10);
    assert.deepEqual(show(acks), [`ACK ${sent[0].d.seq} bob`]);
  }
  assert.deepEqual(seqs, [0, 1, 0]);
  // bob's direction starts at 0 on its own (§3.1)
  b.send("x", 200);
  assert.equal(drain(b).sent[0].d.seq, 0);
  a.leave(300);
  assert.deepEqual(show(drain(a).sent), ["FIN 1 alice"]);
});

Deno.test("§4.1 SYN goes to ip:7777 with Sequence 0 and the user's name", () => {
  const a = new Session({ userName: "alice" });
  a.invite(B, 0);
  const { sent } = drain(a);
  assert.deepEqual(sent.map((s) => s.to), [B]);
  assert.deepEqual(show(sent), ["SYN 0 alice"]);
});

Deno.test("§4.2 the invited daemon records the invitation and does not answer", () => {
  const b = new Session({ userName: "bob" });
  b.receive(control(Op.SYN, 0, "alice"), A, 0);
  const { sent, events } = drain(b);
  assert.deepEqual(sent, []);
  assert.deepEqual(events, [{ type: "invitation", peer: A, name: "alice" }]);
  assert.equal(b.phase, "invited");
});

Deno.test("§4.5 SYN is retransmitted every timeout while waiting for the decision", () => {
  const a = new Session({ userName: "alice" });
  a.invite(B, 0);
  drain(a);
  assert.equal(a.nextTimeout(), T);
  a.tick(T - 1);
  assert.deepEqual(drain(a).sent, []);
  a.tick(T);
  assert.deepEqual(show(drain(a).sent), ["SYN 0 alice"]);
  assert.equal(a.nextTimeout(), 2 * T);
});

Deno.test("§4.5 a decision after several SYN retransmissions: one notification, no busy answer", () => {
  const { a, b } = newPair();
  a.invite(B, 0);
  pass(a, A, b, 1);
  for (let k = 1; k <= 4; k++) {
    a.tick(k * T);
    const { sent, events } = { sent: pass(a, A, b, k * T + 1), events: [] };
    assert.deepEqual(show(sent), ["SYN 0 alice"]);
    assert.deepEqual(events, []);
  }
  const { sent, events } = drain(b);
  assert.deepEqual(sent, [], "no busy answer to the inviter's own SYN");
  assert.deepEqual(eventTypes(events), ["invitation"], "one notification");
  b.accept(4 * T + 100);
  assert.deepEqual(show(pass(b, B, a, 4 * T + 110)), ["SYN+ACK 0 bob"]);
  assert.deepEqual(show(pass(a, A, b, 4 * T + 120)), ["ACK 0 alice"]);
  assert.equal(a.phase, "established");
  assert.equal(b.phase, "established");
});

Deno.test("§4.3 accept: SYN+ACK, the inviter ACKs, both sides are told the chat started", () => {
  const { a, b } = invited();
  drain(b);
  b.accept(20);
  assert.equal(b.phase, "accepting");
  pass(b, B, a, 30);
  const ack = drain(a);
  assert.deepEqual(show(ack.sent), ["ACK 0 alice"]);
  assert.deepEqual(ack.events, [{
    type: "chat-started",
    peer: B,
    name: "bob",
    atOnce: true, // answered 30 ms after the SYN: nobody read it that fast
  }]);
  b.receive(ack.sent[0].bytes, A, 40);
  assert.deepEqual(drain(b).events, [
    { type: "chat-started", peer: A, name: "alice" },
  ]);
});

Deno.test("§4.5 SYN+ACK lost: the accepting side retransmits it after the timeout", () => {
  const { a, b } = invited();
  b.accept(20);
  drain(b); // the SYN+ACK is lost
  b.tick(20 + T - 1);
  assert.deepEqual(drain(b).sent, []);
  b.tick(20 + T);
  assert.deepEqual(show(pass(b, B, a, 20 + T + 10)), ["SYN+ACK 0 bob"]);
  pass(a, A, b, 20 + T + 20);
  assert.equal(b.phase, "established");
});

Deno.test("§4.5 a duplicate SYN+ACK is answered with ACK again", () => {
  const { a, b } = invited();
  b.accept(20);
  const synAck = drain(b).sent[0];
  a.receive(synAck.bytes, B, 30);
  assert.deepEqual(show(drain(a).sent), ["ACK 0 alice"]); // lost
  a.receive(synAck.bytes, B, 20 + T + 10);
  const again = drain(a);
  assert.deepEqual(show(again.sent), ["ACK 0 alice"]);
  assert.deepEqual(again.events, [], "no second chat-started");
});

Deno.test("§4.3 handshake ACK lost: the first chat datagram completes the handshake", () => {
  const { a, b } = invited();
  b.accept(20);
  pass(b, B, a, 30);
  drain(a); // the ACK is lost
  a.send("hello", 40);
  pass(a, A, b, 50);
  const { sent, events } = drain(b);
  assert.equal(b.phase, "established");
  assert.deepEqual(eventTypes(events), [
    "invitation",
    "chat-started",
    "message",
  ]);
  assert.deepEqual(show(sent), ["ACK 0 bob"]);
});

Deno.test("§4.4 decline: FIN, the inviter ACKs it and tells its user", () => {
  const { a, b } = invited();
  b.decline(20);
  const declined = drain(b);
  assert.deepEqual(eventTypes(declined.events), ["invitation"]);
  assert.deepEqual(show(declined.sent), ["FIN 0 bob"]);
  a.receive(declined.sent[0].bytes, B, 30);
  const { sent, events } = drain(a);
  assert.deepEqual(show(sent), ["ACK 0 alice"]);
  assert.deepEqual(events, [{ type: "declined", peer: B, name: "bob" }]);
  assert.equal(a.phase, "idle");
  b.receive(sent[0].bytes, A, 40);
  assert.equal(b.phase, "idle");
  assert.deepEqual(drain(b).events, [], "declining tells nothing more");
});

Deno.test("§4.4 decline FIN lost: retransmitted until ACKed; a duplicate is re-ACKed", () => {
  const { a, b } = invited();
  b.decline(20);
  drain(b); // lost
  b.tick(20 + T);
  const fin = drain(b).sent;
  assert.deepEqual(show(fin), ["FIN 0 bob"]);
  a.receive(fin[0].bytes, B, 20 + T + 5);
  // Alice's SYN went again at T (invite-retry) before the FIN came.
  assert.deepEqual(eventTypes(drain(a).events), ["invite-retry", "declined"]);
  // The ACK is lost too; the next FIN is re-ACKed by the former peer (§6.2).
  b.tick(20 + 2 * T);
  const fin2 = drain(b).sent;
  a.receive(fin2[0].bytes, B, 20 + 2 * T + 5);
  const again = drain(a);
  assert.deepEqual(show(again.sent), ["ACK 0 alice"]);
  assert.deepEqual(again.events, []);
  b.receive(again.sent[0].bytes, A, 20 + 2 * T + 10);
  assert.equal(b.phase, "idle");
});

Deno.test("§4.7 crossed invitations set up one chat, like a simultaneous open", () => {
  const { a, b } = newPair();
  a.invite(B, 0);
  b.invite(A, 0);
  const synA = drain(a).sent;
  const synB = drain(b).sent;
  a.receive(synB[0].bytes, B, 10);
  b.receive(synA[0].bytes, A, 10);
  const synAckA = drain(a);
  const synAckB = drain(b);
  assert.deepEqual(show(synAckA.sent), ["SYN+ACK 0 alice"]);
  assert.deepEqual(show(synAckB.sent), ["SYN+ACK 0 bob"]);
  assert.deepEqual(synAckA.events, [], "no invitation shown: we asked for it");
  a.receive(synAckB.sent[0].bytes, B, 20);
  b.receive(synAckA.sent[0].bytes, A, 20);
  pass(a, A, b, 30);
  pass(b, B, a, 30);
  assert.equal(a.phase, "established");
  assert.equal(b.phase, "established");
  assert.deepEqual(eventTypes(drain(a).events), ["chat-started"]);
  assert.deepEqual(eventTypes(drain(b).events), ["chat-started"]);
  // Messages flow both ways afterwards.
  a.send("hi", 100);
  pass(a, A, b, 110);
  pass(b, B, a, 120);
  assert.deepEqual(eventTypes(drain(a).events), ["delivered"]);
});

Deno.test("§4.5 a SYN from the partner after establishment is answered with SYN+ACK, not busy", () => {
  const { a, b } = established();
  // Within the echo window: a late copy of the handshake's SYN, no news
  // for the user (later, see peer-reconnected below).
  b.receive(control(Op.SYN, 0, "alice"), A, 60);
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["SYN+ACK 0 bob"]);
  assert.deepEqual(events, []);
  assert.equal(b.phase, "established");
  assert.equal(a.phase, "established");
});

Deno.test("§4.5 a duplicate handshake ACK changes nothing: the first chat datagram waits out its echo", () => {
  const { a, b } = invited();
  b.accept(100);
  pass(b, B, a, 150);
  const ack = drain(a).sent[0];
  b.receive(ack.bytes, A, 200); // handshake RTT 100 ms: echo window until 300
  drain(b);
  b.send("first", 200);
  assert.deepEqual(
    drain(b).sent,
    [],
    "held: an ACK seq 0 now would be ambiguous",
  );
  assert.equal(b.nextTimeout(), 300);
  b.receive(ack.bytes, A, 250); // the duplicate
  assert.deepEqual(drain(b), { sent: [], events: [] });
  b.tick(300);
  assert.deepEqual(show(drain(b).sent), ["CHAT 0 bob first"]);
  b.receive(ack.bytes, A, 400); // the answer, a round trip later
  assert.deepEqual(eventTypes(drain(b).events), ["delivered"]);
});

Deno.test("§4.5 a late handshake ACK after the first chat datagram established the chat confirms nothing", () => {
  const { a, b } = invited();
  b.accept(10);
  pass(b, B, a, 20);
  a.send("hello bob", 20);
  const [handshakeAck, hello] = drain(a).sent;
  assert.deepEqual(show([handshakeAck, hello]), [
    "ACK 0 alice",
    "CHAT 0 alice hello bob",
  ]);
  b.receive(hello.bytes, A, 30); // overtakes the handshake ACK
  b.send("hello alice", 30);
  b.receive(handshakeAck.bytes, A, 35);
  const late = drain(b);
  assert.deepEqual(eventTypes(late.events), [
    "invitation",
    "chat-started",
    "message",
  ]);
  b.tick(b.nextTimeout()!);
  const [first] = drain(b).sent;
  assert.deepEqual(show([first]), ["CHAT 0 bob hello alice"]); // lost
  b.tick(b.nextTimeout()!);
  const again = drain(b);
  assert.deepEqual(show(again.sent), ["CHAT 0 bob hello alice"]);
  assert.deepEqual(eventTypes(again.events), ["retransmitted"]);
});

Deno.test("§4.5 the ACK of a SYN+ACK resent to a late SYN does not release a chat datagram in flight", () => {
  const { a, b } = established();
  b.send("in flight", 1000);
  assert.deepEqual(show(drain(b).sent), ["CHAT 0 bob in flight"]);
  b.receive(control(Op.SYN, 0, "alice"), A, 1010);
  const synAck = drain(b).sent;
  assert.deepEqual(show(synAck), ["SYN+ACK 0 bob"]);
  a.receive(synAck[0].bytes, B, 1020);
  const echo = drain(a).sent;
  assert.deepEqual(show(echo), ["ACK 0 alice"]);
  b.receive(echo[0].bytes, A, 1030);
  assert.deepEqual(drain(b).events, [], "not reported delivered");
  b.tick(1000 + T);
  assert.deepEqual(show(drain(b).sent), ["CHAT 0 bob in flight"]);
});

Deno.test("§5.5 leaving while the peer leaves too: what was queued before our FIN is reported", () => {
  const { a, b } = established();
  a.send("are you there?", 1000);
  drain(a); // lost
  a.leave(1000);
  b.leave(1000);
  a.receive(drain(b).sent[0].bytes, B, 1010);
  const { sent, events } = drain(a);
  assert.deepEqual(show(sent), ["ACK 0 alice"]);
  assert.deepEqual(events, [{
    type: "peer-left",
    peer: B,
    name: "bob",
    undelivered: [{ id: 1, text: "are you there?" }],
  }]);
  assert.equal(a.phase, "idle");
});

for (const phase of ["inviting", "invited", "in a chat"] as const) {
  Deno.test(`§4.8 busy while ${phase}: ERR "${BUSY_TEXT}" then FIN`, () => {
    let b: Session;
    if (phase === "in a chat") {
      b = established().b;
    } else {
      b = new Session({ userName: "bob" });
      if (phase === "inviting") b.invite(A, 0);
      else b.receive(control(Op.SYN, 0, "alice"), A, 0);
      drain(b);
    }
    const before = b.phase;
    b.receive(control(Op.SYN, 0, "carol"), C, 100);
    const { sent, events } = drain(b);
    assert.deepEqual(sent.map((s) => s.to), [C, C]);
    assert.deepEqual(show(sent), [`ERR 0 bob ${BUSY_TEXT}`, "FIN 0 bob"]);
    assert.equal(sent[0].d.payload, "User already in another chat");
    // The user is told, once (issue 8): carol's SYN again is answered busy
    // again (within the budget) but not reported again.
    assert.deepEqual(events, [{
      type: "busy-answered",
      peer: C,
      name: "carol",
    }]);
    b.receive(control(Op.SYN, 0, "carol"), C, 200);
    assert.deepEqual(drain(b).events, []);
    assert.equal(b.phase, before);
  });
}

Deno.test("§4.8 the inviter shows the busy text, ACKs the FIN and returns to idle", () => {
  const c = new Session({ userName: "carol" });
  c.invite(B, 0);
  drain(c);
  c.receive(control(Op.ERR, 0, "bob", BUSY_TEXT), B, 10);
  assert.deepEqual(drain(c).events, [
    { type: "busy", peer: B, text: BUSY_TEXT },
  ]);
  assert.equal(c.phase, "idle");
  c.receive(control(Op.FIN, 0, "bob"), B, 11);
  const { sent, events } = drain(c);
  assert.deepEqual(show(sent), ["ACK 0 carol"]);
  assert.deepEqual(events, []);
});

Deno.test("§7.1 chat datagrams, ACKs and FINs from a third address are ignored", () => {
  const { a, b } = established();
  a.send("hi", 100);
  drain(a);
  for (const bytes of [chat(0, "carol", "x"), control(Op.FIN, 0, "carol")]) {
    b.receive(bytes, C, 110);
  }
  a.receive(control(Op.ACK, 0, "carol"), C, 120);
  for (const s of [a, b]) {
    const { sent, events } = drain(s);
    assert.deepEqual(sent, []);
    assert.deepEqual(events, []);
    assert.equal(s.phase, "established");
  }
  // The same address with another port is a third party too (§1.4).
  b.receive(chat(0, "alice", "spoof"), { ...A, port: 40000 }, 130);
  assert.deepEqual(drain(b).events, []);
});

Deno.test("§5.3 a duplicate chat datagram is re-ACKed, not redelivered", () => {
  const { b } = established();
  const msg = chat(0, "alice", "hello");
  b.receive(msg, A, 100);
  const first = drain(b);
  assert.deepEqual(eventTypes(first.events), ["message"]);
  b.receive(msg, A, 110);
  const second = drain(b);
  assert.deepEqual(show(second.sent), ["ACK 0 bob"]);
  assert.deepEqual(second.events, []);
  b.receive(chat(1, "alice", "next"), A, 120);
  assert.deepEqual(drain(b).events, [
    { type: "message", name: "alice", text: "next" },
  ]);
});

Deno.test("§5.3 a sloppy peer's first chat datagram with Sequence 1 is still delivered once", () => {
  const { b } = established();
  b.receive(chat(1, "alice", "one"), A, 100);
  b.receive(chat(1, "alice", "one"), A, 110);
  b.receive(chat(0, "alice", "two"), A, 120);
  assert.deepEqual(
    drain(b).events.map((e) => e.type === "message" ? e.text : e.type),
    ["one", "two"],
  );
});

Deno.test("§5.4 a late duplicate ACK does not release the next datagram", () => {
  const { a, b } = established();
  a.send("one", 100);
  a.send("two", 100);
  pass(a, A, b, 110);
  const ack0 = drain(b).sent[0];
  a.receive(ack0.bytes, B, 120);
  const { sent, events } = drain(a);
  assert.deepEqual(eventTypes(events), ["delivered"]);
  assert.deepEqual(show(sent), ["CHAT 1 alice two"]);
  a.receive(ack0.bytes, B, 130); // late duplicate of ACK 0
  assert.deepEqual(drain(a).events, [], "'two' is not reported delivered");
  a.tick(120 + T);
  assert.deepEqual(show(drain(a).sent), ["CHAT 1 alice two"]);
});

Deno.test("§5.2 retransmission after exactly the timeout, same Sequence and bytes", () => {
  const { a } = established();
  a.send("hello", 1000);
  const first = drain(a).sent[0];
  a.tick(1000 + T - 1);
  assert.deepEqual(drain(a).sent, []);
  a.tick(1000 + T);
  const { sent, events } = drain(a);
  assert.deepEqual(sent[0].bytes, first.bytes);
  assert.equal(sent[0].d.seq, first.d.seq);
  assert.deepEqual(events, [{ type: "retransmitted", id: 1, attempt: 1 }]);
  assert.equal(a.nextTimeout(), 1000 + 2 * T);
});

Deno.test("§5.1 messages wait in order behind the one in flight", () => {
  const { a, b } = established();
  const ids = ["one", "two", "three"].map((t) => a.send(t, 100));
  assert.deepEqual(ids, [1, 2, 3]);
  const got: string[] = [];
  for (let t = 110; t < 200; t += 10) {
    const sent = pass(a, A, b, t);
    assert.ok(sent.length <= 1, "one datagram in flight at a time");
    const { sent: acks, events } = drain(b);
    for (const e of events) if (e.type === "message") got.push(e.text);
    for (const ack of acks) a.receive(ack.bytes, B, t + 5);
  }
  assert.deepEqual(got, ["one", "two", "three"]);
});

Deno.test("§5.1 a full queue refuses new messages with a clear error", () => {
  const { a } = established({ maxQueue: 2 });
  a.send("in flight", 100);
  a.send("queued 1", 100);
  a.send("queued 2", 100);
  assert.throws(
    () => a.send("one too many", 100),
    (e: unknown) =>
      e instanceof SessionError && e.code === "queue-full" &&
      /queue is full \(2 messages/.test(e.message),
  );
});

Deno.test("§5.5 peer lost after max retries: user told with undelivered messages, one FIN, idle", () => {
  const { a } = established({ maxRetries: 2 });
  a.send("one", 1000);
  a.send("two", 1000);
  drain(a);
  a.tick(1000 + T);
  a.tick(1000 + 2 * T);
  assert.deepEqual(show(drain(a).sent), [
    "CHAT 0 alice one",
    "CHAT 0 alice one",
  ]);
  a.tick(1000 + 3 * T - 1);
  assert.equal(a.phase, "established");
  a.tick(1000 + 3 * T);
  const { sent, events } = drain(a);
  assert.deepEqual(show(sent), ["FIN 1 alice"], "the bit after 'one' (seq 0)");
  assert.deepEqual(events, [{
    type: "peer-lost",
    peer: B,
    name: "bob",
    undelivered: [{ id: 1, text: "one" }, { id: 2, text: "two" }],
  }]);
  assert.equal(a.phase, "idle");
  assert.equal(a.nextTimeout(), undefined);
});

Deno.test("§6.1 leave: FIN after the queued messages; the peer ACKs, is told, both idle", () => {
  const { a, b } = established();
  a.send("last words", 100);
  a.leave(100);
  assert.throws(() => a.send("too late", 100), SessionError);
  assert.deepEqual(show(pass(a, A, b, 110)), ["CHAT 0 alice last words"]);
  pass(b, B, a, 120);
  assert.deepEqual(show(pass(a, A, b, 130)), ["FIN 1 alice"]);
  const bob = drain(b);
  assert.deepEqual(show(bob.sent), ["ACK 1 bob"]);
  assert.deepEqual(eventTypes(bob.events), ["message", "peer-left"]);
  assert.equal(b.phase, "idle");
  a.receive(bob.sent[0].bytes, B, 140);
  assert.deepEqual(eventTypes(drain(a).events), ["delivered", "chat-closed"]);
  assert.equal(a.phase, "idle");
});

Deno.test("§6.1 a message that crosses our FIN is neither shown nor ACKed: the partner reports it undelivered", () => {
  const { a, b } = established();
  a.leave(100);
  assert.deepEqual(show(drain(a).sent), ["FIN 0 alice"]); // on its way
  b.send("crossing", 100);
  const [msg] = drain(b).sent; // crosses alice's FIN
  a.receive(msg.bytes, B, 105);
  const alice = drain(a);
  assert.deepEqual(show(alice.sent), []); // no ACK
  assert.deepEqual(eventTypes(alice.events), []); // not shown
  assert.equal(a.counters.closing, 1);
  // bob gets the FIN: the chat ends, his message is reported undelivered,
  // which is the truth.
  b.receive(control(Op.FIN, 0, "alice"), A, 110);
  const bob = drain(b);
  assert.deepEqual(show(bob.sent), ["ACK 0 bob"]);
  assert.deepEqual(bob.events, [{
    type: "peer-left",
    peer: A,
    name: "alice",
    undelivered: [{ id: 1, text: "crossing" }],
  }]);
  a.receive(bob.sent[0].bytes, B, 120);
  assert.deepEqual(eventTypes(drain(a).events), ["chat-closed"]);
});

Deno.test("§6.1 the peer leaving reports our unsent messages as undelivered", () => {
  const { a } = established();
  a.send("one", 100);
  a.send("two", 100);
  drain(a);
  a.receive(control(Op.FIN, 0, "bob"), B, 110);
  const { sent, events } = drain(a);
  assert.deepEqual(show(sent), ["ACK 0 alice"]);
  assert.deepEqual(events, [{
    type: "peer-left",
    peer: B,
    name: "bob",
    undelivered: [{ id: 1, text: "one" }, { id: 2, text: "two" }],
  }]);
});

Deno.test("§6.2 a duplicate FIN after close is re-ACKed for two timeouts, then ignored", () => {
  const { b } = established();
  const fin = control(Op.FIN, 0, "alice");
  b.receive(fin, A, 100);
  drain(b);
  b.receive(fin, A, 100 + 2 * T - 1);
  assert.deepEqual(show(drain(b).sent), ["ACK 0 bob"]);
  b.receive(fin, A, 100 + 2 * T);
  assert.deepEqual(drain(b).sent, []);
});

Deno.test("§4.6 a pending invitation expires when the inviter goes silent: dropped with a FIN", () => {
  const b = new Session({ userName: "bob", invitationLimit: 60_000 });
  b.receive(control(Op.SYN, 0, "alice"), A, 0);
  b.receive(control(Op.SYN, 0, "alice"), A, 10_000); // still alive
  drain(b);
  b.tick(69_999);
  assert.equal(b.phase, "invited");
  b.tick(70_000);
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["FIN 0 bob"]);
  assert.deepEqual(events, [{
    type: "invitation-ended",
    peer: A,
    name: "alice",
    reason: "expired",
  }]);
  assert.throws(() => b.accept(70_001), SessionError);
});

Deno.test("§4.6 the inviter gives up after the invitation limit and tells its user", () => {
  const a = new Session({ userName: "alice", invitationLimit: 12_000 });
  a.invite(B, 0);
  a.tick(T);
  a.tick(2 * T);
  drain(a);
  a.tick(12_000);
  const { sent, events } = drain(a);
  assert.deepEqual(events, [{ type: "no-answer", peer: B }]);
  assert.deepEqual(show(sent), ["FIN 0 alice"], "the invitation is withdrawn");
  assert.equal(a.phase, "idle");
});

Deno.test("§4.6 a withdrawn invitation (FIN from the inviter) is ACKed and reported", () => {
  const b = new Session({ userName: "bob" });
  b.receive(control(Op.SYN, 0, "alice"), A, 0);
  drain(b);
  b.receive(control(Op.FIN, 0, "alice"), A, 100);
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["ACK 0 bob"]);
  assert.deepEqual(eventTypes(events), ["invitation-ended"]);
  assert.equal(b.phase, "idle");
});

Deno.test("§1.4 a SYN from an ephemeral port is answered to that address and port", () => {
  const b = new Session({ userName: "bob" });
  const ephemeral = { ip: "127.0.77.1", port: 54321 };
  b.receive(control(Op.SYN, 0, "alice"), ephemeral, 0);
  b.accept(10);
  const { sent } = drain(b);
  assert.deepEqual(sent.map((s) => s.to), [ephemeral]);
  b.receive(control(Op.ACK, 0, "alice"), ephemeral, 20);
  b.receive(chat(0, "alice", "hi"), ephemeral, 30);
  assert.deepEqual(show(drain(b).sent), ["ACK 0 bob"]);
  assert.deepEqual(b.status().peer, ephemeral);
});

Deno.test("§1.4 an invited daemon may answer from another port; it becomes the peer", () => {
  const a = new Session({ userName: "alice" });
  a.invite(B, 0);
  drain(a);
  const other = { ...B, port: 40001 };
  a.receive(control(Op.SYN_ACK, 0, "bob"), other, 10);
  const { sent } = drain(a);
  assert.deepEqual(sent.map((s) => s.to), [other]);
  assert.deepEqual(a.status().peer, other);
});

Deno.test("§2 malformed datagrams are dropped, never answered", () => {
  const { b } = established();
  b.receive(new Uint8Array([1, 2, 3]), A, 100);
  b.receive(new Uint8Array(39).fill(0xff), A, 100);
  const { sent, events } = drain(b);
  assert.deepEqual(sent, []);
  assert.deepEqual(events, []);
  assert.equal(b.counters.malformed, 2);
  assert.equal(b.phase, "established");
});

Deno.test("§2.2 sloppy peers: space-padded names and payloads on control datagrams are tolerated", () => {
  const b = new Session({ userName: "bob" });
  const padded = control(Op.SYN, 0, "alice");
  padded.fill(0x20, 3 + 5, 35);
  const withPayload = new Uint8Array([
    ...padded,
    ...new TextEncoder().encode("junk"),
  ]);
  new DataView(withPayload.buffer).setUint32(35, 4);
  b.receive(withPayload, A, 0);
  assert.deepEqual(drain(b).events, [{
    type: "invitation",
    peer: A,
    name: "alice",
  }]);
});

Deno.test("§4.9 auto-accept answers an invitation by itself", () => {
  const b = new Session({ userName: "bob", autoAccept: true });
  b.receive(control(Op.SYN, 0, "alice"), A, 0);
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["SYN+ACK 0 bob"]);
  assert.deepEqual(eventTypes(events), ["invitation"]);
  assert.equal(b.phase, "accepting");
});

Deno.test("§5.6 adaptive timeout: shorter retransmission after RTT samples, bounded by the configured timeout", () => {
  const { a, b } = established({
    adaptiveTimeout: true,
    minTimeout: 20,
    maxRetries: 20,
  });
  let t = 1000;
  for (let i = 0; i < 5; i++) {
    a.send(`m${i}`, t);
    pass(a, A, b, t + 25);
    pass(b, B, a, t + 50); // RTT 50 ms
    drain(a);
    t += 100;
  }
  a.send("slow", t);
  drain(a);
  const due = a.nextTimeout()!;
  assert.ok(due - t >= 50 && due - t < 200, `timeout ${due - t} ms`);
  a.tick(due);
  assert.deepEqual(eventTypes(drain(a).events), ["retransmitted"]);
  // Karn's rule and backoff: the next timeout doubles, never above T.
  const due2 = a.nextTimeout()!;
  assert.equal(due2 - due, 2 * (due - t));
  const intervals: number[] = [];
  for (let at = due2, i = 0; i < 8; i++) {
    a.tick(at);
    intervals.push(a.nextTimeout()! - at);
    at = a.nextTimeout()!;
  }
  assert.equal(Math.max(...intervals), T, "never above the configured timeout");
});

Deno.test("§5.6 Karn's rule: no RTT sample from a retransmitted datagram, and the backed-off timeout stays until a sample", () => {
  const { a, b } = established({ adaptiveTimeout: true });
  a.send("x", 1000);
  drain(a);
  assert.equal(a.nextTimeout(), 2000, "1 s before any sample (RFC 6298 §2.1)");
  a.tick(2000); // retransmitted
  assert.equal(a.nextTimeout(), 4000, "doubled");
  pass(a, A, b, 2010);
  pass(b, B, a, 2020);
  const delivered = drain(a).events.find((e) => e.type === "delivered");
  assert.deepEqual(delivered, { type: "delivered", id: 1, rtt: undefined });
  a.send("y", 2030);
  pass(a, A, b, 2040);
  assert.equal(a.nextTimeout(), 2030 + 2000, "still backed off: no sample");
  pass(b, B, a, 2050); // sent once: a sample of 20 ms
  a.send("z", 2060);
  drain(a);
  assert.equal(a.nextTimeout(), 2060 + 60, "SRTT 20 + 4·RTTVAR 10 ms");
});

Deno.test("§7.3 busy answers are rate-limited per source IP", () => {
  const { b } = established({ busyAnswersPerSecond: 100 });
  for (let i = 0; i < 10; i++) {
    b.receive(control(Op.SYN, 0, "flood"), { ...C, port: 1000 + i }, 100);
  }
  const { sent } = drain(b);
  assert.deepEqual(show(sent), [
    "ERR 0 bob User already in another chat",
    "FIN 0 bob",
    "ERR 0 bob User already in another chat",
    "FIN 0 bob",
  ], "two answers in a row to one IP, whatever its ports");
  assert.equal(b.counters["rate-limited"], 8);
  b.receive(control(Op.SYN, 0, "carol"), C, 1100);
  assert.equal(drain(b).sent.length, 2, "one more a second");
});

Deno.test("§7.3 busy answers beyond the total rate wait for the bucket, one per sender, least recently answered first", () => {
  const { b } = established({ busyAnswersPerSecond: 2 });
  const ip = (n: number) => ({ ip: `198.18.0.${n}`, port: 7777 });
  for (const n of [1, 2, 3, 4]) b.receive(control(Op.SYN, 0, "x"), ip(n), 100);
  b.receive(control(Op.SYN, 0, "x"), ip(1), 101); // 1 was answered
  b.receive(control(Op.SYN, 0, "x"), ip(3), 102); // 3 waits already
  const answered = () =>
    drain(b).sent.filter((s) => s.d.op === Op.ERR).map((s) => s.to.ip);
  assert.deepEqual(answered(), ["198.18.0.1", "198.18.0.2"]);
  const due = b.nextTimeout()!;
  assert.equal(due, 600, "a token every 500 ms");
  b.tick(due);
  assert.deepEqual(
    answered(),
    ["198.18.0.3"],
    "never answered, waiting longest",
  );
  b.tick(1100);
  assert.deepEqual(answered(), ["198.18.0.4"]);
  b.tick(1600);
  assert.deepEqual(answered(), ["198.18.0.1"], "answered before: last");
  assert.equal(b.nextTimeout(), undefined, "nothing waits");
});

Deno.test("§7.3 former peers are bounded", () => {
  const b = new Session({ userName: "bob", maxFormerPeers: 2 });
  const peers = [1, 2, 3].map((i) => ({
    ip: `127.0.77.${10 + i}`,
    port: 7777,
  }));
  for (const p of peers) {
    b.receive(control(Op.SYN, 0, "x"), p, 0);
    b.receive(control(Op.FIN, 0, "x"), p, 1);
  }
  drain(b);
  for (const p of peers) b.receive(control(Op.FIN, 0, "x"), p, 2);
  const acked = drain(b).sent.map((s) => s.to.ip);
  assert.deepEqual(acked, ["127.0.77.12", "127.0.77.13"]);
});

Deno.test("commands that do not fit the phase are refused with a clear error", () => {
  const a = new Session({ userName: "alice" });
  assert.throws(() => a.accept(0), /no invitation to accept/);
  assert.throws(() => a.send("hi", 0), /Not in a chat/);
  assert.throws(() => a.leave(0), /Not in a chat/);
  a.invite(B, 0);
  assert.throws(() => a.invite(C, 0), /Already inviting 127\.0\.77\.2/);
  const { b } = established();
  assert.throws(() => b.send("é", 100), /non-ASCII/);
});

Deno.test("§6.1 leaving before the handshake ACK: one FIN at once, typed messages reported, the late ACK changes nothing", () => {
  const { a, b } = invited();
  drain(b);
  b.accept(20);
  const synAck = drain(b).sent;
  b.send("typed quickly", 25); // waits for the handshake
  b.leave(30);
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["FIN 0 bob"]);
  assert.deepEqual(events, [{
    type: "chat-closed",
    peer: A,
    name: "alice",
    undelivered: [{ id: 1, text: "typed quickly" }],
  }]);
  assert.equal(b.phase, "idle");
  a.receive(synAck[0].bytes, B, 40);
  b.receive(drain(a).sent[0].bytes, A, 50); // the handshake ACK, late
  assert.deepEqual(drain(b), { sent: [], events: [] });
});

Deno.test("§6.1 abort (a daemon stopping): FIN with the next bit at once, unacknowledged messages reported", () => {
  const { a, b } = established();
  a.send("one", 100);
  pass(a, A, b, 110);
  pass(b, B, a, 120); // "one" delivered: the next bit is 1
  drain(a);
  a.send("two", 130); // in flight, never ACKed
  a.send("three", 130); // queued
  drain(a);
  a.abort(140);
  const { sent, events } = drain(a);
  assert.deepEqual(show(sent), ["FIN 0 alice"], "the bit after 'two' (seq 1)");
  assert.deepEqual(events, [{
    type: "chat-closed",
    peer: B,
    name: "bob",
    undelivered: [{ id: 2, text: "two" }, { id: 3, text: "three" }],
  }]);
  assert.equal(a.phase, "idle");
  assert.equal(a.nextTimeout(), undefined);
  b.receive(sent[0].bytes, A, 150);
  assert.deepEqual(eventTypes(drain(b).events), ["message", "peer-left"]);
});

Deno.test("§6.1 abort while invited or inviting sends one FIN and tells nothing; idle does nothing", () => {
  const { a, b } = invited();
  drain(b);
  b.abort(20);
  assert.deepEqual(show(drain(b).sent), ["FIN 0 bob"]);
  assert.equal(b.phase, "idle");
  drain(a);
  a.abort(20);
  const inviter = drain(a);
  assert.deepEqual(show(inviter.sent), ["FIN 0 alice"]);
  assert.deepEqual(inviter.events, []);
  assert.equal(a.phase, "idle");
  const idle = new Session({ userName: "x" });
  idle.abort(0);
  assert.deepEqual(drain(idle), { sent: [], events: [] });
});

Deno.test("§4.3 sloppy peer: a handshake ACK with Sequence 1 (shared counter) completes the handshake", () => {
  const { b } = invited();
  drain(b);
  b.accept(20);
  drain(b);
  b.receive(control(Op.ACK, 1, "alice"), A, 30);
  assert.equal(b.phase, "established");
  assert.deepEqual(eventTypes(drain(b).events), ["chat-started"]);
});

Deno.test("§5.3 sloppy peer sharing one counter: a new text with the last Sequence is delivered, its exact copy is not", () => {
  const { b } = established();
  b.receive(chat(0, "alice", "one"), A, 100);
  b.receive(chat(0, "alice", "two"), A, 110); // same bit, another text
  b.receive(chat(0, "alice", "two"), A, 120); // a retransmission of "two"
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["ACK 0 bob", "ACK 0 bob", "ACK 0 bob"]);
  assert.deepEqual(
    events.map((e) => e.type === "message" ? e.text : e.type),
    ["one", "two"],
  );
});

Deno.test("flow control: while messages are not accepted, a new chat datagram is neither ACKed nor delivered; a duplicate is re-ACKed", () => {
  const { b } = established();
  b.receive(chat(0, "alice", "one"), A, 100);
  drain(b);
  b.acceptingMessages = false;
  b.receive(chat(1, "alice", "two"), A, 110);
  assert.deepEqual(drain(b), { sent: [], events: [] });
  b.receive(chat(0, "alice", "one"), A, 120); // its ACK was lost
  assert.deepEqual(show(drain(b).sent), ["ACK 0 bob"]);
  b.acceptingMessages = true;
  b.receive(chat(1, "alice", "two"), A, 110 + T); // the retransmission
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["ACK 1 bob"]);
  assert.deepEqual(events, [{ type: "message", name: "alice", text: "two" }]);
  assert.equal(b.counters.backpressure, 1);
});

Deno.test("§5.3 limit of one bit: after a partner's SYN, a copy of the last message delivered is a duplicate, even from a restarted partner", () => {
  const { b } = established();
  b.receive(chat(0, "alice", "hi"), A, 100);
  drain(b);
  b.receive(control(Op.SYN, 0, "alice"), A, 5000);
  assert.deepEqual(show(drain(b).sent), ["SYN+ACK 0 bob"]);
  b.receive(control(Op.ACK, 0, "alice"), A, 5010);
  // A retransmission of "hi" whose ACK was lost, or a restarted alice
  // saying "hi" again first: the same bytes. SPEC §5.3 makes it a duplicate.
  b.receive(chat(0, "alice", "hi"), A, 5020);
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["ACK 0 bob"]);
  assert.deepEqual(events, []);
});

// ------------------------------------------- issue 9: defects 1, 2 and 5

/** The texts of the `message` events among `events`. */
function texts(events: SessionEvent[]): string[] {
  return events.flatMap((e) => e.type === "message" ? [e.text] : []);
}

Deno.test("§5.3 a late copy of an earlier message with the last Sequence is not shown again", () => {
  const { b } = established();
  b.receive(chat(0, "alice", "legit-1"), A, 100);
  b.receive(chat(1, "alice", "legit-2"), A, 110);
  b.receive(chat(0, "alice", "legit-3"), A, 120);
  assert.deepEqual(texts(drain(b).events), ["legit-1", "legit-2", "legit-3"]);
  b.receive(chat(0, "alice", "legit-1"), A, 130); // delayed past legit-3
  const late = drain(b);
  assert.deepEqual(late.events, []);
  assert.deepEqual(show(late.sent), [], "not ACKed: alice needs no ACK of it");
  b.receive(chat(1, "alice", "legit-4"), A, 140);
  assert.deepEqual(texts(drain(b).events), ["legit-4"]);
});

Deno.test("§5.3 a duplicate SYN from the partner does not make the next retransmission look new", () => {
  const { b } = established();
  b.receive(chat(0, "alice", "legit-1"), A, 100);
  b.receive(chat(1, "alice", "legit-2"), A, 110); // its ACK is lost
  drain(b);
  b.receive(control(Op.SYN, 0, "alice"), A, 120); // a late duplicate SYN
  assert.deepEqual(show(drain(b).sent), ["SYN+ACK 0 bob"]);
  b.receive(chat(1, "alice", "legit-2"), A, 110 + T); // the retransmission
  const { sent, events } = drain(b);
  assert.deepEqual(show(sent), ["ACK 1 bob"], "re-ACKed");
  assert.deepEqual(events, [], "shown once");
});

Deno.test("§5.3 a restarted partner (SYN during the chat) has its first message, Sequence 0, shown", () => {
  for (const before of [["one"], ["one", "two"]]) {
    const { b } = established();
    before.forEach((text, i) =>
      b.receive(chat(i % 2 ? 1 : 0, "alice", text), A, 100 + i)
    );
    drain(b);
    // alice's daemon restarted and invites again: answered as a late SYN.
    b.receive(control(Op.SYN, 0, "alice"), A, 5000);
    assert.deepEqual(show(drain(b).sent), ["SYN+ACK 0 bob"]);
    b.receive(control(Op.ACK, 0, "alice"), A, 5010);
    b.receive(chat(0, "alice", "after restart"), A, 5020);
    const { sent, events } = drain(b);
    assert.deepEqual(show(sent), ["ACK 0 bob"]);
    assert.deepEqual(texts(events), ["after restart"], `after ${before}`);
  }
});

Deno.test("§3.3 a daemon stopped while its FIN is unacknowledged sends that FIN again, never one with the other bit", () => {
  const { a, b } = established();
  a.send("one", 100);
  pass(a, A, b, 110);
  pass(b, B, a, 120); // "one" delivered: the FIN takes bit 1
  drain(a);
  a.leave(130);
  assert.deepEqual(show(drain(a).sent), ["FIN 1 alice"]); // its ACK never comes
  a.abort(140);
  const { sent, events } = drain(a);
  assert.deepEqual(show(sent), ["FIN 1 alice"], "one chat, one FIN sequence");
  assert.deepEqual(events, [{
    type: "chat-closed",
    peer: B,
    name: "bob",
    undelivered: [],
  }]);
  assert.equal(a.phase, "idle");
});

Deno.test("§4.4 a daemon stopped while its declining FIN is unacknowledged sends that FIN again", () => {
  const { b } = invited();
  drain(b);
  b.decline(20);
  assert.deepEqual(show(drain(b).sent), ["FIN 0 bob"]);
  b.abort(30);
  assert.deepEqual(show(drain(b).sent), ["FIN 0 bob"]);
  assert.equal(b.phase, "idle");
});

// ------------------------------------------------ issue 9: defect 3, floods

interface FloodResult {
  /** When each busy answer (ERR) reached the honest inviter. */
  honestAnswers: number[];
  /** Busy answers (ERR) to the flood. */
  floodAnswers: number;
  /** The most source IPs the budget tracked at once. */
  maxTracked: number;
}

/**
 * Bob in a chat receives a SYN flood: `rate` SYNs a second for `duration`
 * ms, round-robin from `addresses` source IPs, while an honest inviter C
 * sends its SYN at `honestStart` and retransmits it every timeout until it
 * gets its busy answer. Bob is woken at his every `nextTimeout`.
 */
function flood(
  options: {
    rate: number;
    addresses: number;
    duration: number;
    honestStart: number;
  },
  config: Partial<SessionConfig> = {},
): FloodResult {
  const { b } = established(config);
  const result: FloodResult = {
    honestAnswers: [],
    floodAnswers: 0,
    maxTracked: 0,
  };
  const syn = control(Op.SYN, 0, "flood");
  const honestSyn = control(Op.SYN, 0, "carol");
  const step = 1000 / options.rate;
  let honestDue: number | undefined = options.honestStart;
  const look = () => {
    for (const { to, d } of drain(b).sent) {
      if (d.op !== Op.ERR) continue;
      if (to.ip === C.ip) {
        result.honestAnswers.push(now);
        honestDue = undefined;
      } else {
        result.floodAnswers++;
      }
    }
    result.maxTracked = Math.max(result.maxTracked, b.busySenders);
  };
  let now = 0;
  /** Wakes bob at every timeout up to `until`, as the daemon's timer does. */
  const wake = (until: number) => {
    for (let due = b.nextTimeout(); due !== undefined && due <= until;) {
      now = due;
      b.tick(now);
      look();
      const next = b.nextTimeout();
      due = next !== undefined && next > now ? next : undefined;
    }
  };
  for (let i = 0; i * step < options.duration; i++) {
    if (honestDue !== undefined && honestDue <= i * step) {
      wake(honestDue);
      now = honestDue;
      honestDue = now + T;
      b.receive(honestSyn, C, now);
      look();
    }
    wake(i * step);
    now = i * step;
    const k = i % options.addresses;
    const from = { ip: `198.18.${k >> 8}.${k & 255}`, port: 7777 };
    b.receive(syn, from, now);
    look();
  }
  return result;
}

Deno.test("§7.3 a SYN flood from 500 addresses does not starve an honest inviter: busy answer within one retransmission", () => {
  // Off the flood's 0.5 ms grid, so that the honest SYN never finds a token
  // just earned by chance.
  for (const honestStart of [0.3, 3000.3, 10_000.7, 20_000.1]) {
    const r = flood({
      rate: 2000,
      addresses: 500,
      duration: 30_000,
      honestStart,
    });
    assert.ok(
      r.honestAnswers.length > 0 && r.honestAnswers[0] <= honestStart + T,
      `honest inviter starting at ${honestStart} ms answered at ${r.honestAnswers}`,
    );
    assert.ok(r.floodAnswers > 0, "the flood gets answers too");
    console.log(
      `honest inviter from ${honestStart} ms: answered at ${
        r.honestAnswers[0]
      } ms; ${r.floodAnswers} answers to the flood`,
    );
  }
});

Deno.test("§7.3 busy answers are bounded per source IP and in total", () => {
  const r = flood({
    rate: 2000,
    addresses: 500,
    duration: 10_000,
    honestStart: 0,
  });
  // At most the total rate (100/s) plus one second's burst.
  assert.ok(r.floodAnswers <= 100 * 10 + 100, `${r.floodAnswers} answers`);
  // A single address flooding alone: its burst, then one a second.
  const alone = flood({
    rate: 2000,
    addresses: 1,
    duration: 10_000,
    honestStart: 20_000,
  });
  assert.ok(
    alone.floodAnswers <= 2 + 10,
    `${alone.floodAnswers} answers to one IP`,
  );
});

Deno.test("§7.3 the busy-answer table stays bounded under a flood from many addresses", () => {
  const r = flood(
    { rate: 2000, addresses: 5000, duration: 10_000, honestStart: 5000 },
    { maxBusySenders: 1024 },
  );
  assert.ok(r.maxTracked <= 1024, `${r.maxTracked} source IPs tracked`);
  assert.ok(r.maxTracked >= 1000, "the table is used");
});

Deno.test("§5.3 a peer with a constant Sequence that repeats a recent text gets it through when the copy is no longer recent", () => {
  const { b } = established();
  b.receive(chat(0, "alice", "ok"), A, 100);
  b.receive(chat(0, "alice", "x"), A, 110);
  drain(b);
  const attempts = [120, 120 + T, 120 + 2 * T]; // the peer retransmits
  const outcomes = attempts.map((at) => {
    b.receive(chat(0, "alice", "ok"), A, at);
    const { sent, events } = drain(b);
    return `${show(sent).join(",") || "-"} ${texts(events).join(",") || "-"}`;
  });
  assert.deepEqual(
    outcomes,
    ["- -", "- -", "ACK 0 bob ok"],
    "delayed, not lost",
  );
  assert.equal(b.counters["stale-copy"], 2);
});

Deno.test("§4.8 a busy answer that waited is not sent once the daemon is idle, or to a sender that became its partner", () => {
  const ip = (n: number) => ({ ip: `198.18.0.${n}`, port: 7777 });
  const endChat = () => {
    const { a, b } = established({ busyAnswersPerSecond: 1 });
    b.receive(control(Op.SYN, 0, "x"), ip(1), 100); // answered: bucket empty
    b.receive(control(Op.SYN, 0, "y"), ip(2), 100); // waits
    drain(b);
    a.leave(200);
    pass(a, A, b, 210); // alice's FIN: bob is idle
    drain(b);
    assert.equal(b.phase, "idle");
    return b;
  };
  const idle = endChat();
  idle.tick(idle.nextTimeout()!);
  assert.deepEqual(show(drain(idle).sent), [], "idle: its next SYN invites");

  const b = endChat();
  b.receive(control(Op.SYN, 0, "y"), ip(2), 300); // retransmitted: invites
  assert.deepEqual(eventTypes(drain(b).events), ["invitation"]);
  b.tick(b.nextTimeout()!);
  assert.deepEqual(show(drain(b).sent), [], "not busy to the inviter");
  assert.equal(b.phase, "invited");
});

// ---------------------------------------------------------------------------
// What the user is told besides the protocol's own events (issue 8)

Deno.test("§4.5 each SYN retransmission of our invitation is an invite-retry event with the time left (§4.6)", () => {
  const a = new Session({ userName: "alice", invitationLimit: 4 * T });
  a.invite(B, 0);
  assert.deepEqual(drain(a).events, []);
  a.tick(T - 1);
  assert.deepEqual(drain(a).events, []);
  a.tick(T);
  const first = drain(a);
  assert.deepEqual(show(first.sent), ["SYN 0 alice"]);
  assert.deepEqual(first.events, [
    { type: "invite-retry", peer: B, attempt: 1, leftMs: 3 * T },
  ]);
  a.tick(2 * T);
  a.tick(3 * T);
  assert.deepEqual(
    drain(a).events.map((e) =>
      e.type === "invite-retry" && [e.attempt, e.leftMs]
    ),
    [[2, 2 * T], [3, T]],
  );
  a.tick(4 * T);
  assert.deepEqual(eventTypes(drain(a).events), ["no-answer"]);
});

Deno.test("§4.3 chat-started is atOnce only when the first SYN was answered within AT_ONCE_MS", () => {
  for (
    const [answerAt, atOnce] of [
      [AT_ONCE_MS - 1, true],
      [AT_ONCE_MS, false],
      [T + 10, false], // after a retransmission, however fast the answer to it
    ] as const
  ) {
    const { a, b } = newPair();
    a.invite(B, 0);
    a.tick(answerAt >= T ? T : 0);
    pass(a, A, b, 1);
    drain(a);
    b.accept(answerAt - 1);
    pass(b, B, a, answerAt);
    const started = drain(a).events.find((e) => e.type === "chat-started");
    assert.equal(
      started?.type === "chat-started" && started.atOnce === true,
      atOnce,
      `answered at ${answerAt} ms`,
    );
  }
});

Deno.test("§4.5 a partner's SYN after the handshake's echo window is its daemon restarted: peer-reconnected once, SYN+ACK", () => {
  const { a, b } = established(); // bob accepted at 20, established at 40
  // A late copy of the handshake's SYN (within two round trips): nothing.
  b.receive(control(Op.SYN, 0, "alice"), A, 60);
  const late = drain(b);
  assert.deepEqual(show(late.sent), ["SYN+ACK 0 bob"]);
  assert.deepEqual(late.events, []);
  // Alice's daemon restarted and invites again.
  const at = 1000;
  b.receive(control(Op.SYN, 0, "alice"), A, at);
  const again = drain(b);
  assert.deepEqual(show(again.sent), ["SYN+ACK 0 bob"]);
  assert.deepEqual(again.events, [
    { type: "peer-reconnected", peer: A, name: "alice" },
  ]);
  assert.equal(b.phase, "established");
  // Its SYN retransmitted (our SYN+ACK lost) is the same reconnection.
  b.receive(control(Op.SYN, 0, "alice"), A, at + T);
  assert.deepEqual(drain(b).events, []);
  // Once its handshake is over (its ACK came), a new restart is told again.
  b.receive(control(Op.ACK, 0, "alice"), A, at + T + 10);
  b.receive(control(Op.SYN, 0, "alice"), A, at + 3 * T);
  assert.deepEqual(eventTypes(drain(b).events), ["peer-reconnected"]);
  // The inviter's side too: bob's daemon restarted and invites alice.
  drain(a);
  a.receive(control(Op.SYN, 0, "bob"), B, 2000);
  const atAlice = drain(a);
  assert.deepEqual(show(atAlice.sent), ["SYN+ACK 0 alice"]);
  assert.deepEqual(atAlice.events, [
    { type: "peer-reconnected", peer: B, name: "bob" },
  ]);
});

Deno.test("§4.8 §7.3 busy-answered: once per inviter and busy period, at most MAX_BUSY_REPORTS inviters a period", () => {
  const b = new Session({ userName: "bob", busyAnswersPerSecond: 1000 });
  b.receive(control(Op.SYN, 0, "alice"), A, 0); // pending invitation
  drain(b);
  for (let i = 0; i < MAX_BUSY_REPORTS + 5; i++) {
    b.receive(
      control(Op.SYN, 0, `user${i}`),
      { ip: `127.0.78.${i + 1}`, port: 7777 },
      10,
    );
  }
  const reports = drain(b).events.filter((e) => e.type === "busy-answered");
  assert.equal(reports.length, MAX_BUSY_REPORTS);
  const idle = new Session({ userName: "bob" });
  idle.receive(control(Op.SYN, 0, "alice"), A, 0);
  idle.receive(control(Op.SYN, 0, "carol"), C, 1);
  assert.deepEqual(eventTypes(drain(idle).events), [
    "invitation",
    "busy-answered",
  ]);
  // The invitation is withdrawn: a new busy period reports carol again.
  idle.receive(control(Op.FIN, 0, "alice"), A, 2000);
  idle.receive(control(Op.SYN, 0, "alice"), A, 3000);
  idle.receive(control(Op.SYN, 0, "carol"), C, 3001);
  assert.deepEqual(
    drain(idle).events.filter((e) => e.type === "busy-answered"),
    [{ type: "busy-answered", peer: C, name: "carol" }],
  );
});

Deno.test("§4.5 invite-retry's leftMs is whole milliseconds on a clock with fractions (the link carries integers)", () => {
  const a = new Session({ userName: "alice" });
  a.invite(B, 0.25);
  a.tick(T + 0.5);
  const [retry] = drain(a).events;
  assert.deepEqual(retry, {
    type: "invite-retry",
    peer: B,
    attempt: 1,
    leftMs: 55_000, // 60,000.25 - 5,000.5, rounded
  });
});

Deno.test("§4.8 §7.3 busy-answered for an answer that waited comes when it is sent, with the inviter's name; not when it is dropped", () => {
  const { b } = established({ busyAnswersPerSecond: 1 });
  const ip = (n: number) => ({ ip: `198.18.1.${n}`, port: 7777 });
  b.receive(control(Op.SYN, 0, "first"), ip(1), 100);
  b.receive(control(Op.SYN, 0, "second"), ip(2), 100); // waits for a token
  assert.deepEqual(
    drain(b).events.filter((e) => e.type === "busy-answered"),
    [{ type: "busy-answered", peer: ip(1), name: "first" }],
  );
  b.tick(b.nextTimeout()!);
  const later = drain(b);
  assert.deepEqual(show(later.sent), [
    "ERR 0 bob User already in another chat",
    "FIN 0 bob",
  ]);
  assert.deepEqual(later.events, [
    { type: "busy-answered", peer: ip(2), name: "second" },
  ]);
  // An answer still waiting when the daemon becomes idle is never sent,
  // and never reported.
  b.receive(control(Op.SYN, 0, "third"), ip(3), 1200);
  b.receive(control(Op.SYN, 0, "fourth"), ip(4), 1200);
  drain(b);
  b.abort(1300);
  drain(b);
  b.tick(5000);
  assert.deepEqual(drain(b).events, []);
});
