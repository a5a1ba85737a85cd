/**
 * What the interactive client shows, sans-I/O: the client core's
 * {@linkcode Output}s in, screen lines and the input line's prompt out. The
 * terminal shell (`terminal_shell.ts`) only writes what this decides.
 *
 * - Every line starts with the time (`HH:MM`, {@linkcode clockTime}).
 * - Messages are numbered per chat (`#1` is the first message of this
 *   chat, whatever number the daemon gave it): the outbox numbers them,
 *   and the outputs carry these numbers.
 * - A message sent is one line, `alice: hello #1`, which gets ` ✓` when it
 *   is delivered while it is still the last line on the screen
 *   ({@linkcode Presentation.amend}); otherwise a short `✓ #1` line
 *   follows. A retransmission is a short `↻ #1` line.
 * - The prompt tells where things stand: `[bob@127.0.0.2]> ` in a chat,
 *   `[inviting 127.0.0.5, 12 s, sent 3 times, no answer, 48 s left: /leave
 *   cancels, q quits]> ` while an invitation waits (the daemon's
 *   `invite-retry` events update it, no line is printed for them), the
 *   question otherwise.
 * - The bell rings for an invitation, and for a message while the user
 *   types ({@linkcode bellFor}).
 *
 * Texts from the network are made harmless by `render.ts`
 * ({@linkcode printable}).
 *
 * @module
 */

import type { Ask, Output } from "./output.ts";
import {
  displayAddress,
  messageRef,
  printable,
  terminalLines,
} from "./render.ts";
import { bellFor, chatPrompt, clockTime, inviteStatus } from "./terminal.ts";
import { type Palette, palette } from "./palette.ts";

/** The input-line prompts for the questions. */
export const QUESTION_PROMPTS: Readonly<Record<Ask, string>> = Object.freeze({
  name: "Your name: ",
  menu: "Choose 1, 2 or q: ",
  ip: "IP address to invite: ",
  answer: "Accept? (y/n/q): ",
  chat: "> ",
});

/** What to do on the screen for one output. */
export interface Presentation {
  /** Lines to print above the input line (no line ends). */
  lines: string[];
  /** Ring the bell. */
  bell: boolean;
  /**
   * Replace the last line printed (the message just sent, `rows` rows
   * tall on a screen of the given width) by this one before printing
   * `lines`.
   */
  amend?: string;
}

/** Options of {@linkcode Presenter}. */
export interface PresenterOptions {
  /** Colours on. */
  colour: boolean;
}

/**
 * Turns outputs into screen lines and prompts (see the module
 * documentation). Feed it every output in order ({@linkcode present}), and
 * every line the shell prints itself ({@linkcode notice}).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert";
 * import { Presenter } from "./presenter.ts";
 * const presenter = new Presenter({ colour: false });
 * const at = new Date(2026, 0, 1, 9, 5);
 * const shown = presenter.present({ type: "message", name: "bob", text: "hi" }, at, false);
 * deepStrictEqual(shown.lines, ["09:05 bob: hi"]);
 * ```
 */
export class Presenter {
  #paint: Palette;
  #colour: boolean;
  #name = "";
  #peer: { name: string; ip: string; port: number } | undefined;
  /** The message sent that is the last line on the screen, if it is. */
  #lastSent: { id: number; line: string } | undefined;
  #inviting:
    | {
      address: string;
      since: number;
      /** From the last `invite-retry`: times sent, ms left, and when it came. */
      retry?: { sent: number; leftMs: number; at: number };
    }
    | undefined;
  #waiting = false;

  /** Creates a presenter. */
  constructor(options: PresenterOptions) {
    this.#colour = options.colour;
    this.#paint = palette(options.colour);
  }

  /** Whether an invitation of ours waits (the prompt then changes each second). */
  get inviting(): boolean {
    return this.#inviting !== undefined;
  }

  /**
   * What to show for `output`, which arrived at `at` (wall clock, for the
   * timestamp; `nowMs` on a monotonic clock for the invitation's time) while
   * the user was `typing` or not.
   */
  present(
    output: Output,
    at: Date,
    typing: boolean,
    nowMs = at.getTime(),
  ): Presentation {
    this.#track(output, nowMs);
    const time = this.#paint.dim(clockTime(at));
    const stamp = (line: string) => `${time} ${line}`;
    const p = this.#paint;
    const bell = output.type === "invitation"
      ? bellFor("invitation", typing) !== ""
      : output.type === "message"
      ? bellFor("message", typing) !== ""
      : false;
    switch (output.type) {
      case "sent": {
        const line = stamp(
          `${p.bold(p.green(printable(this.#name || "you")))}: ${
            printable(output.text)
          } ${p.dim(`#${output.id}`)}`,
        );
        this.#lastSent = { id: output.id, line };
        return { lines: [line], bell };
      }
      case "delivered": {
        const last = this.#lastSent;
        if (
          last !== undefined && output.id !== undefined &&
          last.id === output.id
        ) {
          const amend = `${last.line} ${p.green("✓")}`;
          this.#lastSent = undefined;
          return { lines: [], bell, amend };
        }
        return this.#lines(
          [stamp(p.dim(`  ✓ ${messageRef(output.id)}`))],
          bell,
        );
      }
      case "retransmitted":
        return this.#lines([
          stamp(
            p.yellow(
              `  ↻ ${messageRef(output.id)} sent again (attempt ${
                output.attempt + 1
              })`,
            ),
          ),
        ], bell);
      case "undelivered":
        return this.#lines([
          stamp(
            p.red(
              `! ${messageRef(output.id)} not delivered: ${
                printable(output.text)
              }`,
            ),
          ),
        ], bell);
      case "invite-retry":
        // Shown in the status prompt, which updates: not a line each time.
        return { lines: [], bell };
      case "message":
        return this.#lines([
          stamp(
            `${p.bold(p.cyan(printable(output.name)))}: ${
              printable(output.text)
            }`,
          ),
        ], bell);
    }
    const lines = terminalLines(output, {
      name: this.#name,
      colour: this.#colour,
    });
    return this.#lines(lines.map(stamp), bell);
  }

  /** A line the shell prints itself (a notice, the help): time-stamped. */
  notice(text: string, at: Date): string {
    this.#lastSent = undefined;
    return `${this.#paint.dim(clockTime(at))} ${text}`;
  }

  /** The prompt of the input line for `ask` at `nowMs` (monotonic clock). */
  prompt(ask: Ask | undefined, nowMs: number): string {
    const p = this.#paint;
    if (ask === "chat" && this.#peer !== undefined) {
      return p.bold(chatPrompt(this.#peer));
    }
    if (ask !== undefined) return p.bold(QUESTION_PROMPTS[ask]);
    if (this.#inviting !== undefined) {
      const { address, since, retry } = this.#inviting;
      return p.bold(inviteStatus({
        address,
        elapsedMs: nowMs - since,
        ...(retry === undefined ? {} : {
          sent: retry.sent,
          leftMs: retry.leftMs - (nowMs - retry.at),
        }),
      }));
    }
    if (this.#waiting) {
      return p.dim("[waiting for invitations: /leave = menu, q = quit]> ");
    }
    return p.dim("(q = quit) ");
  }

  #lines(lines: string[], bell: boolean): Presentation {
    if (lines.length > 0) this.#lastSent = undefined;
    return { lines, bell };
  }

  /** Keeps what the prompt and the numbering depend on. */
  #track(output: Output, nowMs: number): void {
    switch (output.type) {
      case "connected":
        this.#name = output.name;
        break;
      case "inviting":
        this.#inviting = {
          address: displayAddress(output.ip, output.port),
          since: nowMs,
        };
        this.#waiting = false;
        break;
      case "waiting":
        this.#waiting = true;
        break;
      case "invite-retry":
        if (this.#inviting !== undefined) {
          this.#inviting.retry = {
            sent: output.attempt + 1,
            leftMs: output.leftMs,
            at: nowMs,
          };
        }
        break;
      case "chat-started":
        this.#peer = { name: output.name, ip: output.ip, port: output.port };
        this.#inviting = undefined;
        this.#waiting = false;
        break;
      case "prompt":
      case "declined":
      case "busy":
      case "no-answer":
      case "invitation-cancelled":
      case "invitation":
        this.#inviting = undefined;
        if (output.type === "prompt") this.#waiting = false;
        break;
    }
  }
}
