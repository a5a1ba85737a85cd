/**
 * Addresses, in one place for the whole project: the {@linkcode Address}
 * type (an IPv4 address and a port), parsing what a user types
 * ({@linkcode parseAddress}), formatting, the IPv4 checks
 * ({@linkcode isIPv4}, {@linkcode specialAddress}) and whether an address
 * belongs to this machine ({@linkcode isThisMachine}, SPEC §7.2). Pure: the
 * machine's interface list is passed in.
 *
 * @module
 */

import { quoteText } from "./_quote.ts";

/** An IPv4 address and a port (UDP for peers, TCP for the client link). */
export interface Address {
  /** IPv4 address in dotted-quad form, e.g. `127.0.0.1`. */
  ip: string;
  /** Port, 1–65535 (0 only where the system picks one). */
  port: number;
}

/** Formats an address as `ip:port`. */
export function formatAddress(address: Address): string {
  return `${address.ip}:${address.port}`;
}

/** Whether two addresses are the same IP and port (`a` may be absent). */
export function sameAddress(a: Address | undefined, b: Address): boolean {
  return a !== undefined && a.ip === b.ip && a.port === b.port;
}

/**
 * Whether `text` is an IPv4 address in dotted-quad form: four decimal
 * numbers 0–255 without leading zeros (`010` is ambiguous: octal to some
 * tools). Any such address passes, even those no daemon can use (see
 * {@linkcode specialAddress}).
 *
 * @example
 * ```ts
 * import { isIPv4 } from "./address.ts";
 * console.log(isIPv4("127.0.0.2"), isIPv4("127.0.0.02")); // true false
 * ```
 */
export function isIPv4(text: string): boolean {
  if (text.length > 15) return false;
  const parts = text.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/**
 * What an IPv4 address is when it cannot be one daemon's address, or
 * `undefined` for an ordinary one: the wildcard `0.0.0.0`, the broadcast
 * `255.255.255.255`, a multicast address (224.0.0.0/4), or a reserved one
 * (240.0.0.0/4, which hosts refuse to send to). A daemon bound to one of
 * these would not answer from the address its client and its peers talk
 * to, and a datagram sent to one does not reach one daemon.
 *
 * @example
 * ```ts
 * import { specialAddress } from "./address.ts";
 * console.log(specialAddress("0.0.0.0")); // "the wildcard address"
 * console.log(specialAddress("127.0.0.2")); // undefined
 * ```
 */
export function specialAddress(ip: string): string | undefined {
  if (ip === "0.0.0.0") return "the wildcard address";
  if (ip === "255.255.255.255") return "the broadcast address";
  const first = Number(ip.split(".")[0]);
  if (first >= 224 && first <= 239) return "a multicast address";
  if (first >= 240) return "a reserved address (240.0.0.0/4)";
  return undefined;
}

/** An address a user typed that cannot be used; the message says why and what to type. */
export class AddressError extends Error {
  /** Creates the error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "AddressError";
  }
}

/** Options of {@linkcode parseAddress}. */
export interface ParseAddressOptions {
  /** The port when the text names none (e.g. `SIMP_PORT` for a peer). */
  defaultPort: number;
}

/**
 * Reads an address a user typed: `ip` (with `options.defaultPort`) or
 * `ip:port`; `localhost` stands for 127.0.0.1. Surrounding spaces are
 * ignored. Addresses that cannot be one daemon's ({@linkcode specialAddress})
 * are refused.
 *
 * @throws {AddressError} with a message for the user when the text is not
 * such an address.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./address.ts";
 * const a = parseAddress("127.0.0.2:9000", { defaultPort: 7777 });
 * console.log(a); // { ip: "127.0.0.2", port: 9000 }
 * console.log(parseAddress("localhost", { defaultPort: 7777 }).ip); // 127.0.0.1
 * ```
 */
export function parseAddress(
  text: string,
  options: ParseAddressOptions,
): Address {
  const trimmed = text.trim();
  const match = /^([^:]*)(?::([0-9]{1,5}))?$/.exec(trimmed);
  const host = match?.[1] ?? trimmed;
  const ip = host.toLowerCase() === "localhost" ? "127.0.0.1" : host;
  if (match === null || !isIPv4(ip)) {
    throw new AddressError(
      `${
        quoteText(text)
      } is not an IPv4 address: type one such as 127.0.0.2 (or 127.0.0.2:${options.defaultPort})`,
    );
  }
  const special = specialAddress(ip);
  if (special !== undefined) {
    throw new AddressError(
      `${ip} is ${special}, not a user's daemon: type one daemon's IPv4 address such as 127.0.0.2`,
    );
  }
  const port = match[2] === undefined ? options.defaultPort : Number(match[2]);
  if (port < 1 || port > 65_535) {
    throw new AddressError(
      `Port ${port} is out of range: use 1 to 65535, or leave it out for ${options.defaultPort}`,
    );
  }
  return { ip, port };
}

/** One network interface address, as `Deno.networkInterfaces()` lists it. */
export interface InterfaceAddress {
  /** The address family: only `IPv4` entries count here. */
  family: string;
  /** The address. */
  address: string;
}

/**
 * `ip` without the IPv4-mapped IPv6 prefix (`::ffff:127.0.0.1` →
 * `127.0.0.1`), as a dual-stack socket may report an IPv4 peer.
 */
function unmapped(ip: string): string {
  return ip.toLowerCase().startsWith("::ffff:") ? ip.slice(7) : ip;
}

/**
 * Whether `ip` is an address of this machine (SPEC §7.2): any of
 * 127.0.0.0/8, or the IPv4 address of one of `interfaces` (pass
 * `Deno.networkInterfaces()`; passed in so that this stays pure).
 *
 * @example
 * ```ts
 * import { isThisMachine } from "./address.ts";
 * const interfaces = [{ family: "IPv4", address: "192.168.1.5" }];
 * console.log(isThisMachine("127.0.0.9", interfaces)); // true
 * console.log(isThisMachine("192.168.1.5", interfaces)); // true
 * console.log(isThisMachine("192.168.1.6", interfaces)); // false
 * ```
 */
export function isThisMachine(
  ip: string,
  interfaces: readonly InterfaceAddress[],
): boolean {
  const v4 = unmapped(ip);
  if (!isIPv4(v4)) return false;
  if (v4.startsWith("127.")) return true;
  return interfaces.some((i) => i.family === "IPv4" && i.address === v4);
}
