/**
 * The battery's UDP sockets: one {@linkcode Endpoint} per address it speaks
 * from (`--peer-ip`, `--third-ip`), each with a queue of what arrived, and a
 * {@linkcode Trace} of every datagram sent and received, with times, for the
 * report of a check.
 *
 * @module
 */

import { describe, hex } from "./_codec.ts";
import type { TraceLine } from "./report.ts";

/** A UDP address. */
export interface Addr {
  /** IPv4 address. */
  hostname: string;
  /** UDP port. */
  port: number;
}

/** `ip:port`. */
export function formatAddr(addr: Addr): string {
  return `${addr.hostname}:${addr.port}`;
}

/** The datagrams of one check, with times from its start. */
export class Trace {
  #start = performance.now();
  #entries: TraceLine[] = [];

  /** Starts a new trace (a new check) at time 0. */
  begin(): void {
    this.#start = performance.now();
    this.#entries = [];
  }

  /** Milliseconds since {@linkcode begin}. */
  now(): number {
    return performance.now() - this.#start;
  }

  /** Records a datagram. */
  add(from: Addr, to: Addr, bytes: Uint8Array): number {
    const t = this.now();
    this.#entries.push({
      t,
      from: formatAddr(from),
      to: formatAddr(to),
      what: describe(bytes),
      hex: hex(bytes.subarray(0, 1024)),
    });
    return t;
  }

  /** The entries so far. */
  get entries(): readonly TraceLine[] {
    return this.#entries;
  }
}

/** A datagram that arrived at an endpoint. */
export interface Received {
  /** Its bytes. */
  bytes: Uint8Array;
  /** Where it came from. */
  from: Addr;
  /** When, in ms of the check's trace. */
  t: number;
}

/** Wakes pollers when something arrived. */
class Signal {
  #waiters = new Set<() => void>();

  notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** `check()` as soon as it is defined, or `undefined` after `ms`. */
  async poll<R>(
    check: () => R | undefined,
    ms: number,
  ): Promise<R | undefined> {
    const deadline = performance.now() + ms;
    for (;;) {
      const result = check();
      if (result !== undefined) return result;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** A UDP socket of the battery, speaking as one outside SIMP daemon. */
export class Endpoint {
  /** What the reports call it: `peer` or `third`. */
  readonly name: string;
  /** Its address. */
  readonly addr: Addr;
  /** When the last datagram arrived (`performance.now()`), or 0. */
  lastAt = 0;
  /** How many datagrams arrived, in all. */
  received = 0;
  #conn: Deno.DatagramConn;
  #queue: Received[] = [];
  #trace: Trace;
  #signal = new Signal();
  #loop: Promise<void>;

  /**
   * Binds `addr`.
   * @throws {Error} with a sentence saying what to do when it cannot.
   */
  constructor(name: string, addr: Addr, trace: Trace) {
    this.name = name;
    this.#trace = trace;
    try {
      this.#conn = Deno.listenDatagram({ ...addr, transport: "udp" });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(
        `Cannot bind the ${name} address ${formatAddr(addr)} (${why}): give ${
          name === "third" ? "--third-ip" : "--peer-ip"
        } an address of this machine whose port ${addr.port} is free`,
      );
    }
    const bound = this.#conn.addr as Deno.NetAddr;
    this.addr = { hostname: bound.hostname, port: bound.port };
    this.#loop = this.#receive();
  }

  async #receive(): Promise<void> {
    for (;;) {
      let data: Uint8Array;
      let addr: Deno.Addr;
      try {
        [data, addr] = await this.#conn.receive();
      } catch {
        return; // closed
      }
      const { hostname, port } = addr as Deno.NetAddr;
      const from = { hostname, port };
      const t = this.#trace.add(from, this.addr, data);
      this.lastAt = performance.now();
      this.received++;
      this.#queue.push({ bytes: data, from, t });
      this.#signal.notify();
    }
  }

  /** Sends `bytes` to `to`, recording it in the trace. */
  async send(bytes: Uint8Array, to: Addr): Promise<void> {
    this.#trace.add(this.addr, to, bytes);
    await this.#conn.send(bytes, { transport: "udp", ...to });
  }

  /** The next datagram, or `undefined` when none came within `ms`. */
  next(ms: number): Promise<Received | undefined> {
    return this.#signal.poll(() => this.#queue.shift(), ms);
  }

  /** Whether something is waiting in the queue. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Empties the queue and returns what was in it. */
  drain(): Received[] {
    return this.#queue.splice(0);
  }

  /** Closes the socket. */
  async close(): Promise<void> {
    this.#conn.close();
    await this.#loop;
  }
}
