/**
 * Tests of `simp relay` on the command line: the parser
 * ({@linkcode parseRelayArgs}), then `mod.ts relay` as a subprocess — help,
 * refusals, a run with a log that two raw UDP sockets talk through, and the
 * counts it prints when stopped. Addresses 127.0.93.1x.
 */

import assert from "node:assert/strict";
import {
  helpText,
  parseCommandLine,
  parseRelayArgs,
  RELAY_REORDER_DELAY_MS,
  UsageError,
} from "../../lib/cli.ts";
import { NO_IMPAIRMENTS } from "../../lib/relay/core.ts";
import { ProcessGroup } from "../../tools/_processes.ts";

const BETWEEN = ["--between", "127.0.93.11", "127.0.93.12"];

/** Asserts that `fn` throws a one-line UsageError matching `pattern`. */
function assertUsageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), `One line: ${error.message}`);
    assert.match(error.message, /^[A-Z]/);
    assert.ok(!error.message.endsWith("."), error.message);
    assert.match(error.message, /\(see simp relay --help\)$/);
    return true;
  });
}

Deno.test("relay args: IP, --between and defaults (port 7777, no impairments)", () => {
  const options = parseRelayArgs(["127.0.93.13", ...BETWEEN, "--seed", "5"]);
  assert.deepEqual(options, {
    ip: "127.0.93.13",
    port: 7777,
    a: { ip: "127.0.93.11", port: 7777 },
    b: { ip: "127.0.93.12", port: 7777 },
    seed: 5,
    ab: { ...NO_IMPAIRMENTS, reorderDelay: RELAY_REORDER_DELAY_MS },
    ba: { ...NO_IMPAIRMENTS, reorderDelay: RELAY_REORDER_DELAY_MS },
  });
});

Deno.test("relay args: --between may come first, daemons may have ports", () => {
  const options = parseRelayArgs([
    "--between",
    "127.0.93.11:17777",
    "127.0.93.12:27777",
    "127.0.93.13",
    "--port",
    "7000",
  ]);
  assert.deepEqual(options.a, { ip: "127.0.93.11", port: 17777 });
  assert.deepEqual(options.b, { ip: "127.0.93.12", port: 27777 });
  assert.equal(options.port, 7000);
  assert.equal(options.ip, "127.0.93.13");
});

Deno.test("relay args: every impairment, for both directions or one", () => {
  const options = parseRelayArgs([
    "127.0.93.13",
    ...BETWEEN,
    "--loss",
    "10%",
    "--loss-ba",
    "0",
    "--dup",
    "2.5",
    "--reorder=30%",
    "--reorder-delay",
    "7.5",
    "--delay-ab",
    "3",
    "--corrupt",
    "1%",
    "--drop-first-ba",
    "4",
    "--duration",
    "1.5",
    "--log",
    "relay.jsonl",
  ]);
  assert.deepEqual(options.ab, {
    loss: 0.1,
    duplicate: 0.025,
    reorder: 0.3,
    reorderDelay: 7.5,
    delay: 3,
    corrupt: 0.01,
    dropFirst: 0,
  });
  assert.deepEqual(options.ba, {
    loss: 0,
    duplicate: 0.025,
    reorder: 0.3,
    reorderDelay: 7.5,
    delay: 0,
    corrupt: 0.01,
    dropFirst: 4,
  });
  assert.equal(options.durationMs, 1500);
  assert.equal(options.log, "relay.jsonl");
});

Deno.test("relay args: a one-direction option wins whatever the order", () => {
  const options = parseRelayArgs([
    "127.0.93.13",
    ...BETWEEN,
    "--loss-ab",
    "5",
    "--loss",
    "20",
  ]);
  assert.equal(options.ab.loss, 0.05);
  assert.equal(options.ba.loss, 0.2);
});

Deno.test("relay args: without --seed a random seed is drawn", () => {
  const seeds = new Set(
    Array.from(
      { length: 5 },
      () => parseRelayArgs(["127.0.93.13", ...BETWEEN]).seed,
    ),
  );
  assert.ok(seeds.size > 1);
  for (const seed of seeds) assert.ok(Number.isInteger(seed) && seed >= 0);
});

Deno.test("relay args: bad command lines are refused with a clear error", () => {
  const ip = "127.0.93.13";
  assertUsageError(() => parseRelayArgs(BETWEEN), /^Missing IP/);
  assertUsageError(() => parseRelayArgs([ip]), /^Missing --between A B/);
  assertUsageError(
    () => parseRelayArgs([ip, "--between", "127.0.93.11"]),
    /needs two addresses/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "--between", "127.0.93.11", "--loss", "1"]),
    /needs two addresses/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "--between=127.0.93.11", "127.0.93.12"]),
    /takes two addresses/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, ...BETWEEN]),
    /given twice/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "--between", "127.0.93.11", "127.0.93.11:7777"]),
    /two different daemons/,
  );
  assertUsageError(
    () => parseRelayArgs(["127.0.93.11", ...BETWEEN]),
    /cannot be 127\.0\.93\.11:7777/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "--between", "localhost", "127.0.93.12"]),
    /Invalid daemon address localhost/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "--between", "127.0.93.11:0", "127.0.93.12"]),
    /from 1 to 65535/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "--between", "0.0.0.0", "127.0.93.12"]),
    /Invalid daemon address/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--loss", "101%"]),
    /--loss must be a percentage from 0 to 100/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--dup-ab", "-1"]),
    /--dup-ab/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--delay", "1e3"]),
    /--delay must be a number of milliseconds/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--drop-first", "1.5"]),
    /--drop-first must be a whole number/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--seed", "4294967296"]),
    /--seed must be a whole number/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--duration", "0"]),
    /--duration must be a number of seconds/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--log", ""]),
    /--log needs a file name/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, ...BETWEEN, "--los", "1"]),
    /Unknown option --los/,
  );
  assertUsageError(
    () => parseRelayArgs([ip, "127.0.93.14", ...BETWEEN]),
    /Unexpected argument 127\.0\.93\.14/,
  );
});

Deno.test("relay args: simp relay --help is the relay's help, listed in simp --help", () => {
  const command = parseCommandLine(["relay", "--help"]);
  assert.deepEqual(command, { kind: "help", text: helpText("relay") });
  assert.match(helpText("relay"), /^Usage: simp relay IP --between A B/);
  for (
    const option of [
      "--loss",
      "--dup",
      "--reorder",
      "--reorder-delay",
      "--delay",
      "--corrupt",
      "--drop-first",
      "--seed",
      "--duration",
      "--log",
      "--port",
    ]
  ) {
    assert.ok(helpText("relay").includes(`  ${option} `), option);
  }
  assert.match(helpText("simp"), /simp relay IP --between A B/);
  const relay = parseCommandLine(["relay", "127.0.93.13", ...BETWEEN]);
  assert.equal(relay.kind, "relay");
});

// ---------------------------------------------------------------------------
// The relay as a process

/** Runs `mod.ts relay args` to the end; returns its exit code and output. */
async function simpRelay(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "relay", ...args],
    cwd: new URL("../../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("relay process: a bad command line exits 2 with one line on stderr", async () => {
  const { code, stdout, stderr } = await simpRelay(["127.0.93.13"]);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^simp: Missing --between A B: .*\n$/);
});

Deno.test("relay process: an address in use exits 1 saying what to do", async () => {
  const socket = Deno.listenDatagram({
    hostname: "127.0.93.13",
    port: 7777,
    transport: "udp",
  });
  const { code, stderr } = await simpRelay(["127.0.93.13", ...BETWEEN]);
  socket.close();
  assert.equal(code, 1);
  assert.match(
    stderr,
    /^simp: Cannot listen on 127\.0\.93\.13:7777: port 7777 is in use there — give the relay an address of its own/,
  );
});

Deno.test("relay process: relays between two sockets as their peer, logs JSON lines, prints counts on SIGTERM", async () => {
  // The log goes to stdout (the tests may not write files): written out
  // when the relay stops, before the counts.
  const log = "/dev/stdout";
  const procs = new ProcessGroup();
  const a = Deno.listenDatagram({
    hostname: "127.0.93.11",
    port: 7777,
    transport: "udp",
  });
  const b = Deno.listenDatagram({
    hostname: "127.0.93.12",
    port: 7777,
    transport: "udp",
  });
  try {
    const relay = procs.spawn("relay", [
      "run",
      "-A",
      "mod.ts",
      "relay",
      "127.0.93.13",
      ...BETWEEN,
      "--drop-first-ab",
      "1",
      "--seed",
      "9",
      "--log",
      log,
    ], { stdin: false, env: { NO_COLOR: "1" } });
    await relay.expect(
      "simp relay listening on 127.0.93.13:7777 between 127.0.93.11:7777 (A) and 127.0.93.12:7777 (B), seed 9",
      { stream: "stderr" },
    );
    await relay.expectAll(["A→B: drop first 1", "B→A: none"], {
      stream: "stderr",
    });
    const to = {
      transport: "udp" as const,
      hostname: "127.0.93.13",
      port: 7777,
    };
    await a.send(Uint8Array.of(1), to); // dropped (the first)
    await a.send(Uint8Array.of(2, 3), to);
    const [fromA, via1] = await b.receive();
    assert.deepEqual(fromA, Uint8Array.of(2, 3));
    assert.deepEqual(
      {
        ip: (via1 as Deno.NetAddr).hostname,
        port: (via1 as Deno.NetAddr).port,
      },
      { ip: "127.0.93.13", port: 7777 },
    );
    await b.send(Uint8Array.of(4), to);
    const [fromB, via2] = await a.receive();
    assert.deepEqual(fromB, Uint8Array.of(4));
    assert.equal((via2 as Deno.NetAddr).hostname, "127.0.93.13");
    const status = await relay.stop("SIGTERM");
    assert.equal(status.code, 0);
    const records = relay.lines.stdout.slice(0, -2).map((line) =>
      JSON.parse(line)
    );
    assert.deepEqual(relay.lines.stdout.slice(-2), [
      "A→B 127.0.93.11:7777 → 127.0.93.12:7777: received 2, forwarded 1, dropped 1, duplicated 0, corrupted 0, reordered 0",
      "B→A 127.0.93.12:7777 → 127.0.93.11:7777: received 1, forwarded 1, dropped 0, duplicated 0, corrupted 0, reordered 0",
    ]);
    assert.deepEqual(
      records.map(({ t: _t, ...rest }) => rest),
      [
        {
          from: "127.0.93.11:7777",
          to: "127.0.93.12:7777",
          fate: "dropped",
          delay: 0,
          dup: false,
          corrupted: false,
          hex: "01",
        },
        {
          from: "127.0.93.11:7777",
          to: "127.0.93.12:7777",
          fate: "forwarded",
          delay: 0,
          dup: false,
          corrupted: false,
          hex: "0203",
        },
        {
          from: "127.0.93.12:7777",
          to: "127.0.93.11:7777",
          fate: "forwarded",
          delay: 0,
          dup: false,
          corrupted: false,
          hex: "04",
        },
      ],
    );
    for (const record of records) {
      assert.ok(typeof record.t === "number" && record.t >= 0);
    }
    assert.ok(records[0].t <= records[1].t && records[1].t <= records[2].t);
  } catch (error) {
    throw new Error(`${error}\n${procs.report()}`, { cause: error });
  } finally {
    a.close();
    b.close();
    await procs.close();
  }
});

Deno.test("relay process: --duration stops it by itself", async () => {
  const { code, stdout } = await simpRelay([
    "127.0.93.13",
    ...BETWEEN,
    "--duration",
    "0.2",
  ]);
  assert.equal(code, 0);
  assert.match(
    stdout,
    /^A→B 127\.0\.93\.11:7777 → 127\.0\.93\.12:7777: received 0, /,
  );
});

Deno.test("relay process: a log that cannot be written exits 1 saying so", async () => {
  const { code, stderr } = await simpRelay([
    "127.0.93.13",
    ...BETWEEN,
    "--log",
    "/nonexistent-dir/relay.jsonl",
  ]);
  assert.equal(code, 1);
  assert.match(
    stderr,
    /^simp: Cannot write the log \/nonexistent-dir\/relay\.jsonl: .* — give a file in a directory you may write to\n$/,
  );
});
