/**
 * The inputs of `simp ladder`, turned into {@linkcode LadderEvent}s: a pcap
 * capture (from `simp daemon --pcap`, tcpdump or Wireshark) or the JSON-lines
 * log of `simp relay`. Pure functions from bytes to events; they throw
 * {@linkcode LadderInputError} with a message saying what is wrong and where.
 *
 * The relay log has one JSON object per line, one per datagram copy:
 *
 * ```json
 * {"t":12.345,"from":"127.0.0.1:7777","to":"127.0.0.2:7777","fate":"forwarded","delay":0,"dup":false,"corrupted":false,"hex":"0102…"}
 * ```
 *
 * `t` is the time the relay received it, in ms since the relay started;
 * `fate` is `forwarded` or `dropped`; `delay` the ms the relay held it; `dup`
 * is true on the extra copy of a duplicated datagram; `corrupted` true when
 * the relay changed its bytes; `hex` is the datagram as forwarded.
 *
 * @module
 */

import { decodePcap, PcapFormatError } from "../wire/pcap.ts";

/** One datagram (or one copy of it, for the relay) for the ladder. */
export interface LadderEvent {
  /** When it was sent (or received by the relay), in ms. */
  t: number;
  /** Its source, `ip:port`. */
  from: string;
  /** Its destination, `ip:port`. */
  to: string;
  /** The datagram's bytes (a SIMP datagram, or not). */
  bytes: Uint8Array;
  /** `dropped` when the relay dropped it (default `forwarded`). */
  fate?: "forwarded" | "dropped";
  /** How long the relay held it before forwarding, in ms (default 0). */
  delay?: number;
  /** Whether this is the relay's extra copy of a duplicated datagram. */
  dup?: boolean;
  /** Whether the relay corrupted its bytes. */
  corrupted?: boolean;
}

/** An input `simp ladder` cannot read, with a message for the user. */
export class LadderInputError extends Error {
  /** Creates the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "LadderInputError";
  }
}

/** The kinds of input {@linkcode readLadderInput} recognises. */
export type LadderInputKind = "pcap" | "relay-log";

/**
 * Which kind of input `bytes` is: a pcap file (by its magic number, either
 * byte order; pcapng too, so that it gets a clear error) or a relay log (text
 * whose first non-blank character is `{`).
 *
 * @throws {LadderInputError} when it is neither.
 */
export function detectLadderInput(bytes: Uint8Array): LadderInputKind {
  if (bytes.length >= 4) {
    const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
    const magics = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a];
    if (magics.includes(magic)) return "pcap";
  }
  let i = 0;
  while (i < bytes.length && [0x20, 0x09, 0x0a, 0x0d].includes(bytes[i])) i++;
  if (bytes[i] === 0x7b) return "relay-log";
  throw new LadderInputError(
    "Neither a pcap capture nor a simp relay log (JSON lines): give a file written by simp daemon --pcap, tcpdump -w or simp relay",
  );
}

/**
 * The events of a pcap capture: every IPv4 UDP datagram, in file order,
 * times from the capture's timestamps.
 *
 * @throws {LadderInputError} when the file is not classic pcap.
 */
export function eventsFromPcap(bytes: Uint8Array): LadderEvent[] {
  try {
    return decodePcap(bytes).map((d) => ({
      t: d.timeMs,
      from: `${d.from.ip}:${d.from.port}`,
      to: `${d.to.ip}:${d.to.port}`,
      bytes: d.payload,
    }));
  } catch (error) {
    if (error instanceof PcapFormatError) {
      throw new LadderInputError(error.message);
    }
    throw error;
  }
}

const ADDRESS =
  /^(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}:[0-9]{1,5}$/;

/**
 * The events of a `simp relay` log (JSON lines, format above); blank lines
 * are skipped, and so is a last line cut short (no newline after it: the
 * log of a relay killed mid-write).
 *
 * @throws {LadderInputError} naming the line and the field for anything
 * that does not fit the format.
 * @example
 * ```ts
 * import { eventsFromRelayLog } from "./sources.ts";
 * const [event] = eventsFromRelayLog(
 *   '{"t":1.5,"from":"127.0.0.1:7777","to":"127.0.0.2:7777","fate":"dropped","delay":0,"dup":false,"corrupted":false,"hex":"0102"}\n',
 * );
 * console.log(event.fate, event.bytes.length); // dropped 2
 * ```
 */
export function eventsFromRelayLog(text: string): LadderEvent[] {
  const events: LadderEvent[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "") continue;
    const where = `Relay log line ${n + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // The last line of a relay stopped mid-write (kill -9): no newline
      // after it, the start of an object. Drawn without it, as a pcap
      // record cut short is.
      if (n === lines.length - 1 && line.startsWith("{")) continue;
      throw new LadderInputError(
        `${where} is not JSON: each line must be one JSON object as simp relay writes it`,
      );
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new LadderInputError(`${where} is not a JSON object`);
    }
    const o = value as Record<string, unknown>;
    const t = o.t;
    if (typeof t !== "number" || !Number.isFinite(t)) {
      throw new LadderInputError(`${where}: "t" must be a number of ms`);
    }
    for (const key of ["from", "to"] as const) {
      if (typeof o[key] !== "string" || !ADDRESS.test(o[key] as string)) {
        throw new LadderInputError(
          `${where}: "${key}" must be an address such as "127.0.0.1:7777"`,
        );
      }
    }
    if (o.fate !== "forwarded" && o.fate !== "dropped") {
      throw new LadderInputError(
        `${where}: "fate" must be "forwarded" or "dropped"`,
      );
    }
    const delay = o.delay ?? 0;
    if (typeof delay !== "number" || !(delay >= 0) || !isFinite(delay)) {
      throw new LadderInputError(
        `${where}: "delay" must be a number of ms, 0 or more`,
      );
    }
    for (const key of ["dup", "corrupted"] as const) {
      if (o[key] !== undefined && typeof o[key] !== "boolean") {
        throw new LadderInputError(`${where}: "${key}" must be true or false`);
      }
    }
    if (typeof o.hex !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(o.hex)) {
      throw new LadderInputError(
        `${where}: "hex" must be the datagram's bytes as an even number of hex digits`,
      );
    }
    const bytes = new Uint8Array(o.hex.length / 2);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(o.hex.slice(2 * i, 2 * i + 2), 16);
    }
    events.push({
      t,
      from: o.from as string,
      to: o.to as string,
      bytes,
      fate: o.fate,
      delay,
      dup: o.dup === true,
      corrupted: o.corrupted === true,
    });
  }
  return events;
}

/**
 * The events of a file given to `simp ladder`, whichever kind it is.
 *
 * @throws {LadderInputError} when it is neither kind, or broken.
 */
export function readLadderInput(bytes: Uint8Array): LadderEvent[] {
  if (detectLadderInput(bytes) === "pcap") return eventsFromPcap(bytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new LadderInputError(
      "The relay log is not valid UTF-8 text: give the file simp relay wrote",
    );
  }
  return eventsFromRelayLog(text);
}
