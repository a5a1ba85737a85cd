/**
 * `simp conformance TARGET_IP`: a black-box battery against any SIMP daemon
 * over real UDP. It owns two sockets, on `--peer-ip` and `--third-ip`, runs
 * every check of SPEC §2–§7 that can be seen from outside one after the
 * other, makes the target idle between two checks, and reports each as
 * PASS, FAIL or SKIP. The checks that need the target's user go through a
 * {@linkcode Driver} (see `driver.ts`). docs/CONFORMANCE.md explains it all.
 *
 * @module
 */

import { CHECKS } from "./_checks.ts";
import { Context, Failure, PEER_NAME, Skip, type Timing } from "./_context.ts";
import { Endpoint, formatAddr, Trace } from "./_net.ts";
import {
  type Driver,
  DRIVER_COMMANDS,
  type DriverCommand,
  NO_DRIVER,
} from "./driver.ts";
import {
  type CheckResult,
  type ConformanceReport,
  formatResult,
  formatSummary,
} from "./report.ts";

/** The battery's settings. */
export interface ConformanceOptions {
  /** The target daemon's IPv4 address. */
  target: string;
  /** The target's SIMP port, also the port the battery speaks from (default 7777). */
  port: number;
  /** The battery's main address: the target's partner. */
  peerIp: string;
  /** The battery's third address (§4.8, §7.1). */
  thirdIp: string;
  /** The target's retransmission timeout in ms (§5.2, default 5000). */
  timeoutMs: number;
  /** How far from the timeout a retransmission may come, in ms. */
  toleranceMs: number;
  /** The target's retransmissions before it gives a peer up (§5.5, default 5). */
  retries?: number;
  /** Which checks to run: ids, groups (`chat`) or `*` patterns, comma-separated; all when absent. */
  only?: string;
}

/** The battery's defaults (no target: it must be given). */
export const CONFORMANCE_DEFAULTS = Object.freeze({
  port: 7777,
  peerIp: "127.0.0.77",
  thirdIp: "127.0.0.78",
  timeoutMs: 5000,
  retries: 5,
});

/** The default tolerance for a timeout: a fifth of it, plus 50 ms. */
export function defaultToleranceMs(timeoutMs: number): number {
  return Math.round(timeoutMs / 5 + 50);
}

/** A check of the battery, as listed by {@linkcode listChecks}. */
export interface CheckInfo {
  /** Stable id, `group.name`. */
  id: string;
  /** The SPEC sections it checks. */
  spec: string;
  /** What it checks. */
  title: string;
}

/** Every check of the battery, in the order they run. */
export function listChecks(): CheckInfo[] {
  return CHECKS.map(({ id, spec, title }) => ({ id, spec, title }));
}

/**
 * Whether check `id` is selected by `only`: comma-separated ids, groups
 * (`busy` selects `busy.responder`, …) or patterns with `*`.
 */
export function selects(only: string | undefined, id: string): boolean {
  if (only === undefined) return true;
  return only.split(",").map((p) => p.trim()).filter((p) => p !== "").some(
    (pattern) => {
      if (pattern.includes("*")) {
        const re = pattern.split("*").map(escapeRegExp).join(".*");
        return new RegExp(`^${re}$`).test(id);
      }
      return id === pattern || id.startsWith(pattern + ".");
    },
  );
}

/** Where a run reports and who plays the target's user. */
export interface RunIo {
  /** The target's user; {@linkcode NO_DRIVER} when absent. */
  driver?: Driver;
  /** Called with each line of the report as it is ready. */
  write?: (line: string) => void;
}

/**
 * Runs the battery; resolves to the whole report (the caller writes
 * `--json` and chooses the exit code). The driver is not closed.
 *
 * @throws {Error} when the battery's addresses cannot be bound, or no
 * check matches `only`.
 * @example
 * ```ts ignore
 * import { runConformance } from "./runner.ts";
 * const report = await runConformance({
 *   target: "127.0.95.10", port: 7777, peerIp: "127.0.95.11",
 *   thirdIp: "127.0.95.12", timeoutMs: 300, toleranceMs: 150,
 * }, { write: console.log });
 * console.log(report.failed === 0);
 * ```
 */
export async function runConformance(
  options: ConformanceOptions,
  io: RunIo = {},
): Promise<ConformanceReport> {
  const driver = io.driver ?? NO_DRIVER;
  const write = io.write ?? (() => {});
  const checks = CHECKS.filter((c) => selects(options.only, c.id));
  if (checks.length === 0) {
    throw new Error(
      `No check matches --only ${options.only}: see the ids in docs/CONFORMANCE.md`,
    );
  }
  const target = { hostname: options.target, port: options.port };
  const timing = timingOf(options);
  const trace = new Trace();
  const peer = new Endpoint(
    "peer",
    { hostname: options.peerIp, port: options.port },
    trace,
  );
  let third: Endpoint;
  let ephemeral: Endpoint;
  try {
    third = new Endpoint(
      "third",
      { hostname: options.thirdIp, port: options.port },
      trace,
    );
  } catch (error) {
    await peer.close();
    throw error;
  }
  try {
    ephemeral = new Endpoint(
      "ephemeral",
      { hostname: options.peerIp, port: 0 },
      trace,
    );
  } catch (error) {
    await peer.close();
    await third.close();
    throw error;
  }
  const unsupported = new Set<DriverCommand>(
    driver === NO_DRIVER ? DRIVER_COMMANDS : [],
  );
  const startedAt = new Date();
  const started = performance.now();
  const results: CheckResult[] = [];
  const context = () =>
    new Context({
      target,
      peer,
      third,
      ephemeral,
      timing,
      trace,
      driver,
      unsupported,
    });
  try {
    await context().reset(true);
    for (const check of checks) {
      const ctx = context();
      trace.begin();
      const result = await runOne(check, ctx, timing);
      results.push(result);
      for (const line of formatResult(result)) write(line);
      // A check that sent nothing and asked nothing left nothing to undo.
      await ctx.reset(ctx.trace.entries.length > 0 || ctx.askedUser);
    }
  } finally {
    await peer.close();
    await third.close();
    await ephemeral.close();
  }
  const count = (v: string) => results.filter((r) => r.verdict === v).length;
  const report: ConformanceReport = {
    target: formatAddr(target),
    peer: formatAddr(peer.addr),
    third: formatAddr(third.addr),
    timeoutMs: options.timeoutMs,
    toleranceMs: options.toleranceMs,
    driver: driver.label,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - started),
    passed: count("PASS"),
    failed: count("FAIL"),
    skipped: count("SKIP"),
    received: peer.received + third.received + ephemeral.received,
    results,
  };
  if (report.received === 0) {
    write(
      `Nothing at all came from ${report.target}: is a SIMP daemon running there? (One that waits for its user answers nothing without --driver or --interactive.)`,
    );
  }
  write(formatSummary(report));
  return report;
}

/** The battery's waits, from the target's timeout. */
function timingOf(options: ConformanceOptions): Timing {
  const { timeoutMs, toleranceMs } = options;
  return {
    timeoutMs,
    toleranceMs,
    retries: options.retries ?? CONFORMANCE_DEFAULTS.retries,
    // Loopback answers come in milliseconds; a slow target gets a share
    // of its own timeout.
    quietMs: Math.min(1000, Math.max(150, timeoutMs / 2)),
    answerMs: Math.max(1000, timeoutMs) + toleranceMs,
  };
}

/** Runs one check, bounded in time, into its result. */
async function runOne(
  check: typeof CHECKS[number],
  ctx: Context,
  timing: Timing,
): Promise<CheckResult> {
  const started = performance.now();
  const limitMs = (20 + timing.retries) * timing.timeoutMs + 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result: CheckResult = {
    id: check.id,
    spec: check.spec,
    title: check.title,
    verdict: "PASS",
    notes: ctx.notes,
    durationMs: 0,
    trace: [],
  };
  let timedOut = false;
  const run = check.run(ctx);
  try {
    await Promise.race([
      run,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(
            new Failure(
              `the check to finish within ${limitMs / 1000} s`,
              "it did not: the target or the driver stopped answering",
            ),
          );
        }, limitMs);
      }),
    ]);
  } catch (error) {
    if (error instanceof Skip) {
      result.verdict = "SKIP";
      result.reason = error.message;
    } else if (error instanceof Failure) {
      result.verdict = "FAIL";
      result.expected = error.expected;
      result.reason = error.message;
    } else {
      result.verdict = "FAIL";
      result.expected = "the check to run to its end";
      result.reason = error instanceof Error ? error.message : String(error);
    }
  } finally {
    clearTimeout(timer);
    if (timedOut) {
      // Stop it at its next step, let it get there, and go on.
      ctx.cancel();
      await run.catch(() => {});
      ctx.uncancel();
    }
  }
  result.durationMs = Math.round(performance.now() - started);
  result.trace = [...ctx.trace.entries];
  return result;
}

/** The name the battery sends in its datagrams. */
export const BATTERY_USER = PEER_NAME;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
