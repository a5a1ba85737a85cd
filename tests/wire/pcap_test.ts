/**
 * The pcap encoding of `simp daemon --pcap` and the reader of `simp ladder`
 * (lib/wire/pcap.ts). The checksums below were computed independently (with
 * a few lines of Python's `struct`), not by the code under test.
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  type CapturedDatagram,
  decodePcap,
  encodeIPv4Udp,
  encodePcapHeader,
  encodePcapRecord,
  internetChecksum,
  LINKTYPE_RAW,
  MAX_UDP_PAYLOAD,
  PcapFormatError,
  type PcapSink,
  PcapWriter,
} from "../../lib/wire/pcap.ts";
import { control } from "../support/datagrams.ts";
import { Op } from "../../lib/wire/datagram.ts";

const ALICE = { ip: "127.0.88.2", port: 40000 };
const BOB = { ip: "127.0.88.1", port: 7777 };
const SYN = control(Op.SYN, 0, "alice");

/** Asserts that `fn` throws a `type` whose message contains `text`. */
function assertThrows(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  text: string,
): void {
  throws(fn, (error) => error instanceof type && error.message.includes(text));
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

Deno.test("pcap global header: magic, version 2.4, snaplen 65535, LINKTYPE_RAW, little-endian", () => {
  deepStrictEqual(
    [...encodePcapHeader()],
    [
      0xd4,
      0xc3,
      0xb2,
      0xa1, // magic, microseconds
      2,
      0,
      4,
      0, // version 2.4
      0,
      0,
      0,
      0, // thiszone
      0,
      0,
      0,
      0, // sigfigs
      0xff,
      0xff,
      0,
      0, // snaplen 65535
      LINKTYPE_RAW,
      0,
      0,
      0, // link type 101
    ],
  );
});

Deno.test("IPv4 and UDP headers: addresses, ports, lengths and both checksums", () => {
  const packet = encodeIPv4Udp({ from: ALICE, to: BOB, payload: SYN }, {
    id: 7,
  });
  deepStrictEqual(packet.length, 20 + 8 + 39);
  deepStrictEqual(
    [...packet.subarray(0, 28)],
    [
      0x45,
      0x00,
      0x00,
      67, // version 4, IHL 5, total length 67
      0x00,
      0x07,
      0x40,
      0x00, // id 7, Don't Fragment
      64,
      17,
      0x8c,
      0x9f, // TTL, UDP, header checksum
      127,
      0,
      88,
      2, // source
      127,
      0,
      88,
      1, // destination
      0x9c,
      0x40,
      0x1e,
      0x61, // ports 40000 → 7777
      0x00,
      47,
      0xc5,
      0xb8, // UDP length 47, checksum
    ],
  );
  deepStrictEqual(packet.subarray(28), SYN);
  // A header holding its own correct checksum sums to zero.
  deepStrictEqual(internetChecksum(packet.subarray(0, 20)), 0);
});

Deno.test("UDP checksum verifies over the pseudo-header for odd and even payloads", () => {
  for (const size of [0, 1, 39, 40, 1001]) {
    const payload = new Uint8Array(size).map((_, i) => (i * 37 + 11) & 0xff);
    const packet = encodeIPv4Udp({ from: BOB, to: ALICE, payload });
    const udp = packet.subarray(20);
    const pseudo = new Uint8Array(12 + udp.length);
    pseudo.set(packet.subarray(12, 20), 0);
    pseudo[9] = 17;
    pseudo[10] = udp.length >> 8;
    pseudo[11] = udp.length & 0xff;
    pseudo.set(udp, 12);
    deepStrictEqual(internetChecksum(pseudo), 0, `payload of ${size} bytes`);
    deepStrictEqual(u16(packet, 2), 28 + size);
    deepStrictEqual(u16(udp, 4), 8 + size);
  }
});

Deno.test("internetChecksum: RFC 1071's example", () => {
  const words = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
  deepStrictEqual(internetChecksum(new Uint8Array(words)), 0x220d);
});

Deno.test("pcap record header: seconds, microseconds, both lengths", () => {
  const record = encodePcapRecord({
    timeMs: 1_700_000_000_123.456,
    from: ALICE,
    to: BOB,
    payload: SYN,
  });
  const view = new DataView(record.buffer);
  deepStrictEqual(view.getUint32(0, true), 1_700_000_000);
  deepStrictEqual(view.getUint32(4, true), 123_456);
  deepStrictEqual(view.getUint32(8, true), 67);
  deepStrictEqual(view.getUint32(12, true), 67);
  deepStrictEqual(record.length, 16 + 67);
});

Deno.test("the largest SIMP datagram fits; one byte more is refused", () => {
  const big = new Uint8Array(MAX_UDP_PAYLOAD);
  deepStrictEqual(
    u16(encodeIPv4Udp({ from: ALICE, to: BOB, payload: big }), 2),
    65_535,
  );
  assertThrows(
    () =>
      encodeIPv4Udp({
        from: ALICE,
        to: BOB,
        payload: new Uint8Array(MAX_UDP_PAYLOAD + 1),
      }),
    RangeError,
    "does not fit",
  );
});

Deno.test("bad addresses and ports are refused", () => {
  for (const hostname of ["127.0.0", "127.0.0.256", "::1", "a.b.c.d"]) {
    assertThrows(
      () =>
        encodeIPv4Udp({
          from: { ip: hostname, port: 1 },
          to: BOB,
          payload: SYN,
        }),
      RangeError,
      "Not an IPv4 address",
    );
  }
  assertThrows(
    () =>
      encodeIPv4Udp({
        from: { ip: "127.0.0.1", port: 65_536 },
        to: BOB,
        payload: SYN,
      }),
    RangeError,
    "Not a UDP port",
  );
});

/** A pcap file of `datagrams`, as the writer lays it out. */
function pcapOf(datagrams: CapturedDatagram[]): Uint8Array {
  const parts = [
    encodePcapHeader(),
    ...datagrams.map((d) => encodePcapRecord(d)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const TWO: CapturedDatagram[] = [
  { timeMs: 1_000.5, from: ALICE, to: BOB, payload: SYN },
  {
    timeMs: 1_002.25,
    from: BOB,
    to: ALICE,
    payload: control(Op.SYN_ACK, 0, "bob"),
  },
];

Deno.test("decodePcap reads back what the writer's encoding produced", () => {
  deepStrictEqual(decodePcap(pcapOf(TWO)), TWO);
});

Deno.test("decodePcap skips a record cut short at the end of the file", () => {
  const bytes = pcapOf(TWO);
  deepStrictEqual(decodePcap(bytes.subarray(0, bytes.length - 1)), [TWO[0]]);
});

Deno.test("decodePcap reads big-endian files and nanosecond timestamps", () => {
  const packet = encodeIPv4Udp(TWO[0]);
  const bytes = new Uint8Array(24 + 16 + packet.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 0xa1b23c4d); // nanosecond magic, big-endian
  view.setUint16(4, 2);
  view.setUint16(6, 4);
  view.setUint32(16, 65535);
  view.setUint32(20, LINKTYPE_RAW);
  view.setUint32(24, 1);
  view.setUint32(28, 500_000_000);
  view.setUint32(32, packet.length);
  view.setUint32(36, packet.length);
  bytes.set(packet, 40);
  deepStrictEqual(decodePcap(bytes), [{ ...TWO[0], timeMs: 1500 }]);
});

Deno.test("decodePcap reads Ethernet frames (tcpdump -i lo) and skips non-IPv4 frames", () => {
  const packet = encodeIPv4Udp(TWO[0]);
  const ethernet = new Uint8Array(14 + packet.length);
  ethernet[12] = 0x08; // EtherType IPv4
  ethernet.set(packet, 14);
  const arp = new Uint8Array(42);
  arp[12] = 0x08;
  arp[13] = 0x06;
  const header = encodePcapHeader();
  header[20] = 1; // LINKTYPE_ETHERNET
  const records = [arp, ethernet].map((frame) => {
    const record = new Uint8Array(16 + frame.length);
    const view = new DataView(record.buffer);
    view.setUint32(0, 1, true);
    view.setUint32(4, 500, true);
    view.setUint32(8, frame.length, true);
    view.setUint32(12, frame.length, true);
    record.set(frame, 16);
    return record;
  });
  const file = new Uint8Array([...header, ...records[0], ...records[1]]);
  deepStrictEqual(decodePcap(file), [{ ...TWO[0], timeMs: 1000.5 }]);
});

Deno.test("decodePcap refuses what is not classic pcap, saying what to do", () => {
  assertThrows(
    () => decodePcap(new Uint8Array(10)),
    PcapFormatError,
    "shorter than the 24-byte pcap header",
  );
  const pcapng = new Uint8Array(28);
  pcapng.set([0x0a, 0x0d, 0x0d, 0x0a]);
  assertThrows(() => decodePcap(pcapng), PcapFormatError, "editcap -F pcap");
  const text = new TextEncoder().encode("this is not a capture file");
  assertThrows(() => decodePcap(text), PcapFormatError, "Not a pcap file");
  const usb = encodePcapHeader();
  usb[20] = 189;
  const withRecord = new Uint8Array([...usb, ...new Uint8Array(16)]);
  assertThrows(
    () => decodePcap(withRecord),
    PcapFormatError,
    "Unsupported pcap link type 189",
  );
});

/** A sink that keeps every chunk written; `failOn` makes that call throw. */
class MemorySink implements PcapSink {
  chunks: Uint8Array[] = [];
  calls = 0;
  closed = false;
  constructor(readonly failOn = Infinity, readonly maxChunk = Infinity) {}
  writeSync(bytes: Uint8Array): number {
    if (this.closed) throw new Error("Written after close");
    if (++this.calls === this.failOn) {
      throw new Error("No space left on device");
    }
    const n = Math.min(bytes.length, this.maxChunk);
    this.chunks.push(bytes.slice(0, n));
    return n;
  }
  close(): void {
    this.closed = true;
  }
  get bytes(): Uint8Array {
    return new Uint8Array(this.chunks.flatMap((chunk) => [...chunk]));
  }
}

Deno.test("PcapWriter: the header at once, then one write per record, stamped by its clock", () => {
  const sink = new MemorySink();
  let now = 1_000.5;
  const writer = new PcapWriter(sink, { now: () => now });
  deepStrictEqual(sink.chunks, [encodePcapHeader()]);
  writer.write(SYN, ALICE, BOB);
  now = 1_002.25;
  writer.write(TWO[1].payload, BOB, ALICE);
  strictEqual(sink.chunks.length, 3, "one write call per record");
  deepStrictEqual(decodePcap(sink.bytes), TWO);
  deepStrictEqual(
    sink.chunks[2],
    encodePcapRecord(TWO[1], { id: 1 }),
    "IPv4 Identification counts records",
  );
  writer.close();
  ok(sink.closed);
  strictEqual(writer.capturing, false);
  writer.write(SYN, ALICE, BOB); // ignored, no throw
  strictEqual(sink.chunks.length, 3);
});

Deno.test("PcapWriter: a short write is completed", () => {
  const sink = new MemorySink(Infinity, 10);
  const writer = new PcapWriter(sink, { now: () => 1_000.5 });
  writer.write(SYN, ALICE, BOB);
  deepStrictEqual(decodePcap(sink.bytes), [TWO[0]]);
});

Deno.test("PcapWriter: a failed write is reported once, stops the capture and never throws", () => {
  const sink = new MemorySink(3);
  const errors: unknown[] = [];
  const writer = new PcapWriter(sink, {
    now: () => 1_000.5,
    onError: (error) => errors.push(error),
  });
  writer.write(SYN, ALICE, BOB);
  writer.write(SYN, ALICE, BOB); // the sink fails
  writer.write(SYN, ALICE, BOB);
  strictEqual(errors.length, 1);
  ok(String(errors[0]).includes("No space left on device"));
  strictEqual(writer.capturing, false);
  ok(sink.closed, "the file is closed");
  deepStrictEqual(decodePcap(sink.bytes), [TWO[0]]);
});

Deno.test("PcapWriter: a sink that cannot take the header throws from the constructor", () => {
  assertThrows(() => new PcapWriter(new MemorySink(1)), Error, "No space left");
});
