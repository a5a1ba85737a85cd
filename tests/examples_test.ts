/**
 * The library's client for programs and its example end to end, with real
 * daemon processes: examples/echo_bot.ts (on its own daemon) accepts an
 * invitation from a program client (on another daemon, in this test) and
 * echoes every message; it stops cleanly on SIGTERM and exits 1 when its
 * daemon goes away. And `connect()`'s promises against real daemons: a send
 * resolves once delivered and rejects with `peer-lost` when the peer's
 * daemon dies (tests/user/program_test.ts covers every case against a fake
 * daemon).
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { type Proc, ProcessGroup } from "../tools/_processes.ts";
import { type Chat, ChatError, type ChatEvent, connect } from "../mod.ts";

const BOT_IP = "127.0.97.210";
const USER_IP = "127.0.97.211";
const BOT2_IP = "127.0.97.212";

function daemon(procs: ProcessGroup, ip: string): Proc {
  return procs.spawn(`daemon ${ip}`, [
    "run",
    "-A",
    "mod.ts",
    "daemon",
    ip,
  ], { stdin: false });
}

/**
 * Runs the bot with exactly the permissions the README gives it
 * (`--allow-net`): importing `mod.ts` must not need more.
 */
function bot(procs: ProcessGroup, ip: string): Proc {
  return procs.spawn("echo bot", [
    "run",
    "--allow-net",
    "examples/echo_bot.ts",
    ip,
    "--name",
    "echo",
  ], { stdin: false });
}

/** The next event of `chat` that `wanted` accepts (others are passed over). */
async function next(
  events: AsyncIterator<ChatEvent>,
  wanted: (event: ChatEvent) => boolean,
  timeoutMs = 5000,
): Promise<ChatEvent> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`No wanted event within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    for (;;) {
      const result = await Promise.race([events.next(), late]);
      if (result.done) throw new Error("The events ended");
      if (wanted(result.value)) return result.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("echo bot accepts an invitation and echoes every message, in order", async () => {
  const procs = new ProcessGroup();
  let chat: Chat | undefined;
  try {
    const botDaemon = daemon(procs, BOT_IP);
    const userDaemon = daemon(procs, USER_IP);
    await botDaemon.expect(/listening/, { stream: "stderr" });
    await userDaemon.expect(/listening/, { stream: "stderr" });
    const echo = bot(procs, BOT_IP);
    await echo.expect(/^echo bot echo waiting for an invitation/);

    chat = await connect(USER_IP, { name: "tester" });
    const events = chat.events[Symbol.asyncIterator]();
    await chat.invite(BOT_IP);
    const started = await next(events, (e) => e.type === "chat-started");
    deepStrictEqual(started, {
      type: "chat-started",
      ip: BOT_IP,
      port: 7777,
      name: "echo",
      atOnce: true, // a bot accepts as soon as it is invited
    });

    const texts = ["hello", "second message", "x".repeat(1000)];
    // All three at once: the sends are pipelined, the echoes come in order.
    await Promise.all(texts.map((text) => chat!.send(text)));
    const echoed: string[] = [];
    while (echoed.length < texts.length) {
      const event = await next(events, (e) => e.type === "message");
      if (event.type === "message") {
        strictEqual(event.name, "echo");
        echoed.push(event.text);
      }
    }
    deepStrictEqual(echoed, texts);
    await echo.expect('echoed "hello"');

    await chat.leave();
    await echo.expect(/^chat ended \(peer-left\)/);
    echo.kill("SIGTERM");
    const status = await echo.exit();
    strictEqual(status.code, 0, procs.report());
  } catch (error) {
    console.error(procs.report());
    throw error;
  } finally {
    await chat?.close();
    await procs.close();
  }
});

Deno.test("echo bot exits 1 with a clear line when its daemon goes away", async () => {
  const procs = new ProcessGroup();
  try {
    const botDaemon = daemon(procs, BOT2_IP);
    await botDaemon.expect(/listening/, { stream: "stderr" });
    const echo = bot(procs, BOT2_IP);
    await echo.expect(/^echo bot echo waiting/);
    botDaemon.kill("SIGKILL");
    const status = await echo.exit(5000);
    strictEqual(status.code, 1);
    ok(
      echo.grep("echo bot: the daemon went away", "stderr").length === 1,
      procs.report(),
    );
  } finally {
    await procs.close();
  }
});

Deno.test("connect() with real daemons: send resolves when delivered, rejects with peer-lost when the peer's daemon dies", async () => {
  const procs = new ProcessGroup();
  const aliceIp = "127.0.97.213";
  const bobIp = "127.0.97.214";
  let alice: Chat | undefined;
  let bob: Chat | undefined;
  try {
    const fast = ["--timeout", "0.2", "--retries", "1"];
    const daemonA = procs.spawn(`daemon ${aliceIp}`, [
      "run",
      "-A",
      "mod.ts",
      "daemon",
      aliceIp,
      ...fast,
    ], { stdin: false });
    const daemonB = procs.spawn(`daemon ${bobIp}`, [
      "run",
      "-A",
      "mod.ts",
      "daemon",
      bobIp,
      ...fast,
    ], { stdin: false });
    await daemonA.expect(/listening/, { stream: "stderr" });
    await daemonB.expect(/listening/, { stream: "stderr" });
    bob = await connect(bobIp, { name: "bob" });
    alice = await connect(aliceIp, { name: "alice" });
    const bobEvents = bob.events[Symbol.asyncIterator]();
    const aliceEvents = alice.events[Symbol.asyncIterator]();
    await alice.invite(bobIp);
    await next(bobEvents, (e) => e.type === "invitation");
    await bob.accept();
    await next(aliceEvents, (e) => e.type === "chat-started");
    await alice.send("first");
    const first = await next(bobEvents, (e) => e.type === "message");
    deepStrictEqual(first, { type: "message", name: "alice", text: "first" });

    daemonB.kill("SIGKILL");
    await daemonB.exit();
    const lost = alice.send("into the void");
    const error = await lost.then(
      () => undefined,
      (e: unknown) => e,
    );
    ok(error instanceof ChatError, `not a ChatError: ${error}`);
    strictEqual(error.reason, "peer-lost");
    ok(error.message.includes("bob"), error.message);
  } catch (error) {
    console.error(procs.report());
    throw error;
  } finally {
    await alice?.close();
    await bob?.close();
    await procs.close();
  }
});
