/**
 * SIMP datagrams for the rule tests of the engine and the daemon
 * (tests/peer/session_test.ts, tests/daemon_test.ts): built with, and described
 * from, the project's own codec (lib/wire/datagram.ts). The conformance tests
 * (tests/conformance_test.ts) do not use these: they have an independent
 * codec on purpose, to cross-check this one.
 *
 * @example
 * ```ts
 * import { decodeDatagram, Op } from "../../lib/wire/datagram.ts";
 * import { control, summary } from "./datagrams.ts";
 * const synAck = decodeDatagram(control(Op.SYN_ACK, 0, "bob"));
 * console.log(summary(synAck)); // SYN+ACK 0 bob
 * console.log(summary(synAck, { user: false })); // SYN+ACK 0
 * ```
 *
 * @module
 */

import {
  type Datagram,
  encodeDatagram,
  Op,
  opName,
  type Seq,
  Type,
} from "../../lib/wire/datagram.ts";

/** The encoded control datagram `op` (ERR, SYN, ACK, SYN_ACK or FIN). */
export function control(
  op: Datagram["op"],
  seq: Seq,
  user: string,
  payload = "",
): Uint8Array {
  return encodeDatagram({
    type: Type.CONTROL,
    op: op as typeof Op.ACK,
    seq,
    user,
    payload,
  });
}

/** The encoded chat datagram carrying `text`. */
export function chat(seq: Seq, user: string, text: string): Uint8Array {
  return encodeDatagram({
    type: Type.CHAT,
    op: Op.CHAT,
    seq,
    user,
    payload: text,
  });
}

/** Options of {@linkcode summary}. */
export interface SummaryOptions {
  /** Whether the User field is shown (default true). */
  user?: boolean;
}

/**
 * A datagram in a few words, for comparing what was sent: operation,
 * Sequence, User and payload, empty fields left out — e.g. `SYN 0 alice`,
 * `SYN+ACK 0 bob`, `CHAT 1 bob hi`, `ERR 0 bob …`.
 */
export function summary(d: Datagram, options: SummaryOptions = {}): string {
  const user = options.user ?? true ? d.user : "";
  return [opName(d), d.seq, user, d.payload].filter((x) => x !== "").join(" ");
}
