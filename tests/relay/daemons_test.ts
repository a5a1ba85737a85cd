/**
 * Exactly once through a lossy link, with real processes: two `simp daemon`s
 * chat through `simp relay` (loss, duplication and reordering in both
 * directions), driven by scripted clients. With a timeout well above the
 * round trip (SPEC §5.3's limits of a one-bit sequence number), every
 * message is shown exactly once and in order, and every message is
 * acknowledged; when the link dies, every message not delivered is
 * reported undelivered (§5.5). Addresses 127.0.93.2x and 127.0.93.3x.
 */

import assert from "node:assert/strict";
import type { Proc } from "../../tools/_processes.ts";
import {
  ANSWER,
  CHAT,
  MENU,
  type Processes,
  processTest,
} from "../support/processes.ts";

/** Where the daemons and the relay of one test live. */
interface Link {
  alice: string;
  bob: string;
  relay: string;
}

/** Starts `simp relay` between the two daemons of `link` with `args`. */
async function startRelay(
  procs: Processes,
  link: Link,
  args: string[],
): Promise<Proc> {
  const relay = procs.spawn("relay", [
    "run",
    "-A",
    "mod.ts",
    "relay",
    link.relay,
    "--between",
    link.alice,
    link.bob,
    ...args,
  ], { stdin: false, env: { NO_COLOR: "1" } });
  await relay.expect(/^simp relay listening on /, { stream: "stderr" });
  return relay;
}

/**
 * Starts both daemons with `daemonArgs` and a client for each; alice
 * invites the relay's address, bob accepts: a chat through the relay.
 */
async function chatThroughRelay(
  procs: Processes,
  link: Link,
  daemonArgs: string[],
): Promise<{ alice: Proc; bob: Proc }> {
  await Promise.all([
    procs.daemon(link.alice, daemonArgs),
    procs.daemon(link.bob, daemonArgs),
  ]);
  const alice = procs.client(link.alice, "alice");
  const bob = procs.client(link.bob, "bob");
  await Promise.all([
    alice.expectAll([`connected to ${link.alice}:7778 as alice`, MENU]),
    bob.expectAll([`connected to ${link.bob}:7778 as bob`, MENU]),
  ]);
  await bob.write("2");
  await bob.expect("waiting for invitations");
  await alice.write("1");
  await alice.expect(/^\? ip: /);
  await alice.write(link.relay);
  // The SYN and its answer may be lost: each side retransmits (§4.5).
  await bob.expectAll([`invitation from alice at ${link.relay}`, ANSWER], {
    timeoutMs: 10_000,
  });
  await bob.write("y");
  await Promise.all([
    bob.expectAll([`chat started with alice at ${link.relay}`, CHAT], {
      timeoutMs: 10_000,
    }),
    alice.expectAll([`chat started with bob at ${link.relay}`, CHAT], {
      timeoutMs: 10_000,
    }),
  ]);
  return { alice, bob };
}

/** The texts `from` showed from `name`, in order. */
function shown(client: Proc, name: string): string[] {
  return client.grep(new RegExp(`^${name}: `)).map((line) =>
    line.slice(name.length + 2)
  );
}

/** The ids of the messages `client` sent, by text (from `sent #N: text`). */
function sentIds(client: Proc): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of client.grep(/^sent #\d+: /)) {
    const colon = line.indexOf(": ");
    ids.set(line.slice(colon + 2), Number(line.slice(6, colon)));
  }
  return ids;
}

/** The counts the relay printed: `received`, `dropped`, … per direction. */
function relayCounts(relay: Proc): Record<string, number>[] {
  return relay.lines.stdout.filter((line) => /^[AB]→[AB] /.test(line)).map(
    (line) => {
      const counts: Record<string, number> = {};
      for (const [, key, value] of line.matchAll(/(\w+) (\d+)/g)) {
        counts[key] = Number(value);
      }
      return counts;
    },
  );
}

/** Asserts `texts` shown by the receiver are `expected`, each once, in order. */
function assertExactlyOnceInOrder(
  texts: string[],
  expected: string[],
  who: string,
): void {
  const twice = texts.filter((text, i) => texts.indexOf(text) !== i);
  assert.deepEqual(twice, [], `${who} was shown these twice`);
  assert.deepEqual(texts, expected, `${who} saw these, in this order`);
}

processTest(
  "relay e2e: through loss, duplication and reordering both ways, every message is shown exactly once, in order, and acknowledged (§5.3)",
  async (procs) => {
    const link = {
      alice: "127.0.93.21",
      bob: "127.0.93.22",
      relay: "127.0.93.23",
    };
    // A one-bit sequence number is exact only while the network reorders
    // by less than a round trip (docs/RELIABILITY.md): 10 ms each way, up
    // to 8 ms more for reordered copies. The round trip is then 20–36 ms.
    const relay = await startRelay(procs, link, [
      "--loss",
      "15%",
      "--dup",
      "15%",
      "--delay",
      "10",
      "--reorder",
      "30%",
      "--reorder-delay",
      "8",
      "--seed",
      "20261202",
    ]);
    // 300 ms: also above the scheduling delays of a loaded machine, which
    // would otherwise let a retransmission overtake the next message.
    const { alice, bob } = await chatThroughRelay(procs, link, [
      "--timeout",
      "0.3",
      "--retries",
      "25",
    ]);
    const count = 20;
    const fromAlice = Array.from({ length: count }, (_, i) => `a-${i + 1}`);
    const fromBob = Array.from({ length: count }, (_, i) => `b-${i + 1}`);
    // Both type all their messages at once: both directions busy together.
    await Promise.all([
      (async () => {
        for (const text of fromAlice) await alice.write(text);
      })(),
      (async () => {
        for (const text of fromBob) await bob.write(text);
      })(),
    ]);
    const deadline = { timeoutMs: 30_000 };
    await Promise.all([
      bob.waitFor(
        `alice's ${count} messages`,
        () => shown(bob, "alice").length >= count,
        deadline,
      ),
      alice.waitFor(
        `bob's ${count} messages`,
        () => shown(alice, "bob").length >= count,
        deadline,
      ),
      alice.waitFor(
        "every delivered",
        (lines) => lines.filter((l) => /^delivered #/.test(l)).length >= count,
        deadline,
      ),
      bob.waitFor(
        "every delivered",
        (lines) => lines.filter((l) => /^delivered #/.test(l)).length >= count,
        deadline,
      ),
    ]);
    // Late copies still in the relay must not show anything more.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertExactlyOnceInOrder(shown(bob, "alice"), fromAlice, "bob");
    assertExactlyOnceInOrder(shown(alice, "bob"), fromBob, "alice");
    for (const client of [alice, bob]) {
      const ids = [...sentIds(client).values()];
      assert.equal(ids.length, count);
      const delivered = client.grep(/^delivered #\d+$/).map((l) =>
        Number(l.slice("delivered #".length))
      );
      assert.deepEqual(
        [...delivered].sort((x, y) => x - y),
        ids.sort((x, y) => x - y),
      );
      assert.deepEqual(client.grep(/^undelivered|^lost contact/), []);
    }
    await relay.stop("SIGTERM");
    // The impairments did happen, in both directions.
    const [ab, ba] = relayCounts(relay);
    for (const [name, counts] of [["A→B", ab], ["B→A", ba]] as const) {
      assert.ok(counts.dropped > 0, `${name}: nothing dropped`);
      assert.ok(counts.duplicated > 0, `${name}: nothing duplicated`);
      assert.ok(counts.reordered > 0, `${name}: nothing reordered`);
    }
    assert.ok(
      alice.grep(/^retransmitted #/).length > 0,
      "alice never retransmitted",
    );
  },
  { reportLines: 40 },
);

processTest(
  "relay e2e: when the link dies, every message not delivered is reported undelivered, none shown (§5.5)",
  async (procs) => {
    const link = {
      alice: "127.0.93.31",
      bob: "127.0.93.32",
      relay: "127.0.93.33",
    };
    const relay = await startRelay(procs, link, ["--seed", "1"]);
    const { alice, bob } = await chatThroughRelay(procs, link, [
      "--timeout",
      "0.1",
      "--retries",
      "3",
    ]);
    await alice.write("before");
    await bob.expect("alice: before");
    await alice.expect(/^delivered #/);
    await relay.stop("SIGTERM"); // the link is gone
    const lost = ["one", "two", "three"];
    for (const text of lost) await alice.write(text);
    await alice.expect(`lost contact with bob at ${link.relay}`, {
      timeoutMs: 10_000,
    });
    const ids = sentIds(alice);
    for (const text of lost) {
      await alice.expect(`undelivered #${ids.get(text)}: ${text}`);
    }
    assert.deepEqual(shown(bob, "alice"), ["before"]);
  },
  { reportLines: 40 },
);
