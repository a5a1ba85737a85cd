/**
 * The simp daemon (SPEC §1–§7, §9): the thin I/O shell around
 * {@linkcode DaemonCore}. It binds UDP ip:port for other daemons and
 * listens with TCP on ip:clientPort for its client; it feeds every
 * datagram, every connection and the bytes read from it, and the clock
 * into the core, sends and writes what the core wants (a send to another
 * daemon that fails goes back to the core,
 * {@linkcode DaemonCore.peerSendFailed}), and keeps one timer for the
 * core's next timeout. Every datagram on the peer port is traced at debug
 * level under the log category `["simp", "wire"]`.
 *
 * Client connections from addresses that are not this machine's are closed
 * on accept, before anything is read (SPEC §7.2). Writes to the client are
 * queued and counted; the core hears how much was written, which is how it
 * bounds what waits for a slow client. A connection that ends (the client
 * quit, crashed or was killed) frees the slot at once.
 *
 * SIGINT and SIGTERM stop it: whatever is going on ends at once with one FIN
 * (a chat, even with messages unacknowledged, which the client is told of;
 * an invitation), the client is told (`daemon-stopping`) and its
 * connection closed, and it exits once that is written or after
 * {@linkcode STOP_GRACE_MS}, whichever comes first; a second signal exits at
 * once.
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
import { PcapWriter } from "./lib/wire/pcap.ts";
import { getLogger, LogBudget, ONCE_A_MINUTE } from "./lib/log.ts";
import { currentInvocation, localiseCommands } from "./lib/invocation.ts";
import {
  type Address,
  formatAddress,
  type InterfaceAddress,
  isThisMachine,
} from "./lib/address.ts";
import type { ConnectionId } from "./lib/link/daemon_end.ts";
import { underDenoTask } from "./lib/invocation.ts";

export type { DaemonOptions } from "./lib/cli.ts";
export { STOP_GRACE_MS } from "./lib/daemon/core.ts";

const log = getLogger("daemon");
const wireLog = getLogger("wire");

/** The largest UDP payload over IPv4: the peer socket's receive buffer. */
const DATAGRAM_BUFFER = 65_507;

/** How much is read from the client at a time, and written at most in one write. */
const CHUNK = 65_536;

/**
 * How long a connection that finds the slot held waits before it is told
 * `busy`, in ms (see `Daemon.#open`).
 */
const SLOT_GRACE_MS = 10;

/**
 * How many client connections may be open at once (the client's and those
 * being turned away). At the limit the daemon accepts no more until one
 * closes; the kernel holds the next in its listen queue. A flood of
 * connections then cannot use up the process's file descriptors (Deno
 * 2.9.6 panics when it runs out: found with `ulimit -n 40` and 300
 * connections).
 */
const MAX_CONNECTIONS = 32;

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
  // Start-up errors name the command the user runs (`deno task daemon …`
  // from the source tree), not only the compiled `simp daemon …`.
  const reportError = (message: string) =>
    report(`simp: ${localiseCommands(message, currentInvocation())}`);
  let peerConn: Deno.DatagramConn | undefined;
  let listener: Deno.TcpListener | undefined;
  try {
    peerConn = bindError(
      options.ip,
      options.port,
      "--port",
      () =>
        Deno.listenDatagram({
          hostname: options.ip,
          port: options.port,
          transport: "udp",
        }),
    );
    listener = bindError(
      options.ip,
      options.clientPort,
      "--client-port",
      () =>
        Deno.listen({
          hostname: options.ip,
          port: options.clientPort,
          transport: "tcp",
        }),
    );
  } catch (error) {
    peerConn?.close();
    if (error instanceof StartupError) {
      reportError(error.message);
      return 1;
    }
    throw error;
  }
  let pcap: PcapWriter | undefined;
  try {
    pcap = options.pcap === undefined ? undefined : PcapWriter.open(
      options.pcap,
      { onError: (error) => log.error("Capture stopped: {error}", { error }) },
    );
  } catch (error) {
    peerConn.close();
    listener.close();
    // `deno task daemon` does not grant --allow-write, and a task takes no
    // more permissions from its command line: say how to run it instead.
    const hint = (error as Error).cause instanceof Deno.errors.NotCapable &&
        underDenoTask()
      ? " (`deno task daemon` does not grant it: run `deno run --allow-net --allow-write mod.ts daemon …`)"
      : "";
    reportError(`${(error as Error).message}${hint}`);
    return 1;
  }
  const daemon = new Daemon(options, peerConn, listener, pcap);
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

/** Opens a socket with `open`, turning the usual failures into a clear message. */
function bindError<T>(
  ip: string,
  port: number,
  option: string,
  open: () => T,
): T {
  try {
    return open();
  } catch (error) {
    const where = `${ip}:${port}`;
    if (error instanceof Deno.errors.AddrInUse) {
      const other = port < 65_535 ? port + 10 : port - 10;
      throw new StartupError(
        `Cannot listen on ${where}: port ${port} is in use — stop the other daemon (see \`lsof -i :${port}\`) or choose another port with ${option}, e.g. \`simp daemon ${ip} ${option} ${other}\``,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new StartupError(
        `Cannot listen on ${where}: ${ip} is not an address of this machine — use one it has, e.g. \`simp daemon 127.0.0.2\` (any 127.x.y.z on Linux; on macOS add it first with \`sudo ifconfig lo0 alias ${ip}\`)`,
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
  return { ip: hostname, port };
}

/** Whether a receive or read failed because the socket was closed. */
function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/**
 * This machine's interface addresses for {@linkcode isThisMachine}, when
 * the process may list them (`--allow-sys`); otherwise only the daemon's
 * own IP counts besides 127.0.0.0/8. Never prompts.
 */
function interfaces(ownIp: string): InterfaceAddress[] {
  const own = { family: "IPv4", address: ownIp };
  try {
    const status = Deno.permissions.querySync({
      name: "sys",
      kind: "networkInterfaces",
    });
    if (status.state !== "granted") return [own];
    return [own, ...Deno.networkInterfaces()];
  } catch {
    return [own];
  }
}

/** One client connection as the shell sees it. */
interface Connection {
  id: ConnectionId;
  conn: Deno.TcpConn;
  /** Bytes to write, in order; `queued` counts them. */
  queue: Uint8Array[];
  queued: number;
  writing: boolean;
  /** Close once the queue is written. */
  closeAfterWrites: boolean;
  closed: boolean;
  /** Whether the core was told the connection is gone. */
  reported: boolean;
  /** Wakes the reader when the core wants input again, or on close. */
  wake: (() => void) | undefined;
}

/** The running daemon: a UDP socket, a TCP listener, one timer, one core. */
class Daemon {
  #options: DaemonOptions;
  #core: DaemonCore;
  #peer: Deno.DatagramConn;
  #listener: Deno.TcpListener;
  #connections = new Map<ConnectionId, Connection>();
  #nextConnection = 1;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  #timerDue: number | undefined;
  #closing = false;
  /** Sends on the peer socket, chained so they leave in order. */
  #peerSends: Promise<void> = Promise.resolve();
  /** Wakes the accept loop when it waits for a connection to close. */
  #roomForConnection: (() => void) | undefined;
  #strangerLogs = new LogBudget(ONCE_A_MINUTE);
  #receiveFailureLogs = new LogBudget(ONCE_A_MINUTE);
  #done!: (code: number) => void;
  #tasks = new Set<Promise<void>>();
  /** The capture of the peer port (`--pcap`), if any. */
  #pcap: PcapWriter | undefined;
  /** The peer port's own address, for the capture. */
  #local: Address;

  constructor(
    options: DaemonOptions,
    peer: Deno.DatagramConn,
    listener: Deno.TcpListener,
    pcap?: PcapWriter,
  ) {
    this.#pcap = pcap;
    this.#local = { ip: options.ip, port: options.port };
    this.#options = options;
    this.#peer = peer;
    this.#listener = listener;
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
    this.#track(this.#peerLoop());
    this.#track(this.#acceptLoop());
    ready();
    const code = await finished;
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    hooks.signal?.removeEventListener("abort", stop);
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
    return code;
  }

  #track(task: Promise<void>): void {
    const tracked: Promise<void> = task
      .catch((error) => log.error("A daemon task failed: {error}", { error }))
      .finally(() => this.#tasks.delete(tracked));
    this.#tasks.add(tracked);
  }

  // ------------------------------------------------------------- peer port

  async #peerLoop(): Promise<void> {
    // One buffer for every datagram: the core decodes it before the next
    // receive, and keeps nothing of it.
    const buffer = new Uint8Array(DATAGRAM_BUFFER);
    const core = this.#core;
    while (!this.#closing) {
      let bytes: Uint8Array;
      let from: Address;
      try {
        const [data, addr] = await this.#peer.receive(buffer);
        bytes = data;
        from = toAddress(addr);
      } catch (error) {
        if (this.#closing || isClosed(error)) return;
        // Within a budget: on some systems an ICMP error from a peer makes
        // the next receive fail (Windows), and a peer can cause many.
        this.#receiveFailureLogs.warning(log, performance.now(), {
          message: "Receiving on the peer port failed: {error}",
          properties: { error },
          heldBack: "more receives failed",
        });
        continue;
      }
      if (this.#closing) return;
      this.#pcap?.write(bytes, from, this.#local);
      this.#handle("peer datagram", () => {
        if (wireLog.isEnabledFor("debug")) this.#traceReceived(bytes, from);
        core.receivePeer(bytes, from, performance.now());
      });
    }
  }

  // ----------------------------------------------------------- client port

  async #acceptLoop(): Promise<void> {
    while (!this.#closing) {
      if (this.#connections.size >= MAX_CONNECTIONS) {
        await new Promise<void>((resolve) => this.#roomForConnection = resolve);
        this.#roomForConnection = undefined;
        continue;
      }
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing || isClosed(error)) return;
        log.warning("Accepting a client connection failed: {error}", {
          error,
        });
        continue;
      }
      if (this.#closing) {
        conn.close();
        return;
      }
      const remote = toAddress(conn.remoteAddr);
      // SPEC §7.2: only this machine, checked before anything is read.
      if (!isThisMachine(remote.ip, interfaces(this.#options.ip))) {
        conn.close();
        this.#strangerLogs.warning(log, performance.now(), {
          message:
            "Refused a client connection from {from}: only this machine may connect (SPEC §7.2)",
          properties: { from: formatAddress(remote) },
          heldBack: "more connections from other machines were refused",
        });
        continue;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // Not fatal: lines just leave a little later.
      }
      const c: Connection = {
        id: this.#nextConnection++,
        conn,
        queue: [],
        queued: 0,
        writing: false,
        closeAfterWrites: false,
        closed: false,
        reported: false,
        wake: undefined,
      };
      this.#connections.set(c.id, c);
      this.#track(this.#open(c, remote));
    }
  }

  /**
   * Hands a new connection to the core and starts reading it. While the
   * slot is held, the verdict waits a moment: a client that closed its
   * connection and connected again at once must not find its own old
   * connection holding the slot (its end is already in the socket queue).
   */
  async #open(c: Connection, remote: Address): Promise<void> {
    if (this.#core.link.client !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, SLOT_GRACE_MS));
      if (c.closed || this.#closing) return;
    }
    this.#handle(
      "client connection",
      () => this.#core.clientOpened(c.id, remote, performance.now()),
    );
    // Turned away (`busy`): nothing it sends will be read, so no read
    // buffer either — a flood of connections would otherwise cost 64 KiB
    // each until their busy line is written.
    if (c.closeAfterWrites) return;
    await this.#readLoop(c);
  }

  async #readLoop(c: Connection): Promise<void> {
    const buffer = new Uint8Array(CHUNK);
    const core = this.#core;
    while (!c.closed) {
      if (!core.link.wantsInput(c.id)) {
        // A slow client: wait until its backlog shrinks (or it closes).
        await new Promise<void>((resolve) => c.wake = resolve);
        c.wake = undefined;
        continue;
      }
      let n: number | null;
      try {
        n = await c.conn.read(buffer);
      } catch (error) {
        if (!c.closed && !isClosed(error)) {
          log.debug("Reading from the client failed: {error}", { error });
        }
        break;
      }
      if (n === null) {
        // The client closed its end (it quit, exited or was killed): the
        // slot is free at once; what is queued for it is still written, for
        // a client that only closed its sending side.
        this.#clientGone(c);
        c.closeAfterWrites = true;
        if (!c.writing && c.queue.length === 0) break;
        return;
      }
      const bytes = buffer.subarray(0, n);
      this.#handle(
        "client data",
        () => core.clientData(c.id, bytes, performance.now()),
      );
    }
    this.#closeConnection(c);
  }

  #write(c: Connection, bytes: Uint8Array): void {
    if (c.closed) return;
    c.queue.push(bytes);
    c.queued += bytes.length;
    if (!c.writing) this.#track(this.#writeLoop(c));
  }

  async #writeLoop(c: Connection): Promise<void> {
    c.writing = true;
    try {
      while (c.queue.length > 0 && !c.closed) {
        const chunk = this.#nextChunk(c);
        let written: number;
        try {
          written = await c.conn.write(chunk);
        } catch (error) {
          if (!c.closed && !isClosed(error)) {
            log.debug("Writing to the client failed: {error}", { error });
          }
          this.#closeConnection(c);
          return;
        }
        if (written < chunk.length) c.queue.unshift(chunk.subarray(written));
        c.queued -= written;
        this.#handle(
          "client write",
          () => this.#core.clientWrote(c.id, written),
        );
      }
    } finally {
      c.writing = false;
    }
    if (c.closeAfterWrites) this.#closeConnection(c);
  }

  /** The queued bytes to write next: several small lines joined into one write. */
  #nextChunk(c: Connection): Uint8Array {
    const first = c.queue.shift()!;
    if (c.queue.length === 0 || first.length >= CHUNK) return first;
    let size = first.length;
    let count = 0;
    while (
      count < c.queue.length && size + c.queue[count].length <= CHUNK
    ) {
      size += c.queue[count].length;
      count++;
    }
    if (count === 0) return first;
    const joined = new Uint8Array(size);
    joined.set(first, 0);
    let offset = first.length;
    for (const part of c.queue.splice(0, count)) {
      joined.set(part, offset);
      offset += part.length;
    }
    return joined;
  }

  #closeConnection(c: Connection): void {
    if (c.closed) return;
    c.closed = true;
    c.queue = [];
    c.queued = 0;
    try {
      c.conn.close();
    } catch {
      // already closed
    }
    c.wake?.();
    this.#connections.delete(c.id);
    this.#roomForConnection?.();
    this.#clientGone(c);
  }

  /** Tells the core, once, that the client at `c` is gone. */
  #clientGone(c: Connection): void {
    if (c.reported) return;
    c.reported = true;
    this.#handle(
      "client gone",
      () => this.#core.clientClosed(c.id, performance.now()),
    );
  }

  // ------------------------------------------------------------ the loop

  /**
   * Runs one step of the core, then carries out what it produced, re-arms
   * the timer, and exits when a stop has finished. A failure is logged and
   * the daemon carries on: no input may crash it.
   */
  #handle(what: string, step: () => void): void {
    if (this.#closing) return;
    try {
      step();
    } catch (error) {
      log.error("Handling a {what} failed: {error}", { what, error });
    }
    try {
      for (const action of this.#core.takeActions()) this.#do(action);
    } catch (error) {
      log.error("Carrying out the core's actions failed: {error}", { error });
    }
    for (const c of this.#connections.values()) {
      if (c.wake !== undefined && this.#core.link.wantsInput(c.id)) c.wake();
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

  /**
   * Keeps one timer: re-armed only when the core's next timeout is earlier
   * than the one armed. A timer that fires early (the deadline moved later)
   * ticks the core, which does nothing, and re-arms.
   */
  #arm(now: number): void {
    const due = this.#core.nextTimeout();
    if (due === undefined) return;
    if (this.#timerDue !== undefined && this.#timerDue <= due) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = undefined;
      this.#handle("timer", () => this.#core.tick(performance.now()));
    }, Math.max(0, Math.ceil(due - now)));
  }

  #do(action: DaemonAction): void {
    switch (action.type) {
      case "peer":
        this.#sendPeer(action);
        return;
      case "write": {
        const c = this.#connections.get(action.conn);
        if (c !== undefined) this.#write(c, action.bytes);
        return;
      }
      case "close": {
        const c = this.#connections.get(action.conn);
        if (c === undefined) return;
        c.closeAfterWrites = true;
        if (!c.writing && c.queue.length === 0) this.#closeConnection(c);
        return;
      }
    }
  }

  #sendPeer(action: Extract<DaemonAction, { type: "peer" }>): void {
    if (wireLog.isEnabledFor("debug")) {
      this.#traceSent(action.datagram, action.to);
    }
    const conn = this.#peer;
    const to = {
      transport: "udp" as const,
      hostname: action.to.ip,
      port: action.to.port,
    };
    const { datagram } = action;
    this.#pcap?.write(action.bytes, this.#local, action.to);
    // Sent at once, not behind the previous send: chaining them cost every
    // datagram an event-loop turn (bench/e2e.ts: ~30 µs of daemon CPU per
    // message). #close still waits for all of them.
    const sent = conn.send(action.bytes, to).then(
      () => {},
      (error) =>
        this.#handle("failed send", () =>
          this.#core.peerSendFailed(
            { to: action.to, datagram, error },
            performance.now(),
          )),
    );
    this.#peerSends = Promise.all([this.#peerSends, sent]).then(() => {});
  }

  #traceReceived(bytes: Uint8Array, from: Address): void {
    let datagram: Datagram;
    try {
      datagram = decodeDatagram(bytes);
    } catch {
      return; // malformed: the engine logs the drop
    }
    this.#trace(datagram, from, {
      ip: this.#options.ip,
      port: this.#options.port,
    });
  }

  #traceSent(datagram: Datagram, to: Address): void {
    this.#trace(
      datagram,
      { ip: this.#options.ip, port: this.#options.port },
      to,
    );
  }

  /** `127.0.0.1 → 127.0.0.2  SYN seq=0 user=alice`, with {from, to}. */
  #trace(datagram: Datagram, from: Address, to: Address): void {
    const line = `${from.ip} → ${to.ip}  ${describeDatagram(datagram)}`;
    // The line is a LogTape message template: braces from peers are escaped,
    // and so are control characters (a peer's user name is shown raw).
    const template = line.replace(/[{}]/g, "$&$&").replace(
      /\p{Cc}/gu,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
    );
    wireLog.debug(template, {
      from: formatAddress(from),
      to: formatAddress(to),
    });
  }

  async #close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#peerSends;
    for (const c of [...this.#connections.values()]) {
      c.closed = true;
      try {
        c.conn.close();
      } catch {
        // already closed
      }
      c.wake?.();
    }
    this.#connections.clear();
    this.#roomForConnection?.();
    this.#listener.close();
    this.#peer.close();
    this.#pcap?.close();
    log.info("Stopped");
    this.#done(0);
  }
}
