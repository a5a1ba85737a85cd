import { deepStrictEqual, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import { type LineItem, LineSplitter } from "../../lib/link/lines.ts";
import { MAX_LINE_BYTES } from "../../lib/link/protocol.ts";

const encoder = new TextEncoder();

function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

function lines(items: LineItem[]): string[] {
  return items.map((item) => item.type === "line" ? item.text : item.type);
}

Deno.test("lines: complete lines out, the rest kept for the next chunk", () => {
  const s = new LineSplitter();
  deepStrictEqual(lines(s.push(bytes("a\nbc\n\nd"))), ["a", "bc", ""]);
  strictEqual(s.buffered, 1);
  deepStrictEqual(lines(s.push(bytes("e"))), []);
  deepStrictEqual(lines(s.push(bytes("f\r\ng\n"))), ["def", "g"]);
  strictEqual(s.buffered, 0);
});

Deno.test("lines: any split of the input into chunks gives the same lines", () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ maxLength: 20, unit: "grapheme" }), {
        maxLength: 10,
      }),
      fc.array(fc.nat({ max: 50 }), { maxLength: 10 }),
      (texts, cuts) => {
        const clean = texts.map((t) => t.replace(/[\r\n]/g, ""));
        const all = bytes(clean.map((t) => t + "\n").join(""));
        const s = new LineSplitter();
        const out: LineItem[] = [];
        let at = 0;
        for (const cut of cuts) {
          const end = Math.min(all.length, at + cut);
          out.push(...s.push(all.subarray(at, end)));
          at = end;
        }
        out.push(...s.push(all.subarray(at)));
        deepStrictEqual(lines(out), clean);
      },
    ),
  );
});

Deno.test("lines: the caller may reuse its buffer (what is kept is copied)", () => {
  const s = new LineSplitter();
  const buffer = bytes("abc");
  s.push(buffer);
  buffer.set(bytes("xyz"));
  deepStrictEqual(lines(s.push(bytes("\n"))), ["abc"]);
});

Deno.test("lines: a line of exactly the limit passes; one byte more is a framing violation", () => {
  const s = new LineSplitter({ maxLineBytes: 10 });
  deepStrictEqual(lines(s.push(bytes("0123456789\n"))), ["0123456789"]);
  const items = s.push(bytes("0123456789A\nnext\n"));
  deepStrictEqual(items, [{ type: "too-long", bytes: 11, limit: 10 }]);
  strictEqual(s.failed, true);
  // Nothing more is taken after the violation.
  deepStrictEqual(s.push(bytes("more\n")), []);
  strictEqual(s.buffered, 0);
});

Deno.test("lines: endless input without a newline is reported once over the limit, never buffered beyond it", () => {
  const s = new LineSplitter();
  const chunk = new Uint8Array(65_536).fill(0x61);
  let reported: LineItem | undefined;
  let chunks = 0;
  while (reported === undefined && chunks < 100) {
    chunks++;
    const items = s.push(chunk);
    strictEqual(s.buffered <= MAX_LINE_BYTES, true);
    reported = items[0];
  }
  strictEqual(reported?.type, "too-long");
  strictEqual(chunks, Math.floor(MAX_LINE_BYTES / 65_536) + 1);
  strictEqual(s.buffered, 0);
});

Deno.test("lines: a line that is not UTF-8 is reported; the next lines are read", () => {
  const s = new LineSplitter();
  const input = new Uint8Array([0x61, 0xff, 0x0a, 0xc3, 0x0a, 0x62, 0x0a]);
  deepStrictEqual(s.push(input), [
    { type: "invalid-utf8", bytes: 2 },
    { type: "invalid-utf8", bytes: 1 },
    { type: "line", text: "b" },
  ]);
  // A character split between chunks is fine.
  const e = bytes("é\n");
  deepStrictEqual(lines(s.push(e.subarray(0, 1))), []);
  deepStrictEqual(lines(s.push(e.subarray(1))), ["é"]);
});

Deno.test("lines: end() reports a line begun and not finished", () => {
  const s = new LineSplitter();
  s.push(bytes("ab"));
  deepStrictEqual(s.end(), [{ type: "unterminated", bytes: 2 }]);
  deepStrictEqual(s.end(), []);
});

Deno.test("lines: random bytes never throw, and nothing held passes the limit", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
      (chunks) => {
        const s = new LineSplitter({ maxLineBytes: 32 });
        for (const chunk of chunks) {
          for (const item of s.push(chunk)) {
            if (item.type === "line") {
              strictEqual(encoder.encode(item.text).length <= 32, true);
            }
          }
          strictEqual(s.buffered <= 32, true);
        }
      },
    ),
  );
});
