/**
 * Tests of the `simp` command line: the pure parsers of lib/cli.ts, then a
 * few runs of `mod.ts` as a subprocess.
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import {
  CLIENT_DEFAULTS,
  DAEMON_DEFAULTS,
  helpText,
  parseClientArgs,
  parseCommandLine,
  parseDaemonArgs,
  parseLadderArgs,
  UsageError,
} from "../lib/cli.ts";
import { CLIENT_PORT, SIMP_PORT } from "../lib/link/protocol.ts";
import { isIPv4 } from "../lib/address.ts";

/** Asserts that `fn` throws a one-line UsageError matching `pattern`. */
function assertUsageError(fn: () => unknown, pattern: RegExp): void {
  throws(fn, (error: unknown) => {
    ok(error instanceof UsageError, String(error));
    ok(pattern.test(error.message), error.message);
    ok(!error.message.includes("\n"), `One line: ${error.message}`);
    ok(/^[A-Z]/.test(error.message), `Capitalised: ${error.message}`);
    ok(!error.message.endsWith("."), `No trailing period: ${error.message}`);
    return true;
  });
}

// ---------------------------------------------------------------------------
// simp daemon

Deno.test("daemon: defaults are 127.0.0.1, ports 7777/7778, 5 s, 5 retries, a 60 s invitation limit (§1.1, §4.6, §5.2, §5.5)", () => {
  deepStrictEqual(parseDaemonArgs([]), {
    ip: "127.0.0.1",
    port: 7777,
    clientPort: 7778,
    timeoutMs: 5000,
    retries: 5,
    adaptiveTimeout: false,
    minTimeoutMs: 2,
    inviteLimitMs: 60_000,
    autoAccept: false,
    logLevel: "info",
    logFormat: "text",
  });
  deepStrictEqual(parseDaemonArgs([]), { ...DAEMON_DEFAULTS });
});

Deno.test("daemon: every option is parsed", () => {
  deepStrictEqual(
    parseDaemonArgs([
      "127.0.77.1",
      "--port",
      "17777",
      "--client-port=17778",
      "--timeout",
      "0.25",
      "--retries",
      "0",
      "--adaptive-timeout",
      "--min-timeout",
      "0.003",
      "--invite-limit",
      "90",
      "--auto-accept",
      "--log-level",
      "debug",
      "--log-format",
      "json",
    ]),
    {
      ip: "127.0.77.1",
      port: 17777,
      clientPort: 17778,
      timeoutMs: 250,
      retries: 0,
      adaptiveTimeout: true,
      minTimeoutMs: 3,
      inviteLimitMs: 90_000,
      autoAccept: true,
      logLevel: "debug",
      logFormat: "json",
    },
  );
});

Deno.test("daemon: options may come before the IP", () => {
  strictEqual(
    parseDaemonArgs(["--auto-accept", "127.0.77.2"]).ip,
    "127.0.77.2",
  );
});

Deno.test("daemon: --timeout takes decimals and must be > 0", () => {
  strictEqual(parseDaemonArgs(["--timeout", "2"]).timeoutMs, 2000);
  strictEqual(parseDaemonArgs(["--timeout", ".5"]).timeoutMs, 500);
  strictEqual(parseDaemonArgs(["--timeout", "1.5"]).timeoutMs, 1500);
  for (
    const bad of ["0", "0.0", "-1", "abc", "1e3", "", "Infinity", "100000"]
  ) {
    assertUsageError(
      () => parseDaemonArgs([`--timeout=${bad}`]),
      /^Option --timeout must be a number of seconds greater than 0/,
    );
  }
});

Deno.test("daemon: --invite-limit sets the invitation limit in seconds, decimals allowed, > 0 (§4.6)", () => {
  strictEqual(
    parseDaemonArgs(["--invite-limit", "120"]).inviteLimitMs,
    120_000,
  );
  strictEqual(parseDaemonArgs(["--invite-limit=2.5"]).inviteLimitMs, 2500);
  ok(helpText("daemon").includes("--invite-limit SECONDS"));
  for (const bad of ["0", "-5", "abc", "1e3", "", "Infinity", "100000"]) {
    assertUsageError(
      () => parseDaemonArgs([`--invite-limit=${bad}`]),
      /^Option --invite-limit must be a number of seconds greater than 0 and at most 86400, not .* \(see simp daemon --help\)$/,
    );
  }
});

Deno.test("daemon: --adaptive-timeout is off by default; --min-timeout bounds it, in seconds, at most --timeout (§5.6)", () => {
  strictEqual(parseDaemonArgs([]).adaptiveTimeout, false);
  const adaptive = parseDaemonArgs(["--adaptive-timeout"]);
  strictEqual(adaptive.adaptiveTimeout, true);
  strictEqual(adaptive.minTimeoutMs, 2);
  strictEqual(adaptive.timeoutMs, 5000, "the fixed timeout stays the bound");
  strictEqual(
    parseDaemonArgs(["--adaptive-timeout", "--min-timeout", ".05"])
      .minTimeoutMs,
    50,
  );
  strictEqual(
    parseDaemonArgs(["--min-timeout=1", "--adaptive-timeout", "--timeout=1"])
      .minTimeoutMs,
    1000,
    "in any order",
  );
  assertUsageError(
    () => parseDaemonArgs(["--min-timeout", "0.5"]),
    /^Option --min-timeout bounds the adaptive timeout: add --adaptive-timeout \(see simp daemon --help\)$/,
  );
  assertUsageError(
    () =>
      parseDaemonArgs([
        "--adaptive-timeout",
        "--min-timeout",
        "2",
        "--timeout",
        "1",
      ]),
    /^Option --min-timeout \(2 s\) must not exceed --timeout \(1 s\): lower it or raise --timeout/,
  );
  for (const bad of ["0", "-1", "abc", ""]) {
    assertUsageError(
      () => parseDaemonArgs(["--adaptive-timeout", `--min-timeout=${bad}`]),
      /^Option --min-timeout must be a number of seconds greater than 0/,
    );
  }
  assertUsageError(
    () => parseDaemonArgs(["--adaptive-timeout=yes"]),
    /^Option --adaptive-timeout takes no value/,
  );
});

Deno.test("daemon: --retries must be a whole number ≥ 0", () => {
  strictEqual(parseDaemonArgs(["--retries", "12"]).retries, 12);
  for (const bad of ["-1", "1.5", "x", "", "99999999999999999999"]) {
    assertUsageError(
      () => parseDaemonArgs([`--retries=${bad}`]),
      /^Option --retries must be a whole number/,
    );
  }
});

Deno.test("daemon: ports must be integers from 1 to 65535", () => {
  strictEqual(parseDaemonArgs(["--port", "1"]).port, 1);
  strictEqual(parseDaemonArgs(["--port", "65535"]).port, 65535);
  for (const bad of ["0", "65536", "-1", "7777.5", "http", "", "0x1e61"]) {
    assertUsageError(
      () => parseDaemonArgs([`--port=${bad}`]),
      /^Option --port must be an integer from 1 to 65535/,
    );
    assertUsageError(
      () => parseDaemonArgs([`--client-port=${bad}`]),
      /^Option --client-port must be an integer from 1 to 65535/,
    );
  }
});

Deno.test("daemon: --port and --client-port must differ", () => {
  assertUsageError(
    () => parseDaemonArgs(["--port", "7778"]),
    /--port and --client-port must differ/,
  );
});

Deno.test("daemon: the IP must be an IPv4 dotted quad (or localhost)", () => {
  for (
    const bad of [
      "localhost6",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "01.2.3.4",
      "::1",
      "1.2.3.-4",
    ]
  ) {
    assertUsageError(
      () => parseDaemonArgs([bad]),
      /^Invalid IP address .*give an IPv4 address such as 127\.0\.0\.1/,
    );
  }
});

Deno.test("daemon and client: the wildcard, broadcast, multicast and reserved addresses are refused as the daemon's IP", () => {
  for (
    const [ip, what] of [
      ["0.0.0.0", "the wildcard address"],
      ["255.255.255.255", "the broadcast address"],
      ["224.0.0.1", "a multicast address"],
      ["239.1.2.3", "a multicast address"],
      ["240.0.0.1", "a reserved address (240.0.0.0/4)"],
      ["254.255.255.255", "a reserved address (240.0.0.0/4)"],
    ]
  ) {
    for (
      const [parse, see] of [
        [parseDaemonArgs, "simp daemon --help"],
        [parseClientArgs, "simp client --help"],
      ] as const
    ) {
      assertUsageError(
        () => parse([ip]),
        new RegExp(
          `^IP address ${ip.replaceAll(".", "\\.")} is ${
            what.replace(/[.()]/g, "\\$&")
          }, not one daemon's: give the daemon's own IPv4 address such as 127\\.0\\.0\\.1 \\(see ${see}\\)$`,
        ),
      );
    }
  }
  // The neighbour of those ranges is an ordinary address.
  strictEqual(parseDaemonArgs(["223.255.255.255"]).ip, "223.255.255.255");
  strictEqual(parseClientArgs(["223.255.255.255"]).ip, "223.255.255.255");
});

Deno.test("the default ports are the named constants SIMP_PORT and CLIENT_PORT (§1.1)", () => {
  strictEqual(SIMP_PORT, 7777);
  strictEqual(CLIENT_PORT, 7778);
  strictEqual(DAEMON_DEFAULTS.port, SIMP_PORT);
  strictEqual(DAEMON_DEFAULTS.clientPort, CLIENT_PORT);
  strictEqual(CLIENT_DEFAULTS.port, CLIENT_PORT);
  ok(helpText("daemon").includes(`(default ${SIMP_PORT})`));
});

Deno.test("daemon: a second positional argument is refused", () => {
  assertUsageError(
    () => parseDaemonArgs(["127.0.77.1", "127.0.77.2"]),
    /^Unexpected argument 127\.0\.77\.2: simp daemon takes one IP address \(see simp daemon --help\)$/,
  );
});

Deno.test("daemon: an unknown option is refused, naming it", () => {
  assertUsageError(
    () => parseDaemonArgs(["--foo"]),
    /^Unknown option --foo \(see simp daemon --help\)$/,
  );
  assertUsageError(() => parseDaemonArgs(["-x"]), /^Unknown option -x /);
  // A client option is not a daemon option.
  assertUsageError(
    () => parseDaemonArgs(["--json"]),
    /^Unknown option --json /,
  );
});

Deno.test("localhost is taken for 127.0.0.1 where an IP is asked for", () => {
  strictEqual(parseClientArgs(["localhost"]).ip, "127.0.0.1");
  strictEqual(parseDaemonArgs(["LocalHost"]).ip, "127.0.0.1");
});

Deno.test("a misspelled option or command gets did you mean", () => {
  assertUsageError(
    () => parseDaemonArgs(["--timout", "2"]),
    /^Unknown option --timout: did you mean --timeout\? \(see simp daemon --help\)$/,
  );
  assertUsageError(
    () => parseClientArgs(["--jsno"]),
    /^Unknown option --jsno: did you mean --json\? /,
  );
  assertUsageError(
    () => parseCommandLine(["deamon"]),
    /^Unknown command deamon: did you mean daemon\? \(see simp --help\)$/,
  );
  assertUsageError(
    () => parseCommandLine(["--verison"]),
    /^Unknown option --verison: did you mean --version\? /,
  );
});

Deno.test("daemon: --name is the user name sent until a client connects", () => {
  strictEqual(parseDaemonArgs(["--name", "robot"]).name, "robot");
  assertUsageError(
    () => parseDaemonArgs(["--name", "tr\u00e9s"]),
    /^Invalid --name: User name must be plain ASCII/,
  );
  assertUsageError(() => parseDaemonArgs(["--name", ""]), /must not be empty/);
});

Deno.test("daemon: an option without its value is refused", () => {
  assertUsageError(
    () => parseDaemonArgs(["--port"]),
    /^Option --port needs a value/,
  );
  assertUsageError(
    () => parseDaemonArgs(["--port", "-5"]),
    /^Option --port needs a value; write --port=VALUE/,
  );
});

Deno.test("daemon: a flag given a value is refused", () => {
  assertUsageError(
    () => parseDaemonArgs(["--auto-accept=yes"]),
    /^Option --auto-accept takes no value/,
  );
});

Deno.test("daemon: --log-level and --log-format take only their listed values", () => {
  for (const level of ["trace", "debug", "info", "warning", "error"]) {
    strictEqual(parseDaemonArgs(["--log-level", level]).logLevel, level);
  }
  assertUsageError(
    () => parseDaemonArgs(["--log-level", "verbose"]),
    /^Option --log-level must be one of trace, debug, info, warning, error, not verbose/,
  );
  assertUsageError(
    () => parseDaemonArgs(["--log-format", "xml"]),
    /^Option --log-format must be text or json, not xml/,
  );
});

Deno.test("daemon: a value with control characters stays on one line in the error", () => {
  assertUsageError(() => parseDaemonArgs(["--port=1\n2"]), /not "1\\n2"/);
  assertUsageError(() => parseDaemonArgs(["bad\nip"]), /"bad\\nip"/);
});

// ---------------------------------------------------------------------------
// simp client

Deno.test("client: defaults are 127.0.0.1:7778, no name, text view, warning logs", () => {
  deepStrictEqual(parseClientArgs([]), {
    ip: "127.0.0.1",
    port: 7778,
    json: false,
    logLevel: "warning",
    logFormat: "text",
  });
  deepStrictEqual(parseClientArgs([]), { ...CLIENT_DEFAULTS });
});

Deno.test("client: every option is parsed", () => {
  deepStrictEqual(
    parseClientArgs([
      "127.0.77.3",
      "--port",
      "17778",
      "--name",
      "alice",
      "--json",
      "--log-level",
      "error",
      "--log-format",
      "json",
    ]),
    {
      ip: "127.0.77.3",
      port: 17778,
      name: "alice",
      json: true,
      logLevel: "error",
      logFormat: "json",
    },
  );
});

Deno.test("client: --name must be a name we may send (§2.2, §2.3)", () => {
  strictEqual(parseClientArgs(["--name", "a".repeat(32)]).name, "a".repeat(32));
  strictEqual(parseClientArgs(["--name", "Bob Smith"]).name, "Bob Smith");
  assertUsageError(
    () => parseClientArgs(["--name", "a".repeat(33)]),
    /^Invalid --name: User name is 33 characters long; the limit is 32/,
  );
  assertUsageError(
    () => parseClientArgs(["--name", "zoë"]),
    /^Invalid --name: .*ASCII/,
  );
  assertUsageError(
    () => parseClientArgs(["--name", "bob "]),
    /^Invalid --name: .*space/,
  );
  assertUsageError(
    () => parseClientArgs(["--name="]),
    /^Invalid --name: User name must not be empty/,
  );
});

Deno.test("client: unknown options and bad values are refused", () => {
  assertUsageError(
    () => parseClientArgs(["--auto-accept"]),
    /^Unknown option --auto-accept \(see simp client --help\)$/,
  );
  assertUsageError(
    () => parseClientArgs(["--port", "0"]),
    /^Option --port must be/,
  );
  assertUsageError(
    () => parseClientArgs(["1.2.3.4", "x"]),
    /^Unexpected argument x/,
  );
  assertUsageError(
    () => parseClientArgs(["999.1.1.1"]),
    /^Invalid IP address 999\.1\.1\.1/,
  );
});

// ---------------------------------------------------------------------------
// The whole command line

Deno.test("command line: --help, -h and --version", () => {
  deepStrictEqual(parseCommandLine(["--help"]), {
    kind: "help",
    text: helpText("simp"),
  });
  deepStrictEqual(parseCommandLine(["-h"]), {
    kind: "help",
    text: helpText("simp"),
  });
  deepStrictEqual(parseCommandLine(["--version"]), { kind: "version" });
});

Deno.test("command line: --help after a subcommand is that subcommand's help", () => {
  deepStrictEqual(parseCommandLine(["daemon", "--help"]), {
    kind: "help",
    text: helpText("daemon"),
  });
  deepStrictEqual(parseCommandLine(["client", "127.0.77.1", "-h"]), {
    kind: "help",
    text: helpText("client"),
  });
  // After "--", "--help" is a positional argument, not a request for help.
  assertUsageError(
    () => parseCommandLine(["daemon", "--", "--help"]),
    /^Invalid IP address --help/,
  );
});

Deno.test("command line: daemon and client dispatch to their parsers", () => {
  deepStrictEqual(parseCommandLine(["daemon", "127.0.77.4"]), {
    kind: "daemon",
    options: { ...DAEMON_DEFAULTS, ip: "127.0.77.4" },
  });
  deepStrictEqual(parseCommandLine(["client", "--name", "bob"]), {
    kind: "client",
    options: { ...CLIENT_DEFAULTS, name: "bob" },
  });
});

Deno.test("command line: a missing or unknown command is refused", () => {
  assertUsageError(
    () => parseCommandLine([]),
    /^Missing command.*\(see simp --help\)$/,
  );
  assertUsageError(
    () => parseCommandLine(["chat"]),
    /^Unknown command chat.*\(see simp --help\)$/,
  );
  assertUsageError(
    () => parseCommandLine(["--foo"]),
    /^Unknown option --foo \(see simp --help\)$/,
  );
});

Deno.test("help texts list the subcommands and every option", () => {
  const main = helpText("simp");
  ok(main.includes("simp daemon") && main.includes("simp client"));
  for (
    const option of [
      "--port",
      "--client-port",
      "--timeout",
      "--retries",
      "--adaptive-timeout",
      "--min-timeout",
      "--auto-accept",
      "--log-level",
      "--log-format",
      "--help",
    ]
  ) {
    ok(helpText("daemon").includes(option), option);
  }
  for (
    const option of [
      "--port",
      "--name",
      "--json",
      "--log-level",
      "--log-format",
      "--help",
    ]
  ) {
    ok(helpText("client").includes(option), option);
  }
});

Deno.test("isIPv4 accepts dotted quads only", () => {
  for (const good of ["0.0.0.0", "127.0.77.1", "255.255.255.255", "10.0.0.1"]) {
    ok(isIPv4(good), good);
  }
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.",
      "1..2.3",
      "a.b.c.d",
      "1.2.3.256",
      "1.2.3.04",
      " 1.2.3.4",
      "1.2.3.4 ",
    ]
  ) {
    ok(!isIPv4(bad), bad);
  }
});

// ---------------------------------------------------------------------------
// mod.ts as a program

const ROOT = new URL("../", import.meta.url);

/** Runs `deno run -A mod.ts …args` and returns its exit code and output. */
async function simp(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await simpIn({ INIT_CWD: "" }, ...args);
}

/** Runs mod.ts with `env` added (`INIT_CWD` set: as `deno task` runs it). */
async function simpIn(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("simp --help lists daemon and client and exits 0", async () => {
  const { code, stdout, stderr } = await simp("--help");
  strictEqual(code, 0);
  strictEqual(stderr, "");
  ok(stdout.includes("deno run -A mod.ts daemon"), stdout);
  ok(stdout.includes("deno run -A mod.ts client"), stdout);
});

Deno.test("help and usage errors show the command run: deno task daemon under deno task", async () => {
  const help = await simpIn({ INIT_CWD: ROOT.pathname }, "daemon", "--help");
  ok(help.stdout.startsWith("Usage: deno task daemon [IP]"), help.stdout);
  const wrong = await simpIn(
    { INIT_CWD: ROOT.pathname },
    "client",
    "--nmae",
    "x",
  );
  strictEqual(wrong.code, 2);
  strictEqual(
    wrong.stderr,
    "simp: Unknown option --nmae: did you mean --name? (see deno task client --help)\n",
  );
});

Deno.test("simp --version prints the version of deno.json", async () => {
  const { code, stdout } = await simp("--version");
  strictEqual(code, 0);
  strictEqual(stdout, `simp ${denoJson.version}\n`);
});

Deno.test("simp daemon --help and simp client --help print their options", async () => {
  const daemon = await simp("daemon", "--help");
  strictEqual(daemon.code, 0);
  ok(daemon.stdout.includes("--auto-accept"), daemon.stdout);
  const client = await simp("client", "--help");
  strictEqual(client.code, 0);
  ok(client.stdout.includes("--name"), client.stdout);
});

Deno.test("simp with an unknown option exits 2 with one line on stderr", async () => {
  const { code, stdout, stderr } = await simp("daemon", "--foo");
  strictEqual(code, 2);
  strictEqual(stdout, "");
  strictEqual(
    stderr,
    "simp: Unknown option --foo (see deno run -A mod.ts daemon --help)\n",
  );
});

Deno.test("simp with an unknown command exits 2 with one line on stderr", async () => {
  const { code, stderr } = await simp("chat");
  strictEqual(code, 2);
  strictEqual(stderr.split("\n").length, 2, stderr);
  ok(stderr.startsWith("simp: Unknown command chat"), stderr);
});

// ---------------------------------------------------------------------------
// simp daemon --pcap and simp ladder

Deno.test("daemon: --pcap FILE names the capture file; an empty name is refused", () => {
  strictEqual(parseDaemonArgs([]).pcap, undefined);
  strictEqual(parseDaemonArgs(["--pcap", "chat.pcap"]).pcap, "chat.pcap");
  assertUsageError(
    () => parseDaemonArgs(["--pcap="]),
    /^Option --pcap needs a file name \(see simp daemon --help\)$/,
  );
});

Deno.test("ladder: the input file, -o/--output and --title are parsed", () => {
  deepStrictEqual(parseLadderArgs(["chat.pcap"]), { file: "chat.pcap" });
  deepStrictEqual(
    parseLadderArgs(["-o", "out.svg", "relay.log", "--title", "lossy"]),
    { file: "relay.log", output: "out.svg", title: "lossy" },
  );
  deepStrictEqual(parseLadderArgs(["--output=x.svg", "a.pcap"]), {
    file: "a.pcap",
    output: "x.svg",
  });
  deepStrictEqual(parseCommandLine(["ladder", "a.pcap"]), {
    kind: "ladder",
    options: { file: "a.pcap" },
  });
});

Deno.test("ladder: no input, two inputs, an unknown option or an empty output are refused", () => {
  assertUsageError(
    () => parseLadderArgs([]),
    /^Missing input: .*simp ladder --help/,
  );
  assertUsageError(
    () => parseLadderArgs(["a.pcap", "b.pcap"]),
    /^Unexpected argument b\.pcap: simp ladder takes one input file/,
  );
  assertUsageError(
    () => parseLadderArgs(["a.pcap", "--svg"]),
    /^Unknown option --svg \(see simp ladder --help\)$/,
  );
  assertUsageError(
    () => parseLadderArgs(["a.pcap", "-o", ""]),
    /^Option --output needs a file name/,
  );
});

Deno.test("ladder: --help, and the main help lists simp ladder", () => {
  strictEqual(parseCommandLine(["ladder", "-h"]).kind, "help");
  ok(helpText("ladder").includes("-o, --output FILE"));
  ok(helpText("simp").includes("simp ladder FILE"));
  ok(helpText("daemon").includes("--pcap FILE"));
});

Deno.test("simp ladder FILE writes the SVG to stdout; a missing file exits 1 with one line", async () => {
  const drawn = await simp("ladder", "docs/ladder-chat.pcap");
  strictEqual(drawn.code, 0, drawn.stderr);
  ok(drawn.stdout.startsWith("<?xml"), drawn.stdout.slice(0, 100));
  ok(drawn.stdout.includes("SYN+ACK seq=0 user=bob"));
  const missing = await simp("ladder", "no-such-capture.pcap");
  strictEqual(missing.code, 1);
  strictEqual(
    missing.stderr,
    "simp: Cannot read no-such-capture.pcap: no such file — check the path\n",
  );
});
