/**
 * End-to-end tests of SIMP's delivery guarantee (SPEC §5) over a simulated
 * network in virtual time (tests/support/sim_network.ts): alice invites bob,
 * bob accepts (often after SYN retransmissions), both type messages, alice
 * leaves; loss, duplication, reordering and corruption act on every
 * datagram. Every message must end up delivered exactly once, in order, or
 * reported back to its sender as undelivered (tests/support/chat_scenario.ts
 * has the scenario and the checks).
 *
 * The envelope. SIMP's one-bit sequence number (the alternating-bit
 * protocol) is correct only over a channel that does not reorder datagrams
 * across a round trip. With a base one-way delay d and a jitter J < d, and
 * a fixed timeout above the largest round trip, a datagram sent after the
 * answer to an earlier one can never overtake it. So the generators draw d
 * in [5, 200] ms, J in [0, 0.9·d] and the timeout 1.05–3 largest round trips.
 * The adaptive timeout (§5.6) stays in that envelope only if its lower bound
 * is above the largest round trip too: below it, a retransmission sent just
 * before the ACK can overtake the next datagram and be delivered twice (seen
 * at about 1 run in 1,000 with 100-message chats and a lower bound of 0.05–1
 * round trips), so the §5.6 property draws the bound in 1.01–3 round trips.
 *
 * What the checks allow, and why:
 * - the one message in flight when its sender reports the chat over may have
 *   arrived (all its ACKs lost): no protocol can know (Two Generals), so it
 *   may be both delivered and reported undelivered ("in doubt");
 * - a run where a corrupted datagram got past the UDP checksum (possible
 *   with 2–3 flipped bits) is only checked for a clean end: SIMP has no
 *   checksum of its own and cannot notice;
 *
 * Each property prints a tally of what its runs went through. To replay a
 * failing case, pass the scenario fast-check prints to
 * `runChat(scenario, { trace: console.log })`.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import {
  checkGuarantee,
  checkQuiet,
  runChat,
  type Scenario,
  scenarioArbitrary,
  type ScenarioLimits,
  Tally,
} from "../support/chat_scenario.ts";
import type { SimNode, TimedEvent } from "../support/sim_network.ts";
import { simulateChat } from "../support/throughput.ts";
import { flipBits } from "../../lib/_prng.ts";
import {
  internetChecksum,
  SimPrng,
  udpChecksum,
  udpChecksumAccepts,
} from "../support/sim_network.ts";

/**
 * Runs per property. One run (two users, up to 25 messages each) takes
 * about 0.3 ms, so each property takes under a second.
 */
const RUNS = 2000;

const A = { ip: "127.0.77.1", port: 7777 };
const B = { ip: "127.0.77.2", port: 7777 };

// ------------------------------------------------- the simulated network

Deno.test("sim network: RFC 1071 §3 worked example gives checksum 0x220d", () => {
  const bytes = Uint8Array.from([0, 1, 0xf2, 3, 0xf4, 0xf5, 0xf6, 0xf7]);
  strictEqual(internetChecksum(bytes), 0x220d);
});

Deno.test("sim network: the UDP checksum (RFC 768) catches every single-bit flip", () => {
  const route = { from: A, to: B };
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 39, maxLength: 200 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (bytes, seed) => {
        const checksum = udpChecksum(bytes, route);
        ok(udpChecksumAccepts(bytes, checksum, route));
        const flipped = flipBits(bytes, 1, new SimPrng(seed));
        ok(!udpChecksumAccepts(flipped, checksum, route));
      },
    ),
  );
});

Deno.test("sim network: two flips of one bit position in opposite directions pass the UDP checksum", () => {
  const route = { from: A, to: B };
  const bytes = new Uint8Array([0x01, 0x00, 0x00, 0x00]);
  const checksum = udpChecksum(bytes, route);
  // The low bit of byte 0 goes 1→0 and that of byte 2 goes 0→1: both are
  // bit 8 of their 16-bit word, so the ones'-complement sum is unchanged.
  ok(
    udpChecksumAccepts(
      new Uint8Array([0x00, 0x00, 0x01, 0x00]),
      checksum,
      route,
    ),
  );
});

Deno.test("sim network: the same seed replays the same run", () => {
  const fixed: Scenario = {
    seed: 42,
    ab: { delay: 30, jitter: 20, loss: 0.2, duplicate: 0.1, corrupt: 0.05 },
    ba: { delay: 50, jitter: 10, loss: 0.2, duplicate: 0.1, corrupt: 0.05 },
    timeoutFactor: 1.5,
    maxRetries: 5,
    maxQueue: 4,
    adaptive: false,
    aliceMessages: 20,
    bobMessages: 20,
    acceptDelay: 1.5,
    leaveDelay: 0.5,
    burst: 0.5,
  };
  const traces = [0, 1].map(() => {
    const lines: string[] = [];
    runChat(fixed, {
      trace: (e) => lines.push(`${e.time} ${e.node} ${e.text}`),
    });
    return lines;
  });
  ok(traces[0].length > 100);
  deepStrictEqual(traces[0], traces[1]);
});

// ---------------------------------------------------- the guarantee, §5

/**
 * Checks the guarantee of §5.3 on {@linkcode RUNS} chats of up to 25
 * messages each way, at up to 30 % loss, 10 % duplication and 1 %
 * corruption, with reordering; `limits` choose the timeout (§5.6) and whether
 * one direction goes dark. Returns the tally of the runs.
 */
function checkGuaranteeRuns(
  limits: Pick<ScenarioLimits, "adaptive" | "dark">,
): Tally {
  const tally = new Tally();
  fc.assert(
    fc.property(
      scenarioArbitrary({
        loss: 0.3,
        duplicate: 0.1,
        corrupt: 0.01,
        maxMessages: 25,
        ...limits,
      }),
      (s) => checkGuarantee(runChat(s), tally),
    ),
    { numRuns: RUNS },
  );
  return tally;
}

Deno.test(
  "§5.3 every message delivered exactly once, in order, or reported undelivered (loss ≤30 %, dup ≤10 %, reorder, 1 % corruption)",
  () => {
    const tally = checkGuaranteeRuns({ adaptive: "never", dark: "never" });
    tally.print("fixed timeout");
  },
);

Deno.test(
  "§5.6 adaptive timeout keeps the guarantee of §5.3 (loss ≤30 %, dup ≤10 %, reorder, 1 % corruption)",
  () => {
    const tally = checkGuaranteeRuns({ adaptive: "always", dark: "never" });
    tally.print("adaptive timeout");
  },
);

Deno.test(
  "§5.5 a peer that goes dark mid-chat is declared lost and every message not delivered is reported",
  () => {
    const tally = checkGuaranteeRuns({ adaptive: "sometimes", dark: "always" });
    tally.print("one direction dark");
    ok(tally.peerLost > 0, "some runs must end with the peer declared lost");
  },
);

/**
 * SPEC §6.2 has the side that got a FIN re-ACK duplicates of it for 2
 * timeouts only, while the side that sent it retransmits it for up to
 * max retries timeouts: when the ACKs of the first copies are lost, the
 * later copies go unanswered and the FIN's sender declares a peer lost
 * that had in fact received the FIN and left the chat. This recognises
 * exactly that: `node` was closing with nothing but its FIN left (nothing
 * reported undelivered), and `other` had received the FIN (`peer-left`)
 * more than 2 timeouts before `node` gave up.
 */
function finAckWindowClosed(
  node: SimNode,
  other: SimNode,
  lost: TimedEvent & { event: { undelivered: unknown[] } },
): boolean {
  const left = other.eventsOf("peer-left")[0];
  return lost.event.undelivered.length === 0 && left !== undefined &&
    lost.time > left.time + 2 * node.session.config.timeout;
}

Deno.test(
  "§5.2 retransmissions get through: no peer is declared lost while the network delivers (loss ≤20 %, 20 retries)",
  () => {
    // A round trip fails with probability at most 1 − 0.8² (plus 1 %
    // corruption each way), so 21 failures in a row happen with
    // probability < 10^-8 per message: a peer-lost here means the engine
    // stopped answering (e.g. a duplicate not re-ACKed, §5.3) or stalled.
    // One exception is the spec's own (§6.2): the side that left may give
    // up on its FIN after the other side got it, see finAckWindowClosed.
    const tally = new Tally();
    let finWindow = 0;
    fc.assert(
      fc.property(
        scenarioArbitrary({
          loss: 0.2,
          duplicate: 0.1,
          corrupt: 0.01,
          adaptive: "sometimes",
          dark: "never",
          maxMessages: 25,
          maxRetries: [20, 20],
        }),
        (s) => {
          const run = runChat(s);
          checkGuarantee(run, tally);
          if (run.net.totals.corruptDelivered > 0) return;
          for (
            const [node, other] of [[run.alice, run.bob], [run.bob, run.alice]]
          ) {
            const lost = node.eventsOf("peer-lost");
            if (lost.length === 1 && finAckWindowClosed(node, other, lost[0])) {
              finWindow++;
              continue;
            }
            deepStrictEqual(lost, [], `${node.name} declared its peer lost`);
          }
          strictEqual(
            run.aliceUser.sent.length,
            s.aliceMessages,
            "alice could send everything",
          );
          strictEqual(run.alice.eventsOf("delivered").length, s.aliceMessages);
        },
      ),
      { numRuns: RUNS },
    );
    tally.print("liveness");
    console.log(
      `liveness: ${finWindow} chats where the FIN sender declared its peer lost after the peer had stopped re-ACKing its FIN (§6.2 window)`,
    );
  },
);

Deno.test(
  "§5.3 10,000 messages at 30 % loss each way are all delivered exactly once, in order",
  () => {
    // maxRetries 30: at 30 % loss each way a round trip fails with
    // probability 0.51, so the spec default of 5 retries would declare the
    // peer lost after about 57 messages on average (0.51^6 ≈ 1.8 %); with 30
    // retries the chance of that over 10,000 messages is below 10^-4.
    const scenario: Scenario = {
      seed: 20_000,
      ab: { delay: 20, jitter: 5, loss: 0.3, duplicate: 0, corrupt: 0 },
      ba: { delay: 20, jitter: 5, loss: 0.3, duplicate: 0, corrupt: 0 },
      timeoutFactor: 2,
      maxRetries: 30,
      maxQueue: 64,
      adaptive: false,
      aliceMessages: 10_000,
      bobMessages: 0,
      acceptDelay: 0.5,
      leaveDelay: 0,
      burst: 1, // alice types everything at once; the queue holds her back
    };
    const started = performance.now();
    const run = runChat(scenario);
    const wall = performance.now() - started;
    const tally = new Tally();
    checkGuarantee(run, tally);
    strictEqual(run.aliceUser.sent.length, 10_000);
    strictEqual(run.bob.eventsOf("message").length, 10_000);
    strictEqual(run.alice.eventsOf("delivered").length, 10_000);
    strictEqual(run.alice.eventsOf("chat-closed").length, 1);
    const totals = run.net.totals;
    console.log(
      `10,000 messages at 30 % loss each way: ${
        wall.toFixed(0)
      } ms wall time, ` +
        `${(run.result.time / 1000).toFixed(0)} s virtual time, ` +
        `${totals.sent} datagrams (${
          (totals.sent / 10_000).toFixed(2)
        } per delivered message; ${totals.lost} lost), ` +
        `${run.result.steps} simulation steps`,
    );
  },
);

Deno.test(
  "§2 corrupted bytes delivered without the UDP checksum never make an engine throw, and every chat ends",
  () => {
    // Without the checksum, a flipped Sequence bit or Type/Operation that
    // still decodes is a valid-looking datagram: it can fool any SIMP
    // implementation (a chat datagram delivered twice, an ACK taken for
    // another, a chat ended by a FIN nobody sent). So exactly-once is not
    // asserted here, only robustness: no exception escapes an engine, and
    // each side ends idle or in a chat with nothing to send.
    let malformed = 0;
    let corrupted = 0;
    fc.assert(
      fc.property(
        scenarioArbitrary({
          loss: 0.3,
          duplicate: 0.1,
          corrupt: 0,
          adaptive: "sometimes",
          dark: "never",
          maxMessages: 15,
        }),
        fc.double({ min: 0.2, max: 1, noNaN: true }),
        fc.double({ min: 0.2, max: 1, noNaN: true }),
        (s, ab, ba) => {
          const run = runChat({
            ...s,
            ab: { ...s.ab, corrupt: ab },
            ba: { ...s.ba, corrupt: ba },
            rawCorruption: true,
          });
          checkQuiet(run);
          malformed += run.alice.session.counters.malformed +
            run.bob.session.counters.malformed;
          corrupted += run.net.totals.corruptDelivered;
        },
      ),
      { numRuns: RUNS / 2 },
    );
    ok(malformed > 0, "corrupted datagrams must reach the decoder");
    ok(corrupted > malformed, "some must decode and reach the rules");
  },
);

Deno.test(
  "§5.6 adaptive timeout with the default floor at 10 % loss each way (2 ms round trip, a busy machine): ≥ 0.25× the lossless rate, retransmissions ≤ 1.2× the datagrams lost",
  () => {
    // Virtual time, so a ratio of simulated rates, not a timed assertion;
    // the figures for other round trips and floors come from
    // `deno run tools/sim_reliability.ts floors` (README, "On a lossy link").
    const link = { delay: 1, jitter: 0.5, stall: 0.01, stallMax: 10 };
    const run = {
      seed: 5,
      session: { adaptiveTimeout: true, maxRetries: 30 },
      aliceMessages: 5000,
      bobMessages: 0,
      timeLimit: 1e9,
    };
    const lossless = simulateChat({ ...run, link });
    const lossy = simulateChat({ ...run, link: { ...link, loss: 0.1 } });
    strictEqual(lossy.aliceDelivered, 5000);
    const ratio = lossless.aliceTime / lossy.aliceTime;
    const perLoss = lossy.retransmitted / lossy.networkLost;
    console.log(
      `adaptive timeout, default floor, 10 % loss: ${
        ratio.toFixed(2)
      }× the lossless rate, ` +
        `${perLoss.toFixed(2)} retransmissions per datagram lost`,
    );
    ok(ratio >= 0.25, `${ratio}× the lossless rate`);
    ok(perLoss <= 1.2, `${perLoss} retransmissions per datagram lost`);
  },
);
