/**
 * The simp client (SPEC §8, §9): the thin I/O shell around
 * {@linkcode ClientCore}, which decides everything. This file owns the TCP
 * connection to the daemon, the timer, stdin/stdout, the terminal and the
 * signals, and moves events into the core and its actions out.
 *
 * Two presentations of the same core:
 *
 * - **Scripted** (stdin is not a terminal, or `--json`): answers are read
 *   line by line, and every event and question is printed as one line on
 *   stdout — `renderText` (`bob: hello`, `delivered #1`,
 *   `? menu: 1 = start a new chat, …`) or, with `--json`, one JSON object
 *   per line (`renderJson`; the shapes are `Output` in
 *   `lib/user/output.ts`). What the core does with each line (read only
 *   when asked, `q` at any point, the end of input) is documented on
 *   {@linkcode ClientCore.input}.
 * - **Interactive** (stdin is a terminal): {@linkcode TerminalShell} — raw
 *   mode, the line editor, news above the input line while the user types,
 *   timestamps and a status prompt; drawn on stderr with a plain transcript
 *   on stdout when stdout is redirected. Colours unless `NO_COLOR` is set
 *   (`FORCE_COLOR` forces them).
 *
 * @module
 */

import type { ClientOptions } from "./lib/cli.ts";
import { isThisMachine } from "./lib/address.ts";
import { LineSplitter } from "./lib/link/lines.ts";
import {
  type ClientAction,
  ClientCore,
  type UnreachableCause,
} from "./lib/user/client_core.ts";
import type { Ask, Output } from "./lib/user/output.ts";
import { renderJson, renderText, stderrLine } from "./lib/user/render.ts";
import { writeAll } from "./lib/_write.ts";
// The terminal shell is loaded only when a terminal is used (see runClient):
// its width tables cost tens of milliseconds to load, which the daemon and
// scripted clients need not pay.
import type { TerminalShell } from "./lib/user/terminal_shell.ts";
import {
  chooseOutput,
  colourWanted,
  INTERRUPTED_EXIT_CODE,
  isoTime,
} from "./lib/user/terminal.ts";
import {
  currentInvocation,
  localiseCommands,
  underDenoTask,
} from "./lib/invocation.ts";
import { getLogger } from "./lib/log.ts";

export type { ClientOptions } from "./lib/cli.ts";

const log = getLogger("client");

/** Size of the buffer the daemon's bytes are read into (one, reused). */
const READ_BUFFER_BYTES = 64 * 1024;

const encoder = new TextEncoder();

/** Milliseconds on a monotonic clock. */
function now(): number {
  return performance.now();
}

/** Where the core's outputs go and where the user's lines come from. */
interface Ui {
  /** Shows one output (perhaps only when {@linkcode Ui.flush} is called). */
  show(output: Output): void;
  /** Writes what {@linkcode Ui.show} kept back: the outputs of one pump go out at once. */
  flush(): void;
  /** The core now waits for `ask` (or for nothing). */
  setAsk(ask: Ask | undefined): void;
  /** Starts reading input for `shell`. */
  start(shell: Shell): void;
  /** Restores the terminal and stops reading. */
  close(): void;
  /** SIGINT arrived (Ctrl+C in a terminal that sends signals). */
  interrupted?(): void;
}

/** Moves events into the core and carries out its actions. */
class Shell {
  readonly core: ClientCore;
  #ui: Ui;
  #conn: Deno.TcpConn | undefined;
  #exit = Promise.withResolvers<number>();
  #finished = false;
  /** Lines for the daemon not written yet (written once per tick). */
  #outgoing: string[] = [];
  #writing = false;
  #flushQueued = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt: number | undefined;
  /** Resolves when the core wants input again (scripted mode). */
  #inputWanted: PromiseWithResolvers<void> | undefined;
  /** The exit code the user asked for by interrupting (130 for Ctrl+C). */
  #exitCode: number | undefined;

  constructor(core: ClientCore, ui: Ui) {
    this.core = core;
    this.#ui = ui;
  }

  /** Connects and runs until the core exits; resolves to the exit code. */
  async run(ip: string, port: number): Promise<number> {
    this.#ui.start(this);
    this.core.start(now());
    this.pump();
    const cause = localProblem(ip);
    if (cause !== undefined) {
      this.core.unreachable(now(), cause);
      this.pump();
    } else {
      this.#connect(ip, port);
    }
    return await this.#exit.promise;
  }

  /** Closes the connection (if open) and stops the timer. */
  close(): void {
    clearTimeout(this.#timer);
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
    this.#conn = undefined;
  }

  /** Carries out the core's actions, then re-arms the timer. */
  pump(): void {
    if (this.#finished) return;
    for (const action of this.core.takeActions()) {
      this.#act(action);
      if (this.#finished) break;
    }
    this.#ui.flush();
    if (this.#finished) return;
    if (this.#inputWanted !== undefined && this.core.wantsInput) {
      this.#inputWanted.resolve();
      this.#inputWanted = undefined;
    }
    this.#ui.setAsk(this.core.ask);
    this.#arm();
  }

  /**
   * The user quits (Ctrl+C, Ctrl+D, a signal): the core closes things as
   * for `q`; `code`, when given (130 for Ctrl+C), is the exit code.
   */
  interrupt(code?: number): void {
    if (code !== undefined) this.#exitCode ??= code;
    this.core.interrupt(now());
    this.pump();
  }

  /**
   * Scripted mode: resolves when the core wants more input (at once unless
   * many lines wait unread).
   */
  inputWanted(): Promise<void> {
    if (this.core.wantsInput || this.#finished) return Promise.resolve();
    this.#inputWanted ??= Promise.withResolvers<void>();
    return this.#inputWanted.promise;
  }

  async #connect(ip: string, port: number): Promise<void> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: ip, port, transport: "tcp" });
    } catch (error) {
      log.debug("Connecting to the daemon failed: {error}", { error });
      this.core.unreachable(now());
      this.pump();
      return;
    }
    if (this.#finished) {
      conn.close();
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch {
      // Not essential: only latency.
    }
    this.#conn = conn;
    this.core.opened(now());
    this.pump();
    this.#readLoop(conn);
  }

  async #readLoop(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const lines = new LineSplitter();
    for (;;) {
      let count: number | null;
      try {
        count = await conn.read(buffer);
      } catch (error) {
        if (this.#finished) return;
        log.debug("Reading from the daemon failed: {error}", { error });
        count = null;
      }
      if (this.#finished) return;
      const items = count === null
        ? lines.end()
        : lines.push(buffer.subarray(0, count));
      for (const item of items) this.core.receive(item, now());
      if (count === null) {
        this.core.closed(now());
        this.pump();
        return;
      }
      this.pump();
      if (lines.failed) return; // the core has failed the link; exit follows
    }
  }

  #act(action: ClientAction): void {
    switch (action.type) {
      case "write":
        this.#outgoing.push(action.line);
        if (!this.#flushQueued) {
          this.#flushQueued = true;
          queueMicrotask(() => this.#flush());
        }
        break;
      case "output":
        this.#ui.show(localised(action.output));
        break;
      case "exit":
        this.#finish(action.code);
        break;
    }
  }

  /** Writes the lines of this tick in one go; the next tick's wait for it. */
  async #flush(): Promise<void> {
    this.#flushQueued = false;
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#outgoing.length > 0 && !this.#finished) {
        const conn = this.#conn;
        if (conn === undefined) return;
        const bytes = encoder.encode(this.#outgoing.join(""));
        this.#outgoing = [];
        let written = 0;
        while (written < bytes.length) {
          written += await conn.write(bytes.subarray(written));
        }
      }
    } catch (error) {
      if (!this.#finished) {
        log.debug("Writing to the daemon failed: {error}", { error });
        this.core.closed(now());
        this.pump();
      }
    } finally {
      this.#writing = false;
    }
  }

  /** Arms the timer for the core's next timeout, when it moved. */
  #arm(): void {
    const next = this.core.nextTimeout();
    if (next === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.core.tick(now());
      this.pump();
    }, Math.max(0, next - now()));
  }

  #finish(code: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#inputWanted?.resolve();
    // An interrupt's 130 wins over a clean 0, not over a failure's 1.
    this.#exit.resolve(code === 0 ? this.#exitCode ?? code : code);
  }
}

/**
 * Why the client cannot reach a daemon at `ip` from here, if it can tell
 * without trying: the address is not one of this machine's (SPEC §7.2).
 * Without permission to list the interfaces it cannot tell, and connecting
 * will.
 */
function localProblem(ip: string): UnreachableCause | undefined {
  if (ip.startsWith("127.")) return undefined;
  let interfaces: Deno.NetworkInterfaceInfo[];
  try {
    // Asked first, so that Deno never prompts for the permission.
    const permission = Deno.permissions.querySync({
      name: "sys",
      kind: "networkInterfaces",
    });
    if (permission.state !== "granted") return undefined;
    interfaces = Deno.networkInterfaces();
  } catch {
    return undefined;
  }
  return isThisMachine(ip, interfaces) ? undefined : "not-this-machine";
}

/** Scripted mode: one line per output, answers read line by line. */
class ScriptedUi implements Ui {
  #json: boolean;
  #shell: Shell | undefined;
  #reading = true;
  /** Lines for stdout not written yet (written by {@linkcode flush}). */
  #lines: string[] = [];
  /** Writing to stdout failed once: the reader is gone. */
  #broken = false;

  constructor(json: boolean) {
    this.#json = json;
  }

  show(output: Output): void {
    const error = stderrLine(output);
    // A fatal error is printed once: on stderr in text mode; with --json
    // also as its JSON line on stdout, for the program that reads it.
    if (this.#json || error === undefined) {
      this.#lines.push(
        this.#json
          ? renderJson(
            output.type === "message"
              ? { ...output, time: isoTime(new Date()) }
              : output,
          )
          : renderText(output),
      );
    }
    if (error !== undefined) {
      this.flush(); // stdout first, as it happened
      try {
        writeAll(Deno.stderr, error + "\n");
      } catch {
        // stderr is gone too; the exit code still tells.
      }
    }
  }

  flush(): void {
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    if (this.#broken) return;
    try {
      writeAll(Deno.stdout, text);
    } catch (error) {
      // Nobody reads our output any more: quit.
      log.debug("Writing to stdout failed: {error}", { error });
      this.#broken = true;
      queueMicrotask(() => this.#shell?.interrupt());
    }
  }

  setAsk(): void {}

  start(shell: Shell): void {
    this.#shell = shell;
    this.#readLines(shell);
  }

  close(): void {
    this.#reading = false;
  }

  async #readLines(shell: Shell): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const decoder = new TextDecoder();
    let rest = "";
    try {
      while (this.#reading) {
        await shell.inputWanted();
        if (!this.#reading || shell.core.done) return;
        const count = await Deno.stdin.read(buffer);
        if (count === null) break;
        rest += decoder.decode(buffer.subarray(0, count), { stream: true });
        const lines = rest.split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          shell.core.input(line.replace(/\r$/, ""), now());
        }
        shell.pump();
      }
    } catch (error) {
      log.debug("Reading stdin failed: {error}", { error });
    }
    if (!this.#reading) return;
    rest += decoder.decode();
    if (rest !== "") shell.core.input(rest.replace(/\r$/, ""), now());
    shell.core.inputEnd(now());
    shell.pump();
  }
}

/** Interactive mode: the {@linkcode TerminalShell} on the shell's core. */
class TerminalUi implements Ui {
  #terminal: TerminalShell;

  constructor(terminal: TerminalShell) {
    this.#terminal = terminal;
  }

  show(output: Output): void {
    this.#terminal.show(output);
  }

  flush(): void {}

  setAsk(ask: Ask | undefined): void {
    this.#terminal.setAsk(ask);
  }

  start(shell: Shell): void {
    this.#terminal.start({
      typed(line) {
        const taken = shell.core.typed(line, now());
        shell.pump();
        return taken;
      },
      interrupt(code) {
        shell.interrupt(code);
      },
      inputEnd() {
        shell.core.inputEnd(now());
        shell.pump();
      },
    });
  }

  close(): void {
    this.#terminal.close();
  }

  interrupted(): void {
    this.#terminal.interrupted();
  }
}

/** The command that runs a daemon, as the user runs simp (read once). */
const INVOCATION = currentInvocation();

/**
 * `output` with the commands its message names (`simp daemon 127.0.0.2`)
 * written as the user runs simp (`deno task daemon 127.0.0.2`).
 */
function localised(output: Output): Output {
  if (output.type !== "error") return output;
  return { ...output, message: localiseCommands(output.message, INVOCATION) };
}

/** The environment variables that choose colours (none without permission). */
function colourEnv(): Record<string, string | undefined> {
  try {
    return {
      NO_COLOR: Deno.env.get("NO_COLOR"),
      FORCE_COLOR: Deno.env.get("FORCE_COLOR"),
    };
  } catch {
    return { NO_COLOR: "1" }; // no permission to read the environment: stay plain
  }
}

/**
 * Runs the client with `options` until the user quits (SPEC §8), and
 * resolves to the process exit code: 0 after a normal quit, 1 when the
 * daemon is not running, refuses the client, goes away or stops; 130
 * after Ctrl+C or SIGINT (the chat is still closed as for `q`), and when a
 * second SIGINT/SIGTERM cuts a quit short. In scripted mode also 1 after
 * an invalid answer to a question, and at the end of input (or a `q` line,
 * which ends it) when a message was not sent or not delivered. A fatal
 * error is printed once: on stderr, and with `--json` also as its JSON line
 * on stdout.
 *
 * @example
 * ```ts ignore
 * import { runClient } from "./client.ts";
 * import { parseClientArgs } from "./lib/cli.ts";
 * Deno.exit(await runClient(parseClientArgs(["127.0.0.1", "--name", "alice"])));
 * ```
 */
export async function runClient(options: ClientOptions): Promise<number> {
  const choice = chooseOutput({
    stdin: Deno.stdin.isTerminal(),
    stdout: Deno.stdout.isTerminal(),
    stderr: Deno.stderr.isTerminal(),
  }, options.json);
  const interactive = choice.mode === "interactive";
  const ui: Ui = choice.mode === "interactive"
    ? new TerminalUi(
      new (await import("./lib/user/terminal_shell.ts")).TerminalShell({
        screen: choice.screen === "stdout" ? Deno.stdout : Deno.stderr,
        transcript: choice.transcript,
        colour: colourWanted(colourEnv(), true),
        // Windows has no SIGTSTP (and no cbreak mode).
        suspendable: !underDenoTask() && Deno.build.os !== "windows",
      }),
    )
    : new ScriptedUi(options.json);
  const core = new ClientCore({
    ip: options.ip,
    port: options.port,
    ...(options.name !== undefined ? { name: options.name } : {}),
    strict: !interactive,
  });
  const shell = new Shell(core, ui);
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGINT", () => {
      ui.interrupted?.();
      shell.interrupt(INTERRUPTED_EXIT_CODE);
    }],
    ["SIGTERM", () => shell.interrupt()],
    ["SIGHUP", () => shell.interrupt()],
  ];
  const added: [Deno.Signal, () => void][] = [];
  for (const [signal, listener] of listeners) {
    try {
      Deno.addSignalListener(signal, listener);
      added.push([signal, listener]);
    } catch {
      // Not available on this platform (Windows has only SIGINT and SIGBREAK).
    }
  }
  try {
    return await shell.run(options.ip, options.port);
  } finally {
    for (const [signal, listener] of added) {
      Deno.removeSignalListener(signal, listener);
    }
    ui.close();
    shell.close();
  }
}
