/**
 * The client–daemon protocol (SPEC §9), version 1: one JSON object per UDP
 * datagram on the daemon's client port ({@linkcode CLIENT_PORT}). This module holds the message
 * shapes and their strict parsing; the daemon and the client do the I/O.
 *
 * - Requests (client → daemon) carry `id`; the daemon answers every request
 *   with exactly one reply carrying `re` = that id. The client retransmits a
 *   request (same id) until the reply arrives; the daemon answers a duplicate
 *   id with the cached reply and does not run the command twice.
 * - Events (daemon → client) carry `ev`, a sequence number starting at 1 per
 *   connection. The client acknowledges with `{"v":1,"ack":N}` (cumulative:
 *   every event up to N) and ignores events it already has; the daemon
 *   retransmits unacknowledged events.
 * - No message is larger than {@linkcode MAX_CONTROL_DATAGRAM} bytes. An
 *   event whose `text` would make it larger is sent as consecutive events
 *   of the same type carrying consecutive slices of the text, all but the
 *   last marked `"continued": true` ({@linkcode splitEvent}); the client
 *   joins them before showing anything. `peer-left`, `peer-lost` and
 *   `chat-closed` carry the number of undelivered messages, each of which
 *   follows as an `undelivered` event.
 *
 * See docs/PROTOCOL.md for the message table and an example exchange.
 *
 * @module
 */

import { checkText, checkUserName } from "./wire/datagram.ts";
import type { Phase } from "./peer/session.ts";
import { isIPv4, specialAddress } from "./address.ts";

/** The protocol version this build speaks. */
export const CONTROL_VERSION = 1;

export { CLIENT_PORT, SIMP_PORT } from "./link/protocol.ts";

/**
 * The largest control message, in bytes: the largest UDP payload over IPv4.
 * Requests larger than this cannot be sent; events larger than this are
 * split ({@linkcode splitEvent}).
 */
export const MAX_CONTROL_DATAGRAM = 65_507;

/** How often the client retransmits an unanswered request, in ms. */
export const REQUEST_RETRY_MS = 300;
/** How many times the client sends a request before giving up on the daemon. */
export const REQUEST_ATTEMPTS = 10;
/** How often the client pings the daemon to keep its slot, in ms. */
export const KEEPALIVE_MS = 1000;
/** After how long without hearing from its client the daemon frees the slot, in ms. */
export const CLIENT_TIMEOUT_MS = 5000;
/** How often the daemon retransmits unacknowledged events, in ms. */
export const EVENT_RETRY_MS = 300;

/** An IPv4 address and port as carried in control messages. */
export interface WireAddress {
  /** IPv4 address. */
  ip: string;
  /** UDP port. */
  port: number;
}

/** A command from the client. */
export type Command =
  | { cmd: "connect"; name: string }
  | { cmd: "invite"; ip: string; port?: number }
  | { cmd: "wait" }
  | { cmd: "accept" }
  | { cmd: "decline" }
  | { cmd: "send"; text: string }
  | { cmd: "leave" }
  | { cmd: "quit" }
  | { cmd: "ping" };

/** A request: a command with its id. */
export type Request = Command & { v: typeof CONTROL_VERSION; id: number };

/** The acknowledgement of events up to `ack`. */
export interface EventAck {
  /** Protocol version. */
  v: typeof CONTROL_VERSION;
  /** Every event with `ev` ≤ this number has arrived. */
  ack: number;
}

/** The daemon's protocol phase as the client sees it: the engine's {@linkcode Phase}. */
export type ControlPhase = Phase;

/** What the daemon tells its client about itself (reply to connect, wait, ping). */
export interface DaemonState {
  /** The protocol phase. */
  phase: ControlPhase;
  /** The other user, when there is one (`name` may be empty while inviting). */
  peer?: WireAddress & { name: string };
}

/** A successful reply; extra fields depend on the command. */
export interface OkReply {
  /** Protocol version. */
  v: typeof CONTROL_VERSION;
  /** The id of the request answered. */
  re: number;
  /** Success. */
  ok: true;
  /** For connect, wait and ping: the daemon's state. */
  state?: DaemonState;
  /** For send: the message id that later events name. */
  msgId?: number;
}

/**
 * Why a request failed, for a client that acts on it rather than only
 * showing the error text ({@linkcode ErrorReply.code}):
 *
 * - `queue-full` — a `send` found the daemon's send queue full (SPEC §5.1):
 *   nothing was queued; send the message again after the next `delivered`,
 *   `undelivered` or end-of-chat event.
 */
export type ErrorCode = "queue-full";

/** A failed request: `error` is a sentence for the user. */
export interface ErrorReply {
  /** Protocol version. */
  v: typeof CONTROL_VERSION;
  /** The id of the request answered, or null when it could not be read. */
  re: number | null;
  /** Failure. */
  ok: false;
  /** What went wrong and what to do. */
  error: string;
  /**
   * The failure in machine-readable form, when a client is expected to act
   * on it (absent for the others). A client treats a code it does not know
   * like an absent one.
   */
  code?: ErrorCode;
}

/** Any reply. */
export type Reply = OkReply | ErrorReply;

/**
 * Marks a part of an event split because of its size
 * ({@linkcode splitEvent}): `continued: true` on every part but the last.
 */
export interface Continued {
  /** More of `text` follows in the next event, of the same type. */
  continued?: true;
}

/**
 * An event for the client (the protocol core's events, addresses as
 * {@linkcode WireAddress}). `peer-left`, `peer-lost` and `chat-closed` carry
 * the number of undelivered messages; that many `undelivered` events follow
 * them at once, one per message, in order. Events with a `text` may be split
 * into parts ({@linkcode Continued}). In `retransmitted`, `attempt` counts
 * retransmissions: 1 is the first retransmission (the second sending).
 */
export type ControlEvent =
  | { type: "invitation"; ip: string; port: number; name: string }
  | {
    type: "invitation-ended";
    ip: string;
    port: number;
    name: string;
    reason: "withdrawn" | "expired";
  }
  | { type: "chat-started"; ip: string; port: number; name: string }
  | { type: "declined"; ip: string; port: number; name: string }
  | ({ type: "busy"; ip: string; port: number; text: string } & Continued)
  | { type: "no-answer"; ip: string; port: number }
  | ({ type: "message"; name: string; text: string } & Continued)
  | { type: "delivered"; id: number }
  | {
    type: "retransmitted";
    id: number;
    /** Which retransmission this is: 1 = the first (the second sending). */
    attempt: number;
  }
  | {
    type: "peer-left";
    ip: string;
    port: number;
    name: string;
    undelivered: number;
  }
  | {
    type: "peer-lost";
    ip: string;
    port: number;
    name: string;
    undelivered: number;
  }
  | ({ type: "undelivered"; id: number; text: string } & Continued)
  | {
    type: "chat-closed";
    ip: string;
    port: number;
    name: string;
    undelivered: number;
  }
  | ({ type: "peer-error"; ip: string; port: number; text: string } & Continued)
  | { type: "daemon-stopping" };

/** The events that carry a `text` and may be split ({@linkcode splitEvent}). */
export type TextEvent = Extract<ControlEvent, { text: string }>;

/** An event message on the wire. */
export interface EventMessage {
  /** Protocol version. */
  v: typeof CONTROL_VERSION;
  /** Sequence number, from 1 per connection. */
  ev: number;
  /** The event. */
  event: ControlEvent;
}

/** Anything the daemon receives on the client port. */
export type ClientMessage = Request | EventAck;

/** Anything the client receives from the daemon. */
export type DaemonMessage = Reply | EventMessage;

/** Options of a {@linkcode ControlError}. */
export interface ControlErrorOptions {
  /** The machine-readable reason its error reply carries ({@linkcode ErrorReply.code}). */
  code?: ErrorCode;
}

/**
 * A control message that is not valid, or a command that failed in a way
 * the error reply must name with a {@linkcode ErrorCode}. `id` is the
 * request id when it could be read, so the error reply can name it.
 */
export class ControlError extends Error {
  /** The request id, when known. */
  readonly id: number | null;
  /** The reply's machine-readable reason, if it has one. */
  readonly code: ErrorCode | undefined;

  /** Creates the error with a message for the client's user. */
  constructor(
    message: string,
    id: number | null = null,
    options: ControlErrorOptions = {},
  ) {
    super(message);
    this.name = "ControlError";
    this.id = id;
    this.code = options.code;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes any control message as one datagram's bytes. */
export function encodeControl(
  message: ClientMessage | DaemonMessage,
): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/** The size of `text` inside a JSON string, in UTF-8 bytes (quotes not counted). */
function jsonTextSize(text: string): number {
  return encoder.encode(JSON.stringify(text)).length - 2;
}

/** {@linkcode jsonTextSize} of each one-unit character, measured once (0: not yet). */
const characterSizes = new Uint8Array(0x10000);

function characterSize(character: string): number {
  if (character.length > 1) return jsonTextSize(character);
  const code = character.charCodeAt(0);
  return characterSizes[code] ||= jsonTextSize(character);
}

/**
 * Splits `event` so that each part, sent as an event message with any event
 * number, is at most {@linkcode MAX_CONTROL_DATAGRAM} bytes: an event that
 * fits is returned alone; a larger one (only events with a `text` can be
 * larger) becomes consecutive events of the same type and fields carrying
 * consecutive slices of the text, every part but the last with
 * `continued: true`. Sizes are measured as encoded, escapes and UTF-8
 * included; slices never cut a character in two.
 *
 * @example
 * ```ts
 * import { MAX_CONTROL_DATAGRAM, splitEvent } from "./control.ts";
 * const text = "\uFFFD".repeat(60_000); // 3 bytes each in UTF-8
 * const parts = splitEvent({ type: "message", name: "bob", text });
 * console.log(parts.length); // 3
 * console.log(parts.map((p) => "continued" in p)); // [true, true, false]
 * ```
 */
export function splitEvent(event: ControlEvent): ControlEvent[] {
  const messageSize = (e: ControlEvent) =>
    encodeControl({ v: CONTROL_VERSION, ev: Number.MAX_SAFE_INTEGER, event: e })
      .length;
  if (!("text" in event) || messageSize(event) <= MAX_CONTROL_DATAGRAM) {
    return [event];
  }
  const budget = MAX_CONTROL_DATAGRAM -
    messageSize({ ...event, text: "", continued: true });
  const { continued, ...whole } = event;
  const text = event.text;
  const parts: TextEvent[] = [];
  let start = 0;
  let end = 0;
  let sliceSize = 0;
  for (const character of text) {
    const size = characterSize(character);
    if (sliceSize + size > budget) {
      parts.push({ ...whole, text: text.slice(start, end), continued: true });
      start = end;
      sliceSize = 0;
    }
    end += character.length;
    sliceSize += size;
  }
  const lastSlice = text.slice(start);
  parts.push(
    continued
      ? { ...whole, text: lastSlice, continued }
      : { ...whole, text: lastSlice },
  );
  return parts;
}

export { isIPv4, specialAddress } from "./address.ts";

/** How many characters of a client's value an error message quotes. */
const QUOTE_LIMIT = 40;

/**
 * `value` as JSON for an error message, cut to {@linkcode QUOTE_LIMIT}
 * characters with an ellipsis: an error reply must stay small whatever the
 * client sent.
 */
/**
 * A value as JSON, cut to {@linkcode QUOTE_LIMIT} characters with `…`, for
 * messages that quote what someone sent (never over one datagram).
 */
export function quote(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  const characters = Array.from(json);
  return characters.length <= QUOTE_LIMIT
    ? json
    : characters.slice(0, QUOTE_LIMIT - 1).join("") + "…";
}

/** Who parses: the daemon reads requests, the client reads daemon messages. */
type Reader = { what: "request"; self: "this daemon" } | {
  what: "daemon message";
  self: "this client";
};

const DAEMON_READS: Reader = { what: "request", self: "this daemon" };
const CLIENT_READS: Reader = { what: "daemon message", self: "this client" };

function parseJson(
  bytes: Uint8Array,
  reader: Reader,
): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new ControlError(
      `Malformed ${reader.what}: not a JSON object in UTF-8`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ControlError(`Malformed ${reader.what}: not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function checkVersion(
  message: Record<string, unknown>,
  reader: Reader,
  id: number | null,
) {
  if (message.v !== CONTROL_VERSION) {
    throw new ControlError(
      `Unsupported protocol version ${
        quote(message.v)
      }: ${reader.self} speaks version ${CONTROL_VERSION}`,
      id,
    );
  }
}

/**
 * Parses what a client sent: a request or an event acknowledgement.
 *
 * @throws {ControlError} for anything malformed, with the request id when it
 * could be read.
 */
export function parseClientMessage(bytes: Uint8Array): ClientMessage {
  const m = parseJson(bytes, DAEMON_READS);
  const id = isCount(m.id) ? m.id : null;
  checkVersion(m, DAEMON_READS, id);
  if (!("id" in m) && "ack" in m) {
    if (isCount(m.ack)) return { v: CONTROL_VERSION, ack: m.ack };
    throw new ControlError(
      "Malformed acknowledgement: `ack` must be a non-negative integer",
    );
  }
  if (id === null) {
    throw new ControlError(
      "Malformed request: `id` must be a non-negative integer",
    );
  }
  const base = { v: CONTROL_VERSION, id } as const;
  const field = (name: string): string => {
    const value = m[name];
    if (typeof value !== "string") {
      throw new ControlError(
        `Malformed request: \`${m.cmd}\` needs a string \`${name}\``,
        id,
      );
    }
    return value;
  };
  switch (m.cmd) {
    case "connect": {
      const name = field("name").trim();
      const problem = name === ""
        ? "User name must not be empty"
        : checkUserName(name);
      if (problem) throw new ControlError(problem, id);
      return { ...base, cmd: "connect", name };
    }
    case "invite": {
      const ip = field("ip");
      if (!isIPv4(ip)) {
        throw new ControlError(
          `${quote(ip)} is not an IPv4 address: give one such as 127.0.0.2`,
          id,
        );
      }
      const special = specialAddress(ip);
      if (special !== undefined) {
        throw new ControlError(
          `${ip} is ${special}, not a daemon's: invite one user's daemon IP address such as 127.0.0.2`,
          id,
        );
      }
      if (m.port === undefined) return { ...base, cmd: "invite", ip };
      if (!isCount(m.port) || m.port < 1 || m.port > 65535) {
        throw new ControlError("Port must be an integer from 1 to 65535", id);
      }
      return { ...base, cmd: "invite", ip, port: m.port };
    }
    case "send": {
      const text = field("text");
      const problem = checkText(text);
      if (problem) throw new ControlError(problem, id);
      return { ...base, cmd: "send", text };
    }
    case "wait":
    case "accept":
    case "decline":
    case "leave":
    case "quit":
    case "ping":
      return { ...base, cmd: m.cmd };
    default:
      throw new ControlError(`Unknown command ${quote(m.cmd)}`, id);
  }
}

/** What is wrong with an event's fields that the client relies on, if anything. */
function eventProblem(event: Record<string, unknown>): string | undefined {
  const type = event.type;
  if (typeof type !== "string") return "no type";
  const hasText = typeof event.text === "string";
  if ("continued" in event && (event.continued !== true || !hasText)) {
    return `\`continued\` must be true, and only on an event with a text (${type})`;
  }
  switch (type) {
    case "message":
    case "busy":
    case "peer-error":
      return hasText ? undefined : `${type} needs a string \`text\``;
    case "undelivered":
      return hasText && isCount(event.id)
        ? undefined
        : "undelivered needs a message `id` and a string `text`";
    case "peer-left":
    case "peer-lost":
    case "chat-closed":
      return isCount(event.undelivered)
        ? undefined
        : `${type} needs the number of \`undelivered\` messages`;
  }
  return undefined;
}

/**
 * Parses what the daemon sent: a reply or an event.
 *
 * @throws {ControlError} for anything malformed.
 */
export function parseDaemonMessage(bytes: Uint8Array): DaemonMessage {
  const m = parseJson(bytes, CLIENT_READS);
  checkVersion(m, CLIENT_READS, null);
  if (isCount(m.ev) && typeof m.event === "object" && m.event !== null) {
    const problem = eventProblem(m.event as Record<string, unknown>);
    if (problem !== undefined) {
      throw new ControlError(`Malformed event: ${problem}`);
    }
    return m as unknown as EventMessage;
  }
  if (m.ok === true && isCount(m.re)) return m as unknown as OkReply;
  if (
    m.ok === false && (isCount(m.re) || m.re === null) &&
    typeof m.error === "string" &&
    (m.code === undefined || typeof m.code === "string")
  ) {
    return m as unknown as ErrorReply;
  }
  throw new ControlError("Malformed daemon message");
}
