/**
 * End-to-end tests: real `simp daemon` and `simp client` processes (SIMP on
 * UDP between the daemons, the link over TCP between each client and its
 * daemon), the clients driven through their scripted mode (stdin piped, one line
 * per event or prompt) as a user would drive them (SPEC §8), and once
 * through a real terminal in tmux.
 *
 * Every test uses its own addresses 127.0.80.x with the default ports
 * 7777/7778 (127.0.77.x, 127.0.79.x and 127.0.81.x belong to other test
 * files), and stops every process it started (tests/support/processes.ts).
 * Nothing waits for a SIMP retransmission timeout: on loopback every step
 * takes milliseconds, and each expected line has a deadline of a few
 * seconds that only a failing test reaches.
 */

import {
  deepStrictEqual,
  notStrictEqual,
  ok,
  strictEqual,
} from "node:assert/strict";
import { type Proc, STEP_TIMEOUT_MS } from "../tools/_processes.ts";
import {
  ANSWER,
  CHAT,
  MENU,
  type Processes,
  processTest,
  RUN_DAEMON,
} from "./support/processes.ts";
import { HAVE_TMUX, inputLine, timedLine, Tmux } from "./support/tmux.ts";

/** The busy error text of SPEC §4.8. */
const BUSY = "busy: User already in another chat";

/** Starts a client and waits until it is connected and shows the menu. */
async function connectedClient(
  procs: Processes,
  ip: string,
  name: string,
): Promise<Proc> {
  const client = procs.client(ip, name);
  await client.expectAll([`connected to ${ip}:7778 as ${name}`, MENU]);
  return client;
}

/** The user of `client` (at the menu) waits for invitations (§8.3). */
async function waitForInvitations(client: Proc): Promise<void> {
  await client.write("2");
  await client.expect("waiting for invitations");
}

/** The user of `client` (at the menu) invites the user at `ip` (§8.3). */
async function invite(client: Proc, ip: string): Promise<void> {
  await client.write("1");
  await client.expect(/^\? ip: /);
  await client.write(ip);
  await client.expect(`inviting ${ip}`);
}

/** Alice and bob in a chat: their daemons and clients. */
interface Chat {
  alice: Proc;
  bob: Proc;
  aliceDaemon: Proc;
  bobDaemon: Proc;
}

/**
 * Starts daemons at `aliceIp` and `bobIp` and a client for each; bob waits
 * for invitations, alice invites bob, and bob is asked to answer (§4.1,
 * §4.2, §8.2, §8.3).
 */
async function startInvitation(
  procs: Processes,
  aliceIp: string,
  bobIp: string,
): Promise<Chat> {
  const [aliceDaemon, bobDaemon] = await Promise.all([
    procs.daemon(aliceIp),
    procs.daemon(bobIp),
  ]);
  const [alice, bob] = await Promise.all([
    connectedClient(procs, aliceIp, "alice"),
    connectedClient(procs, bobIp, "bob"),
  ]);
  await waitForInvitations(bob);
  await invite(alice, bobIp);
  await bob.expectAll([`invitation from alice at ${aliceIp}`, ANSWER]);
  return { alice, bob, aliceDaemon, bobDaemon };
}

/**
 * Starts an invitation ({@linkcode startInvitation}); bob accepts, and both
 * see the chat start (§4.3).
 */
async function startChat(
  procs: Processes,
  aliceIp: string,
  bobIp: string,
): Promise<Chat> {
  const chat = await startInvitation(procs, aliceIp, bobIp);
  const { alice, bob } = chat;
  await bob.write("y");
  await Promise.all([
    bob.expectAll([`chat started with alice at ${aliceIp}`, CHAT]),
    alice.expectAll([`chat started with bob at ${bobIp}`, CHAT]),
  ]);
  return chat;
}

/** `from` says `text`; `to` receives it and `from` sees it delivered. */
async function say(from: Proc, to: Proc, text: string): Promise<void> {
  await from.write(text);
  const sent = await from.expect(/^sent #\d+: /);
  strictEqual(sent.slice(sent.indexOf(": ") + 2), text);
  const id = sent.slice("sent #".length, sent.indexOf(":"));
  await to.expect(`${from.label}: ${text}`);
  await from.expect(`delivered #${id}`);
}

/** The user of `client` quits with `q`; the client says bye and exits 0. */
async function quit(client: Proc, code = 0): Promise<void> {
  await client.write("q");
  await client.expect("bye");
  strictEqual((await client.exit()).code, code, `${client.label}'s exit code`);
}

// ------------------------------------------------------------- scripted

processTest(
  "e2e: alice invites bob, bob accepts: both see the chat start (§4.3, §8.2)",
  async (procs) => {
    const { alice, bob } = await startChat(procs, "127.0.80.1", "127.0.80.2");
    await say(alice, bob, "hello bob");
    await say(bob, alice, "hello alice");
    await Promise.all([quit(alice), quit(bob)]);
  },
);

processTest(
  "e2e: bob declines: alice is told and is back at the menu, bob who chose to wait waits again (§4.4)",
  async (procs) => {
    const aliceIp = "127.0.80.3";
    const bobIp = "127.0.80.4";
    const { alice, bob } = await startInvitation(procs, aliceIp, bobIp);
    await bob.write("n");
    await Promise.all([
      bob.expectAll([
        `declined invitation from alice at ${aliceIp}`,
        "waiting for invitations",
      ]),
      alice.expectAll([`declined by bob at ${bobIp}`, MENU]),
    ]);
    deepStrictEqual(alice.grep(/^chat started/), []);
    deepStrictEqual(bob.grep(/^chat started/), []);
    // Back at the menu for real: the next choice is taken.
    await alice.write("1");
    await alice.expect(/^\? ip: /);
    await Promise.all([quit(alice), quit(bob)]);
  },
);

processTest(
  "e2e: carol invites bob while he chats with alice: carol is told busy, the chat goes on (§4.8)",
  async (procs) => {
    const carolIp = "127.0.80.7";
    const { alice, bob } = await startChat(procs, "127.0.80.5", "127.0.80.6");
    await procs.daemon(carolIp);
    const carol = await connectedClient(procs, carolIp, "carol");
    await invite(carol, "127.0.80.6");
    await carol.expectAll([BUSY, MENU]);
    // The chat alice–bob is unaffected: bob is told that carol tried
    // (issue 8), alice hears nothing of her, and messages still flow both
    // ways.
    await bob.expect(
      "carol at 127.0.80.7 tried to invite you and was told you are busy",
    );
    deepStrictEqual(alice.grep(/carol|127\.0\.80\.7\b/), []);
    await say(alice, bob, "did someone call?");
    await say(bob, alice, "no, nobody");
    await Promise.all([quit(alice), quit(bob), quit(carol)]);
  },
);

processTest(
  "e2e: messages both ways arrive in order, once, and each is delivered (§5.3, §8.5)",
  async (procs) => {
    const { alice, bob } = await startChat(
      procs,
      "127.0.80.8",
      "127.0.80.9",
    );
    const count = 6;
    const fromAlice = Array.from(
      { length: count },
      (_, i) => `alice's message ${i + 1}, with punctuation: ok?`,
    );
    const fromBob = Array.from(
      { length: count },
      (_, i) => `bob's message ${i + 1}`,
    );
    // Both type all their messages at once, without waiting for anything.
    await Promise.all([
      (async () => {
        for (const text of fromAlice) await alice.write(text);
      })(),
      (async () => {
        for (const text of fromBob) await bob.write(text);
      })(),
    ]);
    await Promise.all([
      bob.expectAll(fromAlice.map((text) => `alice: ${text}`)),
      alice.expectAll(fromBob.map((text) => `bob: ${text}`)),
    ]);
    for (
      const [sender, texts] of [[alice, fromAlice], [bob, fromBob]] as const
    ) {
      // Every message was handed to the daemon, in order, with its own id…
      await sender.waitFor(
        `${count} "sent" lines`,
        (lines) =>
          lines.filter((line) => line.startsWith("sent #")).length >= count,
      );
      const sent = sender.grep(/^sent #\d+: /);
      deepStrictEqual(
        sent.map((line) => line.slice(line.indexOf(": ") + 2)),
        texts,
        `${sender.label}'s messages were sent in the order typed`,
      );
      const ids = sent.map((line) => Number(/^sent #(\d+):/.exec(line)![1]));
      strictEqual(new Set(ids).size, count, `${sender.label}'s ids differ`);
      // …and each is reported delivered, once, in the order sent.
      const delivered = ids.map((id) => `delivered #${id}`);
      await sender.waitFor(
        `${count} "delivered" lines`,
        (lines) => delivered.every((line) => lines.includes(line)),
      );
      deepStrictEqual(sender.grep(/^delivered #/), delivered);
    }
    // Exactly once: no message shown twice, nothing else from the peer.
    deepStrictEqual(
      bob.grep(/^alice: /),
      fromAlice.map((text) => `alice: ${text}`),
    );
    deepStrictEqual(
      alice.grep(/^bob: /),
      fromBob.map((text) => `bob: ${text}`),
    );
    for (const client of [alice, bob]) {
      deepStrictEqual(client.grep(/^(undelivered|not sent|error)/), []);
    }
    await Promise.all([quit(alice), quit(bob)]);
  },
);

processTest(
  "e2e: alice leaves with /leave: bob is told, both are at the menu and can chat again (§6.1, §8.4)",
  async (procs) => {
    const aliceIp = "127.0.80.10";
    const bobIp = "127.0.80.11";
    const { alice, bob } = await startChat(procs, aliceIp, bobIp);
    await say(alice, bob, "I have to go");
    await alice.write("/leave");
    await Promise.all([
      alice.expectAll(["leaving the chat", "chat closed", MENU]),
      bob.expectAll(["alice left the chat", MENU]),
    ]);
    // A new chat, the other way round this time.
    await waitForInvitations(alice);
    await invite(bob, aliceIp);
    await alice.expectAll([`invitation from bob at ${bobIp}`, ANSWER]);
    await alice.write("y");
    await Promise.all([
      alice.expectAll([`chat started with bob at ${bobIp}`, CHAT]),
      bob.expectAll([`chat started with alice at ${aliceIp}`, CHAT]),
    ]);
    await say(bob, alice, "welcome back");
    await say(alice, bob, "thanks");
    await Promise.all([quit(alice), quit(bob)]);
  },
);

processTest(
  "e2e: bob leaves while alice's messages wait: each is reported delivered or undelivered, none dropped silently (§5.5, §6.1)",
  async (procs) => {
    const { alice, bob, bobDaemon } = await startChat(
      procs,
      "127.0.80.21",
      "127.0.80.22",
    );
    await say(alice, bob, "message 1");
    const texts = ["message 2", "message 3", "message 4"];
    // Bob's daemon is paused, so alice's next message stays in flight and the
    // others queue behind it (§5.1) — no retransmission timeout is reached.
    bobDaemon.kill("SIGSTOP");
    try {
      for (const text of texts) await alice.write(text);
      await alice.waitFor(
        "4 sent lines",
        (lines) =>
          lines.filter((line) => line.startsWith("sent #")).length === 4,
      );
      await bob.write("/leave");
      await bob.expect("leaving the chat");
    } finally {
      bobDaemon.kill("SIGCONT");
    }
    await bob.expectAll(["chat closed", MENU]);
    await alice.expect("bob left the chat");
    await alice.expect(MENU);
    const lines = alice.lines.stdout;
    const sent = alice.grep(/^sent #\d+: /).map((line) => {
      const [, id, text] = /^sent #(\d+): (.*)$/.exec(line)!;
      return { id, text };
    });
    deepStrictEqual(sent.map((m) => m.text), ["message 1", ...texts]);
    // Every message alice sent is reported exactly once: delivered, or
    // undelivered after "bob left the chat" and before the menu.
    const left = lines.indexOf("bob left the chat");
    const menu = lines.indexOf(MENU, left);
    const undelivered = lines.slice(left + 1, menu);
    ok(undelivered.length >= 1, "at least the last message is undelivered");
    for (const { id, text } of sent) {
      const outcomes = lines.filter((line) =>
        line === `delivered #${id}` || line === `undelivered #${id}: ${text}`
      );
      strictEqual(outcomes.length, 1, `one outcome for #${id}: ${outcomes}`);
    }
    deepStrictEqual(
      undelivered,
      sent.slice(-undelivered.length).map((m) =>
        `undelivered #${m.id}: ${m.text}`
      ),
      "the undelivered messages are the last ones, in order",
    );
    // Bob saw what was delivered, in order and once (the message in flight
    // when his FIN crossed it may have reached him too: alice cannot know).
    const shown = bob.grep(/^alice: /);
    deepStrictEqual(
      shown,
      sent.slice(0, shown.length).map((m) => `alice: ${m.text}`),
    );
    ok(shown.length >= sent.length - undelivered.length);
    // A script's q ends like its input: some were not delivered, exit 1.
    await Promise.all([quit(alice, 1), quit(bob)]);
  },
);

processTest(
  "e2e: daemon not running: the client names the address and `simp daemon IP`, exits non-zero (§8.1)",
  async (procs) => {
    const ip = "127.0.80.12";
    const client = procs.client(ip, "alice");
    // Nothing listens: the connection is refused at once.
    const status = await client.exit(STEP_TIMEOUT_MS);
    notStrictEqual(status.code, 0, "exit code");
    const said = client.lines.stderr.join("\n");
    ok(said.includes(`${ip}:7778`), `stderr names the address: ${said}`);
    ok(
      said.includes(`${RUN_DAEMON} ${ip}`),
      `stderr names the command: ${said}`,
    );
    // Said once (stderr), and no bye: it never connected (issue 8).
    deepStrictEqual(client.lines.stdout, []);
  },
);

processTest(
  "e2e: a second client of the same daemon is refused clearly while the first is connected (§7.2)",
  async (procs) => {
    const ip = "127.0.80.13";
    await procs.daemon(ip);
    const first = await connectedClient(procs, ip, "alice");
    const second = procs.client(ip, "mallory");
    const status = await second.exit(STEP_TIMEOUT_MS);
    notStrictEqual(status.code, 0, "the second client's exit code");
    const refusal = second.lines.stderr.join("\n");
    ok(
      /^simp: Another client is connected to this daemon \(127\.\d+\.\d+\.\d+:\d+\): quit it first$/
        .test(refusal),
      `the second client says why: ${refusal}`,
    );
    deepStrictEqual(second.grep(/^connected/), []);
    // The first client keeps its slot and works on…
    await first.write("1");
    await first.expect(/^\? ip: /);
    await quit(first);
    // …and once it has quit, the slot is free at once.
    const third = await connectedClient(procs, ip, "carol");
    await quit(third);
  },
);

processTest(
  "e2e: a client killed with kill -9 frees the slot at once: the next client gets in (§7.2)",
  async (procs) => {
    const ip = "127.0.80.14";
    await procs.daemon(ip);
    const first = await connectedClient(procs, ip, "alice");
    first.kill("SIGKILL");
    await first.exit();
    const killedAt = Date.now();
    // The daemon sees the connection close (TCP): no timeout to wait for.
    for (let attempt = 1;; attempt++) {
      const client = procs.client(ip, "bob");
      const line = await client.expect(/^connected to /).catch(() => "");
      if (line.startsWith("connected to ")) {
        await client.expect(MENU);
        await quit(client);
        break;
      }
      await client.exit();
      const refusal = client.lines.stderr.join("\n");
      ok(
        refusal.includes("Another client"),
        `refused for the slot: ${refusal}`,
      );
      ok(
        Date.now() - killedAt < 3000,
        `no client could connect within 3 s of the kill (${attempt} attempts)`,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  },
);

processTest(
  "e2e: a daemon killed with kill -9 is reported by its client within 1 s, exit 1 (§9)",
  async (procs) => {
    const aliceIp = "127.0.80.23";
    const { alice, aliceDaemon, bob } = await startChat(
      procs,
      aliceIp,
      "127.0.80.24",
    );
    const killedAt = Date.now();
    aliceDaemon.kill("SIGKILL");
    const status = await alice.exit(1000);
    ok(Date.now() - killedAt < 1000, `took ${Date.now() - killedAt} ms`);
    strictEqual(status.code, 1);
    deepStrictEqual(alice.lines.stderr, [
      `simp: Lost the connection to the daemon at ${aliceIp}:7778: it stopped or was killed; start it again with \`${RUN_DAEMON} ${aliceIp}\`, then the client`,
    ]);
    strictEqual(alice.lines.stdout.at(-1), "bye");
    await quit(bob);
  },
);

processTest(
  "e2e: alice's client paused for 6 s (SIGSTOP) while bob writes: after SIGCONT it shows every message, stays connected and chats on (§9)",
  async (procs) => {
    const { alice, bob } = await startChat(procs, "127.0.80.25", "127.0.80.26");
    const texts = Array.from(
      { length: 5 },
      (_, i) => `while you slept ${i + 1}`,
    );
    alice.kill("SIGSTOP");
    try {
      for (const text of texts) await bob.write(text);
      // Alice's daemon ACKs them (it holds them for her client): delivered.
      await bob.waitFor(
        "5 delivered lines",
        (lines) =>
          lines.filter((l) => l.startsWith("delivered #")).length === 5,
      );
      await new Promise((resolve) => setTimeout(resolve, 6000));
    } finally {
      alice.kill("SIGCONT");
    }
    await alice.expectAll(texts.map((text) => `bob: ${text}`));
    deepStrictEqual(alice.grep(/^bob: /), texts.map((text) => `bob: ${text}`));
    await say(alice, bob, "sorry, I was away");
    await say(bob, alice, "welcome back");
    await Promise.all([quit(alice), quit(bob)]);
  },
);

processTest(
  "e2e: alice's daemon stopped with SIGTERM in a chat: bob is told alice left, the daemon exits 0 (§6.1)",
  async (procs) => {
    const { alice, bob, aliceDaemon } = await startChat(
      procs,
      "127.0.80.15",
      "127.0.80.16",
    );
    await say(alice, bob, "my daemon is about to stop");
    aliceDaemon.kill("SIGTERM");
    await bob.expectAll(["alice left the chat", MENU]);
    strictEqual((await aliceDaemon.exit()).code, 0, "the daemon's exit code");
    // Alice's client is told, and exits (non-zero: it did not choose to).
    await alice.expectAll(["daemon is stopping", "bye"]);
    strictEqual((await alice.exit()).code, 1, "alice's client's exit code");
    // Bob is at the menu for real.
    await bob.write("1");
    await bob.expect(/^\? ip: /);
    await quit(bob);
  },
);

processTest(
  "e2e: an invitation that arrived before bob's client connected is shown when it connects (§4.2, §8.2)",
  async (procs) => {
    const aliceIp = "127.0.80.17";
    const bobIp = "127.0.80.18";
    const [, bobDaemon] = await Promise.all([
      procs.daemon(aliceIp),
      procs.daemon(bobIp),
    ]);
    const alice = await connectedClient(procs, aliceIp, "alice");
    await invite(alice, bobIp);
    // Bob's daemon has the SYN (its wire trace says so) before bob's client starts.
    await bobDaemon.expect(
      /127\.0\.80\.17 → 127\.0\.80\.18 +SYN .*user=alice/,
      { stream: "stderr" },
    );
    const bob = procs.client(bobIp, "bob");
    await bob.expectAll([
      `connected to ${bobIp}:7778 as bob`,
      `invitation from alice at ${aliceIp}`,
      ANSWER,
    ]);
    deepStrictEqual(bob.grep(MENU), [], "the invitation comes before any menu");
    await bob.write("y");
    await Promise.all([
      bob.expectAll([`chat started with alice at ${aliceIp}`, CHAT]),
      alice.expectAll([`chat started with bob at ${bobIp}`, CHAT]),
    ]);
    await say(bob, alice, "sorry, I was away");
    await Promise.all([quit(alice), quit(bob)]);
  },
);

// ------------------------------------------------------------- terminal

processTest(
  HAVE_TMUX
    ? "e2e: interactive client in a terminal: a message arrives above the input line, the typed text stays, q restores the terminal (§8.5)"
    : "e2e: interactive client in a terminal (skipped: tmux is not installed)",
  async (procs) => {
    const aliceIp = "127.0.80.19";
    const bobIp = "127.0.80.20";
    await Promise.all([procs.daemon(aliceIp), procs.daemon(bobIp)]);
    const bob = await connectedClient(procs, bobIp, "bob");
    await waitForInvitations(bob);
    const tmux = new Tmux();
    try {
      // The shell compares the terminal settings before and after the client.
      await tmux.start(
        [
          'before="$(stty -g)"',
          `"$0" run -A mod.ts client ${aliceIp} --name alice`,
          "code=$?",
          'if [ "$(stty -g)" = "$before" ]; then t=restored; else t=changed; fi',
          'echo "client exited with $code, terminal $t"',
        ].join("\n"),
        [Deno.execPath()],
      );
      await tmux.waitFor(
        "the menu",
        (lines) => inputLine(lines) === "Choose 1, 2 or q:",
      );
      await tmux.type("1");
      await tmux.enter();
      await tmux.waitFor(
        "the IP question",
        (lines) => inputLine(lines) === "IP address to invite:",
      );
      await tmux.type(bobIp);
      await tmux.enter();
      await bob.expectAll([`invitation from alice at ${aliceIp}`, ANSWER]);
      await bob.write("y");
      await bob.expectAll([`chat started with alice at ${aliceIp}`, CHAT]);
      await tmux.waitFor(
        "the chat",
        (lines) =>
          lines.some((line) =>
            line.includes(`chat started with bob at ${bobIp}`)
          ) && inputLine(lines) === `[bob@${bobIp}]>`,
      );

      // Alice types half a message; bob's arrives meanwhile.
      await tmux.type("partial inp");
      await tmux.waitFor(
        "the typed text",
        (lines) => inputLine(lines) === `[bob@${bobIp}]> partial inp`,
      );
      await bob.write("hello from bob");
      await bob.expect(/^delivered #\d+$/);
      const screen = await tmux.waitFor(
        "bob's message",
        (lines) =>
          lines.some((line) => timedLine("bob: hello from bob").test(line)),
      );
      const message = screen.findIndex((line) =>
        timedLine("bob: hello from bob").test(line)
      );
      strictEqual(
        inputLine(screen),
        `[bob@${bobIp}]> partial inp`,
        "the input line keeps the typed text",
      );
      ok(
        message < screen.length - 1,
        "the message is above the input line",
      );
      deepStrictEqual(
        screen.filter((line) => line.includes("partial inp")),
        [`[bob@${bobIp}]> partial inp`],
        "the typed text is shown once, on the input line",
      );

      // Alice finishes her line: what she typed before was kept intact.
      await tmux.type("ut");
      await tmux.enter();
      await bob.expect("alice: partial input");
      const after = await tmux.waitFor(
        "the message delivered",
        (lines) =>
          lines.some((line) =>
            timedLine("alice: partial input #1 ✓").test(line)
          ),
      );
      strictEqual(
        after.filter((line) => line.includes("partial input")).length,
        1,
        "alice's own message is one line, marked delivered",
      );
      strictEqual(
        inputLine(after),
        `[bob@${bobIp}]>`,
        "the input line is empty again",
      );

      // q quits (closing the chat) and gives the terminal back as it was.
      await tmux.type("q");
      await tmux.enter();
      await bob.expectAll(["alice left the chat", MENU]);
      await tmux.waitFor(
        "the client's exit",
        (lines) => lines.some((line) => line.startsWith("client exited")),
      );
      ok(
        tmux.screen.includes("client exited with 0, terminal restored"),
        `exit code 0 and terminal restored: ${tmux.screen.join("\n")}`,
      );
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      throw new Error(
        `${error.message}\nlast screen:\n${tmux.screen.join("\n")}`,
        { cause: error },
      );
    } finally {
      await tmux.close();
    }
    await quit(bob);
  },
  { ignore: !HAVE_TMUX },
);

processTest(
  HAVE_TMUX
    ? "e2e: interactive client in a terminal: its daemon killed, it says so in one line, exits 1 and restores the terminal (§9)"
    : "e2e: interactive client, daemon killed (skipped: tmux is not installed)",
  async (procs) => {
    const ip = "127.0.80.27";
    const daemon = await procs.daemon(ip);
    const tmux = new Tmux();
    try {
      await tmux.start(
        [
          'before="$(stty -g)"',
          `INIT_CWD= "$0" run -A mod.ts client ${ip} --name alice`,
          "code=$?",
          'if [ "$(stty -g)" = "$before" ]; then t=restored; else t=changed; fi',
          'echo "client exited with $code, terminal $t"',
        ].join("\n"),
        [Deno.execPath()],
      );
      await tmux.waitFor(
        "the menu",
        (lines) => inputLine(lines) === "Choose 1, 2 or q:",
      );
      await tmux.type("half typed");
      daemon.kill("SIGKILL");
      const screen = await tmux.waitFor(
        "the client's exit",
        (lines) => lines.some((line) => line.startsWith("client exited")),
      );
      // One line (wrapped by the 100-column pane), once.
      const message =
        `! Lost the connection to the daemon at ${ip}:7778: it stopped or was killed; start it again with \`${RUN_DAEMON} ${ip}\`, then the client`;
      strictEqual(screen.join("").split(message).length, 2, "shown once");
      ok(
        screen.includes("client exited with 1, terminal restored"),
        `exit code 1 and terminal restored: ${screen.join("\n")}`,
      );
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      throw new Error(
        `${error.message}\nlast screen:\n${tmux.screen.join("\n")}`,
        { cause: error },
      );
    } finally {
      await tmux.close();
    }
  },
  { ignore: !HAVE_TMUX },
);
