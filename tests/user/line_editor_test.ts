/**
 * Tests of lib/user/line_editor.ts: editing keys, history, events for the
 * shell, and drawing — checked on a {@linkcode VirtualTerminal} that wraps
 * and scrolls as xterm does, so that "no stale rows" is seen on a screen.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  type EditorEvent,
  type EditorView,
  LineEditor,
} from "../../lib/user/line_editor.ts";
import { VirtualTerminal } from "../support/virtual_terminal.ts";

const LEFT = "\x1b[D";
const RIGHT = "\x1b[C";
const UP = "\x1b[A";
const DOWN = "\x1b[B";
const HOME = "\x1b[H";
const END = "\x1b[F";
const DELETE = "\x1b[3~";

/** An editor drawn on a virtual terminal after every event, as the client does. */
class Harness {
  editor: LineEditor;
  term: VirtualTerminal;
  view: EditorView;
  events: EditorEvent[] = [];

  constructor(columns = 40, rows = 10, prompt = "> ", historySize?: number) {
    this.editor = new LineEditor(
      historySize === undefined ? {} : { historySize },
    );
    this.term = new VirtualTerminal(columns, rows);
    this.view = { prompt, columns, maxRows: rows };
    this.term.write(this.editor.render(this.view));
  }

  /** Feeds keys; draws as the shell would; returns the events but `changed`. */
  type(...chunks: string[]): EditorEvent[] {
    const events: EditorEvent[] = [];
    for (const chunk of chunks) {
      for (const event of this.editor.feed(chunk)) {
        this.events.push(event);
        if (event.type !== "changed") events.push(event);
        this.term.write(this.editor.render(this.view));
      }
    }
    return events;
  }

  /** Prints `line` above the input line, as news arriving. */
  print(line: string): void {
    this.term.write(
      this.editor.erase() + line + "\r\n" + this.editor.render(this.view),
    );
  }
}

// ---------------------------------------------------------------- editing

Deno.test("typing and Enter submit the line and empty the input", () => {
  const h = new Harness();
  deepStrictEqual(h.type("hello", "\r"), [{ type: "submit", line: "hello" }]);
  strictEqual(h.editor.text, "");
  deepStrictEqual(h.term.nonEmpty, [">"]);
});

Deno.test("Left/Right and Home/End (and Ctrl+A/E) move the cursor; typing inserts there", () => {
  const h = new Harness();
  h.type("ace", LEFT, "c", LEFT, LEFT, "b", END, "!", HOME, "[", "\x05", "]");
  strictEqual(h.editor.text, "[abcce!]");
  h.type("\x01", RIGHT, "x");
  strictEqual(h.editor.text, "[xabcce!]");
  strictEqual(h.editor.cursor, 2);
});

Deno.test("Backspace deletes before the cursor, Delete (and Ctrl+D) under it", () => {
  const h = new Harness();
  h.type("abcdef", LEFT, LEFT, "\x7f", DELETE);
  strictEqual(h.editor.text, "abcf");
  h.type(HOME, "\x04");
  strictEqual(h.editor.text, "bcf");
  h.type(HOME, "\x7f");
  strictEqual(h.editor.text, "bcf", "Backspace at the start does nothing");
});

Deno.test("Ctrl+U deletes to the start, Ctrl+K to the end, Ctrl+W the word before", () => {
  const h = new Harness();
  h.type("one two  three", "\x17");
  strictEqual(h.editor.text, "one two  ");
  h.type("\x17");
  strictEqual(h.editor.text, "one ");
  h.type("four five", HOME, RIGHT, RIGHT, RIGHT, "\x0b");
  strictEqual(h.editor.text, "one");
  h.type(LEFT, "\x15");
  strictEqual(h.editor.text, "e");
  strictEqual(h.editor.cursor, 0);
});

Deno.test("Ctrl+Left/Right (and Alt+B/F) move by words", () => {
  const h = new Harness();
  h.type("alpha beta gamma", "\x1b[1;5D");
  strictEqual(h.editor.cursor, 11);
  h.type("\x1bb");
  strictEqual(h.editor.cursor, 6);
  h.type("\x1b[1;5C");
  strictEqual(h.editor.cursor, 10);
  h.type("\x1bf");
  strictEqual(h.editor.cursor, 16);
});

Deno.test("a combining mark joins the character before it: one Backspace removes both", () => {
  const h = new Harness();
  h.type("cafe", "\u0301");
  strictEqual(h.editor.text, "cafe\u0301");
  h.type("\x7f");
  strictEqual(h.editor.text, "caf");
});

Deno.test("Tab inserts a space; other controls are not inserted", () => {
  const h = new Harness();
  h.type("a\tb\x1c\x1dc");
  strictEqual(h.editor.text, "a bc");
});

// ---------------------------------------------------------------- history

Deno.test("Up/Down recall submitted lines; the line being typed comes back at the bottom", () => {
  const h = new Harness();
  h.type("first\r", "second\r", "draft", UP);
  strictEqual(h.editor.text, "second");
  h.type(UP);
  strictEqual(h.editor.text, "first");
  h.type(UP);
  strictEqual(h.editor.text, "first", "Up at the oldest stays");
  h.type(DOWN, DOWN);
  strictEqual(h.editor.text, "draft");
  h.type("\x10");
  strictEqual(h.editor.text, "second", "Ctrl+P is Up");
  h.type("\x0e");
  strictEqual(h.editor.text, "draft", "Ctrl+N is Down");
});

Deno.test("history keeps at most historySize lines, no blanks, no repeats in a row", () => {
  const h = new Harness(40, 10, "> ", 3);
  h.type("a\r", "b\r", "b\r", "  \r", "c\r", "d\r");
  deepStrictEqual(h.editor.history, ["b", "c", "d"]);
});

Deno.test("setAside takes the typed text out of the input into the history", () => {
  const h = new Harness();
  h.type("half a message");
  strictEqual(h.editor.setAside(), "half a message");
  strictEqual(h.editor.text, "");
  h.type(UP);
  strictEqual(h.editor.text, "half a message");
});

// ---------------------------------------------------------------- events

Deno.test("Ctrl+C reports what was typed and empties the input", () => {
  const h = new Harness();
  deepStrictEqual(h.type("not finished", "\x03"), [
    { type: "interrupt", discarded: "not finished" },
  ]);
  strictEqual(h.editor.text, "");
});

Deno.test("Ctrl+D on an empty line is the end of input; on text it deletes", () => {
  const h = new Harness();
  deepStrictEqual(h.type("\x04"), [{ type: "eof" }]);
  deepStrictEqual(h.type("ab", LEFT, "\x04"), []);
  strictEqual(h.editor.text, "a");
});

Deno.test("Ctrl+Z is reported as suspend, Ctrl+L as redraw; the text stays", () => {
  const h = new Harness();
  deepStrictEqual(h.type("keep", "\x1a", "\x0c"), [
    { type: "suspend" },
    { type: "redraw" },
  ]);
  strictEqual(h.editor.text, "keep");
});

Deno.test("a paste of several lines is one event; what follows the last line end stays in the input", () => {
  const h = new Harness();
  const events = h.type("ab", LEFT, "\x1b[200~1\r\n2\r3\n4\x1b[201~");
  deepStrictEqual(events, [
    { type: "paste", lines: ["a1", "2", "3"], truncated: false },
  ]);
  strictEqual(h.editor.text, "4b");
  strictEqual(h.editor.cursor, 1);
});

Deno.test("a paste without a line end is inserted like typing", () => {
  const h = new Harness();
  deepStrictEqual(h.type("[]", LEFT, "\x1b[200~in\tside\x1b[201~"), []);
  strictEqual(h.editor.text, "[in side]");
});

Deno.test("Enter after a refused line: the input is empty, so q alone quits (defect 1)", () => {
  const h = new Harness();
  deepStrictEqual(h.type("bob\r", "q\r"), [
    { type: "submit", line: "bob" },
    { type: "submit", line: "q" },
  ]);
});

// ---------------------------------------------------------------- drawing

Deno.test("the input line is drawn as prompt and text, the cursor where editing goes on", () => {
  const h = new Harness(40, 5, "[bob@127.0.0.2]> ");
  h.type("hello", LEFT, LEFT);
  deepStrictEqual(h.term.nonEmpty, ["[bob@127.0.0.2]> hello"]);
  strictEqual(h.term.row, 0);
  strictEqual(h.term.col, 17 + 3);
});

Deno.test("a coloured prompt takes only its visible width", () => {
  const h = new Harness(20, 5, "\x1b[1m> \x1b[0m");
  h.type("abc");
  strictEqual(h.term.col, 5);
});

Deno.test("55 CJK characters in a 110-column pane wrap over two rows, and Ctrl+U leaves no stale row (defect 2)", () => {
  const h = new Harness(110, 20);
  for (let i = 0; i < 55; i++) h.type("漢");
  const rows = h.term.nonEmpty;
  strictEqual(rows.length, 2, rows.join("\n"));
  // 2 + 54 × 2 = 110 columns on the first row; the 55th goes to the second.
  strictEqual(rows[0], "> " + "漢".repeat(54));
  strictEqual(rows[1], "漢");
  strictEqual(h.term.row, 1);
  strictEqual(h.term.col, 2);
  h.type("\x15");
  deepStrictEqual(h.term.nonEmpty, [">"]);
  strictEqual(h.term.row, 0);
  strictEqual(h.term.col, 2);
});

Deno.test("a wide character that does not fit in the last column goes to the next row", () => {
  const h = new Harness(10, 5, "");
  h.type("abcdefghi漢x");
  deepStrictEqual(h.term.nonEmpty, ["abcdefghi", "漢x"]);
  h.type(HOME, RIGHT.repeat(9));
  strictEqual(h.term.row, 1, "the cursor on the wide character: its row");
  strictEqual(h.term.col, 0);
});

Deno.test("text exactly filling a row puts the cursor on the next row, not the last column", () => {
  const h = new Harness(10, 5, "> ");
  h.type("12345678");
  deepStrictEqual(h.term.nonEmpty, ["> 12345678"]);
  strictEqual(h.term.row, 1);
  strictEqual(h.term.col, 0);
  h.type("\x7f");
  deepStrictEqual(h.term.nonEmpty, ["> 1234567"]);
  strictEqual(h.term.row, 0);
  strictEqual(h.term.col, 9);
});

Deno.test("moving the cursor over a wrapped line and back leaves one drawing", () => {
  const h = new Harness(12, 8, "> ");
  h.type("a".repeat(30), HOME, END, HOME, RIGHT.repeat(15), "X");
  const rows = h.term.nonEmpty;
  strictEqual(rows.join(""), "> " + "a".repeat(15) + "X" + "a".repeat(15));
  strictEqual(rows.length, 3);
});

Deno.test("a message printed above a wrapped input line leaves the input whole below it", () => {
  const h = new Harness(20, 10, "> ");
  h.type("x".repeat(30), LEFT.repeat(20));
  h.print("bob: hi");
  h.print("bob: there");
  deepStrictEqual(h.term.nonEmpty, [
    "bob: hi",
    "bob: there",
    "> " + "x".repeat(18),
    "x".repeat(12),
  ]);
  strictEqual(h.term.row, 2);
  strictEqual(h.term.col, 12);
});

Deno.test("news arriving while the input sits at the bottom scrolls the screen, the input stays intact", () => {
  const h = new Harness(20, 4, "> ");
  h.type("y".repeat(25));
  for (let i = 0; i < 6; i++) h.print(`line ${i}`);
  deepStrictEqual(h.term.lines, [
    "line 4",
    "line 5",
    "> " + "y".repeat(18),
    "y".repeat(7),
  ]);
});

Deno.test("text taller than maxRows is shown as a window around the cursor, starting with …", () => {
  const h = new Harness(10, 10, "> ");
  h.view = { ...h.view, maxRows: 2 };
  h.type("abcdefghijklmnopqrstuvwxyz0123456789");
  const rows = h.term.nonEmpty;
  ok(rows.length <= 2, rows.join("\n"));
  ok(rows[0].startsWith("> …"), rows[0]);
  ok(rows.join("").endsWith("6789"), rows.join("\n"));
  h.type(HOME);
  deepStrictEqual(h.term.nonEmpty, ["> abcdefgh", "ijklmnopqr"]);
  strictEqual(h.term.row, 0);
  strictEqual(h.term.col, 2);
});

Deno.test("controls and bidi overrides in the input are drawn as \uFFFD, never raw", () => {
  const h = new Harness(20, 4, "> ");
  h.type("a\u202eb\u2028c");
  deepStrictEqual(h.term.nonEmpty, ["> a\uFFFDb\uFFFDc"]);
  strictEqual(h.editor.text, "a\u202eb\u2028c", "the text itself is kept");
});

Deno.test("erase takes the line off and render draws it again; erase when not drawn is empty", () => {
  const editor = new LineEditor();
  strictEqual(editor.erase(), "");
  editor.render({ prompt: "> ", columns: 20 });
  strictEqual(editor.drawn, true);
  ok(editor.erase().includes("\x1b[J"));
  strictEqual(editor.drawn, false);
});
