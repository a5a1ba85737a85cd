/**
 * Pure pieces of the interactive client's presentation: which stream the
 * screen is drawn on ({@linkcode chooseOutput}), colours
 * ({@linkcode colourWanted}, honouring `NO_COLOR` and `FORCE_COLOR`; the
 * colour functions themselves are in `palette.ts`), the status prompt ({@linkcode chatPrompt}), timestamps
 * ({@linkcode clockTime}, {@linkcode isoTime}), the bell
 * ({@linkcode bellFor}), and the texts for a paste, Ctrl+C and an invitation
 * in progress. The shell (`client.ts`) does the I/O.
 *
 * @module
 */

/** The exit code after Ctrl+C or SIGINT (128 + 2, the shells' convention). */
export const INTERRUPTED_EXIT_CODE = 130;

/** The terminal bell (BEL). */
export const BELL = "\x07";

/** Above this many lines, a paste is sent only after the user confirms (irssi's default is 5 too). */
export const PASTE_CONFIRM_LINES = 5;

/** Which of the standard streams are terminals. */
export interface Terminals {
  /** Standard input. */
  stdin: boolean;
  /** Standard output. */
  stdout: boolean;
  /** Standard error. */
  stderr: boolean;
}

/** How the client presents itself (see {@linkcode chooseOutput}). */
export type OutputChoice =
  | {
    /** One line per event on stdout, answers read from stdin line by line. */
    mode: "scripted";
  }
  | {
    /** The interactive view: raw keys, an input line, news above it. */
    mode: "interactive";
    /** The stream the view is drawn on. */
    screen: "stdout" | "stderr";
    /**
     * Whether stdout also gets a plain transcript (one line per event, no
     * escape codes): when stdout is redirected (`client > chat.log`).
     */
    transcript: boolean;
  };

/**
 * Where the client draws, from which streams are terminals.
 *
 * - `--json`, or stdin not a terminal: scripted.
 * - stdin and stdout terminals: interactive on stdout.
 * - stdin a terminal, stdout redirected (`client > file`, `client | tee`),
 *   stderr a terminal: interactive **on stderr**, and stdout gets a plain
 *   transcript with no escape codes. stderr rather than `/dev/tty`: the
 *   client runs without file permissions (`deno run --allow-net
 *   --allow-env`), `/dev/tty` does not exist on Windows, and stderr is
 *   where programs put what is for the person at the terminal while
 *   stdout carries data (as `curl` does with its progress meter).
 * - no terminal to draw on (stdout and stderr both redirected): scripted.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert";
 * import { chooseOutput } from "./terminal.ts";
 * deepStrictEqual(
 *   chooseOutput({ stdin: true, stdout: false, stderr: true }, false),
 *   { mode: "interactive", screen: "stderr", transcript: true },
 * );
 * ```
 */
export function chooseOutput(
  terminals: Terminals,
  json: boolean,
): OutputChoice {
  if (json || !terminals.stdin) return { mode: "scripted" };
  if (terminals.stdout) {
    return { mode: "interactive", screen: "stdout", transcript: false };
  }
  if (terminals.stderr) {
    return { mode: "interactive", screen: "stderr", transcript: true };
  }
  return { mode: "scripted" };
}

/**
 * Whether to colour output, from the environment and whether the output is
 * a terminal: `NO_COLOR` set and not empty turns colours off (no-color.org,
 * it wins); else `FORCE_COLOR` set and not empty turns them on, except `0`
 * or `false` which turn them off (as Node.js reads it); else colours only
 * on a terminal.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { colourWanted } from "./terminal.ts";
 * strictEqual(colourWanted({ NO_COLOR: "1" }, true), false);
 * strictEqual(colourWanted({ FORCE_COLOR: "1" }, false), true);
 * ```
 */
export function colourWanted(
  env: Readonly<Record<string, string | undefined>>,
  isTerminal: boolean,
): boolean {
  if ((env.NO_COLOR ?? "") !== "") return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "") {
    return force !== "0" && force.toLowerCase() !== "false";
  }
  return isTerminal;
}

/** Who the chat is with, as the status prompt shows it. */
export interface PeerLabel {
  /** The partner's user name (may be empty: SIMP allows it). */
  name: string;
  /** The partner's IP address. */
  ip: string;
  /** The partner's port; shown only when it is not `defaultPort`. */
  port?: number;
  /** The usual SIMP port (7777): not shown. */
  defaultPort?: number;
}

/**
 * The prompt of the input line in a chat: `[bob@127.0.0.2]> ` (the port
 * too when it is not the usual one; the name only when there is one).
 * Characters outside printable ASCII in the name are shown as `?`.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { chatPrompt } from "./terminal.ts";
 * strictEqual(chatPrompt({ name: "bob", ip: "127.0.0.2" }), "[bob@127.0.0.2]> ");
 * ```
 */
export function chatPrompt(peer: PeerLabel): string {
  const name = peer.name.replace(/[^\x20-\x7e]/g, "?");
  const port =
    peer.port !== undefined && peer.port !== (peer.defaultPort ?? 7777)
      ? `:${peer.port}`
      : "";
  return `[${name === "" ? "" : `${name}@`}${peer.ip}${port}]> `;
}

/**
 * The time of day for the screen, `HH:MM` in the local time zone (as
 * irssi shows it).
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { clockTime } from "./terminal.ts";
 * strictEqual(clockTime(new Date(2026, 0, 1, 9, 5)), "09:05");
 * ```
 */
export function clockTime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}`;
}

/**
 * The time for JSON events and transcripts: ISO 8601 in UTC with
 * milliseconds (`2026-01-01T09:05:00.000Z`), which sorts and parses
 * everywhere.
 */
export function isoTime(date: Date): string {
  return date.toISOString();
}

/** What arrived, for {@linkcode bellFor}. */
export type Arrival = "invitation" | "message";

/**
 * The bell to ring when something arrives: always for an invitation (it
 * waits for an answer), and for a message while the user is typing (their
 * eyes are on the input line). `""` for none.
 */
export function bellFor(arrival: Arrival, typing: boolean): string {
  return arrival === "invitation" || typing ? BELL : "";
}

/**
 * The question asked before sending a paste of `lines` lines (above
 * {@linkcode PASTE_CONFIRM_LINES}).
 */
export function pasteQuestion(lines: number): string {
  return `Send ${lines} pasted lines as ${lines} messages? (y = send, n = drop): `;
}

/**
 * The line shown on Ctrl+C: `^C` and, when something was typed, that it
 * was not sent (so that it can still be copied from the screen).
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { interruptNotice } from "./terminal.ts";
 * strictEqual(interruptNotice("see you"), '^C (not sent: "see you")');
 * ```
 */
export function interruptNotice(discarded: string): string {
  if (discarded === "") return "^C";
  return `^C (not sent: ${JSON.stringify(discarded)})`;
}

/** Where an invitation of ours stands, for {@linkcode inviteStatus}. */
export interface InviteProgress {
  /** Who is invited, as shown (`127.0.0.5`, or `ip:port`). */
  address: string;
  /** Milliseconds since the invitation started. */
  elapsedMs: number;
  /** How many times the invitation was sent, once the daemon said (`invite-retry`). */
  sent?: number;
  /** Milliseconds until the daemon gives up, once it said. */
  leftMs?: number;
}

/**
 * The prompt while an invitation of ours waits for an answer: how long it
 * has waited, and once the daemon has sent it again (`invite-retry`) how
 * many times it was sent and the time left until the daemon gives up; and
 * how to cancel.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert";
 * import { inviteStatus } from "./terminal.ts";
 * strictEqual(
 *   inviteStatus({ address: "127.0.0.5", elapsedMs: 12_400 }),
 *   "[inviting 127.0.0.5, 12 s: /leave cancels, q quits]> ",
 * );
 * strictEqual(
 *   inviteStatus({ address: "127.0.0.5", elapsedMs: 12_400, sent: 3, leftMs: 47_600 }),
 *   "[inviting 127.0.0.5, 12 s, sent 3 times, no answer, 48 s left: /leave cancels, q quits]> ",
 * );
 * ```
 */
export function inviteStatus(progress: InviteProgress): string {
  const seconds = Math.max(0, Math.floor(progress.elapsedMs / 1000));
  const parts = [`inviting ${progress.address}`, `${seconds} s`];
  if (progress.sent !== undefined) {
    parts.push(`sent ${progress.sent} times`, "no answer");
  }
  if (progress.leftMs !== undefined) {
    parts.push(`${Math.max(0, Math.ceil(progress.leftMs / 1000))} s left`);
  }
  return `[${parts.join(", ")}: /leave cancels, q quits]> `;
}
