/**
 * Benchmarks of the link's parsing (SPEC §9): what the schemas (valibot)
 * cost per message, against a hand-written check of the same fields as the
 * reference, in the same run. The messages are the hot ones: a `send`
 * request with a 100-byte text (at the daemon) and a `message` event with
 * a 100-byte text (at the client). `JSON.parse` alone is measured too, as
 * both include it.
 */

import { checkText } from "../lib/wire/datagram.ts";
import { isIPv4 } from "../lib/address.ts";
import {
  encodeDaemonMessage,
  encodeRequest,
  parseDaemonMessage,
  parseRequest,
} from "../lib/link/protocol.ts";

const TEXT = "The quick brown fox jumps over the lazy dog. ".repeat(3)
  .slice(0, 100);

const SEND = encodeRequest({ id: 12345, cmd: "send", text: TEXT }).trimEnd();
const MESSAGE = encodeDaemonMessage({
  event: { type: "message", name: "alice", text: TEXT },
}).trimEnd();
const PEER_LEFT = encodeDaemonMessage({
  event: {
    type: "peer-left",
    ip: "127.0.0.2",
    port: 7777,
    name: "bob",
    undelivered: 0,
  },
}).trimEnd();

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** The reference: the same checks of a send request, by hand. */
function handParseSend(
  line: string,
): { id: number; cmd: "send"; text: string } {
  const m = JSON.parse(line);
  if (typeof m !== "object" || m === null || Array.isArray(m)) {
    throw new Error("Not an object");
  }
  if (!isCount(m.id)) throw new Error("Bad id");
  if (m.cmd !== "send") throw new Error("Bad cmd");
  if (typeof m.text !== "string" || checkText(m.text) !== undefined) {
    throw new Error("Bad text");
  }
  return { id: m.id, cmd: "send", text: m.text };
}

/** The reference: the same checks of a message event, by hand. */
function handParseMessage(line: string): unknown {
  const m = JSON.parse(line);
  if (typeof m !== "object" || m === null || Array.isArray(m)) {
    throw new Error("Not an object");
  }
  const e = m.event;
  if (typeof e !== "object" || e === null || e.type !== "message") {
    throw new Error("Bad event");
  }
  if (typeof e.name !== "string" || e.name.length > 32) {
    throw new Error("Bad name");
  }
  if (typeof e.text !== "string" || e.text.length > 65_468) {
    throw new Error("Bad text");
  }
  return { event: { type: "message", name: e.name, text: e.text } };
}

/** The reference for an event with an address. */
function handParsePeerLeft(line: string): unknown {
  const m = JSON.parse(line);
  const e = m?.event;
  if (
    typeof e !== "object" || e === null || e.type !== "peer-left" ||
    typeof e.ip !== "string" || !isIPv4(e.ip) ||
    !(Number.isInteger(e.port) && e.port >= 1 && e.port <= 65535) ||
    typeof e.name !== "string" || e.name.length > 32 || !isCount(e.undelivered)
  ) {
    throw new Error("Bad event");
  }
  return {
    event: {
      type: e.type,
      ip: e.ip,
      port: e.port,
      name: e.name,
      undelivered: e.undelivered,
    },
  };
}

Deno.bench("send request: JSON.parse only", { group: "send" }, () => {
  JSON.parse(SEND);
});
Deno.bench(
  "send request: hand-written check",
  { group: "send", baseline: true },
  () => {
    handParseSend(SEND);
  },
);
Deno.bench("send request: parseRequest (valibot)", { group: "send" }, () => {
  parseRequest(SEND);
});

Deno.bench("message event: JSON.parse only", { group: "message" }, () => {
  JSON.parse(MESSAGE);
});
Deno.bench(
  "message event: hand-written check",
  { group: "message", baseline: true },
  () => {
    handParseMessage(MESSAGE);
  },
);
Deno.bench(
  "message event: parseDaemonMessage (valibot)",
  { group: "message" },
  () => {
    parseDaemonMessage(MESSAGE);
  },
);

Deno.bench(
  "peer-left event: hand-written check",
  { group: "peer-left", baseline: true },
  () => {
    handParsePeerLeft(PEER_LEFT);
  },
);
Deno.bench(
  "peer-left event: parseDaemonMessage (valibot)",
  { group: "peer-left" },
  () => {
    parseDaemonMessage(PEER_LEFT);
  },
);
