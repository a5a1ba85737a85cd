// Unit tests of the busy-answer budget (lib/peer/busy_answers.ts, SPEC §4.8,
// §7.3), in virtual time. The flood scenarios through the engine are in
// tests/peer/session_test.ts.

import assert from "node:assert/strict";
import type { Address } from "../../lib/peer/session.ts";
import {
  BusyAnswers,
  type BusyAnswersOptions,
} from "../../lib/peer/busy_answers.ts";

const OPTIONS: BusyAnswersOptions = {
  perSecond: 10,
  perSenderBurst: 2,
  perSenderInterval: 1000,
  maxSenders: 3,
  maxWait: 5000,
};

function ip(n: number): Address {
  return { hostname: `198.18.0.${n}`, port: 7777 };
}

Deno.test("§7.3 one source IP: its burst, then one answer per interval, whatever its ports", () => {
  const busy = new BusyAnswers<Address>(OPTIONS);
  const decisions = [0, 1, 2].map((i) =>
    busy.request({ ...ip(1), port: 1000 + i }, 0)
  );
  assert.deepEqual(decisions, ["answer", "answer", "refused"]);
  assert.equal(busy.request(ip(1), 999), "refused");
  assert.equal(busy.request(ip(1), 1000), "answer");
});

Deno.test("§7.3 the table of senders keeps the most recently heard, and forgets what they waited for", () => {
  const busy = new BusyAnswers<Address>({ ...OPTIONS, perSecond: 1 });
  busy.request(ip(1), 0); // answered, the total bucket is empty
  for (const n of [2, 3, 4, 5]) busy.request(ip(n), 1);
  assert.equal(busy.size, 3);
  assert.equal(busy.waiting, 3, "1 and 2 were forgotten, 2 while waiting");
  assert.deepEqual(busy.due(1000), [ip(3)]);
  assert.deepEqual(busy.due(2000), [ip(4)]);
  assert.deepEqual(busy.due(3000), [ip(5)]);
  assert.equal(busy.nextDue(), undefined);
});

Deno.test("§7.3 a SYN waits at most maxWait for its answer", () => {
  const busy = new BusyAnswers<Address>({
    ...OPTIONS,
    perSecond: 1,
    maxWait: 500,
  });
  busy.request(ip(1), 0);
  assert.equal(busy.request(ip(2), 10), "deferred");
  assert.deepEqual(busy.due(1000), [], "its sender has retransmitted by now");
  assert.equal(busy.waiting, 0);
});

Deno.test("§7.3 a budget without a positive rate or table is refused", () => {
  for (
    const bad of [{ perSecond: 0 }, { maxSenders: 0 }, { perSenderBurst: 0 }]
  ) {
    assert.throws(
      () => new BusyAnswers({ ...OPTIONS, ...bad }),
      /^RangeError: Busy answers need a positive rate/,
    );
  }
});
