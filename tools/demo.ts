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

import { CLIENT_PORT, SIMP_PORT } from "../lib/link/protocol.ts";
import {
  deadlineIn,
  type ExpectOptions,
  type Proc,
  ProcessError,
  ProcessGroup,
  type Stream,
} from "./_processes.ts";

/**
 * How long one step may take, in ms: room for one retransmission at the
 * default 5 s timeout (SPEC §5.2), which loopback should never need.
 */
const STEP_TIMEOUT_MS = 12_000;
/** How many lines of each stream of each process are shown when a step fails. */
const TAIL_LINES = 12;

const MENU = "? menu: 1 = start a new chat, 2 = wait for invitations, q = quit";
const CHAT = "? chat: type a message, /leave = leave the chat, q = quit";

const colour = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");

function style(code: string, text: string): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** A daemon that could not start, or a client that failed. */
class DemoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DemoError";
  }
}

/** Prints a client's stdout lines as part of the conversation. */
function showClientLines(name: string): (line: string, stream: Stream) => void {
  return (line, stream) => {
    if (stream !== "stdout") return;
    const text = line.startsWith("? ") ? style("2", line) : line;
    console.log(`${style("1", name.padEnd(5))} | ${text}`);
  };
}

/**
 * Prints a daemon's wire trace lines (stderr): only datagrams this daemon
 * sent, so each datagram appears once. Other log lines are kept for the
 * failure report.
 */
function showDaemonLines(ip: string): (line: string, stream: Stream) => void {
  return (line, stream) => {
    if (stream !== "stderr") return;
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
    if (record.properties?.from !== `${ip}:${SIMP_PORT}`) return;
    console.log(style("2", `  wire  ${record.message}`));
  };
}

/**
 * Starts a daemon (in `procs` at once, so that it is always stopped) and
 * waits until it listens, or reports why it could not.
 */
async function startDaemon(ip: string, procs: ProcessGroup): Promise<void> {
  const proc = procs.spawn(`daemon ${ip}`, [
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
  ], { stdin: false, onLine: showDaemonLines(ip) });
  try {
    await proc.expect(/^simp daemon listening on /, {
      stream: "stderr",
      timeoutMs: STEP_TIMEOUT_MS,
    });
  } catch (error) {
    const status = proc.exited ? await proc.status : undefined;
    const said = proc.lines.stderr.find((line) => line.startsWith("simp: "));
    if (status !== undefined) {
      throw new DemoError(
        `The daemon on ${ip} could not start${
          said ? `: ${said.slice(6)}` : ` (exit code ${status.code})`
        }. The demo needs the default ports ${SIMP_PORT} and ${CLIENT_PORT} on 127.0.0.1 and 127.0.0.2: stop any simp daemon running there and try again`,
      );
    }
    throw error;
  }
}

function startClient(name: string, ip: string, procs: ProcessGroup): Proc {
  return procs.spawn(name, [
    "run",
    "--allow-net",
    "--allow-env",
    "mod.ts",
    "client",
    ip,
    "--name",
    name,
  ], { stdin: true, onLine: showClientLines(name) });
}

/** One step of the script: a description and what to do. */
interface Step {
  what: string;
  /** Runs the step; every wait in it shares the step's deadline. */
  run: (until: ExpectOptions) => Promise<unknown>;
}

/** Runs the demo and resolves to the exit code. */
async function demo(): Promise<number> {
  const procs = new ProcessGroup();
  let current = "start-up";
  try {
    console.log(style("1", "Starting daemons on 127.0.0.1 and 127.0.0.2"));
    await startDaemon("127.0.0.1", procs);
    await startDaemon("127.0.0.2", procs);
    const alice = startClient("alice", "127.0.0.1", procs);
    const bob = startClient("bob", "127.0.0.2", procs);

    const say = (from: Proc, to: Proc, text: string): Step => ({
      what: `${from.label} says ${JSON.stringify(text)}`,
      run: async (until) => {
        await from.write(text);
        await from.expect(/^sent #\d+: /, until);
        await to.expect(`${from.label}: ${text}`, until);
        await from.expect(/^delivered #\d+$/, until);
      },
    });
    const steps: Step[] = [
      {
        what: "both clients connect and show the menu",
        run: (until) =>
          Promise.all([
            alice.expectAll(
              [`connected to 127.0.0.1:${CLIENT_PORT} as alice`, MENU],
              until,
            ),
            bob.expectAll(
              [`connected to 127.0.0.2:${CLIENT_PORT} as bob`, MENU],
              until,
            ),
          ]),
      },
      {
        what: "bob waits for invitations",
        run: async (until) => {
          await bob.write("2");
          await bob.expect("waiting for invitations", until);
        },
      },
      {
        what: "alice invites 127.0.0.2",
        run: async (until) => {
          await alice.write("1");
          await alice.expect(/^\? ip: /, until);
          await alice.write("127.0.0.2");
          await alice.expect("inviting 127.0.0.2", until);
          await bob.expect("invitation from alice at 127.0.0.1", until);
          await bob.expect(/^\? answer: /, until);
        },
      },
      {
        what: "bob accepts",
        run: async (until) => {
          await bob.write("y");
          await Promise.all([
            bob.expectAll(
              ["chat started with alice at 127.0.0.1", CHAT],
              until,
            ),
            alice.expectAll(
              ["chat started with bob at 127.0.0.2", CHAT],
              until,
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
        run: async (until) => {
          await alice.write("/leave");
          await Promise.all([
            alice.expectAll(["chat closed", MENU], until),
            bob.expectAll(["alice left the chat", MENU], until),
          ]);
        },
      },
      {
        what: "both quit",
        run: async (until) => {
          await alice.write("q");
          await bob.write("q");
          await Promise.all([
            alice.expect("bye", until),
            bob.expect("bye", until),
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
      await step.run({ deadline: deadlineIn(STEP_TIMEOUT_MS) });
    }
    console.log(style("1", "Demo finished: every step passed"));
    return 0;
  } catch (error) {
    if (!(error instanceof DemoError || error instanceof ProcessError)) {
      throw error;
    }
    console.error(`demo: failed at ${current}: ${error.message}`);
    console.error(procs.report(TAIL_LINES));
    return 1;
  } finally {
    // Clients first (they quit cleanly on SIGTERM), then the daemons.
    await procs.close();
  }
}

if (import.meta.main) {
  Deno.exit(await demo());
}
