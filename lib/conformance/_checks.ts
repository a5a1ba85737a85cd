/**
 * The checks of `simp conformance`, as data: an id, the rules of SPEC.md
 * it checks, a title, and a function of a {@linkcode Context}. Each check
 * judges one rule; what else it needs along the way (a handshake, an ACK
 * proving the chat still works) it takes leniently, so that one broken rule
 * fails one check. docs/CONFORMANCE.md describes every check in words.
 *
 * @module
 */

import {
  ACK,
  BUSY_TEXT,
  CHAT,
  chat,
  CHAT_OP,
  CONTROL,
  control,
  describe,
  encode,
  ERR,
  FIN,
  HEADER,
  SYN,
  SYN_ACK,
} from "./_codec.ts";
import {
  type Context,
  type Got,
  isKind,
  ms3,
  PEER_NAME,
  THIRD_NAME,
} from "./_context.ts";
import { type Endpoint, sleep } from "./_net.ts";

/** One check of the battery. */
export interface Check {
  /** Stable id, `group.name`. */
  id: string;
  /** The SPEC sections it checks, e.g. `§4.3 §3.3`. */
  spec: string;
  /** One line saying what it checks. */
  title: string;
  /** The check: returns to pass, throws Failure or Skip. */
  run(ctx: Context): Promise<void>;
}

/** Checks that a retransmission came one timeout (± tolerance) after `first`. */
function assertGap(ctx: Context, first: Got, again: Got, what: string): void {
  const { timeoutMs, toleranceMs } = ctx.timing;
  const gap = again.t - first.t;
  if (Math.abs(gap - timeoutMs) > toleranceMs) {
    ctx.fail(
      `${what} sent again ${ms3(timeoutMs)} ± ${
        ms3(toleranceMs)
      } after the previous one (§5.2)`,
      `it came again after ${ms3(gap)} (at +${ms3(again.t)})`,
    );
  }
}

/** The wait for a retransmission: a timeout, its tolerance, and an answer time. */
function retransmitWait(ctx: Context): number {
  const { timeoutMs, toleranceMs, answerMs } = ctx.timing;
  return timeoutMs + toleranceMs + answerMs;
}

/**
 * The target's next chat datagram with `text` (any Sequence), or a skip
 * when the user cannot send.
 */
async function userSends(
  ctx: Context,
  text: string,
  why = "a chat datagram with the user's message (§5.1)",
): Promise<Got> {
  await ctx.user({ do: "send", text });
  return await ctx.expect(
    ctx.peer,
    { type: CHAT, op: CHAT_OP, payload: text },
    why,
  );
}

/** ACKs a chat datagram of the target with its own Sequence (§3.2). */
async function ackIt(ctx: Context, ep: Endpoint, got: Got): Promise<void> {
  await ctx.sendControl(ep, ACK, got.d.seq);
}

/**
 * A SYN from `ep` while the target is busy in `role`: ERR with exactly the
 * busy text, then FIN, which is ACKed (§4.8).
 */
async function busyAnswer(
  ctx: Context,
  ep: Endpoint,
  role: string,
): Promise<void> {
  await ctx.sendControl(ep, SYN, 0);
  await ctx.expect(
    ep,
    { type: CONTROL, op: ERR, payload: BUSY_TEXT },
    `${role}, a SYN from a third address gets ERR with exactly this text (§4.8)`,
  );
  const fin = await ctx.expect(
    ep,
    { type: CONTROL, op: FIN },
    "FIN right after the ERR (§4.8)",
  );
  await ctx.sendControl(ep, ACK, fin.d.seq);
  ctx.disengage(ep);
}

/** The malformed variants of one rule of §2.1, at idle and in a chat. */
interface Malformed {
  /** SYN-like datagrams for an idle target. */
  idle: Uint8Array[];
  /** Chat-like datagrams for a target in a chat. */
  chat: Uint8Array[];
}

const P = PEER_NAME;
const T3 = THIRD_NAME;

const MALFORMED: Record<string, Malformed> = {
  short: {
    idle: [
      new Uint8Array(0),
      new Uint8Array([CONTROL]),
      control(SYN, 0, P).subarray(0, 38),
    ],
    chat: [
      chat(0, T3, "short").subarray(0, 38),
      chat(0, T3, "x").subarray(0, 20),
    ],
  },
  length: {
    idle: [
      encode({ type: CONTROL, op: SYN, seq: 0, user: P, length: 1 }),
      encode({
        type: CONTROL,
        op: SYN,
        seq: 0,
        user: P,
        payload: "x",
        length: 0,
      }),
      encode({ type: CONTROL, op: SYN, seq: 0, user: P, length: 0xffffffff }),
    ],
    chat: [
      encode({
        type: CHAT,
        op: CHAT_OP,
        seq: 0,
        user: T3,
        payload: "abc",
        length: 10,
      }),
      encode({
        type: CHAT,
        op: CHAT_OP,
        seq: 0,
        user: T3,
        payload: "abc",
        length: 2,
      }),
    ],
  },
  type: {
    idle: [0x00, 0x03, 0x80, 0xff].map((type) =>
      encode({ type, op: SYN, seq: 0, user: P })
    ),
    chat: [0x00, 0x03, 0xff].map((type) =>
      encode({ type, op: CHAT_OP, seq: 0, user: T3, payload: "type" })
    ),
  },
  operation: {
    idle: [0x00, 0x03, 0x05, 0x07, 0x09, 0x10, 0xff].map((op) =>
      encode({ type: CONTROL, op, seq: 0, user: P })
    ),
    chat: [0x00, 0x02, 0x04].map((op) =>
      encode({ type: CHAT, op, seq: 0, user: T3, payload: "operation" })
    ),
  },
  sequence: {
    idle: [2, 0x80, 0xff].map((seq) =>
      encode({ type: CONTROL, op: SYN, seq, user: P })
    ),
    chat: [2, 3, 0xff].map((seq) =>
      encode({ type: CHAT, op: CHAT_OP, seq, user: T3, payload: "sequence" })
    ),
  },
};

/** A malformed-datagram check for one rule of §2.1. */
function malformedCheck(rule: string, title: string): Check {
  return {
    id: `malformed.${rule}`,
    spec: "§2.1",
    title,
    async run(ctx) {
      const { idle, chat: inChat } = MALFORMED[rule];
      for (const bytes of idle) await ctx.send(ctx.peer, bytes);
      await ctx.quiet(
        ctx.peer,
        ctx.timing.quietMs,
        "no answer to a malformed datagram (§2.1)",
        { repeats: false },
      );
      // Nothing started: a valid SYN from elsewhere is not answered busy.
      await ctx.sendControl(ctx.third, SYN, 0);
      const early = await ctx.next(ctx.third, ctx.timing.quietMs, "answer");
      if (early !== undefined && isKind(early.d, CONTROL, ERR)) {
        ctx.fail(
          "a malformed datagram starts nothing (§2.1): a later SYN from another address is not busy",
          `got ${
            describe(early.bytes)
          }: the malformed datagrams started an invitation or a chat`,
        );
      }
      if (early === undefined) {
        if (!await ctx.acceptWhileResending(ctx.third)) {
          ctx.note(
            "malformed chat datagrams not sent (nobody can accept an invitation)",
          );
          return;
        }
        await ctx.expect(
          ctx.third,
          { type: CONTROL, op: SYN_ACK },
          "SYN+ACK once the user accepted (§4.3)",
        );
      } else if (!isKind(early.d, CONTROL, SYN_ACK)) {
        ctx.fail("SYN+ACK or no answer to a valid SYN", describe(early.bytes));
      }
      await ctx.sendControl(ctx.third, ACK, 0);
      for (const bytes of inChat) await ctx.send(ctx.third, bytes);
      await ctx.quiet(
        ctx.third,
        ctx.timing.quietMs,
        "no ACK of a malformed chat datagram (§2.1)",
      );
      await ctx.sendChat(ctx.third, "valid");
      await ctx.expect(
        ctx.third,
        { type: CONTROL, op: ACK },
        "an ACK of the valid chat datagram that follows",
      );
      await ctx.expectShown(
        ["valid"],
        "malformed datagrams never reach the user (§2.1)",
      );
    },
  };
}

/** Every check, in the order they run. */
export const CHECKS: readonly Check[] = [
  {
    id: "handshake.syn-answered",
    spec: "§4.3 §4.4 §4.8 §1.4 §2",
    title:
      "a SYN is answered with SYN+ACK, FIN, or ERR then FIN: valid 39-byte headers from the target's SIMP port",
    async run(ctx) {
      const { peer, target } = ctx;
      await ctx.sendControl(peer, SYN, 0);
      let answer = await ctx.next(peer, ctx.timing.quietMs, "answer to SYN");
      if (answer === undefined) {
        if (!await ctx.acceptWhileResending(peer)) {
          await ctx.sendControl(peer, FIN, 0);
          ctx.disengage(peer);
          ctx.skip(
            "no answer: the target waits for its user (§4.2); give --driver CMD or --interactive, or let it accept by itself (§4.9)",
          );
        }
        answer = await ctx.next(peer, ctx.timing.answerMs, "answer to SYN");
      }
      const expected =
        `SYN+ACK, FIN, or ERR then FIN from ${target.hostname}:${target.port} (§4.3, §4.4, §4.8, §1.4)`;
      if (answer === undefined) return ctx.fail(expected, "nothing came");
      if (answer.from.port !== target.port) {
        ctx.fail(
          expected,
          `${
            describe(answer.bytes)
          } came from port ${answer.from.port}: a daemon sends everything from its SIMP socket (§1.4)`,
        );
      }
      const d = answer.d;
      if (isKind(d, CONTROL, SYN_ACK) || isKind(d, CONTROL, FIN)) {
        if (answer.bytes.length !== HEADER || d.seq !== 0) {
          ctx.fail(
            `${expected}: a bare 39-byte header with Sequence 0 (§3.3)`,
            describe(answer.bytes),
          );
        }
        await ctx.sendControl(peer, ACK, 0);
        if (isKind(d, CONTROL, FIN)) ctx.disengage(peer);
        return;
      }
      if (isKind(d, CONTROL, ERR)) {
        const fin = await ctx.expect(
          peer,
          { type: CONTROL, op: FIN },
          "FIN after ERR (§4.8)",
        );
        await ctx.sendControl(peer, ACK, fin.d.seq);
        ctx.disengage(peer);
        return;
      }
      ctx.fail(expected, `got ${describe(answer.bytes)}`);
    },
  },
  {
    id: "handshake.accept-first",
    spec: "§4.2 §4.3 §4.5",
    title:
      "no answer to a SYN (nor to its repetition) until the user accepts; then SYN+ACK with Sequence 0",
    async run(ctx) {
      ctx.requires("accept");
      const { peer } = ctx;
      const { timeoutMs, toleranceMs } = ctx.timing;
      await ctx.sendControl(peer, SYN, 0);
      await ctx.quiet(
        peer,
        timeoutMs / 2,
        "no answer until the user decides (§4.2)",
      );
      await ctx.sendControl(peer, SYN, 0); // a waiting inviter repeats it
      await ctx.quiet(
        peer,
        timeoutMs / 2 + toleranceMs,
        "no answer to a repeated SYN until the user decides (§4.2, §4.5)",
      );
      if (!await ctx.acceptWhileResending(peer)) {
        ctx.skip(
          "needs the target's user to accept: give --driver CMD or --interactive",
        );
      }
      await ctx.expect(
        peer,
        { type: CONTROL, op: SYN_ACK, seq: 0 },
        "SYN+ACK once the user accepted (§4.3, §3.3)",
      );
      await ctx.sendControl(peer, ACK, 0);
      await ctx.stillChatting(peer, "an ACK: the chat is established (§4.3)");
    },
  },
  {
    id: "handshake.decline",
    spec: "§4.4",
    title:
      "when the user declines: FIN with Sequence 0, never SYN+ACK; nothing more once ACKed",
    async run(ctx) {
      ctx.requires("decline");
      const { peer } = ctx;
      await ctx.sendControl(peer, SYN, 0);
      const early = await ctx.next(peer, ctx.timing.quietMs, "answer");
      if (early !== undefined) {
        ctx.skip(
          `the target answered ${
            describe(early.bytes)
          } before its user decided (see handshake.accept-first)`,
        );
      }
      await ctx.user({ do: "decline" });
      await ctx.expect(
        peer,
        { type: CONTROL, op: FIN, seq: 0 },
        "FIN, not SYN+ACK, when the user declines (§4.4, §3.3)",
      );
      await ctx.sendControl(peer, ACK, 0);
      ctx.disengage(peer);
      await sleep(50);
      ctx.peer.drain();
      await ctx.quiet(
        peer,
        ctx.timing.timeoutMs + ctx.timing.toleranceMs,
        "nothing once the declining FIN is ACKed (§4.4)",
        { repeats: false },
      );
    },
  },
  {
    id: "handshake.initiator",
    spec: "§4.1 §4.3 §3.3",
    title:
      "as initiator: SYN (Sequence 0, bare header), then ACK with Sequence 0 after our SYN+ACK",
    async run(ctx) {
      const { peer } = ctx;
      const syn = await ctx.outbound(peer, { answer: false });
      if (syn.d.seq !== 0 || syn.bytes.length !== HEADER) {
        ctx.fail(
          "SYN with Sequence 0 and no payload (§3.3)",
          describe(syn.bytes),
        );
      }
      await ctx.sendControl(peer, SYN_ACK, 0);
      await ctx.expect(
        peer,
        { type: CONTROL, op: ACK, seq: 0 },
        "ACK with Sequence 0 after our SYN+ACK (§4.3, §3.3)",
      );
      await ctx.stillChatting(peer, "an ACK: the chat is established (§4.3)");
    },
  },
  {
    id: "handshake.syn-retransmit",
    spec: "§4.5 §5.2",
    title: "as initiator: an unanswered SYN is sent again every timeout",
    async run(ctx) {
      const { peer } = ctx;
      const first = await ctx.outbound(peer, { answer: false });
      let previous = first;
      for (const n of [1, 2]) {
        const again = await ctx.expect(
          peer,
          { type: CONTROL, op: SYN, seq: 0 },
          `the SYN sent again (${n}) while unanswered (§4.5)`,
          retransmitWait(ctx),
        );
        assertGap(ctx, previous, again, "SYN");
        previous = again;
      }
      await ctx.sendControl(peer, SYN_ACK, 0);
    },
  },
  {
    id: "handshake.declined-inviter",
    spec: "§4.4",
    title:
      "as initiator: a FIN instead of SYN+ACK is ACKed with its Sequence, and the SYN stops",
    async run(ctx) {
      const { peer } = ctx;
      await ctx.outbound(peer, { answer: false });
      await ctx.sendControl(peer, FIN, 0);
      await ctx.expect(
        peer,
        { type: CONTROL, op: ACK, seq: 0 },
        "ACK of the declining FIN (§4.4)",
      );
      ctx.disengage(peer);
      await ctx.quiet(
        peer,
        ctx.timing.timeoutMs + ctx.timing.toleranceMs,
        "no SYN after the decline (§4.4)",
        { repeats: false },
      );
    },
  },
  {
    id: "handshake.synack-retransmit",
    spec: "§4.5",
    title: "after accepting: SYN+ACK is sent again every timeout until the ACK",
    async run(ctx) {
      const { peer } = ctx;
      const first = await ctx.inbound(peer, { ack: false });
      const again = await ctx.expect(
        peer,
        { type: CONTROL, op: SYN_ACK, seq: 0 },
        "SYN+ACK sent again while its ACK is missing (§4.5)",
        retransmitWait(ctx),
      );
      assertGap(ctx, first, again, "SYN+ACK");
      await ctx.sendControl(peer, ACK, 0);
    },
  },
  {
    id: "handshake.late-syn",
    spec: "§4.5",
    title:
      "a SYN from the partner of an established chat is answered SYN+ACK again, never busy",
    async run(ctx) {
      const { peer } = ctx;
      await ctx.inbound(peer);
      await ctx.sendControl(peer, SYN, 0);
      await ctx.expect(
        peer,
        { type: CONTROL, op: SYN_ACK, seq: 0 },
        "SYN+ACK again to the partner's late SYN (§4.5)",
      );
      await ctx.sendControl(peer, ACK, 0);
      await ctx.stillChatting(peer, "an ACK: the chat goes on");
    },
  },
  {
    id: "handshake.crossed",
    spec: "§4.7",
    title:
      "crossed invitations: a SYN from the daemon it is inviting gets SYN+ACK, never busy",
    async run(ctx) {
      const { peer } = ctx;
      await ctx.outbound(peer, { answer: false });
      await ctx.sendControl(peer, SYN, 0);
      await ctx.expect(
        peer,
        { type: CONTROL, op: SYN_ACK, seq: 0 },
        "SYN+ACK to the SYN of the daemon it is inviting (§4.7)",
      );
      await ctx.sendControl(peer, ACK, 0);
      await ctx.stillChatting(peer, "an ACK: the chat is established (§4.7)");
    },
  },
  {
    id: "handshake.reply-to-source",
    spec: "§1.4",
    title:
      "a chat started from another port than 7777 is answered at that port, never at 7777",
    async run(ctx) {
      const { ephemeral, peer } = ctx;
      try {
        await ctx.inbound(ephemeral);
      } catch (error) {
        const wrong = peer.drain()[0];
        if (wrong === undefined) throw error;
        ctx.fail(
          `the answer to a SYN from port ${ephemeral.addr.port} at that port (§1.4)`,
          `${describe(wrong.bytes)} went to port ${peer.addr.port} at +${
            ms3(wrong.t)
          }`,
        );
      }
      await ctx.sendChat(ephemeral, "from another port");
      await ctx.expect(
        ephemeral,
        { type: CONTROL, op: ACK },
        "an ACK at the port the chat datagram came from (§1.4)",
      );
      await ctx.quiet(peer, 0, `nothing at port ${peer.addr.port} (§1.4)`);
    },
  },
  {
    id: "busy.responder",
    spec: "§4.8",
    title:
      `in a chat it accepted, a SYN from a third address gets ERR "${BUSY_TEXT}" then FIN; the chat goes on`,
    async run(ctx) {
      const { peer, third } = ctx;
      await ctx.inbound(peer);
      await busyAnswer(ctx, third, "in a chat it accepted");
      await ctx.stillChatting(peer, "an ACK: the chat goes on (§4.8)");
    },
  },
  {
    id: "busy.initiator",
    spec: "§4.8",
    title:
      `in a chat it started, a SYN from a third address gets ERR "${BUSY_TEXT}" then FIN; the chat goes on`,
    async run(ctx) {
      const { peer, third } = ctx;
      await ctx.outbound(peer);
      await busyAnswer(ctx, third, "in a chat it started");
      await ctx.stillChatting(peer, "an ACK: the chat goes on (§4.8)");
    },
  },
  {
    id: "busy.invited",
    spec: "§4.8 §4.2",
    title:
      "with an invitation pending, a SYN from a third address gets the busy ERR then FIN; the invitation stays",
    async run(ctx) {
      const { peer, third } = ctx;
      await ctx.sendControl(peer, SYN, 0);
      const early = await ctx.next(peer, ctx.timing.quietMs, "answer");
      if (early !== undefined) {
        ctx.skip(
          `the target answered ${
            describe(early.bytes)
          } at once, so no invitation is pending (it accepts by itself)`,
        );
      }
      await busyAnswer(ctx, third, "with an invitation pending");
      await ctx.quiet(peer, 0, "nothing to the pending inviter");
      if (!await ctx.acceptWhileResending(peer)) {
        ctx.note(
          "whether the invitation stayed is not checked (nobody can accept)",
        );
        return;
      }
      await ctx.expect(
        peer,
        { type: CONTROL, op: SYN_ACK },
        "SYN+ACK to the invitation that stayed pending (§4.8)",
      );
      await ctx.sendControl(peer, ACK, 0);
    },
  },
  {
    id: "busy.inviting",
    spec: "§4.8",
    title:
      "while inviting, a SYN from a third address gets the busy ERR then FIN; the invitation goes on",
    async run(ctx) {
      const { peer, third } = ctx;
      await ctx.outbound(peer, { answer: false });
      await busyAnswer(ctx, third, "while inviting");
      await ctx.sendControl(peer, SYN_ACK, 0);
      // Its ACK is judged by handshake.initiator; a chat datagram of ours
      // implies it (§4.3).
      await ctx.stillChatting(
        peer,
        "an ACK of our chat datagram: the invitation went on (§4.8)",
      );
    },
  },
  {
    id: "chat.inbound-ack",
    spec: "§5.3 §3.2",
    title:
      "our chat datagrams (Sequence 0, 1, 0) are each ACKed with their own Sequence and shown in order",
    async run(ctx) {
      const { peer } = ctx;
      await ctx.inbound(peer);
      const texts = ["one", "two", "three"];
      for (const text of texts) {
        const seq = await ctx.sendChat(peer, text);
        await ctx.expect(
          peer,
          { type: CONTROL, op: ACK, seq },
          `ACK with the chat datagram's Sequence ${seq} (§3.2, §5.3)`,
        );
      }
      await ctx.expectShown(texts, "delivered in order, once (§5.3)");
    },
  },
  {
    id: "chat.duplicate",
    spec: "§5.3",
    title: "an exact duplicate chat datagram is ACKed again and shown once",
    async run(ctx) {
      const { peer } = ctx;
      await ctx.inbound(peer);
      for (const text of ["hello", "world"]) {
        const seq = await ctx.sendChat(peer, text);
        await ctx.expect(peer, { type: CONTROL, op: ACK }, "an ACK (§5.3)");
        await ctx.send(peer, chat(seq, PEER_NAME, text));
        await ctx.expect(
          peer,
          { type: CONTROL, op: ACK },
          "the duplicate ACKed again (§5.3)",
        );
      }
      await ctx.expectShown(
        ["hello", "world"],
        "a duplicate is shown once (§5.3)",
      );
    },
  },
  {
    id: "chat.outbound",
    spec: "§3.1 §3.2",
    title:
      "the target's chat datagrams carry Sequence 0, 1, 0 and the user's text; each waits for our ACK",
    async run(ctx) {
      ctx.requires("send");
      const { peer } = ctx;
      await ctx.inbound(peer);
      let want = 0;
      for (const text of ["m1", "m2", "m3"]) {
        const got = await userSends(ctx, text);
        if (got.d.seq !== want) {
          ctx.fail(
            `the target's chat datagrams carry Sequence 0, 1, 0 (§3.1): ${text} with ${want}`,
            `${text} came with Sequence ${got.d.seq}`,
          );
        }
        await ackIt(ctx, peer, got);
        want = 1 - want;
      }
    },
  },
  {
    id: "chat.stop-and-wait",
    spec: "§5.1",
    title:
      "nothing new is sent while a chat datagram is unACKed; the next one follows our ACK",
    async run(ctx) {
      ctx.requires("send");
      const { peer } = ctx;
      await ctx.inbound(peer);
      const first = await userSends(ctx, "first");
      await ctx.user({ do: "send", text: "second" });
      await ctx.quiet(
        peer,
        ctx.timing.timeoutMs + ctx.timing.toleranceMs,
        "nothing new while the first is unACKed (§5.1); resending it is allowed",
      );
      await ackIt(ctx, peer, first);
      const second = await ctx.expect(
        peer,
        { type: CHAT, op: CHAT_OP, payload: "second" },
        "the second message once the first is ACKed (§5.1)",
      );
      await ackIt(ctx, peer, second);
    },
  },
  {
    id: "chat.retransmit",
    spec: "§5.2",
    title:
      "an unACKed chat datagram is sent again unchanged every timeout, and no more once ACKed",
    async run(ctx) {
      ctx.requires("send");
      const { peer } = ctx;
      await ctx.inbound(peer);
      const first = await userSends(ctx, "again?");
      let previous = first;
      for (const n of [1, 2]) {
        const again = await ctx.expect(
          peer,
          { type: CHAT, op: CHAT_OP, payload: "again?" },
          `the chat datagram sent again (${n}) while unACKed (§5.2)`,
          retransmitWait(ctx),
        );
        if (again.d.seq !== first.d.seq) {
          ctx.fail(
            "the same datagram, same Sequence (§5.2)",
            `Sequence ${first.d.seq}, then ${again.d.seq}`,
          );
        }
        assertGap(ctx, previous, again, "the chat datagram");
        previous = again;
      }
      await ackIt(ctx, peer, first);
      await sleep(50); // one may have crossed our ACK
      peer.drain();
      await ctx.quiet(
        peer,
        ctx.timing.timeoutMs + ctx.timing.toleranceMs,
        "no retransmission once ACKed (§5.2)",
        { repeats: false },
      );
    },
  },
  {
    id: "chat.give-up",
    spec: "§5.5",
    title:
      "never ACKed, a chat datagram is given up after the configured retransmissions: one FIN, then nothing",
    async run(ctx) {
      ctx.requires("send");
      const { peer } = ctx;
      const { retries, timeoutMs, toleranceMs, answerMs } = ctx.timing;
      await ctx.inbound(peer);
      const first = await userSends(ctx, "anyone there?");
      // The retransmissions themselves are chat.retransmit's; here only
      // when the FIN comes: after 1 + retries timeouts (§5.2, §5.5).
      const due = (retries + 1) * timeoutMs;
      const slack = toleranceMs + timeoutMs / 2;
      const fin = await ctx.expect(
        peer,
        { type: CONTROL, op: FIN },
        `one FIN when the peer is given up, ${retries} retransmissions (--retries) after the first sending (§5.5)`,
        due + slack + answerMs,
      );
      const after = fin.t - first.t;
      if (Math.abs(after - due) > slack) {
        ctx.fail(
          `the FIN ${ms3(due)} ± ${
            ms3(slack)
          } after the first sending: ${retries} retransmissions, a timeout apart, then one more timeout (§5.5)`,
          `it came after ${ms3(after)}`,
        );
      }
      ctx.disengage(peer);
      await ctx.quiet(
        peer,
        2 * timeoutMs + toleranceMs,
        "nothing after the FIN of a lost peer: it is sent once (§5.5)",
        { repeats: false },
      );
    },
  },
  {
    id: "chat.wrong-ack",
    spec: "§5.4",
    title:
      "an ACK with the wrong Sequence, or a late duplicate ACK, does not release the next datagram",
    async run(ctx) {
      ctx.requires("send");
      const { peer } = ctx;
      const { timeoutMs, toleranceMs, quietMs } = ctx.timing;
      await ctx.inbound(peer);
      const m1 = await userSends(ctx, "m1");
      await ctx.user({ do: "send", text: "m2" });
      await ctx.user({ do: "send", text: "m3" });
      const before = await ctx.watch(peer, quietMs, "m1 alone");
      if (before.some((g) => !g.repeat)) {
        ctx.skip(
          "the target sent more before m1 was ACKed, so a wrong ACK cannot be told apart (see chat.stop-and-wait)",
        );
      }
      await ctx.sendControl(peer, ACK, 1 - m1.d.seq);
      await ctx.quiet(
        peer,
        timeoutMs + toleranceMs,
        `m2 held back after an ACK with Sequence ${1 - m1.d.seq} (§5.4)`,
      );
      await ackIt(ctx, peer, m1);
      const m2 = await ctx.expect(
        peer,
        { type: CHAT, op: CHAT_OP, payload: "m2" },
        "m2 once m1 is ACKed",
      );
      if (m2.d.seq === m1.d.seq) {
        ctx.note(
          "the late duplicate ACK is not sent (m1 and m2 have the same Sequence)",
        );
      } else {
        await ctx.sendControl(peer, ACK, m1.d.seq); // m1's ACK again, late
        await ctx.quiet(
          peer,
          timeoutMs + toleranceMs,
          "m3 held back after a late duplicate of m1's ACK (§5.4)",
        );
      }
      await ackIt(ctx, peer, m2);
      const m3 = await ctx.expect(
        peer,
        { type: CHAT, op: CHAT_OP, payload: "m3" },
        "m3 once m2 is ACKed",
      );
      await ackIt(ctx, peer, m3);
    },
  },
  {
    id: "chat.interleaved",
    spec: "§3.1",
    title:
      "each direction has its own Sequence bit: the target's alternate with our messages in between",
    async run(ctx) {
      ctx.requires("send");
      const { peer } = ctx;
      await ctx.inbound(peer);
      const a = await userSends(ctx, "a");
      await ackIt(ctx, peer, a);
      for (
        const [mine, theirs, want] of [
          [["x"], "b", 1 - a.d.seq],
          [["y", "z"], "c", a.d.seq],
        ] as const
      ) {
        for (const text of mine) {
          await ctx.sendChat(peer, text);
          await ctx.expect(peer, { type: CONTROL, op: ACK }, "an ACK");
        }
        const got = await userSends(ctx, theirs);
        if (got.d.seq !== want) {
          ctx.fail(
            `the target's own bit alternates whatever we send (§3.1): ${theirs} with Sequence ${want}`,
            `${theirs} came with Sequence ${got.d.seq}`,
          );
        }
        await ackIt(ctx, peer, got);
      }
      await ctx.expectShown(
        ["x", "y", "z"],
        "our messages shown in order (§3.1)",
      );
    },
  },
  {
    id: "teardown.fin-acked",
    spec: "§6.1 §6.2 §3.3",
    title:
      "our FIN is ACKed with its Sequence, a duplicate FIN is ACKed again, and the target is free",
    async run(ctx) {
      const { peer, third } = ctx;
      await ctx.inbound(peer);
      await ctx.sendChat(peer, "bye soon");
      await ctx.expect(peer, { type: CONTROL, op: ACK }, "an ACK");
      const seq = 1; // our next chat bit (§3.3)
      await ctx.sendControl(peer, FIN, seq);
      await ctx.expect(
        peer,
        { type: CONTROL, op: ACK, seq },
        `ACK of our FIN with its Sequence ${seq} (§6.1, §3.3)`,
      );
      ctx.disengage(peer);
      await ctx.sendControl(peer, FIN, seq);
      await ctx.expect(
        peer,
        { type: CONTROL, op: ACK, seq },
        "the duplicate FIN ACKed again (§6.2)",
      );
      ctx.disengage(peer);
      await ctx.sendControl(third, SYN, 0);
      const answer = await ctx.next(third, ctx.timing.quietMs, "answer");
      if (answer !== undefined && isKind(answer.d, CONTROL, ERR)) {
        ctx.fail(
          "the target free after the FIN (§6.1): a new SYN is not busy",
          `got ${describe(answer.bytes)}`,
        );
      }
    },
  },
  {
    id: "teardown.leave",
    spec: "§6.1 §3.3",
    title:
      "when the user leaves: FIN with the next chat Sequence, sent again until ACKed",
    async run(ctx) {
      ctx.requires("leave");
      const { peer } = ctx;
      await ctx.inbound(peer);
      let want = 0;
      if (await ctx.tryUser({ do: "send", text: "last words" })) {
        const last = await ctx.expect(
          peer,
          { type: CHAT, op: CHAT_OP, payload: "last words" },
          "the user's message",
        );
        await ackIt(ctx, peer, last);
        want = 1 - last.d.seq;
      }
      await ctx.user({ do: "leave" });
      const fin = await ctx.expect(
        peer,
        { type: CONTROL, op: FIN, seq: want },
        `FIN with the next chat Sequence ${want} when the user leaves (§6.1, §3.3)`,
      );
      await ctx.expect(
        peer,
        { type: CONTROL, op: FIN, seq: fin.d.seq },
        "the FIN sent again while unACKed (§6.1)",
        retransmitWait(ctx),
      );
      await ctx.sendControl(peer, ACK, fin.d.seq);
      ctx.disengage(peer);
      await sleep(50);
      peer.drain();
      await ctx.quiet(
        peer,
        ctx.timing.timeoutMs + ctx.timing.toleranceMs,
        "nothing once the FIN is ACKed (§6.1)",
        { repeats: false },
      );
    },
  },
  malformedCheck(
    "short",
    "datagrams shorter than 39 bytes are not answered, start nothing, reach no user",
  ),
  malformedCheck(
    "length",
    "a Length that does not match the payload: not answered, starts nothing, reaches no user",
  ),
  malformedCheck(
    "type",
    "an unknown Type: not answered, starts nothing, reaches no user",
  ),
  malformedCheck(
    "operation",
    "an Operation not listed for its Type: not answered, starts nothing, reaches no user",
  ),
  malformedCheck(
    "sequence",
    "a Sequence other than 0 or 1: not answered, starts nothing, reaches no user",
  ),
  {
    id: "malformed.empty-user",
    spec: "§2.2",
    title:
      "a chat datagram with an empty User field is not ACKed and reaches no user",
    async run(ctx) {
      const { peer } = ctx;
      await ctx.inbound(peer);
      await ctx.send(peer, chat(0, "", "nameless"));
      await ctx.send(peer, chat(0, "   ", "spaces only"));
      await ctx.quiet(peer, ctx.timing.quietMs, "no ACK (§2.2)");
      await ctx.sendChat(peer, "named");
      await ctx.expect(peer, { type: CONTROL, op: ACK }, "an ACK");
      await ctx.expectShown(["named"], "only the valid one is shown (§2.2)");
    },
  },
  {
    id: "third.address",
    spec: "§7.1",
    title:
      "chat datagrams, ACKs and FINs from a third address are neither ACKed, shown, nor taken as the partner's",
    async run(ctx) {
      const { peer, third } = ctx;
      await ctx.inbound(peer);
      for (const seq of [0, 1]) {
        await ctx.send(third, chat(seq, THIRD_NAME, `intruder ${seq}`));
      }
      await ctx.quiet(
        third,
        ctx.timing.quietMs,
        "no ACK to a third address (§7.1)",
      );
      if (await ctx.tryUser({ do: "send", text: "for the partner" })) {
        const m1 = await ctx.expect(
          peer,
          { type: CHAT, op: CHAT_OP, payload: "for the partner" },
          "the user's message",
        );
        await ctx.user({ do: "send", text: "next" });
        const held = await ctx.watch(peer, ctx.timing.quietMs, "held");
        if (held.some((g) => !g.repeat)) {
          ctx.note(
            "a third ACK's effect is not checked (see chat.stop-and-wait)",
          );
        } else {
          await ctx.send(third, control(ACK, m1.d.seq, THIRD_NAME));
          await ctx.quiet(
            peer,
            ctx.timing.quietMs,
            "the next message held back: an ACK from a third address releases nothing (§7.1)",
          );
        }
        await ackIt(ctx, peer, m1);
        const next = await ctx.expect(
          peer,
          { type: CHAT, op: CHAT_OP, payload: "next" },
          "the next message",
        );
        await ackIt(ctx, peer, next);
      }
      for (const seq of [0, 1]) {
        await ctx.send(third, control(FIN, seq, THIRD_NAME));
      }
      await ctx.quiet(
        third,
        ctx.timing.quietMs,
        "no ACK of a third FIN (§7.1)",
      );
      await ctx.sendChat(peer, "from the partner");
      await ctx.expect(
        peer,
        { type: CONTROL, op: ACK },
        "an ACK: a third FIN does not end the chat (§7.1)",
      );
      await ctx.expectShown(
        ["from the partner"],
        "only the partner's messages are shown (§7.1)",
      );
    },
  },
];
