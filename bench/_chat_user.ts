/**
 * One user of the end-to-end benchmark (bench/e2e.ts): a program client
 * ({@linkcode connect}) that either sends or receives timestamped 100-byte
 * messages. Every message text is `phase:seq:sentAtMs:` padded with `x` to
 * 100 characters, so the receiver can check order and measure the
 * client-to-client latency (both clocks are this machine's).
 *
 * ```sh
 * deno run --allow-net bench/_chat_user.ts receive IP NAME WARMUP LATENCY COUNT
 * deno run --allow-net bench/_chat_user.ts send IP NAME PEER_IP WARMUP LATENCY COUNT
 * ```
 *
 * The receiver accepts the first invitation, prints `ready`, and prints one
 * JSON line with what it measured when the last message (phase `t`, seq
 * COUNT − 1) has arrived. The sender invites PEER_IP, prints `ready` once
 * the chat is established, and on the first line of stdin sends WARMUP
 * messages pipelined and LATENCY messages one at a time (each delivered
 * before the next), prints `warm`; on the second line it sends COUNT
 * messages pipelined (at most 2 × `limits.queue` outstanding: the client
 * hands them to the daemon in batches within its queue) and prints one
 * JSON line when all are delivered.
 *
 * @module
 */

import { type Chat, connect } from "../lib/user/program.ts";
import { nowMs, percentile } from "./_measure.ts";

const TEXT_LENGTH = 100;

function text(phase: string, seq: number): string {
  return `${phase}:${seq}:${nowMs().toFixed(3)}:`.padEnd(TEXT_LENGTH, "x");
}

function stdinLines(): () => Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  return async () => {
    const { done } = await reader.read();
    if (done) throw new Error("The benchmark runner went away (stdin closed)");
  };
}

function summary(latencies: number[]) {
  latencies.sort((a, b) => a - b);
  return {
    n: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
  };
}

async function receive(
  ip: string,
  name: string,
  warmup: number,
  latency: number,
  count: number,
): Promise<void> {
  const chat = await connect(ip, { name });
  console.log("ready");
  const expected: Record<string, number> = { w: warmup, l: latency, t: count };
  const next: Record<string, number> = { w: 0, l: 0, t: 0 };
  const latencies: Record<string, number[]> = { w: [], l: [], t: [] };
  let outOfOrder = 0;
  let firstAt = NaN;
  for await (const event of chat.events) {
    if (event.type === "invitation") {
      await chat.accept();
    } else if (event.type === "message") {
      const at = nowMs();
      const [phase, seq, sentAt] = event.text.split(":");
      if (Number(seq) !== next[phase]) outOfOrder++;
      next[phase] = Number(seq) + 1;
      latencies[phase]?.push(at - Number(sentAt));
      if (phase === "t" && seq === "0") firstAt = at;
      if (phase === "t" && Number(seq) === count - 1) {
        console.log(JSON.stringify({
          received: next,
          expected,
          outOfOrder,
          firstAt,
          lastAt: at,
          latencyOneAtATime: summary(latencies.l),
          latencyUnderLoad: summary(latencies.t),
        }));
        break;
      }
    } else if (
      event.type === "peer-left" || event.type === "peer-lost" ||
      event.type === "chat-closed"
    ) {
      throw new Error(`The chat ended early: ${event.type}`);
    }
  }
  await chat.close();
}

/** Sends `n` messages of `phase`, at most `window` outstanding. */
async function pipelined(
  chat: Chat,
  phase: string,
  n: number,
  window: number,
): Promise<void> {
  const outstanding: Promise<void>[] = [];
  for (let seq = 0; seq < n; seq++) {
    if (outstanding.length >= window) await outstanding.shift();
    outstanding.push(chat.send(text(phase, seq)));
  }
  await Promise.all(outstanding);
}

async function send(
  ip: string,
  name: string,
  peerIp: string,
  warmup: number,
  latency: number,
  count: number,
): Promise<void> {
  const nextLine = stdinLines();
  const chat = await connect(ip, { name });
  const started = Promise.withResolvers<void>();
  const watching = (async () => {
    for await (const event of chat.events) {
      if (event.type === "chat-started") started.resolve();
      if (
        event.type === "declined" || event.type === "busy" ||
        event.type === "no-answer"
      ) {
        started.reject(new Error(`The invitation failed: ${event.type}`));
      }
    }
  })();
  await chat.invite(peerIp);
  await started.promise;
  console.log("ready");

  await nextLine();
  await pipelined(chat, "w", warmup, 2 * chat.limits.queue);
  for (let seq = 0; seq < latency; seq++) await chat.send(text("l", seq));
  console.log("warm");

  await nextLine();
  const t0 = nowMs();
  await pipelined(chat, "t", count, 2 * chat.limits.queue);
  const t1 = nowMs();
  console.log(JSON.stringify({ sent: count, t0, allDeliveredAt: t1 }));
  await chat.close();
  await watching;
}

if (import.meta.main) {
  const [role, ip, name, ...rest] = Deno.args;
  const numbers = rest.map(Number);
  if (role === "receive" && rest.length === 3) {
    await receive(ip, name, numbers[0], numbers[1], numbers[2]);
    Deno.exit(0);
  } else if (role === "send" && rest.length === 4) {
    await send(ip, name, rest[0], numbers[1], numbers[2], numbers[3]);
    Deno.exit(0);
  } else {
    console.error(
      "Usage: _chat_user.ts receive IP NAME WARMUP LATENCY COUNT | send IP NAME PEER_IP WARMUP LATENCY COUNT",
    );
    Deno.exit(2);
  }
}
