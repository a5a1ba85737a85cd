/**
 * The parts of `simp conformance` that need no daemon: its own codec (and
 * that it agrees with simp's on what is malformed), the driver protocol
 * (replies, a driver process, the interactive driver), the report format,
 * check selection, and the command line.
 */

import {
  deepStrictEqual,
  ok,
  rejects,
  strictEqual,
  throws,
} from "node:assert/strict";
import {
  ACK,
  CHAT,
  chat,
  CONTROL,
  control,
  describe,
  encode,
  ERR,
  FIN,
  hex,
  parse,
  problemOf,
  SYN,
  SYN_ACK,
} from "../../lib/conformance/_codec.ts";
import {
  InteractiveDriver,
  parseDriverReply,
  ProcessDriver,
  type Terminal,
} from "../../lib/conformance/driver.ts";
import {
  type CheckResult,
  formatResult,
  formatSummary,
} from "../../lib/conformance/report.ts";
import { listChecks, selects } from "../../lib/conformance/runner.ts";
import {
  decodeDatagram,
  encodeDatagram,
  Op,
  Type,
} from "../../lib/wire/datagram.ts";
import { parseCommandLine, UsageError } from "../../lib/cli.ts";

// ---------------------------------------------------------------------------
// The codec (§2)

Deno.test("codec: a SYN from alice is the bare header of §2, byte for byte", () => {
  strictEqual(
    hex(control(SYN, 0, "alice")),
    "010200616c696365" + "00".repeat(27) + "00000000",
  );
  const bytes = chat(1, "bob", "hi");
  strictEqual(hex(bytes.subarray(35)), "000000026869");
  deepStrictEqual(parse(bytes), {
    type: CHAT,
    op: 1,
    seq: 1,
    user: "bob",
    length: 2,
    payload: "hi",
  });
  strictEqual(describe(control(SYN_ACK, 0, "bob")), 'SYN+ACK seq=0 user="bob"');
  strictEqual(describe(new Uint8Array([1, 2])), "<2 bytes 0102>");
});

Deno.test("codec: each rule of §2 broken alone is named; simp's own codec rejects the same datagrams", () => {
  const broken: [Uint8Array, RegExp][] = [
    [control(SYN, 0, "a").subarray(0, 38), /fewer than 39/],
    [encode({ type: CONTROL, op: SYN, seq: 0, length: 1 }), /Length says 1/],
    [encode({ type: 3, op: SYN, seq: 0 }), /unknown Type 0x03/],
    [encode({ type: CONTROL, op: 0x05, seq: 0 }), /Operation 0x05/],
    [encode({ type: CHAT, op: 0x02, seq: 0, user: "a" }), /Operation 0x02/],
    [encode({ type: CONTROL, op: FIN, seq: 2 }), /Sequence 2/],
    [chat(0, "", "x"), /empty User/],
  ];
  for (const [bytes, want] of broken) {
    const problem = problemOf(bytes);
    ok(problem !== undefined && want.test(problem), `${problem} ~ ${want}`);
    throws(() => decodeDatagram(bytes), `simp decodes ${describe(bytes)}`);
  }
  // What a sender must not do, though a receiver takes it (§2.3, §2.4).
  ok(/0x80/.test(problemOf(chat(0, "a", "caf\xe9"))!));
  ok(/payload of 1 bytes on ACK/.test(problemOf(control(ACK, 0, "a", "x"))!));
  ok(/after the name's NUL/.test(problemOf(control(ACK, 0, "a\0b"))!));
});

Deno.test("codec: every datagram simp's codec encodes is well-formed to the battery", () => {
  const ops = [Op.SYN, Op.ACK, Op.SYN_ACK, Op.FIN] as const;
  for (const op of ops) {
    for (const seq of [0, 1] as const) {
      const bytes = encodeDatagram({
        type: Type.CONTROL,
        op,
        seq,
        user: "alice",
        payload: "",
      });
      strictEqual(problemOf(bytes), undefined, describe(bytes));
    }
  }
  const err = encodeDatagram({
    type: Type.CONTROL,
    op: Op.ERR,
    seq: 0,
    user: "",
    payload: "User already in another chat",
  });
  strictEqual(problemOf(err), undefined);
  deepStrictEqual(err, control(ERR, 0, "", "User already in another chat"));
  const message = encodeDatagram({
    type: Type.CHAT,
    op: Op.CHAT,
    seq: 1,
    user: "bob",
    payload: "hello",
  });
  deepStrictEqual(message, chat(1, "bob", "hello"));
});

// ---------------------------------------------------------------------------
// The driver protocol

Deno.test("driver replies: ok, shown, error, unsupported; anything else is a clear error", () => {
  deepStrictEqual(parseDriverReply('{"ok":true}', "accept"), { ok: true });
  deepStrictEqual(parseDriverReply('{"ok":true,"shown":["a","b"]}', "shown"), {
    ok: true,
    shown: ["a", "b"],
  });
  deepStrictEqual(parseDriverReply('{"ok":false,"error":"no"}', "send"), {
    ok: false,
    error: "no",
  });
  deepStrictEqual(
    parseDriverReply('{"ok":false,"unsupported":true}', "invite"),
    { ok: false, unsupported: true },
  );
  throws(() => parseDriverReply("yes", "reset"), /not JSON/);
  throws(() => parseDriverReply("[1]", "reset"), /not a JSON object/);
  throws(() => parseDriverReply('{"ok":1}', "reset"), /needs "ok"/);
  throws(() => parseDriverReply('{"ok":true}', "shown"), /array of strings/);
  throws(
    () => parseDriverReply('{"ok":true,"shown":[1]}', "shown"),
    /array of strings/,
  );
});

Deno.test("ProcessDriver: one request line in, one reply line out; a driver that ends or stays silent is a clear error", async () => {
  const echo = new ProcessDriver(
    `while read -r line; do case "$line" in *shown*) echo '{"ok":true,"shown":["hi"]}';; *send*) echo '{"ok":false,"unsupported":true}';; *) echo '{"ok":true}';; esac; done`,
  );
  try {
    deepStrictEqual(await echo.request({ do: "reset" }), { ok: true });
    deepStrictEqual(await echo.request({ do: "shown" }), {
      ok: true,
      shown: ["hi"],
    });
    deepStrictEqual(await echo.request({ do: "send", text: "x" }), {
      ok: false,
      unsupported: true,
    });
  } finally {
    await echo.close();
  }
  const quitter = new ProcessDriver("read -r line; exit 3");
  try {
    await rejects(
      quitter.request({ do: "reset" }),
      /driver ended \(exit code 3/,
    );
    await rejects(quitter.request({ do: "reset" }), /driver ended/);
  } finally {
    await quitter.close();
  }
  const silent = new ProcessDriver("cat > /dev/null", { replyTimeoutMs: 200 });
  try {
    await rejects(
      silent.request({ do: "accept" }),
      /did not answer \{"do":"accept"\} within 200 ms/,
    );
  } finally {
    await silent.close();
  }
});

Deno.test("InteractiveDriver: tells the person what to do; Enter is done, s is unsupported; shown is typed line by line", async () => {
  const input = ["", "s", "hello", "world", ""];
  const prompts: string[] = [];
  const terminal: Terminal = {
    write: (text) => prompts.push(text),
    readLine: () => Promise.resolve(input.shift()),
  };
  const driver = new InteractiveDriver(terminal, {
    peerIp: "127.0.0.77",
    peerName: "tester",
  });
  deepStrictEqual(await driver.request({ do: "accept" }), { ok: true });
  ok(
    prompts[0].includes(
      'Accept the invitation from 127.0.0.77 (user "tester") now',
    ),
    prompts[0],
  );
  deepStrictEqual(await driver.request({ do: "send", text: "m1" }), {
    ok: false,
    unsupported: true,
  });
  ok(prompts[1].includes("exactly: m1"), prompts[1]);
  deepStrictEqual(await driver.request({ do: "shown" }), {
    ok: true,
    shown: ["hello", "world"],
  });
  // End of input: nothing more can be done.
  deepStrictEqual(await driver.request({ do: "leave" }), {
    ok: false,
    unsupported: true,
  });
});

// ---------------------------------------------------------------------------
// Report, selection, command line

Deno.test("report: one line per PASS and SKIP; a FAIL adds expected, instead and the datagrams with times; the summary line", () => {
  const base: CheckResult = {
    id: "chat.retransmit",
    spec: "§5.2",
    title: "resent",
    verdict: "PASS",
    notes: [],
    durationMs: 5,
    trace: [],
  };
  deepStrictEqual(formatResult(base), ["PASS chat.retransmit (§5.2): resent"]);
  deepStrictEqual(formatResult({ ...base, notes: ["n1", "n2"] }), [
    "PASS chat.retransmit (§5.2): resent (n1; n2)",
  ]);
  deepStrictEqual(formatResult({ ...base, verdict: "SKIP", reason: "why" }), [
    "SKIP chat.retransmit (§5.2): resent — why",
  ]);
  deepStrictEqual(
    formatResult({
      ...base,
      verdict: "FAIL",
      expected: "CHAT again",
      reason: "nothing came",
      trace: [{
        t: 1.5,
        from: "127.0.0.5:7777",
        to: "127.0.0.77:7777",
        what: 'CHAT seq=0 user="a" "x"',
        hex: "",
      }],
    }),
    [
      "FAIL chat.retransmit (§5.2): resent",
      "     expected: CHAT again",
      "     instead:  nothing came",
      "     datagrams (time since the check began):",
      '       +0.002 s  127.0.0.5:7777 → 127.0.0.77:7777  CHAT seq=0 user="a" "x"',
    ],
  );
  strictEqual(
    formatSummary({ passed: 3, failed: 1, skipped: 2 }),
    "3 passed, 1 failed, 2 skipped",
  );
});

Deno.test("--only selects ids, groups and * patterns; every check id is unique and cites a §", () => {
  ok(selects(undefined, "chat.retransmit"));
  ok(selects("chat", "chat.retransmit"));
  ok(!selects("cha", "chat.retransmit"));
  ok(selects("busy.responder, chat.retransmit", "chat.retransmit"));
  ok(selects("*retransmit", "handshake.syn-retransmit"));
  ok(selects("*.retransmit", "chat.retransmit"));
  ok(!selects("*.retransmit", "handshake.syn-retransmit"));
  const ids = listChecks().map((c) => c.id);
  strictEqual(new Set(ids).size, ids.length);
  ok(listChecks().every((c) => /^§\d/.test(c.spec)));
});

Deno.test("command line: simp conformance TARGET_IP with its options, defaults off 127.0.0.1/2, and clear errors", () => {
  const command = parseCommandLine(["conformance", "127.0.0.5"]);
  strictEqual(command.kind, "conformance");
  if (command.kind !== "conformance") return;
  deepStrictEqual(command.options, {
    target: "127.0.0.5",
    port: 7777,
    peerIp: "127.0.0.77",
    thirdIp: "127.0.0.78",
    timeoutMs: 5000,
    toleranceMs: 1050,
    interactive: false,
  });
  const full = parseCommandLine([
    "conformance",
    "127.0.95.10",
    "--port=7000",
    "--peer-ip",
    "127.0.95.11",
    "--third-ip",
    "127.0.95.12",
    "--timeout",
    "0.3",
    "--tolerance",
    "0.2",
    "--driver",
    "./drive",
    "--json",
    "out.json",
    "--only",
    "chat",
  ]);
  deepStrictEqual(full.kind === "conformance" && full.options, {
    target: "127.0.95.10",
    port: 7000,
    peerIp: "127.0.95.11",
    thirdIp: "127.0.95.12",
    timeoutMs: 300,
    toleranceMs: 200,
    interactive: false,
    driver: "./drive",
    json: "out.json",
    only: "chat",
  });
  const help = parseCommandLine(["conformance", "--help"]);
  ok(help.kind === "help" && help.text.includes("--driver CMD"));
  ok(
    (parseCommandLine(["--help"]) as { text: string }).text.includes(
      "simp conformance TARGET_IP",
    ),
  );
  const bad: [string[], RegExp][] = [
    [[], /Missing TARGET_IP/],
    [["127.0.0.5", "--peer-ip", "127.0.0.5"], /three different addresses/],
    [["127.0.0.5", "--third-ip", "nope"], /--third-ip must be an IPv4/],
    [["127.0.0.5", "--driver", "x", "--interactive"], /not both/],
    [["127.0.0.5", "--driver", " "], /needs a command/],
    [["127.0.0.5", "--timeout", "0"], /--timeout must be a number/],
    [["127.0.0.5", "--frob"], /Unknown option --frob/],
  ];
  for (const [args, want] of bad) {
    throws(
      () => parseCommandLine(["conformance", ...args]),
      (e: unknown) =>
        e instanceof UsageError && want.test(e.message) &&
        e.message.endsWith("(see simp conformance --help)"),
      args.join(" "),
    );
  }
});
