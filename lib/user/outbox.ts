/**
 * The client's outbox: the bookkeeping of the chat messages the user typed,
 * sans-I/O. It hands them to the daemon as `send` requests, in the order
 * typed, **pipelined**: up to the daemon's `limits.queue` sends are
 * outstanding at once (requested and not yet answered, or answered and not
 * yet `delivered` or `undelivered`), so a piped file is sent without
 * waiting for each reply, and a client that keeps to the limit never sees
 * `queue-full` (SPEC §9). Each message ends in exactly one outcome shown to
 * the user: `sent` then `delivered` or `undelivered`, or `not-sent` with the
 * reason (refused locally, refused by the daemon, the chat ended or the
 * user quit before it was handed over). It counts the messages typed and
 * those that failed, for the end-of-input summary.
 *
 * Should a daemon refuse a message with `queue-full` all the same, nothing
 * is lost: the message goes back to the head of the waiting messages (shown
 * once as `held`), the window shrinks to what the daemon took, and sending
 * resumes after the next outcome.
 *
 * Inputs: {@linkcode Outbox.add}, {@linkcode Outbox.onSendReply} (replies
 * come in request order), {@linkcode Outbox.delivered},
 * {@linkcode Outbox.retransmitted}, {@linkcode Outbox.undelivered},
 * {@linkcode Outbox.chatEnding}, {@linkcode Outbox.chatOver}, {@linkcode Outbox.dropWaiting}; outputs:
 * {@linkcode Outbox.takeActions}.
 *
 * @module
 */

import { checkText } from "../wire/datagram.ts";
import type { Output } from "./output.ts";

/** What the outbox wants done: a `send` request, or an output to show. */
export type OutboxAction =
  | {
    /** Send a `send` request with `text` to the daemon. */
    type: "send";
    /** The message. */
    text: string;
  }
  | {
    /** Show `output`. */
    type: "output";
    /** What to show. */
    output: Output;
  };

/** The reply to a `send` request, as far as the outbox reads it. */
export type SendReply =
  | {
    /** Accepted. */
    ok: true;
    /** The message id that later events name. */
    msgId?: number;
  }
  | {
    /** Refused. */
    ok: false;
    /** Why, for the user. */
    error: string;
    /** `queue-full` when the daemon's send queue was full. */
    code?: string;
  };

/**
 * How many typed messages may wait in the client, not yet handed to the
 * daemon: beyond it the client stops reading input ({@linkcode Outbox.full})
 * so that a huge piped file does not grow it without bound.
 */
export const MAX_WAITING = 1024;

/**
 * The outbox of one client (see the module documentation).
 *
 * @example
 * ```ts
 * import { Outbox } from "./outbox.ts";
 * const outbox = new Outbox();
 * outbox.limit = 2;
 * outbox.add("one");
 * outbox.add("two");
 * outbox.add("three");
 * console.log(outbox.takeActions().length); // 2: two sends, the third waits
 * outbox.onSendReply({ ok: true, msgId: 1 });
 * outbox.delivered(1);
 * console.log(outbox.takeActions().map((a) => a.type)); // output, output, send
 * ```
 */
export class Outbox {
  #actions: OutboxAction[] = [];
  #limit = 1;
  /** Typed, not yet handed to the daemon, oldest first. */
  #waiting: string[] = [];
  /** Handed to the daemon, reply not come yet, oldest first. */
  #requested: string[] = [];
  /** Accepted by the daemon (by message id), outcome not come yet. */
  #unsettled = new Map<number, string>();
  /** A `queue-full` came: nothing more is sent until the next outcome. */
  #held = false;
  /** The chat is ending: nothing more is sent in it. */
  #ending = false;
  #heldShown = false;
  #typed = 0;
  #failed = 0;
  /** The daemon's message ids → their numbers in this chat (1, 2, …). */
  #numbers = new Map<number, number>();
  /** How many messages the daemon accepted in this chat. */
  #count = 0;

  /**
   * How many sends may be outstanding (the daemon's `limits.queue`, at
   * least 1). Raising it sends waiting messages at once.
   */
  get limit(): number {
    return this.#limit;
  }

  set limit(value: number) {
    this.#limit = Math.max(1, Math.floor(value));
    this.#pump();
  }

  /**
   * A new chat began: message numbers start again at 1. (Messages are
   * numbered per chat for the user; the daemon's `msgId`s count on over
   * chats and clients, and stay on the link.)
   */
  newChat(): void {
    this.#numbers.clear();
    this.#count = 0;
  }

  /**
   * The number in this chat of the daemon's message `msgId`, or
   * `undefined` for a message this client did not send in this chat (one
   * an earlier client sent, whose news the daemon kept).
   */
  numberOf(msgId: number): number | undefined {
    return this.#numbers.get(msgId);
  }

  /** How many chat messages were typed (given to {@linkcode add}). */
  get typed(): number {
    return this.#typed;
  }

  /** How many of them were not sent or not delivered. */
  get failed(): number {
    return this.#failed;
  }

  /** How many sends are outstanding: unanswered, or answered without an outcome. */
  get outstanding(): number {
    return this.#requested.length + this.#unsettled.size;
  }

  /** Whether every message typed has been handed to the daemon. */
  get handedOver(): boolean {
    return this.#waiting.length === 0;
  }

  /** Whether every message typed has its outcome (nothing waits, nothing outstanding). */
  get settled(): boolean {
    return this.#waiting.length === 0 && this.outstanding === 0;
  }

  /** Whether so many messages wait that the client should stop reading input. */
  get full(): boolean {
    return this.#waiting.length >= MAX_WAITING;
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): OutboxAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  /**
   * The user typed the chat message `text`. Returns false when it cannot be
   * sent at all (non-ASCII or too long, SPEC §2.3, §2.5): it is shown as not
   * sent, and counted.
   */
  add(text: string): boolean {
    this.#typed++;
    const problem = sendProblem(text);
    if (problem !== undefined) {
      this.#notSent(text, problem);
      return false;
    }
    this.#waiting.push(text);
    this.#pump();
    return true;
  }

  /**
   * The user typed `text` in the chat and it is no message to send (an
   * unknown `/command`, `reason` says why): shown as not sent, and counted
   * like a message that could not be sent.
   */
  refuse(text: string, reason: string): void {
    this.#typed++;
    this.#notSent(text, reason);
  }

  /** The daemon answered the oldest unanswered `send` request. */
  onSendReply(reply: SendReply): void {
    const text = this.#requested.shift();
    if (text === undefined) return; // not ours: the core reads replies in order
    if (reply.ok && reply.msgId !== undefined) {
      const number = ++this.#count;
      this.#numbers.set(reply.msgId, number);
      this.#output({ type: "sent", id: number, text });
      this.#unsettled.set(reply.msgId, text);
    } else if (!reply.ok && reply.code === "queue-full") {
      // Nothing is lost: back to the head, in order, until the next outcome.
      this.#waiting.unshift(text);
      this.#limit = Math.max(1, this.outstanding);
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
    this.#pump();
  }

  /** The daemon's message `id` was delivered (§5.3). */
  delivered(id: number): void {
    this.#output({ type: "delivered", ...this.#numbered(id) });
    this.#unsettled.delete(id);
    this.#release();
  }

  /** The daemon's message `id` was retransmitted (§5.2). */
  retransmitted(id: number, attempt: number): void {
    this.#output({ type: "retransmitted", ...this.#numbered(id), attempt });
  }

  /** The daemon's message `id` was not delivered (§5.5). */
  undelivered(id: number, text: string): void {
    this.#output({ type: "undelivered", ...this.#numbered(id), text });
    if (this.#unsettled.delete(id)) this.#failed++;
    this.#release();
  }

  /** `{ id }` with this chat's number of `msgId`, or `{}` when it has none. */
  #numbered(msgId: number): { id?: number } {
    const number = this.#numbers.get(msgId);
    return number === undefined ? {} : { id: number };
  }

  /**
   * The chat is ending (`peer-left`, `peer-lost`, `chat-closed`): nothing
   * more is handed to the daemon until {@linkcode chatOver}.
   */
  chatEnding(): void {
    this.#ending = true;
  }

  /**
   * The chat is over and its `undelivered` events have come: a message
   * accepted without news is counted as not delivered, and those not handed
   * over yet are shown as not sent. (Sends still unanswered get their
   * answers: the daemon refuses them, as no chat is going on.)
   */
  chatOver(): void {
    this.#failed += this.#unsettled.size;
    this.#unsettled.clear();
    this.dropWaiting(
      "The chat ended before it could be handed to the daemon",
    );
    this.#ending = false;
    this.#release();
  }

  /**
   * Shows each message not handed to the daemon yet as not sent, for
   * `reason` (the user quit, the client stops).
   */
  dropWaiting(reason: string): void {
    const texts = this.#waiting;
    this.#waiting = [];
    this.#heldShown = false;
    for (const text of texts) this.#notSent(text, reason);
  }

  /**
   * The client stops without the daemon's answers: the sends not answered
   * are shown as not sent, for `reason`, and the waiting messages too.
   */
  abandon(reason: string): void {
    const texts = this.#requested;
    this.#requested = [];
    for (const text of texts) this.#notSent(text, reason);
    this.dropWaiting("The client stopped before handing it to the daemon");
  }

  /** An outcome freed a place: a refused message may go again. */
  #release(): void {
    this.#held = false;
    this.#pump();
  }

  /** Hands waiting messages to the daemon while the window allows. */
  #pump(): void {
    while (
      !this.#held && !this.#ending && this.#waiting.length > 0 &&
      this.outstanding < this.#limit
    ) {
      const text = this.#waiting.shift()!;
      this.#requested.push(text);
      this.#actions.push({ type: "send", text });
    }
    if (this.#waiting.length === 0) this.#heldShown = false;
  }

  #notSent(text: string, reason: string): void {
    this.#failed++;
    this.#output({ type: "not-sent", text, reason });
  }

  #output(output: Output): void {
    this.#actions.push({ type: "output", output });
  }
}

/**
 * Why `text` cannot be sent as a chat message, or `undefined` when it can:
 * non-ASCII or too long for SIMP (§2.3, §2.5). (Any such text fits in one
 * `send` line: even 65,468 control characters escaped as `\u0001` take
 * less than `MAX_LINE_BYTES`.)
 */
export function sendProblem(text: string): string | undefined {
  return checkText(text);
}
