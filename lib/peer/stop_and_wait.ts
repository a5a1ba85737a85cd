/**
 * The two halves of SIMP's stop-and-wait (SPEC §5), free of sockets and
 * clocks: a sender with one datagram in flight and a bounded queue, a receiver
 * that delivers each sequence bit once, and the retransmission timer's
 * round-trip estimator (SPEC §5.6, RFC 6298 with Karn's rule).
 *
 * Times are milliseconds on any monotonic clock the caller chooses.
 *
 * @module
 */

import type { Seq } from "../wire/datagram.ts";

/** Options of the {@linkcode RttEstimator}. */
export interface RttOptions {
  /** The configured retransmission timeout in ms: the fixed timeout, and the upper bound of the adaptive one. */
  timeout: number;
  /** Derive the timeout from measured round trips (SPEC §5.6). */
  adaptive: boolean;
  /** Lower bound of the adaptive timeout in ms. */
  minTimeout: number;
}

/** Clock granularity G of RFC 6298 in ms. */
const GRANULARITY = 1;

/**
 * Round-trip statistics of one chat: the smoothed RTT and its variance as in
 * RFC 6298, used when the adaptive timeout is on. Callers feed samples only
 * from datagrams sent once (Karn's rule).
 */
export class RttEstimator {
  #options: RttOptions;
  #srtt: number | undefined;
  #rttvar = 0;

  /** Creates an estimator with no samples: the timeout is the configured one. */
  constructor(options: RttOptions) {
    this.#options = options;
  }

  /** Records one round-trip sample in ms (from a datagram sent exactly once). */
  sample(rtt: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = rtt;
      this.#rttvar = rtt / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rtt);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rtt;
    }
  }

  /** The smoothed round trip, or `undefined` before the first sample. */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /**
   * The timeout for a datagram sent `retransmissions` times already: the
   * fixed timeout, or (adaptive) SRTT + max(G, 4·RTTVAR) doubled per
   * retransmission (RFC 6298 §5.5), clamped to [minTimeout, timeout].
   */
  timeoutAfter(retransmissions: number): number {
    const { timeout, adaptive, minTimeout } = this.#options;
    if (!adaptive || this.#srtt === undefined) return timeout;
    const rto = this.#srtt + Math.max(GRANULARITY, 4 * this.#rttvar);
    const backedOff = rto * 2 ** retransmissions;
    return Math.min(timeout, Math.max(minTimeout, backedOff));
  }
}

/** Options of the {@linkcode StopAndWaitSender}. */
export interface SenderOptions {
  /** Retransmissions of one datagram before the peer is considered lost (SPEC §5.5). */
  maxRetries: number;
  /** How many items may wait behind the one in flight (SPEC §5.1). */
  maxQueue: number;
}

/** The datagram in flight. */
export interface InFlight<T> {
  /** What is being sent. */
  item: T;
  /** Its sequence bit. */
  seq: Seq;
  /** When it was first sent. */
  firstSentAt: number;
  /** How many times it was sent again. */
  retransmissions: number;
  /** When it is due for retransmission. */
  deadline: number;
}

/** What {@linkcode StopAndWaitSender.ack} made of an acknowledgement. */
export type AckResult<T> =
  | { released: T; rtt: number | undefined }
  | { ignored: "nothing-in-flight" | "wrong-sequence" };

/** What {@linkcode StopAndWaitSender.timeout} wants done when the clock moved. */
export type TimeoutResult<T> =
  | { retransmit: InFlight<T> }
  | { lost: T[] };

/**
 * The sending half of one direction of a chat (SPEC §5.1, §5.2, §5.4, §5.5):
 * at most one item in flight, the others waiting in order in a bounded queue.
 * Items are opaque; the caller turns them into datagrams with the sequence
 * bit it is given.
 *
 * @example
 * ```ts
 * import { RttEstimator, StopAndWaitSender } from "./stop_and_wait.ts";
 * const rtt = new RttEstimator({ timeout: 5000, adaptive: false, minTimeout: 200 });
 * const sender = new StopAndWaitSender<string>(rtt, { maxRetries: 5, maxQueue: 64 });
 * sender.push("hello");
 * const sent = sender.pump(0); // { item: "hello", seq: 0, ... }
 * sender.ack(0, 30); // { released: "hello", rtt: 30 }
 * ```
 */
export class StopAndWaitSender<T> {
  #rtt: RttEstimator;
  #options: SenderOptions;
  #queue: T[] = [];
  #inFlight: InFlight<T> | undefined;
  #nextSeq: Seq = 0;

  /** Creates a sender whose first datagram has Sequence 0 (SPEC §3.1). */
  constructor(rtt: RttEstimator, options: SenderOptions) {
    this.#rtt = rtt;
    this.#options = options;
  }

  /** The item in flight, if any. */
  get inFlight(): Readonly<InFlight<T>> | undefined {
    return this.#inFlight;
  }

  /** The sequence bit the next new datagram will carry (SPEC §3.3: a FIN uses it). */
  get nextSeq(): Seq {
    return this.#nextSeq;
  }

  /** How many items wait behind the one in flight. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Whether the queue can take another item. */
  get full(): boolean {
    return this.#queue.length >= this.#options.maxQueue;
  }

  /** When the in-flight item is due for retransmission, if one is in flight. */
  get deadline(): number | undefined {
    return this.#inFlight?.deadline;
  }

  /**
   * Queues an item behind the others. Callers check {@linkcode full} first;
   * control items (a FIN) may go past the bound.
   */
  push(item: T): void {
    this.#queue.push(item);
  }

  /**
   * Puts the next waiting item in flight when nothing is, and returns it for
   * the caller to transmit; returns `undefined` when nothing is to be sent.
   */
  pump(now: number): Readonly<InFlight<T>> | undefined {
    if (this.#inFlight !== undefined || this.#queue.length === 0) {
      return undefined;
    }
    const item = this.#queue.shift() as T;
    this.#inFlight = {
      item,
      seq: this.#nextSeq,
      firstSentAt: now,
      retransmissions: 0,
      deadline: now + this.#rtt.timeoutAfter(0),
    };
    return this.#inFlight;
  }

  /**
   * Handles an ACK with Sequence `seq`: it releases the in-flight item only
   * when the Sequence matches (SPEC §5.4: a late duplicate ACK must not
   * release the next datagram). Round-trip samples follow Karn's rule.
   */
  ack(seq: Seq, now: number): AckResult<T> {
    const flight = this.#inFlight;
    if (flight === undefined) return { ignored: "nothing-in-flight" };
    if (seq !== flight.seq) return { ignored: "wrong-sequence" };
    const elapsed = now - flight.firstSentAt;
    let rtt: number | undefined;
    if (flight.retransmissions === 0) {
      rtt = elapsed;
      this.#rtt.sample(elapsed);
    }
    this.#inFlight = undefined;
    this.#nextSeq = flight.seq === 0 ? 1 : 0;
    return { released: flight.item, rtt };
  }

  /**
   * Moves the clock: when the in-flight item is due, either returns it for
   * retransmission with the same Sequence (SPEC §5.2) or, after max retries,
   * gives up and returns every item not acknowledged, in-flight first
   * (SPEC §5.5). Returns `undefined` when nothing is due.
   */
  timeout(now: number): TimeoutResult<T> | undefined {
    const flight = this.#inFlight;
    if (flight === undefined || now < flight.deadline) return undefined;
    if (flight.retransmissions >= this.#options.maxRetries) {
      return { lost: this.drain() };
    }
    flight.retransmissions++;
    flight.deadline = now + this.#rtt.timeoutAfter(flight.retransmissions);
    return { retransmit: flight };
  }

  /** Removes and returns every item not acknowledged, in-flight first. */
  drain(): T[] {
    const items = this.#inFlight ? [this.#inFlight.item] : [];
    items.push(...this.#queue);
    this.#inFlight = undefined;
    this.#queue = [];
    return items;
  }
}

/**
 * The receiving half of one direction of a chat (SPEC §5.3): every datagram
 * is ACKed; a datagram whose Sequence equals the last one delivered is a
 * duplicate — a retransmission, which is sent unchanged (SPEC §5.2), so it
 * also carries the same text. Two tolerances for peers that share one
 * sequence counter among all they send, neither of which can deliver a
 * message twice:
 * - before anything was delivered, nothing is a duplicate (a first chat
 *   datagram with Sequence 1 is delivered);
 * - a datagram with the last Sequence but another text cannot be a
 *   retransmission of the last message, so it is a new one.
 *
 * @example
 * ```ts
 * import { StopAndWaitReceiver } from "./stop_and_wait.ts";
 * const receiver = new StopAndWaitReceiver();
 * receiver.receive(0, "hi"); // true: deliver
 * receiver.receive(0, "hi"); // false: a duplicate, ACK it again
 * ```
 */
export class StopAndWaitReceiver {
  #lastSeq: Seq | undefined;
  #lastText = "";

  /** Whether a datagram with this Sequence and text repeats the last one delivered. */
  isDuplicate(seq: Seq, text: string): boolean {
    return seq === this.#lastSeq && text === this.#lastText;
  }

  /** Returns `true` when the datagram is new and to be delivered, and records it. */
  receive(seq: Seq, text: string): boolean {
    if (this.isDuplicate(seq, text)) return false;
    this.#lastSeq = seq;
    this.#lastText = text;
    return true;
  }

  /** Forgets the last delivery: the peer starts again from any Sequence. */
  reset(): void {
    this.#lastSeq = undefined;
    this.#lastText = "";
  }
}
