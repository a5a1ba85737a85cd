/**
 * `deno task demo`: a whole SIMP chat on this machine, in a few seconds.
 *
 * It starts two daemons (127.0.0.1 and 127.0.0.2, default ports and
 * timeout, debug logs as JSON lines) and two scripted clients (alice on
 * 127.0.0.1, bob on 127.0.0.2), then drives the clients step by step — writing their answers
 * and waiting for the lines that should follow, with a timeout per step: bob
 * waits for invitations, alice invites 127.0.0.2, bob accepts, they exchange
 * a few messages, alice leaves with `/leave` and both quit.
 *
 * It prints the conversation as it happens (`alice | chat started with bob at
 * 127.0.0.2`) interleaved with a trace of the SIMP datagrams from the
 * daemons' `["simp","wire"]` log (`  wire  127.0.0.1 → 127.0.0.2  SYN seq=0
 * user=alice`; each datagram once, as its sender logged it). It exits 0 when
 * every step passed; otherwise it says which step timed out, shows the last
 * lines of every process and exits 1. Every process it started is stopped
 * before it exits.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);

/**
 * How long one step may take, in ms: room for one retransmission at the
 * default 5 s timeout (SPEC §5.2), which loopback should never need.
 */
const STEP_TIMEOUT_MS = 12_000;
/** How long a process may take to exit once asked to, in ms. */
const EXIT_TIMEOUT_MS = 2000;
/** How many lines of each process are shown when a step fails. */
const TAIL_LINES = 12;

const MENU = "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit";
const CHAT = "? chat: type a message, /leave = leave the chat, q = quit";

const colour = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");

function style(code: string, text: string): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** A step that did not finish in time, or a process that failed. */
class DemoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DemoError";
  }
}

/** A child process whose output lines are collected and shown as they come. */
class Proc {
  readonly label: string;
  readonly child: Deno.ChildProcess;
  /** Every line seen (stdout for clients, stderr for daemons). */
  readonly lines: string[] = [];
  /** Lines of stdout and stderr, for the failure report. */
  readonly tail: string[] = [];
  #cursor = 0;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #wake: (() => void)[] = [];
  #done: Promise<void>;
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(
    label: string,
    args: string[],
    options: {
      stdin: boolean;
      watch: "stdout" | "stderr";
      show: (proc: Proc, line: string) => void;
    },
  ) {
    this.label = label;
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (options.stdin) this.#writer = this.child.stdin.getWriter();
    const watched = options.watch === "stdout"
      ? this.child.stdout
      : this.child.stderr;
    const other = options.watch === "stdout"
      ? this.child.stderr
      : this.child.stdout;
    this.#done = Promise.all([
      this.#read(watched, (line) => {
        this.lines.push(line);
        this.#remember(line);
        options.show(this, line);
      }),
      this.#read(other, (line) => this.#remember(`(${line})`)),
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

  /** Writes `line` to the process's stdin. */
  async write(line: string): Promise<void> {
    await this.#writer!.write(new TextEncoder().encode(line + "\n"));
  }

  /** Closes stdin. */
  async closeStdin(): Promise<void> {
    try {
      await this.#writer?.close();
    } catch {
      // Already closed: the process is gone.
    }
  }

  /**
   * Waits for the next line, after those already expected, that `pattern`
   * matches (exactly, for a string); the lines before it are passed over.
   */
  async expect(pattern: string | RegExp, deadline: number): Promise<string> {
    const test = (line: string) =>
      typeof pattern === "string" ? line === pattern : pattern.test(line);
    for (;;) {
      while (this.#cursor < this.lines.length) {
        const line = this.lines[this.#cursor++];
        if (test(line)) return line;
      }
      if (this.#exited) {
        throw new DemoError(
          `${this.label} exited without printing ${show(pattern)}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DemoError(
          `${this.label} did not print ${
            show(pattern)
          } within ${STEP_TIMEOUT_MS} ms`,
        );
      }
      await this.#sleepUntilLine(left);
    }
  }

  /** Asks the process to stop, then kills it if it does not. */
  async stop(): Promise<void> {
    if (!this.#exited) {
      try {
        this.child.kill("SIGTERM");
      } catch {
        // It exited meanwhile.
      }
      const timer = setTimeout(() => {
        try {
          this.child.kill("SIGKILL");
        } catch {
          // It exited meanwhile.
        }
      }, EXIT_TIMEOUT_MS);
      await this.status;
      clearTimeout(timer);
    }
    await this.closeStdin();
    await this.#done;
  }

  #remember(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
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
    onLine: (line: string) => void,
  ): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          onLine(line);
          this.#notify();
        }
      }
    } catch {
      // The stream broke because the process died; what was read is kept.
    }
    if (rest !== "") onLine(rest);
    this.#notify();
  }
}

function show(pattern: string | RegExp): string {
  return typeof pattern === "string" ? JSON.stringify(pattern) : `${pattern}`;
}

/** Prints a client's line as part of the conversation. */
function showClientLine(proc: Proc, line: string): void {
  const name = proc.label.padEnd(5);
  const text = line.startsWith("? ") ? style("2", line) : line;
  console.log(`${style("1", name)} | ${text}`);
}

/**
 * Prints a daemon's wire trace line: only datagrams this daemon sent, so each
 * datagram appears once. Other log lines are kept for the failure report.
 */
function showDaemonLine(ip: string): (proc: Proc, line: string) => void {
  return (_proc, line) => {
    let record: {
      logger?: unknown;
      message?: unknown;
      properties?: { from?: unknown };
    };
    try {
      record = JSON.parse(line);
    } catch {
      return; // the start-up line or an error in plain text
    }
    if (record.logger !== "simp.wire" || typeof record.message !== "string") {
      return;
    }
    if (record.properties?.from !== `${ip}:7777`) return;
    console.log(style("2", `  wire  ${record.message}`));
  };
}

/**
 * Starts a daemon (added to `procs` at once, so that it is always stopped)
 * and waits until it listens, or reports why it could not.
 */
async function startDaemon(ip: string, procs: Proc[]): Promise<void> {
  const proc = new Proc(`daemon ${ip}`, [
    "run",
    "--allow-net",
    "--allow-env",
    "mod.ts",
    "daemon",
    ip,
    "--log-level",
    "debug",
    "--log-format",
    "json",
  ], { stdin: false, watch: "stderr", show: showDaemonLine(ip) });
  procs.push(proc);
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  try {
    await proc.expect(/^simp daemon listening on /, deadline);
  } catch (error) {
    const status = proc.exited ? await proc.status : undefined;
    const said = proc.lines.find((line) => line.startsWith("simp: "));
    if (status !== undefined) {
      throw new DemoError(
        `The daemon on ${ip} could not start${
          said ? `: ${said.slice(6)}` : ` (exit code ${status.code})`
        }. The demo needs the default ports 7777 and 7778 on 127.0.0.1 and 127.0.0.2: stop any simp daemon running there and try again`,
      );
    }
    throw error;
  }
}

function startClient(name: string, ip: string): Proc {
  return new Proc(name, [
    "run",
    "--allow-net",
    "--allow-env",
    "mod.ts",
    "client",
    ip,
    "--name",
    name,
  ], { stdin: true, watch: "stdout", show: showClientLine });
}

/**
 * Waits for `patterns` in this order on one process (expectations on one
 * process must not run concurrently: they share its read position).
 */
async function lines(
  proc: Proc,
  patterns: (string | RegExp)[],
  deadline: number,
): Promise<void> {
  for (const pattern of patterns) await proc.expect(pattern, deadline);
}

/** One step of the script: a description and what to do. */
interface Step {
  what: string;
  run: (deadline: number) => Promise<unknown>;
}

/** Runs the demo and resolves to the exit code. */
async function demo(): Promise<number> {
  const procs: Proc[] = [];
  let current = "start-up";
  try {
    console.log(style("1", "Starting daemons on 127.0.0.1 and 127.0.0.2"));
    await startDaemon("127.0.0.1", procs);
    await startDaemon("127.0.0.2", procs);
    const alice = startClient("alice", "127.0.0.1");
    const bob = startClient("bob", "127.0.0.2");
    procs.push(alice, bob);

    const say = (from: Proc, to: Proc, text: string): Step => ({
      what: `${from.label} says ${JSON.stringify(text)}`,
      run: async (deadline) => {
        await from.write(text);
        await from.expect(/^sent #\d+: /, deadline);
        await to.expect(`${from.label}: ${text}`, deadline);
        await from.expect(/^delivered #\d+$/, deadline);
      },
    });
    const steps: Step[] = [
      {
        what: "both clients connect and show the menu",
        run: (deadline) =>
          Promise.all([
            lines(
              alice,
              ["connected to 127.0.0.1:7778 as alice", MENU],
              deadline,
            ),
            lines(bob, ["connected to 127.0.0.2:7778 as bob", MENU], deadline),
          ]),
      },
      {
        what: "bob waits for invitations",
        run: async (deadline) => {
          await bob.write("2");
          await bob.expect("waiting for invitations", deadline);
        },
      },
      {
        what: "alice invites 127.0.0.2",
        run: async (deadline) => {
          await alice.write("1");
          await alice.expect(/^\? ip: /, deadline);
          await alice.write("127.0.0.2");
          await alice.expect("inviting 127.0.0.2", deadline);
          await bob.expect("invitation from alice at 127.0.0.1", deadline);
          await bob.expect(/^\? answer: /, deadline);
        },
      },
      {
        what: "bob accepts",
        run: async (deadline) => {
          await bob.write("y");
          await Promise.all([
            lines(
              bob,
              ["chat started with alice at 127.0.0.1", CHAT],
              deadline,
            ),
            lines(
              alice,
              ["chat started with bob at 127.0.0.2", CHAT],
              deadline,
            ),
          ]);
        },
      },
      say(alice, bob, "hi bob"),
      say(bob, alice, "hi alice"),
      say(alice, bob, "how is the weather at 127.0.0.2?"),
      say(bob, alice, "sunny, and no packets lost"),
      {
        what: "alice leaves with /leave",
        run: async (deadline) => {
          await alice.write("/leave");
          await Promise.all([
            lines(alice, ["chat closed", MENU], deadline),
            lines(bob, ["alice left the chat", MENU], deadline),
          ]);
        },
      },
      {
        what: "both quit",
        run: async (deadline) => {
          await alice.write("q");
          await bob.write("q");
          await Promise.all([
            alice.expect("bye", deadline),
            bob.expect("bye", deadline),
          ]);
          for (const client of [alice, bob]) {
            const { code } = await client.status;
            if (code !== 0) {
              throw new DemoError(`${client.label} exited with code ${code}`);
            }
          }
        },
      },
    ];
    for (const [index, step] of steps.entries()) {
      current = `step ${index + 1}/${steps.length} (${step.what})`;
      await step.run(Date.now() + STEP_TIMEOUT_MS);
    }
    console.log(style("1", "Demo finished: every step passed"));
    return 0;
  } catch (error) {
    if (!(error instanceof DemoError)) throw error;
    console.error(`demo: failed at ${current}: ${error.message}`);
    for (const proc of procs) {
      console.error(`--- last lines of ${proc.label}:`);
      for (const line of proc.tail) console.error(`    ${line}`);
    }
    return 1;
  } finally {
    // Clients first (they quit cleanly on SIGTERM), then the daemons.
    const clients = procs.filter((proc) => !proc.label.startsWith("daemon"));
    await Promise.all(clients.map((proc) => proc.stop()));
    await Promise.all(procs.map((proc) => proc.stop()));
  }
}

if (import.meta.main) {
  Deno.exit(await demo());
}
