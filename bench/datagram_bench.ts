/**
 * Benchmarks of the wire codec: encoding and decoding a chat datagram that
 * carries a 100-byte message.
 */

import {
  type ChatDatagram,
  decodeDatagram,
  encodeDatagram,
  Op,
  Type,
} from "../lib/wire/datagram.ts";

const MESSAGE = "The quick brown fox jumps over the lazy dog. ".repeat(3)
  .slice(0, 100);

const CHAT: ChatDatagram = {
  type: Type.CHAT,
  op: Op.CHAT,
  seq: 1,
  user: "alice",
  payload: MESSAGE,
};

const BYTES = encodeDatagram(CHAT);

if (MESSAGE.length !== 100 || BYTES.length !== 139) {
  throw new Error(
    "Benchmark input is not a 100-byte chat message; fix MESSAGE",
  );
}

Deno.bench(
  "encode chat datagram, 100-byte message",
  { group: "chat-100" },
  () => {
    encodeDatagram(CHAT);
  },
);

Deno.bench(
  "decode chat datagram, 100-byte message",
  { group: "chat-100" },
  () => {
    decodeDatagram(BYTES);
  },
);
