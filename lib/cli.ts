/**
 * The `simp` command line: pure functions from arguments to typed options,
 * so that every rule is unit-testable. They never print or exit; a bad
 * command line throws {@linkcode UsageError}, whose message is one line
 * saying what to do. `mod.ts` prints it as `simp: <message>` on stderr and
 * exits with {@linkcode USAGE_EXIT_CODE}.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { isIPv4, specialAddress } from "./address.ts";
import { CLIENT_PORT, SIMP_PORT } from "./link/protocol.ts";
import { checkUserName } from "./wire/datagram.ts";
import {
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./log.ts";
import type { ConformanceCommandOptions } from "./conformance/command.ts";
import {
  CONFORMANCE_DEFAULTS,
  defaultToleranceMs,
} from "./conformance/runner.ts";

/** The exit code for a bad command line (as in BSD's `EX_USAGE` habit of 2). */
export const USAGE_EXIT_CODE = 2;

/**
 * A bad command line. The message is one line, starts with a capital letter
 * and ends by pointing at the help to read, e.g.
 * `Unknown option --foo (see simp daemon --help)`.
 */
export class UsageError extends Error {
  /** Creates the error; `message` must be a single line. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Options of `simp daemon` (SPEC §1, §5). */
export interface DaemonOptions {
  /** The daemon's IPv4 address: it binds both its ports there (§1.2). */
  ip: string;
  /** UDP port for daemon-to-daemon traffic (§1.1, default {@linkcode SIMP_PORT}). */
  port: number;
  /** TCP port the client talks to, on the same IP (§1.1, §9, default {@linkcode CLIENT_PORT}). */
  clientPort: number;
  /** Retransmission timeout in milliseconds (§5.2, default 5000). */
  timeoutMs: number;
  /** Retransmissions before the peer is considered lost (§5.5, default 5). */
  retries: number;
  /**
   * The invitation limit in milliseconds (§4.6, default 60000): how long an
   * invitation of ours waits for an answer, and how long one from someone
   * else stays pending.
   */
  inviteLimitMs: number;
  /** Accept invitations without asking the user (§4.9, default off). */
  autoAccept: boolean;
  /**
   * The user name sent until a client connects and gives its own, e.g. by
   * an auto-accepting daemon (default: none, an empty User field, §2.2).
   */
  name?: string;
  /** Lowest log level written to stderr (default `info`). */
  logLevel: LogLevel;
  /** Log line format on stderr (default `text`). */
  logFormat: LogFormat;
}

/** Options of `simp client` (SPEC §8). */
export interface ClientOptions {
  /** The IPv4 address of the user's own daemon (§1.2, §8.1). */
  ip: string;
  /** The daemon's client port (§1.1, default {@linkcode CLIENT_PORT}). */
  port: number;
  /** The user name; when absent the client asks for it (§8.1). */
  name?: string;
  /** Print events as JSON lines on stdout instead of the interactive view. */
  json: boolean;
  /**
   * Lowest log level written to stderr (default `warning`, so that logs do
   * not clutter the interactive view).
   */
  logLevel: LogLevel;
  /** Log line format on stderr (default `text`). */
  logFormat: LogFormat;
}

/** The IP address of the daemon when none is given. */
export const DEFAULT_IP = "127.0.0.1";

/** Defaults of `simp daemon`. */
export const DAEMON_DEFAULTS: Readonly<DaemonOptions> = Object.freeze({
  ip: DEFAULT_IP,
  port: SIMP_PORT,
  clientPort: CLIENT_PORT,
  timeoutMs: 5000,
  retries: 5,
  inviteLimitMs: 60_000,
  autoAccept: false,
  logLevel: "info",
  logFormat: "text",
});

/** Defaults of `simp client` (no `name`: the client asks for it). */
export const CLIENT_DEFAULTS: Readonly<ClientOptions> = Object.freeze({
  ip: DEFAULT_IP,
  port: CLIENT_PORT,
  json: false,
  logLevel: "warning",
  logFormat: "text",
});

/** The longest `--timeout` or `--invite-limit` accepted, in seconds (timers overflow far above). */
export const MAX_TIMEOUT_SECONDS = 86_400;

/** What a whole command line asks for; see {@linkcode parseCommandLine}. */
export type Command =
  | {
    /** Print `text` on stdout and exit 0. */
    kind: "help";
    /** The help text, ending without a newline. */
    text: string;
  }
  | {
    /** Print the version on stdout and exit 0. */
    kind: "version";
  }
  | {
    /** Run the daemon. */
    kind: "daemon";
    /** Its options. */
    options: DaemonOptions;
  }
  | {
    /** Run the client. */
    kind: "client";
    /** Its options. */
    options: ClientOptions;
  }
  | {
    /** Run the conformance battery against a SIMP daemon. */
    kind: "conformance";
    /** Its options. */
    options: ConformanceCommandOptions;
  };

/** The subjects of {@linkcode helpText}. */
export type HelpTopic = "simp" | "daemon" | "client" | "conformance";

const MAIN_HELP = `simp — a one-to-one chat over UDP (SIMP)

Usage:
  simp daemon [IP] [options]   run your daemon on IP (default 127.0.0.1)
  simp client [IP] [options]   chat through your daemon at IP
  simp conformance TARGET_IP   check any SIMP daemon against the protocol
  simp --help                  show this help
  simp --version               show the version

Every user runs a daemon; daemons talk SIMP to each other on UDP port ${SIMP_PORT},
and the user talks to their own daemon with the client (port ${CLIENT_PORT}).

Run "simp daemon --help", "simp client --help" or "simp conformance --help"
for their options.`;

const DAEMON_HELP = `Usage: simp daemon [IP] [options]

Runs the SIMP daemon of the user at IP (an IPv4 address, default 127.0.0.1).
It talks to other daemons on IP:PORT and to one client on IP:CLIENT-PORT.

Options:
  --port PORT          UDP port for daemon-to-daemon traffic (default ${SIMP_PORT})
  --client-port PORT   TCP port for the client (default ${CLIENT_PORT})
  --timeout SECONDS    retransmission timeout, greater than 0, decimals
                       allowed (default 5)
  --retries N          retransmissions before the peer is given up,
                       a whole number ≥ 0 (default 5)
  --invite-limit SECONDS
                       how long an invitation waits for an answer, ours
                       or another's, greater than 0, decimals allowed
                       (default 60)
  --auto-accept        accept invitations without asking; messages that
                       arrive with no client connected are kept
  --name NAME          the user name to send until a client connects and
                       gives its own (useful with --auto-accept)
  --log-level LEVEL    trace, debug, info, warning or error (default info)
  --log-format FORMAT  text or json (JSON lines); logs go to stderr
                       (default text)
  -h, --help           show this help

Example:
  simp daemon 127.0.0.2 --timeout 0.5 --log-level debug`;

const CLIENT_HELP = `Usage: simp client [IP] [options]

Connects to your SIMP daemon at IP (an IPv4 address, default 127.0.0.1) and
lets you invite someone, answer invitations and chat. Type q to quit.

Options:
  --port PORT          the daemon's client port (default ${CLIENT_PORT})
  --name NAME          your user name: printable ASCII, at most 32
                       characters (asked for when not given)
  --json               print events as JSON lines on stdout (for scripts)
  --log-level LEVEL    trace, debug, info, warning or error
                       (default warning)
  --log-format FORMAT  text or json (JSON lines); logs go to stderr
                       (default text)
  -h, --help           show this help

Example:
  simp client 127.0.0.1 --name alice`;

const CONFORMANCE_HELP = `Usage: simp conformance TARGET_IP [options]

Checks the SIMP daemon at TARGET_IP (any implementation) against the
protocol over real UDP, from two addresses of its own, and prints one line
per check: PASS, FAIL (what was expected, the datagrams seen, with times)
or SKIP (why), then "N passed, M failed, K skipped". Exits 1 when a check
failed. The checks and the driver protocol: docs/CONFORMANCE.md.

Options:
  --port PORT          the target's SIMP port; the battery speaks from the
                       same port on its own addresses (default ${SIMP_PORT})
  --peer-ip IP         the battery's address, the target's partner
                       (default ${CONFORMANCE_DEFAULTS.peerIp})
  --third-ip IP        a third address, for busy answers and intruders
                       (default ${CONFORMANCE_DEFAULTS.thirdIp})
  --timeout SECONDS    the target's retransmission timeout (default 5)
  --tolerance SECONDS  how far from the timeout a retransmission may come
                       (default a fifth of the timeout plus 0.05)
  --retries N          the target's retransmissions before it gives a
                       peer up (default 5)
  --driver CMD         run CMD (with sh -c) as the target's user: JSON
                       requests on its stdin, replies on its stdout
  --interactive        ask the person at the target to act instead
  --json FILE          write every result with its datagrams to FILE
  --only IDS           run only these checks: ids or groups, comma-
                       separated, * as a wildcard (e.g. chat,busy.responder)
  -h, --help           show this help

Without --driver or --interactive only the checks that need no user run;
the others are skipped. Give the target a short timeout to run fast.

Example:
  simp daemon 127.0.0.5 --timeout 0.3 &
  simp conformance 127.0.0.5 --timeout 0.3 --driver "deno run -A examples/conformance_driver.ts 127.0.0.5"`;

/** The help text of `simp`, `simp daemon` or `simp client`. */
export function helpText(topic: HelpTopic): string {
  switch (topic) {
    case "simp":
      return MAIN_HELP;
    case "daemon":
      return DAEMON_HELP;
    case "client":
      return CLIENT_HELP;
    case "conformance":
      return CONFORMANCE_HELP;
  }
}

/**
 * Turns the whole argument list of `simp` into a {@linkcode Command}:
 * `--help`/`-h` and `--version` at the top, `daemon …` and `client …` with
 * their options (a `--help` among them asks for that command's help).
 *
 * @throws {UsageError} for a missing or unknown command, an unknown option
 * or a bad value.
 * @example
 * ```ts
 * import { parseCommandLine } from "./cli.ts";
 * const command = parseCommandLine(["daemon", "127.0.0.2", "--auto-accept"]);
 * console.log(command.kind); // "daemon"
 * ```
 */
export function parseCommandLine(args: readonly string[]): Command {
  const [first, ...rest] = args;
  switch (first) {
    case undefined:
      throw new UsageError(
        "Missing command: use simp daemon or simp client (see simp --help)",
      );
    case "-h":
    case "--help":
      return { kind: "help", text: MAIN_HELP };
    case "--version":
      return { kind: "version" };
    case "daemon":
      return wantsHelp(rest)
        ? { kind: "help", text: DAEMON_HELP }
        : { kind: "daemon", options: parseDaemonArgs(rest) };
    case "client":
      return wantsHelp(rest)
        ? { kind: "help", text: CLIENT_HELP }
        : { kind: "client", options: parseClientArgs(rest) };
    case "conformance":
      return wantsHelp(rest)
        ? { kind: "help", text: CONFORMANCE_HELP }
        : { kind: "conformance", options: parseConformanceArgs(rest) };
  }
  if (first.startsWith("-")) {
    throw new UsageError(`Unknown option ${show(first)} (see simp --help)`);
  }
  throw new UsageError(
    `Unknown command ${
      show(first)
    }: use simp daemon or simp client (see simp --help)`,
  );
}

/**
 * Parses the arguments after `simp daemon` (help flags excluded: see
 * {@linkcode parseCommandLine}).
 *
 * @throws {UsageError} for an unknown option or a bad value.
 * @example
 * ```ts
 * import { parseDaemonArgs } from "./cli.ts";
 * const options = parseDaemonArgs(["127.0.0.2", "--timeout", "0.5"]);
 * console.log(options.timeoutMs); // 500
 * ```
 */
export function parseDaemonArgs(args: readonly string[]): DaemonOptions {
  const see = "simp daemon --help";
  const { values, positionals } = parse(args, see, {
    port: { type: "string" },
    "client-port": { type: "string" },
    timeout: { type: "string" },
    retries: { type: "string" },
    "invite-limit": { type: "string" },
    "auto-accept": { type: "boolean" },
    name: { type: "string" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
  });
  const options: DaemonOptions = {
    ...DAEMON_DEFAULTS,
    ip: ipArgument(positionals, "simp daemon", see),
  };
  if (values.port !== undefined) {
    options.port = portValue("--port", values.port, see);
  }
  if (values["client-port"] !== undefined) {
    options.clientPort = portValue(
      "--client-port",
      values["client-port"],
      see,
    );
  }
  if (options.port === options.clientPort) {
    throw new UsageError(
      `Options --port and --client-port must differ, both are ${options.port} (see ${see})`,
    );
  }
  if (values.timeout !== undefined) {
    options.timeoutMs = secondsValue("--timeout", values.timeout, see) * 1000;
  }
  if (values["invite-limit"] !== undefined) {
    options.inviteLimitMs =
      secondsValue("--invite-limit", values["invite-limit"], see) * 1000;
  }
  if (values.retries !== undefined) {
    options.retries = retriesValue(values.retries, see);
  }
  if (values["auto-accept"] === true) options.autoAccept = true;
  if (values.name !== undefined) options.name = nameValue(values.name, see);
  applyLogOptions(options, values, see);
  return options;
}

/**
 * Parses the arguments after `simp client` (help flags excluded: see
 * {@linkcode parseCommandLine}).
 *
 * @throws {UsageError} for an unknown option or a bad value.
 * @example
 * ```ts
 * import { parseClientArgs } from "./cli.ts";
 * const options = parseClientArgs(["--name", "alice"]);
 * console.log(options.ip, options.port); // 127.0.0.1 7778
 * ```
 */
export function parseClientArgs(args: readonly string[]): ClientOptions {
  const see = "simp client --help";
  const { values, positionals } = parse(args, see, {
    port: { type: "string" },
    name: { type: "string" },
    json: { type: "boolean" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
  });
  const options: ClientOptions = {
    ...CLIENT_DEFAULTS,
    ip: ipArgument(positionals, "simp client", see),
  };
  if (values.port !== undefined) {
    options.port = portValue("--port", values.port, see);
  }
  if (values.name !== undefined) options.name = nameValue(values.name, see);
  if (values.json === true) options.json = true;
  applyLogOptions(options, values, see);
  return options;
}

/**
 * Parses the arguments after `simp conformance` (help flags excluded: see
 * {@linkcode parseCommandLine}).
 *
 * @throws {UsageError} for a missing target, an unknown option or a bad value.
 * @example
 * ```ts
 * import { parseConformanceArgs } from "./cli.ts";
 * const options = parseConformanceArgs(["127.0.0.5", "--timeout", "0.3"]);
 * console.log(options.timeoutMs, options.toleranceMs); // 300 110
 * ```
 */
export function parseConformanceArgs(
  args: readonly string[],
): ConformanceCommandOptions {
  const see = "simp conformance --help";
  const { values, positionals } = parse(args, see, {
    port: { type: "string" },
    "peer-ip": { type: "string" },
    "third-ip": { type: "string" },
    timeout: { type: "string" },
    tolerance: { type: "string" },
    retries: { type: "string" },
    driver: { type: "string" },
    interactive: { type: "boolean" },
    json: { type: "string" },
    only: { type: "string" },
  });
  if (positionals.length === 0) {
    throw new UsageError(
      `Missing TARGET_IP: give the address of the daemon to check (see ${see})`,
    );
  }
  const target = ipArgument(positionals, "simp conformance", see);
  const timeoutMs = values.timeout === undefined
    ? CONFORMANCE_DEFAULTS.timeoutMs
    : secondsValue("--timeout", values.timeout, see) * 1000;
  const options: ConformanceCommandOptions = {
    target,
    port: values.port === undefined
      ? CONFORMANCE_DEFAULTS.port
      : portValue("--port", values.port, see),
    peerIp: addressOption("--peer-ip", values["peer-ip"], see) ??
      CONFORMANCE_DEFAULTS.peerIp,
    thirdIp: addressOption("--third-ip", values["third-ip"], see) ??
      CONFORMANCE_DEFAULTS.thirdIp,
    timeoutMs,
    toleranceMs: values.tolerance === undefined
      ? defaultToleranceMs(timeoutMs)
      : secondsValue("--tolerance", values.tolerance, see) * 1000,
    interactive: values.interactive === true,
  };
  if (values.retries !== undefined) {
    options.retries = retriesValue(values.retries, see);
  }
  const ips = [options.target, options.peerIp, options.thirdIp];
  if (new Set(ips).size < 3) {
    throw new UsageError(
      `The target, --peer-ip and --third-ip must be three different addresses, not ${
        ips.join(", ")
      } (see ${see})`,
    );
  }
  if (values.driver !== undefined) {
    if (values.driver.trim() === "") {
      throw new UsageError(`Option --driver needs a command (see ${see})`);
    }
    if (options.interactive) {
      throw new UsageError(
        `Give --driver or --interactive, not both (see ${see})`,
      );
    }
    options.driver = values.driver;
  }
  if (values.json !== undefined) options.json = values.json;
  if (values.only !== undefined) options.only = values.only;
  return options;
}

/** An optional IPv4 address option of the battery. */
function addressOption(
  option: string,
  value: string | undefined,
  see: string,
): string | undefined {
  if (value === undefined) return undefined;
  if (!isIPv4(value) || specialAddress(value) !== undefined) {
    throw new UsageError(
      `Option ${option} must be an IPv4 address of this machine such as 127.0.0.77, not ${
        show(value)
      } (see ${see})`,
    );
  }
  return value;
}

/** A `--name` value checked as SIMP sends it (§2.2, §2.3). */
function nameValue(name: string, see: string): string {
  const problem = name === ""
    ? "User name must not be empty"
    : checkUserName(name);
  if (problem !== undefined) {
    throw new UsageError(`Invalid --name: ${problem} (see ${see})`);
  }
  return name;
}

// ---------------------------------------------------------------------------
// Helpers

/** An option table for `parseArgs`. */
type OptionTable = NonNullable<ParseArgsConfig["options"]>;

/** Strict `parseArgs`, with its errors turned into one-line UsageErrors. */
function parse<const T extends OptionTable>(
  args: readonly string[],
  see: string,
  options: T,
) {
  try {
    return parseArgs({
      args: [...args],
      options,
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(`${describeParseError(error)} (see ${see})`);
  }
}

/** A one-line description of an error thrown by `parseArgs`. */
function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (option !== undefined) {
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      return `Unknown option ${show(option)}`;
    }
    if (/argument missing/.test(message)) {
      return `Option ${option} needs a value`;
    }
    if (/ambiguous/.test(message)) {
      return `Option ${option} needs a value; write ${option}=VALUE for a value starting with "-"`;
    }
    if (/does not take an argument/.test(message)) {
      return `Option ${option} takes no value`;
    }
  }
  const firstLine = message.split("\n")[0].replace(/\.$/, "");
  return `Invalid arguments: ${firstLine}`;
}

/** The single optional IP positional, validated. */
function ipArgument(
  positionals: readonly string[],
  command: string,
  see: string,
): string {
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument ${
        show(positionals[1])
      }: ${command} takes one IP address (see ${see})`,
    );
  }
  const ip = positionals[0];
  if (ip === undefined) return DEFAULT_IP;
  if (!isIPv4(ip)) {
    throw new UsageError(
      `Invalid IP address ${
        show(ip)
      }: give an IPv4 address such as 127.0.0.1 (see ${see})`,
    );
  }
  const special = specialAddress(ip);
  if (special !== undefined) {
    // The daemon answers from the address it is bound to, and the client
    // accepts answers only from the address it asked.
    throw new UsageError(
      `IP address ${ip} is ${special}, not one daemon's: give the daemon's own IPv4 address such as 127.0.0.1 (see ${see})`,
    );
  }
  return ip;
}

/** A port number 1–65535 given as a plain decimal integer. */
function portValue(option: string, text: string, see: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65_535)) {
    throw new UsageError(
      `Option ${option} must be an integer from 1 to 65535, not ${
        show(text)
      } (see ${see})`,
    );
  }
  return port;
}

/** A duration in seconds: a positive decimal number, at most a day. */
function secondsValue(option: string, text: string, see: string): number {
  const seconds = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(text)
    ? Number(text)
    : NaN;
  if (!(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS)) {
    throw new UsageError(
      `Option ${option} must be a number of seconds greater than 0 and at most ${MAX_TIMEOUT_SECONDS}, not ${
        show(text)
      } (see ${see})`,
    );
  }
  return seconds;
}

/** A retry count: a whole number ≥ 0. */
function retriesValue(text: string, see: string): number {
  const retries = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(retries)) {
    throw new UsageError(
      `Option --retries must be a whole number 0 or greater, not ${
        show(text)
      } (see ${see})`,
    );
  }
  return retries;
}

/** Applies `--log-level` and `--log-format` to `options`. */
function applyLogOptions(
  options: { logLevel: LogLevel; logFormat: LogFormat },
  values: { "log-level"?: string; "log-format"?: string },
  see: string,
): void {
  const level = values["log-level"];
  if (typeof level === "string") {
    if (!isLogLevel(level)) {
      throw new UsageError(
        `Option --log-level must be one of ${LOG_LEVELS.join(", ")}, not ${
          show(level)
        } (see ${see})`,
      );
    }
    options.logLevel = level;
  }
  const format = values["log-format"];
  if (typeof format === "string") {
    if (!isLogFormat(format)) {
      throw new UsageError(
        `Option --log-format must be ${LOG_FORMATS.join(" or ")}, not ${
          show(format)
        } (see ${see})`,
      );
    }
    options.logFormat = format;
  }
}

/** Whether a `-h`/`--help` appears among the options (before any `--`). */
function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "-h" || arg === "--help") return true;
  }
  return false;
}

/** A user-supplied value for an error message: as is if plain, else quoted. */
function show(value: string): string {
  return /^[\x21-\x7e]+$/.test(value) ? value : JSON.stringify(value);
}
