/**
 * Long chats on the simulated network (tests/support/sim_network.ts) in
 * virtual time, for throughput and lifetime figures: both users keep their
 * send queues full; the run ends when every message is confirmed, when a
 * side declares its peer lost, or at a time limit.
 *
 * @example
 * ```ts
 * import { simulateChat } from "./throughput.ts";
 * const o = simulateChat({
 *   seed: 1, link: { delay: 1, loss: 0.1 }, timeLimit: 1e9,
 *   session: { adaptiveTimeout: true, maxRetries: 30 },
 *   aliceMessages: 1000, bobMessages: 0,
 * });
 * console.log(o.aliceDelivered / o.aliceTime, "messages per ms");
 * ```
 *
 * @module
 */

import { Session, type SessionOptions } from "../../lib/peer/session.ts";
import {
  type LinkImpairments,
  SimNetwork,
  type SimNode,
} from "./sim_network.ts";

/** One simulated chat's settings. */
export interface ThroughputRun {
  /** Seed of the network's PRNG. */
  seed: number;
  /** Impairments of both directions. */
  link: Partial<LinkImpairments>;
  /** Settings of both engines (bob's auto-accepts). */
  session: SessionOptions;
  /** Messages alice types (all at once; the queue holds her back). */
  aliceMessages: number;
  /** Messages bob types (all at once). */
  bobMessages: number;
  /** Give up after this much virtual time (ms). */
  timeLimit: number;
}

/** What one chat did. */
export interface ThroughputOutcome {
  /** Virtual ms from alice's chat-started to her last `delivered`. */
  aliceTime: number;
  /** Messages alice's user got `delivered` for. */
  aliceDelivered: number;
  /** Messages bob's user got `delivered` for. */
  bobDelivered: number;
  /** Whether a side declared its peer lost. */
  lost: boolean;
  /** Retransmissions of chat datagrams, both sides. */
  retransmitted: number;
  /** Datagrams the network lost, both directions. */
  networkLost: number;
}

/** Keeps `node`'s queue full with `total` messages, refilled as they are delivered. */
function feed(node: SimNode, total: number): void {
  let typed = 0;
  const fill = () => {
    const s = node.session;
    while (
      typed < total && s.phase === "established" &&
      s.status().queued < s.config.maxQueue
    ) {
      node.send(`${node.name} #${typed++}`);
    }
  };
  node.on((event) => {
    if (event.type === "chat-started" || event.type === "delivered") fill();
  });
}

/** Runs one chat: alice invites bob (auto-accepting), both send their messages. */
export function simulateChat(run: ThroughputRun): ThroughputOutcome {
  const net = new SimNetwork({ seed: run.seed, impairments: run.link });
  const alice = net.addNode(new Session({ userName: "alice", ...run.session }));
  const bob = net.addNode(
    new Session({ userName: "bob", autoAccept: true, ...run.session }),
  );
  feed(alice, run.aliceMessages);
  feed(bob, run.bobMessages);
  let started = 0;
  let lastDelivered = 0;
  const delivered = { alice: 0, bob: 0 };
  let lost = false;
  alice.on((event, now) => {
    if (event.type === "chat-started") started = now;
    if (event.type === "delivered") {
      delivered.alice++;
      lastDelivered = now;
    }
    if (event.type === "peer-lost") lost = true;
  });
  bob.on((event) => {
    if (event.type === "delivered") delivered.bob++;
    if (event.type === "peer-lost") lost = true;
  });
  net.at(0, () => alice.invite(bob.address));
  const done = () =>
    delivered.alice === run.aliceMessages && delivered.bob === run.bobMessages;
  net.run({ until: () => done() || lost, timeLimit: run.timeLimit });
  return {
    aliceTime: (delivered.alice > 0 ? lastDelivered : net.now) - started,
    aliceDelivered: delivered.alice,
    bobDelivered: delivered.bob,
    lost,
    retransmitted: alice.eventsOf("retransmitted").length +
      bob.eventsOf("retransmitted").length,
    networkLost: net.totals.lost,
  };
}
