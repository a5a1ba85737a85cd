// Rule tests of the relay core (lib/relay/core.ts), in virtual time: every
// `now` is a number of milliseconds the test chooses, and every random fate
// comes from the seed.

import assert from "node:assert/strict";
import type { Address } from "../../lib/address.ts";
import {
  type Impairments,
  RelayCore,
  type RelayCoreOptions,
  type RelayRecord,
} from "../../lib/relay/core.ts";

const A: Address = { ip: "127.0.93.1", port: 7777 };
const B: Address = { ip: "127.0.93.2", port: 7777 };
const C: Address = { ip: "127.0.93.9", port: 7777 };

/** What the core sent and recorded since the last look. */
interface Out {
  sent: { to: Address; bytes: Uint8Array }[];
  records: RelayRecord[];
}

function drain(core: RelayCore): Out {
  const out: Out = { sent: [], records: [] };
  for (const action of core.takeActions()) {
    if (action.type === "send") {
      out.sent.push({ to: action.to, bytes: action.bytes.slice() });
    } else {
      out.records.push(action.record);
    }
  }
  return out;
}

/** A datagram numbered `n` (4 bytes, big-endian), easy to tell apart. */
function numbered(n: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, n);
  return bytes;
}

function numberOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
}

function relay(
  ab: Partial<Impairments> = {},
  ba: Partial<Impairments> = {},
  options: Partial<RelayCoreOptions> = {},
): RelayCore {
  return new RelayCore({ a: A, b: B, seed: 42, ab, ba, ...options });
}

/**
 * Sends `count` datagrams from `from`, 1 ms apart, ticking the core as time
 * passes, then runs it until nothing is held; returns what came out.
 */
function run(core: RelayCore, from: Address, count: number): Out {
  const out: Out = { sent: [], records: [] };
  const collect = () => {
    const o = drain(core);
    out.sent.push(...o.sent);
    out.records.push(...o.records);
  };
  for (let i = 0; i < count; i++) {
    core.tick(i);
    core.receive(numbered(i), from, i);
    collect();
  }
  for (
    let due = core.nextTimeout();
    due !== undefined;
    due = core.nextTimeout()
  ) {
    core.tick(due);
    collect();
  }
  return out;
}

Deno.test("relay core: without impairments every datagram goes at once to the other daemon", () => {
  const core = relay();
  core.receive(numbered(1), A, 0);
  core.receive(numbered(2), B, 0);
  const { sent } = drain(core);
  assert.deepEqual(sent.map((s) => [s.to, numberOf(s.bytes)]), [[B, 1], [
    A,
    2,
  ]]);
  assert.equal(core.nextTimeout(), undefined);
  const stats = core.stats();
  assert.deepEqual(stats.ab, {
    received: 1,
    forwarded: 1,
    dropped: 0,
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
  });
  assert.equal(stats.ba.forwarded, 1);
});

Deno.test("relay core: a datagram from a third address is dropped and counted as stray", () => {
  const core = relay({}, {}, { record: true });
  core.receive(numbered(1), C, 0);
  core.receive(numbered(2), { ...A, port: 7778 }, 0);
  assert.deepEqual(core.takeActions(), []);
  assert.equal(core.stats().stray, 2);
  assert.equal(core.stats().ab.received, 0);
});

Deno.test("relay core: A and B must differ", () => {
  assert.throws(
    () => new RelayCore({ a: A, b: { ...A }, seed: 1 }),
    RangeError,
  );
});

Deno.test("relay core: the loss rate is the one asked for, within binomial bounds", () => {
  for (const loss of [0.1, 0.3, 0.5]) {
    const n = 10_000;
    const core = relay({ loss });
    const out = run(core, A, n);
    const lost = n - out.sent.length;
    assert.equal(core.stats().ab.dropped, lost);
    const sd = Math.sqrt(n * loss * (1 - loss));
    assert.ok(
      Math.abs(lost - n * loss) < 5 * sd,
      `${lost} of ${n} lost at ${loss}`,
    );
  }
});

Deno.test("relay core: the same seed gives the same fates, another seed others", () => {
  const fates = (seed: number) =>
    run(relay({ loss: 0.3, duplicate: 0.2 }, {}, { seed }), A, 200).sent
      .map((s) => numberOf(s.bytes)).join(",");
  assert.equal(fates(7), fates(7));
  assert.notEqual(fates(7), fates(8));
});

Deno.test("relay core: loss 100% drops all, loss 0 none", () => {
  assert.equal(run(relay({ loss: 1 }), A, 100).sent.length, 0);
  assert.equal(run(relay({ loss: 0 }), A, 100).sent.length, 100);
});

Deno.test("relay core: a duplicated datagram is sent twice, the extra copy recorded as dup", () => {
  const n = 10_000;
  const core = relay({ duplicate: 0.2 }, {}, { record: true });
  const out = run(core, A, n);
  const { duplicated, forwarded } = core.stats().ab;
  assert.ok(Math.abs(duplicated - 0.2 * n) < 5 * Math.sqrt(n * 0.2 * 0.8));
  assert.equal(forwarded, n + duplicated);
  assert.equal(out.sent.length, n + duplicated);
  const dups = out.records.filter((r) => r.dup);
  assert.equal(dups.length, duplicated);
  // The extra copy follows its original, with the same bytes.
  const i = out.records.findIndex((r) => r.dup);
  assert.equal(out.records[i - 1].hex, out.records[i].hex);
  assert.equal(out.records[i - 1].dup, false);
});

Deno.test("relay core: reordering holds some copies an extra delay in (0, reorderDelay], so later ones overtake them", () => {
  const core = relay({ reorder: 0.3, reorderDelay: 10 }, {}, { record: true });
  const out = run(core, A, 1000);
  const order = out.sent.map((s) => numberOf(s.bytes));
  assert.deepEqual([...order].sort((x, y) => x - y), [...Array(1000).keys()]);
  const overtaken = order.filter((n, i) => i > 0 && n < order[i - 1]).length;
  assert.ok(overtaken > 50, `only ${overtaken} out of order`);
  const held = out.records.filter((r) => r.delay > 0);
  assert.equal(held.length, core.stats().ab.reordered);
  assert.ok(Math.abs(held.length - 300) < 5 * Math.sqrt(1000 * 0.3 * 0.7));
  for (const r of held) assert.ok(r.delay > 0 && r.delay <= 10, `${r.delay}`);
});

Deno.test("relay core: a held copy is sent when its delay is up, not before", () => {
  const core = relay({ delay: 25 });
  core.receive(numbered(1), A, 100);
  assert.deepEqual(drain(core).sent, []);
  assert.equal(core.nextTimeout(), 125);
  core.tick(124.9);
  assert.deepEqual(drain(core).sent, []);
  core.tick(125);
  assert.deepEqual(drain(core).sent.map((s) => numberOf(s.bytes)), [1]);
  assert.equal(core.nextTimeout(), undefined);
});

Deno.test("relay core: a fixed delay keeps the order", () => {
  const order = run(relay({ delay: 5 }), A, 100).sent.map((s) =>
    numberOf(s.bytes)
  );
  assert.deepEqual(order, [...Array(100).keys()]);
});

Deno.test("relay core: a held copy does not share the caller's buffer (it is reused)", () => {
  const core = relay({ delay: 5 });
  const buffer = numbered(7);
  core.receive(buffer, A, 0);
  buffer.fill(0xff);
  core.tick(5);
  assert.equal(numberOf(drain(core).sent[0].bytes), 7);
});

Deno.test("relay core: drop-first K drops exactly the first K datagrams of that direction", () => {
  const core = relay({ dropFirst: 3 }, { dropFirst: 1 });
  const ab = run(core, A, 10).sent.map((s) => numberOf(s.bytes));
  assert.deepEqual(ab, [3, 4, 5, 6, 7, 8, 9]);
  const ba = run(core, B, 3).sent.map((s) => numberOf(s.bytes));
  assert.deepEqual(ba, [1, 2]);
  assert.equal(core.stats().ab.dropped, 3);
  assert.equal(core.stats().ba.dropped, 1);
});

Deno.test("relay core: corruption flips 1 to 3 bits of the copy sent, never of the caller's bytes", () => {
  const core = relay({ corrupt: 1 }, {}, { record: true });
  const original = new Uint8Array(64).fill(0x55);
  for (let i = 0; i < 200; i++) {
    const bytes = original.slice();
    core.receive(bytes, A, i);
    assert.deepEqual(bytes, original);
    const { sent, records } = drain(core);
    let flipped = 0;
    for (let j = 0; j < 64; j++) {
      let x = sent[0].bytes[j] ^ original[j];
      for (; x; x &= x - 1) flipped++;
    }
    assert.ok(flipped >= 1 && flipped <= 3, `${flipped} bits flipped`);
    assert.equal(records[0].corrupted, true);
    assert.equal(records[0].hex, toHex(sent[0].bytes));
  }
  assert.equal(core.stats().ab.corrupted, 200);
});

Deno.test("relay core: each direction has its own impairments", () => {
  const core = relay({ loss: 1 }, {});
  assert.equal(run(core, A, 50).sent.length, 0);
  assert.equal(run(core, B, 50).sent.length, 50);
  assert.equal(core.stats().ab.dropped, 50);
  assert.equal(core.stats().ba.dropped, 0);
});

Deno.test("relay core: the fates of one direction do not depend on traffic in the other", () => {
  const imp = { loss: 0.3, duplicate: 0.1, reorder: 0.2, reorderDelay: 5 };
  const alone = relay(imp, imp);
  const aloneOut = run(alone, A, 500).sent.map((s) => numberOf(s.bytes));
  const mixed = relay(imp, imp);
  const mixedOut: number[] = [];
  for (let i = 0; i < 500; i++) {
    mixed.tick(i);
    mixed.receive(numbered(i), A, i);
    mixed.receive(numbered(100_000 + i), B, i);
    for (const s of drain(mixed).sent) {
      if (s.to === B) mixedOut.push(numberOf(s.bytes));
    }
  }
  for (
    let due = mixed.nextTimeout();
    due !== undefined;
    due = mixed.nextTimeout()
  ) {
    mixed.tick(due);
    for (const s of drain(mixed).sent) {
      if (s.to === B) mixedOut.push(numberOf(s.bytes));
    }
  }
  assert.deepEqual(mixedOut, aloneOut);
});

Deno.test("relay core: a record per copy in the log format", () => {
  const core = relay({ dropFirst: 1, delay: 2 }, {}, { record: true });
  core.receive(Uint8Array.of(1, 2), A, 12.3456);
  core.receive(Uint8Array.of(0xab), A, 13);
  core.receive(Uint8Array.of(0xcd), B, 14);
  const { records } = drain(core);
  assert.deepEqual(records, [
    {
      t: 12.346,
      from: "127.0.93.1:7777",
      to: "127.0.93.2:7777",
      fate: "dropped",
      delay: 0,
      dup: false,
      corrupted: false,
      hex: "0102",
    },
    {
      t: 13,
      from: "127.0.93.1:7777",
      to: "127.0.93.2:7777",
      fate: "forwarded",
      delay: 2,
      dup: false,
      corrupted: false,
      hex: "ab",
    },
    {
      t: 14,
      from: "127.0.93.2:7777",
      to: "127.0.93.1:7777",
      fate: "forwarded",
      delay: 0,
      dup: false,
      corrupted: false,
      hex: "cd",
    },
  ]);
  assert.deepEqual(
    Object.keys(records[0]),
    ["t", "from", "to", "fate", "delay", "dup", "corrupted", "hex"],
  );
});

Deno.test("relay core: no records unless asked for", () => {
  const core = relay({ loss: 0.5 });
  run(core, A, 20);
  core.receive(numbered(1), A, 50);
  assert.ok(core.takeActions().every((a) => a.type === "send"));
});

Deno.test("relay core: held copies beyond the byte bound are dropped, not kept", () => {
  const core = relay({ delay: 10 }, {}, { maxHeldBytes: 10 });
  core.receive(numbered(1), A, 0);
  core.receive(numbered(2), A, 0);
  core.receive(numbered(3), A, 0); // 12 bytes would be held
  assert.equal(core.held, 2);
  assert.equal(core.stats().ab.dropped, 1);
  core.tick(10);
  assert.deepEqual(drain(core).sent.map((s) => numberOf(s.bytes)), [1, 2]);
  core.receive(numbered(4), A, 11); // room again
  assert.equal(core.held, 1);
});

Deno.test("relay core: bad impairments are refused", () => {
  assert.throws(() => relay({ loss: 1.5 }), /loss must be from 0 to 1/);
  assert.throws(() => relay({ delay: -1 }), /delay must be 0 or more/);
  assert.throws(() => relay({}, { duplicate: NaN }), /duplicate/);
  const core = relay();
  assert.throws(
    () => core.setImpairments("ab", { dropFirst: Infinity }),
    RangeError,
  );
});

Deno.test("relay core: impairments can change while it runs", () => {
  const core = relay();
  assert.equal(run(core, A, 10).sent.length, 10);
  core.setImpairments("ab", { loss: 1 });
  assert.equal(run(core, A, 10).sent.length, 0);
  assert.equal(core.impairments("ab").loss, 1);
  assert.equal(core.impairments("ba").loss, 0);
});

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
