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
  type ControlEvent,
  type DaemonState,
  SIMP_PORT,
} from "./control.ts";
import type { Datagram } from "./datagram.ts";
import {
  ClientLink,
  type ClientLinkOptions,
  type CommandResult,
  type LinkTransmit,
} from "./client_link.ts";
import { getLogger, LogBudget } from "./log.ts";
import {
  type Address,
  formatAddress,
  Session,
  SessionError,
  type SessionEvent,
  type SessionOptions,
} from "./session.ts";

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

/** Settings of a {@linkcode DaemonCore}. */
export interface DaemonCoreOptions {
  /** The daemon's IP address (SPEC §1.2). */
  ip: string;
  /** Its peer port (SPEC §1.1, normally 7777): inviting ip:port is refused. */
  port: number;
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
export function toControlEvents(event: SessionEvent): ControlEvent[] {
  switch (event.type) {
    case "peer-left":
    case "peer-lost":
    case "chat-closed":
      return [
        {
          type: event.type,
          ip: event.peer.hostname,
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
        ip: event.peer.hostname,
        port: event.peer.port,
        name: event.name,
      };
    case "invitation-ended":
      return {
        type: event.type,
        ip: event.peer.hostname,
        port: event.peer.port,
        name: event.name,
        reason: event.reason,
      };
    case "busy":
    case "peer-error":
      return {
        type: event.type,
        ip: event.peer.hostname,
        port: event.peer.port,
        text: event.text,
      };
    case "no-answer":
      return {
        type: event.type,
        ip: event.peer.hostname,
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
 * The daemon's decisions (SPEC §1–§9) without I/O.
 *
 * Commands map to the engine: `connect` sets the user name and answers with
 * the state (a pending invitation shows there); `invite` starts a chat
 * toward ip:port ({@linkcode SIMP_PORT} unless given; the daemon's own
 * address is refused); `wait` and `ping` answer with the state; `accept`, `decline`,
 * `leave` and `send` (which answers with `msgId`) call the engine; `quit`
 * leaves a chat or withdraws an invitation of ours (a pending invitation
 * from someone else stays pending) and frees the slot. A command that does
 * not fit the phase gets an error reply with the engine's message.
 *
 * Engine events become client events. With no client connected they are
 * kept as {@linkcode ClientLink} describes; with auto-accept the engine
 * accepts invitations itself (SPEC §4.9).
 *
 * @example
 * ```ts
 * import { DaemonCore } from "./daemon_core.ts";
 * const core = new DaemonCore({ ip: "127.0.0.1", port: 7777 });
 * core.receiveClient(
 *   new TextEncoder().encode('{"v":1,"id":1,"cmd":"connect","name":"alice"}'),
 *   { hostname: "127.0.0.1", port: 40000 },
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
  #port: number;
  #stopGrace: number;
  #stopDeadline: number | undefined;
  #actions: DaemonAction[] = [];
  #eventLogs = new LogBudget(EVENT_LOG_BUDGET);

  /** Creates an idle daemon with no client. */
  constructor(options: DaemonCoreOptions) {
    this.#ip = options.ip;
    this.#port = options.port;
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
        ip: status.peer.hostname,
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

  /** A datagram arrived on the peer port (ignored once stopping). */
  receivePeer(bytes: Uint8Array, from: Address, now: number): void {
    if (this.stopping) {
      log.debug("Stopping: ignored a datagram from {from}", {
        from: formatAddress(from),
      });
      return;
    }
    this.session.receive(bytes, from, now);
    this.#drain(now);
  }

  /** A datagram arrived on the client port. */
  receiveClient(bytes: Uint8Array, from: Address, now: number): void {
    this.link.receive(bytes, from, now);
    this.#drain(now);
  }

  /** The clock reached `now`. */
  tick(now: number): void {
    this.session.tick(now);
    this.#drain(now);
    this.link.tick(now);
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
          const to = { hostname: command.ip, port: command.port ?? SIMP_PORT };
          if (to.hostname === this.#ip && to.port === this.#port) {
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
          return { msgId: session.send(command.text, now) };
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
