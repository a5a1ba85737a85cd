/**
 * The client–daemon link, version 2 (SPEC §9): the messages, their
 * schemas, and their encoding as lines. TCP to the daemon's IP, port
 * {@linkcode CLIENT_PORT}; UTF-8 JSON, one object per line ending in `\n`,
 * at most {@linkcode MAX_LINE_BYTES} bytes a line (framing: `lines.ts`).
 *
 * - Requests (client → daemon) carry `id` and `cmd`; the daemon answers each
 *   with one reply carrying `re` = that id, in request order. The first
 *   request is `hello` ({@linkcode HelloRequest}); its reply carries the
 *   version, the daemon's state and its limits ({@linkcode HelloReply}).
 * - Events (daemon → client) are `{"event":{"type":…}}`
 *   ({@linkcode LinkEvent}).
 * - Errors are replies with `ok: false`, a sentence for the user and
 *   sometimes a {@linkcode ErrorCode}.
 *
 * Both directions are parsed strictly ({@linkcode parseRequest} at the
 * daemon, {@linkcode parseDaemonMessage} at the client) against schemas
 * (valibot): every value has a bounded size, numbers are safe integers,
 * fields of the wrong type are refused, and fields the schema does not know
 * are ignored and never copied. Parsing throws nothing but
 * {@linkcode LinkError}, whatever the input.
 *
 * docs/PROTOCOL.md has the message table and an example exchange.
 *
 * @module
 */

// A full npm: specifier, so that mod.ts loads in projects without this
// deno.json (issue 7); the one place its version is set.
// deno-lint-ignore no-import-prefix
import * as v from "npm:valibot@1.5.0";
import { isIPv4 } from "../address.ts";
import type { Phase } from "../peer/session.ts";
import {
  checkText,
  checkUserName,
  MAX_PAYLOAD,
  USER_SIZE,
} from "../wire/datagram.ts";

/** The link version this build speaks (the `v` of `hello`). */
export const LINK_VERSION = 2;

/**
 * The longest line either end accepts, in bytes, `\n` not counted: a longer
 * one is a framing violation and the connection is closed (the daemon
 * first writes one error line). Every message this build sends is far
 * shorter: the longest, an event with a {@linkcode MAX_PAYLOAD}-character
 * text of escaped control characters, is under 400,000 bytes.
 */
export const MAX_LINE_BYTES = 524_288;

/** The UDP port daemons talk SIMP on, and the one a bare IP means (SPEC §1.1). */
export const SIMP_PORT = 7777;

/** The daemon's default client port (TCP), on the daemon's IP (SPEC §1.1). */
export const CLIENT_PORT = 7778;

/** The longest `error` text a client accepts in an error reply, in characters. */
export const MAX_ERROR_TEXT = 2000;

/** How many characters of a received value an error message quotes. */
export const QUOTE_LIMIT = 40;

// ------------------------------------------------------------------ types

/** The daemon's protocol phase as the client sees it: the engine's {@linkcode Phase}. */
export type LinkPhase = Phase;

/** The other user as the daemon shows it. */
export interface LinkPeer {
  /** The peer daemon's IPv4 address. */
  ip: string;
  /** Its UDP port. */
  port: number;
  /** The user's name (may be empty while inviting). */
  name: string;
}

/** What the daemon tells its client about itself in the hello reply. */
export interface DaemonState {
  /** The protocol phase. */
  phase: LinkPhase;
  /** The other user, when there is one. */
  peer?: LinkPeer;
}

/** The daemon's limits, in the hello reply. */
export interface LinkLimits {
  /**
   * How many `send`s may be outstanding (sent and not yet answered by
   * `delivered` or `undelivered`, or not yet replied to): a client that
   * keeps to it never gets `queue-full`.
   */
  queue: number;
  /** The longest message text, in characters (ASCII: bytes). */
  text: number;
}

/** The first request: the protocol version and the user's name. */
export interface HelloRequest {
  /** The request id (a non-negative safe integer). */
  id: number;
  /** The command. */
  cmd: "hello";
  /** The link version the client speaks ({@linkcode LINK_VERSION}). */
  v: number;
  /** The user's name (SPEC §2.3: printable ASCII, at most 32 bytes). */
  name: string;
}

/** Invite the user at ip (port {@linkcode SIMP_PORT} unless given). */
export interface InviteRequest {
  /** The request id. */
  id: number;
  /** The command. */
  cmd: "invite";
  /** The peer daemon's IPv4 address. */
  ip: string;
  /** Its UDP port, 1–65535; default {@linkcode SIMP_PORT}. */
  port?: number;
}

/** Send a chat message; the reply names it with `msgId`. */
export interface SendRequest {
  /** The request id. */
  id: number;
  /** The command. */
  cmd: "send";
  /** The text (ASCII, at most {@linkcode MAX_PAYLOAD} characters). */
  text: string;
}

/** A command without arguments. */
export interface PlainRequest {
  /** The request id. */
  id: number;
  /** The command. */
  cmd: "accept" | "decline" | "leave" | "quit";
}

/** Anything a client sends. */
export type Request = HelloRequest | InviteRequest | SendRequest | PlainRequest;

/** The name of a command. */
export type CommandName = Request["cmd"];

/** A request without its id, as a client asks for it. */
export type Command =
  | Omit<HelloRequest, "id">
  | Omit<InviteRequest, "id">
  | Omit<SendRequest, "id">
  | Omit<PlainRequest, "id">;

/** The successful answer to `hello`. */
export interface HelloReply {
  /** The id of the request answered. */
  re: number;
  /** Success. */
  ok: true;
  /** The link version (equal to the client's). */
  v: number;
  /** The daemon's state. */
  state: DaemonState;
  /** The daemon's limits. */
  limits: LinkLimits;
}

/** The successful answer to `send`. */
export interface SendReply {
  /** The id of the request answered. */
  re: number;
  /** Success. */
  ok: true;
  /** The message id that later events (`delivered`, …) name. */
  msgId: number;
}

/** The successful answer to the other commands. */
export interface OkReply {
  /** The id of the request answered. */
  re: number;
  /** Success. */
  ok: true;
}

/**
 * Why a request failed, for a client that acts on it rather than only
 * showing the error text ({@linkcode ErrorReply.code}):
 *
 * - `queue-full` — a `send` found the daemon's send queue full (SPEC §5.1);
 *   nothing was queued. A client that keeps to `limits.queue` never sees it.
 * - `version` — the `hello` named another link version; the connection is
 *   closed after this reply.
 * - `busy` — another client is connected; the connection is closed.
 * - `bad-request` — the line was not a request this daemon can read (not
 *   UTF-8, not a JSON object, an unknown command, a field of the wrong type);
 *   the connection goes on.
 */
export type ErrorCode = "queue-full" | "version" | "busy" | "bad-request";

/** The error codes, for checks. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze([
  "queue-full",
  "version",
  "busy",
  "bad-request",
]);

/** A failed request: `error` is a sentence for the user. */
export interface ErrorReply {
  /** The id of the request answered, or null when it could not be read. */
  re: number | null;
  /** Failure. */
  ok: false;
  /** What went wrong and what to do. */
  error: string;
  /**
   * The failure in machine-readable form, when a client is expected to act
   * on it. A client treats a code it does not know like an absent one.
   */
  code?: ErrorCode;
}

/** Any reply. */
export type Reply = HelloReply | SendReply | OkReply | ErrorReply;

/** The events that end a chat; each is followed by `undelivered` events. */
export type ChatEndType = "peer-left" | "peer-lost" | "chat-closed";

/**
 * An event for the client. `peer-left`, `peer-lost` and `chat-closed` carry
 * the number of undelivered messages; that many `undelivered` events follow
 * at once, one per message, in order. In `retransmitted`, `attempt` counts
 * retransmissions: 1 is the first (the second sending).
 *
 * Added in this version of link v2 (a client that does not know them reads
 * the rest: fields it does not know are ignored, an event type it does not
 * know is an error for that line only):
 * - `invite-retry` — our invitation's SYN was sent again (SPEC §4.5), no
 *   answer yet: `attempt` counts retransmissions as in `retransmitted`,
 *   `leftMs` is the time left until the invitation limit (SPEC §4.6).
 * - `busy-answered` — while we were busy (an invitation pending, inviting,
 *   in a chat), `name` at ip:port tried to invite us and was answered busy
 *   (SPEC §4.8). Sent at most once per inviter address and busy period, and
 *   only for answers the busy-answer budget let through (SPEC §7.3).
 * - `peer-reconnected` — the partner's daemon invited us again during the
 *   chat (it restarted: SPEC §4.5 answers it with SYN+ACK) — messages sent
 *   around the restart may have been missed on either side.
 * - `chat-started` with `atOnce: true` — our invitation was answered within
 *   `AT_ONCE_MS` (500 ms, `lib/peer/session.ts`) of its first SYN: too soon for a user to have
 *   accepted it, so the other daemon was still in a chat with us (it
 *   rejoined it) or accepts invitations by itself (SPEC §4.9).
 */
export type LinkEvent =
  | { type: "invitation"; ip: string; port: number; name: string }
  | {
    type: "invitation-ended";
    ip: string;
    port: number;
    name: string;
    reason: "withdrawn" | "expired";
  }
  | {
    type: "chat-started";
    ip: string;
    port: number;
    name: string;
    atOnce?: boolean;
  }
  | {
    type: "invite-retry";
    ip: string;
    port: number;
    attempt: number;
    leftMs: number;
  }
  | { type: "busy-answered"; ip: string; port: number; name: string }
  | { type: "peer-reconnected"; ip: string; port: number; name: string }
  | { type: "declined"; ip: string; port: number; name: string }
  | { type: "busy"; ip: string; port: number; text: string }
  | { type: "no-answer"; ip: string; port: number }
  | { type: "message"; name: string; text: string }
  | { type: "delivered"; id: number }
  | { type: "retransmitted"; id: number; attempt: number }
  | {
    type: ChatEndType;
    ip: string;
    port: number;
    name: string;
    undelivered: number;
  }
  | { type: "undelivered"; id: number; text: string }
  | { type: "peer-error"; ip: string; port: number; text: string }
  | { type: "daemon-stopping" };

/** The name of an event type. */
export type LinkEventType = LinkEvent["type"];

/** An event line. */
export interface EventMessage {
  /** The event. */
  event: LinkEvent;
}

/** Anything the daemon sends. */
export type DaemonMessage = Reply | EventMessage;

/** Options of a {@linkcode LinkError}. */
export interface LinkErrorOptions {
  /** The request id its error reply answers, when it could be read. */
  re?: number | null;
  /** The reply's machine-readable reason. */
  code?: ErrorCode;
}

/**
 * A line that is not a valid message, or a request that failed in a way
 * its error reply must carry: the message is a sentence for the user, `re`
 * the request id when it could be read, `code` the error code if any.
 */
export class LinkError extends Error {
  /** The request id, when known. */
  readonly re: number | null;
  /** The reply's machine-readable reason, if it has one. */
  readonly code: ErrorCode | undefined;

  /** Creates the error with a message for the user. */
  constructor(message: string, options: LinkErrorOptions = {}) {
    super(message);
    this.name = "LinkError";
    this.re = options.re ?? null;
    this.code = options.code;
  }
}

// ------------------------------------------------------------- encoding

/**
 * A request as one line (JSON and `\n`).
 *
 * @example
 * ```ts
 * import { encodeRequest } from "./protocol.ts";
 * encodeRequest({ id: 1, cmd: "hello", v: 2, name: "alice" });
 * // '{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'
 * ```
 */
export function encodeRequest(request: Request): string {
  return JSON.stringify(request) + "\n";
}

/**
 * A reply or an event as one line (JSON and `\n`).
 *
 * @example
 * ```ts
 * import { encodeDaemonMessage } from "./protocol.ts";
 * encodeDaemonMessage({ event: { type: "delivered", id: 3 } });
 * // '{"event":{"type":"delivered","id":3}}\n'
 * ```
 */
export function encodeDaemonMessage(message: DaemonMessage): string {
  return JSON.stringify(message) + "\n";
}

/**
 * A received value as an error message may show it: a string as JSON cut
 * to {@linkcode QUOTE_LIMIT} characters with `…`, a number or a literal as
 * itself, an object or an array by its kind only (never its contents), so
 * an error message stays short whatever was sent.
 *
 * @example
 * ```ts
 * import { quote } from "./protocol.ts";
 * quote("x".repeat(100)); // '"xxx…x…"' (40 characters)
 * quote([[[]]]); // "an array"
 * ```
 */
export function quote(value: unknown): string {
  switch (typeof value) {
    case "string": {
      const json = JSON.stringify(
        value.length > 4 * QUOTE_LIMIT
          ? value.slice(0, 4 * QUOTE_LIMIT)
          : value,
      );
      const characters = Array.from(json);
      return characters.length <= QUOTE_LIMIT && value.length <= 4 * QUOTE_LIMIT
        ? json
        : characters.slice(0, QUOTE_LIMIT - 1).join("") + "…";
    }
    case "number":
    case "boolean":
      return quote(String(value)).slice(1, -1);
    case "undefined":
      return "nothing";
    case "object":
      return value === null
        ? "null"
        : Array.isArray(value)
        ? "an array"
        : "an object";
    default:
      return typeof value;
  }
}

// -------------------------------------------------------------- schemas

const COUNT_MESSAGE = "must be a non-negative integer";

const count = v.pipe(
  v.number(COUNT_MESSAGE),
  v.safeInteger(COUNT_MESSAGE),
  v.minValue(0, COUNT_MESSAGE),
);

const port = v.pipe(
  v.number("must be an integer from 1 to 65535"),
  v.integer("must be an integer from 1 to 65535"),
  v.minValue(1, "must be an integer from 1 to 65535"),
  v.maxValue(65_535, "must be an integer from 1 to 65535"),
);

const ipv4 = v.pipe(
  v.string("must be an IPv4 address such as 127.0.0.2"),
  v.maxLength(15, "must be an IPv4 address such as 127.0.0.2"),
  v.check(isIPv4, "must be an IPv4 address such as 127.0.0.2"),
);

/** A name as received from a peer: at most 32 characters, any of them. */
const peerName = v.pipe(
  v.string("must be a string"),
  v.maxLength(USER_SIZE, `must be at most ${USER_SIZE} characters`),
);

/** A text as received from a peer or ours: at most MAX_PAYLOAD characters. */
const anyText = v.pipe(
  v.string("must be a string"),
  v.maxLength(MAX_PAYLOAD, `must be at most ${MAX_PAYLOAD} characters`),
);

const userName = v.pipe(
  v.string("must be a string"),
  v.maxLength(USER_SIZE, `must be at most ${USER_SIZE} characters`),
  v.check(
    (name: string) => name.trim() !== "",
    "User name must not be empty: give one of 1 to 32 ASCII characters",
  ),
  v.check(
    (name: string) => checkUserName(name) === undefined,
    (issue) => checkUserName(issue.input as string) ?? "User name is not valid",
  ),
);

const chatText = v.pipe(
  v.string("must be a string"),
  v.check(
    (text: string) => checkText(text) === undefined,
    (issue) => checkText(issue.input as string) ?? "Message is not valid",
  ),
);

/** The request with command `K`. */
type RequestOf<K extends CommandName> = K extends PlainRequest["cmd"]
  ? { id: number; cmd: K }
  : Extract<Request, { cmd: K }>;

/** The event of type `K`. */
type EventOf<K extends LinkEventType> = K extends ChatEndType
  ? Extract<LinkEvent, { type: ChatEndType }> & { type: K }
  : Extract<LinkEvent, { type: K }>;

const requestSchemas = {
  hello: v.object({
    id: count,
    cmd: v.literal("hello"),
    v: v.pipe(
      v.number("must be the link version, an integer"),
      v.safeInteger("must be the link version, an integer"),
    ),
    name: userName,
  }),
  invite: v.object({
    id: count,
    cmd: v.literal("invite"),
    ip: ipv4,
    port: v.optional(port),
  }),
  send: v.object({ id: count, cmd: v.literal("send"), text: chatText }),
  accept: v.object({ id: count, cmd: v.literal("accept") }),
  decline: v.object({ id: count, cmd: v.literal("decline") }),
  leave: v.object({ id: count, cmd: v.literal("leave") }),
  quit: v.object({ id: count, cmd: v.literal("quit") }),
} satisfies { [K in CommandName]: v.GenericSchema<unknown, RequestOf<K>> };

/** The command names, in the order error messages list them. */
export const COMMANDS: readonly CommandName[] = Object.freeze(
  Object.keys(requestSchemas) as CommandName[],
);

const peerFields = { ip: ipv4, port };

const eventSchemas = {
  invitation: v.object({
    type: v.literal("invitation"),
    ...peerFields,
    name: peerName,
  }),
  "invitation-ended": v.object({
    type: v.literal("invitation-ended"),
    ...peerFields,
    name: peerName,
    reason: v.picklist(
      ["withdrawn", "expired"],
      'must be "withdrawn" or "expired"',
    ),
  }),
  "chat-started": v.object({
    type: v.literal("chat-started"),
    ...peerFields,
    name: peerName,
    atOnce: v.optional(v.boolean("must be true or false")),
  }),
  "invite-retry": v.object({
    type: v.literal("invite-retry"),
    ...peerFields,
    attempt: v.pipe(count, v.minValue(1, "must be at least 1")),
    leftMs: count,
  }),
  "busy-answered": v.object({
    type: v.literal("busy-answered"),
    ...peerFields,
    name: peerName,
  }),
  "peer-reconnected": v.object({
    type: v.literal("peer-reconnected"),
    ...peerFields,
    name: peerName,
  }),
  declined: v.object({
    type: v.literal("declined"),
    ...peerFields,
    name: peerName,
  }),
  busy: v.object({ type: v.literal("busy"), ...peerFields, text: anyText }),
  "no-answer": v.object({ type: v.literal("no-answer"), ...peerFields }),
  message: v.object({
    type: v.literal("message"),
    name: peerName,
    text: anyText,
  }),
  delivered: v.object({ type: v.literal("delivered"), id: count }),
  retransmitted: v.object({
    type: v.literal("retransmitted"),
    id: count,
    attempt: v.pipe(count, v.minValue(1, "must be at least 1")),
  }),
  "peer-left": v.object({
    type: v.literal("peer-left"),
    ...peerFields,
    name: peerName,
    undelivered: count,
  }),
  "peer-lost": v.object({
    type: v.literal("peer-lost"),
    ...peerFields,
    name: peerName,
    undelivered: count,
  }),
  "chat-closed": v.object({
    type: v.literal("chat-closed"),
    ...peerFields,
    name: peerName,
    undelivered: count,
  }),
  undelivered: v.object({
    type: v.literal("undelivered"),
    id: count,
    text: anyText,
  }),
  "peer-error": v.object({
    type: v.literal("peer-error"),
    ...peerFields,
    text: anyText,
  }),
  "daemon-stopping": v.object({ type: v.literal("daemon-stopping") }),
} satisfies { [K in LinkEventType]: v.GenericSchema<unknown, EventOf<K>> };

const stateSchema = v.object({
  phase: v.picklist(
    ["idle", "inviting", "invited", "accepting", "established", "closing"],
    "must be a known phase",
  ),
  peer: v.optional(
    v.object({ ip: ipv4, port, name: peerName }, "must be an object"),
  ),
});

const helloReplySchema = v.object({
  re: count,
  ok: v.literal(true),
  v: v.pipe(
    v.number("must be the link version, an integer"),
    v.safeInteger("must be the link version, an integer"),
  ),
  state: v.object(
    { phase: stateSchema.entries.phase, peer: stateSchema.entries.peer },
    "must be an object",
  ),
  limits: v.object({ queue: count, text: count }, "must be an object"),
});

const sendReplySchema = v.object({
  re: count,
  ok: v.literal(true),
  msgId: count,
});

const okReplySchema = v.object({ re: count, ok: v.literal(true) });

const errorReplySchema = v.object({
  re: v.nullable(count),
  ok: v.literal(false),
  error: v.pipe(
    v.string("must be a string"),
    v.maxLength(MAX_ERROR_TEXT, `must be at most ${MAX_ERROR_TEXT} characters`),
  ),
  code: v.optional(
    v.pipe(
      v.string("must be a string"),
      v.maxLength(64, "must be at most 64 characters"),
      // A code this client does not know counts as none.
      v.transform((code: string) =>
        (ERROR_CODES as readonly string[]).includes(code)
          ? code as ErrorCode
          : undefined
      ),
    ),
  ),
});

// -------------------------------------------------------------- parsing

const PARSE_CONFIG = { abortEarly: true } as const;

/** A JSON object read from `line`, or a LinkError naming `what`. */
function parseObject(line: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new LinkError(
      `Bad ${what}: not JSON (one JSON object per line is expected)`,
      { code: "bad-request" },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LinkError(
      `Bad ${what}: ${quote(value)} is not a JSON object`,
      { code: "bad-request" },
    );
  }
  return value as Record<string, unknown>;
}

/** The first issue of a failed parse as `` `path` message `` (got …). */
function describeIssue(
  issues: readonly v.BaseIssue<unknown>[],
): string {
  const issue = issues[0];
  const path = (issue.path ?? []).map((item) => String(item.key)).join(".");
  if (issue.input === undefined) return `\`${path}\` is missing`;
  // A check's own message is a whole sentence: "User name must not …".
  if (/^[A-Z]/.test(issue.message)) return issue.message;
  const message = issue.message.length > 200
    ? issue.message.slice(0, 199) + "…"
    : issue.message;
  return `\`${path}\` ${message} (got ${quote(issue.input)})`;
}

/** Reads `m[key]` only when it is the object's own property. */
function own(m: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(m, key) ? m[key] : undefined;
}

/**
 * Parses one line a client sent (without its `\n`) into a request.
 *
 * @throws {LinkError} with code `bad-request` and a message for the user
 * for anything that is not a valid request: `re` is the request id when it
 * could be read, null otherwise. Nothing else is ever thrown.
 *
 * @example
 * ```ts
 * import { parseRequest } from "./protocol.ts";
 * const r = parseRequest('{"id":1,"cmd":"hello","v":2,"name":"alice"}');
 * console.log(r.cmd); // "hello"
 * ```
 */
export function parseRequest(line: string): Request {
  const m = parseObject(line, "request");
  const id = v.safeParse(count, own(m, "id"), PARSE_CONFIG);
  if (!id.success) {
    throw new LinkError(
      `Bad request: \`id\` must be a non-negative integer (got ${
        quote(own(m, "id"))
      })`,
      { code: "bad-request" },
    );
  }
  const re = id.output;
  const cmd = own(m, "cmd");
  if (typeof cmd !== "string" || !Object.hasOwn(requestSchemas, cmd)) {
    const what = cmd === undefined
      ? "Missing `cmd`"
      : typeof cmd !== "string"
      ? `Bad request: \`cmd\` must be a string (got ${quote(cmd)})`
      : `Unknown command ${quote(cmd)}`;
    throw new LinkError(
      `${what}: use one of ${COMMANDS.join(", ")}`,
      { re, code: "bad-request" },
    );
  }
  const schema = requestSchemas[cmd as CommandName];
  const result = v.safeParse(schema, m, PARSE_CONFIG);
  if (!result.success) {
    throw new LinkError(
      `Bad ${cmd} request: ${describeIssue(result.issues)}`,
      { re, code: "bad-request" },
    );
  }
  return result.output;
}

/**
 * Parses one line the daemon sent (without its `\n`) into a reply or an
 * event. Which reply it is follows from its fields: `v` (and `state`,
 * `limits`) for a hello reply, `msgId` for a send reply; the client checks
 * that it is the kind its request expects.
 *
 * @throws {LinkError} with a message for the user for anything that is not
 * a valid daemon message. Nothing else is ever thrown.
 *
 * @example
 * ```ts
 * import { parseDaemonMessage } from "./protocol.ts";
 * const m = parseDaemonMessage('{"event":{"type":"delivered","id":3}}');
 * console.log("event" in m && m.event.type); // "delivered"
 * ```
 */
export function parseDaemonMessage(line: string): DaemonMessage {
  const m = parseObject(line, "daemon message");
  if (Object.hasOwn(m, "event")) {
    const event = m.event;
    if (typeof event !== "object" || event === null || Array.isArray(event)) {
      throw new LinkError(
        `Bad event: \`event\` must be an object (got ${quote(event)})`,
      );
    }
    const type = own(event as Record<string, unknown>, "type");
    if (typeof type !== "string" || !Object.hasOwn(eventSchemas, type)) {
      throw new LinkError(`Unknown event type ${quote(type)}`);
    }
    const schema = eventSchemas[type as LinkEventType];
    const result = v.safeParse(schema, event, PARSE_CONFIG);
    if (!result.success) {
      throw new LinkError(
        `Bad ${type} event: ${describeIssue(result.issues)}`,
      );
    }
    return { event: result.output };
  }
  const ok = own(m, "ok");
  if (ok === false) return checked(errorReplySchema, m, "error reply");
  if (ok !== true) {
    throw new LinkError(
      "Bad daemon message: neither an event nor a reply (`ok` must be true or false)",
    );
  }
  if (Object.hasOwn(m, "v") || Object.hasOwn(m, "state")) {
    return checked(helloReplySchema, m, "hello reply");
  }
  if (Object.hasOwn(m, "msgId")) {
    return checked(sendReplySchema, m, "send reply");
  }
  return checked(okReplySchema, m, "reply");
}

/** `m` parsed with `schema`, or a LinkError naming `what`. */
function checked<T>(
  schema: v.GenericSchema<unknown, T>,
  m: unknown,
  what: string,
): T {
  const result = v.safeParse(schema, m, PARSE_CONFIG);
  if (!result.success) {
    throw new LinkError(`Bad ${what}: ${describeIssue(result.issues)}`);
  }
  return withoutUndefined(result.output);
}

/**
 * `value` without the keys whose value is undefined (optional fields that
 * were absent, an unknown error code), at the top and one level down.
 */
function withoutUndefined<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (record[key] === undefined) delete record[key];
      else withoutUndefinedShallow(record[key]);
    }
  }
  return value;
}

function withoutUndefinedShallow(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (record[key] === undefined) delete record[key];
  }
}
