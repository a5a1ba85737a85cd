/**
 * The end-to-end benchmark of issue 7, in one run (`deno task bench:e2e`):
 *
 * 1. **Reference**: a raw two-process Deno UDP ping-pong (bench/_pingpong.ts;
 *    100-byte payload, one datagram outstanding), its two processes pinned
 *    to different CPUs: round trips/s and CPU per round trip.
 * 2. **simp end to end**: two daemons (`mod.ts daemon`) and two program
 *    clients (bench/_chat_user.ts, on {@linkcode connect}); alice's daemon
 *    and client pinned to one CPU, bob's to the other (as two users on two
 *    machines). After a warm-up and a latency run (one message at a time),
 *    COUNT messages one way, pipelined: messages/s ÷ the ping-pong's round
 *    trips/s, the CPU time per message of each of the four processes (from
 *    `/proc/PID/stat`), and client-to-client latency p50/p99.
 * 3. **Concurrent chats**: N = 1, 10, 50 chats at once (2N daemons, the
 *    clients of each side in one process, bench/_load.ts; not pinned),
 *    aggregate messages/s, CPU per message, RSS per daemon, and a check
 *    that no client was dropped and no message lost.
 *
 * Every step is bounded in count and in time; addresses come from
 * 127.0.96.0/24 and 127.0.97.0/24. Figures are printed as a report and, with
 * `--json`, as one JSON object at the end. Options: `--count N` (messages of
 * step 2, default 5000), `--chats 1,10,50`, `--skip-chats`, `--only-chats`,
 * `--cpu-prof DIR`
 * (the four processes of step 2 write V8 CPU profiles into DIR; summarise
 * them with bench/profile_summary.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Proc, ProcessGroup } from "../tools/_processes.ts";
import {
  allowedCpus,
  cpuMicros,
  cpuTimes,
  hasTaskset,
  pin,
  rssBytes,
} from "./_measure.ts";

const PING_IPS = ["127.0.96.1", "127.0.96.2"] as const;
const PING_PORT = 9_000;
const E2E_IPS = ["127.0.96.3", "127.0.96.4"] as const;
/** Daemon IPs of the concurrent chats: side A in .96, side B in .97. */
function loadIp(side: "a" | "b", i: number): string {
  return `127.0.${side === "a" ? 96 : 97}.${10 + i}`;
}

/** The longest any one step may take, in ms. */
const STEP_LIMIT_MS = 120_000;
const PING_WARMUP = 2_000;
const PING_COUNT = 20_000;
const PING_MAX_MS = 15_000;
const E2E_WARMUP = 500;
const E2E_LATENCY = 500;
const CHAT_MESSAGES_TOTAL = 10_000;
const CHAT_MESSAGES_MIN = 200;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "5000" },
    chats: { type: "string", default: "1,10,50" },
    "skip-chats": { type: "boolean", default: false },
    "only-chats": { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
  },
});
const COUNT = Number(flags.count);
if (!Number.isSafeInteger(COUNT) || COUNT < 1 || COUNT > 1_000_000) {
  throw new Error("--count must be a whole number from 1 to 1000000");
}
const CHAT_COUNTS = flags.chats.split(",").map(Number);
if (CHAT_COUNTS.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 120)) {
  throw new Error("--chats must be numbers from 1 to 120, comma-separated");
}

const DENO_RUN = ["run", "--allow-net", "--allow-read", "--allow-env"];
/** The same for the four processes of step 2, with a CPU profile if asked. */
const DENO_RUN_E2E = flags["cpu-prof"] === undefined
  ? DENO_RUN
  : [...DENO_RUN, "--cpu-prof", `--cpu-prof-dir=${flags["cpu-prof"]}`];

let pinning = !flags["no-pin"] && await hasTaskset();
const cpus = allowedCpus();
if (cpus.length < 2) pinning = false;
const [CPU_A, CPU_B] = pinning ? [cpus[0], cpus[1]] : [-1, -1];

async function place(proc: Proc, cpu: number): Promise<void> {
  if (pinning) await pin(proc.child.pid, cpu);
}

function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function log(line: string): void {
  console.log(line);
}

// -- 1. The reference ---------------------------------------------------

interface PingPong {
  roundTripsPerSecond: number;
  cpuMicrosPerRoundTrip: [number, number];
  resent: number;
}

async function pingPong(): Promise<PingPong> {
  const procs = new ProcessGroup();
  try {
    const echo = procs.spawn("echo", [
      ...DENO_RUN,
      "bench/_pingpong.ts",
      "echo",
      PING_IPS[0],
      String(PING_PORT),
    ], { stdin: false });
    const ping = procs.spawn("ping", [
      ...DENO_RUN,
      "bench/_pingpong.ts",
      "ping",
      PING_IPS[1],
      String(PING_PORT),
      PING_IPS[0],
      String(PING_PORT),
      String(PING_WARMUP),
      String(PING_COUNT),
      String(PING_MAX_MS),
    ], { stdin: true });
    await echo.expect("ready");
    await ping.expect("ready");
    await place(echo, CPU_A);
    await place(ping, CPU_B);
    const before = [cpuMicros(echo.child.pid), cpuMicros(ping.child.pid)];
    await ping.write("go");
    const result = JSON.parse(
      await ping.expect(/^\{/, { timeoutMs: PING_MAX_MS + 30_000 }),
    );
    const after = [cpuMicros(echo.child.pid), cpuMicros(ping.child.pid)];
    const total = result.roundTrips + PING_WARMUP;
    return {
      roundTripsPerSecond: result.roundTrips / result.ms * 1000,
      cpuMicrosPerRoundTrip: [
        (after[0] - before[0]) / total,
        (after[1] - before[1]) / total,
      ],
      resent: result.resent,
    };
  } finally {
    await procs.close();
  }
}

// -- Daemons ------------------------------------------------------------

function startDaemon(
  procs: ProcessGroup,
  ip: string,
  run = DENO_RUN,
): Proc {
  return procs.spawn(`daemon ${ip}`, [
    ...run,
    "mod.ts",
    "daemon",
    ip,
  ], { stdin: false });
}

async function daemonReady(daemon: Proc): Promise<void> {
  await daemon.expect(/listening/, { stream: "stderr", timeoutMs: 30_000 });
}

// -- 2. simp end to end -------------------------------------------------

interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

interface EndToEnd {
  messagesPerSecond: number;
  ratioToPingPong: number;
  cpuMicrosPerMessage: Record<string, number>;
  /** The part of it spent in the kernel (system time). */
  systemMicrosPerMessage: Record<string, number>;
  cpuMicrosPerMessageTotal: number;
  latencyOneAtATimeMs: Latency;
  latencyUnderLoadMs: Latency;
  outOfOrder: number;
}

async function endToEnd(reference: PingPong): Promise<EndToEnd> {
  const procs = new ProcessGroup();
  try {
    const daemonA = startDaemon(procs, E2E_IPS[0], DENO_RUN_E2E);
    const daemonB = startDaemon(procs, E2E_IPS[1], DENO_RUN_E2E);
    await daemonReady(daemonA);
    await daemonReady(daemonB);
    const bob = procs.spawn("bob", [
      ...DENO_RUN_E2E,
      "bench/_chat_user.ts",
      "receive",
      E2E_IPS[1],
      "bob",
      String(E2E_WARMUP),
      String(E2E_LATENCY),
      String(COUNT),
    ], { stdin: false });
    await bob.expect("ready", { timeoutMs: 30_000 });
    const alice = procs.spawn("alice", [
      ...DENO_RUN_E2E,
      "bench/_chat_user.ts",
      "send",
      E2E_IPS[0],
      "alice",
      E2E_IPS[1],
      String(E2E_WARMUP),
      String(E2E_LATENCY),
      String(COUNT),
    ], { stdin: true });
    await alice.expect("ready", { timeoutMs: 30_000 });
    await place(daemonA, CPU_A);
    await place(alice, CPU_A);
    await place(daemonB, CPU_B);
    await place(bob, CPU_B);
    await alice.write("go");
    await alice.expect("warm", { timeoutMs: STEP_LIMIT_MS });

    const four = { daemonA, clientA: alice, daemonB, clientB: bob };
    const before = Object.fromEntries(
      Object.entries(four).map(([k, p]) => [k, cpuTimes(p.child.pid)]),
    );
    await alice.write("go");
    const sent = JSON.parse(
      await alice.expect(/^\{/, { timeoutMs: STEP_LIMIT_MS }),
    );
    const received = JSON.parse(
      await bob.expect(/^\{/, { timeoutMs: STEP_LIMIT_MS }),
    );
    const after = Object.fromEntries(
      Object.entries(four).map(([k, p]) => [k, cpuTimes(p.child.pid)]),
    );
    // The clients quit by themselves (and write their CPU profiles, if
    // asked); the daemons are stopped with SIGTERM at the end.
    await alice.exit(10_000);
    await bob.exit(10_000);
    const seconds = (Math.max(received.lastAt, sent.allDeliveredAt) -
      sent.t0) / 1000;
    const rate = COUNT / seconds;
    const perMessage: Record<string, number> = {};
    const systemPerMessage: Record<string, number> = {};
    for (const key of Object.keys(four)) {
      const user = after[key].user - before[key].user;
      const system = after[key].system - before[key].system;
      perMessage[key] = round((user + system) / COUNT, 1);
      systemPerMessage[key] = round(system / COUNT, 1);
    }
    return {
      messagesPerSecond: round(rate),
      ratioToPingPong: round(rate / reference.roundTripsPerSecond, 3),
      cpuMicrosPerMessage: perMessage,
      systemMicrosPerMessage: systemPerMessage,
      cpuMicrosPerMessageTotal: round(
        Object.values(perMessage).reduce((a, b) => a + b, 0),
        1,
      ),
      latencyOneAtATimeMs: received.latencyOneAtATime,
      latencyUnderLoadMs: received.latencyUnderLoad,
      outOfOrder: received.outOfOrder,
    };
  } catch (error) {
    console.error(procs.report());
    throw error;
  } finally {
    await procs.close();
  }
}

// -- 3. Concurrent chats ------------------------------------------------

interface Concurrent {
  chats: number;
  messagesPerChat: number;
  messagesPerSecond: number;
  rssPerDaemonMiB: { mean: number; max: number };
  received: number;
  expected: number;
  failedSends: number;
  droppedClients: number;
  retransmissions: number;
  cpuMicrosPerMessage: { daemons: number; clients: number };
  endedChats: string[];
  outOfOrder: number;
  ok: boolean;
}

async function concurrent(n: number): Promise<Concurrent> {
  const perChat = Math.max(
    CHAT_MESSAGES_MIN,
    Math.floor(CHAT_MESSAGES_TOTAL / n),
  );
  const procs = new ProcessGroup();
  try {
    const aIps = Array.from({ length: n }, (_, i) => loadIp("a", i));
    const bIps = Array.from({ length: n }, (_, i) => loadIp("b", i));
    const daemonsA = aIps.map((ip) => startDaemon(procs, ip));
    const daemonsB = bIps.map((ip) => startDaemon(procs, ip));
    for (const daemon of [...daemonsA, ...daemonsB]) await daemonReady(daemon);
    const receiver = procs.spawn("receivers", [
      ...DENO_RUN,
      "bench/_load.ts",
      "receive",
      String(perChat),
      bIps.join(","),
    ], { stdin: false });
    await receiver.expect("ready", { timeoutMs: 60_000 });
    const sender = procs.spawn("senders", [
      ...DENO_RUN,
      "bench/_load.ts",
      "send",
      String(perChat),
      aIps.join(","),
      bIps.join(","),
    ], { stdin: true });
    await sender.expect("ready", { timeoutMs: 60_000 });
    // Not pinned: 2N daemons and their clients share the machine's CPUs as
    // the scheduler sees fit (pinning each side to one CPU measured 5×
    // slower for N = 10: every wake-up waits for that one CPU).
    await sender.write("go");
    await sender.expect("warm", { timeoutMs: STEP_LIMIT_MS });
    const all = [...daemonsA, ...daemonsB, sender, receiver];
    const cpuBefore = all.map((p) => cpuMicros(p.child.pid));
    await sender.write("go");
    const sent = JSON.parse(
      await sender.expect(/^\{/, { timeoutMs: STEP_LIMIT_MS }),
    );
    const got = JSON.parse(
      await receiver.expect(/^\{/, { timeoutMs: STEP_LIMIT_MS }),
    );
    const cpuAfter = all.map((p) => cpuMicros(p.child.pid));
    const cpuDaemons = cpuAfter.slice(0, 2 * n).reduce(
      (sum, t, i) => sum + t - cpuBefore[i],
      0,
    );
    const cpuClients = cpuAfter.slice(2 * n).reduce(
      (sum, t, i) => sum + t - cpuBefore[2 * n + i],
      0,
    );
    const rss = [...daemonsA, ...daemonsB].map((d) =>
      rssBytes(d.child.pid) / 2 ** 20
    );
    const seconds = (Math.max(got.lastAt, sent.allDeliveredAt) - sent.t0) /
      1000;
    const expected = n * perChat;
    const result: Concurrent = {
      chats: n,
      messagesPerChat: perChat,
      messagesPerSecond: round(got.received / seconds),
      rssPerDaemonMiB: {
        mean: round(rss.reduce((a, b) => a + b, 0) / rss.length, 1),
        max: round(Math.max(...rss), 1),
      },
      received: got.received,
      expected,
      failedSends: sent.failed,
      droppedClients: sent.dropped,
      retransmissions: sent.retransmissions,
      cpuMicrosPerMessage: {
        daemons: round(cpuDaemons / got.received, 1),
        clients: round(cpuClients / got.received, 1),
      },
      endedChats: got.ended,
      outOfOrder: got.outOfOrder,
      ok: false,
    };
    result.ok = got.received === expected && sent.failed === 0 &&
      sent.dropped === 0 && got.ended.length === 0 && got.outOfOrder === 0;
    return result;
  } catch (error) {
    console.error(procs.report(5));
    throw error;
  } finally {
    await procs.close();
  }
}

// -- The run ------------------------------------------------------------

log(
  pinning
    ? `Placement: CPU ${CPU_A} and CPU ${CPU_B} (taskset)`
    : "Placement: NOT pinned (no taskset or fewer than 2 CPUs): figures vary by chance",
);
let reference: PingPong | undefined;
let e2e: EndToEnd | undefined;
if (!flags["only-chats"]) {
  reference = await pingPong();
  log(
    `1. ping-pong (100 B, pinned across CPUs): ${
      round(reference.roundTripsPerSecond)
    } round trips/s; CPU per round trip: echo ${
      round(reference.cpuMicrosPerRoundTrip[0], 1)
    } µs, ping ${round(reference.cpuMicrosPerRoundTrip[1], 1)} µs`,
  );
  e2e = await endToEnd(reference);
  log(
    `2. simp end to end, ${COUNT} messages one way: ${e2e.messagesPerSecond} messages/s = ${e2e.ratioToPingPong}× ping-pong (target ≥ 0.5×)`,
  );
  log(
    `   CPU per message: ${
      Object.entries(e2e.cpuMicrosPerMessage).map(([k, v]) =>
        `${k} ${v} µs (kernel ${e2e!.systemMicrosPerMessage[k]})`
      ).join(", ")
    }; together ${e2e.cpuMicrosPerMessageTotal} µs (target ≤ 400 µs) = ${
      round(
        e2e.cpuMicrosPerMessageTotal /
          (reference.cpuMicrosPerRoundTrip[0] +
            reference.cpuMicrosPerRoundTrip[1]),
        2,
      )
    }× the CPU of one ping-pong round trip (both processes)`,
  );
  log(
    `   client-to-client latency: one at a time p50 ${
      round(e2e.latencyOneAtATimeMs.p50, 3)
    } ms, p99 ${round(e2e.latencyOneAtATimeMs.p99, 3)} ms; pipelined p50 ${
      round(e2e.latencyUnderLoadMs.p50, 3)
    } ms, p99 ${round(e2e.latencyUnderLoadMs.p99, 3)} ms`,
  );
}
const chats: Concurrent[] = [];
if (!flags["skip-chats"]) {
  for (const n of CHAT_COUNTS) {
    const result = await concurrent(n);
    chats.push(result);
    log(
      `3. ${n} concurrent chats × ${result.messagesPerChat} messages: ${result.messagesPerSecond} messages/s; RSS per daemon mean ${result.rssPerDaemonMiB.mean} MiB, max ${result.rssPerDaemonMiB.max} MiB; CPU per message: daemons ${result.cpuMicrosPerMessage.daemons} µs, clients ${result.cpuMicrosPerMessage.clients} µs; ${result.retransmissions} retransmissions; ${
        result.ok
          ? "no client dropped, no message lost"
          : `FAILED: received ${result.received}/${result.expected}, failed sends ${result.failedSends}, dropped clients ${result.droppedClients}, ended ${
            result.endedChats.join(" ")
          }, out of order ${result.outOfOrder}`
      }`,
    );
  }
}
if (flags.json) {
  console.log(JSON.stringify({ pinning, reference, e2e, chats }));
}
if (e2e !== undefined) {
  const met = e2e.ratioToPingPong >= 0.5 &&
    e2e.cpuMicrosPerMessageTotal <= 400;
  log(
    met
      ? "Targets met."
      : "Targets NOT met (rate ≥ 0.5× ping-pong, ≤ 400 µs CPU per message).",
  );
}
if (chats.some((c) => !c.ok)) Deno.exit(1);
