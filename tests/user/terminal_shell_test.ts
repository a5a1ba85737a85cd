/**
 * The interactive client in a real terminal (tmux): keys sent with
 * `send-keys`, the screen read with `capture-pane`, against real daemons
 * and, as the partner, a scripted client. One test per defect and per
 * visible item of issue 8.
 *
 * Addresses: 127.0.100.x (this file's block), default ports. A test waits
 * only for what it expects to see; nothing waits for a SIMP timeout.
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { Proc } from "../../tools/_processes.ts";
import { ANSWER, CHAT, MENU, Processes } from "../support/processes.ts";
import { HAVE_TMUX, inputLine, timedLine, Tmux } from "../support/tmux.ts";

/** Runs the client in the pane, then prints its exit code. */
const CLIENT_SCRIPT = [
  // Ctrl+C reaches the whole foreground job, this shell too: it must live
  // on to print the client's exit code (as an interactive shell does).
  "trap : INT",
  'unset INIT_CWD; [ -n "$3" ] && export INIT_CWD="$3"',
  'if [ -n "$2" ]; then "$0" run -A mod.ts client "$1" --name alice > "$2"',
  'else "$0" run -A mod.ts client "$1" --name alice; fi',
  'echo "client exited with $?"',
].join("\n");

interface Setup {
  procs: Processes;
  tmux: Tmux;
}

/**
 * A test with daemons at `ips` (the first is alice's, whose client runs in
 * tmux), every process stopped at the end, the last screen in a failure.
 */
function terminalTest(
  name: string,
  ips: readonly string[],
  fn: (setup: Setup) => Promise<void>,
  options: {
    columns?: number;
    rows?: number;
    /** Redirect the client's stdout to this file. */
    stdoutFile?: string;
    /** Run as `deno task` would (INIT_CWD set). */
    underTask?: boolean;
    /** Do not start the client (the test starts something else). */
    noClient?: boolean;
    /** Options for the first daemon (the client's). */
    daemonArgs?: string[];
  } = {},
): void {
  Deno.test({
    name: HAVE_TMUX ? name : `${name} (skipped: tmux is not installed)`,
    ignore: !HAVE_TMUX,
    async fn() {
      const procs = new Processes();
      const tmux = new Tmux();
      try {
        await Promise.all(
          ips.map((ip, i) =>
            procs.daemon(ip, i === 0 ? options.daemonArgs ?? [] : [])
          ),
        );
        if (!options.noClient) {
          await tmux.start(CLIENT_SCRIPT, [
            Deno.execPath(),
            ips[0],
            options.stdoutFile ?? "",
            options.underTask ? "/" : "",
          ], { columns: options.columns, rows: options.rows });
          await tmux.waitFor(
            "the menu",
            (lines) => inputLine(lines) === "Choose 1, 2 or q:",
          );
        }
        await fn({ procs, tmux });
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        throw new Error(
          `${error.message}\nlast screen:\n${
            tmux.screen.join("\n")
          }\n${procs.report()}`,
          { cause: error },
        );
      } finally {
        await tmux.close();
        await procs.close();
      }
    },
  });
}

/** Waits until the client in the pane has exited; returns its exit code. */
async function exitCode(tmux: Tmux): Promise<number> {
  const lines = await tmux.waitFor(
    "the client's exit",
    (lines) => lines.some((line) => line.startsWith("client exited with")),
  );
  const line = lines.find((line) => line.startsWith("client exited with"))!;
  return Number(line.split(" ").at(-1));
}

/** Whether some screen line matches `pattern`. */
function shows(lines: readonly string[], pattern: RegExp | string): boolean {
  return lines.some((line) =>
    typeof pattern === "string" ? line.includes(pattern) : pattern.test(line)
  );
}

/** A scripted client `name` at `ip`, waiting for invitations. */
async function waitingPartner(
  procs: Processes,
  ip: string,
  name: string,
): Promise<Proc> {
  const partner = procs.client(ip, name);
  await partner.expect(MENU);
  await partner.write("2");
  await partner.expect("waiting for invitations");
  return partner;
}

/** Alice (in tmux) invites the scripted partner at `ip`, who accepts. */
async function chatWith(tmux: Tmux, partner: Proc, ip: string): Promise<void> {
  await tmux.line("1");
  await tmux.waitFor(
    "the IP question",
    (l) => inputLine(l) === "IP address to invite:",
  );
  await tmux.line(ip);
  await partner.expect(ANSWER);
  await partner.write("y");
  await partner.expect(CHAT);
  await tmux.waitFor(
    "the chat's status prompt",
    (lines) => inputLine(lines).startsWith(`[bob@${ip}]>`),
  );
}

// ------------------------------------------------------------ defect 1

terminalTest(
  "a refused answer leaves the input empty: q then quits (issue 8 defect 1)",
  ["127.0.100.1"],
  async ({ tmux }) => {
    await tmux.line("bob");
    const lines = await tmux.waitFor(
      "the error",
      (lines) => shows(lines, "Type 1 to start a new chat"),
    );
    strictEqual(inputLine(lines), "Choose 1, 2 or q:", "bob is not kept");
    await tmux.line("q");
    strictEqual(await exitCode(tmux), 0);
  },
);

terminalTest(
  "while inviting, a refused line is cleared and /leave cancels; the prompt shows the time and how to cancel (issue 8 defect 1, invite progress)",
  ["127.0.100.2"],
  async ({ tmux }) => {
    await tmux.line("1");
    await tmux.waitFor(
      "the IP question",
      (l) => inputLine(l) === "IP address to invite:",
    );
    await tmux.line("127.0.100.99"); // nobody there: no answer
    await tmux.waitFor(
      "the invitation's status",
      (lines) =>
        /^\[inviting 127\.0\.100\.99, [0-9]+ s[,:].*\/leave cancels, q quits\]>$/
          .test(
            inputLine(lines),
          ),
    );
    await tmux.waitFor(
      "the seconds counting",
      (lines) => /, [1-9][0-9]* s[,:]/.test(inputLine(lines)),
    );
    await tmux.line("hello?");
    await tmux.waitFor(
      "the refusal",
      (lines) => shows(lines, "type /leave to cancel"),
    );
    await tmux.line("/leave");
    await tmux.waitFor(
      "the cancel",
      (lines) =>
        shows(lines, "invitation to 127.0.100.99 cancelled") &&
        inputLine(lines) === "Choose 1, 2 or q:",
    );
  },
);

terminalTest(
  "inviting an address where nobody answers: one status line shows the tries and the time left, no line per try, then no answer (issue 8)",
  ["127.0.101.1"],
  async ({ tmux }) => {
    await tmux.line("1");
    await tmux.waitFor(
      "the IP question",
      (l) => inputLine(l) === "IP address to invite:",
    );
    await tmux.line("127.0.101.99"); // nobody there
    const lines = await tmux.waitFor(
      "the tries in the status line",
      (lines) =>
        /^\[inviting 127\.0\.101\.99, [0-9]+ s, sent [3-9] times, no answer, [0-9]+ s left: \/leave cancels, q quits\]>$/
          .test(inputLine(lines)),
      20_000,
    );
    // The status line updates in place: no line per retransmission.
    ok(!shows(lines, "no answer yet"), lines.join("\n"));
    await tmux.waitFor(
      "the end of the invitation",
      (lines) =>
        shows(lines, "no answer from 127.0.101.99") &&
        inputLine(lines) === "Choose 1, 2 or q:",
      20_000,
    );
  },
  { daemonArgs: ["--timeout", "0.4", "--invite-limit", "4"] },
);

terminalTest(
  "the terminal tells of an inviter answered busy while an invitation is pending, and of a partner whose daemon restarted (issue 8)",
  ["127.0.101.20", "127.0.101.22"],
  async ({ procs, tmux }) => {
    // Bob (scripted, at .21) invites the terminal's user, who leaves it
    // pending; carol (.22) tries meanwhile and is answered busy.
    const bobDaemon = await procs.daemon("127.0.101.21");
    await tmux.line("2");
    const bob = procs.client("127.0.101.21", "bob");
    await bob.expect(MENU);
    await bob.write("1");
    await bob.write("127.0.101.20");
    await tmux.waitFor(
      "the invitation's question",
      (lines) => inputLine(lines) === "Accept? (y/n/q):",
    );
    const carol = procs.client("127.0.101.22", "carol");
    await carol.expect(MENU);
    await carol.write("1");
    await carol.write("127.0.101.20");
    await carol.expect("busy: User already in another chat");
    await tmux.waitFor(
      "the busy notice, the question still asked",
      (lines) =>
        shows(
          lines,
          "* carol at 127.0.101.22 tried to invite you and was told you are busy",
        ) && inputLine(lines) === "Accept? (y/n/q):",
    );
    await tmux.line("y");
    await bob.expect(CHAT);
    await carol.write("q");
    // Bob's daemon dies without a FIN, comes back, and bob invites again.
    bobDaemon.kill("SIGKILL");
    await bob.exit();
    await bobDaemon.exit();
    await procs.daemon("127.0.101.21");
    const again = procs.client("127.0.101.21", "bob");
    await again.expect(MENU);
    await again.write("1");
    await again.write("127.0.101.20");
    await again.expect(/^bob answered at once|^chat started/);
    await tmux.waitFor(
      "the reconnection notice, still in the chat",
      (lines) =>
        shows(
          lines,
          "* bob at 127.0.101.21 reconnected (their daemon restarted): messages",
        ) && inputLine(lines).startsWith("[bob@127.0.101.21]>"),
    );
    await again.write("q");
  },
);

terminalTest(
  "text typed when the partner leaves is set aside, not taken as the next answer (issue 8 defect 1)",
  ["127.0.100.3", "127.0.100.4"],
  async ({ procs, tmux }) => {
    const bob = await waitingPartner(procs, "127.0.100.4", "bob");
    await chatWith(tmux, bob, "127.0.100.4");
    await tmux.type("reply from bob");
    await tmux.waitFor(
      "the typing",
      (l) => inputLine(l).endsWith("reply from bob"),
    );
    await bob.write("q");
    const lines = await tmux.waitFor(
      "the menu after bob left",
      (lines) => inputLine(lines) === "Choose 1, 2 or q:",
    );
    ok(shows(lines, "set aside what you were typing"), lines.join("\n"));
    await tmux.line("q");
    strictEqual(await exitCode(tmux), 0, "q alone quits");
  },
);

// ------------------------------------------------------------ defect 2

terminalTest(
  "55 CJK characters in a 110-column pane wrap over two rows; Ctrl+U leaves no stale row (issue 8 defect 2)",
  ["127.0.100.5"],
  async ({ tmux }) => {
    await tmux.type("漢".repeat(55));
    const typed = await tmux.waitFor(
      "the wrapped input",
      (lines) => lines.join("").split("漢").length - 1 === 55,
    );
    strictEqual(typed.filter((line) => line.includes("漢")).length, 2);
    await tmux.keys("C-u");
    const cleared = await tmux.waitFor(
      "the cleared input",
      (lines) => !shows(lines, "漢"),
    );
    strictEqual(inputLine(cleared), "Choose 1, 2 or q:");
  },
  { columns: 110 },
);

// ------------------------------------------------------------ defect 3

/** Where the redirected client writes (the pane's shell creates it). */
const TRANSCRIPT = `/tmp/simp-transcript-${Deno.pid}-${
  crypto.randomUUID().slice(0, 8)
}`;

terminalTest(
  "stdout redirected: the screen shows the client, the file gets plain lines without escape codes (issue 8 defect 3)",
  ["127.0.100.6"],
  async ({ tmux }) => {
    await tmux.line("zz");
    await tmux.waitFor(
      "the refusal",
      (lines) => shows(lines, "Type 1 to start"),
    );
    await tmux.line("q");
    strictEqual(await exitCode(tmux), 0);
    const text = await Deno.readTextFile(TRANSCRIPT);
    // With rm: the test task grants --allow-run, not --allow-write.
    await new Deno.Command("rm", { args: ["-f", "--", TRANSCRIPT] }).output();
    ok(!text.includes("\x1b"), JSON.stringify(text));
    ok(text.includes(MENU), text);
    ok(text.includes("error: Type 1 to start"), text);
    ok(text.trimEnd().endsWith("bye"), text);
  },
  { stdoutFile: TRANSCRIPT },
);

// ------------------------------------------------------------ defect 4

terminalTest(
  "Ctrl+C exits 130 and shows what was typed and not sent (issue 8 defect 4)",
  ["127.0.100.7"],
  async ({ tmux }) => {
    await tmux.type("half typed");
    await tmux.waitFor(
      "the typing",
      (l) => inputLine(l).endsWith("half typed"),
    );
    await tmux.keys("C-c");
    strictEqual(await exitCode(tmux), 130);
    ok(
      shows(tmux.screen, '^C (not sent: "half typed")'),
      tmux.screen.join("\n"),
    );
  },
);

terminalTest(
  "under deno task Ctrl+C still exits 130, and Ctrl+Z explains instead of hanging the shell (issue 8 defect 4)",
  ["127.0.100.8"],
  async ({ tmux }) => {
    await tmux.type("abc");
    await tmux.keys("C-z");
    await tmux.waitFor(
      "the explanation",
      (lines) =>
        shows(lines, "Ctrl+Z cannot suspend a client started by deno task"),
    );
    strictEqual(inputLine(tmux.screen), "Choose 1, 2 or q: abc");
    await tmux.keys("C-c");
    strictEqual(await exitCode(tmux), 130);
  },
  { underTask: true },
);

terminalTest(
  "arrows, Home/End, Ctrl+A/E, Backspace, Delete, Ctrl+W/K edit inside the line (issue 8 defect 4)",
  ["127.0.100.9"],
  async ({ tmux }) => {
    await tmux.type("wrld");
    await tmux.keys("Left", "Left", "Left");
    await tmux.type("o");
    await tmux.keys("Home");
    await tmux.type("hello ");
    await tmux.keys("End");
    await tmux.type("!!");
    await tmux.keys("BSpace", "C-a", "Right", "DC");
    await tmux.waitFor(
      "the edited line",
      (lines) => inputLine(lines) === "Choose 1, 2 or q: hllo world!",
    );
    await tmux.keys("C-e", "C-w");
    await tmux.waitFor(
      "Ctrl+W",
      (l) => inputLine(l) === "Choose 1, 2 or q: hllo",
    );
    await tmux.keys("C-a", "Right", "C-k");
    await tmux.waitFor("Ctrl+K", (l) => inputLine(l) === "Choose 1, 2 or q: h");
  },
);

terminalTest(
  "Up brings back a refused line; Ctrl+L clears the screen and redraws the input (issue 8 defect 4)",
  ["127.0.100.10"],
  async ({ tmux }) => {
    await tmux.line("3");
    await tmux.waitFor(
      "the refusal",
      (lines) => shows(lines, "Type 1 to start"),
    );
    await tmux.keys("Up");
    await tmux.waitFor(
      "the line back",
      (l) => inputLine(l) === "Choose 1, 2 or q: 3",
    );
    await tmux.keys("C-l");
    const lines = await tmux.waitFor(
      "a clean screen",
      (lines) => lines.length === 1,
    );
    deepStrictEqual(lines, ["Choose 1, 2 or q: 3"]);
  },
);

terminalTest(
  "Ctrl+Z suspends the client in a shell with job control; fg brings it back (issue 8 defect 4)",
  ["127.0.100.11"],
  async ({ tmux }) => {
    await tmux.start("PS1='$ ' exec bash --norc --noprofile -i", [], {});
    await tmux.waitFor("the shell", (lines) => inputLine(lines).endsWith("$"));
    await tmux.line(
      `unset INIT_CWD; ${Deno.execPath()} run -A mod.ts client 127.0.100.11 --name alice`,
    );
    await tmux.waitFor("the menu", (l) => inputLine(l) === "Choose 1, 2 or q:");
    await tmux.type("kept");
    await tmux.keys("C-z");
    await tmux.waitFor("the stop", (lines) => shows(lines, "Stopped"));
    await tmux.line("fg");
    await tmux.waitFor(
      "the client back, the typing kept",
      (lines) => inputLine(lines) === "Choose 1, 2 or q: kept",
    );
    await tmux.keys("C-u");
    await tmux.line("q");
    await tmux.waitFor("the shell again", (l) => inputLine(l) === "$");
    await tmux.line('echo "client exited with $?"');
    strictEqual(await exitCode(tmux), 0);
  },
  { noClient: true },
);

// ------------------------------------------------------------ the chat

terminalTest(
  "a chat: timestamps, the status prompt, one line per message sent with ✓, numbers per chat (issue 8 missing items)",
  ["127.0.100.12", "127.0.100.13"],
  async ({ procs, tmux }) => {
    const bob = await waitingPartner(procs, "127.0.100.13", "bob");
    await chatWith(tmux, bob, "127.0.100.13");
    await tmux.line("hello bob");
    await bob.expect("alice: hello bob");
    await tmux.waitFor(
      "the message sent, delivered, on one line",
      (lines) => shows(lines, timedLine("alice: hello bob #1 ✓")),
    );
    await bob.write("hi alice");
    const lines = await tmux.waitFor(
      "bob's message",
      (lines) => shows(lines, timedLine("bob: hi alice")),
    );
    strictEqual(inputLine(lines), "[bob@127.0.100.13]>");
    strictEqual(
      lines.filter((line) => line.includes("hello bob")).length,
      1,
      "one line for the message sent",
    );
    // A second chat numbers its messages from 1 again.
    await tmux.line("/leave");
    await bob.expect("alice left the chat");
    await bob.expect(MENU);
    await bob.write("2");
    await bob.expect("waiting for invitations");
    await tmux.waitFor("the menu", (l) => inputLine(l) === "Choose 1, 2 or q:");
    await chatWith(tmux, bob, "127.0.100.13");
    await tmux.line("again");
    await bob.expect("alice: again");
    await tmux.waitFor(
      "#1 in the new chat",
      (lines) => shows(lines, timedLine("alice: again #1 ✓")),
    );
  },
);

terminalTest(
  "slash commands: /help, an unknown /command is refused and not sent, //text and /say q send (issue 8 missing items)",
  ["127.0.100.14", "127.0.100.15"],
  async ({ procs, tmux }) => {
    const bob = await waitingPartner(procs, "127.0.100.15", "bob");
    await chatWith(tmux, bob, "127.0.100.15");
    await tmux.line("/help");
    await tmux.waitFor("the help", (lines) => shows(lines, "/say TEXT"));
    await tmux.line("/me waves");
    await tmux.waitFor(
      "the refusal",
      (lines) => shows(lines, "Unknown command /me"),
    );
    await tmux.line("//etc/hosts");
    await bob.expect("alice: /etc/hosts");
    await tmux.line("/say q");
    await bob.expect("alice: q");
    deepStrictEqual(
      bob.grep(/waves|help/),
      [],
      "nothing of /me or /help was sent",
    );
    await tmux.line("q");
    strictEqual(await exitCode(tmux), 0);
  },
);

terminalTest(
  "a paste of many lines asks first; n drops them, a short paste is sent at once (issue 8 missing items)",
  ["127.0.100.16", "127.0.100.17"],
  async ({ procs, tmux }) => {
    const bob = await waitingPartner(procs, "127.0.100.17", "bob");
    await chatWith(tmux, bob, "127.0.100.17");
    await tmux.paste(["p1", "p2", "p3", "p4", "p5", "p6", "p7", ""].join("\n"));
    await tmux.waitFor(
      "the question",
      (lines) => inputLine(lines).startsWith("Send 7 pasted lines"),
    );
    await tmux.line("n");
    await tmux.waitFor(
      "the drop",
      (lines) => shows(lines, "7 pasted lines dropped"),
    );
    await tmux.paste("s1\ns2\n");
    await bob.expect("alice: s1");
    await bob.expect("alice: s2");
    deepStrictEqual(bob.grep(/alice: p/), [], "the dropped paste was not sent");
    await tmux.paste(["y1", "y2", "y3", "y4", "y5", "y6", ""].join("\n"));
    await tmux.waitFor(
      "the question",
      (l) => inputLine(l).startsWith("Send 6 pasted"),
    );
    await tmux.line("y");
    await bob.expect("alice: y6");
  },
);

terminalTest(
  "after declining, a user who chose to wait goes on waiting (issue 8 missing items)",
  ["127.0.100.18", "127.0.100.19"],
  async ({ procs, tmux }) => {
    await tmux.line("2");
    await tmux.waitFor(
      "waiting",
      (lines) => inputLine(lines).startsWith("[waiting"),
    );
    const bob = procs.client("127.0.100.19", "bob");
    await bob.expect(MENU);
    await bob.write("1");
    await bob.write("127.0.100.18");
    await tmux.waitFor(
      "the invitation",
      (lines) => inputLine(lines) === "Accept? (y/n/q):",
    );
    await tmux.line("n");
    await bob.expect("declined by alice at 127.0.100.18");
    await tmux.waitFor(
      "waiting again",
      (lines) =>
        inputLine(lines) ===
          "[waiting for invitations: /leave = menu, q = quit]>",
    );
  },
);

terminalTest(
  "a message arriving while the user types rings the bell; the typing stays (issue 8 missing items)",
  ["127.0.100.24", "127.0.100.25"],
  async ({ procs, tmux }) => {
    const bob = await waitingPartner(procs, "127.0.100.25", "bob");
    await chatWith(tmux, bob, "127.0.100.25");
    await bob.write("not typing yet");
    await tmux.waitFor(
      "bob's first message",
      (l) => shows(l, "not typing yet"),
    );
    strictEqual(await tmux.rang(), false, "no bell when not typing");
    await tmux.type("half");
    await tmux.waitFor("the typing", (l) => inputLine(l).endsWith("half"));
    await bob.write("are you there?");
    await tmux.waitFor("bob's message", (l) => shows(l, "are you there?"));
    strictEqual(await tmux.rang(), true, "the bell rang");
    strictEqual(inputLine(tmux.screen), "[bob@127.0.100.25]> half");
  },
);

terminalTest(
  "an invitation rings the bell and sets aside what was being typed (issue 8 missing items)",
  ["127.0.100.26", "127.0.100.27"],
  async ({ procs, tmux }) => {
    await tmux.type("typed at the menu");
    await tmux.waitFor("the typing", (l) => inputLine(l).endsWith("menu"));
    strictEqual(await tmux.rang(), false);
    const bob = procs.client("127.0.100.27", "bob");
    await bob.expect(MENU);
    await bob.write("1");
    await bob.write("127.0.100.26");
    const lines = await tmux.waitFor(
      "the invitation",
      (lines) => inputLine(lines) === "Accept? (y/n/q):",
    );
    ok(shows(lines, "set aside what you were typing"), lines.join("\n"));
    strictEqual(await tmux.rang(), true, "the bell rang");
  },
);

// ------------------------------------------------------------ scripted modes

Deno.test("--json: a message event carries the time it was shown, ISO 8601 UTC; other events are as before", async () => {
  const procs = new Processes();
  try {
    await Promise.all([
      procs.daemon("127.0.100.20"),
      procs.daemon("127.0.100.21"),
    ]);
    const bob = await waitingPartner(procs, "127.0.100.21", "bob");
    const alice = procs.client("127.0.100.20", "alice", ["--json"]);
    await alice.expect(/"type":"prompt","ask":"menu"/);
    await alice.write("1");
    await alice.write("127.0.100.21");
    await bob.expect(ANSWER);
    await bob.write("y");
    await alice.expect(/"type":"prompt","ask":"chat"/);
    const before = Date.now();
    await bob.write("hi alice");
    const line = await alice.expect(/"type":"message"/);
    const event = JSON.parse(line);
    deepStrictEqual(Object.keys(event), ["type", "name", "text", "time"]);
    strictEqual(event.text, "hi alice");
    ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(event.time), event.time);
    ok(Math.abs(Date.parse(event.time) - before) < 60_000, event.time);
    for (const other of alice.lines.stdout.filter((l) => l !== line)) {
      ok(!("time" in JSON.parse(other)), other);
    }
    await alice.write("q");
    strictEqual((await alice.exit()).code, 0);
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    throw new Error(`${error.message}\n${procs.report()}`, { cause: error });
  } finally {
    await procs.close();
  }
});

Deno.test("scripted: /say q sends q, //x sends /x, an unknown /word is reported not sent", async () => {
  const procs = new Processes();
  try {
    await Promise.all([
      procs.daemon("127.0.100.22"),
      procs.daemon("127.0.100.23"),
    ]);
    const bob = await waitingPartner(procs, "127.0.100.23", "bob");
    const alice = procs.client("127.0.100.22", "alice");
    await alice.expect(MENU);
    await alice.write("1");
    await alice.write("127.0.100.23");
    await bob.expect(ANSWER);
    await bob.write("y");
    await alice.expect(CHAT);
    await alice.write("/say q");
    await alice.write("//x");
    await alice.write("/me waves");
    await bob.expect("alice: q");
    await bob.expect("alice: /x");
    await alice.expect(/^not sent: Unknown command \/me .*: \/me waves$/);
    await alice.closeStdin();
    strictEqual((await alice.exit()).code, 1, "a line not sent: exit 1");
    deepStrictEqual(bob.grep(/waves/), []);
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    throw new Error(`${error.message}\n${procs.report()}`, { cause: error });
  } finally {
    await procs.close();
  }
});
