/**
 * A small line editor for the interactive client, sans-I/O: it takes the
 * characters a raw-mode terminal sends and says what happened (a line was
 * entered, the user wants to quit, the input changed); {@linkcode render}
 * returns the escape sequence that redraws the input line. The terminal
 * itself (raw mode, reading, writing) belongs to `client.ts`.
 *
 * Keys: printable characters are inserted at the end (non-ASCII too, so that
 * the client can refuse the line with a clear message and leave it for
 * editing); Backspace deletes the last character; Ctrl+U clears the line and
 * Ctrl+W deletes the last word; Enter submits; Ctrl+C and Ctrl+D quit. Other
 * control characters and escape sequences (arrow keys, function keys) are
 * ignored.
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
        this.#escape += c;
        if (escapeComplete(this.#escape)) this.#escape = undefined;
        continue;
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

/** Whether an escape sequence (after ESC) is complete. */
function escapeComplete(sequence: string): boolean {
  const first = sequence[0];
  if (first === "[") {
    // CSI: parameters, then a final byte 0x40–0x7e.
    if (sequence.length < 2) return false;
    const last = sequence.charCodeAt(sequence.length - 1);
    return last >= 0x40 && last <= 0x7e;
  }
  if (first === "O") return sequence.length >= 2; // SS3: one more character
  return true; // ESC plus one character (Alt+key): dropped
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
