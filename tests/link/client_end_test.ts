import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import { ClientEnd } from "../../lib/link/client_end.ts";
import {
  encodeDaemonMessage,
  LinkError,
  parseRequest,
} from "../../lib/link/protocol.ts";

const HELLO_OK =
  '{"re":1,"ok":true,"v":2,"state":{"phase":"idle"},"limits":{"queue":2,"text":65468}}';

function ready(): ClientEnd {
  const end = new ClientEnd();
  end.hello("alice");
  strictEqual(end.receive(HELLO_OK).type, "reply");
  return end;
}

Deno.test("client end: hello is request 1, and its ok reply makes the end ready with state and limits", () => {
  const end = new ClientEnd();
  strictEqual(end.phase, "new");
  const line = end.hello("alice");
  deepStrictEqual(parseRequest(line.slice(0, -1)), {
    id: 1,
    cmd: "hello",
    v: 2,
    name: "alice",
  });
  strictEqual(end.phase, "greeting");
  const input = end.receive(HELLO_OK);
  strictEqual(input.type, "reply");
  strictEqual(end.phase, "ready");
  deepStrictEqual(end.state, { phase: "idle" });
  deepStrictEqual(end.limits, { queue: 2, text: 65468 });
  strictEqual(end.outstanding, 0);
});

Deno.test("client end: requests before hello, or a second hello, are refused", () => {
  const end = new ClientEnd();
  throws(() => end.request({ cmd: "accept" }), LinkError);
  end.hello("alice");
  throws(() => end.hello("alice"), LinkError);
  throws(
    () => end.request({ cmd: "hello", v: 2, name: "x" }),
    LinkError,
  );
});

Deno.test("client end: requests pipelined after hello get increasing ids and replies match in order", () => {
  const end = new ClientEnd();
  end.hello("alice");
  const invite = end.request({ cmd: "invite", ip: "127.0.0.2" });
  const send = end.request({ cmd: "send", text: "hi" });
  strictEqual(invite.id, 2);
  strictEqual(send.id, 3);
  strictEqual(end.outstanding, 3);
  strictEqual(end.receive(HELLO_OK).type, "reply");
  const r2 = end.receive('{"re":2,"ok":true}');
  strictEqual(r2.type === "reply" && r2.request.cmd, "invite");
  const r3 = end.receive('{"re":3,"ok":true,"msgId":1}');
  deepStrictEqual(r3, {
    type: "reply",
    request: { id: 3, cmd: "send", text: "hi" },
    reply: { re: 3, ok: true, msgId: 1 },
  });
  strictEqual(end.outstanding, 0);
});

Deno.test("client end: an error reply with re null answers the oldest request", () => {
  const end = new ClientEnd();
  end.hello("alice");
  const input = end.receive(
    '{"re":null,"ok":false,"error":"Another client is connected to this daemon (127.0.0.1:40112): quit it first","code":"busy"}',
  );
  strictEqual(input.type, "reply");
  strictEqual(input.type === "reply" && input.request.cmd, "hello");
  strictEqual(end.phase, "refused");
});

Deno.test("client end: an error with re null and nothing asked is a refusal", () => {
  const end = new ClientEnd();
  const input = end.receive(
    '{"re":null,"ok":false,"error":"Busy","code":"busy"}',
  );
  strictEqual(input.type, "refusal");
});

Deno.test("client end: a version error refuses the hello", () => {
  const end = new ClientEnd();
  end.hello("alice");
  const input = end.receive(
    '{"re":1,"ok":false,"error":"This daemon speaks link version 3","code":"version"}',
  );
  strictEqual(
    input.type === "reply" && !input.reply.ok && input.reply.code,
    "version",
  );
  strictEqual(end.phase, "refused");
});

Deno.test("client end: replies out of order, unasked, or of the wrong kind are violations", () => {
  const cases: [(end: ClientEnd) => void, string, RegExp][] = [
    [() => {}, '{"re":5,"ok":true}', /not asked/],
    [
      (e) => e.request({ cmd: "accept" }),
      '{"re":9,"ok":true}',
      /where 2 was expected/,
    ],
    [
      (e) => e.request({ cmd: "send", text: "x" }),
      '{"re":2,"ok":true}',
      /without a message id/,
    ],
    [
      (e) => e.request({ cmd: "accept" }),
      '{"re":2,"ok":true,"msgId":3}',
      /like another command/,
    ],
    [() => {}, "garbage", /not JSON/],
    [
      () => {},
      '{"event":{"type":"message","name":[[[]]],"text":"x"}}',
      /`name`/,
    ],
  ];
  for (const [before, line, message] of cases) {
    const end = ready();
    before(end);
    const input = end.receive(line);
    strictEqual(input.type, "violation", line);
    ok(input.type === "violation" && message.test(input.error.message), line);
  }
  const end = new ClientEnd();
  end.hello("a");
  const input = end.receive(
    '{"re":1,"ok":true,"v":3,"state":{"phase":"idle"},"limits":{"queue":1,"text":1}}',
  );
  ok(input.type === "violation" && /version 3/.test(input.error.message));
  strictEqual(end.phase, "greeting");
});

Deno.test("client end: unsettled sends count until delivered or undelivered (limits.queue)", () => {
  const end = ready(); // queue 2
  strictEqual(end.maySend, true);
  end.request({ cmd: "send", text: "a" }); // id 2
  end.request({ cmd: "send", text: "b" }); // id 3
  strictEqual(end.unsettledSends, 2);
  strictEqual(end.maySend, false);
  end.receive('{"re":2,"ok":true,"msgId":10}');
  end.receive('{"re":3,"ok":true,"msgId":11}');
  strictEqual(end.unsettledSends, 2);
  end.receive('{"event":{"type":"delivered","id":10}}');
  strictEqual(end.unsettledSends, 1);
  strictEqual(end.maySend, true);
  end.receive('{"event":{"type":"undelivered","id":11,"text":"b"}}');
  strictEqual(end.unsettledSends, 0);
  // A refused send is settled by its error reply.
  end.request({ cmd: "send", text: "c" });
  end.receive('{"re":4,"ok":false,"error":"Not in a chat"}');
  strictEqual(end.unsettledSends, 0);
});

Deno.test("client end: events pass through", () => {
  const end = ready();
  deepStrictEqual(
    end.receive('{"event":{"type":"message","name":"bob","text":"hi"}}'),
    {
      type: "event",
      event: { type: "message", name: "bob", text: "hi" },
    },
  );
});

Deno.test("client end: any line from the daemon gives an input, never an exception", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          fc.record({
            re: fc.oneof(fc.nat({ max: 5 }), fc.constant(null)),
            ok: fc.boolean(),
            msgId: fc.nat(),
            error: fc.string(),
          }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
          fc.constant(HELLO_OK),
          fc.constant(
            encodeDaemonMessage({ event: { type: "delivered", id: 1 } }).trim(),
          ),
        ),
        { maxLength: 10 },
      ),
      (lines) => {
        const end = new ClientEnd();
        end.hello("alice");
        end.request({ cmd: "send", text: "x" });
        for (const line of lines) {
          const input = end.receive(line);
          ok(["reply", "event", "refusal", "violation"].includes(input.type));
        }
      },
    ),
  );
});
