/**
 * Process tests of what the scripted client tells its user besides the
 * chat (issue 8): the progress of an invitation nobody answers, an inviter
 * answered busy while an invitation is pending, and a partner whose daemon
 * restarted during the chat. Real daemons and clients (`mod.ts`), on this
 * file's own addresses 127.0.101.x.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { processTest } from "../support/processes.ts";
import { ANSWER, CHAT, MENU } from "./_harness.ts";

const RETRY =
  /^no answer yet from 127\.0\.101\.99: invitation sent ([0-9]+) times, giving up in ([0-9]+) s \(\/leave cancels, q quits\)$/;

processTest(
  "scripted: inviting an address where nobody answers shows each try and the time left, then no answer (issue 8)",
  async (procs) => {
    await procs.daemon("127.0.101.1", [
      "--timeout",
      "0.3",
      "--invite-limit",
      "1.5",
    ]);
    const alice = procs.client("127.0.101.1", "alice");
    await alice.expect(MENU);
    await alice.write("1");
    await alice.write("127.0.101.99");
    await alice.expect("inviting 127.0.101.99");
    await alice.expect("no answer from 127.0.101.99", { timeoutMs: 10_000 });
    const tries = alice.grep(RETRY).map((line) => line.match(RETRY)!);
    ok(tries.length >= 2, alice.lines.stdout.join("\n"));
    deepStrictEqual(
      tries.map((match) => Number(match[1])),
      tries.map((_, i) => i + 2),
      "sent 2, 3, … times",
    );
    const left = tries.map((match) => Number(match[2]));
    ok(
      left.every((s, i) => s <= 2 && (i === 0 || s <= left[i - 1])),
      left.join(),
    );
    await alice.write("q");
    await alice.expect("bye");
    strictEqual((await alice.exit()).code, 0);
  },
);

processTest(
  "--json: each try of an invitation nobody answers is an invite-retry object (issue 8)",
  async (procs) => {
    await procs.daemon("127.0.101.2", [
      "--timeout",
      "0.3",
      "--invite-limit",
      "1",
    ]);
    const alice = procs.client("127.0.101.2", "alice", ["--json"]);
    await alice.expect(/"type":"prompt","ask":"menu"/);
    await alice.write("1");
    await alice.write("127.0.101.99");
    await alice.expect(/"type":"no-answer"/, { timeoutMs: 10_000 });
    const retries = alice.grep(/"type":"invite-retry"/).map((line) =>
      JSON.parse(line)
    );
    ok(retries.length >= 1, alice.lines.stdout.join("\n"));
    deepStrictEqual(Object.keys(retries[0]).sort(), [
      "attempt",
      "ip",
      "leftMs",
      "port",
      "type",
    ]);
    strictEqual(retries[0].attempt, 1);
    ok(Number.isInteger(retries[0].leftMs) && retries[0].leftMs <= 1000);
    await alice.closeStdin();
    strictEqual((await alice.exit()).code, 0);
  },
);

processTest(
  "an inviter answered busy while an invitation is pending: the user is told, the daemon logs it at info (§4.8, issue 8)",
  async (procs) => {
    const bobDaemon = await procs.daemon("127.0.101.3");
    await procs.daemon("127.0.101.4");
    await procs.daemon("127.0.101.5");
    const bob = procs.client("127.0.101.3", "bob");
    await bob.expect(MENU);
    await bob.write("2");
    await bob.expect("waiting for invitations");
    const alice = procs.client("127.0.101.4", "alice");
    await alice.expect(MENU);
    await alice.write("1");
    await alice.write("127.0.101.3");
    await bob.expectAll(["invitation from alice at 127.0.101.4", ANSWER]);
    const carol = procs.client("127.0.101.5", "carol");
    await carol.expect(MENU);
    await carol.write("1");
    await carol.write("127.0.101.3");
    await carol.expect("busy: User already in another chat");
    await bob.expect(
      "carol at 127.0.101.5 tried to invite you and was told you are busy",
    );
    await bobDaemon.waitFor(
      "the info line",
      (lines) =>
        lines.some((line) =>
          /INF/.test(line) && line.includes("busy-answered") &&
          line.includes("127.0.101.5")
        ),
      { stream: "stderr" },
    );
    // The invitation is still there to answer.
    await bob.write("n");
    await alice.expect("declined by bob at 127.0.101.3");
    for (const client of [alice, bob, carol]) await client.write("q");
    for (const client of [alice, bob, carol]) await client.exit();
  },
);

processTest(
  "the partner's daemon restarts during a chat: the other user is told of the reconnection, the restarted side that it was answered at once (§4.5, issue 8)",
  async (procs) => {
    const fast = ["--timeout", "0.5"];
    const aliceDaemon = await procs.daemon("127.0.101.6", fast);
    await procs.daemon("127.0.101.7", fast);
    const bob = procs.client("127.0.101.7", "bob");
    await bob.expect(MENU);
    await bob.write("2");
    const alice = procs.client("127.0.101.6", "alice");
    await alice.expect(MENU);
    await alice.write("1");
    await alice.write("127.0.101.7");
    await bob.expect(ANSWER);
    await bob.write("y");
    await alice.expectAll(["chat started with bob at 127.0.101.7", CHAT]);
    await bob.write("before");
    await alice.expect("bob: before");
    // Alice's daemon dies without a FIN; bob's goes on with the chat.
    aliceDaemon.kill("SIGKILL");
    strictEqual((await alice.exit()).code, 1);
    await aliceDaemon.exit();
    await procs.daemon("127.0.101.6", fast);
    const again = procs.client("127.0.101.6", "alice");
    await again.expect(MENU);
    await again.write("1");
    await again.write("127.0.101.7");
    await again.expectAll([
      "chat started with bob at 127.0.101.7",
      /^bob answered at once: if your daemon restarted during a chat with bob, this is that chat going on/,
      CHAT,
    ]);
    await bob.expect(
      "alice at 127.0.101.6 reconnected (their daemon restarted): messages around the restart may have been missed",
    );
    ok(!again.lines.stdout.some((line) => line.includes("accepted")));
    // The chat goes on both ways.
    await again.write("back again");
    await bob.expect("alice: back again");
    await bob.write("welcome back");
    await again.expect("bob: welcome back");
    await again.write("q");
    await bob.expect("alice left the chat");
    await bob.write("q");
    await Promise.all([again.exit(), bob.exit()]);
  },
);

processTest(
  "scripted: messages then q: every outcome is shown before bye, never 'not delivered yet' then 'delivered'; numbers start at #1 in each chat (issue 8 defect 5)",
  async (procs) => {
    await procs.daemon("127.0.101.8");
    await procs.daemon("127.0.101.9", ["--auto-accept"]);
    const alice = procs.client("127.0.101.8", "alice");
    await alice.expect(MENU);
    // One chat, left; a second chat; then q, all written at once.
    for (
      const line of [
        "1",
        "127.0.101.9",
        "one",
        "two",
        "/leave",
        "1",
        "127.0.101.9",
        "three",
        "q",
      ]
    ) {
      await alice.write(line);
    }
    strictEqual((await alice.exit()).code, 0);
    const out = alice.lines.stdout;
    deepStrictEqual(alice.grep(/^sent #/), [
      "sent #1: one",
      "sent #2: two",
      "sent #1: three",
    ]);
    deepStrictEqual(alice.grep(/^delivered #/), [
      "delivered #1",
      "delivered #2",
      "delivered #1",
    ]);
    // The last delivered comes before bye: the q waited for it.
    strictEqual(out.at(-2), "delivered #1");
    ok(!out.some((line) => line.includes("not delivered yet")), out.join("\n"));
    strictEqual(out.at(-1), "bye");
    deepStrictEqual(alice.lines.stderr, []);
  },
);
