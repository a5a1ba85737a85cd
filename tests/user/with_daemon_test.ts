/**
 * The real client core and the real daemon core joined over the link, in
 * virtual time: the client's lines go to the daemon's end as bytes, the
 * daemon's bytes come back through the line framing, exactly the way
 * `client.ts` and `daemon.ts` move them over TCP (nothing is lost between
 * them). The other daemon is the test: it reads the datagrams this daemon
 * sends and answers with its own.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { DaemonCore } from "../../lib/daemon/core.ts";
import { LineSplitter } from "../../lib/link/lines.ts";
import { ClientCore } from "../../lib/user/client_core.ts";
import { renderText } from "../../lib/user/render.ts";
import { type Datagram, Op, Type } from "../../lib/wire/datagram.ts";
import { control } from "../support/datagrams.ts";

const CLIENT = { ip: "127.0.91.100", port: 40000 };
const PEER = { ip: "127.0.91.101", port: 7777 };
const CONN = 1;

/** A client core and a daemon core joined over the link, in virtual time. */
class Pair {
  readonly daemon: DaemonCore;
  readonly client: ClientCore;
  /** What the client showed, as scripted text. */
  readonly lines: string[] = [];
  /** The datagrams the daemon sent to the peer. */
  readonly toPeer: Datagram[] = [];
  /** How many `send` requests were outstanding at most. */
  maxOutstanding = 0;
  exitCode: number | undefined;
  #splitter = new LineSplitter();
  #encoder = new TextEncoder();
  #sends = 0;
  #outcomes = 0;

  constructor(maxQueue: number) {
    this.daemon = new DaemonCore({
      ip: CLIENT.ip,
      port: 7777,
      session: { maxQueue },
    });
    this.client = new ClientCore({
      ip: CLIENT.ip,
      port: 7778,
      name: "alice",
      strict: true,
    });
    this.client.start(0);
    this.daemon.clientOpened(CONN, CLIENT, 0);
    this.client.opened(0);
    this.run();
  }

  /** Scripted input lines, then perhaps the end of input. */
  input(...lines: (string | null)[]): void {
    for (const line of lines) {
      if (line === null) this.client.inputEnd(0);
      else this.client.input(line, 0);
      this.run();
    }
  }

  /** A datagram from the peer. */
  fromPeer(bytes: Uint8Array): void {
    this.daemon.receivePeer(bytes, PEER, 0);
    this.run();
  }

  /** Moves everything between the two until nothing moves. */
  run(): void {
    for (let moved = true; moved;) {
      moved = false;
      for (const action of this.client.takeActions()) {
        moved = true;
        if (action.type === "write") {
          if (action.line.includes('"cmd":"send"')) this.#sends++;
          this.maxOutstanding = Math.max(
            this.maxOutstanding,
            this.#sends - this.#outcomes,
          );
          this.daemon.clientData(CONN, this.#encoder.encode(action.line), 0);
        } else if (action.type === "output") {
          const output = action.output;
          if (output.type === "delivered" || output.type === "undelivered") {
            this.#outcomes++;
          }
          this.lines.push(renderText(output));
        } else {
          this.exitCode = action.code;
        }
      }
      for (const action of this.daemon.takeActions()) {
        moved = true;
        if (action.type === "peer") {
          this.toPeer.push(action.datagram);
        } else if (action.type === "write") {
          this.daemon.clientWrote(CONN, action.bytes.length);
          for (const item of this.#splitter.push(action.bytes)) {
            this.client.receive(item, 0);
          }
        } else {
          this.daemon.clientClosed(CONN, 0);
          this.client.closed(0);
        }
      }
    }
  }
}

Deno.test("client and daemon: a piped chat is pipelined within the daemon's limit, loses no line and never meets queue-full (§5.1, §9)", () => {
  const pair = new Pair(3);
  pair.input("1", PEER.ip);
  pair.fromPeer(control(Op.SYN_ACK, 0, "bob"));
  ok(pair.lines.includes("chat started with bob at 127.0.91.101"));
  const texts = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
  pair.input(...texts, null);
  // Several sends went out before the first delivery: no stop-and-wait on the link.
  ok(pair.maxOutstanding > 1, `outstanding ${pair.maxOutstanding}`);
  strictEqual(pair.exitCode, undefined);
  // The peer acknowledges each chat datagram as it comes, one at a time.
  const received: string[] = [];
  for (let acked = 0; pair.exitCode === undefined && acked < 50; acked++) {
    const next = pair.toPeer.filter((d) => d.type === Type.CHAT)[acked];
    if (next === undefined) break;
    received.push(next.payload);
    pair.fromPeer(control(Op.ACK, next.seq, "bob"));
  }
  deepStrictEqual(received, texts);
  ok(pair.maxOutstanding <= 3, `outstanding ${pair.maxOutstanding}`);
  deepStrictEqual(
    pair.lines.filter((line) => /^(not sent|send queue full|error)/.test(line)),
    [],
  );
  strictEqual(
    pair.lines.filter((line) => line.startsWith("delivered #")).length,
    texts.length,
  );
  strictEqual(pair.exitCode, 0);
  strictEqual(pair.lines.at(-1), "bye");
});

Deno.test("client and daemon: a request that does not fit the moment is refused with the daemon's sentence", () => {
  const pair = new Pair(3);
  pair.input("1", "127.0.91.100");
  ok(
    pair.lines.some((line) =>
      /^error: 127\.0\.91\.100:7777 is this daemon/.test(line)
    ),
    pair.lines.join("\n"),
  );
  strictEqual(
    pair.lines.at(-1),
    "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit",
  );
});

Deno.test("client and daemon: /leave typed behind piped messages closes the chat after them: each is delivered, then FIN (§6.1)", () => {
  const pair = new Pair(3);
  pair.input("1", PEER.ip);
  pair.fromPeer(control(Op.SYN_ACK, 0, "bob"));
  const texts = ["one", "two", "three", "four", "five"];
  pair.input(...texts, "/leave", null);
  // The peer acknowledges each datagram as it comes, the FIN too.
  const seen: string[] = [];
  for (let acked = 0; pair.exitCode === undefined && acked < 20; acked++) {
    const next = pair.toPeer.filter((d) =>
      d.type === Type.CHAT || d.op === Op.FIN
    )[acked];
    if (next === undefined) break;
    seen.push(next.type === Type.CHAT ? next.payload : "FIN");
    pair.fromPeer(control(Op.ACK, next.seq, "bob"));
  }
  deepStrictEqual(seen, [...texts, "FIN"]);
  strictEqual(
    pair.lines.filter((line) => line.startsWith("delivered #")).length,
    texts.length,
  );
  ok(pair.lines.includes("chat closed"));
  strictEqual(pair.exitCode, 0);
});
