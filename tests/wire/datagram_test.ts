/**
 * Tests of the wire codec against SPEC §2: golden byte vectors written out by
 * hand, one test per decoding rule, the encoder's refusals, and property tests
 * (round trip, and a decoder that only ever throws MalformedDatagramError).
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import {
  BUSY_TEXT,
  type ChatDatagram,
  checkText,
  type ControlDatagram,
  type Datagram,
  decodeDatagram,
  encodeDatagram,
  HEADER_SIZE,
  InvalidDatagramError,
  MalformedDatagramError,
  type MalformedReason,
  MAX_PAYLOAD,
  Op,
  Type,
} from "../../lib/wire/datagram.ts";

/** Hex digits (whitespace ignored) to bytes. */
function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  if (!/^(?:[0-9a-f]{2})*$/.test(digits)) {
    throw new Error(`Bad hex in test vector: ${text}`);
  }
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

/** A copy of `bytes` with the given offsets overwritten. */
function patch(bytes: Uint8Array, changes: Record<number, number>): Uint8Array {
  const copy = bytes.slice();
  for (const [offset, value] of Object.entries(changes)) {
    copy[Number(offset)] = value;
  }
  return copy;
}

/** The User field (32 bytes), written out, for the names in the vectors. */
const USER_ALICE =
  "616c6963 65000000 00000000 00000000 00000000 00000000 00000000 00000000";
const USER_BOB =
  "626f6200 00000000 00000000 00000000 00000000 00000000 00000000 00000000";

/**
 * Golden vectors: Type | Operation | Sequence | User (32) | Length (4, BE) |
 * payload. Computed by hand from SPEC §2; the same bytes are listed in
 * docs/PROTOCOL.md.
 */
const GOLDEN: { name: string; datagram: Datagram; bytes: Uint8Array }[] = [
  {
    name: "SYN from alice, Sequence 0",
    datagram: {
      type: Type.CONTROL,
      op: Op.SYN,
      seq: 0,
      user: "alice",
      payload: "",
    },
    bytes: hex(`01 02 00 ${USER_ALICE} 00000000`),
  },
  {
    name: "SYN+ACK (0x06) from bob, Sequence 0",
    datagram: {
      type: Type.CONTROL,
      op: Op.SYN_ACK,
      seq: 0,
      user: "bob",
      payload: "",
    },
    bytes: hex(`01 06 00 ${USER_BOB} 00000000`),
  },
  {
    name: "ACK from alice, Sequence 1",
    datagram: {
      type: Type.CONTROL,
      op: Op.ACK,
      seq: 1,
      user: "alice",
      payload: "",
    },
    bytes: hex(`01 04 01 ${USER_ALICE} 00000000`),
  },
  {
    name: "FIN from alice, Sequence 0",
    datagram: {
      type: Type.CONTROL,
      op: Op.FIN,
      seq: 0,
      user: "alice",
      payload: "",
    },
    bytes: hex(`01 08 00 ${USER_ALICE} 00000000`),
  },
  {
    name: "ERR from bob with the busy text",
    datagram: {
      type: Type.CONTROL,
      op: Op.ERR,
      seq: 0,
      user: "bob",
      payload: "User already in another chat",
    },
    // "User already in another chat" is 28 = 0x1c bytes.
    bytes: hex(
      `01 01 00 ${USER_BOB} 0000001c
       55736572 20616c72 65616479 20696e20 616e6f74 68657220 63686174`,
    ),
  },
  {
    name: 'chat "hello" from bob, Sequence 1',
    datagram: {
      type: Type.CHAT,
      op: Op.CHAT,
      seq: 1,
      user: "bob",
      payload: "hello",
    },
    bytes: hex(`02 01 01 ${USER_BOB} 00000005 68656c6c 6f`),
  },
];

const SYN = GOLDEN[0].bytes;
const CHAT_HELLO = GOLDEN[5].bytes;

Deno.test("§2 golden vectors: the busy text is the one of §4.8", () => {
  strictEqual(GOLDEN[4].datagram.payload, BUSY_TEXT);
});

for (const { name, datagram, bytes } of GOLDEN) {
  Deno.test(`§2 golden vector encodes byte-exact: ${name}`, () => {
    deepStrictEqual(encodeDatagram(datagram), bytes);
  });
  Deno.test(`§2 golden vector decodes: ${name}`, () => {
    deepStrictEqual(decodeDatagram(bytes), datagram);
  });
}

Deno.test("§2 golden vector decodes from a view into a larger buffer", () => {
  const buffer = new Uint8Array(CHAT_HELLO.length + 10).fill(0xee);
  buffer.set(CHAT_HELLO, 7);
  const view = buffer.subarray(7, 7 + CHAT_HELLO.length);
  deepStrictEqual(decodeDatagram(view), GOLDEN[5].datagram);
});

// ---------------------------------------------------------------------------
// §2.1–§2.2: malformed datagrams

/** Asserts that decoding `bytes` throws MalformedDatagramError for `reason`. */
function assertMalformed(bytes: Uint8Array, reason: MalformedReason): void {
  throws(
    () => decodeDatagram(bytes),
    (error: unknown) => {
      ok(error instanceof MalformedDatagramError, String(error));
      strictEqual(error.reason, reason);
      return true;
    },
  );
}

Deno.test("§2.1 fewer than 39 bytes is malformed", () => {
  assertMalformed(SYN.subarray(0, HEADER_SIZE - 1), "too-short");
  assertMalformed(new Uint8Array(0), "too-short");
  assertMalformed(new Uint8Array([0x01]), "too-short");
});

Deno.test("§2.1 Length ≠ bytes after the header is malformed (more bytes than Length)", () => {
  const extra = new Uint8Array(CHAT_HELLO.length + 1);
  extra.set(CHAT_HELLO);
  assertMalformed(extra, "length-mismatch");
  const synWithByte = new Uint8Array(SYN.length + 1);
  synWithByte.set(SYN);
  assertMalformed(synWithByte, "length-mismatch");
});

Deno.test("§2.1 Length ≠ bytes after the header is malformed (fewer bytes than Length)", () => {
  assertMalformed(
    CHAT_HELLO.subarray(0, CHAT_HELLO.length - 1),
    "length-mismatch",
  );
  assertMalformed(CHAT_HELLO.subarray(0, HEADER_SIZE), "length-mismatch");
  // A Length with the high byte set must not wrap around.
  assertMalformed(patch(SYN, { 35: 0x80 }), "length-mismatch");
});

Deno.test("§2.1 unknown Type is malformed", () => {
  for (const type of [0x00, 0x03, 0x04, 0x80, 0xff]) {
    assertMalformed(patch(SYN, { 0: type }), "unknown-type");
  }
});

Deno.test("§2.1 an Operation not listed for its Type is malformed (chat op 0x02)", () => {
  assertMalformed(patch(CHAT_HELLO, { 1: 0x02 }), "unknown-operation");
  assertMalformed(patch(CHAT_HELLO, { 1: 0x00 }), "unknown-operation");
  assertMalformed(patch(CHAT_HELLO, { 1: 0x06 }), "unknown-operation");
});

Deno.test("§2.1 an Operation not listed for its Type is malformed (control op 0x03)", () => {
  for (const op of [0x00, 0x03, 0x05, 0x07, 0x09, 0x0c, 0x0e, 0x10, 0xff]) {
    assertMalformed(patch(SYN, { 1: op }), "unknown-operation");
  }
});

Deno.test("§2.1 Sequence other than 0 or 1 is malformed", () => {
  assertMalformed(patch(SYN, { 2: 2 }), "bad-sequence");
  assertMalformed(patch(CHAT_HELLO, { 2: 2 }), "bad-sequence");
  assertMalformed(patch(CHAT_HELLO, { 2: 0xff }), "bad-sequence");
});

Deno.test("§2.2 chat datagram with an empty user name is malformed", () => {
  // User field all 0x00.
  assertMalformed(patch(CHAT_HELLO, { 3: 0, 4: 0, 5: 0 }), "empty-user");
  // A name that is only spaces is empty once trimmed.
  assertMalformed(
    patch(CHAT_HELLO, { 3: 0x20, 4: 0x20, 5: 0x20 }),
    "empty-user",
  );
  // A NUL first: whatever follows it does not count.
  assertMalformed(patch(CHAT_HELLO, { 3: 0 }), "empty-user");
});

Deno.test("§2.1 malformed errors name the rule and say why", () => {
  throws(
    () => decodeDatagram(new Uint8Array(3)),
    (error: unknown) => {
      ok(error instanceof MalformedDatagramError);
      strictEqual(error.name, "MalformedDatagramError");
      strictEqual(error.rule, "§2.1");
      ok(error.message.startsWith("Malformed datagram (§2.1 too-short)"));
      return true;
    },
  );
});

Deno.test("§2.2 the empty-user error names rule §2.2", () => {
  throws(
    () => decodeDatagram(patch(CHAT_HELLO, { 3: 0 })),
    (error: unknown) => {
      ok(error instanceof MalformedDatagramError);
      strictEqual(error.rule, "§2.2");
      return true;
    },
  );
});

// ---------------------------------------------------------------------------
// §2.2–§2.4: liberal decoding

Deno.test("§2.3 bytes ≥ 0x80 in the payload decode as U+FFFD", () => {
  const bytes = patch(CHAT_HELLO, { 39: 0x80, 41: 0xff });
  strictEqual(decodeDatagram(bytes).payload, "\ufffde\ufffdlo");
});

Deno.test("§2.3 bytes ≥ 0x80 in the user name decode as U+FFFD", () => {
  const bytes = patch(CHAT_HELLO, { 4: 0xc3, 5: 0xa9 });
  strictEqual(decodeDatagram(bytes).user, "b\ufffd\ufffd");
});

Deno.test("§2.3 bytes ≥ 0x80 in ERR text decode as U+FFFD", () => {
  const bytes = patch(GOLDEN[4].bytes, { 39: 0xf0 });
  strictEqual(
    decodeDatagram(bytes).payload,
    "\ufffdser already in another chat",
  );
});

Deno.test("§2.2 trailing spaces of the user name are trimmed", () => {
  // "bob  " then NUL padding.
  const bytes = patch(CHAT_HELLO, { 6: 0x20, 7: 0x20 });
  strictEqual(decodeDatagram(bytes).user, "bob");
  // A name filling all 32 bytes with a trailing space, no NUL at all.
  const full = SYN.slice();
  full.fill(0x61, 3, 34);
  full[34] = 0x20;
  strictEqual(decodeDatagram(full).user, "a".repeat(31));
});

Deno.test("§2.2 leading and inner spaces of the user name are kept", () => {
  const bytes = patch(CHAT_HELLO, { 3: 0x20, 4: 0x62, 5: 0x20, 6: 0x62 });
  strictEqual(decodeDatagram(bytes).user, " b b");
});

Deno.test("§2.2 bytes after the first NUL of the user name are ignored", () => {
  // "bob\0xyz"
  const bytes = patch(CHAT_HELLO, { 7: 0x78, 8: 0x79, 9: 0x7a, 34: 0x41 });
  strictEqual(decodeDatagram(bytes).user, "bob");
});

Deno.test("§2.2 a 32-byte user name without NUL decodes whole", () => {
  const bytes = SYN.slice();
  bytes.fill(0x7a, 3, 35);
  strictEqual(decodeDatagram(bytes).user, "z".repeat(32));
});

Deno.test("§2.2 an empty user name is allowed on control datagrams", () => {
  for (const op of [Op.ERR, Op.SYN, Op.ACK, Op.SYN_ACK, Op.FIN]) {
    const bytes = patch(SYN, { 1: op, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0 });
    const d = decodeDatagram(bytes);
    strictEqual(d.user, "");
    strictEqual(d.op, op);
  }
});

Deno.test("§2.4 a payload on SYN, ACK, FIN or SYN+ACK is ignored", () => {
  for (const op of [Op.SYN, Op.ACK, Op.FIN, Op.SYN_ACK]) {
    // The chat bytes with a control Type and this Operation: Length 5, "hello".
    const bytes = patch(CHAT_HELLO, { 0: Type.CONTROL, 1: op });
    deepStrictEqual(decodeDatagram(bytes), {
      type: Type.CONTROL,
      op,
      seq: 1,
      user: "bob",
      payload: "",
    });
  }
});

Deno.test("§2 a chat datagram may carry an empty message", () => {
  const bytes = hex(`02 01 00 ${USER_BOB} 00000000`);
  deepStrictEqual(decodeDatagram(bytes), {
    type: Type.CHAT,
    op: Op.CHAT,
    seq: 0,
    user: "bob",
    payload: "",
  });
});

// ---------------------------------------------------------------------------
// §2.3, §2.5: what the encoder refuses to send

const CHAT: ChatDatagram = {
  type: Type.CHAT,
  op: Op.CHAT,
  seq: 0,
  user: "alice",
  payload: "hi",
};
const SYN_DATAGRAM: ControlDatagram = {
  type: Type.CONTROL,
  op: Op.SYN,
  seq: 0,
  user: "alice",
  payload: "",
};

/** Asserts that encoding `d` throws InvalidDatagramError matching `message`. */
function assertRefused(d: Datagram, message: RegExp): void {
  throws(
    () => encodeDatagram(d),
    (error: unknown) => {
      ok(error instanceof InvalidDatagramError, String(error));
      ok(message.test(error.message), error.message);
      ok(
        /^[A-Z]/.test(error.message),
        `Starts with a capital: ${error.message}`,
      );
      ok(!error.message.endsWith("."), `No trailing period: ${error.message}`);
      return true;
    },
  );
}

Deno.test("§2.3 the encoder refuses a non-ASCII user name", () => {
  assertRefused({ ...CHAT, user: "zoë" }, /ASCII/);
  assertRefused({ ...SYN_DATAGRAM, user: "\u{1f600}" }, /ASCII/);
});

Deno.test("§2.3 the encoder refuses a user name with control characters", () => {
  assertRefused({ ...CHAT, user: "a\x00b" }, /ASCII/);
  assertRefused({ ...CHAT, user: "a\tb" }, /ASCII/);
});

Deno.test("§2.3 the encoder refuses non-ASCII text", () => {
  assertRefused({ ...CHAT, payload: "café" }, /non-ASCII/);
  assertRefused(
    { ...SYN_DATAGRAM, op: Op.ERR, payload: "busy \u2014 sorry" },
    /non-ASCII/,
  );
});

Deno.test("§2.3 the refusal of non-ASCII text names the whole character", () => {
  // An emoji is two UTF-16 code units; the message must show it, not half.
  assertRefused({ ...CHAT, payload: "hi \u{1f600}!" }, /"\u{1f600}"/u);
  strictEqual(
    checkText("caf\u00e9"),
    'Message contains the non-ASCII character "\u00e9"; SIMP carries ASCII only',
  );
});

Deno.test("§2.3 the encoder refuses a 33-character user name instead of truncating it", () => {
  assertRefused({ ...CHAT, user: "a".repeat(33) }, /33 characters.*32/);
  deepStrictEqual(
    decodeDatagram(encodeDatagram({ ...CHAT, user: "a".repeat(32) })).user,
    "a".repeat(32),
  );
});

Deno.test("§2.2 the encoder refuses a user name with a trailing space", () => {
  assertRefused({ ...CHAT, user: "alice " }, /space/);
});

Deno.test("§2.4 the encoder refuses a payload on SYN, ACK, FIN and SYN+ACK", () => {
  for (const op of [Op.SYN, Op.ACK, Op.FIN, Op.SYN_ACK]) {
    assertRefused({ ...SYN_DATAGRAM, op, payload: "x" }, /no payload/);
  }
});

Deno.test("§2.5 the encoder refuses a payload of MAX_PAYLOAD + 1 bytes", () => {
  strictEqual(MAX_PAYLOAD, 65_507 - 39);
  assertRefused({ ...CHAT, payload: "x".repeat(MAX_PAYLOAD + 1) }, /limit/);
  const largest = encodeDatagram({ ...CHAT, payload: "x".repeat(MAX_PAYLOAD) });
  strictEqual(largest.length, 65_507);
});

Deno.test("§2.1 the encoder refuses Sequence 2", () => {
  assertRefused({ ...CHAT, seq: 2 as 0 }, /Sequence/);
});

Deno.test("§2.2 the encoder refuses a chat datagram with an empty user name", () => {
  assertRefused({ ...CHAT, user: "" }, /user name/);
});

Deno.test("§2.1 the encoder refuses an unknown Type or Operation", () => {
  assertRefused({ ...CHAT, type: 3 } as unknown as Datagram, /Type/);
  assertRefused({ ...CHAT, op: 2 } as unknown as Datagram, /Operation/);
  assertRefused({ ...SYN_DATAGRAM, op: 3 } as unknown as Datagram, /Operation/);
});

// ---------------------------------------------------------------------------
// Properties

/** One character from the code points min..max. */
function charIn(min: number, max: number): fc.Arbitrary<string> {
  return fc.integer({ min, max }).map((c) => String.fromCharCode(c));
}

/** A name we may send: printable ASCII, at most 32, no trailing space. */
function nameArbitrary(minLength: number): fc.Arbitrary<string> {
  return fc
    .string({ unit: charIn(0x20, 0x7e), minLength, maxLength: 32 })
    .filter((s) => !s.endsWith(" "));
}

/** Any ASCII text (control characters and NUL included). */
const asciiText = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.string({ unit: charIn(0x00, 0x7f), maxLength: 64 }),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: charIn(0x00, 0x7f), maxLength: 2000 }),
  },
);

const seqArbitrary = fc.constantFrom<0 | 1>(0, 1);

// fc.record builds null-prototype objects; spread them into plain ones so that
// deepStrictEqual compares them with the decoder's output.
const validDatagram: fc.Arbitrary<Datagram> = fc.oneof(
  fc.record({
    type: fc.constant(Type.CHAT),
    op: fc.constant(Op.CHAT),
    seq: seqArbitrary,
    user: nameArbitrary(1),
    payload: asciiText,
  }),
  fc.record({
    type: fc.constant(Type.CONTROL),
    op: fc.constant(Op.ERR),
    seq: seqArbitrary,
    user: nameArbitrary(0),
    payload: asciiText,
  }),
  fc.record({
    type: fc.constant(Type.CONTROL),
    op: fc.constantFrom(Op.SYN, Op.ACK, Op.SYN_ACK, Op.FIN),
    seq: seqArbitrary,
    user: nameArbitrary(0),
    payload: fc.constant(""),
  }),
).map((d): Datagram => ({ ...d }));

Deno.test("§2 decode(encode(d)) equals d for every valid datagram", () => {
  fc.assert(
    fc.property(validDatagram, (d) => {
      const bytes = encodeDatagram(d);
      strictEqual(bytes.length, HEADER_SIZE + d.payload.length);
      deepStrictEqual(decodeDatagram(bytes), d);
    }),
    { numRuns: 20_000 },
  );
});

/** A byte that is usually a valid field value and sometimes anything. */
function mostly(...values: number[]): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...values) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  );
}

/**
 * Bytes with a header whose Length field usually matches, so that most of
 * them get past the length check and exercise the later rules; placed at a
 * random offset of a larger buffer now and then.
 */
const headerLikeBytes: fc.Arbitrary<Uint8Array> = fc
  .record({
    type: mostly(Type.CONTROL, Type.CHAT),
    op: mostly(Op.ERR, Op.SYN, Op.ACK, Op.SYN_ACK, Op.FIN),
    seq: mostly(0, 1),
    user: fc.oneof(
      nameArbitrary(0).map((s) => Uint8Array.from(s, (c) => c.charCodeAt(0))),
      fc.uint8Array({ maxLength: 32 }),
    ),
    payload: fc.uint8Array({ maxLength: 64 }),
    lengthDelta: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: -70, max: 70 }) },
    ),
    offset: fc.oneof(
      { weight: 4, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }) },
    ),
  })
  .map(({ type, op, seq, user, payload, lengthDelta, offset }) => {
    const size = HEADER_SIZE + payload.length;
    const buffer = new Uint8Array(offset + size + 3).fill(0xa5);
    const bytes = buffer.subarray(offset, offset + size);
    bytes.fill(0);
    bytes[0] = type;
    bytes[1] = op;
    bytes[2] = seq;
    bytes.set(user, 3);
    new DataView(buffer.buffer).setUint32(
      offset + 35,
      Math.max(0, payload.length + lengthDelta),
    );
    bytes.set(payload, HEADER_SIZE);
    return bytes;
  });

const anyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 120 }),
  headerLikeBytes,
);

Deno.test("§2 decoding arbitrary bytes throws nothing but MalformedDatagramError", () => {
  let decoded = 0;
  fc.assert(
    fc.property(anyBytes, (bytes) => {
      let d: Datagram;
      try {
        d = decodeDatagram(bytes);
      } catch (error) {
        if (error instanceof MalformedDatagramError) return true;
        throw error;
      }
      decoded++;
      // What comes out obeys §2: a known Type/Operation, a sequence bit, a
      // name of at most 32 characters without trailing spaces, non-empty on
      // chat, and no payload on SYN/ACK/FIN/SYN+ACK.
      ok(d.type === Type.CONTROL || d.type === Type.CHAT);
      ok(d.seq === 0 || d.seq === 1);
      ok(d.user.length <= 32 && !d.user.endsWith(" "));
      ok(!d.user.includes("\0"));
      if (d.type === Type.CHAT) ok(d.user !== "");
      else if (d.op !== Op.ERR) strictEqual(d.payload, "");
      return true;
    }),
    { numRuns: 100_000 },
  );
  // The generator must reach past the structural checks.
  ok(decoded > 5_000, `Only ${decoded} inputs decoded; widen the generator`);
});
