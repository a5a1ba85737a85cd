/**
 * Figures for the reliability trade-offs of the README and
 * docs/RELIABILITY.md, estimated on the simulated network in virtual time
 * (tests/support/sim_network.ts): nothing is sent for real, so the runs are
 * exact replays of their seeds and take seconds.
 *
 * - `floors`: the adaptive timeout (SPEC §5.6) at 10 % loss each way, for
 *   round trips of 0.1–2 ms and lower bounds (`--min-timeout`) of 1–200 ms,
 *   on a quiet and on a busy machine (datagrams held up now and then, in
 *   order, as by a loaded scheduler): the message rate as a fraction of the
 *   lossless rate, and retransmissions per datagram actually lost.
 * - `retries`: how long chats last at 30 % loss each way with the default
 *   fixed timeout, for `--retries` 5 (the default) and 30: messages per
 *   direction before `peer-lost`, both users typing all the time.
 *
 * ```sh
 * deno run tools/sim_reliability.ts floors
 * deno run tools/sim_reliability.ts retries
 * ```
 *
 * @module
 */

import type { SessionOptions } from "../lib/peer/session.ts";
import type { LinkImpairments } from "../tests/support/sim_network.ts";
import {
  simulateChat as simulate,
  type ThroughputOutcome as Outcome,
} from "../tests/support/throughput.ts";

// ----------------------------------------------------------------- floors

const MESSAGES = 20_000;

/** A machine's scheduling noise: no stalls, or some datagrams held up. */
const MACHINES: Record<string, Partial<LinkImpairments>> = {
  quiet: {},
  busy: { stall: 0.01, stallMax: 10 },
  "very busy": { stall: 0.03, stallMax: 30 },
};

function floors(): void {
  const rtts = [0.1, 0.5, 1, 2];
  const floorsMs = [1, 2, 5, 10, 20, 50, 200];
  console.log(
    `Adaptive timeout at 10 % loss each way, alice sends ${MESSAGES} messages back to back (virtual time).`,
  );
  console.log(
    "rate = messages/s as a fraction of the lossless rate (same settings, no loss); retx/lost = retransmissions per datagram lost",
  );
  for (const [machine, noise] of Object.entries(MACHINES)) {
    console.log(`\n${machine} machine ${JSON.stringify(noise)}`);
    console.log(
      ["RTT ms", "fixed 5 s", ...floorsMs.map((f) => `floor ${f} ms`)].join(
        " | ",
      ),
    );
    for (const rtt of rtts) {
      const link = { delay: rtt / 2, jitter: rtt / 4, ...noise };
      const cells = [`${rtt}`];
      for (const floor of [undefined, ...floorsMs]) {
        const session: SessionOptions = floor === undefined
          ? { maxRetries: 30 }
          : { maxRetries: 30, adaptiveTimeout: true, minTimeout: floor };
        const base = {
          seed: 9,
          session,
          aliceMessages: MESSAGES,
          bobMessages: 0,
        };
        const lossless = simulate({ ...base, link, timeLimit: 1e9 });
        // The fixed 5 s timeout is slow: fewer messages, same ratio.
        const lossy = simulate({
          ...base,
          aliceMessages: floor === undefined ? 500 : MESSAGES,
          link: { ...link, loss: 0.1 },
          timeLimit: 1e9,
        });
        const rate = (o: Outcome) => o.aliceDelivered / o.aliceTime;
        const ratio = rate(lossy) / rate(lossless);
        const retx = lossy.retransmitted / Math.max(1, lossy.networkLost);
        const spurious = lossless.retransmitted;
        cells.push(
          `${ratio < 0.01 ? ratio.toPrecision(2) : ratio.toFixed(2)}× ${
            retx.toFixed(2)
          }${spurious > 0 ? ` (${spurious} lossless)` : ""}`,
        );
      }
      console.log(cells.join(" | "));
    }
  }
}

// ---------------------------------------------------------------- retries

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function retries(): void {
  const cap = 10_000;
  console.log(
    `Chats at 30 % loss each way, fixed 5 s timeout, 10 ms one-way delay, both users typing all the time (at most ${cap} messages each way).`,
  );
  for (const [maxRetries, chats] of [[5, 400], [10, 100], [30, 20]]) {
    const perDirection: number[] = [];
    const minutes: number[] = [];
    let died = 0;
    for (let seed = 1; seed <= chats; seed++) {
      const o = simulate({
        seed,
        link: { delay: 10, jitter: 2, loss: 0.3 },
        session: { maxRetries },
        aliceMessages: cap,
        bobMessages: cap,
        timeLimit: 1e12,
      });
      if (o.lost) died++;
      perDirection.push((o.aliceDelivered + o.bobDelivered) / 2);
      minutes.push(o.aliceTime / 60_000);
    }
    console.log(
      `--retries ${maxRetries}: ${died} of ${chats} chats ended by peer-lost; ` +
        `median ${median(perDirection)} messages per direction ` +
        `(${Math.min(...perDirection)}–${Math.max(...perDirection)}), ` +
        `median ${median(minutes).toFixed(1)} min of chat`,
    );
  }
}

if (import.meta.main) {
  const what = Deno.args[0];
  if (what === "floors") floors();
  else if (what === "retries") retries();
  else {
    console.error(
      "Usage: deno run tools/sim_reliability.ts floors|retries — give floors or retries",
    );
    Deno.exit(2);
  }
}
