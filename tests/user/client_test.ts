/**
 * Tests of the client process (`mod.ts client`, the shell `client.ts` with
 * its core) against a fake daemon on real TCP (tests/user/_fake_daemon.ts):
 * the scripted and JSON modes, signals, the daemon going away, a paused
 * client, and hostile daemons. Every test uses its own address
 * 127.0.91.x (never 127.0.0.1 or 127.0.0.2).
 */

import {
  deepStrictEqual,
  match,
  notStrictEqual,
  ok,
  strictEqual,
} from "node:assert/strict";
import type { Proc, ProcessGroup } from "../../tools/_processes.ts";
import { BUSY_TEXT } from "../../lib/wire/datagram.ts";
import { MAX_LINE_BYTES } from "../../lib/link/protocol.ts";
import { FakeDaemon } from "./_fake_daemon.ts";
import { RUN_DAEMON } from "../support/processes.ts";
import { ANSWER, BOB, CHAT, MENU } from "./_harness.ts";
import { processTest, rssKiB } from "../support/processes.ts";

/**
 * Starts `mod.ts client ip args…` with piped stdin (scripted mode), with
 * `denoFlags` for `deno run` if given.
 */
function client(
  procs: ProcessGroup,
  ip: string,
  args: string[] = [],
  denoFlags: string[] = [],
): Proc {
  return procs.spawn("client", [
    "run",
    "--allow-net",
    "--allow-env",
    ...denoFlags,
    "mod.ts",
    "client",
    ip,
    ...args,
  ], { stdin: true, env: { NO_COLOR: "1", INIT_CWD: "" } });
}

/** A daemon in a chat with bob at hello, with send-queue limit `queue`. */
function chattingDaemon(ip: string, queue = 64): FakeDaemon {
  const daemon = new FakeDaemon(ip);
  daemon.answer = (request) =>
    request.cmd === "hello"
      ? {
        v: 2,
        state: { phase: "established", peer: BOB },
        limits: { queue, text: 65468 },
      }
      : daemon.standard(request);
  return daemon;
}

// ---------------------------------------------------------------- scripted

processTest(
  "client: no daemon → the error once, on stderr, no bye (it never connected), exit 1 (§8.1, issue 8 defect 5)",
  async (procs) => {
    const alice = client(procs, "127.0.91.1", ["--name", "alice"]);
    await alice.closeStdin();
    strictEqual((await alice.exit()).code, 1);
    const message =
      `Daemon not reachable at 127.0.91.1:7778 — is \`${RUN_DAEMON} 127.0.91.1\` running?`;
    deepStrictEqual(alice.lines.stderr, [`simp: ${message}`]);
    deepStrictEqual(alice.lines.stdout, []);
    // With --json the error is also the JSON line a program reads, and no bye.
    const json = client(procs, "127.0.91.1", ["--name", "alice", "--json"]);
    await json.closeStdin();
    strictEqual((await json.exit()).code, 1);
    deepStrictEqual(json.lines.stdout.map((line) => JSON.parse(line)), [
      { type: "error", message, fatal: true },
    ]);
  },
);

processTest(
  "client: an address of another machine is refused before connecting, saying where to run the client (§7.2)",
  async (procs) => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no interface of this machine has it.
    const alice = client(procs, "192.0.2.1", ["--name", "alice"], [
      "--allow-sys=networkInterfaces",
    ]);
    await alice.closeStdin();
    strictEqual((await alice.exit()).code, 1);
    deepStrictEqual(alice.lines.stderr, [
      "simp: 192.0.2.1 is not an address of this machine: run the client on the daemon's machine, with the daemon's own IP address",
    ]);
  },
);

processTest(
  "client: a scripted session reads answers only when asked (§8)",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.2");
    try {
      const alice = client(procs, "127.0.91.2", ["--name", "alice"]);
      await alice.expect(MENU);
      // Everything at once: the "y" must wait for the invitation.
      await alice.write("2");
      await alice.write("y");
      await alice.expect("waiting for invitations");
      await new Promise((resolve) => setTimeout(resolve, 100));
      ok(!daemon.commands.includes("accept"), "y read too early");
      await daemon.event({ type: "invitation", ...BOB });
      await alice.expectAll(["invitation from bob at 127.0.0.2", ANSWER]);
      await daemon.until(() => daemon.commands.includes("accept"));
      await daemon.event({ type: "chat-started", ...BOB });
      await alice.expect(CHAT);
      await alice.write("hi bob");
      await alice.write("héllo");
      await alice.expect(/^not sent: .*non-ASCII.*: héllo$/);
      await alice.expect("sent #1: hi bob");
      await daemon.event({ type: "delivered", id: 1 });
      await daemon.event({ type: "message", name: "bob", text: "hi alice" });
      await alice.expect("delivered #1");
      await alice.expect("bob: hi alice");
      await alice.write("q");
      // A script's q ends like the end of input: héllo was not sent.
      await alice.expectAll(["1 of 2 messages not delivered", "bye"]);
      strictEqual((await alice.exit()).code, 1);
      deepStrictEqual(daemon.commands, ["hello", "accept", "send", "quit"]);
      deepStrictEqual(daemon.requests[0], {
        id: 1,
        cmd: "hello",
        v: 2,
        name: "alice",
      });
    } finally {
      await daemon.close();
    }
  },
);

processTest("client: the end of input quits like q (§8.4)", async (procs) => {
  const daemon = new FakeDaemon("127.0.91.3");
  try {
    const alice = client(procs, "127.0.91.3", ["--name", "alice"]);
    await alice.expect(MENU);
    await alice.closeStdin();
    strictEqual((await alice.exit()).code, 0);
    deepStrictEqual(daemon.commands, ["hello", "quit"]);
  } finally {
    await daemon.close();
  }
});

processTest(
  "client --json: one JSON object per line, the name asked for",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.4");
    try {
      const carol = client(procs, "127.0.91.4", ["--json"]);
      await carol.expect(
        '{"type":"prompt","ask":"name","text":"your user name (q = quit)"}',
      );
      await carol.write("carol");
      await carol.expect(/"type":"connected"/);
      await carol.write("1");
      await carol.write("127.0.0.9");
      await carol.expect('{"type":"inviting","ip":"127.0.0.9","port":7777}');
      await daemon.event({
        type: "busy",
        ip: "127.0.0.9",
        port: 7777,
        text: BUSY_TEXT,
      });
      await carol.expect(
        `{"type":"busy","ip":"127.0.0.9","port":7777,"text":"${BUSY_TEXT}"}`,
      );
      await carol.write("q");
      strictEqual((await carol.exit()).code, 0);
      for (const line of carol.lines.stdout) JSON.parse(line);
      deepStrictEqual(JSON.parse(carol.lines.stdout[1]), {
        type: "connected",
        ip: "127.0.91.4",
        port: 7778,
        name: "carol",
      });
      const hello = daemon.requests[0];
      strictEqual(hello.cmd === "hello" && hello.name, "carol");
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: SIGTERM quits cleanly, telling the daemon (§8.4)",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.5");
    try {
      const alice = client(procs, "127.0.91.5", ["--name", "alice"]);
      await alice.expect(MENU);
      alice.kill("SIGTERM");
      strictEqual((await alice.exit()).code, 0);
      deepStrictEqual(daemon.commands, ["hello", "quit"]);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: daemon-stopping ends the client with exit 1",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.6");
    try {
      const alice = client(procs, "127.0.91.6", ["--name", "alice"]);
      await alice.expect(MENU);
      await daemon.event({ type: "daemon-stopping" });
      await alice.expectAll(["daemon is stopping", "bye"]);
      strictEqual((await alice.exit()).code, 1);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: a piped file is sent pipelined within limits.queue, in order; at the end of input it waits for every delivery, exit 0 (§5.1, §9)",
  async (procs) => {
    const daemon = chattingDaemon("127.0.91.7", 3);
    try {
      const alice = client(procs, "127.0.91.7", ["--name", "alice"]);
      await alice.expect(CHAT);
      const texts = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`);
      for (const text of texts) await alice.write(text);
      await alice.closeStdin();
      const sends = () => daemon.requests.filter((r) => r.cmd === "send");
      // Three at once, without waiting for replies or deliveries.
      await daemon.until(() => sends().length === 3);
      await new Promise((resolve) => setTimeout(resolve, 200));
      strictEqual(
        sends().length,
        3,
        "never more than limits.queue outstanding",
      );
      for (let id = 1; id <= texts.length; id++) {
        await daemon.until(() => sends().length >= Math.min(id + 2, 10));
        await daemon.event({ type: "delivered", id });
      }
      strictEqual((await alice.exit()).code, 0);
      deepStrictEqual(
        sends().map((r) => r.cmd === "send" && r.text),
        texts,
      );
      deepStrictEqual(alice.grep(/^not sent/), []);
      strictEqual(alice.grep(/^delivered #/).length, texts.length);
      strictEqual(daemon.commands.at(-1), "quit");
      strictEqual(alice.lines.stdout.at(-1), "bye");
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: a huge piped file to a chat that delivers nothing is read only as far as the client can hold (stdin is paused)",
  async (procs) => {
    const daemon = chattingDaemon("127.0.91.13", 64);
    try {
      const alice = client(procs, "127.0.91.13", ["--name", "alice"]);
      await alice.expect(CHAT);
      // 100 chunks of 10,000 lines (~19 MB); nothing is ever delivered.
      const chunk = Array.from({ length: 10_000 }, (_, i) => `line ${i}`)
        .join("\n");
      let written = 0;
      const writing = (async () => {
        for (; written < 100; written++) await alice.write(chunk);
      })().catch(() => {}); // the pipe breaks when the client quits
      await daemon.until(() => daemon.commands.includes("send"));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      ok(written < 100, `all ${written} chunks were taken: stdin never paused`);
      strictEqual(
        daemon.requests.filter((r) => r.cmd === "send").length,
        64,
        "limits.queue sends, no more",
      );
      ok(
        (await rssKiB(alice.child.pid)) < 200 * 1024,
        "the client's memory stays bounded",
      );
      alice.kill("SIGTERM");
      strictEqual((await alice.exit()).code, 0);
      await writing;
      strictEqual(daemon.commands.at(-1), "quit");
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: at the end of input it waits for the outcome; undelivered messages give a summary line and exit 1 (§5.5)",
  async (procs) => {
    const daemon = chattingDaemon("127.0.91.8");
    try {
      const alice = client(procs, "127.0.91.8", ["--name", "alice"]);
      await alice.expect(CHAT);
      await alice.write("one");
      await alice.write("two");
      await alice.closeStdin();
      await alice.expect("sent #2: two");
      await new Promise((resolve) => setTimeout(resolve, 300));
      ok(!alice.exited, "the client must wait for the outcome of its messages");
      ok(!daemon.commands.includes("quit"), "quit too early");
      await daemon.event({ type: "delivered", id: 1 });
      await daemon.event({ type: "peer-lost", ...BOB, undelivered: 1 });
      await daemon.event({ type: "undelivered", id: 2, text: "two" });
      strictEqual((await alice.exit()).code, 1);
      deepStrictEqual(alice.lines.stdout.slice(-4), [
        "undelivered #2: two",
        MENU,
        "1 of 2 messages not delivered",
        "bye",
      ]);
      ok(daemon.commands.includes("quit"));
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: the end of input quits while waiting for invitations, even behind an unread line (§8.4)",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.9");
    try {
      const alice = client(procs, "127.0.91.9", ["--name", "alice"]);
      // printf '2\nhello\n' | simp client …
      await alice.write("2");
      await alice.write("hello");
      await alice.closeStdin();
      strictEqual((await alice.exit()).code, 0);
      ok(alice.lines.stdout.includes("waiting for invitations"));
      deepStrictEqual(alice.grep(/^error/), []);
      strictEqual(daemon.commands.at(-1), "quit");
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: a message line read as an answer after the chat ended is fatal, exit 1",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.10");
    try {
      const alice = client(procs, "127.0.91.10", ["--name", "alice"]);
      await alice.expect(MENU);
      // Written in one go, as a script would: the invitation is declined.
      for (const line of ["1", "127.0.0.2", "hello bob", "127.0.0.9"]) {
        await alice.write(line);
      }
      await alice.expect("inviting 127.0.0.2");
      await daemon.event({ type: "declined", ...BOB });
      strictEqual((await alice.exit()).code, 1);
      ok(
        alice.lines.stderr.some((line) =>
          line.startsWith(
            'simp: Invalid answer "hello bob" to the menu in scripted input: type 1 to start a new chat',
          )
        ),
      );
      ok(alice.lines.stdout.includes("declined by bob at 127.0.0.2"));
      strictEqual(alice.lines.stdout.at(-1), "bye");
      deepStrictEqual(daemon.commands, ["hello", "invite", "quit"]);
    } finally {
      await daemon.close();
    }
  },
);

// ------------------------------------------------- the daemon goes away

processTest(
  "client: the daemon closing the connection is one clear line and exit 1 within 1 s (§9)",
  async (procs) => {
    const daemon = chattingDaemon("127.0.91.11");
    try {
      const alice = client(procs, "127.0.91.11", ["--name", "alice"]);
      await alice.expect(CHAT);
      const start = Date.now();
      daemon.hangUp();
      const status = await alice.exit(1000);
      strictEqual(status.code, 1);
      ok(Date.now() - start < 1000, `took ${Date.now() - start} ms`);
      const message =
        `Lost the connection to the daemon at 127.0.91.11:7778: it stopped or was killed; start it again with \`${RUN_DAEMON} 127.0.91.11\`, then the client`;
      // The error once (stderr), then the end of the session on stdout.
      strictEqual(alice.lines.stdout.at(-1), "bye");
      ok(!alice.lines.stdout.some((line) => line.includes(message)));
      deepStrictEqual(alice.lines.stderr, [`simp: ${message}`]);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client: paused for 6 s (SIGSTOP) and resumed, it loses nothing and stays connected (§9)",
  async (procs) => {
    const daemon = chattingDaemon("127.0.91.12");
    try {
      const alice = client(procs, "127.0.91.12", ["--name", "alice"]);
      await alice.expect(CHAT);
      alice.kill("SIGSTOP");
      try {
        for (let i = 1; i <= 20; i++) {
          await daemon.event({ type: "message", name: "bob", text: `m${i}` });
        }
        await new Promise((resolve) => setTimeout(resolve, 6000));
      } finally {
        alice.kill("SIGCONT");
      }
      await alice.waitFor(
        "the 20 messages",
        (lines) => lines.includes("bob: m20"),
      );
      deepStrictEqual(
        alice.grep(/^bob: /),
        Array.from({ length: 20 }, (_, i) => `bob: m${i + 1}`),
      );
      // Still connected: a message goes out and comes back delivered.
      await alice.write("back");
      await alice.expect("sent #1: back");
      await daemon.event({ type: "delivered", id: 1 });
      await alice.expect("delivered #1");
      strictEqual(daemon.accepted, 1);
      ok(!alice.exited);
      await alice.write("q");
      strictEqual((await alice.exit()).code, 0);
    } finally {
      await daemon.close();
    }
  },
);

// ------------------------------------------------------ hostile daemons

/**
 * Connects a client to a fake daemon that answers hello normally, then
 * sends `hostile`; returns the client once it exited (or after `ms`).
 */
async function againstHostile(
  procs: ProcessGroup,
  ip: string,
  hostile: (daemon: FakeDaemon) => Promise<void>,
): Promise<{ alice: Proc; daemon: FakeDaemon }> {
  const daemon = chattingDaemon(ip);
  const alice = client(procs, ip, ["--name", "alice"]);
  await alice.expect(CHAT);
  await hostile(daemon);
  return { alice, daemon };
}

/** Expects one clear fatal line about what the daemon sent, and exit 1. */
async function expectProtocolError(alice: Proc, why: RegExp): Promise<void> {
  const status = await alice.exit(5000);
  strictEqual(status.code, 1);
  const stderr = alice.lines.stderr.join("\n");
  match(
    stderr,
    /^simp: The daemon at [\d.]+:7778 sent what this client cannot read/,
  );
  match(stderr, why);
  strictEqual(alice.lines.stderr.length, 1, "one line");
  strictEqual(alice.lines.stdout.at(-1), "bye");
}

processTest(
  "client vs hostile daemon: wrong types are refused with one clear line, no crash",
  async (procs) => {
    for (
      const [index, line] of [
        '{"event":{"type":"message","name":7,"text":"hi"}}',
        '{"event":{"type":"invitation","ip":"127.0.0.2","port":"7777","name":"x"}}',
        '{"event":"message"}',
        '{"re":1,"ok":"yes"}',
      ].entries()
    ) {
      const { alice, daemon } = await againstHostile(
        procs,
        `127.0.91.${20 + index}`,
        (daemon) => daemon.write(line + "\n"),
      );
      try {
        await expectProtocolError(alice, /Bad|must be|neither/);
      } finally {
        await daemon.close();
      }
    }
  },
);

processTest(
  "client vs hostile daemon: deep nesting is refused, no stack overflow",
  async (procs) => {
    const depth = 200_000;
    const nested = "[".repeat(depth) + "]".repeat(depth);
    const { alice, daemon } = await againstHostile(
      procs,
      "127.0.91.30",
      (daemon) =>
        daemon.write(
          `{"event":{"type":"message","name":${nested},"text":"x"}}\n`,
        ),
    );
    try {
      await expectProtocolError(alice, /Bad message event/);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client vs hostile daemon: a line over MAX_LINE_BYTES is a framing violation: the client says so and closes",
  async (procs) => {
    const { alice, daemon } = await againstHostile(
      procs,
      "127.0.91.31",
      async (daemon) => {
        const text = "x".repeat(MAX_LINE_BYTES + 10);
        await daemon.write(
          `{"event":{"type":"message","name":"bob","text":"${text}"}}\n`,
        ).catch(() => {}); // the client may close before it was all written
      },
    );
    try {
      await expectProtocolError(alice, /a line longer than 524288 bytes/);
      await daemon.until(() => daemon.clientClosed);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client vs hostile daemon: invalid UTF-8 is refused with one clear line",
  async (procs) => {
    const { alice, daemon } = await againstHostile(
      procs,
      "127.0.91.32",
      (daemon) =>
        daemon.write(
          new Uint8Array([
            ...new TextEncoder().encode('{"event":{"type":"message","name":"'),
            0xff,
            0xfe,
            ...new TextEncoder().encode('","text":"x"}}\n'),
          ]),
        ),
    );
    try {
      await expectProtocolError(alice, /not UTF-8/);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client vs hostile daemon: endless input without a newline stops at the line limit; memory stays bounded",
  async (procs) => {
    const { alice, daemon } = await againstHostile(
      procs,
      "127.0.91.33",
      async (daemon) => {
        const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
        // 16 MiB at most, far more than the limit: the client closes first.
        for (let i = 0; i < 256; i++) {
          try {
            await daemon.write(chunk);
          } catch {
            return; // the client closed the connection
          }
        }
      },
    );
    try {
      await expectProtocolError(alice, /a line longer than 524288 bytes/);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client vs hostile daemon: a never-ending stream of events is shown as it comes; the client neither crashes nor grows",
  async (procs) => {
    const daemon = chattingDaemon("127.0.91.34");
    try {
      // A JavaScript heap of 64 MB: a client that kept what it was sent
      // would run out of memory long before the 200 MB below went through.
      const alice = client(procs, "127.0.91.34", ["--name", "alice"], [
        "--v8-flags=--max-old-space-size=64",
      ]);
      await alice.expect(CHAT);
      const text = "y".repeat(4000);
      const batch = new TextEncoder().encode(
        `{"event":{"type":"message","name":"bob","text":"${text}"}}\n`.repeat(
          100,
        ),
      );
      const rss: number[] = [];
      // 50,000 events of 4 KB (200 MB), within 20 s at most.
      const until = Date.now() + 20_000;
      let sent = 0;
      while (Date.now() < until && sent < 50_000) {
        await daemon.write(batch);
        sent += 100;
        if (sent % 5000 === 0) rss.push(await rssKiB(alice.child.pid));
      }
      await daemon.event({ type: "message", name: "bob", text: "the end" });
      await alice.waitFor(
        "the last message",
        (lines) => lines.includes("bob: the end"),
        { timeoutMs: 30_000 },
      );
      ok(!alice.exited, "still running");
      strictEqual(alice.grep(/^bob: y+$/).length, sent);
      ok(sent * 4 >= 190 * 1024, `only ${sent} events of 4 KB were sent`);
      ok(Math.max(...rss) < 200 * 1024, `RSS ${JSON.stringify(rss)} KiB`);
      await alice.write("q");
      strictEqual((await alice.exit()).code, 0);
    } finally {
      await daemon.close();
    }
  },
);

processTest(
  "client vs hostile daemon: a reply that answers nothing, and an unknown error code, are handled",
  async (procs) => {
    const daemon = new FakeDaemon("127.0.91.35");
    daemon.answer = () => null;
    try {
      const alice = client(procs, "127.0.91.35", ["--name", "alice"]);
      await daemon.until(() => daemon.commands.includes("hello"));
      await daemon.write(
        '{"re":null,"ok":false,"error":"Go away\\u001b[2J","code":"teapot"}\n',
      );
      const status = await alice.exit();
      notStrictEqual(status.code, 0);
      deepStrictEqual(alice.lines.stderr, ["simp: Go away\\x1b[2J"]);
    } finally {
      await daemon.close();
    }
  },
);
