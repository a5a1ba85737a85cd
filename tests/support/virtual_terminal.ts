/**
 * A small terminal emulator for tests: enough of xterm to check what the
 * line editor draws — printable text with screen widths (`string-width`),
 * automatic wrapping with the "pending wrap" of the last column (a wide
 * character that does not fit goes to the next row), scrolling, `\r`,
 * `\n`, cursor up/down/forward/back (`CSI n A/B/C/D`), column (`CSI n G`),
 * erase below (`CSI J`, `CSI 2J`), erase in line (`CSI K`), home
 * (`CSI H`). SGR and mode sequences are ignored; anything else is an error,
 * so that a test sees an escape sequence it did not expect.
 */

// deno-lint-ignore no-import-prefix
import stringWidth from "npm:string-width@9.0.0";

/** A CSI sequence: ESC [, parameters, a final byte. */
const CSI = new RegExp("^\x1b\\[([?0-9;]*)([@-~])");

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** A screen of `rows` × `columns` cells; feed it output with {@linkcode write}. */
export class VirtualTerminal {
  readonly rows: number;
  readonly columns: number;
  /** Each cell: the grapheme drawn there, "" for the right half of a wide one, " " blank. */
  #grid: string[][];
  /** Lines scrolled off the top. */
  readonly scrollback: string[] = [];
  row = 0;
  /** The cursor's column; `columns` means "in the last column, wrap pending". */
  col = 0;
  /** Bells rung. */
  bells = 0;

  constructor(columns: number, rows: number) {
    this.columns = columns;
    this.rows = rows;
    this.#grid = Array.from({ length: rows }, () => this.#blankRow());
  }

  #blankRow(): string[] {
    return Array.from({ length: this.columns }, () => " ");
  }

  /** The screen's rows, trailing blanks removed. */
  get lines(): string[] {
    return this.#grid.map((row) => row.join("").trimEnd());
  }

  /** The rows that are not blank. */
  get nonEmpty(): string[] {
    return this.lines.filter((line) => line !== "");
  }

  /** Processes terminal output. */
  write(text: string): void {
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "\x1b") {
        i = this.#escape(text, i);
        continue;
      }
      if (c === "\r") {
        this.col = 0;
        i++;
        continue;
      }
      if (c === "\n") {
        this.#lineFeed();
        i++;
        continue;
      }
      if (c === "\x07") {
        this.bells++;
        i++;
        continue;
      }
      if (c.charCodeAt(0) < 0x20) {
        throw new Error(`Unexpected control ${JSON.stringify(c)}`);
      }
      // The printable run up to the next control.
      let j = i;
      while (
        j < text.length && text.charCodeAt(j) >= 0x20 && text[j] !== "\x1b"
      ) {
        j++;
      }
      for (const { segment } of segmenter.segment(text.slice(i, j))) {
        this.#put(segment);
      }
      i = j;
    }
  }

  #put(grapheme: string): void {
    const width = stringWidth(grapheme);
    if (width === 0) return; // joins the cell before; not modelled
    if (this.col + width > this.columns) {
      // Wrap: the rest of the row stays as it is (blank for a wide char).
      this.col = 0;
      this.#lineFeed();
    }
    const row = this.#grid[this.row];
    row[this.col] = grapheme;
    for (let k = 1; k < width; k++) row[this.col + k] = "";
    this.col += width;
  }

  #lineFeed(): void {
    if (this.row === this.rows - 1) {
      this.scrollback.push(this.#grid.shift()!.join("").trimEnd());
      this.#grid.push(this.#blankRow());
    } else {
      this.row++;
    }
  }

  /** Handles the escape sequence at `text[i]`; returns the index after it. */
  #escape(text: string, i: number): number {
    const match = CSI.exec(text.slice(i, i + 32));
    if (match === null) {
      throw new Error(
        `Unexpected escape ${JSON.stringify(text.slice(i, i + 8))}`,
      );
    }
    const [whole, params, final] = match;
    const n = params === "" ? 1 : Number(params.split(";")[0]) || 1;
    const col = Math.min(this.col, this.columns - 1);
    switch (final) {
      case "A":
        this.row = Math.max(0, this.row - n);
        this.col = col;
        break;
      case "B":
        this.row = Math.min(this.rows - 1, this.row + n);
        this.col = col;
        break;
      case "C":
        this.col = Math.min(this.columns - 1, col + n);
        break;
      case "D":
        this.col = Math.max(0, col - n);
        break;
      case "G":
        this.col = Math.min(this.columns - 1, n - 1);
        break;
      case "H":
        this.row = 0;
        this.col = 0;
        break;
      case "J":
        if (params === "2" || params === "3") {
          this.#grid = Array.from(
            { length: this.rows },
            () => this.#blankRow(),
          );
        } else {
          this.#grid[this.row].fill(" ", col);
          for (let r = this.row + 1; r < this.rows; r++) {
            this.#grid[r] = this.#blankRow();
          }
        }
        break;
      case "K":
        this.#grid[this.row].fill(" ", params === "2" ? 0 : col);
        break;
      case "m":
      case "h":
      case "l":
        break;
      default:
        throw new Error(`Unexpected escape ${JSON.stringify(whole)}`);
    }
    return i + whole.length;
  }
}
