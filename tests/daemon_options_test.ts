// `simp daemon --adaptive-timeout` and `--min-timeout` reach the engine
// (SPEC §5.6): a real daemon process and a raw UDP peer on 127.0.92.0/24.
// The raw peer invites and never answers; the daemon drops the invitation
// after `--invite-limit` with a FIN (§4.6) and retransmits that FIN after
// its timeout: 5 s fixed, 1 s adaptive before any round trip was measured
// (RFC 6298 §2.1), or the floor when that is higher. The margins are wide
// because the machine is shared; the three timeouts are far apart.

import { ok } from "node:assert/strict";
import { decodeDatagram, Op } from "../lib/wire/datagram.ts";
import { control } from "./support/datagrams.ts";
import { Processes } from "./support/processes.ts";

/** Seconds between the daemon's first two FINs to a silent inviter. */
async function finGap(ip: string, args: string[]): Promise<number> {
  const procs = new Processes();
  const socket = Deno.listenDatagram({
    hostname: "127.0.92.200",
    port: 0,
    transport: "udp",
  });
  try {
    await procs.daemon(ip, ["--invite-limit", "0.2", ...args]);
    await socket.send(control(Op.SYN, 0, "raw"), {
      transport: "udp",
      hostname: ip,
      port: 7777,
    });
    const fins: number[] = [];
    const deadline = Date.now() + 10_000;
    while (fins.length < 2 && Date.now() < deadline) {
      const [bytes] = await Promise.race([
        socket.receive(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("No FIN within 10 s")), 10_000)
        ),
      ]);
      if (decodeDatagram(bytes).op === Op.FIN) fins.push(performance.now());
    }
    ok(fins.length === 2, `${fins.length} FINs`);
    return (fins[1] - fins[0]) / 1000;
  } finally {
    socket.close();
    await procs.close();
  }
}

Deno.test("§5.6 simp daemon --adaptive-timeout: the first retransmission after 1 s, not the fixed 5 s", async () => {
  const gap = await finGap("127.0.92.1", ["--adaptive-timeout"]);
  ok(gap > 0.7 && gap < 2.4, `FIN retransmitted after ${gap} s`);
});

Deno.test("§5.6 simp daemon --min-timeout raises the adaptive timeout's floor", async () => {
  const gap = await finGap("127.0.92.2", [
    "--adaptive-timeout",
    "--min-timeout",
    "3",
  ]);
  ok(gap > 2.6 && gap < 4.6, `FIN retransmitted after ${gap} s`);
});
