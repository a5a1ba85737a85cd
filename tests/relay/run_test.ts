/**
 * Tests of the relay's I/O shell (lib/relay/run.ts) on real loopback
 * sockets, in this process: held copies leave intact and in time, the
 * counts, and the words it prints. Addresses 127.0.93.6x.
 */

import assert from "node:assert/strict";
import { NO_IMPAIRMENTS } from "../../lib/relay/core.ts";
import {
  describeImpairments,
  formatStats,
  type RelayOptions,
  startRelay,
} from "../../lib/relay/run.ts";

const A = { ip: "127.0.93.61", port: 7777 };
const B = { ip: "127.0.93.62", port: 7777 };
const RELAY = {
  transport: "udp" as const,
  hostname: "127.0.93.63",
  port: 7777,
};

function options(overrides: Partial<RelayOptions> = {}): RelayOptions {
  return {
    ip: RELAY.hostname,
    port: RELAY.port,
    a: A,
    b: B,
    seed: 3,
    ab: { ...NO_IMPAIRMENTS },
    ba: { ...NO_IMPAIRMENTS },
    ...overrides,
  };
}

/** Receives on `conn` until `count` datagrams came or `ms` passed. */
async function receiveSome(
  conn: Deno.DatagramConn,
  count: number,
  ms: number,
): Promise<{ bytes: number[]; at: number }[]> {
  const got: { bytes: number[]; at: number }[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  while (got.length < count) {
    const result = await Promise.race([conn.receive(), late]);
    if (result === "late") break;
    got.push({ bytes: [...result[0]], at: performance.now() });
  }
  clearTimeout(timer);
  return got;
}

/** A UDP socket at `at`, standing for daemon A or B. */
function bind(at: { ip: string; port: number }): Deno.DatagramConn {
  return Deno.listenDatagram({
    hostname: at.ip,
    port: at.port,
    transport: "udp",
  });
}

Deno.test("relay shell: held copies leave after their delay, intact although the receive buffer is reused", async () => {
  const a = bind(A);
  const b = bind(B);
  const relay = startRelay(options({ ab: { ...NO_IMPAIRMENTS, delay: 40 } }));
  try {
    const sentAt = performance.now();
    await a.send(Uint8Array.of(1, 1, 1), RELAY);
    await a.send(Uint8Array.of(2, 2), RELAY);
    await b.send(Uint8Array.of(3), RELAY); // not delayed
    const atA = await receiveSome(a, 1, 2000);
    assert.deepEqual(atA.map((d) => d.bytes), [[3]]);
    const atB = await receiveSome(b, 2, 2000);
    assert.deepEqual(atB.map((d) => d.bytes), [[1, 1, 1], [2, 2]]);
    assert.ok(atB[0].at - sentAt >= 39, `held ${atB[0].at - sentAt} ms`);
  } finally {
    const stats = await relay.close();
    a.close();
    b.close();
    assert.equal(stats.ab.received, 2);
    assert.equal(stats.ab.forwarded, 2);
    assert.equal(stats.ba.forwarded, 1);
  }
});

Deno.test("relay shell: impairments change while it runs; close is final and idempotent", async () => {
  const a = bind(A);
  const b = bind(B);
  const relay = startRelay(options());
  try {
    await a.send(Uint8Array.of(1), RELAY);
    assert.equal((await receiveSome(b, 1, 2000)).length, 1);
    relay.setImpairments("ab", { duplicate: 1 });
    await a.send(Uint8Array.of(2), RELAY);
    assert.deepEqual((await receiveSome(b, 2, 2000)).map((d) => d.bytes), [
      [2],
      [2],
    ]);
    relay.setImpairments("ab", { loss: 1 });
    await a.send(Uint8Array.of(3), RELAY);
    assert.deepEqual(await receiveSome(b, 1, 100), []);
  } finally {
    const stats = await relay.close();
    assert.deepEqual(await relay.close(), stats);
    a.close();
    b.close();
    assert.deepEqual(stats.ab, {
      received: 3,
      forwarded: 3,
      dropped: 1,
      duplicated: 1,
      corrupted: 0,
      reordered: 0,
    });
  }
});

Deno.test("relay shell: the impairments and counts in words", () => {
  assert.equal(describeImpairments(NO_IMPAIRMENTS), "none");
  assert.equal(
    describeImpairments({
      loss: 0.1,
      duplicate: 0.025,
      reorder: 0.3,
      reorderDelay: 20,
      delay: 5,
      corrupt: 0.01,
      dropFirst: 2,
    }),
    "drop first 2, loss 10%, duplicate 2.5%, reorder 30% up to 20 ms, delay 5 ms, corrupt 1%",
  );
  const zero = {
    received: 0,
    forwarded: 0,
    dropped: 0,
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
  };
  assert.deepEqual(
    formatStats({
      ab: { ...zero, received: 2, forwarded: 1, dropped: 1 },
      ba: zero,
      stray: 4,
    }, { a: A, b: B }),
    [
      "A→B 127.0.93.61:7777 → 127.0.93.62:7777: received 2, forwarded 1, dropped 1, duplicated 0, corrupted 0, reordered 0",
      "B→A 127.0.93.62:7777 → 127.0.93.61:7777: received 0, forwarded 0, dropped 0, duplicated 0, corrupted 0, reordered 0",
      "stray: 4 datagrams from other addresses dropped",
    ],
  );
});
