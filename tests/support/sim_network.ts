/**
 * A deterministic simulated network in virtual time for SIMP engines
 * ({@linkcode Session}): nothing is sent for real. A discrete-event loop
 * takes, in order of time and then of scheduling, datagram arrivals, engine
 * wake-ups (from {@linkcode Session.nextTimeout}, re-read after every call
 * into an engine) and scripted user actions. Every random choice comes from
 * one seeded PRNG, so a seed and a script replay the same run exactly.
 *
 * Each direction between two addresses has its own impairments: loss,
 * duplication (the copy gets its own delay), a base one-way delay, jitter
 * (a uniform extra delay in [0, jitter] per datagram, which reorders) and
 * corruption (1–3 flipped bits). SIMP has no checksum of its own and relies
 * on UDP's, which the receiving kernel verifies: a corrupted datagram whose
 * RFC 768/1071 checksum no longer matches is dropped ("caught"); one whose
 * flips cancel out in the checksum is delivered as the kernel would. The raw
 * corruption option skips the checksum and delivers every corrupted datagram.
 *
 * @example
 * ```ts
 * import { Session } from "../../lib/peer/session.ts";
 * import { SimNetwork } from "./sim_network.ts";
 * const net = new SimNetwork({ seed: 1, impairments: { loss: 0.1, delay: 20 } });
 * const alice = net.addNode(new Session({ userName: "alice" }));
 * const bob = net.addNode(new Session({ userName: "bob", autoAccept: true }));
 * net.at(0, () => alice.invite(bob.address));
 * net.run({ until: () => alice.session.phase === "established" });
 * ```
 *
 * @module
 */

import { flipBits, Prng } from "../../lib/_prng.ts";
import { TimeQueue } from "../../lib/_time_queue.ts";
import { opName } from "../../lib/wire/datagram.ts";
import type { Action, Session, SessionEvent } from "../../lib/peer/session.ts";
import { type Address, formatAddress } from "../../lib/address.ts";

// ------------------------------------------------------------------- PRNG

/**
 * The project's PRNG ({@linkcode Prng}) with the simulation's `chance`: a
 * certain event (`p` ≥ 1) draws nothing, so a link made dark with
 * `{ loss: 1 }` leaves the sequence where it was.
 */
export class SimPrng extends Prng {
  /** `true` with probability `p` (never for 0, always for 1). */
  override chance(p: number): boolean {
    return p >= 1 || super.chance(p);
  }
}

// ------------------------------------------------------- UDP checksum model

/**
 * The 16-bit ones'-complement sum of RFC 1071 over `bytes`, taken as
 * big-endian 16-bit words (an odd last byte is padded with zero), added to
 * `initial`, with the carries folded back in.
 */
export function onesComplementSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (even < bytes.length) sum += bytes[even] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * The Internet checksum of RFC 1071: the ones' complement of
 * {@linkcode onesComplementSum}.
 *
 * @example
 * ```ts
 * import { internetChecksum } from "./sim_network.ts";
 * // The worked example of RFC 1071 §3: the sum is 0xddf2.
 * internetChecksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])); // 0x220d
 * ```
 */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~onesComplementSum(bytes, initial) & 0xffff;
}

/**
 * The sum of the UDP pseudo-header and UDP header of RFC 768 (source and
 * destination IPv4 address, protocol 17, UDP length twice, both ports),
 * without the checksum field.
 */
function udpHeaderSum(from: Address, to: Address, length: number): number {
  const udpLength = 8 + length;
  let sum = 17 + udpLength + udpLength + from.port + to.port;
  for (const host of [from.ip, to.ip]) {
    const [a, b, c, d] = host.split(".").map(Number);
    sum += ((a << 8) | b) + ((c << 8) | d);
  }
  return sum;
}

/**
 * The UDP checksum a sender puts in the header for `payload` (RFC 768): the
 * Internet checksum of pseudo-header, header and payload, with 0 sent as
 * 0xffff (0 means "no checksum").
 */
export function udpChecksum(
  payload: Uint8Array,
  route: { from: Address; to: Address },
): number {
  const sum = udpHeaderSum(route.from, route.to, payload.length);
  return internetChecksum(payload, sum) || 0xffff;
}

/**
 * What the receiving kernel checks (RFC 768, RFC 1071 §2(a)): the ones'-
 * complement sum of everything including the checksum field is all ones.
 */
export function udpChecksumAccepts(
  payload: Uint8Array,
  checksum: number,
  route: { from: Address; to: Address },
): boolean {
  const sum = udpHeaderSum(route.from, route.to, payload.length) + checksum;
  return onesComplementSum(payload, sum) === 0xffff;
}

// ------------------------------------------------------------ impairments

/** What one direction of the network does to datagrams. Times are in ms. */
export interface LinkImpairments {
  /** Probability that a datagram is lost. */
  loss: number;
  /** Probability that a datagram is delivered twice (each copy has its own delay, loss excepted). */
  duplicate: number;
  /** Base one-way delay. */
  delay: number;
  /** Largest uniform extra delay per datagram; datagrams sent closer than this may be reordered. */
  jitter: number;
  /** Probability that a delivered copy has 1–3 random bits flipped. */
  corrupt: number;
  /** Deliver corrupted copies without the UDP checksum check (robustness tests only). */
  rawCorruption: boolean;
  /**
   * Probability that a datagram is held up an extra uniform [0, `stallMax`]
   * ms, as by a busy machine's scheduler; when above 0, the direction keeps
   * its order (a held-up datagram holds up the ones behind it).
   */
  stall: number;
  /** Longest extra delay of a stall. */
  stallMax: number;
}

/** A perfect link: no loss, no delay, no impairment. */
export const PERFECT_LINK: Readonly<LinkImpairments> = Object.freeze({
  loss: 0,
  duplicate: 0,
  delay: 0,
  jitter: 0,
  corrupt: 0,
  rawCorruption: false,
  stall: 0,
  stallMax: 0,
});

/** What happened to the datagrams of one direction (or all of them). */
export interface LinkCounters {
  /** Datagrams handed to the network by the sending engine. */
  sent: number;
  /** Datagrams lost (no copy delivered). */
  lost: number;
  /** Extra copies made by duplication. */
  duplicated: number;
  /** Copies with flipped bits. */
  corrupted: number;
  /** Corrupted copies dropped because the UDP checksum no longer matched. */
  caught: number;
  /** Corrupted copies handed to the engine: past the checksum, or raw corruption. */
  corruptDelivered: number;
  /** Copies handed to the receiving engine (corrupted ones included). */
  delivered: number;
  /** Datagrams sent to an address where no node is. */
  unroutable: number;
}

function zeroCounters(): LinkCounters {
  return {
    sent: 0,
    lost: 0,
    duplicated: 0,
    corrupted: 0,
    caught: 0,
    corruptDelivered: 0,
    delivered: 0,
    unroutable: 0,
  };
}

/** One direction between two addresses. */
interface Link {
  impairments: LinkImpairments;
  counters: LinkCounters;
  /** When the last datagram arrives (kept for the order of stalls). */
  lastArrival: number;
}

// ------------------------------------------------------------ event queue

/** Something that happens at a time in the simulation. */
type Happening =
  & { time: number }
  & (
    | { kind: "arrival"; to: SimNode; from: Address; bytes: Uint8Array }
    | { kind: "wake"; node: SimNode; generation: number }
    | { kind: "action"; run: (now: number) => void }
  );

// ------------------------------------------------------------------ nodes

/** A user-visible event with the virtual time it happened at. */
export interface TimedEvent {
  /** Virtual time in ms. */
  time: number;
  /** What the engine told its user. */
  event: SessionEvent;
}

/** Called for every event an engine gives its user, after it is recorded. */
export type EventListener = (event: SessionEvent, now: number) => void;

/** One line of the optional trace of a run. */
export interface TraceEntry {
  /** Virtual time in ms. */
  time: number;
  /** The node concerned. */
  node: string;
  /** What happened, e.g. `send CHAT seq=0 "hi" -> 127.0.77.2:7777`, `event {...}` or `lost (from ...)`. */
  text: string;
}

/**
 * A {@linkcode Session} at one address of a {@linkcode SimNetwork}. The
 * user commands call into the engine at the network's current time, then
 * move its actions out (datagrams onto the network, events into
 * {@linkcode events} and to the listeners) and reschedule its wake-up.
 */
export class SimNode {
  /** The node's address, e.g. `127.0.77.1:7777`. */
  readonly address: Address;
  /** The engine. */
  readonly session: Session;
  /** Every event given to the user, oldest first. */
  readonly events: TimedEvent[] = [];
  /** Name for traces: the engine's user name, or the address. */
  readonly name: string;

  #network: SimNetwork;
  #listeners: EventListener[] = [];

  /** Use {@linkcode SimNetwork.addNode}. */
  constructor(network: SimNetwork, session: Session, address: Address) {
    this.#network = network;
    this.session = session;
    this.address = address;
    this.name = session.userName || formatAddress(address);
  }

  /** Calls `listener` for every later event of this node. */
  on(listener: EventListener): void {
    this.#listeners.push(listener);
  }

  /** The events of one type, oldest first. */
  eventsOf<K extends SessionEvent["type"]>(
    type: K,
  ): (TimedEvent & { event: Extract<SessionEvent, { type: K }> })[] {
    return this.events.filter((
      e,
    ): e is TimedEvent & { event: Extract<SessionEvent, { type: K }> } =>
      e.event.type === type
    );
  }

  /** {@linkcode Session.invite} now. */
  invite(to: Address): void {
    this.call((s, now) => s.invite(to, now));
  }

  /** {@linkcode Session.accept} now. */
  accept(): void {
    this.call((s, now) => s.accept(now));
  }

  /** {@linkcode Session.decline} now. */
  decline(): void {
    this.call((s, now) => s.decline(now));
  }

  /** {@linkcode Session.send} now; returns the message id. */
  send(text: string): number {
    return this.call((s, now) => s.send(text, now));
  }

  /** {@linkcode Session.leave} now. */
  leave(): void {
    this.call((s, now) => s.leave(now));
  }

  /**
   * Runs `command` on the engine at the network's current time, then moves
   * its actions out and reschedules its wake-up (also when it throws).
   */
  call<T>(command: (session: Session, now: number) => T): T {
    try {
      return command(this.session, this.#network.now);
    } finally {
      this.#network.flush(this);
    }
  }

  /** Hands an event to the listeners (used by the network). */
  notify(event: SessionEvent, now: number): void {
    for (const listener of this.#listeners) listener(event, now);
  }
}

// ---------------------------------------------------------------- network

/** Options of a {@linkcode SimNetwork}. */
export interface SimNetworkOptions {
  /** Seed of the PRNG that decides every impairment. */
  seed: number;
  /** Impairments of every direction not set with {@linkcode SimNetwork.setLink}. */
  impairments?: Partial<LinkImpairments>;
  /** Receives a line per datagram and event; for debugging a failing seed. */
  trace?: (entry: TraceEntry) => void;
}

/** Options of {@linkcode SimNetwork.run}. */
export interface RunOptions {
  /** Stop as soon as this returns `true` (checked before every step). */
  until?: () => boolean;
  /** Stop before the first step later than this virtual time. */
  timeLimit?: number;
  /** Give up with an error after this many steps (a runaway engine); default 10,000,000. */
  maxSteps?: number;
}

/** Why {@linkcode SimNetwork.run} returned. */
export interface RunResult {
  /** `until` held, nothing was left to happen, or the time limit came. */
  reason: "until" | "quiet" | "time-limit";
  /** The virtual time at the end. */
  time: number;
  /** How many steps (arrivals, wake-ups, actions) were taken. */
  steps: number;
}

/** How many wake-ups of one node at one instant are taken as an engine busy loop. */
const BUSY_LOOP_LIMIT = 1000;

/**
 * The simulated network: nodes at addresses, per-direction impairments and
 * the discrete-event loop.
 */
export class SimNetwork {
  #prng: SimPrng;
  #queue = new TimeQueue<Happening>();
  #now = 0;
  #defaults: LinkImpairments;
  #links = new Map<string, Link>();
  #nodes = new Map<string, SimNode>();
  #trace: ((entry: TraceEntry) => void) | undefined;
  #totals = zeroCounters();
  /** Each node's scheduled wake-up; a queued wake of an older generation is stale. */
  #wakes = new Map<SimNode, { at: number | undefined; generation: number }>();
  #lastWake: { node: SimNode; time: number; count: number } | undefined;

  /** Creates an empty network at virtual time 0. */
  constructor(options: SimNetworkOptions) {
    this.#prng = new SimPrng(options.seed);
    this.#defaults = { ...PERFECT_LINK, ...options.impairments };
    this.#trace = options.trace;
  }

  /** The current virtual time in ms. */
  get now(): number {
    return this.#now;
  }

  /** The nodes, in the order they were added. */
  get nodes(): SimNode[] {
    return [...this.#nodes.values()];
  }

  /**
   * Puts an engine on the network. Without an address the n-th node gets
   * `127.0.77.n:7777`.
   */
  addNode(session: Session, address?: Address): SimNode {
    const at = address ??
      { ip: `127.0.77.${this.#nodes.size + 1}`, port: 7777 };
    const key = formatAddress(at);
    if (this.#nodes.has(key)) {
      throw new Error(`Address ${key} is taken: give the node another one`);
    }
    const node = new SimNode(this, session, at);
    this.#nodes.set(key, node);
    this.flush(node);
    return node;
  }

  /**
   * Changes the impairments of the direction `from` → `to` (the other
   * fields stay), e.g. `{ loss: 1 }` to make it go dark.
   */
  setLink(
    from: SimNode | Address,
    to: SimNode | Address,
    impairments: Partial<LinkImpairments>,
  ): void {
    const link = this.#link(addressOf(from), addressOf(to));
    link.impairments = { ...link.impairments, ...impairments };
  }

  /** The counters of the direction `from` → `to`. */
  counters(from: SimNode | Address, to: SimNode | Address): LinkCounters {
    return { ...this.#link(addressOf(from), addressOf(to)).counters };
  }

  /** The counters summed over every direction. */
  get totals(): LinkCounters {
    return { ...this.#totals };
  }

  /**
   * Runs `action` at virtual time `time` (not earlier than now), after
   * everything already scheduled for that time.
   */
  at(time: number, action: (now: number) => void): void {
    this.#push({
      time: Math.max(time, this.#now),
      kind: "action",
      run: action,
    });
  }

  /**
   * Runs the event loop until `until` holds, nothing is left to happen, or
   * the next step is past the time limit.
   */
  run(options: RunOptions = {}): RunResult {
    const { until, timeLimit = Infinity, maxSteps = 10_000_000 } = options;
    let steps = 0;
    for (;;) {
      if (until?.()) return { reason: "until", time: this.#now, steps };
      const next = this.#queue.peek();
      if (next === undefined) {
        return { reason: "quiet", time: this.#now, steps };
      }
      if (next.time > timeLimit) {
        this.#now = Math.max(this.#now, timeLimit);
        return { reason: "time-limit", time: this.#now, steps };
      }
      if (++steps > maxSteps) {
        throw new Error(
          `Simulation still busy after ${maxSteps} steps at t=${this.#now} ms: raise maxSteps or look for a runaway engine`,
        );
      }
      this.#queue.pop();
      this.#now = next.time;
      this.#step(next);
    }
  }

  /**
   * Moves a node's pending actions out of its engine and reschedules its
   * wake-up; {@linkcode SimNode.call} does this after every command.
   */
  flush(node: SimNode): void {
    const events: SessionEvent[] = [];
    for (const action of node.session.takeActions()) {
      this.#apply(node, action, events);
    }
    this.#reschedule(node);
    for (const event of events) node.notify(event, this.#now);
  }

  #step(entry: Happening): void {
    switch (entry.kind) {
      case "arrival": {
        const { to, from, bytes } = entry;
        to.call((s, now) => s.receive(bytes, from, now));
        return;
      }
      case "wake": {
        const node = entry.node;
        const wake = this.#wakes.get(node);
        if (wake === undefined || entry.generation !== wake.generation) return;
        wake.at = undefined;
        this.#checkBusyLoop(node);
        node.call((s, now) => s.tick(now));
        return;
      }
      case "action":
        entry.run(this.#now);
        return;
    }
  }

  #apply(node: SimNode, action: Action, events: SessionEvent[]): void {
    switch (action.type) {
      case "transmit":
        this.#traceLine(node, () => {
          const d = action.datagram;
          return `send ${opName(d)} seq=${d.seq} ${
            JSON.stringify(d.payload)
          } -> ${formatAddress(action.to)}`;
        });
        this.#transmit(node.address, action.to, action.bytes);
        return;
      case "event":
        node.events.push({ time: this.#now, event: action.event });
        this.#traceLine(node, () => `event ${JSON.stringify(action.event)}`);
        events.push(action.event);
        return;
      case "drop":
        this.#traceLine(node, () => `drop ${action.reason}: ${action.detail}`);
        return;
    }
  }

  #reschedule(node: SimNode): void {
    const due = node.session.nextTimeout();
    let wake = this.#wakes.get(node);
    if (wake === undefined) {
      wake = { at: undefined, generation: 0 };
      this.#wakes.set(node, wake);
    }
    if (due === wake.at) return;
    wake.at = due;
    wake.generation++;
    if (due === undefined) return;
    this.#push({
      time: Math.max(due, this.#now),
      kind: "wake",
      node,
      generation: wake.generation,
    });
  }

  /** An engine that keeps asking to be woken at the same instant is stuck. */
  #checkBusyLoop(node: SimNode): void {
    const last = this.#lastWake;
    if (last && last.node === node && last.time === this.#now) {
      if (++last.count > BUSY_LOOP_LIMIT) {
        throw new Error(
          `Engine of ${node.name} asked to be woken ${BUSY_LOOP_LIMIT} times at t=${this.#now} ms: nextTimeout() does not advance`,
        );
      }
    } else {
      this.#lastWake = { node, time: this.#now, count: 1 };
    }
  }

  #transmit(from: Address, to: Address, bytes: Uint8Array): void {
    const link = this.#link(from, to);
    const { impairments: imp, counters } = link;
    this.#count(counters, "sent");
    const receiver = this.#nodes.get(formatAddress(to));
    if (receiver === undefined) {
      this.#count(counters, "unroutable");
      return;
    }
    if (this.#prng.chance(imp.loss)) {
      this.#count(counters, "lost");
      this.#traceNet(from, "lost");
      return;
    }
    let copies = 1;
    if (this.#prng.chance(imp.duplicate)) {
      copies = 2;
      this.#count(counters, "duplicated");
      this.#traceNet(from, "duplicated");
    }
    for (let i = 0; i < copies; i++) {
      let delay = imp.delay + this.#prng.uniform(0, imp.jitter);
      if (imp.stall > 0) {
        if (this.#prng.chance(imp.stall)) {
          delay += this.#prng.uniform(0, imp.stallMax);
        }
        delay = Math.max(delay, link.lastArrival - this.#now);
        link.lastArrival = this.#now + delay;
      }
      let payload = bytes;
      if (this.#prng.chance(imp.corrupt)) {
        this.#count(counters, "corrupted");
        payload = flipBits(bytes, 1 + this.#prng.below(3), this.#prng);
        if (!imp.rawCorruption) {
          // The sender's kernel computed the checksum over the original.
          const route = { from, to };
          const checksum = udpChecksum(bytes, route);
          if (!udpChecksumAccepts(payload, checksum, route)) {
            this.#count(counters, "caught");
            this.#traceNet(from, "corrupted, caught by the UDP checksum");
            continue;
          }
        }
        this.#count(counters, "corruptDelivered");
        this.#traceNet(from, "corrupted, delivered");
      }
      this.#count(counters, "delivered");
      this.#push({
        time: this.#now + delay,
        kind: "arrival",
        to: receiver,
        from,
        bytes: payload,
      });
    }
  }

  #count(counters: LinkCounters, key: keyof LinkCounters): void {
    counters[key]++;
    this.#totals[key]++;
  }

  #link(from: Address, to: Address): Link {
    const key = `${formatAddress(from)}>${formatAddress(to)}`;
    let link = this.#links.get(key);
    if (link === undefined) {
      link = {
        impairments: { ...this.#defaults },
        counters: zeroCounters(),
        lastArrival: 0,
      };
      this.#links.set(key, link);
    }
    return link;
  }

  #push(entry: Happening): void {
    this.#queue.push(entry.time, entry);
  }

  #traceLine(node: SimNode, text: () => string): void {
    this.#trace?.({ time: this.#now, node: node.name, text: text() });
  }

  #traceNet(from: Address, text: string): void {
    this.#trace?.({
      time: this.#now,
      node: "net",
      text: `${text} (from ${formatAddress(from)})`,
    });
  }
}

function addressOf(x: SimNode | Address): Address {
  return x instanceof SimNode ? x.address : x;
}
