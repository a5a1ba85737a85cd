/**
 * The `simp conformance` command as a function: picks who plays the
 * target's user (`--driver`, `--interactive`, or nobody), runs the battery,
 * prints its report on stdout, writes `--json FILE`, and returns the exit
 * code: 0 when nothing failed, 1 when a check failed, 2 when the battery
 * could not run.
 *
 * @module
 */

import {
  type Driver,
  InteractiveDriver,
  NO_DRIVER,
  ProcessDriver,
  stdioTerminal,
} from "./driver.ts";
import {
  BATTERY_USER,
  type ConformanceOptions,
  runConformance,
} from "./runner.ts";

/** Options of `simp conformance` (see `simp conformance --help`). */
export interface ConformanceCommandOptions extends ConformanceOptions {
  /** `--driver CMD`: the program that acts as the target's user. */
  driver?: string;
  /** `--interactive`: ask the person at the target. */
  interactive: boolean;
  /** `--json FILE`: where to write the whole report with traces. */
  json?: string;
}

/**
 * Runs `simp conformance` and resolves to its exit code.
 *
 * @example
 * ```ts ignore
 * import { runConformanceCommand } from "./command.ts";
 * const code = await runConformanceCommand({
 *   target: "127.0.95.10", port: 7777, peerIp: "127.0.95.11",
 *   thirdIp: "127.0.95.12", timeoutMs: 300, toleranceMs: 150,
 *   interactive: false,
 * });
 * ```
 */
export async function runConformanceCommand(
  options: ConformanceCommandOptions,
): Promise<number> {
  if (options.json !== undefined) {
    // Found out now, not after a run of minutes: the file can be written.
    try {
      (await Deno.open(options.json, { write: true, create: true })).close();
    } catch (error) {
      console.error(cannotWrite(options.json, error));
      return 2;
    }
  }
  let driver: Driver = NO_DRIVER;
  try {
    if (options.driver !== undefined) {
      driver = new ProcessDriver(options.driver, {
        replyTimeoutMs: Math.max(15_000, 3 * options.timeoutMs),
      });
    } else if (options.interactive) {
      driver = new InteractiveDriver(stdioTerminal(), {
        peerIp: options.peerIp,
        peerName: BATTERY_USER,
      });
    }
  } catch (error) {
    console.error(
      `simp conformance: Cannot start the driver: ${message(error)}`,
    );
    return 2;
  }
  console.log(
    `simp conformance: target ${options.target}:${options.port}, from ${options.peerIp} and ${options.thirdIp}, timeout ${
      options.timeoutMs / 1000
    } s ± ${options.toleranceMs / 1000} s, ${driver.label}`,
  );
  try {
    const report = await runConformance(options, {
      driver,
      write: (line) => console.log(line),
    });
    if (options.json !== undefined) {
      try {
        await Deno.writeTextFile(
          options.json,
          JSON.stringify(report, null, 2) + "\n",
        );
      } catch (error) {
        console.error(cannotWrite(options.json, error));
        return 2;
      }
    }
    return report.failed > 0 ? 1 : 0;
  } catch (error) {
    console.error(`simp conformance: ${message(error)}`);
    return 2;
  } finally {
    await driver.close();
  }
}

function cannotWrite(path: string, error: unknown): string {
  return `simp conformance: Cannot write ${path}: ${
    message(error)
  } (give a writable path to --json)`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
