/**
 * A small SIMP codec of the conformance battery's own, written from the
 * table of SPEC §2 alone. It deliberately shares nothing with
 * `lib/wire/datagram.ts`: the battery judges simp too, so it must not take
 * simp's reading of the wire for granted. It builds datagrams byte by byte
 * (also broken ones, for the §2.1 checks), reads them back leniently and says
 * what, if anything, makes one malformed.
 *
 * @module
 */

/** The header's size in bytes (§2). */
export const HEADER = 39;
/** The User field's size in bytes (§2). */
export const USER_FIELD = 32;
/** The largest datagram (§2.5). */
export const MAX_DATAGRAM = 65_507;

/** Type `0x01`: control (§2). */
export const CONTROL = 0x01;
/** Type `0x02`: chat (§2). */
export const CHAT = 0x02;

/** Control operation ERR (§2). */
export const ERR = 0x01;
/** Control operation SYN (§2). */
export const SYN = 0x02;
/** Control operation ACK (§2). */
export const ACK = 0x04;
/** Control operation SYN+ACK, SYN|ACK (§2). */
export const SYN_ACK = 0x06;
/** Control operation FIN (§2). */
export const FIN = 0x08;
/** The only chat operation (§2). */
export const CHAT_OP = 0x01;

/** The busy answer's exact text (§4.8). */
export const BUSY_TEXT = "User already in another chat";

/** The fields of a datagram to build; anything may be out of range. */
export interface Fields {
  /** Type byte. */
  type: number;
  /** Operation byte. */
  op: number;
  /** Sequence byte. */
  seq: number;
  /** The User field's bytes before the NUL padding (characters ≤ 0xFF). */
  user?: string;
  /** The payload (characters ≤ 0xFF, one byte each). */
  payload?: string;
  /** Overrides the Length field (for malformed datagrams). */
  length?: number;
}

/** One byte per character; characters above 0xFF are refused. */
export function bytesOf(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) {
      throw new RangeError(
        `Character ${JSON.stringify(text[i])} is not a byte`,
      );
    }
    out[i] = code;
  }
  return out;
}

/** Header (Type, Operation, Sequence, User NUL-padded, Length BE) + payload. */
export function encode(f: Fields): Uint8Array {
  const user = bytesOf(f.user ?? "");
  const payload = bytesOf(f.payload ?? "");
  if (user.length > USER_FIELD) {
    throw new RangeError(`User ${JSON.stringify(f.user)} is over 32 bytes`);
  }
  const out = new Uint8Array(HEADER + payload.length);
  out[0] = f.type;
  out[1] = f.op;
  out[2] = f.seq;
  out.set(user, 3);
  new DataView(out.buffer).setUint32(35, f.length ?? payload.length, false);
  out.set(payload, HEADER);
  return out;
}

/** A control datagram (§2). */
export function control(
  op: number,
  seq: number,
  user: string,
  payload = "",
): Uint8Array {
  return encode({ type: CONTROL, op, seq, user, payload });
}

/** A chat datagram (§2). */
export function chat(seq: number, user: string, text: string): Uint8Array {
  return encode({ type: CHAT, op: CHAT_OP, seq, user, payload: text });
}

/** A datagram read leniently: whatever its bytes say. */
export interface Parsed {
  /** Type byte. */
  type: number;
  /** Operation byte. */
  op: number;
  /** Sequence byte. */
  seq: number;
  /** The name: bytes before the first NUL, trailing spaces trimmed (§2.2). */
  user: string;
  /** The Length field. */
  length: number;
  /** The bytes after the header, one character per byte. */
  payload: string;
}

/** Reads the header of `bytes`, or `undefined` when shorter than 39 bytes. */
export function parse(bytes: Uint8Array): Parsed | undefined {
  if (bytes.length < HEADER) return undefined;
  const field = bytes.subarray(3, 3 + USER_FIELD);
  const nul = field.indexOf(0);
  const user = latin1(field.subarray(0, nul < 0 ? USER_FIELD : nul))
    .replace(/ +$/, "");
  return {
    type: bytes[0],
    op: bytes[1],
    seq: bytes[2],
    user,
    length: new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
      .getUint32(35, false),
    payload: latin1(bytes.subarray(HEADER)),
  };
}

/**
 * What makes a datagram the target sent break SPEC §2, or `undefined` when
 * it is well-formed: the decoding rules of §2.1 and §2.2, plus what a sender
 * must do (§2.3: strictly ASCII; the table: no payload but on chat and ERR,
 * the User field NUL-padded).
 */
export function problemOf(bytes: Uint8Array): string | undefined {
  const d = parse(bytes);
  if (d === undefined) {
    return `only ${bytes.length} bytes, fewer than 39 (§2.1)`;
  }
  if (d.length !== bytes.length - HEADER) {
    return `Length says ${d.length} but ${
      bytes.length - HEADER
    } bytes follow the header (§2.1)`;
  }
  if (d.type !== CONTROL && d.type !== CHAT) {
    return `unknown Type 0x${hex2(d.type)} (§2.1)`;
  }
  if (d.type === CONTROL && !(d.op in OP_NAMES)) {
    return `control Operation 0x${hex2(d.op)} is not one of §2`;
  }
  if (d.type === CHAT && d.op !== CHAT_OP) {
    return `chat Operation 0x${hex2(d.op)} is not 0x01 (§2)`;
  }
  if (d.seq > 1) return `Sequence ${d.seq} is not 0 or 1 (§2.1)`;
  if (d.type === CHAT && d.user === "") {
    return "a chat datagram with an empty User (§2.2)";
  }
  const field = bytes.subarray(3, 3 + USER_FIELD);
  const nul = field.indexOf(0);
  if (nul >= 0 && field.subarray(nul).some((b) => b !== 0)) {
    return "bytes after the name's NUL in the User field: it is right-padded with 0x00 (§2)";
  }
  if ([...field, ...bytes.subarray(HEADER)].some((b) => b >= 0x80)) {
    return "bytes ≥ 0x80: what is sent is strictly ASCII (§2.3)";
  }
  if (d.type === CONTROL && d.op !== ERR && d.length !== 0) {
    return `a payload of ${d.length} bytes on ${
      OP_NAMES[d.op]
    }: only chat and ERR carry one (§2)`;
  }
  return undefined;
}

const OP_NAMES: Record<number, string> = {
  [ERR]: "ERR",
  [SYN]: "SYN",
  [ACK]: "ACK",
  [SYN_ACK]: "SYN+ACK",
  [FIN]: "FIN",
};

/** The name of a Type/Operation pair: `SYN+ACK`, `CHAT`, `type=0x07`. */
export function kindName(type: number, op: number): string {
  if (type === CHAT) return op === CHAT_OP ? "CHAT" : `CHAT op=0x${hex2(op)}`;
  if (type === CONTROL) return OP_NAMES[op] ?? `op=0x${hex2(op)}`;
  return `type=0x${hex2(type)}`;
}

/** A one-line description of any bytes, like the daemon's wire trace. */
export function describe(bytes: Uint8Array): string {
  const d = parse(bytes);
  if (d === undefined) {
    return `<${bytes.length} bytes${bytes.length ? " " + hex(bytes) : ""}>`;
  }
  const shown = d.payload.length > 60
    ? d.payload.slice(0, 60) + "…"
    : d.payload;
  return `${kindName(d.type, d.op)} seq=${d.seq} user=${
    JSON.stringify(d.user)
  }` +
    (d.length !== bytes.length - HEADER
      ? ` Length=${d.length} (${bytes.length - HEADER} bytes follow)`
      : "") +
    (shown ? ` ${JSON.stringify(shown)}` : "");
}

/** Bytes as lowercase hex. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, hex2).join("");
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}
