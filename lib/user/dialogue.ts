/**
 * The client's dialogue with its user (SPEC §8), sans-I/O: what to ask,
 * what each answer does, and what the daemon's replies and events mean for
 * the user. It produces requests for the daemon, things to show and, at
 * the end, the exit code; the chat messages themselves go through its
 * {@linkcode Outbox}. {@linkcode ClientCore} (`client_core.ts`) joins it to
 * the link.
 *
 * The flow: once the link to the daemon is open (which proves the daemon
 * runs, §8.1), get the user name (option or question) and say `hello`; then
 * either answer a pending invitation (§8.2) or offer the menu — start a new
 * chat (ask the IP) or wait for invitations (§8.3). In a chat every line is
 * a message; `/leave` leaves the chat and `q` quits at any point, closing a
 * chat on the way (§8.4).
 *
 * Interactive `q` (and Ctrl+C, a signal) quits at once: the messages still
 * without news when the daemon has answered `quit` are counted in one
 * `in-flight` line before `bye` — computed then, after any news that came
 * first, so that it is never contradicted by a later line. The end of input
 * instead waits until every message sent has an outcome, then quits with
 * exit code 1 (after a `summary` line) if any was not sent or not
 * delivered. With {@linkcode DialogueOptions.strict} (scripted mode) an
 * invalid answer to a question is fatal, and a `q` line ends the input the
 * same way (the lines after it are not read).
 *
 * @module
 */

import { type Address, AddressError, parseAddress } from "../address.ts";
import { quoteText } from "../_quote.ts";
import {
  type CommandName,
  type DaemonState,
  type LinkEvent,
  type LinkPhase,
  type Reply,
  SIMP_PORT,
} from "../link/protocol.ts";
import { checkUserName } from "../wire/datagram.ts";
import { Outbox } from "./outbox.ts";
import { type Ask, type Output, type PeerUser, PROMPTS } from "./output.ts";
import { parseChatInput } from "./commands.ts";
import { displayAddress } from "./render.ts";

/** A request the dialogue makes of the daemon (the link adds the id). */
export type DialogueCommand =
  | { cmd: "hello"; name: string }
  | { cmd: "invite"; ip: string; port?: number }
  | { cmd: "accept" }
  | { cmd: "decline" }
  | { cmd: "send"; text: string }
  | { cmd: "leave" }
  | { cmd: "quit" };

/** What the dialogue wants done. */
export type DialogueAction =
  | {
    /** Send `command` to the daemon; report its reply with {@linkcode Dialogue.onReply}. */
    type: "request";
    /** The command. */
    command: DialogueCommand;
  }
  | {
    /** Show `output`. */
    type: "output";
    /** What to show. */
    output: Output;
  }
  | {
    /** Stop the client with this exit code. */
    type: "exit";
    /** The exit code. */
    code: number;
  };

/** Settings of a {@linkcode Dialogue}. */
export interface DialogueOptions {
  /** The daemon's IPv4 address. */
  ip: string;
  /** The daemon's client port. */
  port: number;
  /** The user name; asked for when absent. */
  name?: string;
  /**
   * Scripted mode: an invalid answer to a question (name, menu, IP,
   * invitation) is fatal — shown as a fatal error, then the client quits
   * with exit code 1 — instead of being asked again: a script that got out
   * of step must fail loudly, not wander through the menu. And a `q` typed
   * behind messages not yet handed to the daemon quits once they are: a
   * script's `q` comes after its messages.
   */
  strict?: boolean;
}

type State =
  | { kind: "connecting" }
  | { kind: "name" }
  | { kind: "hello"; name: string }
  | { kind: "menu" }
  | { kind: "ip" }
  | { kind: "waiting" }
  | {
    kind: "answer";
    peer: PeerUser;
    /** The user chose to wait for invitations: back to waiting after this one. */
    waited?: true;
  }
  | { kind: "inviting"; ip: string; port: number }
  | { kind: "chat"; peer: PeerUser | undefined; started: boolean }
  | { kind: "leaving" }
  | { kind: "quitting" }
  | { kind: "done" };

/** What each question is called in the fatal error of strict mode. */
const QUESTIONS: Readonly<Record<Ask, string>> = Object.freeze({
  name: "name question",
  menu: "menu",
  ip: "IP address question",
  answer: "invitation",
  chat: "chat",
});

const ACCEPT = new Set(["y", "yes", "a", "accept"]);
const DECLINE = new Set(["n", "no", "d", "decline"]);

/**
 * The dialogue (see the module documentation). Call {@linkcode opened} when
 * the link is open, then feed it the user's lines while {@linkcode ask} is
 * set (and `q` at any time), the daemon's replies and events, and carry out
 * {@linkcode takeActions} after each call.
 *
 * @example
 * ```ts
 * import { Dialogue } from "./dialogue.ts";
 * const dialogue = new Dialogue({ ip: "127.0.0.1", port: 7778, name: "alice" });
 * dialogue.opened();
 * console.log(dialogue.takeActions());
 * // [{ type: "request", command: { cmd: "hello", name: "alice" } }]
 * ```
 */
export class Dialogue {
  #options: DialogueOptions;
  #state: State = { kind: "connecting" };
  #actions: DialogueAction[] = [];
  #outbox = new Outbox();
  /** `/leave` was typed: the `leave` request follows the messages before it. */
  #leaveAfterSends = false;
  /**
   * Strict mode: `q` was typed; the client quits like at the end of input,
   * once every message sent has its outcome.
   */
  #quitWhenSettled = false;
  /** The exit code once the daemon has answered `quit`. */
  #exitCode = 0;
  #name: string | undefined;
  /** The input ended: quit once every message sent has an outcome. */
  #eof = false;
  /** `undelivered` events still to come after `peer-left`, `peer-lost` or `chat-closed`. */
  #undeliveredToCome = 0;

  /** Creates the dialogue; nothing happens before {@linkcode opened}. */
  constructor(options: DialogueOptions) {
    this.#options = options;
  }

  /** What the dialogue is waiting for the user to type, if anything. */
  get ask(): Ask | undefined {
    if (this.#quitWhenSettled) return undefined;
    switch (this.#state.kind) {
      case "name":
      case "menu":
      case "ip":
      case "answer":
        return this.#state.kind;
      case "chat":
        return "chat";
    }
    return undefined;
  }

  /** Whether the dialogue has ended (an `exit` action was produced). */
  get done(): boolean {
    return this.#state.kind === "done";
  }

  /** The user's name once the daemon has accepted it. */
  get name(): string | undefined {
    return this.#name;
  }

  /** The other user of the chat going on, if any (and known). */
  get peer(): PeerUser | undefined {
    const state = this.#state;
    if (state.kind === "chat" || state.kind === "answer") return state.peer;
    return undefined;
  }

  /**
   * Whether the dialogue waits for something that may never come — an
   * invitation, after menu choice 2 — and reads no line meanwhile. The
   * scripted input quits at the end of input then, even behind lines not
   * read yet (they could only be read once an invitation arrived).
   */
  get waitingForInvitation(): boolean {
    return this.#state.kind === "waiting";
  }

  /** Whether so many chat messages wait in the client that input should pause. */
  get outboxFull(): boolean {
    return this.#outbox.full;
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): DialogueAction[] {
    this.#drainOutbox();
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** The link to the daemon is open: the daemon runs (§8.1). */
  opened(): void {
    if (this.#state.kind !== "connecting") return;
    if (this.#eof) {
      this.#finish(0);
    } else if (this.#options.name !== undefined) {
      this.#hello(this.#options.name);
    } else {
      this.#state = { kind: "name" };
      this.#prompt("name");
    }
  }

  /**
   * The user typed `line` (without its line end). Returns false when the
   * line was refused and should stay in the user's input for correction (a
   * chat message that cannot be sent, an invalid answer): nothing is lost.
   */
  line(line: string): boolean {
    const state = this.#state;
    const trimmed = line.trim();
    if (state.kind === "done" || state.kind === "quitting") return true;
    if (trimmed === "q" || (state.kind === "chat" && trimmed === "/quit")) {
      this.#userQuit();
      return true;
    }
    if (this.#quitWhenSettled) return true;
    switch (state.kind) {
      case "name":
        return this.#onName(trimmed);
      case "menu":
        return this.#onMenu(trimmed);
      case "ip":
        return this.#onIp(trimmed);
      case "answer":
        return this.#onAnswer(trimmed, state.peer);
      case "chat":
        return this.#onChatLine(line);
      case "waiting":
        if (trimmed === "/leave") {
          this.#toMenu();
          return true;
        }
        return this.#refuse(
          "Waiting for an invitation: type /leave to go back to the menu or q to quit",
        );
      case "inviting":
        if (trimmed === "/leave") {
          this.#output({
            type: "invitation-cancelled",
            ip: state.ip,
            port: state.port,
          });
          this.#request({ cmd: "leave" });
          this.#toMenu();
          return true;
        }
        return this.#refuse(
          `Waiting for ${
            displayAddress(state.ip, state.port)
          } to answer: type /leave to cancel or q to quit`,
        );
      default:
        return this.#refuse("Please wait for the daemon, or type q to quit");
    }
  }

  /**
   * The user asked to quit (Ctrl+C, Ctrl+D in a terminal, a signal): at
   * once, at any point (SPEC §8.4); a chat is closed on the way by the
   * daemon. Messages not yet handed to the daemon are shown as not sent;
   * those still without news when the daemon has answered are counted in
   * one `in-flight` line before `bye` (the daemon goes on trying). Exit
   * code 0.
   */
  quit(): void {
    if (this.#ending) return;
    this.#quit();
  }

  /**
   * The user's input ended (EOF): quit like `q` (SPEC §8.4), but only once
   * the daemon has answered `hello` (so that a script whose input is empty
   * still learns whether the daemon runs) and every message sent has an
   * outcome — delivered, or reported undelivered when the chat ends — so
   * that failures reach this client, not the next one. Then, if any
   * message was not sent or not delivered, a `summary` line and exit code
   * 1; else exit code 0.
   */
  eof(): void {
    if (this.#ending) return;
    this.#eof = true;
    this.#quitIfSettled();
  }

  /** The daemon answered our request `cmd` with `reply`. */
  onReply(cmd: CommandName, reply: Reply): void {
    this.#onReply(cmd, reply);
    this.#afterNews();
  }

  /** The daemon reported `event`. */
  onEvent(event: LinkEvent): void {
    this.#onEvent(event);
    this.#afterNews();
  }

  /**
   * The link cannot go on (`message` says why and what to do: the daemon is
   * not running, closed the connection, broke the protocol): fatal, exit
   * code 1. Messages whose `send` was not answered are shown as not sent.
   */
  fail(message: string): void {
    if (this.done) return;
    this.#outbox.abandon(
      "No answer from the daemon: it may or may not have sent it",
    );
    this.#output({ type: "error", message, fatal: true });
    this.#finish(1, false);
  }

  /**
   * The link is gone (the daemon closed it, or did not answer `quit` in
   * time): expected while quitting — the client ends with the exit code it
   * was quitting with — and otherwise fatal, for `message`.
   */
  linkEnded(message: string): void {
    if (this.#state.kind === "quitting") this.#finish(this.#exitCode);
    else this.fail(message);
  }

  /** Ends at once with `code`, without waiting for the daemon (a second Ctrl+C). */
  abort(code: number): void {
    if (this.done) return;
    this.#finish(code);
  }

  // ------------------------------------------------------------- internals

  /** Whether the dialogue is quitting or done. */
  get #ending(): boolean {
    return this.#state.kind === "quitting" || this.#state.kind === "done";
  }

  #onReply(cmd: CommandName, reply: Reply): void {
    const state = this.#state;
    switch (cmd) {
      case "hello":
        if (state.kind !== "hello") return;
        if (!reply.ok) {
          this.fail(reply.error);
          return;
        }
        this.#name = state.name;
        if ("limits" in reply) this.#outbox.limit = reply.limits.queue;
        this.#output({
          type: "connected",
          ip: this.#options.ip,
          port: this.#options.port,
          name: state.name,
        });
        this.#resume("state" in reply ? reply.state : undefined);
        return;
      case "send":
        this.#outbox.onSendReply(reply);
        return;
      case "quit":
        this.#finish(this.#exitCode);
        return;
      case "invite":
        if (!reply.ok && state.kind === "inviting") {
          this.#output({ type: "error", message: reply.error });
          this.#toMenu();
        }
        return;
      case "accept":
        if (!reply.ok && state.kind === "chat" && !state.started) {
          this.#output({ type: "error", message: reply.error });
          this.#toMenu();
        }
        return;
      case "decline":
      case "leave":
        if (!reply.ok) this.#output({ type: "error", message: reply.error });
        if (!reply.ok && state.kind === "leaving") this.#toMenu();
        return;
    }
  }

  #onEvent(event: LinkEvent): void {
    if (this.#undeliveredToCome > 0 && event.type !== "undelivered") {
      // The daemon sent fewer than it announced: the chat is over all the same.
      this.#undeliveredToCome = 0;
      this.#chatOver();
    }
    const state = this.#state;
    if (state.kind === "done") return;
    const quitting = state.kind === "quitting";
    switch (event.type) {
      case "invitation": {
        const peer = { ip: event.ip, port: event.port, name: event.name };
        if (state.kind === "answer" && samePeer(state.peer, peer)) return;
        if (
          !quitting && (state.kind === "menu" || state.kind === "waiting" ||
            state.kind === "ip" || state.kind === "answer")
        ) {
          this.#toAnswer(peer);
        } else {
          this.#output({ type: "invitation", ...peer });
        }
        return;
      }
      case "invitation-ended":
        this.#output({
          type: "invitation-ended",
          ip: event.ip,
          port: event.port,
          name: event.name,
          reason: event.reason,
        });
        if (state.kind === "answer") this.#afterInvitation(state);
        return;
      case "chat-started": {
        const peer = { ip: event.ip, port: event.port, name: event.name };
        // After accepting, the chat's numbering began at the answer: lines
        // typed while the handshake ends are already this chat's messages.
        if (state.kind !== "chat" || state.started) this.#outbox.newChat();
        this.#output({ type: "chat-started", ...peer });
        if (event.atOnce) this.#output({ type: "answered-at-once", ...peer });
        if (quitting || state.kind === "leaving") return;
        this.#state = { kind: "chat", peer, started: true };
        this.#prompt("chat");
        return;
      }
      case "declined":
        this.#output({
          type: "declined",
          ip: event.ip,
          port: event.port,
          name: event.name,
        });
        if (state.kind === "inviting") this.#toMenu();
        return;
      case "busy":
        this.#output({
          type: "busy",
          ip: event.ip,
          port: event.port,
          text: event.text,
        });
        if (state.kind === "inviting") this.#toMenu();
        return;
      case "no-answer":
        this.#output({ type: "no-answer", ip: event.ip, port: event.port });
        if (state.kind === "inviting") this.#toMenu();
        return;
      case "invite-retry":
        // Progress of the invitation the user waits for (not after /leave).
        if (state.kind === "inviting") {
          this.#output({
            type: "invite-retry",
            ip: event.ip,
            port: event.port,
            attempt: event.attempt,
            leftMs: event.leftMs,
          });
        }
        return;
      case "busy-answered":
      case "peer-reconnected":
        this.#output({
          type: event.type,
          ip: event.ip,
          port: event.port,
          name: event.name,
        });
        return;
      case "message":
        this.#output({ type: "message", name: event.name, text: event.text });
        return;
      case "delivered":
        this.#outbox.delivered(event.id);
        return;
      case "retransmitted":
        this.#outbox.retransmitted(event.id, event.attempt);
        return;
      case "peer-left":
      case "peer-lost":
      case "chat-closed":
        this.#output({
          type: event.type,
          ip: event.ip,
          port: event.port,
          name: event.name,
        });
        // The undelivered messages follow, one event each; then the menu.
        this.#outbox.chatEnding();
        this.#undeliveredToCome = event.undelivered;
        if (this.#undeliveredToCome === 0) this.#chatOver();
        return;
      case "undelivered":
        this.#outbox.undelivered(event.id, event.text);
        if (this.#undeliveredToCome > 0 && --this.#undeliveredToCome === 0) {
          this.#chatOver();
        }
        return;
      case "peer-error":
        this.#output({
          type: "peer-error",
          ip: event.ip,
          port: event.port,
          text: event.text,
        });
        return;
      case "daemon-stopping":
        this.#outbox.abandon(
          "No answer from the daemon before it stopped: it may or may not have sent it",
        );
        this.#output({ type: "daemon-stopping" });
        this.#finish(1);
        return;
    }
  }

  /** After a reply or an event: what waited for the outbox may go on. */
  #afterNews(): void {
    this.#drainOutbox();
    if (this.#outbox.handedOver && this.#leaveAfterSends) {
      this.#leaveAfterSends = false;
      if (this.#state.kind === "leaving") this.#request({ cmd: "leave" });
    }
    this.#quitIfSettled();
  }

  #drainOutbox(): void {
    for (const action of this.#outbox.takeActions()) {
      if (action.type === "send") {
        this.#request({ cmd: "send", text: action.text });
      } else {
        this.#actions.push(action);
      }
    }
  }

  #onName(name: string): boolean {
    const problem = name === ""
      ? "User name must not be empty: type a name such as alice"
      : checkUserName(name);
    if (problem !== undefined) return this.#wrongAnswer("name", name, problem);
    this.#hello(name);
    return true;
  }

  #hello(name: string): void {
    this.#state = { kind: "hello", name };
    this.#request({ cmd: "hello", name });
  }

  /** After hello: pick up where the daemon is (§8.2). */
  #resume(state: DaemonState | undefined): void {
    const phase: LinkPhase = state?.phase ?? "idle";
    const peer = state?.peer;
    switch (phase) {
      case "invited":
        if (peer) return this.#toAnswer(peer);
        break;
      case "inviting":
        if (peer) {
          this.#state = { kind: "inviting", ip: peer.ip, port: peer.port };
          this.#output({ type: "inviting", ip: peer.ip, port: peer.port });
          return;
        }
        break;
      case "accepting":
        this.#state = { kind: "chat", peer, started: false };
        this.#outbox.newChat();
        return;
      case "established":
        if (peer) this.#output({ type: "chat-started", ...peer });
        this.#state = { kind: "chat", peer, started: true };
        this.#prompt("chat");
        return;
      case "closing":
        this.#state = { kind: "leaving" };
        this.#output({ type: "leaving" });
        return;
      case "idle":
        break;
    }
    this.#toMenu();
  }

  #onMenu(choice: string): boolean {
    switch (choice) {
      case "1":
        this.#state = { kind: "ip" };
        this.#prompt("ip");
        return true;
      case "2":
        // Invitations always come as events: nothing to ask the daemon.
        this.#state = { kind: "waiting" };
        this.#output({ type: "waiting" });
        return true;
      default:
        return this.#wrongAnswer(
          "menu",
          choice,
          "Type 1 to start a new chat, 2 to wait for invitations or q to quit",
        );
    }
  }

  #onIp(text: string): boolean {
    if (text === "") {
      this.#toMenu();
      return true;
    }
    let target: Address;
    try {
      target = parseAddress(text, { defaultPort: SIMP_PORT });
    } catch (error) {
      if (!(error instanceof AddressError)) throw error;
      return this.#wrongAnswer("ip", text, error.message);
    }
    this.#state = { kind: "inviting", ...target };
    this.#output({ type: "inviting", ...target });
    this.#request(
      target.port === SIMP_PORT
        ? { cmd: "invite", ip: target.ip }
        : { cmd: "invite", ip: target.ip, port: target.port },
    );
    return true;
  }

  #onAnswer(answer: string, peer: PeerUser): boolean {
    const lower = answer.toLowerCase();
    if (ACCEPT.has(lower)) {
      this.#state = { kind: "chat", peer, started: false };
      this.#outbox.newChat();
      this.#request({ cmd: "accept" });
      return true;
    }
    if (DECLINE.has(lower)) {
      this.#request({ cmd: "decline" });
      this.#output({ type: "invitation-declined", ...peer });
      this.#afterInvitation(this.#state);
      return true;
    }
    return this.#wrongAnswer(
      "answer",
      answer,
      "Type y to accept the invitation, n to decline it or q to quit",
    );
  }

  /**
   * `text` is no answer to the question `ask` (`problem` says why and what
   * to type): the question is asked again — or, in strict (scripted) mode,
   * the error is fatal and the client quits with exit code 1.
   */
  #wrongAnswer(ask: Ask, text: string, problem: string): boolean {
    if (!this.#options.strict) {
      this.#output({ type: "error", message: problem });
      this.#prompt(ask);
      return false;
    }
    this.#output({
      type: "error",
      message: `Invalid answer ${quoteText(text)} to the ${
        QUESTIONS[ask]
      } in scripted input: ${
        problem.charAt(0).toLowerCase() + problem.slice(1)
      }`,
      fatal: true,
    });
    this.#quit(1);
    return true;
  }

  #onChatLine(line: string): boolean {
    const input = parseChatInput(line.replace(/\r$/, ""));
    if (input.type === "empty") return true;
    if (input.type === "refused") {
      this.#outbox.refuse(line, input.message);
      this.#drainOutbox();
      return false;
    }
    if (input.type === "command" && input.command === "help") {
      // The terminal shows the help itself; a script gets the list.
      this.#outbox.refuse(
        line,
        "/help shows the commands in a terminal; here: /leave, /quit or q, /say TEXT, //TEXT",
      );
      this.#drainOutbox();
      return false;
    }
    if (input.type === "command" && input.command === "quit") {
      // `/QUIT` and the like (`q` and `/quit` are taken before, in line()).
      this.#userQuit();
      return true;
    }
    if (input.type === "command") {
      this.#state = { kind: "leaving" };
      this.#output({ type: "leaving" });
      // The messages typed before go first, then the chat is closed (§6.1).
      this.#leaveAfterSends = true;
      this.#afterNews();
      return true;
    }
    const taken = this.#outbox.add(input.text);
    this.#drainOutbox();
    return taken;
  }

  #chatOver(): void {
    this.#outbox.chatOver();
    this.#leaveAfterSends = false;
    const kind = this.#state.kind;
    if (kind === "chat" || kind === "leaving") this.#toMenu();
  }

  #toAnswer(peer: PeerUser): void {
    const state = this.#state;
    const waited = state.kind === "waiting" ||
      (state.kind === "answer" && state.waited === true);
    this.#state = waited ? { kind: "answer", peer, waited } : {
      kind: "answer",
      peer,
    };
    this.#output({ type: "invitation", ...peer });
    this.#prompt("answer");
  }

  #toMenu(): void {
    this.#state = { kind: "menu" };
    this.#prompt("menu");
  }

  /**
   * An invitation we were asked about is over (declined, withdrawn,
   * expired): a user who chose to wait for invitations goes on waiting,
   * others get the menu.
   */
  #afterInvitation(state: State): void {
    if (state.kind === "answer" && state.waited) {
      this.#state = { kind: "waiting" };
      this.#output({ type: "waiting" });
      return;
    }
    this.#toMenu();
  }

  /**
   * The user typed `q` (or `/quit`): interactive, quit at once; scripted
   * (strict), quit like at the end of input — once every message typed
   * before it has its outcome, with the summary and exit code of
   * {@linkcode eof} — so that a script learns what became of its messages
   * and the output never says "not delivered yet" of a message it then
   * reports delivered. The lines after the `q` are not read.
   */
  #userQuit(): void {
    if (!this.#options.strict) {
      this.#quit();
      return;
    }
    this.#quitWhenSettled = true;
    this.#eof = true;
    this.#quitIfSettled();
  }

  /**
   * Quits: tells the daemon (which closes a chat after the messages it
   * has, §6.1, §8.4) and exits with `code` once it has answered. Messages
   * not handed to the daemon yet are shown as not sent. Those still without
   * an outcome when the daemon has answered (news that comes before the
   * answer is shown) are counted in one `in-flight` line before `bye`.
   */
  #quit(code = 0): void {
    this.#quitWhenSettled = false;
    this.#outbox.dropWaiting("You quit before it was handed to the daemon");
    this.#drainOutbox();
    this.#exitCode = code;
    if (this.#state.kind === "connecting" || this.#state.kind === "name") {
      this.#finish(code);
    } else {
      // Saying hello may already hold the daemon's slot: free it too.
      this.#state = { kind: "quitting" };
      this.#request({ cmd: "quit" });
    }
  }

  /**
   * After the end of input: quits once the daemon has answered `hello` and
   * every message sent has an outcome, with exit code 1 (and a `summary`
   * line) when any was not sent or not delivered.
   */
  #quitIfSettled(): void {
    if (!this.#eof) return;
    switch (this.#state.kind) {
      case "connecting":
      case "hello":
      case "leaving": // chat-closed and its undelivered messages are to come
      case "quitting":
      case "done":
        return;
    }
    if (
      !this.#outbox.settled || this.#undeliveredToCome > 0 ||
      this.#leaveAfterSends
    ) {
      return;
    }
    const failed = this.#outbox.failed;
    if (failed > 0) {
      this.#output({ type: "summary", failed, total: this.#outbox.typed });
    }
    this.#quit(failed > 0 ? 1 : 0);
  }

  /**
   * Ends the client with `code`. When it was quitting, the messages still
   * without an outcome are counted (`in-flight`: the daemon goes on trying
   * and tells the next client); nothing the daemon says after this is
   * read, so the line stays true. `bye` ends a session that began with
   * `connected`: a client that never got that far (no daemon, refused)
   * ends with its error alone.
   */
  #finish(code: number, reportInFlight = true): void {
    const quitting = reportInFlight && this.#state.kind === "quitting";
    this.#state = { kind: "done" };
    const inFlight = this.#outbox.outstanding;
    if (quitting && inFlight > 0) {
      this.#output({ type: "in-flight", count: inFlight });
    }
    if (this.#name !== undefined) this.#output({ type: "bye" });
    this.#actions.push({ type: "exit", code });
  }

  #refuse(message: string): boolean {
    this.#output({ type: "error", message });
    return false;
  }

  #prompt(ask: Ask): void {
    this.#output({ type: "prompt", ask, text: PROMPTS[ask] });
  }

  #request(command: DialogueCommand): void {
    this.#drainOutbox();
    this.#actions.push({ type: "request", command });
  }

  #output(output: Output): void {
    this.#drainOutbox();
    this.#actions.push({ type: "output", output });
  }
}

function samePeer(a: PeerUser, b: PeerUser): boolean {
  return a.ip === b.ip && a.port === b.port;
}
