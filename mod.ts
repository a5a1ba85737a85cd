/**
 * simp: the reference implementation of SIMP, a one-to-one chat protocol on
 * UDP (see `docs/PROTOCOL.md`). As a library it exports the wire codec, the
 * sans-I/O protocol engine (`Session`), the client–daemon protocol and the
 * daemon and client themselves (`runDaemon`, `runClient`); run as a program (`deno run -A mod.ts --help`) it is the `simp` command with
 * its `daemon` and `client` subcommands.
 *
 * @example
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
import { runConformanceCommand } from "./lib/conformance/command.ts";

// ---------------------------------------------------------------------------
// The library: the wire codec, the sans-I/O protocol core, the client–daemon
// protocol, and the daemon and client as functions.

export * from "./lib/wire/datagram.ts";
export * from "./lib/peer/stop_and_wait.ts";
export * from "./lib/peer/session.ts";
export * from "./lib/control.ts";
export { runDaemon, type RunDaemonHooks } from "./daemon.ts";
export { runClient } from "./client.ts";
export type { ClientOptions, DaemonOptions } from "./lib/cli.ts";
export {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
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
    console.error(`simp: ${error.message}`);
    return USAGE_EXIT_CODE;
  }
  switch (command.kind) {
    case "help":
      console.log(command.text);
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
    case "conformance":
      return await runConformanceCommand(command.options);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
