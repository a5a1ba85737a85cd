import {
  deepStrictEqual,
  match,
  ok,
  strictEqual,
  throws,
} from "node:assert/strict";
import fc from "fast-check";
import {
  type DaemonMessage,
  encodeDaemonMessage,
  encodeRequest,
  LINK_VERSION,
  LinkError,
  MAX_LINE_BYTES,
  parseDaemonMessage,
  parseRequest,
  quote,
  type Request,
} from "../../lib/link/protocol.ts";
import { MAX_PAYLOAD } from "../../lib/wire/datagram.ts";

/** Asserts that parsing `line` fails with a LinkError matching `message`. */
function refused(
  parse: (line: string) => unknown,
  line: string,
  message: RegExp,
  re: number | null = null,
): void {
  throws(() => parse(line), (error: unknown) => {
    ok(error instanceof LinkError, `not a LinkError: ${error}`);
    ok(message.test(error.message), error.message);
    strictEqual(error.re, re);
    return true;
  });
}

Deno.test("encodeRequest and parseRequest agree on every command", () => {
  const requests: Request[] = [
    { id: 1, cmd: "hello", v: LINK_VERSION, name: "alice" },
    { id: 2, cmd: "invite", ip: "127.0.0.2" },
    { id: 3, cmd: "invite", ip: "127.0.0.2", port: 9000 },
    { id: 4, cmd: "send", text: 'hi {there}\n"quoted"' },
    { id: 5, cmd: "accept" },
    { id: 6, cmd: "decline" },
    { id: 7, cmd: "leave" },
    { id: Number.MAX_SAFE_INTEGER, cmd: "quit" },
  ];
  for (const request of requests) {
    const line = encodeRequest(request);
    strictEqual(line.endsWith("\n"), true);
    strictEqual(line.indexOf("\n"), line.length - 1, "one line");
    deepStrictEqual(parseRequest(line.slice(0, -1)), request);
  }
});

Deno.test("parseRequest: not JSON, not an object, no readable id: error with re null", () => {
  refused(parseRequest, "", /^Bad request: not JSON/);
  refused(parseRequest, "{", /^Bad request: not JSON/);
  refused(parseRequest, "[1,2]", /^Bad request: an array is not a JSON object/);
  refused(parseRequest, '"hello"', /is not a JSON object/);
  refused(parseRequest, "null", /null is not a JSON object/);
  refused(
    parseRequest,
    '{"cmd":"quit"}',
    /`id` must be a non-negative integer/,
  );
  refused(parseRequest, '{"id":-1,"cmd":"quit"}', /`id` must be/);
  refused(parseRequest, '{"id":1.5,"cmd":"quit"}', /`id` must be/);
  refused(parseRequest, '{"id":"1","cmd":"quit"}', /got "1"/);
  refused(parseRequest, '{"id":1e400,"cmd":"quit"}', /`id` must be/);
  refused(parseRequest, '{"id":9007199254740992,"cmd":"quit"}', /`id` must/);
});

Deno.test("parseRequest: with a readable id the error names it", () => {
  refused(
    parseRequest,
    '{"id":7}',
    /^Missing `cmd`: use one of hello/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":5}',
    /^Bad request: `cmd` must be a string \(got 5\): use one of hello/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":"connect"}',
    /^Unknown command "connect"/,
    7,
  );
  refused(parseRequest, '{"id":7,"cmd":"toString"}', /Unknown command/, 7);
  refused(parseRequest, '{"id":7,"cmd":"__proto__"}', /Unknown command/, 7);
  refused(
    parseRequest,
    '{"id":7,"cmd":"invite","ip":"bob"}',
    /^Bad invite request: `ip` must be an IPv4 address such as 127\.0\.0\.2 \(got "bob"\)$/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":"invite","ip":"127.0.0.2","port":0}',
    /`port` must be an integer from 1 to 65535/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":"send"}',
    /^Bad send request: `text` is missing$/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":"send","text":"caf\u00e9"}',
    /^Bad send request: Message contains the non-ASCII character/,
    7,
  );
  refused(
    parseRequest,
    JSON.stringify({ id: 7, cmd: "send", text: "x".repeat(MAX_PAYLOAD + 1) }),
    /limit is 65468/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":"hello","name":"a"}',
    /^Bad hello request: `v` is missing$/,
    7,
  );
  refused(
    parseRequest,
    '{"id":7,"cmd":"hello","v":2,"name":""}',
    /User name must not be empty/,
    7,
  );
  refused(
    parseRequest,
    JSON.stringify({ id: 7, cmd: "hello", v: 2, name: "x".repeat(33) }),
    /at most 32/,
    7,
  );
});

Deno.test("parseRequest: every error has the code bad-request", () => {
  for (const line of ["", "[]", '{"id":1}', '{"id":1,"cmd":"send","text":1}']) {
    throws(
      () => parseRequest(line),
      (e: unknown) => (e as LinkError).code === "bad-request",
    );
  }
});

Deno.test("parseRequest: a hello of another version parses (the daemon answers it with code version)", () => {
  deepStrictEqual(parseRequest('{"id":1,"cmd":"hello","v":1,"name":"al"}'), {
    id: 1,
    cmd: "hello",
    v: 1,
    name: "al",
  });
});

Deno.test("parseRequest: unknown fields and prototype keys are ignored and never copied", () => {
  const r = parseRequest(
    '{"id":1,"cmd":"accept","extra":[[[1]]],"__proto__":{"polluted":true},"constructor":1}',
  );
  deepStrictEqual(r, { id: 1, cmd: "accept" });
  strictEqual(Object.getPrototypeOf(r), Object.prototype);
  strictEqual(({} as Record<string, unknown>).polluted, undefined);
  // An id inherited through __proto__ is not the request's own.
  refused(parseRequest, '{"__proto__":{"id":1},"cmd":"quit"}', /`id` must be/);
});

Deno.test("parseRequest: error messages quote at most 40 characters of the input", () => {
  const long = "y".repeat(10_000);
  for (
    const line of [
      JSON.stringify({ id: long, cmd: "quit" }),
      JSON.stringify({ id: 1, cmd: long }),
      JSON.stringify({ id: 1, cmd: "invite", ip: long }),
      JSON.stringify({ id: 1, cmd: "hello", v: 2, name: long }),
    ]
  ) {
    throws(() => parseRequest(line), (e: unknown) => {
      const message = (e as Error).message;
      ok(message.length < 200, message);
      ok(!message.includes("y".repeat(41)), message);
      return true;
    });
  }
});

Deno.test("parseRequest: deep nesting is refused without recursion", () => {
  const depth = 200_000;
  const deep = "[".repeat(depth) + "]".repeat(depth);
  refused(parseRequest, deep, /an array is not a JSON object/);
  refused(
    parseRequest,
    `{"id":1,"cmd":"invite","ip":${deep}}`,
    /got an array/,
    1,
  );
  refused(
    parseRequest,
    `{"id":1,"cmd":"hello","v":2,"name":${'{"a":'.repeat(50_000)}1${
      "}".repeat(50_000)
    }}`,
    /`name` must be a string \(got an object\)/,
    1,
  );
});

Deno.test("parseRequest: any input gives a request or a LinkError", () => {
  const values = fc.jsonValue({ maxDepth: 4 });
  const requestLike = fc.record({
    id: fc.oneof(fc.nat(), values),
    cmd: fc.oneof(
      fc.constantFrom("hello", "invite", "send", "accept", "quit", "__proto__"),
      values,
    ),
    v: fc.oneof(fc.constant(2), values),
    name: fc.oneof(fc.string(), values),
    ip: fc.oneof(fc.constant("127.0.0.2"), values),
    port: values,
    text: fc.oneof(fc.string(), values),
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        values.map((value) => JSON.stringify(value)),
        requestLike.map((value) => JSON.stringify(value)),
      ),
      (line) => {
        try {
          const r = parseRequest(line);
          ok(Number.isSafeInteger(r.id) && r.id >= 0);
        } catch (error) {
          ok(error instanceof LinkError, String(error));
          ok(error.message.length < 300);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("parseDaemonMessage: replies and events round-trip", () => {
  const messages: DaemonMessage[] = [
    {
      re: 1,
      ok: true,
      v: 2,
      state: {
        phase: "invited",
        peer: { ip: "127.0.0.2", port: 7777, name: "bob" },
      },
      limits: { queue: 64, text: MAX_PAYLOAD },
    },
    {
      re: 1,
      ok: true,
      v: 2,
      state: { phase: "idle" },
      limits: { queue: 1, text: 1 },
    },
    { re: 2, ok: true, msgId: 5 },
    { re: 3, ok: true },
    { re: null, ok: false, error: "Another client is connected", code: "busy" },
    { re: 4, ok: false, error: "Not in a chat" },
    { event: { type: "invitation", ip: "127.0.0.2", port: 7777, name: "bob" } },
    {
      event: {
        type: "invitation-ended",
        ip: "127.0.0.2",
        port: 7777,
        name: "bob",
        reason: "expired",
      },
    },
    { event: { type: "chat-started", ip: "127.0.0.2", port: 7777, name: "" } },
    { event: { type: "declined", ip: "127.0.0.2", port: 7777, name: "b" } },
    {
      event: {
        type: "busy",
        ip: "127.0.0.2",
        port: 7777,
        text: "User already",
      },
    },
    { event: { type: "no-answer", ip: "127.0.0.2", port: 7777 } },
    { event: { type: "message", name: "bob", text: "\uFFFD\u0000{}" } },
    { event: { type: "delivered", id: 1 } },
    { event: { type: "retransmitted", id: 1, attempt: 2 } },
    {
      event: {
        type: "peer-left",
        ip: "127.0.0.2",
        port: 1,
        name: "b",
        undelivered: 0,
      },
    },
    {
      event: {
        type: "peer-lost",
        ip: "127.0.0.2",
        port: 1,
        name: "b",
        undelivered: 2,
      },
    },
    {
      event: {
        type: "chat-closed",
        ip: "127.0.0.2",
        port: 1,
        name: "b",
        undelivered: 1,
      },
    },
    { event: { type: "undelivered", id: 3, text: "lost" } },
    { event: { type: "peer-error", ip: "127.0.0.2", port: 1, text: "oops" } },
    { event: { type: "daemon-stopping" } },
  ];
  for (const message of messages) {
    const line = encodeDaemonMessage(message);
    strictEqual(line.indexOf("\n"), line.length - 1);
    deepStrictEqual(parseDaemonMessage(line.slice(0, -1)), message);
  }
});

Deno.test("parseDaemonMessage: the longest event fits in a line", () => {
  const text = "\u0001".repeat(MAX_PAYLOAD); // 6 bytes each as JSON
  const line = encodeDaemonMessage({
    event: { type: "message", name: "b".repeat(32), text },
  });
  ok(new TextEncoder().encode(line).length - 1 <= MAX_LINE_BYTES);
  const textFFFD = "\uFFFD".repeat(MAX_PAYLOAD);
  const line2 = encodeDaemonMessage({
    event: {
      type: "peer-error",
      ip: "255.255.255.255",
      port: 65535,
      text: textFFFD,
    },
  });
  ok(new TextEncoder().encode(line2).length - 1 <= MAX_LINE_BYTES);
});

Deno.test("parseDaemonMessage: hostile messages are refused with a LinkError", () => {
  const bad: [string, RegExp][] = [
    ["", /not JSON/],
    ["[]", /not a JSON object/],
    ['{"event":[]}', /`event` must be an object/],
    ['{"event":{"type":"nope"}}', /Unknown event type "nope"/],
    ['{"event":{"type":"hasOwnProperty"}}', /Unknown event type/],
    [
      '{"event":{"type":"message","name":7,"text":"x"}}',
      /`name` must be a string/,
    ],
    [
      '{"event":{"type":"message","name":"' + "n".repeat(33) + '","text":"x"}}',
      /at most 32/,
    ],
    [
      '{"event":{"type":"message","name":[[[[["x"]]]]],"text":"x"}}',
      /got an array/,
    ],
    [
      '{"event":{"type":"delivered","id":1e300}}',
      /`id` must be a non-negative integer/,
    ],
    ['{"event":{"type":"retransmitted","id":1,"attempt":0}}', /at least 1/],
    [
      '{"event":{"type":"peer-left","ip":"x","port":1,"name":"","undelivered":0}}',
      /`ip`/,
    ],
    [
      '{"event":{"type":"peer-left","ip":"1.2.3.4","port":1,"name":""}}',
      /`undelivered` is missing/,
    ],
    ['{"re":1,"ok":"yes"}', /neither an event nor a reply/],
    ['{"re":"1","ok":true}', /`re` must be/],
    ['{"re":1,"ok":true,"v":2,"state":{"phase":"idle"}}', /`limits`/],
    [
      '{"re":1,"ok":true,"v":2,"state":{"phase":"dancing"},"limits":{"queue":1,"text":1}}',
      /`state\.phase`/,
    ],
    [
      '{"re":1,"ok":true,"v":2,"state":{"phase":"idle","peer":[[[]]]},"limits":{"queue":1,"text":1}}',
      /`state\.peer\.ip` is missing/,
    ],
    ['{"re":1,"ok":true,"msgId":-1}', /`msgId`/],
    ['{"re":1,"ok":false}', /^Bad error reply: `error` is missing$/],
    ['{"re":1,"ok":false,"error":"' + "e".repeat(3000) + '"}', /at most 2000/],
  ];
  for (const [line, message] of bad) refused(parseDaemonMessage, line, message);
});

Deno.test("parseDaemonMessage: an unknown error code counts as none; unknown fields are dropped", () => {
  deepStrictEqual(
    parseDaemonMessage('{"re":1,"ok":false,"error":"x","code":"new"}'),
    {
      re: 1,
      ok: false,
      error: "x",
    },
  );
  deepStrictEqual(
    parseDaemonMessage(
      '{"event":{"type":"delivered","id":1,"__proto__":{"x":1},"more":2}}',
    ),
    { event: { type: "delivered", id: 1 } },
  );
});

Deno.test("parseDaemonMessage: any input gives a message or a LinkError", () => {
  const values = fc.jsonValue({ maxDepth: 4 });
  const eventLike = fc.record({
    type: fc.oneof(
      fc.constantFrom(
        "message",
        "delivered",
        "peer-left",
        "invitation",
        "undelivered",
      ),
      values,
    ),
    ip: fc.oneof(fc.constant("127.0.0.2"), values),
    port: fc.oneof(fc.constant(7777), values),
    name: fc.oneof(fc.string(), values),
    text: fc.oneof(fc.string(), values),
    id: fc.oneof(fc.nat(), values),
    undelivered: fc.oneof(fc.nat(), values),
  }, { requiredKeys: [] });
  const replyLike = fc.record({
    re: fc.oneof(fc.nat(), fc.constant(null), values),
    ok: fc.oneof(fc.boolean(), values),
    v: values,
    state: values,
    limits: values,
    msgId: values,
    error: fc.oneof(fc.string(), values),
    code: values,
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        eventLike.map((event) => JSON.stringify({ event })),
        replyLike.map((reply) => JSON.stringify(reply)),
      ),
      (line) => {
        try {
          parseDaemonMessage(line);
        } catch (error) {
          ok(error instanceof LinkError, String(error));
          ok(error.message.length < 300);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("quote: short, whatever the value", () => {
  strictEqual(quote("abc"), '"abc"');
  strictEqual(Array.from(quote("x".repeat(1000))).length, 40);
  strictEqual(quote(12), "12");
  strictEqual(quote(null), "null");
  strictEqual(quote(undefined), "nothing");
  strictEqual(quote({ a: 1 }), "an object");
  strictEqual(quote([1]), "an array");
  ok(quote(1e300).length <= 40);
});

Deno.test("protocol: the events of issue 8 parse, and their numbers are checked", () => {
  for (
    const event of [
      {
        type: "invite-retry",
        ip: "127.0.0.5",
        port: 7777,
        attempt: 2,
        leftMs: 50_000,
      },
      { type: "busy-answered", ip: "127.0.0.3", port: 7777, name: "carol" },
      { type: "peer-reconnected", ip: "127.0.0.2", port: 7777, name: "bob" },
      {
        type: "chat-started",
        ip: "127.0.0.2",
        port: 7777,
        name: "bob",
        atOnce: true,
      },
    ]
  ) {
    deepStrictEqual(parseDaemonMessage(JSON.stringify({ event })), { event });
  }
  for (
    const [event, problem] of [
      [{
        type: "invite-retry",
        ip: "127.0.0.5",
        port: 7777,
        attempt: 1,
        leftMs: 1.5,
      }, /`leftMs` must be a non-negative integer/],
      [{
        type: "invite-retry",
        ip: "127.0.0.5",
        port: 7777,
        attempt: 0,
        leftMs: 1,
      }, /`attempt` must be at least 1/],
      [
        { type: "busy-answered", ip: "127.0.0.3", port: 7777 },
        /`name` is missing/,
      ],
      [{
        type: "chat-started",
        ip: "127.0.0.2",
        port: 7777,
        name: "b",
        atOnce: "yes",
      }, /`atOnce` must be true or false/],
    ] as const
  ) {
    let message = "";
    try {
      parseDaemonMessage(JSON.stringify({ event }));
    } catch (error) {
      message = (error as Error).message;
    }
    match(message, problem);
  }
});
