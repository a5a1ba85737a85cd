/**
 * What a check of `simp conformance` works with: the two endpoints it speaks
 * from, the target's address and timing, the target's user (a driver), and
 * helpers that wait for a datagram, watch for silence, set up a chat, and
 * fail or skip with a reason. A check is a function of a {@linkcode Context};
 * it fails by throwing {@linkcode Failure}, skips by throwing
 * {@linkcode Skip}, and passes by returning.
 *
 * @module
 */

import {
  ACK,
  CHAT,
  chat,
  CONTROL,
  control,
  describe,
  FIN,
  kindName,
  parse,
  type Parsed,
  problemOf,
  SYN,
  SYN_ACK,
} from "./_codec.ts";
import {
  type Addr,
  type Endpoint,
  formatAddr,
  type Received,
  sleep,
  type Trace,
} from "./_net.ts";
import {
  type Driver,
  type DriverCommand,
  type DriverRequest,
  NO_DRIVER,
} from "./driver.ts";

/** A check did not pass: what was expected, and what happened instead. */
export class Failure extends Error {
  /** What the check expected. */
  readonly expected: string;

  /** `expected` is what should have happened; `message` what did. */
  constructor(expected: string, message: string) {
    super(message);
    this.name = "Failure";
    this.expected = expected;
  }
}

/** A check cannot be judged; the message says why. */
export class Skip extends Error {
  /** `message` is the reason shown in the report. */
  constructor(message: string) {
    super(message);
    this.name = "Skip";
  }
}

/** The user names the battery sends from its two addresses. */
export const PEER_NAME = "tester";
/** The name the third address sends. */
export const THIRD_NAME = "intruder";

/** The battery's timing, in ms. */
export interface Timing {
  /** The target's retransmission timeout (§5.2). */
  timeoutMs: number;
  /** How far a retransmission may be from the timeout. */
  toleranceMs: number;
  /** The target's retransmissions before it gives a peer up (§5.5). */
  retries: number;
  /** How long "no answer" is watched for. */
  quietMs: number;
  /** How long an answer that must come may take. */
  answerMs: number;
}

/** What is expected of the next datagram from the target. */
export interface Want {
  /** Type byte. */
  type: number;
  /** Operation byte. */
  op: number;
  /** Sequence, when it matters. */
  seq?: number;
  /** Payload (one character per byte), when it matters. */
  payload?: string;
}

/** A datagram from the target, read. */
export interface Got extends Received {
  /** Its fields. */
  d: Parsed;
}

/** Where each endpoint stands with the target, for the reset after a check. */
interface Engagement {
  /** Whether the target may have something open with this endpoint. */
  open: boolean;
  /** Our next chat sequence bit (§3.1), for our FIN (§3.3). */
  nextSeq: number;
}

/** The world of one check. */
export class Context {
  /** The target's SIMP address. */
  readonly target: Addr;
  /** The battery's main endpoint: the target's partner. */
  readonly peer: Endpoint;
  /** A third address (§7.1, §4.8). */
  readonly third: Endpoint;
  /** An ephemeral port on the peer's IP (§1.4). */
  readonly ephemeral: Endpoint;
  /** Timing. */
  readonly timing: Timing;
  /** The datagrams of the check. */
  readonly trace: Trace;
  /** Remarks for a PASS: what could not be looked at. */
  readonly notes: string[] = [];
  /** Whether the check asked the target's user for something. */
  askedUser = false;
  #cancelled = false;
  #driver: Driver;
  #unsupported: Set<DriverCommand>;
  #engaged = new Map<Endpoint, Engagement>();
  /** Every datagram from the target in this check, as hex, for repeats. */
  #seen = new Set<string>();

  /** A context; `unsupported` is shared by all checks of a run. */
  constructor(
    parts: {
      target: Addr;
      peer: Endpoint;
      third: Endpoint;
      ephemeral: Endpoint;
      timing: Timing;
      trace: Trace;
      driver: Driver;
      unsupported: Set<DriverCommand>;
    },
  ) {
    this.target = parts.target;
    this.peer = parts.peer;
    this.third = parts.third;
    this.ephemeral = parts.ephemeral;
    this.timing = parts.timing;
    this.trace = parts.trace;
    this.#driver = parts.driver;
    this.#unsupported = parts.unsupported;
  }

  // ------------------------------------------------------------- verdicts

  /**
   * Stops the check at its next step (it ran out of time): every helper
   * then throws, so that it does not take the datagrams of the next check.
   */
  cancel(): void {
    this.#cancelled = true;
  }

  /** Lets the reset after a cancelled check use the context again. */
  uncancel(): void {
    this.#cancelled = false;
  }

  #live(): void {
    if (this.#cancelled) {
      throw new Failure("the check to finish in time", "it was stopped");
    }
  }

  /** Fails the check. */
  fail(expected: string, got: string): never {
    throw new Failure(expected, got);
  }

  /** Skips the check. */
  skip(reason: string): never {
    throw new Skip(reason);
  }

  /** Adds a remark to the result. */
  note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }

  // ------------------------------------------------------------ the user

  /**
   * Skips the check at once when nobody can do `command` for the target's
   * user (no driver, or one known not to support it).
   */
  requires(...commands: DriverCommand[]): void {
    for (const command of commands) {
      if (this.#unsupported.has(command)) this.#cannotSkip(command);
    }
  }

  #cannotSkip(command: DriverCommand): never {
    this.skip(
      this.#driver === NO_DRIVER
        ? `needs the target's user to ${command}: give --driver CMD or --interactive`
        : `needs the target's user to ${command}, which the ${this.#driver.label} cannot do`,
    );
  }

  /**
   * Has the target's user do `request`: returns true when done, false when
   * the driver cannot (remembered for the rest of the run).
   * @throws {Failure} when the driver tried and reports an error.
   */
  async tryUser(request: DriverRequest): Promise<boolean> {
    this.#live();
    if (this.#unsupported.has(request.do)) return false;
    this.askedUser = true;
    const reply = await this.#driver.request(request);
    if (reply.ok) return true;
    if (reply.unsupported) {
      this.#unsupported.add(request.do);
      return false;
    }
    this.fail(
      `the target's user can ${describeRequest(request)}`,
      `the ${this.#driver.label} reports: ${reply.error}`,
    );
  }

  /** Like {@linkcode tryUser}, but skips the check when the driver cannot. */
  async user(request: DriverRequest): Promise<void> {
    if (!await this.tryUser(request)) this.#cannotSkip(request.do);
  }

  /**
   * The messages the target's user was shown since the reset, or
   * `undefined` when the driver cannot say (noted in the result).
   */
  async shown(): Promise<string[] | undefined> {
    this.#live();
    if (this.#unsupported.has("shown")) return this.#notShown();
    this.askedUser = true;
    const reply = await this.#driver.request({ do: "shown" });
    if (reply.ok) return reply.shown ?? [];
    if (reply.unsupported) {
      this.#unsupported.add("shown");
      return this.#notShown();
    }
    this.fail(
      "the target's user can say what they were shown",
      `the ${this.#driver.label} reports: ${reply.error}`,
    );
  }

  #notShown(): undefined {
    this.note("what the user was shown is not checked (the driver cannot say)");
    return undefined;
  }

  /**
   * Checks that the user was shown exactly `want`, in order: waits up to
   * the answer time for them to appear, then a little more for extras.
   */
  async expectShown(want: string[], rule: string): Promise<void> {
    let shown: string[] | undefined;
    if (this.#driver.person) {
      // A person is asked once, once the messages had time to show.
      await sleep(this.timing.quietMs);
      shown = await this.shown();
      if (shown === undefined) return;
    } else {
      const deadline = performance.now() + this.timing.answerMs;
      shown = await this.shown();
      if (shown === undefined) return;
      while (shown.length < want.length && performance.now() < deadline) {
        await sleep(50);
        shown = (await this.shown())!;
      }
      await sleep(this.timing.quietMs / 2);
      shown = (await this.shown())!;
    }
    if (JSON.stringify(shown) !== JSON.stringify(want)) {
      this.fail(
        `the user was shown ${JSON.stringify(want)} (${rule})`,
        `the user was shown ${JSON.stringify(shown)}`,
      );
    }
  }

  // ------------------------------------------------------------ the wire

  /** Sends `bytes` from `from` to the target. */
  async send(from: Endpoint, bytes: Uint8Array): Promise<void> {
    this.#live();
    await from.send(bytes, this.target);
  }

  /** Sends a control datagram from `from` under its name. */
  async sendControl(
    from: Endpoint,
    op: number,
    seq: number,
    payload = "",
  ): Promise<void> {
    if (op === SYN) this.engage(from);
    await this.send(from, control(op, seq, nameOf(from, this), payload));
  }

  /**
   * Sends our next chat datagram from `from` with `text` (Sequence as
   * tracked, or `seq`); returns the Sequence used.
   */
  async sendChat(from: Endpoint, text: string, seq?: number): Promise<number> {
    const e = this.engage(from);
    const used = seq ?? e.nextSeq;
    e.nextSeq = 1 - used;
    await this.send(from, chat(used, nameOf(from, this), text));
    return used;
  }

  /** Marks `ep` as possibly in a chat or handshake with the target. */
  engage(ep: Endpoint): Engagement {
    let e = this.#engaged.get(ep);
    if (e === undefined) {
      e = { open: true, nextSeq: 0 };
      this.#engaged.set(ep, e);
    }
    e.open = true;
    return e;
  }

  /** Marks `ep` as done with the target (nothing to close after the check). */
  disengage(ep: Endpoint): void {
    this.#engaged.delete(ep);
  }

  /**
   * The next datagram from the target at `ep` that matches `want`; exact
   * repeats of earlier datagrams of this check (retransmissions) are passed
   * over. Fails on anything else, on a malformed datagram, on one from
   * another IP, or when nothing comes within `ms` (default: the answer time).
   */
  async expect(
    ep: Endpoint,
    want: Want,
    what: string,
    ms = this.timing.answerMs,
  ): Promise<Got> {
    const deadline = performance.now() + ms;
    for (;;) {
      this.#live();
      const got = await ep.next(deadline - performance.now());
      if (got === undefined) {
        this.fail(
          `${what}: ${wantText(want)} at ${ep.name} within ${
            Math.round(ms)
          } ms`,
          "nothing came",
        );
      }
      const read = this.#read(ep, got, `${what}: ${wantText(want)}`);
      if (matches(read.d, want)) return read;
      if (read.repeat) continue;
      this.fail(
        `${what}: ${wantText(want)} at ${ep.name}`,
        `got ${describe(got.bytes)} at +${ms3(got.t)}`,
      );
    }
  }

  /**
   * The next datagram from the target at `ep`, whatever it is (repeats
   * included), or `undefined` after `ms`; still checked to be well-formed.
   */
  async next(ep: Endpoint, ms: number, what: string): Promise<Got | undefined> {
    this.#live();
    const got = await ep.next(ms);
    if (got === undefined) return undefined;
    return this.#read(ep, got, what);
  }

  /**
   * Watches `ep` for `ms` and fails if the target sends anything there but
   * exact repeats of earlier datagrams (unless `repeats` is false).
   */
  async quiet(
    ep: Endpoint,
    ms: number,
    why: string,
    { repeats = true } = {},
  ): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      this.#live();
      const got = await ep.next(deadline - performance.now());
      if (got === undefined) return;
      const read = this.#read(ep, got, why);
      if (repeats && read.repeat) continue;
      this.fail(
        `${why}: nothing at ${ep.name} for ${Math.round(ms)} ms`,
        `got ${describe(got.bytes)} at +${ms3(got.t)}`,
      );
    }
  }

  /**
   * Everything the target sends at `ep` for `ms` (checked to be
   * well-formed), each marked as a repeat or not.
   */
  async watch(
    ep: Endpoint,
    ms: number,
    what: string,
  ): Promise<(Got & { repeat: boolean })[]> {
    const deadline = performance.now() + ms;
    const all: (Got & { repeat: boolean })[] = [];
    for (;;) {
      this.#live();
      const got = await ep.next(deadline - performance.now());
      if (got === undefined) return all;
      all.push(this.#read(ep, got, what));
    }
  }

  #read(ep: Endpoint, got: Received, what: string): Got & { repeat: boolean } {
    if (got.from.hostname !== this.target.hostname) {
      this.fail(
        what,
        `a datagram from ${
          formatAddr(got.from)
        }, not the target, at ${ep.name}`,
      );
    }
    const problem = problemOf(got.bytes);
    if (problem !== undefined) {
      this.fail(
        `${what}; every datagram well-formed (§2)`,
        `${describe(got.bytes)} at +${ms3(got.t)}: ${problem}`,
      );
    }
    const key = `${ep.name} ${[...got.bytes].join(",")}`;
    const repeat = this.#seen.has(key);
    this.#seen.add(key);
    return { ...got, d: parse(got.bytes)!, repeat };
  }

  // ------------------------------------------------------------ set-ups

  /**
   * `ep` invites the target and the chat is set up (§4.1–§4.3): SYN, the
   * target's user accepts (unless it answers by itself, §4.9), SYN+ACK,
   * ACK. Skips when nobody can accept; with `ack: false` stops after the
   * SYN+ACK and returns it.
   */
  async inbound(ep: Endpoint = this.peer, { ack = true } = {}): Promise<Got> {
    await this.sendControl(ep, SYN, 0);
    const early = await this.next(ep, this.timing.quietMs, "an answer to SYN");
    let synAck: Got;
    if (early !== undefined) {
      if (!isKind(early.d, CONTROL, SYN_ACK)) {
        this.fail(
          "SYN+ACK to our SYN (or no answer until the user decides, §4.2)",
          `got ${describe(early.bytes)}`,
        );
      }
      synAck = early; // auto-accept (§4.9)
    } else {
      if (!await this.acceptWhileResending(ep)) {
        await this.sendControl(ep, FIN, 0); // withdraw
        this.disengage(ep);
        this.skip(
          "needs the target's user to accept an invitation: give --driver CMD or --interactive, or let the target accept by itself (§4.9)",
        );
      }
      synAck = await this.expect(
        ep,
        { type: CONTROL, op: SYN_ACK },
        "SYN+ACK once the user accepted (§4.3)",
      );
    }
    if (ack) await this.sendControl(ep, ACK, 0);
    return synAck;
  }

  /**
   * Has the user accept while `ep` resends its SYN every timeout, as a
   * waiting inviter does (§4.5); false when the driver cannot accept.
   */
  async acceptWhileResending(ep: Endpoint): Promise<boolean> {
    let stop = () => {};
    const stopped = new Promise<void>((resolve) => stop = resolve);
    const resend = (async () => {
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const due = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), this.timing.timeoutMs);
        });
        const again = await Promise.race([due, stopped.then(() => false)]);
        clearTimeout(timer);
        if (!again) return;
        await this.sendControl(ep, SYN, 0);
      }
    })();
    try {
      return await this.tryUser({ do: "accept" });
    } finally {
      stop();
      await resend;
    }
  }

  /**
   * The target's user invites `ep` and the chat is set up (§4.1, §4.3):
   * SYN, our SYN+ACK, its ACK. With `answer: false` stops after the SYN.
   */
  async outbound(
    ep: Endpoint = this.peer,
    { answer = true } = {},
  ): Promise<Got> {
    this.engage(ep);
    await this.user({ do: "invite", ip: ep.addr.hostname });
    const syn = await this.expect(
      ep,
      { type: CONTROL, op: SYN },
      "SYN after the user invited us (§4.1)",
    );
    if (!answer) return syn;
    await this.sendControl(ep, SYN_ACK, 0);
    // Its ACK is judged by handshake.initiator alone; here it only ends
    // the handshake, and its first chat datagram would imply it (§4.3).
    const ack = await this.next(ep, this.timing.answerMs, "ACK of SYN+ACK");
    if (ack !== undefined && !isKind(ack.d, CONTROL, ACK)) {
      this.fail(
        "ACK of our SYN+ACK (§4.3)",
        `got ${describe(ack.bytes)} at +${ms3(ack.t)}`,
      );
    }
    return syn;
  }

  /**
   * Checks that the chat with `ep` still works, without judging how: one
   * chat datagram of ours gets an ACK.
   */
  async stillChatting(ep: Endpoint, why: string): Promise<void> {
    await this.sendChat(ep, "still there?");
    await this.expect(ep, { type: CONTROL, op: ACK }, why);
  }

  // ------------------------------------------------------------ reset

  /**
   * Leaves the target idle: a FIN from every endpoint that may still have
   * something open with it, every FIN of the target ACKed, the user reset,
   * then silence for a timeout (its retransmissions are over).
   */
  async reset(needed: boolean): Promise<void> {
    if (!needed) return;
    for (const [ep, e] of this.#engaged) {
      if (e.open) await this.sendControl(ep, FIN, e.nextSeq);
    }
    this.#engaged.clear();
    const { timeoutMs, toleranceMs, quietMs } = this.timing;
    await this.#answerFins(quietMs, 2 * timeoutMs + toleranceMs);
    try {
      await this.tryUser({ do: "reset" });
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      this.note(`reset: ${error.message}`);
    }
    // The target's retransmissions are over once it has been quiet for a
    // timeout and its tolerance.
    await this.#answerFins(
      timeoutMs + toleranceMs,
      3 * timeoutMs + 2 * toleranceMs,
      false,
    );
  }

  /**
   * ACKs what the target sends until it has been quiet for `quietMs` (since
   * the last datagram it sent, or from now when `fromNow`).
   */
  async #answerFins(
    quietMs: number,
    maxMs: number,
    fromNow = true,
  ): Promise<void> {
    const end = performance.now() + maxMs;
    // At least a short wait, for what the user's reset just caused.
    let lastHeard = fromNow ? performance.now() : Math.max(
      this.peer.lastAt,
      this.third.lastAt,
      this.ephemeral.lastAt,
      performance.now() - quietMs + this.timing.quietMs,
    );
    while (performance.now() < end) {
      for (const ep of [this.peer, this.third, this.ephemeral]) {
        for (const got of ep.drain()) {
          lastHeard = performance.now();
          const d = parse(got.bytes);
          if (d === undefined) continue;
          const name = nameOf(ep, this);
          if (isKind(d, CONTROL, FIN) || d.type === CHAT) {
            await ep.send(control(ACK, d.seq & 1, name), got.from);
          } else if (isKind(d, CONTROL, SYN_ACK) || isKind(d, CONTROL, SYN)) {
            await ep.send(control(FIN, 0, name), got.from);
          }
        }
      }
      if (performance.now() - lastHeard >= quietMs) return;
      await sleep(10);
    }
  }
}

/** Whether `d` is of this Type and Operation. */
export function isKind(d: Parsed, type: number, op: number): boolean {
  return d.type === type && d.op === op;
}

function matches(d: Parsed, want: Want): boolean {
  return d.type === want.type && d.op === want.op &&
    (want.seq === undefined || d.seq === want.seq) &&
    (want.payload === undefined || d.payload === want.payload);
}

/** "SYN+ACK seq=0 \"text\"". */
export function wantText(want: Want): string {
  return kindName(want.type, want.op) +
    (want.seq === undefined ? "" : ` seq=${want.seq}`) +
    (want.payload === undefined ? "" : ` ${JSON.stringify(want.payload)}`);
}

/** Milliseconds as `0.123 s`. */
export function ms3(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

function nameOf(ep: Endpoint, ctx: Context): string {
  return ep === ctx.third ? THIRD_NAME : PEER_NAME;
}

function describeRequest(request: DriverRequest): string {
  switch (request.do) {
    case "reset":
      return "get ready (reset)";
    case "invite":
      return `invite ${request.ip}`;
    case "send":
      return `send ${JSON.stringify(request.text)}`;
    case "shown":
      return "say what they were shown";
    default:
      return `${request.do}`;
  }
}
