/**
 * A small line editor for the interactive client, sans-I/O: it takes the
 * characters a raw-mode terminal sends and says what happened (a line was
 * entered, the user wants to quit, the input changed); {@linkcode render}
 * returns the escape sequence that redraws the input line. The terminal
 * itself (raw mode, reading, writing) belongs to `client.ts`.
 *
 * Keys: printable characters are inserted at the end (non-ASCII too, so that
 * the client can refuse the line with a clear message and leave it for
 * editing); Tab inserts a space; Backspace deletes the last character;
 * Ctrl+U clears the line and Ctrl+W deletes the last word; Enter submits;
 * Ctrl+C and Ctrl+D quit. Other control characters and escape sequences
 * (arrow keys, function keys: CSI `ESC [ … final` and SS3 `ESC O x`) are
 * ignored; an Esc followed by anything else is dropped alone, so the
 * character after it is typed as usual.
 *
 * @module
 */

/** What a key press amounts to. */
export type EditorAction =
  | {
    /** The user pressed Enter: `line` is what they typed; the input is now empty. */
    type: "submit";
    /** The line, without its line end. */
    line: string;
  }
  | {
    /** Ctrl+C or Ctrl+D. */
    type: "quit";
  }
  | {
    /** The input changed: redraw it. */
    type: "changed";
  };

/** Erases the terminal line the cursor is on and returns to its start. */
export const CLEAR_LINE = "\r\x1b[2K";

const ESC = "\x1b";

/**
 * The input line being edited (see the module documentation).
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 * const editor = new LineEditor();
 * console.log(editor.feed("hi\x7fey\r")); // [..., { type: "submit", line: "hey" }]
 * ```
 */
export class LineEditor {
  #chars: string[] = [];
  /** Inside an escape sequence: what has been read of it. */
  #escape: string | undefined;
  #afterCr = false;

  /** The text typed so far. */
  get buffer(): string {
    return this.#chars.join("");
  }

  /** Replaces the text typed so far (e.g. to give back a refused line). */
  set buffer(text: string) {
    this.#chars = Array.from(text);
  }

  /** Feeds characters from the terminal; returns what they amount to, in order. */
  feed(text: string): EditorAction[] {
    const actions: EditorAction[] = [];
    let changed = false;
    const flush = () => {
      if (changed) actions.push({ type: "changed" });
      changed = false;
    };
    for (const c of text) {
      const afterCr = this.#afterCr;
      this.#afterCr = false;
      if (this.#escape !== undefined) {
        const state = escapeStep(this.#escape, c);
        if (state === "more") {
          this.#escape += c;
          continue;
        }
        this.#escape = undefined;
        if (state === "done") continue;
        // Not a sequence: the Esc alone is dropped, `c` is a key of its own.
      }
      switch (c) {
        case ESC:
          this.#escape = "";
          continue;
        case "\r":
        case "\n": {
          if (c === "\n" && afterCr) continue; // \r\n is one Enter
          this.#afterCr = c === "\r";
          flush();
          const line = this.buffer;
          this.#chars = [];
          actions.push({ type: "submit", line });
          continue;
        }
        case "\x03":
        case "\x04":
          flush();
          actions.push({ type: "quit" });
          continue;
        case "\x7f":
        case "\b":
          changed = this.#chars.pop() !== undefined || changed;
          continue;
        case "\x15": // Ctrl+U
          changed = changed || this.#chars.length > 0;
          this.#chars = [];
          continue;
        case "\x17": { // Ctrl+W
          const text = this.buffer.replace(/\S*\s*$/, "");
          changed = changed || text.length !== this.buffer.length;
          this.buffer = text;
          continue;
        }
        case "\t":
          this.#chars.push(" ");
          changed = true;
          continue;
      }
      const code = c.codePointAt(0)!;
      if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) continue;
      this.#chars.push(c);
      changed = true;
    }
    flush();
    return actions;
  }

  /**
   * The escape sequence that redraws the input line: clear it, then
   * `prompt` and as much of the end of the text as fits in `columns`.
   */
  render(prompt: string, columns: number): string {
    const room = Math.max(1, columns - visibleLength(prompt) - 1);
    const chars = this.#chars;
    const shown = chars.length <= room
      ? chars.join("")
      : "…" + chars.slice(chars.length - room + 1).join("");
    return CLEAR_LINE + prompt + shown;
  }
}

/**
 * The next step of an escape sequence: `sequence` has been read after ESC,
 * and `c` follows. `more`: `c` belongs to it and more is to come; `done`:
 * `c` ends it (the whole sequence is dropped); `none`: `c` is not part of
 * it, and is a key of its own.
 */
function escapeStep(sequence: string, c: string): "more" | "done" | "none" {
  const code = c.charCodeAt(0);
  if (sequence === "") {
    // ESC [ starts a CSI, ESC O an SS3; anything else was a lone Esc.
    return c === "[" || c === "O" ? "more" : "none";
  }
  if (sequence === "O") {
    // SS3: exactly one more character, a printable one (ESC O P is F1).
    return code >= 0x20 && code <= 0x7e ? "done" : "none";
  }
  // CSI: parameter bytes 0x30–0x3f and intermediate bytes 0x20–0x2f, then a
  // final byte 0x40–0x7e.
  if (code >= 0x20 && code <= 0x3f) return "more";
  if (code >= 0x40 && code <= 0x7e) return "done";
  return "none";
}

/** The length of `text` on screen: escape sequences (colours) take no room. */
export function visibleLength(text: string): number {
  let length = 0;
  let inEscape = false;
  for (const c of text) {
    if (inEscape) {
      if (/[@-~]/.test(c) && c !== "[") inEscape = false;
      continue;
    }
    if (c === ESC) {
      inEscape = true;
      continue;
    }
    length++;
  }
  return length;
}
