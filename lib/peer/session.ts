/**
 * One daemon's SIMP protocol state (SPEC §3–§7) as a sans-I/O engine: it
 * takes events (a datagram arrived, the user asked for something, the clock
 * moved) and produces actions (datagrams to send, events for the user) and
 * the next time it wants to be woken. It never reads a clock, sets a timer
 * or touches a socket: the daemon and the tests drive it.
 *
 * @module
 */

import {
  BUSY_TEXT,
  checkText,
  type ControlDatagram,
  type Datagram,
  decodeDatagram,
  encodeDatagram,
  MalformedDatagramError,
  Op,
  opName,
  type Seq,
  Type,
} from "../wire/datagram.ts";
import { BusyAnswers } from "./busy_answers.ts";
import {
  RttEstimator,
  StopAndWaitReceiver,
  StopAndWaitSender,
} from "./stop_and_wait.ts";
import { type Address, formatAddress, sameAddress } from "../address.ts";

/**
 * How many timeouts a delivered message counts as recent for the stale-copy
 * rule of SPEC §5.3 (see {@linkcode StopAndWaitReceiver}): as long as a
 * former peer is remembered (§6.2), and short enough that a peer sharing
 * one counter that repeats a recent text gets it through at its second or
 * third retransmission.
 */
const RECENT_TIMEOUTS = 2;

/** Protocol settings; every time is in milliseconds. */
export interface SessionConfig {
  /** Retransmission timeout (SPEC §5.2); the spec default is 5000. */
  timeout: number;
  /** Retransmissions before the peer is lost (SPEC §5.5); default 5. */
  maxRetries: number;
  /** How long an invitation lives without an answer (SPEC §4.6); default 60000. */
  invitationLimit: number;
  /** How many messages may wait behind the one in flight (SPEC §5.1); default 64. */
  maxQueue: number;
  /** Adaptive retransmission timeout (SPEC §5.6); off by default. */
  adaptiveTimeout: boolean;
  /**
   * Lower bound of the adaptive timeout; default 5: far above loopback and
   * LAN round trips (0.05–1 ms), so that on those the floor sets the
   * timeout and the scheduling stalls of a busy machine (a few ms) are not
   * taken for losses; far below the fixed 5 s, so that a loss on a fast link
   * costs milliseconds. The figures behind it are in the README ("On a lossy
   * link"), from `tools/sim_reliability.ts floors`.
   */
  minTimeout: number;
  /** Accept invitations without asking (SPEC §4.9); off by default. */
  autoAccept: boolean;
  /** How many former peers are remembered for re-ACKing their FIN (SPEC §6.2, §7.3); default 16. */
  maxFormerPeers: number;
  /**
   * Busy answers (ERR+FIN) per second in total (SPEC §4.8, §7.3); default
   * 100. Each source IP also gets at most {@linkcode BUSY_PER_SENDER_BURST}
   * in a row, then one a second; see {@linkcode BusyAnswers}.
   */
  busyAnswersPerSecond: number;
  /** How many source IPs the busy-answer budget tracks (SPEC §7.3); default 1024. */
  maxBusySenders: number;
}

/** What a {@linkcode Session} is created with: settings and the user's name. */
export type SessionOptions = Partial<SessionConfig> & {
  /** The local user's name (may be set later, see {@linkcode Session.userName}). */
  userName?: string;
};

/** The spec's defaults (SPEC §4.6, §5.1, §5.2, §5.5). */
export const DEFAULT_CONFIG: Readonly<SessionConfig> = Object.freeze({
  timeout: 5000,
  maxRetries: 5,
  invitationLimit: 60_000,
  maxQueue: 64,
  adaptiveTimeout: false,
  minTimeout: 2,
  autoAccept: false,
  maxFormerPeers: 16,
  busyAnswersPerSecond: 100,
  maxBusySenders: 1024,
});

/**
 * An invitation answered within this many ms of its first SYN was not
 * accepted by a user (see `chat-started`'s `atOnce`).
 */
export const AT_ONCE_MS = 500;

/**
 * How many inviters answered busy are reported to the user
 * (`busy-answered`) per busy period, at most (SPEC §7.3); each is reported
 * once per period.
 */
export const MAX_BUSY_REPORTS = 16;

/** Busy answers in a row to one source IP (SPEC §7.3). */
export const BUSY_PER_SENDER_BURST = 2;

/**
 * After its burst, one busy answer per this many ms to one source IP, or per
 * timeout when that is shorter (SPEC §7.3).
 */
export const BUSY_PER_SENDER_INTERVAL = 1000;

/** A message that was not delivered, reported back to the user (SPEC §5.5). */
export interface Undelivered {
  /** The id {@linkcode Session.send} returned. */
  id: number;
  /** The message text. */
  text: string;
}

/** What the local user is told. */
export type SessionEvent =
  | { type: "invitation"; peer: Address; name: string }
  | {
    type: "invitation-ended";
    peer: Address;
    name: string;
    reason: "withdrawn" | "expired";
  }
  | {
    type: "chat-started";
    peer: Address;
    name: string;
    /**
     * Our invitation was answered within {@linkcode AT_ONCE_MS} of its
     * first SYN: no user accepted it (the other daemon rejoined a chat it
     * still had with us, or accepts by itself).
     */
    atOnce?: true;
  }
  | {
    /** Our SYN was sent again (SPEC §4.5); `leftMs` until we give up (§4.6). */
    type: "invite-retry";
    peer: Address;
    attempt: number;
    leftMs: number;
  }
  | {
    /** `name` at `peer` tried to invite us and was answered busy (§4.8). */
    type: "busy-answered";
    peer: Address;
    name: string;
  }
  | {
    /** The partner's daemon invited us again during the chat: it restarted (§4.5). */
    type: "peer-reconnected";
    peer: Address;
    name: string;
  }
  | { type: "declined"; peer: Address; name: string }
  | { type: "busy"; peer: Address; text: string }
  | { type: "no-answer"; peer: Address }
  | { type: "message"; name: string; text: string }
  | { type: "delivered"; id: number; rtt: number | undefined }
  | { type: "retransmitted"; id: number; attempt: number }
  | {
    type: "peer-left";
    peer: Address;
    name: string;
    undelivered: Undelivered[];
  }
  | {
    type: "peer-lost";
    peer: Address;
    name: string;
    undelivered: Undelivered[];
  }
  | {
    type: "chat-closed";
    peer: Address;
    name: string;
    undelivered: Undelivered[];
  }
  | { type: "peer-error"; peer: Address; text: string };

/** Why an incoming datagram was not acted on. */
export type DropReason =
  | "malformed"
  | "third-address"
  | "unexpected"
  | "duplicate-ack"
  | "rate-limited"
  | "backpressure"
  | "stale-copy"
  | "closing";

/** What the engine wants done. */
export type Action =
  | { type: "transmit"; to: Address; datagram: Datagram; bytes: Uint8Array }
  | { type: "event"; event: SessionEvent }
  | { type: "drop"; from: Address; reason: DropReason; detail: string };

/** The protocol phase of a {@linkcode Session}. */
export type Phase =
  | "idle"
  | "inviting"
  | "invited"
  | "accepting"
  | "established"
  | "closing";

/** A snapshot of a session for status displays and the client protocol. */
export interface SessionStatus {
  /** The phase. */
  phase: Phase;
  /** The other daemon, when there is one. */
  peer?: Address;
  /** The other user's name, when known. */
  peerName?: string;
  /** Messages waiting behind the one in flight. */
  queued: number;
}

/** A command that the session cannot carry out in its present phase. */
export class SessionError extends Error {
  /** Set when a program should act on the error: `queue-full` (SPEC §5.1). */
  readonly code: "queue-full" | undefined;

  /** Creates the error with a message for the user. */
  constructor(message: string, code?: "queue-full") {
    super(message);
    this.name = "SessionError";
    this.code = code;
  }
}

type Outgoing = { kind: "chat"; id: number; text: string } | { kind: "fin" };

interface Chat {
  sender: StopAndWaitSender<Outgoing>;
  receiver: StopAndWaitReceiver;
  rtt: RttEstimator;
  /** Whether the user ever had this chat (false while declining). */
  wasStarted: boolean;
  /**
   * Until when an ACK with Sequence 0 may still be the partner's answer to
   * a SYN+ACK of ours (see {@linkcode Session.#echoWindow}).
   */
  echoUntil: number;
  /** A round-trip estimate from the handshake, for the echo window. */
  handshakeRtt: number;
  /**
   * When the handshake last showed on the wire (the chat was established,
   * or we sent SYN+ACK): a partner's SYN within the echo window after it
   * (two round trips) belongs to that handshake, a later one is a new
   * invitation from a daemon that restarted (`peer-reconnected`).
   */
  handshakeAt: number;
  /**
   * `peer-reconnected` was reported and nothing has come from the partner
   * since but SYNs: they are the same new invitation, retransmitted.
   */
  rejoining: boolean;
}

/**
 * One daemon's protocol state machine (SPEC §3–§7).
 *
 * Drive it with {@linkcode receive}, the user commands and {@linkcode tick};
 * after each call, collect {@linkcode takeActions} and wake it again at
 * {@linkcode nextTimeout}.
 *
 * @example
 * ```ts
 * import { Session } from "./session.ts";
 * const s = new Session({ userName: "alice" });
 * s.invite({ ip: "127.0.0.2", port: 7777 }, 0);
 * const [syn] = s.takeActions(); // transmit SYN to 127.0.0.2:7777
 * ```
 */
export class Session {
  #config: SessionConfig;
  #userName: string;
  #phase: Phase = "idle";
  #peer: Address | undefined;
  #peerName = "";
  #actions: Action[] = [];
  #nextId = 1;

  // inviting: when the invitation is given up, and when the SYN is resent
  #inviteDeadline = 0;
  #synDue = 0;
  #firstSynAt = 0;
  #lastSynAt = 0;
  #synRetransmissions = 0;
  /** Inviters answered busy and reported in this busy period (`ip:port`). */
  #busyReported = new Set<string>();
  /** The names of inviters whose busy answer waits (`ip:port` → name). */
  #busyWaiting = new Map<string, string>();
  // invited: when the pending invitation expires
  #invitationExpires = 0;
  // accepting: SYN+ACK retransmission; when the first and the last went out
  #synAckFirstAt = 0;
  #synAckLastAt = 0;
  #synAckRetransmissions = 0;
  #synAckDue = 0;

  #chat: Chat | undefined;
  /** Former peers (key `ip:port`) and until when their FIN is re-ACKed. */
  #formerPeers = new Map<string, number>();
  #busyAnswers: BusyAnswers<Address>;

  /** Counters for logs and tests. */
  readonly counters: Record<DropReason | "received" | "sent", number> = {
    received: 0,
    sent: 0,
    malformed: 0,
    "third-address": 0,
    unexpected: 0,
    "duplicate-ack": 0,
    "rate-limited": 0,
    backpressure: 0,
    "stale-copy": 0,
    closing: 0,
  };

  /**
   * Whether a new chat message may be delivered now. The daemon clears it
   * while its user's side cannot take more (a slow or absent client): a new
   * chat datagram is then neither ACKed nor delivered, so the peer keeps it
   * and retransmits it (flow control for free with stop-and-wait; nothing is
   * lost, and a peer that waits too long reports it undelivered, SPEC §5.5).
   * Duplicates are still re-ACKed.
   */
  acceptingMessages = true;

  /** Creates an idle session; `config` overrides {@linkcode DEFAULT_CONFIG}. */
  constructor(config: SessionOptions = {}) {
    const { userName = "", ...rest } = config;
    this.#config = { ...DEFAULT_CONFIG, ...rest };
    this.#userName = userName;
    this.#busyAnswers = new BusyAnswers({
      perSecond: this.#config.busyAnswersPerSecond,
      perSenderBurst: BUSY_PER_SENDER_BURST,
      // One answer per timeout at most (an honest inviter sends one SYN per
      // timeout, §4.5), and one a second whatever the timeout.
      perSenderInterval: Math.min(
        BUSY_PER_SENDER_INTERVAL,
        this.#config.timeout,
      ),
      maxSenders: this.#config.maxBusySenders,
      maxWait: this.#config.timeout,
    });
  }

  /** The local user's name, sent in the User field of every datagram. */
  get userName(): string {
    return this.#userName;
  }

  set userName(name: string) {
    this.#userName = name;
  }

  /** The settings in force. */
  get config(): Readonly<SessionConfig> {
    return this.#config;
  }

  /** The phase. */
  get phase(): Phase {
    return this.#phase;
  }

  /** A snapshot for status displays. */
  status(): SessionStatus {
    return {
      phase: this.#phase,
      ...(this.#peer ? { peer: this.#peer } : {}),
      ...(this.#peerName ? { peerName: this.#peerName } : {}),
      queued: this.#chat?.sender.queued ?? 0,
    };
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): Action[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** The time at which {@linkcode tick} must next be called, if any. */
  nextTimeout(): number | undefined {
    const phase = this.#phaseTimeout();
    const busy = this.#busyAnswers.nextDue();
    if (busy === undefined) return phase;
    return phase === undefined ? busy : Math.min(phase, busy);
  }

  /** How many source IPs the busy-answer budget tracks (SPEC §7.3). */
  get busySenders(): number {
    return this.#busyAnswers.size;
  }

  #phaseTimeout(): number | undefined {
    switch (this.#phase) {
      case "inviting":
        return Math.min(this.#synDue, this.#inviteDeadline);
      case "invited":
        return this.#invitationExpires;
      case "accepting":
        return this.#synAckDue;
      case "established":
      case "closing": {
        const chat = this.#chat!;
        return this.#waitsForEcho(chat) ? chat.echoUntil : chat.sender.deadline;
      }
      default:
        return undefined;
    }
  }

  // ---------------------------------------------------------------- commands

  /**
   * The user asks to chat with the daemon at `to` (SPEC §4.1).
   * @throws {SessionError} when not idle.
   */
  invite(to: Address, now: number): void {
    this.tick(now);
    if (this.#phase !== "idle") throw this.#notIdle();
    this.#phase = "inviting";
    this.#peer = to;
    this.#peerName = "";
    this.#inviteDeadline = now + this.#config.invitationLimit;
    this.#synDue = now + this.#config.timeout;
    this.#firstSynAt = now;
    this.#lastSynAt = now;
    this.#synRetransmissions = 0;
    this.#control(to, Op.SYN, 0);
  }

  /**
   * The user accepts the pending invitation: SYN+ACK (SPEC §4.3).
   * @throws {SessionError} when no invitation is pending.
   */
  accept(now: number): void {
    this.tick(now);
    if (this.#phase !== "invited") {
      throw new SessionError("There is no invitation to accept");
    }
    this.#startAccepting(now);
  }

  /**
   * The user declines the pending invitation: a FIN, retransmitted until
   * ACKed (SPEC §4.4).
   * @throws {SessionError} when no invitation is pending.
   */
  decline(now: number): void {
    this.tick(now);
    if (this.#phase !== "invited") {
      throw new SessionError("There is no invitation to decline");
    }
    this.#startDecline(now);
  }

  /**
   * The user sends a chat message; returns its id, which later events
   * (`delivered`, `retransmitted`, `undelivered`) name. Messages typed while
   * the handshake finishes wait in the queue.
   * @throws {SessionError} when not in a chat, the text is not sendable, or
   * the queue is full (SPEC §5.1).
   */
  send(text: string, now: number): number {
    this.tick(now);
    const chat = this.#chat;
    if (
      chat === undefined ||
      (this.#phase !== "established" && this.#phase !== "accepting")
    ) {
      throw new SessionError(
        "Not in a chat: start one or accept an invitation first",
      );
    }
    const problem = checkText(text);
    if (problem) throw new SessionError(problem);
    if (chat.sender.full) {
      throw new SessionError(
        `Send queue is full (${this.#config.maxQueue} messages waiting): wait until some are delivered`,
        "queue-full",
      );
    }
    const id = this.#nextId++;
    chat.sender.push({ kind: "chat", id, text });
    this.#pump(now);
    return id;
  }

  /**
   * The user leaves: a chat is closed with FIN after the messages already
   * queued (SPEC §6.1); an invitation of ours is withdrawn with one FIN; a
   * pending invitation is declined. While the handshake is unfinished
   * (SYN+ACK sent, no ACK yet) it is {@linkcode abort}ed: a FIN now could
   * be answered by the late handshake ACK, which is the same bytes as the
   * FIN's ACK. Leaving while closing changes nothing.
   * @throws {SessionError} when there is nothing to leave.
   */
  leave(now: number): void {
    this.tick(now);
    switch (this.#phase) {
      case "idle":
        throw new SessionError("Not in a chat");
      case "invited":
        this.#startDecline(now);
        return;
      case "established":
        this.#phase = "closing";
        this.#chat!.sender.push({ kind: "fin" });
        this.#pump(now);
        return;
      case "closing":
        return;
      case "inviting":
      case "accepting":
        this.abort(now);
        return;
    }
  }

  /**
   * Ends whatever is going on at once, as a daemon that is stopping must:
   * one FIN, not retransmitted — with the sequence bit after the datagram
   * in flight (SPEC §3.3), sent now rather than queued behind it — and back
   * to idle.
   * An invitation of ours is withdrawn, a pending one declined; the messages
   * of a chat that were not acknowledged are reported in `chat-closed`
   * (SPEC §5.5). When idle, nothing happens.
   */
  abort(now: number): void {
    this.tick(now);
    if (this.#phase === "idle") return;
    const chat = this.#chat;
    this.#control(this.#peer!, Op.FIN, chat ? this.#finSeq(chat) : 0);
    if (chat?.wasStarted) {
      this.#emit({
        type: "chat-closed",
        peer: this.#peer!,
        name: this.#peerName,
        undelivered: this.#undelivered(chat),
      });
    }
    this.#toIdle(now);
  }

  // ------------------------------------------------------------------ events

  /** A datagram arrived from `from` at time `now`. */
  receive(bytes: Uint8Array, from: Address, now: number): void {
    this.tick(now);
    this.counters.received++;
    let d: Datagram;
    try {
      d = decodeDatagram(bytes);
    } catch (error) {
      if (!(error instanceof MalformedDatagramError)) throw error;
      this.#drop(from, "malformed", error.message);
      return;
    }
    if (d.type === Type.CONTROL && d.op === Op.SYN) {
      this.#onSyn(d, from, now);
      return;
    }
    const peer = this.#peer;
    const fromPeer = sameAddress(peer, from) ||
      // An invited daemon may answer from another port (SPEC §1.4).
      (this.#phase === "inviting" && peer?.ip === from.ip);
    if (fromPeer) {
      this.#onPeerDatagram(d, from, now);
      return;
    }
    if (d.type === Type.CONTROL && d.op === Op.FIN) {
      const until = this.#formerPeers.get(formatAddress(from));
      if (until !== undefined && now < until) {
        this.#control(from, Op.ACK, d.seq); // SPEC §6.2
        return;
      }
    }
    const reason = this.#formerPeers.has(formatAddress(from))
      ? "unexpected" // late, from the partner of a chat that is over
      : "third-address";
    this.#drop(from, reason, `${opName(d)} while ${this.#phase}`);
  }

  /** The clock reached `now`: retransmit, give up or expire what is due. */
  tick(now: number): void {
    for (const to of this.#busyAnswers.due(now)) {
      // Not busy any more, or that daemon is now the one we deal with: its
      // SYN, retransmitted, gets what the phase gives it (SPEC §4.5–§4.8).
      const name = this.#busyWaiting.get(formatAddress(to)) ?? "";
      this.#busyWaiting.delete(formatAddress(to));
      if (this.#phase === "idle" || this.#peer?.ip === to.ip) {
        continue;
      }
      this.#busyAnswer(to);
      this.#reportBusy(to, name);
    }
    switch (this.#phase) {
      case "inviting":
        if (now >= this.#inviteDeadline) {
          // SPEC §4.6; the FIN withdraws the invitation at the other side.
          this.#emit({ type: "no-answer", peer: this.#peer! });
          this.#control(this.#peer!, Op.FIN, 0);
          this.#toIdle(now);
        } else if (now >= this.#synDue) {
          this.#synDue = now + this.#config.timeout; // SPEC §4.5
          this.#synRetransmissions++;
          this.#lastSynAt = now;
          this.#control(this.#peer!, Op.SYN, 0);
          this.#emit({
            type: "invite-retry",
            peer: this.#peer!,
            attempt: this.#synRetransmissions,
            // Whole ms: the daemon's clock has fractions, the link does not.
            leftMs: Math.max(0, Math.round(this.#inviteDeadline - now)),
          });
        }
        return;
      case "invited":
        if (now >= this.#invitationExpires) {
          this.#emit({
            type: "invitation-ended",
            peer: this.#peer!,
            name: this.#peerName,
            reason: "expired",
          });
          this.#startDecline(now); // SPEC §4.6: dropped with a FIN
        }
        return;
      case "accepting":
        if (now >= this.#synAckDue) {
          if (this.#synAckRetransmissions >= this.#config.maxRetries) {
            this.#lose(now);
            return;
          }
          this.#synAckRetransmissions++;
          this.#synAckDue = now + this.#config.timeout;
          this.#sendSynAck(now);
        }
        return;
      case "established":
      case "closing": {
        const chat = this.#chat!;
        this.#pump(now); // a datagram held by the echo window
        const finSeq = this.#finSeq(chat); // before a loss drains the sender
        const result = chat.sender.timeout(now);
        if (result === undefined) return;
        if ("lost" in result) {
          this.#lose(now, result.lost, finSeq);
          return;
        }
        const { item, seq, retransmissions } = result.retransmit;
        this.#transmitItem(item, seq);
        if (item.kind === "chat") {
          this.#emit({
            type: "retransmitted",
            id: item.id,
            attempt: retransmissions,
          });
        }
        return;
      }
    }
  }

  // --------------------------------------------------------------- internals

  #onSyn(d: Datagram, from: Address, now: number): void {
    const isPeer = sameAddress(this.#peer, from);
    switch (this.#phase) {
      case "idle":
        this.#phase = "invited";
        this.#peer = from;
        this.#peerName = d.user;
        this.#invitationExpires = now + this.#config.invitationLimit;
        this.#emit({ type: "invitation", peer: from, name: d.user });
        if (this.#config.autoAccept) this.accept(now);
        return;
      case "invited":
        if (isPeer) {
          // SPEC §4.5: the same invitation again; it is still alive.
          this.#invitationExpires = now + this.#config.invitationLimit;
          return;
        }
        break;
      case "inviting":
        if (this.#peer!.ip === from.ip) {
          // SPEC §4.7: crossed invitations, finish like a simultaneous open.
          this.#peer = from;
          this.#peerName = d.user;
          this.#startAccepting(now);
          return;
        }
        break;
      case "accepting":
      case "established":
      case "closing":
        if (isPeer && !this.#chat!.wasStarted) {
          // Declining: the FIN is on its way and retransmitted.
          this.#drop(from, "unexpected", "SYN while declining");
          return;
        }
        if (isPeer) {
          // SPEC §4.5: a late duplicate from the partner, never busy. It may
          // also be the partner's daemon restarted and inviting again: the
          // receiver's rules (SPEC §5.3) take its first message, Sequence 0,
          // for a new one without being reset, and a reset would take the
          // next retransmission of a partner that did not restart for new.
          // Once the handshake is over the partner sends no SYN, so one
          // later than a late copy could come (the echo window: two round
          // trips) is such a new invitation: the user is told, once (its
          // retransmissions, before anything else comes, are the same),
          // that messages around it may have been missed.
          const chat = this.#chat!;
          if (
            this.#phase !== "accepting" && !chat.rejoining &&
            now >= chat.handshakeAt + this.#echoWindow(chat)
          ) {
            chat.rejoining = true;
            this.#emit({ type: "peer-reconnected", peer: from, name: d.user });
          }
          this.#sendSynAck(now);
          chat.handshakeAt = now;
          return;
        }
        break;
    }
    this.#busy(from, d.user, now);
  }

  /**
   * SPEC §4.8: ERR with the exact text, then FIN; budgeted per sender and in
   * total (§7.3), now or at a later {@linkcode tick}.
   */
  #busy(from: Address, name: string, now: number): void {
    switch (this.#busyAnswers.request(from, now)) {
      case "answer":
        this.#busyAnswer(from);
        this.#reportBusy(from, name);
        return;
      case "deferred":
        // Reported when answered (a tick), if it still is.
        if (this.#busyWaiting.size < this.#config.maxBusySenders) {
          this.#busyWaiting.set(formatAddress(from), name);
        }
        return;
      case "refused":
        this.#drop(from, "rate-limited", "busy answer withheld");
        return;
    }
  }

  /**
   * Tells the user that `name` at `from` tried to invite us and is answered
   * busy: once per inviter address and busy period, at most
   * {@linkcode MAX_BUSY_REPORTS} inviters a period (SPEC §7.3).
   */
  #reportBusy(from: Address, name: string): void {
    const key = formatAddress(from);
    if (this.#busyReported.has(key)) return;
    if (this.#busyReported.size >= MAX_BUSY_REPORTS) return;
    this.#busyReported.add(key);
    this.#emit({ type: "busy-answered", peer: from, name });
  }

  #busyAnswer(to: Address): void {
    this.#control(to, Op.ERR, 0, BUSY_TEXT);
    this.#control(to, Op.FIN, 0);
  }

  #onPeerDatagram(d: Datagram, from: Address, now: number): void {
    switch (this.#phase) {
      case "inviting":
        return this.#onAnswer(d, from, now);
      case "invited":
        if (d.type === Type.CONTROL && d.op === Op.FIN) {
          // The inviter withdrew (it gave up, or its user cancelled).
          this.#control(from, Op.ACK, d.seq);
          this.#emit({
            type: "invitation-ended",
            peer: from,
            name: this.#peerName,
            reason: "withdrawn",
          });
          this.#toIdle(now);
          return;
        }
        return this.#drop(from, "unexpected", `${opName(d)} while invited`);
      case "accepting":
        if (d.type === Type.CHAT) {
          // SPEC §4.3: the first chat datagram implies the handshake ACK.
          this.#establish(now, false);
          return this.#onChatDatagram(d, from, now);
        }
        if (d.type === Type.CONTROL && d.op === Op.ACK) {
          // Nothing of ours is in flight yet, so any ACK answers the
          // SYN+ACK: Sequence 1 from peers that share one counter.
          this.#establish(now, true);
          return;
        }
        return this.#onChatDatagram(d, from, now);
      case "established":
      case "closing":
        return this.#onChatDatagram(d, from, now);
      case "idle":
        return this.#drop(from, "unexpected", `${opName(d)} while idle`);
    }
  }

  /** Answers to our SYN (SPEC §4.3, §4.4, §4.8). */
  #onAnswer(d: Datagram, from: Address, now: number): void {
    if (d.type === Type.CONTROL) {
      switch (d.op) {
        case Op.SYN_ACK: {
          this.#peer = from;
          this.#peerName = d.user;
          this.#control(from, Op.ACK, 0);
          this.#chat = this.#newChat(true);
          this.#chat.handshakeAt = now;
          this.#chat.handshakeRtt = now - this.#lastSynAt;
          this.#phase = "established";
          const atOnce = this.#synRetransmissions === 0 &&
            now - this.#firstSynAt < AT_ONCE_MS;
          this.#emit({
            type: "chat-started",
            peer: from,
            name: d.user,
            ...(atOnce ? { atOnce: true as const } : {}),
          });
          return;
        }
        case Op.FIN:
          this.#control(from, Op.ACK, d.seq);
          this.#emit({ type: "declined", peer: from, name: d.user });
          this.#peer = from;
          this.#toIdle(now);
          return;
        case Op.ERR:
          this.#emit({ type: "busy", peer: from, text: d.payload });
          this.#peer = from; // its FIN follows: re-ACKed as a former peer
          this.#toIdle(now);
          return;
      }
    }
    this.#drop(from, "unexpected", `${opName(d)} while inviting`);
  }

  /** The handshake finished at the accepting side (SPEC §4.3). */
  #establish(now: number, byAck: boolean): void {
    const chat = this.#chat!;
    chat.handshakeRtt = now - this.#synAckFirstAt;
    if (byAck && this.#synAckRetransmissions === 0) {
      chat.rtt.sample(chat.handshakeRtt); // Karn's rule
    }
    chat.echoUntil = this.#synAckLastAt + this.#echoWindow(chat);
    chat.handshakeAt = now;
    this.#phase = "established";
    this.#emit({
      type: "chat-started",
      peer: this.#peer!,
      name: this.#peerName,
    });
    this.#pump(now);
  }

  /** Datagrams from the partner of a chat (SPEC §5, §6). */
  #onChatDatagram(d: Datagram, from: Address, now: number): void {
    const chat = this.#chat!;
    chat.rejoining = false; // the partner's handshake, if any, is over
    if (d.type === Type.CHAT) {
      const verdict = chat.receiver.classify(d.seq, d.payload, now);
      if (verdict === "stale") {
        // SPEC §5.3: a late copy of a recent message; not ACKed, see
        // StopAndWaitReceiver.
        this.#drop(from, "stale-copy", `CHAT seq=${d.seq} delivered before`);
        return;
      }
      if (verdict === "new" && !this.acceptingMessages) {
        this.#drop(from, "backpressure", `CHAT seq=${d.seq} not taken yet`);
        return;
      }
      if (verdict === "new" && chat.sender.inFlight?.item.kind === "fin") {
        // SPEC §6.1: our FIN is on its way, so the partner ends the chat when
        // it arrives and reports what it had in flight undelivered (§5.5).
        // Showing or ACKing a message that crossed the FIN would contradict
        // that report: it is neither.
        this.#drop(from, "closing", `CHAT seq=${d.seq} crossed our FIN`);
        return;
      }
      this.#control(from, Op.ACK, d.seq); // SPEC §5.3: ACK every one
      if (verdict === "new") {
        chat.receiver.deliver(d.seq, d.payload, now);
        this.#emit({ type: "message", name: d.user, text: d.payload });
      }
      return;
    }
    switch (d.op) {
      case Op.ACK: {
        if (d.seq === 0 && now < chat.echoUntil) {
          this.#drop(from, "duplicate-ack", "ACK seq=0 answers our SYN+ACK");
          return;
        }
        const result = chat.sender.ack(d.seq, now);
        if ("ignored" in result) {
          this.#drop(
            from,
            "duplicate-ack",
            `ACK seq=${d.seq} ${result.ignored}`,
          );
          return;
        }
        const item = result.released;
        if (item.kind === "fin") {
          if (chat.wasStarted) {
            this.#emit({
              type: "chat-closed",
              peer: this.#peer!,
              name: this.#peerName,
              undelivered: [],
            });
          }
          this.#toIdle(now);
          return;
        }
        this.#emit({ type: "delivered", id: item.id, rtt: result.rtt });
        this.#pump(now);
        return;
      }
      case Op.SYN_ACK:
        // SPEC §4.5: our ACK was lost; ACK again. When accepting, this is the
        // crossed-invitation case (SPEC §4.7): the chat is established by the
        // partner's ACK of our own SYN+ACK, which also measures the RTT.
        this.#control(from, Op.ACK, 0);
        return;
      case Op.FIN: {
        this.#control(from, Op.ACK, d.seq); // SPEC §6.1
        // Also when we were closing too: the partner left first, and what
        // was still queued before our FIN is reported (SPEC §5.5). A
        // declined inviter's FIN crossing ours tells nothing.
        const undelivered = this.#undelivered(chat);
        if (chat.wasStarted) {
          this.#emit({
            type: "peer-left",
            peer: this.#peer!,
            name: this.#peerName,
            undelivered,
          });
        }
        this.#toIdle(now);
        return;
      }
      case Op.ERR:
        this.#emit({ type: "peer-error", peer: from, text: d.payload });
        return;
    }
    this.#drop(from, "unexpected", `${opName(d)} while ${this.#phase}`);
  }

  #startDecline(now: number): void {
    this.#phase = "closing";
    this.#chat = this.#newChat(false);
    this.#chat.sender.push({ kind: "fin" });
    this.#pump(now);
  }

  /** The peer is lost (SPEC §5.5): tell the user, one FIN, back to idle. */
  #lose(now: number, lost: Outgoing[] = [], finSeq: Seq = 0): void {
    const chat = this.#chat;
    if (chat?.wasStarted) {
      const undelivered = [
        ...toUndelivered(lost),
        ...this.#undelivered(chat),
      ];
      this.#emit({
        type: "peer-lost",
        peer: this.#peer!,
        name: this.#peerName,
        undelivered,
      });
    }
    if (!lost.some((item) => item.kind === "fin")) {
      this.#control(this.#peer!, Op.FIN, finSeq);
    }
    this.#toIdle(now);
  }

  /**
   * The Sequence of a FIN sent at once (abort, peer lost): it follows the
   * datagram in flight, if any, as a queued FIN would (SPEC §3.3); when the
   * datagram in flight is our FIN, it is that FIN's.
   */
  #finSeq(chat: Chat): Seq {
    const flight = chat.sender.inFlight;
    if (flight === undefined) return chat.sender.nextSeq;
    // Our FIN already in flight: the same FIN again, never a second FIN
    // with the other bit (one chat, one FIN sequence).
    return flight.item.kind === "fin" ? flight.seq : flip(flight.seq);
  }

  #undelivered(chat: Chat): Undelivered[] {
    return toUndelivered(chat.sender.drain());
  }

  #newChat(wasStarted: boolean): Chat {
    const rtt = new RttEstimator({
      timeout: this.#config.timeout,
      adaptive: this.#config.adaptiveTimeout,
      minTimeout: this.#config.minTimeout,
    });
    return {
      rtt,
      sender: new StopAndWaitSender<Outgoing>(rtt, {
        maxRetries: this.#config.maxRetries,
        maxQueue: this.#config.maxQueue,
      }),
      receiver: new StopAndWaitReceiver({
        recentFor: RECENT_TIMEOUTS * this.#config.timeout,
      }),
      wasStarted,
      echoUntil: 0,
      handshakeRtt: this.#config.timeout / 2,
      handshakeAt: 0,
      rejoining: false,
    };
  }

  /** Sends the next queued item when the chat allows it. */
  #pump(now: number): void {
    if (this.#phase !== "established" && this.#phase !== "closing") return;
    const chat = this.#chat!;
    if (this.#waitsForEcho(chat) && now < chat.echoUntil) return;
    const flight = chat.sender.pump(now);
    if (flight) this.#transmitItem(flight.item, flight.seq);
  }

  /**
   * Whether the next datagram is one with Sequence 0 waiting to be sent: it
   * must wait for the end of the echo window (`chat.echoUntil`), while an
   * ACK with Sequence 0 may still come back for a SYN+ACK of ours — that
   * ACK is the same bytes as its own.
   */
  #waitsForEcho(chat: Chat): boolean {
    return chat.sender.inFlight === undefined && chat.sender.queued > 0 &&
      chat.sender.nextSeq === 0;
  }

  /**
   * How long after sending a SYN+ACK its ACK can still arrive: two round
   * trips (the smoothed RTT, or the handshake's duration), at most one
   * timeout. Within it an ACK with Sequence 0 answers the SYN+ACK: a
   * duplicated or late handshake ACK, or the answer to a SYN+ACK we resent,
   * and it never releases a chat datagram (SPEC §4.5: a duplicate handshake
   * ACK changes nothing).
   */
  #echoWindow(chat: Chat): number {
    const rtt = chat.rtt.srtt ?? chat.handshakeRtt;
    return Math.min(this.#config.timeout, 2 * rtt);
  }

  /** Starts answering an invitation with SYN+ACK (SPEC §4.3, §4.7). */
  #startAccepting(now: number): void {
    this.#phase = "accepting";
    this.#chat = this.#newChat(true);
    this.#synAckFirstAt = now;
    this.#synAckRetransmissions = 0;
    this.#synAckDue = now + this.#config.timeout;
    this.#sendSynAck(now);
  }

  #sendSynAck(now: number): void {
    this.#synAckLastAt = now;
    const chat = this.#chat!;
    if (this.#phase !== "accepting") {
      chat.echoUntil = Math.max(chat.echoUntil, now + this.#echoWindow(chat));
    }
    this.#control(this.#peer!, Op.SYN_ACK, 0);
  }

  #transmitItem(item: Outgoing, seq: Seq): void {
    if (item.kind === "fin") {
      this.#control(this.#peer!, Op.FIN, seq); // SPEC §3.3
    } else {
      this.#transmit(this.#peer!, {
        type: Type.CHAT,
        op: Op.CHAT,
        seq,
        user: this.#userName,
        payload: item.text,
      });
    }
  }

  #toIdle(now: number): void {
    const peer = this.#peer;
    if (peer) {
      const formers = this.#formerPeers;
      const key = formatAddress(peer);
      formers.delete(key);
      formers.set(key, now + 2 * this.#config.timeout); // SPEC §6.2
      for (const [k, until] of formers) {
        if (formers.size <= this.#config.maxFormerPeers && until > now) break;
        formers.delete(k); // oldest first (SPEC §7.3)
      }
    }
    this.#phase = "idle";
    this.#peer = undefined;
    this.#peerName = "";
    this.#chat = undefined;
    this.#busyReported.clear();
    this.#busyWaiting.clear(); // answers still waiting are dropped when idle
  }

  #notIdle(): SessionError {
    const who = this.#peerName
      ? `${this.#peerName} (${this.#peer!.ip})`
      : this.#peer!.ip;
    switch (this.#phase) {
      case "inviting":
        return new SessionError(
          `Already inviting ${who}: leave first to cancel`,
        );
      case "invited":
        return new SessionError(
          `An invitation from ${who} is pending: accept or decline it first`,
        );
      default:
        return new SessionError(`Already in a chat with ${who}: leave first`);
    }
  }

  #control(
    to: Address,
    op: ControlDatagram["op"],
    seq: Seq,
    payload = "",
  ): void {
    this.#transmit(to, {
      type: Type.CONTROL,
      op,
      seq,
      user: this.#userName,
      payload,
    });
  }

  #transmit(to: Address, datagram: Datagram): void {
    this.counters.sent++;
    this.#actions.push({
      type: "transmit",
      to,
      datagram,
      bytes: encodeDatagram(datagram),
    });
  }

  #emit(event: SessionEvent): void {
    this.#actions.push({ type: "event", event });
  }

  #drop(from: Address, reason: DropReason, detail: string): void {
    this.counters[reason]++;
    this.#actions.push({ type: "drop", from, reason, detail });
  }
}

function flip(seq: Seq): Seq {
  return seq === 0 ? 1 : 0;
}

function toUndelivered(items: Outgoing[]): Undelivered[] {
  return items.flatMap((item) =>
    item.kind === "chat" ? [{ id: item.id, text: item.text }] : []
  );
}
