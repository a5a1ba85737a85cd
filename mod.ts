/**
 * simp: the reference implementation of SIMP, a one-to-one chat protocol on
 * UDP (see `docs/PROTOCOL.md`). Run as a program (`deno run -A mod.ts
 * --help`) it is the `simp` command with its `daemon`, `client`, `relay`,
 * `ladder` and `conformance` subcommands. As a library it exports, by layer:
 *
 * - the wire codec: {@linkcode encodeDatagram}, {@linkcode decodeDatagram},
 *   {@linkcode Type}, {@linkcode Op} and the datagram types and errors;
 * - the sans-I/O protocol engine: {@linkcode Session} (events in, actions
 *   out, a clock passed in);
 * - the daemon: its sans-I/O core {@linkcode DaemonCore} and its runner
 *   {@linkcode runDaemon};
 * - the client–daemon link (TCP, one JSON object per line):
 *   {@linkcode ClientEnd} and the message types;
 * - a client for programs: {@linkcode connect} returns a {@linkcode Chat}
 *   with `invite`, `accept`, `decline`, `send` (resolves when delivered),
 *   `leave`, `close` and its events as an async iterable;
 * - the conformance battery against any SIMP daemon:
 *   {@linkcode runConformance} with a {@linkcode Driver} for its user.
 *
 * @example A bot that accepts the first invitation and answers every message
 * ```ts ignore
 * import { connect } from "./mod.ts";
 * const chat = await connect("127.0.0.1", { name: "bot" });
 * for await (const event of chat.events) {
 *   if (event.type === "invitation") await chat.accept();
 *   if (event.type === "message") chat.send(`You said: ${event.text}`);
 * }
 * ```
 *
 * @example The codec
 * ```ts
 * import { decodeDatagram, encodeDatagram, Op, Type } from "./mod.ts";
 * const bytes = encodeDatagram({
 *   type: Type.CHAT, op: Op.CHAT, seq: 0, user: "alice", payload: "hi",
 * });
 * console.log(decodeDatagram(bytes).payload); // "hi"
 * ```
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { runClient } from "./client.ts";
import { runDaemon } from "./daemon.ts";
import {
  type Command,
  parseCommandLine,
  USAGE_EXIT_CODE,
  UsageError,
} from "./lib/cli.ts";
import { setupLogging } from "./lib/log.ts";
import { runLadder } from "./lib/ladder/run.ts";
import { currentInvocation, localiseCommands } from "./lib/invocation.ts";
import { runRelay } from "./lib/relay/run.ts";
import { runConformanceCommand } from "./lib/conformance/command.ts";

// ---------------------------------------------------------------------------
// The library: the wire codec, the sans-I/O protocol core, the client–daemon
// protocol, and the daemon and client as functions.

// The wire codec (SPEC §2).
export {
  BUSY_TEXT,
  type ChatDatagram,
  checkText,
  checkUserName,
  type ControlDatagram,
  type Datagram,
  decodeDatagram,
  describeDatagram,
  encodeDatagram,
  HEADER_SIZE,
  InvalidDatagramError,
  MalformedDatagramError,
  type MalformedReason,
  MAX_PAYLOAD,
  Op,
  type Seq,
  Type,
  USER_SIZE,
} from "./lib/wire/datagram.ts";

// Addresses.
export {
  type Address,
  AddressError,
  formatAddress,
  isIPv4,
  parseAddress,
  type ParseAddressOptions,
} from "./lib/address.ts";

// The protocol engine (SPEC §3–§7).
export {
  type Action,
  DEFAULT_CONFIG,
  type DropReason,
  type Phase,
  Session,
  type SessionConfig,
  SessionError,
  type SessionEvent,
  type SessionOptions,
  type SessionStatus,
  type Undelivered,
} from "./lib/peer/session.ts";

// The daemon: its core and its runner.
export {
  type DaemonAction,
  DaemonCore,
  type DaemonCoreOptions,
  type SendFailure,
  STOP_GRACE_MS,
} from "./lib/daemon/core.ts";
export { runDaemon, type RunDaemonHooks } from "./daemon.ts";
export {
  type ClientOptions,
  DAEMON_DEFAULTS,
  type DaemonOptions,
} from "./lib/cli.ts";

// The client–daemon link (SPEC §9).
export {
  type ChatEndType,
  CLIENT_PORT,
  type Command,
  type CommandName,
  type DaemonMessage,
  type DaemonState,
  encodeDaemonMessage,
  encodeRequest,
  type ErrorCode,
  type ErrorReply,
  type EventMessage,
  type HelloReply,
  type HelloRequest,
  type InviteRequest,
  LINK_VERSION,
  LinkError,
  type LinkErrorOptions,
  type LinkEvent,
  type LinkEventType,
  type LinkLimits,
  type LinkPeer,
  type LinkPhase,
  MAX_LINE_BYTES,
  type OkReply,
  parseDaemonMessage,
  parseRequest,
  type PlainRequest,
  type Reply,
  type Request,
  type SendReply,
  type SendRequest,
  SIMP_PORT,
} from "./lib/link/protocol.ts";
export {
  ClientEnd,
  type ClientEndInput,
  type HelloPhase,
} from "./lib/link/client_end.ts";
export {
  BACKLOG_LIMIT,
  type ConnectionId,
  DaemonEnd,
  type DaemonEndAction,
  type DaemonEndOptions,
  type DaemonEndRequest,
  type DroppedEvent,
  KEPT_LIMIT,
} from "./lib/link/daemon_end.ts";
export {
  type LineItem,
  LineSplitter,
  type LineSplitterOptions,
} from "./lib/link/lines.ts";

// The client: for users (the `simp client` command) and for programs.
export {
  type ClientAction,
  ClientCore,
  type ClientCoreOptions,
  type UnreachableCause,
} from "./lib/user/client_core.ts";
export type { Ask, Output, PeerAddress, PeerUser } from "./lib/user/output.ts";
export { runClient } from "./client.ts";
export {
  Chat,
  ChatError,
  type ChatErrorReason,
  type ChatEvent,
  type ChatState,
  connect,
  type ConnectOptions,
  EVENT_BUFFER_LIMIT,
  type InviteOptions,
} from "./lib/user/program.ts";

// Tools: pcap capture and ladder diagrams.
export {
  type CapturedDatagram,
  decodePcap,
  type Endpoint,
  PcapFormatError,
  type PcapSink,
  PcapWriter,
  type PcapWriterOptions,
} from "./lib/wire/pcap.ts";
export {
  type LadderEvent,
  LadderInputError,
  readLadderInput,
} from "./lib/ladder/sources.ts";
export { renderLadder, type RenderLadderOptions } from "./lib/ladder/svg.ts";
export { runLadder, type RunLadderHooks } from "./lib/ladder/run.ts";
export type { LadderOptions } from "./lib/cli.ts";

// Tools: the impairment relay.
export {
  type Direction,
  type DirectionStats,
  type Impairments,
  NO_IMPAIRMENTS,
  type RelayAction,
  RelayCore,
  type RelayCoreOptions,
  type RelayRecord,
  type RelayStats,
} from "./lib/relay/core.ts";
export {
  describeImpairments,
  formatStats,
  Relay,
  type RelayOptions,
  RelayStartError,
  runRelay,
  type RunRelayHooks,
  startRelay,
} from "./lib/relay/run.ts";
// The conformance battery (`simp conformance`, docs/CONFORMANCE.md).
export {
  type CheckInfo,
  type ConformanceOptions,
  listChecks,
  runConformance,
  type RunIo,
} from "./lib/conformance/runner.ts";
export type {
  CheckResult,
  ConformanceReport,
  TraceLine,
  Verdict,
} from "./lib/conformance/report.ts";
export {
  type Driver,
  type DriverCommand,
  type DriverReply,
  type DriverRequest,
  NO_DRIVER,
  ProcessDriver,
  type ProcessDriverOptions,
} from "./lib/conformance/driver.ts";

// Logging.
export {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LoggingOptions,
  type LogLevel,
  setupLogging,
} from "./lib/log.ts";

// ---------------------------------------------------------------------------
// The `simp` command.

/** Runs the `simp` command line and resolves to the exit code. */
async function main(args: readonly string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(
      `simp: ${localiseCommands(error.message, currentInvocation())}`,
    );
    return USAGE_EXIT_CODE;
  }
  switch (command.kind) {
    case "help":
      console.log(localiseCommands(command.text, currentInvocation()));
      return 0;
    case "version":
      console.log(`simp ${denoJson.version}`);
      return 0;
    case "daemon":
      setupLogging({
        level: command.options.logLevel,
        format: command.options.logFormat,
      });
      return await runDaemon(command.options);
    case "client":
      setupLogging({
        level: command.options.logLevel,
        format: command.options.logFormat,
      });
      return await runClient(command.options);
    case "ladder":
      return await runLadder(command.options);
    case "relay":
      return await runRelay(command.options);
    case "conformance":
      return await runConformanceCommand(command.options);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
