/**
 * One side of the concurrent-chats benchmark (bench/e2e.ts): N program
 * clients ({@linkcode connect}) in one process, one per daemon, either all
 * sending or all receiving, so that N chats run at once.
 *
 * ```sh
 * deno run --allow-net bench/_load.ts receive COUNT IP,IP,…
 * deno run --allow-net bench/_load.ts send COUNT IP,IP,… PEER_IP,PEER_IP,…
 * ```
 *
 * The receiver connects to every daemon, accepts every invitation, prints
 * `ready`, and prints one JSON line once every chat has brought COUNT
 * messages (or a chat ended or a client was dropped: then it says so). The
 * sender connects to every daemon, invites the i-th peer from the i-th
 * daemon, prints `ready` once every chat is established, and on a line of
 * stdin sends COUNT messages in every chat at once (each pipelined within
 * `limits.queue`), then prints one JSON line.
 *
 * Before the measured COUNT messages, every chat carries
 * {@linkcode WARMUP} messages (so that the daemons' code is compiled, as
 * in a long-running daemon); the sender prints `warm` after them and waits
 * for a second line of stdin. Message texts are `phase:seq:` (phase `w` or
 * `t`) padded with `x` to 100 characters, so the receiver checks that each
 * chat brought every message once, in order.
 *
 * @module
 */

import { type Chat, connect } from "../lib/user/program.ts";
import { nowMs } from "./_measure.ts";

/** Messages per chat before the measured ones. */
const WARMUP = 200;

function text(phase: string, seq: number): string {
  return `${phase}:${seq}:`.padEnd(100, "x");
}

/** What one chat of the receiver saw. */
interface Received {
  count: number;
  outOfOrder: number;
  ended: string | undefined;
}

async function receive(count: number, ips: string[]): Promise<void> {
  const chats = await Promise.all(
    ips.map((ip, i) => connect(ip, { name: `recv${i}` })),
  );
  console.log("ready");
  let firstAt = Infinity;
  const results = await Promise.all(chats.map(async (chat) => {
    const seen: Received = { count: 0, outOfOrder: 0, ended: undefined };
    let warm = 0;
    for await (const event of chat.events) {
      if (event.type === "invitation") {
        await chat.accept();
      } else if (event.type === "message") {
        const [phase, seq] = event.text.split(":");
        if (phase === "w") {
          if (Number(seq) !== warm++) seen.outOfOrder++;
          continue;
        }
        firstAt = Math.min(firstAt, nowMs());
        if (Number(seq) !== seen.count || warm !== WARMUP) seen.outOfOrder++;
        if (++seen.count === count) break;
      } else if (
        event.type === "peer-left" || event.type === "peer-lost" ||
        event.type === "chat-closed" || event.type === "daemon-stopping"
      ) {
        seen.ended = event.type;
        break;
      }
    }
    if (seen.ended === undefined && chat.closed) seen.ended = "disconnected";
    return seen;
  }));
  const lastAt = nowMs();
  console.log(JSON.stringify({
    firstAt,
    lastAt,
    chats: results.length,
    received: results.reduce((sum, r) => sum + r.count, 0),
    complete: results.filter((r) => r.count === count).length,
    outOfOrder: results.reduce((sum, r) => sum + r.outOfOrder, 0),
    ended: results.filter((r) => r.ended !== undefined).map((r) => r.ended),
  }));
  await Promise.all(chats.map((chat) => chat.close()));
}

async function started(chat: Chat): Promise<void> {
  for await (const event of chat.events) {
    if (event.type === "chat-started") return;
    if (
      event.type === "declined" || event.type === "busy" ||
      event.type === "no-answer"
    ) {
      throw new Error(`An invitation failed: ${event.type}`);
    }
  }
  throw new Error(`The daemon at ${chat.daemon} went away`);
}

let retransmissions = 0;

/** Reads the events of `chat` until it closes, counting retransmissions. */
async function drain(chat: Chat): Promise<void> {
  for await (const event of chat.events) {
    // The send promises carry the outcomes.
    if (event.type === "retransmitted") retransmissions++;
  }
}

async function sendAll(
  chat: Chat,
  phase: string,
  count: number,
): Promise<number> {
  const outstanding: Promise<void>[] = [];
  let failed = 0;
  const window = 2 * chat.limits.queue;
  for (let seq = 0; seq < count; seq++) {
    if (outstanding.length >= window) await outstanding.shift();
    outstanding.push(
      chat.send(text(phase, seq)).catch(() => void failed++),
    );
  }
  await Promise.all(outstanding);
  return failed;
}

async function send(
  count: number,
  ips: string[],
  peers: string[],
): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  const chats = await Promise.all(
    ips.map((ip, i) => connect(ip, { name: `send${i}` })),
  );
  await Promise.all(chats.map(async (chat, i) => {
    const starting = started(chat);
    await chat.invite(peers[i]);
    await starting;
  }));
  const draining = chats.map(drain);
  console.log("ready");
  await reader.read();
  const failedWarm = await Promise.all(
    chats.map((chat) => sendAll(chat, "w", WARMUP)),
  );
  if (failedWarm.some((n) => n > 0)) throw new Error("Warm-up sends failed");
  console.log("warm");
  await reader.read();
  const t0 = nowMs();
  const failed = await Promise.all(
    chats.map((chat) => sendAll(chat, "t", count)),
  );
  const t1 = nowMs();
  console.log(JSON.stringify({
    t0,
    allDeliveredAt: t1,
    failed: failed.reduce((a, b) => a + b, 0),
    dropped: chats.filter((chat) => chat.closed).length,
    retransmissions,
  }));
  await Promise.all(chats.map((chat) => chat.close()));
  await Promise.all(draining);
}

if (import.meta.main) {
  const [role, count, ips, peers] = Deno.args;
  if (role === "receive" && ips !== undefined) {
    await receive(Number(count), ips.split(","));
    Deno.exit(0);
  } else if (role === "send" && peers !== undefined) {
    await send(Number(count), ips.split(","), peers.split(","));
    Deno.exit(0);
  } else {
    console.error(
      "Usage: _load.ts receive COUNT IP,IP,… | send COUNT IP,IP,… PEER_IP,PEER_IP,…",
    );
    Deno.exit(2);
  }
}
