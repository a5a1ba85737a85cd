/**
 * The client for programs (lib/user/program.ts) against a fake daemon that
 * speaks the link (SPEC §9) over real TCP on loopback: what each promise
 * means, pipelining within `limits.queue`, and the daemon going away.
 */

import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import {
  type Chat,
  ChatError,
  type ChatEvent,
  connect,
  EVENT_BUFFER_LIMIT,
} from "../../lib/user/program.ts";

const IP = "127.0.97.201";
let nextPort = 17_000;

/** The ChatError that `promise` rejects with (fails when it resolves). */
async function rejection(
  promise: () => Promise<unknown>,
  _type?: typeof ChatError,
): Promise<ChatError> {
  try {
    await promise();
  } catch (error) {
    assert(error instanceof ChatError, `not a ChatError: ${error}`);
    return error;
  }
  throw new Error("The promise resolved; a rejection was expected");
}

type Json = Record<string, unknown>;

/** One fake daemon: accepts one client, reads its lines, writes lines. */
class FakeDaemon {
  readonly port = nextPort++;
  #listener = Deno.listen({ hostname: IP, port: this.port });
  #conn: Deno.TcpConn | undefined;
  #lines: Json[] = [];
  #rest = "";
  #decoder = new TextDecoder();
  #reading: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #eof = false;

  /** Accepts the client, answers its hello with `limits.queue = queue`. */
  async accept(queue = 8): Promise<void> {
    this.#conn = await this.#listener.accept();
    this.#reading = this.#read();
    const hello = await this.next();
    assertEquals(hello.cmd, "hello");
    assertEquals(hello.v, 2);
    this.write({
      re: hello.id,
      ok: true,
      v: 2,
      state: { phase: "idle" },
      limits: { queue, text: 65_468 },
    });
  }

  /** The next request line from the client (throws at its end). */
  async next(): Promise<Json> {
    while (this.#lines.length === 0) {
      if (this.#eof) throw new Error("The client closed the connection");
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.#lines.shift()!;
  }

  /** Whether a request line is waiting. */
  get waiting(): number {
    return this.#lines.length;
  }

  write(message: Json): void {
    const bytes = new TextEncoder().encode(JSON.stringify(message) + "\n");
    this.#conn!.write(bytes).catch(() => {});
  }

  event(event: Json): void {
    this.write({ event });
  }

  async close(): Promise<void> {
    try {
      this.#conn?.close();
    } catch {
      // Closed already.
    }
    this.#listener.close();
    await this.#reading;
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(65_536);
    try {
      for (;;) {
        const n = await this.#conn!.read(buffer);
        if (n === null) break;
        this.#rest += this.#decoder.decode(buffer.subarray(0, n));
        const parts = this.#rest.split("\n");
        this.#rest = parts.pop()!;
        for (const part of parts) this.#lines.push(JSON.parse(part));
        this.#wake?.();
      }
    } catch {
      // Closed by the test.
    }
    this.#eof = true;
    this.#wake?.();
  }
}

/** A fake daemon and a chat of "bot" connected to it (`limits.queue = queue`). */
async function connected(
  queue?: number,
): Promise<{ daemon: FakeDaemon; chat: Chat }> {
  const daemon = new FakeDaemon();
  const [chat] = await Promise.all([
    connect(IP, { name: "bot", port: daemon.port }),
    daemon.accept(queue),
  ]);
  return { daemon, chat };
}

/** Closes `chat`, the fake daemon answering its quit. */
async function quit(chat: Chat, daemon: FakeDaemon): Promise<void> {
  const closing = chat.close();
  const request = await daemon.next();
  assertEquals(request.cmd, "quit");
  daemon.write({ re: request.id, ok: true });
  await closing;
}

Deno.test("connect: hello gives limits and state (§9)", async () => {
  const { daemon, chat } = await connected(5);
  assertEquals(chat.limits.queue, 5);
  assertEquals(chat.state.phase, "idle");
  await quit(chat, daemon);
  await daemon.close();
});

Deno.test("send pipelines at most limits.queue sends and resolves each on delivered", async () => {
  const { daemon, chat } = await connected(3);
  const order: number[] = [];
  const sends = Array.from(
    { length: 10 },
    (_, i) => chat.send(`m${i}`).then(() => order.push(i)),
  );
  // The daemon takes whatever requests have come, then delivers the oldest
  // message, and again; the client must never have more than 3 unsettled.
  const outstanding: number[] = [];
  let maxOutstanding = 0;
  let received = 0;
  while (received < 10 || outstanding.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    while (daemon.waiting > 0) {
      const request = await daemon.next();
      assertEquals(request.cmd, "send");
      assertEquals(request.text, `m${received}`);
      daemon.write({ re: request.id, ok: true, msgId: 100 + received });
      outstanding.push(100 + received++);
    }
    maxOutstanding = Math.max(maxOutstanding, outstanding.length);
    if (outstanding.length > 0) {
      daemon.event({ type: "delivered", id: outstanding.shift()! });
    }
  }
  await Promise.all(sends);
  assertEquals(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(maxOutstanding, 3);
  await quit(chat, daemon);
  await daemon.close();
});

Deno.test("send rejects with the reason when the peer left (undelivered)", async () => {
  const { daemon, chat } = await connected(4);
  const first = chat.send("one");
  const second = chat.send("two");
  for (const id of [1, 2]) {
    const request = await daemon.next();
    daemon.write({ re: request.id, ok: true, msgId: id });
  }
  daemon.event({
    type: "peer-left",
    ip: "127.0.97.9",
    port: 7777,
    name: "alice",
    undelivered: 2,
  });
  daemon.event({ type: "undelivered", id: 1, text: "one" });
  daemon.event({ type: "undelivered", id: 2, text: "two" });
  for (const send of [first, second]) {
    const error = await rejection(() => send, ChatError);
    assertEquals(error.reason, "peer-left");
    assert(error.message.includes("alice left"), error.message);
  }
  await quit(chat, daemon);
  await daemon.close();
});

Deno.test("a refused command rejects with the daemon's sentence", async () => {
  const { daemon, chat } = await connected();
  const sending = chat.send("hi");
  const request = await daemon.next();
  daemon.write({
    re: request.id,
    ok: false,
    error: "Not in a chat: invite someone first",
  });
  const error = await rejection(() => sending, ChatError);
  assertEquals(error.reason, "refused");
  assertEquals(error.message, "Not in a chat: invite someone first");
  await quit(chat, daemon);
  await daemon.close();
});

Deno.test("the daemon going away rejects pending sends and ends the events", async () => {
  const { daemon, chat } = await connected();
  const sending = chat.send("hi");
  await daemon.next();
  const events: string[] = [];
  const iterating = (async () => {
    for await (const event of chat.events) events.push(event.type);
  })();
  daemon.event({ type: "daemon-stopping" });
  await daemon.close();
  const error = await rejection(() => sending, ChatError);
  assertEquals(error.reason, "disconnected");
  await iterating;
  assertEquals(events, ["daemon-stopping"]);
  assert(chat.closed);
  await rejection(() => chat.send("again"), ChatError);
  await chat.close();
});

Deno.test("connect: a daemon that has a client already rejects with its sentence", async () => {
  const port = nextPort++;
  const listener = Deno.listen({ hostname: IP, port });
  const busy =
    "Another client is connected to this daemon (127.0.0.1:40112): quit it first";
  const answering = (async () => {
    const conn = await listener.accept();
    await conn.write(new TextEncoder().encode(
      JSON.stringify({ re: null, ok: false, error: busy, code: "busy" }) + "\n",
    ));
    conn.close();
  })();
  const error = await rejection(
    () => connect(IP, { name: "bot", port }),
    ChatError,
  );
  assertEquals(error.message, busy);
  await answering;
  listener.close();
});

Deno.test("connect: no daemon gives a clear error", async () => {
  const error = await rejection(
    () => connect(IP, { name: "bot", port: nextPort++ }),
    ChatError,
  );
  assert(error.message.startsWith(`Daemon not reachable at ${IP}:`));
  assert(error.message.includes("simp daemon"), error.message);
});

Deno.test("a daemon that breaks the link protocol is left with a clear error", async () => {
  const { daemon, chat } = await connected();
  const sending = chat.send("hi");
  await daemon.next();
  daemon.write({ re: 99, ok: true, msgId: [[["deep"]]] });
  const error = await rejection(() => sending);
  assertEquals(error.reason, "disconnected");
  assert(error.message.includes("broke the link protocol"), error.message);
  assert(chat.closed);
  await daemon.close();
});

Deno.test("sends settle even when the program never reads the events", async () => {
  const { daemon, chat } = await connected(64);
  const count = EVENT_BUFFER_LIMIT + 500;
  const sends = Array.from({ length: count }, (_, i) => chat.send(`m${i}`));
  for (let i = 0; i < count; i++) {
    const request = await daemon.next();
    daemon.write({ re: request.id, ok: true, msgId: i });
    daemon.event({ type: "delivered", id: i });
  }
  await Promise.all(sends);
  assertEquals(chat.droppedEvents, 500);
  await quit(chat, daemon);
  await daemon.close();
});

Deno.test("two loops over the events share one stream, each event once", async () => {
  const { daemon, chat } = await connected();
  const seen: string[] = [];
  async function loop(): Promise<void> {
    for await (const event of chat.events) {
      if (event.type === "message") seen.push(event.text);
    }
  }
  const loops = [loop(), loop()];
  for (let i = 0; i < 6; i++) {
    daemon.event({ type: "message", name: "alice", text: `m${i}` });
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await quit(chat, daemon);
  await Promise.all(loops);
  assertEquals(seen.toSorted(), ["m0", "m1", "m2", "m3", "m4", "m5"]);
  await daemon.close();
});

Deno.test("the events of issue 8 reach a program as they came (invite-retry, busy-answered, peer-reconnected, atOnce)", async () => {
  const { daemon, chat } = await connected();
  const sent: ChatEvent[] = [
    {
      type: "invite-retry",
      ip: "127.0.0.5",
      port: 7777,
      attempt: 1,
      leftMs: 55_000,
    },
    {
      type: "chat-started",
      ip: "127.0.0.5",
      port: 7777,
      name: "e",
      atOnce: true,
    },
    { type: "busy-answered", ip: "127.0.0.3", port: 7777, name: "carol" },
    { type: "peer-reconnected", ip: "127.0.0.5", port: 7777, name: "e" },
  ];
  for (const event of sent) daemon.event(event as unknown as Json);
  const received: ChatEvent[] = [];
  for await (const event of chat.events) {
    received.push(event);
    if (received.length === sent.length) break;
  }
  assertEquals(received, sent);
  await quit(chat, daemon);
  await daemon.close();
});
