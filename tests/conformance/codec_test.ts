/** The battery's own codec (lib/conformance/_codec.ts), and that it agrees with simp's on what is malformed. */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  ACK,
  CHAT,
  chat,
  CONTROL,
  control,
  describe,
  encode,
  ERR,
  FIN,
  hex,
  parse,
  problemOf,
  SYN,
  SYN_ACK,
} from "../../lib/conformance/_codec.ts";
import {
  decodeDatagram,
  encodeDatagram,
  Op,
  Type,
} from "../../lib/wire/datagram.ts";

Deno.test("codec: a SYN from alice is the bare header of §2, byte for byte", () => {
  strictEqual(
    hex(control(SYN, 0, "alice")),
    "010200616c696365" + "00".repeat(27) + "00000000",
  );
  const bytes = chat(1, "bob", "hi");
  strictEqual(hex(bytes.subarray(35)), "000000026869");
  deepStrictEqual(parse(bytes), {
    type: CHAT,
    op: 1,
    seq: 1,
    user: "bob",
    length: 2,
    payload: "hi",
  });
  strictEqual(describe(control(SYN_ACK, 0, "bob")), 'SYN+ACK seq=0 user="bob"');
  strictEqual(describe(new Uint8Array([1, 2])), "<2 bytes 0102>");
});

Deno.test("codec: each rule of §2 broken alone is named; simp's own codec rejects the same datagrams", () => {
  const broken: [Uint8Array, RegExp][] = [
    [control(SYN, 0, "a").subarray(0, 38), /fewer than 39/],
    [encode({ type: CONTROL, op: SYN, seq: 0, length: 1 }), /Length says 1/],
    [encode({ type: 3, op: SYN, seq: 0 }), /unknown Type 0x03/],
    [encode({ type: CONTROL, op: 0x05, seq: 0 }), /Operation 0x05/],
    [encode({ type: CHAT, op: 0x02, seq: 0, user: "a" }), /Operation 0x02/],
    [encode({ type: CONTROL, op: FIN, seq: 2 }), /Sequence 2/],
    [chat(0, "", "x"), /empty User/],
  ];
  for (const [bytes, want] of broken) {
    const problem = problemOf(bytes);
    ok(problem !== undefined && want.test(problem), `${problem} ~ ${want}`);
    throws(() => decodeDatagram(bytes), `simp decodes ${describe(bytes)}`);
  }
  // What a sender must not do, though a receiver takes it (§2.3, §2.4).
  ok(/0x80/.test(problemOf(chat(0, "a", "caf\xe9"))!));
  ok(/payload of 1 bytes on ACK/.test(problemOf(control(ACK, 0, "a", "x"))!));
  ok(/after the name's NUL/.test(problemOf(control(ACK, 0, "a\0b"))!));
});

Deno.test("codec: every datagram simp's codec encodes is well-formed to the battery", () => {
  const ops = [Op.SYN, Op.ACK, Op.SYN_ACK, Op.FIN] as const;
  for (const op of ops) {
    for (const seq of [0, 1] as const) {
      const bytes = encodeDatagram({
        type: Type.CONTROL,
        op,
        seq,
        user: "alice",
        payload: "",
      });
      strictEqual(problemOf(bytes), undefined, describe(bytes));
    }
  }
  const err = encodeDatagram({
    type: Type.CONTROL,
    op: Op.ERR,
    seq: 0,
    user: "",
    payload: "User already in another chat",
  });
  strictEqual(problemOf(err), undefined);
  deepStrictEqual(err, control(ERR, 0, "", "User already in another chat"));
  const message = encodeDatagram({
    type: Type.CHAT,
    op: Op.CHAT,
    seq: 1,
    user: "bob",
    payload: "hello",
  });
  deepStrictEqual(message, chat(1, "bob", "hello"));
});
