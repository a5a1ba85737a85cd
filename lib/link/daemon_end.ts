/**
 * The daemon's end of the client–daemon link (SPEC §7.2, §9), sans-I/O.
 * The shell tells it about connections (opened, bytes read, bytes written,
 * closed) and it answers with lines to write and connections to close. It
 * knows nothing of the protocol engine: requests go out to the caller
 * (`DaemonCore`), which answers each one, and events come in from it.
 *
 * Rules it keeps:
 * - **The slot.** One client at a time. A second connection gets one
 *   `busy` error line naming the connected client, and is closed. A client
 *   that closes its connection (or whose connection breaks) frees the slot
 *   at once; so does `quit`, after its reply.
 * - **Hello first.** The first request must be `hello`; any other gets an
 *   error reply and the connection goes on. A hello of another link version
 *   gets an error with code `version`, then the connection is closed. After
 *   the hello reply the client gets the events kept for it.
 * - **Bad input.** A line that is not UTF-8, not a JSON object, or that
 *   fails its schema gets an error reply (`re` null when the id could not
 *   be read; the message quotes at most 40 characters of the input) and
 *   the connection goes on. A line longer than `MAX_LINE_BYTES` is a
 *   framing violation: one error line, then the connection is closed.
 * - **Bounded output.** Lines written and not yet reported written by the
 *   shell form the client's backlog. While it is at or over
 *   {@linkcode DaemonEndOptions.backlogLimit}, {@linkcode DaemonEnd.hasRoom}
 *   is false (the engine stops ACKing new chat messages: the peer keeps
 *   them) and {@linkcode DaemonEnd.wantsInput} is false (the shell stops
 *   reading the client, so its requests cannot grow the backlog either).
 * - **Kept events.** While no client has said hello, events a client must
 *   not miss (messages, the end of a chat and its undelivered messages,
 *   answers to an invitation, errors from the peer) are kept, bounded
 *   ({@linkcode DaemonEndOptions.keptLimit}: over it `hasRoom` is false, so
 *   no new chat message arrives), and sent after the next hello reply.
 *
 * @module
 */

import { type Address, formatAddress } from "../address.ts";
import { type LineItem, LineSplitter } from "./lines.ts";
import {
  type DaemonMessage,
  type DaemonState,
  encodeDaemonMessage,
  type ErrorCode,
  LINK_VERSION,
  LinkError,
  type LinkEvent,
  type LinkLimits,
  MAX_LINE_BYTES,
  parseRequest,
  type Request,
} from "./protocol.ts";

/** The shell's name for one TCP connection. */
export type ConnectionId = number;

/** Settings of a {@linkcode DaemonEnd}. */
export interface DaemonEndOptions {
  /**
   * The client's backlog (bytes written and not yet sent) at which the
   * engine stops taking chat messages and the shell stops reading the
   * client; default {@linkcode BACKLOG_LIMIT}.
   */
  backlogLimit: number;
  /** The bytes of events kept for the next client at which the same happens; default {@linkcode KEPT_LIMIT}. */
  keptLimit: number;
  /** The longest line from the client; default `MAX_LINE_BYTES`. */
  maxLineBytes: number;
}

/** Default backlog limit: 1 MiB, two of the longest lines. */
export const BACKLOG_LIMIT = 2 * MAX_LINE_BYTES;

/** Default limit of events kept for the next client: 1 MiB of lines. */
export const KEPT_LIMIT = 2 * MAX_LINE_BYTES;

/** What the daemon's end wants the shell to do. */
export type DaemonEndAction =
  /** Write these bytes to the connection, after what is already queued. */
  | { type: "write"; conn: ConnectionId; bytes: Uint8Array }
  /** Close the connection once what is queued for it is written. */
  | { type: "close"; conn: ConnectionId };

/** A request for the caller to carry out and answer ({@linkcode DaemonEnd.answer} and co). */
export interface DaemonEndRequest {
  /** The connection it came on (the client's). */
  conn: ConnectionId;
  /** The request, valid; a hello here has the right version. */
  request: Request;
}

/** Why an event was not sent or kept (counted in {@linkcode DaemonEnd.counters}). */
export type DroppedEvent = "not-kept" | "over-limit";

/**
 * Whether an event that happens while no client has said hello is kept for
 * the next one (SPEC §4.9). Not kept: `invitation`, `invitation-ended` and
 * `chat-started`, whose news is in the hello reply's state (and a pending
 * invitation is sent again after it); `delivered` and `retransmitted`,
 * which name message ids of a client that is gone, and `invite-retry`, the
 * progress of an invitation the state shows; `chat-closed` with no
 * undelivered messages, the end of a chat our own user left;
 * `daemon-stopping`, which nobody will hear. Everything else is kept.
 */
export function keptWhileDisconnected(event: LinkEvent): boolean {
  switch (event.type) {
    case "invitation":
    case "invitation-ended":
    case "chat-started":
    case "delivered":
    case "retransmitted":
    case "invite-retry":
    case "daemon-stopping":
      return false;
    case "chat-closed":
      return event.undelivered > 0;
    default:
      return true;
  }
}

/**
 * Events that peers alone can repeat without bound (an ERR flood, a
 * partner alternating SYN and ACK, inviters cycling through busy
 * periods): over the limits they are dropped, not kept or queued. Every
 * other event comes at most a bounded number of times per chat, or not at
 * all while {@linkcode DaemonEnd.hasRoom} is false.
 */
function repeatable(event: LinkEvent): boolean {
  return event.type === "peer-error" || event.type === "busy-answered" ||
    event.type === "peer-reconnected";
}

interface Client {
  conn: ConnectionId;
  remote: Address;
  lines: LineSplitter;
  /** Framed lines waiting for {@linkcode DaemonEnd.next}. */
  items: LineItem[];
  /** Whether hello was answered with ok. */
  greeted: boolean;
  /** Whether the connection is being closed (nothing more is read or sent). */
  closing: boolean;
}

const encoder = new TextEncoder();

/**
 * The daemon's end of the link. Inputs: {@linkcode open},
 * {@linkcode receive} (bytes read), {@linkcode wrote}, {@linkcode closed};
 * requests: {@linkcode next}, each answered with {@linkcode answer},
 * {@linkcode welcome}, {@linkcode fail} or {@linkcode quit} before the
 * next is asked for; commands: {@linkcode emit}, {@linkcode closeClient};
 * output: {@linkcode takeActions}.
 *
 * @example
 * ```ts
 * import { DaemonEnd } from "./daemon_end.ts";
 * const end = new DaemonEnd();
 * end.open(1, { ip: "127.0.0.1", port: 40000 });
 * end.receive(
 *   1,
 *   new TextEncoder().encode('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'),
 * );
 * const hello = end.next()!;
 * end.welcome(hello.request.id, { phase: "idle" }, { queue: 64, text: 65468 });
 * const [write] = end.takeActions(); // {"re":1,"ok":true,"v":2,…}
 * ```
 */
export class DaemonEnd {
  #options: DaemonEndOptions;
  #client: Client | undefined;
  /** Bytes written for the slot's client and not yet reported written. */
  #backlog = 0;
  #kept: { event: LinkEvent; size: number }[] = [];
  #keptBytes = 0;
  #actions: DaemonEndAction[] = [];

  /** Counters for logs and tests. */
  readonly counters: Record<DroppedEvent | "refused" | "bad-lines", number> = {
    "not-kept": 0,
    "over-limit": 0,
    refused: 0,
    "bad-lines": 0,
  };

  /** Creates an end with no client; `options` override the defaults. */
  constructor(options: Partial<DaemonEndOptions> = {}) {
    this.#options = {
      backlogLimit: BACKLOG_LIMIT,
      keptLimit: KEPT_LIMIT,
      maxLineBytes: MAX_LINE_BYTES,
      ...options,
    };
  }

  /** The client holding the slot, if any, and whether it said hello. */
  get client():
    | { conn: ConnectionId; remote: Address; greeted: boolean }
    | undefined {
    const c = this.#client;
    return c && { conn: c.conn, remote: c.remote, greeted: c.greeted };
  }

  /** Bytes written for the client and not yet reported written. */
  get backlog(): number {
    return this.#backlog;
  }

  /** Events kept for the next client. */
  get kept(): number {
    return this.#kept.length;
  }

  /**
   * Whether a new chat message may be taken from the peer: the events for
   * the client (its backlog, or those kept while no client said hello) are
   * under their limit.
   */
  get hasRoom(): boolean {
    return this.#client?.greeted
      ? this.#backlog < this.#options.backlogLimit
      : this.#keptBytes < this.#options.keptLimit;
  }

  /**
   * Whether the shell should read from `conn` now: false while the
   * client's backlog is over its limit (TCP then makes the client wait),
   * and for a connection being closed.
   */
  wantsInput(conn: ConnectionId): boolean {
    const c = this.#client;
    if (c === undefined || c.conn !== conn) return false;
    return !c.closing && this.#backlog < this.#options.backlogLimit;
  }

  /** Returns what to do since the last call, oldest first. */
  takeActions(): DaemonEndAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  // ------------------------------------------------------------------ inputs

  /**
   * A connection was accepted from `remote` (already checked to be this
   * machine, SPEC §7.2). It takes the slot, or when the slot is taken it
   * gets the `busy` line and is closed.
   */
  open(conn: ConnectionId, remote: Address): void {
    const c = this.#client;
    if (c !== undefined) {
      this.counters.refused++;
      this.#writeTo(conn, {
        re: null,
        ok: false,
        error: `Another client is connected to this daemon (${
          formatAddress(c.remote)
        }): quit it first`,
        code: "busy",
      });
      this.#actions.push({ type: "close", conn });
      return;
    }
    this.#client = {
      conn,
      remote,
      lines: new LineSplitter({ maxLineBytes: this.#options.maxLineBytes }),
      items: [],
      greeted: false,
      closing: false,
    };
    this.#backlog = 0;
  }

  /**
   * Bytes were read from `conn`: the lines they complete wait for
   * {@linkcode next}, which the caller calls until it returns nothing.
   */
  receive(conn: ConnectionId, bytes: Uint8Array): void {
    const c = this.#client;
    if (c === undefined || c.conn !== conn || c.closing) return;
    c.items.push(...c.lines.push(bytes));
  }

  /**
   * The next valid request from the client, for the caller to carry out
   * and answer before it asks for the next one (replies go out in request
   * order); bad lines before it are answered here. Undefined when no
   * complete line is waiting.
   */
  next(): DaemonEndRequest | undefined {
    const c = this.#client;
    while (c !== undefined && !c.closing) {
      const item = c.items.shift();
      if (item === undefined) return undefined;
      const request = this.#line(c, item);
      if (request !== undefined) return { conn: c.conn, request };
    }
    return undefined;
  }

  /** The shell wrote `count` bytes of what was queued for `conn`. */
  wrote(conn: ConnectionId, count: number): void {
    if (this.#client?.conn === conn) {
      this.#backlog = Math.max(0, this.#backlog - count);
    }
  }

  /**
   * `conn` is closed (the client closed it, it broke, or the shell closed
   * it as asked): a client frees the slot at once.
   */
  closed(conn: ConnectionId): void {
    if (this.#client?.conn === conn) {
      this.#client = undefined;
      this.#backlog = 0;
    }
  }

  // ---------------------------------------------------------------- commands

  /** Answers request `id` with ok, and `fields` (e.g. `msgId`). */
  answer(id: number, fields: { msgId?: number } = {}): void {
    const c = this.#active();
    if (c === undefined) return;
    this.#write(c, { re: id, ok: true, ...fields });
  }

  /**
   * Answers the hello `id` with ok, the daemon's state and limits; the
   * events kept for a client follow at once.
   */
  welcome(id: number, state: DaemonState, limits: LinkLimits): void {
    const c = this.#active();
    if (c === undefined) return;
    this.#write(c, { re: id, ok: true, v: LINK_VERSION, state, limits });
    c.greeted = true;
    const kept = this.#kept;
    this.#kept = [];
    this.#keptBytes = 0;
    for (const { event } of kept) this.#write(c, { event });
  }

  /**
   * Answers request `id` with an error: `error` is a sentence for the user.
   * With `options.close`, the connection is closed after it (a wrong
   * version).
   */
  fail(
    id: number | null,
    error: string,
    options: { code?: ErrorCode; close?: boolean } = {},
  ): void {
    const c = this.#active();
    if (c === undefined) return;
    this.#write(c, {
      re: id,
      ok: false,
      error,
      ...(options.code === undefined ? {} : { code: options.code }),
    });
    if (options.close) this.#close(c);
  }

  /**
   * Answers `quit` (`id`) with ok and closes the connection: the slot is
   * free for the next client (the shell reports the close with
   * {@linkcode closed}).
   */
  quit(id: number): void {
    const c = this.#active();
    if (c === undefined) return;
    this.#write(c, { re: id, ok: true });
    this.#close(c);
  }

  /**
   * An event for the client: sent to a client that said hello, else kept
   * for the next one when it must not be missed
   * ({@linkcode keptWhileDisconnected}). Returns whether it was sent or
   * kept.
   */
  emit(event: LinkEvent): boolean {
    const c = this.#client;
    if (c !== undefined && c.greeted && !c.closing) {
      if (repeatable(event) && this.#backlog >= this.#options.backlogLimit) {
        this.counters["over-limit"]++;
        return false;
      }
      this.#write(c, { event });
      return true;
    }
    if (!keptWhileDisconnected(event)) {
      this.counters["not-kept"]++;
      return false;
    }
    if (repeatable(event) && this.#keptBytes >= this.#options.keptLimit) {
      this.counters["over-limit"]++;
      return false;
    }
    const size = encoder.encode(encodeDaemonMessage({ event })).length;
    this.#kept.push({ event, size });
    this.#keptBytes += size;
    return true;
  }

  /** Closes the client's connection, if any (the daemon is stopping). */
  closeClient(): void {
    const c = this.#client;
    if (c !== undefined && !c.closing) this.#close(c);
  }

  // --------------------------------------------------------------- internals

  /** The client, unless its connection is being closed. */
  #active(): Client | undefined {
    const c = this.#client;
    return c === undefined || c.closing ? undefined : c;
  }

  /** One framed item from the client: a request, or an error answered here. */
  #line(c: Client, item: LineItem): Request | undefined {
    switch (item.type) {
      case "too-long":
        this.counters["bad-lines"]++;
        this.#write(c, {
          re: null,
          ok: false,
          error:
            `Line longer than ${item.limit} bytes: the connection is closed (send one JSON object per line)`,
          code: "bad-request",
        });
        this.#close(c);
        return undefined;
      case "invalid-utf8":
        this.counters["bad-lines"]++;
        this.#write(c, {
          re: null,
          ok: false,
          error: "Bad request: the line is not valid UTF-8",
          code: "bad-request",
        });
        return undefined;
      case "unterminated":
        return undefined;
      case "line":
        break;
    }
    let request: Request;
    try {
      request = parseRequest(item.text);
    } catch (error) {
      this.counters["bad-lines"]++;
      const e = error instanceof LinkError
        ? error
        : new LinkError("Bad request", { code: "bad-request" });
      this.#write(c, {
        re: e.re,
        ok: false,
        error: e.message,
        code: e.code ?? "bad-request",
      });
      return undefined;
    }
    if (request.cmd === "hello") {
      if (c.greeted) {
        this.#write(c, {
          re: request.id,
          ok: false,
          error: "Hello was already answered: send it once per connection",
        });
        return undefined;
      }
      if (request.v !== LINK_VERSION) {
        this.#write(c, {
          re: request.id,
          ok: false,
          error:
            `This daemon speaks link version ${LINK_VERSION}, not ${request.v}: use a client of the same simp version`,
          code: "version",
        });
        this.#close(c);
        return undefined;
      }
      return request;
    }
    if (!c.greeted) {
      this.#write(c, {
        re: request.id,
        ok: false,
        error:
          `Say hello first: send {"id":${request.id},"cmd":"hello","v":${LINK_VERSION},"name":"…"} before ${request.cmd}`,
      });
      return undefined;
    }
    return request;
  }

  #close(c: Client): void {
    if (c.closing) return;
    c.closing = true;
    this.#actions.push({ type: "close", conn: c.conn });
  }

  #write(c: Client, message: DaemonMessage): void {
    const bytes = this.#writeTo(c.conn, message);
    this.#backlog += bytes;
  }

  #writeTo(conn: ConnectionId, message: DaemonMessage): number {
    const bytes = encoder.encode(encodeDaemonMessage(message));
    this.#actions.push({ type: "write", conn, bytes });
    return bytes.length;
  }
}
