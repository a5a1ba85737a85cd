/**
 * The interactive client's terminal, the I/O shell around the pure
 * {@linkcode LineEditor} (keys, the input line) and {@linkcode Presenter}
 * (what to show): raw mode, reading keys, writing the screen, the bell,
 * resizes, Ctrl+Z and Ctrl+C. `client.ts` hands it the core's outputs and
 * questions; it hands the user's lines to a {@linkcode TerminalHost}.
 *
 * Decisions, for the user:
 * - A line is cleared from the input when entered, accepted or not; a
 *   refused one comes back with Up (so `q` after a refused answer is just
 *   `q`). Text typed when the question changes under it is set aside the
 *   same way, and the user is told: it is never taken as the answer to the
 *   new question.
 * - The screen is the terminal the view is drawn on: stdout, or stderr when
 *   stdout is redirected (then stdout gets a plain transcript, the
 *   scripted-mode lines, with no escape codes). See `chooseOutput`.
 * - Ctrl+C quits with exit code 130 and shows what was typed and not sent.
 *   Ctrl+Z suspends (the terminal stops the process; `fg` brings the
 *   screen back), except under `deno task`, which does not stop: there it
 *   says how to run the client to get Ctrl+Z.
 * - A paste of more than {@linkcode PASTE_CONFIRM_LINES} lines in a chat is
 *   sent only after the user answers y.
 *
 * @module
 */

import { stripVTControlCharacters } from "node:util";
// A full npm: specifier, so that mod.ts loads in projects without this
// deno.json (issue 7).
// deno-lint-ignore no-import-prefix
import stringWidth from "npm:string-width@9.0.0";
import { writeAll } from "../_write.ts";
import { getLogger } from "../log.ts";
import { CHAT_HELP, parseChatInput } from "./commands.ts";
import {
  BRACKETED_PASTE_OFF,
  BRACKETED_PASTE_ON,
  type EditorEvent,
  LineEditor,
} from "./line_editor.ts";
import type { Ask, Output } from "./output.ts";
import { Presenter } from "./presenter.ts";
import { renderText } from "./render.ts";
import {
  BELL,
  INTERRUPTED_EXIT_CODE,
  interruptNotice,
  PASTE_CONFIRM_LINES,
  pasteQuestion,
} from "./terminal.ts";
import { type Palette, palette } from "./palette.ts";

const log = getLogger("client");

/** What the terminal shell needs from the client around it. */
export interface TerminalHost {
  /** The user entered `line`; false when the client refused it. */
  typed(line: string): boolean;
  /** Quit (Ctrl+C, Ctrl+D); `code` is the exit code asked for, if any. */
  interrupt(code?: number): void;
  /** The terminal's input ended. */
  inputEnd(): void;
}

/** Where and how the shell draws. */
export interface TerminalShellOptions {
  /** The terminal the view is drawn on (stdout, or stderr when stdout is redirected). */
  screen: typeof Deno.stdout | typeof Deno.stderr;
  /** Whether stdout gets a plain transcript (it is redirected). */
  transcript: boolean;
  /** Colours on the screen. */
  colour: boolean;
  /** Whether Ctrl+Z may stop the process (not under `deno task`). */
  suspendable: boolean;
}

/** The interactive terminal (see the module documentation). */
export class TerminalShell {
  #editor = new LineEditor();
  #presenter: Presenter;
  #options: TerminalShellOptions;
  #paint: Palette;
  #host: TerminalHost | undefined;
  #ask: Ask | undefined;
  #prompt = "";
  #raw = false;
  #closed = false;
  /** A paste of many lines waiting for the user's y or n. */
  #paste: string[] | undefined;
  /** Redraws the invitation's prompt each second while it waits. */
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** Whether the user was told that Up brings a refused line back. */
  #hinted = false;
  /** The last line printed, if it may be amended (the message just sent). */
  #amendable: string | undefined;

  /** Creates the shell; {@linkcode start} takes the terminal. */
  constructor(options: TerminalShellOptions) {
    this.#options = options;
    this.#paint = palette(options.colour);
    this.#presenter = new Presenter({ colour: options.colour });
  }

  #onCrash = () => this.close();
  #onResize = () => this.#draw();
  #onContinue = () => {
    // Back from Ctrl+Z (fg): the terminal is ours again.
    this.#enterRaw();
    this.#editor.forget();
    this.#amendable = undefined;
    this.#draw();
  };

  /** The signals the view listens to: a resize, and the return from Ctrl+Z. */
  #signals(): [Deno.Signal, () => void][] {
    return [["SIGWINCH", this.#onResize], ["SIGCONT", this.#onContinue]];
  }

  /** Takes the terminal and starts reading keys for `host`. */
  start(host: TerminalHost): void {
    this.#host = host;
    this.#enterRaw();
    for (const type of ["error", "unhandledrejection", "unload"]) {
      globalThis.addEventListener(type, this.#onCrash);
    }
    for (const [signal, listener] of this.#signals()) {
      try {
        Deno.addSignalListener(signal, listener);
      } catch {
        // Not on this platform.
      }
    }
    this.#draw();
    this.#readKeys(host);
  }

  /** Gives the terminal back as it was. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    for (const type of ["error", "unhandledrejection", "unload"]) {
      globalThis.removeEventListener(type, this.#onCrash);
    }
    for (const [signal, listener] of this.#signals()) {
      try {
        Deno.removeSignalListener(signal, listener);
      } catch {
        // Not on this platform.
      }
    }
    this.#leaveRaw();
  }

  /** Shows one output of the core. */
  show(output: Output): void {
    if (this.#options.transcript) {
      try {
        writeAll(Deno.stdout, renderText(output) + "\n");
      } catch (error) {
        log.debug("Writing the transcript failed: {error}", { error });
      }
    }
    const shown = this.#presenter.present(
      output,
      new Date(),
      this.#editor.text !== "",
      performance.now(),
    );
    this.#tick();
    if (shown.amend !== undefined && this.#amendable !== undefined) {
      this.#amend(shown.amend);
    } else if (shown.amend !== undefined) {
      this.#above([shown.amend]);
    }
    if (shown.lines.length > 0) {
      this.#above(shown.lines, shown.bell ? BELL : "");
      this.#amendable = output.type === "sent" ? shown.lines.at(-1) : undefined;
    } else if (shown.bell) {
      this.#write(BELL);
    }
  }

  /** The core now waits for `ask` (or for nothing). */
  setAsk(ask: Ask | undefined): void {
    if (ask !== this.#ask && this.#editor.text !== "") {
      // The question changed under what was being typed: keep it out of
      // the answer to the new question.
      const text = this.#editor.setAside();
      const shown = text.length > 40 ? text.slice(0, 39) + "…" : text;
      this.#note(
        this.#paint.yellow(
          `* set aside what you were typing (${
            JSON.stringify(shown)
          }): press Up to get it back`,
        ),
      );
    }
    if (ask !== this.#ask) this.#paste = undefined;
    this.#ask = ask;
    this.#tick();
    this.#draw();
  }

  /** SIGINT arrived (Ctrl+C in a terminal that sends signals): say what was not sent. */
  interrupted(): void {
    const discarded = this.#editor.text;
    this.#editor.clear();
    this.#note(this.#paint.dim(interruptNotice(discarded)));
  }

  // ------------------------------------------------------------ terminal

  #enterRaw(): void {
    try {
      // cbreak: the terminal still turns Ctrl+C into SIGINT and Ctrl+Z into
      // SIGTSTP for the whole foreground job, so that Ctrl+Z suspends with
      // no permission to send signals. Not under `deno task`, which does
      // not stop: there Ctrl+Z is a key and gets an explanation.
      Deno.stdin.setRaw(true, { cbreak: this.#options.suspendable });
      this.#raw = true;
      this.#write(BRACKETED_PASTE_ON);
    } catch (error) {
      log.debug("Setting the terminal to raw mode failed: {error}", { error });
    }
  }

  #leaveRaw(): void {
    this.#write(this.#editor.erase() + BRACKETED_PASTE_OFF);
    if (!this.#raw) return;
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Nothing more to do.
    }
    this.#raw = false;
  }

  /** Keeps the invitation's prompt ticking while it waits. */
  #tick(): void {
    const wanted = this.#presenter.inviting && this.#ask === undefined;
    if (wanted && this.#ticker === undefined) {
      this.#ticker = setInterval(() => this.#draw(), 1000);
    } else if (!wanted && this.#ticker !== undefined) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }

  /** Prints a line of the shell's own above the input line. */
  #note(text: string): void {
    this.#above([this.#presenter.notice(text, new Date())]);
    this.#amendable = undefined;
  }

  /** Prints `lines` above the input line, then draws it again. */
  #above(lines: string[], extra = ""): void {
    this.#write(
      this.#editor.erase() + lines.map((line) => line + "\r\n").join("") +
        extra + this.#render(),
    );
    this.#amendable = undefined;
  }

  /** Rewrites the last line printed (the message just sent) as `line`. */
  #amend(line: string): void {
    const old = this.#amendable!;
    const { columns } = this.#size();
    const rows = Math.max(
      1,
      Math.ceil(stringWidth(stripVTControlCharacters(old)) / columns),
    );
    this.#write(
      this.#editor.erase() + `\x1b[${rows}A\r\x1b[J` + line + "\r\n" +
        this.#render(),
    );
    this.#amendable = undefined;
  }

  #draw(): void {
    if (this.#closed) return;
    this.#write(this.#render());
  }

  #size(): { columns: number; rows: number } {
    let { columns, rows } = { columns: 0, rows: 0 };
    try {
      ({ columns, rows } = Deno.consoleSize());
    } catch {
      // Not a terminal after all.
    }
    if (columns < 10) columns = 80; // unknown (0) or absurd: assume 80
    if (rows < 4) rows = 24;
    return { columns, rows };
  }

  #render(): string {
    const { columns, rows } = this.#size();
    this.#prompt = this.#paste !== undefined
      ? this.#paint.bold(pasteQuestion(this.#paste.length))
      : this.#presenter.prompt(this.#ask, performance.now());
    return this.#editor.render({
      prompt: this.#prompt,
      columns,
      maxRows: Math.max(1, Math.floor(rows / 2)),
    });
  }

  #write(text: string): void {
    try {
      writeAll(this.#options.screen, text);
    } catch (error) {
      log.debug("Writing to the terminal failed: {error}", { error });
    }
  }

  // ------------------------------------------------------------ input

  async #readKeys(host: TerminalHost): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(16_384);
    try {
      for (;;) {
        let count: number | null;
        try {
          count = await Deno.stdin.read(buffer);
        } catch (error) {
          // A read cut short by a signal (Ctrl+Z then fg): read again.
          if (error instanceof Deno.errors.Interrupted) continue;
          throw error;
        }
        if (count === null || this.#closed) break;
        const text = decoder.decode(buffer.subarray(0, count), {
          stream: true,
        });
        for (const event of this.#editor.feed(text)) this.#event(host, event);
      }
    } catch (error) {
      log.debug("Reading the terminal failed: {error}", { error });
    }
    if (!this.#closed) host.inputEnd();
  }

  #event(host: TerminalHost, event: EditorEvent): void {
    switch (event.type) {
      case "submit":
        this.#draw();
        this.#submit(host, event.line);
        break;
      case "paste":
        if (this.#ask === "chat" && event.lines.length > PASTE_CONFIRM_LINES) {
          this.#paste = event.lines;
          this.#draw();
        } else {
          for (const line of event.lines) this.#submit(host, line);
        }
        break;
      case "interrupt":
        this.#note(this.#paint.dim(interruptNotice(event.discarded)));
        host.interrupt(INTERRUPTED_EXIT_CODE);
        break;
      case "eof":
        host.interrupt();
        break;
      case "suspend":
        this.#note(
          this.#paint.yellow(
            Deno.build.os === "windows"
              ? "* Ctrl+Z cannot suspend a program on Windows"
              : "* Ctrl+Z cannot suspend a client started by deno task (the task runner does not stop): start it with deno run -A mod.ts client … to use Ctrl+Z",
          ),
        );
        break;
      case "redraw":
        this.#write("\x1b[H\x1b[2J");
        this.#editor.forget();
        this.#amendable = undefined;
        this.#draw();
        break;
      case "changed":
        this.#draw();
        break;
    }
  }

  /** An entered line: the paste question and /help here, the rest to the host. */
  #submit(host: TerminalHost, line: string): void {
    if (this.#paste !== undefined) {
      const lines = this.#paste;
      const answer = line.trim().toLowerCase();
      if (answer !== "y" && answer !== "n") {
        this.#note(
          this.#paint.red(
            `! Type y to send the ${lines.length} pasted lines or n to drop them`,
          ),
        );
        return;
      }
      this.#paste = undefined;
      if (answer === "y") {
        for (const each of lines) this.#submit(host, each);
      } else {
        this.#note(this.#paint.dim(`* ${lines.length} pasted lines dropped`));
      }
      this.#draw();
      return;
    }
    if (line.trim() === "/help" && this.#ask !== "chat") {
      for (const text of CHAT_HELP) this.#note(this.#paint.dim(text));
      return;
    }
    if (this.#ask === "chat" && parseChatInput(line).type === "command") {
      const input = parseChatInput(line);
      if (input.type === "command" && input.command === "help") {
        for (const text of CHAT_HELP) this.#note(this.#paint.dim(text));
        return;
      }
    }
    if (!host.typed(line) && !this.#hinted) {
      // Once: a refused line is not lost.
      this.#hinted = true;
      this.#note(
        this.#paint.dim("  (Up brings a refused line back to edit it)"),
      );
    }
    this.#draw();
  }
}
