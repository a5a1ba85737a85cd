/**
 * Real simp processes for the end-to-end tests (tests/e2e_test.ts): daemons
 * and scripted clients started with `deno run mod.ts`, their output collected
 * line by line and waited for with a deadline — the approach of
 * tools/demo.ts, which drives its clients the same way.
 *
 * A {@linkcode Processes} group owns every process a test starts; its
 * {@linkcode Processes.close} stops them all (SIGTERM, then SIGKILL when one
 * does not exit within {@linkcode EXIT_TIMEOUT_MS}), awaits their exit status
 * and reads their output to the end, so that no test leaves a daemon behind
 * and Deno's sanitizers find nothing open.
 *
 * @example
 * ```ts ignore
 * const procs = new Processes();
 * try {
 *   await procs.daemon("127.0.80.1");
 *   const alice = procs.client("127.0.80.1", "alice");
 *   await alice.expect("connected to 127.0.80.1:7778 as alice");
 * } finally {
 *   await procs.close();
 * }
 * ```
 *
 * @module
 */

/** The project's root directory, where `mod.ts` is. */
export const ROOT: URL = new URL("../../", import.meta.url);

/**
 * How long one expected line may take by default, in ms. On loopback every
 * step takes milliseconds; this only bounds a failing test.
 */
export const STEP_TIMEOUT_MS = 5000;

/** How long a process may take to exit once asked to, in ms. */
export const EXIT_TIMEOUT_MS = 3000;

/** How many lines of each stream a failure report shows. */
const TAIL_LINES = 25;

/** The scripted client's menu prompt (§8.3). */
export const MENU =
  "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit";

/** The scripted client's chat prompt (§8.4, §8.5). */
export const CHAT = "? chat: type a message, /leave = leave the chat, q = quit";

/** The scripted client's prompt to answer an invitation (§8.2). */
export const ANSWER = "? answer: y = accept, n = decline, q = quit";

/** One of a process's output streams. */
export type Stream = "stdout" | "stderr";

/** Options of {@linkcode Proc.expect}. */
export interface ExpectOptions {
  /** The stream to read (default stdout). */
  stream?: Stream;
  /** How long to wait, in ms (default {@linkcode STEP_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** A line pattern: a string matches a whole line exactly. */
export type Pattern = string | RegExp;

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
  #wake: (() => void)[] = [];
  #reading: Promise<void>;
  #exited = false;

  /** Starts `deno <args>` in {@linkcode ROOT}, with stdin piped when asked. */
  constructor(label: string, args: string[], options: { stdin: boolean }) {
    this.label = label;
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    if (options.stdin) this.#writer = this.child.stdin.getWriter();
    this.#reading = Promise.all([
      this.#read(this.child.stdout, this.lines.stdout),
      this.#read(this.child.stderr, this.lines.stderr),
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
   * that `pattern` matches; the lines before it are passed over. Throws when
   * the process exits or the time runs out first.
   */
  async expect(pattern: Pattern, options: ExpectOptions = {}): Promise<string> {
    const stream = options.stream ?? "stdout";
    const timeoutMs = options.timeoutMs ?? STEP_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const lines = this.lines[stream];
    for (;;) {
      while (this.#cursor[stream] < lines.length) {
        const line = lines[this.#cursor[stream]++];
        if (matches(pattern, line)) return line;
      }
      if (this.#exited) {
        await this.#reading;
        if (this.#cursor[stream] < lines.length) continue;
        throw new Error(
          `${this.label} exited without printing ${show(pattern)} on ${stream}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.label} did not print ${
            show(pattern)
          } on ${stream} within ${timeoutMs} ms`,
        );
      }
      await this.#sleepUntilLine(left);
    }
  }

  /** Waits for `patterns` in this order on stdout. */
  async expectAll(patterns: Pattern[], options: ExpectOptions = {}) {
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
    const timeoutMs = options.timeoutMs ?? STEP_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (check(this.lines[stream])) return;
      if (this.#exited) {
        await this.#reading;
        if (check(this.lines[stream])) return;
        throw new Error(`${this.label} exited before ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.label}: no ${what} on ${stream} within ${timeoutMs} ms`,
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
   * running then (it is not killed: {@linkcode Processes.close} does that).
   */
  async exit(timeoutMs = EXIT_TIMEOUT_MS): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const status = await Promise.race([this.status, late]);
    clearTimeout(timer);
    if (status === undefined) {
      throw new Error(`${this.label} did not exit within ${timeoutMs} ms`);
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
   * Stops the process: SIGTERM, then SIGKILL when it has not exited within
   * {@linkcode EXIT_TIMEOUT_MS}. Resolves once it has exited and its output
   * is read to the end.
   */
  async stop(): Promise<Deno.CommandStatus> {
    await this.closeStdin();
    if (!this.#exited) {
      this.kill("SIGTERM");
      const timer = setTimeout(() => this.kill("SIGKILL"), EXIT_TIMEOUT_MS);
      await this.status;
      clearTimeout(timer);
    }
    await this.#reading;
    return await this.status;
  }

  /** The last lines of both streams, for a failure report. */
  tail(): string {
    const out = [`--- ${this.label}${this.#exited ? " (exited)" : ""}:`];
    for (const stream of ["stdout", "stderr"] as const) {
      for (const line of this.lines[stream].slice(-TAIL_LINES)) {
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
    stream: ReadableStream<Uint8Array>,
    lines: string[],
  ): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        lines.push(...parts);
        this.#notify();
      }
    } catch {
      // The stream broke because the process died; what was read is kept.
    }
    if (rest !== "") lines.push(rest);
    this.#notify();
  }
}

/** Every process of one test; {@linkcode close} stops them all. */
export class Processes {
  #procs: Proc[] = [];

  /** Starts `deno <args>` as part of the group. */
  spawn(label: string, args: string[], options: { stdin: boolean }): Proc {
    const proc = new Proc(label, args, options);
    this.#procs.push(proc);
    return proc;
  }

  /**
   * Starts `simp daemon ip` (debug logs, so that reports show the wire
   * trace) and waits until it listens.
   */
  async daemon(ip: string, args: string[] = []): Promise<Proc> {
    const proc = this.spawn(`daemon ${ip}`, [
      "run",
      "-A",
      "mod.ts",
      "daemon",
      ip,
      "--log-level",
      "debug",
      ...args,
    ], { stdin: false });
    await proc.expect(/^simp daemon listening on /, { stream: "stderr" });
    return proc;
  }

  /** Starts a scripted client (stdin piped) of the daemon at `ip`. */
  client(ip: string, name: string, args: string[] = []): Proc {
    return this.spawn(name, [
      "run",
      "-A",
      "mod.ts",
      "client",
      ip,
      "--name",
      name,
      ...args,
    ], { stdin: true });
  }

  /** The last lines of every process, for a failure report. */
  report(): string {
    return this.#procs.map((proc) => proc.tail()).join("\n");
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

function matches(pattern: Pattern, line: string): boolean {
  return typeof pattern === "string" ? line === pattern : pattern.test(line);
}

function show(pattern: Pattern): string {
  return typeof pattern === "string" ? JSON.stringify(pattern) : `${pattern}`;
}
