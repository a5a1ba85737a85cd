/**
 * How the client's {@linkcode Output}s look: scripted text lines
 * ({@linkcode renderText}), JSON lines ({@linkcode renderJson}), the lines
 * of the interactive terminal ({@linkcode terminalLines}) and the line a
 * fatal error writes to stderr ({@linkcode stderrLine}). Pure functions.
 *
 * Everything that came from the network or from the daemon — names, chat
 * texts, error texts — is made harmless in every presentation: no control
 * character (C0, DEL, C1 such as U+009B, the 8-bit CSI), no bidirectional
 * override or isolate (U+202A–U+202E, U+2066–U+2069) and no line or
 * paragraph separator (U+2028, U+2029) reaches the terminal raw. Text lines
 * show them as escapes (`\x1b`, `\u202e`); JSON lines escape them inside
 * the strings (`\u001b`, `\u202e`), so a JSON reader gets the text exactly
 * as received while the bytes on the terminal stay harmless.
 *
 * @module
 */

import type { Output } from "./output.ts";
import { SIMP_PORT } from "../link/protocol.ts";

/** The characters {@linkcode printable} escapes (see the module documentation). */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "g");
/** The characters JSON.stringify leaves raw that {@linkcode renderJson} escapes. */
const UNSAFE_IN_JSON = /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every unsafe character escaped (`\n`, `\r`, `\t`, `\xHH` for
 * the other C0 and C1 controls and DEL, `\uHHHH` for bidirectional controls
 * and U+2028/U+2029), so that it shows as one harmless line.
 *
 * @example
 * ```ts
 * import { printable } from "./render.ts";
 * console.log(printable("hi\x1b[2J\u202egnp.exe")); // hi\x1b[2J\u202egnp.exe (escaped)
 * ```
 */
export function printable(text: string): string {
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE_ALL, (c) => {
    switch (c) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
    }
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * An address as the client shows it: `ip` for the SIMP port (7777), else
 * `ip:port`.
 */
export function displayAddress(ip: string, port: number): string {
  return port === SIMP_PORT ? ip : `${ip}:${port}`;
}

/** `name at ip` (or just the address when the name is unknown). */
export function formatPeer(name: string, ip: string, port: number): string {
  const address = displayAddress(ip, port);
  return name === "" ? address : `${name} at ${address}`;
}

/**
 * The scripted-mode text line for `output` (no line end): stable and meant
 * for `grep` and drivers, e.g. `bob: hello`, `delivered #1`,
 * `? menu: 1 = start a new chat, …`. Harmless whatever the texts in it.
 *
 * @example
 * ```ts
 * import { renderText } from "./render.ts";
 * console.log(renderText({ type: "message", name: "bob", text: "hi\x07" })); // bob: hi\x07
 * ```
 */
export function renderText(output: Output): string {
  return printable(textLine(output));
}

/**
 * The `--json` line for `output`: the object itself, on one line, with the
 * characters of the module documentation escaped inside its strings (the
 * parsed value is unchanged).
 *
 * @example
 * ```ts
 * import { renderJson } from "./render.ts";
 * console.log(renderJson({ type: "message", name: "bob", text: "\u202e" }));
 * // {"type":"message","name":"bob","text":"\u202e"} (escaped)
 * ```
 */
export function renderJson(output: Output): string {
  return JSON.stringify(output).replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The line a fatal error writes to stderr besides its output line
 * (`simp: <message>`, harmless), or `undefined` for any other output.
 */
export function stderrLine(output: Output): string | undefined {
  if (output.type !== "error" || !output.fatal) return undefined;
  return `simp: ${printable(output.message)}`;
}

/**
 * A message as news about it names it: `#3` (its number in this chat), or
 * `(sent by an earlier client)` when this client did not send it.
 */
export function messageRef(id: number | undefined): string {
  return id === undefined ? "(sent by an earlier client)" : `#${id}`;
}

function textLine(output: Output): string {
  switch (output.type) {
    case "prompt":
      return `? ${output.ask}: ${output.text}`;
    case "connected":
      return `connected to ${output.ip}:${output.port} as ${output.name}`;
    case "waiting":
      return "waiting for invitations";
    case "inviting":
      return `inviting ${displayAddress(output.ip, output.port)}`;
    case "invitation":
      return `invitation from ${
        formatPeer(output.name, output.ip, output.port)
      }`;
    case "invitation-ended":
      return `invitation from ${
        formatPeer(output.name, output.ip, output.port)
      } ${output.reason}`;
    case "invitation-declined":
      return `declined invitation from ${
        formatPeer(output.name, output.ip, output.port)
      }`;
    case "chat-started":
      return `chat started with ${
        formatPeer(output.name, output.ip, output.port)
      }`;
    case "answered-at-once":
      return `${
        output.name || displayAddress(output.ip, output.port)
      } answered at once: if your daemon restarted during a chat with ${
        output.name || "them"
      }, this is that chat going on (messages may have been missed); otherwise their side accepts by itself`;
    case "invite-retry":
      return `no answer yet from ${
        displayAddress(output.ip, output.port)
      }: invitation sent ${output.attempt + 1} times, giving up in ${
        Math.ceil(output.leftMs / 1000)
      } s (/leave cancels, q quits)`;
    case "busy-answered":
      return `${
        formatPeer(output.name, output.ip, output.port)
      } tried to invite you and was told you are busy`;
    case "peer-reconnected":
      return `${
        formatPeer(output.name, output.ip, output.port)
      } reconnected (their daemon restarted): messages around the restart may have been missed`;
    case "declined":
      return `declined by ${formatPeer(output.name, output.ip, output.port)}`;
    case "busy":
      return `busy: ${output.text}`;
    case "no-answer":
      return `no answer from ${displayAddress(output.ip, output.port)}`;
    case "invitation-cancelled":
      return `invitation to ${
        displayAddress(output.ip, output.port)
      } cancelled`;
    case "message":
      return `${output.name}: ${output.text}`;
    case "sent":
      return `sent #${output.id}: ${output.text}`;
    case "not-sent":
      return `not sent: ${output.reason}: ${output.text}`;
    case "held":
      return "send queue full: the next messages wait until earlier ones are delivered";
    case "delivered":
      return `delivered ${messageRef(output.id)}`;
    case "retransmitted":
      return `retransmitted ${
        messageRef(output.id)
      } (attempt ${output.attempt})`;
    case "undelivered":
      return `undelivered ${messageRef(output.id)}: ${output.text}`;
    case "peer-left":
      return `${
        output.name || displayAddress(output.ip, output.port)
      } left the chat`;
    case "peer-lost":
      return `lost contact with ${
        formatPeer(output.name, output.ip, output.port)
      }`;
    case "leaving":
      return "leaving the chat";
    case "chat-closed":
      return "chat closed";
    case "peer-error":
      return `error from ${
        displayAddress(output.ip, output.port)
      }: ${output.text}`;
    case "daemon-stopping":
      return "daemon is stopping";
    case "error":
      return `error: ${output.message}`;
    case "in-flight":
      return `${output.count} ${
        output.count === 1 ? "message" : "messages"
      } not delivered yet: the daemon goes on trying, and tells the next client of any it cannot deliver`;
    case "summary":
      return `${output.failed} of ${output.total} ${
        output.total === 1 ? "message" : "messages"
      } not delivered`;
    case "bye":
      return "bye";
  }
}

/** How {@linkcode terminalLines} shows things. */
export interface TerminalView {
  /** The user's own name, shown before the messages they send. */
  name: string;
  /** Whether to use colours (SGR escape sequences). */
  colour: boolean;
}

/** `text` in the SGR style `code` (e.g. `1;36`), when `colour` is on. */
export function style(colour: boolean, code: string, text: string): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/**
 * The lines the interactive client shows for `output` (none for some, e.g.
 * a question, which is the input line's prompt instead). Messages are built
 * from the output's fields, made harmless ({@linkcode printable}); the
 * other news is its {@linkcode renderText} line, styled.
 *
 * @example
 * ```ts
 * import { terminalLines } from "./render.ts";
 * const view = { name: "alice", colour: false };
 * console.log(terminalLines({ type: "message", name: "bob", text: "hi" }, view));
 * // ["bob: hi"]
 * ```
 */
export function terminalLines(output: Output, view: TerminalView): string[] {
  const paint = (code: string, text: string) => style(view.colour, code, text);
  switch (output.type) {
    case "prompt":
      if (output.ask === "menu") {
        return [
          paint("1", "What next?") +
          "  1 = start a new chat   2 = wait for invitations   q = quit",
        ];
      }
      if (output.ask === "chat") {
        return [
          paint(
            "2",
            "Type messages and press Enter; /leave leaves the chat, q quits",
          ),
        ];
      }
      return [];
    case "message":
      return [
        `${paint("1;36", printable(output.name))}: ${printable(output.text)}`,
      ];
    case "sent":
      return [
        `${paint("1;32", printable(view.name || "you"))}: ${
          printable(output.text)
        } ${paint("2", `#${output.id}`)}`,
      ];
    case "delivered":
      return [paint("2", `  ✓ ${messageRef(output.id)} delivered`)];
    case "bye":
      return [];
  }
  if (output.type === "not-sent") {
    // The refused line is in the input history (Up brings it back whole),
    // so a long paste is not printed again in full: 70,000 characters were
    // hundreds of rows.
    const text = renderText({ ...output, text: shortened(output.text) });
    return [paint("31", `! ${text}`)];
  }
  const text = renderText(output);
  switch (output.type) {
    case "retransmitted":
      return [paint("33", `  ↻ ${text}`)];
    case "held":
    case "in-flight":
      return [paint("33", `* ${text}`)];
    case "undelivered":
    case "summary":
    case "error":
    case "busy":
    case "peer-lost":
    case "peer-error":
      return [paint("31", `! ${text.replace(/^error: /, "")}`)];
    case "peer-reconnected":
    case "busy-answered":
    case "answered-at-once":
      return [paint("33", `* ${text}`)];
    default:
      return [paint("2", `* ${text}`)];
  }
}

/** How many characters of a refused line the terminal shows again. */
const NOT_SENT_SHOWN = 200;

/** `text` cut to {@linkcode NOT_SENT_SHOWN} characters, saying how long it was. */
function shortened(text: string): string {
  const characters = Array.from(text);
  if (characters.length <= NOT_SENT_SHOWN) return text;
  return `${characters.slice(0, NOT_SENT_SHOWN).join("")}… (${
    characters.length.toLocaleString("en-US")
  } characters)`;
}
