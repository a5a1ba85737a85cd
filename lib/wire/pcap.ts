/**
 * pcap capture files of SIMP traffic: pure encoding and decoding of the
 * classic libpcap format, and {@linkcode PcapWriter}, the small synchronous
 * writer behind `simp daemon --pcap FILE`.
 *
 * The files use link type {@linkcode LINKTYPE_RAW} (101): each record is an
 * IPv4 packet with no link-layer header, which Wireshark, tshark and tcpdump
 * read as they are (`tcpdump -r FILE` shows `IP 127.0.0.1.7777 >
 * 127.0.0.2.7777: UDP, length 39`). Each packet is a 20-byte IPv4 header
 * (with its checksum) and an 8-byte UDP header (with its checksum, over the
 * IPv4 pseudo-header) in front of the SIMP datagram, carrying the real source
 * and destination addresses and ports. Timestamps have microsecond
 * resolution; the header is written little-endian (magic `d4 c3 b2 a1`).
 *
 * {@linkcode decodePcap} reads these files back, and also captures made by
 * tcpdump or Wireshark on a loopback or Ethernet interface, for
 * `simp ladder`.
 *
 * @module
 */

import type { Address } from "../address.ts";

/** The classic pcap magic number, microsecond timestamps. */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** The classic pcap magic number, nanosecond timestamps (read only). */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** Link type of raw IP packets, no link-layer header (what we write). */
export const LINKTYPE_RAW = 101;
/** Link type of Ethernet frames (tcpdump on most interfaces; read only). */
export const LINKTYPE_ETHERNET = 1;
/** Link type of BSD loopback, a 4-byte family header (read only). */
export const LINKTYPE_NULL = 0;
/** Link type of Linux "cooked" captures, `tcpdump -i any` (read only). */
export const LINKTYPE_LINUX_SLL = 113;
/** Link type of raw IPv4 packets (read only). */
export const LINKTYPE_IPV4 = 228;
/** The snapshot length we declare: a whole IPv4 packet always fits. */
export const PCAP_SNAPLEN = 65_535;
/** Size of the pcap global header. */
export const PCAP_HEADER_SIZE = 24;
/** Size of a pcap record header. */
export const PCAP_RECORD_HEADER_SIZE = 16;
/** Size of the IPv4 header we write (no options). */
export const IPV4_HEADER_SIZE = 20;
/** Size of the UDP header. */
export const UDP_HEADER_SIZE = 8;
/** The largest UDP payload in one IPv4 packet. */
export const MAX_UDP_PAYLOAD = 65_535 - IPV4_HEADER_SIZE - UDP_HEADER_SIZE;

/** An IPv4 address and UDP port: the project's {@linkcode Address}. */
export type Endpoint = Address;

/** One UDP datagram of a capture. */
export interface CapturedDatagram {
  /** When it was sent or received, in ms since the Unix epoch. */
  timeMs: number;
  /** Its source address and port. */
  from: Endpoint;
  /** Its destination address and port. */
  to: Endpoint;
  /** The UDP payload: the SIMP datagram. */
  payload: Uint8Array;
}

/** A capture file that cannot be read, with a message saying why. */
export class PcapFormatError extends Error {
  /** Creates the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "PcapFormatError";
  }
}

/**
 * The 24-byte pcap global header: version 2.4, microsecond timestamps,
 * snapshot length {@linkcode PCAP_SNAPLEN}, link type
 * {@linkcode LINKTYPE_RAW}.
 */
export function encodePcapHeader(): Uint8Array {
  const bytes = new Uint8Array(PCAP_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, PCAP_MAGIC, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setInt32(8, 0, true); // thiszone: timestamps are UTC
  view.setUint32(12, 0, true); // sigfigs
  view.setUint32(16, PCAP_SNAPLEN, true);
  view.setUint32(20, LINKTYPE_RAW, true);
  return bytes;
}

/** Options of {@linkcode encodePcapRecord} and {@linkcode encodeIPv4Udp}. */
export interface PacketOptions {
  /** The IPv4 Identification field (default 0); taken modulo 65536. */
  id?: number;
}

/**
 * One pcap record: the 16-byte record header (timestamp, lengths) and the
 * IPv4/UDP packet around the datagram.
 *
 * @throws {RangeError} for an address that is not dotted-quad IPv4, a port
 * outside 0–65535 or a payload too large for one IPv4 packet.
 * @example
 * ```ts
 * import { encodePcapRecord } from "./pcap.ts";
 * const record = encodePcapRecord({
 *   timeMs: 1_700_000_000_000,
 *   from: { ip: "127.0.0.1", port: 7777 },
 *   to: { ip: "127.0.0.2", port: 7777 },
 *   payload: new Uint8Array(39),
 * });
 * console.log(record.length); // 16 + 20 + 8 + 39 = 83
 * ```
 */
export function encodePcapRecord(
  datagram: CapturedDatagram,
  options: PacketOptions = {},
): Uint8Array {
  const packet = encodeIPv4Udp(datagram, options);
  const bytes = new Uint8Array(PCAP_RECORD_HEADER_SIZE + packet.length);
  const view = new DataView(bytes.buffer);
  const micros = Math.round(datagram.timeMs * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  view.setUint32(0, seconds, true);
  view.setUint32(4, micros - seconds * 1_000_000, true);
  view.setUint32(8, packet.length, true);
  view.setUint32(12, packet.length, true);
  bytes.set(packet, PCAP_RECORD_HEADER_SIZE);
  return bytes;
}

/**
 * An IPv4 packet (20-byte header, TTL 64, Don't Fragment, header checksum)
 * holding one UDP datagram (8-byte header with its checksum) whose payload
 * is `datagram.payload`.
 *
 * @throws {RangeError} as {@linkcode encodePcapRecord}.
 */
export function encodeIPv4Udp(
  datagram: Omit<CapturedDatagram, "timeMs">,
  options: PacketOptions = {},
): Uint8Array {
  const { from, to, payload } = datagram;
  if (payload.length > MAX_UDP_PAYLOAD) {
    throw new RangeError(
      `UDP payload of ${payload.length} bytes does not fit in one IPv4 packet (at most ${MAX_UDP_PAYLOAD})`,
    );
  }
  const src = ipv4Bytes(from.ip);
  const dst = ipv4Bytes(to.ip);
  checkPort(from.port);
  checkPort(to.port);
  const udpLength = UDP_HEADER_SIZE + payload.length;
  const total = IPV4_HEADER_SIZE + udpLength;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes[0] = 0x45; // version 4, header length 5 words
  bytes[1] = 0; // DSCP/ECN
  view.setUint16(2, total);
  view.setUint16(4, (options.id ?? 0) & 0xffff);
  view.setUint16(6, 0x4000); // Don't Fragment, offset 0
  bytes[8] = 64; // TTL
  bytes[9] = 17; // UDP
  bytes.set(src, 12);
  bytes.set(dst, 16);
  view.setUint16(10, internetChecksum(bytes.subarray(0, IPV4_HEADER_SIZE)));
  view.setUint16(20, from.port);
  view.setUint16(22, to.port);
  view.setUint16(24, udpLength);
  bytes.set(payload, IPV4_HEADER_SIZE + UDP_HEADER_SIZE);
  // UDP checksum over the pseudo-header (src, dst, zero, protocol, length)
  // and the UDP datagram; a computed 0 is sent as 0xffff (RFC 768).
  const pseudo = new Uint8Array(12 + udpLength);
  pseudo.set(src, 0);
  pseudo.set(dst, 4);
  pseudo[9] = 17;
  new DataView(pseudo.buffer).setUint16(10, udpLength);
  pseudo.set(bytes.subarray(IPV4_HEADER_SIZE), 12);
  view.setUint16(26, internetChecksum(pseudo) || 0xffff);
  return bytes;
}

/**
 * The Internet checksum (RFC 1071) of `bytes`: the ones' complement of the
 * ones' complement sum of its 16-bit big-endian words (an odd last byte is
 * padded with zero). Over a header that holds its own correct checksum it
 * is 0.
 *
 * @example
 * ```ts
 * import { internetChecksum } from "./pcap.ts";
 * // RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2.
 * const words = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
 * console.log(internetChecksum(words).toString(16)); // "220d"
 * ```
 */
export function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    sum += (bytes[i] << 8) | bytes[i + 1];
  }
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Reads a classic pcap file (either byte order, microsecond or nanosecond
 * timestamps; link types raw IP, IPv4, Ethernet, BSD loopback and Linux
 * cooked) and returns its IPv4 UDP datagrams in file order. Other packets
 * (IPv6, TCP, fragments, ARP) are skipped. A record cut short at the end of
 * the file (a capture interrupted mid-write) is skipped too.
 *
 * @throws {PcapFormatError} when the bytes are not a classic pcap file
 * (pcapng is not read: save it as pcap) or its link type is not one of the
 * above.
 */
export function decodePcap(bytes: Uint8Array): CapturedDatagram[] {
  if (bytes.length < PCAP_HEADER_SIZE) {
    throw new PcapFormatError(
      `Not a pcap file: ${bytes.length} bytes, shorter than the 24-byte pcap header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const magicLE = view.getUint32(0, true);
  let little: boolean;
  let nanos = false;
  if (magicLE === PCAP_MAGIC || magicLE === PCAP_MAGIC_NS) {
    little = true;
    nanos = magicLE === PCAP_MAGIC_NS;
  } else {
    const magicBE = view.getUint32(0, false);
    if (magicBE !== PCAP_MAGIC && magicBE !== PCAP_MAGIC_NS) {
      const pcapng = magicBE === 0x0a0d0d0a;
      throw new PcapFormatError(
        pcapng
          ? "This is a pcapng file: save it as classic pcap (Wireshark: File → Save As → pcap; or `editcap -F pcap IN OUT`)"
          : `Not a pcap file: it starts with 0x${
            magicBE.toString(16).padStart(8, "0")
          }, not a pcap magic number`,
      );
    }
    little = false;
    nanos = magicBE === PCAP_MAGIC_NS;
  }
  const linkType = view.getUint32(20, little) & 0x0fffffff;
  const out: CapturedDatagram[] = [];
  let offset = PCAP_HEADER_SIZE;
  while (offset + PCAP_RECORD_HEADER_SIZE <= bytes.length) {
    const seconds = view.getUint32(offset, little);
    const fraction = view.getUint32(offset + 4, little);
    const included = view.getUint32(offset + 8, little);
    const start = offset + PCAP_RECORD_HEADER_SIZE;
    if (start + included > bytes.length) break;
    const frame = bytes.subarray(start, start + included);
    offset = start + included;
    const ip = ipPacket(frame, linkType);
    const udp = ip && parseIPv4Udp(ip);
    if (!udp) continue;
    out.push({
      timeMs: seconds * 1000 + (nanos ? fraction / 1e6 : fraction / 1e3),
      ...udp,
    });
  }
  return out;
}

/** The IPv4 packet inside a frame of `linkType`, if it holds one. */
function ipPacket(frame: Uint8Array, linkType: number): Uint8Array | null {
  switch (linkType) {
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
      return frame;
    case LINKTYPE_ETHERNET: {
      let at = 12;
      let etherType = u16(frame, at);
      while (etherType === 0x8100 || etherType === 0x88a8) { // VLAN tags
        at += 4;
        etherType = u16(frame, at);
      }
      return etherType === 0x0800 ? frame.subarray(at + 2) : null;
    }
    case LINKTYPE_NULL: {
      if (frame.length < 4) return null;
      const family = new DataView(frame.buffer, frame.byteOffset, 4);
      const isInet = family.getUint32(0, true) === 2 ||
        family.getUint32(0, false) === 2;
      return isInet ? frame.subarray(4) : null;
    }
    case LINKTYPE_LINUX_SLL:
      return u16(frame, 14) === 0x0800 ? frame.subarray(16) : null;
  }
  throw new PcapFormatError(
    `Unsupported pcap link type ${linkType}: capture on a loopback or Ethernet interface, or with simp daemon --pcap`,
  );
}

/** The UDP datagram in an IPv4 packet, if it is one, not fragmented. */
function parseIPv4Udp(
  ip: Uint8Array,
): Omit<CapturedDatagram, "timeMs"> | null {
  if (ip.length < IPV4_HEADER_SIZE || ip[0] >> 4 !== 4) return null;
  const headerLength = (ip[0] & 0x0f) * 4;
  const total = u16(ip, 2);
  const fragment = u16(ip, 6);
  if ((fragment & 0x3fff) !== 0) return null; // MF set or offset ≠ 0
  if (ip[9] !== 17 || headerLength < IPV4_HEADER_SIZE) return null;
  const end = Math.min(total, ip.length);
  if (headerLength + UDP_HEADER_SIZE > end) return null;
  const udp = ip.subarray(headerLength, end);
  const udpLength = u16(udp, 4);
  if (udpLength < UDP_HEADER_SIZE || udpLength > udp.length) return null;
  return {
    from: { ip: ip.subarray(12, 16).join("."), port: u16(udp, 0) },
    to: { ip: ip.subarray(16, 20).join("."), port: u16(udp, 2) },
    payload: udp.slice(UDP_HEADER_SIZE, udpLength),
  };
}

function u16(bytes: Uint8Array, at: number): number {
  return at + 1 < bytes.length ? (bytes[at] << 8) | bytes[at + 1] : -1;
}

function ipv4Bytes(address: string): Uint8Array {
  const parts = address.split(".");
  const bytes = parts.map((part) => /^[0-9]{1,3}$/.test(part) ? +part : NaN);
  if (bytes.length !== 4 || !bytes.every((b) => b <= 255)) {
    throw new RangeError(`Not an IPv4 address: ${JSON.stringify(address)}`);
  }
  return new Uint8Array(bytes);
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Not a UDP port: ${port}`);
  }
}

/** Options of {@linkcode PcapWriter.open}. */
export interface PcapWriterOptions {
  /**
   * Called once with the error when a write fails (disk full, file gone);
   * the writer then closes and ignores further datagrams. Default: ignore.
   */
  onError?: (error: unknown) => void;
  /** The clock, in ms since the Unix epoch (default: the wall clock). */
  now?: () => number;
}

/**
 * Writes a pcap file as datagrams come: the header at once, then one record
 * per {@linkcode PcapWriter.write}, each with one synchronous write system
 * call, so that a crash loses at most the record being written. A failed
 * write never throws: it is reported once to `onError` and capturing stops.
 *
 * @example
 * ```ts ignore
 * import { PcapWriter } from "./pcap.ts";
 * const pcap = PcapWriter.open("chat.pcap");
 * pcap.write(bytes, { ip: "127.0.0.2", port: 40000 }, {
 *   ip: "127.0.0.1", port: 7777,
 * });
 * pcap.close();
 * ```
 */
export class PcapWriter {
  #file: PcapSink | undefined;
  #onError: (error: unknown) => void;
  #now: () => number;
  #id = 0;

  /**
   * A writer on `sink` (an open file, or anything with its two methods):
   * writes the pcap header at once.
   *
   * @throws {Error} what the sink throws when the header cannot be written.
   */
  constructor(sink: PcapSink, options: PcapWriterOptions = {}) {
    writeAll(sink, encodePcapHeader());
    this.#file = sink;
    this.#onError = options.onError ?? (() => {});
    this.#now = options.now ?? wallClock;
  }

  /**
   * Creates (or truncates) `path` and writes the pcap header.
   *
   * @throws {Error} with a message for the user when the file cannot be
   * written (the underlying error is its `cause`).
   */
  static open(path: string, options: PcapWriterOptions = {}): PcapWriter {
    let file: Deno.FsFile | undefined;
    try {
      file = Deno.openSync(path, { write: true, create: true, truncate: true });
      return new PcapWriter(file, options);
    } catch (error) {
      file?.close();
      throw new Error(
        `Cannot write the capture file ${path}: ${
          error instanceof Deno.errors.NotCapable
            ? "write access not granted — run with --allow-write"
            : error instanceof Deno.errors.NotFound
            ? "its folder does not exist — create it or choose another path"
            : error instanceof Deno.errors.PermissionDenied
            ? "permission denied — choose a path you may write"
            : error instanceof Error
            ? error.message
            : String(error)
        }`,
        { cause: error },
      );
    }
  }

  /** Whether records are still being written (not closed, no failure). */
  get capturing(): boolean {
    return this.#file !== undefined;
  }

  /** Appends one datagram sent from `from` to `to`, stamped now. */
  write(payload: Uint8Array, from: Endpoint, to: Endpoint): void {
    const file = this.#file;
    if (file === undefined) return;
    try {
      const record = encodePcapRecord(
        { timeMs: this.#now(), from, to, payload },
        { id: this.#id++ },
      );
      writeAll(file, record);
    } catch (error) {
      this.close();
      this.#onError(error);
    }
  }

  /** Closes the file; later writes are ignored. */
  close(): void {
    const file = this.#file;
    this.#file = undefined;
    try {
      file?.close();
    } catch {
      // Already closed.
    }
  }
}

function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Where a {@linkcode PcapWriter} writes: a `Deno.FsFile` is one. Each call
 * of `writeSync` must go to the operating system at once (no buffering), so
 * that a crash loses at most the record being written.
 */
export interface PcapSink {
  /** Writes some of `bytes` and returns how many (like `Deno.FsFile`). */
  writeSync(bytes: Uint8Array): number;
  /** Closes the sink. */
  close(): void;
}

function writeAll(file: PcapSink, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}
