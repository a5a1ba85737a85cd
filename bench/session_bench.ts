/**
 * Benchmarks of the protocol engine (lib/peer/session.ts): one chat message
 * through two engines wired back to back — send, the chat datagram encoded,
 * decoded and ACKed, the ACK encoded, decoded and released — against the
 * codec work alone for the same two datagrams, so the engine's own cost
 * shows as a ratio measured in the same run.
 *
 * Run with `deno task bench`.
 */

import { SIMP_PORT } from "../lib/control.ts";
import {
  decodeDatagram,
  encodeDatagram,
  Op,
  Type,
} from "../lib/wire/datagram.ts";
import { type Action, Session } from "../lib/peer/session.ts";
import type { Address } from "../lib/address.ts";

const A: Address = { ip: "127.0.77.1", port: SIMP_PORT };
const B: Address = { ip: "127.0.77.2", port: SIMP_PORT };
const MESSAGE = "x".repeat(100);

/** Passes every datagram among `actions` to `to`; returns how many. */
function deliver(actions: Action[], from: Address, to: Session, now: number) {
  let n = 0;
  for (const action of actions) {
    if (action.type === "transmit") {
      to.receive(action.bytes, from, now);
      n++;
    }
  }
  return n;
}

/** Two engines with an established chat, alice → bob. */
function establishedPair(): { alice: Session; bob: Session } {
  const alice = new Session({ userName: "alice" });
  const bob = new Session({ userName: "bob" });
  alice.invite(B, 0);
  deliver(alice.takeActions(), A, bob, 1);
  bob.accept(2);
  deliver(bob.takeActions(), B, alice, 3);
  deliver(alice.takeActions(), A, bob, 4);
  bob.takeActions();
  if (alice.phase !== "established" || bob.phase !== "established") {
    throw new Error("The handshake did not complete");
  }
  return { alice, bob };
}

const { alice, bob } = establishedPair();
let now = 10;

Deno.bench({
  name: "engine: one 100-byte message sent, delivered and ACKed",
  group: "message",
  fn() {
    now += 1;
    alice.send(MESSAGE, now);
    deliver(alice.takeActions(), A, bob, now);
    deliver(bob.takeActions(), B, alice, now);
    alice.takeActions();
  },
});

const chat = {
  type: Type.CHAT,
  op: Op.CHAT,
  seq: 0,
  user: "alice",
  payload: MESSAGE,
} as const;
const ack = {
  type: Type.CONTROL,
  op: Op.ACK,
  seq: 0,
  user: "bob",
  payload: "",
} as const;

Deno.bench({
  name: "codec alone: the same chat datagram and ACK encoded and decoded",
  group: "message",
  baseline: true,
  fn() {
    decodeDatagram(encodeDatagram(chat));
    decodeDatagram(encodeDatagram(ack));
  },
});
