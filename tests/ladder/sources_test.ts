/**
 * The inputs of `simp ladder` (lib/ladder/sources.ts): pcap captures and the
 * JSON-lines log of `simp relay`, recognised by their content, read into
 * events, and every broken line refused with its line number.
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  detectLadderInput,
  eventsFromRelayLog,
  LadderInputError,
  readLadderInput,
} from "../../lib/ladder/sources.ts";
import { encodePcapHeader, encodePcapRecord } from "../../lib/wire/pcap.ts";
import { Op } from "../../lib/wire/datagram.ts";
import { control } from "../support/datagrams.ts";

const SYN = control(Op.SYN, 0, "alice");
const SYN_HEX = [...SYN].map((b) => b.toString(16).padStart(2, "0")).join("");
const LINE = JSON.stringify({
  t: 12.345,
  from: "127.0.88.20:7777",
  to: "127.0.88.21:7777",
  fate: "forwarded",
  delay: 0,
  dup: false,
  corrupted: false,
  hex: SYN_HEX,
});

function refused(text: string, message: string): void {
  throws(
    () => eventsFromRelayLog(text),
    (error) => {
      ok(error instanceof LadderInputError, String(error));
      strictEqual(error.message, message);
      return true;
    },
  );
}

Deno.test("relay log: each line is one event with its fate, delay, copy and corruption flags", () => {
  const dropped = LINE.replace('"forwarded"', '"dropped"')
    .replace('"dup":false', '"dup":true').replace('"delay":0', '"delay":250');
  const events = eventsFromRelayLog(`${LINE}\n\n${dropped}\n`);
  deepStrictEqual(events, [
    {
      t: 12.345,
      from: "127.0.88.20:7777",
      to: "127.0.88.21:7777",
      bytes: SYN,
      fate: "forwarded",
      delay: 0,
      dup: false,
      corrupted: false,
    },
    {
      t: 12.345,
      from: "127.0.88.20:7777",
      to: "127.0.88.21:7777",
      bytes: SYN,
      fate: "dropped",
      delay: 250,
      dup: true,
      corrupted: false,
    },
  ]);
});

Deno.test("relay log: a last line cut short (a relay killed mid-write) is skipped, the rest drawn", () => {
  const cut = LINE.slice(0, 40);
  deepStrictEqual(eventsFromRelayLog(`${LINE}\n${cut}`).length, 1);
  deepStrictEqual(eventsFromRelayLog(`${LINE}\n${LINE}\n${cut}`).length, 2);
  // Only the last line, and only without its newline: a broken line within
  // the log is still refused.
  refused(
    `${cut}\n${LINE}\n`,
    "Relay log line 1 is not JSON: each line must be one JSON object as simp relay writes it",
  );
  refused(
    `${LINE}\n${cut}\n`,
    "Relay log line 2 is not JSON: each line must be one JSON object as simp relay writes it",
  );
});

Deno.test("relay log: a broken line is refused, naming the line and the field", () => {
  const edit = (key: string, value: unknown) =>
    JSON.stringify({ ...JSON.parse(LINE), [key]: value });
  refused(
    `${LINE}\nnot json`,
    "Relay log line 2 is not JSON: each line must be one JSON object as simp relay writes it",
  );
  refused("[1,2]", "Relay log line 1 is not a JSON object");
  refused(edit("t", "soon"), 'Relay log line 1: "t" must be a number of ms');
  refused(
    edit("from", "127.0.0.1"),
    'Relay log line 1: "from" must be an address such as "127.0.0.1:7777"',
  );
  refused(
    edit("to", "300.0.0.1:7777"),
    'Relay log line 1: "to" must be an address such as "127.0.0.1:7777"',
  );
  refused(
    edit("fate", "lost"),
    'Relay log line 1: "fate" must be "forwarded" or "dropped"',
  );
  refused(
    edit("delay", -1),
    'Relay log line 1: "delay" must be a number of ms, 0 or more',
  );
  refused(edit("dup", "no"), 'Relay log line 1: "dup" must be true or false');
  refused(
    edit("hex", "abc"),
    `Relay log line 1: "hex" must be the datagram's bytes as an even number of hex digits`,
  );
});

Deno.test("inputs are recognised by their content: pcap magic (either order), pcapng, relay log", () => {
  strictEqual(detectLadderInput(encodePcapHeader()), "pcap");
  strictEqual(
    detectLadderInput(new Uint8Array([0xa1, 0xb2, 0xc3, 0xd4])),
    "pcap",
  );
  strictEqual(
    detectLadderInput(new TextEncoder().encode(`\n ${LINE}`)),
    "relay-log",
  );
  throws(
    () => detectLadderInput(new TextEncoder().encode("hello")),
    /Neither a pcap capture nor a simp relay log/,
  );
  throws(
    () =>
      readLadderInput(
        new Uint8Array([0x0a, 0x0d, 0x0d, 0x0a, ...new Uint8Array(24)]),
      ),
    /pcapng file: save it as classic pcap/,
  );
  throws(
    () => readLadderInput(new Uint8Array([0x7b, 0xff, 0xfe])),
    /not valid UTF-8/,
  );
});

Deno.test("a pcap capture becomes one event per UDP datagram, with ip:port addresses and ms times", () => {
  const record = encodePcapRecord({
    timeMs: 1_700_000_000_250,
    from: { ip: "127.0.88.20", port: 40000 },
    to: { ip: "127.0.88.21", port: 7777 },
    payload: SYN,
  });
  const events = readLadderInput(
    new Uint8Array([...encodePcapHeader(), ...record]),
  );
  deepStrictEqual(events, [{
    t: 1_700_000_000_250,
    from: "127.0.88.20:40000",
    to: "127.0.88.21:7777",
    bytes: SYN,
  }]);
});
