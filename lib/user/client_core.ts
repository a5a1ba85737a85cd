/**
 * The simp client as one sans-I/O state machine (SPEC §8, §9): the
 * {@linkcode Dialogue} with the user (which keeps the chat messages in its
 * outbox) joined to the client's end of the link ({@linkcode ClientEnd}:
 * request ids, reply matching, parsing the daemon's lines). `client.ts`
 * moves bytes and keys in and out; tests drive the same core in virtual
 * time.
 *
 * Inputs (each takes the time `now`, in ms on any monotonic clock):
 * - the link: {@linkcode ClientCore.start} (connecting begins),
 *   {@linkcode ClientCore.opened}, {@linkcode ClientCore.unreachable},
 *   {@linkcode ClientCore.receive} (one framed line, or what the framing
 *   found wrong), {@linkcode ClientCore.closed};
 * - the user: {@linkcode ClientCore.typed} (interactive: a line entered
 *   now), {@linkcode ClientCore.input} and {@linkcode ClientCore.inputEnd}
 *   (scripted: lines queued until the dialogue asks for them),
 *   {@linkcode ClientCore.interrupt} (Ctrl+C, a signal);
 * - the clock: {@linkcode ClientCore.tick}.
 *
 * Outputs: {@linkcode ClientCore.takeActions} (lines for the daemon,
 * outputs for the user, the exit code) and
 * {@linkcode ClientCore.nextTimeout}. After any input, take the actions,
 * carry them out in order, and arm a timer for the next timeout.
 *
 * Timers: connecting may take {@linkcode CONNECT_TIMEOUT_MS}, the answer to
 * `hello` {@linkcode HELLO_TIMEOUT_MS} (a daemon that accepts and never
 * answers is reported, not waited for); the answer to `quit` is waited for
 * {@linkcode QUIT_TIMEOUT_MS} at most. Nothing else is timed: TCP tells at
 * once when the daemon goes away, and a paused client or daemon loses
 * nothing.
 *
 * @module
 */

import { ClientEnd } from "../link/client_end.ts";
import type { LineItem } from "../link/lines.ts";
import { CLIENT_PORT } from "../link/protocol.ts";
import { Dialogue, type DialogueOptions } from "./dialogue.ts";
import type { Ask, Output, PeerUser } from "./output.ts";

/** How long connecting to the daemon may take, in ms. */
export const CONNECT_TIMEOUT_MS = 5000;
/** How long the daemon may take to answer `hello`, in ms. */
export const HELLO_TIMEOUT_MS = 10_000;
/** How long the client waits for the daemon's answer to `quit`, in ms. */
export const QUIT_TIMEOUT_MS = 2000;
/**
 * How many scripted input lines wait unread before {@linkcode ClientCore.wantsInput}
 * turns false (the shell then stops reading stdin for a while).
 */
export const MAX_QUEUED_LINES = 1024;

/** Settings of a {@linkcode ClientCore}: those of its {@linkcode Dialogue}. */
export type ClientCoreOptions = DialogueOptions;

/** What the core wants done, in order. */
export type ClientAction =
  | {
    /** Write `line` (a JSON object and `\n`) to the daemon. */
    type: "write";
    /** The line, with its `\n`. */
    line: string;
  }
  | {
    /** Show `output`. */
    type: "output";
    /** What to show. */
    output: Output;
  }
  | {
    /** Close the connection and stop the client with this exit code. */
    type: "exit";
    /** The exit code. */
    code: number;
  };

/** Why the link could not be opened. */
export type UnreachableCause =
  /** Nothing listens there (connection refused, or no answer in time). */
  | "not-running"
  /** The address is not one of this machine's (SPEC §7.2). */
  | "not-this-machine";

/**
 * The client core (see the module documentation).
 *
 * @example
 * ```ts
 * import { ClientCore } from "./client_core.ts";
 * const core = new ClientCore({ ip: "127.0.0.1", port: 7778, name: "alice" });
 * core.start(0);
 * core.opened(1);
 * console.log(core.takeActions());
 * // [{ type: "write", line: '{"id":1,"cmd":"hello","v":2,"name":"alice"}\n' }]
 * ```
 */
export class ClientCore {
  #options: ClientCoreOptions;
  #dialogue: Dialogue;
  #end = new ClientEnd();
  #actions: ClientAction[] = [];
  /** Scripted input not read yet; `null` is the end of input. */
  #queue: (string | null)[] = [];
  #connectBy: number | undefined;
  #helloBy: number | undefined;
  #quitBy: number | undefined;
  #interrupts = 0;
  #exited = false;

  /** Creates the core; nothing happens before {@linkcode start}. */
  constructor(options: ClientCoreOptions) {
    this.#options = options;
    this.#dialogue = new Dialogue(options);
  }

  /** What the client is waiting for the user to type, if anything. */
  get ask(): Ask | undefined {
    return this.#dialogue.ask;
  }

  /** The user's name once the daemon has accepted it. */
  get name(): string | undefined {
    return this.#dialogue.name;
  }

  /** The other user of the chat going on or of the invitation asked about, if known. */
  get peer(): PeerUser | undefined {
    return this.#dialogue.peer;
  }

  /** Whether the client has ended (an `exit` action was produced). */
  get done(): boolean {
    return this.#exited;
  }

  /**
   * Scripted mode: whether the shell should read more input now (false
   * while {@linkcode MAX_QUEUED_LINES} lines wait unread).
   */
  get wantsInput(): boolean {
    return !this.#exited && this.#queue.length < MAX_QUEUED_LINES;
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): ClientAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /** When the core next wants {@linkcode tick}, or `undefined`. */
  nextTimeout(): number | undefined {
    if (this.#exited) return undefined;
    let next: number | undefined;
    for (const at of [this.#connectBy, this.#helloBy, this.#quitBy]) {
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** The shell starts connecting to the daemon at `now`. */
  start(now: number): void {
    this.#connectBy = now + CONNECT_TIMEOUT_MS;
  }

  /** The connection to the daemon is open (SPEC §8.1: the daemon runs). */
  opened(now: number): void {
    this.#connectBy = undefined;
    this.#dialogue.opened();
    this.#run(now);
  }

  /** The connection could not be opened: fatal, naming the daemon and how to start it. */
  unreachable(now: number, cause: UnreachableCause = "not-running"): void {
    this.#connectBy = undefined;
    const { ip, port } = this.#options;
    this.#dialogue.fail(
      cause === "not-this-machine"
        ? `${ip} is not an address of this machine: run the client on the daemon's machine, with the daemon's own IP address`
        : unreachableMessage(ip, port),
    );
    this.#run(now);
  }

  /**
   * What the line framing made of the daemon's bytes (`lines.ts`): a line
   * is parsed and handled; a line that is not UTF-8, or longer than the
   * limit, breaks the protocol — fatal, and the connection is closed.
   */
  receive(item: LineItem, now: number): void {
    if (this.#exited) return;
    switch (item.type) {
      case "line":
        this.#onLine(item.text);
        break;
      case "invalid-utf8":
        this.#violation(`a line of ${item.bytes} bytes that is not UTF-8`);
        break;
      case "too-long":
        this.#violation(
          `a line longer than ${item.limit} bytes (the link's limit)`,
        );
        break;
      case "unterminated":
        break; // the end of the connection follows, and says it all
    }
    this.#run(now);
  }

  /**
   * The daemon closed the connection (EOF), or it broke (reset, a failed
   * write): expected after `quit`; otherwise fatal (SPEC §9: the client
   * prints one clear line and exits 1).
   */
  closed(now: number): void {
    const { ip, port } = this.#options;
    const command = startCommand(ip, port);
    this.#dialogue.linkEnded(
      `Lost the connection to the daemon at ${ip}:${port}: it stopped or was killed; start it again with \`${command}\`, then the client`,
    );
    this.#run(now);
  }

  /**
   * Interactive mode: the user entered `line` now. Returns false when it
   * was refused and should stay in the input line for correction.
   */
  typed(line: string, now: number): boolean {
    if (this.#exited) return true;
    const taken = this.#dialogue.line(line);
    this.#run(now);
    return taken;
  }

  /**
   * Scripted mode: a line of input (without its line end). It is read when
   * the dialogue asks for one (a prompt, or any time in a chat); a `q` line
   * is read at any point.
   */
  input(line: string, now: number): void {
    if (this.#exited) return;
    this.#queue.push(line);
    this.#run(now);
  }

  /** Scripted mode: the end of input, read after the lines before it. */
  inputEnd(now: number): void {
    if (this.#exited) return;
    this.#queue.push(null);
    this.#run(now);
  }

  /**
   * Ctrl+C, Ctrl+D in a terminal, or a signal: quit at once (SPEC §8.4); a
   * second one while quitting stops without waiting for the daemon (exit
   * code 130).
   */
  interrupt(now: number): void {
    if (this.#exited) return;
    this.#interrupts++;
    if (this.#interrupts > 1) this.#dialogue.abort(130);
    else this.#dialogue.quit();
    this.#run(now);
  }

  /** The clock reached `now`. */
  tick(now: number): void {
    if (this.#exited) return;
    const { ip, port } = this.#options;
    if (this.#connectBy !== undefined && now >= this.#connectBy) {
      this.unreachable(now);
      return;
    }
    if (this.#helloBy !== undefined && now >= this.#helloBy) {
      this.#helloBy = undefined;
      this.#dialogue.fail(
        `The daemon at ${ip}:${port} did not answer within ${
          HELLO_TIMEOUT_MS / 1000
        } s: is it a simp daemon of this version? Start one with \`${
          startCommand(ip, port)
        }\``,
      );
    }
    if (this.#quitBy !== undefined && now >= this.#quitBy) {
      this.#quitBy = undefined;
      this.#dialogue.linkEnded(
        `The daemon at ${ip}:${port} did not answer quit`,
      );
    }
    this.#run(now);
  }

  // ------------------------------------------------------------- internals

  #onLine(line: string): void {
    const input = this.#end.receive(line);
    switch (input.type) {
      case "reply":
        if (input.request.cmd === "hello") this.#helloBy = undefined;
        this.#dialogue.onReply(input.request.cmd, input.reply);
        return;
      case "event":
        this.#dialogue.onEvent(input.event);
        return;
      case "refusal":
        // E.g. another client is connected (code busy): the daemon closes.
        this.#dialogue.fail(input.reply.error);
        return;
      case "violation":
        this.#violation(input.error.message);
        return;
    }
  }

  /** The daemon broke the link protocol: fatal. */
  #violation(what: string): void {
    const { ip, port } = this.#options;
    this.#dialogue.fail(
      `The daemon at ${ip}:${port} sent what this client cannot read (${what}): check that the client and the daemon are the same simp version`,
    );
  }

  /** Reads queued input as far as the dialogue takes it, and carries out its actions. */
  #run(now: number): void {
    for (;;) {
      this.#collect(now);
      if (this.#exited) return;
      const item = this.#nextInput();
      if (item === undefined) return;
      if (item === null) this.#dialogue.eof();
      else this.#dialogue.line(item);
    }
  }

  /**
   * The next queued line, if the dialogue is ready for it. A `q` line, or
   * the end of input, is read even when the dialogue asks nothing; while it
   * waits for an invitation (which may never come), the end of input is
   * read even behind lines not read yet.
   */
  #nextInput(): string | null | undefined {
    if (this.#queue.length === 0) return undefined;
    if (this.#queue.at(-1) === null && this.#dialogue.waitingForInvitation) {
      this.#queue = [];
      return null;
    }
    const head = this.#queue[0];
    const quits = head === null || head.trim() === "q";
    if (!quits) {
      if (this.#dialogue.ask === undefined) return undefined;
      if (this.#dialogue.outboxFull) return undefined;
    }
    return this.#queue.shift();
  }

  /** Turns the dialogue's actions into the core's. */
  #collect(now: number): void {
    for (const action of this.#dialogue.takeActions()) {
      if (this.#exited) return;
      switch (action.type) {
        case "request": {
          const command = action.command;
          if (command.cmd === "hello") {
            this.#helloBy = now + HELLO_TIMEOUT_MS;
            this.#write(this.#end.hello(command.name));
          } else {
            if (command.cmd === "quit") this.#quitBy = now + QUIT_TIMEOUT_MS;
            this.#write(this.#end.request(command).line);
          }
          break;
        }
        case "output":
          this.#actions.push(action);
          break;
        case "exit":
          this.#exited = true;
          this.#queue = [];
          this.#actions.push(action);
          break;
      }
    }
  }

  #write(line: string): void {
    this.#actions.push({ type: "write", line });
  }
}

/** The command that starts the daemon at `ip` with client port `port`. */
function startCommand(ip: string, port: number): string {
  return port === CLIENT_PORT
    ? `simp daemon ${ip}`
    : `simp daemon ${ip} --client-port ${port}`;
}

/**
 * The message for a daemon that is not running, naming its address and
 * the command that starts it.
 *
 * @example
 * ```ts
 * import { unreachableMessage } from "./client_core.ts";
 * console.log(unreachableMessage("127.0.0.2", 7778));
 * // Daemon not reachable at 127.0.0.2:7778 — is `simp daemon 127.0.0.2` running?
 * ```
 */
export function unreachableMessage(ip: string, port: number): string {
  return `Daemon not reachable at ${ip}:${port} — is \`${
    startCommand(ip, port)
  }\` running?`;
}
