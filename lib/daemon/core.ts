/**
 * Everything the daemon decides, as one sans-I/O state machine: the protocol
 * engine ({@linkcode Session}, SPEC §3–§7) joined to the client link
 * ({@linkcode ClientLink}, SPEC §9). It takes datagrams from the peer port
 * and the client port, the clock and the stop request, and produces the
 * datagrams to send from each port and the next time it wants to be woken.
 * `daemon.ts` moves bytes between it and two UDP sockets, with one timer.
 *
 * How commands map to the engine, and what happens while no client is
 * connected, is documented on {@linkcode DaemonCore}.
 *
 * @module
 */

import {
  type Command,
  ControlError,
  type ControlEvent,
  type DaemonState,
  SIMP_PORT,
} from "../control.ts";
import { type Datagram, Op, Type } from "../wire/datagram.ts";
import {
  ClientLink,
  type ClientLinkOptions,
  type CommandResult,
  type LinkTransmit,
} from "../client_link.ts";
import { getLogger, LogBudget, ONCE_A_MINUTE } from "../log.ts";
import {
  Session,
  SessionError,
  type SessionEvent,
  type SessionOptions,
} from "../peer/session.ts";
import { type Address, formatAddress, sameAddress } from "../address.ts";

const log = getLogger("daemon");

/**
 * How long a stopping daemon waits for its client to acknowledge the last
 * events (`chat-closed` with the undelivered messages, `daemon-stopping`),
 * in ms. The FIN that ends a chat is sent once, at once: its ACK is not
 * waited for.
 */
export const STOP_GRACE_MS = 500;

/**
 * How many engine events are logged at info level in a burst, and per
 * minute after it: most are triggered by other daemons, and a stream of
 * SYN and FIN must not flood the log (SPEC §7.3).
 */
export const EVENT_LOG_BUDGET: Readonly<{ burst: number; perMinute: number }> =
  Object.freeze({ burst: 30, perMinute: 30 });

/** A datagram to another daemon that could not be sent. */
export interface SendFailure {
  /** Where it was going. */
  to: Address;
  /** What it was. */
  datagram: Datagram;
  /** Why sending failed (the socket's error). */
  error: unknown;
}

/** Settings of a {@linkcode DaemonCore}. */
export interface DaemonCoreOptions {
  /** The daemon's IP address (SPEC §1.2). */
  ip: string;
  /** Its peer port (SPEC §1.1, normally 7777): inviting ip:port is refused. */
  port: number;
  /** Its client port (SPEC §1.1, normally 7778): inviting ip:clientPort is refused too. */
  clientPort?: number;
  /** Protocol settings for the engine (times in ms). */
  session?: SessionOptions;
  /** Settings of the client link (times in ms). */
  link?: Partial<Omit<ClientLinkOptions, "ownIp">>;
  /** How long {@linkcode DaemonCore.stop} waits; default {@linkcode STOP_GRACE_MS}. */
  stopGrace?: number;
}

/** A datagram for one of the daemon's sockets to send. */
export type DaemonAction =
  | {
    /** From the peer port (SPEC §1.4). */
    type: "peer";
    /** Destination. */
    to: Address;
    /** What is sent. */
    datagram: Datagram;
    /** Its encoding. */
    bytes: Uint8Array;
  }
  | ({
    /** From the client port. */
    type: "client";
  } & LinkTransmit);

/**
 * Converts an engine event to the client protocol's form: one event, or for
 * `peer-left`, `peer-lost` and `chat-closed` the event with the number of
 * undelivered messages followed by one `undelivered` event per message, in
 * order. (Events too large for one datagram are split later, by the client
 * link.)
 */
function toControlEvents(event: SessionEvent): ControlEvent[] {
  switch (event.type) {
    case "peer-left":
    case "peer-lost":
    case "chat-closed":
      return [
        {
          type: event.type,
          ip: event.peer.ip,
          port: event.peer.port,
          name: event.name,
          undelivered: event.undelivered.length,
        },
        ...event.undelivered.map(({ id, text }): ControlEvent => ({
          type: "undelivered",
          id,
          text,
        })),
      ];
    default:
      return [toControlEvent(event)];
  }
}

/** An engine event other than the end of a chat, in the client protocol's form. */
function toControlEvent(
  event: Exclude<
    SessionEvent,
    { type: "peer-left" | "peer-lost" | "chat-closed" }
  >,
): ControlEvent {
  switch (event.type) {
    case "invitation":
    case "chat-started":
    case "declined":
      return {
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        name: event.name,
      };
    case "invitation-ended":
      return {
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        name: event.name,
        reason: event.reason,
      };
    case "busy":
    case "peer-error":
      return {
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        text: event.text,
      };
    case "no-answer":
      return {
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
      };
    case "message":
      return { type: "message", name: event.name, text: event.text };
    case "delivered":
      return { type: "delivered", id: event.id };
    case "retransmitted":
      return { type: "retransmitted", id: event.id, attempt: event.attempt };
  }
}

/**
 * A failed `send` as its error reply should carry it: the engine's "Send
 * queue is full" {@linkcode SessionError} becomes a {@linkcode ControlError}
 * with the same message and the code `queue-full`, so that the client holds
 * the message and sends it again (docs/PROTOCOL.md); any other error is
 * returned as it is.
 */
function withErrorCode(error: unknown): unknown {
  if (error instanceof SessionError && error.code === "queue-full") {
    return new ControlError(error.message, null, { code: "queue-full" });
  }
  return error;
}

/**
 * The daemon's decisions (SPEC §1–§9) without I/O.
 *
 * Commands map to the engine: `connect` sets the user name and answers with
 * the state (a pending invitation shows there); `invite` starts a chat
 * toward ip:port ({@linkcode SIMP_PORT} unless given; the daemon's own
 * IP with either of its ports is refused; a SYN the network refuses to send
 * ends the invitation at once, see {@linkcode DaemonCore.peerSendFailed});
 * `wait` and `ping` answer with the state; `accept`, `decline`, `leave` and
 * `send` (which answers with `msgId`) call the engine; `quit` leaves a chat
 * or withdraws an invitation of ours (a pending invitation from someone
 * else stays pending) and frees the slot. A command that does not fit the
 * phase gets an error reply with the engine's message.
 *
 * Engine events become client events. With no client connected they are
 * kept as {@linkcode ClientLink} describes; with auto-accept the engine
 * accepts invitations itself (SPEC §4.9).
 *
 * @example
 * ```ts
 * import { DaemonCore } from "./core.ts";
 * const core = new DaemonCore({ ip: "127.0.0.1", port: 7777 });
 * core.receiveClient(
 *   new TextEncoder().encode('{"v":1,"id":1,"cmd":"connect","name":"alice"}'),
 *   { ip: "127.0.0.1", port: 40000 },
 *   0,
 * );
 * const [reply] = core.takeActions(); // to the client: ok, state idle
 * ```
 */
export class DaemonCore {
  /** The protocol engine. */
  readonly session: Session;
  /** The client link. */
  readonly link: ClientLink;
  #ip: string;
  #ports: number[];
  #stopGrace: number;
  #stopDeadline: number | undefined;
  #actions: DaemonAction[] = [];
  #eventLogs = new LogBudget(EVENT_LOG_BUDGET);
  #sendFailureLogs = new LogBudget(ONCE_A_MINUTE);

  /** Creates an idle daemon with no client. */
  constructor(options: DaemonCoreOptions) {
    this.#ip = options.ip;
    this.#ports = [options.port];
    if (options.clientPort !== undefined) this.#ports.push(options.clientPort);
    this.#stopGrace = options.stopGrace ?? STOP_GRACE_MS;
    this.session = new Session(options.session);
    this.link = new ClientLink(
      (command, now) => this.#command(command, now),
      { ...options.link, ownIp: options.ip },
    );
  }

  /** Whether {@linkcode stop} was called. */
  get stopping(): boolean {
    return this.#stopDeadline !== undefined;
  }

  /**
   * Whether a stopping daemon may exit: the client has acknowledged every
   * event (or none is connected), or the grace period is over.
   */
  finished(now: number): boolean {
    if (this.#stopDeadline === undefined) return false;
    return now >= this.#stopDeadline || this.link.unacknowledged === 0;
  }

  /** The daemon's state as the client protocol shows it. */
  state(): DaemonState {
    const status = this.session.status();
    return status.peer === undefined ? { phase: status.phase } : {
      phase: status.phase,
      peer: {
        ip: status.peer.ip,
        port: status.peer.port,
        name: status.peerName ?? "",
      },
    };
  }

  /** Returns the datagrams to send since the last call, oldest first. */
  takeActions(): DaemonAction[] {
    this.#collect();
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** The time at which {@linkcode tick} must next be called, if any. */
  nextTimeout(): number | undefined {
    const times = [
      this.session.nextTimeout(),
      this.link.nextTimeout(),
      this.#stopDeadline,
    ].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /**
   * A datagram arrived on the peer port (ignored once stopping). A new chat
   * message is taken only while the client's backlog has room (flow
   * control, {@linkcode ClientLink.hasRoom}): otherwise it is not ACKed,
   * and the peer sends it again later.
   */
  receivePeer(bytes: Uint8Array, from: Address, now: number): void {
    if (this.stopping) {
      log.debug("Stopping: ignored a datagram from {from}", {
        from: formatAddress(from),
      });
      return;
    }
    this.#updateFlow();
    this.session.receive(bytes, from, now);
    this.#drain(now);
  }

  /** A datagram arrived on the client port. */
  receiveClient(bytes: Uint8Array, from: Address, now: number): void {
    this.link.receive(bytes, from, now);
    this.#drain(now);
    this.#updateFlow();
  }

  /** The clock reached `now`. */
  tick(now: number): void {
    this.session.tick(now);
    this.#drain(now);
    this.link.tick(now);
    this.#updateFlow();
  }

  /**
   * Sending a datagram to another daemon failed: the network refused it at
   * once (no route, an address this host cannot send to). When it was the
   * SYN of our invitation, that invitation cannot be answered: it is given
   * up at once, as when the invitation limit passes (SPEC §4.6) — withdrawn
   * with one FIN and `no-answer` for the client — rather than retried in
   * silence until the limit. Any other failure is logged, within
   * at most once a minute: retransmission and max retries
   * already tell the user when a peer cannot be reached (SPEC §5.5).
   */
  peerSendFailed(failure: SendFailure, now: number): void {
    const { to, datagram } = failure;
    const error = failure.error instanceof Error
      ? failure.error.message
      : String(failure.error);
    // Bring the session up to now first: its own invitation limit may have
    // passed, and then it has already given up and said no-answer.
    this.session.tick(now);
    this.#drain(now);
    const peer = this.session.status().peer;
    const invitation = this.session.phase === "inviting" &&
      datagram.type === Type.CONTROL && datagram.op === Op.SYN &&
      sameAddress(peer, to);
    if (invitation) {
      log.warning(
        "Sending the invitation to {to} failed: {error}; given up, the client is told no-answer",
        { to: formatAddress(to), error },
      );
      this.session.abort(now);
      this.#drain(now);
      const event: SessionEvent = { type: "no-answer", peer: to };
      this.#logEvent(event, now);
      for (const controlEvent of toControlEvents(event)) {
        this.link.emit(controlEvent, now);
      }
      this.#collect();
      return;
    }
    this.#sendFailureLogs.warning(log, now, {
      message: "Sending to {to} failed: {error}",
      properties: { to: formatAddress(to), error },
      heldBack: "more sends failed",
    });
  }

  /**
   * The daemon is asked to stop (SIGINT, SIGTERM): the engine ends whatever
   * is going on with one FIN sent at once ({@linkcode Session.abort}) — a
   * chat is closed even with messages unacknowledged, an invitation of
   * ours withdrawn, a pending one declined (SPEC §4.4, §6.1); the client
   * gets `chat-closed` with the undelivered messages, if a chat was going
   * on, and `daemon-stopping`. From then on datagrams from peers are
   * ignored, and {@linkcode finished} says when to exit: once the client
   * has acknowledged the events, at the latest after the grace period.
   */
  stop(now: number): void {
    if (this.stopping) return;
    this.#stopDeadline = now + this.#stopGrace;
    this.session.abort(now);
    this.#drain(now);
    this.link.emit({ type: "daemon-stopping" }, now);
  }

  // --------------------------------------------------------------- internals

  /**
   * Flow control: the engine takes new chat messages only while the
   * client's backlog is below its limit. Nothing else is held back: the
   * peer's stop-and-wait makes it wait for the ACK and send again.
   */
  #updateFlow(): void {
    const accepting = this.link.hasRoom;
    if (accepting === this.session.acceptingMessages) return;
    this.session.acceptingMessages = accepting;
    log.debug(
      accepting
        ? "The client caught up ({backlog} events waiting): taking the peer's messages again"
        : "{backlog} events wait for the client: the peer's new messages wait too (not ACKed)",
      { backlog: this.link.backlog },
    );
  }

  #command(command: Command, now: number): CommandResult {
    if (this.stopping && command.cmd !== "quit") {
      throw new SessionError(
        "The daemon is stopping: start it again with simp daemon",
      );
    }
    const session = this.session;
    try {
      switch (command.cmd) {
        case "connect":
          session.userName = command.name;
          return { state: this.state() };
        case "wait":
        case "ping":
          session.tick(now);
          return { state: this.state() };
        case "invite": {
          const to = { ip: command.ip, port: command.port ?? SIMP_PORT };
          if (to.ip === this.#ip && this.#ports.includes(to.port)) {
            throw new SessionError(
              `${
                formatAddress(to)
              } is this daemon: invite another user's daemon IP address`,
            );
          }
          session.invite(to, now);
          return {};
        }
        case "accept":
          session.accept(now);
          return {};
        case "decline":
          session.decline(now);
          return {};
        case "leave":
          session.leave(now);
          return {};
        case "send":
          try {
            return { msgId: session.send(command.text, now) };
          } catch (error) {
            throw withErrorCode(error);
          }
        case "quit":
          // SPEC §8.4: quitting closes a chat; an invitation from someone
          // else stays pending for the next client (SPEC §4.2).
          session.tick(now);
          if (session.phase !== "idle" && session.phase !== "invited") {
            session.leave(now);
          }
          return {};
      }
    } finally {
      this.#drain(now);
    }
  }

  /** Moves the engine's actions out: datagrams to send, events to the client. */
  #drain(now: number): void {
    for (const action of this.session.takeActions()) {
      switch (action.type) {
        case "transmit":
          this.#actions.push({
            type: "peer",
            to: action.to,
            datagram: action.datagram,
            bytes: action.bytes,
          });
          break;
        case "event":
          this.#logEvent(action.event, now);
          for (const event of toControlEvents(action.event)) {
            this.link.emit(event, now);
          }
          break;
        case "drop":
          log.debug("Dropped a datagram from {from} ({reason}): {detail}", {
            from: formatAddress(action.from),
            reason: action.reason,
            detail: action.detail,
          });
          break;
      }
    }
    this.#collect();
  }

  #collect(): void {
    for (const transmit of this.link.takeTransmits()) {
      this.#actions.push({ type: "client", ...transmit });
    }
  }

  /**
   * Logs an engine event: chat traffic at debug level, the rest at info
   * level within {@linkcode EVENT_LOG_BUDGET} (the count of lines held back
   * is logged with the next one written).
   */
  #logEvent(event: SessionEvent, now: number): void {
    switch (event.type) {
      case "message":
      case "delivered":
      case "retransmitted":
        log.debug("Event {type}", { type: event.type, event });
        return;
    }
    const withheld = this.#eventLogs.take(now);
    if (withheld === undefined) return;
    const peer = "peer" in event ? formatAddress(event.peer) : undefined;
    log.info("Event {type}" + (peer ? " ({peer})" : ""), {
      type: event.type,
      ...(peer ? { peer } : {}),
      ...("name" in event ? { name: event.name } : {}),
      ...("undelivered" in event
        ? { undelivered: event.undelivered.length }
        : {}),
      ...(this.link.client === undefined ? { client: "none" } : {}),
      ...(withheld > 0 ? { withheld } : {}),
    });
  }
}
