/**
 * Ladder (sequence) diagrams of SIMP traffic as SVG: pure functions from
 * {@linkcode LadderEvent}s to an SVG document, for `simp ladder`.
 *
 * One lifeline per address (`ip:port`, with the user name its datagrams
 * carry), one arrow per datagram in time order, labelled like the daemon's
 * wire trace (`SYN+ACK seq=0 user=bob`). A datagram that repeats the
 * previous one in the same direction byte for byte is marked as a
 * retransmission (a repeated ACK as such); the relay's extra copies as
 * duplicates; datagrams the relay dropped end in a cross before the
 * receiver's lifeline; a relay's delay makes the arrow arrive later. The
 * time since the first datagram is written at the left of each arrow; a
 * pause of more than {@linkcode GAP_MS} gets extra room, so that the
 * retransmission timeout is visible without stretching the picture.
 *
 * Every text from the input (user names, messages) is escaped for XML, and
 * characters XML cannot carry are shown as `\xNN`.
 *
 * @module
 */

import {
  type Datagram,
  decodeDatagram,
  describeDatagram,
  MalformedDatagramError,
  Op,
  Type,
} from "../wire/datagram.ts";
import type { LadderEvent } from "./sources.ts";

/** A pause longer than this (ms) gets extra vertical room. */
export const GAP_MS = 500;

/** How a datagram is drawn. */
export type LadderKind =
  | "normal"
  | "retransmission"
  | "duplicate"
  | "dropped"
  | "malformed";

/** One arrow of the diagram: an event with what the ladder says of it. */
export interface LadderRow {
  /** The event drawn. */
  event: LadderEvent;
  /** Time since the first event, in ms. */
  t: number;
  /** The wire-trace description, or why it is malformed. */
  label: string;
  /** Remarks shown after the label, e.g. `retransmission 2`, `dropped`. */
  marks: string[];
  /** How it is drawn (colour, dashes, cross). */
  kind: LadderKind;
}

/**
 * The rows of a ladder: `events` sorted by time (stable), each labelled and
 * marked. This is what {@linkcode renderLadder} draws, one arrow per row.
 *
 * @example
 * ```ts
 * import { encodeDatagram, Op, Type } from "../wire/datagram.ts";
 * import { ladderRows } from "./svg.ts";
 * const syn = encodeDatagram({
 *   type: Type.CONTROL, op: Op.SYN, seq: 0, user: "alice", payload: "",
 * });
 * const a = "127.0.0.1:7777", b = "127.0.0.2:7777";
 * const rows = ladderRows([
 *   { t: 0, from: a, to: b, bytes: syn },
 *   { t: 5000, from: a, to: b, bytes: syn },
 * ]);
 * console.log(rows[1].label, rows[1].marks); // SYN seq=0 user=alice [ "retransmission 1" ]
 * ```
 */
export function ladderRows(events: readonly LadderEvent[]): LadderRow[] {
  const sorted = events.map((event, i) => ({ event, i }))
    .sort((a, b) => a.event.t - b.event.t || a.i - b.i)
    .map(({ event }) => event);
  const start = sorted[0]?.t ?? 0;
  const last = new Map<string, { bytes: Uint8Array; repeats: number }>();
  return sorted.map((event) => {
    let datagram: Datagram | undefined;
    let label: string;
    try {
      datagram = decodeDatagram(event.bytes);
      label = describeDatagram(datagram);
    } catch (error) {
      if (!(error instanceof MalformedDatagramError)) throw error;
      label = `malformed (${error.reason}), ${event.bytes.length} bytes`;
    }
    const marks: string[] = [];
    let kind: LadderKind = datagram ? "normal" : "malformed";
    if (event.dup) {
      marks.push("duplicate copy");
      kind = "duplicate";
    } else {
      const direction = `${event.from}>${event.to}`;
      const previous = last.get(direction);
      if (previous && sameBytes(previous.bytes, event.bytes)) {
        previous.repeats++;
        const isAck = datagram?.type === Type.CONTROL &&
          datagram.op === Op.ACK;
        marks.push(
          isAck
            ? `repeated ACK ${previous.repeats}`
            : `retransmission ${previous.repeats}`,
        );
        if (kind === "normal") kind = "retransmission";
      } else {
        last.set(direction, { bytes: event.bytes, repeats: 0 });
      }
    }
    if (event.corrupted) {
      marks.push("corrupted");
      kind = "malformed";
    }
    if ((event.delay ?? 0) > 0) marks.push(`delayed ${fmtMs(event.delay!)}`);
    if (event.fate === "dropped") {
      marks.push("dropped");
      kind = "dropped";
    }
    return { event, t: event.t - start, label, marks, kind };
  });
}

/** Options of {@linkcode renderLadder}. */
export interface RenderLadderOptions {
  /** A title above the diagram (default none). */
  title?: string;
}

const ROW = 30;
const GAP_EXTRA = 22;
const TIME_COLUMN = 96;
const SIDE = 110;
const TOP_TITLE = 34;
const HEADER = 46;
const LABEL_CHARS = 72;
const CHAR_WIDTH = 7.2;
const SLANT = 12;

const COLOURS: Record<LadderKind, string> = {
  normal: "#1f4e9c",
  retransmission: "#d9730d",
  duplicate: "#7a3db8",
  dropped: "#c62828",
  malformed: "#6b6b6b",
};

/**
 * The SVG document of the ladder diagram of `events` (see the module
 * documentation): a complete, standalone, well-formed XML document.
 *
 * @example
 * ```ts
 * import { renderLadder } from "./svg.ts";
 * const svg = renderLadder([], { title: "nothing yet" });
 * console.log(svg.startsWith("<?xml")); // true
 * ```
 */
export function renderLadder(
  events: readonly LadderEvent[],
  options: RenderLadderOptions = {},
): string {
  const rows = ladderRows(events);
  const lanes = lifelines(rows);
  const labels = rows.map((row) => labelText(row, LABEL_CHARS));
  const longest = labels.reduce((most, l) => Math.max(most, l.length), 0);
  const spacing = Math.min(
    560,
    Math.max(230, Math.ceil(longest * CHAR_WIDTH) + 40),
  );
  const x = (address: string) =>
    TIME_COLUMN + SIDE + lanes.index.get(address)! * spacing;
  const top = (options.title ? TOP_TITLE : 8) + HEADER + 26;

  // One y per row; a long pause gets extra room.
  const ys: number[] = [];
  let y = top;
  rows.forEach((row, i) => {
    if (i > 0) {
      y += ROW + (row.t - rows[i - 1].t > GAP_MS ? GAP_EXTRA : 0);
    }
    ys.push(y);
  });
  const bottom = (ys.at(-1) ?? top) + ROW + 10;
  const yAt = (t: number) => interpolate(rows, ys, t);

  const width = Math.max(
    LEGEND_WIDTH,
    TIME_COLUMN + 2 * SIDE + Math.max(0, lanes.list.length - 1) * spacing,
  );
  const legendY = bottom + 28;
  const height = legendY + 24;
  const out: string[] = [];
  out.push(
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${esc(options.title ?? "SIMP ladder diagram")}</title>`,
    `<defs>`,
    ...(Object.keys(COLOURS) as LadderKind[]).map((kind) =>
      `<marker id="head-${kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${
        COLOURS[kind]
      }"/></marker>`
    ),
    `</defs>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`,
  );
  if (options.title) {
    out.push(
      `<text x="${
        width / 2
      }" y="22" text-anchor="middle" font-size="15" font-weight="bold">${
        esc(options.title)
      }</text>`,
    );
  }
  const headerY = options.title ? TOP_TITLE : 8;
  for (const lane of lanes.list) {
    const lx = x(lane.address);
    out.push(
      `<g class="lifeline" data-address="${esc(lane.address)}">`,
      `<rect x="${lx - 95}" y="${headerY}" width="190" height="${
        HEADER - 6
      }" rx="6" fill="#eef2f8" stroke="#1f4e9c"/>`,
      `<text x="${lx}" y="${
        headerY + 17
      }" text-anchor="middle" font-weight="bold">${esc(lane.address)}</text>`,
      `<text x="${lx}" y="${headerY + 33}" text-anchor="middle" fill="#444">${
        esc(lane.user === undefined ? "" : `user ${lane.user || "(none)"}`)
      }</text>`,
      `<line x1="${lx}" y1="${
        headerY + HEADER - 6
      }" x2="${lx}" y2="${bottom}" stroke="#999" stroke-dasharray="4 3"/>`,
      `</g>`,
    );
  }
  out.push(
    `<text x="8" y="${top - 14}" fill="#444" font-weight="bold">time</text>`,
  );
  rows.forEach((row, i) => {
    const y1 = ys[i];
    const fromX = x(row.event.from);
    const toX = x(row.event.to);
    const arrive = arrival(row);
    // A held copy that a later one overtook arrives where its time says,
    // so that the arrows cross; any other arrives just below where it left.
    const y2 = overtaken(rows, i)
      ? Math.max(yAt(arrive), y1 + SLANT)
      : y1 + SLANT;
    const colour = COLOURS[row.kind];
    const dash = row.kind === "duplicate" || row.kind === "malformed"
      ? ` stroke-dasharray="6 3"`
      : "";
    const classes = ["datagram", row.kind].join(" ");
    out.push(
      `<g class="${classes}" data-from="${esc(row.event.from)}" data-to="${
        esc(row.event.to)
      }" data-t="${round(row.t)}">`,
      `<title>${
        esc(
          `+${fmtSeconds(row.t)} ${row.event.from} → ${row.event.to}  ${
            labelText(row)
          } (${row.event.bytes.length} bytes)`,
        )
      }</title>`,
    );
    if (i > 0 && row.t - rows[i - 1].t > GAP_MS) {
      out.push(
        `<text x="8" y="${y1 - 17}" fill="#888" font-size="11">⋮ ${
          fmtMs(row.t - rows[i - 1].t)
        } later</text>`,
      );
    }
    out.push(
      `<text x="8" y="${y1 + 4}" fill="#444">+${fmtSeconds(row.t)}</text>`,
    );
    if (fromX === toX) {
      const loop = 40;
      out.push(
        `<path d="M${fromX},${y1} C${fromX + loop},${y1} ${
          fromX + loop
        },${y2} ${fromX},${y2}" fill="none" stroke="${colour}" stroke-width="1.6"${dash} marker-end="url(#head-${row.kind})"/>`,
        labelElement(fromX + loop + 6, y1 + 4, "start", labels[i], colour),
      );
    } else if (row.kind === "dropped") {
      const endX = fromX + (toX - fromX) * 0.6;
      const endY = y1 + (y2 - y1) * 0.6;
      out.push(
        `<line x1="${fromX}" y1="${y1}" x2="${round(endX)}" y2="${
          round(endY)
        }" stroke="${colour}" stroke-width="1.6"/>`,
        `<path class="cross" d="M${round(endX - 6)},${round(endY - 6)} L${
          round(endX + 6)
        },${round(endY + 6)} M${round(endX - 6)},${round(endY + 6)} L${
          round(endX + 6)
        },${round(endY - 6)}" stroke="${colour}" stroke-width="2.4"/>`,
        labelElement((fromX + toX) / 2, y1 - 5, "middle", labels[i], colour),
      );
    } else {
      out.push(
        `<line x1="${fromX}" y1="${y1}" x2="${toX}" y2="${
          round(y2)
        }" stroke="${colour}" stroke-width="1.6"${dash} marker-end="url(#head-${row.kind})"/>`,
        labelElement((fromX + toX) / 2, y1 - 5, "middle", labels[i], colour),
      );
    }
    out.push(`</g>`);
  });
  out.push(...legend(legendY));
  out.push(`</svg>`, "");
  return out.join("\n");
}

/**
 * The label and its marks, as drawn: the label is shortened with `…` to fit
 * in `max` characters, never the marks.
 */
function labelText(row: LadderRow, max = Infinity): string {
  const marks = row.marks.length === 0 ? "" : `  [${row.marks.join(", ")}]`;
  return clip(row.label, Math.max(24, max - marks.length)) + marks;
}

function labelElement(
  x: number,
  y: number,
  anchor: "start" | "middle",
  text: string,
  colour: string,
): string {
  return `<text class="label" x="${round(x)}" y="${
    round(y)
  }" text-anchor="${anchor}" font-family="Menlo, Consolas, monospace" fill="${colour}" stroke="white" stroke-width="3" paint-order="stroke">${
    esc(text)
  }</text>`;
}

const LEGEND: readonly [LadderKind, string][] = [
  ["normal", "datagram"],
  ["retransmission", "retransmission / repeated ACK"],
  ["duplicate", "duplicate copy (relay)"],
  ["dropped", "dropped (relay)"],
  ["malformed", "malformed or corrupted"],
];

/** Where the legend's item starting at `x` ends. */
function legendStep(x: number, text: string): number {
  return x + 44 + Math.ceil(text.length * 6.2);
}

const LEGEND_WIDTH = LEGEND.reduce((x, [, text]) => legendStep(x, text), 10);

function legend(y: number): string[] {
  const items = LEGEND;
  const out = [`<g class="legend" font-size="11">`];
  let x = 10;
  for (const [kind, text] of items) {
    const colour = COLOURS[kind];
    const dash = kind === "duplicate" || kind === "malformed"
      ? ` stroke-dasharray="6 3"`
      : "";
    if (kind === "dropped") {
      out.push(
        `<line x1="${x}" y1="${y}" x2="${
          x + 24
        }" y2="${y}" stroke="${colour}" stroke-width="1.6"/>`,
        `<path d="M${x + 20},${y - 4} L${x + 28},${y + 4} M${x + 20},${
          y + 4
        } L${x + 28},${y - 4}" stroke="${colour}" stroke-width="2"/>`,
      );
    } else {
      out.push(
        `<line x1="${x}" y1="${y}" x2="${
          x + 28
        }" y2="${y}" stroke="${colour}" stroke-width="1.6"${dash} marker-end="url(#head-${kind})"/>`,
      );
    }
    out.push(
      `<text x="${x + 34}" y="${y + 4}" fill="${colour}">${esc(text)}</text>`,
    );
    x = legendStep(x, text);
  }
  out.push(`</g>`);
  return out;
}

interface Lanes {
  list: { address: string; user?: string }[];
  index: Map<string, number>;
}

/** The addresses in order of first appearance, with the user name each sends. */
function lifelines(rows: readonly LadderRow[]): Lanes {
  const list: { address: string; user?: string }[] = [];
  const index = new Map<string, number>();
  const add = (address: string) => {
    if (!index.has(address)) {
      index.set(address, list.length);
      list.push({ address });
    }
  };
  for (const { event } of rows) {
    add(event.from);
    add(event.to);
    const lane = list[index.get(event.from)!];
    if (lane.user === undefined || lane.user === "") {
      try {
        lane.user = decodeDatagram(event.bytes).user;
      } catch {
        // Malformed: no name from it.
      }
    }
  }
  return { list, index };
}

/** The y of time `t`: linear between the rows around it. */
function interpolate(
  rows: readonly LadderRow[],
  ys: readonly number[],
  t: number,
): number {
  if (rows.length === 0) return 0;
  let i = 0;
  while (i + 1 < rows.length && rows[i + 1].t <= t) i++;
  if (i + 1 >= rows.length) {
    return ys[i] + Math.min(ROW, (t - rows[i].t) / 10);
  }
  const span = rows[i + 1].t - rows[i].t;
  const f = span > 0 ? (t - rows[i].t) / span : 0;
  return ys[i] + f * (ys[i + 1] - ys[i]);
}

/** When a row's datagram arrives: sent, plus what the relay held it. */
function arrival(row: LadderRow): number {
  return row.t + (row.event.delay ?? 0);
}

/**
 * Whether the copy of row `i` was overtaken: a copy sent after it (or at
 * the same time, drawn below it) to the same receiver arrived before it
 * (the relay's reordering).
 */
function overtaken(rows: readonly LadderRow[], i: number): boolean {
  const row = rows[i];
  if ((row.event.delay ?? 0) === 0 || row.event.fate === "dropped") {
    return false;
  }
  const arrive = arrival(row);
  for (let j = i + 1; j < rows.length && rows[j].t < arrive; j++) {
    const other = rows[j];
    if (
      other.event.to === row.event.to && other.event.fate !== "dropped" &&
      arrival(other) < arrive
    ) {
      return true;
    }
  }
  return false;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function fmtSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/**
 * Text made safe for XML character data and attribute values: markup
 * characters escaped, characters XML 1.0 forbids (C0 controls other than
 * tab, newline and return; U+FFFE, U+FFFF; lone surrogates) shown as `\xNN`
 * or `\uNNNN`.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./svg.ts";
 * console.log(escapeXml('<a href="x">&\u0007')); // &lt;a href=&quot;x&quot;&gt;&amp;\x07
 * ```
 */
export function escapeXml(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += text[i] + text[i + 1]; // a whole surrogate pair
      i++;
    } else if (
      (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) ||
      (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff
    ) {
      out += c < 0x100
        ? `\\x${c.toString(16).padStart(2, "0")}`
        : `\\u${c.toString(16).padStart(4, "0")}`;
    } else {
      out += ENTITIES[text[i]] ?? text[i];
    }
  }
  return out;
}

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

const esc = escapeXml;
