/**
 * Real simp processes for `deno task demo` (tools/demo.ts) and the tests that
 * start them (tests/e2e_test.ts, tests/daemon_test.ts,
 * tests/conformance_test.ts): `deno <args>` started in the project's root,
 * its output collected line by line as it comes, expected lines waited for
 * with a deadline, and the process stopped with SIGTERM, then SIGKILL.
 *
 * A {@linkcode ProcessGroup} owns every process a run starts; its
 * {@linkcode ProcessGroup.close} stops them all, awaits their exit status
 * and reads their output to the end, so that nothing is left behind (and
 * Deno's test sanitizers find nothing open).
 *
 * @example
 * ```ts ignore
 * const procs = new ProcessGroup();
 * try {
 *   const daemon = procs.spawn("daemon 127.0.80.1", [
 *     "run", "-A", "mod.ts", "daemon", "127.0.80.1",
 *   ], { stdin: false });
 *   await daemon.expect(/^simp daemon listening on /, { stream: "stderr" });
 * } finally {
 *   await procs.close();
 * }
 * ```
 *
 * @module
 */

/** The project's root directory, where `mod.ts` is. */
export const ROOT: URL = new URL("../", import.meta.url);

/**
 * How long one expected line may take by default, in ms. On loopback every
 * step takes milliseconds; this only bounds a failure.
 */
export const STEP_TIMEOUT_MS = 5000;

/** How long a process may take to exit once asked to, in ms. */
export const EXIT_TIMEOUT_MS = 3000;

/** How many lines of each stream a failure report shows by default. */
const TAIL_LINES = 25;

/** One of a process's output streams. */
export type Stream = "stdout" | "stderr";

/** A line pattern: a string matches a whole line exactly. */
export type Pattern = string | RegExp;

/**
 * A time by which something must happen, shared by several waits (e.g. the
 * expectations of one step of the demo); see {@linkcode deadlineIn}.
 */
export interface Deadline {
  /** The time, as from `Date.now()`. */
  at: number;
  /** How long it was from when it was set, in ms, for error messages. */
  ms: number;
}

/** A deadline `ms` from now. */
export function deadlineIn(ms: number): Deadline {
  return { at: Date.now() + ms, ms };
}

/** Options of {@linkcode Proc.expect} and {@linkcode Proc.waitFor}. */
export interface ExpectOptions {
  /** The stream to read (default stdout). */
  stream?: Stream;
  /** How long to wait, in ms (default {@linkcode STEP_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** A deadline to meet instead of `timeoutMs`. */
  deadline?: Deadline;
}

/** Options of a new {@linkcode Proc}. */
export interface ProcOptions {
  /** Whether stdin is piped, for {@linkcode Proc.write}; otherwise null. */
  stdin: boolean;
  /** Environment variables to set on top of this process's own. */
  env?: Record<string, string>;
  /** Called with every line of output as it comes, e.g. to show it. */
  onLine?: (line: string, stream: Stream) => void;
}

/** A process did not print what was expected in time, or did not exit. */
export class ProcessError extends Error {
  /** An error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "ProcessError";
  }
}

/** A child process whose output lines are collected as they come. */
export class Proc {
  /** A name for reports, e.g. `alice` or `daemon 127.0.80.1`. */
  readonly label: string;
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Every line of stdout and of stderr so far. */
  readonly lines: Record<Stream, string[]> = { stdout: [], stderr: [] };
  /** Its exit status, once it has exited. */
  readonly status: Promise<Deno.CommandStatus>;
  #cursor: Record<Stream, number> = { stdout: 0, stderr: 0 };
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #onLine: ((line: string, stream: Stream) => void) | undefined;
  #wake: (() => void)[] = [];
  #reading: Promise<void>;
  #exited = false;

  /** Starts `deno <args>` in {@linkcode ROOT}. */
  constructor(label: string, args: string[], options: ProcOptions) {
    this.label = label;
    this.#onLine = options.onLine;
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: options.env,
    }).spawn();
    if (options.stdin) this.#writer = this.child.stdin.getWriter();
    this.#reading = Promise.all([
      this.#read(this.child.stdout, "stdout"),
      this.#read(this.child.stderr, "stderr"),
    ]).then(() => {});
    this.status = this.child.status.then((status) => {
      this.#exited = true;
      this.#notify();
      return status;
    });
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Writes `line` and a newline to the process's stdin. */
  async write(line: string): Promise<void> {
    await this.#writer!.write(new TextEncoder().encode(line + "\n"));
  }

  /** Closes stdin (the end of input); harmless when already closed. */
  async closeStdin(): Promise<void> {
    const writer = this.#writer;
    this.#writer = undefined;
    try {
      await writer?.close();
    } catch {
      // The process is gone and its stdin with it.
    }
  }

  /**
   * Waits for the next line, after those already expected on that stream,
   * that `pattern` matches; the lines before it are passed over. Throws a
   * {@linkcode ProcessError} when the process exits or the time runs out
   * first.
   */
  async expect(pattern: Pattern, options: ExpectOptions = {}): Promise<string> {
    const stream = options.stream ?? "stdout";
    const deadline = deadlineOf(options);
    const lines = this.lines[stream];
    for (;;) {
      while (this.#cursor[stream] < lines.length) {
        const line = lines[this.#cursor[stream]++];
        if (matches(pattern, line)) return line;
      }
      if (this.#exited) {
        await this.#reading;
        if (this.#cursor[stream] < lines.length) continue;
        throw new ProcessError(
          `${this.label} exited without printing ${show(pattern)} on ${stream}`,
        );
      }
      const left = deadline.at - Date.now();
      if (left <= 0) {
        throw new ProcessError(
          `${this.label} did not print ${
            show(pattern)
          } on ${stream} within ${deadline.ms} ms`,
        );
      }
      await this.#sleepUntilLine(left);
    }
  }

  /**
   * Waits for `patterns` in this order (expectations on one stream must not
   * run concurrently: they share its read position).
   */
  async expectAll(
    patterns: Pattern[],
    options: ExpectOptions = {},
  ): Promise<void> {
    for (const pattern of patterns) await this.expect(pattern, options);
  }

  /**
   * Waits until `check` holds for all the lines of the stream so far
   * (regardless of what was already expected); `what` names it in the error.
   */
  async waitFor(
    what: string,
    check: (lines: readonly string[]) => boolean,
    options: ExpectOptions = {},
  ): Promise<void> {
    const stream = options.stream ?? "stdout";
    const deadline = deadlineOf(options);
    for (;;) {
      if (check(this.lines[stream])) return;
      if (this.#exited) {
        await this.#reading;
        if (check(this.lines[stream])) return;
        throw new ProcessError(`${this.label} exited before ${what}`);
      }
      const left = deadline.at - Date.now();
      if (left <= 0) {
        throw new ProcessError(
          `${this.label}: no ${what} on ${stream} within ${deadline.ms} ms`,
        );
      }
      await this.#sleepUntilLine(left);
    }
  }

  /** The lines of `stream` that `pattern` matches, so far. */
  grep(pattern: Pattern, stream: Stream = "stdout"): string[] {
    return this.lines[stream].filter((line) => matches(pattern, line));
  }

  /**
   * Waits until the process exits, at most `timeoutMs`, and returns its
   * status once its output has been read to the end. Throws when it is still
   * running then (it is not killed: {@linkcode Proc.stop} does that).
   */
  async exit(timeoutMs = EXIT_TIMEOUT_MS): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const status = await Promise.race([this.status, late]);
    clearTimeout(timer);
    if (status === undefined) {
      throw new ProcessError(
        `${this.label} did not exit within ${timeoutMs} ms`,
      );
    }
    await this.#reading;
    return status;
  }

  /** Sends `signal`; harmless when the process has exited. */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.child.kill(signal);
    } catch {
      // It exited meanwhile.
    }
  }

  /**
   * Stops the process: closes its stdin and sends `signal`, then SIGKILL
   * when it has not exited within {@linkcode EXIT_TIMEOUT_MS}. Resolves once
   * it has exited and its output is read to the end; harmless when it has
   * exited already.
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    await this.closeStdin();
    if (!this.#exited) {
      this.kill(signal);
      const timer = setTimeout(() => this.kill("SIGKILL"), EXIT_TIMEOUT_MS);
      await this.status;
      clearTimeout(timer);
    }
    await this.#reading;
    return await this.status;
  }

  /** The last `count` lines of both streams, for a failure report. */
  tail(count = TAIL_LINES): string {
    const out = [`--- ${this.label}${this.#exited ? " (exited)" : ""}:`];
    for (const stream of ["stdout", "stderr"] as const) {
      for (const line of this.lines[stream].slice(-count)) {
        out.push(`  ${stream === "stderr" ? "!" : "|"} ${line}`);
      }
    }
    return out.join("\n");
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  async #sleepUntilLine(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#wake.push(resolve);
    const timer = setTimeout(resolve, ms);
    await promise;
    clearTimeout(timer);
  }

  async #read(
    readable: ReadableStream<Uint8Array>,
    stream: Stream,
  ): Promise<void> {
    const lines = this.lines[stream];
    let rest = "";
    try {
      for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          this.#onLine?.(line, stream);
        }
        this.#notify();
      }
    } catch {
      // The stream broke because the process died; what was read is kept.
    }
    if (rest !== "") {
      lines.push(rest);
      this.#onLine?.(rest, stream);
    }
    this.#notify();
  }
}

/**
 * Every process of one run; {@linkcode ProcessGroup.close} stops them all.
 * A process whose label starts with `daemon` is taken for a daemon, any
 * other for a client.
 */
export class ProcessGroup {
  #procs: Proc[] = [];

  /** Starts `deno <args>` as part of the group. */
  spawn(label: string, args: string[], options: ProcOptions): Proc {
    const proc = new Proc(label, args, options);
    this.#procs.push(proc);
    return proc;
  }

  /** The last `count` lines of every process, for a failure report. */
  report(count = TAIL_LINES): string {
    return this.#procs.map((proc) => proc.tail(count)).join("\n");
  }

  /**
   * Stops every process — clients first (a client quits cleanly on
   * SIGTERM), then daemons — and awaits them all.
   */
  async close(): Promise<void> {
    const clients = this.#procs.filter((p) => !p.label.startsWith("daemon"));
    await Promise.all(clients.map((proc) => proc.stop()));
    await Promise.all(this.#procs.map((proc) => proc.stop()));
  }
}

function deadlineOf(options: ExpectOptions): Deadline {
  return options.deadline ??
    deadlineIn(options.timeoutMs ?? STEP_TIMEOUT_MS);
}

function matches(pattern: Pattern, line: string): boolean {
  return typeof pattern === "string" ? line === pattern : pattern.test(line);
}

function show(pattern: Pattern): string {
  return typeof pattern === "string" ? JSON.stringify(pattern) : `${pattern}`;
}
