/**
 * The budget of busy answers (SPEC §4.8, §7.3), free of sockets and clocks:
 * how many ERR+FIN answers a daemon gives to SYNs it cannot take, per
 * sender and in total, so that a flood of SYNs from many addresses can
 * neither make the daemon an amplifier nor starve an honest inviter.
 *
 * Times are milliseconds on any monotonic clock the caller chooses.
 *
 * @module
 */

/** Options of {@linkcode BusyAnswers}; every time is in milliseconds. */
export interface BusyAnswersOptions {
  /** Answers per second in total (a token bucket holding one second's worth). */
  perSecond: number;
  /** Answers in a row to one source IP (its bucket's size). */
  perSenderBurst: number;
  /** Time for one source IP's bucket to earn one answer back. */
  perSenderInterval: number;
  /** Source IPs tracked; the least recently heard is forgotten first (§7.3). */
  maxSenders: number;
  /** How long a SYN waits for its answer before it is dropped (its sender retransmits it). */
  maxWait: number;
}

/** What {@linkcode BusyAnswers.request} decided for one SYN. */
export type BusyDecision =
  /** Answer now. */
  | "answer"
  /** Answered later, when {@linkcode BusyAnswers.due} returns its address. */
  | "deferred"
  /** This sender had its share: no answer. */
  | "refused";

/** What the budget needs of an address: its IP, the key of a sender. */
export interface HostAddress {
  /** The IP address. */
  hostname: string;
}

interface Sender<A> {
  /** Tokens of this source IP's bucket. */
  tokens: number;
  refilledAt: number;
  /** When it was last answered (-Infinity: never while tracked). */
  answeredAt: number;
  /** The SYN waiting for an answer: where to send it, and since when. */
  waiting?: { to: A; since: number };
}

/**
 * Busy answers, budgeted. Each source IP has a small token bucket (a few
 * answers, then one per interval); all of them share a total bucket. When
 * the total bucket is empty, a SYN from a sender that still has tokens
 * waits, one per source IP, and each token the total bucket earns goes to
 * the waiting sender answered least recently (never answered first; among
 * equals, the one waiting longest). So a flood from many addresses is
 * answered round-robin at the total rate, and an inviter that was not
 * answered lately — an honest one retransmitting its SYN every timeout —
 * is answered at the next token, whatever the flood's volume.
 *
 * Memory is bounded by `maxSenders` entries. Beyond that many flooding
 * addresses, a forgotten address comes back as never answered and an
 * honest inviter waits its turn among them.
 *
 * @example
 * ```ts
 * import { BusyAnswers } from "./busy_answers.ts";
 * const busy = new BusyAnswers<{ hostname: string; port: number }>({
 *   perSecond: 1, perSenderBurst: 2, perSenderInterval: 1000,
 *   maxSenders: 100, maxWait: 5000,
 * });
 * const c = { hostname: "192.0.2.1", port: 7777 };
 * const d = { hostname: "192.0.2.2", port: 7777 };
 * busy.request(c, 0); // "answer": the total bucket held one token
 * busy.request(d, 10); // "deferred": it is empty
 * busy.nextDue(); // 1000: when it holds one again
 * busy.due(1000); // [d]
 * ```
 */
export class BusyAnswers<A extends HostAddress> {
  #options: BusyAnswersOptions;
  #senders = new Map<string, Sender<A>>();
  #waiting = new Set<Sender<A>>();
  #tokens: number;
  #refilledAt = 0;

  /**
   * Creates the budget with full buckets.
   * @throws {RangeError} when a rate, interval or size is not positive.
   */
  constructor(options: BusyAnswersOptions) {
    const { perSecond, perSenderBurst, perSenderInterval, maxSenders } =
      options;
    if (
      !(perSecond > 0 && perSenderBurst >= 1 && perSenderInterval > 0 &&
        maxSenders >= 1)
    ) {
      throw new RangeError(
        `Busy answers need a positive rate, burst, interval and table size, not ${
          JSON.stringify(options)
        }`,
      );
    }
    this.#options = options;
    this.#tokens = options.perSecond;
  }

  /** How many source IPs are tracked (at most `maxSenders`). */
  get size(): number {
    return this.#senders.size;
  }

  /** How many SYNs wait for an answer (at most one per tracked source IP). */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * A SYN from `from` is to get the busy answer at `now`. Call
   * {@linkcode due} first when {@linkcode nextDue} has passed.
   */
  request(from: A, now: number): BusyDecision {
    const sender = this.#sender(from.hostname, now);
    const { perSenderBurst, perSenderInterval } = this.#options;
    sender.tokens = Math.min(
      perSenderBurst,
      sender.tokens + (now - sender.refilledAt) / perSenderInterval,
    );
    sender.refilledAt = now;
    if (sender.tokens < 1) return "refused";
    this.#refill(now);
    if (this.#waiting.size === 0 && this.#tokens >= 1) {
      this.#answer(sender, now);
      return "answer";
    }
    sender.waiting = { to: from, since: sender.waiting?.since ?? now };
    this.#waiting.add(sender);
    return "deferred";
  }

  /** The addresses to answer at `now`, in order; each SYN waits at most `maxWait`. */
  due(now: number): A[] {
    const answers: A[] = [];
    if (this.#waiting.size === 0) return answers;
    this.#refill(now);
    const oldest = now - this.#options.maxWait;
    for (const sender of this.#waiting) {
      if (sender.waiting!.since < oldest) this.#unwait(sender);
    }
    while (this.#tokens >= 1 && this.#waiting.size > 0) {
      let next: Sender<A> | undefined;
      for (const sender of this.#waiting) {
        if (next === undefined || before(sender, next)) next = sender;
      }
      answers.push(next!.waiting!.to);
      this.#unwait(next!);
      this.#answer(next!, now);
    }
    return answers;
  }

  /** When {@linkcode due} has answers to give, if any SYN waits. */
  nextDue(): number | undefined {
    if (this.#waiting.size === 0) return undefined;
    const missing = Math.max(0, 1 - this.#tokens);
    return this.#refilledAt +
      Math.ceil(missing * 1000 / this.#options.perSecond);
  }

  #answer(sender: Sender<A>, now: number): void {
    this.#tokens--;
    sender.tokens--;
    sender.answeredAt = now;
  }

  #unwait(sender: Sender<A>): void {
    sender.waiting = undefined;
    this.#waiting.delete(sender);
  }

  #refill(now: number): void {
    const rate = this.#options.perSecond;
    this.#tokens = Math.min(
      rate,
      this.#tokens + (now - this.#refilledAt) * rate / 1000,
    );
    this.#refilledAt = now;
  }

  /** The entry of one source IP, now the most recently heard. */
  #sender(ip: string, now: number): Sender<A> {
    const senders = this.#senders;
    let sender = senders.get(ip);
    if (sender !== undefined) {
      senders.delete(ip);
    } else {
      sender = {
        tokens: this.#options.perSenderBurst,
        refilledAt: now,
        answeredAt: -Infinity,
      };
    }
    senders.set(ip, sender);
    for (const [key, oldest] of senders) {
      if (senders.size <= this.#options.maxSenders) break;
      senders.delete(key); // least recently heard first (SPEC §7.3)
      this.#unwait(oldest);
    }
    return sender;
  }
}

/** Whether waiting sender `a` goes before `b`: answered less recently, or waiting longer. */
function before<A>(a: Sender<A>, b: Sender<A>): boolean {
  if (a.answeredAt !== b.answeredAt) return a.answeredAt < b.answeredAt;
  return a.waiting!.since < b.waiting!.since;
}
