/**
 * Tests of the interactive client's line editor (lib/user/line_editor.ts):
 * keys in, what they amount to out.
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { LineEditor, visibleLength } from "../../lib/user/line_editor.ts";

Deno.test("line editor: typing, backspace, Ctrl+U, Ctrl+W and Enter", () => {
  const editor = new LineEditor();
  deepStrictEqual(editor.feed("helo\x7flo"), [{ type: "changed" }]);
  strictEqual(editor.buffer, "hello");
  editor.feed(" big world\x17");
  strictEqual(editor.buffer, "hello big ");
  editor.feed("\x15");
  strictEqual(editor.buffer, "");
  deepStrictEqual(editor.feed("hi\r\nyo\r"), [
    { type: "changed" },
    { type: "submit", line: "hi" },
    { type: "changed" },
    { type: "submit", line: "yo" },
  ]);
  strictEqual(editor.buffer, "");
});

Deno.test("line editor: Ctrl+C and Ctrl+D quit; escape sequences are ignored", () => {
  const editor = new LineEditor();
  deepStrictEqual(editor.feed("a\x1b[A\x1b[1;5Cb\x1bOPc"), [{
    type: "changed",
  }]);
  strictEqual(editor.buffer, "abc");
  deepStrictEqual(editor.feed("\x03"), [{ type: "quit" }]);
  deepStrictEqual(editor.feed("\x04"), [{ type: "quit" }]);
  editor.feed("é");
  strictEqual(editor.buffer, "abcé");
});

Deno.test("line editor: a bare Esc is dropped alone, the key after it is typed", () => {
  const editor = new LineEditor();
  deepStrictEqual(editor.feed("\x1bq"), [{ type: "changed" }]);
  strictEqual(editor.buffer, "q");
  editor.feed("\x1b\x1bw\x1b");
  strictEqual(editor.buffer, "qw");
  // An Esc at the end of one read and the key in the next.
  editor.feed("e");
  strictEqual(editor.buffer, "qwe");
  // Sequences with parameters and intermediates, and an SS3 key.
  editor.feed("\x1b[200~r\x1b[1;5D\x1bOHt");
  strictEqual(editor.buffer, "qwert");
  // A CSI broken off by a control character: Enter still submits.
  deepStrictEqual(editor.feed("\x1b[1\r"), [
    { type: "submit", line: "qwert" },
  ]);
});

Deno.test("line editor: Tab inserts a space", () => {
  const editor = new LineEditor();
  editor.feed("a\tb");
  strictEqual(editor.buffer, "a b");
});

Deno.test("line editor: the input line shows the end of a long text", () => {
  const editor = new LineEditor();
  editor.buffer = "0123456789abcdef";
  strictEqual(editor.render("> ", 80), "\r\x1b[2K> 0123456789abcdef");
  strictEqual(editor.render("> ", 10), "\r\x1b[2K> …abcdef");
  strictEqual(visibleLength("\x1b[1;36mbob\x1b[0m: "), 5);
});
