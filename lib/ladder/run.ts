/**
 * `simp ladder`: the thin I/O shell around {@linkcode readLadderInput} and
 * {@linkcode renderLadder}. Reads the input file, writes the SVG to a file
 * or stdout; every failure is one line on stderr and exit code 1. A huge
 * input is drawn bounded: at most {@linkcode MAX_LADDER_BYTES} of the file
 * are read and the first {@linkcode MAX_LADDER_DATAGRAMS} datagrams drawn,
 * with one line on stderr saying so.
 *
 * @module
 */

import type { LadderOptions } from "../cli.ts";
import { LadderInputError, readLadderInput } from "./sources.ts";
import { renderLadder } from "./svg.ts";

/**
 * The most datagrams one diagram draws: the first ones of a longer input (a
 * ladder of more is unreadable; cut the capture to the part to look at).
 */
export const MAX_LADDER_DATAGRAMS = 2000;

/**
 * The most bytes of the input read: far more than
 * {@linkcode MAX_LADDER_DATAGRAMS} datagrams take, so that a capture of
 * gigabytes is not read whole for its first datagrams.
 */
export const MAX_LADDER_BYTES = 16 * 1024 * 1024;

/** Optional hooks of {@linkcode runLadder}, for tests. */
export interface RunLadderHooks {
  /** Where error lines go, without a newline (default: stderr). */
  report?: (line: string) => void;
  /**
   * Reads the input (default: the first {@linkcode MAX_LADDER_BYTES} of
   * the file).
   */
  read?: (file: string) => Promise<Uint8Array>;
  /** Where the SVG goes when no output file is given (default: stdout). */
  write?: (svg: string) => void;
}

/**
 * Draws `options.file` as an SVG ladder diagram into `options.output` (or
 * stdout) and resolves to the exit code: 0, or 1 after one line saying what
 * went wrong.
 *
 * @example
 * ```ts ignore
 * import { runLadder } from "./run.ts";
 * Deno.exit(await runLadder({ file: "chat.pcap", output: "chat.svg" }));
 * ```
 */
export async function runLadder(
  options: LadderOptions,
  hooks: RunLadderHooks = {},
): Promise<number> {
  const report = hooks.report ?? ((line: string) => console.error(line));
  let bytes: Uint8Array;
  try {
    bytes = await (hooks.read ?? ((file) =>
      readPrefix(file, MAX_LADDER_BYTES)))(
        options.file,
      );
  } catch (error) {
    report(`simp: Cannot read ${options.file}: ${fileProblem(error, "read")}`);
    return 1;
  }
  let svg: string;
  try {
    let events = readLadderInput(bytes);
    if (events.length > MAX_LADDER_DATAGRAMS) {
      report(
        `simp: ${options.file}: drew the first ${MAX_LADDER_DATAGRAMS} datagrams of ${
          bytes.length === MAX_LADDER_BYTES ? "more than " : ""
        }${events.length} (a longer ladder is unreadable: cut the capture to the part to see, e.g. with editcap -r)`,
      );
      events = events.slice(0, MAX_LADDER_DATAGRAMS);
    }
    if (events.length === 0) {
      throw new LadderInputError(
        "Nothing to draw: it holds no UDP datagram over IPv4 (a capture of other traffic, of IPv6, or of a link type simp ladder does not read?)",
      );
    }
    svg = renderLadder(events, {
      title: options.title ?? options.file.split("/").pop(),
    });
  } catch (error) {
    if (!(error instanceof LadderInputError)) throw error;
    report(`simp: ${options.file}: ${error.message}`);
    return 1;
  }
  if (options.output === undefined) {
    (hooks.write ?? ((text: string) =>
      Deno.stdout.writeSync(
        new TextEncoder().encode(text),
      )))(svg);
    return 0;
  }
  try {
    await Deno.writeTextFile(options.output, svg);
  } catch (error) {
    report(
      `simp: Cannot write ${options.output}: ${fileProblem(error, "write")}`,
    );
    return 1;
  }
  return 0;
}

/** The first `max` bytes of `path` (all of it when shorter). */
async function readPrefix(path: string, max: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(max);
  let length = 0;
  while (length < max) {
    const n = await file.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
  }
  return buffer.subarray(0, length);
}

function fileProblem(error: unknown, access: "read" | "write"): string {
  if (error instanceof Deno.errors.NotFound) {
    return access === "read"
      ? "no such file — check the path"
      : "its folder does not exist — create it or choose another path";
  }
  if (error instanceof Deno.errors.NotCapable) {
    return `${access} access not granted — run with --allow-${access}`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `permission denied — choose a file you may ${access}`;
  }
  if (error instanceof Deno.errors.IsADirectory) {
    return "it is a folder — give a file";
  }
  return error instanceof Error ? error.message : String(error);
}
