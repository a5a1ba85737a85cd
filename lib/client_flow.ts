/**
 * What the client does (SPEC §8), as a sans-I/O state machine: it takes the
 * user's lines, the daemon's replies and events, and returns requests for the
 * daemon, things to show the user and, at the end, the exit code. It never
 * reads a terminal or a socket; `client.ts` does, in two presentations of the
 * same flow (a line-per-event scripted mode and an interactive terminal).
 *
 * The flow: probe the daemon (any reply proves it runs, §8.1), get the user
 * name (option or question), `connect`; then either answer a pending
 * invitation (§8.2) or offer the menu — start a new chat (ask the IP) or wait
 * for invitations (§8.3). In a chat every line is a message; `/leave` leaves
 * the chat and `q` quits at any point, closing a chat on the way (§8.4).
 *
 * No message line is dropped: messages go to the daemon one `send` at a
 * time, in the order typed; when the daemon's send queue is full (error
 * code `queue-full`) the message and those typed after it are held and sent
 * again after the next delivery news. `q` quits at once (saying how many
 * messages are still in flight); the end of input instead waits until every
 * message sent has an outcome, then quits with exit code 1 if any was not
 * sent or not delivered. With {@linkcode FlowOptions.strict} (scripted
 * mode) an invalid answer to a question is fatal, and a `q` behind held
 * messages waits until they are handed to the daemon.
 *
 * Everything shown is an {@linkcode Output}: one object per line, printed as
 * text by {@linkcode renderText} or as JSON by {@linkcode renderJson}.
 *
 * @module
 */

import type {
  Command,
  ControlEvent,
  ControlPhase,
  DaemonState,
  Reply,
} from "./control.ts";
import {
  CLIENT_PORT,
  CONTROL_VERSION,
  encodeControl,
  isIPv4,
  MAX_CONTROL_DATAGRAM,
  quote,
  SIMP_PORT,
  specialAddress,
} from "./control.ts";
import { checkText, checkUserName } from "./wire/datagram.ts";

export type { Command, ControlEvent, Reply } from "./control.ts";

/** What the flow is waiting for the user to type, when it is. */
export type Ask =
  /** The user name (§8.1). */
  | "name"
  /** `1` = start a new chat, `2` = wait for invitations, `q` (§8.3). */
  | "menu"
  /** The IPv4 address (optionally `:port`) of the user to invite. */
  | "ip"
  /** `y` = accept, `n` = decline the pending invitation, `q` (§8.2). */
  | "answer"
  /** Chat messages, `/leave` or `q` (§8.4, §8.5). */
  | "chat";

/** The other daemon's SIMP address. */
export interface PeerAddress {
  /** Its IPv4 address. */
  ip: string;
  /** Its UDP port ({@linkcode SIMP_PORT} unless overridden). */
  port: number;
}

/** The other daemon's address and its user's name (empty when unknown). */
export interface PeerUser extends PeerAddress {
  /** The user name from its datagrams. */
  name: string;
}

/**
 * One thing to show the user: one line of output, in scripted mode exactly
 * {@linkcode renderText} or {@linkcode renderJson} of it. Texts are as
 * received. The variants:
 *
 * - `prompt` — a question: the flow now reads an answer of kind `ask`;
 * - `connected` — to the daemon at `ip:port` (its client port) as `name`;
 * - `waiting` — waiting for invitations; `inviting` — inviting `ip:port`;
 * - `invitation` — one is pending; `invitation-ended` — the inviter withdrew
 *   it or it expired; `invitation-declined` — we declined it;
 * - `chat-started` — a chat began (or was going on when we connected);
 * - `declined`, `busy` (with the other daemon's error `text`, §4.8),
 *   `no-answer` (§4.6), `invitation-cancelled` — our invitation's ends;
 * - `message` — from `name`; `sent` — our message went to the daemon as
 *   `id`; `not-sent` — it did not (or the daemon stopped answering before
 *   it said so), `reason` says why (nothing is dropped silently);
 * - `held` — the daemon's send queue is full: the next messages wait in the
 *   client and are sent as earlier ones are delivered (shown once per
 *   backlog);
 * - `delivered` (§5.3), `retransmitted` (`attempt` as in the daemon's
 *   event: 1 is the first retransmission, §5.2), `undelivered` (§5.5) —
 *   news of message `id`;
 * - `peer-left` (§6.1), `peer-lost` (§5.5) — the chat is over, followed by
 *   one `undelivered` per message that did not make it;
 * - `leaving` — we left; `chat-closed` — the chat we left is over (the other
 *   side acknowledged, or the daemon ended it at once), followed by one
 *   `undelivered` per message that did not make it;
 * - `peer-error` — the other daemon sent ERR during the chat;
 * - `daemon-stopping` — the daemon shuts down, the client exits (code 1);
 * - `error` — a request failed or an answer was not understood; `fatal`
 *   when the client stops because of it (code 1);
 * - `in-flight` — quitting with `count` messages sent but not yet
 *   delivered: the daemon goes on trying (SPEC §6.1);
 * - `summary` — at the end of input: `failed` of the `total` messages typed
 *   were not sent or not delivered (shown only when some were; exit code 1);
 * - `bye` — the last line.
 */
export type Output =
  | { type: "prompt"; ask: Ask; text: string }
  | { type: "connected"; ip: string; port: number; name: string }
  | { type: "waiting" }
  | ({ type: "inviting" } & PeerAddress)
  | ({ type: "invitation" } & PeerUser)
  | ({ type: "invitation-ended"; reason: "withdrawn" | "expired" } & PeerUser)
  | ({ type: "invitation-declined" } & PeerUser)
  | ({ type: "chat-started" } & PeerUser)
  | ({ type: "declined" } & PeerUser)
  | ({ type: "busy"; text: string } & PeerAddress)
  | ({ type: "no-answer" } & PeerAddress)
  | ({ type: "invitation-cancelled" } & PeerAddress)
  | { type: "message"; name: string; text: string }
  | { type: "sent"; id: number; text: string }
  | { type: "not-sent"; text: string; reason: string }
  | { type: "held" }
  | { type: "delivered"; id: number }
  | {
    type: "retransmitted";
    id: number;
    /** Which retransmission: 1 = the first (the second sending), as in the daemon's event. */
    attempt: number;
  }
  | { type: "undelivered"; id: number; text: string }
  | ({ type: "peer-left" } & PeerUser)
  | ({ type: "peer-lost" } & PeerUser)
  | { type: "leaving" }
  | ({ type: "chat-closed" } & PeerUser)
  | ({ type: "peer-error"; text: string } & PeerAddress)
  | { type: "daemon-stopping" }
  | { type: "error"; message: string; fatal?: true }
  | { type: "in-flight"; count: number }
  | { type: "summary"; failed: number; total: number }
  | { type: "bye" };

/** What the flow wants done. */
export type FlowAction =
  | {
    /** Send `command` to the daemon; report the reply with {@linkcode ClientFlow.onReply}. */
    type: "request";
    command: Command;
  }
  | {
    /** Show `output`. */
    type: "output";
    output: Output;
  }
  | {
    /** Stop the client with this exit code. */
    type: "exit";
    code: number;
  };

/** Settings of a {@linkcode ClientFlow}. */
export interface FlowOptions {
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
   * behind messages not yet handed to the daemon (held for a full queue)
   * quits once they are: a script's `q` comes after its messages.
   */
  strict?: boolean;
}

type State =
  | { kind: "probing" }
  | { kind: "name" }
  | { kind: "connecting"; name: string }
  | { kind: "menu" }
  | { kind: "ip" }
  | { kind: "waiting" }
  | { kind: "answer"; peer: PeerUser }
  | { kind: "inviting"; ip: string; port: number }
  | { kind: "chat"; peer: PeerUser | undefined; started: boolean }
  | { kind: "leaving" }
  | { kind: "quitting" }
  | { kind: "done" };

/** The prompt texts of scripted mode (after `? <ask>: `). */
const PROMPTS: Readonly<Record<Ask, string>> = Object.freeze({
  name: "your user name (q = quit)",
  menu: "1 = start a new chat, 2 = wait for invitations, q = quit",
  ip:
    "IPv4 address of the user to invite, e.g. 127.0.0.2 (empty = back to menu, q = quit)",
  answer: "y = accept, n = decline, q = quit",
  chat: "type a message, /leave = leave the chat, q = quit",
});

/** What each question is called in the fatal error of strict mode. */
const QUESTIONS: Readonly<Record<Ask, string>> = Object.freeze({
  name: "name question",
  menu: "menu",
  ip: "IP address question",
  answer: "invitation",
  chat: "chat",
});

/** How many outcomes of messages not known yet are kept (see `#settle`). */
const MAX_EARLY_OUTCOMES = 64;

const ACCEPT = new Set(["y", "yes", "a", "accept"]);
const DECLINE = new Set(["n", "no", "d", "decline"]);

/**
 * The client's flow (see the module documentation).
 *
 * Call {@linkcode start}, then feed it the user's lines while {@linkcode ask}
 * is set (and `q` at any time), the daemon's replies and events, and carry out
 * {@linkcode takeActions} after each call.
 *
 * @example
 * ```ts
 * import { ClientFlow } from "./client_flow.ts";
 * const flow = new ClientFlow({ ip: "127.0.0.1", port: 7778, name: "alice" });
 * flow.start();
 * console.log(flow.takeActions()); // [{ type: "request", command: { cmd: "ping" } }]
 * ```
 */
export class ClientFlow {
  #options: FlowOptions;
  #state: State = { kind: "probing" };
  #actions: FlowAction[] = [];
  /** Chat messages typed but not yet handed to the daemon, oldest first. */
  #outbox: string[] = [];
  /** The text of the one `send` request not answered yet, if any. */
  #sending: string | undefined;
  /** The chat ended while {@linkcode #sending} was unanswered. */
  #sendingOrphaned = false;
  /** The daemon's send queue was full: the outbox waits for delivery news. */
  #held = false;
  /** The `held` notice was shown for the current backlog. */
  #heldShown = false;
  /** `/leave` was typed: the `leave` request follows the outbox. */
  #leaveAfterSends = false;
  /** Strict mode: `q` was typed behind messages not handed over yet. */
  #quitAfterSends = false;
  /** Delivery news for messages whose `send` reply has not come yet. */
  #early: Output[] = [];
  #highestId = 0;
  /** Ids of our messages sent and without an outcome yet. */
  #unsettled = new Set<number>();
  /** Outcomes (true = delivered) that came before the `send` reply naming their id. */
  #earlyOutcomes = new Map<number, boolean>();
  /** Chat messages the user typed (for the summary). */
  #messages = 0;
  /** Of those, how many were not sent or not delivered. */
  #failed = 0;
  /** The exit code once the daemon has answered `quit`. */
  #exitCode = 0;
  #name: string | undefined;
  /**
   * The input ended: the flow quits as soon as the daemon has answered the
   * probe and the connect, and every message sent has an outcome.
   */
  #eof = false;
  /** `undelivered` events still to come after `peer-left`, `peer-lost` or `chat-closed`. */
  #undeliveredToCome = 0;

  /** Creates the flow; nothing happens before {@linkcode start}. */
  constructor(options: FlowOptions) {
    this.#options = options;
  }

  /** What the flow is waiting for the user to type, if anything. */
  get ask(): Ask | undefined {
    if (this.#quitAfterSends) return undefined;
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

  /** Whether the flow has ended (an `exit` action was produced). */
  get done(): boolean {
    return this.#state.kind === "done";
  }

  /** Whether the client is connected and should keep its daemon slot alive. */
  get connected(): boolean {
    switch (this.#state.kind) {
      case "probing":
      case "name":
      case "connecting":
      case "quitting":
      case "done":
        return false;
    }
    return true;
  }

  /** The user's name once connected. */
  get name(): string | undefined {
    return this.#name;
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): FlowAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** Starts: probes the daemon with a ping (SPEC §8.1). */
  start(): void {
    this.#request({ cmd: "ping" });
  }

  /**
   * The user typed `line` (without its line end). Returns false when the line
   * was refused and should stay in the user's input for correction (a chat
   * message that cannot be sent, an invalid answer): nothing is lost.
   */
  onLine(line: string): boolean {
    const state = this.#state;
    const trimmed = line.trim();
    if (state.kind === "done" || state.kind === "quitting") return true;
    if (trimmed === "q" || (state.kind === "chat" && trimmed === "/quit")) {
      if (this.#options.strict && this.#backlog) {
        // A script's q comes after its messages: they are handed over first.
        this.#quitAfterSends = true;
      } else {
        this.#quit();
      }
      return true;
    }
    if (this.#quitAfterSends) return true;
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
   * The user asked to quit (`q`, Ctrl+C, a signal): at once, at any point
   * (SPEC §8.4); a chat is closed on the way by the daemon. Messages not yet
   * handed to the daemon are shown as not sent; those sent but not yet
   * delivered are counted in one `in-flight` line (the daemon goes on
   * trying). Exit code 0.
   */
  quit(): void {
    if (this.#state.kind === "done" || this.#state.kind === "quitting") return;
    this.#quit();
  }

  /**
   * The user's input ended (EOF): quit like `q` (SPEC §8.4), but only once
   * the daemon has answered the probe and the connect (so that a script
   * whose input is empty still learns whether the daemon runs) and every
   * message sent has an outcome — delivered, or reported undelivered when
   * the chat ends — so that failures reach this client, not the next one.
   * Then, if any message was not sent or not delivered, a `summary` line
   * and exit code 1; else exit code 0.
   */
  onEof(): void {
    switch (this.#state.kind) {
      case "done":
      case "quitting":
        return;
    }
    if (this.#quitAfterSends) return; // the `q` before it decides
    this.#eof = true;
    this.#quitIfSettled();
  }

  /**
   * Whether the flow waits for something that may never come — an
   * invitation, after menu choice 2 — and reads no line meanwhile. The
   * scripted shell quits at the end of input then, even behind lines not
   * read yet (they could only be read once an invitation arrived).
   */
  get waitingForInvitation(): boolean {
    return this.#state.kind === "waiting";
  }

  /** The daemon answered `command` with `reply`. */
  onReply(command: Command, reply: Reply): void {
    this.#onReply(command, reply);
    this.#quitIfSettled();
  }

  #onReply(command: Command, reply: Reply): void {
    const state = this.#state;
    switch (command.cmd) {
      case "ping":
        if (state.kind === "probing") this.#afterProbe();
        return;
      case "connect":
        if (state.kind !== "connecting") return;
        if (!reply.ok) {
          this.#fatal(reply.error);
          return;
        }
        this.#name = state.name;
        this.#output({
          type: "connected",
          ip: this.#options.ip,
          port: this.#options.port,
          name: state.name,
        });
        this.#resume(reply.state);
        return;
      case "send":
        this.#onSendReply(reply);
        return;
      case "quit":
        this.#finish(this.#exitCode);
        return;
      case "wait":
        if (state.kind !== "waiting") return;
        if (!reply.ok) {
          this.#output({ type: "error", message: reply.error });
          this.#toMenu();
        } else if (reply.state?.phase === "invited" && reply.state.peer) {
          this.#toAnswer(reply.state.peer);
        }
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

  /**
   * The daemon reported `event` (in order, once and whole: the channel sees
   * to it).
   */
  onEvent(event: ControlEvent): void {
    this.#onEvent(event);
    this.#quitIfSettled();
  }

  #onEvent(event: ControlEvent): void {
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
        if (state.kind === "answer") this.#toMenu();
        return;
      case "chat-started": {
        const peer = { ip: event.ip, port: event.port, name: event.name };
        this.#output({ type: "chat-started", ...peer });
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
      case "message":
        this.#output({ type: "message", name: event.name, text: event.text });
        return;
      case "delivered":
        this.#deliveryNews({ type: "delivered", id: event.id });
        this.#settle(event.id, true);
        if (this.#held) {
          // A place in the daemon's queue is free: try the held message again.
          this.#held = false;
          this.#sendNext();
        }
        return;
      case "retransmitted":
        this.#deliveryNews({
          type: "retransmitted",
          id: event.id,
          attempt: event.attempt,
        });
        return;
      case "peer-left":
      case "peer-lost":
      case "chat-closed":
        this.#flushEarly();
        if (this.#sending !== undefined) this.#sendingOrphaned = true;
        this.#output({
          type: event.type,
          ip: event.ip,
          port: event.port,
          name: event.name,
        });
        // The undelivered messages follow, one event each; then the menu.
        this.#undeliveredToCome = event.undelivered;
        if (this.#undeliveredToCome === 0) this.#chatOver();
        return;
      case "undelivered":
        this.#output({ type: "undelivered", id: event.id, text: event.text });
        this.#settle(event.id, false);
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
        this.#abandonSends(
          "No answer from the daemon before it stopped: it may or may not have sent it",
        );
        this.#output({ type: "daemon-stopping" });
        this.#finish(1);
        return;
    }
  }

  /**
   * The daemon did not answer (the control channel gave up): the message
   * names the address and the command to start the daemon; exit code 1.
   */
  onUnreachable(): void {
    if (this.#state.kind === "done") return;
    this.#fatal(unreachableMessage(this.#options.ip, this.#options.port));
  }

  /**
   * The daemon refused a keep-alive ping (`error`): it no longer counts this
   * client as connected, e.g. after a restart. Fatal, exit code 1.
   */
  onSlotLost(error: string): void {
    if (!this.connected) return;
    this.#fatal(
      `The daemon at ${this.#options.ip}:${this.#options.port} no longer counts this client as connected (${error}): start the client again`,
    );
  }

  // ------------------------------------------------------------- internals

  #afterProbe(): void {
    if (this.#eof) {
      this.#finish(0);
      return;
    }
    if (this.#options.name !== undefined) {
      this.#connect(this.#options.name);
    } else {
      this.#state = { kind: "name" };
      this.#prompt("name");
    }
  }

  #onName(name: string): boolean {
    const problem = name === ""
      ? "User name must not be empty: type a name such as alice"
      : checkUserName(name);
    if (problem !== undefined) return this.#wrongAnswer("name", name, problem);
    this.#connect(name);
    return true;
  }

  #connect(name: string): void {
    this.#state = { kind: "connecting", name };
    this.#request({ cmd: "connect", name });
  }

  /** After connect: pick up where the daemon is (§8.2). */
  #resume(state: DaemonState | undefined): void {
    const phase: ControlPhase = state?.phase ?? "idle";
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
        return;
      case "established":
        if (peer) {
          this.#output({ type: "chat-started", ...peer });
        }
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
        this.#state = { kind: "waiting" };
        this.#output({ type: "waiting" });
        this.#request({ cmd: "wait" });
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
    const target = parseTarget(text);
    if (typeof target === "string") {
      return this.#wrongAnswer("ip", text, target);
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
      this.#request({ cmd: "accept" });
      return true;
    }
    if (DECLINE.has(lower)) {
      this.#request({ cmd: "decline" });
      this.#output({ type: "invitation-declined", ...peer });
      this.#toMenu();
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
      message: `Invalid answer ${quote(text)} to the ${
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
    const text = line.replace(/\r$/, "");
    if (text.trim() === "/leave") {
      this.#state = { kind: "leaving" };
      this.#output({ type: "leaving" });
      // The messages typed before go first, then the chat is closed (§6.1).
      this.#leaveAfterSends = true;
      this.#sendNext();
      return true;
    }
    if (text === "") return true;
    this.#messages++;
    const problem = sendProblem(text);
    if (problem !== undefined) {
      this.#notSent(text, problem);
      return false;
    }
    this.#outbox.push(text);
    this.#sendNext();
    return true;
  }

  /**
   * Hands the next message of the outbox to the daemon — one `send` at a
   * time, so that a message refused for a full queue is never overtaken by
   * the next — unless one is unanswered or the queue is full; once the
   * outbox is empty, sends the `leave` that waits for it.
   */
  #sendNext(): void {
    if (this.#sending !== undefined || this.#held) return;
    const text = this.#outbox.shift();
    if (text !== undefined) {
      this.#sending = text;
      this.#sendingOrphaned = false;
      this.#request({ cmd: "send", text });
      return;
    }
    this.#heldShown = false;
    if (this.#leaveAfterSends) {
      this.#leaveAfterSends = false;
      if (this.#state.kind === "leaving") this.#request({ cmd: "leave" });
    }
    if (this.#quitAfterSends) {
      this.#quitAfterSends = false;
      this.#quit();
    }
  }

  /** Whether messages typed wait to be handed to the daemon, or for its answer. */
  get #backlog(): boolean {
    return this.#sending !== undefined || this.#outbox.length > 0;
  }

  #onSendReply(reply: Reply): void {
    const text = this.#sending ?? "";
    const orphaned = this.#sendingOrphaned;
    this.#sending = undefined;
    this.#sendingOrphaned = false;
    const kind = this.#state.kind;
    if (reply.ok && reply.msgId !== undefined) {
      this.#highestId = Math.max(this.#highestId, reply.msgId);
      this.#output({ type: "sent", id: reply.msgId, text });
      this.#track(reply.msgId, orphaned);
    } else if (
      !reply.ok && reply.code === "queue-full" && !orphaned &&
      (kind === "chat" || kind === "leaving")
    ) {
      // Nothing is lost: the message waits for the next delivery news.
      this.#outbox.unshift(text);
      this.#held = true;
      if (!this.#heldShown) {
        this.#heldShown = true;
        this.#output({ type: "held" });
      }
    } else {
      this.#notSent(
        text,
        reply.ok ? "The daemon gave the message no id" : reply.error,
      );
    }
    this.#flushEarly();
    this.#sendNext();
  }

  /** Delivery news about a message not yet acknowledged as sent waits for it. */
  #deliveryNews(news: Output & { id: number }): void {
    if (this.#sending !== undefined && news.id > this.#highestId) {
      this.#early.push(news);
      return;
    }
    this.#output(news);
  }

  #flushEarly(): void {
    const early = this.#early;
    this.#early = [];
    for (const news of early) this.#output(news);
  }

  /**
   * Our message `id` was sent: it is unsettled until its outcome comes —
   * unless the outcome came first, or the chat ended before the `send`
   * reply (`orphaned`) and no outcome came: then it was not delivered.
   */
  #track(id: number, orphaned: boolean): void {
    const outcome = this.#earlyOutcomes.get(id);
    this.#earlyOutcomes.delete(id);
    if (outcome === undefined && !orphaned) {
      this.#unsettled.add(id);
    } else if (outcome !== true) {
      this.#failed++;
    }
  }

  /** Message `id` was `delivered`, or reported undelivered. */
  #settle(id: number, delivered: boolean): void {
    if (this.#unsettled.delete(id)) {
      if (!delivered) this.#failed++;
    } else if (this.#sending !== undefined && id > this.#highestId) {
      // Perhaps the message whose `send` reply is still to come.
      this.#earlyOutcomes.set(id, delivered);
      for (const old of this.#earlyOutcomes.keys()) {
        if (this.#earlyOutcomes.size <= MAX_EARLY_OUTCOMES) break;
        this.#earlyOutcomes.delete(old);
      }
    }
  }

  /** A message typed by the user was not sent: shown, and counted. */
  #notSent(text: string, reason: string): void {
    this.#failed++;
    this.#output({ type: "not-sent", text, reason });
  }

  /** Shows each message not handed to the daemon yet as not sent, for `reason`. */
  #dropOutbox(reason: string): void {
    const texts = this.#outbox;
    this.#outbox = [];
    this.#held = false;
    this.#heldShown = false;
    this.#leaveAfterSends = false;
    for (const text of texts) this.#notSent(text, reason);
  }

  #chatOver(): void {
    // Every message of the chat has its news now: one without is lost.
    for (const _ of this.#unsettled) this.#failed++;
    this.#unsettled.clear();
    this.#dropOutbox(
      "The chat ended before it could be handed to the daemon",
    );
    const kind = this.#state.kind;
    if (kind === "chat" || kind === "leaving") this.#toMenu();
    this.#sendNext(); // a `q` that waited for the outbox
  }

  #toAnswer(peer: PeerUser): void {
    this.#state = { kind: "answer", peer };
    this.#output({ type: "invitation", ...peer });
    this.#prompt("answer");
  }

  #toMenu(): void {
    this.#state = { kind: "menu" };
    this.#prompt("menu");
  }

  /**
   * Quits: tells the daemon (which closes a chat, §8.4) and exits with
   * `code` once it has answered. Messages not handed to the daemon yet are
   * shown as not sent; those sent and not yet delivered are counted in one
   * `in-flight` line.
   */
  #quit(code = 0): void {
    this.#quitAfterSends = false;
    this.#dropOutbox("You quit before it was handed to the daemon");
    const inFlight = this.#unsettled.size +
      (this.#sending === undefined ? 0 : 1);
    if (inFlight > 0) this.#output({ type: "in-flight", count: inFlight });
    this.#exitCode = code;
    // While connecting, the daemon may already hold our slot: free it too.
    if (this.connected || this.#state.kind === "connecting") {
      this.#state = { kind: "quitting" };
      this.#request({ cmd: "quit" });
    } else {
      this.#finish(code);
    }
  }

  /**
   * After the end of input: quits once the daemon has answered the probe
   * and the connect and every message sent has an outcome, with exit code
   * 1 (and a `summary` line) when any was not sent or not delivered.
   */
  #quitIfSettled(): void {
    if (!this.#eof) return;
    switch (this.#state.kind) {
      case "probing":
      case "connecting":
      case "quitting":
      case "done":
        return;
    }
    if (
      this.#sending !== undefined || this.#outbox.length > 0 ||
      this.#unsettled.size > 0 || this.#undeliveredToCome > 0 ||
      this.#leaveAfterSends
    ) {
      return;
    }
    if (this.#failed > 0) {
      this.#output({
        type: "summary",
        failed: this.#failed,
        total: this.#messages,
      });
    }
    this.#quit(this.#failed > 0 ? 1 : 0);
  }

  #fatal(message: string): void {
    this.#abandonSends(
      "No answer from the daemon: it may or may not have sent it",
    );
    this.#output({ type: "error", message, fatal: true });
    this.#finish(1);
  }

  /**
   * The client stops before the daemon answered a `send` request or before
   * the outbox was handed over: each of these texts is shown as not sent,
   * so that none vanishes from the screen.
   */
  #abandonSends(reason: string): void {
    const text = this.#sending;
    this.#sending = undefined;
    if (text !== undefined) this.#notSent(text, reason);
    this.#dropOutbox("The client stopped before handing it to the daemon");
  }

  #finish(code: number): void {
    this.#state = { kind: "done" };
    this.#output({ type: "bye" });
    this.#actions.push({ type: "exit", code });
  }

  #refuse(message: string): boolean {
    this.#output({ type: "error", message });
    return false;
  }

  #prompt(ask: Ask): void {
    this.#output({ type: "prompt", ask, text: PROMPTS[ask] });
  }

  #request(command: Command): void {
    this.#actions.push({ type: "request", command });
  }

  #output(output: Output): void {
    this.#actions.push({ type: "output", output });
  }
}

/**
 * The message for a daemon that does not answer, naming its address and the
 * command that starts it.
 *
 * @example
 * ```ts
 * import { unreachableMessage } from "./client_flow.ts";
 * console.log(unreachableMessage("127.0.0.2", 7778));
 * // Daemon not reachable at 127.0.0.2:7778 — is `simp daemon 127.0.0.2` running?
 * ```
 */
export function unreachableMessage(ip: string, port: number): string {
  const command = port === CLIENT_PORT
    ? `simp daemon ${ip}`
    : `simp daemon ${ip} --client-port ${port}`;
  return `Daemon not reachable at ${ip}:${port} — is \`${command}\` running?`;
}

/**
 * Why `text` cannot be sent as a chat message, or `undefined` when it can:
 * non-ASCII or too long for SIMP (§2.3, §2.5), or too long for the `send`
 * request to the daemon, which must fit in {@linkcode MAX_CONTROL_DATAGRAM}
 * bytes once JSON-encoded (`"` and `\` take 2 bytes there, most control
 * characters 6).
 */
export function sendProblem(text: string): string | undefined {
  const problem = checkText(text);
  if (problem !== undefined) return problem;
  const overhead = sendRequestSize("");
  const room = MAX_CONTROL_DATAGRAM - overhead;
  const size = sendRequestSize(text) - overhead;
  if (size > room) {
    return `Message is too long to hand to the daemon: it may be at most ${room} characters, counting each " or \\ as 2 and each control character as up to 6 (this one counts ${size}): split it into shorter messages`;
  }
  return undefined;
}

/** The encoded size of a `send` request for `text` with the largest id, in bytes. */
function sendRequestSize(text: string): number {
  return encodeControl({
    v: CONTROL_VERSION,
    id: Number.MAX_SAFE_INTEGER,
    cmd: "send",
    text,
  }).length;
}

/**
 * Reads the address of a user to invite: `IP` (port {@linkcode SIMP_PORT})
 * or `IP:PORT`. Returns an error message for the user when it is neither,
 * or when the IP cannot be one daemon's (wildcard, broadcast, multicast).
 */
export function parseTarget(
  text: string,
): { ip: string; port: number } | string {
  const match = /^([^:]*)(?::(\d{1,5}))?$/.exec(text);
  const ip = match?.[1] ?? text;
  const port = match?.[2] === undefined ? SIMP_PORT : Number(match[2]);
  if (match === null || !isIPv4(ip)) {
    return `${
      JSON.stringify(text)
    } is not an IPv4 address: type one such as 127.0.0.2 (or 127.0.0.2:${SIMP_PORT})`;
  }
  const special = specialAddress(ip);
  if (special !== undefined) {
    return `${ip} is ${special}, not a user's daemon: type one daemon's IPv4 address such as 127.0.0.2`;
  }
  if (port < 1 || port > 65_535) {
    return `Port ${port} is out of range: use 1 to 65535, or leave it out for ${SIMP_PORT}`;
  }
  return { ip, port };
}

/**
 * An address as the client shows it: `ip` for the SIMP port
 * {@linkcode SIMP_PORT}, else `ip:port`. (The engine's `formatAddress`
 * always shows `ip:port`.)
 */
function displayAddress(ip: string, port: number): string {
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
 * `? menu: 1 = start a new chat, …`.
 */
export function renderText(output: Output): string {
  return printable(textLine(output));
}

/** Control characters (from peers, too) escaped, so one output stays one harmless line. */
export function printable(text: string): string {
  let result = "";
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (code >= 0x20 && (code < 0x7f || code > 0x9f)) {
      result += c;
    } else if (c === "\n") {
      result += "\\n";
    } else if (c === "\r") {
      result += "\\r";
    } else if (c === "\t") {
      result += "\\t";
    } else {
      result += `\\x${code.toString(16).padStart(2, "0")}`;
    }
  }
  return result;
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
      return `delivered #${output.id}`;
    case "retransmitted":
      return `retransmitted #${output.id} (attempt ${output.attempt})`;
    case "undelivered":
      return `undelivered #${output.id}: ${output.text}`;
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

/** The `--json` line for `output`: the object itself, on one line. */
export function renderJson(output: Output): string {
  return JSON.stringify(output);
}

function samePeer(a: PeerUser, b: PeerUser): boolean {
  return a.ip === b.ip && a.port === b.port;
}
