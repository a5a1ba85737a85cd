/**
 * The interactive client's input line, sans-I/O: keys in
 * ({@linkcode LineEditor.feed} takes what the terminal sends and decodes it
 * with {@linkcode KeyDecoder}), {@linkcode EditorEvent}s out, and the escape
 * sequences that draw the line ({@linkcode LineEditor.render}) or take it
 * off the screen so that news can be printed above it
 * ({@linkcode LineEditor.erase}). The terminal itself (raw mode, reading,
 * writing, signals) belongs to the shell.
 *
 * ## Theory of operation
 * The text is kept as grapheme clusters (what a user sees as one
 * character: `é` written as `e` + U+0301 is one), each with its width in
 * screen columns from `string-width` (a CJK character or an emoji takes two
 * columns, a combining mark none). The cursor moves over graphemes. To draw,
 * the editor lays the prompt and the text out the way the terminal will
 * wrap them (a wide character that does not fit in the last column goes to
 * the next row, leaving that column empty), remembers on which row of its
 * drawing the cursor was left, and the next drawing first goes back up to
 * the first row and clears to the end of the screen: no stale rows are left
 * however many rows the text took or takes now. A text taller than the room
 * given (`maxRows`) is shown as a window around the cursor, starting with `…`.
 *
 * ## Keys
 * | key | does |
 * | --- | --- |
 * | Enter | submits the line (event `submit`); the input is cleared, the line goes into the history |
 * | Left/Right, Ctrl+B/Ctrl+F | move one character |
 * | Ctrl+Left/Ctrl+Right, Alt+B/Alt+F | move one word |
 * | Home/End, Ctrl+A/Ctrl+E | move to the start/end |
 * | Backspace, Delete | delete the character before/under the cursor |
 * | Ctrl+U, Ctrl+K | delete from the start to the cursor / from the cursor to the end |
 * | Ctrl+W, Alt+Backspace | delete the word before the cursor |
 * | Up/Down, Ctrl+P/Ctrl+N | the previous/next line from the history (what was being typed comes back at the bottom) |
 * | Ctrl+L | event `redraw` (the shell clears the screen and draws the line again) |
 * | Ctrl+C | event `interrupt`, with the text that was typed (the shell quits, saying what was not sent) |
 * | Ctrl+D | on an empty line event `eof`; otherwise deletes the character under the cursor |
 * | Ctrl+Z | event `suspend` (the shell stops the process as a terminal would) |
 * | Tab | inserts a space |
 * | a paste | one line: inserted; with line ends: event `paste` with the whole lines, the rest stays in the input |
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert";
 * import { LineEditor } from "./line_editor.ts";
 * const editor = new LineEditor();
 * deepStrictEqual(editor.feed("hi\x7fey\r"), [
 *   { type: "changed" },
 *   { type: "submit", line: "hey" },
 * ]);
 * ```
 *
 * @module
 */

import { stripVTControlCharacters } from "node:util";
// A full npm: specifier, so that mod.ts loads in projects without this
// deno.json (issue 7).
// deno-lint-ignore no-import-prefix
import stringWidth from "npm:string-width@9.0.0";
import { KeyDecoder, type KeyName } from "./keys.ts";

export {
  BRACKETED_PASTE_OFF,
  BRACKETED_PASTE_ON,
  type Key,
  KeyDecoder,
  type KeyName,
} from "./keys.ts";

/** What keys amount to, for the shell to act on. */
export type EditorEvent =
  | {
    /** Enter: `line` was typed; the input is now empty. */
    type: "submit";
    /** The line, without its line end. */
    line: string;
  }
  | {
    /**
     * A paste with line ends: `lines` are the complete lines (the first one
     * after what was typed before the cursor); what followed the last line
     * end stays in the input.
     */
    type: "paste";
    /** The complete lines, without line ends. */
    lines: string[];
    /** The terminal sent more than a paste may hold and the rest was dropped. */
    truncated: boolean;
  }
  | {
    /** Ctrl+C: the input is now empty; `discarded` is what it held. */
    type: "interrupt";
    /** The text that was typed and not sent (may be empty). */
    discarded: string;
  }
  | {
    /** Ctrl+D on an empty line: the end of input. */
    type: "eof";
  }
  | {
    /** Ctrl+Z: the user wants the process suspended (SIGTSTP). */
    type: "suspend";
  }
  | {
    /** Ctrl+L: clear the screen and draw the input line again. */
    type: "redraw";
  }
  | {
    /** The input changed or its cursor moved: draw it again. */
    type: "changed";
  };

/** Options of {@linkcode LineEditor}. */
export interface LineEditorOptions {
  /** How many lines the history keeps (default {@linkcode DEFAULT_HISTORY_SIZE}). */
  historySize?: number;
}

/** How many submitted lines the history keeps by default. */
export const DEFAULT_HISTORY_SIZE = 200;

/** How {@linkcode LineEditor.render} draws the line. */
export interface EditorView {
  /** The prompt before the text (may hold SGR colour sequences). */
  prompt: string;
  /** The terminal's width in columns. */
  columns: number;
  /** The most rows the input may take (default: no limit). */
  maxRows?: number;
}

/** One grapheme cluster of the input, with its width on screen. */
interface Cell {
  /** The grapheme as typed. */
  text: string;
  /** What is drawn for it (a placeholder for controls). */
  shown: string;
  /** Columns it takes. */
  width: number;
}

/** Erases from the start of the cursor's row to the end of the screen. */
const ERASE_DOWN = "\r\x1b[J";

/** Shown for a character that must not reach the terminal raw. */
const PLACEHOLDER = "\uFFFD";

/**
 * Characters drawn as {@linkcode PLACEHOLDER} in the input line: controls,
 * line and paragraph separators, bidirectional overrides and isolates
 * (they would reorder what the terminal shows).
 */
const UNSAFE =
  /[\p{Cc}\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** A word character for word moves and Ctrl+W: anything but blanks. */
function isBlank(cell: Cell | undefined): boolean {
  return cell !== undefined && /^\s$/u.test(cell.text);
}

/** Printable ASCII only: one cell per character, one column each. */
const PLAIN = /^[\x20-\x7e]*$/;

/** The cells of `text`. */
function cellsOf(text: string): Cell[] {
  if (PLAIN.test(text)) {
    // The common case, without segmenting or measuring.
    return Array.from(text, (c) => ({ text: c, shown: c, width: 1 }));
  }
  const cells: Cell[] = [];
  for (const { segment } of segmenter.segment(text)) {
    const unsafe = UNSAFE.test(segment);
    const shown = unsafe ? PLACEHOLDER : segment;
    cells.push({
      text: segment,
      shown,
      width: unsafe ? 1 : stringWidth(shown),
    });
  }
  return cells;
}

/** Text as it may stand in the input: tabs as spaces, other controls gone. */
function cleanInput(text: string): string {
  return text.replace(/\t/g, " ").replace(/[\p{Cc}]/gu, "");
}

/**
 * The input line being edited (see the module documentation).
 *
 * Inputs: {@linkcode feed} (terminal input), {@linkcode clear}. Outputs: the
 * events `feed` returns, {@linkcode text}, and the drawing:
 * {@linkcode render} after every `changed` event (or whenever the prompt or
 * the width changed), {@linkcode erase} before printing other lines (then
 * `render` again below them), {@linkcode forget} after the screen was
 * cleared behind the editor's back.
 */
export class LineEditor {
  #decoder = new KeyDecoder();
  #cells: Cell[] = [];
  #cursor = 0;
  #history: string[] = [];
  #historySize: number;
  /** Where Up/Down stand in the history; `history.length` is the draft. */
  #historyIndex = 0;
  /** What was being typed when Up was first pressed. */
  #draft = "";
  /** The row of the drawing the terminal's cursor was left on; undefined: not drawn. */
  #drawnRow: number | undefined;
  #promptCache = { prompt: "", cells: [] as Cell[] };

  /** Creates an empty editor. */
  constructor(options: LineEditorOptions = {}) {
    this.#historySize = Math.max(
      0,
      options.historySize ?? DEFAULT_HISTORY_SIZE,
    );
  }

  /** The text typed so far. */
  get text(): string {
    return this.#cells.map((cell) => cell.text).join("");
  }

  /** Where the cursor is, in graphemes from the start. */
  get cursor(): number {
    return this.#cursor;
  }

  /** The history, oldest first. */
  get history(): readonly string[] {
    return this.#history;
  }

  /** Whether the line is on the screen (drawn and not erased since). */
  get drawn(): boolean {
    return this.#drawnRow !== undefined;
  }

  /** Replaces the input by `text`, the cursor at its end. */
  setText(text: string): void {
    this.#cells = cellsOf(cleanInput(text));
    this.#cursor = this.#cells.length;
  }

  /** Empties the input. */
  clear(): void {
    this.setText("");
  }

  /**
   * Takes what was typed out of the input and puts it into the history
   * (Up brings it back); returns it. For when the question changes under
   * the user's typing.
   */
  setAside(): string {
    const text = this.text;
    this.#remember(text);
    this.clear();
    return text;
  }

  /** Feeds what the terminal sent; returns what it amounts to, in order. */
  feed(input: string): EditorEvent[] {
    const events: EditorEvent[] = [];
    let changed = false;
    const emit = (event: EditorEvent) => {
      if (changed) events.push({ type: "changed" });
      changed = false;
      events.push(event);
    };
    for (const key of this.#decoder.feed(input)) {
      switch (key.type) {
        case "text":
          this.#insert(cleanInput(key.text));
          changed = true;
          break;
        case "paste": {
          const lines = this.#paste(key.text);
          if (lines.length === 0) {
            changed = true;
          } else {
            emit({ type: "paste", lines, truncated: key.truncated });
            changed = true;
          }
          break;
        }
        case "key": {
          const event = this.#key(key.name);
          if (event === "changed") changed = true;
          else if (event !== undefined) emit(event);
          break;
        }
      }
    }
    if (changed) events.push({ type: "changed" });
    return events;
  }

  /**
   * The escape sequence that draws the input line in place of its last
   * drawing (or at the start of the cursor's row when it is not drawn),
   * leaving the terminal's cursor at the editing position.
   */
  render(view: EditorView): string {
    const columns = Math.max(1, Math.floor(view.columns));
    const maxRows = Math.max(1, Math.floor(view.maxRows ?? Infinity));
    const prompt = this.#promptCells(view.prompt);
    const layout = windowed(
      prompt,
      this.#cells,
      this.#cursor,
      columns,
      maxRows,
    );
    let out = this.erase();
    out += view.prompt + (layout.ellipsis ? "…" : "");
    for (let i = layout.start; i < layout.end; i++) {
      out += this.#cells[i].shown;
    }
    let row = layout.endRow;
    if (layout.endCol >= columns) {
      // The terminal holds the cursor in the last column until the next
      // character: move it to the next row so that its place is known.
      out += "\r\n";
      row++;
    }
    if (row > layout.cursorRow) out += `\x1b[${row - layout.cursorRow}A`;
    out += "\r";
    if (layout.cursorCol > 0) out += `\x1b[${layout.cursorCol}C`;
    this.#drawnRow = layout.cursorRow;
    return out;
  }

  /**
   * The escape sequence that takes the drawn input line off the screen,
   * leaving the cursor at the start of the row where it began (empty when
   * it is not drawn). Print other lines there, then {@linkcode render}.
   */
  erase(): string {
    const row = this.#drawnRow;
    if (row === undefined) return "";
    this.#drawnRow = undefined;
    return (row > 0 ? `\r\x1b[${row}A` : "") + ERASE_DOWN;
  }

  /** The screen was cleared or overwritten: the line counts as not drawn. */
  forget(): void {
    this.#drawnRow = undefined;
  }

  #promptCells(prompt: string): Cell[] {
    if (this.#promptCache.prompt !== prompt) {
      this.#promptCache = {
        prompt,
        cells: cellsOf(stripVTControlCharacters(prompt)),
      };
    }
    return this.#promptCache.cells;
  }

  #insert(text: string): void {
    if (text === "") return;
    // Typed text may join the grapheme before the cursor (a combining mark).
    const before = this.#cursor > 0 ? this.#cells[this.#cursor - 1].text : "";
    const cells = cellsOf(before + text);
    const from = before === "" ? this.#cursor : this.#cursor - 1;
    this.#cells.splice(from, before === "" ? 0 : 1, ...cells);
    this.#cursor = from + cells.length;
    this.#historyIndex = this.#history.length;
  }

  /** Inserts a paste; returns the complete lines it made (may be none). */
  #paste(text: string): string[] {
    const pasted = text.replace(/\r\n?/g, "\n");
    if (!pasted.includes("\n")) {
      this.#insert(cleanInput(pasted));
      return [];
    }
    const before = this.#cells.slice(0, this.#cursor).map((c) => c.text)
      .join("");
    const after = this.#cells.slice(this.#cursor).map((c) => c.text).join("");
    const lines = (before + pasted).split("\n").map(cleanInput);
    const rest = lines.pop()!;
    this.#cells = cellsOf(rest);
    this.#cursor = this.#cells.length;
    this.#cells.push(...cellsOf(after));
    this.#historyIndex = this.#history.length;
    return lines;
  }

  /** Carries out a named key. */
  #key(name: KeyName): EditorEvent | "changed" | undefined {
    const cells = this.#cells;
    switch (name) {
      case "enter": {
        const line = this.text;
        this.#remember(line);
        this.clear();
        return { type: "submit", line };
      }
      case "ctrl+c": {
        const discarded = this.text;
        this.clear();
        this.#historyIndex = this.#history.length;
        return { type: "interrupt", discarded };
      }
      case "ctrl+d":
        if (cells.length === 0) return { type: "eof" };
        return this.#delete(this.#cursor, this.#cursor + 1);
      case "ctrl+z":
        return { type: "suspend" };
      case "ctrl+l":
        return { type: "redraw" };
      case "tab":
        this.#insert(" ");
        return "changed";
      case "left":
      case "ctrl+b":
        return this.#moveTo(this.#cursor - 1);
      case "right":
      case "ctrl+f":
        return this.#moveTo(this.#cursor + 1);
      case "home":
      case "ctrl+a":
        return this.#moveTo(0);
      case "end":
      case "ctrl+e":
        return this.#moveTo(cells.length);
      case "ctrl+left":
      case "alt+b":
        return this.#moveTo(this.#wordStart());
      case "ctrl+right":
      case "alt+f":
        return this.#moveTo(this.#wordEnd());
      case "backspace":
        return this.#delete(this.#cursor - 1, this.#cursor);
      case "delete":
        return this.#delete(this.#cursor, this.#cursor + 1);
      case "ctrl+u":
        return this.#delete(0, this.#cursor);
      case "ctrl+k":
        return this.#delete(this.#cursor, cells.length);
      case "ctrl+w":
      case "alt+backspace":
        return this.#delete(this.#wordStart(), this.#cursor);
      case "up":
      case "ctrl+p":
        return this.#recall(this.#historyIndex - 1);
      case "down":
      case "ctrl+n":
        return this.#recall(this.#historyIndex + 1);
    }
    return undefined; // other keys do nothing
  }

  #moveTo(position: number): "changed" | undefined {
    const to = Math.min(Math.max(position, 0), this.#cells.length);
    if (to === this.#cursor) return undefined;
    this.#cursor = to;
    return "changed";
  }

  #delete(from: number, to: number): "changed" | undefined {
    const start = Math.max(from, 0);
    const end = Math.min(to, this.#cells.length);
    if (end <= start) return undefined;
    this.#cells.splice(start, end - start);
    this.#cursor = start;
    this.#historyIndex = this.#history.length;
    return "changed";
  }

  /** Where the word before the cursor starts (blanks before the cursor skipped). */
  #wordStart(): number {
    let i = this.#cursor;
    while (i > 0 && isBlank(this.#cells[i - 1])) i--;
    while (i > 0 && !isBlank(this.#cells[i - 1])) i--;
    return i;
  }

  /** Where the word after the cursor ends. */
  #wordEnd(): number {
    let i = this.#cursor;
    const n = this.#cells.length;
    while (i < n && isBlank(this.#cells[i])) i++;
    while (i < n && !isBlank(this.#cells[i])) i++;
    return i;
  }

  #remember(line: string): void {
    if (line.trim() !== "" && this.#history.at(-1) !== line) {
      this.#history.push(line);
      if (this.#history.length > this.#historySize) {
        this.#history.splice(0, this.#history.length - this.#historySize);
      }
    }
    this.#historyIndex = this.#history.length;
    this.#draft = "";
  }

  #recall(index: number): "changed" | undefined {
    if (index < 0 || index > this.#history.length) return undefined;
    if (index === this.#historyIndex) return undefined;
    if (this.#historyIndex === this.#history.length) this.#draft = this.text;
    this.#historyIndex = index;
    const text = index === this.#history.length
      ? this.#draft
      : this.#history[index];
    this.#cells = cellsOf(text);
    this.#cursor = this.#cells.length;
    return "changed";
  }
}

/** Where things go when the prompt and the text are drawn (see {@linkcode windowed}). */
interface Layout {
  /** The text is shown from this cell… */
  start: number;
  /** …to this one (excluded). */
  end: number;
  /** Whether `…` stands between the prompt and the text shown. */
  ellipsis: boolean;
  /** Row and column of the cursor, rows counted from the prompt's. */
  cursorRow: number;
  /** Its column. */
  cursorCol: number;
  /** Where the terminal's cursor is after the last cell drawn… */
  endRow: number;
  /** …its column (`columns` when the last row is exactly full). */
  endCol: number;
}

/**
 * Lays out `prompt` then `cells[start…]` as the terminal wraps them;
 * stops before a cell that would start row `maxRows`.
 */
function layOut(
  prompt: readonly Cell[],
  cells: readonly Cell[],
  start: number,
  ellipsis: boolean,
  cursor: number,
  columns: number,
  maxRows: number,
): Layout {
  let row = 0;
  let col = 0;
  const place = (width: number): boolean => {
    if (width > 0 && col + width > columns) {
      if (row + 1 >= maxRows) return false;
      row++;
      col = 0;
    }
    col += width;
    return true;
  };
  for (const cell of prompt) place(cell.width);
  if (ellipsis) place(1);
  let cursorRow = row;
  let cursorCol = col;
  let end = start;
  for (; end < cells.length; end++) {
    const width = cells[end].width;
    // The cursor sits on this cell: where it will be drawn.
    const wraps = width > 0 && col + width > columns;
    if (end === cursor) {
      cursorRow = wraps ? row + 1 : row;
      cursorCol = wraps ? 0 : col;
    }
    if (!place(width)) break;
  }
  if (cursor >= end) {
    cursorRow = row;
    cursorCol = col;
    if (col >= columns) {
      cursorRow++;
      cursorCol = 0;
    }
  }
  return {
    start,
    end,
    ellipsis,
    cursorRow,
    cursorCol,
    endRow: row,
    endCol: col,
  };
}

/**
 * The layout to draw: all of the text when it fits in `maxRows` with the
 * cursor, else a window that starts after a `…` and shows the cursor.
 */
function windowed(
  prompt: readonly Cell[],
  cells: readonly Cell[],
  cursor: number,
  columns: number,
  maxRows: number,
): Layout {
  const fits = (layout: Layout) =>
    layout.cursorRow < maxRows &&
    (layout.end > cursor || cursor === cells.length &&
        layout.end === cells.length);
  let layout = layOut(prompt, cells, 0, false, cursor, columns, maxRows);
  if (fits(layout)) return layout;
  // Start later, a row's worth of columns at a time, until the cursor shows.
  let start = 0;
  while (start < cursor) {
    let skipped = 0;
    while (start < cursor && skipped < columns) {
      skipped += Math.max(cells[start].width, 1);
      start++;
    }
    layout = layOut(prompt, cells, start, true, cursor, columns, maxRows);
    if (fits(layout)) return layout;
  }
  return layOut(prompt, cells, cursor, true, cursor, columns, maxRows);
}
