/**
 * The impairment relay's decisions as a sans-I/O core: datagrams and the
 * clock go in, datagrams to send (now or later), log records and the next
 * wake-up time come out. It never reads a clock, sets a timer or touches a
 * socket; `simp relay` (lib/relay/run.ts) drives it on a real socket, and the
 * tests drive it in virtual time.
 *
 * Theory of operation. The relay stands between two daemons, A and B: what
 * comes from A goes to B (direction `ab`), what comes from B goes to A
 * (`ba`), and anything from a third address is counted as stray and dropped.
 * Each direction has its own {@linkcode Impairments} and its own seeded
 * generator, so the fates of one direction do not depend on the traffic of
 * the other. A datagram's fate is decided when it arrives, in this order:
 *
 * 1. the first `dropFirst` datagrams of the direction are dropped;
 * 2. it is lost with probability `loss`;
 * 3. a datagram that survives is duplicated with probability `duplicate`:
 *    two copies go on;
 * 4. each copy, independently, is held `delay` ms, plus with probability
 *    `reorder` a uniform extra delay in (0, `reorderDelay`] ms (so a later
 *    datagram can overtake it), and has 1–3 distinct bits flipped with
 *    probability `corrupt`.
 *
 * Copies due at the same time leave in the order they arrived. Held copies
 * are bounded ({@linkcode RelayCoreOptions.maxHeldBytes}): beyond, a copy is
 * dropped (and counted as dropped) rather than memory grown.
 *
 * Drive it with {@linkcode RelayCore.receive} and {@linkcode RelayCore.tick};
 * after each call, carry out {@linkcode RelayCore.takeActions} in order and
 * wake it again at {@linkcode RelayCore.nextTimeout}.
 *
 * @module
 */

import { type Address, formatAddress, sameAddress } from "../address.ts";
import { flipBits, Prng } from "../_prng.ts";
import { TimeQueue } from "../_time_queue.ts";

/** What the relay does to the datagrams of one direction. */
export interface Impairments {
  /** Probability in [0, 1] that a datagram is dropped. */
  loss: number;
  /** Probability in [0, 1] that a datagram that goes on is sent twice. */
  duplicate: number;
  /** Probability in [0, 1] that a copy is held an extra random delay. */
  reorder: number;
  /** The largest extra delay of a reordered copy, in ms (> 0 to reorder). */
  reorderDelay: number;
  /** A fixed delay of every copy, in ms. */
  delay: number;
  /** Probability in [0, 1] that a copy has 1–3 bits flipped. */
  corrupt: number;
  /** How many datagrams of the direction are dropped first, whatever else. */
  dropFirst: number;
}

/** No impairment at all: everything is forwarded at once. */
export const NO_IMPAIRMENTS: Readonly<Impairments> = Object.freeze({
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelay: 0,
  delay: 0,
  corrupt: 0,
  dropFirst: 0,
});

/** A direction through the relay: from A to B, or from B to A. */
export type Direction = "ab" | "ba";

/** The held copies' bound when none is given: 16 MiB. */
export const DEFAULT_MAX_HELD_BYTES = 16 * 1024 * 1024;

/** What a {@linkcode RelayCore} is created with. */
export interface RelayCoreOptions {
  /** Daemon A's address (its SIMP ip:port). */
  a: Address;
  /** Daemon B's address. */
  b: Address;
  /** The seed of both directions' generators. */
  seed: number;
  /** Impairments from A to B; missing fields are {@linkcode NO_IMPAIRMENTS}'. */
  ab?: Partial<Impairments>;
  /** Impairments from B to A. */
  ba?: Partial<Impairments>;
  /** Whether to emit a {@linkcode RelayRecord} per copy (for `--log`). */
  record?: boolean;
  /**
   * The most bytes held for later sending; a copy that does not fit is
   * dropped (default {@linkcode DEFAULT_MAX_HELD_BYTES}).
   */
  maxHeldBytes?: number;
}

/**
 * One line of the relay's log (`simp relay --log FILE`, JSON lines): one per
 * datagram copy the relay handled.
 */
export interface RelayRecord {
  /** When the datagram was received, in ms since the relay started. */
  t: number;
  /** The original sender, `ip:port` (a daemon, not the relay). */
  from: string;
  /** The final destination, `ip:port` (the other daemon). */
  to: string;
  /** What became of this copy. */
  fate: "forwarded" | "dropped";
  /** How long the relay held the copy before sending it, in ms (0 if not held or dropped). */
  delay: number;
  /** Whether this is the extra copy of a duplicated datagram. */
  dup: boolean;
  /** Whether bits were flipped (then `hex` holds the bytes as sent). */
  corrupted: boolean;
  /** The datagram's bytes in lowercase hex (as sent when forwarded). */
  hex: string;
}

/** What the relay core wants done, in order. */
export type RelayAction =
  | {
    /** Send `bytes` to `to` from the relay's socket. */
    type: "send";
    /** The daemon it goes to. */
    to: Address;
    /**
     * The bytes. When returned from {@linkcode RelayCore.receive} without
     * delay or corruption these are the very bytes given to it: send them
     * before reusing that buffer.
     */
    bytes: Uint8Array;
    /** The direction it travels. */
    direction: Direction;
  }
  | {
    /** Write `record` to the log. */
    type: "record";
    /** The log line. */
    record: RelayRecord;
  };

/** The counts of one direction. */
export interface DirectionStats {
  /** Datagrams received from the sender. */
  received: number;
  /** Copies sent on to the receiver (a duplicated datagram counts twice). */
  forwarded: number;
  /** Datagrams (or held copies) dropped. */
  dropped: number;
  /** Datagrams sent twice. */
  duplicated: number;
  /** Copies with flipped bits. */
  corrupted: number;
  /** Copies held an extra random delay. */
  reordered: number;
}

/** The counts of both directions, and of datagrams from third addresses. */
export interface RelayStats {
  /** From A to B. */
  ab: DirectionStats;
  /** From B to A. */
  ba: DirectionStats;
  /** Datagrams from neither A nor B, dropped without a log record. */
  stray: number;
}

/** A copy waiting to be sent. */
interface Held {
  to: Address;
  bytes: Uint8Array;
  direction: Direction;
}

/** The state of one direction. */
interface Lane {
  from: Address;
  to: Address;
  impairments: Impairments;
  prng: Prng;
  stats: DirectionStats;
}

/**
 * The relay's state machine: see the module documentation for the rules.
 *
 * @example
 * ```ts
 * import { RelayCore } from "./core.ts";
 * const a = { ip: "127.0.0.1", port: 7777 };
 * const b = { ip: "127.0.0.2", port: 7777 };
 * const relay = new RelayCore({ a, b, seed: 1, ab: { delay: 10 } });
 * relay.receive(new Uint8Array([1, 2, 3]), a, 0);
 * console.log(relay.takeActions().length, relay.nextTimeout()); // 0 10
 * relay.tick(10);
 * const [send] = relay.takeActions();
 * console.log(send.type === "send" && send.to === b); // true
 * ```
 */
export class RelayCore {
  #lanes: Record<Direction, Lane>;
  #record: boolean;
  #maxHeldBytes: number;
  #held = new TimeQueue<Held>(); // by due time, then by arrival
  #heldBytes = 0;
  #actions: RelayAction[] = [];
  #stray = 0;

  /** Creates a relay between `options.a` and `options.b`. */
  constructor(options: RelayCoreOptions) {
    if (sameAddress(options.a, options.b)) {
      throw new RangeError(
        `A and B must be two daemons, both are ${formatAddress(options.a)}`,
      );
    }
    const lane = (from: Address, to: Address, salt: number): Lane => ({
      from,
      to,
      impairments: { ...NO_IMPAIRMENTS },
      prng: new Prng(mix(options.seed, salt)),
      stats: emptyStats(),
    });
    this.#lanes = {
      ab: lane(options.a, options.b, 0x0a0b),
      ba: lane(options.b, options.a, 0x0b0a),
    };
    this.setImpairments("ab", options.ab ?? {});
    this.setImpairments("ba", options.ba ?? {});
    this.#record = options.record ?? false;
    this.#maxHeldBytes = options.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
  }

  /**
   * Replaces the impairments of `direction` from now on (fields left out
   * are none). `dropFirst` always counts from the direction's first
   * datagram.
   * @throws {RangeError} for a probability outside [0, 1] or a negative
   * delay or count.
   */
  setImpairments(
    direction: Direction,
    impairments: Partial<Impairments>,
  ): void {
    const full = { ...NO_IMPAIRMENTS, ...impairments };
    checkImpairments(full);
    this.#lanes[direction].impairments = full;
  }

  /** The impairments of `direction` in force. */
  impairments(direction: Direction): Readonly<Impairments> {
    return this.#lanes[direction].impairments;
  }

  /** A snapshot of the counts. */
  stats(): RelayStats {
    return {
      ab: { ...this.#lanes.ab.stats },
      ba: { ...this.#lanes.ba.stats },
      stray: this.#stray,
    };
  }

  /** How many copies are held for later sending. */
  get held(): number {
    return this.#held.size;
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): RelayAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** The time at which {@linkcode tick} must next be called, if any. */
  nextTimeout(): number | undefined {
    return this.#held.nextTime;
  }

  /**
   * A datagram arrived from `from` at `now` (ms, any origin; it is the
   * record's `t`). `bytes` is not kept: held copies are copied.
   */
  receive(bytes: Uint8Array, from: Address, now: number): void {
    const direction = sameAddress(from, this.#lanes.ab.from)
      ? "ab"
      : sameAddress(from, this.#lanes.ba.from)
      ? "ba"
      : undefined;
    if (direction === undefined) {
      this.#stray++;
      return;
    }
    const lane = this.#lanes[direction];
    const { impairments: imp, prng, stats } = lane;
    stats.received++;
    const dropped = stats.received <= imp.dropFirst || prng.chance(imp.loss);
    if (dropped) {
      stats.dropped++;
      this.#log(lane, now, bytes, "dropped", 0, false, false);
      return;
    }
    const copies = prng.chance(imp.duplicate) ? 2 : 1;
    if (copies === 2) stats.duplicated++;
    for (let copy = 0; copy < copies; copy++) {
      let delay = imp.delay;
      if (imp.reorderDelay > 0 && prng.chance(imp.reorder)) {
        delay += (1 - prng.next()) * imp.reorderDelay; // in (0, reorderDelay]
        stats.reordered++;
      }
      let out = bytes;
      const corrupted = bytes.length > 0 && prng.chance(imp.corrupt);
      if (corrupted) {
        out = flipBits(bytes, 1 + prng.below(3), prng); // 1–3 bits
        stats.corrupted++;
      }
      this.#forward(lane, direction, now, out, delay, copy === 1, corrupted);
    }
  }

  /** The clock reached `now`: every held copy due by then is sent. */
  tick(now: number): void {
    while (this.#held.size > 0 && this.#held.nextTime! <= now) {
      const held = this.#held.pop()!;
      this.#heldBytes -= held.bytes.length;
      this.#actions.push({
        type: "send",
        to: held.to,
        bytes: held.bytes,
        direction: held.direction,
      });
    }
  }

  #forward(
    lane: Lane,
    direction: Direction,
    now: number,
    bytes: Uint8Array,
    delay: number,
    dup: boolean,
    corrupted: boolean,
  ): void {
    if (delay <= 0) {
      lane.stats.forwarded++;
      this.#log(lane, now, bytes, "forwarded", 0, dup, corrupted);
      this.#actions.push({ type: "send", to: lane.to, bytes, direction });
      return;
    }
    if (this.#heldBytes + bytes.length > this.#maxHeldBytes) {
      lane.stats.dropped++;
      this.#log(lane, now, bytes, "dropped", 0, dup, corrupted);
      return;
    }
    lane.stats.forwarded++;
    this.#log(lane, now, bytes, "forwarded", delay, dup, corrupted);
    // A corrupted copy is already a copy; the caller's buffer is not kept.
    const kept = corrupted ? bytes : bytes.slice();
    this.#heldBytes += kept.length;
    this.#held.push(now + delay, {
      to: lane.to,
      bytes: kept,
      direction,
    });
  }

  #log(
    lane: Lane,
    t: number,
    bytes: Uint8Array,
    fate: RelayRecord["fate"],
    delay: number,
    dup: boolean,
    corrupted: boolean,
  ): void {
    if (!this.#record) return;
    this.#actions.push({
      type: "record",
      record: {
        t: round3(t),
        from: formatAddress(lane.from),
        to: formatAddress(lane.to),
        fate,
        delay: round3(delay),
        dup,
        corrupted,
        hex: toHex(bytes),
      },
    });
  }
}

/**
 * Checks impairments: probabilities in [0, 1], delays and counts ≥ 0 and
 * finite.
 * @throws {RangeError} naming the first bad field.
 */
export function checkImpairments(impairments: Impairments): void {
  for (const key of ["loss", "duplicate", "reorder", "corrupt"] as const) {
    const p = impairments[key];
    if (!(p >= 0 && p <= 1)) {
      throw new RangeError(`Impairment ${key} must be from 0 to 1, not ${p}`);
    }
  }
  for (const key of ["reorderDelay", "delay", "dropFirst"] as const) {
    const n = impairments[key];
    if (!(n >= 0 && Number.isFinite(n))) {
      throw new RangeError(`Impairment ${key} must be 0 or more, not ${n}`);
    }
  }
}

/** Counts of a direction that has seen nothing. */
function emptyStats(): DirectionStats {
  return {
    received: 0,
    forwarded: 0,
    dropped: 0,
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
  };
}

/** A direction's seed from the relay's seed (splitmix-style mixing). */
function mix(seed: number, salt: number): number {
  let x = (Math.trunc(seed) ^ Math.imul(salt, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/** Lowercase hex of `bytes`. */
function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += HEX[byte];
  return out;
}

/** `x` rounded to 3 decimals (µs for ms values). */
function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
