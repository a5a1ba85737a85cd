/**
 * Ladder diagrams (lib/ladder/svg.ts): what each arrow says and how it is
 * marked, and that the SVG is well-formed XML (checked by an independent
 * XML parser, fast-xml-parser, plus a check for characters XML forbids)
 * holding one arrow per datagram with the trace's labels.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { Op } from "../../lib/wire/datagram.ts";
import type { LadderEvent } from "../../lib/ladder/sources.ts";
import { escapeXml, ladderRows, renderLadder } from "../../lib/ladder/svg.ts";
import { chat, control } from "../support/datagrams.ts";
import { all, hasClass, parseSvg } from "../support/svg.ts";

const A = "127.0.88.10:7777";
const B = "127.0.88.11:7777";

const SYN = control(Op.SYN, 0, "alice");
const SYN_ACK = control(Op.SYN_ACK, 0, "bob");
const ACK0_A = control(Op.ACK, 0, "alice");
const HI = chat(0, "alice", "hi");
const ACK0_B = control(Op.ACK, 0, "bob");

/** A handshake, a lost ACK and its retransmission, the way a relay logs it. */
const LOSSY: LadderEvent[] = [
  { t: 10, from: A, to: B, bytes: SYN, fate: "forwarded" },
  { t: 12, from: B, to: A, bytes: SYN_ACK, fate: "forwarded" },
  { t: 13, from: A, to: B, bytes: ACK0_A, fate: "forwarded" },
  { t: 20, from: A, to: B, bytes: HI, fate: "forwarded" },
  { t: 21, from: B, to: A, bytes: ACK0_B, fate: "dropped" },
  { t: 5020, from: A, to: B, bytes: HI, fate: "forwarded", delay: 300 },
  { t: 5020, from: A, to: B, bytes: HI, fate: "forwarded", dup: true },
  { t: 5021, from: B, to: A, bytes: ACK0_B, fate: "forwarded" },
  { t: 5322, from: B, to: A, bytes: ACK0_B, fate: "forwarded" },
];

Deno.test("ladder rows: labels as the wire trace, times from the first datagram, in time order", () => {
  const shuffled = [LOSSY[1], LOSSY[0], ...LOSSY.slice(2)];
  const rows = ladderRows(shuffled);
  deepStrictEqual(rows.map((row) => [row.t, row.label]), [
    [0, "SYN seq=0 user=alice"],
    [2, "SYN+ACK seq=0 user=bob"],
    [3, "ACK seq=0 user=alice"],
    [10, 'CHAT seq=0 user=alice "hi"'],
    [11, "ACK seq=0 user=bob"],
    [5010, 'CHAT seq=0 user=alice "hi"'],
    [5010, 'CHAT seq=0 user=alice "hi"'],
    [5011, "ACK seq=0 user=bob"],
    [5312, "ACK seq=0 user=bob"],
  ]);
});

Deno.test("ladder rows: retransmissions, repeated ACKs, the relay's duplicates, drops and delays are marked", () => {
  const rows = ladderRows(LOSSY);
  deepStrictEqual(rows.map((row) => [row.kind, row.marks]), [
    ["normal", []],
    ["normal", []],
    ["normal", []],
    ["normal", []],
    ["dropped", ["dropped"]],
    ["retransmission", ["retransmission 1", "delayed 300 ms"]],
    ["duplicate", ["duplicate copy"]],
    ["retransmission", ["repeated ACK 1"]],
    ["retransmission", ["repeated ACK 2"]],
  ]);
});

Deno.test("ladder rows: a new datagram in a direction ends the repeats; other directions do not", () => {
  const rows = ladderRows([
    { t: 0, from: A, to: B, bytes: HI },
    { t: 1, from: B, to: A, bytes: ACK0_B },
    { t: 2, from: A, to: B, bytes: HI },
    { t: 3, from: A, to: B, bytes: chat(1, "alice", "next") },
    { t: 4, from: A, to: B, bytes: HI },
  ]);
  deepStrictEqual(rows.map((row) => row.marks), [
    [],
    [],
    ["retransmission 1"],
    [],
    [],
  ]);
});

Deno.test("ladder rows: malformed and corrupted datagrams say so", () => {
  const bad = new Uint8Array([...SYN, 0x41]);
  const rows = ladderRows([
    { t: 0, from: A, to: B, bytes: bad },
    { t: 1, from: A, to: B, bytes: SYN.slice(0, 5) },
    { t: 2, from: A, to: B, bytes: SYN, corrupted: true },
  ]);
  deepStrictEqual(rows.map((row) => [row.label, row.kind, row.marks]), [
    ["malformed (length-mismatch), 40 bytes", "malformed", []],
    ["malformed (too-short), 5 bytes", "malformed", []],
    ["SYN seq=0 user=alice", "malformed", ["corrupted"]],
  ]);
});

Deno.test("ladder SVG: well-formed, one lifeline per address, one arrow per datagram with its label", () => {
  const svg = renderLadder(LOSSY, { title: "lost ACK" });
  const root = parseSvg(svg);
  strictEqual(root.attrs.xmlns, "http://www.w3.org/2000/svg");
  const lifelines = all(root, (e) => hasClass(e, "lifeline"));
  deepStrictEqual(lifelines.map((e) => e.attrs["data-address"]), [A, B]);
  deepStrictEqual(
    lifelines.map((e) => e.children.filter((c) => c.name === "text")[1].text),
    ["user alice", "user bob"],
  );
  const arrows = all(root, (e) => hasClass(e, "datagram"));
  strictEqual(arrows.length, LOSSY.length);
  const rows = ladderRows(LOSSY);
  arrows.forEach((arrow, i) => {
    strictEqual(arrow.attrs["data-from"], rows[i].event.from);
    strictEqual(arrow.attrs["data-to"], rows[i].event.to);
    strictEqual(Number(arrow.attrs["data-t"]), rows[i].t);
    ok(hasClass(arrow, rows[i].kind), `arrow ${i} is ${rows[i].kind}`);
    const label = arrow.children.find((c) => hasClass(c, "label"))!.text;
    const want = rows[i].marks.length === 0
      ? rows[i].label
      : `${rows[i].label}  [${rows[i].marks.join(", ")}]`;
    strictEqual(label, want);
  });
});

Deno.test("ladder SVG: a dropped datagram ends in a cross, short of the receiver, without an arrowhead", () => {
  const root = parseSvg(renderLadder(LOSSY));
  const arrows = all(root, (e) => hasClass(e, "datagram"));
  const dropped = arrows.filter((e) => hasClass(e, "dropped"));
  strictEqual(dropped.length, 1);
  strictEqual(all(root, (e) => hasClass(e, "cross")).length, 1);
  const line = dropped[0].children.find((c) => c.name === "line")!;
  strictEqual(line.attrs["marker-end"], undefined);
  const lanes = all(root, (e) => hasClass(e, "lifeline"));
  const laneX = (i: number) =>
    Number(lanes[i].children.find((c) => c.name === "line")!.attrs.x1);
  const end = Number(line.attrs.x2);
  // B → A: from B's lifeline towards A's, stopping before it.
  ok(end < laneX(1) && end > laneX(0), `cross between the lifelines (${end})`);
  for (const other of arrows.filter((e) => !hasClass(e, "dropped"))) {
    const l = other.children.find((c) => c.name === "line")!;
    ok(l.attrs["marker-end"]?.startsWith("url(#head-"), "an arrowhead");
  }
});

Deno.test("ladder SVG: a long pause gets extra room and says how long it was", () => {
  const root = parseSvg(renderLadder(LOSSY));
  const texts = all(root, (e) => e.name === "text").map((e) => e.text);
  ok(texts.includes("⋮ 5.00 s later"), texts.join(" | "));
  ok(texts.includes("+5.010 s"));
});

Deno.test("ladder SVG: names and messages from the wire are escaped, control characters shown", () => {
  const nasty = "x</text><script>\"'&";
  const events: LadderEvent[] = [
    { t: 0, from: A, to: B, bytes: chat(0, "<b>&\"'", nasty) },
    {
      t: 1,
      from: B,
      to: A,
      // A user name with control characters, as a peer may send it.
      bytes: new Uint8Array([
        1,
        4,
        0,
        0x62,
        0x01,
        0x1b,
        0x7f,
        ...new Uint8Array(28),
        0,
        0,
        0,
        0,
      ]),
    },
  ];
  const svg = renderLadder(events, { title: "<&>" });
  const root = parseSvg(svg);
  ok(!svg.includes("<script>"), "no markup from the wire");
  const labels = all(root, (e) => hasClass(e, "label")).map((e) => e.text);
  deepStrictEqual(labels, [
    `CHAT seq=0 user=<b>&"' ${JSON.stringify(nasty)}`,
    "ACK seq=0 user=b\\x01\\x1b\x7f",
  ]);
  strictEqual(root.children.find((e) => e.name === "title")!.text, "<&>");
});

Deno.test("escapeXml: markup escaped, forbidden characters shown, pairs kept", () => {
  strictEqual(escapeXml(`<a b="c">&'`), "&lt;a b=&quot;c&quot;&gt;&amp;&apos;");
  strictEqual(escapeXml("\x00\t\n\r\x1f"), "\\x00\t\n\r\\x1f");
  strictEqual(
    escapeXml("\ud83d\ude00 \ud800 \udc00 \ufffe"),
    "\ud83d\ude00 \\ud800 \\udc00 \\ufffe",
  );
});

Deno.test("ladder SVG: an empty trace is still a well-formed diagram", () => {
  const root = parseSvg(renderLadder([]));
  strictEqual(all(root, (e) => hasClass(e, "datagram")).length, 0);
});

Deno.test("ladder SVG: a held copy that was overtaken arrives below the copy that overtook it; other held copies do not stretch", () => {
  const events: LadderEvent[] = [
    { t: 0, from: A, to: B, bytes: HI, fate: "forwarded", delay: 300 },
    { t: 0, from: A, to: B, bytes: HI, fate: "forwarded", dup: true },
    { t: 1, from: B, to: A, bytes: ACK0_B, fate: "forwarded", delay: 5 },
    { t: 2, from: A, to: B, bytes: chat(1, "alice", "x"), fate: "forwarded" },
  ];
  const root = parseSvg(renderLadder(events));
  const lines = all(root, (e) => hasClass(e, "datagram")).map((g) => {
    const l = g.children.find((c) => c.name === "line")!;
    return { y1: Number(l.attrs.y1), y2: Number(l.attrs.y2) };
  });
  // The first copy, held 300 ms, arrives after every later row started.
  ok(lines[0].y2 > lines[3].y1, JSON.stringify(lines));
  // The ACK held 5 ms was not overtaken: the usual slant.
  strictEqual(lines[2].y2 - lines[2].y1, lines[1].y2 - lines[1].y1);
});
