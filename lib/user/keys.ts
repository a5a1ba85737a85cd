/**
 * Terminal input decoding, sans-I/O: the text a raw-mode terminal sends
 * (already decoded from UTF-8) in, {@linkcode Key}s out. Knows the escape
 * sequences of xterm-like terminals (tmux, GNOME Terminal, iTerm2, the
 * Linux console, Windows Terminal): CSI `ESC [ params final`, SS3
 * `ESC O x`, Alt+key as `ESC key`, and bracketed paste
 * (`ESC [ 200 ~ … ESC [ 201 ~`, turned on by {@linkcode BRACKETED_PASTE_ON}),
 * which arrives as one {@linkcode Key} of type `paste` however many lines it
 * holds. A sequence cut between two reads is completed by the next read.
 * Unknown sequences are dropped whole; a lone Esc followed by an ordinary
 * character is Alt+that character.
 *
 * @module
 */

/** Asks the terminal to mark pastes (bracketed paste mode, xterm). */
export const BRACKETED_PASTE_ON = "\x1b[?2004h";
/** Turns {@linkcode BRACKETED_PASTE_ON} off again (on exit, on suspend). */
export const BRACKETED_PASTE_OFF = "\x1b[?2004l";

/** The most characters of one paste kept; the rest is dropped (and said so). */
export const MAX_PASTE_CHARS = 1_048_576;

/**
 * Names of the keys {@linkcode KeyDecoder} reports (besides text and
 * pastes). Control keys are `ctrl+a` … `ctrl+z` (except those with a name
 * of their own: `ctrl+i` is `tab`, `ctrl+m`/`ctrl+j` are `enter`, `ctrl+h`
 * is `backspace`); Alt+letter is `alt+a` ….
 */
export type KeyName =
  | "enter"
  | "tab"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "up"
  | "down"
  | "home"
  | "end"
  | "ctrl+left"
  | "ctrl+right"
  | "alt+backspace"
  | `ctrl+${string}`
  | `alt+${string}`;

/** One thing the user did at the keyboard. */
export type Key =
  | {
    /** Printable text typed (one or more characters, no controls). */
    type: "text";
    /** The characters. */
    text: string;
  }
  | {
    /** A bracketed paste: everything pasted, line ends included. */
    type: "paste";
    /** The pasted text as the terminal sent it (line ends may be `\r`). */
    text: string;
    /** Whether more than {@linkcode MAX_PASTE_CHARS} came and the rest was dropped. */
    truncated: boolean;
  }
  | {
    /** A key with a name (Enter, an arrow, a control key). */
    type: "key";
    /** Which. */
    name: KeyName;
  };

const ESC = "\x1b";
const PASTE_END = "\x1b[201~";

/** CSI sequences ending in a letter: arrows, Home, End. */
const CSI_LETTERS: Readonly<Record<string, KeyName>> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
};

/** CSI sequences `ESC [ n ~`. */
const CSI_TILDE: Readonly<Record<string, KeyName>> = {
  "1": "home",
  "7": "home",
  "4": "end",
  "8": "end",
  "3": "delete",
};

/**
 * Decodes what a raw-mode terminal sends into keys (see the module
 * documentation). Feed it text as it arrives; it keeps an incomplete
 * escape sequence or paste for the next call.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert";
 * import { KeyDecoder } from "./keys.ts";
 * const keys = new KeyDecoder().feed("hi\x1b[D\r");
 * deepStrictEqual(keys, [
 *   { type: "text", text: "hi" },
 *   { type: "key", name: "left" },
 *   { type: "key", name: "enter" },
 * ]);
 * ```
 */
export class KeyDecoder {
  /** Inside an escape sequence: what has been read of it after ESC. */
  #escape: string | undefined;
  /** Inside a bracketed paste: what has been pasted so far. */
  #paste: string | undefined;
  #pasteTruncated = false;
  /** The last character was `\r`: a `\n` right after it is the same Enter. */
  #afterCr = false;

  /** Whether an escape sequence or a paste is incomplete (more input is awaited). */
  get pending(): boolean {
    return this.#escape !== undefined || this.#paste !== undefined;
  }

  /** Decodes `input`; returns the keys it completes, in order. */
  feed(input: string): Key[] {
    const keys: Key[] = [];
    let text = "";
    const flushText = () => {
      if (text !== "") keys.push({ type: "text", text });
      text = "";
    };
    const push = (key: Key) => {
      flushText();
      keys.push(key);
    };
    for (const c of input) {
      const afterCr = this.#afterCr;
      this.#afterCr = false;
      if (this.#paste !== undefined) {
        this.#addToPaste(c);
        if (c === "~" && this.#paste.endsWith(PASTE_END)) {
          push({
            type: "paste",
            text: this.#paste.slice(0, -PASTE_END.length),
            truncated: this.#pasteTruncated,
          });
          this.#paste = undefined;
          this.#pasteTruncated = false;
        }
        continue;
      }
      if (this.#escape !== undefined) {
        const sequence = this.#escape + c;
        const step = escapeStep(this.#escape, c);
        if (step === "more") {
          this.#escape = sequence;
          continue;
        }
        this.#escape = undefined;
        if (step === "done") {
          if (sequence === "[200~") {
            flushText();
            this.#paste = "";
            continue;
          }
          const name = sequenceName(sequence);
          if (name !== undefined) push({ type: "key", name });
          continue;
        }
        if (step === "alt") {
          const name: KeyName = c === "\x7f" || c === "\b"
            ? "alt+backspace"
            : `alt+${c.toLowerCase()}`;
          push({ type: "key", name });
          continue;
        }
        // "none": the Esc alone is dropped, `c` is a key of its own.
      }
      if (c === ESC) {
        flushText();
        this.#escape = "";
        continue;
      }
      const code = c.codePointAt(0)!;
      if (c === "\r" || c === "\n") {
        if (c === "\n" && afterCr) continue; // \r\n is one Enter
        this.#afterCr = c === "\r";
        push({ type: "key", name: "enter" });
      } else if (c === "\t") {
        push({ type: "key", name: "tab" });
      } else if (c === "\x7f" || c === "\b") {
        push({ type: "key", name: "backspace" });
      } else if (code < 0x20) {
        push({
          type: "key",
          name: `ctrl+${String.fromCharCode(code + 0x60)}`,
        });
      } else if (code >= 0x80 && code <= 0x9f) {
        // C1 controls are never typed; dropped.
      } else {
        text += c;
      }
    }
    flushText();
    return keys;
  }

  #addToPaste(c: string): void {
    if (this.#paste!.length < MAX_PASTE_CHARS + PASTE_END.length) {
      this.#paste += c;
      return;
    }
    // Keep only a tail long enough to see the end marker.
    this.#pasteTruncated = true;
    const keep = MAX_PASTE_CHARS;
    this.#paste = this.#paste!.slice(0, keep) +
      (this.#paste!.slice(keep) + c).slice(-PASTE_END.length);
  }
}

/**
 * The next step of an escape sequence: `sequence` has been read after ESC,
 * and `c` follows. `more`: `c` belongs to it and more is to come; `done`:
 * `c` ends it; `alt`: ESC `c` is Alt+`c`; `none`: `c` is not part of it, and
 * is a key of its own.
 */
function escapeStep(
  sequence: string,
  c: string,
): "more" | "done" | "alt" | "none" {
  const code = c.charCodeAt(0);
  if (sequence === "") {
    if (c === "[" || c === "O") return "more";
    if (c === "\x7f" || c === "\b") return "alt";
    return code > 0x20 && code < 0x7f ? "alt" : "none";
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

/** The key a complete CSI or SS3 sequence (after ESC) stands for, if any. */
function sequenceName(sequence: string): KeyName | undefined {
  const final = sequence.at(-1)!;
  if (sequence.startsWith("O")) return CSI_LETTERS[final];
  const params = sequence.slice(1, -1).split(";");
  if (final === "~") return CSI_TILDE[params[0]];
  const name = CSI_LETTERS[final];
  if (name === undefined) return undefined;
  // ESC [ 1 ; m X: m − 1 is a bit set of Shift 1, Alt 2, Ctrl 4.
  const modifiers = Number(params[1] ?? "1") - 1;
  if ((name === "left" || name === "right") && (modifiers & 6) !== 0) {
    return name === "left" ? "ctrl+left" : "ctrl+right";
  }
  return name;
}
