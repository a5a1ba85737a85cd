/**
 * The reference of the end-to-end benchmark (bench/e2e.ts): a raw Deno UDP
 * ping-pong between two processes, one datagram outstanding, 100-byte
 * payload, each side receiving into one reused buffer. Nothing of simp is in
 * it: it is what two Deno processes on this machine can do at best with one
 * datagram in flight, the bound a stop-and-wait protocol approaches.
 *
 * Run by bench/e2e.ts, one process per role:
 *
 * ```sh
 * deno run --allow-net bench/_pingpong.ts echo IP PORT
 * deno run --allow-net bench/_pingpong.ts ping IP PORT PEER_IP PEER_PORT WARMUP COUNT MAX_MS
 * ```
 *
 * `echo` prints `ready` once bound, then sends every datagram back to where
 * it came from until killed. `ping` prints `ready` once bound, waits for a
 * line on stdin (so that the runner can read the CPU times first), then does
 * WARMUP round trips, then COUNT more (or as many as fit in MAX_MS) and
 * prints one JSON line `{"roundTrips":N,"ms":T,"resent":R}` and exits. A
 * datagram lost on loopback (rare) is sent again after {@linkcode RESEND_MS},
 * counted in `resent`.
 *
 * @module
 */

/** The payload size, as in the issue: 100 bytes. */
const PAYLOAD_BYTES = 100;
/** How long `ping` waits for its datagram to come back before resending it. */
const RESEND_MS = 200;

function bind(ip: string, port: number): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: ip, port });
}

async function echo(ip: string, port: number): Promise<void> {
  const conn = bind(ip, port);
  const buffer = new Uint8Array(65_536);
  console.log("ready");
  for (;;) {
    const [data, from] = await conn.receive(buffer);
    await conn.send(data, from);
  }
}

async function ping(
  ip: string,
  port: number,
  peer: Deno.NetAddr,
  warmup: number,
  count: number,
  maxMs: number,
): Promise<void> {
  const conn = bind(ip, port);
  const buffer = new Uint8Array(65_536);
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(0x78);
  console.log("ready");
  // Wait for the runner's go (one line on stdin).
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  reader.releaseLock();

  let done = 0;
  let resent = 0;
  let lastDone = -1;
  const watchdog = setInterval(() => {
    if (done === lastDone) {
      resent++;
      conn.send(payload, peer).catch(() => {});
    }
    lastDone = done;
  }, RESEND_MS);

  async function roundTrips(n: number, deadline: number): Promise<number> {
    let i = 0;
    while (i < n && performance.now() < deadline) {
      await conn.send(payload, peer);
      await conn.receive(buffer);
      i++;
      done++;
    }
    return i;
  }

  await roundTrips(warmup, Infinity);
  const start = performance.now();
  const n = await roundTrips(count, start + maxMs);
  const ms = performance.now() - start;
  clearInterval(watchdog);
  console.log(JSON.stringify({ roundTrips: n, ms, resent }));
  conn.close();
}

if (import.meta.main) {
  const [role, ip, port, peerIp, peerPort, warmup, count, maxMs] = Deno.args;
  if (role === "echo") {
    await echo(ip, Number(port));
  } else if (role === "ping") {
    await ping(
      ip,
      Number(port),
      { transport: "udp", hostname: peerIp, port: Number(peerPort) },
      Number(warmup),
      Number(count),
      Number(maxMs),
    );
  } else {
    console.error(
      "Usage: _pingpong.ts echo IP PORT | ping IP PORT PEER_IP PEER_PORT WARMUP COUNT MAX_MS",
    );
    Deno.exit(2);
  }
}
