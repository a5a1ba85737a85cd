/**
 * `simp relay`: the thin I/O shell around {@linkcode RelayCore}. It binds
 * one UDP socket, receives every datagram into one reused buffer, feeds it
 * and the clock into the core, sends what the core wants sent from that same
 * socket (so each daemon sees the relay as its peer), keeps one timer armed
 * for the core's next held copy, and writes the core's records to the log
 * file as JSON lines (buffered). SIGINT, SIGTERM or the end of `--duration`
 * stop it; it then prints the counts of each direction on stdout.
 *
 * @example
 * ```ts ignore
 * import { startRelay } from "./run.ts";
 * import { NO_IMPAIRMENTS } from "./core.ts";
 * const relay = startRelay({
 *   ip: "127.0.93.3", port: 7777, seed: 1,
 *   a: { ip: "127.0.93.1", port: 7777 },
 *   b: { ip: "127.0.93.2", port: 7777 },
 *   ab: { ...NO_IMPAIRMENTS, loss: 0.1 }, ba: { ...NO_IMPAIRMENTS, loss: 0.1 },
 * });
 * // … daemons chat through 127.0.93.3 …
 * const stats = await relay.close();
 * ```
 *
 * @module
 */

import { type Address, formatAddress } from "../address.ts";
import {
  type Direction,
  type DirectionStats,
  type Impairments,
  RelayCore,
  type RelayRecord,
  type RelayStats,
} from "./core.ts";

/** Options of `simp relay` and {@linkcode startRelay}. */
export interface RelayOptions {
  /** The relay's own IPv4 address, which the daemons invite. */
  ip: string;
  /** The relay's UDP port (default 7777, SPEC §1.1). */
  port: number;
  /** Daemon A's SIMP address. */
  a: Address;
  /** Daemon B's SIMP address. */
  b: Address;
  /** The seed of the relay's random choices. */
  seed: number;
  /** Impairments from A to B. */
  ab: Impairments;
  /** Impairments from B to A. */
  ba: Impairments;
  /** Stop by itself after this many ms (default: run until a signal). */
  durationMs?: number;
  /** Write a JSON line per datagram copy to this file (see {@linkcode RelayRecord}). */
  log?: string;
}

/** Optional hooks of {@linkcode runRelay}, for embedding and tests. */
export interface RunRelayHooks {
  /** Stops the relay like SIGINT when aborted. */
  signal?: AbortSignal;
  /** Where the start-up line and errors go, one line per call; default stderr. */
  report?: (line: string) => void;
  /** Where the final counts go, one line per call; default stdout. */
  print?: (line: string) => void;
  /** Whether SIGINT and SIGTERM stop the relay; default true. */
  handleSignals?: boolean;
}

/** The log is written once this many characters wait, or after {@linkcode LOG_FLUSH_MS}. */
const LOG_FLUSH_CHARS = 64 * 1024;
/** The longest a log line waits before it is written, in ms. */
const LOG_FLUSH_MS = 200;
/** The largest UDP payload, the size of the receive buffer. */
const MAX_DATAGRAM = 65_535;

/** The relay could not start; the message says why and what to do. */
export class RelayStartError extends Error {
  /** Creates the error with a one-line message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "RelayStartError";
  }
}

/**
 * A running relay: its socket, timer, log and core. Create it with
 * {@linkcode startRelay}; {@linkcode Relay.close} stops it.
 */
export class Relay {
  /** The options it runs with. */
  readonly options: Readonly<RelayOptions>;
  #core: RelayCore;
  #conn: Deno.DatagramConn;
  #log: Deno.FsFile | undefined;
  #logText = "";
  #logTimer: ReturnType<typeof setTimeout> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = performance.now();
  #sends: Promise<void> = Promise.resolve();
  #closing = false;
  #loop: Promise<void>;
  #sendErrors = 0;

  /**
   * Starts relaying on `io.conn`, a bound socket, writing records to
   * `io.log` when given; {@linkcode startRelay} opens both.
   */
  constructor(
    options: RelayOptions,
    io: { conn: Deno.DatagramConn; log?: Deno.FsFile },
  ) {
    const { conn, log } = io;
    this.options = options;
    this.#conn = conn;
    this.#log = log;
    this.#core = new RelayCore({
      a: options.a,
      b: options.b,
      seed: options.seed,
      ab: options.ab,
      ba: options.ba,
      record: log !== undefined,
    });
    this.#loop = this.#receiveLoop();
  }

  /** The counts so far. */
  stats(): RelayStats {
    return this.#core.stats();
  }

  /** Datagrams the relay could not send (the socket refused them). */
  get sendErrors(): number {
    return this.#sendErrors;
  }

  /** Changes the impairments of `direction` from now on (for benches). */
  setImpairments(
    direction: Direction,
    impairments: Partial<Impairments>,
  ): void {
    this.#core.setImpairments(direction, impairments);
  }

  /**
   * Stops the relay: held copies are dropped unsent, the log is written
   * out and closed. Resolves to the final counts; harmless when called
   * again.
   */
  async close(): Promise<RelayStats> {
    if (!this.#closing) {
      this.#closing = true;
      clearTimeout(this.#timer);
      this.#conn.close();
      await this.#loop;
      await this.#sends;
      clearTimeout(this.#logTimer);
      this.#flushLog();
      this.#log?.close();
    }
    return this.#core.stats();
  }

  async #receiveLoop(): Promise<void> {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    while (!this.#closing) {
      let bytes: Uint8Array;
      let addr: Deno.Addr;
      try {
        [bytes, addr] = await this.#conn.receive(buffer);
      } catch (error) {
        if (this.#closing) return;
        if (error instanceof Deno.errors.BadResource) return;
        continue; // e.g. an ICMP error reported on the socket
      }
      const { hostname, port } = addr as Deno.NetAddr;
      this.#core.receive(bytes, { ip: hostname, port }, this.#now());
      this.#carryOut();
      // The actions may refer to `buffer`: send them before reusing it.
      await this.#sends;
    }
  }

  #now(): number {
    return performance.now() - this.#started;
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#closing) return;
    this.#core.tick(this.#now());
    this.#carryOut();
  }

  #carryOut(): void {
    for (const action of this.#core.takeActions()) {
      if (action.type === "record") {
        this.#writeLog(action.record);
      } else {
        const { to, bytes } = action;
        this.#sends = this.#sends.then(() => this.#send(bytes, to));
      }
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const due = this.#core.nextTimeout();
    if (due !== undefined && !this.#closing) {
      this.#timer = setTimeout(
        () => this.#onTimer(),
        Math.max(0, due - this.#now()),
      );
    }
  }

  async #send(bytes: Uint8Array, to: Address): Promise<void> {
    if (this.#closing) return;
    try {
      await this.#conn.send(bytes, {
        transport: "udp",
        hostname: to.ip,
        port: to.port,
      });
    } catch {
      this.#sendErrors++;
    }
  }

  #writeLog(record: RelayRecord): void {
    this.#logText += JSON.stringify(record) + "\n";
    if (this.#logText.length >= LOG_FLUSH_CHARS) {
      this.#flushLog();
    } else if (this.#logTimer === undefined) {
      this.#logTimer = setTimeout(() => {
        this.#logTimer = undefined;
        this.#flushLog();
      }, LOG_FLUSH_MS);
    }
  }

  #flushLog(): void {
    if (this.#log === undefined || this.#logText === "") return;
    const bytes = new TextEncoder().encode(this.#logText);
    this.#logText = "";
    let written = 0;
    while (written < bytes.length) {
      written += this.#log.writeSync(bytes.subarray(written));
    }
  }
}

/**
 * Binds the relay's socket, opens its log, and starts relaying.
 *
 * @throws {RelayStartError} when the address cannot be bound or the log
 * not written; the message says what to do.
 */
export function startRelay(options: RelayOptions): Relay {
  const where = `${options.ip}:${options.port}`;
  let conn: Deno.DatagramConn;
  try {
    conn = Deno.listenDatagram({
      hostname: options.ip,
      port: options.port,
      transport: "udp",
    });
  } catch (error) {
    throw new RelayStartError(bindProblem(error, where, options.port));
  }
  let log: Deno.FsFile | undefined;
  if (options.log !== undefined) {
    try {
      log = Deno.openSync(options.log, {
        write: true,
        create: true,
        truncate: true,
      });
    } catch (error) {
      conn.close();
      const reason = error instanceof Error ? error.message : String(error);
      throw new RelayStartError(
        `Cannot write the log ${options.log}: ${reason} — give a file in a directory you may write to`,
      );
    }
  }
  return new Relay(options, { conn, log });
}

/**
 * Runs `simp relay` until SIGINT or SIGTERM (or `hooks.signal`, or the end
 * of `options.durationMs`), then prints the counts; resolves to the exit
 * code: 0 after a clean stop, 1 when it could not start.
 */
export async function runRelay(
  options: RelayOptions,
  hooks: RunRelayHooks = {},
): Promise<number> {
  const report = hooks.report ?? ((line: string) => console.error(line));
  const print = hooks.print ?? ((line: string) => console.log(line));
  let relay: Relay;
  try {
    relay = startRelay(options);
  } catch (error) {
    if (!(error instanceof RelayStartError)) throw error;
    report(`simp: ${error.message}`);
    return 1;
  }
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  const handleSignals = hooks.handleSignals ?? true;
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  if (handleSignals) {
    for (const signal of signals) Deno.addSignalListener(signal, stop);
  }
  hooks.signal?.addEventListener("abort", () => stop());
  if (hooks.signal?.aborted) stop();
  const timer = options.durationMs === undefined
    ? undefined
    : setTimeout(stop, options.durationMs);
  report(
    `simp relay listening on ${options.ip}:${options.port} between ${
      formatAddress(options.a)
    } (A) and ${formatAddress(options.b)} (B), seed ${options.seed}`,
  );
  report(`A→B: ${describeImpairments(options.ab)}`);
  report(`B→A: ${describeImpairments(options.ba)}`);
  await stopped;
  clearTimeout(timer);
  if (handleSignals) {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
  const stats = await relay.close();
  for (const line of formatStats(stats, options)) print(line);
  if (relay.sendErrors > 0) {
    report(`simp relay: ${relay.sendErrors} datagrams could not be sent`);
  }
  return 0;
}

/**
 * The impairments of one direction in words, e.g.
 * `loss 10%, duplicate 5%, reorder 20% up to 30 ms`, or `none`.
 */
export function describeImpairments(imp: Impairments): string {
  const parts: string[] = [];
  if (imp.dropFirst > 0) parts.push(`drop first ${imp.dropFirst}`);
  if (imp.loss > 0) parts.push(`loss ${percent(imp.loss)}`);
  if (imp.duplicate > 0) parts.push(`duplicate ${percent(imp.duplicate)}`);
  if (imp.reorder > 0 && imp.reorderDelay > 0) {
    parts.push(`reorder ${percent(imp.reorder)} up to ${imp.reorderDelay} ms`);
  }
  if (imp.delay > 0) parts.push(`delay ${imp.delay} ms`);
  if (imp.corrupt > 0) parts.push(`corrupt ${percent(imp.corrupt)}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}

/**
 * The final counts as lines, one per direction (and one for stray
 * datagrams, when there were any), e.g.
 * `A→B 127.0.0.1:7777 → 127.0.0.2:7777: received 10, forwarded 9, dropped 1, duplicated 0, corrupted 0, reordered 0`.
 */
export function formatStats(
  stats: RelayStats,
  ends: { a: Address; b: Address },
): string[] {
  const line = (name: string, from: Address, to: Address, s: DirectionStats) =>
    `${name} ${formatAddress(from)} → ${
      formatAddress(to)
    }: received ${s.received}, forwarded ${s.forwarded}, dropped ${s.dropped}, duplicated ${s.duplicated}, corrupted ${s.corrupted}, reordered ${s.reordered}`;
  const lines = [
    line("A→B", ends.a, ends.b, stats.ab),
    line("B→A", ends.b, ends.a, stats.ba),
  ];
  if (stats.stray > 0) {
    lines.push(`stray: ${stats.stray} datagrams from other addresses dropped`);
  }
  return lines;
}

/** A probability as a percentage, e.g. `12.5%`. */
function percent(p: number): string {
  return `${Math.round(p * 100_000) / 1000}%`;
}

/** Why binding `where` failed, and what to do. */
function bindProblem(error: unknown, where: string, port: number): string {
  if (error instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: port ${port} is in use there — give the relay an address of its own (any 127.x.y.z on Linux) or another --port`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where}: not an address of this machine — use one it has (any 127.x.y.z on Linux)`;
  }
  if (error instanceof Deno.errors.NotCapable) {
    return `Cannot listen on ${where}: network access not granted — run with --allow-net`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `Cannot listen on ${where}: permission denied — choose a port above 1023 with --port`;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return `Cannot listen on ${where}: ${reason}`;
}
