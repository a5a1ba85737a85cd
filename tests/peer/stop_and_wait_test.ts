// Unit tests of the two halves of stop-and-wait (lib/peer/stop_and_wait.ts):
// the receiver's rules (SPEC §5.3) and the adaptive timeout (SPEC §5.6,
// RFC 6298 with Karn's rule), in virtual time.

import assert from "node:assert/strict";
import {
  INITIAL_ADAPTIVE_TIMEOUT,
  RECENT_COUNT,
  RttEstimator,
  StopAndWaitReceiver,
  StopAndWaitSender,
} from "../../lib/peer/stop_and_wait.ts";

const RECENT_FOR = 10_000;

function receiver(): StopAndWaitReceiver {
  return new StopAndWaitReceiver({ recentFor: RECENT_FOR });
}

// --------------------------------------------------------------- receiver

Deno.test("§5.3 rule 1: before anything was delivered, any Sequence is new", () => {
  const r = receiver();
  assert.equal(r.receive(1, "one", 0), "new");
  assert.equal(r.receive(1, "one", 1), "duplicate");
});

Deno.test('§5.3 rule 2: the other bit is new, even with a recent text ("ok", "x", "ok")', () => {
  const r = receiver();
  assert.deepEqual(
    [r.receive(0, "ok", 0), r.receive(1, "x", 1), r.receive(0, "ok", 2)],
    ["new", "new", "new"],
  );
});

Deno.test("§5.3 rule 3: the last Sequence and text again is a duplicate, however late", () => {
  const r = receiver();
  r.receive(0, "hi", 0);
  assert.equal(r.receive(0, "hi", 10 * RECENT_FOR), "duplicate");
});

Deno.test("§5.3 rule 4: the last Sequence with a recent text is a stale copy; with another text, new", () => {
  const r = receiver();
  r.receive(0, "legit-1", 0);
  r.receive(1, "legit-2", 1);
  r.receive(0, "legit-3", 2);
  assert.equal(r.classify(0, "legit-1", 3), "stale");
  assert.equal(r.receive(0, "legit-1", 3), "stale", "not recorded");
  assert.equal(r.receive(0, "shared counter", 4), "new");
});

Deno.test("§5.3 rule 4: a copy is recent for recentFor ms, then a repeated text is new again", () => {
  const r = receiver();
  r.receive(0, "ok", 0);
  r.receive(0, "x", 1); // a peer with a constant Sequence
  assert.equal(r.receive(0, "ok", RECENT_FOR - 1), "stale");
  assert.equal(r.receive(0, "ok", RECENT_FOR + 1), "new");
});

Deno.test("§5.3 §7.3 rule 4: only the last RECENT_COUNT deliveries are remembered", () => {
  const r = receiver(); // a peer with a constant Sequence
  r.receive(0, "first", 0);
  for (let i = 1; i < RECENT_COUNT; i++) r.receive(0, `m${i}`, i);
  assert.equal(r.remembered, RECENT_COUNT);
  assert.equal(r.classify(0, "first", 100), "stale");
  r.receive(0, "one more", 101);
  assert.equal(r.remembered, RECENT_COUNT);
  assert.equal(r.classify(0, "first", 102), "new", "forgotten");
});

// ------------------------------------------------------------ RTT, §5.6

function adaptive(minTimeout = 1, timeout = 5000): RttEstimator {
  return new RttEstimator({ timeout, adaptive: true, minTimeout });
}

Deno.test("§5.6 the fixed timeout ignores samples", () => {
  const rtt = new RttEstimator({
    timeout: 5000,
    adaptive: false,
    minTimeout: 10,
  });
  rtt.sample(1);
  rtt.backOff();
  assert.equal(rtt.current(), 5000);
});

Deno.test("§5.6 RFC 6298: 1 s before a sample, then SRTT + 4·RTTVAR, never below the floor", () => {
  const rtt = adaptive(10);
  assert.equal(rtt.current(), INITIAL_ADAPTIVE_TIMEOUT);
  rtt.sample(100);
  assert.equal(rtt.current(), 100 + 4 * 50);
  rtt.sample(100); // RTTVAR 0.75·50, SRTT 100
  assert.equal(rtt.current(), 100 + 4 * 37.5);
  const fast = adaptive(10);
  fast.sample(0.2);
  assert.equal(fast.current(), 10, "the floor");
  assert.equal(adaptive(10, 200).current(), 200, "at most the fixed timeout");
});

Deno.test("§5.6 the timeout doubles on each consecutive expiry, up to the fixed timeout", () => {
  const rtt = adaptive(10);
  rtt.sample(1); // RTO 1 + 4·0.5 = 3, floor 10
  const seen = [rtt.current()];
  for (let i = 0; i < 12; i++) {
    rtt.backOff();
    seen.push(rtt.current());
  }
  assert.deepEqual(
    seen,
    [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5000, 5000, 5000, 5000],
  );
});

Deno.test("§5.6 Karn's rule: a backed-off timeout stays for the next datagram until a sample from one sent once", () => {
  const rtt = adaptive(10);
  const sender = new StopAndWaitSender<string>(rtt, {
    maxRetries: 10,
    maxQueue: 8,
  });
  rtt.sample(2);
  sender.push("a");
  sender.push("b");
  sender.push("c");
  let flight = sender.pump(0)!;
  assert.equal(flight.deadline, 10);
  assert.ok(sender.timeout(10) !== undefined); // "a" sent again
  assert.equal(sender.inFlight!.deadline, 10 + 20, "doubled");
  assert.deepEqual(sender.ack(0, 12), { released: "a", rtt: undefined });
  flight = sender.pump(12)!; // "b"
  assert.equal(flight.deadline, 12 + 20, "still doubled: no sample from 'a'");
  assert.deepEqual(sender.ack(1, 14), { released: "b", rtt: 2 });
  assert.equal(sender.pump(14)!.deadline, 14 + 10, "a sample resets it");
});
