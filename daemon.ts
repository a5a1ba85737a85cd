/**
 * The simp daemon (SPEC §1–§7, §9): the thin I/O shell around
 * {@linkcode DaemonCore}. It binds ip:port for other daemons and
 * ip:clientPort for its client, feeds every datagram and the clock into the
 * core, sends what the core wants sent (a send to another daemon that fails
 * goes back to the core, {@linkcode DaemonCore.peerSendFailed}), and keeps
 * one timer armed for the core's next timeout. Every datagram on the peer
 * port is traced at debug level under the log category `["simp", "wire"]`.
 *
 * SIGINT and SIGTERM stop it: whatever is going on ends at once with one FIN
 * (a chat, even with messages unacknowledged, which the client is told of;
 * an invitation), the client is told (`daemon-stopping`), and it exits once
 * the client has acknowledged the events or after {@linkcode STOP_GRACE_MS},
 * whichever comes first; a second signal exits at once.
 *
 * @module
 */

import type { DaemonOptions } from "./lib/cli.ts";
import {
  type Datagram,
  decodeDatagram,
  describeDatagram,
} from "./lib/wire/datagram.ts";
import { type DaemonAction, DaemonCore } from "./lib/daemon/core.ts";
import { getLogger } from "./lib/log.ts";
import type { Address } from "./lib/peer/session.ts";

export type { DaemonOptions } from "./lib/cli.ts";
export { STOP_GRACE_MS } from "./lib/daemon/core.ts";

const log = getLogger("daemon");
const wireLog = getLogger("wire");

/** Optional hooks of {@linkcode runDaemon}, for embedding and tests. */
export interface RunDaemonHooks {
  /** Stops the daemon like SIGINT when aborted. */
  signal?: AbortSignal;
  /**
   * Where the start-up line and start-up errors go, one line per call
   * without a newline; default: stderr.
   */
  report?: (line: string) => void;
  /** Whether SIGINT and SIGTERM stop the daemon; default true. */
  handleSignals?: boolean;
}

/**
 * Runs the daemon with `options` until SIGINT or SIGTERM (or `hooks.signal`)
 * stops it, and resolves to the process exit code: 0 after a clean stop, 1
 * when it could not start (the reason is reported as one line).
 *
 * @example
 * ```ts ignore
 * import { runDaemon } from "./daemon.ts";
 * import { DAEMON_DEFAULTS } from "./lib/cli.ts";
 * const code = await runDaemon({ ...DAEMON_DEFAULTS, ip: "127.0.0.2" });
 * Deno.exit(code);
 * ```
 */
export async function runDaemon(
  options: DaemonOptions,
  hooks: RunDaemonHooks = {},
): Promise<number> {
  const report = hooks.report ?? ((line: string) => console.error(line));
  let peerConn: Deno.DatagramConn | undefined;
  let clientConn: Deno.DatagramConn | undefined;
  try {
    peerConn = bind(options.ip, options.port, "--port");
    clientConn = bind(options.ip, options.clientPort, "--client-port");
  } catch (error) {
    peerConn?.close();
    if (error instanceof StartupError) {
      report(`simp: ${error.message}`);
      return 1;
    }
    throw error;
  }
  const daemon = new Daemon(options, peerConn, clientConn);
  // Announced only once SIGINT/SIGTERM stop it cleanly: whoever waits for
  // this line may signal it at once.
  return await daemon.run(hooks, () =>
    report(
      `simp daemon listening on ${options.ip}:${options.port} (peers) and ${options.ip}:${options.clientPort} (client)`,
    ));
}

/** A start-up failure with a message for the user. */
class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** Binds a UDP socket, turning the usual failures into a clear message. */
function bind(ip: string, port: number, option: string): Deno.DatagramConn {
  try {
    return Deno.listenDatagram({ hostname: ip, port, transport: "udp" });
  } catch (error) {
    const where = `${ip}:${port}`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new StartupError(
        `Cannot listen on ${where}: port ${port} is in use — stop the other daemon (see \`lsof -i :${port}\`) or choose another port with ${option}`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new StartupError(
        `Cannot listen on ${where}: ${ip} is not an address of this machine — use one it has (any 127.x.y.z on Linux; on macOS add it first with \`sudo ifconfig lo0 alias ${ip}\`)`,
      );
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new StartupError(
        `Cannot listen on ${where}: network access not granted — run with --allow-net`,
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new StartupError(
        `Cannot listen on ${where}: permission denied — choose a port above 1023 with ${option}, or an address you may use`,
      );
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new StartupError(`Cannot listen on ${where}: ${reason}`);
  }
}

function toAddress(addr: Deno.Addr): Address {
  const { hostname, port } = addr as Deno.NetAddr;
  return { hostname, port };
}

/** Whether a receive failed because the socket was closed. */
function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/** The running daemon: two sockets, one timer, one core. */
class Daemon {
  #options: DaemonOptions;
  #core: DaemonCore;
  #peer: Deno.DatagramConn;
  #client: Deno.DatagramConn;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;
  /** Sends on each socket, chained so they leave in order. */
  #peerSends: Promise<void> = Promise.resolve();
  #clientSends: Promise<void> = Promise.resolve();
  #done!: (code: number) => void;

  constructor(
    options: DaemonOptions,
    peer: Deno.DatagramConn,
    client: Deno.DatagramConn,
  ) {
    this.#options = options;
    this.#peer = peer;
    this.#client = client;
    this.#core = new DaemonCore({
      ip: options.ip,
      port: options.port,
      clientPort: options.clientPort,
      session: {
        userName: options.name ?? "",
        timeout: options.timeoutMs,
        maxRetries: options.retries,
        adaptiveTimeout: options.adaptiveTimeout,
        minTimeout: options.minTimeoutMs,
        invitationLimit: options.inviteLimitMs,
        autoAccept: options.autoAccept,
      },
    });
  }

  async run(hooks: RunDaemonHooks, ready: () => void): Promise<number> {
    const finished = new Promise<number>((resolve) => this.#done = resolve);
    const stop = () => this.#handle("stop", () => this.#stop());
    const signals: Deno.Signal[] = [];
    if (hooks.handleSignals ?? true) {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        try {
          Deno.addSignalListener(signal, stop);
          signals.push(signal);
        } catch {
          // SIGTERM cannot be listened to on Windows.
        }
      }
    }
    hooks.signal?.addEventListener("abort", stop);
    if (hooks.signal?.aborted) stop();
    const loops = [
      this.#receiveLoop(this.#peer, "peer"),
      this.#receiveLoop(this.#client, "client"),
    ];
    ready();
    const code = await finished;
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    hooks.signal?.removeEventListener("abort", stop);
    await Promise.all(loops);
    return code;
  }

  async #receiveLoop(
    conn: Deno.DatagramConn,
    port: "peer" | "client",
  ): Promise<void> {
    while (!this.#closing) {
      let bytes: Uint8Array;
      let from: Address;
      try {
        const [data, addr] = await conn.receive();
        bytes = data;
        from = toAddress(addr);
      } catch (error) {
        if (this.#closing || isClosed(error)) return;
        log.warning("Receiving on the {port} port failed: {error}", {
          port,
          error,
        });
        continue;
      }
      if (this.#closing) return;
      if (port === "peer") {
        this.#handle("peer datagram", () => {
          this.#traceReceived(bytes, from);
          this.#core.receivePeer(bytes, from, performance.now());
        });
      } else {
        this.#handle("client datagram", () => {
          this.#core.receiveClient(bytes, from, performance.now());
        });
      }
    }
  }

  /**
   * Runs one step of the core, then sends what it produced, re-arms the
   * timer, and exits when a stop has finished. A failure is logged and the
   * daemon carries on: no datagram may crash it.
   */
  #handle(what: string, step: () => void): void {
    if (this.#closing) return;
    try {
      step();
    } catch (error) {
      log.error("Handling a {what} failed: {error}", { what, error });
    }
    try {
      this.#flush();
    } catch (error) {
      log.error("Sending failed: {error}", { error });
    }
    const now = performance.now();
    if (this.#core.finished(now)) {
      void this.#close();
      return;
    }
    this.#arm(now);
  }

  #stop(): void {
    const core = this.#core;
    if (core.stopping) {
      log.info("Stopping now");
      void this.#close();
      return;
    }
    log.info("Stopping: ending any chat or invitation and telling the client");
    core.stop(performance.now());
  }

  #arm(now: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const due = this.#core.nextTimeout();
    if (due === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#handle("timer", () => this.#core.tick(performance.now()));
    }, Math.max(0, Math.ceil(due - now)));
  }

  #flush(): void {
    for (const action of this.#core.takeActions()) this.#send(action);
  }

  #send(action: DaemonAction): void {
    const to = { transport: "udp" as const, ...action.to };
    if (action.type === "peer") {
      this.#traceSent(action.datagram, action.to);
      const conn = this.#peer;
      const { datagram } = action;
      this.#peerSends = this.#peerSends
        .then(() => conn.send(action.bytes, to))
        .then(
          () => {},
          (error) =>
            this.#handle("failed send", () =>
              this.#core.peerSendFailed(
                { to: action.to, datagram, error },
                performance.now(),
              )),
        );
    } else {
      const conn = this.#client;
      this.#clientSends = this.#clientSends
        .then(() => conn.send(action.bytes, to))
        .then(
          () => {},
          (error) =>
            log.warning("Sending to the client at {to} failed: {error}", {
              to: `${action.to.hostname}:${action.to.port}`,
              error,
            }),
        );
    }
  }

  #traceReceived(bytes: Uint8Array, from: Address): void {
    if (!wireLog.isEnabledFor("debug")) return;
    let datagram: Datagram;
    try {
      datagram = decodeDatagram(bytes);
    } catch {
      return; // malformed: the engine logs the drop
    }
    this.#trace(
      datagram,
      from,
      { hostname: this.#options.ip, port: this.#options.port },
    );
  }

  #traceSent(datagram: Datagram, to: Address): void {
    this.#trace(
      datagram,
      { hostname: this.#options.ip, port: this.#options.port },
      to,
    );
  }

  /** `127.0.0.1 → 127.0.0.2  SYN seq=0 user=alice`, with {from, to}. */
  #trace(datagram: Datagram, from: Address, to: Address): void {
    if (!wireLog.isEnabledFor("debug")) return;
    const line = `${from.hostname} → ${to.hostname}  ${
      describeDatagram(datagram)
    }`;
    // The line is a LogTape message template: braces from peers are escaped,
    // and so are control characters (a peer's user name is shown raw).
    const template = line.replace(/[{}]/g, "$&$&").replace(
      /\p{Cc}/gu,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
    );
    wireLog.debug(template, {
      from: `${from.hostname}:${from.port}`,
      to: `${to.hostname}:${to.port}`,
    });
  }

  async #close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.all([this.#peerSends, this.#clientSends]);
    this.#peer.close();
    this.#client.close();
    log.info("Stopped");
    this.#done(0);
  }
}
