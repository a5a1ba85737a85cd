/**
 * Everything the daemon decides, as one sans-I/O state machine: the protocol
 * engine ({@linkcode Session}, SPEC §3–§7) joined to the daemon's end of the
 * client link ({@linkcode DaemonEnd}, SPEC §9). It takes datagrams from the
 * peer port, bytes and connection news from the client port (TCP), the
 * clock and the stop request, and produces datagrams to send, bytes to
 * write, connections to close, and the next time it wants to be woken.
 * `daemon.ts` moves bytes between it and the sockets, with one timer.
 *
 * How requests map to the engine, and what happens while no client is
 * connected, is documented on {@linkcode DaemonCore}.
 *
 * @module
 */

import {
  type Address,
  formatAddress,
  sameAddress,
  specialAddress,
} from "../address.ts";
import {
  type ConnectionId,
  DaemonEnd,
  type DaemonEndOptions,
} from "../link/daemon_end.ts";
import {
  type DaemonState,
  type LinkEvent,
  type Request,
  SIMP_PORT,
} from "../link/protocol.ts";
import { getLogger, LogBudget, ONCE_A_MINUTE } from "../log.ts";
import {
  Session,
  SessionError,
  type SessionEvent,
  type SessionOptions,
} from "../peer/session.ts";
import { type Datagram, MAX_PAYLOAD, Op, Type } from "../wire/datagram.ts";

const log = getLogger("daemon");

/**
 * How long a stopping daemon waits for the last lines (`chat-closed` with
 * the undelivered messages, `daemon-stopping`) to be written to its client,
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
  /** Limits of the client link (bytes). */
  link?: Partial<DaemonEndOptions>;
  /** How long {@linkcode DaemonCore.stop} waits; default {@linkcode STOP_GRACE_MS}. */
  stopGrace?: number;
}

/** What the daemon's shell must do. */
export type DaemonAction =
  | {
    /** Send a datagram from the peer port (SPEC §1.4). */
    type: "peer";
    /** Destination. */
    to: Address;
    /** What is sent. */
    datagram: Datagram;
    /** Its encoding. */
    bytes: Uint8Array;
  }
  | {
    /** Write to a client connection, after what is queued for it. */
    type: "write";
    /** The connection. */
    conn: ConnectionId;
    /** The bytes (whole lines). */
    bytes: Uint8Array;
  }
  | {
    /** Close a client connection once what is queued for it is written. */
    type: "close";
    /** The connection. */
    conn: ConnectionId;
  };

/**
 * Converts an engine event to the link's form: one event, or for
 * `peer-left`, `peer-lost` and `chat-closed` the event with the number of
 * undelivered messages followed by one `undelivered` event per message, in
 * order.
 */
function toLinkEvents(event: SessionEvent): LinkEvent[] {
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
        ...event.undelivered.map(({ id, text }): LinkEvent => ({
          type: "undelivered",
          id,
          text,
        })),
      ];
    case "chat-started":
      return [{
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        name: event.name,
        ...(event.atOnce ? { atOnce: true } : {}),
      }];
    case "invite-retry":
      return [{
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        attempt: event.attempt,
        leftMs: event.leftMs,
      }];
    case "invitation":
    case "declined":
    case "busy-answered":
    case "peer-reconnected":
      return [{
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        name: event.name,
      }];
    case "invitation-ended":
      return [{
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        name: event.name,
        reason: event.reason,
      }];
    case "busy":
    case "peer-error":
      return [{
        type: event.type,
        ip: event.peer.ip,
        port: event.peer.port,
        text: event.text,
      }];
    case "no-answer":
      return [{ type: event.type, ip: event.peer.ip, port: event.peer.port }];
    case "message":
      return [{ type: "message", name: event.name, text: event.text }];
    case "delivered":
      return [{ type: "delivered", id: event.id }];
    case "retransmitted":
      return [{ type: "retransmitted", id: event.id, attempt: event.attempt }];
  }
}

/**
 * The daemon's decisions (SPEC §1–§9) without I/O.
 *
 * Requests map to the engine: `hello` sets the user name and answers with
 * the state and limits (then a pending invitation is sent as an
 * `invitation` event, after the events kept for a client); `invite` starts
 * a chat toward ip:port ({@linkcode SIMP_PORT} unless given; the daemon's
 * own IP with either of its ports is refused; a SYN the network refuses to
 * send ends the invitation at once, see {@linkcode DaemonCore.peerSendFailed});
 * `accept`, `decline`, `leave` and `send` (which answers with `msgId`) call
 * the engine; `quit` leaves a chat or withdraws an invitation of ours (a
 * pending invitation from someone else stays pending), answers ok and
 * closes the connection. A command that does not fit the phase gets an
 * error reply with the engine's message; a full send queue gets the code
 * `queue-full`.
 *
 * A client that goes away (its connection closes) frees the slot at once;
 * the chat goes on. Events are then kept for the next client as
 * {@linkcode DaemonEnd} describes, and when the events waiting for the
 * client (written and unsent, or kept) reach their limit, the engine stops
 * ACKing new chat messages: the peer keeps them and retransmits
 * (`Session.acceptingMessages`), so nothing that was ACKed is lost.
 *
 * @example
 * ```ts
 * import { DaemonCore } from "./core.ts";
 * const core = new DaemonCore({ ip: "127.0.0.1", port: 7777 });
 * core.clientOpened(1, { ip: "127.0.0.1", port: 40000 }, 0);
 * core.clientData(
 *   1,
 *   new TextEncoder().encode('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'),
 *   0,
 * );
 * const [reply] = core.takeActions(); // write {"re":1,"ok":true,"v":2,…}
 * ```
 */
export class DaemonCore {
  /** The protocol engine. */
  readonly session: Session;
  /** The daemon's end of the client link. */
  readonly link: DaemonEnd;
  #ip: string;
  #ports: number[];
  #stopGrace: number;
  #stopDeadline: number | undefined;
  #actions: DaemonAction[] = [];
  #eventLogs = new LogBudget(EVENT_LOG_BUDGET);
  #sendFailureLogs = new LogBudget(ONCE_A_MINUTE);
  #overLimitLogs = new LogBudget(ONCE_A_MINUTE);
  #refusalLogs = new LogBudget(ONCE_A_MINUTE);
  #spoofLogs = new LogBudget(ONCE_A_MINUTE);

  /** Creates an idle daemon with no client. */
  constructor(options: DaemonCoreOptions) {
    this.#ip = options.ip;
    this.#ports = [options.port];
    if (options.clientPort !== undefined) this.#ports.push(options.clientPort);
    this.#stopGrace = options.stopGrace ?? STOP_GRACE_MS;
    this.session = new Session(options.session);
    this.link = new DaemonEnd(options.link);
  }

  /** Whether {@linkcode stop} was called. */
  get stopping(): boolean {
    return this.#stopDeadline !== undefined;
  }

  /**
   * Whether a stopping daemon may exit: everything for the client is
   * written (or none is connected), or the grace period is over.
   */
  finished(now: number): boolean {
    if (this.#stopDeadline === undefined) return false;
    return now >= this.#stopDeadline || this.link.client === undefined ||
      this.link.backlog === 0;
  }

  /** The daemon's state as the link shows it. */
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

  /** Returns what to do since the last call, oldest first. */
  takeActions(): DaemonAction[] {
    this.#collect();
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** The time at which {@linkcode tick} must next be called, if any. */
  nextTimeout(): number | undefined {
    const session = this.session.nextTimeout();
    const stop = this.#stopDeadline;
    if (stop === undefined) return session;
    return session === undefined ? stop : Math.min(session, stop);
  }

  // ------------------------------------------------------------------ inputs

  /**
   * A datagram arrived on the peer port (ignored once stopping). A new chat
   * message is taken only while the events for the client are under their
   * limit ({@linkcode DaemonEnd.hasRoom}): otherwise it is not ACKed, and
   * the peer sends it again later.
   *
   * A datagram whose source no daemon can have is dropped (SPEC §7.1):
   * this daemon's own peer address (a daemon never sends to itself, so it
   * is spoofed; answering would make the daemon invite, or with
   * auto-accept chat with, itself), port 0, or an address that is not one
   * host's (broadcast, multicast, wildcard, reserved: inviting one is
   * refused). Answering those would tie the daemon up in a handshake or a
   * chat that nobody can finish.
   */
  receivePeer(bytes: Uint8Array, from: Address, now: number): void {
    if (this.stopping) {
      log.debug("Stopping: ignored a datagram from {from}", () => ({
        from: formatAddress(from),
      }));
      return;
    }
    const impossible = from.ip === this.#ip && from.port === this.#ports[0]
      ? "this daemon's own address"
      : from.port === 0
      ? "port 0"
      : specialAddress(from.ip);
    if (impossible !== undefined) {
      this.#spoofLogs.warning(log, now, {
        message:
          "Dropped a datagram from {from} ({what}): no daemon sends from there, it can only be spoofed",
        properties: { from: formatAddress(from), what: impossible },
        heldBack: "more such datagrams were dropped",
      });
      return;
    }
    this.#updateFlow();
    this.session.receive(bytes, from, now);
    this.#drain(now);
  }

  /**
   * A client connection was accepted from `remote` (the shell has checked
   * that it is this machine, SPEC §7.2): it takes the slot, or gets the
   * `busy` line and is closed.
   */
  clientOpened(conn: ConnectionId, remote: Address, now: number): void {
    const holder = this.link.client;
    this.link.open(conn, remote);
    if (holder === undefined) {
      log.info("Client connected from {client}", {
        client: formatAddress(remote),
      });
    } else {
      this.#refusalLogs.warning(log, now, {
        message:
          "Refused a client from {client}: the client at {holder} holds the slot",
        properties: {
          client: formatAddress(remote),
          holder: formatAddress(holder.remote),
        },
        heldBack: "more clients were refused",
      });
    }
    this.#updateFlow();
  }

  /** Bytes arrived from a client connection. */
  clientData(conn: ConnectionId, bytes: Uint8Array, now: number): void {
    this.link.receive(conn, bytes);
    for (;;) {
      const next = this.link.next();
      if (next === undefined) break;
      this.#request(next.request, now);
    }
    this.#updateFlow();
  }

  /** The shell wrote `count` bytes queued for a client connection. */
  clientWrote(conn: ConnectionId, count: number): void {
    this.link.wrote(conn, count);
    this.#updateFlow();
  }

  /** A client connection closed (by the client, broken, or as asked). */
  clientClosed(conn: ConnectionId, now: number): void {
    const holder = this.link.client;
    this.link.closed(conn);
    if (holder?.conn === conn) {
      log.info("Client at {client} left; the slot is free", {
        client: formatAddress(holder.remote),
        phase: this.session.phase,
      });
      this.session.tick(now);
      this.#drain(now);
    }
    this.#updateFlow();
  }

  /** The clock reached `now`. */
  tick(now: number): void {
    this.#updateFlow();
    this.session.tick(now);
    this.#drain(now);
  }

  /**
   * Sending a datagram to another daemon failed: the network refused it at
   * once (no route, an address this host cannot send to). When it was the
   * SYN of our invitation, that invitation cannot be answered: it is given
   * up at once, as when the invitation limit passes (SPEC §4.6) — withdrawn
   * with one FIN and `no-answer` for the client — rather than retried in
   * silence until the limit. Any other failure is logged, at most once a
   * minute: retransmission and max retries already tell the user when a
   * peer cannot be reached (SPEC §5.5).
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
      this.#event({ type: "no-answer", peer: to }, now);
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
   * on, and `daemon-stopping`, and its connection is closed after them.
   * From then on datagrams from peers are ignored and requests refused,
   * and {@linkcode finished} says when to exit: once those lines are
   * written, at the latest after the grace period.
   */
  stop(now: number): void {
    if (this.stopping) return;
    this.#stopDeadline = now + this.#stopGrace;
    this.session.abort(now);
    this.#drain(now);
    this.link.emit({ type: "daemon-stopping" });
    this.link.closeClient();
  }

  // --------------------------------------------------------------- internals

  /**
   * Flow control: the engine takes new chat messages only while the events
   * for the client are under their limit. Nothing else is held back: the
   * peer's stop-and-wait makes it wait for the ACK and send again.
   */
  #updateFlow(): void {
    const accepting = this.link.hasRoom;
    if (accepting === this.session.acceptingMessages) return;
    this.session.acceptingMessages = accepting;
    log.debug(
      accepting
        ? "The client caught up: taking the peer's messages again"
        : "The client's events reached their limit ({backlog} bytes unwritten, {kept} kept): the peer's new messages wait (not ACKed)",
      () => ({ backlog: this.link.backlog, kept: this.link.kept }),
    );
  }

  /** Carries out one valid request and answers it. */
  #request(request: Request, now: number): void {
    const link = this.link;
    if (this.stopping && request.cmd !== "quit") {
      link.fail(
        request.id,
        `The daemon is stopping: start it again with \`simp daemon ${this.#ip}\``,
      );
      return;
    }
    const session = this.session;
    try {
      switch (request.cmd) {
        case "hello": {
          session.userName = request.name;
          session.tick(now);
          this.#drain(now);
          link.welcome(request.id, this.state(), {
            queue: session.config.maxQueue,
            text: MAX_PAYLOAD,
          });
          // A pending invitation is shown to the new client (SPEC §4.2).
          const status = session.status();
          if (status.phase === "invited" && status.peer !== undefined) {
            link.emit({
              type: "invitation",
              ip: status.peer.ip,
              port: status.peer.port,
              name: status.peerName ?? "",
            });
          }
          return;
        }
        case "invite": {
          const to = { ip: request.ip, port: request.port ?? SIMP_PORT };
          const special = specialAddress(to.ip);
          if (special !== undefined) {
            throw new SessionError(
              `${to.ip} is ${special}, not a daemon's: invite one user's daemon IP address such as 127.0.0.2`,
            );
          }
          if (to.ip === this.#ip && this.#ports.includes(to.port)) {
            throw new SessionError(
              `${
                formatAddress(to)
              } is this daemon: invite another user's daemon IP address`,
            );
          }
          session.invite(to, now);
          link.answer(request.id);
          break;
        }
        case "accept":
          session.accept(now);
          link.answer(request.id);
          break;
        case "decline":
          session.decline(now);
          link.answer(request.id);
          break;
        case "leave":
          session.leave(now);
          link.answer(request.id);
          break;
        case "send":
          link.answer(request.id, { msgId: session.send(request.text, now) });
          break;
        case "quit":
          // SPEC §8.4: quitting closes a chat; an invitation from someone
          // else stays pending for the next client (SPEC §4.2).
          session.tick(now);
          this.#drain(now);
          if (session.phase !== "idle" && session.phase !== "invited") {
            session.leave(now);
          }
          link.quit(request.id);
          log.info("Client quit");
          break;
      }
    } catch (error) {
      if (!(error instanceof SessionError)) throw error;
      link.fail(
        request.id,
        error.message,
        error.code === "queue-full" ? { code: "queue-full" } : {},
      );
    }
    // Events the command caused follow its reply.
    this.#drain(now);
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
          this.#event(action.event, now);
          break;
        case "drop":
          log.debug(
            "Dropped a datagram from {from} ({reason}): {detail}",
            () => ({
              from: formatAddress(action.from),
              reason: action.reason,
              detail: action.detail,
            }),
          );
          break;
      }
    }
  }

  #event(event: SessionEvent, now: number): void {
    this.#logEvent(event, now);
    for (const linkEvent of toLinkEvents(event)) {
      const before = this.link.counters["over-limit"];
      this.link.emit(linkEvent);
      if (this.link.counters["over-limit"] !== before) {
        this.#overLimitLogs.warning(log, now, {
          message:
            "Dropped a {type} event: the events waiting for the client are over their limit",
          properties: { type: linkEvent.type },
          heldBack: "more events were dropped",
        });
      }
    }
  }

  #collect(): void {
    for (const action of this.link.takeActions()) this.#actions.push(action);
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
      case "invite-retry":
        log.debug("Event {type}", () => ({ type: event.type, event }));
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
