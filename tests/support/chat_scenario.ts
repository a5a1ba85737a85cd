/**
 * The chat scenario of the end-to-end tests (tests/peer/sim_test.ts) on the
 * simulated network: alice invites bob, both type messages, alice leaves;
 * the checks of SPEC §5's guarantee on what each side saw; and the
 * fast-check generators of scenarios. Kept apart from the tests so that a
 * failing scenario can be replayed, with a trace, from a script:
 *
 * ```ts
 * import { checkGuarantee, runChat, type Scenario, Tally } from "./chat_scenario.ts";
 * const scenario: Scenario = JSON.parse(Deno.args[0]); // as fast-check printed it
 * const run = runChat(scenario, { trace: (e) => console.log(e.time, e.node, e.text) });
 * checkGuarantee(run, new Tally());
 * ```
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import {
  Session,
  SessionError,
  type Undelivered,
} from "../../lib/peer/session.ts";
import {
  type RunResult,
  SimNetwork,
  type SimNode,
  SimPrng,
  type TraceEntry,
} from "./sim_network.ts";

// ------------------------------------------------------------- scenarios

/** Impairments of one direction, as the scenario generators draw them. */
export interface Direction {
  /** Base one-way delay in ms. */
  delay: number;
  /** Largest extra delay in ms (kept below `delay`, see tests/peer/sim_test.ts). */
  jitter: number;
  /** Loss probability. */
  loss: number;
  /** Duplication probability. */
  duplicate: number;
  /** Corruption probability (1–3 flipped bits). */
  corrupt: number;
}

/** One chat between alice and bob, fully determined by its fields. */
export interface Scenario {
  /** Seed of the network's PRNG and of the users' timing. */
  seed: number;
  /** alice → bob. */
  ab: Direction;
  /** bob → alice. */
  ba: Direction;
  /** The fixed timeout is this many times the largest round trip (> 1). */
  timeoutFactor: number;
  /** Max retries (SPEC §5.5). */
  maxRetries: number;
  /** Queue bound (SPEC §5.1). */
  maxQueue: number;
  /**
   * Adaptive timeout (SPEC §5.6), or off. Its lower bound is this many
   * times the largest round trip, capped at the fixed timeout: below 1, a
   * retransmission can overtake the next datagram (see the module doc of
   * tests/peer/sim_test.ts).
   */
  adaptive: { minTimeoutFactor: number } | false;
  /** How many messages alice's user types. */
  aliceMessages: number;
  /** How many messages bob's user types. */
  bobMessages: number;
  /** Bob's user accepts this many timeouts after the invitation (> 1: after SYN retransmissions). */
  acceptDelay: number;
  /** Alice leaves this many timeouts after handing over her last message. */
  leaveDelay: number;
  /** Users type in bursts (no pause) with this probability, else pause up to 1.5 timeouts. */
  burst: number;
  /** One direction goes fully dark this long (ms) after alice's chat starts. */
  dark?: { direction: "ab" | "ba"; after: number };
  /** Deliver corrupted datagrams without the UDP checksum (robustness only). */
  rawCorruption?: boolean;
}

/** A message as its sender's user handed it to the engine. */
export interface SentMessage {
  /** The id {@linkcode Session.send} returned. */
  id: number;
  /** The text, unique in the run. */
  text: string;
}

/**
 * A user at a node: types messages when told to; when the engine refuses
 * one because its queue is full (SPEC §5.1) the user waits and tries again
 * after the next `delivered` event; once the chat is over, what was not
 * handed over is abandoned (never sent, so not part of the guarantee).
 */
export class ChatUser {
  /** Messages the engine accepted, in order. */
  readonly sent: SentMessage[] = [];
  /** Messages typed but never accepted because the chat was over. */
  readonly abandoned: string[] = [];
  /** How often `send` refused a message because the queue was full. */
  queueFullRefusals = 0;
  #node: SimNode;
  #pending: string[] = [];
  #remaining: number;
  #whenAllHandedOver: (() => void) | undefined;

  /**
   * A user at `node` who will type `total` messages; `whenAllHandedOver`
   * is called once every one of them was sent or abandoned.
   */
  constructor(node: SimNode, total: number, whenAllHandedOver?: () => void) {
    this.#node = node;
    this.#remaining = total;
    this.#whenAllHandedOver = whenAllHandedOver;
    node.on((event) => {
      if (event.type === "delivered") this.#flush();
      if (event.type === "peer-lost" || event.type === "peer-left") {
        this.#flush();
      }
    });
  }

  /** The user types `text` now. */
  type(text: string): void {
    this.#pending.push(text);
    this.#flush();
  }

  #flush(): void {
    while (this.#pending.length > 0) {
      const session = this.#node.session;
      const text = this.#pending[0];
      try {
        this.sent.push({ id: this.#node.send(text), text });
      } catch (error) {
        if (!(error instanceof SessionError)) throw error;
        if (
          inChat(session) && session.status().queued >= session.config.maxQueue
        ) {
          this.queueFullRefusals++;
          return; // wait for a delivered event
        }
        this.abandoned.push(text);
      }
      this.#pending.shift();
      this.#remaining--;
    }
    if (this.#remaining === 0 && this.#whenAllHandedOver) {
      const callback = this.#whenAllHandedOver;
      this.#whenAllHandedOver = undefined;
      callback();
    }
  }
}

function inChat(session: Session): boolean {
  return session.phase === "established" || session.phase === "accepting";
}

/** Everything a run of {@linkcode runChat} leaves behind for the checks. */
export interface ChatRun {
  /** What was run. */
  scenario: Scenario;
  /** The network, with its counters. */
  net: SimNetwork;
  /** The inviter. */
  alice: SimNode;
  /** The invited. */
  bob: SimNode;
  /** What alice's user sent. */
  aliceUser: ChatUser;
  /** What bob's user sent. */
  bobUser: ChatUser;
  /** How the event loop ended. */
  result: RunResult;
  /** The fixed timeout (and the adaptive one's upper bound) in ms. */
  timeout: number;
}

/** Unique message texts of random length, so identity is checkable. */
function texts(prefix: string, count: number, prng: SimPrng): string[] {
  return Array.from(
    { length: count },
    (_, i) => `${prefix} #${i} ` + "x".repeat(prng.below(40)),
  );
}

/**
 * Runs one chat: alice invites bob; bob's user accepts after a delay and
 * starts typing at once (messages wait in the queue while the handshake
 * finishes); alice types once the chat has started; both type in bursts and
 * pauses; alice leaves after her last message. The network runs until
 * nothing is left to happen.
 */
export function runChat(
  scenario: Scenario,
  options: { trace?: (entry: TraceEntry) => void } = {},
): ChatRun {
  const { ab, ba, seed } = scenario;
  const maxRtt = ab.delay + ab.jitter + ba.delay + ba.jitter;
  const timeout = Math.ceil(maxRtt * scenario.timeoutFactor) + 1;
  const config = {
    timeout,
    maxRetries: scenario.maxRetries,
    maxQueue: scenario.maxQueue,
    adaptiveTimeout: scenario.adaptive !== false,
    minTimeout: scenario.adaptive
      ? Math.min(
        timeout,
        Math.ceil(maxRtt * scenario.adaptive.minTimeoutFactor),
      )
      : 200,
  };
  const net = new SimNetwork({ seed, trace: options.trace });
  const alice = net.addNode(new Session({ userName: "alice", ...config }));
  const bob = net.addNode(new Session({ userName: "bob", ...config }));
  const rawCorruption = scenario.rawCorruption ?? false;
  net.setLink(alice, bob, { ...ab, rawCorruption });
  net.setLink(bob, alice, { ...ba, rawCorruption });

  // The users' timing has its own PRNG, so it does not shift with the network's.
  const prng = new SimPrng(seed ^ 0x5eed5eed);
  const pause = () =>
    prng.chance(scenario.burst) ? 0 : prng.uniform(0, 1.5 * timeout);
  const typeAll = (user: ChatUser, all: string[], start: number) => {
    let at = start;
    for (const text of all) {
      at += pause();
      net.at(at, () => user.type(text));
    }
  };
  const aliceTexts = texts("alice", scenario.aliceMessages, prng);
  const bobTexts = texts("bob", scenario.bobMessages, prng);

  const aliceUser = new ChatUser(alice, aliceTexts.length, () => {
    net.at(net.now + scenario.leaveDelay * timeout, () => {
      try {
        alice.leave();
      } catch (error) {
        // The chat may have ended meanwhile (also at this very instant).
        if (!(error instanceof SessionError)) throw error;
        strictEqual(alice.session.phase, "idle");
      }
    });
  });
  const bobUser = new ChatUser(bob, bobTexts.length);

  let aliceStarted = false;
  alice.on((event, now) => {
    if (event.type !== "chat-started" || aliceStarted) return;
    aliceStarted = true;
    typeAll(aliceUser, aliceTexts, now);
    if (scenario.dark) {
      const [from, to] = scenario.dark.direction === "ab"
        ? [alice, bob]
        : [bob, alice];
      net.at(
        now + scenario.dark.after,
        () => net.setLink(from, to, { loss: 1 }),
      );
    }
  });
  let bobInvited = false;
  bob.on((event, now) => {
    if (event.type !== "invitation") return;
    if (bobInvited) {
      // A late duplicate SYN after the chat: not a chat this user wants.
      net.at(now, () => {
        if (bob.session.phase === "invited") bob.decline();
      });
      return;
    }
    bobInvited = true;
    net.at(now + scenario.acceptDelay * timeout, (at) => {
      if (bob.session.phase !== "invited") return;
      bob.accept();
      typeAll(bobUser, bobTexts, at);
    });
  });

  net.at(0, () => alice.invite(bob.address));
  const result = net.run({ timeLimit: 1e9 });
  return { scenario, net, alice, bob, aliceUser, bobUser, result, timeout };
}

// ---------------------------------------------------------------- checks

/** What one direction's check found, for the summaries. */
export interface DirectionOutcome {
  /** The message in flight when its sender reported it undelivered had in fact arrived. */
  inDoubt: boolean;
  /** Messages reported undelivered. */
  undelivered: number;
}

/**
 * SPEC §5.3 and §5.5 for the messages `sender` sent to `receiver`: the
 * receiver got a prefix of them, each exactly once, in order; the sender was
 * told `delivered` for a prefix of that, each only after the receiver had
 * it; and whatever was not confirmed is listed, in order, in the one
 * `peer-lost` or `peer-left` report — never dropped silently.
 *
 * One message may be both delivered and reported: the one in flight when
 * the report was made. Its datagram may have arrived while every ACK of it
 * was lost (or the peer left before its ACK came back); no protocol can tell
 * that apart from a lost datagram (the Two Generals' problem). So the check
 * allows exactly that message, the first of the report, to have arrived.
 */
export function checkDirection(
  user: ChatUser,
  sender: SimNode,
  receiver: SimNode,
): DirectionOutcome {
  const who = `${sender.name} → ${receiver.name}`;
  const sent = user.sent;
  const confirmed = sender.eventsOf("delivered");
  const received = receiver.eventsOf("message");

  const k = received.length;
  deepStrictEqual(
    received.map((e) => e.event.text),
    sent.slice(0, k).map((m) => m.text),
    `${who}: the receiver must get a prefix of the sent messages, each once, in order (§5.3)`,
  );
  const j = confirmed.length;
  deepStrictEqual(
    confirmed.map((e) => e.event.id),
    sent.slice(0, j).map((m) => m.id),
    `${who}: delivered events must name a prefix of the sent messages, once each, in order`,
  );
  ok(
    j <= k,
    `${who}: ${j} messages confirmed but only ${k} arrived (a delivered event for a message the receiver never got)`,
  );
  for (let i = 0; i < j; i++) {
    ok(
      confirmed[i].time > received[i].time,
      `${who}: message ${sent[i].id} was confirmed at ${
        confirmed[i].time
      } ms, before it arrived at ${received[i].time} ms`,
    );
  }
  ok(
    k <= j + 1,
    `${who}: ${k} arrived, ${j} confirmed: stop-and-wait allows one in flight`,
  );

  const reports = [
    ...sender.eventsOf("peer-lost"),
    ...sender.eventsOf("peer-left"),
  ];
  ok(reports.length <= 1, `${who}: one chat ends at most once`);
  const undelivered: Undelivered[] = reports[0]?.event.undelivered ?? [];
  deepStrictEqual(
    undelivered.map((u) => [u.id, u.text]),
    sent.slice(j).map((m) => [m.id, m.text]),
    `${who}: every message not confirmed must be reported undelivered, in order (§5.5); ` +
      `report: ${reports[0] ? reports[0].event.type : "none"}`,
  );
  return {
    inDoubt: k === j + 1,
    undelivered: undelivered.length,
  };
}

/**
 * The run ended by itself (no timer left and nothing in flight) and each
 * engine is idle, or in a chat with nothing to send (a chat whose peer left
 * without our hearing it, when we have nothing to send, has no timer: SIMP
 * has no keep-alive).
 */
export function checkQuiet(run: ChatRun): void {
  strictEqual(run.result.reason, "quiet", "the run must end by itself");
  for (const node of [run.alice, run.bob]) {
    const { phase, queued } = node.session.status();
    ok(
      phase === "idle" || (phase === "established" && queued === 0),
      `${node.name} ends ${phase} with ${queued} queued`,
    );
    strictEqual(node.session.nextTimeout(), undefined);
  }
}

/** Tallies over the runs of one property, printed for the notes. */
export class Tally {
  /** Runs checked. */
  runs = 0;
  /** Directions where the message in flight at the report had arrived. */
  inDoubt = 0;
  /** Messages reported undelivered. */
  undelivered = 0;
  /** Runs where corruption got past the UDP checksum (checked for a clean end only). */
  slippedCorruption = 0;
  /** `peer-lost` events. */
  peerLost = 0;
  /** Messages the engines accepted. */
  messages = 0;
  /** Datagrams sent. */
  datagrams = 0;
  /** Times a user found the queue full. */
  queueFull = 0;

  /** Prints the tally on one line. */
  print(title: string): void {
    console.log(
      `${title}: ${this.runs} runs, ${this.messages} messages sent, ` +
        `${this.undelivered} reported undelivered, ${this.peerLost} chats ended by peer-lost, ` +
        `${this.inDoubt} in-doubt (delivered and reported), ${this.queueFull} queue-full refusals, ` +
        `${this.slippedCorruption} runs with corruption past the UDP checksum, ` +
        `${
          (this.datagrams / Math.max(1, this.runs)).toFixed(0)
        } datagrams per run`,
    );
  }
}

/**
 * The whole guarantee for one run. A corrupted datagram that slipped past
 * the UDP checksum carries wrong bytes that SIMP cannot detect (it has no
 * checksum of its own), so for such a run only termination and a consistent
 * end state are asserted.
 */
export function checkGuarantee(run: ChatRun, tally: Tally): void {
  tally.runs++;
  const totals = run.net.totals;
  tally.datagrams += totals.sent;
  tally.messages += run.aliceUser.sent.length + run.bobUser.sent.length;
  tally.queueFull += run.aliceUser.queueFullRefusals +
    run.bobUser.queueFullRefusals;
  tally.peerLost += run.alice.eventsOf("peer-lost").length +
    run.bob.eventsOf("peer-lost").length;
  checkQuiet(run);
  if (totals.corruptDelivered > 0) {
    tally.slippedCorruption++;
    return;
  }
  for (
    const outcome of [
      checkDirection(run.aliceUser, run.alice, run.bob),
      checkDirection(run.bobUser, run.bob, run.alice),
    ]
  ) {
    if (outcome.inDoubt) tally.inDoubt++;
    tally.undelivered += outcome.undelivered;
  }
}

// ------------------------------------------------------------ generators

/** Impairments of one direction within `limits`, with jitter < delay (see tests/peer/sim_test.ts). */
export function direction(
  limits: { loss: number; duplicate: number; corrupt: number },
): fc.Arbitrary<Direction> {
  return fc.record({
    delay: fc.integer({ min: 5, max: 200 }),
    jitterFraction: fc.double({ min: 0, max: 0.9, noNaN: true }),
    loss: fc.double({ min: 0, max: limits.loss, noNaN: true }),
    duplicate: fc.double({ min: 0, max: limits.duplicate, noNaN: true }),
  }).map(({ delay, jitterFraction, loss, duplicate }) => ({
    delay,
    jitter: jitterFraction * delay,
    loss,
    duplicate,
    corrupt: limits.corrupt,
  }));
}

/** The ranges {@linkcode scenarioArbitrary} draws from. */
export interface ScenarioLimits {
  /** Largest loss probability per direction. */
  loss: number;
  /** Largest duplication probability per direction. */
  duplicate: number;
  /** Corruption probability per direction (fixed). */
  corrupt: number;
  /** Whether runs use the adaptive timeout (SPEC §5.6). */
  adaptive: "never" | "sometimes" | "always";
  /** Range of the adaptive timeout's lower bound, in largest round trips; default [1.01, 3]. */
  minTimeoutFactor?: [number, number];
  /** Whether one direction goes dark in every run. */
  dark: "never" | "always";
  /** Most messages each user types. */
  maxMessages: number;
  /** Range of max retries (SPEC §5.5); default [1, 6]. */
  maxRetries?: [number, number];
}

/**
 * Chat scenarios within `limits`: delays in [5, 200] ms, jitter below the
 * delay, a fixed timeout 1.05–3 times the largest round trip, 1–6 retries,
 * queues of 1–8, 0–`maxMessages` messages each, bob accepting after 0–3.5
 * timeouts (so after several SYN retransmissions), and typing from bursts to
 * long pauses.
 */
export function scenarioArbitrary(
  limits: ScenarioLimits,
): fc.Arbitrary<Scenario> {
  const dir = direction(limits);
  const chat = fc.record({
    seed: fc.integer({ min: 0, max: 0xffffffff }),
    ab: dir,
    ba: dir,
    timeoutFactor: fc.double({ min: 1.05, max: 3, noNaN: true }),
    maxRetries: fc.integer({
      min: limits.maxRetries?.[0] ?? 1,
      max: limits.maxRetries?.[1] ?? 6,
    }),
    maxQueue: fc.integer({ min: 1, max: 8 }),
    adaptive: adaptiveArbitrary(limits),
    aliceMessages: fc.integer({ min: 0, max: limits.maxMessages }),
    bobMessages: fc.integer({ min: 0, max: limits.maxMessages }),
    acceptDelay: fc.double({ min: 0, max: 3.5, noNaN: true }),
    leaveDelay: fc.double({ min: 0, max: 2, noNaN: true }),
    burst: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  if (limits.dark === "never") return chat;
  const dark = fc.record({
    direction: fc.constantFrom<"ab" | "ba">("ab", "ba"),
    after: fc.integer({ min: 0, max: 30_000 }),
  });
  return fc.tuple(chat, dark).map(([s, d]): Scenario => ({ ...s, dark: d }));
}

function adaptiveArbitrary(
  limits: ScenarioLimits,
): fc.Arbitrary<Scenario["adaptive"]> {
  const [min, max] = limits.minTimeoutFactor ?? [1.01, 3];
  const on = fc.record({
    minTimeoutFactor: fc.double({ min, max, noNaN: true }),
  });
  switch (limits.adaptive) {
    case "never":
      return fc.constant(false);
    case "sometimes":
      return fc.oneof(fc.constant<false>(false), on);
    case "always":
      return on;
  }
}
