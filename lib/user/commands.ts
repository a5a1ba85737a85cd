/**
 * What a line typed in a chat means: a message, a slash command, or
 * something refused with a hint (SPEC §8.4, §8.5). Pure.
 *
 * - `q` alone quits (SPEC §8.4), as does `/quit`.
 * - `/leave` leaves the chat (FIN, SPEC §6), `/help` shows
 *   {@linkcode CHAT_HELP}.
 * - `/say TEXT` sends TEXT as it is: the way to send a message that is
 *   exactly `q`, or one that starts with `/`.
 * - `//TEXT` sends `/TEXT` (as in irssi and weechat).
 * - Any other `/word` is refused with a hint (`/me waves` is not sent by
 *   mistake); a near miss gets "did you mean /leave?".
 * - An empty line (or one of blanks only) sends nothing.
 *
 * @module
 */

import { didYouMean } from "../suggest.ts";

/** The slash commands (without arguments) a chat knows. */
export const CHAT_COMMANDS = ["/help", "/leave", "/quit", "/say"] as const;

/** A slash command without arguments. */
export type ChatCommand = "help" | "leave" | "quit";

/** What a line typed in a chat means. */
export type ChatInput =
  | {
    /** Send `text` to the partner. */
    type: "message";
    /** The message, exactly. */
    text: string;
  }
  | {
    /** A command: `q`, `/quit`, `/leave`, `/help`. */
    type: "command";
    /** Which. */
    command: ChatCommand;
  }
  | {
    /** A blank line: nothing to do. */
    type: "empty";
  }
  | {
    /** Not sent: `message` says why and what to type instead. */
    type: "refused";
    /** For the user; starts with a capital, no trailing period. */
    message: string;
  };

/**
 * The help shown by `/help` in a chat (lines without line ends).
 */
export const CHAT_HELP: readonly string[] = Object.freeze([
  "Type a message and press Enter to send it. Commands:",
  "  /leave        leave the chat (you stay connected to your daemon)",
  "  /quit or q    leave the chat and quit",
  "  /say TEXT     send TEXT as it is (to send a message that is just q)",
  "  //TEXT        send /TEXT (a message starting with /)",
  "  /help         this help",
  "Keys: Left/Right, Home/End (Ctrl+A/E) move; Up/Down recall earlier lines;",
  "  Ctrl+U/Ctrl+K delete before/after the cursor, Ctrl+W the word before;",
  "  Ctrl+L redraws; Ctrl+Z suspends (fg resumes); Ctrl+C quits.",
  "SIMP carries ASCII only: letters with accents, CJK and emoji are refused.",
]);

/**
 * What `line`, typed in a chat, means (see the module documentation).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert";
 * import { parseChatInput } from "./commands.ts";
 * deepStrictEqual(parseChatInput("/say q"), { type: "message", text: "q" });
 * deepStrictEqual(parseChatInput("//etc"), { type: "message", text: "/etc" });
 * deepStrictEqual(parseChatInput("q"), { type: "command", command: "quit" });
 * ```
 */
export function parseChatInput(line: string): ChatInput {
  if (line.trim() === "") return { type: "empty" };
  if (line.trim() === "q") return { type: "command", command: "quit" };
  if (!line.startsWith("/")) return { type: "message", text: line };
  if (line.startsWith("//")) return { type: "message", text: line.slice(1) };
  const match = /^(\/\S*)(?:\s(.*))?$/s.exec(line)!;
  const word = match[1].toLowerCase();
  const rest = match[2] ?? "";
  if (word === "/say") {
    if (rest === "") {
      return {
        type: "refused",
        message: "Nothing to send: type /say and the text, e.g. /say q",
      };
    }
    return { type: "message", text: rest };
  }
  if (word === "/help" || word === "/leave" || word === "/quit") {
    if (rest.trim() !== "") {
      return {
        type: "refused",
        message: `${word} takes nothing after it: type ${word} alone`,
      };
    }
    return { type: "command", command: word.slice(1) as ChatCommand };
  }
  const shown = printableWord(match[1]);
  return {
    type: "refused",
    message: `Unknown command ${shown}${
      didYouMean(word, CHAT_COMMANDS)
    } (/help lists the commands; /${shown} sends a line that starts with ${shown})`,
  };
}

/** A word the user typed, fit for an error message (controls shown as `?`). */
function printableWord(word: string): string {
  const short = word.length > 24 ? word.slice(0, 23) + "…" : word;
  return short.replace(/[^\x20-\x7e…]/g, "?");
}
