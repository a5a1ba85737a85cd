/**
 * A fake daemon on a real TCP socket, for tests of the client process
 * (`mod.ts client`): it accepts connections on `hostname:7778`, reads the
 * client's request lines, answers them the way a daemon would (or as a test
 * says), and sends whatever lines a test wants — hostile ones included.
 */

import { LineSplitter } from "../../lib/link/lines.ts";
import {
  encodeDaemonMessage,
  type LinkEvent,
  parseRequest,
  type Request,
} from "../../lib/link/protocol.ts";

/** Fields of a reply (added to `re` and `ok: true`), or `null` for no reply. */
export type Answer = Record<string, unknown> | null;

const encoder = new TextEncoder();

/** One fake daemon; {@linkcode FakeDaemon.close} stops it and its connections. */
export class FakeDaemon {
  readonly listener: Deno.TcpListener;
  /** Every request received, in order. */
  readonly requests: Request[] = [];
  /** Decides the answer to each request (see {@linkcode Answer}). */
  answer: (request: Request) => Answer;
  /** How many connections were accepted. */
  accepted = 0;
  /** Whether the current connection was closed by the client. */
  clientClosed = false;
  #conn: Deno.TcpConn | undefined;
  #msgId = 0;
  #loop: Promise<void>;
  #readers: Promise<void>[] = [];
  #waiters: (() => void)[] = [];

  constructor(hostname: string, port = 7778) {
    this.listener = Deno.listen({ hostname, port, transport: "tcp" });
    this.answer = (request) => this.standard(request);
    this.#loop = this.#accept();
  }

  /** The daemon's usual answers: idle at hello, a new msgId per send. */
  standard(request: Request): Answer {
    switch (request.cmd) {
      case "hello":
        return {
          v: 2,
          state: { phase: "idle" },
          limits: { queue: 64, text: 65468 },
        };
      case "send":
        return { msgId: ++this.#msgId };
      default:
        return {};
    }
  }

  /** The commands received so far. */
  get commands(): string[] {
    return this.requests.map((r) => r.cmd);
  }

  /** Sends `event` to the client. */
  async event(event: LinkEvent): Promise<void> {
    await this.write(encodeDaemonMessage({ event }));
  }

  /** Writes `text` (bytes or a string, as is) to the client. */
  async write(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let written = 0;
    while (written < bytes.length) {
      written += await this.#conn!.write(bytes.subarray(written));
    }
  }

  /** Closes the connection to the client (EOF on its side). */
  hangUp(): void {
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
  }

  /** Resolves when `predicate` holds (checked as requests come, and every 50 ms), or fails after `ms`. */
  async until(predicate: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(
          `Fake daemon: condition not met; received ${
            JSON.stringify(this.requests)
          }`,
        );
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#waiters.push(resolve);
      const timer = setTimeout(resolve, 50);
      await promise;
      clearTimeout(timer);
    }
  }

  /** Stops listening and closes the connection. */
  async close(): Promise<void> {
    try {
      this.listener.close();
    } catch {
      // Already closed.
    }
    this.hangUp();
    await this.#loop;
    await Promise.all(this.#readers);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch {
        return; // closed
      }
      this.accepted++;
      this.#conn = conn;
      this.clientClosed = false;
      this.#readers.push(this.#read(conn));
    }
  }

  async #read(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(65536);
    const lines = new LineSplitter();
    for (;;) {
      let count: number | null;
      try {
        count = await conn.read(buffer);
      } catch {
        count = null;
      }
      if (count === null) {
        this.clientClosed = true;
        this.#wake();
        return;
      }
      for (const item of lines.push(buffer.subarray(0, count))) {
        if (item.type !== "line") continue;
        const request = parseRequest(item.text);
        this.requests.push(request);
        const fields = this.answer(request);
        if (fields !== null) {
          try {
            await this.write(
              JSON.stringify({ re: request.id, ok: true, ...fields }) + "\n",
            );
          } catch {
            // The client is gone.
          }
        }
      }
      this.#wake();
    }
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}
