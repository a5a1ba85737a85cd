/**
 * The simp client (SPEC §8, §9): the thin I/O shell around
 * {@linkcode ClientFlow} (what to ask and show) and {@linkcode ControlChannel}
 * (the reliable client–daemon protocol). It owns the UDP socket to the
 * daemon, the timers and the terminal.
 *
 * Two presentations of the same flow:
 *
 * - **Scripted** (stdin is not a terminal, or `--json`): answers are read
 *   line by line, and every event and question is printed as one line on
 *   stdout — {@linkcode renderText} (`bob: hello`, `delivered #1`,
 *   `? menu: 1 = start a new chat, …`) or, with `--json`, one JSON object
 *   per line ({@linkcode renderJson}; the shapes are {@linkcode Output}). A
 *   line is read only when the flow asks for one (a prompt, or any time in a
 *   chat); while waiting for an invitation or an answer, the lines already
 *   written stay unread — except a `q` line, which quits at any point. The
 *   end of input quits once the lines before it are read — while waiting
 *   for invitations at once, even behind unread lines — and in a chat only
 *   when every message sent has an outcome: exit code 1 (after a line such
 *   as `3 of 200 messages not delivered`) when any was not sent or not
 *   delivered. No message line is dropped because the daemon's send queue
 *   is full: it waits and is sent again (a `q` line after it quits once it
 *   is handed over). An invalid answer to a question is fatal (exit code
 *   1): a script that got out of step stops.
 * - **Interactive** (stdin is a terminal): raw mode and a small line editor;
 *   messages and news appear above the input line while the user types.
 *   Colours unless `NO_COLOR` is set.
 *
 * @module
 */

import type { ClientOptions } from "./lib/cli.ts";
import {
  type Ask,
  ClientFlow,
  type Output,
  printable,
  renderJson,
  renderText,
  unreachableMessage,
} from "./lib/client_flow.ts";
import { writeAll } from "./lib/_write.ts";
import type { Command, ControlEvent, Reply } from "./lib/control.ts";
import { type ChannelOptions, ControlChannel } from "./lib/control_channel.ts";
import {
  BRACKETED_PASTE_OFF,
  BRACKETED_PASTE_ON,
  LineEditor,
} from "./lib/user/line_editor.ts";
import { CHAT_HELP, parseChatInput } from "./lib/user/commands.ts";
import {
  bellFor,
  chatPrompt,
  chooseOutput,
  clockTime,
  colourWanted,
  interruptNotice,
  type Palette,
  palette,
  PASTE_CONFIRM_LINES,
  pasteQuestion,
} from "./lib/user/terminal.ts";
import { getLogger } from "./lib/log.ts";
import { underDenoTask } from "./lib/invocation.ts";

export type { ClientOptions } from "./lib/cli.ts";
export type { LogFormat, LogLevel } from "./lib/log.ts";
export type { Command, ControlEvent, Reply } from "./lib/control.ts";

const log = getLogger("client");

/** A request the daemon never answered (see {@linkcode DaemonLink.request}). */
export class DaemonUnreachableError extends Error {
  /** Creates the error; the message names the daemon and how to start it. */
  constructor(message: string) {
    super(message);
    this.name = "DaemonUnreachableError";
  }
}

/** Callbacks of a {@linkcode DaemonLink}. */
export interface LinkHandlers {
  /** The daemon's next event, in order and once. */
  onEvent?(event: ControlEvent, ev: number): void;
  /** The daemon stopped answering; the link is stopped (close it). */
  onUnreachable?(error: DaemonUnreachableError): void;
  /** The daemon refused a keep-alive ping with `error`: this client lost its slot. */
  onSlotLost?(error: string): void;
}

/** Options of {@linkcode DaemonLink.open}: the channel's and the handlers. */
export type LinkOptions = Partial<ChannelOptions> & LinkHandlers;

/**
 * The client's UDP link to its daemon: a {@linkcode ControlChannel} on a
 * socket, with its timer. Requests resolve to the daemon's reply; they are
 * retransmitted and, when the daemon never answers, rejected with
 * {@linkcode DaemonUnreachableError}. Close it when done.
 *
 * @example
 * ```ts ignore
 * import { DaemonLink } from "./client.ts";
 * const link = DaemonLink.open("127.0.0.1", 7778, {
 *   onEvent: (event) => console.log(event),
 * });
 * const reply = await link.request({ cmd: "connect", name: "alice" });
 * link.close();
 * ```
 */
export class DaemonLink {
  #conn: Deno.DatagramConn;
  #ip: string;
  #port: number;
  #channel: ControlChannel;
  #handlers: LinkHandlers;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #pending = new Map<
    number,
    { resolve(reply: Reply): void; reject(error: Error): void }
  >();
  #receiving: Promise<void>;

  private constructor(
    conn: Deno.DatagramConn,
    ip: string,
    port: number,
    options: LinkOptions,
  ) {
    this.#conn = conn;
    this.#ip = ip;
    this.#port = port;
    const { onEvent, onUnreachable, onSlotLost, ...channel } = options;
    this.#handlers = { onEvent, onUnreachable, onSlotLost };
    this.#channel = new ControlChannel(channel);
    this.#receiving = this.#receiveLoop();
  }

  /**
   * Opens a socket for talking to the daemon at `ip:port`.
   *
   * @throws {Error} with a message for the user when no socket can be bound
   * (e.g. `ip` is not an address of this machine).
   */
  static open(ip: string, port: number, options: LinkOptions = {}): DaemonLink {
    let conn: Deno.DatagramConn;
    try {
      // From the daemon's own IP: it takes commands only from this machine.
      conn = Deno.listenDatagram({ transport: "udp", hostname: ip, port: 0 });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(
        `Cannot open a UDP socket on ${ip} (${why}): run the client on the daemon's machine, with the daemon's own IP address`,
      );
    }
    return new DaemonLink(conn, ip, port, options);
  }

  /** The local address the link sends from. */
  get localAddress(): Deno.NetAddr {
    return this.#conn.addr as Deno.NetAddr;
  }

  /** The highest event number delivered so far. */
  get delivered(): number {
    return this.#channel.delivered;
  }

  /**
   * Sends `command` (after the requests before it) and resolves to the
   * daemon's reply.
   *
   * @throws {DaemonUnreachableError} when the daemon never answers.
   */
  request(command: Command): Promise<Reply> {
    if (this.#closed || this.#channel.stopped) {
      return Promise.reject(
        new DaemonUnreachableError(unreachableMessage(this.#ip, this.#port)),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    const id = this.#channel.request(command, now());
    this.#pending.set(id, { resolve, reject });
    this.#run();
    return promise;
  }

  /** Turns the keep-alive pings on or off (on once connected, SPEC §7.2). */
  setKeepAlive(on: boolean): void {
    this.#channel.setKeepAlive(on, now());
    this.#run();
  }

  /** Closes the socket and stops the timer; pending requests are rejected. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#conn.close();
    await this.#receiving;
    for (const { reject } of this.#pending.values()) {
      reject(new Error("Link to the daemon closed"));
    }
    this.#pending.clear();
  }

  async #receiveLoop(): Promise<void> {
    while (!this.#closed) {
      let bytes: Uint8Array;
      let from: Deno.Addr;
      try {
        [bytes, from] = await this.#conn.receive();
      } catch (error) {
        if (this.#closed) return;
        log.debug("Receiving from the daemon failed: {error}", { error });
        continue;
      }
      const addr = from as Deno.NetAddr;
      if (addr.hostname !== this.#ip || addr.port !== this.#port) {
        log.debug("Ignored a datagram from {from}: not the daemon", {
          from: `${addr.hostname}:${addr.port}`,
        });
        continue;
      }
      this.#channel.receive(bytes, now());
      this.#run();
    }
  }

  /** Carries out the channel's actions and arms the timer. */
  #run(): void {
    if (this.#closed) return;
    for (const action of this.#channel.takeActions()) {
      switch (action.type) {
        case "transmit":
          log.trace("→ daemon {message}", { message: action.message });
          this.#conn.send(action.bytes, {
            transport: "udp",
            hostname: this.#ip,
            port: this.#port,
          }).catch((error) => {
            if (!this.#closed) {
              log.warning("Sending to the daemon failed: {error}", { error });
            }
          });
          break;
        case "reply": {
          log.trace("← daemon {reply}", { reply: action.reply });
          const pending = this.#pending.get(action.request.id);
          this.#pending.delete(action.request.id);
          pending?.resolve(action.reply);
          break;
        }
        case "event":
          log.trace("← daemon event {ev} {event}", {
            ev: action.ev,
            event: action.event,
          });
          this.#handlers.onEvent?.(action.event, action.ev);
          break;
        case "unreachable": {
          const error = new DaemonUnreachableError(
            unreachableMessage(this.#ip, this.#port),
          );
          for (const { reject } of this.#pending.values()) reject(error);
          this.#pending.clear();
          this.#handlers.onUnreachable?.(error);
          break;
        }
        case "slot-lost":
          this.#handlers.onSlotLost?.(action.error);
          break;
        case "malformed":
          log.debug("From the daemon: {detail}", { detail: action.detail });
          break;
      }
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.#channel.nextTimeout();
    if (next !== undefined && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#channel.tick(now());
        this.#run();
      }, Math.max(0, next - now()));
    }
  }
}

/** Milliseconds on a monotonic clock. */
function now(): number {
  return performance.now();
}

// ---------------------------------------------------------------- the shell

/** Where the flow's output goes and where the user's lines come from. */
interface Ui {
  /** Shows one output. */
  show(output: Output): void;
  /** The flow now waits for `ask` (or for nothing). */
  setAsk(ask: Ask | undefined): void;
  /** Starts reading input; lines are handed to `app`. */
  start(app: ClientApp): void;
  /** Restores the terminal and stops reading. */
  close(): void;
  /** SIGINT arrived (Ctrl+C in a terminal that sends signals). */
  interrupted?(): void;
}

/** A line of input, or `null` for the end of input. */
type InputItem = string | null;

/** Ties the flow, the link and a UI together. */
class ClientApp {
  #flow: ClientFlow;
  #link: DaemonLink;
  #ui: Ui;
  /** Scripted mode: lines wait here until the flow asks for input. */
  #queue: InputItem[] = [];
  #exit = Promise.withResolvers<number>();
  #finished = false;
  #interrupts = 0;
  /** The exit code the user asked for by interrupting (130 for Ctrl+C). */
  #exitCode: number | undefined;

  constructor(flow: ClientFlow, link: DaemonLink, ui: Ui) {
    this.#flow = flow;
    this.#link = link;
    this.#ui = ui;
  }

  /** Runs until the flow ends; resolves to the exit code. */
  run(): Promise<number> {
    this.#ui.start(this);
    this.#flow.start();
    this.#pump();
    return this.#exit.promise;
  }

  /** The daemon sent an event. */
  event(event: ControlEvent): void {
    this.#flow.onEvent(event);
    this.#pump();
  }

  /** The daemon stopped answering. */
  unreachable(): void {
    this.#flow.onUnreachable();
    this.#pump();
  }

  /** The daemon no longer counts this client as connected. */
  slotLost(error: string): void {
    this.#flow.onSlotLost(error);
    this.#pump();
  }

  /** Scripted mode: a line (or the end of input) arrived; it waits its turn. */
  enqueue(item: InputItem): void {
    this.#queue.push(item);
    this.#pump();
  }

  /**
   * Interactive mode: the user entered `line`. Returns false when the flow
   * refused it (it should stay in the input line).
   */
  submit(line: string): boolean {
    if (this.#finished) return true;
    const accepted = this.#flow.onLine(line);
    this.#pump();
    return accepted;
  }

  /** The end of input (scripted mode reads it through the queue). */
  eof(): void {
    if (this.#finished) return;
    this.#flow.onEof();
    this.#pump();
  }

  /**
   * Ctrl+C, Ctrl+D or a signal: quit at once (SPEC §8.4); a second one
   * while quitting stops without waiting for the daemon (exit code 130).
   */
  interrupt(code?: number): void {
    if (this.#finished) return;
    if (code !== undefined) this.#exitCode = code;
    this.#interrupts++;
    if (this.#interrupts > 1) {
      this.#finish(130);
      return;
    }
    this.#flow.quit();
    this.#pump();
  }

  #pump(): void {
    for (;;) {
      if (this.#finished) return;
      const actions = this.#flow.takeActions();
      if (actions.length === 0) {
        const item = this.#nextInput();
        if (item === undefined) break;
        if (item === null) this.#flow.onEof();
        else this.#flow.onLine(item);
        continue;
      }
      for (const action of actions) {
        switch (action.type) {
          case "request": {
            const command = action.command;
            this.#link.request(command).then((reply) => {
              if (this.#finished) return;
              this.#flow.onReply(command, reply);
              this.#pump();
            }, () => {
              // Reported once through unreachable(); nothing more to do here.
            });
            break;
          }
          case "output":
            this.#ui.show(action.output);
            break;
          case "exit":
            this.#finish(action.code);
            return;
        }
      }
    }
    this.#link.setKeepAlive(this.#flow.connected);
    this.#ui.setAsk(this.#flow.ask);
  }

  /**
   * Scripted mode: the next queued line, if the flow is ready for it. A `q`
   * line, or the end of input, quits even when the flow asks nothing; while
   * it waits for an invitation (which may never come), the end of input
   * quits even behind lines not read yet.
   */
  #nextInput(): InputItem | undefined {
    if (this.#queue.length === 0) return undefined;
    const inputEnded = this.#queue.at(-1) === null;
    if (inputEnded && this.#flow.waitingForInvitation) {
      this.#queue = [];
      return null;
    }
    const head = this.#queue[0];
    const quits = head === null || head.trim() === "q";
    if (this.#flow.ask === undefined && !quits) return undefined;
    return this.#queue.shift();
  }

  #finish(code: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#exit.resolve(this.#exitCode ?? code);
  }
}

/** Scripted mode: one line per output, answers read line by line. */
class ScriptedUi implements Ui {
  #json: boolean;
  #reader: ReadableStreamDefaultReader<string> | undefined;
  #app: ClientApp | undefined;
  /** Writing to stdout failed once: the reader is gone. */
  #broken = false;

  constructor(json: boolean) {
    this.#json = json;
  }

  show(output: Output): void {
    const line = this.#json ? renderJson(output) : renderText(output);
    try {
      if (!this.#broken) writeAll(Deno.stdout, line + "\n");
    } catch (error) {
      // Nobody reads our output any more: quit.
      log.debug("Writing to stdout failed: {error}", { error });
      this.#broken = true;
      queueMicrotask(() => this.#app?.interrupt());
    }
    if (output.type === "error" && output.fatal) {
      try {
        writeAll(Deno.stderr, `simp: ${output.message}\n`);
      } catch {
        // stderr is gone too; the exit code still tells.
      }
    }
  }

  setAsk(): void {}

  start(app: ClientApp): void {
    this.#app = app;
    this.#readLines(app);
  }

  close(): void {
    this.#reader?.cancel().catch(() => {});
  }

  async #readLines(app: ClientApp): Promise<void> {
    const reader = Deno.stdin.readable
      .pipeThrough(new TextDecoderStream())
      .getReader();
    this.#reader = reader;
    let rest = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
        let newline;
        while ((newline = rest.indexOf("\n")) >= 0) {
          app.enqueue(rest.slice(0, newline).replace(/\r$/, ""));
          rest = rest.slice(newline + 1);
        }
      }
    } catch (error) {
      log.debug("Reading stdin failed: {error}", { error });
    }
    if (rest !== "") app.enqueue(rest.replace(/\r$/, ""));
    app.enqueue(null);
  }
}

/** The input-line prompts of the interactive mode. */
const TERMINAL_PROMPTS: Readonly<Record<Ask, string>> = Object.freeze({
  name: "Your name: ",
  menu: "Choose 1, 2 or q: ",
  ip: "IP address to invite: ",
  answer: "Accept? (y/n/q): ",
  chat: "> ",
});

/** Where the interactive view is drawn and whether stdout gets a transcript. */
interface TerminalOutput {
  /** The terminal the view is drawn on (stdout, or stderr when stdout is redirected). */
  screen: typeof Deno.stdout | typeof Deno.stderr;
  /** Whether stdout gets a plain transcript (it is redirected). */
  transcript: boolean;
  /** Colours on the screen. */
  colour: boolean;
  /** Whether Ctrl+Z may stop the process (not under `deno task`). */
  suspendable: boolean;
}

/**
 * Interactive mode: raw terminal, the {@linkcode LineEditor}, news above the
 * input line. A line is cleared from the input when entered, accepted or
 * not (a refused one comes back with Up); text typed when the question
 * changes under it is set aside the same way, so that it is never taken as
 * the answer to the new question.
 */
class TerminalUi implements Ui {
  #editor = new LineEditor();
  #out: TerminalOutput;
  #paint: Palette;
  #ask: Ask | undefined;
  #prompt = "";
  #name = "";
  #peer: { name: string; ip: string; port: number } | undefined;
  #raw = false;
  #closed = false;
  #app: ClientApp | undefined;
  /** A paste of many lines waiting for the user's y or n. */
  #paste: string[] | undefined;

  constructor(out: TerminalOutput) {
    this.#out = out;
    this.#paint = palette(out.colour);
  }

  /** Restores the terminal if the process dies of an uncaught error. */
  #onCrash = () => this.close();
  #onResize = () => this.#draw();
  #onContinue = () => {
    // Back from Ctrl+Z (fg): the terminal is ours again.
    this.#enterRaw();
    this.#editor.forget();
    this.#draw();
  };

  start(app: ClientApp): void {
    this.#app = app;
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
    this.#readKeys(app);
  }

  close(): void {
    if (!this.#raw) return;
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
    this.#closed = true;
  }

  /** The signals the view listens to: a resize, and the return from Ctrl+Z. */
  #signals(): [Deno.Signal, () => void][] {
    return [["SIGWINCH", this.#onResize], ["SIGCONT", this.#onContinue]];
  }

  #enterRaw(): void {
    try {
      // cbreak: the terminal still turns Ctrl+C into SIGINT and Ctrl+Z into
      // SIGTSTP for the whole foreground job, so that Ctrl+Z suspends with
      // no permission to send signals. Not under `deno task`, which does
      // not stop: there Ctrl+Z is a key and gets an explanation.
      Deno.stdin.setRaw(true, { cbreak: this.#out.suspendable });
      this.#raw = true;
      this.#write(BRACKETED_PASTE_ON);
    } catch (error) {
      log.debug("Setting the terminal to raw mode failed: {error}", { error });
    }
  }

  #leaveRaw(): void {
    this.#write(this.#editor.erase() + BRACKETED_PASTE_OFF);
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Nothing more to do.
    }
    this.#raw = false;
  }

  show(output: Output): void {
    if (output.type === "connected") this.#name = output.name;
    if (output.type === "chat-started") {
      this.#peer = { name: output.name, ip: output.ip, port: output.port };
    }
    if (this.#out.transcript) {
      try {
        writeAll(Deno.stdout, renderText(output) + "\n");
      } catch (error) {
        log.debug("Writing the transcript failed: {error}", { error });
      }
    }
    const lines = terminalLines(output, {
      name: this.#name,
      colour: this.#out.colour,
    });
    if (lines.length === 0) return;
    const time = this.#paint.dim(clockTime(new Date()));
    const bell = output.type === "invitation"
      ? bellFor("invitation", false)
      : output.type === "message"
      ? bellFor("message", this.#editor.text !== "")
      : "";
    this.#above(lines.map((line) => `${time} ${line}`), bell);
  }

  setAsk(ask: Ask | undefined): void {
    if (
      ask !== this.#ask && this.#editor.text !== "" && this.#ask !== undefined
    ) {
      // The question changed under what was being typed: keep it out of
      // the answer to the new question.
      const text = this.#editor.setAside();
      this.#above([
        this.#paint.yellow(
          `* set aside what you were typing (${
            JSON.stringify(text.length > 40 ? text.slice(0, 39) + "…" : text)
          }): press Up to get it back`,
        ),
      ]);
    }
    this.#ask = ask;
    this.#paste = undefined;
    this.#prompt = this.#promptFor(ask);
    this.#draw();
  }

  #promptFor(ask: Ask | undefined): string {
    if (ask === undefined) return this.#paint.dim("(q = quit) ");
    if (ask === "chat" && this.#peer !== undefined) {
      return this.#paint.bold(chatPrompt(this.#peer));
    }
    return this.#paint.bold(TERMINAL_PROMPTS[ask]);
  }

  /** Prints `lines` above the input line, then draws it again. */
  #above(lines: string[], extra = ""): void {
    this.#write(
      this.#editor.erase() + lines.map((line) => line + "\r\n").join("") +
        extra + this.#render(),
    );
  }

  #draw(): void {
    this.#write(this.#render());
  }

  #render(): string {
    let { columns, rows } = { columns: 0, rows: 0 };
    try {
      ({ columns, rows } = Deno.consoleSize());
    } catch {
      // Not a terminal after all.
    }
    if (columns < 10) columns = 80; // unknown (0) or absurd: assume 80
    if (rows < 4) rows = 24;
    return this.#editor.render({
      prompt: this.#prompt,
      columns,
      maxRows: Math.max(1, Math.floor(rows / 2)),
    });
  }

  #write(text: string): void {
    try {
      writeAll(this.#out.screen, text);
    } catch (error) {
      log.debug("Writing to the terminal failed: {error}", { error });
    }
  }

  /** An entered line: commands of the view first, then the flow. */
  #submit(app: ClientApp, line: string): void {
    if (this.#paste !== undefined) {
      const lines = this.#paste;
      const answer = line.trim().toLowerCase();
      if (answer === "y" || answer === "n") {
        this.#paste = undefined;
        this.#prompt = this.#promptFor(this.#ask);
        if (answer === "y") {
          for (const each of lines) this.#submit(app, each);
        } else {this.#above([
            this.#paint.dim(`* ${lines.length} pasted lines dropped`),
          ]);}
        this.#draw();
        return;
      }
      this.#above([
        this.#paint.red(
          `! Type y to send the ${lines.length} pasted lines or n to drop them`,
        ),
      ]);
      return;
    }
    if (this.#ask === "chat") {
      const input = parseChatInput(line);
      switch (input.type) {
        case "refused":
          this.#above([this.#paint.red(`! ${input.message}`)]);
          return;
        case "command":
          if (input.command === "help") {
            this.#above(CHAT_HELP.map((text) => this.#paint.dim(text)));
            return;
          }
          app.submit(input.command === "quit" ? "q" : "/leave");
          this.#draw();
          return;
        case "empty":
          return;
        case "message":
          this.#submitted(app, input.text);
          return;
      }
    }
    if (line.trim() === "/help") {
      this.#above(CHAT_HELP.map((text) => this.#paint.dim(text)));
      return;
    }
    this.#submitted(app, line.trim() === "/quit" ? "q" : line);
  }

  /** Hands `line` to the flow; when refused, says how to get it back. */
  #submitted(app: ClientApp, line: string): void {
    if (!app.submit(line)) {
      this.#above([this.#paint.dim("  (Up brings the line back to edit it)")]);
    }
    this.#draw();
  }

  async #readKeys(app: ClientApp): Promise<void> {
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
        for (const event of this.#editor.feed(text)) {
          switch (event.type) {
            case "submit":
              this.#draw();
              this.#submit(app, event.line);
              break;
            case "paste":
              if (
                this.#ask === "chat" && event.lines.length > PASTE_CONFIRM_LINES
              ) {
                this.#paste = event.lines;
                this.#prompt = this.#paint.bold(
                  pasteQuestion(event.lines.length),
                );
                this.#draw();
              } else {
                for (const line of event.lines) this.#submit(app, line);
              }
              break;
            case "interrupt":
              this.#above([this.#paint.dim(interruptNotice(event.discarded))]);
              app.interrupt(INTERRUPTED_EXIT_CODE);
              break;
            case "eof":
              app.interrupt();
              break;
            case "suspend":
              this.#suspend();
              break;
            case "redraw":
              this.#write("\x1b[H\x1b[2J");
              this.#editor.forget();
              this.#draw();
              break;
            case "changed":
              this.#draw();
              break;
          }
        }
      }
    } catch (error) {
      log.debug("Reading the terminal failed: {error}", { error });
    }
    app.eof();
  }

  /**
   * Ctrl+Z arrived as a key: the terminal is in full raw mode because
   * `deno task` runs the client, and `deno task` does not stop on SIGTSTP,
   * so stopping the client would leave the shell waiting: say so instead.
   */
  #suspend(): void {
    this.#above([
      this.#paint.yellow(
        "* Ctrl+Z cannot suspend a client started by deno task (the task runner does not stop): start it with deno run -A mod.ts client … to use Ctrl+Z",
      ),
    ]);
  }

  /** Ctrl+C arrived as SIGINT (cbreak mode): say what was not sent. */
  interrupted(): void {
    const discarded = this.#editor.text;
    this.#editor.clear();
    this.#above([this.#paint.dim(interruptNotice(discarded))]);
  }
}

/** The exit code after Ctrl+C or SIGINT (128 + 2, the shells' convention). */
const INTERRUPTED_EXIT_CODE = 130;

/** `text` in the SGR style `code` (e.g. `1;36`), when colours are on. */
function style(colour: boolean, code: string, text: string): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** How {@linkcode terminalLines} shows things. */
export interface TerminalView {
  /** The user's own name, shown before the messages they send. */
  name: string;
  /** Whether to use colours (SGR escape sequences). */
  colour: boolean;
}

/**
 * The lines the interactive client shows for `output` (none for some, e.g.
 * a question, which is the input line's prompt instead). Messages are built
 * from the output's fields, with control characters made harmless
 * ({@linkcode printable}); the other news is its {@linkcode renderText}
 * line, styled.
 *
 * @example
 * ```ts
 * import { terminalLines } from "./client.ts";
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
      return [paint("2", `  ✓ #${output.id} delivered`)];
    case "bye":
      return [];
  }
  const text = renderText(output);
  switch (output.type) {
    case "retransmitted":
      return [paint("33", `  ↻ ${text}`)];
    case "held":
    case "in-flight":
      return [paint("33", `* ${text}`)];
    case "undelivered":
    case "not-sent":
    case "summary":
    case "error":
    case "busy":
    case "peer-lost":
    case "peer-error":
      return [paint("31", `! ${text.replace(/^error: /, "")}`)];
    default:
      return [paint("2", `* ${text}`)];
  }
}

/** The environment variables that choose colours (none without permission). */
function colourEnv(): Record<string, string | undefined> {
  try {
    return {
      NO_COLOR: Deno.env.get("NO_COLOR"),
      FORCE_COLOR: Deno.env.get("FORCE_COLOR"),
    };
  } catch {
    return { NO_COLOR: "1" }; // no permission to read the environment: stay plain
  }
}

/**
 * Runs the client with `options` until the user quits (SPEC §8), and
 * resolves to the process exit code: 0 after a normal quit, 1 when the
 * daemon is not reachable, refuses the connection, drops it or stops; 130
 * after Ctrl+C or SIGINT (the chat is still closed cleanly), and when a
 * second SIGTERM cuts a quit short. In scripted mode also 1
 * after an invalid answer to a question, and at the end of input when a
 * message was not sent or not delivered.
 *
 * @example
 * ```ts ignore
 * import { runClient } from "./client.ts";
 * import { parseClientArgs } from "./lib/cli.ts";
 * Deno.exit(await runClient(parseClientArgs(["127.0.0.1", "--name", "alice"])));
 * ```
 */
export async function runClient(options: ClientOptions): Promise<number> {
  const choice = chooseOutput({
    stdin: Deno.stdin.isTerminal(),
    stdout: Deno.stdout.isTerminal(),
    stderr: Deno.stderr.isTerminal(),
  }, options.json);
  const interactive = choice.mode === "interactive";
  const ui: Ui = choice.mode === "interactive"
    ? new TerminalUi({
      screen: choice.screen === "stdout" ? Deno.stdout : Deno.stderr,
      transcript: choice.transcript,
      colour: colourWanted(colourEnv(), true),
      suspendable: !underDenoTask(),
    })
    : new ScriptedUi(options.json);
  let link: DaemonLink;
  try {
    // Nothing arrives before the flow's first request, so `app` is set by then.
    link = DaemonLink.open(options.ip, options.port, {
      onEvent: (event) => app.event(event),
      onUnreachable: () => app.unreachable(),
      onSlotLost: (error) => app.slotLost(error),
    });
  } catch (error) {
    console.error(`simp: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
  const flow = new ClientFlow({
    ip: options.ip,
    port: options.port,
    ...(options.name !== undefined ? { name: options.name } : {}),
    strict: !interactive,
  });
  const app = new ClientApp(flow, link, ui);
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", () => {
      ui.interrupted?.();
      app.interrupt(INTERRUPTED_EXIT_CODE);
    }],
    ["SIGTERM", () => app.interrupt()],
    ["SIGHUP", () => app.interrupt()],
  ];
  const added: [Deno.Signal, () => void][] = [];
  for (const [signal, listener] of listeners) {
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // Not available on this platform (Windows has only SIGINT and SIGBREAK).
    }
  }
  try {
    return await app.run();
  } finally {
    for (const [signal, listener] of added) {
      Deno.removeSignalListener(signal, listener);
    }
    ui.close();
    await link.close();
  }
}
