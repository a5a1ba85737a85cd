/**
 * The client's end of the client–daemon protocol (SPEC §9, {@link
 * ./control.ts}) as a sans-I/O engine: it numbers requests, sends them one at
 * a time and retransmits each every {@linkcode REQUEST_RETRY_MS} until the
 * reply arrives (giving up on the daemon after {@linkcode REQUEST_ATTEMPTS}
 * sendings); it delivers the daemon's events in order, exactly once and
 * whole (the parts of a split event, `continued: true` on all but the last,
 * are joined into one event), acknowledging them cumulatively; and it pings
 * the daemon every {@linkcode KEEPALIVE_MS} of silence so that the daemon
 * keeps the client's slot (SPEC §7.2).
 *
 * Requests go out strictly one after another: a `send` must reach the daemon
 * before the next one, or a lost datagram could reorder the user's messages.
 *
 * Like the session engine it never reads a clock or touches a socket: feed it
 * {@linkcode ControlChannel.receive}, {@linkcode ControlChannel.tick} and
 * {@linkcode ControlChannel.request}, then carry out
 * {@linkcode ControlChannel.takeActions} and wake it at
 * {@linkcode ControlChannel.nextTimeout}.
 *
 * @module
 */

import {
  type Command,
  CONTROL_VERSION,
  ControlError,
  type ControlEvent,
  encodeControl,
  type EventAck,
  KEEPALIVE_MS,
  parseDaemonMessage,
  type Reply,
  type Request,
  REQUEST_ATTEMPTS,
  REQUEST_RETRY_MS,
  type TextEvent,
} from "./control.ts";

export type {
  Command,
  ControlEvent,
  EventAck,
  Reply,
  Request,
} from "./control.ts";

/** What the channel wants done or reported. */
export type ChannelAction =
  | {
    /** Send `bytes` (the encoded `message`) to the daemon. */
    type: "transmit";
    /** The datagram. */
    bytes: Uint8Array;
    /** What it carries. */
    message: Request | EventAck;
  }
  | {
    /** The daemon answered a request made with {@linkcode ControlChannel.request}. */
    type: "reply";
    /** The request. */
    request: Request;
    /** The daemon's answer. */
    reply: Reply;
  }
  | {
    /** The next event from the daemon, in order, once, whole. */
    type: "event";
    /** Its sequence number (of its last part, if it was split). */
    ev: number;
    /** The event, its parts joined (never `continued`). */
    event: ControlEvent;
  }
  | {
    /**
     * The daemon did not answer `request` after every attempt; the channel
     * has stopped (nothing more is sent or reported).
     */
    type: "unreachable";
    /** The request that went unanswered. */
    request: Request;
  }
  | {
    /**
     * The daemon refused a keep-alive ping: it no longer counts this client
     * as connected (it restarted, or freed the slot after a long silence).
     */
    type: "slot-lost";
    /** The daemon's error text. */
    error: string;
  }
  | {
    /** Something from the daemon could not be read; it was ignored. */
    type: "malformed";
    /** What was wrong. */
    detail: string;
  };

/** Timing and bounds of a {@linkcode ControlChannel}; every time is in ms. */
export interface ChannelOptions {
  /** Retransmission interval of a request (default {@linkcode REQUEST_RETRY_MS}). */
  retryMs: number;
  /** Sendings of a request before the daemon is unreachable (default {@linkcode REQUEST_ATTEMPTS}). */
  attempts: number;
  /** Silence after which a ping is sent, once keep-alive is on (default {@linkcode KEEPALIVE_MS}). */
  keepAliveMs: number;
  /** How many events that arrive ahead of a missing one are kept (default 256). */
  maxEarlyEvents: number;
}

/** The defaults of {@linkcode ChannelOptions}, from lib/control.ts. */
export const CHANNEL_DEFAULTS: Readonly<ChannelOptions> = Object.freeze({
  retryMs: REQUEST_RETRY_MS,
  attempts: REQUEST_ATTEMPTS,
  keepAliveMs: KEEPALIVE_MS,
  maxEarlyEvents: 256,
});

interface InFlight {
  request: Request;
  bytes: Uint8Array;
  /** How many times it has been sent. */
  sent: number;
  /** When to send it again (or give up). */
  due: number;
  /** A keep-alive ping of the channel's own: its reply is not reported. */
  internal: boolean;
}

/**
 * The client's end of the control protocol (see the module documentation).
 *
 * @example
 * ```ts
 * import { ControlChannel } from "./control_channel.ts";
 * const channel = new ControlChannel();
 * channel.request({ cmd: "connect", name: "alice" }, 0);
 * const [transmit] = channel.takeActions(); // send transmit.bytes to the daemon
 * console.log(channel.nextTimeout()); // 300: retransmit then, unless answered
 * ```
 */
export class ControlChannel {
  #options: ChannelOptions;
  #actions: ChannelAction[] = [];
  #nextId = 1;
  #queue: { request: Request; internal: boolean }[] = [];
  #inFlight: InFlight | undefined;
  #stopped = false;
  #keepAlive = false;
  /** When the last request was first sent or answered. */
  #lastActivity = 0;
  /** Every event up to this one has been delivered. */
  #delivered = 0;
  #early = new Map<number, ControlEvent>();
  /** The parts so far of a split event, joined. */
  #partial: TextEvent | undefined;

  /** Creates a channel; `options` overrides {@linkcode CHANNEL_DEFAULTS}. */
  constructor(options: Partial<ChannelOptions> = {}) {
    this.#options = { ...CHANNEL_DEFAULTS, ...options };
  }

  /** Whether the channel gave up on the daemon. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Whether a request is waiting for its reply or for its turn. */
  get busy(): boolean {
    return this.#inFlight !== undefined || this.#queue.length > 0;
  }

  /** The highest event sequence number delivered so far (every one below too). */
  get delivered(): number {
    return this.#delivered;
  }

  /**
   * Turns keep-alive pings on or off. Turn it on once connected: a client
   * that falls silent loses its slot at the daemon (SPEC §7.2).
   */
  setKeepAlive(on: boolean, now: number): void {
    if (on && !this.#keepAlive) this.#lastActivity = now;
    this.#keepAlive = on;
  }

  /**
   * Queues `command` and returns its request id; it is sent when the
   * requests before it have been answered. A `connect` starts a new
   * connection: event numbering starts again at 1.
   */
  request(command: Command, now: number): number {
    return this.#enqueue(command, false, now);
  }

  /** A datagram arrived from the daemon. */
  receive(bytes: Uint8Array, now: number): void {
    if (this.#stopped) return;
    let message;
    try {
      message = parseDaemonMessage(bytes);
    } catch (error) {
      if (!(error instanceof ControlError)) throw error;
      this.#actions.push({ type: "malformed", detail: error.message });
      return;
    }
    if ("ev" in message) {
      this.#onEvent(message.ev, message.event);
    } else {
      this.#onReply(message, now);
    }
    this.tick(now);
  }

  /** The clock reached `now`: retransmit, give up or ping as due. */
  tick(now: number): void {
    if (this.#stopped) return;
    const flight = this.#inFlight;
    if (flight !== undefined) {
      if (now < flight.due) return;
      if (flight.sent >= this.#options.attempts) {
        this.#stop(flight.request);
        return;
      }
      this.#transmit(flight, now);
      return;
    }
    if (this.#queue.length > 0) {
      this.#sendNext(now);
      return;
    }
    if (
      this.#keepAlive && now >= this.#lastActivity + this.#options.keepAliveMs
    ) {
      this.#enqueue({ cmd: "ping" }, true, now);
    }
  }

  /** When {@linkcode tick} must next be called, if ever. */
  nextTimeout(): number | undefined {
    if (this.#stopped) return undefined;
    if (this.#inFlight !== undefined) return this.#inFlight.due;
    if (this.#queue.length > 0) return 0;
    if (this.#keepAlive) {
      return this.#lastActivity + this.#options.keepAliveMs;
    }
    return undefined;
  }

  /** Returns the actions produced since the last call, oldest first. */
  takeActions(): ChannelAction[] {
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  #enqueue(command: Command, internal: boolean, now: number): number {
    const id = this.#nextId++;
    if (this.#stopped) return id;
    const request = { ...command, v: CONTROL_VERSION, id } as Request;
    this.#queue.push({ request, internal });
    if (this.#inFlight === undefined) this.#sendNext(now);
    return id;
  }

  #sendNext(now: number): void {
    const next = this.#queue.shift();
    if (next === undefined) return;
    if (next.request.cmd === "connect") {
      this.#delivered = 0;
      this.#early.clear();
      this.#partial = undefined;
    }
    const flight: InFlight = {
      request: next.request,
      bytes: encodeControl(next.request),
      sent: 0,
      due: now,
      internal: next.internal,
    };
    this.#inFlight = flight;
    this.#lastActivity = now;
    this.#transmit(flight, now);
  }

  #transmit(flight: InFlight, now: number): void {
    flight.sent++;
    flight.due = now + this.#options.retryMs;
    this.#actions.push({
      type: "transmit",
      bytes: flight.bytes,
      message: flight.request,
    });
  }

  #onReply(reply: Reply, now: number): void {
    const flight = this.#inFlight;
    // A reply to an earlier request is a late duplicate; `re: null` answers
    // something the daemon could not read, which we never send.
    if (flight === undefined || reply.re !== flight.request.id) {
      this.#actions.push({
        type: "malformed",
        detail: `Reply to request ${reply.re} ignored: ${
          flight ? `waiting for ${flight.request.id}` : "nothing asked"
        }`,
      });
      return;
    }
    this.#inFlight = undefined;
    this.#lastActivity = now;
    if (!flight.internal) {
      this.#actions.push({ type: "reply", request: flight.request, reply });
    } else if (!reply.ok) {
      this.#actions.push({ type: "slot-lost", error: reply.error });
    }
    this.#sendNext(now);
  }

  #onEvent(ev: number, event: ControlEvent): void {
    const first = this.#actions.length;
    if (ev === this.#delivered + 1) {
      this.#deliver(ev, event);
      for (;;) {
        const next = this.#early.get(this.#delivered + 1);
        if (next === undefined) break;
        this.#early.delete(this.#delivered + 1);
        this.#deliver(this.#delivered + 1, next);
      }
    } else if (
      ev > this.#delivered + 1 &&
      this.#early.size < this.#options.maxEarlyEvents
    ) {
      this.#early.set(ev, event);
    }
    // Acknowledge every time, duplicates too: our last ACK may have been
    // lost. The acknowledgement goes before the events it covers, so that it
    // leaves before any request the client makes in answer to them (a
    // `quit` that overtook it would leave the events to the next client).
    const ack: EventAck = { v: CONTROL_VERSION, ack: this.#delivered };
    this.#actions.splice(first, 0, {
      type: "transmit",
      bytes: encodeControl(ack),
      message: ack,
    });
  }

  /** Reports the next event, once its parts (if it was split) are all here. */
  #deliver(ev: number, event: ControlEvent): void {
    this.#delivered = ev;
    const partial = this.#partial;
    if (partial !== undefined && partial.type !== event.type) {
      // The daemon broke off a split event: show what came of it.
      this.#partial = undefined;
      this.#actions.push({
        type: "malformed",
        detail:
          `Event ${ev} (${event.type}) came before the rest of a split ${partial.type} event: showing its part so far`,
      });
      this.#actions.push({ type: "event", ev: ev - 1, event: partial });
    }
    if (!("text" in event)) {
      this.#actions.push({ type: "event", ev, event });
      return;
    }
    const { continued, ...part } = event;
    const whole = { ...part, text: (this.#partial?.text ?? "") + part.text };
    this.#partial = continued ? whole : undefined;
    if (!continued) this.#actions.push({ type: "event", ev, event: whole });
  }

  #stop(request: Request): void {
    this.#stopped = true;
    this.#inFlight = undefined;
    this.#queue = [];
    this.#early.clear();
    this.#partial = undefined;
    this.#actions.push({ type: "unreachable", request });
  }
}
