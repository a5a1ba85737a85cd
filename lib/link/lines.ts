/**
 * Line framing for the client–daemon link (SPEC §9), sans-I/O: bytes in,
 * in chunks of any size, complete lines out. Both ends use it.
 *
 * A line ends with `\n` (a `\r` before it is dropped too); its bytes must
 * be UTF-8. A line longer than the limit ({@linkcode MAX_LINE_BYTES}) is a
 * framing violation, reported as soon as the limit is passed — not when
 * the `\n` finally comes — and the splitter takes nothing more: it never
 * holds more than the limit. A line that is not valid UTF-8 is reported as
 * such, and the lines after it are read as usual.
 *
 * @module
 */

import { MAX_LINE_BYTES } from "./protocol.ts";

/** What a {@linkcode LineSplitter} makes of the bytes it was given. */
export type LineItem =
  /** A complete line, decoded, without its line end. */
  | { type: "line"; text: string }
  /** A complete line whose bytes are not UTF-8 (its length in bytes). */
  | { type: "invalid-utf8"; bytes: number }
  /**
   * A line passed the limit: a framing violation. `bytes` is how much of it
   * had arrived when that was seen (more than `limit`).
   */
  | { type: "too-long"; bytes: number; limit: number }
  /** The input ended inside a line (from {@linkcode LineSplitter.end}). */
  | { type: "unterminated"; bytes: number };

/** Options of a {@linkcode LineSplitter}. */
export interface LineSplitterOptions {
  /** The longest line, in bytes without the `\n`; default {@linkcode MAX_LINE_BYTES}. */
  maxLineBytes?: number;
}

const NEWLINE = 0x0a;
const RETURN = 0x0d;

/**
 * Splits a byte stream into lines.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./lines.ts";
 * const lines = new LineSplitter();
 * const bytes = new TextEncoder().encode('{"a":1}\n{"b"');
 * console.log(lines.push(bytes)); // [{ type: "line", text: '{"a":1}' }]
 * console.log(lines.push(new TextEncoder().encode(":2}\n")));
 * // [{ type: "line", text: '{"b":2}' }]
 * ```
 */
export class LineSplitter {
  #max: number;
  /** The start of the current line: copies of the chunks it came in. */
  #parts: Uint8Array[] = [];
  #size = 0;
  #failed = false;
  #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** Creates a splitter with nothing buffered. */
  constructor(options: LineSplitterOptions = {}) {
    this.#max = options.maxLineBytes ?? MAX_LINE_BYTES;
  }

  /** How many bytes of an unfinished line are held (at most the limit). */
  get buffered(): number {
    return this.#size;
  }

  /** Whether a line passed the limit: the splitter then takes nothing more. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Takes the next bytes (the splitter copies what it keeps, so the caller
   * may reuse `chunk`) and returns the items they complete, in order. After
   * a `too-long` item, returns nothing more.
   */
  push(chunk: Uint8Array): LineItem[] {
    const items: LineItem[] = [];
    if (this.#failed) return items;
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      const stop = end === -1 ? chunk.length : end;
      const size = this.#size + stop - start;
      if (size > this.#max) {
        this.#fail();
        items.push({ type: "too-long", bytes: size, limit: this.#max });
        return items;
      }
      if (end === -1) {
        this.#parts.push(chunk.slice(start));
        this.#size = size;
        return items;
      }
      items.push(this.#finish(chunk.subarray(start, end)));
      start = end + 1;
    }
    return items;
  }

  /**
   * The input ended: returns an `unterminated` item when a line was begun,
   * and forgets it.
   */
  end(): LineItem[] {
    const size = this.#size;
    this.#parts = [];
    this.#size = 0;
    return size > 0 && !this.#failed
      ? [{ type: "unterminated", bytes: size }]
      : [];
  }

  #fail(): void {
    this.#failed = true;
    this.#parts = [];
    this.#size = 0;
  }

  /** The line made of the held parts and `last`. */
  #finish(last: Uint8Array): LineItem {
    let bytes = last;
    if (this.#parts.length > 0) {
      bytes = new Uint8Array(this.#size + last.length);
      let offset = 0;
      for (const part of this.#parts) {
        bytes.set(part, offset);
        offset += part.length;
      }
      bytes.set(last, offset);
      this.#parts = [];
      this.#size = 0;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === RETURN) {
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    try {
      return { type: "line", text: this.#decoder.decode(bytes) };
    } catch {
      return { type: "invalid-utf8", bytes: bytes.length };
    }
  }
}
