/**
 * TEMPORARY: the link v2 messages as the contract in the brief states them,
 * until `lib/link/protocol.ts`, `lib/link/lines.ts` and
 * `lib/link/client_end.ts` land from the `link` branch.
 *
 * @module
 */

/** The link protocol version. */
export const LINK_VERSION = 2;
/** The daemon's client port. */
export const CLIENT_PORT = 7778;
/** The longest line. */
export const MAX_LINE_BYTES = 524_288;

/** A daemon phase. */
export type DaemonPhase =
  | "idle"
  | "inviting"
  | "invited"
  | "accepting"
  | "established"
  | "closing";

/** A peer. */
export interface PeerInfo {
  /** IP. */
  ip: string;
  /** Port. */
  port: number;
  /** Name. */
  name: string;
}

/** Limits. */
export interface Limits {
  /** Outstanding sends. */
  queue: number;
  /** Longest text. */
  text: number;
}

/** An event. */
export type ChatEvent =
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
  | { type: "busy"; ip: string; port: number; text: string }
  | { type: "no-answer"; ip: string; port: number }
  | { type: "message"; name: string; text: string }
  | { type: "delivered"; id: number }
  | { type: "retransmitted"; id: number; attempt: number }
  | {
    type: "peer-left" | "peer-lost" | "chat-closed";
    ip: string;
    port: number;
    name: string;
    undelivered: number;
  }
  | { type: "undelivered"; id: number; text: string }
  | { type: "peer-error"; ip: string; port: number; text: string }
  | { type: "daemon-stopping" };

/** A request without its id. */
export type Request =
  | { cmd: "hello"; v: number; name: string }
  | { cmd: "invite"; ip: string; port?: number }
  | { cmd: "accept" | "decline" | "leave" | "quit" }
  | { cmd: "send"; text: string };

/** A reply. */
export type Reply =
  | { re: number | null; ok: true; msgId?: number; [key: string]: unknown }
  | { re: number | null; ok: false; error: string; code?: string };

/** The hello reply. */
export interface HelloReply {
  /** Request id. */
  re: number;
  /** Success. */
  ok: true;
  /** Version. */
  v: number;
  /** State. */
  state: { phase: DaemonPhase; peer?: PeerInfo };
  /** Limits. */
  limits: Limits;
}

/** Encodes a request line. */
export function encodeRequest(id: number, request: Request): string {
  return JSON.stringify({ id, ...request }) + "\n";
}

/** Parses a daemon line; undefined when it is not one. */
export function parseDaemonLine(
  line: string,
): Reply | { event: ChatEvent } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  return value as Reply | { event: ChatEvent };
}

/** Splits bytes into lines. */
export class LineReader {
  #carry = new Uint8Array(0);
  #decoder = new TextDecoder();

  /** The complete lines in `chunk` (with what was carried over). */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      let bytes = chunk.subarray(start, nl);
      if (this.#carry.length > 0) {
        const joined = new Uint8Array(this.#carry.length + bytes.length);
        joined.set(this.#carry);
        joined.set(bytes, this.#carry.length);
        bytes = joined;
        this.#carry = new Uint8Array(0);
      }
      lines.push(this.#decoder.decode(bytes));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      const joined = new Uint8Array(this.#carry.length + rest.length);
      joined.set(this.#carry);
      joined.set(rest, this.#carry.length);
      this.#carry = joined;
      if (this.#carry.length > MAX_LINE_BYTES) {
        throw new Error("Line too long from the daemon");
      }
    }
    return lines;
  }
}
