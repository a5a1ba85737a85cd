/** Tests of lib/user/keys.ts: what a raw-mode terminal sends, decoded into keys. */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { type Key, KeyDecoder, MAX_PASTE_CHARS } from "../../lib/user/keys.ts";

function keys(...chunks: string[]): Key[] {
  const decoder = new KeyDecoder();
  return chunks.flatMap((chunk) => decoder.feed(chunk));
}

function named(name: string): Key {
  return { type: "key", name } as Key;
}

Deno.test("printable text runs come as one text key", () => {
  deepStrictEqual(keys("héllo 漢"), [{ type: "text", text: "héllo 漢" }]);
});

Deno.test("Enter is \\r, \\n or \\r\\n, once", () => {
  deepStrictEqual(keys("a\rb\nc\r\nd"), [
    { type: "text", text: "a" },
    named("enter"),
    { type: "text", text: "b" },
    named("enter"),
    { type: "text", text: "c" },
    named("enter"),
    { type: "text", text: "d" },
  ]);
  deepStrictEqual(keys("\r", "\n"), [named("enter")], "split over two reads");
});

Deno.test("arrows, Home, End and Delete in their CSI and SS3 forms", () => {
  deepStrictEqual(
    keys("\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1bOD\x1b[H\x1b[F\x1bOH\x1bOF"),
    ["up", "down", "right", "left", "up", "left", "home", "end", "home", "end"]
      .map(named),
  );
  deepStrictEqual(
    keys("\x1b[1~\x1b[7~\x1b[4~\x1b[8~\x1b[3~"),
    ["home", "home", "end", "end", "delete"].map(named),
  );
});

Deno.test("Ctrl+arrows (xterm modifiers) are word moves; other modifiers are the arrow", () => {
  deepStrictEqual(
    keys("\x1b[1;5D\x1b[1;5C\x1b[1;3D\x1b[1;2C"),
    ["ctrl+left", "ctrl+right", "ctrl+left", "right"].map(named),
  );
});

Deno.test("control characters are ctrl+letter; Backspace is DEL or BS; Tab is tab", () => {
  deepStrictEqual(
    keys("\x01\x03\x04\x0b\x0c\x15\x17\x1a\x7f\b\t"),
    [
      "ctrl+a",
      "ctrl+c",
      "ctrl+d",
      "ctrl+k",
      "ctrl+l",
      "ctrl+u",
      "ctrl+w",
      "ctrl+z",
      "backspace",
      "backspace",
      "tab",
    ].map(named),
  );
});

Deno.test("Alt+key is ESC key; Alt+Backspace too", () => {
  deepStrictEqual(
    keys("\x1bb\x1bF\x1b\x7f"),
    ["alt+b", "alt+f", "alt+backspace"].map(named),
  );
});

Deno.test("an escape sequence cut between two reads is completed by the next", () => {
  deepStrictEqual(keys("a\x1b", "[", "1;5", "D"), [
    { type: "text", text: "a" },
    named("ctrl+left"),
  ]);
});

Deno.test("unknown sequences (F5, focus events) are dropped whole", () => {
  deepStrictEqual(keys("\x1b[15~x\x1b[Iy\x1bOPz"), [
    { type: "text", text: "x" },
    { type: "text", text: "y" },
    { type: "text", text: "z" },
  ]);
});

Deno.test("C1 controls are dropped, never typed", () => {
  deepStrictEqual(keys("a\u009bb"), [{ type: "text", text: "ab" }]);
});

Deno.test("a bracketed paste is one key, line ends and escapes included, even split over reads", () => {
  deepStrictEqual(keys("x\x1b[200~one\rtwo\n\x1b[1mthree", "\x1b[20", "1~y"), [
    { type: "text", text: "x" },
    {
      type: "paste",
      text: "one\rtwo\n\x1b[1mthree",
      truncated: false,
    },
    { type: "text", text: "y" },
  ]);
});

Deno.test("a paste larger than MAX_PASTE_CHARS is cut and says so", () => {
  const big = "a".repeat(MAX_PASTE_CHARS + 100);
  const [key] = keys("\x1b[200~", big, "\x1b[201~");
  strictEqual(key.type, "paste");
  if (key.type !== "paste") return;
  strictEqual(key.truncated, true);
  strictEqual(key.text.length, MAX_PASTE_CHARS);
});

Deno.test("pending tells an incomplete sequence from a complete one", () => {
  const decoder = new KeyDecoder();
  decoder.feed("\x1b[");
  strictEqual(decoder.pending, true);
  decoder.feed("A");
  strictEqual(decoder.pending, false);
});
