/**
 * `simp ladder` as a whole (lib/ladder/run.ts) on the real captures and
 * the real relay log in docs/: the diagrams committed next to them are what it draws from them
 * (compared element by element: `deno fmt` lays the committed files out
 * differently), and each holds one arrow per datagram of its capture.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { MAX_LADDER_DATAGRAMS, runLadder } from "../../lib/ladder/run.ts";
import { ladderRows } from "../../lib/ladder/svg.ts";
import { readLadderInput } from "../../lib/ladder/sources.ts";
import {
  CHAT_TITLE,
  LOSSY_TITLE,
  RELAY_TITLE,
} from "../../tools/ladder_docs.ts";
import { ROOT } from "../../tools/_processes.ts";
import { all, type Element, hasClass, parseSvg } from "../support/svg.ts";

/** Draws `file` with runLadder, returning the SVG and what was reported. */
async function draw(
  file: string,
  title?: string,
): Promise<{ code: number; svg: string; lines: string[] }> {
  let svg = "";
  const lines: string[] = [];
  const code = await runLadder({ file, title }, {
    report: (line) => lines.push(line),
    write: (text) => svg = text,
  });
  return { code, svg, lines };
}

/** An element tree with whitespace in texts normalised, for comparing. */
function normalised(e: Element): unknown {
  return {
    name: e.name,
    attrs: e.attrs,
    text: e.text.trim().replace(/\s+/g, " "),
    children: e.children.map(normalised),
  };
}

const DOCS = [
  { name: "ladder-chat", input: "ladder-chat.pcap", title: CHAT_TITLE },
  { name: "ladder-lossy", input: "ladder-lossy.pcap", title: LOSSY_TITLE },
  { name: "ladder-relay", input: "ladder-relay.jsonl", title: RELAY_TITLE },
];

for (const { name, input, title } of DOCS) {
  Deno.test(`docs/${name}.svg is what simp ladder draws from docs/${input}`, async () => {
    const file = new URL(`docs/${input}`, ROOT).pathname;
    const { code, svg, lines } = await draw(file, title);
    strictEqual(code, 0, lines.join("\n"));
    const committed = await Deno.readTextFile(
      new URL(`docs/${name}.svg`, ROOT),
    );
    deepStrictEqual(
      normalised(parseSvg(svg)),
      normalised(parseSvg(committed)),
    );
    const events = readLadderInput(await Deno.readFile(file));
    const arrows = all(parseSvg(svg), (e) => hasClass(e, "datagram"));
    strictEqual(arrows.length, events.length);
    deepStrictEqual(
      arrows.map((e) => e.children.find((c) => hasClass(c, "label"))!.text),
      ladderRows(events).map((row) =>
        row.marks.length ? `${row.label}  [${row.marks.join(", ")}]` : row.label
      ),
    );
  });
}

Deno.test("the lossy capture shows the retransmitted SYN+ACK and chat message and the repeated ACK", async () => {
  const { svg } = await draw(new URL("docs/ladder-lossy.pcap", ROOT).pathname);
  const marked = all(parseSvg(svg), (e) => hasClass(e, "retransmission"))
    .map((e) => e.children.find((c) => hasClass(c, "label"))!.text);
  deepStrictEqual(marked, [
    "SYN+ACK seq=0 user=bob  [retransmission 1]",
    'CHAT seq=0 user=alice "hi bob, can you hear me?"  [retransmission 1]',
    "ACK seq=0 user=bob  [repeated ACK 1]",
    'CHAT seq=0 user=bob "yes, once"  [retransmission 1]',
  ]);
});

Deno.test("simp ladder: an input it cannot read is one line naming the file, exit 1", async () => {
  const readme = new URL("README.md", ROOT).pathname;
  const { code, lines } = await draw(readme);
  strictEqual(code, 1);
  deepStrictEqual(lines, [
    `simp: ${readme}: Neither a pcap capture nor a simp relay log (JSON lines): give a file written by simp daemon --pcap, tcpdump -w or simp relay`,
  ]);
  const folder = await draw(new URL("docs", ROOT).pathname);
  strictEqual(folder.code, 1);
  ok(folder.lines[0].startsWith("simp: Cannot read "), folder.lines[0]);
});

Deno.test("simp ladder: a capture with no datagram in it is one line saying there is nothing to draw, exit 1", async () => {
  // tests/ladder/empty.pcap: a pcap header (link type 101) and no record.
  const empty = new URL("tests/ladder/empty.pcap", ROOT).pathname;
  const { code, svg, lines } = await draw(empty);
  strictEqual(code, 1);
  strictEqual(svg, "");
  deepStrictEqual(lines, [
    `simp: ${empty}: Nothing to draw: it holds no UDP datagram over IPv4 (a capture of other traffic, of IPv6, or of a link type simp ladder does not read?)`,
  ]);
});

Deno.test("the relay log's diagram shows drops as crosses, the relay's extra copies and the retransmissions they caused", async () => {
  const file = new URL("docs/ladder-relay.jsonl", ROOT).pathname;
  const { svg } = await draw(file);
  const root = parseSvg(svg);
  const log = (await Deno.readTextFile(file)).trim().split("\n").map((line) =>
    JSON.parse(line) as { fate: string; dup: boolean }
  );
  const count = (kind: string) =>
    all(root, (e) => hasClass(e, "datagram") && hasClass(e, kind)).length;
  const dropped = log.filter((r) => r.fate === "dropped").length;
  ok(dropped > 0 && log.some((r) => r.dup), "the log has drops and copies");
  strictEqual(count("dropped"), dropped);
  strictEqual(all(root, (e) => hasClass(e, "cross")).length, dropped);
  strictEqual(
    count("duplicate"),
    log.filter((r) => r.dup && r.fate !== "dropped").length,
  );
  ok(count("retransmission") > 0, "the daemons retransmitted");
});

Deno.test("a huge capture is drawn bounded: the first datagrams, said on stderr, no crash", async () => {
  // 300,000 datagrams (a few minutes of a fast chat) crashed it with
  // "RangeError: Maximum call stack size exceeded"; an SVG of them all
  // would be unreadable anyway.
  const { encodePcapHeader, encodePcapRecord } = await import(
    "../../lib/wire/pcap.ts"
  );
  const { encodeDatagram, Op, Type } = await import(
    "../../lib/wire/datagram.ts"
  );
  const alice = { ip: "127.0.105.1", port: 7777 };
  const bob = { ip: "127.0.105.2", port: 7777 };
  const count = 300_000;
  const parts: Uint8Array[] = [encodePcapHeader()];
  for (let i = 0; i < count; i++) {
    const seq = ((i >> 1) & 1) as 0 | 1;
    parts.push(encodePcapRecord(
      i % 2 === 0
        ? {
          timeMs: i,
          from: alice,
          to: bob,
          payload: encodeDatagram({
            type: Type.CHAT,
            op: Op.CHAT,
            seq,
            user: "alice",
            payload: `message ${i}`,
          }),
        }
        : {
          timeMs: i,
          from: bob,
          to: alice,
          payload: encodeDatagram({
            type: Type.CONTROL,
            op: Op.ACK,
            seq,
            user: "bob",
            payload: "",
          }),
        },
    ));
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, part) => (bytes.set(part, at), at + part.length), 0);
  let svg = "";
  const lines: string[] = [];
  const code = await runLadder({ file: "huge.pcap" }, {
    read: () => Promise.resolve(bytes),
    report: (line) => lines.push(line),
    write: (text) => svg = text,
  });
  strictEqual(code, 0, lines.join("\n"));
  deepStrictEqual(lines, [
    `simp: huge.pcap: drew the first ${MAX_LADDER_DATAGRAMS} datagrams of ${count} (a longer ladder is unreadable: cut the capture to the part to see, e.g. with editcap -r)`,
  ]);
  const arrows = all(parseSvg(svg), (e) => hasClass(e, "datagram")).length;
  strictEqual(arrows, MAX_LADDER_DATAGRAMS);
});
