/**
 * Tests of the daemon's end of the link (SPEC §7.2, §9) alone: the slot,
 * hello, bad input, the bounded backlog and the events kept for a client.
 * Pure: no sockets, no clock.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import {
  type ConnectionId,
  DaemonEnd,
  type DaemonEndAction,
  keptWhileDisconnected,
} from "../../lib/link/daemon_end.ts";
import {
  type DaemonMessage,
  type LinkEvent,
  MAX_LINE_BYTES,
  parseDaemonMessage,
} from "../../lib/link/protocol.ts";

const encoder = new TextEncoder();
const CLIENT = { ip: "127.0.0.1", port: 40001 };
const OTHER = { ip: "127.0.0.1", port: 40002 };
const LIMITS = { queue: 64, text: 65468 };

function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The lines written to each connection and the closes, parsed. */
function output(end: DaemonEnd): {
  lines: [ConnectionId, DaemonMessage][];
  closed: ConnectionId[];
} {
  const lines: [ConnectionId, DaemonMessage][] = [];
  const closed: ConnectionId[] = [];
  const decoder = new TextDecoder();
  for (const action of end.takeActions() as DaemonEndAction[]) {
    if (action.type === "close") {
      closed.push(action.conn);
      continue;
    }
    const text = decoder.decode(action.bytes);
    ok(text.endsWith("\n"), text);
    for (const line of text.slice(0, -1).split("\n")) {
      lines.push([action.conn, parseDaemonMessage(line)]);
    }
  }
  return { lines, closed };
}

/** Answers every valid request the way a trivial core would (ok). */
function answerAll(end: DaemonEnd): string[] {
  const commands: string[] = [];
  for (let next = end.next(); next !== undefined; next = end.next()) {
    const { request } = next;
    commands.push(request.cmd);
    if (request.cmd === "hello") {
      end.welcome(request.id, { phase: "idle" }, LIMITS);
    } else if (request.cmd === "quit") {
      end.quit(request.id);
    } else if (request.cmd === "send") {
      end.answer(request.id, { msgId: request.id * 10 });
    } else {
      end.answer(request.id);
    }
  }
  return commands;
}

function greeted(): DaemonEnd {
  const end = new DaemonEnd();
  end.open(1, CLIENT);
  end.receive(1, bytes('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'));
  answerAll(end);
  output(end);
  return end;
}

Deno.test("daemon end: hello is answered with version, state and limits (§9)", () => {
  const end = new DaemonEnd();
  end.open(1, CLIENT);
  end.receive(1, bytes('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'));
  deepStrictEqual(answerAll(end), ["hello"]);
  deepStrictEqual(output(end).lines, [[1, {
    re: 1,
    ok: true,
    v: 2,
    state: { phase: "idle" },
    limits: LIMITS,
  }]]);
  strictEqual(end.client?.greeted, true);
});

Deno.test("daemon end: a second connection gets the busy line naming the first client and is closed (§7.2)", () => {
  const end = greeted();
  end.open(2, OTHER);
  deepStrictEqual(output(end), {
    lines: [[2, {
      re: null,
      ok: false,
      error:
        "Another client is connected to this daemon (127.0.0.1:40001): quit it first",
      code: "busy",
    }]],
    closed: [2],
  });
  strictEqual(end.wantsInput(2), false);
  end.receive(2, bytes('{"id":1,"cmd":"hello","v":2,"name":"eve"}\n'));
  deepStrictEqual(answerAll(end), []);
  deepStrictEqual(end.client?.conn, 1);
  strictEqual(end.counters.refused, 1);
  end.closed(2);
  deepStrictEqual(end.client?.conn, 1);
});

Deno.test("daemon end: a closed connection frees the slot at once (§7.2)", () => {
  const end = greeted();
  end.closed(1);
  strictEqual(end.client, undefined);
  end.open(2, OTHER);
  strictEqual(end.client!.conn, 2);
  deepStrictEqual(output(end).lines, []);
});

Deno.test("daemon end: quit is answered, then the connection is closed and the slot freed once the shell closes it", () => {
  const end = greeted();
  end.receive(1, bytes('{"id":2,"cmd":"quit"}\n{"id":3,"cmd":"accept"}\n'));
  deepStrictEqual(answerAll(end), ["quit"]); // nothing read after quit
  deepStrictEqual(output(end), {
    lines: [[1, { re: 2, ok: true }]],
    closed: [1],
  });
  strictEqual(end.wantsInput(1), false);
  end.closed(1);
  strictEqual(end.client, undefined);
});

Deno.test("daemon end: a command before hello gets an error reply; the connection goes on (§9)", () => {
  const end = new DaemonEnd();
  end.open(1, CLIENT);
  end.receive(
    1,
    bytes(
      '{"id":1,"cmd":"accept"}\n{"id":2,"cmd":"hello","v":2,"name":"al"}\n',
    ),
  );
  deepStrictEqual(answerAll(end), ["hello"]);
  const { lines } = output(end);
  const first = lines[0][1];
  ok("ok" in first && !first.ok && first.re === 1, JSON.stringify(first));
  ok(/^Say hello first/.test(first.error), first.error);
  const second = lines[1][1];
  ok("ok" in second && second.ok);
});

Deno.test("daemon end: a hello of another version gets code version, then the connection is closed (§9)", () => {
  const end = new DaemonEnd();
  end.open(1, CLIENT);
  end.receive(1, bytes('{"id":1,"cmd":"hello","v":3,"name":"al"}\n'));
  deepStrictEqual(answerAll(end), []);
  deepStrictEqual(output(end), {
    lines: [[1, {
      re: 1,
      ok: false,
      error:
        "This daemon speaks link version 2, not 3: use a client of the same simp version",
      code: "version",
    }]],
    closed: [1],
  });
});

Deno.test("daemon end: a second hello is refused", () => {
  const end = greeted();
  end.receive(1, bytes('{"id":2,"cmd":"hello","v":2,"name":"al"}\n'));
  deepStrictEqual(answerAll(end), []);
  const [[, reply]] = output(end).lines;
  ok("re" in reply && reply.re === 2 && !reply.ok);
});

Deno.test("daemon end: every kind of bad line gets one error reply, in order with the replies around it, and the connection goes on (§9)", () => {
  const end = greeted();
  const bad = [
    "",
    "not json",
    "[1,2,3]",
    "42",
    '{"cmd":"accept"}',
    '{"id":-1,"cmd":"accept"}',
    '{"id":3,"cmd":"frobnicate"}',
    '{"id":4,"cmd":"invite","ip":"bob"}',
    '{"id":5,"cmd":"send","text":"caf\u00e9"}',
    '{"id":6,"cmd":"send","text":' + "[".repeat(100_000) +
    "]".repeat(100_000) + "}",
    '{"id":7,"cmd":"hello","v":2,"name":{"__proto__":{"x":1}}}',
  ];
  const input = [
    '{"id":2,"cmd":"accept"}',
    ...bad,
    '{"id":8,"cmd":"send","text":"still here"}',
  ].join("\n") + "\n";
  const invalid = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d, 0x0a]);
  end.receive(1, bytes(input));
  end.receive(1, invalid);
  end.receive(1, bytes('{"id":9,"cmd":"leave"}\n'));
  deepStrictEqual(answerAll(end), ["accept", "send", "leave"]);
  const replies = output(end).lines.map(([, m]) => m);
  strictEqual(replies.length, bad.length + 4);
  deepStrictEqual(replies[0], { re: 2, ok: true });
  for (const reply of replies.slice(1, bad.length + 1)) {
    ok("ok" in reply && !reply.ok, JSON.stringify(reply));
    strictEqual(reply.code, "bad-request");
    ok(reply.error.length < 200, reply.error);
  }
  deepStrictEqual(
    replies.slice(1, bad.length + 1).map((r) => "re" in r && r.re),
    [null, null, null, null, null, null, 3, 4, 5, 6, 7],
  );
  deepStrictEqual(replies[bad.length + 1], { re: 8, ok: true, msgId: 80 });
  deepStrictEqual(replies[bad.length + 2], {
    re: null,
    ok: false,
    error: "Bad request: the line is not valid UTF-8",
    code: "bad-request",
  });
  deepStrictEqual(replies[bad.length + 3], { re: 9, ok: true });
  strictEqual(end.counters["bad-lines"], bad.length + 1);
});

Deno.test("daemon end: a line over MAX_LINE_BYTES gets one error line, then the connection is closed (§9)", () => {
  const end = greeted();
  end.receive(
    1,
    bytes('{"id":2,"cmd":"accept"}\n{"id":3,"cmd":"send","text":"'),
  );
  // Endless input without a newline: nothing beyond the limit is held.
  const chunk = new Uint8Array(65_536).fill(0x78);
  let chunks = 0;
  while (end.wantsInput(1) && chunks < 100) {
    end.receive(1, chunk);
    chunks++;
    answerAll(end);
  }
  ok(chunks <= MAX_LINE_BYTES / 65_536 + 1, `${chunks} chunks`);
  const { lines, closed } = output(end);
  deepStrictEqual(lines.map(([, m]) => m), [
    { re: 2, ok: true },
    {
      re: null,
      ok: false,
      error:
        `Line longer than ${MAX_LINE_BYTES} bytes: the connection is closed (send one JSON object per line)`,
      code: "bad-request",
    },
  ]);
  deepStrictEqual(closed, [1]);
  end.receive(1, bytes('"}\n{"id":4,"cmd":"leave"}\n'));
  deepStrictEqual(answerAll(end), []);
});

Deno.test("daemon end: the backlog counts what is written and not yet reported; over its limit there is no room and no input wanted", () => {
  const end = new DaemonEnd({ backlogLimit: 1000 });
  end.open(1, CLIENT);
  end.receive(1, bytes('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'));
  answerAll(end);
  const written = end.takeActions().reduce(
    (n, a) => n + (a.type === "write" ? a.bytes.length : 0),
    0,
  );
  strictEqual(end.backlog, written);
  end.wrote(1, written);
  strictEqual(end.backlog, 0);
  const event: LinkEvent = {
    type: "message",
    name: "bob",
    text: "x".repeat(300),
  };
  let sent = 0;
  while (end.hasRoom) {
    ok(end.emit(event));
    sent++;
  }
  strictEqual(sent, 3); // about 340 bytes each
  strictEqual(end.wantsInput(1), false);
  // Peer errors (a peer alone can repeat them) are dropped over the limit.
  strictEqual(
    end.emit({ type: "peer-error", ip: "127.0.0.2", port: 7777, text: "x" }),
    false,
  );
  strictEqual(end.counters["over-limit"], 1);
  end.wrote(1, end.backlog);
  strictEqual(end.hasRoom, true);
  strictEqual(end.wantsInput(1), true);
});

Deno.test("daemon end: events with no client that said hello are kept, bounded, and sent after the hello reply (§4.9)", () => {
  const end = new DaemonEnd({ keptLimit: 500 });
  const kept: LinkEvent[] = [
    { type: "message", name: "bob", text: "one" },
    {
      type: "peer-left",
      ip: "127.0.0.2",
      port: 7777,
      name: "bob",
      undelivered: 1,
    },
    { type: "undelivered", id: 4, text: "lost" },
  ];
  for (const event of kept) ok(end.emit(event));
  // Not kept: news the hello reply's state gives, or for a gone client.
  strictEqual(end.emit({ type: "delivered", id: 1 }), false);
  strictEqual(
    end.emit({ type: "invitation", ip: "127.0.0.2", port: 1, name: "b" }),
    false,
  );
  strictEqual(end.kept, 3);
  // A client that connected but has not said hello gets nothing yet.
  end.open(1, CLIENT);
  ok(end.emit({ type: "message", name: "bob", text: "two" }));
  deepStrictEqual(output(end).lines, []);
  end.receive(1, bytes('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'));
  answerAll(end);
  deepStrictEqual(output(end).lines.map(([, m]) => m), [
    { re: 1, ok: true, v: 2, state: { phase: "idle" }, limits: LIMITS },
    ...kept.map((event) => ({ event })),
    { event: { type: "message", name: "bob", text: "two" } },
  ]);
  strictEqual(end.kept, 0);
});

Deno.test("daemon end: over the kept limit there is no room for new chat messages, and peer errors are dropped (§7.3)", () => {
  const end = new DaemonEnd({ keptLimit: 400 }); // about 150 bytes a line
  let count = 0;
  while (end.hasRoom) {
    end.emit({ type: "message", name: "bob", text: "y".repeat(100) });
    count++;
  }
  strictEqual(count, 3);
  strictEqual(
    end.emit({ type: "peer-error", ip: "127.0.0.2", port: 1, text: "e" }),
    false,
  );
  // So are the notices peers can repeat without end (issue 8).
  for (const type of ["busy-answered", "peer-reconnected"] as const) {
    strictEqual(
      end.emit({ type, ip: "127.0.0.3", port: 1, name: "c" }),
      false,
      type,
    );
  }
  // An invitation's progress is not kept for a client that is gone.
  strictEqual(
    keptWhileDisconnected({
      type: "invite-retry",
      ip: "127.0.0.2",
      port: 1,
      attempt: 1,
      leftMs: 1,
    }),
    false,
  );
  // The end of a chat is still kept: it comes once per chat.
  ok(
    end.emit({
      type: "peer-lost",
      ip: "127.0.0.2",
      port: 1,
      name: "b",
      undelivered: 0,
    }),
  );
});

Deno.test("keptWhileDisconnected: chat-closed only with undelivered messages", () => {
  const closed = {
    type: "chat-closed",
    ip: "127.0.0.2",
    port: 1,
    name: "b",
  } as const;
  strictEqual(keptWhileDisconnected({ ...closed, undelivered: 0 }), false);
  strictEqual(keptWhileDisconnected({ ...closed, undelivered: 1 }), true);
  strictEqual(keptWhileDisconnected({ type: "daemon-stopping" }), false);
});

Deno.test("daemon end: any bytes from a client give replies or a close, never an exception, and bounded memory", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.jsonValue({ maxDepth: 3 }).map((v) =>
            bytes(JSON.stringify(v) + "\n")
          ),
          fc.constantFrom(
            bytes('{"id":1,"cmd":"hello","v":2,"name":"alice"}\n'),
            bytes('{"id":2,"cmd":"send","text":"hi"}\n'),
            bytes("\n"),
          ),
        ),
        { maxLength: 20 },
      ),
      (chunks) => {
        const end = new DaemonEnd({ maxLineBytes: 256 });
        end.open(1, CLIENT);
        for (const chunk of chunks) {
          end.receive(1, chunk);
          answerAll(end);
          output(end);
        }
      },
    ),
    { numRuns: 300 },
  );
});
