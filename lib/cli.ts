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
import { DEFAULT_CONFIG } from "./peer/session.ts";
import { didYouMean } from "./suggest.ts";
import {
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./log.ts";
import { type Impairments, NO_IMPAIRMENTS } from "./relay/core.ts";
import type { RelayOptions } from "./relay/run.ts";
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
   * Derive the retransmission timeout from measured round trips (§5.6,
   * RFC 6298 with Karn's rule), between `minTimeoutMs` and `timeoutMs`
   * (default off: the fixed timeout of §5.2).
   */
  adaptiveTimeout: boolean;
  /**
   * Lower bound of the adaptive timeout in milliseconds (default
   * {@linkcode DEFAULT_MIN_TIMEOUT_MS}).
   */
  minTimeoutMs: number;
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
  /**
   * A pcap file to write every datagram sent or received on the peer port
   * to (default: none); see `lib/wire/pcap.ts`.
   */
  pcap?: string;
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

/**
 * The default lower bound of the adaptive timeout (`--min-timeout`), in
 * milliseconds: the engine's (see {@linkcode DEFAULT_CONFIG}).
 */
export const DEFAULT_MIN_TIMEOUT_MS: number = DEFAULT_CONFIG.minTimeout;
/** Options of `simp ladder`. */
export interface LadderOptions {
  /** The input: a pcap capture or a `simp relay` log. */
  file: string;
  /** Where to write the SVG (default: stdout). */
  output?: string;
  /** The diagram's title (default: the input file's name). */
  title?: string;
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
  adaptiveTimeout: false,
  minTimeoutMs: DEFAULT_MIN_TIMEOUT_MS,
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
    /** Draw a ladder diagram. */
    kind: "ladder";
    /** Its options. */
    options: LadderOptions;
  }
  | {
    /** Run the impairment relay. */
    kind: "relay";
    /** Its options. */
    options: RelayOptions;
  }
  | {
    /** Run the conformance battery against a SIMP daemon. */
    kind: "conformance";
    /** Its options. */
    options: ConformanceCommandOptions;
  };

/** The subjects of {@linkcode helpText}. */
export type HelpTopic =
  | "simp"
  | "daemon"
  | "client"
  | "ladder"
  | "relay"
  | "conformance";

const MAIN_HELP = `simp — a one-to-one chat over UDP (SIMP)

Usage:
  simp daemon [IP] [options]   run your daemon on IP (default 127.0.0.1)
  simp client [IP] [options]   chat through your daemon at IP
  simp ladder FILE [-o OUT]    draw a capture or relay log as an SVG diagram
  simp relay IP --between A B  a lossy link between two daemons (tests, demos)
  simp conformance TARGET_IP   check any SIMP daemon against the protocol
  simp --help                  show this help
  simp --version               show the version

Every user runs a daemon; daemons talk SIMP to each other on UDP port ${SIMP_PORT},
and the user talks to their own daemon with the client (port ${CLIENT_PORT}).

Each command lists its options with --help, e.g. "simp daemon --help".`;

const LADDER_HELP = `Usage: simp ladder FILE [-o OUT.svg] [--title TEXT]

Draws the SIMP datagrams in FILE as a ladder (sequence) diagram in SVG: one
lifeline per address, one arrow per datagram in time order, labelled like
the daemon's wire trace; retransmissions and duplicates are marked, and
datagrams a relay dropped end in a cross. FILE is a pcap capture (from
simp daemon --pcap, tcpdump -w or Wireshark) or the JSON-lines log of
simp relay. Of a longer input it draws the first 2000 datagrams and says so.

Options:
  -o, --output FILE    write the SVG to FILE (default: stdout)
  --title TEXT         the diagram's title (default: FILE's name)
  -h, --help           show this help

Example:
  simp ladder chat.pcap -o chat.svg`;

const DAEMON_HELP = `Usage: simp daemon [IP] [options]

Runs the SIMP daemon of the user at IP (an IPv4 address or localhost,
default 127.0.0.1).
It talks to other daemons on IP:PORT and to one client on IP:CLIENT-PORT.

Options:
  --port PORT          UDP port for daemon-to-daemon traffic (default ${SIMP_PORT})
  --client-port PORT   TCP port for the client (default ${CLIENT_PORT})
  --timeout SECONDS    retransmission timeout, greater than 0, decimals
                       allowed (default 5)
  --retries N          retransmissions before the peer is given up,
                       a whole number ≥ 0 (default 5)
  --adaptive-timeout   derive the retransmission timeout from measured
                       round trips (RFC 6298, Karn's rule), between
                       --min-timeout and --timeout (default off: the
                       fixed --timeout of the spec)
  --min-timeout SECONDS
                       lower bound of the adaptive timeout, greater than
                       0, decimals allowed (default ${
  DEFAULT_MIN_TIMEOUT_MS / 1000
})
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
  --pcap FILE          write every datagram sent or received on the peer
                       port to FILE (pcap, for Wireshark, tcpdump and
                       simp ladder); needs --allow-write
  -h, --help           show this help

Example:
  simp daemon 127.0.0.2 --timeout 0.5 --log-level debug`;

const CLIENT_HELP = `Usage: simp client [IP] [options]

Connects to your SIMP daemon at IP (an IPv4 address or localhost, default
127.0.0.1) and lets you invite someone, answer invitations and chat. Type q
to quit; in a chat, /help lists the commands and keys.

With stdin not a terminal (a script), each line answers the question asked
or is a chat message; at the end of input or at a q line the client waits
until every message sent is delivered or reported undelivered, then exits:
0 when all were delivered, 1 otherwise. Messages are numbered per chat.

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
    case "ladder":
      return LADDER_HELP;
    case "relay":
      return RELAY_HELP;
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
    case "ladder":
      return wantsHelp(rest)
        ? { kind: "help", text: LADDER_HELP }
        : { kind: "ladder", options: parseLadderArgs(rest) };
    case "relay":
      return wantsHelp(rest)
        ? { kind: "help", text: RELAY_HELP }
        : { kind: "relay", options: parseRelayArgs(rest) };
    case "conformance":
      return wantsHelp(rest)
        ? { kind: "help", text: CONFORMANCE_HELP }
        : { kind: "conformance", options: parseConformanceArgs(rest) };
  }
  if (first.startsWith("-")) {
    throw new UsageError(
      `Unknown option ${show(first)}${
        didYouMean(first, ["--help", "--version"])
      } (see simp --help)`,
    );
  }
  throw new UsageError(
    `Unknown command ${show(first)}${
      didYouMean(first, ["daemon", "client"]) ||
      ": use simp daemon or simp client"
    } (see simp --help)`,
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
    "adaptive-timeout": { type: "boolean" },
    "min-timeout": { type: "string" },
    "invite-limit": { type: "string" },
    "auto-accept": { type: "boolean" },
    name: { type: "string" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    pcap: { type: "string" },
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
  if (values["adaptive-timeout"] === true) options.adaptiveTimeout = true;
  if (values["min-timeout"] !== undefined) {
    options.minTimeoutMs = minTimeoutValue(values["min-timeout"], options, see);
  }
  if (values["auto-accept"] === true) options.autoAccept = true;
  if (values.name !== undefined) options.name = nameValue(values.name, see);
  if (values.pcap !== undefined) {
    if (values.pcap === "") {
      throw new UsageError(`Option --pcap needs a file name (see ${see})`);
    }
    options.pcap = values.pcap;
  }
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
 * Parses the arguments after `simp ladder` (help flags excluded: see
 * {@linkcode parseCommandLine}).
 *
 * @throws {UsageError} for an unknown option, or no input file or more than
 * one.
 * @example
 * ```ts
 * import { parseLadderArgs } from "./cli.ts";
 * const options = parseLadderArgs(["chat.pcap", "-o", "chat.svg"]);
 * console.log(options.file, options.output); // chat.pcap chat.svg
 * ```
 */
export function parseLadderArgs(args: readonly string[]): LadderOptions {
  const see = "simp ladder --help";
  const { values, positionals } = parse(args, see, {
    output: { type: "string", short: "o" },
    title: { type: "string" },
  });
  if (positionals.length === 0) {
    throw new UsageError(
      `Missing input: give a pcap capture or a simp relay log (see ${see})`,
    );
  }
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument ${
        show(positionals[1])
      }: simp ladder takes one input file (see ${see})`,
    );
  }
  const options: LadderOptions = { file: positionals[0] };
  if (values.output !== undefined) {
    if (values.output === "") {
      throw new UsageError(`Option --output needs a file name (see ${see})`);
    }
    options.output = values.output;
  }
  if (values.title !== undefined) options.title = values.title;
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
// simp relay

/** The default `--reorder-delay` of `simp relay`, in ms. */
export const RELAY_REORDER_DELAY_MS = 20;

const RELAY_HELP = `Usage: simp relay IP --between A B [options]

A lossy link for SIMP in user space, for tests and demonstrations. It binds
IP:PORT and relays between the daemons at A and B (each IP or IP:PORT, port
${SIMP_PORT} by default): a daemon that invites IP reaches the other daemon
through the relay. What comes from A goes to B, what comes from B goes to A,
sent from IP:PORT, so each daemon sees the relay as its peer. At the end
(Ctrl-C, SIGTERM or --duration) it prints the counts of each direction.

Impairments apply to both directions; the same option ending in -ab (A to
B only) or -ba (B to A only) sets one direction and wins over the plain one,
e.g. --loss 10% --loss-ba 0.
  --loss P%            drop a datagram with probability P (0 to 100, the %
                       is optional)
  --dup P%             send a datagram that is not dropped twice
  --reorder P%         hold a copy an extra random delay up to
                       --reorder-delay, so later datagrams overtake it
  --reorder-delay MS   the longest extra delay of a reordered copy, in
                       milliseconds (default ${RELAY_REORDER_DELAY_MS})
  --delay MS           hold every copy MS milliseconds
  --corrupt P%         flip 1 to 3 bits of a copy
  --drop-first K       drop the first K datagrams, whatever else

Options:
  --between A B        the two daemons (required)
  --port PORT          the relay's UDP port (default ${SIMP_PORT})
  --seed N             the seed of the random choices, 0 to 4294967295
                       (default: a random one, printed at the start)
  --duration SECONDS   stop after SECONDS, decimals allowed
  --log FILE           write one JSON line per datagram copy to FILE
                       (format: docs/RELIABILITY.md)
  -h, --help           show this help

Example:
  simp daemon 127.0.0.1 & simp daemon 127.0.0.2 &
  simp relay 127.0.0.3 --between 127.0.0.1 127.0.0.2 --loss 10% --dup 5%
  then, in the client of 127.0.0.1, invite 127.0.0.3`;

/** The impairment options of `simp relay`, each also with `-ab` and `-ba`. */
const RELAY_IMPAIRMENTS = {
  loss: "loss",
  dup: "duplicate",
  reorder: "reorder",
  "reorder-delay": "reorderDelay",
  delay: "delay",
  corrupt: "corrupt",
  "drop-first": "dropFirst",
} as const satisfies Record<string, keyof Impairments>;

/**
 * Parses the arguments after `simp relay` (help flags excluded: see
 * {@linkcode parseCommandLine}). Without `--seed`, the seed is drawn at
 * random.
 *
 * @throws {UsageError} for a missing or unknown option or a bad value.
 * @example
 * ```ts
 * import { parseRelayArgs } from "./cli.ts";
 * const options = parseRelayArgs([
 *   "127.0.0.3", "--between", "127.0.0.1", "127.0.0.2", "--loss", "10%",
 * ]);
 * console.log(options.ab.loss, options.b.port); // 0.1 7777
 * ```
 */
export function parseRelayArgs(args: readonly string[]): RelayOptions {
  const see = "simp relay --help";
  const { between, rest } = takeBetween(args, see);
  const table: OptionTable = {
    port: { type: "string" },
    seed: { type: "string" },
    duration: { type: "string" },
    log: { type: "string" },
  };
  for (const name of Object.keys(RELAY_IMPAIRMENTS)) {
    for (const suffix of ["", "-ab", "-ba"]) {
      table[name + suffix] = { type: "string" };
    }
  }
  const parsed = parse(rest, see, table);
  const values = parsed.values as Record<string, string | undefined>;
  const positionals = parsed.positionals;
  if (positionals.length === 0) {
    throw new UsageError(
      `Missing IP: give the relay's own IPv4 address, e.g. simp relay 127.0.0.3 --between 127.0.0.1 127.0.0.2 (see ${see})`,
    );
  }
  const ip = ipArgument(positionals, "simp relay", see);
  if (between === undefined) {
    throw new UsageError(
      `Missing --between A B: name the two daemons to relay between (see ${see})`,
    );
  }
  const port = values.port === undefined
    ? SIMP_PORT
    : portValue("--port", values.port, see);
  const a = endpointValue(between[0], see);
  const b = endpointValue(between[1], see);
  if (a.ip === b.ip && a.port === b.port) {
    throw new UsageError(
      `Option --between needs two different daemons, both are ${a.ip}:${a.port} (see ${see})`,
    );
  }
  for (const end of [a, b]) {
    if (end.ip === ip && end.port === port) {
      throw new UsageError(
        `The relay cannot be ${ip}:${port}, a daemon it relays for: give it an address of its own (see ${see})`,
      );
    }
  }
  const ab: Impairments = {
    ...NO_IMPAIRMENTS,
    reorderDelay: RELAY_REORDER_DELAY_MS,
  };
  const ba: Impairments = { ...ab };
  for (const [name, key] of Object.entries(RELAY_IMPAIRMENTS)) {
    for (
      const [suffix, targets] of [["", [ab, ba]], ["-ab", [ab]], [
        "-ba",
        [ba],
      ]] as const
    ) {
      const text = values[name + suffix];
      if (text === undefined) continue;
      const value = impairmentValue(`--${name}${suffix}`, key, text, see);
      for (const target of targets) target[key] = value;
    }
  }
  const options: RelayOptions = {
    ip,
    port,
    a,
    b,
    seed: values.seed === undefined
      ? crypto.getRandomValues(new Uint32Array(1))[0]
      : seedValue(values.seed, see),
    ab,
    ba,
  };
  if (values.duration !== undefined) {
    options.durationMs = secondsValue("--duration", values.duration, see) *
      1000;
  }
  if (values.log !== undefined) {
    if (values.log === "") {
      throw new UsageError(`Option --log needs a file name (see ${see})`);
    }
    options.log = values.log;
  }
  return options;
}

/** Takes `--between A B` out of `args` (before any `--`). */
function takeBetween(
  args: readonly string[],
  see: string,
): { between?: [string, string]; rest: string[] } {
  const rest: string[] = [];
  let between: [string, string] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (arg.startsWith("--between=")) {
      throw new UsageError(
        `Option --between takes two addresses, as --between A B (see ${see})`,
      );
    }
    if (arg !== "--between") {
      rest.push(arg);
      continue;
    }
    const [first, second] = [args[i + 1], args[i + 2]];
    if (
      first === undefined || second === undefined || first.startsWith("-") ||
      second.startsWith("-")
    ) {
      throw new UsageError(
        `Option --between needs two addresses, as --between 127.0.0.1 127.0.0.2 (see ${see})`,
      );
    }
    if (between !== undefined) {
      throw new UsageError(`Option --between is given twice (see ${see})`);
    }
    between = [first, second];
    i += 2;
  }
  return { between, rest };
}

/** A daemon's address for `--between`: `IP` or `IP:PORT`. */
function endpointValue(
  text: string,
  see: string,
): { ip: string; port: number } {
  const match = /^([^:]*)(?::([^:]*))?$/.exec(text);
  const hostname = match?.[1] ?? "";
  if (!isIPv4(hostname) || specialAddress(hostname) !== undefined) {
    throw new UsageError(
      `Invalid daemon address ${
        show(text)
      } for --between: give IP or IP:PORT, e.g. 127.0.0.1 or 127.0.0.1:7777 (see ${see})`,
    );
  }
  const port = match?.[2] === undefined
    ? SIMP_PORT
    : portValue(`--between (port of ${hostname})`, match[2], see);
  return { ip: hostname, port };
}

/** The value of one impairment option, converted to the core's unit. */
function impairmentValue(
  option: string,
  key: keyof Impairments,
  text: string,
  see: string,
): number {
  switch (key) {
    case "loss":
    case "duplicate":
    case "reorder":
    case "corrupt": {
      const match = /^((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))%?$/.exec(text);
      const p = match === null ? NaN : Number(match[1]);
      if (!(p >= 0 && p <= 100)) {
        throw new UsageError(
          `Option ${option} must be a percentage from 0 to 100, such as 10% or 2.5, not ${
            show(text)
          } (see ${see})`,
        );
      }
      return p / 100;
    }
    case "reorderDelay":
    case "delay": {
      const ms = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(text)
        ? Number(text)
        : NaN;
      if (!(ms >= 0 && ms <= MAX_TIMEOUT_SECONDS * 1000)) {
        throw new UsageError(
          `Option ${option} must be a number of milliseconds from 0 to ${
            MAX_TIMEOUT_SECONDS * 1000
          }, not ${show(text)} (see ${see})`,
        );
      }
      return ms;
    }
    case "dropFirst": {
      const k = /^[0-9]+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(k)) {
        throw new UsageError(
          `Option ${option} must be a whole number 0 or greater, not ${
            show(text)
          } (see ${see})`,
        );
      }
      return k;
    }
  }
}

/** A `--seed`: a whole number from 0 to 2³² − 1. */
function seedValue(text: string, see: string): number {
  const seed = /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(seed >= 0 && seed <= 0xffff_ffff)) {
    throw new UsageError(
      `Option --seed must be a whole number from 0 to 4294967295, not ${
        show(text)
      } (see ${see})`,
    );
  }
  return seed;
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
    const known = [
      ...Object.keys(options).map((name) => `--${name}`),
      "--help",
    ];
    throw new UsageError(`${describeParseError(error, known)} (see ${see})`);
  }
}

/** A one-line description of an error thrown by `parseArgs`. */
function describeParseError(error: unknown, known: string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (option !== undefined) {
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      return `Unknown option ${show(option)}${didYouMean(option, known)}`;
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
  const given = positionals[0];
  if (given === undefined) return DEFAULT_IP;
  // `localhost` is what many users type for this machine: 127.0.0.1.
  const ip = given.toLowerCase() === "localhost" ? "127.0.0.1" : given;
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

/** A `--min-timeout` value: seconds, with the adaptive timeout, at most `--timeout`. */
function minTimeoutValue(
  text: string,
  options: DaemonOptions,
  see: string,
): number {
  const ms = secondsValue("--min-timeout", text, see) * 1000;
  if (!options.adaptiveTimeout) {
    throw new UsageError(
      `Option --min-timeout bounds the adaptive timeout: add --adaptive-timeout (see ${see})`,
    );
  }
  if (ms > options.timeoutMs) {
    throw new UsageError(
      `Option --min-timeout (${ms / 1000} s) must not exceed --timeout (${
        options.timeoutMs / 1000
      } s): lower it or raise --timeout (see ${see})`,
    );
  }
  return ms;
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
