/**
 * A client for programs (SPEC §9): {@linkcode connect} opens the link to a
 * simp daemon and returns a {@linkcode Chat}, whose methods are the link's
 * commands as Promises and whose {@linkcode Chat.events} is the daemon's
 * event stream as an async iterable. A bot, a bridge or a benchmark uses
 * this instead of driving `simp client`.
 *
 * What a promise means:
 * - {@linkcode Chat.send} resolves once the peer has ACKed the message
 *   (`delivered`), and rejects with a {@linkcode ChatError} saying why
 *   when it was not (refused by the daemon, the peer left or was lost, the
 *   chat or the client was closed, the daemon went away). Sends are
 *   pipelined: up to `limits.queue` are handed to the daemon at once (so the
 *   daemon never answers `queue-full`), the rest wait here, in order; none
 *   is lost.
 * - The other commands resolve when the daemon has done what was asked
 *   (e.g. sent the invitation); what follows comes as events
 *   (`chat-started`, `declined`, …).
 *
 * Read the events: a program that does not read them loses nothing, but
 * once {@linkcode EVENT_BUFFER_LIMIT} events other than `delivered`,
 * `retransmitted` and `invite-retry` wait unread, the client stops reading
 * from the daemon (the daemon's flow control then holds the peer back)
 * until the program reads on; those three beyond the limit are not kept
 * (their send's promise is settled all the same). When the daemon goes away
 * the iteration ends, and every pending promise rejects.
 *
 * I/O is thin: one TCP connection, one reused receive buffer, lines written
 * in batches (all the requests made in one turn of the event loop go out in
 * one write). Once `limits.queue` sends are outstanding, the next ones are
 * handed over when half of those have been settled, all at once: one write,
 * one read and one batch of replies at the daemon per half window instead
 * of one per message (docs/BENCHMARKS.md has the figures).
 *
 * @example
 * ```ts ignore
 * import { connect } from "./program.ts";
 * const chat = await connect("127.0.0.1", { name: "bot" });
 * for await (const event of chat.events) {
 *   if (event.type === "invitation") await chat.accept();
 *   if (event.type === "message") await chat.send(`You said: ${event.text}`);
 * }
 * ```
 *
 * @module
 */

import { ClientEnd } from "../link/client_end.ts";
import { LineSplitter } from "../link/lines.ts";
import {
  CLIENT_PORT,
  type Command,
  type DaemonState,
  type LinkEvent,
  type LinkLimits,
  type LinkPeer,
  type LinkPhase,
  type Reply,
  type SendReply,
} from "../link/protocol.ts";

export type { LinkEvent, LinkLimits, LinkPeer, LinkPhase };

/** An event from the daemon, as {@linkcode Chat.events} yields it. */
export type ChatEvent = LinkEvent;

/**
 * How many unread events are kept. Beyond it, `delivered` and
 * `retransmitted` events are not kept (the promise of their send is settled
 * all the same; {@linkcode Chat.droppedEvents} counts them), and when that
 * many other events (messages, …) wait unread the client stops reading from
 * the daemon until the program reads on.
 */
export const EVENT_BUFFER_LIMIT = 4096;

/** How long {@linkcode connect} waits for the daemon's hello reply, in ms. */
export const HELLO_TIMEOUT_MS = 5000;

/** How long {@linkcode Chat.close} waits for the reply to `quit`, in ms. */
export const QUIT_TIMEOUT_MS = 2000;

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** The user name (ASCII, at most 32 bytes; the daemon checks it). */
  name: string;
  /** The daemon's client port (default {@linkcode CLIENT_PORT}, 7778). */
  port?: number;
}

/** Options of {@linkcode Chat.invite}. */
export interface InviteOptions {
  /** The invited daemon's SIMP port (default 7777). */
  port?: number;
}

/**
 * Why a promise of a {@linkcode Chat} was rejected:
 * - `refused` — the daemon refused the command (the message says why, e.g.
 *   not in a chat, text not ASCII or too long);
 * - `peer-left`, `peer-lost`, `chat-closed` — the chat ended before the
 *   message was delivered;
 * - `disconnected` — the daemon went away (stopped, died, closed the link);
 * - `closed` — the program closed this client.
 */
export type ChatErrorReason =
  | "refused"
  | "peer-left"
  | "peer-lost"
  | "chat-closed"
  | "disconnected"
  | "closed";

/**
 * A command of a {@linkcode Chat} that failed, and why.
 *
 * @example
 * ```ts ignore
 * import { ChatError, connect } from "./program.ts";
 * const chat = await connect("127.0.0.1", { name: "bot" });
 * try {
 *   await chat.send("hello");
 * } catch (error) {
 *   if (error instanceof ChatError && error.reason === "peer-left") {
 *     console.log("They left before it arrived:", error.message);
 *   }
 * }
 * ```
 */
export class ChatError extends Error {
  /** Why, for a program that acts on it. */
  readonly reason: ChatErrorReason;

  /** An error with `message` (a sentence for a user) and `reason`. */
  constructor(message: string, reason: ChatErrorReason) {
    super(message);
    this.name = "ChatError";
    this.reason = reason;
  }
}

/** The daemon's state when the client connected: phase and peer. */
export type ChatState = DaemonState;

/**
 * Opens the link to the daemon at `ip` (port `options.port`, default 7778)
 * as `options.name` and resolves to the {@linkcode Chat} once the daemon has
 * answered `hello`. Rejects with a clear error when the daemon is not
 * running, refuses the name, speaks another version, or already has a
 * client.
 *
 * @example
 * ```ts ignore
 * import { connect } from "./program.ts";
 * const chat = await connect("127.0.0.1", { name: "bot" });
 * await chat.invite("127.0.0.2");
 * for await (const event of chat.events) {
 *   if (event.type === "chat-started") break;
 * }
 * await chat.send("hello");
 * await chat.close();
 * ```
 */
export async function connect(
  ip: string,
  options: ConnectOptions,
): Promise<Chat> {
  const port = options.port ?? CLIENT_PORT;
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ transport: "tcp", hostname: ip, port });
  } catch (error) {
    throw new ChatError(
      `Daemon not reachable at ${ip}:${port} (${
        error instanceof Error ? error.message : String(error)
      }) — is \`simp daemon ${ip}\` running?`,
      "disconnected",
    );
  }
  conn.setNoDelay(true);
  const chat = new Chat(conn, `${ip}:${port}`);
  await chat._hello(options.name);
  return chat;
}

/** Ok replies. */
type OkReply = Exclude<Reply, { ok: false }>;

interface Pending {
  resolve(reply: OkReply): void;
  reject(error: ChatError): void;
}

interface Outgoing {
  text: string;
  resolve(): void;
  reject(error: ChatError): void;
}

/**
 * One program's link to its daemon; made by {@linkcode connect}. Commands
 * return Promises; {@linkcode Chat.events} yields what the daemon reports.
 * `await using chat = await connect(…)` closes it at the end of the block.
 *
 * @example Wait for an invitation, accept it, answer every message
 * ```ts ignore
 * import { connect } from "./program.ts";
 * await using chat = await connect("127.0.0.2", { name: "echo" });
 * for await (const event of chat.events) {
 *   if (event.type === "invitation") await chat.accept();
 *   if (event.type === "message") chat.send(event.text); // not awaited: pipelined
 *   if (event.type === "peer-left") break;
 * }
 * ```
 */
export class Chat implements AsyncDisposable {
  /** The daemon's address, `ip:port`. */
  readonly daemon: string;
  #conn: Deno.TcpConn;
  #link = new ClientEnd();
  #replies = new Map<number, Pending>();
  #greeting: Pending | undefined;
  /** Sends handed to the daemon, by message id once replied. */
  #inFlight = new Map<number, Outgoing>();
  /** Sends replied to before an outcome; message ids whose outcome came early. */
  #early = new Map<number, ChatError | null>();
  /** Whether the window of sends was full and is not yet half drained. */
  #refilling = false;
  /** Sends not yet handed to the daemon (over `limits.queue`). */
  #waiting: Outgoing[] = [];
  #waitingHead = 0;
  #limits: LinkLimits = { queue: 1, text: 0 };
  #state: ChatState = { phase: "idle" };
  /** Why the last chat ended, for the `undelivered` events that follow. */
  #endReason: ChatError | undefined;
  #ended: ChatError | undefined;
  #closing = false;

  #out: string[] = [];
  #writing = false;
  #encoder = new TextEncoder();

  #events: ChatEvent[] = [];
  #eventsHead = 0;
  /** Unread events other than `delivered` and `retransmitted`. */
  #heldBack = 0;
  #dropped = 0;
  #wakeReader: (() => void) | undefined;
  /** The iterations waiting for an event (more than one may iterate). */
  #wakeProgram: (() => void)[] = [];
  #reading: Promise<void> | undefined;

  /** Use {@linkcode connect}. */
  constructor(conn: Deno.TcpConn, daemon: string) {
    this.#conn = conn;
    this.daemon = daemon;
  }

  /** The daemon's limits from its hello reply (`queue`, longest `text`). */
  get limits(): LinkLimits {
    return this.#limits;
  }

  /** The daemon's state when this client connected. */
  get state(): ChatState {
    return this.#state;
  }

  /**
   * How many `delivered` and `retransmitted` events were not kept because
   * {@linkcode EVENT_BUFFER_LIMIT} events waited unread.
   */
  get droppedEvents(): number {
    return this.#dropped;
  }

  /** Whether the link is closed (by {@linkcode Chat.close} or the daemon). */
  get closed(): boolean {
    return this.#ended !== undefined;
  }

  /**
   * The daemon's events, in order, as one stream: iterating it again goes
   * on where the last iteration stopped. Ends when the link closes.
   */
  get events(): AsyncIterable<ChatEvent> {
    return { [Symbol.asyncIterator]: () => this.#iterator() };
  }

  /** @internal Sends hello and applies the reply; used by {@linkcode connect}. */
  async _hello(name: string): Promise<void> {
    this.#reading = this.#readLoop();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const { promise, resolve, reject } = Promise.withResolvers<OkReply>();
    this.#greeting = { resolve, reject };
    try {
      this.#write(this.#link.hello(name));
      timer = setTimeout(
        () =>
          reject(
            new ChatError(
              `Daemon at ${this.daemon} did not answer within ${HELLO_TIMEOUT_MS} ms — is it a simp daemon?`,
              "disconnected",
            ),
          ),
        HELLO_TIMEOUT_MS,
      );
      await promise;
      this.#limits = this.#link.limits!;
      this.#state = this.#link.state!;
    } catch (error) {
      this.#end(
        error instanceof ChatError
          ? error
          : new ChatError(String(error), "disconnected"),
      );
      await this.#reading;
      throw error;
    } finally {
      clearTimeout(timer);
      this.#greeting = undefined;
    }
  }

  /** Invites the daemon at `ip`; resolves once the invitation is sent. */
  async invite(ip: string, options: InviteOptions = {}): Promise<void> {
    await this.#request(
      options.port === undefined
        ? { cmd: "invite", ip }
        : { cmd: "invite", ip, port: options.port },
    );
  }

  /** Accepts the pending invitation. */
  async accept(): Promise<void> {
    await this.#request({ cmd: "accept" });
  }

  /** Declines the pending invitation. */
  async decline(): Promise<void> {
    await this.#request({ cmd: "decline" });
  }

  /** Leaves the chat (FIN, SPEC §6) or withdraws our invitation. */
  async leave(): Promise<void> {
    await this.#request({ cmd: "leave" });
  }

  /**
   * Sends `text` in the chat; resolves when the peer has ACKed it, rejects
   * with a {@linkcode ChatError} when it was not delivered. Sends are kept
   * in order and handed to the daemon within its `limits.queue`, so the
   * daemon's queue is never full because of this client; it can be when
   * messages of an earlier client of the same chat still wait there: such a
   * send is rejected (`refused`, with the daemon's sentence), not retried,
   * so that the order of the messages is never changed.
   */
  send(text: string): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    if (this.#ended !== undefined) {
      reject(this.#ended);
    } else if (
      !this.#refilling && this.#link.maySend && this.#waitingLength() === 0
    ) {
      this.#handOver({ text, resolve, reject });
      if (!this.#link.maySend) this.#refilling = true;
    } else {
      this.#waiting.push({ text, resolve, reject });
    }
    return promise;
  }

  /**
   * Quits: the daemon closes a chat with FIN or withdraws an invitation,
   * then the link is closed. Pending sends reject (`closed`); the event
   * iteration ends. Harmless when already closed.
   */
  async close(): Promise<void> {
    if (this.#ended === undefined && !this.#closing) {
      this.#closing = true;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          this.#request({ cmd: "quit" }),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
          }),
        ]);
      } catch {
        // Gone already: nothing to quit.
      } finally {
        clearTimeout(timer);
      }
      this.#end(new ChatError("The chat client was closed", "closed"));
    }
    await this.#reading;
  }

  /** Same as {@linkcode Chat.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #waitingLength(): number {
    return this.#waiting.length - this.#waitingHead;
  }

  #handOver(message: Outgoing): void {
    this.#request({ cmd: "send", text: message.text }).then(
      (reply) => {
        const msgId = (reply as SendReply).msgId;
        if (this.#early.has(msgId)) {
          const outcome = this.#early.get(msgId)!;
          this.#early.delete(msgId);
          this.#settle(message, outcome);
        } else {
          this.#inFlight.set(msgId, message);
        }
      },
      (error: ChatError) => this.#settle(message, error),
    );
  }

  #settle(message: Outgoing, outcome: ChatError | null): void {
    if (outcome === null) message.resolve();
    else message.reject(outcome);
    this.#pump();
  }

  #pump(): void {
    if (this.#refilling) {
      // The window was full: refill it once half of it has drained, all at
      // once (one write, one read and one batch of replies at the daemon)
      // rather than one send per outcome. The daemon still holds the other
      // half meanwhile, so its sending never waits for us.
      if (this.#link.unsettledSends > Math.floor(this.#limits.queue / 2)) {
        return;
      }
      this.#refilling = false;
    }
    while (
      this.#ended === undefined && this.#waitingLength() > 0 &&
      this.#link.maySend
    ) {
      const next = this.#waiting[this.#waitingHead++];
      if (
        this.#waitingHead > 1024 && this.#waitingHead * 2 > this.#waiting.length
      ) {
        this.#waiting = this.#waiting.slice(this.#waitingHead);
        this.#waitingHead = 0;
      }
      this.#handOver(next);
    }
    if (!this.#link.maySend) this.#refilling = true;
  }

  #outcome(id: number, outcome: ChatError | null): void {
    const message = this.#inFlight.get(id);
    if (message === undefined) {
      // The outcome of a send whose reply has not come yet (or of a message
      // sent by an earlier client, which is not ours to settle).
      if (this.#early.size < 4 * Math.max(1, this.#limits.queue)) {
        this.#early.set(id, outcome);
      }
      return;
    }
    this.#inFlight.delete(id);
    this.#settle(message, outcome);
  }

  #request(command: Command): Promise<OkReply> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    const { id, line } = this.#link.request(command);
    const { promise, resolve, reject } = Promise.withResolvers<OkReply>();
    this.#replies.set(id, { resolve, reject });
    this.#write(line);
    return promise;
  }

  #write(line: string): void {
    this.#out.push(line);
    if (!this.#writing) this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    this.#writing = true;
    try {
      // Let the rest of this turn add its requests, then write them at once.
      await Promise.resolve();
      while (this.#out.length > 0 && this.#ended === undefined) {
        const bytes = this.#encoder.encode(this.#out.join(""));
        this.#out.length = 0;
        let written = 0;
        while (written < bytes.length) {
          written += await this.#conn.write(bytes.subarray(written));
        }
      }
    } catch (error) {
      this.#end(this.#lost(error));
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(65_536);
    const lines = new LineSplitter();
    try {
      for (;;) {
        if (this.#ended !== undefined) return;
        if (this.#heldBack >= EVENT_BUFFER_LIMIT) {
          await new Promise<void>((resolve) => this.#wakeReader = resolve);
          continue;
        }
        const n = await this.#conn.read(buffer);
        if (n === null) {
          this.#end(
            new ChatError(
              `Daemon at ${this.daemon} closed the connection`,
              "disconnected",
            ),
          );
          return;
        }
        for (const item of lines.push(buffer.subarray(0, n))) {
          if (item.type === "line") {
            this.#onLine(item.text);
          } else if (item.type === "too-long") {
            this.#end(
              new ChatError(
                `The daemon at ${this.daemon} sent a line longer than ${item.limit} bytes: closed the connection`,
                "disconnected",
              ),
            );
          }
          // A line that is not UTF-8 is not a message: passed over.
        }
      }
    } catch (error) {
      this.#end(this.#lost(error));
    }
  }

  #lost(error: unknown): ChatError {
    if (this.#ended !== undefined) return this.#ended;
    return new ChatError(
      `Lost the connection to the daemon at ${this.daemon}: ${
        error instanceof Error ? error.message : String(error)
      }`,
      "disconnected",
    );
  }

  #onLine(line: string): void {
    const input = this.#link.receive(line);
    switch (input.type) {
      case "event":
        this.#onEvent(input.event);
        break;
      case "reply": {
        const pending = input.request.cmd === "hello"
          ? this.#greeting
          : this.#replies.get(input.request.id);
        this.#replies.delete(input.request.id);
        if (pending === undefined) break;
        if (input.reply.ok) pending.resolve(input.reply);
        else pending.reject(new ChatError(input.reply.error, "refused"));
        break;
      }
      case "refusal":
        // Refused before hello was answered (e.g. another client is there).
        if (this.#greeting !== undefined) {
          this.#greeting.reject(new ChatError(input.reply.error, "refused"));
        }
        break;
      case "violation":
        this.#end(
          new ChatError(
            `The daemon at ${this.daemon} broke the link protocol (${input.error.message}): closed the connection`,
            "disconnected",
          ),
        );
        break;
    }
  }

  #onEvent(event: ChatEvent): void {
    switch (event.type) {
      case "delivered":
        this.#outcome(event.id, null);
        break;
      case "undelivered":
        this.#outcome(
          event.id,
          this.#endReason ??
            new ChatError("The message was not delivered", "chat-closed"),
        );
        break;
      case "peer-left":
      case "peer-lost":
      case "chat-closed": {
        const why = event.type === "peer-left"
          ? `${event.name || event.ip} left the chat`
          : event.type === "peer-lost"
          ? `${event.name || event.ip} did not answer (peer lost)`
          : "the chat was closed";
        this.#endReason = new ChatError(
          `Not delivered: ${why}`,
          event.type,
        );
        // Sends still waiting here never reached the daemon: the chat
        // they were meant for has ended.
        for (let i = this.#waitingHead; i < this.#waiting.length; i++) {
          this.#waiting[i].reject(this.#endReason);
        }
        this.#waiting = [];
        this.#waitingHead = 0;
        break;
      }
      case "chat-started":
        this.#endReason = undefined;
        break;
    }
    const bookkeeping = event.type === "delivered" ||
      event.type === "retransmitted" || event.type === "invite-retry";
    if (this.#eventsLength() >= EVENT_BUFFER_LIMIT && bookkeeping) {
      this.#dropped++;
      return;
    }
    if (!bookkeeping) this.#heldBack++;
    this.#events.push(event);
    this.#wakePrograms();
  }

  #wakePrograms(): void {
    if (this.#wakeProgram.length === 0) return;
    for (const wake of this.#wakeProgram.splice(0)) wake();
  }

  #eventsLength(): number {
    return this.#events.length - this.#eventsHead;
  }

  async *#iterator(): AsyncGenerator<ChatEvent> {
    for (;;) {
      if (this.#eventsLength() > 0) {
        const event = this.#events[this.#eventsHead++];
        if (
          event.type !== "delivered" && event.type !== "retransmitted" &&
          event.type !== "invite-retry"
        ) {
          this.#heldBack--;
        }
        if (this.#eventsHead === this.#events.length) {
          this.#events.length = 0;
          this.#eventsHead = 0;
        }
        this.#wakeReader?.();
        this.#wakeReader = undefined;
        yield event;
      } else if (this.#ended !== undefined) {
        return;
      } else {
        await new Promise<void>((resolve) => this.#wakeProgram.push(resolve));
      }
    }
  }

  #end(reason: ChatError): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    for (const pending of this.#replies.values()) pending.reject(reason);
    this.#replies.clear();
    this.#greeting?.reject(reason);
    for (const message of this.#inFlight.values()) message.reject(reason);
    this.#inFlight.clear();
    for (let i = this.#waitingHead; i < this.#waiting.length; i++) {
      this.#waiting[i].reject(reason);
    }
    this.#waiting = [];
    this.#waitingHead = 0;
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    this.#wakeReader?.();
    this.#wakePrograms();
  }
}
