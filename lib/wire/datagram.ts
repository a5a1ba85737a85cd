/**
 * The SIMP wire codec (SPEC §2): pure functions between datagram values and
 * bytes. Strict on structure, liberal on text; what we send is strictly
 * ASCII.
 *
 * @module
 */

/** Datagram Type field values (SPEC §2). */
export const Type = {
  /** Control datagram: ERR, SYN, ACK, FIN, SYN+ACK. */
  CONTROL: 0x01,
  /** Chat datagram carrying a message. */
  CHAT: 0x02,
} as const;

/** A Type field value. */
export type Type = typeof Type[keyof typeof Type];

/** Operation field values (SPEC §2). */
export const Op = {
  /** Control: error, the payload is the error text. */
  ERR: 0x01,
  /** Control: invitation (connection request). */
  SYN: 0x02,
  /** Control: acknowledgement. */
  ACK: 0x04,
  /** Control: accept an invitation (SYN|ACK). */
  SYN_ACK: 0x06,
  /** Control: teardown, or declining an invitation. */
  FIN: 0x08,
  /** Chat: the only operation of a chat datagram. */
  CHAT: 0x01,
} as const;

/** An Operation field value. */
export type Op = typeof Op[keyof typeof Op];

/** A sequence bit (SPEC §3). */
export type Seq = 0 | 1;

/** Size of the fixed header in bytes. */
export const HEADER_SIZE = 39;
/** Size of the User field in bytes. */
export const USER_SIZE = 32;
/** Largest payload that fits in one UDP datagram: 65,507 − 39 bytes (§2.5). */
export const MAX_PAYLOAD = 65_507 - HEADER_SIZE;
/** The exact busy answer text of SPEC §4.8. */
export const BUSY_TEXT = "User already in another chat";

/** A control datagram (Type 0x01). */
export interface ControlDatagram {
  /** Always {@linkcode Type.CONTROL}. */
  type: typeof Type.CONTROL;
  /** ERR, SYN, ACK, SYN_ACK or FIN. */
  op:
    | typeof Op.ERR
    | typeof Op.SYN
    | typeof Op.ACK
    | typeof Op.SYN_ACK
    | typeof Op.FIN;
  /** The sequence bit. */
  seq: Seq;
  /** The sender's user name (may be empty on control datagrams). */
  user: string;
  /** Error text for ERR; empty for every other operation (§2.4). */
  payload: string;
}

/** A chat datagram (Type 0x02, Operation 0x01). */
export interface ChatDatagram {
  /** Always {@linkcode Type.CHAT}. */
  type: typeof Type.CHAT;
  /** Always {@linkcode Op.CHAT}. */
  op: typeof Op.CHAT;
  /** The sequence bit. */
  seq: Seq;
  /** The sender's user name, never empty. */
  user: string;
  /** The message text. */
  payload: string;
}

/** Any SIMP datagram. */
export type Datagram = ControlDatagram | ChatDatagram;

/** The reasons a received datagram is malformed (SPEC §2 decoding rules). */
export type MalformedReason =
  | "too-short"
  | "length-mismatch"
  | "unknown-type"
  | "unknown-operation"
  | "bad-sequence"
  | "empty-user";

/**
 * Thrown by {@linkcode decodeDatagram} for bytes that break a decoding rule of
 * SPEC §2. Such a datagram is dropped, counted and never answered.
 *
 * @example
 * ```ts
 * import { decodeDatagram, MalformedDatagramError } from "./datagram.ts";
 * try {
 *   decodeDatagram(new Uint8Array(10));
 * } catch (error) {
 *   if (error instanceof MalformedDatagramError) console.log(error.reason);
 *   // "too-short"
 * }
 * ```
 */
export class MalformedDatagramError extends Error {
  /** Which rule was broken. */
  readonly reason: MalformedReason;
  /** The rule of SPEC §2 that was broken, e.g. `§2.1`. */
  readonly rule: string;

  /** Creates the error for a broken rule. */
  constructor(reason: MalformedReason, detail: string) {
    const rule = reason === "empty-user" ? "§2.2" : "§2.1";
    super(`Malformed datagram (${rule} ${reason}): ${detail}`);
    this.name = "MalformedDatagramError";
    this.reason = reason;
    this.rule = rule;
  }
}

/**
 * Thrown by {@linkcode encodeDatagram} (and the validators) for a datagram
 * that SPEC §2 forbids us to send: the message says what to change.
 *
 * @example
 * ```ts
 * import { encodeDatagram, InvalidDatagramError, Op, Type } from "./datagram.ts";
 * try {
 *   encodeDatagram({ type: Type.CHAT, op: Op.CHAT, seq: 0, user: "a", payload: "é" });
 * } catch (error) {
 *   console.log(error instanceof InvalidDatagramError); // true
 * }
 * ```
 */
export class InvalidDatagramError extends Error {
  /** Creates the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidDatagramError";
  }
}

/** Any character outside 7-bit ASCII. */
const NON_ASCII = /[\x80-\uffff]/;
const NON_ASCII_ALL = /[\x80-\uffff]/g;
/** The first non-ASCII character, a whole code point (for messages). */
const NON_ASCII_CHAR = /[\x80-\u{10ffff}]/u;

const CONTROL_OPS: ReadonlySet<number> = new Set([
  Op.ERR,
  Op.SYN,
  Op.ACK,
  Op.SYN_ACK,
  Op.FIN,
]);

const OP_NAMES: Readonly<Record<number, string>> = {
  [Op.ERR]: "ERR",
  [Op.SYN]: "SYN",
  [Op.ACK]: "ACK",
  [Op.SYN_ACK]: "SYN+ACK",
  [Op.FIN]: "FIN",
};

/**
 * A short name for a datagram's operation: `SYN`, `SYN+ACK`, `ACK`, `FIN`,
 * `ERR` or `CHAT`.
 */
export function opName(d: Datagram): string {
  return d.type === Type.CHAT ? "CHAT" : OP_NAMES[d.op];
}

/**
 * A one-line description of a datagram for traces and logs, e.g.
 * `SYN seq=0 user=alice` or `CHAT seq=1 user=bob "hello"`.
 *
 * @example
 * ```ts
 * import { describeDatagram, Op, Type } from "./datagram.ts";
 * describeDatagram({ type: Type.CHAT, op: Op.CHAT, seq: 1, user: "bob", payload: "hello" });
 * // 'CHAT seq=1 user=bob "hello"'
 * ```
 */
export function describeDatagram(d: Datagram): string {
  const text = d.type === Type.CHAT || d.op === Op.ERR
    ? ` ${JSON.stringify(d.payload)}`
    : "";
  return `${opName(d)} seq=${d.seq} user=${d.user}${text}`;
}

/**
 * Checks a user name we are about to send (§2.2, §2.3): printable ASCII, at
 * most 32 bytes, no trailing space (it would be trimmed by the receiver).
 * Returns an error message for the user, or `undefined` when the name is fine.
 *
 * @example
 * ```ts
 * import { checkUserName } from "./datagram.ts";
 * checkUserName("alice"); // undefined
 * checkUserName("x".repeat(33)); // "User name is 33 characters long; the limit is 32"
 * ```
 */
export function checkUserName(name: string): string | undefined {
  if (name.length > USER_SIZE) {
    return `User name is ${name.length} characters long; the limit is ${USER_SIZE}`;
  }
  if (!/^[\x20-\x7e]*$/.test(name)) {
    return "User name must be plain ASCII letters, digits and punctuation";
  }
  if (name.endsWith(" ")) {
    return "User name must not end with a space";
  }
  return undefined;
}

/**
 * Checks a text (chat message or error text) we are about to send (§2.3,
 * §2.5): ASCII only and at most {@linkcode MAX_PAYLOAD} bytes. Returns an
 * error message for the user, or `undefined` when the text is fine.
 *
 * @example
 * ```ts
 * import { checkText } from "./datagram.ts";
 * checkText("hello"); // undefined
 * checkText("café"); // 'Message contains the non-ASCII character "é"; SIMP carries ASCII only'
 * ```
 */
export function checkText(text: string): string | undefined {
  if (text.length > MAX_PAYLOAD) {
    return `Message is ${text.length} bytes long; the limit is ${MAX_PAYLOAD}`;
  }
  if (NON_ASCII.test(text)) {
    const bad = text.match(NON_ASCII_CHAR)?.[0];
    return `Message contains the non-ASCII character "${bad}"; SIMP carries ASCII only`;
  }
  return undefined;
}

/**
 * Encodes a datagram into its wire bytes (SPEC §2).
 *
 * @throws {InvalidDatagramError} for anything SPEC §2 forbids us to send.
 * @example
 * ```ts
 * import { encodeDatagram, Op, Type } from "./datagram.ts";
 * const bytes = encodeDatagram({
 *   type: Type.CONTROL, op: Op.SYN, seq: 0, user: "alice", payload: "",
 * });
 * console.log(bytes.length); // 39
 * ```
 */
export function encodeDatagram(d: Datagram): Uint8Array {
  if (d.type === Type.CHAT) {
    if (d.op !== Op.CHAT) {
      throw new InvalidDatagramError(
        `Chat datagrams have Operation 0x01, not 0x${
          hex((d as { op: number }).op)
        }`,
      );
    }
    if (d.user === "") {
      throw new InvalidDatagramError("Chat datagrams need a user name");
    }
  } else if (d.type === Type.CONTROL) {
    if (!CONTROL_OPS.has(d.op)) {
      throw new InvalidDatagramError(
        `Control Operation 0x${hex(d.op)} does not exist`,
      );
    }
    if (d.op !== Op.ERR && d.payload !== "") {
      throw new InvalidDatagramError(
        `${OP_NAMES[d.op]} datagrams carry no payload`,
      );
    }
  } else {
    throw new InvalidDatagramError(
      `Type 0x${hex((d as { type: number }).type)} does not exist`,
    );
  }
  if (d.seq !== 0 && d.seq !== 1) {
    throw new InvalidDatagramError(
      `Sequence must be 0 or 1, not ${String(d.seq)}`,
    );
  }
  const nameError = checkUserName(d.user);
  if (nameError) throw new InvalidDatagramError(nameError);
  const textError = checkText(d.payload);
  if (textError) throw new InvalidDatagramError(textError);

  const bytes = new Uint8Array(HEADER_SIZE + d.payload.length);
  bytes[0] = d.type;
  bytes[1] = d.op;
  bytes[2] = d.seq;
  for (let i = 0; i < d.user.length; i++) bytes[3 + i] = d.user.charCodeAt(i);
  new DataView(bytes.buffer).setUint32(35, d.payload.length);
  for (let i = 0; i < d.payload.length; i++) {
    bytes[HEADER_SIZE + i] = d.payload.charCodeAt(i);
  }
  return bytes;
}

/**
 * Decodes wire bytes into a datagram (SPEC §2): strict on structure, liberal
 * on text (bytes ≥ 0x80 become U+FFFD; the name ends at the first 0x00 and
 * trailing spaces are trimmed; a payload on SYN, ACK, FIN or SYN+ACK is
 * ignored).
 *
 * @throws {MalformedDatagramError} when a decoding rule of SPEC §2 is broken;
 * it never throws anything else.
 *
 * @example
 * ```ts
 * import { decodeDatagram, encodeDatagram, Op, Type } from "./datagram.ts";
 * const bytes = encodeDatagram({
 *   type: Type.CHAT, op: Op.CHAT, seq: 0, user: "alice", payload: "hi",
 * });
 * const datagram = decodeDatagram(bytes);
 * console.log(datagram.user, datagram.payload); // "alice" "hi"
 * ```
 */
export function decodeDatagram(bytes: Uint8Array): Datagram {
  if (bytes.length < HEADER_SIZE) {
    throw new MalformedDatagramError(
      "too-short",
      `${bytes.length} bytes, the header alone is ${HEADER_SIZE}`,
    );
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    .getUint32(35);
  if (length !== bytes.length - HEADER_SIZE) {
    throw new MalformedDatagramError(
      "length-mismatch",
      `Length field says ${length}, ${bytes.length - HEADER_SIZE} bytes follow`,
    );
  }
  const type = bytes[0];
  const op = bytes[1];
  const seq = bytes[2];
  if (type !== Type.CONTROL && type !== Type.CHAT) {
    throw new MalformedDatagramError("unknown-type", `Type 0x${hex(type)}`);
  }
  if (type === Type.CHAT ? op !== Op.CHAT : !CONTROL_OPS.has(op)) {
    throw new MalformedDatagramError(
      "unknown-operation",
      `Operation 0x${hex(op)} for Type 0x${hex(type)}`,
    );
  }
  if (seq !== 0 && seq !== 1) {
    throw new MalformedDatagramError("bad-sequence", `Sequence ${seq}`);
  }
  let end = 3;
  while (end < 3 + USER_SIZE && bytes[end] !== 0) end++;
  while (end > 3 && bytes[end - 1] === 0x20) end--;
  const user = asciiText(bytes, 3, end);
  if (type === Type.CHAT) {
    if (user === "") {
      throw new MalformedDatagramError(
        "empty-user",
        "chat datagram without a user name",
      );
    }
    return {
      type,
      op: Op.CHAT,
      seq,
      user,
      payload: asciiText(bytes, HEADER_SIZE, bytes.length),
    };
  }
  return {
    type: Type.CONTROL,
    op: op as ControlDatagram["op"],
    seq,
    user,
    payload: op === Op.ERR ? asciiText(bytes, HEADER_SIZE, bytes.length) : "",
  };
}

/** Decodes one character per byte (WHATWG "latin1" is windows-1252: 0x00–0x7F stay ASCII, every byte ≥ 0x80 becomes a non-ASCII character). */
const BYTES_AS_CHARS = new TextDecoder("latin1");

/** Bytes as text, each byte ≥ 0x80 shown as U+FFFD (§2.3). */
function asciiText(bytes: Uint8Array, start: number, end: number): string {
  const text = BYTES_AS_CHARS.decode(bytes.subarray(start, end));
  return NON_ASCII.test(text) ? text.replace(NON_ASCII_ALL, "\ufffd") : text;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}
