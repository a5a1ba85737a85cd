/**
 * A test-only SIMP daemon with one rule broken on purpose, for checking that
 * `simp conformance` catches it with the right check. It runs the real
 * protocol engine (`Session`, lib/peer/session.ts) behind a tiny UDP shell
 * and rewrites what goes in and out according to a {@linkcode Mutation};
 * the product's code has no flag for any of this. It is also its own
 * driver: the battery calls {@linkcode MutantDaemon.request} in-process.
 * With no mutation it is a plain daemon, the baseline where every check
 * passes.
 *
 * @module
 */

import type { Address } from "../../lib/address.ts";
import { Session } from "../../lib/peer/session.ts";
import type {
  Driver,
  DriverReply,
  DriverRequest,
} from "../../lib/conformance/driver.ts";

/** The rules broken on purpose, and the check that must catch each. */
export const MUTATIONS = {
  /** ACKs a chat datagram with the other Sequence (§3.2). */
  "ack-wrong-seq": "chat.inbound-ack",
  /** Never sends a chat datagram again (§5.2). */
  "no-chat-retransmit": "chat.retransmit",
  /** Gives a peer up after 2 retransmissions, not 5 (§5.5). */
  "gives-up-early": "chat.give-up",
  /** Another busy text, in a chat it accepted (§4.8). */
  "busy-text": "busy.responder",
  /** ERR without the FIN after it, in a chat it started (§4.8). */
  "no-fin-after-err": "busy.initiator",
  /** Another busy text while inviting (§4.8). */
  "busy-text-while-inviting": "busy.inviting",
  /** Answers a crossed SYN with nothing (§4.7). */
  "crossed-unanswered": "handshake.crossed",
  /** Sends everything to port 7777, not to where it came from (§1.4). */
  "replies-to-7777": "handshake.reply-to-source",
  /** Accepts every invitation by itself (§4.2). */
  "synack-before-accept": "handshake.accept-first",
  /** Its first chat datagram has Sequence 1 (§3.1). */
  "seq-starts-at-1": "chat.outbound",
  /** One Sequence counter for both directions (§3.1). */
  "shared-counter": "chat.interleaved",
  /** Shows a duplicate chat datagram again (§5.3). */
  "delivers-duplicates": "chat.duplicate",
  /** Sends a new message while one is unACKed (§5.1). */
  "no-stop-and-wait": "chat.stop-and-wait",
  /** Takes any ACK as the one it waits for (§5.4). */
  "any-ack-releases": "chat.wrong-ack",
  /** Takes datagrams from any address as the partner's (§7.1). */
  "third-address-accepted": "third.address",
  /** Does not ACK the partner's FIN (§6.1). */
  "fin-not-acked": "teardown.fin-acked",
  /** Leaves without a FIN (§6.1). */
  "no-fin-on-leave": "teardown.leave",
  /** Takes a datagram whose Length is wrong (§2.1). */
  "accepts-bad-length": "malformed.length",
  /** Takes a datagram shorter than 39 bytes, padded with zeros (§2.1). */
  "accepts-short": "malformed.short",
  /** Takes an unknown Type as control (§2.1). */
  "accepts-unknown-type": "malformed.type",
  /** Takes an unknown control Operation as SYN (§2.1). */
  "accepts-bad-operation": "malformed.operation",
  /** Takes a Sequence above 1 by its low bit (§2.1). */
  "accepts-bad-sequence": "malformed.sequence",
  /** Takes a chat datagram with an empty User field (§2.2). */
  "accepts-empty-user": "malformed.empty-user",
  /** Sends from another socket than the one it listens on (§1.4). */
  "sends-from-other-port": "handshake.syn-answered",
  /** Accepts when its user declines (§4.4). */
  "decline-accepts": "handshake.decline",
  /** Never sends its SYN again (§4.5). */
  "no-syn-retransmit": "handshake.syn-retransmit",
  /** Never sends its SYN+ACK again (§4.5). */
  "no-synack-retransmit": "handshake.synack-retransmit",
  /** As inviter, does not ACK a declining FIN (§4.4). */
  "declined-inviter-no-ack": "handshake.declined-inviter",
  /** As inviter, does not ACK the SYN+ACK (§4.3). */
  "initiator-no-ack": "handshake.initiator",
  /** Ignores a third SYN while an invitation is pending (§4.8). */
  "invited-ignores-third": "busy.invited",
  /** Does not answer its partner's late SYN (§4.5). */
  "late-syn-ignored": "handshake.late-syn",
} as const;

/** A rule broken on purpose. */
export type Mutation = keyof typeof MUTATIONS;

const CONTROL = 0x01;
const CHAT = 0x02;
const ERR = 0x01;
const SYN = 0x02;
const ACK = 0x04;
const SYN_ACK = 0x06;
const FIN = 0x08;

function isOp(b: Uint8Array, type: number, op: number): boolean {
  return b.length >= 39 && b[0] === type && b[1] === op;
}

function udp(to: Address): Deno.NetAddr {
  return { transport: "udp", hostname: to.ip, port: to.port };
}

function key(b: Uint8Array): string {
  return Array.from(b.subarray(3)).join(",");
}

/** The seq mapping of the sequence mutants: what went out for what. */
interface Flight {
  key: string;
  real: number;
  wire: number;
}

/** A daemon with at most one broken rule, and its own driver. */
export class MutantDaemon implements Driver {
  /** What the report calls it. */
  readonly label: string;
  /** The messages shown to the user since the last reset. */
  shown: string[] = [];
  #mutation: Mutation | undefined;
  #session: Session;
  #conn: Deno.DatagramConn;
  /** The socket it sends from: `#conn`, or another one for a mutant. */
  #sender: Deno.DatagramConn;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #loop: Promise<void>;
  #closed = false;
  // state of the mutations
  #lastIn: Uint8Array | undefined;
  #phaseBefore = "idle";
  #fromTimer = false;
  #lastOutErrTo: string | undefined;
  #flight: Flight | undefined;
  #chats = 0;
  #unacked: { seq: number; text: string } | undefined;
  #leaving = false;
  /** Whether the chat or invitation now going on is one the user started. */
  #initiated = false;
  /** Whether a crossed SYN is being answered (its SYN+ACKs are dropped). */
  #crossed = false;
  #lastOutChat: string | undefined;
  /** What the last inbound datagram made the engine do. */
  #acked = false;
  #delivered = false;

  /** Starts a daemon on `ip`:`port` with `timeoutMs`, broken by `mutation`. */
  constructor(
    ip: string,
    options: { mutation?: Mutation; timeoutMs: number; port?: number },
  ) {
    this.#mutation = options.mutation;
    this.label = `mutant ${options.mutation ?? "(none)"}`;
    this.#session = new Session({
      userName: "mutant",
      timeout: options.timeoutMs,
      autoAccept: options.mutation === "synack-before-accept",
      maxRetries: options.mutation === "gives-up-early" ? 2 : 5,
      busyAnswersPerSecond: 1000,
    });
    this.#conn = Deno.listenDatagram({
      hostname: ip,
      port: options.port ?? 7777,
      transport: "udp",
    });
    this.#sender = options.mutation === "sends-from-other-port"
      ? Deno.listenDatagram({ hostname: ip, port: 0, transport: "udp" })
      : this.#conn;
    this.#loop = this.#receive();
  }

  async #receive(): Promise<void> {
    for (;;) {
      let data: Uint8Array;
      let addr: Deno.Addr;
      try {
        [data, addr] = await this.#conn.receive();
      } catch {
        return;
      }
      const { hostname, port } = addr as Deno.NetAddr;
      this.#inbound(data, { ip: hostname, port });
    }
  }

  #inbound(input: Uint8Array, from: Address): void {
    let bytes: Uint8Array | undefined = input.slice();
    const m = this.#mutation;
    const status = this.#session.status();
    this.#phaseBefore = status.phase;
    const peer = status.peer;
    const fromPeer = peer !== undefined && peer.ip === from.ip &&
      peer.port === from.port;
    if (m === "accepts-short" && bytes.length < 39) {
      const padded = new Uint8Array(39);
      padded.set(bytes);
      bytes = padded;
    }
    if (m === "accepts-unknown-type" && bytes.length >= 39 && bytes[0] > 2) {
      bytes[0] = CONTROL;
    }
    if (
      m === "accepts-bad-operation" && bytes.length >= 39 &&
      bytes[0] === CONTROL && ![ERR, SYN, ACK, SYN_ACK, FIN].includes(bytes[1])
    ) {
      bytes[1] = SYN;
    }
    if (m === "accepts-bad-sequence" && bytes.length >= 39) bytes[2] &= 1;
    if (
      m === "accepts-empty-user" && isOp(bytes, CHAT, 0x01) &&
      new TextDecoder().decode(bytes.subarray(3, 35)).replace(/[\0 ]+$/, "") ===
        ""
    ) {
      bytes.set(new TextEncoder().encode("anon"), 3);
    }
    if (m === "accepts-bad-length" && bytes.length >= 39) {
      new DataView(bytes.buffer).setUint32(35, bytes.length - 39);
    }
    if (
      m === "third-address-accepted" && peer && !fromPeer &&
      !isOp(bytes, CONTROL, SYN)
    ) {
      from = peer;
    }
    if (
      m === "invited-ignores-third" && status.phase === "invited" &&
      !fromPeer && isOp(bytes, CONTROL, SYN)
    ) {
      bytes = undefined;
    }
    if (bytes && isOp(bytes, CONTROL, ACK) && fromPeer) {
      const f = this.#flight;
      if (f && (m === "seq-starts-at-1" || m === "shared-counter")) {
        bytes[2] = bytes[2] === f.wire ? f.real : 1 - f.real;
      }
      if (m === "any-ack-releases" && this.#unacked) {
        bytes[2] = this.#unacked.seq;
      }
      if (this.#unacked && bytes[2] === this.#unacked.seq) {
        this.#unacked = undefined;
      }
    }
    if (bytes === undefined) return;
    this.#lastIn = bytes;
    this.#acked = false;
    this.#delivered = false;
    this.#session.receive(bytes, from, performance.now());
    this.#flush();
    if (isOp(bytes, CHAT, 0x01) && this.#delivered) this.#chats++;
    if (
      m === "delivers-duplicates" && isOp(bytes, CHAT, 0x01) &&
      this.#acked && !this.#delivered
    ) {
      // The engine re-ACKed a duplicate without delivering it: show it.
      this.shown.push(new TextDecoder().decode(bytes.subarray(39)));
    }
  }

  #flush(): void {
    for (const action of this.#session.takeActions()) {
      if (action.type === "event") {
        if (action.event.type === "message") {
          this.shown.push(action.event.text);
          this.#delivered = true;
        }
      } else if (action.type === "transmit") {
        if (isOp(action.bytes, CONTROL, ACK)) this.#acked = true;
        const out = this.#outbound(action.bytes.slice(), action.to);
        const to = this.#mutation === "replies-to-7777"
          ? { ...action.to, port: 7777 }
          : action.to;
        if (out) {
          this.#sender.send(out, udp(to)).catch(
            () => {},
          );
        }
      }
    }
    if (this.#session.phase === "idle") {
      this.#flight = undefined;
      this.#unacked = undefined;
      this.#chats = 0;
      this.#leaving = false;
      this.#initiated = false;
      this.#crossed = false;
    }
    this.#schedule();
  }

  #outbound(b: Uint8Array, to: Address): Uint8Array | undefined {
    const m = this.#mutation;
    const toKey = `${to.ip}:${to.port}`;
    const lastIn = this.#lastIn;
    const before = this.#phaseBefore;
    const fromTimer = this.#fromTimer;
    const phase = this.#session.phase;
    const inChat = phase === "established";
    if (isOp(b, CONTROL, ERR)) this.#lastOutErrTo = toKey;
    else if (isOp(b, CONTROL, FIN) && this.#lastOutErrTo === toKey) {
      this.#lastOutErrTo = undefined;
      if (m === "no-fin-after-err" && inChat && this.#initiated) {
        return undefined;
      }
    }
    if (
      isOp(b, CONTROL, ERR) && (
        (m === "busy-text" && inChat && !this.#initiated) ||
        (m === "busy-text-while-inviting" && phase === "inviting")
      )
    ) {
      const text = new TextEncoder().encode("User is busy");
      const out = new Uint8Array(39 + text.length);
      out.set(b.subarray(0, 39));
      new DataView(out.buffer).setUint32(35, text.length);
      out.set(text, 39);
      return out;
    }
    if (isOp(b, CONTROL, ACK) && lastIn && !fromTimer) {
      if (m === "ack-wrong-seq" && isOp(lastIn, CHAT, 0x01)) b[2] = 1 - b[2];
      if (
        m === "fin-not-acked" && isOp(lastIn, CONTROL, FIN) &&
        before === "established"
      ) return undefined;
      if (
        m === "declined-inviter-no-ack" && isOp(lastIn, CONTROL, FIN) &&
        before === "inviting"
      ) return undefined;
      if (
        m === "initiator-no-ack" && isOp(lastIn, CONTROL, SYN_ACK) &&
        before === "inviting"
      ) return undefined;
    }
    if (isOp(b, CHAT, 0x01)) {
      const again = key(b) === this.#lastOutChat;
      this.#lastOutChat = key(b);
      if (m === "no-chat-retransmit" && again && fromTimer) return undefined;
    }
    if (fromTimer) {
      if (m === "no-syn-retransmit" && isOp(b, CONTROL, SYN)) return undefined;
      if (m === "no-synack-retransmit" && isOp(b, CONTROL, SYN_ACK)) {
        return undefined;
      }
    }
    if (
      m === "late-syn-ignored" && isOp(b, CONTROL, SYN_ACK) && !fromTimer &&
      before === "established"
    ) return undefined;
    if (m === "crossed-unanswered" && isOp(b, CONTROL, SYN_ACK)) {
      if (before === "inviting" && !fromTimer) this.#crossed = true;
      if (this.#crossed) return undefined;
    }
    if (m === "no-fin-on-leave" && this.#leaving && isOp(b, CONTROL, FIN)) {
      return undefined;
    }
    if (isOp(b, CHAT, 0x01)) {
      this.#unacked = {
        seq: b[2],
        text: new TextDecoder().decode(b.subarray(39)),
      };
    }
    const mapped = isOp(b, CHAT, 0x01) ||
      (isOp(b, CONTROL, FIN) && this.#flight !== undefined);
    if (mapped && (m === "seq-starts-at-1" || m === "shared-counter")) {
      const k = key(b);
      let f = this.#flight;
      if (f === undefined || f.key !== k) {
        const wire = m === "seq-starts-at-1" ? 1 - b[2] : this.#chats % 2;
        if (isOp(b, CHAT, 0x01)) this.#chats++;
        f = { key: k, real: b[2], wire };
        this.#flight = f;
      }
      b[2] = f.wire;
    }
    if (this.#unacked && isOp(b, CHAT, 0x01)) this.#unacked.seq = b[2];
    return b;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const at = this.#session.nextTimeout();
    if (at === undefined) return;
    this.#timer = setTimeout(() => {
      this.#fromTimer = true;
      this.#lastIn = undefined;
      try {
        this.#session.tick(performance.now());
        this.#flush();
      } finally {
        this.#fromTimer = false;
      }
    }, Math.max(0, at - performance.now()));
  }

  /** The driver protocol, in-process. */
  async request(request: DriverRequest): Promise<DriverReply> {
    const s = this.#session;
    try {
      switch (request.do) {
        case "reset":
          this.#lastIn = undefined;
          s.abort(performance.now());
          this.#flush();
          this.shown = [];
          return { ok: true };
        case "accept":
        case "decline": {
          const deadline = performance.now() + 3000;
          while (s.phase !== "invited" && performance.now() < deadline) {
            await new Promise((r) => setTimeout(r, 10));
          }
          this.#lastIn = undefined;
          if (request.do === "accept" || this.#mutation === "decline-accepts") {
            s.accept(performance.now());
          } else s.decline(performance.now());
          this.#flush();
          return { ok: true };
        }
        case "invite":
          this.#lastIn = undefined;
          this.#initiated = true;
          s.invite({ ip: request.ip, port: 7777 }, performance.now());
          this.#flush();
          return { ok: true };
        case "send": {
          this.#lastIn = undefined;
          const early = this.#unacked;
          s.send(request.text, performance.now());
          this.#flush();
          if (this.#mutation === "no-stop-and-wait" && early) {
            const peer = s.status().peer!;
            const text = new TextEncoder().encode(request.text);
            const out = new Uint8Array(39 + text.length);
            out[0] = CHAT;
            out[1] = 0x01;
            out[2] = 1 - early.seq;
            out.set(new TextEncoder().encode("mutant"), 3);
            new DataView(out.buffer).setUint32(35, text.length);
            out.set(text, 39);
            await this.#sender.send(out, udp(peer));
          }
          return { ok: true };
        }
        case "leave":
          this.#lastIn = undefined;
          if (this.#mutation === "no-fin-on-leave") this.#leaving = true;
          s.leave(performance.now());
          this.#flush();
          return { ok: true };
        case "shown":
          return { ok: true, shown: [...this.shown] };
      }
    } catch (error) {
      return {
        ok: false,
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }

  /** Stops it. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#conn.close();
    if (this.#sender !== this.#conn) this.#sender.close();
    await this.#loop;
  }
}
