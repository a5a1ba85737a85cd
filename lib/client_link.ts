/**
 * The daemon's side of the client–daemon protocol (SPEC §7.2, §9) as a
 * sans-I/O state machine: the client slot, the reply cache and the event
 * queue. It takes datagrams from the client port and the clock, runs
 * commands through a {@linkcode CommandHandler}, and produces the datagrams
 * to send back and the time it wants to be woken. It never touches a socket
 * or a timer; `lib/daemon/core.ts` connects it to the protocol engine and
 * `daemon.ts` to the network.
 *
 * The rules (message shapes in `lib/control.ts`, prose in docs/PROTOCOL.md):
 * - Only addresses of this machine may talk to it: 127.0.0.0/8 and the
 *   daemon's own IP (SPEC §7.2). Anything else is dropped and logged, at
 *   most once a minute.
 * - One client at a time, identified by its source address and port. A
 *   `connect` from another address while the slot is held is refused with an
 *   error naming the holder; a `connect` from the holder's address with a new
 *   id starts a new connection (event numbering from 1 again; what the old
 *   one had not acknowledged is treated as events of a client that went
 *   away, see below). The slot is freed by `quit` or after
 *   {@linkcode CLIENT_TIMEOUT_MS} without hearing from the client — never
 *   because the client is slow.
 * - Every request is answered exactly once per id: a duplicate id gets the
 *   cached reply and the command does not run again (the cache keeps the
 *   last {@linkcode DEFAULT_LINK_OPTIONS.replyCacheSize} replies).
 * - Events are numbered from 1 per connection, sent at once, and sent again
 *   every {@linkcode EVENT_RETRY_MS} until the client acknowledges them
 *   cumulatively; at most `eventWindow` events and `windowBytes` bytes are
 *   unacknowledged on the wire (at least one event), the rest wait in order
 *   behind them.
 * - Flow control: {@linkcode ClientLink.backlog} counts the events waiting
 *   for the client (or, with none connected, kept for the next one), and
 *   {@linkcode ClientLink.hasRoom} says whether it is below `backlogLimit`.
 *   The daemon core holds the peer's new chat messages back while it is not
 *   (`Session.acceptingMessages`), so a slow client makes the peer wait
 *   instead of losing messages. Every other event is still queued; as a last
 *   resort a store that reaches `maxEvents` drops new events, whole, with a
 *   warning in the log.
 * - An event too large for one datagram is queued as its parts
 *   ({@linkcode splitEvent}), each an event with its own number. A message
 *   whose parts were only partly acknowledged when the slot is freed is
 *   kept whole, so the next client gets all of it.
 * - Events that arrive while no client is connected are kept (bounded, as
 *   above) and sent after the next `connect` (SPEC §4.9), except those
 *   whose news the connect reply's state already gives or that only mean
 *   something to the connection that asked (see
 *   {@linkcode keptWhileDisconnected}).
 *
 * @module
 */

import {
  CLIENT_TIMEOUT_MS,
  type ClientMessage,
  type Command,
  CONTROL_VERSION,
  ControlError,
  type ControlEvent,
  type DaemonMessage,
  type DaemonState,
  encodeControl,
  EVENT_RETRY_MS,
  type EventMessage,
  parseClientMessage,
  type Reply,
  splitEvent,
} from "./control.ts";
import { getLogger, LogBudget, ONCE_A_MINUTE } from "./log.ts";
import { SessionError } from "./peer/session.ts";
import { type Address, formatAddress, sameAddress } from "./address.ts";

const log = getLogger(["daemon", "client"]);

/** What a command produced, for the fields of its reply. */
export interface CommandResult {
  /** The daemon's state (connect, wait, ping). */
  state?: DaemonState;
  /** The id of a sent message (send). */
  msgId?: number;
}

/**
 * Runs one command from the connected client and returns what its reply
 * carries. Throwing a {@linkcode SessionError} or {@linkcode ControlError}
 * turns into an error reply with that message; any other error is a bug,
 * logged and answered with a generic error reply.
 */
export type CommandHandler = (command: Command, now: number) => CommandResult;

/** Settings of a {@linkcode ClientLink}; every time is in milliseconds. */
export interface ClientLinkOptions {
  /** The daemon's own IP: besides 127.0.0.0/8, the only source accepted (SPEC §7.2). */
  ownIp: string;
  /** Silence after which the client's slot is freed; default {@linkcode CLIENT_TIMEOUT_MS}. */
  clientTimeout: number;
  /** Interval of event retransmission; default {@linkcode EVENT_RETRY_MS}. */
  eventRetry: number;
  /** Events unacknowledged on the wire at once; default 32. */
  eventWindow: number;
  /**
   * Bytes of event datagrams unacknowledged on the wire at once (one event
   * is always allowed, whatever its size); default 128 KiB, well below what
   * a client's socket buffers by default (about 208 KiB on Linux), so that
   * large split events are not dropped by the client's kernel.
   */
  windowBytes: number;
  /**
   * The {@linkcode ClientLink.backlog} from which new chat messages are held
   * back at the peer (flow control, see {@linkcode ClientLink.hasRoom});
   * default 256. Each part of a split event counts.
   */
  backlogLimit: number;
  /**
   * The hard bound of the events held for the client, connected or not
   * (SPEC §7.3): a new event that would not fit is dropped, whole, with a
   * warning; default 1000. Flow control keeps chat messages below
   * `backlogLimit`, so only a flood of other events (errors from the peer,
   * invitations) can reach it.
   */
  maxEvents: number;
  /** Replies remembered for answering duplicate request ids; default 64. */
  replyCacheSize: number;
}

/** The defaults of {@linkcode ClientLinkOptions} (all but `ownIp`). */
export const DEFAULT_LINK_OPTIONS: Readonly<Omit<ClientLinkOptions, "ownIp">> =
  Object.freeze({
    clientTimeout: CLIENT_TIMEOUT_MS,
    eventRetry: EVENT_RETRY_MS,
    eventWindow: 32,
    windowBytes: 128 * 1024,
    backlogLimit: 256,
    maxEvents: 1000,
    replyCacheSize: 64,
  });

/** A datagram for the client port's socket to send. */
export interface LinkTransmit {
  /** Where to: the client's address (or the asker's, for an error reply). */
  to: Address;
  /** The message. */
  message: DaemonMessage;
  /** Its encoding. */
  bytes: Uint8Array;
}

/**
 * Whether `ip` is an address of this machine as far as the client port is
 * concerned (SPEC §7.2): any of 127.0.0.0/8, or the daemon's own IP.
 */
function isLocalAddress(ip: string, ownIp: string): boolean {
  return ip === ownIp || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);
}

/**
 * Whether an event that happens while no client is connected is kept for the
 * next connection (SPEC §4.9). Not kept: `invitation`, `invitation-ended`
 * and `chat-started`, whose news is in the connect reply's state;
 * `delivered` and `retransmitted`, which name message ids of a connection
 * that is gone; `chat-closed` with no undelivered messages, the end of a
 * chat our own user left (with `leave` or `quit`); `daemon-stopping`, which
 * nobody will hear. Everything else (messages, the peer leaving or being
 * lost, a `chat-closed` with undelivered messages and the `undelivered`
 * events after it, answers to an invitation, errors from the peer) is kept.
 */
export function keptWhileDisconnected(event: ControlEvent): boolean {
  switch (event.type) {
    case "invitation":
    case "invitation-ended":
    case "chat-started":
    case "delivered":
    case "retransmitted":
    case "daemon-stopping":
      return false;
    case "chat-closed":
      return event.undelivered > 0;
    default:
      return true;
  }
}

interface QueuedEvent {
  ev: number;
  event: ControlEvent;
  /** When it is due to be sent again; undefined until first sent. */
  due: number | undefined;
  /** Its event message, encoded when it is about to enter the window. */
  bytes?: Uint8Array;
}

interface Connection {
  address: Address;
  heardAt: number;
  nextEv: number;
  /** Unacknowledged events, oldest first; the window's are on the wire. */
  queue: QueuedEvent[];
  /** Acknowledged parts of an event whose last part is not acknowledged yet. */
  parts: ControlEvent[];
  replies: Map<number, Reply>;
}

/**
 * The daemon's end of the client–daemon protocol (SPEC §9): see the module
 * documentation for the rules.
 *
 * @example
 * ```ts
 * import { ClientLink } from "./client_link.ts";
 * import { encodeControl } from "./control.ts";
 * const link = new ClientLink(() => ({ state: { phase: "idle" } }), {
 *   ownIp: "127.0.0.1",
 * });
 * const client = { ip: "127.0.0.1", port: 40000 };
 * link.receive(
 *   encodeControl({ v: 1, id: 1, cmd: "connect", name: "alice" }),
 *   client,
 *   0,
 * );
 * const [reply] = link.takeTransmits(); // reply.message: {v:1, re:1, ok:true, …}
 * ```
 */
export class ClientLink {
  #handler: CommandHandler;
  #options: ClientLinkOptions;
  #connection: Connection | undefined;
  /** Events kept while no client is connected. */
  #kept: ControlEvent[] = [];
  #transmits: LinkTransmit[] = [];
  /** While a command runs, new events wait until its reply is out. */
  #running = false;
  #strangerLogs = new LogBudget(ONCE_A_MINUTE);
  #droppedLogs = new LogBudget(ONCE_A_MINUTE);

  /** Creates a link with no client; `options` override {@linkcode DEFAULT_LINK_OPTIONS}. */
  constructor(
    handler: CommandHandler,
    options: Partial<ClientLinkOptions> & { ownIp: string },
  ) {
    this.#handler = handler;
    this.#options = { ...DEFAULT_LINK_OPTIONS, ...options };
  }

  /** The connected client's address, if a client holds the slot. */
  get client(): Address | undefined {
    return this.#connection?.address;
  }

  /** Events sent or waiting for the connected client and not yet acknowledged. */
  get unacknowledged(): number {
    return this.#connection?.queue.length ?? 0;
  }

  /** Events kept for the next connection. */
  get kept(): number {
    return this.#kept.length;
  }

  /**
   * The events waiting for the client, each part of a split event counted:
   * the connected client's unacknowledged ones (sent or not), or with no
   * client connected those kept for the next one.
   */
  get backlog(): number {
    return this.#connection?.queue.length ?? this.#kept.length;
  }

  /**
   * Whether the {@linkcode backlog} is below `backlogLimit`: while it is
   * not, the peer's new chat messages must wait (`Session.acceptingMessages`)
   * until the client has caught up.
   */
  get hasRoom(): boolean {
    return this.backlog < this.#options.backlogLimit;
  }

  /** Returns the datagrams to send since the last call, oldest first. */
  takeTransmits(): LinkTransmit[] {
    const transmits = this.#transmits;
    this.#transmits = [];
    return transmits;
  }

  /** The time at which {@linkcode tick} must next be called, if any. */
  nextTimeout(): number | undefined {
    const c = this.#connection;
    if (c === undefined) return undefined;
    let next = c.heardAt + this.#options.clientTimeout;
    for (const entry of this.#window(c)) {
      if (entry.due !== undefined && entry.due < next) next = entry.due;
    }
    return next;
  }

  /** A datagram arrived on the client port from `from` at time `now`. */
  receive(bytes: Uint8Array, from: Address, now: number): void {
    if (!isLocalAddress(from.ip, this.#options.ownIp)) {
      this.#strangerLogs.warning(log, now, {
        message:
          "Dropped a datagram on the client port from {from}: only this machine may use it (SPEC §7.2)",
        properties: { from: formatAddress(from) },
        heldBack: "more from other machines were dropped",
      });
      return;
    }
    this.#expire(now);
    const c = this.#connection;
    const fromClient = c !== undefined && sameAddress(c.address, from);
    if (fromClient) c.heardAt = now;
    let message: ClientMessage;
    try {
      message = parseClientMessage(bytes);
    } catch (error) {
      if (!(error instanceof ControlError)) throw error;
      log.debug("Bad request from {from}: {error}", {
        from: formatAddress(from),
        error: error.message,
      });
      const cached = fromClient && error.id !== null
        ? c.replies.get(error.id)
        : undefined;
      if (cached) {
        this.#send(from, cached);
        return;
      }
      const reply: Reply = {
        v: CONTROL_VERSION,
        re: error.id,
        ok: false,
        error: error.message,
      };
      if (fromClient && error.id !== null) this.#remember(c, error.id, reply);
      this.#send(from, reply);
      return;
    }
    if ("ack" in message) {
      if (fromClient) {
        this.#acknowledge(c, message.ack, now);
      } else {
        log.debug(
          "Ignored an event acknowledgement from {from}: not the client",
          {
            from: formatAddress(from),
          },
        );
      }
      return;
    }
    const id = message.id;
    const command: Command = message;
    if (fromClient) {
      const cached = c.replies.get(id);
      if (cached) {
        log.debug("Duplicate request {id} from {from}: answered from cache", {
          id,
          from: formatAddress(from),
        });
        this.#send(from, cached);
        return;
      }
    }
    if (command.cmd === "connect") {
      this.#connect(id, command, from, now);
      return;
    }
    if (!fromClient) {
      if (command.cmd === "quit") {
        // Not connected, so nothing to quit: a late duplicate of a quit whose
        // reply was lost, or a client whose slot expired.
        this.#send(from, { v: CONTROL_VERSION, re: id, ok: true });
        return;
      }
      const reply: Reply = {
        v: CONTROL_VERSION,
        re: id,
        ok: false,
        error: c === undefined
          ? "Not connected: send connect first"
          : `Not connected: another client (${
            formatAddress(c.address)
          }) holds this daemon; send connect after it quits`,
      };
      this.#send(from, reply);
      return;
    }
    this.#run(c, id, command, now);
    if (command.cmd === "quit") {
      log.info("Client at {client} quit", { client: formatAddress(from) });
      this.#release(c, now);
    }
  }

  /**
   * An event for the client, split into parts if it is too large for one
   * datagram ({@linkcode splitEvent}): sent at once when a client is
   * connected, kept for the next connection otherwise (see
   * {@linkcode keptWhileDisconnected}). An event that would take the
   * client's events beyond `maxEvents` is dropped, whole, with a warning:
   * the caller keeps the {@linkcode backlog} low with flow control
   * ({@linkcode hasRoom}).
   */
  emit(event: ControlEvent, now: number): void {
    const parts = splitEvent(event);
    const c = this.#connection;
    if (c === undefined) {
      this.#keep(parts, now);
      return;
    }
    if (c.queue.length + parts.length > this.#options.maxEvents) {
      this.#drop(event, now);
      return;
    }
    for (const part of parts) {
      c.queue.push({ ev: c.nextEv++, event: part, due: undefined });
    }
    if (!this.#running) this.#pump(c, now);
  }

  /** The clock reached `now`: free a silent client's slot, resend due events. */
  tick(now: number): void {
    this.#expire(now);
    const c = this.#connection;
    if (c === undefined) return;
    for (const entry of this.#window(c)) {
      if (entry.due !== undefined && now >= entry.due) {
        entry.due = now + this.#options.eventRetry;
        this.#sendEvent(c.address, entry);
      }
    }
  }

  // --------------------------------------------------------------- internals

  /** Frees the slot of a client silent for too long (SPEC §7.2). */
  #expire(now: number): void {
    const c = this.#connection;
    if (c === undefined || now < c.heardAt + this.#options.clientTimeout) {
      return;
    }
    log.info(
      "Nothing heard from the client at {client} for {ms} ms: slot freed",
      { client: formatAddress(c.address), ms: Math.round(now - c.heardAt) },
    );
    this.#release(c, now);
  }

  #connect(
    id: number,
    command: Extract<Command, { cmd: "connect" }>,
    from: Address,
    now: number,
  ): void {
    const old = this.#connection;
    if (old !== undefined && !sameAddress(old.address, from)) {
      this.#send(from, {
        v: CONTROL_VERSION,
        re: id,
        ok: false,
        error: `Another client (${
          formatAddress(old.address)
        }) is connected to this daemon: quit it first, or wait ${
          Math.ceil(this.#options.clientTimeout / 1000)
        } s if it has stopped`,
      });
      return;
    }
    if (old !== undefined) {
      // The same client connects again: a new connection. What the old one
      // had not acknowledged is kept like the events of a client that went
      // away (keptWhileDisconnected), and sent under the new numbering.
      this.#release(old, now);
    }
    const c: Connection = {
      address: from,
      heardAt: now,
      nextEv: 1,
      queue: [],
      parts: [],
      replies: new Map(),
    };
    this.#connection = c;
    log.info("Client at {client} connected as {name}", {
      client: formatAddress(from),
      name: command.name,
    });
    this.#running = true;
    try {
      if (!this.#run(c, id, command, now).ok) {
        // Refused (the daemon is stopping): the slot stays free.
        if (this.#connection === c) this.#connection = undefined;
        return;
      }
      const kept = this.#kept;
      this.#kept = [];
      for (const event of kept) this.emit(event, now);
    } finally {
      this.#running = false;
    }
    if (this.#connection === c) this.#pump(c, now);
  }

  /** Runs a command for the connected client, answers it, returns the reply. */
  #run(c: Connection, id: number, command: Command, now: number): Reply {
    const wasRunning = this.#running;
    this.#running = true;
    let reply: Reply;
    try {
      const result = this.#handler(command, now);
      reply = { v: CONTROL_VERSION, re: id, ok: true, ...result };
    } catch (error) {
      let message: string;
      const code = error instanceof ControlError ? error.code : undefined;
      if (error instanceof SessionError || error instanceof ControlError) {
        message = error.message;
      } else {
        log.error("Command {cmd} failed unexpectedly: {error}", {
          cmd: command.cmd,
          error,
        });
        message = `Internal error in the daemon (${
          error instanceof Error ? error.message : String(error)
        }): see its log`;
      }
      reply = {
        v: CONTROL_VERSION,
        re: id,
        ok: false,
        error: message,
        ...(code === undefined ? {} : { code }),
      };
    } finally {
      this.#running = wasRunning;
    }
    this.#remember(c, id, reply);
    this.#send(c.address, reply);
    if (!wasRunning && this.#connection === c) this.#pump(c, now);
    return reply;
  }

  #remember(c: Connection, id: number, reply: Reply): void {
    c.replies.set(id, reply);
    for (const key of c.replies.keys()) {
      if (c.replies.size <= this.#options.replyCacheSize) break;
      c.replies.delete(key); // oldest first (SPEC §7.3)
    }
  }

  #acknowledge(c: Connection, ack: number, now: number): void {
    if (ack >= c.nextEv) {
      log.debug(
        "Client acknowledged event {ack}, but the last sent is {last}",
        {
          ack,
          last: c.nextEv - 1,
        },
      );
    }
    let acked = 0;
    while (acked < c.queue.length && c.queue[acked].ev <= ack) {
      const { event } = c.queue[acked++];
      if ("continued" in event) c.parts.push(event);
      else c.parts = [];
    }
    if (acked === 0) return;
    c.queue.splice(0, acked);
    this.#pump(c, now);
  }

  /** Sends the events in the window that were never sent. */
  #pump(c: Connection, now: number): void {
    for (const entry of this.#window(c)) {
      if (entry.due !== undefined) continue;
      entry.due = now + this.#options.eventRetry;
      this.#sendEvent(c.address, entry);
    }
  }

  /**
   * The events on the wire (or about to be): the oldest unacknowledged, at
   * most `eventWindow` of them and `windowBytes` bytes, at least one.
   */
  #window(c: Connection): QueuedEvent[] {
    const { eventWindow, windowBytes } = this.#options;
    const window: QueuedEvent[] = [];
    let bytes = 0;
    for (const entry of c.queue) {
      if (window.length >= eventWindow) break;
      entry.bytes ??= encodeControl(eventMessage(entry));
      bytes += entry.bytes.length;
      if (window.length > 0 && bytes > windowBytes) break;
      window.push(entry);
    }
    return window;
  }

  /**
   * Frees the slot; what the client did not acknowledge is kept, with the
   * acknowledged parts of a split event whose end it did not acknowledge.
   */
  #release(c: Connection, now: number): void {
    if (this.#connection === c) this.#connection = undefined;
    const events = [...c.parts, ...c.queue.map((entry) => entry.event)];
    c.parts = [];
    c.queue = [];
    this.#keep(events, now);
  }

  /**
   * Keeps events for the next connection, those that
   * {@linkcode keptWhileDisconnected} lets through. An event (all its parts)
   * that would take the store beyond `maxEvents` is dropped.
   */
  #keep(events: ControlEvent[], now: number): void {
    let parts: ControlEvent[] = [];
    for (const event of events) {
      parts.push(event);
      if ("continued" in event) continue;
      // `parts` is one whole event now: the parts of a split one, in order.
      if (!keptWhileDisconnected(event)) {
        log.debug("No client connected: not keeping {type} event", {
          type: event.type,
          event,
        });
      } else if (this.#kept.length + parts.length > this.#options.maxEvents) {
        this.#drop(event, now);
      } else {
        this.#kept.push(...parts);
      }
      parts = [];
    }
  }

  /**
   * The last resort of the hard bound (SPEC §7.3): `event` is dropped and
   * logged as a warning — the first, then at most one line a minute, which
   * counts the others.
   */
  #drop(event: ControlEvent, now: number): void {
    const c = this.#connection;
    this.#droppedLogs.warning(log, now, {
      message: (c === undefined
        ? "No client connected and {max} events kept"
        : "The client at {client} has {max} events unacknowledged") +
        ": dropped a new {type} event",
      properties: {
        max: this.#options.maxEvents,
        type: event.type,
        ...(c === undefined ? {} : { client: formatAddress(c.address) }),
      },
      heldBack: "more were dropped",
    });
  }

  #sendEvent(to: Address, entry: QueuedEvent): void {
    entry.bytes ??= encodeControl(eventMessage(entry));
    this.#transmits.push({
      to,
      message: eventMessage(entry),
      bytes: entry.bytes,
    });
  }

  #send(to: Address, message: DaemonMessage): void {
    this.#transmits.push({ to, message, bytes: encodeControl(message) });
  }
}

function eventMessage(entry: QueuedEvent): EventMessage {
  return { v: CONTROL_VERSION, ev: entry.ev, event: entry.event };
}
