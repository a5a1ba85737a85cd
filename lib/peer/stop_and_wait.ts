/**
 * The two halves of SIMP's stop-and-wait (SPEC §5), free of sockets and
 * clocks: a sender with one datagram in flight and a bounded queue, a receiver
 * that tells new messages from duplicates and late copies (SPEC §5.3), and
 * the retransmission timer's round-trip estimator (SPEC §5.6, RFC 6298 with
 * Karn's rule).
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

/** The adaptive timeout before the first sample, in ms (RFC 6298 §2.1), at most the configured one. */
export const INITIAL_ADAPTIVE_TIMEOUT = 1000;

/**
 * Round-trip statistics of one chat and its retransmission timeout (RTO):
 * the smoothed RTT and its variance as in RFC 6298, used when the adaptive
 * timeout is on. Karn's rule, both halves: callers feed samples only from
 * datagrams sent once, and a timeout that fired ({@linkcode backOff})
 * doubles the RTO, which stays doubled — for the next datagrams too —
 * until a new sample is taken (RFC 6298 §5.5–5.7). Without that second half,
 * a round trip that grew above the RTO would have every datagram
 * retransmitted and never sampled.
 *
 * @example
 * ```ts
 * import { RttEstimator } from "./stop_and_wait.ts";
 * const rtt = new RttEstimator({ timeout: 5000, adaptive: true, minTimeout: 5 });
 * rtt.current(); // 1000: no sample yet (RFC 6298 §2.1)
 * rtt.sample(2);
 * rtt.current(); // 6: SRTT 2 + 4·RTTVAR 4
 * rtt.backOff();
 * rtt.current(); // 12, until the next sample
 * ```
 */
export class RttEstimator {
  #options: RttOptions;
  #srtt: number | undefined;
  #rttvar = 0;
  #backoff = 0;

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
    this.#backoff = 0;
  }

  /** A retransmission timeout fired: the RTO doubles until the next sample. */
  backOff(): void {
    if (this.current() < this.#options.timeout) this.#backoff++;
  }

  /** The smoothed round trip, or `undefined` before the first sample. */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /**
   * The timeout for the next (re)transmission: the fixed timeout, or
   * (adaptive) SRTT + max(G, 4·RTTVAR) — {@linkcode INITIAL_ADAPTIVE_TIMEOUT}
   * before the first sample — at least minTimeout, doubled per
   * {@linkcode backOff} since the last sample, at most the fixed timeout.
   */
  current(): number {
    const { timeout, adaptive, minTimeout } = this.#options;
    if (!adaptive) return timeout;
    const rto = this.#srtt === undefined
      ? INITIAL_ADAPTIVE_TIMEOUT
      : this.#srtt + Math.max(GRANULARITY, 4 * this.#rttvar);
    const backedOff = Math.max(minTimeout, rto) * 2 ** this.#backoff;
    return Math.min(timeout, backedOff);
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
      deadline: now + this.#rtt.current(),
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
    this.#rtt.backOff();
    flight.deadline = now + this.#rtt.current();
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

/** Options of the {@linkcode StopAndWaitReceiver}. */
export interface ReceiverOptions {
  /** How many delivered messages count as recent (SPEC §5.3); default {@linkcode RECENT_COUNT}. */
  recentCount?: number;
  /** How long, in ms, a delivered message counts as recent (SPEC §5.3). */
  recentFor: number;
}

/** How many delivered messages a receiver remembers by default (SPEC §5.3, §7.3). */
export const RECENT_COUNT = 32;

/** What a receiver makes of a chat datagram (SPEC §5.3). */
export type Verdict =
  /** A new message: ACK it and deliver it. */
  | "new"
  /** A copy of the last message delivered: ACK it again, do not deliver it. */
  | "duplicate"
  /**
   * A late copy of an earlier message, with the Sequence of the last one
   * delivered: neither delivered nor ACKed (the sender needs no ACK of it,
   * see {@linkcode StopAndWaitReceiver}).
   */
  | "stale";

interface Delivered {
  seq: Seq;
  text: string;
  at: number;
}

/**
 * The receiving half of one direction of a chat (SPEC §5.3). It remembers
 * the last message delivered and the recent ones before it (the last
 * `recentCount`, delivered within `recentFor` ms), and classifies each chat
 * datagram with Sequence `s` and text `t`:
 *
 * 1. nothing delivered yet in this chat: **new** (a sloppy peer's first
 *    datagram may carry Sequence 1);
 * 2. `s` differs from the last delivered Sequence (the bit an alternating
 *    sender uses for its next message): **new** — even when `t` repeats an
 *    earlier text ("ok", "x", "ok" is three messages);
 * 3. `s` and `t` equal the last delivered: **duplicate**, ACKed again (a
 *    retransmission is sent unchanged, SPEC §5.2; its ACK, with the last
 *    delivered Sequence, cannot release the sender's next datagram, which
 *    carries the other bit);
 * 4. `s` equals the last delivered Sequence but `t` differs — the case the
 *    one-bit sequence leaves open: if (`s`, `t`) is a recent delivery it is
 *    a late copy, **stale**: neither delivered nor ACKed (its sender had
 *    its ACK before sending what came after it; should it instead be a new
 *    message of a peer that shares one counter and repeats a recent text,
 *    it is retransmitted, and delivered once the copy is no longer recent).
 *    Otherwise it is **new**: the tolerance for peers that share one
 *    sequence counter among everything they send, or keep it constant.
 *
 * A partner's SYN in the middle of a chat changes nothing here: a restarted
 * partner's first message (Sequence 0) is new by rule 2 or 4 unless it
 * repeats the last message delivered with the same bit, which no one-bit
 * receiver can tell from a retransmission.
 *
 * @example
 * ```ts
 * import { StopAndWaitReceiver } from "./stop_and_wait.ts";
 * const receiver = new StopAndWaitReceiver({ recentFor: 10_000 });
 * receiver.receive(0, "hi", 0); // "new": deliver
 * receiver.receive(0, "hi", 5); // "duplicate": ACK it again
 * receiver.receive(1, "ok", 9); // "new"
 * receiver.receive(0, "hi", 9); // "new": the bit an alternating sender uses next
 * ```
 */
export class StopAndWaitReceiver {
  #recentCount: number;
  #recentFor: number;
  /** Delivered messages, oldest first; the last one is the last delivered. */
  #delivered: Delivered[] = [];

  /** Creates a receiver that has delivered nothing. */
  constructor(options: ReceiverOptions) {
    this.#recentCount = Math.max(1, options.recentCount ?? RECENT_COUNT);
    this.#recentFor = options.recentFor;
  }

  /** How many delivered messages are remembered (at most `recentCount`). */
  get remembered(): number {
    return this.#delivered.length;
  }

  /** What a datagram with this Sequence and text is, arriving at `now`. */
  classify(seq: Seq, text: string, now: number): Verdict {
    const last = this.#delivered.at(-1);
    if (last === undefined || seq !== last.seq) return "new";
    if (text === last.text) return "duplicate";
    const since = now - this.#recentFor;
    const recent = this.#delivered.some((d) =>
      d.seq === seq && d.text === text && d.at >= since
    );
    return recent ? "stale" : "new";
  }

  /** Records a message as delivered at `now`. */
  deliver(seq: Seq, text: string, now: number): void {
    this.#delivered.push({ seq, text, at: now });
    if (this.#delivered.length > this.#recentCount) this.#delivered.shift();
  }

  /**
   * Classifies a datagram and records it when it is new: returns the
   * {@linkcode Verdict}.
   */
  receive(seq: Seq, text: string, now: number): Verdict {
    const verdict = this.classify(seq, text, now);
    if (verdict === "new") this.deliver(seq, text, now);
    return verdict;
  }
}
