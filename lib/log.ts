/**
 * Logging for simp, on LogTape: configured once per process by
 * {@linkcode setupLogging}, written to stderr (never stdout, which belongs to
 * the client's output), either as readable text lines or as JSON lines.
 * Every logger of this project has a category under `["simp", …]`; get one
 * with {@linkcode getLogger}.
 *
 * Until {@linkcode setupLogging} runs, LogTape drops every record, so library
 * code may log freely without configuring anything.
 *
 * @module
 */

import {
  configureSync,
  getJsonLinesFormatter,
  getLogger as getLogTapeLogger,
  getTextFormatter,
  type LogRecord,
  type TextFormatter,
  // A full npm: specifier, so that mod.ts loads in projects without this
  // deno.json (issue 7); keep the version equal to deno.json's.
  // deno-lint-ignore no-import-prefix
} from "npm:@logtape/logtape@^2.4.2";
import { writeAll } from "./_write.ts";

/**
 * The log levels a user can choose, from most to least verbose. They are
 * LogTape's level names (LogTape's `fatal` is left out: nothing here is
 * fatal to the process in a way worth its own level).
 */
export const LOG_LEVELS = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
] as const;

/** A log level: one of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/**
 * The log output formats: `text` is one readable line per record, `json` is
 * one JSON object per line (JSON Lines).
 */
export const LOG_FORMATS = ["text", "json"] as const;

/** A log output format: one of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** The root category of every simp logger. */
export const ROOT_CATEGORY = "simp";

/** The structured properties of a log record. */
export type LogProperties = Record<string, unknown>;

/**
 * A logger of a `simp` category: LogTape's `Logger`, narrowed to the calls
 * this project uses. A message template names properties in braces; the
 * properties it does not name are still written (after the message in text
 * lines, under `properties` in JSON lines). Pass a function instead of the
 * properties to compute them only when the record will be written.
 *
 * @example
 * ```ts
 * import { getLogger } from "./log.ts";
 * const log = getLogger("daemon");
 * log.info("Chat with {peer} established", { peer: "127.0.0.2:7777" });
 * log.debug("Datagram dropped", () => ({ reason: "length-mismatch" }));
 * ```
 */
export interface SimpLogger {
  /** The category, e.g. `["simp", "daemon"]`. */
  readonly category: readonly string[];
  /** Logs at `trace` level: every datagram and timer. */
  trace(
    message: string,
    properties?: LogProperties | (() => LogProperties),
  ): void;
  /** Logs at `debug` level: decisions worth seeing when debugging. */
  debug(
    message: string,
    properties?: LogProperties | (() => LogProperties),
  ): void;
  /** Logs at `info` level: what the daemon does (chat opened, closed). */
  info(
    message: string,
    properties?: LogProperties | (() => LogProperties),
  ): void;
  /** Logs at `warning` level: something went wrong but is handled. */
  warning(
    message: string,
    properties?: LogProperties | (() => LogProperties),
  ): void;
  /** The same as {@linkcode SimpLogger.warning}. */
  warn(
    message: string,
    properties?: LogProperties | (() => LogProperties),
  ): void;
  /** Logs at `error` level: something failed. */
  error(
    message: string,
    properties?: LogProperties | (() => LogProperties),
  ): void;
  /** Whether a record at `level` would be written. */
  isEnabledFor(level: LogLevel): boolean;
  /** The logger of a sub-category, e.g. `["simp", "daemon", "peer"]`. */
  getChild(subcategory: string): SimpLogger;
  /** A logger that adds `properties` to every record it writes. */
  with(properties: LogProperties): SimpLogger;
}

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** The lowest level that is written; less severe records are dropped. */
  level: LogLevel;
  /** `text` (readable lines, the default) or `json` (JSON Lines). */
  format?: LogFormat;
  /**
   * Where each formatted line (ending in `\n`) goes. Defaults to a
   * synchronous write to `Deno.stderr`; tests pass a function that collects
   * the lines.
   */
  write?: (line: string) => void;
}

/** Whether `value` is one of {@linkcode LOG_LEVELS}. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Whether `value` is one of {@linkcode LOG_FORMATS}. */
export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

/**
 * Configures LogTape for the whole process: records of the `simp` categories
 * at `level` or above go to stderr as text or JSON lines. Calling it again
 * replaces the previous configuration (it resets LogTape first), so tests
 * may call it as often as they like.
 *
 * LogTape's own diagnostics (category `["logtape", "meta"]`) go to the same
 * place at `warning` and above.
 *
 * @example
 * ```ts
 * import { getLogger, setupLogging } from "./log.ts";
 * setupLogging({ level: "debug", format: "json" });
 * getLogger("daemon").debug("Dropped a malformed datagram from {from}", {
 *   from: "127.0.0.2:7777",
 * });
 * ```
 */
export function setupLogging(options: LoggingOptions): void {
  const write = options.write ?? writeStderr;
  const formatter = options.format === "json"
    ? getJsonLinesFormatter({ properties: "nest:properties" })
    : TEXT_FORMATTER;
  function sink(record: LogRecord): void {
    write(formatter(record));
  }
  configureSync({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      {
        category: [ROOT_CATEGORY],
        sinks: ["stderr"],
        lowestLevel: options.level,
      },
      {
        category: ["logtape", "meta"],
        sinks: ["stderr"],
        lowestLevel: "warning",
      },
    ],
  });
}

/**
 * Returns the logger of a category under `["simp"]`: `getLogger("daemon")` is
 * `["simp", "daemon"]`, `getLogger(["daemon", "peer"])` is
 * `["simp", "daemon", "peer"]`, and `getLogger()` is `["simp"]` itself.
 * Loggers may be fetched before {@linkcode setupLogging} runs.
 */
export function getLogger(
  category: string | readonly string[] = [],
): SimpLogger {
  const rest = typeof category === "string" ? [category] : category;
  return getLogTapeLogger([ROOT_CATEGORY, ...rest]);
}

/** Writes all of `text` to stderr, synchronously. */
function writeStderr(text: string): void {
  writeAll(Deno.stderr, text);
}

/** Settings of a {@linkcode LogBudget}. */
export interface LogBudgetOptions {
  /** How many lines may be written at once, after a quiet spell. */
  burst: number;
  /** How many lines may be written per minute in the long run. */
  perMinute: number;
}

/** The first line, then at most one a minute. */
export const ONCE_A_MINUTE: Readonly<LogBudgetOptions> = Object.freeze({
  burst: 1,
  perMinute: 1,
});

/** What {@linkcode LogBudget.warning} writes. */
export interface BudgetedWarning {
  /** The message template. */
  message: string;
  /** Its properties. */
  properties: LogProperties;
  /** What the held-back lines were, e.g. `more sends failed`. */
  heldBack: string;
}

/**
 * A token bucket for log lines that other machines can trigger, so that a
 * flood of datagrams cannot flood the log (SPEC §7.3). Sans-I/O: the caller
 * gives the time. {@linkcode take} says whether a line may be written now,
 * and how many were held back since the last one written, for that line to
 * tell.
 *
 * @example
 * ```ts
 * import { LogBudget } from "./log.ts";
 * const budget = new LogBudget({ burst: 1, perMinute: 1 });
 * console.log(budget.take(0)); // 0: write it, nothing was held back
 * console.log(budget.take(10)); // undefined: hold it back
 * console.log(budget.take(60_000)); // 1: write it, and say 1 was held back
 * ```
 */
export class LogBudget {
  #options: LogBudgetOptions;
  #tokens: number;
  #at: number | undefined;
  #withheld = 0;

  /** Creates a full bucket. */
  constructor(options: LogBudgetOptions) {
    this.#options = options;
    this.#tokens = options.burst;
  }

  /**
   * Whether a line may be written at `now` (ms): `undefined` when it must
   * be held back, else the number of lines held back since the last one
   * written.
   */
  take(now: number): number | undefined {
    const { burst, perMinute } = this.#options;
    if (this.#at !== undefined) {
      const refill = Math.max(0, now - this.#at) * perMinute / 60_000;
      this.#tokens = Math.min(burst, this.#tokens + refill);
    }
    this.#at = now;
    if (this.#tokens < 1) {
      this.#withheld++;
      return undefined;
    }
    this.#tokens--;
    const withheld = this.#withheld;
    this.#withheld = 0;
    return withheld;
  }

  /**
   * Writes `warning` to `logger` at `now` if the budget allows, saying how
   * many such lines were held back since the last one written.
   */
  warning(logger: SimpLogger, now: number, warning: BudgetedWarning): void {
    const unlogged = this.take(now);
    if (unlogged === undefined) return;
    const { message, properties, heldBack } = warning;
    if (unlogged === 0) {
      logger.warning(message, properties);
    } else {
      logger.warning(
        `${message}; {unlogged} ${heldBack} since the last such line`,
        { ...properties, unlogged },
      );
    }
  }
}

/**
 * `2025-01-02 03:04:05.678 +00:00 [INF] simp.daemon: Chat with 127.0.0.2:7777
 * established {"user":"bob"}` — the message (its string values bare, control
 * characters escaped), then the properties that the message template does
 * not mention, as JSON (which escapes control characters from peers too).
 */
const TEXT_FORMATTER: TextFormatter = getTextFormatter({
  category: ".",
  value: "bare",
  format(values) {
    const extra = unmentionedProperties(values.record);
    const line =
      `${values.timestamp} [${values.level}] ${values.category}: ${values.message}`;
    return extra === undefined ? line : `${line} ${extra}`;
  },
});

/** The record's properties that its message does not show, as JSON. */
function unmentionedProperties(record: LogRecord): string | undefined {
  const template = typeof record.rawMessage === "string"
    ? record.rawMessage
    : record.rawMessage.join("");
  const extra: Record<string, unknown> = {};
  let any = false;
  for (const [key, value] of Object.entries(record.properties)) {
    if (mentions(template, key)) continue;
    extra[key] = value;
    any = true;
  }
  if (!any) return undefined;
  try {
    return JSON.stringify(extra, jsonValue);
  } catch {
    return Deno.inspect(extra);
  }
}

/** Whether a message template has the placeholder `{key}` (not the escaped `{{key}}`). */
function mentions(template: string, key: string): boolean {
  const name = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<!\\{)\\{${name}\\}(?!\\})`).test(template);
}

/** JSON.stringify replacer for values JSON has no form for. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    return { name: value.name, message: value.message };
  }
  if (value instanceof Uint8Array) return Array.from(value);
  return value;
}
